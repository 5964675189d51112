#!/usr/bin/env bash
# `masa bench gpu`: bad arguments are usage errors; without a usable GPU (or in a CPU-only build)
# it exits 3 with a message naming the GPU, as `masa check`; on a GPU machine a tiny kernels +
# step run prints both tables. tools/bench_gpu_torch.py: --help works without CUDA, and without
# torch.cuda it exits 3 with a message.
# Usage: cli_bench_gpu.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
fail=0
. "$src/tests/lib_cli.sh"
py=/usr/bin/python3
[ -x "$src/.venv/bin/python" ] && py="$src/.venv/bin/python"
export MASA_SOURCE_DIR="$src"

expect "unknown option is a usage error" 1 "usage: masa bench gpu" -- "$masa" bench gpu --bogus
expect "unknown part is named" 1 "unknown part 'gpu'" -- "$masa" bench gpu --parts kernels,gpu
expect "torch alone is refused" 1 "torch adds a column" -- "$masa" bench gpu --parts torch
expect "unknown --set key" 1 "unknown key 'bench.nope'" -- "$masa" bench gpu --set bench.nope=1
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && \
   "$masa" bench gpu --parts kernels --set bench.repeats=0 2>&1 | grep -q "bench.repeats"; then
  # A GPU and a CUDA build: a small run of both parts, without the PyTorch side.
  small=(--set aug.view_size=128 --set data.batch_size=1 --set data.workers=2 --set bench.rois=16
         --set bench.repeats=1 --set bench.warmup=0 --set bench.torch=false)
  expect "kernels table on the GPU" 0 "^fpn conv3x3 256 @32 " -- "$masa" bench gpu --parts kernels "${small[@]}"
  expect "step table on the GPU" 0 "^fp32 " -- "$masa" bench gpu --parts step "${small[@]}"
else
  expect "no GPU: exit 3 naming the GPU" 3 "masa bench gpu: .*GPU" -- "$masa" bench gpu
  expect "no GPU: exit 3 with --parts step" 3 "GPU" -- "$masa" bench gpu --parts step --set data.batch_size=2
fi

expect "bench_gpu_torch.py --help" 0 "usage: bench_gpu_torch.py" -- "$py" "$src/tools/bench_gpu_torch.py" --help
expect "bench_gpu_torch.py bad --precisions" 2 "precisions" -- "$py" "$src/tools/bench_gpu_torch.py" --precisions fp16
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
  expect "bench_gpu_torch.py without CUDA exits 3" 3 "torch.cuda is not available\|cannot import torch" -- \
    "$py" "$src/tools/bench_gpu_torch.py" --kernels /nonexistent.json
fi
exit $fail
