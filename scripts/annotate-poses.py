#!/usr/bin/env python3
"""Annotates every extracted demo-video frame with 13 Penn Action joints.

Runs once, by hand; its output `assets/poses/keypoints.json` is committed, so neither
users nor CI need mediapipe. Needs the frames of `scripts/fetch-data.sh` (data/poses/frames)
and a venv with PyPI `mediapipe==0.10.21`:

    python3 -m venv data/.venv-pose
    data/.venv-pose/bin/pip install mediapipe==0.10.21
    data/.venv-pose/bin/python scripts/annotate-poses.py

mediapipe's bundled BlazePose models (pose_detection.tflite, pose_landmark_full.tflite)
run offline through the legacy `mp.solutions.pose` API in static-image mode: 33 points per
frame, of the most prominent person. They map to the 13 joints of Penn Action: head =
mean of nose and ears; shoulders 11/12, elbows 13/14, wrists 15/16, hips 23/24, knees
25/26, ankles 27/28 (mediapipe's "left" is the person's left). A joint is visible when
mediapipe's visibility exceeds 0.5 (the head: the mean of its three points).
"""

import json
import os
import sys

import mediapipe as mp
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("TESSERA_DATA", os.path.join(ROOT, "data"))
FRAMES = os.path.join(DATA, "poses", "frames")
OUT = os.path.join(ROOT, "assets", "poses", "keypoints.json")

JOINTS = [
    "head",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
]
# BlazePose indices of each joint (the head averages three).
SOURCES = [[0, 7, 8], [11], [12], [13], [14], [15], [16], [23], [24], [25], [26], [27], [28]]


def joints(landmarks, width, height):
    """13 [x, y, visible] in pixels of the frame, from 33 normalised landmarks."""
    out = []
    for sources in SOURCES:
        points = [landmarks[i] for i in sources]
        x = float(np.mean([p.x for p in points])) * width
        y = float(np.mean([p.y for p in points])) * height
        visibility = float(np.mean([p.visibility for p in points]))
        out.append([round(x, 1), round(y, 1), int(visibility > 0.5)])
    return out


def main():
    manifest = json.load(open(os.path.join(FRAMES, "manifest.json")))
    result = {
        "annotator": "mediapipe==0.10.21 BlazePose full (legacy solutions.pose, static image mode, model_complexity=1)",
        "joints": JOINTS,
        "coordinates": "pixels of the original frame; visible is 1 when mediapipe's visibility > 0.5",
        "licence": "BSD-3-Clause, as the Pose2Sim and Sports2D videos the frames come from",
        "videos": {},
    }
    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
    done = 0
    for video in manifest["videos"]:
        folder = os.path.join(FRAMES, video["id"])
        frames = {}
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".png"):
                continue
            image = np.asarray(Image.open(os.path.join(folder, name)).convert("RGB"))
            found = pose.process(image).pose_landmarks
            height, width = image.shape[:2]
            frames[name[:-4]] = joints(found.landmark, width, height) if found else None
            done += 1
            if done % 50 == 0:
                print(f"{done} frames", file=sys.stderr)
        result["videos"][video["id"]] = {
            "width": video["width"],
            "height": video["height"],
            "frames": frames,
        }
        found = sum(1 for f in frames.values() if f is not None)
        print(f"{video['id']}: a person in {found} of {len(frames)} frames", file=sys.stderr)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".partial"
    with open(tmp, "w") as f:
        json.dump(result, f, separators=(",", ":"))
    os.replace(tmp, OUT)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
