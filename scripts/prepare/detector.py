"""The detector step: MediaPipe's full-range BlazeFace face detector
(``face_detection_full_range_sparse.tflite`` inside the pinned ``mediapipe`` wheel) ->
nets/blazeface_full.safetensors + .json, read with :mod:`tflite_flatbuffer` instead of
TensorFlow.

Only the full-range model (192 px, 2304 anchors) is converted: on the group photos of
data/photos (friends_t1, ultralytics_bus) the short-range one (128 px, made for selfie
distance) finds no face at all while the full-range one finds them all, and on close-ups
both work.

The JSON describes the network as an ordered list of operations on named tensors, in
burn's NCHW layout, with every number the port needs: convolution strides, the exact
zero padding TFLite applies for SAME/VALID (``pad`` = [top, bottom, left, right], often
asymmetric), fused activations, channel/spatial PAD amounts, pooling, resize and
depth-to-space parameters, reshapes and concatenations -- plus the input normalisation,
the SSD anchor options, the box/keypoint decoding and the weighted non-maximum
suppression of MediaPipe's face_detection graphs.  float16 weights (DEQUANTIZE ops) and
sparse ones (DENSIFY ops) are folded into plain float32 constants; convolution weights
are stored as ``[out, in / groups, kh, kw]`` (burn's Conv2d; depthwise convs have
``groups = channels`` and ``[channels, 1, kh, kw]``).  The safetensors file also holds
the anchor table (``anchors``: [N, 4] = x_center, y_center, w, h, normalised).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from .common import commit_file, log, read_member
from .torch_pickle import save_safetensors
from .tflite_flatbuffer import Model, densify, read_model

MEDIAPIPE_PACKAGE = "mediapipe==0.10.21"
MEDIAPIPE_LICENCE = "Apache-2.0"
KEYPOINTS = ["right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"]


@dataclass(frozen=True)
class Detector:
    """A BlazeFace variant: wheel member, output stem and MediaPipe graph options."""

    key: str
    member: str
    size: int
    strides: Tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    num_boxes: int
    min_score_thresh: float
    graph: str


# The full-range model, the only one Tessera uses (see the module docstring).
DETECTOR = Detector("full", "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
                    192, (4,), 0.0, 2304, 0.6,
                    "mediapipe/modules/face_detection/face_detection_full_range.pbtxt")


def detector_paths(nets: Path) -> List[Path]:
    """Every file the detector step writes."""
    return [nets / f"blazeface_{DETECTOR.key}.{ext}" for ext in ("safetensors", "json")]


# --- graph conversion -------------------------------------------------------

NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def same_pad(size: int, kernel: int, stride: int, dilation: int) -> Tuple[int, int]:
    """TFLite's SAME padding (before, after) of one spatial axis: out = ceil(size / stride),
    the total is split with the smaller half first."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_pads(padding: str, shape_nhwc: List[int], kh: int, kw: int, sh: int, sw: int,
              dh: int = 1, dw: int = 1) -> List[int]:
    """[top, bottom, left, right] zero padding for a TFLite conv/pool."""
    if padding == "VALID":
        return [0, 0, 0, 0]
    top, bottom = same_pad(shape_nhwc[1], kh, sh, dh)
    left, right = same_pad(shape_nhwc[2], kw, sw, dw)
    return [top, bottom, left, right]


def nchw(shape: List[int]) -> List[int]:
    """A TFLite NHWC shape in NCHW order (other ranks unchanged)."""
    return [shape[0], shape[3], shape[1], shape[2]] if len(shape) == 4 else list(shape)


def convert_graph(model: Model) -> Tuple[Dict[str, np.ndarray], List[Dict[str, Any]], Dict[int, str]]:
    """Fold constants and translate the operators into NCHW ops; returns (weights, ops, tensor names)."""
    const: Dict[int, np.ndarray] = {}
    for t in model.tensors:
        if t.data is not None:
            const[t.index] = densify(t.data, t.shape, t.sparsity) if t.sparsity is not None else t.data
    names: Dict[int, str] = {model.inputs[0]: "input"}
    for i in model.outputs:
        last = model.tensors[i].shape[-1]
        names[i] = "regressors" if last == 16 else "classificators" if last == 1 else model.tensors[i].name
    weights: Dict[str, np.ndarray] = {}
    ops: List[Dict[str, Any]] = []
    counters: Dict[str, int] = {}

    def tname(i: int) -> str:
        if i not in names:
            names[i] = f"t{len(ops):03d}"
        return names[i]

    def label(kind: str) -> str:
        n = counters.get(kind, 0)
        counters[kind] = n + 1
        return f"{kind}{n:02d}"

    for op in model.operators:
        ins, outs = op.inputs, op.outputs
        if op.op in ("DEQUANTIZE", "DENSIFY"):
            if ins[0] not in const:
                raise ValueError(f"{op.op} of a non-constant tensor {model.tensors[ins[0]].name}")
            const[outs[0]] = const[ins[0]].astype(np.float32) if op.op == "DEQUANTIZE" else const[ins[0]]
            continue
        src = model.tensors[ins[0]]
        dst = model.tensors[outs[0]]
        entry: Dict[str, Any] = {"op": None, "input": tname(ins[0])}
        o = op.options
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = const[ins[1]].astype(np.float32)  # CONV: [out, kh, kw, in]; DEPTHWISE: [1, kh, kw, out]
            b = const[ins[2]].astype(np.float32) if len(ins) > 2 and ins[2] >= 0 else np.zeros(dst.shape[3], np.float32)
            c_in = src.shape[3]
            if op.op == "CONV_2D":
                w = w.transpose(0, 3, 1, 2)
                groups = 1
            else:
                if o["depth_multiplier"] != 1 or w.shape[3] != c_in:
                    raise ValueError("depthwise conv with depth_multiplier != 1 is not supported")
                w = w.transpose(3, 0, 1, 2)
                groups = c_in
            name = label("conv")
            weights[f"{name}.weight"] = np.ascontiguousarray(w)
            weights[f"{name}.bias"] = b
            kh, kw = w.shape[2], w.shape[3]
            entry.update(op="conv2d", name=name, weight=f"{name}.weight", bias=f"{name}.bias",
                         in_channels=c_in, out_channels=w.shape[0], groups=groups,
                         kernel=[kh, kw], stride=[o["stride_h"], o["stride_w"]],
                         dilation=[o["dilation_h"], o["dilation_w"]], padding=o["padding"],
                         pad=conv_pads(o["padding"], src.shape, kh, kw, o["stride_h"], o["stride_w"],
                                       o["dilation_h"], o["dilation_w"]),
                         activation=o["activation"].lower())
        elif op.op == "MAX_POOL_2D":
            kh, kw = o["filter_h"], o["filter_w"]
            entry.update(op="max_pool2d", kernel=[kh, kw], stride=[o["stride_h"], o["stride_w"]],
                         padding=o["padding"],
                         pad=conv_pads(o["padding"], src.shape, kh, kw, o["stride_h"], o["stride_w"]),
                         activation=o["activation"].lower())
        elif op.op == "PAD":
            p = const[ins[1]].astype(int).tolist()  # NHWC [[before, after]] x 4
            entry.update(op="pad", pads=[p[0], p[3], p[1], p[2]], value=0.0)
        elif op.op == "ADD":
            entry.pop("input")
            entry.update(op="add", inputs=[tname(ins[0]), tname(ins[1])], activation=o["activation"].lower())
        elif op.op == "RELU":
            entry.update(op="relu")
        elif op.op == "RESIZE_BILINEAR":
            size = const[ins[1]].astype(int).tolist()
            entry.update(op="resize_bilinear", size=size, align_corners=o["align_corners"],
                         half_pixel_centers=o["half_pixel_centers"])
        elif op.op == "DEPTH_TO_SPACE":
            entry.update(op="depth_to_space", block_size=o["block_size"])
        elif op.op == "RESHAPE":
            entry.update(op="reshape", permute_before=[0, 2, 3, 1] if len(src.shape) == 4 else None,
                         shape=list(dst.shape))
        elif op.op == "CONCATENATION":
            entry.pop("input")
            axis = o["axis"] % len(dst.shape)
            entry.update(op="concat", inputs=[tname(i) for i in ins],
                         axis=NHWC_TO_NCHW_AXIS[axis] if len(dst.shape) == 4 else axis)
            if o["activation"] != "NONE":
                raise ValueError("fused activation on CONCATENATION is not supported")
        else:
            raise ValueError(f"unsupported operator {op.op}")
        entry["output"] = tname(outs[0])
        entry["in_shape"] = nchw(src.shape)
        entry["out_shape"] = nchw(dst.shape)
        entry["tflite"] = dst.name.split(";")[0]
        ops.append(entry)
    for i in model.outputs:
        if not any(e["output"] == names[i] for e in ops):
            raise ValueError(f"graph output {names[i]} is never produced")
    return weights, ops, names


# --- anchors (MediaPipe SsdAnchorsCalculator, fixed_anchor_size) -------------

def anchor_options(d: Detector) -> Dict[str, Any]:
    """SsdAnchorsCalculatorOptions of face_detection.pbtxt with the variant's overrides."""
    return {
        "num_layers": len(d.strides), "min_scale": 0.1484375, "max_scale": 0.75,
        "input_size_height": d.size, "input_size_width": d.size,
        "anchor_offset_x": 0.5, "anchor_offset_y": 0.5, "strides": list(d.strides),
        "aspect_ratios": [1.0], "fixed_anchor_size": True,
        "interpolated_scale_aspect_ratio": d.interpolated_scale_aspect_ratio,
        "reduce_boxes_in_lowest_layer": False,
    }


def make_anchors(opt: Dict[str, Any]) -> np.ndarray:
    """The anchor table [N, 4] (x_center, y_center, w, h).

    Layers with equal strides are merged: for each run of equal strides, every cell
    of the ceil(input / stride) grid (row-major, y outer) gets one anchor per aspect
    ratio per layer in the run, plus one per layer for the interpolated scale when
    ``interpolated_scale_aspect_ratio > 0``.  Centres are ((x + 0.5) / W, (y + 0.5) / H);
    with ``fixed_anchor_size`` every w and h is 1 (min/max scale are then unused).
    """
    if not opt["fixed_anchor_size"]:
        raise ValueError("only fixed_anchor_size anchors are implemented")
    strides = opt["strides"]
    anchors = []
    layer = 0
    while layer < opt["num_layers"]:
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += len(opt["aspect_ratios"]) + (1 if opt["interpolated_scale_aspect_ratio"] > 0 else 0)
            last += 1
        fh = -(-opt["input_size_height"] // strides[layer])
        fw = -(-opt["input_size_width"] // strides[layer])
        for y in range(fh):
            for x in range(fw):
                for _ in range(per_cell):
                    anchors.append(((x + opt["anchor_offset_x"]) / fw, (y + opt["anchor_offset_y"]) / fh, 1.0, 1.0))
        layer = last
    return np.array(anchors, dtype=np.float32)


def decode_options(d: Detector) -> Dict[str, Any]:
    """TensorsToDetectionsCalculatorOptions + NonMaxSuppressionCalculatorOptions, with the recipe."""
    return {
        "num_boxes": d.num_boxes, "num_coords": 16, "num_classes": 1,
        "box_coord_offset": 0, "keypoint_coord_offset": 4, "num_keypoints": 6, "num_values_per_keypoint": 2,
        "box_format": "XYWH (reverse_output_order: true): raw[0..4] = x_center, y_center, w, h; "
                      "keypoint k at raw[4 + 2k], raw[5 + 2k] = x, y",
        "x_scale": float(d.size), "y_scale": float(d.size), "w_scale": float(d.size), "h_scale": float(d.size),
        "apply_exponential_on_box_size": False,
        "sigmoid_score": True, "score_clipping_thresh": 100.0, "min_score_thresh": d.min_score_thresh,
        "keypoints": KEYPOINTS,
        "recipe": [
            "score = sigmoid(clamp(classificators[i], -100, 100)); keep anchor i if score >= min_score_thresh",
            "xc = raw[0] / x_scale * anchor.w + anchor.x_center; yc = raw[1] / y_scale * anchor.h + anchor.y_center",
            "w = raw[2] / w_scale * anchor.w; h = raw[3] / h_scale * anchor.h",
            "box = (xmin = xc - w/2, ymin = yc - h/2, xmax = xc + w/2, ymax = yc + h/2), normalised to the "
            "input tensor [0, 1]; drop boxes with w < 0 or h < 0",
            "keypoint k: x = raw[4+2k] / x_scale * anchor.w + anchor.x_center, "
            "y = raw[5+2k] / y_scale * anchor.h + anchor.y_center",
        ],
        "nms": {
            "algorithm": "WEIGHTED", "overlap_type": "INTERSECTION_OVER_UNION",
            "min_suppression_threshold": 0.3, "max_num_detections": -1,
            "recipe": [
                "sort the kept detections by score, descending",
                "while any remain: take the first (highest score) as the seed; the candidates are every "
                "remaining detection (the seed included) whose IoU with the seed is > 0.3, the others remain",
                "IoU = intersection / (area_a + area_b - intersection), 0 when the boxes do not overlap",
                "output the seed with its score, but with xmin, ymin, xmax, ymax and every keypoint "
                "replaced by the score-weighted mean over the candidates",
                "repeat with the remaining detections",
            ],
        },
    }


def input_spec(d: Detector) -> Dict[str, Any]:
    """The input tensor and how MediaPipe makes it (ImageToTensorCalculator)."""
    return {
        "name": "input", "shape": [1, 3, d.size, d.size], "layout": "NCHW", "channels": "RGB",
        "range": [-1.0, 1.0],
        "normalise": "value = pixel * (2 / 255) - 1 in float32, pixel the 8-bit RGB value",
        "letterbox": "MediaPipe's ImageToTensorCalculator (keep_aspect_ratio, OpenCV path), reproduced within "
                     "3e-4 (mostly 1e-7) by scripts/blazeface-reference.py: side = max(W, H); tensor pixel (u, v), "
                     "u, v = 0..size-1, samples the image bilinearly (cv2 INTER_LINEAR, pixel centres at "
                     "integer coordinates, no half-pixel shift) at x = u * side / size + (W - side) / 2, "
                     "y = v * side / size + (H - side) / 2; samples outside the image are black "
                     "(BORDER_ZERO, i.e. -1.0). A normalised tensor point (un, vn) maps back to the image "
                     "pixel x = un * side + (W - side) / 2, y = vn * side + (H - side) / 2. Plain bilinear "
                     "aliases when side >> size; an antialiased downscale finds more small faces.",
    }


OPS_DOC = (
    "ops run in order; every tensor is NCHW float32 (rank 4) unless an op says otherwise. "
    "conv2d: zero-pad by pad = [top, bottom, left, right] (asymmetric for SAME with stride 2: "
    "pad explicitly, then convolve with padding 0), convolve (weight [out, in/groups, kh, kw], "
    "bias [out]), then the activation ('none' or 'relu'). max_pool2d: same pad rule, padded cells "
    "never win (here they are all 0 pads). pad: pads = [[before, after]] per NCHW axis, value 0. "
    "add: elementwise sum of inputs, then activation. relu: max(x, 0). resize_bilinear: TFLite "
    "semantics (align_corners, half_pixel_centers: src = (dst + 0.5) * in/out - 0.5, lower index "
    "clamped to 0, upper to in - 1). depth_to_space (TFLite DCR order): out[c, h*b + i, w*b + j] = "
    "in[(i*b + j) * C_out + c, h, w]. reshape: TFLite reshapes NHWC memory, so permute the NCHW "
    "tensor by permute_before ([0, 2, 3, 1] = NHWC) first, then reshape row-major to shape; the "
    "results are rank 3 [1, anchors, values], anchor index = (y * W + x) * per_cell + a. "
    "concat: along axis of the op's own rank."
)


def make_detector(wheel: Path, d: Detector, out: Path, config_out: Path) -> None:
    """Convert one BlazeFace ``.tflite`` to safetensors + a JSON graph description."""
    blob = read_member(wheel, d.member)
    model = read_model(blob)
    weights, ops, names = convert_graph(model)
    in_t = model.tensors[model.inputs[0]]
    if in_t.shape != [1, d.size, d.size, 3]:
        raise ValueError(f"unexpected input shape {in_t.shape}")
    outputs = [{"name": names[i], "shape": model.tensors[i].shape, "tflite": model.tensors[i].name}
               for i in model.outputs]
    shapes = {o["name"]: o["shape"] for o in outputs}
    if shapes != {"regressors": [1, d.num_boxes, 16], "classificators": [1, d.num_boxes, 1]}:
        raise ValueError(f"unexpected outputs {shapes}")
    aopt = anchor_options(d)
    anchors = make_anchors(aopt)
    if anchors.shape != (d.num_boxes, 4):
        raise ValueError(f"anchor count {anchors.shape[0]} != {d.num_boxes}")
    tensors = dict(weights)
    tensors["anchors"] = anchors
    tflite_sha = hashlib.sha256(blob).hexdigest()
    source = f"PyPI {MEDIAPIPE_PACKAGE} ({wheel.name}) {d.member}"
    save_safetensors(tensors, out, {
        "source": source,
        "origin": f"MediaPipe BlazeFace face detector ({d.key} range), {MEDIAPIPE_LICENCE}",
        "format": "converted from TFLite by scripts/prepare_data.py (float16/sparse weights -> float32); "
                  f"graph in {config_out.name}",
        "layout": "conv weights [out, in/groups, kh, kw]; anchors [N, 4] = x_center, y_center, w, h",
    })
    doc = {
        "format": "tessera-tflite-graph 1",
        "description": f"MediaPipe BlazeFace {d.key}-range face detector: {d.size}x{d.size} RGB in, "
                       f"{d.num_boxes} anchors x (16 box/keypoint regressors + 1 score logit) out.",
        "source": {"registry": "PyPI", "package": MEDIAPIPE_PACKAGE, "wheel": wheel.name, "path": d.member,
                   "sha256": tflite_sha, "licence": MEDIAPIPE_LICENCE, "graph": d.graph,
                   "tflite_description": model.description},
        "weights": out.name,
        "input": input_spec(d),
        "outputs": outputs,
        "ops_doc": OPS_DOC,
        "ops": ops,
        "anchors": {**aopt, "count": int(anchors.shape[0]), "tensor": "anchors",
                    "order": "per run of equal strides: y, x, anchor-in-cell"},
        "decode": decode_options(d),
    }
    tmp = config_out.with_name(config_out.name + ".partial")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    commit_file(tmp, config_out)
    n_params = sum(v.size for v in weights.values())
    kinds: Dict[str, int] = {}
    for e in ops:
        kinds[e["op"]] = kinds.get(e["op"], 0) + 1
    log(f"  {d.key}: {len(model.operators)} TFLite ops -> {len(ops)} ops "
        f"({', '.join(f'{k} {v}' for k, v in kinds.items())}), {n_params:,} parameters")


def make_detectors(wheel: Path, nets: Path) -> None:
    """Convert the full-range BlazeFace model (192 px) -> nets/blazeface_full.{safetensors,json}."""
    nets.mkdir(parents=True, exist_ok=True)
    out, config_out = detector_paths(nets)
    make_detector(wheel, DETECTOR, out, config_out)
