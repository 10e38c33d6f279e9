#!/usr/bin/env bash
# Profiles NanoDB in one nanodb-bench workload with `perf record` (no call graphs: a flat
# profile by symbol), attaching to the worker only while that workload runs.
#
#   scripts/bench-profile.sh seekrandom                    # quick size
#   scripts/bench-profile.sh readreverse,ycsb-e --full     # 10,000,000 keys (minutes)
#
# Writes target/nanodb-bench/perf-WORKLOAD.data and prints the top symbols of each. Needs `perf` and a
# built `target/release/nanodb-bench` (scripts/bench.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
workloads="${1:?usage: scripts/bench-profile.sh WORKLOAD[,WORKLOAD...] [nanodb-bench flags]}"
shift
order=(fillrandom overwrite readrandom readmissing readseq readreverse seekrandom ycsb-c ycsb-b ycsb-a ycsb-f ycsb-e deleterandom)
previous_of() {
    local previous=""
    for name in "${order[@]}"; do
        if [ "$name" = "$1" ]; then
            echo "$previous"
            return
        fi
        previous="$name"
    done
}
mkdir -p target/nanodb-bench
log="target/nanodb-bench/profile.log"
./target/release/nanodb-bench run --engines nanodb --repeats 1 "$@" >"$log" 2>&1 &
runner=$!
trap 'kill "$runner" 2>/dev/null; pkill -f "nanodb-bench worker --engine nanodb" || true' EXIT
wait_for() {
    until grep -q "nanodb  *$1 " "$log"; do
        if ! kill -0 "$runner" 2>/dev/null; then
            echo "bench-profile: the run ended before $1" >&2
            exit 1
        fi
        sleep 0.2
    done
}
# In the order the harness runs them.
for name in "${order[@]}"; do
    case ",$workloads," in *",$name,"*) ;; *) continue ;; esac
    previous=$(previous_of "$name")
    if [ -z "$previous" ]; then
        echo "bench-profile: $name is not a main-group workload after the fill" >&2
        exit 2
    fi
    wait_for "$previous"
    worker=$(pgrep -f "nanodb-bench worker --engine nanodb" | head -1)
    out="target/nanodb-bench/perf-$name.data"
    perf record -F 499 -p "$worker" -o "$out" 2>/dev/null &
    perf_pid=$!
    wait_for "$name"
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    grep "nanodb  *$name " "$log"
    perf report -i "$out" --no-children --percent-limit 1.5 --stdio 2>/dev/null |
        grep -v "^#" | grep -v "^$" | head -30
done
