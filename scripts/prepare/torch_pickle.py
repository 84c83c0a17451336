"""Torch checkpoints without torch: a pure-Python reader for legacy and zip
``torch.save`` files and TorchScript archives (tensors become NumPy arrays, TorchScript
modules generic objects), a TorchScript module-tree walker, and a reproducible
safetensors writer."""

from __future__ import annotations

import collections
import io
import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .common import commit_file

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


# --------------------------------------------------------------------------
# TorchScript archives: code constants and the module tree
# --------------------------------------------------------------------------

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
