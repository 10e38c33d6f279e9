//! Compaction through the public API: levels, dropped versions and tombstones, snapshots
//! across compactions, deferred file deletion, corruption, crashes in the middle of a
//! compaction, and readers racing background compaction.

use crate::common::{base_seed, key, small_levels, with_seed, Rng};
use nanodb_storage::fs::{CrashMode, SimFs};
use nanodb_storage::{Db, Error, Options, WriteBatch, WriteOptions, FILTER_KEYS_PER_OUTPUT_MAX};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Like `small_levels`, but nothing compacts until `compact_all`.
fn manual_only(sim: &SimFs) -> Options {
    Options {
        l0_compaction_trigger: 1000,
        l0_slowdown_trigger: 1000,
        l0_stop_trigger: 1000,
        ..small_levels(sim)
    }
}

fn sst_count_on_disk(sim: &SimFs, dir: &Path) -> u64 {
    sim.file_names(dir).iter().filter(|name| name.ends_with(".sst")).count() as u64
}

fn sst_count_live(db: &Db) -> u64 {
    db.stats().levels.iter().map(|level| level.files).sum()
}

fn check_against(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let scanned: Vec<(Vec<u8>, Vec<u8>)> = db.iter().unwrap().map(|entry| entry.unwrap()).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(scanned.len(), expected.len());
    assert!(scanned == expected, "full scan differs from the model");
    let reversed: Vec<(Vec<u8>, Vec<u8>)> =
        db.iter().unwrap().rev().map(|entry| entry.unwrap()).collect();
    assert!(reversed.iter().rev().eq(expected.iter()), "reverse scan differs from the model");
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{}", String::from_utf8_lossy(k));
    }
}

#[test]
fn levels_build_up_sorted_and_match_a_model() {
    with_seed("levels_build_up_sorted_and_match_a_model", base_seed(), |seed| {
        let sim = SimFs::new();
        let db = Db::open("/db", small_levels(&sim)).unwrap();
        let mut rng = Rng::new(seed);
        let mut model = BTreeMap::new();
        for step in 0..20_000u64 {
            let k = key(rng.below(3000));
            if rng.chance(15) {
                db.delete(&k, WriteOptions::NO_SYNC).unwrap();
                model.remove(&k);
            } else {
                let value = format!("v{step}").into_bytes();
                db.put(&k, &value, WriteOptions::NO_SYNC).unwrap();
                model.insert(k, value);
            }
        }
        let stats = db.stats();
        let deep_levels = stats.levels.iter().skip(1).filter(|level| level.files > 0).count();
        assert!(deep_levels >= 2, "expected several levels: {stats}");
        assert!(stats.compactions > 10, "{stats}");
        assert!(stats.compaction_entries_dropped > 0, "{stats}");
        db.verify().unwrap(); // includes the no-overlap check of every level below L0
        check_against(&db, &model);
        assert_eq!(sst_count_on_disk(&sim, Path::new("/db")), sst_count_live(&db));
        db.close().unwrap();
        let db = Db::open("/db", small_levels(&sim)).unwrap();
        check_against(&db, &model);
    });
}

#[test]
fn compact_all_drops_overwritten_versions_and_tombstones() {
    let sim = SimFs::new();
    let options = manual_only(&sim);
    let db = Db::open("/db", options).unwrap();
    let mut model = BTreeMap::new();
    for round in 0..10u64 {
        for index in 0..500 {
            let value = format!("round{round}-{index}").into_bytes();
            db.put(key(index), &value, WriteOptions::NO_SYNC).unwrap();
            model.insert(key(index), value);
        }
    }
    for index in (0..500).step_by(2) {
        db.delete(key(index), WriteOptions::NO_SYNC).unwrap();
        model.remove(&key(index));
    }
    db.compact_all().unwrap();
    let stats = db.stats();
    // Only the last level holds files, and only the 250 live entries remain in them.
    assert!(stats.levels[..6].iter().all(|level| level.files == 0), "{stats}");
    let report = db.verify().unwrap();
    assert_eq!(report.sst_entries, 250, "{stats}");
    check_against(&db, &model);
    assert_eq!(sst_count_on_disk(&sim, Path::new("/db")), sst_count_live(&db));
}

#[test]
fn snapshots_keep_the_versions_they_see_across_compactions() {
    let sim = SimFs::new();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    for index in 0..300 {
        db.put(key(index), b"old", WriteOptions::NO_SYNC).unwrap();
    }
    let snapshot = db.snapshot().unwrap();
    for index in 0..300 {
        if index % 3 == 0 {
            db.delete(key(index), WriteOptions::NO_SYNC).unwrap();
        } else {
            db.put(key(index), b"new", WriteOptions::NO_SYNC).unwrap();
        }
    }
    db.compact_all().unwrap();
    for index in 0..300 {
        assert_eq!(snapshot.get(key(index)).unwrap().as_deref(), Some(&b"old"[..]));
        let now = db.get(key(index)).unwrap();
        assert_eq!(now.as_deref(), (index % 3 != 0).then_some(&b"new"[..]));
    }
    assert_eq!(snapshot.iter().count(), 300);
    let entries_with_snapshot = db.verify().unwrap().sst_entries;
    assert_eq!(entries_with_snapshot, 600, "both versions of every key are kept");
    drop(snapshot);
    db.compact_all().unwrap();
    assert_eq!(db.verify().unwrap().sst_entries, 200, "old versions and tombstones go");
}

#[test]
fn compacted_files_are_deleted_only_after_the_last_iterator_drops() {
    let sim = SimFs::new();
    let options = manual_only(&sim);
    let db = Db::open("/db", options).unwrap();
    for index in 0..400 {
        db.put(key(index), b"value", WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
    let before = sst_count_on_disk(&sim, Path::new("/db"));
    assert!(before > 2);
    let mut iter = db.iter().unwrap();
    let snapshot = db.snapshot().unwrap();
    let snapshot_iter = snapshot.iter();
    drop(snapshot);
    assert_eq!(iter.next().unwrap().unwrap().0, key(0));
    db.compact_all().unwrap();
    let live = sst_count_live(&db);
    assert!(live < before);
    // The iterators still hold the old files: still on disk, still readable.
    assert_eq!(sst_count_on_disk(&sim, Path::new("/db")), before + live);
    assert_eq!(iter.count(), 399);
    assert_eq!(sst_count_on_disk(&sim, Path::new("/db")), before + live, "one holder remains");
    assert_eq!(snapshot_iter.count(), 400);
    assert_eq!(sst_count_on_disk(&sim, Path::new("/db")), live);
}

#[test]
fn a_corrupt_block_stops_compaction_and_is_reported_by_reads() {
    let sim = SimFs::new();
    let options = manual_only(&sim);
    let db = Db::open("/db", options).unwrap();
    for index in 0..400 {
        db.put(key(index), format!("value{index}"), WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
    let dir = Path::new("/db");
    let mut names: Vec<String> =
        sim.file_names(dir).into_iter().filter(|name| name.ends_with(".sst")).collect();
    names.sort();
    // Flip a byte in the first data block of the oldest SST (it holds key000000).
    assert!(sim.corrupt_byte(&dir.join(&names[0]), 10, 0x40));
    let error = db.get(key(0)).unwrap_err();
    assert!(matches!(error, Error::Corruption { .. } | Error::ChecksumMismatch { .. }), "{error}");
    let scanned: Vec<_> = db.iter().unwrap().collect();
    assert!(scanned.iter().any(|entry| entry.is_err()), "the scan reports the corruption");
    let error = db.compact_all().unwrap_err();
    assert!(matches!(error, Error::Corruption { .. } | Error::ChecksumMismatch { .. }), "{error}");
    // Nothing was written forward: the same files are on disk, no half-written output.
    let after: Vec<String> =
        sim.file_names(dir).into_iter().filter(|name| name.ends_with(".sst")).collect();
    assert_eq!(after.len(), names.len());
    // Writes now fail (fail-stop) rather than build on a damaged tree.
    assert!(db.put(b"x", b"y", WriteOptions::NO_SYNC).is_err());
}

/// Every SST of a tree several levels deep, damaged in turn: gets, scans and compaction all
/// report it, and compaction writes nothing forward.
#[test]
fn a_corrupt_block_in_any_level_is_reported_by_get_scan_and_compaction() {
    let sim = SimFs::new();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    let count = 3000;
    for index in 0..count {
        db.put(key(index), format!("value{index}"), WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
    let levels_used = db.stats().levels.iter().filter(|level| level.files > 0).count();
    assert!(levels_used >= 3, "{}", db.stats());
    db.close().unwrap();
    let dir = Path::new("/db");
    let names: Vec<String> =
        sim.file_names(dir).into_iter().filter(|name| name.ends_with(".sst")).collect();
    let is_corruption =
        |error: &Error| matches!(error, Error::Corruption { .. } | Error::ChecksumMismatch { .. });
    for name in &names {
        let image = sim.crash_image(CrashMode::KeepAll);
        assert!(image.corrupt_byte(&dir.join(name), 10, 0x40));
        let options = Options { fs: Arc::new(image.clone()), ..manual_only(&image) };
        let db = Db::open("/db", options).unwrap();
        let get_errors =
            (0..count).filter_map(|index| db.get(key(index)).err()).collect::<Vec<_>>();
        assert!(!get_errors.is_empty(), "{name}: no get noticed");
        assert!(get_errors.iter().all(is_corruption), "{name}: {:?}", get_errors[0]);
        let scan_error = db.iter().unwrap().find_map(|entry| entry.err());
        assert!(scan_error.as_ref().is_some_and(is_corruption), "{name}: scan {scan_error:?}");
        let ssts_before = sst_count_on_disk(&image, dir);
        let error = db.compact_all().unwrap_err();
        assert!(is_corruption(&error), "{name}: compaction {error}");
        assert_eq!(sst_count_on_disk(&image, dir), ssts_before, "{name}: output left behind");
    }
}

#[test]
fn power_loss_during_compaction_loses_no_synced_write_and_leaks_no_file() {
    with_seed("power_loss_during_compaction", base_seed(), |seed| {
        let mut rng = Rng::new(seed);
        let setup = SimFs::new();
        let options = manual_only(&setup);
        let db = Db::open("/db", options.clone()).unwrap();
        let mut model = BTreeMap::new();
        for step in 0..1500u64 {
            let k = key(rng.below(400));
            let value = format!("v{step}").into_bytes();
            db.put(&k, &value, WriteOptions::SYNC).unwrap();
            model.insert(k, value);
        }
        db.flush().unwrap();
        drop(db);
        // Count the I/O calls of one compact_all, then crash at many points inside it.
        let probe = setup.crash_image(CrashMode::KeepAll);
        let db =
            Db::open("/db", Options { fs: Arc::new(probe.clone()), ..options.clone() }).unwrap();
        let start = probe.op_count();
        db.compact_all().unwrap();
        let length = probe.op_count() - start;
        drop(db);
        assert!(length > 10);
        let points = (0..length).step_by((length as usize / 40).max(1));
        for crash_at in points {
            let torn = CrashMode::TornUnsynced { seed: seed ^ crash_at };
            for mode in [CrashMode::DropUnsynced, torn, CrashMode::KeepAll] {
                let sim = setup.crash_image(CrashMode::KeepAll);
                let db = Db::open("/db", Options { fs: Arc::new(sim.clone()), ..options.clone() })
                    .unwrap();
                sim.crash_after_ops(crash_at);
                let _ = db.compact_all();
                drop(db);
                let image = sim.crash_image(mode);
                let db =
                    Db::open("/db", Options { fs: Arc::new(image.clone()), ..options.clone() })
                        .unwrap_or_else(|error| panic!("crash at {crash_at} ({mode:?}): {error}"));
                check_against(&db, &model);
                db.verify().unwrap();
                assert_eq!(
                    sst_count_on_disk(&image, Path::new("/db")),
                    sst_count_live(&db),
                    "crash at {crash_at} ({mode:?}) leaked a file"
                );
            }
        }
    });
}

#[test]
fn readers_see_consistent_data_while_compaction_runs() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        memtable_size_bytes_max: 16 * 1024,
        block_size_bytes: 512,
        background_threads: 2,
        l0_compaction_trigger: 2,
        level_size_base_bytes: 64 * 1024,
        level_size_multiplier: 2,
        sst_size_bytes_target: 16 * 1024,
        ..Default::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    const KEYS: u64 = 300;
    let write_round = |round: u64| {
        let mut batch = WriteBatch::new();
        for index in 0..KEYS {
            batch.put(key(index), format!("{round:08}-{index:0>40}"));
        }
        db.write(batch, WriteOptions::NO_SYNC).unwrap();
    };
    write_round(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for reader in 0..2 {
            let (db, done) = (&db, &done);
            scope.spawn(move || {
                let mut last_round = 0u64;
                while !done.load(Ordering::Acquire) {
                    // One iterator sees one batch: every key, all from the same round.
                    let entries: Vec<(Vec<u8>, Vec<u8>)> = if reader == 0 {
                        db.iter().unwrap().map(|entry| entry.unwrap()).collect()
                    } else {
                        db.iter().unwrap().rev().map(|entry| entry.unwrap()).collect()
                    };
                    assert_eq!(entries.len() as u64, KEYS);
                    let round = &entries[0].1[..8];
                    assert!(entries.iter().all(|(_, value)| &value[..8] == round));
                    let round: u64 = std::str::from_utf8(round).unwrap().parse().unwrap();
                    assert!(round >= last_round, "rounds never go back");
                    last_round = round;
                    let value = db.get(key(round % KEYS)).unwrap().unwrap();
                    let seen: u64 = std::str::from_utf8(&value[..8]).unwrap().parse().unwrap();
                    assert!(seen >= round);
                }
            });
        }
        for round in 1..=400 {
            write_round(round);
        }
        done.store(true, Ordering::Release);
    });
    let stats = db.stats();
    assert!(stats.compactions > 0, "{stats}");
    db.verify().unwrap();
}

#[test]
fn compact_all_races_background_compaction_without_overlapping_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        memtable_size_bytes_max: 8 * 1024,
        block_size_bytes: 512,
        background_threads: 2,
        l0_compaction_trigger: 1,
        level_size_base_bytes: 32 * 1024,
        level_size_multiplier: 2,
        sst_size_bytes_target: 8 * 1024,
        ..Default::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    // Two far-apart key ranges, so a background compaction can land in the gap of a manual
    // one's output if the two ever overlap in time.
    for index in 0..200 {
        db.put(format!("a{index:05}"), b"x", WriteOptions::NO_SYNC).unwrap();
        db.put(format!("z{index:05}"), b"x", WriteOptions::NO_SYNC).unwrap();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (db, done) = (&db, &done);
        scope.spawn(move || {
            let mut index = 0u64;
            while !done.load(Ordering::Acquire) {
                db.put(format!("m{index:07}"), [7u8; 64], WriteOptions::NO_SYNC).unwrap();
                index += 1;
            }
        });
        for _ in 0..20 {
            db.compact_all().unwrap();
            db.verify().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    db.verify().unwrap();
    let keys = db.iter().unwrap().map(|entry| entry.unwrap().0).collect::<Vec<_>>();
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(keys.iter().filter(|k| k[0] == b'a' || k[0] == b'z').count(), 400);
}

/// A compaction output holds at most `FILTER_KEYS_PER_OUTPUT_MAX` distinct keys (the bound on
/// the writer's filter buffer), however far it is from `sst_size_bytes_target`: exactly that
/// many small entries make one file, one more makes two.
#[test]
fn compaction_outputs_split_at_the_filter_key_limit() {
    for extra in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let total = FILTER_KEYS_PER_OUTPUT_MAX + extra;
        for start in (0..total).step_by(16_384) {
            let mut batch = WriteBatch::new();
            for index in start..(start + 16_384).min(total) {
                batch.put(key(index), b"v");
            }
            db.write(batch, WriteOptions::NO_SYNC).unwrap();
        }
        // A snapshot keeps two versions of the last key that fits in the first output, so the
        // cut after it must wait for the next user key.
        let boundary = key(FILTER_KEYS_PER_OUTPUT_MAX - 1);
        let snapshot = db.snapshot().unwrap();
        db.put(&boundary, b"w", WriteOptions::NO_SYNC).unwrap();
        db.compact_all().unwrap();
        let stats = db.stats();
        let files: u64 = stats.levels.iter().map(|level| level.files).sum();
        assert_eq!(files, 1 + extra, "{total} keys: {stats}");
        assert_eq!(snapshot.get(&boundary).unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(db.get(&boundary).unwrap().as_deref(), Some(&b"w"[..]));
        drop(snapshot);
        db.verify().unwrap();
        assert!(stats.levels.last().unwrap().size_bytes < Options::default().sst_size_bytes_target);
        assert_eq!(db.iter().unwrap().count() as u64, total);
    }
}

#[test]
fn bottommost_outputs_take_their_own_bloom_bits() {
    // Absent keys looked up after `compact_all` (a bottommost compaction) meet only the
    // bottommost outputs' filters: with 10 bits per key nearly all are skipped, with 4 about
    // 85%, with none every file in range is searched. Present keys are found either way.
    let sim = SimFs::new();
    let mut model = BTreeMap::new();
    let skip_share = |bottommost: Option<u32>, model: &mut BTreeMap<Vec<u8>, Vec<u8>>| {
        let options = Options { bloom_bits_per_key_bottommost: bottommost, ..manual_only(&sim) };
        let db = Db::open("/db", options).unwrap();
        if model.is_empty() {
            for i in 0..4000u64 {
                let (k, value) = (key(i * 2), format!("v{i}").into_bytes());
                db.put(&k, &value, WriteOptions::NO_SYNC).unwrap();
                model.insert(k, value);
            }
        }
        db.compact_all().unwrap();
        let before = db.stats();
        for i in 0..4000u64 {
            assert_eq!(db.get(key(i * 2 + 1)).unwrap(), None);
        }
        let after = db.stats();
        check_against(&db, model);
        db.close().unwrap();
        let checks = after.bloom_checks - before.bloom_checks;
        let skips = after.bloom_skips - before.bloom_skips;
        (skips as f64 / checks.max(1) as f64, checks)
    };
    let (share, checks) = skip_share(None, &mut model);
    assert!(checks >= 3900 && share > 0.97, "10 bits everywhere: {share} of {checks}");
    let (share, checks) = skip_share(Some(4), &mut model);
    assert!(checks >= 3900 && (0.75..0.95).contains(&share), "4 bits: {share} of {checks}");
    let (share, _) = skip_share(Some(0), &mut model);
    assert_eq!(share, 0.0, "no bottommost filter");
    let (share, _) = skip_share(Some(10), &mut model);
    assert!(share > 0.97, "10 bits again: {share}");
}
