#!/usr/bin/env bash
# Trains the 128 px models, in two lanes meant to run side by side on one core each:
#
#   scripts/train-128.sh faces  &   # the faces' tokenizer, then iLAT, Taming, ImageBART
#   scripts/train-128.sh people &   # the people's tokenizer, then the two pose models
#   scripts/train-128.sh gans       # HiT and its convolutional baseline (both at once)
#
# Every trainer resumes its run folder (`runs/<name>128`), and a finished run returns at
# once, so running a lane again after a restart continues where it stopped. A run
# without a run folder warm-starts from its snapshot in `models/in-training/` when the
# repository has one (what a session commits before it ends), or takes it as its output
# when the snapshot is marked FINISHED. A finished tokenizer is
# copied into `runs/models128/`, the models folder the token models train on; each
# token model waits there for its tokenizer.
#
# Environment: TESSERA (the binary, default target/release/tessera), TESSERA_DATA, NICE.
set -euo pipefail
cd "$(dirname "$0")/.."

TESSERA=${TESSERA:-target/release/tessera}
NICE=${NICE:-5}
STAGE=runs/models128
SNAPSHOTS=models/in-training
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}

say() { printf '[train-128] %s\n' "$*"; }

# run NAME [--grow DIR | --warm DIR] ARGS...: one training command. A new run folder
# starts from the snapshot models/in-training/NAME when there is one, else grown from
# DIR (GANs) or warm-started from DIR; a snapshot marked FINISHED is the run's output as
# it is, not trained again.
run() {
    local name=$1
    shift
    if [ ! -d "runs/$name" ] && [ -e "$SNAPSHOTS/$name/FINISHED" ]; then
        mkdir -p "runs/$name-out"
        cp "$SNAPSHOTS/$name"/*.bpk "$SNAPSHOTS/$name"/*.json "runs/$name-out/"
        say "$name: finished, its snapshot copied to runs/$name-out"
        return
    fi
    local start=()
    case "${1:-}" in
    --grow) start=(--grow-from "$2") && shift 2 ;;
    --warm) start=(--warm-start "$2") && shift 2 ;;
    esac
    local warm=()
    if [ ! -d "runs/$name" ] && [ -d "$SNAPSHOTS/$name" ]; then
        warm=(--warm-start "$SNAPSHOTS/$name")
    elif [ ! -d "runs/$name" ]; then
        warm=("${start[@]}")
    fi
    say "$name: $*"
    nice -n "$NICE" "$TESSERA" "$@" --run "runs/$name" --out "runs/$name-out" "${warm[@]}" \
        >>"runs/$name.log" 2>&1
}

# promote RUN NAME: the finished tokenizer of RUN into the staging models folder as NAME.
promote() {
    mkdir -p "$STAGE"
    for ext in bpk json progress.json; do
        cp "runs/$1-out/vqgan.$ext" "$STAGE/$2.$ext"
    done
    say "$2 promoted to $STAGE"
}

# token NAME [--warm DIR] ARGS...: a token model trained on the staged tokenizers.
token() {
    local name=$1 start=()
    shift
    if [ "${1:-}" = --warm ]; then
        start=(--warm "$2")
        shift 2
    fi
    run "$name" "${start[@]}" --models "$STAGE" train "$@"
}

# midpoint: Taming's export at its midpoint, named as the iLAT it starts (its step count
# not kept: iLAT's schedule counts its own steps). Not when Taming's run is past it.
MIDPOINT=runs/taming128-midpoint
midpoint() {
    local step
    step=$(sed -n 's/.*"step":\([0-9]*\).*/\1/p' runs/taming128-out/taming.progress.json)
    if [ ! -d "$MIDPOINT" ] && [ "$step" = 2500 ]; then
        mkdir -p "$MIDPOINT"
        cp runs/taming128-out/taming.bpk "$MIDPOINT/ilat.bpk"
        cp runs/taming128-out/taming.json "$MIDPOINT/ilat.json"
        say "Taming at 2,500 steps kept in $MIDPOINT"
    fi
}

case "${1:-}" in
faces)
    run vqgan128 train vqgan --config scripts/vqgan128-train.json
    promote vqgan128 vqgan
    # iLAT trained locally from the first step stays behind Taming* (trained on every
    # token, where iLAT's targets are the masked 5-50 %), at 64 px and at 128 px even
    # with 30 % whole masks; begun as Taming (its run's first 2,500 steps) and made
    # local for 2,500 more, it overtakes it (models/README.md).
    token taming128 taming --steps 5000 --stop-at 2500
    midpoint
    token ilat128 --warm "$MIDPOINT" ilat --config scripts/ilat128-train.json
    token taming128 taming --steps 5000
    token imagebart128-step1 imagebart --step 1 --steps 5000
    token imagebart128-step2 imagebart --step 2 --steps 5000
    ;;
people)
    run vqgan128-people train vqgan --config scripts/vqgan128-people-train.json
    promote vqgan128-people people-vqgan
    token pose-ilat128 pose --method ilat --steps 4000
    token pose-taming128 pose --method taming --steps 4000
    ;;
gans)
    run hit128a --grow models train hit --arch hit --size 128 --steps 6000 --batch 8 &
    run conv128 --grow models train hit --arch conv --size 128 --config scripts/conv128-train.json &
    wait
    ;;
*)
    echo "usage: scripts/train-128.sh faces|people|gans" >&2
    exit 2
    ;;
esac
say "${1} done"
