//! Memory probe: puts random keys (16 bytes, 100-byte values, not synced) and prints, every
//! second, the process's resident memory beside the engine's own accounting (memtable bytes,
//! frozen memtables, L0 files, block cache use), then the peak.
//!
//! ```text
//! cargo run --release -p nanodb-storage --example rss_probe -- [KEYS [MEMTABLE_MIB]]
//! ```
//!
//! With a memtable larger than the data (`-- 1000000 4000`) nothing is flushed and the final
//! resident memory against the memtable's count checks the memtable's accounting.
//! Linux only (reads /proc/self/status).
use nanodb_storage::{Compression, Db, Options, WriteOptions};
use std::time::Instant;

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:")).unwrap_or("0 kB");
    line.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) / 1024
}

fn main() {
    let arg = |position: usize, default: u64| -> u64 {
        std::env::args().nth(position).map_or(default, |text| {
            text.parse().unwrap_or_else(|_| panic!("argument {position} must be a number"))
        })
    };
    let keys = arg(1, 10_000_000);
    let memtable_mib = arg(2, 64) as usize;
    let dir = std::env::temp_dir().join("nanodb-rss-probe");
    let _ = std::fs::remove_dir_all(&dir);
    let options = Options {
        memtable_size_bytes_max: memtable_mib << 20,
        block_cache_size_bytes: 64 << 20,
        compression: Compression::None,
        ..Default::default()
    };
    let db = Db::open(&dir, options).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let value = [7u8; 100];
    let start = Instant::now();
    let mut last = Instant::now();
    let mut peak = 0;
    for index in 0..keys {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = format!("{:016}", state % keys);
        db.put(key.as_bytes(), value, WriteOptions::NO_SYNC).unwrap();
        if last.elapsed().as_secs_f64() >= 1.0 {
            last = Instant::now();
            let stats = db.stats();
            let rss = rss_mib();
            peak = peak.max(rss);
            let l0 = stats.levels.first().map(|l| l.files).unwrap_or(0);
            println!(
                "t={:5.1}s n={index} rss={rss} MiB mem={} MiB frozen={} l0={l0} cache={:?} MiB",
                start.elapsed().as_secs_f64(),
                stats.memtable_size_bytes >> 20,
                stats.frozen_memtables,
                stats.block_cache.as_ref().map(|c| c.usage_bytes >> 20),
            );
        }
    }
    let stats = db.stats();
    println!("end: rss={} MiB mem={} MiB", rss_mib(), stats.memtable_size_bytes >> 20);
    println!("done in {:.1}s, peak rss {peak} MiB", start.elapsed().as_secs_f64());
}
