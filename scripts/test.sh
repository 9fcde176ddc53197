#!/usr/bin/env bash
# The test command: installs what the tests need (scripts/setup.sh), checks formatting and lints,
# then runs every test of the workspace, real etcd and the SIGKILL crash test included.
# Ends with cargo test's summary lines.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# A persistent target directory outside the clone keeps CI builds incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/rkube-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Fail loudly, never skip, when etcd is missing: the etcd conformance suite needs it.
command -v etcd >/dev/null || { echo "test.sh: etcd is not installed" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
