"""Computes the FID InceptionV3's features of one picture with numpy, by interpreting
the module tree that scripts/prepare_data.py wrote beside the weights
(data/nets/inception_v3_fid.json) -- an implementation independent of the Rust one in
src/nn/inception.rs -- and writes them to tests/reference/inception_chelsea.json for the
test that holds the Rust port to them. Run once (numpy and Pillow in a venv):

    python3 -m venv v && v/bin/pip install numpy pillow
    v/bin/python scripts/inception-reference.py
"""
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
NETS = ROOT / "data" / "nets"
SIDE = 299


def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype="<f4").reshape(info["shape"])
    return out


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, w, stride, padding):
    """x: [C, H, W], w: [O, C, kh, kw] -> [O, H', W'] (im2col)."""
    ph, pw = pair(padding)
    x = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    cols = np.empty((c, kh, kw, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = x[:, i : i + stride * oh : stride, j : j + stride * ow : stride]
    return (w.reshape(o, -1) @ cols.reshape(c * kh * kw, oh * ow)).reshape(o, oh, ow)


def pool(x, kind, kernel, stride, padding, count_include_pad=True):
    k, s, p = pair(kernel)[0], pair(stride)[0], pair(padding)[0]
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (p, p), (p, p)), constant_values=fill)
    ones = np.pad(np.ones(x.shape[1:], np.float32), ((p, p), (p, p)))
    c, h, w = xp.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    windows = np.stack([xp[:, i : i + s * oh : s, j : j + s * ow : s] for i in range(k) for j in range(k)])
    if kind == "max":
        return windows.max(axis=0)
    total = windows.sum(axis=0)
    if count_include_pad:
        return total / (k * k)
    counts = np.stack([ones[i : i + s * oh : s, j : j + s * ow : s] for i in range(k) for j in range(k)]).sum(axis=0)
    return total / counts


class Net:
    def __init__(self):
        self.w = read_safetensors(NETS / "inception_v3_fid.safetensors")
        tree = json.loads((NETS / "inception_v3_fid.json").read_text())
        self.modules = tree["modules"]
        self.eps = tree["eps"]

    def children(self, path):
        depth = path.count(".") + 1
        return [k for k in self.modules if k.startswith(path + ".") and k.count(".") == depth]

    def run(self, path, x):
        m = self.modules[path]
        kind = m["type"]
        if kind == "Conv2dLayer":
            y = conv2d(x, self.w[path + ".weight"], m["stride"], m["padding"])
            mean, var, beta = (self.w[f"{path}.{n}"] for n in ("mean", "var", "beta"))
            y = (y - mean[:, None, None]) / np.sqrt(var[:, None, None] + self.eps) + beta[:, None, None]
            return np.maximum(y, 0.0)
        if kind == "MaxPool2d":
            return pool(x, "max", m["kernel_size"], m["stride"], m["padding"])
        if kind == "AvgPool2d":
            return pool(x, "avg", m["kernel_size"], m["stride"], m["padding"], m["count_include_pad"])
        if kind == "Sequential":
            for child in self.children(path):
                x = self.run(child, x)
            return x
        sub = lambda name: self.run(f"{path}.{name}", x)
        if kind in ("InceptionA", "InceptionC"):
            return np.concatenate([sub("conv"), sub("tower"), sub("tower_1"), sub("tower_2")])
        if kind == "InceptionB":
            return np.concatenate([sub("conv"), sub("tower"), sub("pool")])
        if kind == "InceptionD":
            return np.concatenate([sub("tower"), sub("tower_1"), sub("pool")])
        if kind == "InceptionE":
            a = self.run(f"{path}.tower_conv", x)
            b = self.run(f"{path}.tower_1_conv_1", self.run(f"{path}.tower_1_conv", x))
            t2 = self.run(f"{path}.tower_2_conv", self.run(f"{path}.tower_2_pool", x))
            return np.concatenate([
                sub("conv"),
                self.run(f"{path}.tower_mixed_conv", a),
                self.run(f"{path}.tower_mixed_conv_1", a),
                self.run(f"{path}.tower_1_mixed_conv", b),
                self.run(f"{path}.tower_1_mixed_conv_1", b),
                t2,
            ])
        raise ValueError(f"unknown module {path}: {kind}")


def resize(rgb):
    """Bilinear to 299x299 with torch's align_corners=False, values v/128 - 1."""
    h, w, _ = rgb.shape
    def coords(n):
        x = np.maximum((np.arange(SIDE) + 0.5) * n / SIDE - 0.5, 0.0)
        lo = np.minimum(np.floor(x).astype(int), n - 1)
        return lo, np.minimum(lo + 1, n - 1), (x - lo).astype(np.float32)
    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    img = rgb.astype(np.float32)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return (out / 128.0 - 1.0).transpose(2, 0, 1)


def main():
    picture = ROOT / "assets" / "samples" / "imagenet" / "chelsea.png"
    rgb = np.asarray(Image.open(picture).convert("RGB"))
    net = Net()
    features = net.run("layers", resize(rgb)).reshape(-1)
    assert features.shape == (2048,), features.shape
    out = ROOT / "tests" / "reference" / "inception_chelsea.json"
    out.write_text(json.dumps({
        "picture": "assets/samples/imagenet/chelsea.png",
        "made_by": "scripts/inception-reference.py (numpy, from data/nets/inception_v3_fid.json)",
        "features": [round(float(v), 6) for v in features],
    }) + "\n")
    print("wrote", out, "mean", features.mean(), "max", features.max())


if __name__ == "__main__":
    main()
