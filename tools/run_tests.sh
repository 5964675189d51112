#!/usr/bin/env bash
# Builds everything (CUDA kernels included when nvcc is present) and runs the whole test suite:
# PyTorch oracles, finite-difference gradient checks, core and CLI tests.
# Usage: tools/run_tests.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
build=${1:-build}
shift || true
jobs=$(nproc)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
