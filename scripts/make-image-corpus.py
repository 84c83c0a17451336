"""Writes tests/corpus/images: one small file per kind of picture a user may open
(issue "Reliability"), each named for what it is. Run once with Pillow
(`python3 -m venv v && v/bin/pip install pillow && v/bin/python scripts/make-image-corpus.py`);
the files are committed, so tests need no Python. The fuzzer's findings are added to the
same folder by hand, named `fuzz-*`."""
import io, struct, zlib
from pathlib import Path
from PIL import Image

out = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "images"
out.mkdir(parents=True, exist_ok=True)

def gradient(mode, size=(48, 32)):
    img = Image.new("RGB", size)
    img.putdata([((x * 5) % 256, (y * 8) % 256, 90) for y in range(size[1]) for x in range(size[0])])
    return img.convert(mode)

gradient("RGB").save(out / "rgb.png")
gradient("L").save(out / "grey.png")
gradient("RGBA").save(out / "rgba.png")
gradient("P").save(out / "palette.png")
gradient("I;16").save(out / "grey16.png")
gradient("RGB").save(out / "rgb.jpg", quality=90)
gradient("L").save(out / "grey.jpg", quality=90)
gradient("CMYK").save(out / "cmyk.jpg", quality=90)
frames = [gradient("RGB").rotate(a) for a in (0, 90, 180)]
frames[0].save(out / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
gradient("RGB").save(out / "rgb.webp", lossless=True)
gradient("RGB").save(out / "rgb.bmp")
gradient("RGB").save(out / "rgb.tiff")
gradient("RGB", (1, 1)).save(out / "tiny-1x1.png")
gradient("RGB", (3000, 17)).save(out / "wide-3000x17.png")
# Failures.
(out / "empty.png").write_bytes(b"")
(out / "text-named.png").write_bytes(b"this is not a picture, whatever its name says\n")
whole = (out / "rgb.png").read_bytes()
(out / "truncated.png").write_bytes(whole[: len(whole) // 2])
jpeg = (out / "rgb.jpg").read_bytes()
(out / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
corrupt = bytearray(whole)
for i in range(60, len(corrupt), 7):
    corrupt[i] ^= 0x5A
(out / "corrupt.png").write_bytes(bytes(corrupt))

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

# A decompression bomb: a valid PNG header declaring 60000x60000 pixels, with one
# small compressed row of data (the decoder must refuse before allocating).
ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
(out / "bomb-60000x60000.png").write_bytes(bomb)
# Within the decoder's side limit but over the editor's pixel budget.
ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
big = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
(out / "bomb-20000x20000.png").write_bytes(big)
print("wrote", len(list(out.iterdir())), "files to", out)
