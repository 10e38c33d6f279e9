//! `delete_range` through the public API: reads, snapshots and iterators, durability through
//! the WAL and the manifest, space reclaimed by compaction (whole files dropped unread), the
//! tombstone forgotten afterwards, and the limits.

use crate::common::{key, small_levels};
use nanodb_storage::fs::{CrashMode, SimFs};
use nanodb_storage::{Db, Error, Options, WriteBatch, WriteOptions, RANGE_TOMBSTONES_LIVE_MAX};
use std::path::Path;

fn keys(db: &Db) -> Vec<Vec<u8>> {
    db.iter().unwrap().map(|entry| entry.unwrap().0).collect()
}

fn fill(db: &Db, count: u64) {
    for index in 0..count {
        db.put(key(index), [b'v'; 100], WriteOptions::NO_SYNC).unwrap();
    }
}

#[test]
fn a_range_deletion_hides_the_range_from_new_reads_only() {
    let sim = SimFs::new();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    fill(&db, 300);
    db.flush().unwrap();
    let before = db.snapshot().unwrap();
    let mut old_iter = db.iter().unwrap();
    assert!(old_iter.next().is_some());
    db.delete_range(key(100), key(200), WriteOptions::SYNC).unwrap();
    db.put(key(150), b"back", WriteOptions::NO_SYNC).unwrap();

    assert_eq!(db.get(key(99)).unwrap().unwrap(), [b'v'; 100]);
    assert_eq!(db.get(key(100)).unwrap(), None);
    assert_eq!(db.get(key(199)).unwrap(), None);
    assert_eq!(db.get(key(200)).unwrap().unwrap(), [b'v'; 100]);
    assert_eq!(db.get(key(150)).unwrap().unwrap(), b"back", "a later put is visible");
    let live = keys(&db);
    assert_eq!(live.len(), 201);
    let reverse: Vec<Vec<u8>> = db.iter().unwrap().rev().map(|entry| entry.unwrap().0).collect();
    assert_eq!(reverse, live.iter().rev().cloned().collect::<Vec<_>>());
    // The snapshot and the iterator opened before it still see every key.
    assert_eq!(before.iter().count(), 300);
    assert_eq!(before.get(key(150)).unwrap().unwrap(), [b'v'; 100]);
    assert_eq!(old_iter.count(), 299);
    assert_eq!(db.stats().range_tombstones_live, 1);
    drop(before);

    // From the WAL after a power loss (the deletion was synced).
    let image = sim.crash_image(CrashMode::DropUnsynced);
    drop(db);
    let db = Db::open("/db", small_levels(&image)).unwrap();
    assert_eq!(db.get(key(120)).unwrap(), None);
    assert_eq!(db.get(key(150)).unwrap(), None, "the unsynced put after it is lost");
    assert_eq!(keys(&db).len(), 200);
    // From the manifest after a clean reopen.
    db.close().unwrap();
    let db = Db::open("/db", small_levels(&image)).unwrap();
    assert_eq!(keys(&db).len(), 200);
    db.verify().unwrap();
}

#[test]
fn compaction_reclaims_the_space_and_forgets_the_tombstone() {
    let sim = SimFs::new();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    fill(&db, 4000);
    db.compact_all().unwrap();
    let size_before = db.stats().sst_size_bytes();
    let files_before = db.stats().levels.iter().map(|level| level.files).sum::<u64>();
    assert!(files_before > 10, "{files_before} files");
    let read_before = db.stats().compaction_bytes_read;

    db.delete_range(key(100), key(3900), WriteOptions::NO_SYNC).unwrap();
    db.flush().unwrap(); // the tombstone becomes durable; compaction runs inline after it
    let stats = db.stats();
    assert!(stats.range_deletion_files_dropped > 0, "{stats}");
    assert_eq!(stats.range_tombstones_live, 0, "{stats}");
    assert_eq!(stats.range_tombstones_collected, 1);
    assert!(
        stats.sst_size_bytes() < size_before / 5,
        "{} of {size_before}",
        stats.sst_size_bytes()
    );
    // Only the two files at the range's edges were read, not the ones dropped.
    let read = stats.compaction_bytes_read - read_before;
    assert!(read < size_before / 4, "compaction read {read} bytes of {size_before}");
    assert_eq!(keys(&db).len(), 200);
    assert_eq!(db.get(key(99)).unwrap().unwrap(), [b'v'; 100]);
    assert_eq!(db.get(key(100)).unwrap(), None);
    db.verify().unwrap();
    db.close().unwrap();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    assert_eq!(keys(&db).len(), 200);
    assert_eq!(db.stats().range_tombstones_live, 0);
}

#[test]
fn a_snapshot_keeps_the_hidden_versions_through_compaction() {
    let sim = SimFs::new();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    fill(&db, 2000);
    let snapshot = db.snapshot().unwrap();
    db.delete_range(key(0), key(2000), WriteOptions::NO_SYNC).unwrap();
    db.flush().unwrap();
    db.compact_all().unwrap();
    assert_eq!(keys(&db).len(), 0);
    assert_eq!(snapshot.iter().count(), 2000);
    assert_eq!(db.stats().range_tombstones_live, 1, "the snapshot still needs it");
    drop(snapshot);
    db.compact_all().unwrap();
    let stats = db.stats();
    assert_eq!(stats.range_tombstones_live, 0, "{stats}");
    assert_eq!(stats.sst_size_bytes(), 0, "{stats}");
}

#[test]
fn bad_ranges_are_refused_and_empty_ones_do_nothing() {
    let sim = SimFs::new();
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    db.put(b"b", b"1", WriteOptions::NO_SYNC).unwrap();
    let seqno = db.stats().seqno_last;
    assert!(matches!(
        db.delete_range(b"c", b"a", WriteOptions::NO_SYNC),
        Err(Error::InvalidArgument(_))
    ));
    db.delete_range(b"b", b"b", WriteOptions::NO_SYNC).unwrap();
    assert_eq!(db.stats().seqno_last, seqno, "an empty range writes nothing");
    assert_eq!(db.get(b"b").unwrap().unwrap(), b"1");
    // An empty range inside a batch is harmless too.
    let mut batch = WriteBatch::new();
    batch.delete_range(b"b", b"b").put(b"c", b"2");
    db.write(batch, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(db.get(b"b").unwrap().unwrap(), b"1");
    assert_eq!(db.stats().range_tombstones_live, 0);
    let long = vec![b'z'; db_key_size_max() + 1];
    assert!(matches!(
        db.delete_range(b"a", &long, WriteOptions::NO_SYNC),
        Err(Error::LimitExceeded { .. })
    ));
    let longest = vec![b'z'; db_key_size_max()];
    db.delete_range(b"a", &longest, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(db.get(b"b").unwrap(), None);
    let other = db.clone();
    db.close().unwrap();
    assert!(other.delete_range(b"a", b"a", WriteOptions::NO_SYNC).is_err(), "closed");
    drop(other);
    let db = Db::open("/db", small_levels(&sim)).unwrap();
    assert_eq!(db.get(b"c").unwrap(), None);
}

fn db_key_size_max() -> usize {
    Options::default().key_size_bytes_max
}

#[test]
fn live_range_tombstones_are_limited() {
    let sim = SimFs::new();
    let options = Options { memtable_size_bytes_max: 64 << 20, ..small_levels(&sim) };
    let db = Db::open(Path::new("/db"), options).unwrap();
    db.put(b"keep", b"1", WriteOptions::NO_SYNC).unwrap();
    let mut batch = WriteBatch::new();
    for index in 0..RANGE_TOMBSTONES_LIVE_MAX as u64 {
        batch.delete_range(key(2 * index), key(2 * index + 1));
    }
    db.write(batch, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(db.stats().range_tombstones_live, RANGE_TOMBSTONES_LIVE_MAX as u64);
    assert!(matches!(
        db.delete_range(b"x", b"y", WriteOptions::NO_SYNC),
        Err(Error::LimitExceeded { what: "live range tombstones", .. })
    ));
    assert_eq!(db.get(b"keep").unwrap().unwrap(), b"1");
    // The ranges hide nothing on disk: the flush makes them durable and they are forgotten.
    db.flush().unwrap();
    assert_eq!(db.stats().range_tombstones_live, 0);
    db.delete_range(b"x", b"y", WriteOptions::NO_SYNC).unwrap();
}
