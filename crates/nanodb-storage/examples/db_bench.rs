//! A small db_bench-style benchmark of nanodb-storage alone: fillseq, fillrandom, readrandom
//! and readseq. The side-by-side comparison with other engines lives in nanodb-bench.
//!
//! ```text
//! cargo run --release -p nanodb-storage --example db_bench -- [--keys N] [--value-size B] [--dir PATH]
//! ```
//!
//! Keys are 16 bytes (the decimal index, zero-padded), values `--value-size` bytes (default
//! 100), writes are not synced (as db_bench's default). Each workload reports throughput and
//! latency percentiles from every operation's duration.

use nanodb_storage::{Db, Options, WriteOptions};
use std::time::{Duration, Instant};

struct Config {
    keys: u64,
    value_size: usize,
    dir: std::path::PathBuf,
}

fn parse_args() -> Config {
    let mut config = Config {
        keys: 1_000_000,
        value_size: 100,
        dir: std::env::temp_dir().join("nanodb-db-bench"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--keys" => config.keys = value.parse().expect("--keys takes a number"),
            "--value-size" => {
                config.value_size = value.parse().expect("--value-size takes a number")
            }
            "--dir" => config.dir = value.into(),
            other => panic!("unknown flag {other}; flags: --keys --value-size --dir"),
        }
    }
    config
}

fn key_of(index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key.copy_from_slice(format!("{index:016}").as_bytes());
    key
}

/// A deterministic permutation of 0..count (multiplicative hashing with an odd constant
/// modulo a power of two, skipping values out of range).
fn shuffled(count: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..count).collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for index in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(index, (state % (index as u64 + 1)) as usize);
    }
    order
}

struct Report {
    name: &'static str,
    ops: u64,
    elapsed: Duration,
    latencies_ns: Vec<u64>,
    bytes: u64,
}

impl Report {
    fn print(mut self) {
        self.latencies_ns.sort_unstable();
        let percentile = |p: f64| {
            let index = ((self.latencies_ns.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_ns.get(index).copied().unwrap_or(0) as f64 / 1000.0
        };
        let seconds = self.elapsed.as_secs_f64();
        println!(
            "{:<11} {:>10.0} ops/s {:>8.1} MB/s   p50 {:>7.2} us  p99 {:>7.2} us  p99.9 {:>8.2} us",
            self.name,
            self.ops as f64 / seconds,
            self.bytes as f64 / seconds / 1e6,
            percentile(0.50),
            percentile(0.99),
            percentile(0.999),
        );
    }
}

fn timed(name: &'static str, ops: u64, bytes: u64, mut op: impl FnMut(u64)) -> Report {
    let mut latencies_ns = Vec::with_capacity(ops as usize);
    let started = Instant::now();
    for index in 0..ops {
        let op_started = Instant::now();
        op(index);
        latencies_ns.push(op_started.elapsed().as_nanos() as u64);
    }
    Report { name, ops, elapsed: started.elapsed(), latencies_ns, bytes }
}

fn fresh_db(config: &Config) -> Db {
    let _ = std::fs::remove_dir_all(&config.dir);
    Db::open(&config.dir, Options::default()).expect("open")
}

fn main() {
    let config = parse_args();
    let value = vec![b'v'; config.value_size];
    let entry_bytes = (16 + config.value_size) as u64 * config.keys;
    println!(
        "nanodb-storage db_bench: {} keys, 16-byte keys, {}-byte values, writes not synced, dir {}",
        config.keys,
        config.value_size,
        config.dir.display()
    );

    let db = fresh_db(&config);
    timed("fillseq", config.keys, entry_bytes, |index| {
        db.put(key_of(index), &value, WriteOptions::NO_SYNC).expect("put");
    })
    .print();
    db.close().expect("close");

    let order = shuffled(config.keys);
    let db = fresh_db(&config);
    timed("fillrandom", config.keys, entry_bytes, |index| {
        db.put(key_of(order[index as usize]), &value, WriteOptions::NO_SYNC).expect("put");
    })
    .print();
    db.flush().expect("flush");

    let reads = shuffled(config.keys);
    timed("readrandom", config.keys, entry_bytes, |index| {
        let found = db.get(key_of(reads[index as usize])).expect("get");
        assert!(found.is_some(), "key {} missing", reads[index as usize]);
    })
    .print();

    let mut iter = db.iter().expect("iter");
    let mut seen = 0u64;
    let report = timed("readseq", config.keys, entry_bytes, |_| {
        iter.next().expect("entry").expect("read");
        seen += 1;
    });
    assert!(iter.next().is_none());
    report.print();
    println!("\n{}", db.stats());
    db.close().expect("close");
    let _ = std::fs::remove_dir_all(&config.dir);
}
