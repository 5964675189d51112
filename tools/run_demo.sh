#!/usr/bin/env bash
# The main job on the embedded demo data, end to end on a CPU (a few minutes on 2 cores):
#   1. build; 2. synthesize an SA-1B-format training set, a held-out set and MOT-style videos;
#   3. train the demo adapter (configs/demo.cfg) and draw its loss curves;
#   4. held-out instance matching: untrained vs trained embeddings;
#   5. track the videos with the trained adapter, the untrained one and the IoU baseline on the
#      same noisy detections, and evaluate all three (HOTA / MOTA / IDF1).
# Usage: tools/run_demo.sh [OUT_DIR] [extra --set key=value for training...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
out=${1:-runs/demo}
shift || true
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
masa=./build/masa
cfg=configs/demo.cfg
t0=$(date +%s)
mkdir -p "$out"
echo "== 1/5 synthetic data in $out/data"
rm -rf "$out/data"
$masa synth "$out/data/train" --images 64 --seed 1 --log-level warn
$masa synth "$out/data/heldout" --images 16 --seed 999 --log-level warn
$masa synth "$out/data/video" --video --seqs 2 --frames 60 --fps 6 --objects 8-12 --seed 3 --log-level warn
echo "== 2/5 train (configs/demo.cfg): $out/train"
rm -rf "$out/train"
$masa init --config "$cfg" --out "$out/untrained.h5" --seed 0 --log-level warn
$masa train --config "$cfg" --data "$out/data/train" --run-dir "$out/train" "$@"
first=$(head -1 "$out/train/metrics.jsonl" | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
last=$(tail -1 "$out/train/metrics.jsonl" | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
echo "== 3/5 held-out instance matching (nearest embedding in the other view is the same instance)"
m0=$($masa match --config "$cfg" --weights "$out/untrained.h5" --data "$out/data/heldout" --pairs 64 --log-level warn)
m1=$($masa match --config "$cfg" --weights "$out/train/weights.h5" --data "$out/data/heldout" --pairs 64 --log-level warn)
echo "== 4/5 tracking the videos (same detections for every method)"
for method in trained untrained iou; do
  mkdir -p "$out/track/$method"
  for seq in "$out"/data/video/SYN-*; do
    s=$(basename "$seq")
    case $method in
      trained) args=(--embedder masa --weights "$out/train/weights.h5" --config "$cfg") ;;
      untrained) args=(--embedder masa --weights "$out/untrained.h5" --config "$cfg") ;;
      iou) args=(--embedder iou) ;;
    esac
    draw=()
    [ "$method" = trained ] && [ "$s" = SYN-01 ] && draw=(--draw "$out/track/frames")
    $masa track --frames "$seq" --out "$out/track/$method/$s.txt" "${args[@]}" "${draw[@]}" --log-level warn
  done
done
echo "== 5/5 evaluation"
printf '\n%-28s %8s %8s %8s %8s %6s\n' "method" "HOTA" "AssA" "MOTA" "IDF1" "IDSW"
for method in trained untrained iou; do
  $masa eval --benchmark mot --gt "$out/data/video" --results "$out/track/$method" \
    --out "$out/track/$method.json" 2>/dev/null | awk -v m="$method" '
    /^sequence/ { for (i = 1; i <= NF; i++) col[$i] = i }
    /^COMBINED/ { printf "%-28s %8s %8s %8s %8s %6s\n", m, $col["HOTA"], $col["AssA"], $col["MOTA"], $col["IDF1"], $col["IDSW"] }'
done
echo
echo "training loss: $first (first logged step) -> $last (last)"
echo "held-out matching, untrained: ${m0#match: }"
echo "held-out matching, trained:   ${m1#match: }"
echo "loss curves: $out/train/loss.png; tracked frames: $out/track/frames; weights: $out/train/weights.h5"
echo "demo took $(( $(date +%s) - t0 )) s"
