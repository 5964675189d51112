#!/usr/bin/env bash
# `masa bench train --quick`: the table prints with positive step times and pairs/s for the demo
# row, the scaling rows and (with MPI) the 2-rank row; bad arguments are named.
# Usage: cli_bench_train.sh MASA_BINARY SOURCE_DIR
set -u
# The 2-rank row runs under mpirun: Open MPI's plugins leave one-time allocations that
# LeakSanitizer cannot attribute (sanitizer builds only; as for test_dist_np2).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
masa=$1
src=$2
fail=0
out=$(MASA_SOURCE_DIR="$src" "$masa" bench train --quick --threads 2 2>&1)
status=$?
check() {  # check NAME PATTERN: a table row NAME whose step ms and pairs/s are positive
  if awk -v n="$1" 'index($0, n) == 1 { s = substr($0, 25); split(s, f, " ");
        if (f[3] + 0 > 0 && f[4] + 0 > 0) ok = 1 } END { exit !ok }' <<<"$out"; then
    echo "  row '$1' has positive numbers: PASS"
  else
    echo "  row '$1' has positive numbers: FAIL"; fail=1
  fi
}
if [ "$status" -eq 0 ] && grep -q "^row .*step ms .*pairs/s" <<<"$out"; then
  echo "  quick bench prints the table: PASS"
else
  echo "  quick bench prints the table: FAIL (status $status)"; echo "$out" | tail -30 | sed 's/^/    | /'; fail=1
fi
check "demo (R18 w16, 64 ch)"
check "demo, view 128"
check "demo, view 160"
check "1 rank x"
if command -v mpirun >/dev/null; then check "2 ranks x"; fi
bad=$("$masa" bench train --parts demo,gpu 2>&1); st=$?
if [ $st -eq 1 ] && grep -q "unknown part 'gpu'" <<<"$bad"; then echo "  bad part named: PASS"
else echo "  bad part named: FAIL"; fail=1; fi
exit $fail
