#!/usr/bin/env bash
# Runs nanodb-bench against every peer that builds here and writes docs/benchmarks.md and the
# charts in docs/benchmarks/.
#
#   scripts/bench.sh quick            # 200,000 keys, 3 repeats: a few minutes per engine
#   scripts/bench.sh full             # 10,000,000 keys, 3 repeats: hours
#   scripts/bench.sh quick --engines nanodb,fjall --repeats 1    # extra flags pass through
#
# Set NANODB_BENCH_ROCKSDB=0 to leave RocksDB out (it needs libclang and a long C++ build,
# which scripts/bench-setup.sh installs).
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-quick}"
shift || true
features="lmdb,redb,fjall,sled,sqlite"
if [ "${NANODB_BENCH_ROCKSDB:-1}" = "1" ]; then
    bash scripts/bench-setup.sh
    features="$features,rocksdb"
fi
cargo build --release -p nanodb-bench --no-default-features --features "$features"
exec ./target/release/nanodb-bench run "--$size" --write-docs --size-label "$size" "$@"
