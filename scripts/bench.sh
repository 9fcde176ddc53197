#!/usr/bin/env bash
# Builds and runs a benchmark of bench/: `scripts/bench.sh store [flags]` (the store, embedded
# against a real etcd), `scripts/bench.sh api [flags]` (the API server) or
# `scripts/bench.sh scheduler [flags]` (the scheduler on upstream's scheduler_perf workloads). Pass
# `--out bench/RESULTS.md` to record the figures; `--help` lists each benchmark's flags.
set -euo pipefail
cd "$(dirname "$0")/.."

which="${1:-}"
shift || true
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/rkube-target}"
cargo build --release --locked -p rkube-bench
case "$which" in
  store) exec "$CARGO_TARGET_DIR/release/store-bench" "$@" ;;
  api) exec "$CARGO_TARGET_DIR/release/api-bench" "$@" ;;
  scheduler) exec "$CARGO_TARGET_DIR/release/scheduler-bench" "$@" ;;
  pod-startup) exec "$CARGO_TARGET_DIR/release/pod-startup-bench" "$@" ;;
  *) echo "usage: scripts/bench.sh store|api|scheduler|pod-startup [flags]" >&2; exit 2 ;;
esac
