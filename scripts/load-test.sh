#!/usr/bin/env bash
# The load test of `nanodb serve` (issue 7's figures): builds the release `nanodb` and
# `nanodb-bench` (without the peer engines), then runs `nanodb-bench serve`: two collections
# of N records each seeded into a fresh data directory, then get by id, a list with a filter
# on an indexed field, a list under a row-level list rule (as users) and creates, each at 64
# connections, with requests/s, p50/p99 latency, the server's CPU time and resident memory.
#
#   scripts/load-test.sh small          # 20,000 records, 5 s per workload: about a minute
#   scripts/load-test.sh full           # 1,000,000 records, 20 s per workload: several minutes
#   scripts/load-test.sh full --out results.jsonl --connections 32   # extra flags pass through
#
# The machines are shared: run the full size when nothing else heavy runs (check `uptime`).
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-small}"
shift || true
case "$size" in
    small) flags=(--records 20000 --users 100 --seconds 5 --warmup 1) ;;
    full) flags=(--records 1000000 --users 1000 --seconds 20 --warmup 3) ;;
    *) echo "usage: scripts/load-test.sh small|full [nanodb-bench serve flags]" >&2; exit 2 ;;
esac
cargo build --release --locked -p nanodb-cli -p nanodb-bench --no-default-features
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec "$target_dir/release/nanodb-bench" serve --bin "$target_dir/release/nanodb" "${flags[@]}" "$@"
