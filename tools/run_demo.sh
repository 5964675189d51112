#!/usr/bin/env bash
# The main job on this machine. For now: build, then benchmark the adapter's core ops
# (conv2d, DCNv2, RoIAlign forward+backward at MASA shapes) against PyTorch on this CPU.
# Later issues grow this into train -> track -> evaluate on the embedded demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
./build/masa bench ops --config configs/bench_ops.cfg "$@"
