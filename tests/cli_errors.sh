#!/usr/bin/env bash
# CLI behaviour: clear messages and non-zero exits on bad input; distinct exit code for
# `masa check` without a GPU. Usage: cli_errors.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
. "$src/tests/lib_cli.sh"
printf 'bench.channels = 64\nbench.chanels = 3\n' >"$tmp/typo.cfg"
printf 'bench.repeats = many\n' >"$tmp/badval.cfg"
expect "usage without command" 1 "usage: masa" -- "$masa"
expect "unknown command" 1 "unknown command 'frobnicate'" -- "$masa" frobnicate
expect "version" 0 "masa 0.1.0" -- "$masa" version
if "$masa" version | grep -q "CUDA kernels: built"; then  # proves cuBLAS, cuDNN, NCCL link and load
  expect "version lists CUDA libraries" 0 "cuBLAS .*cuDNN .*NCCL" -- "$masa" version
fi
expect "config unknown key names file:line" 1 "typo.cfg:2: unknown key 'bench.chanels'" -- "$masa" config --config "$tmp/typo.cfg"
expect "config bad value names file:line" 1 "badval.cfg:1: key 'bench.repeats' expects an integer" -- "$masa" config --config "$tmp/badval.cfg"
expect "config missing file" 1 "nonexistent.cfg: cannot open config" -- "$masa" config --config "$tmp/nonexistent.cfg"
expect "config --set override shown" 0 "bench.repeats = 3  # --set" -- "$masa" config --config "$src/configs/bench_ops.cfg" --set bench.repeats=3
expect "bad --threads" 1 "threads: expected a positive integer" -- "$masa" config --threads zero
expect "bench needs 'ops'" 1 "usage: masa bench ops" -- "$masa" bench
for c in "$src"/configs/*.cfg; do
  expect "recipe $(basename "$c") validates" 0 "= " -- "$masa" config --config "$c"
done
# No GPU on CI machines: exit 3 with a message. On a GPU machine the check itself must pass.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  expect "GPU check passes" 0 "checks passed" -- "$masa" check
else
  expect "GPU check says no GPU (exit 3)" 3 "masa check:" -- "$masa" check
fi
exit $fail
