#!/usr/bin/env bash
# `masa plot RUN_DIR`: draws RUN_DIR/metrics.jsonl into RUN_DIR/loss.png, a valid PNG whose size
# follows the panel layout (3 loss terms: 2 x 2 panels of 480 x 320 = 960 x 640); --log-y, --out,
# --panel; a resumed run's repeated steps and an interrupted last line are tolerated; bad input
# gives clear errors.
# Usage: cli_plot.sh MASA_BINARY SOURCE_DIR
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
# png_size FILE: "WIDTHxHEIGHT" from the IHDR chunk, or nothing when the signature is wrong.
png_size() {
  local sig
  sig=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
  [ "$sig" = "89504e470d0a1a0a" ] || return 1
  local b
  b=($(od -An -tu1 -j16 -N8 "$1"))
  echo "$(((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]))x$(((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]))"
}
expect_png() {  # expect_png NAME FILE WxH
  local got
  got=$(png_size "$2")
  if [ "$got" = "$3" ] && tail -c 12 "$2" | od -An -c | grep -q 'I   E   N   D'; then
    echo "  $1: PASS"
  else
    echo "  $1: FAIL (got '${got:-not a PNG}', expected $3 ending in IEND)"
    fail=1
  fi
}

# 200 steps of three loss terms (one skipped step logged as null), then a resumed run that logs
# steps 150..199 again, then half a line from an interrupted write.
run="$tmp/run"
mkdir -p "$run"
awk 'BEGIN {
  for (s = 0; s < 200; s++) {
    l1 = 2.5 * exp(-s / 50) + 0.3 + 0.05 * sin(s); l2 = 1.2 * exp(-s / 60) + 0.1 + 0.03 * cos(s)
    l3 = (s == 77) ? "null" : sprintf("%.6f", 0.4 * exp(-s / 40) + 0.02)
    printf "{\"step\": %d, \"epoch\": %d, \"loss\": %.6f, \"loss_track\": %.6f, \"loss_rpn_cls\": %s, \"lr\": 8e-05, \"grad_norm\": 3.5, \"pairs_per_s\": 40.1, \"skipped\": %d, \"skipped_total\": 0}\n", s, s / 100, l1 + l2, l1, l3, s == 77
  }
  for (s = 150; s < 200; s++)
    printf "{\"step\": %d, \"epoch\": 1, \"loss\": %.6f, \"loss_track\": 0.5, \"loss_rpn_cls\": 0.03, \"lr\": 8e-05, \"grad_norm\": 3.5, \"pairs_per_s\": 40.1, \"skipped\": 0, \"skipped_total\": 0}\n", s, 0.9
  printf "{\"step\": 200, \"epoch\": 2, \"loss\": 0.8"
}' >"$run/metrics.jsonl"

check "masa plot RUN_DIR" bash -c "'$masa' plot '$run' >'$tmp/plot.txt' 2>&1"
check "reports what it drew (200 steps, 3 loss terms)" grep -q "wrote $run/loss.png (200 steps, 3 loss terms)" "$tmp/plot.txt"
expect_png "loss.png is a 960 x 640 PNG" "$run/loss.png" 960x640
check "masa plot --log-y --out FILE" "$masa" plot "$run" --log-y --out "$tmp/log.png"
expect_png "log-y PNG, same layout" "$tmp/log.png" 960x640
check "the log-y picture differs" bash -c "! cmp -s '$run/loss.png' '$tmp/log.png'"
check "masa plot --panel 300x200 --smooth 0" "$masa" plot "$run" --panel 300x200 --smooth 0 --out "$tmp/small.png"
expect_png "600 x 400 with 300 x 200 panels" "$tmp/small.png" 600x400

one="$tmp/one"
mkdir -p "$one"
printf '{"step": 0, "loss": 1.5}\n{"step": 10, "loss": 1.2}\n' >"$one/metrics.jsonl"
check "one loss term" "$masa" plot "$one"
expect_png "one term: a single 480 x 320 panel" "$one/loss.png" 480x320

expect_error "RUN_DIR required" "RUN_DIR is required" -- "$masa" plot
expect_error "missing metrics.jsonl" "metrics.jsonl: cannot read" -- "$masa" plot "$tmp/nowhere"
nol="$tmp/noloss"
mkdir -p "$nol"
printf '{"step": 0, "lr": 0.08}\n' >"$nol/metrics.jsonl"
expect_error "no loss column" "no loss column" -- "$masa" plot "$nol"
bad="$tmp/bad"
mkdir -p "$bad"
printf '{"step": 0, "loss": 1}\nnot json\n{"step": 2, "loss": 1}\n' >"$bad/metrics.jsonl"
expect_error "a bad line names file:line" "metrics.jsonl:2: not a JSON object" -- "$masa" plot "$bad"
expect_error "bad --smooth" "smooth expects" -- "$masa" plot "$run" --smooth 1.5
expect_error "bad --panel" "panel expects WxH" -- "$masa" plot "$run" --panel big
expect_error "tiny panels" "at least 160 x 120" -- "$masa" plot "$run" --panel 50x50
expect_error "unknown option" "unexpected argument '--frobnicate'" -- "$masa" plot "$run" --frobnicate
exit $fail
