#!/usr/bin/env bash
# Fuzzes the picture and project loaders for five minutes each (tests/fuzz.rs).
# A panicking input lands in target/fuzz-findings/; copy it into tests/corpus/images
# as `fuzz-<what>.<ext>` (a regression input), fix the loader, and run again.
set -euo pipefail
cd "$(dirname "$0")/.."
TESSERA_FUZZ_SECONDS="${TESSERA_FUZZ_SECONDS:-300}" \
    cargo test --release --test fuzz -- --nocapture --test-threads 2
