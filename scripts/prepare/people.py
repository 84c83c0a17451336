"""The poses step: every frame of the Pose2Sim / Sports2D demo videos (decoded with
ffmpeg) -> poses/frames/<video-id>/NNNNNN.png, plus manifest.json."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from .common import WHEELS, commit_dir, commit_file, count_files, fresh_partial, log, read_member


@dataclass(frozen=True)
class Video:
    """One demo video shipped inside a wheel."""

    video_id: str
    wheel_key: str
    package: str
    version: str
    member: str


VIDEOS: List[Video] = [
    *[
        Video(f"single_cam{c:02d}", "pose2sim", "pose2sim", "0.10.49",
              f"Pose2Sim/Demo_SinglePerson/videos/cam{c:02d}.mp4")
        for c in range(1, 5)
    ],
    *[
        Video(f"trial2_cam{c:02d}", "pose2sim", "pose2sim", "0.10.49",
              f"Pose2Sim/Demo_Batch/Trial_2/videos/cam{c:02d}.mp4")
        for c in range(1, 5)
    ],
    Video("sports2d_demo", "sports2d", "sports2d", "0.8.34", "Sports2D/Demo/demo.mp4"),
]
VIDEO_LICENCE = "BSD-3-Clause"


def probe_video(path: Path) -> Dict[str, Any]:
    """Return width, height, frame rate and codec of the first video stream (ffprobe)."""
    res = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0",
         "-show_entries", "stream=width,height,r_frame_rate,codec_name", "-of", "json", str(path)],
        check=True, capture_output=True, text=True)
    s = json.loads(res.stdout)["streams"][0]
    num, den = (int(x) for x in s["r_frame_rate"].split("/"))
    return {"width": s["width"], "height": s["height"], "fps": round(num / den, 3), "codec": s["codec_name"]}


def extract_frames(video: Path, out: Path) -> int:
    """Decode every frame of ``video`` to ``out/000001.png`` ... ; return the frame count."""
    partial = fresh_partial(out)
    subprocess.run(
        ["nice", "-n", "10", "ffmpeg", "-nostdin", "-v", "error", "-threads", "2",
         "-i", str(video), "-vsync", "passthrough", "-start_number", "1",
         str(partial / "%06d.png")],
        check=True)
    n = count_files(partial)
    if n == 0:
        raise RuntimeError(f"ffmpeg produced no frames from {video}")
    commit_dir(partial, out)
    return n


def make_poses(wheels: Path, cache: Path, out: Path) -> None:
    """Extract all frames of the demo videos and write ``manifest.json``.

    A video whose frame directory already exists is kept (directories are only
    created by an atomic rename after ffmpeg finished).
    """
    out.mkdir(parents=True, exist_ok=True)
    videos_dir = cache / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for v in VIDEOS:
        mp4 = videos_dir / f"{v.video_id}.mp4"
        if not mp4.exists():
            tmp = mp4.with_suffix(".mp4.partial")
            tmp.write_bytes(read_member(wheels / WHEELS[v.wheel_key], v.member))
            commit_file(tmp, mp4)
        frames_dir = out / v.video_id
        if frames_dir.is_dir() and count_files(frames_dir) > 0:
            n = count_files(frames_dir)
            log(f"  {v.video_id}: {n} frames (already there)")
        else:
            n = extract_frames(mp4, frames_dir)
            log(f"  {v.video_id}: {n} frames extracted")
        info = probe_video(mp4)
        entries.append({
            "id": v.video_id,
            "frames": n,
            "width": info["width"],
            "height": info["height"],
            "fps": info["fps"],
            "source": {"registry": "PyPI", "package": v.package, "version": v.version,
                       "wheel": WHEELS[v.wheel_key], "path": v.member},
            "licence": VIDEO_LICENCE,
        })
    manifest = {
        "description": "Every frame of the Pose2Sim / Sports2D demo videos, PNG, original resolution, "
                       "numbered from 000001.png in decoding order.",
        "licence": VIDEO_LICENCE,
        "total_frames": sum(e["frames"] for e in entries),
        "videos": entries,
    }
    tmp = out / "manifest.json.partial"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    commit_file(tmp, out / "manifest.json")


def poses_complete(out: Path) -> bool:
    """True when manifest.json exists and every listed video has its frame count."""
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        entries = json.loads(manifest.read_text())["videos"]
    except (ValueError, KeyError):
        return False
    ids = [e["id"] for e in entries]
    if ids != [v.video_id for v in VIDEOS]:
        return False
    return all(count_files(out / e["id"]) == e["frames"] for e in entries)
