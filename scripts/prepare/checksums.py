"""Verification: data/CHECKSUMS (written, or checked with --verify) and the file
count of every output."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import List, Tuple

from .common import commit_file, count_files, log, sha256_file
from .detector import detector_paths
from .faces import FACE_COUNT, FACE_TRAIN_LAST, OLIVETTI_COUNT
from .people import VIDEOS
from .photos import PHOTOS
from .samples import sample_paths


def output_dirs(data: Path) -> List[Path]:
    """The PNG directories covered by CHECKSUMS (relative order is the file order)."""
    dirs = [data / "faces" / "train", data / "faces" / "test", data / "olivetti"]
    dirs += [data / "faces128" / "train", data / "faces128" / "test"]
    dirs += [data / "poses" / "frames" / v.video_id for v in VIDEOS]
    dirs += [data / "photos"]
    return dirs


def output_files(data: Path) -> List[Path]:
    """Single files covered by CHECKSUMS."""
    return [data / "poses" / "frames" / "manifest.json",
            data / "nets" / "mobilenet_v2.safetensors",
            data / "nets" / "inception_v3_fid.safetensors",
            data / "nets" / "inception_v3_fid.json",
            *detector_paths(data / "nets")]


def dir_digest(directory: Path) -> Tuple[int, str]:
    """(file count, combined sha256) of a directory's regular files.

    The combined hash is sha256 over the lines ``"<sha256 hex>  <file name>\\n"``
    of all regular files, sorted by file name (byte order), concatenated.
    """
    files = sorted((p for p in directory.iterdir() if p.is_file()), key=lambda p: p.name.encode())
    h = hashlib.sha256()
    for p in files:
        h.update(f"{sha256_file(p)}  {p.name}\n".encode())
    return len(files), h.hexdigest()


def checksum_lines(data: Path) -> List[str]:
    """The lines of data/CHECKSUMS (see write_checksums for the format)."""
    lines = []
    for d in output_dirs(data):
        if not d.is_dir():  # not made (yet); --verify then reports the missing line
            continue
        n, digest = dir_digest(d)
        lines.append(f"dir {d.relative_to(data).as_posix()} {n} {digest}")
    for f in output_files(data):
        if not f.is_file():
            continue
        lines.append(f"file {f.relative_to(data).as_posix()} {f.stat().st_size} {sha256_file(f)}")
    return lines


def checksums_current(data: Path) -> bool:
    """Whether data/CHECKSUMS exists and lists exactly the outputs present now (paths only,
    nothing is hashed): a CHECKSUMS written before the set of outputs changed (e.g. when the
    short-range BlazeFace model was dropped) is then rewritten by fetch-data.sh."""
    target = data / "CHECKSUMS"
    if not target.is_file():
        return False
    listed = {tuple(l.split()[:2]) for l in target.read_text().splitlines() if l and not l.startswith("#")}
    present = {("dir", d.relative_to(data).as_posix()) for d in output_dirs(data) if d.is_dir()}
    present |= {("file", f.relative_to(data).as_posix()) for f in output_files(data) if f.is_file()}
    return listed == present


CHECKSUMS_HEADER = """\
# Tessera data checksums, format 1 (written by scripts/prepare_data.py checksums)
# dir  <path> <file count> <sha256 over "<sha256 hex>  <name>\\n" of its files, sorted by name>
# file <path> <size in bytes> <sha256 hex>
# Paths are relative to the data directory. PNG bytes depend on the Pillow/ffmpeg versions.
"""


def write_checksums(data: Path, verify: bool) -> int:
    """Write data/CHECKSUMS, or with ``verify`` compare against it; returns an exit code."""
    lines = checksum_lines(data)
    target = data / "CHECKSUMS"
    if verify:
        if not target.is_file():
            log("CHECKSUMS missing")
            return 1
        want = [l for l in target.read_text().splitlines() if l and not l.startswith("#")]
        bad = sorted(set(want) ^ set(lines))
        for l in bad:
            log(f"  mismatch: {l}")
        log("checksums OK" if not bad else f"{len(bad)} checksum lines differ")
        return 0 if not bad else 1
    tmp = data / "CHECKSUMS.partial"
    tmp.write_text(CHECKSUMS_HEADER + "\n".join(lines) + "\n")
    commit_file(tmp, target)
    return 0


def print_counts(data: Path, assets: Path) -> int:
    """Print the file count of every output; non-zero exit if an expected count is wrong."""
    expected = {"faces/train": FACE_TRAIN_LAST, "faces/test": FACE_COUNT - FACE_TRAIN_LAST,
                "faces128/train": FACE_TRAIN_LAST, "faces128/test": FACE_COUNT - FACE_TRAIN_LAST,
                "olivetti": OLIVETTI_COUNT, "photos": len(PHOTOS)}
    ok = True
    for d in output_dirs(data):
        rel = d.relative_to(data).as_posix()
        n = count_files(d) + (count_files(d, ".jpg") if rel == "photos" else 0)
        want = expected.get(rel) if d.is_dir() or rel != "photos" else None
        flag = "" if want is None or n == want else f"  (expected {want})"
        ok &= not flag
        log(f"  {rel:34s} {n:5d}{flag}")
    frames = sum(count_files(data / "poses" / "frames" / v.video_id) for v in VIDEOS)
    log(f"  {'poses/frames (all videos)':34s} {frames:5d}")
    for f in output_files(data):
        log(f"  {f.relative_to(data).as_posix():34s} {f.stat().st_size if f.exists() else 'MISSING'}")
    n_samples = sum(p.exists() for p in sample_paths(assets))
    log(f"  {'assets/samples':34s} {n_samples:5d} of {len(sample_paths(assets))}")
    return 0 if ok else 1
