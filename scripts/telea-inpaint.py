#!/usr/bin/env python3
"""OpenCV's Telea inpainting on the masks ``tessera eval photos`` wrote: the floor a user
already has, for the comparison in that evaluation.

    scripts/telea-inpaint.py OUT [--photos DIR]

reads every ``OUT/masks/<name>.png``, inpaints ``<photos>/<name>.*`` (default
``$TESSERA_DATA/photos`` or ``data/photos``) inside the mask with ``cv2.inpaint``
(``INPAINT_TELEA``, radius 3, OpenCV's usual setting) and writes ``OUT/telea/<name>.png``;
then run ``tessera eval photos --out OUT`` again. Needs ``opencv-python-headless`` and
``numpy`` (a venv at ``data/.cache/telea-venv`` is made with them when the running Python
lacks them). Pixels outside the mask are copied from the photo, as Tessera's are.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

OPENCV = "opencv-python-headless==4.10.0.84"
NUMPY = "numpy==2.2.6"


def ensure_cv2(data: Path) -> None:
    """Re-run this script in a venv with OpenCV when the current Python has none."""
    try:
        import cv2  # noqa: F401
        return
    except ImportError:
        pass
    venv = data / ".cache" / "telea-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", OPENCV, NUMPY], check=True)
    os.execv(str(python), [str(python), *sys.argv])


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    data = Path(os.environ.get("TESSERA_DATA", here / "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the folder `tessera eval photos --out` wrote")
    ap.add_argument("--photos", type=Path, default=data / "photos", help="the photos")
    args = ap.parse_args()
    ensure_cv2(data)
    import cv2
    import numpy as np

    masks = sorted((args.out / "masks").glob("*.png"))
    if not masks:
        print(f"no masks in {args.out / 'masks'}: run `tessera eval photos --out {args.out}` first",
              file=sys.stderr)
        return 1
    (args.out / "telea").mkdir(parents=True, exist_ok=True)
    for mask_path in masks:
        photos = [p for p in args.photos.glob(mask_path.stem + ".*") if p.suffix != ".json"]
        if not photos:
            print(f"{mask_path.stem}: no photo in {args.photos}", file=sys.stderr)
            return 1
        photo = cv2.imread(str(photos[0]), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
        result = cv2.inpaint(photo, mask, 3, cv2.INPAINT_TELEA)
        result[mask == 0] = photo[mask == 0]
        cv2.imwrite(str(args.out / "telea" / f"{mask_path.stem}.png"), result)
        print(f"{mask_path.stem}: inpainted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
