//! Checkpoints (`Db::checkpoint`) and in-memory databases (`Options::in_memory`).
//!
//! What it proves: a checkpoint taken while another thread writes opens as a database holding
//! every write acknowledged before the call and exactly a prefix of the writer's sequence;
//! SSTs are hard-linked on a real filesystem; the checkpoint outlives compactions that delete
//! the source's files; a power cut at any I/O call of a checkpoint leaves the source intact
//! and the target either without `CURRENT` or complete. An in-memory database runs the same
//! API, writes nothing to disk, and reopens from a clone of its options.

use crate::common::{key, small_levels};
use nanodb_storage::fs::{CrashMode, SimFs};
use nanodb_storage::{Db, Error, Options, WriteOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

fn value(index: u64) -> Vec<u8> {
    format!("value-{index}-{}", "x".repeat((index % 50) as usize)).into_bytes()
}

/// Asserts that `db` holds keys `0..count` with their values and nothing else.
fn assert_holds_exactly(db: &Db, count: u64) {
    let entries: Vec<(Vec<u8>, Vec<u8>)> =
        db.iter().unwrap().map(|entry| entry.unwrap()).collect::<Vec<_>>();
    assert_eq!(entries.len() as u64, count, "entry count");
    for (index, (found_key, found_value)) in entries.iter().enumerate() {
        assert_eq!(found_key, &key(index as u64));
        assert_eq!(found_value, &value(index as u64));
    }
}

#[test]
fn a_checkpoint_during_writes_holds_a_prefix_including_everything_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { memtable_size_bytes_max: 256 * 1024, ..Default::default() };
    let db = Db::open(dir.path().join("db"), options.clone()).unwrap();
    for index in 0..20_000 {
        db.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
    }
    let written = Arc::new(AtomicU64::new(20_000));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, written, stop) = (db.clone(), Arc::clone(&written), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let index = written.load(Ordering::Acquire);
                db.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
                written.store(index + 1, Ordering::Release);
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let acknowledged = written.load(Ordering::Acquire);
    let report = db.checkpoint(dir.path().join("copy")).unwrap();
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    assert!(report.ssts_linked > 0 && report.ssts_copied == 0, "{report:?}");
    assert!(report.sst_bytes > 0);

    // The source goes on and deletes the files it shares with the checkpoint.
    db.compact_all().unwrap();
    let total = written.load(Ordering::Acquire);
    assert_holds_exactly(&db, total);
    db.close().unwrap();

    let copy = Db::open(dir.path().join("copy"), options).unwrap();
    let held = copy.iter().unwrap().count() as u64;
    assert!(held >= acknowledged && held <= total, "{acknowledged} <= {held} <= {total}");
    assert_holds_exactly(&copy, held);
    assert_eq!(report.seqno_last, copy.stats().seqno_last);
    copy.verify().unwrap();
    // The copy is a database of its own.
    copy.put(key(held), value(held), WriteOptions::SYNC).unwrap();
    assert_holds_exactly(&copy, held + 1);
}

#[test]
fn a_checkpoint_keeps_range_deletions_and_refuses_an_existing_target() {
    let sim = SimFs::new();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    for index in 0..2_000 {
        db.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
    }
    db.delete_range(key(100), key(1_900), WriteOptions::NO_SYNC).unwrap();
    // Keyspaces (and the ids of dropped ones) and expiring values come along.
    let users = db.keyspace("users").unwrap();
    users.put(b"alice", b"1", WriteOptions::NO_SYNC).unwrap();
    users
        .put_with_ttl(b"session", b"s", std::time::Duration::from_secs(3600), WriteOptions::NO_SYNC)
        .unwrap();
    db.keyspace("gone").unwrap().put(b"k", b"v", WriteOptions::NO_SYNC).unwrap();
    db.drop_keyspace("gone").unwrap();
    let report = db.checkpoint("/copy").unwrap();
    assert_eq!(report.ssts_copied, 0, "SimFs links: {report:?}");
    let again = db.checkpoint("/copy");
    assert!(matches!(again, Err(Error::InvalidArgument(_))), "{again:?}");
    let copy = Db::open("/copy", small_levels(&sim)).unwrap();
    assert_eq!(copy.iter().unwrap().count(), 200);
    assert_eq!(copy.get(key(99)).unwrap(), Some(value(99)));
    assert_eq!(copy.get(key(100)).unwrap(), None);
    assert_eq!(copy.keyspaces(), vec!["default", "users"]);
    let users = copy.open_keyspace("users").unwrap();
    assert_eq!(users.iter().unwrap().count(), 2);
    // A new keyspace in the copy does not reuse the dropped one's id (its data stays hidden).
    assert_eq!(copy.keyspace("fresh").unwrap().iter().unwrap().count(), 0);
}

#[test]
fn a_power_cut_during_a_checkpoint_leaves_the_source_intact_and_the_copy_whole_or_unfinished() {
    let keys = 600u64;
    let mut finished = false;
    let mut crash_points = 0;
    for cut_after in 0u64.. {
        let sim = SimFs::new();
        let options = small_levels(&sim);
        let db = Db::open("/db", options.clone()).unwrap();
        for index in 0..keys {
            // Every tenth write is synced; the last one too, so all are durable.
            let sync = index % 10 == 0 || index == keys - 1;
            let write = if sync { WriteOptions::SYNC } else { WriteOptions::NO_SYNC };
            db.put(key(index), value(index), write).unwrap();
        }
        sim.crash_after_ops(cut_after);
        let result = db.checkpoint("/copy");
        drop(db);
        let image = sim.crash_image(CrashMode::DropUnsynced);
        let reopen = |path: &str| {
            Db::open(path, Options { create_if_missing: false, ..small_levels(&image) })
        };
        let source = reopen("/db").unwrap();
        assert_holds_exactly(&source, keys);
        source.close().unwrap();
        let current_exists = image.file_names(Path::new("/copy")).iter().any(|n| n == "CURRENT");
        if current_exists {
            let copy = reopen("/copy").unwrap();
            assert_holds_exactly(&copy, keys);
            copy.verify().unwrap();
        }
        if result.is_ok() {
            assert!(current_exists, "a checkpoint that returned Ok must survive power loss");
            finished = true;
            break;
        }
        crash_points += 1;
        assert!(cut_after < 10_000, "the checkpoint never finished");
    }
    assert!(finished && crash_points > 5, "only {crash_points} crash points");
}

#[test]
fn an_in_memory_database_runs_the_same_api_and_writes_nothing_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in-memory");
    let options = Options { memtable_size_bytes_max: 64 * 1024, ..Options::in_memory() };
    let db = Db::open(&path, options.clone()).unwrap();
    for index in 0..5_000 {
        db.put(key(index), value(index), WriteOptions::SYNC).unwrap();
    }
    db.delete(key(0), WriteOptions::NO_SYNC).unwrap();
    db.flush().unwrap();
    db.compact_all().unwrap();
    assert_eq!(db.get(key(1)).unwrap(), Some(value(1)));
    assert_eq!(db.prefix(b"key00499").unwrap().count(), 10);
    assert!(db.stats().levels.iter().map(|level| level.files).sum::<u64>() > 0);
    db.verify().unwrap();
    db.close().unwrap();
    assert!(!path.exists(), "an in-memory database created {}", path.display());

    // A clone of the options shares the filesystem: the database reopens.
    let again = Db::open(&path, options).unwrap();
    assert_eq!(again.iter().unwrap().count(), 4_999);
    // Fresh in-memory options start empty.
    let fresh = Db::open(&path, Options::in_memory()).unwrap();
    assert_eq!(fresh.iter().unwrap().count(), 0);
}
