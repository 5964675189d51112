#!/usr/bin/env bash
# `--device`: training, embedding and tracking run through the device layer. On this CPU-only
# suite the guard device (core/device.h) stands in for a GPU: its memory is unreadable to host
# code except inside ops and explicit copies, so a path that finishes on it would be correct on
# a real GPU, and its results must equal the cpu device's bit for bit (same CPU twins, same
# order). The CUDA twins themselves are compared op by op by `masa check` on a GPU.
# Usage: cli_device.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
py=/usr/bin/python3
[ -x "$src/.venv/bin/python" ] && py="$src/.venv/bin/python"
. "$src/tests/lib_cli.sh"
cfg="$src/configs/demo.cfg"
"$masa" synth "$tmp/syn" --images 8 --seed 11 >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
"$masa" synth "$tmp/vid" --video --seqs 1 --frames 5 --size 128x160 --seed 3 >/dev/null 2>&1 || { echo "synth video failed"; exit 1; }
export OMP_NUM_THREADS=1
same_weights() {
  "$py" -c "
import h5py, numpy as np, sys
a = h5py.File('$1', 'r'); b = h5py.File('$2', 'r')
names = lambda f: sorted(n for n in (lambda l: (f.visit(l.append), l)[1])([]) if isinstance(f[n], h5py.Dataset))
assert names(a) == names(b), 'different datasets'
diff = max(float(np.abs(a[k][()] - b[k][()]).max()) for k in names(a))
print('max abs difference', diff)
sys.exit(0 if diff <= $3 else 1)"
}
# Demo recipe with distillation (RPN + box head losses) and RPN proposals for the track head, so
# every head's host round trip (proposals, losses, gradients) is exercised; 3 AdamW steps with a
# checkpoint in between (the host copy of device parameters).
run=(--config "$cfg" --data "$tmp/syn" --set aug.view_size=128 --set data.workers=1
     --set data.batch_size=2 --set train.max_iters=3 --set train.ckpt_interval=2
     --set train.log_interval=1 --set train.proposals=rpn --set train.distill=true --set lr.warmup_iters=2)
expect "train on the cpu device" 0 "weights: $tmp/cpu/weights.h5" -- "$masa" train "${run[@]}" --run-dir "$tmp/cpu" --device cpu
expect "train on the guard device" 0 "weights: $tmp/guard/weights.h5" -- "$masa" train "${run[@]}" --run-dir "$tmp/guard" --device guard
expect "guard-device training == cpu training, bit for bit" 0 "max abs difference 0.0" -- same_weights "$tmp/cpu/weights.h5" "$tmp/guard/weights.h5" 0
# Resuming a guard-device run from its checkpoint (host copy -> device) continues bit-exactly.
expect "guard-device resume" 0 "resumed from" -- "$masa" train "${run[@]}" --run-dir "$tmp/guard" --device guard --set train.max_iters=4 --resume auto
expect "cpu 4 steps" 0 "weights:" -- "$masa" train "${run[@]}" --run-dir "$tmp/cpu4" --device cpu --set train.max_iters=4
expect "resumed guard run == straight cpu run" 0 "max abs difference 0.0" -- same_weights "$tmp/cpu4/weights.h5" "$tmp/guard/weights.h5" 0
# The SAM variant (ViT backbone, SimpleFPN, DyHead, Shared2FC box head), shrunk: the same.
sam=(--config "$src/configs/masa_sam_vitb.cfg" --data "$tmp/syn" --set model.vit.img_size=128
     --set model.vit.depth=4 --set model.vit.embed=48 --set model.vit.heads=3 --set model.vit.window=3
     --set model.vit.global=1,3 --set model.vit.out=0,1,2,3 --set model.channels=32
     --set model.fusion_blocks=1 --set model.track.convs=1 --set model.track.conv_channels=32
     --set model.track.gn_groups=16 --set model.track.fc_channels=64 --set model.track.embed_channels=32
     --set model.bbox_fc_channels=64 --set model.test_scale=128,128 --set aug.view_size=128
     --set data.batch_size=2 --set data.workers=1 --set train.max_iters=2 --set lr.warmup_iters=0)
expect "SAM variant on cpu" 0 "weights:" -- "$masa" train "${sam[@]}" --run-dir "$tmp/sam_cpu" --device cpu
expect "SAM variant on guard" 0 "weights:" -- "$masa" train "${sam[@]}" --run-dir "$tmp/sam_guard" --device guard
expect "SAM variant: guard == cpu" 0 "max abs difference 0.0" -- same_weights "$tmp/sam_cpu/weights.h5" "$tmp/sam_guard/weights.h5" 0
# Two ranks on the guard device: gradients staged through host memory and MPI.
if command -v mpirun >/dev/null 2>&1; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  ASAN_OPTIONS=detect_leaks=0 mpirun -np 2 --oversubscribe "$masa" train "${run[@]}" --run-dir "$tmp/g2" \
    --device guard --set data.batch_size=1 --set train.ckpt_interval=0 >"$tmp/g2.log" 2>&1
  ASAN_OPTIONS=detect_leaks=0 mpirun -np 2 --oversubscribe "$masa" train "${run[@]}" --run-dir "$tmp/c2" \
    --device cpu --set data.batch_size=1 --set train.ckpt_interval=0 >"$tmp/c2.log" 2>&1
  expect "2 ranks on guard == 2 ranks on cpu" 0 "max abs difference 0.0" -- same_weights "$tmp/c2/weights.h5" "$tmp/g2/weights.h5" 0
fi
# Embedding: features and embeddings identical.
img=$(find "$tmp/syn" -name '*.jpg' | sort | head -1)
printf '10 10 60 60\n20 30 90 100\n0 0 127 127\n' >"$tmp/boxes.txt"
for d in cpu guard; do
  expect "embed on $d" 0 "embedded 3 boxes" -- "$masa" embed --config "$cfg" --weights "$tmp/cpu/weights.h5" \
    --image "$img" --boxes "$tmp/boxes.txt" --out "$tmp/emb_$d.h5" --dump-features --device $d
done
expect "guard embeddings and features == cpu" 0 "max abs difference 0.0" -- same_weights "$tmp/emb_cpu.h5" "$tmp/emb_guard.h5" 0
# Tracking with MASA embeddings (given detections) and with MASA's own detector.
for d in cpu guard; do
  expect "track on $d" 0 "" -- "$masa" track --frames "$tmp/vid/SYN-01" --weights "$tmp/cpu/weights.h5" \
    --config "$cfg" --out "$tmp/trk_$d.txt" --device $d
  expect "self-detect track on $d" 0 "" -- "$masa" track --frames "$tmp/vid/SYN-01" --weights "$tmp/cpu/weights.h5" \
    --config "$cfg" --dets masa --out "$tmp/det_$d.txt" --device $d
done
expect "guard tracks == cpu tracks" 0 "" -- cmp "$tmp/trk_cpu.txt" "$tmp/trk_guard.txt"
expect "guard self-detected tracks == cpu" 0 "" -- cmp "$tmp/det_cpu.txt" "$tmp/det_guard.txt"
# The GPU check's full-train-step comparison, run on the guard device.
expect "masa check --device guard: one train step == cpu" 0 "checks passed" -- "$masa" check --device guard
# bf16 needs a GPU: a clear error elsewhere.
expect "bf16 on the cpu is a clear error" 1 "device.precision" -- "$masa" train "${run[@]}" --run-dir "$tmp/x" --device cpu --set device.precision=bf16
# Bad device names are errors naming the value.
expect "unknown device named" 1 "--device tpu" -- "$masa" train "${run[@]}" --run-dir "$tmp/x" --device tpu
if ! "$masa" check >/dev/null 2>&1; then
  expect "cuda without a GPU is a clear error" 1 "cuda" -- "$masa" embed --config "$cfg" --weights "$tmp/cpu/weights.h5" \
    --image "$img" --boxes "$tmp/boxes.txt" --out "$tmp/x.h5" --device cuda
fi
exit $fail
