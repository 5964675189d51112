#!/usr/bin/env bash
# tools/convert_weights.py: official-layout state_dicts (built by tests/reference/masa_ref.py)
# round-trip .pth -> .h5 -> .pth with the same keys in the same order and bit-identical tensors
# (num_batches_tracked restored as int64 zeros), the .h5 loads in `masa embed`; wrappers and the
# `module.` prefix are removed; SAM's neck / prompt encoder / mask decoder are dropped and listed;
# a segment-anything checkpoint (image_encoder.*) and a torchvision ResNet-50 land under
# detector.backbone.* / backbone.*; bad inputs are named.
# Usage: cli_convert.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
[ -x "$src/.venv/bin/python" ] && py="$src/.venv/bin/python"
conv="$src/tools/convert_weights.py"
export OMP_NUM_THREADS=2
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
    echo "$out" | sed 's/^/    | /' | head -30
    fail=1
  fi
}

small=(--set model.channels=32 --set model.track.conv_channels=32 --set model.track.fc_channels=64
       --set model.bbox_fc_channels=64 --set model.track.embed_channels=16)
r50=(--config "$src/configs/masa_r50.cfg" "${small[@]}" --set model.resnet.width=16
     --set model.test_scale=256,256)
sam=(--config "$src/configs/masa_sam_vitb.cfg" "${small[@]}" --set model.vit.depth=4
     --set model.vit.embed=64 --set model.vit.heads=2 --set model.vit.window=6
     --set model.vit.global=1,3 --set model.vit.out=0,1,2,3 --set model.vit.img_size=256
     --set model.test_scale=256,256 --set model.pad_divisor=256)
# The same overrides as KEY=VALUE words for the Python side.
sets_of() { local a; for a in "$@"; do case $a in --set|--config) ;; *=*) echo "$a" ;; esac; done; }

# Checkpoints with the official layout.
"$py" - "$tmp" "$src" "$(sets_of "${r50[@]}")" "$(sets_of "${sam[@]}")" <<'EOF' || { echo "fixtures failed"; exit 1; }
import argparse, collections, sys
import torch
tmp, src, r50_sets, sam_sets = sys.argv[1:5]
sys.path.insert(0, src + "/tests")
from reference.masa_ref import MasaRef, random_init, read_model_cfg, save_h5
import torchvision

def model(recipe, sets, seed):
    m = MasaRef(read_model_cfg(f"{src}/configs/{recipe}", sets.split()))
    random_init(m, seed)
    return m

r = model("masa_r50.cfg", r50_sets, 1)
torch.save({"meta": {"epoch": 12}, "state_dict": r.state_dict()}, f"{tmp}/r50.pth")
save_h5(r, f"{tmp}/r50.direct.h5")
s = model("masa_sam_vitb.cfg", sam_sets, 2)
sd = collections.OrderedDict(("module." + k, v) for k, v in s.state_dict().items())
extra = {"detector.backbone.neck.0.weight": torch.randn(8, 64, 1, 1),
         "detector.prompt_encoder.point_embeddings.0.weight": torch.randn(1, 8),
         "detector.mask_decoder.iou_token.weight": torch.randn(1, 8)}
sd.update(("module." + k, v) for k, v in extra.items())
torch.save(sd, f"{tmp}/sam_extra.pth")
torch.save(s.state_dict(), f"{tmp}/sam.pth")
# segment-anything layout: image_encoder.* plus the parts MASA does not use.
seg = collections.OrderedDict()
for k, v in s.state_dict().items():
    if k.startswith("detector.backbone."):
        seg["image_encoder." + k[len("detector.backbone."):]] = v
seg["image_encoder.neck.0.weight"] = torch.randn(8, 64, 1, 1)
seg["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"] = torch.randn(2, 8)
seg["mask_decoder.transformer.layers.0.norm1.weight"] = torch.randn(8)
torch.save({"model": seg}, f"{tmp}/sam_vit_seg.pth")
tv = torchvision.models.resnet50()
torch.save(tv.state_dict(), f"{tmp}/resnet50-test.pth")
bad = r.state_dict()
bad["rpn_head.rpn_conv.weight"] = bad["rpn_head.rpn_conv.weight"][:, :, :1, :1]
torch.save(bad, f"{tmp}/bad_shape.pth")
torch.save({"meta": argparse.Namespace(epoch=1), "state_dict": r.state_dict()}, f"{tmp}/pickled.pth")
EOF

same_sd() {  # same_sd A.pth B.pth [KEYS_TO_IGNORE_IN_A...]: keys, order, dtypes, bits
  "$py" - "$@" <<'EOF'
import sys, torch
def sd(p):
    o = torch.load(p, map_location="cpu")
    o = o.get("state_dict", o.get("model", o))
    return {k[7:] if k.startswith("module.") else k: v for k, v in o.items()}
a, b = sd(sys.argv[1]), sd(sys.argv[2])
for k in sys.argv[3:]:
    a.pop(k)
assert list(a) == list(b), (len(a), len(b), [k for k in a if k not in b][:5], [k for k in b if k not in a][:5])
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert torch.equal(a[k], b[k]), k
    if a[k].is_floating_point():
        assert a[k].view(torch.int32).equal(b[k].view(torch.int32)), k
print(f"identical: {len(a)} tensors")
EOF
}

# 1. MASA-R50 layout, mmengine-style wrapper: .pth -> .h5 -> .pth unchanged, .h5 loads in masa embed.
expect "r50 .pth -> .h5" 0 "wrote $tmp/r50.h5" -- "$py" "$conv" "$tmp/r50.pth" --out "$tmp/r50.h5" \
  "${r50[@]}"
expect "r50 .h5 -> .pth" 0 "num_batches_tracked under state_dict" -- "$py" "$conv" "$tmp/r50.h5" \
  --to-pth --out "$tmp/r50.back.pth"
expect "r50 round trip is bit-identical" 0 "identical" -- same_sd "$tmp/r50.pth" "$tmp/r50.back.pth"
"$masa" synth "$tmp/syn" --images 1 --seed 3 >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
printf '10 10 60 80\n-30 -20 50 60\n100 50 200 150\n' >"$tmp/boxes.txt"
for w in r50 r50.direct; do
  expect "masa embed loads $w.h5" 0 "embedded 3 boxes" -- "$masa" embed "${r50[@]}" --threads 2 \
    --weights "$tmp/$w.h5" --image "$tmp/syn/sa_1.jpg" --boxes "$tmp/boxes.txt" --out "$tmp/$w.e.h5"
done
expect "converted = directly written weights (same embeddings)" 0 "same" -- "$py" -c "
import h5py, numpy as np
a = h5py.File('$tmp/r50.e.h5', 'r')['embeddings'][()]; b = h5py.File('$tmp/r50.direct.e.h5', 'r')['embeddings'][()]
assert np.array_equal(a, b); print('same')"

# 2. SAM layout, bare dict, module. prefix, keys MASA does not have.
expect "module. prefix stripped" 0 "stripped the 'module.' prefix" -- "$py" "$conv" "$tmp/sam_extra.pth" \
  --out "$tmp/sam.h5" "${sam[@]}"
out=$("$py" "$conv" "$tmp/sam_extra.pth" --out "$tmp/sam.h5" "${sam[@]}" 2>&1)
if grep -q "dropped 3 keys the model does not have" <<<"$out" && grep -q "detector.mask_decoder.iou_token.weight" <<<"$out" \
  && grep -q "detector.backbone.neck.0.weight" <<<"$out" && grep -q "detector.prompt_encoder" <<<"$out"; then
  echo "  SAM neck / prompt encoder / mask decoder dropped and listed: PASS"
else
  echo "  SAM neck / prompt encoder / mask decoder dropped and listed: FAIL"; echo "$out" | sed 's/^/    | /'; fail=1
fi
expect "sam .h5 -> bare .pth" 0 "wrote" -- "$py" "$conv" "$tmp/sam.h5" --to-pth --bare --out "$tmp/sam.back.pth"
expect "sam round trip is bit-identical" 0 "identical" -- same_sd "$tmp/sam.pth" "$tmp/sam.back.pth"

# 3. segment-anything checkpoint -> detector.backbone.*, the rest from a masa init file.
"$masa" init "${sam[@]}" --out "$tmp/sam_init.h5" --seed 5 >/dev/null 2>&1 || { echo "init failed"; exit 1; }
expect "segment-anything image_encoder.* renamed" 0 "image_encoder.\* -> detector.backbone.\*" -- \
  "$py" "$conv" "$tmp/sam_vit_seg.pth" --out "$tmp/sam_seg.h5" "${sam[@]}" --base "$tmp/sam_init.h5"
expect "segment-anything values and base values in place" 0 "values ok" -- "$py" -c "
import h5py, numpy as np, torch
seg = torch.load('$tmp/sam_vit_seg.pth')['model']
o, b = h5py.File('$tmp/sam_seg.h5', 'r'), h5py.File('$tmp/sam_init.h5', 'r')
assert sorted(o) == sorted(b)
for k in o:
    want = seg['image_encoder.' + k[18:]].numpy() if k.startswith('detector.backbone.') else b[k][()]
    assert np.array_equal(o[k][()], want), k
print('values ok')"
expect "masa embed loads the SAM conversion" 0 "embedded 3 boxes" -- "$masa" embed "${sam[@]}" --threads 2 \
  --weights "$tmp/sam_seg.h5" --image "$tmp/syn/sa_1.jpg" --boxes "$tmp/boxes.txt" --out "$tmp/sam.e.h5"

# A file written by masa (no key order kept) -> .pth in the model's order, loaded strictly.
expect "masa init file -> .pth" 0 "wrote" -- "$py" "$conv" "$tmp/sam_init.h5" --to-pth \
  --out "$tmp/sam_init.pth" "${sam[@]}"
expect "... loads strictly into the reference model" 0 "loaded" -- "$py" - "$tmp" "$src" \
  "$(sets_of "${sam[@]}")" <<'EOF'
import sys, torch
tmp, src, sets = sys.argv[1:4]
sys.path.insert(0, src + "/tests")
from reference.masa_ref import MasaRef, read_model_cfg
m = MasaRef(read_model_cfg(src + "/configs/masa_sam_vitb.cfg", sets.split()))
sd = torch.load(tmp + "/sam_init.pth")["state_dict"]
assert list(sd) == list(m.state_dict()), "key order"
m.load_state_dict(sd, strict=True)
print("loaded")
EOF

# 4. torchvision ResNet-50 -> backbone.* of MASA-R50 (its own names are mmdet's).
expect "torchvision ResNet-50 -> backbone.*" 0 "renamed 265 keys: \* -> backbone.\*" -- "$py" "$conv" \
  "$tmp/resnet50-test.pth" --out "$tmp/tv.h5" --config "$src/configs/masa_r50.cfg" \
  --set model.resnet.style=pytorch --allow-missing
expect "torchvision values in place, fc dropped" 0 "values ok" -- "$py" -c "
import h5py, numpy as np, torch
sd = torch.load('$tmp/resnet50-test.pth')
o = h5py.File('$tmp/tv.h5', 'r')
keep = [k for k in sd if not k.endswith('num_batches_tracked') and not k.startswith('fc.')]
assert sorted(o) == sorted('backbone.' + k for k in keep), len(o)
for k in keep:
    assert np.array_equal(o['backbone.' + k][()], sd[k].numpy()), k
print('values ok')"

# 5. Errors.
expect "wrong shape named" 1 "'rpn_head.rpn_conv.weight' has shape (32, 32, 1, 1)" -- "$py" "$conv" \
  "$tmp/bad_shape.pth" --out "$tmp/x.h5" "${r50[@]}"
expect "missing keys named" 1 "keys of the model are not in" -- "$py" "$conv" "$tmp/resnet50-test.pth" \
  --out "$tmp/x.h5" --config "$src/configs/masa_r50.cfg"
expect "pickled objects need --unsafe-pickle" 1 "unsafe-pickle" -- "$py" "$conv" "$tmp/pickled.pth" \
  --out "$tmp/x.h5" "${r50[@]}"
expect "--unsafe-pickle loads them" 0 "wrote" -- "$py" "$conv" "$tmp/pickled.pth" --out "$tmp/x.h5" \
  "${r50[@]}" --unsafe-pickle
expect "no target model named" 1 "say which model" -- "$py" "$conv" "$tmp/r50.pth" --out "$tmp/x.h5"
expect "missing checkpoint named" 1 "nowhere.pth: no such file" -- "$py" "$conv" "$tmp/nowhere.pth" \
  --out "$tmp/x.h5" "${r50[@]}"
exit $fail
