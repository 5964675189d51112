#!/usr/bin/env bash
# End-to-end parity of `masa embed` (preprocess -> backbone -> adapter -> track head) with the
# PyTorch reference model tests/reference/masa_ref.py, on a real image with boxes partly and fully
# outside it, for two small models with the official layouts:
#   r50: MASA-R50 recipe (caffe ResNet-50, FPN + BN, DeformFusion x3, Shared4Conv1FC) at width 16,
#        32 adapter channels, upscaled input (320x256 -> 512x410, padded to 512x416);
#   sam: MASA-SAM-B recipe (SAM ViT, SimpleFPN, DyHead x3, Shared2FC) with a 4-block ViT
#        (width 64, 2 heads, window 6 so windows are padded, global blocks 1 and 3), input 256,
#        downscaled (-> 256x205, padded to 256x256).
# Random weights from the reference (offset convs non-zero so the DCN offsets matter, BN
# statistics calibrated), written with h5py; tolerances in tests/parity_embed.py.
# Usage: cli_embed_parity.sh MASA_BINARY SOURCE_DIR. Seed: MASA_TEST_SEED (default 7).
set -u
masa=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
[ -x "$src/.venv/bin/python" ] && py="$src/.venv/bin/python"
seed=${MASA_TEST_SEED:-7}
export MASA_TEST_THREADS=${MASA_TEST_THREADS:-2}
echo "seed $seed (MASA_TEST_SEED), $MASA_TEST_THREADS threads"
fail=0

# The reference's model.* defaults are the C schema's.
"$masa" config >"$tmp/defaults.cfg" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
if "$py" -c "
import sys; sys.path.insert(0, '$src/tests')
from reference.masa_ref import read_model_cfg
a, b = read_model_cfg('$tmp/defaults.cfg'), read_model_cfg(None)
d = [k for k in a if a[k] != b[k]]
assert not d, 'masa_ref.DEFAULTS differs from masa config: ' + str([(k, a[k], b[k]) for k in d])
"; then echo "  reference defaults = C schema: PASS"; else echo "  reference defaults = C schema: FAIL"; fail=1; fi

"$masa" synth "$tmp/syn" --images 1 --seed 3 >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
# Lossless copy of the synthetic JPEG so both sides start from the same pixels.
"$py" -c "import cv2; cv2.imwrite('$tmp/img.png', cv2.imread('$tmp/syn/sa_1.jpg'))" || exit 1
cat >"$tmp/boxes.txt" <<'EOF'
# x1 y1 x2 y2 in original pixels (image 320x256)
10 10 60 80
-30 -20 50 60
250 180 360 300
100 50 200 150
-40 -30 330 250
5 5 8 9
150 100 150 100
400 300 450 350
EOF

small="model.channels=32 model.track.conv_channels=32 model.track.fc_channels=64
       model.bbox_fc_channels=64 model.track.embed_channels=16"
r50_sets="$small model.resnet.width=16 model.test_scale=512,512"
sam_sets="$small model.vit.depth=4 model.vit.embed=64 model.vit.heads=2 model.vit.window=6
          model.vit.global=1,3 model.vit.out=0,1,2,3 model.vit.img_size=256
          model.test_scale=256,256 model.pad_divisor=256"

run_case() {  # run_case NAME RECIPE SETS
  local name=$1 recipe=$2 sets=() s
  for s in $3; do sets+=(--set "$s"); done
  if ! "$masa" config --config "$src/configs/$recipe" "${sets[@]}" >"$tmp/$name.cfg" 2>"$tmp/err"; then
    echo "  $name: FAIL (masa config)"; cat "$tmp/err"; fail=1; return
  fi
  if ! "$py" "$src/tests/parity_embed.py" make "$tmp/$name.cfg" "$tmp/img.png" "$tmp/boxes.txt" \
      "$tmp/$name.w.h5" "$tmp/$name.ref.h5" "$seed"; then
    echo "  $name: FAIL (reference)"; fail=1; return
  fi
  if ! "$masa" embed --config "$src/configs/$recipe" "${sets[@]}" --threads "$MASA_TEST_THREADS" \
      --weights "$tmp/$name.w.h5" --image "$tmp/img.png" --boxes "$tmp/boxes.txt" \
      --out "$tmp/$name.out.h5" --dump-features >"$tmp/log" 2>&1; then
    echo "  $name: FAIL (masa embed)"; sed 's/^/    | /' "$tmp/log" | head -20; fail=1; return
  fi
  grep "embedded" "$tmp/log" | sed 's/^/    /'
  "$py" "$src/tests/parity_embed.py" compare "$tmp/$name.ref.h5" "$tmp/$name.out.h5" "$name" || fail=1
}

run_case r50 masa_r50.cfg "$r50_sets"
run_case sam masa_sam_vitb.cfg "$sam_sets"

# Negative control: the same weights read with the cropped high-branch offsets (instead of the
# official reinterpretation) must fail the comparison, or the check could not see the offsets.
sets=()
for s in $sam_sets model.offset_mode=crop; do sets+=(--set "$s"); done
if "$masa" embed --config "$src/configs/masa_sam_vitb.cfg" "${sets[@]}" --threads "$MASA_TEST_THREADS" \
    --weights "$tmp/sam.w.h5" --image "$tmp/img.png" --boxes "$tmp/boxes.txt" \
    --out "$tmp/crop.out.h5" --dump-features >"$tmp/log" 2>&1 &&
  ! "$py" "$src/tests/parity_embed.py" compare "$tmp/sam.ref.h5" "$tmp/crop.out.h5" sam-crop >/dev/null; then
  echo "  a wrong offset mode is caught: PASS"
else
  echo "  a wrong offset mode is caught: FAIL"; fail=1
fi
exit $fail
