//! File I/O through the public API: the rate limit on flushes and compactions, the bound on
//! open SST files, index and filter blocks pinned or in the block cache, and the bloom filter
//! counters (the reads it saves), and SSTs read through memory maps (`mmap_reads`).

use nanodb_storage::{
    Compression, Db, Options, WriteOptions, LEVEL_SIZE_BYTES_MIN, MEMTABLE_SIZE_BYTES_MAX_MIN,
    OPEN_FILES_MAX_MIN,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn fill(db: &Db, keys: u32, value_len: usize) {
    for index in 0..keys {
        db.put(format!("key{index:06}"), vec![index as u8; value_len], WriteOptions::NO_SYNC)
            .unwrap();
    }
}

#[test]
fn the_rate_limit_paces_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 1u64 << 20;
    let options = Options { rate_limit_bytes_per_sec: rate, ..Default::default() };
    let db = Db::open(dir.path(), options).unwrap();
    fill(&db, 600, 1000);
    let began = Instant::now();
    db.flush().unwrap();
    let elapsed = began.elapsed();
    let stats = db.stats();
    assert!(stats.rate_limit_bytes >= stats.flush_bytes_written, "{stats}");
    // The bucket starts with 10 ms of credit; only a lower bound is safe on a busy machine.
    let expected = Duration::from_secs_f64(stats.flush_bytes_written as f64 / rate as f64)
        .saturating_sub(Duration::from_millis(10));
    assert!(elapsed >= expected.mul_f64(0.95), "{elapsed:?} < {expected:?}");
    let waited = Duration::from_micros(stats.rate_limit_wait_micros);
    assert!(waited >= expected.mul_f64(0.95), "waited {waited:?} < {expected:?}");
    assert_eq!(db.get("key000599").unwrap().unwrap().len(), 1000);
}

#[test]
fn closing_does_not_wait_for_a_slow_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    // At 1 KiB/s this flush would take about ten minutes.
    let options = Options { rate_limit_bytes_per_sec: 1024, ..Default::default() };
    let db = Db::open(dir.path(), options).unwrap();
    fill(&db, 600, 1000);
    let flusher = {
        let db = db.clone();
        std::thread::spawn(move || db.flush())
    };
    std::thread::sleep(Duration::from_millis(200));
    let began = Instant::now();
    db.close().unwrap();
    assert!(began.elapsed() < Duration::from_secs(60), "close took {:?}", began.elapsed());
    // The flush either finished at full speed or saw the database close.
    let _ = flusher.join().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for index in (0..600u32).step_by(7) {
        assert_eq!(db.get(format!("key{index:06}")).unwrap().unwrap()[0], index as u8);
    }
}

/// Tiny memtables and output files: a few hundred kilobytes make dozens of SSTs. Unpinned,
/// index and filter blocks go through a block cache far smaller than the data.
fn many_files(pin_index_and_filter: bool) -> Options {
    Options {
        pin_index_and_filter,
        block_cache_size_bytes: if pin_index_and_filter { 1 << 20 } else { 32 << 10 },
        memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN,
        sst_size_bytes_target: LEVEL_SIZE_BYTES_MIN,
        level_size_base_bytes: 4 * LEVEL_SIZE_BYTES_MIN,
        block_size_bytes: 256,
        open_files_max: OPEN_FILES_MAX_MIN,
        background_threads: 0,
        // Raw blocks: the repetitive values would compress into too few files.
        compression: Compression::None,
        ..Default::default()
    }
}

fn ssts_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sst"))
        .count() as u64
}

fn live_ssts(db: &Db) -> u64 {
    db.stats().levels.iter().map(|level| level.files).sum()
}

#[test]
fn more_files_than_open_files_max_read_correctly_and_are_deleted_in_time() {
    many_files_read_correctly(true);
}

#[test]
fn unpinned_index_and_filter_in_a_tiny_block_cache_read_correctly() {
    many_files_read_correctly(false);
}

fn many_files_read_correctly(pin: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), many_files(pin)).unwrap();
    let value = |index: u32, round: u32| format!("{index}-{round}-{}", "v".repeat(60));
    for round in 0..2 {
        for index in (0..3000u32).rev() {
            db.put(format!("key{index:05}"), value(index, round), WriteOptions::NO_SYNC).unwrap();
        }
    }
    db.flush().unwrap();
    let files = live_ssts(&db);
    assert!(files > 4 * OPEN_FILES_MAX_MIN as u64, "only {files} SSTs");

    for step in 0..3000u32 {
        let index = step * 7 % 3000;
        let found = db.get(format!("key{index:05}")).unwrap();
        assert_eq!(found, Some(value(index, 1).into_bytes()), "key{index:05}");
    }
    assert_eq!(db.get("key99999").unwrap(), None);
    let stats = db.stats();
    assert!(stats.table_cache_files <= OPEN_FILES_MAX_MIN as u64, "{stats}");
    assert!(stats.table_cache_misses > 0 && stats.table_cache_hits > 0, "{stats}");
    assert!(stats.table_cache_opens >= files + stats.table_cache_misses, "{stats}");
    assert_eq!(stats.table_cache_pinned_bytes > 0, pin, "{stats}");
    let cache = stats.block_cache.unwrap();
    assert!(cache.usage_bytes <= cache.capacity_bytes, "{cache:?}");
    // Every get of a present key consulted one filter per file it searched.
    assert!(stats.bloom_checks >= 3000, "{stats}");

    // An iterator started before a full compaction keeps reading the old files, opening them
    // again as it goes; they are deleted only when it is dropped.
    let mut iter = db.iter().unwrap();
    let first = iter.next().unwrap().unwrap();
    assert_eq!(first.0, b"key00000");
    db.compact_all().unwrap();
    assert!(ssts_on_disk(dir.path()) > live_ssts(&db));
    assert_eq!(iter.count(), 2999);
    assert_eq!(ssts_on_disk(dir.path()), live_ssts(&db));

    let reverse: Vec<_> = db.iter().unwrap().rev().map(|entry| entry.unwrap().0).collect();
    assert_eq!(reverse.len(), 3000);
    assert_eq!(reverse[0], b"key02999");
    assert_eq!(db.verify().unwrap().sst_entries, 3000);
    assert!(db.stats().table_cache_files <= OPEN_FILES_MAX_MIN as u64);
    db.close().unwrap();

    let db = Db::open(dir.path(), many_files(pin)).unwrap();
    assert_eq!(db.get("key01234").unwrap(), Some(value(1234, 1).into_bytes()));
    assert_eq!(db.iter().unwrap().count(), 3000);
}

#[test]
fn bloom_counters_count_checks_and_skips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { background_threads: 0, ..Default::default() };
    let db = Db::open(dir.path(), options).unwrap();
    // Taken before any write: every file is newer, so reads through it skip files unchecked.
    let before = db.snapshot().unwrap();
    // Even keys in one SST; odd keys lie in its range but are absent.
    for index in (0..20_000u32).step_by(2) {
        db.put(format!("key{index:05}"), b"v", WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
    assert_eq!(live_ssts(&db), 1);

    // The odd keys below the largest key, key19998 (key19999 is out of range, not checked).
    let absent = 9999u64;
    for index in (1..19_998u32).step_by(2) {
        assert_eq!(db.get(format!("key{index:05}")).unwrap(), None);
    }
    let stats = db.stats();
    assert_eq!(stats.bloom_checks, absent, "one file covers every key: {stats}");
    // A skip is always right (no false negatives); every check not skipped read the file.
    assert_eq!(stats.sst_reads, stats.bloom_checks - stats.bloom_skips, "{stats}");
    let false_positive_rate = (absent - stats.bloom_skips) as f64 / absent as f64;
    // Theory for the blocked filter at 10 bits per key and 7 probes: 0.96% (docs/format/sst.md).
    assert!(false_positive_rate < 0.0096 * 1.5 + 0.002, "{false_positive_rate}");

    // Present keys are checked and never skipped; keys outside the file's range and reads
    // below the file's seqnos are not checked at all.
    for index in (0..2000u32).step_by(2) {
        assert!(db.get(format!("key{index:05}")).unwrap().is_some());
    }
    assert_eq!(db.get("zzz").unwrap(), None);
    assert_eq!(before.get("key00000").unwrap(), None);
    let after = db.stats();
    assert_eq!(after.bloom_checks, stats.bloom_checks + 1000, "{after}");
    assert_eq!(after.bloom_skips, stats.bloom_skips, "{after}");
    assert_eq!(after.sst_reads, stats.sst_reads + 1000, "{after}");
    drop(before);
    db.close().unwrap();

    // Without filters nothing is checked and every covered read searches the file.
    let options = Options { bloom_bits_per_key: 0, ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options).unwrap();
    fill(&db, 100, 10);
    db.flush().unwrap();
    assert_eq!(db.get("key000050").unwrap().unwrap().len(), 10);
    assert_eq!(db.get("key000050x").unwrap(), None);
    let stats = db.stats();
    assert_eq!((stats.bloom_checks, stats.bloom_skips, stats.sst_reads), (0, 0, 2), "{stats}");
}

/// Puts and deletes of random keys with values of random sizes (some blocks compressed, some
/// stored raw), flushed and compacted into several files, read back through memory maps and
/// through `pread`, with and without a block cache, against a `BTreeMap`.
#[test]
fn mmap_reads_answer_as_pread_does() {
    crate::common::with_seed("mmap_reads", crate::common::base_seed(), |seed| {
        let mut rng = crate::common::Rng::new(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut model = std::collections::BTreeMap::new();
        let options = |mmap_reads: bool, block_cache_size_bytes: u64| Options {
            mmap_reads,
            block_cache_size_bytes,
            memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN,
            ..Default::default()
        };
        let db = Db::open(dir.path(), options(true, 0)).unwrap();
        for round in 0..4 {
            for _ in 0..1500 {
                let key = format!("key{:05}", rng.below(4000)).into_bytes();
                if rng.chance(20) {
                    db.delete(&key, WriteOptions::NO_SYNC).unwrap();
                    model.remove(&key);
                } else {
                    let len = rng.below(700) as usize;
                    let value =
                        if rng.chance(50) { rng.bytes(len) } else { vec![round as u8; len] };
                    db.put(&key, &value, WriteOptions::NO_SYNC).unwrap();
                    model.insert(key, value);
                }
            }
            db.flush().unwrap();
        }
        db.compact_all().unwrap();
        db.close().unwrap();
        for (mmap_reads, cache_bytes) in [(true, 0), (true, 1 << 20), (false, 0), (false, 1 << 20)]
        {
            let db = Db::open(dir.path(), options(mmap_reads, cache_bytes)).unwrap();
            let stats = db.stats();
            assert!(stats.table_cache_opens > 0, "{stats}");
            let mapped_expected = if mmap_reads { stats.table_cache_opens } else { 0 };
            assert_eq!(stats.table_cache_opens_mapped, mapped_expected, "{stats}");
            for index in 0..4000 {
                let key = format!("key{index:05}").into_bytes();
                assert_eq!(db.get(&key).unwrap(), model.get(&key).cloned(), "{index} {mmap_reads}");
            }
            let scanned: Vec<(Vec<u8>, Vec<u8>)> =
                db.iter().unwrap().map(|entry| entry.unwrap()).collect();
            let expected: Vec<(Vec<u8>, Vec<u8>)> =
                model.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
            assert!(scanned == expected, "scan differs (mmap_reads {mmap_reads})");
            db.close().unwrap();
        }
    });
}

/// A data block damaged on disk before the file is mapped is a checksum error for the
/// lookups that read it, never a wrong value or a panic.
#[test]
fn a_damaged_block_read_through_a_map_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { mmap_reads: true, block_cache_size_bytes: 0, ..Default::default() };
    let db = Db::open(dir.path(), options.clone()).unwrap();
    fill(&db, 2000, 100);
    db.flush().unwrap();
    db.close().unwrap();
    let ssts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sst"))
        .collect();
    assert_eq!(ssts.len(), 1, "{ssts:?}");
    let mut bytes = std::fs::read(&ssts[0]).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&ssts[0], &bytes).unwrap();
    let db = Db::open(dir.path(), options).unwrap();
    let errors: Vec<_> =
        (0..2000).filter_map(|index| db.get(format!("key{index:06}")).err()).collect();
    assert!(!errors.is_empty(), "no lookup read the damaged block");
    for error in &errors {
        assert!(matches!(error, nanodb_storage::Error::ChecksumMismatch { .. }), "{error}");
    }
    // The lookups of other blocks still answer.
    assert_eq!(db.get("key001999").unwrap().unwrap(), vec![(1999 % 256) as u8; 100]);
    db.close().unwrap();
    // A file shorter than the manifest says is refused at open, before it is mapped.
    bytes.truncate(bytes.len() - 100);
    std::fs::write(&ssts[0], &bytes).unwrap();
    let options = Options { mmap_reads: true, ..Default::default() };
    let error = Db::open(dir.path(), options).unwrap_err();
    assert!(matches!(error, nanodb_storage::Error::Corruption { .. }), "{error}");
}
