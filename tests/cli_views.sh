#!/usr/bin/env bash
# `masa views`: pictures + JSON for the first N pairs of a synthetic SA-1B folder, the same
# output on a second run, JPEG output, and clear errors for bad arguments.
# Usage: cli_views.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "  $1: PASS"; }
bad() {
  echo "  $1: FAIL"
  fail=1
}
expect() {  # expect NAME EXPECTED_STATUS PATTERN -- command...
  local name=$1 want=$2 pat=$3
  shift 4
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [ "$status" -eq "$want" ] && grep -q -- "$pat" <<<"$out"; then
    ok "$name"
  else
    bad "$name (status $status, want $want; output must match '$pat')"
    echo "$out" | sed 's/^/    | /' | head -20
  fi
}
"$masa" synth "$tmp/data" --images 5 --size 120x160 --objects 4-8 --log-level error >/dev/null 2>&1 || bad "synth"
run=("$masa" views --config "$src/configs/demo.cfg" --set aug.view_size=96 --set data.workers=2
     --data "$tmp/data" --n 3 --log-level warn)
expect "views writes pairs" 0 "wrote 3 view pairs" -- "${run[@]}" --out "$tmp/a"
for k in 0 1 2; do
  [ -s "$tmp/a/pair_000$k.png" ] && ok "pair_000$k.png" || bad "pair_000$k.png missing"
done
if python3 - "$tmp/a/views.json" <<'PY'; then ok "views.json: 3 pairs, 2 views, boxes/ids/transforms"; else bad "views.json content"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["pairs"]) == 3 and d["view_size"] == 96
for p in d["pairs"]:
    assert len(p["views"]) == 2
    for v in p["views"]:
        assert len(v["boxes"]) == len(v["ids"]) == len(v["from_mixup"])
        assert len(v["src_to_view"]) == 2 and len(v["src_to_view"][0]) == 3
        cw, ch = v["content_wh"]
        for b in v["boxes"]:
            assert -1e-3 <= b[0] < b[2] <= cw + 1e-3 and -1e-3 <= b[1] < b[3] <= ch + 1e-3, b
            assert b[2] - b[0] > 1 and b[3] - b[1] > 1
PY
"${run[@]}" --out "$tmp/b" >/dev/null 2>&1
cmp -s "$tmp/a/views.json" "$tmp/b/views.json" && cmp -s "$tmp/a/pair_0001.png" "$tmp/b/pair_0001.png" &&
  ok "second run: identical output" || bad "second run differs"
expect "jpg output" 0 "wrote 3 view pairs" -- "${run[@]}" --out "$tmp/c" --format jpg
[ -s "$tmp/c/pair_0002.jpg" ] && ok "pair_0002.jpg" || bad "pair_0002.jpg missing"
expect "missing --out" 1 "usage: masa views" -- "$masa" views --data "$tmp/data" --n 2
expect "bad --n" 1 "positive integer" -- "$masa" views --data "$tmp/data" --n zero --out "$tmp/d"
expect "bad --format" 1 "png or jpg" -- "$masa" views --data "$tmp/data" --n 1 --out "$tmp/d" --format gif
expect "missing data names it" 1 "$tmp/nothing" -- "$masa" views --data "$tmp/nothing" --n 1 --out "$tmp/d"
expect "bad aug key value" 1 "aug.box_mode" -- "$masa" views --data "$tmp/data" --n 1 --out "$tmp/d" --set aug.box_mode=round
exit $fail
