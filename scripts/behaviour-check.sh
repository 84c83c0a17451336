#!/usr/bin/env bash
# Runs a fixed set of commands with one `tessera` binary and writes what they produce
# into a folder, so that two builds (say, before and after a restructuring) can be
# compared byte for byte:
#
#   scripts/behaviour-check.sh BIN OUT      # e.g. target/release/tessera /tmp/after
#   diff -r /tmp/before /tmp/after          # nothing printed: the same behaviour
#
# Every edit method on a sample face with a sketch and on a large photo (a sample face
# upscaled to 1600x1960, made here with Pillow from data/.venv), every repose method,
# every sampler, and `eval vqgan --json` on the held-out faces; all on the CPU backend
# with fixed seeds. Needs the data of scripts/fetch-data.sh.
set -euo pipefail

BIN="$(realpath "$1")"
OUT="$2"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${TESSERA_DATA:-$REPO/data}"
S="$REPO/assets/samples"
mkdir -p "$OUT"
INPUTS="$(mktemp -d)"
trap 'rm -rf "$INPUTS"' EXIT

"$DATA/.venv/bin/python" - "$S/faces_full/000910.jpg" "$INPUTS" <<'PY'
import sys
from PIL import Image, ImageDraw
face = Image.open(sys.argv[1]).convert("RGB").resize((1600, 1960), Image.LANCZOS)
face.save(f"{sys.argv[2]}/large.png")
mask = Image.new("L", face.size, 0)
ImageDraw.Draw(mask).ellipse((560, 1280, 1040, 1520), fill=255)  # the mouth
mask.save(f"{sys.argv[2]}/large-mask.png")
PY

run() { "$BIN" --backend cpu "$@" >/dev/null 2>"$INPUTS/stderr" || { cat "$INPUTS/stderr" >&2; exit 1; }; }
for method in ilat taming taming-star imagebart; do
    run edit --image "$S/faces/000910.png" --mask "$S/edit/000910-mask.png" \
        --sketch "$S/edit/000910-smile.png" --method "$method" --seed 7 \
        --out "$OUT/edit-face-$method.png"
    run edit --image "$INPUTS/large.png" --mask "$INPUTS/large-mask.png" \
        --method "$method" --seed 7 --out "$OUT/edit-large-$method.png"
done
for method in ilat taming taming-star; do
    run repose --image "$S/people/single_cam03.png" --pose "$S/people/single_cam03.pose.json" \
        --to "$S/people/single_cam03-frame75.pose.json" --method "$method" --seed 5 \
        --out "$OUT/repose-$method.png"
done
for model in imagebart hit conv; do
    run sample --model "$model" --seed 3 --n 4 --out "$OUT/sample-$model.png"
done
"$BIN" --backend cpu eval vqgan --json 2>/dev/null >"$OUT/eval-vqgan.json"
echo "wrote $(ls "$OUT" | wc -l) files into $OUT"
