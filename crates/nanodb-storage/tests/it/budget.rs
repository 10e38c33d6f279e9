//! The shared memory budget: several databases writing as fast as they can stay within it
//! (accounted memory, and, in a child process, peak resident memory), early flushes happen,
//! and nothing written is lost.

use crate::common::key;
use nanodb_storage::{Db, MemoryBudget, Options, WriteOptions, MEMORY_BUDGET_BYTES_MIN};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const CHILD_ENV: &str = "NANODB_BUDGET_CHILD_DIR";
const VALUE_BYTES: usize = 1_000;

/// Opens `count` databases under `budget` in `root` and has one thread per database write
/// `bytes_each` as fast as it can; returns the databases.
fn write_hard(root: &Path, budget: &Arc<MemoryBudget>, count: u64, bytes_each: u64) -> Vec<Db> {
    let dbs: Vec<Db> = (0..count)
        .map(|index| {
            let options = Options {
                memory_budget: Some(Arc::clone(budget)),
                // Each alone could take far more than the budget's memtable share.
                memtable_size_bytes_max: 64 << 20,
                background_threads: 1,
                ..Options::default()
            };
            Db::open(root.join(format!("db{index}")), options).unwrap()
        })
        .collect();
    let threads: Vec<_> = dbs
        .iter()
        .map(|db| {
            let db = db.clone();
            std::thread::spawn(move || {
                let value = vec![7u8; VALUE_BYTES];
                for index in 0..bytes_each / VALUE_BYTES as u64 {
                    db.put(key(index), &value, WriteOptions::NO_SYNC).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    dbs
}

#[test]
fn databases_sharing_a_budget_keep_their_memtables_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let budget = MemoryBudget::new(32 << 20).unwrap();
    let share = budget.usage().memtable_share_bytes;
    let dbs = write_hard(dir.path(), &budget, 4, 24 << 20);
    let usage = budget.usage();
    // Over the share by at most what four writers add in one group each.
    let slack = 4 * 64 * 1024;
    assert!(
        usage.memtable_bytes_peak <= share + slack,
        "memtables peaked at {} bytes, share {share}",
        usage.memtable_bytes_peak
    );
    assert!(usage.early_flushes > 0, "no early flush: {usage:?}");
    assert!(usage.block_cache_bytes <= budget.block_cache().stats().capacity_bytes);
    for db in &dbs {
        let own = db.memory_usage();
        assert_eq!(own.budget.map(|b| b.total_bytes), Some(32 << 20));
        assert!(own.memtable_bytes + own.frozen_memtable_bytes <= share + slack);
        assert_eq!(db.get(key(0)).unwrap().map(|v| v.len()), Some(VALUE_BYTES));
        assert_eq!(db.prefix(b"key").unwrap().count() as u64, (24 << 20) / VALUE_BYTES as u64);
    }
    drop(dbs);
    assert_eq!(budget.usage().memtable_bytes, 0, "closed databases give their memtables back");
    assert!(MemoryBudget::new(MEMORY_BUDGET_BYTES_MIN - 1).is_err());
}

/// A memtable's key filter is charged to the budget when it is built and credited back
/// exactly at the flush: with two databases under one budget, flushing the one whose filter
/// was built leaves exactly the other's memtable bytes.
#[test]
fn a_memtable_key_filter_is_charged_to_the_budget_and_credited_back_at_flush() {
    let dir = tempfile::tempdir().unwrap();
    let budget = MemoryBudget::new(256 << 20).unwrap();
    let open = |name: &str| {
        let options = Options {
            memory_budget: Some(Arc::clone(&budget)),
            memtable_size_bytes_max: 1 << 20,
            ..Options::default()
        };
        Db::open(dir.path().join(name), options).unwrap()
    };
    let (filtered, other) = (open("filtered"), open("other"));
    other.put(b"k", b"v", WriteOptions::NO_SYNC).unwrap();
    // Past an eighth of 1 MiB of entries the filter (a 64th of 1 MiB, 16 KiB) is built: one
    // put then adds it at once, where a put otherwise adds at most an arena chunk (4 KiB).
    let filter_bytes = (1u64 << 20) / 64;
    let mut jumps = Vec::new();
    let mut before = filtered.memory_usage().memtable_bytes;
    for index in 0..400 {
        filtered.put(key(index), [7u8; 500], WriteOptions::NO_SYNC).unwrap();
        let now = filtered.memory_usage().memtable_bytes;
        if now - before >= filter_bytes {
            jumps.push((index, now - before));
        }
        before = now;
    }
    assert_eq!(jumps.len(), 1, "one put builds the filter: {jumps:?}");
    assert!(jumps[0].1 < filter_bytes + 8192, "{jumps:?}");
    let own = filtered.memory_usage().memtable_bytes;
    let other_bytes = other.memory_usage().memtable_bytes;
    assert_eq!(budget.usage().memtable_bytes, own + other_bytes);
    filtered.flush().unwrap();
    assert_eq!(filtered.memory_usage().memtable_bytes, 0);
    assert_eq!(budget.usage().memtable_bytes, other_bytes, "credited exactly what was charged");
    assert_eq!(filtered.get(key(399)).unwrap().map(|v| v.len()), Some(500));
}

/// Peak resident memory of a process whose only work is four databases writing 128 MiB under a
/// 64 MiB budget: at most the budget plus `OVERHEAD_BYTES` (the test binary, thread stacks,
/// pinned SST indexes and filters, WAL and SST write buffers; see docs/reliability.md).
#[test]
fn peak_resident_memory_stays_within_the_budget_and_a_small_overhead() {
    const BUDGET_BYTES: u64 = 64 << 20;
    const OVERHEAD_BYTES: u64 = 48 << 20;
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        // The cache fixed at its half: with the default, it grows to the whole budget once
        // the memtables are flushed, while the allocator may keep what they gave back.
        let budget = MemoryBudget::with_fixed_cache(BUDGET_BYTES, 50).unwrap();
        let dbs = write_hard(Path::new(&dir), &budget, 4, 32 << 20);
        for db in &dbs {
            // Reads fill the shared block cache too.
            assert_eq!(db.iter().unwrap().count() as u64, (32 << 20) / VALUE_BYTES as u64);
        }
        let peak = peak_rss_bytes().expect("VmHWM");
        println!("PEAK_RSS_BYTES={peak} BUDGET_PEAK={}", budget.usage().memtable_bytes_peak);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "budget::peak_resident_memory_stays_within_the_budget_and_a_small_overhead",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peak: u64 = stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix("PEAK_RSS_BYTES="))
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("no peak in {stdout}"));
    println!("peak RSS {} MiB for a {} MiB budget", peak >> 20, BUDGET_BYTES >> 20);
    assert!(
        peak <= BUDGET_BYTES + OVERHEAD_BYTES,
        "peak RSS {} MiB over the {} MiB budget plus {} MiB",
        peak >> 20,
        BUDGET_BYTES >> 20,
        OVERHEAD_BYTES >> 20
    );
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
