#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, clippy with warnings denied, and all
# unit and integration tests (model-based, SimFs crash, SIGKILL, corruption).
#
# Size knob: NANODB_TEST_SCALE multiplies the randomized tests' work (default 1, as CI runs).
# Replay a randomized failure with the seed it printed: NANODB_TEST_SEED=<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust from https://rustup.rs" >&2
    exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== rustfmt"
cargo fmt --all -- --check
# The default members, then nanodb-bench without the peer engines: the test command never
# builds RocksDB, LMDB, SQLite and friends (scripts/bench.sh does).
echo "== clippy"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy -p nanodb-storage --features bench-internals --all-targets --locked -- -D warnings
cargo clippy -p nanodb-bench --no-default-features --all-targets --locked -- -D warnings
echo "== tests"
cargo test --locked
cargo test -p nanodb-bench --no-default-features --locked
