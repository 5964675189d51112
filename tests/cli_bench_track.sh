#!/usr/bin/env bash
# `masa bench track --quick`: the tracking table has positive frames/s for the demo model and both
# trackers, masa eval and TrackEval both time the generated files and their HOTA/MOTA/IDF1 agree
# (exit 1 otherwise); bad arguments are named. Usage: cli_bench_track.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
fail=0
check() {  # check NAME CONDITION_STATUS
  if [ "$2" -eq 0 ]; then echo "  $1: PASS"; else echo "  $1: FAIL"; fail=1; fi
}
out=$(MASA_SOURCE_DIR="$src" "$masa" bench track --quick --boxes 20 --tracker-frames 100 --threads 2 2>&1)
status=$?
check "quick run exits 0" $status
positive_row() {  # positive_row PATTERN: that table row exists and its ms/frame and frames/s are > 0
  awk -v pat="$1" 'index($0, pat) == 1 { found = 1; if (!($(NF-1) > 0 && $NF > 0)) bad = 1 }
                   END { exit !(found && !bad) }' <<<"$out"
}
positive_row "demo.cfg 256x256 + TAO"; check "demo model row, positive frames/s" $?
positive_row "TAO tracker only"; check "TAO tracker row, positive frames/s" $?
positive_row "BDD tracker only"; check "BDD tracker row, positive frames/s" $?
awk '/^masa eval / { m = ($2 > 0) } /^TrackEval / { t = ($2 > 0) } END { exit !(m && t) }' <<<"$out"
check "masa eval and TrackEval seconds > 0" $?
grep -q "^speed-up [0-9.]*x .*metrics agree" <<<"$out"
check "HOTA, MOTA, IDF1 agree with TrackEval" $?
[ $fail -eq 0 ] || echo "$out" | sed 's/^/    | /' | tail -30
err=$("$masa" bench track --eval-seqs none 2>&1)
[ $? -eq 1 ] && grep -q "bench track: --eval-seqs expects an integer >= 1, got 'none'" <<<"$err"
check "bad value named" $?
err=$("$masa" bench track --only everything 2>&1)
[ $? -eq 1 ] && grep -q "bench track: --only expects track or eval, got 'everything'" <<<"$err"
check "bad --only named" $?
err=$("$masa" bench track --frobnicate 1 2>&1)
[ $? -eq 1 ] && grep -q "bench track: unknown argument '--frobnicate'" <<<"$err"
check "unknown argument named" $?
exit $fail
