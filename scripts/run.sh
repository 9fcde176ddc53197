#!/usr/bin/env bash
# The main job, until there is a cluster to run: installs what is needed (scripts/setup.sh),
# builds rkube, and runs the store benchmark, the embedded store against a real single-member
# etcd side by side. Pass --out bench/RESULTS.md-style paths or other store-bench flags through.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/rkube-target}"
cargo build --release --locked -p rkube -p rkube-bench
exec "$CARGO_TARGET_DIR/release/store-bench" "$@"
