#!/usr/bin/env python3
"""Reference outputs of MediaPipe's full-range BlazeFace detector for the face locator's tests.

Runs once, by hand (not by fetch-data.sh or CI); its output `tests/corpus/faces/` is
committed. Needs `scripts/fetch-data.sh` to have run (the mediapipe wheel in
data/.cache/wheels, data/nets/blazeface_full.{json,safetensors}, data/photos/) and a venv
with a TFLite interpreter and, optionally, mediapipe itself:

    python3 -m venv /tmp/bf && /tmp/bf/bin/pip install "numpy<2" pillow safetensors==0.5.3 \\
        ai-edge-litert==2.3.0 mediapipe==0.10.21
    /tmp/bf/bin/python scripts/blazeface-reference.py

Only the full-range model (192 px, 2304 anchors) is used by Tessera: the short-range one
found no face in the group photos friends_t1 and ultralytics_bus, where the full-range one
finds faces in both (see scripts/prepare/detector.py). For each fixture photo
(FIXTURE_PHOTOS, public-domain pictures only):
1. letterbox the photo (scale by size / max(w, h), Pillow bilinear, centred on black)
   and save it as `<photo>_full.png`; the input tensor is pixel * (2/255) - 1;
2. run the ORIGINAL .tflite (from the wheel) with the LiteRT interpreter;
3. run a pure-NumPy re-implementation of data/nets/blazeface_full.json with the
   weights of the .safetensors file, exactly as the burn port is meant to, and report
   the largest absolute difference of each output against the interpreter;
4. decode (anchors, sigmoid, threshold) and weighted-NMS the interpreter outputs and,
   when mediapipe is installed, compare with mediapipe's own FaceDetection graph run on
   the same PNG;
5. write the raw score logits of every anchor (`<photo>_full.scores.f32`, float32
   little endian), the 16 regressors + logit of every anchor with score > 0.1 and of 12
   random anchors, and the decoded detections into `reference.json`.
With mediapipe it also runs the complete FaceDetection solution on every photo in
data/photos (original size) and stores those detections (normalised to the photo) as
`photo_detections`, for checking the letterbox + projection path; with OpenCV (a mediapipe
dependency) it also checks the JSON's `input.letterbox` recipe against them.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TESSERA_DATA", ROOT / "data"))
WHEEL = DATA / ".cache" / "wheels" / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
OUT = ROOT / "tests" / "corpus" / "faces"
# The photos whose letterboxed 192x192 copies are committed as fixtures. Only public-domain
# pictures (works of the US federal government: a US Navy portrait and official White House
# photographs) go into the repository; the other photos of data/photos are TV stills, demo
# pictures of unknown rights or AGPL-packaged and must not be redistributed, so they appear
# only as numbers in `photo_detections`. obama2 has a second, partly visible face at the
# right edge; obama_partial's face is cut by the left border; biden and obama3 have small faces.
FIXTURE_PHOTOS = ["grace_hopper", "biden", "obama", "obama2", "obama3", "obama_partial"]
MODEL = "full"  # the only BlazeFace model Tessera uses (see scripts/prepare/detector.py)
MODEL_SELECTION = 1  # mediapipe FaceDetection(model_selection=1) is the full-range model
SELECT_SCORE = 0.1
RANDOM_ANCHORS = 12


# --- the NumPy port of the JSON graph ----------------------------------------

def pad4(x: np.ndarray, pad: List[int], value: float = 0.0) -> np.ndarray:
    """Pad an NCHW tensor by [top, bottom, left, right]."""
    t, b, l, r = pad
    if not any(pad):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int = 1, dw: int = 1) -> np.ndarray:
    """[N, C, OH, OW, kh, kw] view of the (already padded) input."""
    n, c, h, w = x.shape
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw))


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, op: Dict[str, Any]) -> np.ndarray:
    """burn-style Conv2d (weight [out, in/groups, kh, kw]) after explicit padding."""
    x = np.ascontiguousarray(pad4(x, op["pad"]))
    kh, kw = op["kernel"]
    win = windows(x, kh, kw, *op["stride"], *op["dilation"])
    if op["groups"] == 1:
        y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    elif op["groups"] == x.shape[1] and w.shape[1] == 1:
        y = np.einsum("nchwij,cij->nchw", win, w[:, 0], optimize=True)
    else:
        raise ValueError("grouped convolution other than depthwise")
    return y + b[None, :, None, None]


def resize_bilinear(x: np.ndarray, size: List[int], align: bool, half: bool) -> np.ndarray:
    """TFLite RESIZE_BILINEAR on an NCHW tensor."""
    def axis(n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = (n_in - 1) / (n_out - 1) if align and n_out > 1 else n_in / n_out
        src = (np.arange(n_out) + 0.5) * scale - 0.5 if half else np.arange(n_out) * scale
        lo = np.maximum(np.floor(src), 0).astype(int)
        hi = np.minimum(np.ceil(src), n_in - 1).astype(int)
        return lo, hi, (src - lo).astype(np.float32)
    y0, y1, fy = axis(x.shape[2], size[0])
    x0, x1, fx = axis(x.shape[3], size[1])
    top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
    bot = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
    return top * (1 - fy[:, None]) + bot * fy[:, None]


def activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    raise ValueError(f"activation {name}")


def run_graph(doc: Dict[str, Any], weights: Dict[str, np.ndarray], x: np.ndarray) -> Dict[str, np.ndarray]:
    """Run the ops of blazeface_full.json on an NCHW float32 input; returns every tensor."""
    env: Dict[str, np.ndarray] = {"input": x.astype(np.float32)}
    for op in doc["ops"]:
        kind = op["op"]
        if kind == "conv2d":
            y = activation(conv2d(env[op["input"]], weights[op["weight"]], weights[op["bias"]], op),
                           op["activation"])
        elif kind == "max_pool2d":
            xin = np.ascontiguousarray(pad4(env[op["input"]], op["pad"], -np.inf))
            y = activation(windows(xin, *op["kernel"], *op["stride"]).max(axis=(4, 5)), op["activation"])
        elif kind == "pad":
            y = np.pad(env[op["input"]], [tuple(p) for p in op["pads"]], constant_values=op["value"])
        elif kind == "add":
            a, b = (env[i] for i in op["inputs"])
            y = activation(a + b, op["activation"])
        elif kind == "relu":
            y = np.maximum(env[op["input"]], 0)
        elif kind == "resize_bilinear":
            y = resize_bilinear(env[op["input"]], op["size"], op["align_corners"], op["half_pixel_centers"])
        elif kind == "depth_to_space":
            xin = env[op["input"]]
            bs = op["block_size"]
            n, c, h, w = xin.shape
            y = xin.reshape(n, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
            y = y.reshape(n, c // (bs * bs), h * bs, w * bs)
        elif kind == "reshape":
            xin = env[op["input"]]
            if op["permute_before"]:
                xin = xin.transpose(op["permute_before"])
            y = np.ascontiguousarray(xin).reshape(op["shape"])
        elif kind == "concat":
            y = np.concatenate([env[i] for i in op["inputs"]], axis=op["axis"])
        else:
            raise ValueError(f"op {kind}")
        if list(y.shape) != op["out_shape"]:
            raise ValueError(f"{op['output']}: shape {y.shape} != {op['out_shape']}")
        env[op["output"]] = y.astype(np.float32)
    return env


# --- decoding ------------------------------------------------------------------

def decode(reg: np.ndarray, logits: np.ndarray, anchors: np.ndarray, dec: Dict[str, Any],
           min_score: Optional[float] = None) -> List[Dict[str, Any]]:
    """TensorsToDetections + weighted NMS (see decode.recipe / decode.nms.recipe in the JSON)."""
    thr = dec["min_score_thresh"] if min_score is None else min_score
    clip = dec["score_clipping_thresh"]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -clip, clip)))
    dets = []
    for i in np.nonzero(scores >= thr)[0]:
        r, (ax, ay, aw, ah) = reg[i], anchors[i]
        xc = r[0] / dec["x_scale"] * aw + ax
        yc = r[1] / dec["y_scale"] * ah + ay
        w = r[2] / dec["w_scale"] * aw
        h = r[3] / dec["h_scale"] * ah
        if w < 0 or h < 0:
            continue
        kps = [[float(r[4 + 2 * k] / dec["x_scale"] * aw + ax), float(r[5 + 2 * k] / dec["y_scale"] * ah + ay)]
               for k in range(dec["num_keypoints"])]
        dets.append({"anchor": int(i), "score": float(scores[i]),
                     "box": [float(xc - w / 2), float(yc - h / 2), float(xc + w / 2), float(yc + h / 2)],
                     "keypoints": kps})
    return weighted_nms(dets, dec["nms"]["min_suppression_threshold"])


def iou(a: List[float], b: List[float]) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(dets: List[Dict[str, Any]], threshold: float) -> List[Dict[str, Any]]:
    """MediaPipe's WEIGHTED non-maximum suppression (IoU)."""
    remaining = sorted(dets, key=lambda d: -d["score"])
    out = []
    while remaining:
        seed = remaining[0]
        cand = [d for d in remaining if iou(d["box"], seed["box"]) > threshold]
        remaining = [d for d in remaining if iou(d["box"], seed["box"]) <= threshold]
        total = sum(d["score"] for d in cand)
        box = [sum(d["box"][k] * d["score"] for d in cand) / total for k in range(4)]
        kps = [[sum(d["keypoints"][k][j] * d["score"] for d in cand) / total for j in range(2)]
               for k in range(len(seed["keypoints"]))]
        out.append({"score": seed["score"], "box": box, "keypoints": kps, "seed_anchor": seed["anchor"],
                    "merged": len(cand)})
    return out


# --- references ------------------------------------------------------------------

def letterbox(img: Image.Image, size: int) -> Tuple[Image.Image, Dict[str, Any]]:
    """Scale by size / max(w, h) (Pillow bilinear), centre on a black size x size canvas."""
    scale = size / max(img.width, img.height)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    canvas = Image.new("RGB", (size, size))
    ox, oy = (size - w) // 2, (size - h) // 2
    canvas.paste(img.convert("RGB").resize((w, h), Image.BILINEAR), (ox, oy))
    return canvas, {"scale": scale, "resized": [w, h], "offset": [ox, oy],
                    "to_photo": "x_photo = (u * size - offset_x) * width / resized_w, same for y"}


def to_tensor(img: Image.Image) -> np.ndarray:
    """[1, H, W, 3] float32 = pixel * (2/255) - 1 (as MediaPipe's ImageToTensor)."""
    return np.asarray(img, dtype=np.float32)[None] * np.float32(2.0 / 255.0) - np.float32(1.0)


def mediapipe_letterbox(rgb: np.ndarray, size: int) -> Optional[np.ndarray]:
    """MediaPipe's own letterbox (ImageToTensorCalculator, OpenCV path) as an NHWC input tensor,
    or None without OpenCV: tensor pixel (u, v) samples the image at x = u * side / size +
    (W - side) / 2 (bilinear, pixel centres at integers), outside = black."""
    try:
        import cv2
    except ImportError:
        return None
    h, w = rgb.shape[:2]
    side = max(w, h)
    m = np.array([[side / size, 0, (w - side) / 2], [0, side / size, (h - side) / 2]], np.float64)
    img = cv2.warpAffine(np.ascontiguousarray(rgb), m, (size, size),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return img.astype(np.float32)[None] * np.float32(2.0 / 255.0) - np.float32(1.0)


def to_photo(dets: List[Dict[str, Any]], w: int, h: int) -> List[Dict[str, Any]]:
    """Map detections from the letterboxed tensor (normalised) to the photo (normalised)."""
    side = max(w, h)
    fx = lambda u: (u * side + (w - side) / 2) / w  # noqa: E731
    fy = lambda v: (v * side + (h - side) / 2) / h  # noqa: E731
    return [{"score": d["score"], "box": [fx(d["box"][0]), fy(d["box"][1]), fx(d["box"][2]), fy(d["box"][3])],
             "keypoints": [[fx(k[0]), fy(k[1])] for k in d["keypoints"]]} for d in dets]


def mediapipe_detections(rgb: np.ndarray, model_selection: int, min_score: float) -> Optional[List[Dict[str, Any]]]:
    """Detections of mediapipe's FaceDetection solution (normalised to the given image), or None."""
    try:
        from mediapipe.python.solutions import face_detection
    except ImportError:
        return None
    with face_detection.FaceDetection(min_detection_confidence=min_score, model_selection=model_selection) as fd:
        res = fd.process(np.ascontiguousarray(rgb))
    out = []
    for d in res.detections or []:
        bb = d.location_data.relative_bounding_box
        out.append({"score": float(d.score[0]),
                    "box": [bb.xmin, bb.ymin, bb.xmin + bb.width, bb.ymin + bb.height],
                    "keypoints": [[k.x, k.y] for k in d.location_data.relative_keypoints]})
    return out


def interpreter(blob: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore
    it = Interpreter(model_content=blob)
    it.allocate_tensors()
    return it


def invoke(it, x: np.ndarray) -> Dict[str, np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    out = {}
    for d in it.get_output_details():
        v = it.get_tensor(d["index"]).copy()
        out["regressors" if v.shape[-1] == 16 else "classificators"] = v
    return out


def f32(x: float) -> float:
    return float(np.float32(x))


def main() -> int:
    manifest = {e["id"]: e for e in json.loads((DATA / "photos" / "manifest.json").read_text())["photos"]}
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240601)
    cases = []
    doc = json.loads((DATA / "nets" / f"blazeface_{MODEL}.json").read_text())
    weights = load_file(str(DATA / "nets" / f"blazeface_{MODEL}.safetensors"))
    with zipfile.ZipFile(WHEEL) as zf:
        blob = zf.read(doc["source"]["path"])
    it = interpreter(blob)
    size = doc["input"]["shape"][2]
    anchors = weights["anchors"]
    dec = doc["decode"]
    worst = {"regressors": 0.0, "classificators": 0.0}
    worst_rel = dict(worst)
    worst_sel = dict(worst)
    for pid in FIXTURE_PHOTOS:
        photo = manifest[pid]
        img, lb = letterbox(Image.open(DATA / "photos" / photo["file"]), size)
        png = f"{pid}_{MODEL}.png"
        img.save(OUT / png, optimize=True)
        img = Image.open(OUT / png).convert("RGB")  # exactly what the test will read
        x = to_tensor(img)
        ref = invoke(it, x)
        env = run_graph(doc, weights, x.transpose(0, 3, 1, 2))
        diff = {k: float(np.abs(env[k] - ref[k]).max()) for k in ("regressors", "classificators")}
        rel = {k: float((np.abs(env[k] - ref[k]) / np.maximum(1.0, np.abs(ref[k]))).max())
               for k in ("regressors", "classificators")}
        for k in worst:
            worst[k] = max(worst[k], diff[k])
            worst_rel[k] = max(worst_rel[k], rel[k])
        reg, logits = ref["regressors"][0], ref["classificators"][0, :, 0]
        logits.astype("<f4").tofile(OUT / f"{pid}_{MODEL}.scores.f32")
        scores = 1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        pick = set(np.nonzero(scores > SELECT_SCORE)[0].tolist())
        pick |= set(rng.choice(len(logits), RANDOM_ANCHORS, replace=False).tolist())
        sel = sorted(pick)
        sel_diff = {k: float(np.abs(env[k][0, sel] - ref[k][0, sel]).max()) for k in worst_sel}
        for k in worst_sel:
            worst_sel[k] = max(worst_sel[k], sel_diff[k])
        dets = decode(reg, logits, anchors, dec)
        mp_dets = mediapipe_detections(np.asarray(img), MODEL_SELECTION, 0.5)
        case = {
            "photo": pid, "model": MODEL, "png": png, "size": size, "scores": f"{pid}_{MODEL}.scores.f32",
            "photo_size": [photo["width"], photo["height"]], "letterbox": lb,
            "max_abs_diff_numpy_vs_interpreter": diff,
            "max_rel_diff_numpy_vs_interpreter": rel,
            "max_abs_diff_listed_anchors": sel_diff,
            "anchors": [{"index": int(i), "logit": f32(logits[i]), "score": float(scores[i]),
                         "regressors": [f32(v) for v in reg[i]]} for i in sorted(pick)],
            "detections": dets,
            "mediapipe_detections": mp_dets,
        }
        if mp_dets is not None:
            case["mediapipe_max_abs_diff"] = compare(dets, mp_dets)
        cases.append(case)
        print(f"{MODEL} {pid:20s} diff reg {diff['regressors']:.2e} cls {diff['classificators']:.2e} "
              f"rel {rel['regressors']:.1e} {rel['classificators']:.1e} listed {sel_diff['regressors']:.1e} "
              f"{sel_diff['classificators']:.1e}  {len(dets)} faces (>= {dec['min_score_thresh']}), "
              f"mediapipe {None if mp_dets is None else len(mp_dets)} "
              f"{case.get('mediapipe_max_abs_diff')}", flush=True)
    diffs_all = {MODEL: {"max_abs": worst, "max_rel": worst_rel, "max_abs_listed_anchors": worst_sel}}
    photo_dets: Optional[Dict[str, Any]] = {}
    for pid, photo in manifest.items():
        rgb = np.asarray(Image.open(DATA / "photos" / photo["file"]).convert("RGB"))
        per: Dict[str, Any] = {MODEL: mediapipe_detections(rgb, MODEL_SELECTION, 0.5)}
        if per[MODEL] is None:
            photo_dets = None
            break
        # our letterbox + interpreter + decode + projection vs. mediapipe
        x = mediapipe_letterbox(rgb, size)
        if x is not None:
            out = invoke(it, x)
            mine = to_photo(decode(out["regressors"][0], out["classificators"][0, :, 0], anchors, dec),
                            photo["width"], photo["height"])
            per[f"{MODEL}_recipe_max_abs_diff"] = compare(mine, per[MODEL])
        photo_dets[pid] = per
        print(f"photo {pid:20s} {photo['width']}x{photo['height']}: {len(per[MODEL])} faces; "
              f"letterbox recipe vs mediapipe {per.get(f'{MODEL}_recipe_max_abs_diff')}", flush=True)
    doc_out = {
        "description": "BlazeFace full-range reference outputs (scripts/blazeface-reference.py). For each "
                       "case: the letterboxed input picture <png> (input tensor = pixel * (2/255) - 1, NHWC "
                       "RGB -> NCHW), the raw score logits of every anchor in <scores> (float32 LE), the 16 "
                       "raw regressors + logit of every anchor with score > 0.1 and of 12 random anchors, "
                       "the interpreter outputs decoded + weighted-NMS'd with the model's min_score_thresh "
                       "(detections: 0.6), and MediaPipe's own FaceDetection graph on the same PNG "
                       "(mediapipe_detections; its full-range graph keeps 0.6 even when the Python "
                       "solution is given min_detection_confidence=0.5). max_rel_diff = |a - b| / max(1, |b|); "
                       "far-off anchors have large negative logits, so absolute diffs there are float32 noise. "
                       "Boxes are [xmin, ymin, xmax, ymax] and keypoints [x, y], normalised to the "
                       "input picture (photo_detections: to the original photo in data/photos; "
                       "full_recipe_max_abs_diff compares them with the JSON's input.letterbox recipe "
                       "(cv2 warpAffine) + interpreter + decode + projection back to the photo).",
        "interpreter": "ai-edge-litert (LiteRT) Interpreter, default CPU (XNNPACK) delegate",
        "keypoints": ["right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                      "left_ear_tragion"],
        "max_abs_diff_numpy_vs_interpreter": diffs_all,
        "cases": cases,
        "photo_detections": photo_dets,
    }
    (OUT / "reference.json").write_text(json.dumps(doc_out, indent=1) + "\n")
    print("max abs diff numpy port vs interpreter:", json.dumps(diffs_all))
    return 0


def compare(mine: List[Dict[str, Any]], theirs: List[Dict[str, Any]]) -> Optional[Dict[str, float]]:
    """Largest difference of score/box/keypoints between two detection lists (same count, by score)."""
    if len(mine) != len(theirs):
        return {"count_mismatch": float(len(mine) - len(theirs))}
    a = sorted(mine, key=lambda d: -d["score"])
    b = sorted(theirs, key=lambda d: -d["score"])
    worst = {"score": 0.0, "box": 0.0, "keypoints": 0.0}
    for p, q in zip(a, b):
        worst["score"] = max(worst["score"], abs(p["score"] - q["score"]))
        worst["box"] = max(worst["box"], max(abs(u - v) for u, v in zip(p["box"], q["box"])))
        worst["keypoints"] = max(worst["keypoints"], max(abs(u - v) for pk, qk in zip(p["keypoints"], q["keypoints"])
                                                         for u, v in zip(pk, qk)))
    return worst


if __name__ == "__main__":
    sys.exit(main())
