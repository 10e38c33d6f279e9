#!/usr/bin/env bash
# Installs what the benchmark suite needs beyond Rust: libclang (bindgen, for the RocksDB
# crate) and a C/C++ compiler (RocksDB, LMDB and SQLite are built from the crates' bundled
# sources). Debian/Ubuntu; run as root or with sudo. Idempotent.
set -euo pipefail
need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
dpkg -s clang >/dev/null 2>&1 || need+=(clang)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
if [ ${#need[@]} -eq 0 ]; then
    echo "bench-setup: nothing to install"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
echo "bench-setup: installed ${need[*]}"
