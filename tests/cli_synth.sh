#!/usr/bin/env bash
# `masa synth`: writes the expected files, byte-identical across runs and thread counts, in all
# three layouts (SA-1B folder, tar shards, MOTChallenge sequences); bad options are clear errors.
# Usage: cli_synth.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@" >"$tmp/out.txt" 2>&1; then
    echo "  $name: PASS"
  else
    echo "  $name: FAIL"
    sed 's/^/    | /' "$tmp/out.txt" | head -20
    fail=1
  fi
}
expect_error() {  # expect_error NAME PATTERN -- command...
  local name=$1 pat=$2
  shift 3
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [ "$status" -ne 0 ] && grep -q -- "$pat" <<<"$out"; then
    echo "  $name: PASS"
  else
    echo "  $name: FAIL (status $status; output must match '$pat')"
    echo "$out" | sed 's/^/    | /' | head -10
    fail=1
  fi
}
q="--log-level warn"
check "synth folder (run 1, 2 threads)" "$masa" synth "$tmp/a" --images 5 --seed 7 --threads 2 $q
check "synth folder (run 2, 1 thread)" "$masa" synth "$tmp/b" --images 5 --seed 7 --threads 1 $q
check "10 files: sa_1.jpg .. sa_5.json" test "$(ls "$tmp/a" | wc -l)" -eq 10 -a -s "$tmp/a/sa_5.jpg" -a -s "$tmp/a/sa_5.json"
check "identical bytes across runs and thread counts" diff -r "$tmp/a" "$tmp/b"
check "JSON in SA-1B layout" grep -q '"image": {"image_id": 1, "width": 320, "height": 256, "file_name": "sa_1.jpg"}, "annotations": \[{"id": ' "$tmp/a/sa_1.json"
"$masa" synth "$tmp/c" --images 5 --seed 8 $q >/dev/null 2>&1
check "another seed gives other images" bash -c "! cmp -s '$tmp/a/sa_1.jpg' '$tmp/c/sa_1.jpg'"
check "synth tar (run 1)" "$masa" synth "$tmp/t1" --images 5 --seed 7 --tar --per-shard 2 --size 48x64 --objects 3-5 $q
check "synth tar (run 2)" "$masa" synth "$tmp/t2" --images 5 --seed 7 --tar --per-shard 2 --size 48x64 --objects 3-5 --threads 1 $q
check "3 shards, identical bytes" bash -c "[ \$(ls '$tmp/t1' | wc -l) -eq 3 ] && cmp '$tmp/t1/sa_000002.tar' '$tmp/t2/sa_000002.tar' && diff -r '$tmp/t1' '$tmp/t2'"
if command -v tar >/dev/null 2>&1; then
  check "system tar reads the shard" bash -c "[ \"\$(tar tf '$tmp/t1/sa_000000.tar' | tr '\n' ' ')\" = 'sa_1.jpg sa_1.json sa_2.jpg sa_2.json ' ]"
fi
check "synth video (run 1)" "$masa" synth "$tmp/v1" --video --seqs 2 --frames 6 --size 64x96 --seed 3 $q
check "synth video (run 2)" "$masa" synth "$tmp/v2" --video --seqs 2 --frames 6 --size 64x96 --seed 3 --threads 1 $q
check "MOT layout" test -s "$tmp/v1/SYN-02/img1/000006.jpg" -a -s "$tmp/v1/SYN-01/gt/gt.txt" -a -f "$tmp/v1/SYN-01/det/det.txt" -a -s "$tmp/v1/SYN-01/seqinfo.ini"
check "video identical bytes" diff -r "$tmp/v1" "$tmp/v2"
check "seqinfo.ini" grep -q "seqLength=6" "$tmp/v1/SYN-01/seqinfo.ini"
check "gt rows: frame,id,x,y,w,h,1,1,visibility" grep -qE '^[1-6],[0-9]+,-?[0-9]+,-?[0-9]+,[0-9]+,[0-9]+,1,1,[01]\.[0-9]{5}$' "$tmp/v1/SYN-01/gt/gt.txt"
check "det rows: frame,-1,x,y,w,h,score,-1,-1,-1" grep -qE '^[1-6],-1,[-0-9.]+,[-0-9.]+,[0-9.]+,[0-9.]+,[01]\.[0-9]{4},-1,-1,-1$' "$tmp/v1/SYN-01/det/det.txt"
expect_error "missing OUT_DIR" "usage: masa synth" -- "$masa" synth
expect_error "bad --size" "expected HxW" -- "$masa" synth "$tmp/x" --size 100
expect_error "bad --objects" "MIN-MAX" -- "$masa" synth "$tmp/x" --objects 9-3
expect_error "unknown option" "unexpected argument '--frobnicate'" -- "$masa" synth "$tmp/x" --frobnicate
expect_error "--images needs a value" "needs a value" -- "$masa" synth "$tmp/x" --images
exit $fail
