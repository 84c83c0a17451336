#!/usr/bin/env python3
"""The before/after figure of ``tessera eval photos``: for a few photos, the part around
the mask of the photo (mask outlined), OpenCV's Telea inpainting, Tessera on the square
around the mask (before faces were aligned), and Tessera on the face's aligned crop.

    scripts/photo-figure.py OUT FIGURE.png [--photos NAME ...]

reads ``OUT/{masks,square,aligned,telea}/<name>.png`` (written by ``tessera eval photos
--out OUT`` and ``scripts/telea-inpaint.py OUT``) and the photos from ``$TESSERA_DATA/photos``
(or ``data/photos``); runs in ``data/.venv`` (Pillow, NumPy).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

TILE = 200
COLUMNS = ["photo", "telea", "square", "aligned"]
TITLES = ["photo and mask", "OpenCV Telea", "Tessera before (square)", "Tessera now (aligned face)"]


def window(mask: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """A square around the mask, three times its larger side, inside the photo."""
    ys, xs = np.nonzero(mask >= 128)
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    side = int(min(max(xs.max() - xs.min(), ys.max() - ys.min()) * 3, width, height))
    x0 = int(min(max(cx - side / 2, 0), width - side))
    y0 = int(min(max(cy - side / 2, 0), height - side))
    return x0, y0, x0 + side, y0 + side


def outline(tile: Image.Image, mask: Image.Image) -> Image.Image:
    """The tile with the mask's border drawn in yellow."""
    edge = mask.filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 0 else 0)
    yellow = Image.new("RGB", tile.size, (255, 220, 0))
    return Image.composite(yellow, tile, edge)


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    data = Path(os.environ.get("TESSERA_DATA", here / "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("figure", type=Path)
    ap.add_argument("--photos", nargs="*", default=None, help="photo names (default: the first five)")
    args = ap.parse_args()
    names = args.photos or sorted(p.stem for p in (args.out / "masks").glob("*.png"))[:5]
    rows = []
    for name in names:
        photo_path = next(p for p in (data / "photos").glob(name + ".*") if p.suffix != ".json")
        photo = Image.open(photo_path).convert("RGB")
        mask = Image.open(args.out / "masks" / f"{name}.png").convert("L")
        box = window(np.asarray(mask), *photo.size)
        tiles = []
        for column in COLUMNS:
            source = photo if column == "photo" else Image.open(args.out / column / f"{name}.png").convert("RGB")
            tile = source.crop(box).resize((TILE, TILE), Image.LANCZOS)
            if column == "photo":
                tile = outline(tile, mask.crop(box).resize((TILE, TILE), Image.NEAREST))
            tiles.append(tile)
        rows.append(tiles)
    head = 22
    figure = Image.new("RGB", (TILE * len(COLUMNS) + 4 * (len(COLUMNS) - 1), head + (TILE + 4) * len(rows)), "white")
    draw = ImageDraw.Draw(figure)
    for c, title in enumerate(TITLES):
        draw.text((c * (TILE + 4) + 4, 4), title, fill="black")
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            figure.paste(tile, (c * (TILE + 4), head + r * (TILE + 4)))
    figure.save(args.figure, optimize=True, **({"quality": 88} if args.figure.suffix.lower() in (".jpg", ".jpeg") else {}))
    print(f"wrote {args.figure} ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
