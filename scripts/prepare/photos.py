"""The photos step: real photos with faces (portraits, tilted heads, partial faces, group
photos, small faces; 112-2333 px) shipped inside registry packages -> photos/<id>.<ext>,
byte-for-byte as packaged, plus manifest.json (source package, path, licence, size).

For checking the face locator on real pictures; not for training, and never committed.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from PIL import Image

from .common import WHEELS, commit_dir, fresh_partial, log, sha256_file


@dataclass(frozen=True)
class Photo:
    """One photo inside a downloaded package (wheel/zip, sdist/npm tarball)."""

    photo_id: str
    wheel_key: str
    member: str
    note: str


# registry, package, version, licence of each source package (by WHEELS key)
PACKAGES: Dict[str, tuple] = {
    "matplotlib": ("PyPI", "matplotlib", "3.9.2", "Matplotlib License (PSF-based)"),
    "insightface": ("PyPI", "insightface", "0.7.3", "MIT"),
    "face_api": ("npm", "@vladmandic/face-api", "1.7.15", "MIT"),
    "ultralytics": ("PyPI", "ultralytics", "8.3.0", "AGPL-3.0"),
    "face_recognition": ("PyPI", "face_recognition", "1.3.0", "MIT"),
}

PHOTOS: List[Photo] = [
    Photo("grace_hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
          "portrait, one face, frontal (US Navy photo, public domain)"),
    Photo("tom_hanks_crop", "insightface", "insightface-0.7.3/insightface/data/images/Tom_Hanks_54745.png",
          "tight 112x112 face crop, greyscale-looking"),
    Photo("friends_t1", "insightface", "insightface-0.7.3/insightface/data/images/t1.jpg",
          "group photo, 6 faces, some turned"),
    *[Photo(f"faceapi_sample{i}", "face_api", f"package/demo/sample{i}.jpg", note)
      for i, note in [(1, "3 faces, dark scene, tilted heads"), (2, "3 faces, tilted and lowered heads"),
                      (3, "3 faces, warm light"), (4, "4 faces, standing group"),
                      (5, "5 faces, group on stairs"), (6, "4 faces, standing, full body")]],
    Photo("ultralytics_bus", "ultralytics", "ultralytics/assets/bus.jpg",
          "street scene, 4 small faces"),
    Photo("ultralytics_zidane", "ultralytics", "ultralytics/assets/zidane.jpg",
          "2 faces, one strongly tilted/in profile"),
    Photo("biden", "face_recognition", "face_recognition-1.3.0/tests/test_images/biden.jpg",
          "full-body portrait, small face at the top of a tall picture (White House photo, public domain)"),
    Photo("obama", "face_recognition", "face_recognition-1.3.0/tests/test_images/obama.jpg",
          "half-body portrait, frontal (White House photo, public domain)"),
    Photo("obama2", "face_recognition", "face_recognition-1.3.0/tests/test_images/obama2.jpg",
          "speaking at a microphone, second face partly visible at the edge (White House photo, public domain)"),
    Photo("obama3", "face_recognition", "face_recognition-1.3.0/tests/test_images/obama3.jpg",
          "full-body portrait in a room, small face (White House photo, public domain)"),
    Photo("obama_partial", "face_recognition",
          "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
          "face cut by the left image border (White House photo, public domain)"),
]


def read_package_member(path: Path, member: str) -> bytes:
    """Bytes of ``member`` in a zip (wheel) or gzipped tar (sdist, npm pack) file."""
    if path.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as zf:
            return zf.read(member)
    with tarfile.open(path, "r:gz") as tf:
        f = tf.extractfile(member)
        if f is None:
            raise ValueError(f"{member} is not a regular file in {path.name}")
        return f.read()


def make_photos(wheels: Path, out: Path) -> None:
    """Copy every photo of :data:`PHOTOS` into ``out`` and write ``manifest.json``."""
    partial = fresh_partial(out)
    entries = []
    for p in PHOTOS:
        data = read_package_member(wheels / WHEELS[p.wheel_key], p.member)
        name = p.photo_id + Path(p.member).suffix.lower()
        (partial / name).write_bytes(data)
        with Image.open(io.BytesIO(data)) as im:
            width, height, mode = im.width, im.height, im.mode
        registry, package, version, licence = PACKAGES[p.wheel_key]
        entries.append({
            "id": p.photo_id, "file": name, "width": width, "height": height, "mode": mode,
            "bytes": len(data), "sha256": sha256_file(partial / name),
            "source": {"registry": registry, "package": package, "version": version,
                       "file": WHEELS[p.wheel_key], "path": p.member},
            "licence": licence, "note": p.note,
        })
        log(f"  {name}: {width}x{height} {mode} <- {package}@{version}")
    manifest = {
        "description": "Real photos with faces from registry packages, copied byte-for-byte, for "
                       "checking the face locator; 'licence' is the licence of the package that ships "
                       "the photo (the pictures' own rights may differ: do not redistribute them).",
        "count": len(entries),
        "photos": entries,
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    commit_dir(partial, out)


def photos_complete(out: Path) -> bool:
    """True when manifest.json exists and lists every photo, each present with its size."""
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        entries = json.loads(manifest.read_text())["photos"]
    except (ValueError, KeyError):
        return False
    return (len(entries) == len(PHOTOS)
            and all((out / e["file"]).is_file() and (out / e["file"]).stat().st_size == e["bytes"]
                    for e in entries))
