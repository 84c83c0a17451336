"""A TensorFlow Lite model reader without TensorFlow: a minimal FlatBuffers decoder for
the parts of the ``.tflite`` schema (``tensorflow/lite/schema/schema.fbs``, file
identifier ``TFL3``) that small convolutional models use.

Read: operator codes, the first subgraph (tensors with shape, type, buffer, name,
quantization and sparsity; inputs; outputs; operators with their inputs, outputs and
builtin options), and the buffers.  Constant tensors come out as NumPy arrays, float16
ones as float16 (the model's DEQUANTIZE ops turn them into float32), sparse ones
(TFLite's block-sparse/CSR format, used with DENSIFY ops) as their values list plus
the sparsity description, which :func:`densify` turns into a dense array.

FlatBuffers in short: little-endian; the file starts with a u32 offset to the root
table; a table starts with an i32 ``soffset`` such that ``table - soffset`` is its
vtable (u16 vtable size, u16 table size, then one u16 offset per field, 0 = absent,
so the field takes its schema default); a field holding a table, vector or string
stores a u32 offset relative to the field's own position; a vector is a u32 length
then its elements (tables as u32 offsets relative to each element); a string is a
u32 length then UTF-8 bytes; a union is a u8 type field followed by an offset field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

# TensorType -> NumPy dtype (little endian).
TENSOR_TYPES = {
    0: ("FLOAT32", "<f4"), 1: ("FLOAT16", "<f2"), 2: ("INT32", "<i4"), 3: ("UINT8", "u1"),
    4: ("INT64", "<i8"), 6: ("BOOL", "?"), 7: ("INT16", "<i2"), 9: ("INT8", "i1"),
    10: ("FLOAT64", "<f8"),
}

# BuiltinOperator codes this reader knows by name (others are reported as BUILTIN_<n>).
BUILTIN_OPS = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL",
    19: "RELU", 21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR", 25: "SOFTMAX",
    32: "CUSTOM", 34: "PAD", 39: "TRANSPOSE", 41: "SUB", 54: "PRELU", 60: "PADV2",
    124: "DENSIFY",
}

PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


class Table:
    """One FlatBuffers table: field accessors by field index (schema declaration order)."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        vsize = struct.unpack_from("<H", buf, vtable)[0]
        self._offsets = struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vtable + 4)

    def _field(self, index: int) -> Optional[int]:
        """Absolute position of field ``index``, or None if absent."""
        if index >= len(self._offsets) or self._offsets[index] == 0:
            return None
        return self.pos + self._offsets[index]

    def _deref(self, index: int) -> Optional[int]:
        """Absolute position of the object an offset field points to."""
        p = self._field(index)
        return None if p is None else p + struct.unpack_from("<I", self.buf, p)[0]

    def scalar(self, index: int, fmt: str, default: Any = 0) -> Any:
        """A scalar field (struct format ``fmt``, e.g. ``"<i"``)."""
        p = self._field(index)
        return default if p is None else struct.unpack_from(fmt, self.buf, p)[0]

    def table(self, index: int) -> Optional["Table"]:
        """A sub-table field."""
        p = self._deref(index)
        return None if p is None else Table(self.buf, p)

    def string(self, index: int) -> Optional[str]:
        """A string field."""
        p = self._deref(index)
        if p is None:
            return None
        n = struct.unpack_from("<I", self.buf, p)[0]
        return self.buf[p + 4:p + 4 + n].decode("utf-8")

    def vector(self, index: int, dtype: str) -> Optional[np.ndarray]:
        """A vector of scalars as a NumPy array (a copy, native endian)."""
        p = self._deref(index)
        if p is None:
            return None
        n = struct.unpack_from("<I", self.buf, p)[0]
        arr = np.frombuffer(self.buf, dtype=np.dtype(dtype), count=n, offset=p + 4)
        return arr.astype(arr.dtype.newbyteorder("="))

    def raw_vector(self, index: int) -> Optional[memoryview]:
        """A ``[ubyte]`` vector as a memoryview into the buffer (no copy)."""
        p = self._deref(index)
        if p is None:
            return None
        n = struct.unpack_from("<I", self.buf, p)[0]
        return memoryview(self.buf)[p + 4:p + 4 + n]

    def tables(self, index: int) -> List["Table"]:
        """A vector of tables."""
        p = self._deref(index)
        if p is None:
            return []
        n = struct.unpack_from("<I", self.buf, p)[0]
        out = []
        for i in range(n):
            e = p + 4 + 4 * i
            out.append(Table(self.buf, e + struct.unpack_from("<I", self.buf, e)[0]))
        return out


@dataclass
class Sparsity:
    """TFLite SparsityParameters: traversal order, block map and per-dimension metadata."""

    traversal_order: List[int]
    block_map: List[int]
    # per traversal dimension: ("DENSE", dense_size, None, None) or
    # ("SPARSE_CSR", 0, array_segments, array_indices)
    dim_metadata: List[tuple]


@dataclass
class Tensor:
    """One tensor of the subgraph; ``data`` is set for constants."""

    index: int
    name: str
    shape: List[int]
    type: str
    buffer: int
    data: Optional[np.ndarray] = None
    quantization: Optional[Dict[str, Any]] = None
    sparsity: Optional[Sparsity] = None


@dataclass
class Operator:
    """One operator: its builtin name, tensor indices (-1 = optional input absent) and options."""

    op: str
    inputs: List[int]
    outputs: List[int]
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Model:
    """The first subgraph of a TFLite model."""

    version: int
    description: str
    tensors: List[Tensor]
    inputs: List[int]
    outputs: List[int]
    operators: List[Operator]


class _Absent:
    """Stands in for an absent options table: every field takes its schema default."""

    def scalar(self, index: int, fmt: str, default: Any = 0) -> Any:
        return default

    def vector(self, index: int, dtype: str) -> None:
        return None


def _options(op: str, table: Optional[Table]) -> Dict[str, Any]:
    """Decode the builtin options table of the operators this reader supports
    (field indices as in schema.fbs)."""
    t: Any = table if table is not None else _Absent()
    if op == "CONV_2D":
        return {"padding": PADDING[t.scalar(0, "<b")], "stride_w": t.scalar(1, "<i"),
                "stride_h": t.scalar(2, "<i"), "activation": ACTIVATION[t.scalar(3, "<b")],
                "dilation_w": t.scalar(4, "<i", 1), "dilation_h": t.scalar(5, "<i", 1)}
    if op == "DEPTHWISE_CONV_2D":
        return {"padding": PADDING[t.scalar(0, "<b")], "stride_w": t.scalar(1, "<i"),
                "stride_h": t.scalar(2, "<i"), "depth_multiplier": t.scalar(3, "<i"),
                "activation": ACTIVATION[t.scalar(4, "<b")],
                "dilation_w": t.scalar(5, "<i", 1), "dilation_h": t.scalar(6, "<i", 1)}
    if op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return {"padding": PADDING[t.scalar(0, "<b")], "stride_w": t.scalar(1, "<i"),
                "stride_h": t.scalar(2, "<i"), "filter_w": t.scalar(3, "<i"),
                "filter_h": t.scalar(4, "<i"), "activation": ACTIVATION[t.scalar(5, "<b")]}
    if op == "CONCATENATION":
        return {"axis": t.scalar(0, "<i"), "activation": ACTIVATION[t.scalar(1, "<b")]}
    if op in ("ADD", "SUB", "MUL"):
        return {"activation": ACTIVATION[t.scalar(0, "<b")]}
    if op == "RESHAPE":
        shape = t.vector(0, "<i4")
        return {"new_shape": None if shape is None else [int(x) for x in shape]}
    if op == "RESIZE_BILINEAR":  # fields 0, 1 (new_height/width) are deprecated
        return {"align_corners": bool(t.scalar(2, "<B")), "half_pixel_centers": bool(t.scalar(3, "<B"))}
    if op == "DEPTH_TO_SPACE":
        return {"block_size": t.scalar(0, "<i")}
    return {}


def _sparsity(t: Optional[Table]) -> Optional[Sparsity]:
    """Decode SparsityParameters (dimension metadata with CSR segment/index vectors)."""
    if t is None:
        return None
    dims = []
    vec_types = {1: "<i4", 2: "<u2", 3: "u1"}  # SparseIndexVector: Int32Vector, Uint16Vector, Uint8Vector
    for d in t.tables(2):
        fmt = d.scalar(0, "<b")
        if fmt == 0:
            dims.append(("DENSE", d.scalar(1, "<i"), None, None))
        else:
            seg = d.table(3).vector(0, vec_types[d.scalar(2, "<B")])
            idx = d.table(5).vector(0, vec_types[d.scalar(4, "<B")])
            dims.append(("SPARSE_CSR", 0, seg.astype(np.int64), idx.astype(np.int64)))
    order = t.vector(0, "<i4")
    bmap = t.vector(1, "<i4")
    return Sparsity([int(x) for x in (order if order is not None else [])],
                    [int(x) for x in (bmap if bmap is not None else [])], dims)


def densify(values: np.ndarray, shape: List[int], sp: Sparsity) -> np.ndarray:
    """Expand a TFLite sparse constant into a dense array of ``shape``.

    The traversal order lists the original dimensions followed by the block
    dimensions (``block_map[k]`` = the original dimension block dimension k splits);
    each traversal dimension is either DENSE (every index from 0 to dense_size) or
    SPARSE_CSR (the indices ``array_indices[segments[p]:segments[p+1]]`` for the
    position ``p`` reached in the previous dimensions).  Values are stored in
    traversal order, one per leaf.
    """
    n_orig = len(shape)
    block_size = [1] * n_orig
    order = sp.traversal_order
    # block dimension sizes come from the DENSE metadata of the block dimensions
    for k, orig in enumerate(sp.block_map):
        md = sp.dim_metadata[n_orig + k]
        if md[0] != "DENSE":
            raise ValueError("sparse block dimensions are not supported")
        block_size[orig] = md[1]
    out = np.zeros(shape, dtype=values.dtype)
    pos_value = 0
    coords = [0] * len(order)

    def walk(level: int, parent_pos: int) -> None:
        nonlocal pos_value
        md = sp.dim_metadata[level]
        if md[0] == "DENSE":
            children = [(i, parent_pos * md[1] + i) for i in range(md[1])]
        else:
            seg, idx = md[2], md[3]
            children = [(int(idx[p]), p) for p in range(int(seg[parent_pos]), int(seg[parent_pos + 1]))]
        for value_index, child_pos in children:
            coords[level] = value_index
            if level + 1 == len(order):
                full = [0] * n_orig
                for lv, dim in enumerate(order):
                    if dim < n_orig:
                        full[dim] += coords[lv] * block_size[dim]
                    else:
                        full[sp.block_map[dim - n_orig]] += coords[lv]
                out[tuple(full)] = values[pos_value]
                pos_value += 1
            else:
                walk(level + 1, child_pos)

    walk(0, 0)
    if pos_value != values.size:
        raise ValueError(f"densify: used {pos_value} of {values.size} values")
    return out


def read_model(blob: bytes) -> Model:
    """Parse a ``.tflite`` file (the first subgraph) into :class:`Model`."""
    if blob[4:8] != b"TFL3":
        raise ValueError(f"not a TFLite model (identifier {blob[4:8]!r})")
    root = Table(blob, struct.unpack_from("<I", blob, 0)[0])
    codes = []
    for oc in root.tables(1):
        code = max(oc.scalar(0, "<b"), oc.scalar(3, "<i"))  # deprecated_builtin_code, builtin_code
        name = BUILTIN_OPS.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            name = f"CUSTOM:{oc.string(1)}"
        codes.append(name)
    buffers = []
    for b in root.tables(4):
        data = b.raw_vector(0)
        offset = b.scalar(1, "<Q")
        if (data is None or len(data) == 0) and offset > 1:  # large-model layout: data outside the flatbuffer
            data = memoryview(blob)[offset:offset + b.scalar(2, "<Q")]
        buffers.append(data)
    subgraphs = root.tables(2)
    if not subgraphs:
        raise ValueError("model has no subgraph")
    sg = subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tables(0)):
        shape = t.vector(0, "<i4")
        type_name, dtype = TENSOR_TYPES[t.scalar(1, "<b")]
        tensor = Tensor(i, t.string(3) or f"tensor_{i}", [int(x) for x in (shape if shape is not None else [])],
                        type_name, t.scalar(2, "<I"))
        q = t.table(4)
        if q is not None:
            scale = q.vector(2, "<f4")
            if scale is not None and len(scale):
                zp = q.vector(3, "<i8")
                tensor.quantization = {"scale": scale.tolist(),
                                       "zero_point": [] if zp is None else zp.tolist(),
                                       "quantized_dimension": q.scalar(6, "<i")}
        tensor.sparsity = _sparsity(t.table(6))
        data = buffers[tensor.buffer] if tensor.buffer < len(buffers) else None
        if data is not None and len(data):
            arr = np.frombuffer(bytes(data), dtype=np.dtype(dtype))
            arr = arr.astype(arr.dtype.newbyteorder("="))
            tensor.data = arr if tensor.sparsity is not None else arr.reshape(tensor.shape)
        tensors.append(tensor)
    ops = []
    for o in sg.tables(3):
        name = codes[o.scalar(0, "<I")]
        inputs = o.vector(1, "<i4")
        outputs = o.vector(2, "<i4")
        ops.append(Operator(name, [int(x) for x in inputs], [int(x) for x in outputs],
                            _options(name, o.table(4))))
    return Model(root.scalar(0, "<I"), root.string(3) or "", tensors,
                 [int(x) for x in sg.vector(1, "<i4")], [int(x) for x in sg.vector(2, "<i4")], ops)
