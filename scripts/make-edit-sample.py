"""Draws the sample edit for face 000910 at a given side: the mask over the mouth and
chin (white = regenerate) and the strokes of an open smile (dark on white), both in
the coordinates of the 64x64 original, scaled. No photograph is involved.

    data/.venv/bin/python scripts/make-edit-sample.py 128   # -> assets/samples/edit/
"""

import sys
from pathlib import Path

from PIL import Image, ImageDraw

# In 64x64 pixels: the mask's box (left, top, right, bottom, inclusive) and the smile.
MASK_BOX = (18, 36, 45, 54)
UPPER_LIP = [(23, 43), (41, 43)]
LOWER_LIP = [(22, 45), (26, 49), (28, 49), (29, 50), (35, 50), (36, 49), (38, 49), (42, 45)]


def main() -> None:
    side = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    k = side / 64
    out = Path(__file__).resolve().parent.parent / "assets" / "samples" / "edit"
    mask = Image.new("L", (side, side), 0)
    left, top, right, bottom = MASK_BOX
    ImageDraw.Draw(mask).rectangle(
        (round(left * k), round(top * k), round((right + 1) * k) - 1, round((bottom + 1) * k) - 1),
        fill=255,
    )
    mask.save(out / "000910-mask.png", optimize=True)
    smile = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(smile)
    width = max(1, round(k))
    centre = lambda p: ((p[0] + 0.5) * k, (p[1] + 0.5) * k)  # noqa: E731
    for stroke in (UPPER_LIP, LOWER_LIP):
        draw.line([centre(p) for p in stroke], fill=0, width=width, joint="curve")
    smile.save(out / "000910-smile.png", optimize=True)
    print(f"wrote {side}x{side} mask and smile to {out}")


if __name__ == "__main__":
    main()
