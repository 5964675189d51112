#!/usr/bin/env bash
# `masa init` + `masa embed` end to end on the demo recipe, and the errors a user meets with bad
# weight files and box lists. Usage: cli_embed.sh MASA_BINARY SOURCE_DIR
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
"$masa" synth "$tmp/syn" --images 2 --seed 3 >/dev/null 2>&1 || { echo "synth failed"; exit 1; }
printf '# x1 y1 x2 y2\n10 10 60 80\n\n100 50 200 150\n0 0 320 256\n' >"$tmp/boxes.txt"
expect "init writes weights" 0 "wrote" -- "$masa" init --config "$cfg" --out "$tmp/w.h5" --seed 1
expect "embed writes embeddings" 0 "embedded 3 boxes" -- "$masa" embed --config "$cfg" --weights "$tmp/w.h5" \
  --image "$tmp/syn/sa_1.jpg" --boxes "$tmp/boxes.txt" --out "$tmp/e.h5" --dump-features
expect "embeddings and features have the recipe's shapes" 0 "shapes ok" -- "$py" -c "
import h5py, numpy as np
f = h5py.File('$tmp/e.h5', 'r')
e = f['embeddings'][()]
assert e.shape == (3, 128) and np.isfinite(e).all() and np.abs(e).sum() > 0, e.shape
assert len(f['features']) == 5 and f['features/0'].shape[1] == 64
print('shapes ok')"
# Same inputs, same weights: identical bytes.
"$masa" embed --config "$cfg" --weights "$tmp/w.h5" --image "$tmp/syn/sa_1.jpg" --boxes "$tmp/boxes.txt" \
  --out "$tmp/e2.h5" >/dev/null 2>&1
expect "embed is deterministic" 0 "same" -- "$py" -c "
import h5py, numpy as np
a = h5py.File('$tmp/e.h5', 'r')['embeddings'][()]; b = h5py.File('$tmp/e2.h5', 'r')['embeddings'][()]
assert np.array_equal(a, b); print('same')"
# Bad weight files.
"$py" -c "
import h5py
src = h5py.File('$tmp/w.h5', 'r')
with h5py.File('$tmp/missing.h5', 'w') as d:
    for k in src:
        if k != 'track_head.embed_head.fc_embed.weight': d[k] = src[k][()]
with h5py.File('$tmp/shape.h5', 'w') as d:
    for k in src:
        d[k] = src[k][()] if k != 'rpn_head.rpn_conv.weight' else src[k][()][:, :, :1, :1]
with h5py.File('$tmp/dtype.h5', 'w') as d:
    for k in src:
        d[k] = src[k][()].astype('float64') if k == 'rpn_head.rpn_conv.bias' else src[k][()]
"
head -c 20000 "$tmp/w.h5" >"$tmp/trunc.h5"
run_embed() { "$masa" embed --config "$cfg" --weights "$1" --image "$tmp/syn/sa_1.jpg" --boxes "$tmp/boxes.txt" --out "$tmp/x.h5"; }
expect "missing key named" 1 "missing: track_head.embed_head.fc_embed.weight" -- run_embed "$tmp/missing.h5"
expect "wrong shape named" 1 "shape mismatch: rpn_head.rpn_conv.weight" -- run_embed "$tmp/shape.h5"
expect "wrong dtype named" 1 "rpn_head.rpn_conv.bias' has dtype float64, expected float32" -- run_embed "$tmp/dtype.h5"
expect "truncated file named" 1 "trunc.h5" -- run_embed "$tmp/trunc.h5"
expect "missing weights file named" 1 "nowhere.h5" -- run_embed "$tmp/nowhere.h5"
expect "weights of another recipe rejected" 1 "problems loading weights" -- "$masa" embed --config "$src/configs/masa_r50.cfg" \
  --weights "$tmp/w.h5" --image "$tmp/syn/sa_1.jpg" --boxes "$tmp/boxes.txt" --out "$tmp/x.h5"
printf '1 2 3\n' >"$tmp/bad_boxes.txt"
expect "malformed box line named" 1 "bad_boxes.txt:1: expected 'x1 y1 x2 y2'" -- "$masa" embed --config "$cfg" \
  --weights "$tmp/w.h5" --image "$tmp/syn/sa_1.jpg" --boxes "$tmp/bad_boxes.txt" --out "$tmp/x.h5"
printf 'garbage' >"$tmp/bad.jpg"
expect "corrupt image named" 1 "bad.jpg" -- "$masa" embed --config "$cfg" --weights "$tmp/w.h5" \
  --image "$tmp/bad.jpg" --boxes "$tmp/boxes.txt" --out "$tmp/x.h5"
expect "bad model value rejected" 1 "model.fusion': unknown value 'magic'" -- "$masa" init --config "$cfg" \
  --set model.fusion=magic --out "$tmp/y.h5"
exit $fail
