#!/usr/bin/env bash
# `masa bench embed` on small models of both layouts: it runs ours and the PyTorch reference,
# prints the table, and the parameter counts per module agree (exit 1 otherwise); bad arguments
# are named. Usage: cli_bench_embed.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
fail=0
expect() {  # expect NAME EXPECTED_STATUS PATTERN -- command...
  local name=$1 want=$2 pat=$3
  shift 4
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [ "$status" -eq "$want" ] && grep -q -- "$pat" <<<"$out"; then
    echo "  $name: PASS"
  else
    echo "  $name: FAIL (status $status, want $want; output must match '$pat')"
    echo "$out" | sed 's/^/    | /' | head -40
    fail=1
  fi
}
small=(--set model.channels=32 --set model.track.conv_channels=32 --set model.track.fc_channels=64
       --set model.bbox_fc_channels=64 --set model.track.embed_channels=16)
run=(bench embed --size 160 --boxes 7 --repeats 1 --warmup 0 --threads 2)
expect "R50 layout: both sides, same parameter counts" 0 "^total .*[0-9]x$" -- "$masa" "${run[@]}" \
  --config "$src/configs/masa_r50.cfg" "${small[@]}" --set model.resnet.width=16 --set model.test_scale=160,160
expect "SAM layout: both sides, same parameter counts" 0 "^total .*[0-9]x$" -- "$masa" "${run[@]}" \
  --config "$src/configs/masa_sam_vitb.cfg" "${small[@]}" --set model.vit.depth=4 --set model.vit.embed=64 \
  --set model.vit.heads=2 --set model.vit.window=6 --set model.vit.global=1,3 --set model.vit.out=0,1,2,3 \
  --set model.vit.img_size=256 --set model.test_scale=256,256 --set model.pad_divisor=256
expect "--no-python: ours only" 0 "activation arena peak" -- "$masa" "${run[@]}" --no-python \
  --config "$src/configs/masa_r50.cfg" "${small[@]}" --set model.resnet.width=16 --set model.test_scale=160,160
expect "bad value named" 1 "bench embed: --boxes expects an integer >= 0, got 'many'" -- "$masa" bench embed --boxes many
expect "unknown argument named" 1 "bench embed: unknown argument '--frobnicate'" -- "$masa" bench embed --frobnicate 1
expect "bad shallow ViT named" 1 "model.vit.out: the SimpleFPN takes exactly 4 block outputs, got 2" -- "$masa" bench embed \
  --config "$src/configs/masa_sam_vitb.cfg" --set model.vit.depth=4 --set model.vit.global=1,3 --no-python
exit $fail
