# Shared by the tests/cli_*.sh scripts (sourced; not a test itself).
#   expect NAME EXPECTED_STATUS PATTERN -- command...
# runs the command, and passes when it exits with EXPECTED_STATUS and its output (stdout and
# stderr) matches the grep pattern; a failure prints the tail of the output and sets fail=1.
fail=${fail:-0}
expect() {
  local name=$1 want=$2 pat=$3
  shift 4
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [ "$status" -eq "$want" ] && grep -q -- "$pat" <<<"$out"; then
    echo "  $name: PASS"
  else
    echo "  $name: FAIL (status $status, want $want; output must match '$pat')"
    echo "$out" | sed 's/^/    | /' | tail -20
    fail=1
  fi
}
