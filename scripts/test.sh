#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, clippy with warnings denied, all
# unit and integration tests (model-based, SimFs crash, SIGKILL, corruption), then the
# Node.js suite of the official PocketBase SDK against a real `nanodb serve` (tests/sdk:
# needs Node.js 20 or later and npm; its packages come from its lockfile with `npm ci`).
#
# Size knob: NANODB_TEST_SCALE multiplies the randomized tests' work (default 1, as CI runs).
# Replay a randomized failure with the seed it printed: NANODB_TEST_SEED=<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."
# A from-scratch build gains nothing from incremental caches, which would take gigabytes of
# disk beside the test binaries (set CARGO_INCREMENTAL=1 to keep them for repeated local runs).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

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
echo "== SDK suite (Node.js, the official pocketbase package against nanodb serve)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm not found: the SDK suite (tests/sdk) needs Node.js 20 or later," \
        "from https://nodejs.org or your package manager" >&2
    exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "Node.js $(node --version) is too old: the SDK suite needs Node.js 20 or later" >&2
    exit 1
fi
# The binary the tests above built (the test profile: optimised, with debug assertions).
cargo build --profile test -p nanodb-cli --locked
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')
(
    cd tests/sdk
    npm ci --no-audit --no-fund --loglevel=error
    NANODB_BIN="$target_dir/debug/nanodb" npm test
)
