//! The public API on the real filesystem: reads and writes, batches, iterators, snapshots,
//! flush and reopen, limits at their boundaries, locking, concurrency and group commit.

use nanodb_storage::{
    Db, Error, Options, WriteBatch, WriteOptions, KEY_SIZE_BYTES_MAX_DEFAULT,
    MEMTABLE_SIZE_BYTES_MAX_MIN,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

fn small_options() -> Options {
    Options {
        memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN,
        block_size_bytes: 512,
        ..Default::default()
    }
}

fn collect(iter: nanodb_storage::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.map(|entry| entry.unwrap()).collect()
}

fn collect_rev(iter: nanodb_storage::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.rev().map(|entry| entry.unwrap()).collect()
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    entries.iter().map(|(key, _)| String::from_utf8(key.clone()).unwrap()).collect()
}

#[test]
fn put_get_delete_and_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"missing").unwrap(), None);
    db.put(b"k", b"v1", WriteOptions::SYNC).unwrap();
    db.put(b"k", b"v2", WriteOptions::NO_SYNC).unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    db.delete(b"k", WriteOptions::SYNC).unwrap();
    assert_eq!(db.get(b"k").unwrap(), None);
    db.delete(b"never-there", WriteOptions::SYNC).unwrap();
    db.put(b"", b"empty key", WriteOptions::SYNC).unwrap();
    db.put(b"empty value", b"", WriteOptions::SYNC).unwrap();
    assert_eq!(db.get(b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(db.get(b"empty value").unwrap().as_deref(), Some(&b""[..]));
    db.close().unwrap();
}

#[test]
fn data_survives_flush_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), small_options()).unwrap();
        for index in 0..2000u32 {
            db.put(format!("key{index:05}"), format!("value{index}"), WriteOptions::NO_SYNC)
                .unwrap();
        }
        for index in (0..2000u32).step_by(3) {
            db.delete(format!("key{index:05}"), WriteOptions::NO_SYNC).unwrap();
        }
        db.flush().unwrap();
        let stats = db.stats();
        assert!(stats.flushes > 1, "{stats}");
        db.put(b"after-flush", b"in the WAL only", WriteOptions::NO_SYNC).unwrap();
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), small_options()).unwrap();
    for index in 0..2000u32 {
        let expected = (index % 3 != 0).then(|| format!("value{index}").into_bytes());
        assert_eq!(db.get(format!("key{index:05}")).unwrap(), expected, "key {index}");
    }
    assert_eq!(db.get(b"after-flush").unwrap().as_deref(), Some(&b"in the WAL only"[..]));
    let report = db.verify().unwrap();
    assert!(report.sst_files >= 1);
    assert_eq!(collect(db.iter().unwrap()).len(), 2000 - 667 + 1);
}

#[test]
fn drop_without_close_keeps_unsynced_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let clone = db.clone();
        clone.put(b"a", b"1", WriteOptions::NO_SYNC).unwrap();
        drop(db);
        // The other clone still works until it too is dropped.
        clone.put(b"b", b"2", WriteOptions::NO_SYNC).unwrap();
    }
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn close_makes_other_clones_refuse_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let clone = db.clone();
    db.close().unwrap();
    assert!(matches!(clone.put(b"k", b"v", WriteOptions::SYNC), Err(Error::Closed)));
    assert!(matches!(clone.get(b"k"), Err(Error::Closed)));
}

#[test]
fn batches_apply_all_their_operations() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"gone", b"x", WriteOptions::SYNC).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1").put(b"b", b"2").delete(b"gone").put(b"a", b"3");
    assert_eq!(batch.len(), 4);
    db.write(batch, WriteOptions::SYNC).unwrap();
    // Later operations in a batch win over earlier ones on the same key.
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.get(b"gone").unwrap(), None);
    db.write(WriteBatch::new(), WriteOptions::SYNC).unwrap();
}

#[test]
fn ranges_prefixes_and_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    for name in ["apple", "apricot", "banana", "blueberry", "cherry", "ap", "b"] {
        db.put(name, name.to_uppercase(), WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
    db.delete(b"banana", WriteOptions::NO_SYNC).unwrap();
    db.put(b"avocado", b"AVOCADO", WriteOptions::NO_SYNC).unwrap();

    assert_eq!(keys(&collect(db.prefix(b"ap").unwrap())), ["ap", "apple", "apricot"]);
    assert_eq!(keys(&collect_rev(db.prefix(b"ap").unwrap())), ["apricot", "apple", "ap"]);
    assert_eq!(
        keys(&collect(db.range(&b"apricot"[..]..&b"blueberry"[..]).unwrap())),
        ["apricot", "avocado", "b"]
    );
    assert_eq!(
        keys(&collect_rev(db.range(&b"apricot"[..]..=&b"blueberry"[..]).unwrap())),
        ["blueberry", "b", "avocado", "apricot"]
    );
    assert_eq!(keys(&collect(db.range(&b"c"[..]..).unwrap())), ["cherry"]);
    assert_eq!(keys(&collect_rev(db.range(..&b"apple"[..]).unwrap())), ["ap"]);
    assert!(collect(db.range(&b"x"[..]..&b"a"[..]).unwrap()).is_empty());
    let all = collect(db.iter().unwrap());
    assert_eq!(keys(&all), ["ap", "apple", "apricot", "avocado", "b", "blueberry", "cherry"]);
    assert_eq!(all[3].1, b"AVOCADO");

    // Both ends of one iterator meet in the middle without repeating a key.
    let mut iter = db.iter().unwrap();
    let mut seen = Vec::new();
    while let Some(front) = iter.next() {
        seen.push(front.unwrap().0);
        let Some(back) = iter.next_back() else { break };
        seen.push(back.unwrap().0);
    }
    seen.sort();
    assert_eq!(seen, all.iter().map(|(key, _)| key.clone()).collect::<Vec<_>>());
}

#[test]
fn a_step_limit_stops_an_iterator_inside_a_run_of_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    for n in 0..100u32 {
        db.put(format!("k{n:03}"), b"v", WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
    // 98 tombstones between the first and the last key, in the memtable over an SST.
    for n in 1..99u32 {
        db.delete(format!("k{n:03}"), WriteOptions::NO_SYNC).unwrap();
    }
    let stopped = |result: Option<nanodb_storage::Result<_>>| {
        matches!(result, Some(Err(Error::IteratorStepLimit { max: 50 })))
    };
    let mut forward = db.iter().unwrap().limit_steps(50);
    assert_eq!(forward.next().unwrap().unwrap().0, b"k000");
    assert!(stopped(forward.next()), "forward: stops inside the deleted run");
    let mut reverse = db.iter().unwrap().limit_steps(50);
    assert_eq!(reverse.next_back().unwrap().unwrap().0, b"k099");
    assert!(stopped(reverse.next_back()), "reverse: stops inside the deleted run");
    assert!(matches!(
        db.iter().unwrap().limit_steps(50).count_keys(),
        Err(Error::IteratorStepLimit { max: 50 })
    ));
    // Forward, each key and each tombstone over its older version is a step: 2 + 2 * 98.
    assert_eq!(keys(&collect(db.iter().unwrap().limit_steps(198))), ["k000", "k099"]);
    assert!(db.iter().unwrap().limit_steps(197).any(|entry| entry.is_err()));
    assert_eq!(db.iter().unwrap().limit_steps(198).count_keys().unwrap(), 2);
    // In reverse an entry that ends a key's versions is looked at again for the next key.
    assert_eq!(keys(&collect_rev(db.iter().unwrap().limit_steps(400))), ["k099", "k000"]);
    let message = Error::IteratorStepLimit { max: 50 }.to_string();
    assert_eq!(message, "the iterator passed over 50 stored entries, its limit, and stopped");
}

#[test]
fn snapshots_and_iterators_ignore_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    for index in 0..100u32 {
        db.put(format!("k{index:03}"), b"old", WriteOptions::NO_SYNC).unwrap();
    }
    let snapshot = db.snapshot().unwrap();
    let iter = db.iter().unwrap();
    for index in 0..100u32 {
        db.put(format!("k{index:03}"), b"new", WriteOptions::NO_SYNC).unwrap();
        db.delete(format!("k{:03}", (index + 50) % 100), WriteOptions::NO_SYNC).unwrap();
    }
    db.put(b"k999", b"added later", WriteOptions::NO_SYNC).unwrap();
    db.flush().unwrap();
    let from_iter = collect(iter);
    assert_eq!(from_iter.len(), 100);
    assert!(from_iter.iter().all(|(_, value)| value == b"old"));
    assert_eq!(snapshot.get(b"k000").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(snapshot.get(b"k999").unwrap(), None);
    assert_eq!(collect(snapshot.prefix(b"k0")).len(), 100);
    assert_eq!(collect_rev(snapshot.range(&b"k010"[..]..&b"k020"[..])).len(), 10);
    assert_eq!(db.stats().snapshots_live, 1);
    let seqno = snapshot.seqno();
    drop(snapshot);
    assert_eq!(db.stats().snapshots_live, 0);
    assert!(db.stats().seqno_last > seqno);
    assert_eq!(db.get(b"k999").unwrap().as_deref(), Some(&b"added later"[..]));
}

#[test]
fn limits_are_enforced_at_their_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        key_size_bytes_max: 100,
        value_size_bytes_max: 1000,
        batch_size_bytes_max: 4096,
        ..Default::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    db.put(vec![1u8; 100], vec![2u8; 1000], WriteOptions::SYNC).unwrap();
    let too_long_key = db.put(vec![1u8; 101], b"v", WriteOptions::SYNC).unwrap_err();
    assert!(
        matches!(too_long_key, Error::LimitExceeded { what: "key size", size: 101, max: 100 }),
        "{too_long_key}"
    );
    let too_long_value = db.put(b"k", vec![0u8; 1001], WriteOptions::SYNC).unwrap_err();
    assert!(matches!(too_long_value, Error::LimitExceeded { what: "value size", .. }));
    let mut batch = WriteBatch::new();
    while batch.size_bytes() <= 4096 {
        batch.put(b"key", vec![0u8; 500]);
    }
    let too_big = db.write(batch, WriteOptions::SYNC).unwrap_err();
    assert!(matches!(too_big, Error::LimitExceeded { what: "write batch size", .. }), "{too_big}");
    // Nothing of the refused writes is visible, and the database still works.
    assert_eq!(db.get(b"k").unwrap(), None);
    db.put(b"k", b"fine", WriteOptions::SYNC).unwrap();

    let default_db_dir = tempfile::tempdir().unwrap();
    let db = Db::open(default_db_dir.path(), Options::default()).unwrap();
    db.put(vec![7u8; KEY_SIZE_BYTES_MAX_DEFAULT], b"v", WriteOptions::NO_SYNC).unwrap();
    assert!(db
        .put(vec![7u8; KEY_SIZE_BYTES_MAX_DEFAULT + 1], b"v", WriteOptions::NO_SYNC)
        .is_err());

    let invalid =
        Options { memtable_size_bytes_max: MEMTABLE_SIZE_BYTES_MAX_MIN - 1, ..Default::default() };
    let error = Db::open(tempfile::tempdir().unwrap().path(), invalid).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
}

#[test]
fn a_second_open_is_locked_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let error = Db::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(error, Error::Locked { .. }), "{error}");
    assert!(error.to_string().contains("locked"));
    db.close().unwrap();
    Db::open(dir.path(), Options::default()).unwrap();
}

#[test]
fn create_if_missing_and_error_if_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/db");
    let no_create = Options { create_if_missing: false, ..Default::default() };
    assert!(matches!(Db::open(&path, no_create.clone()), Err(Error::NotFound { .. })));
    Db::open(&path, Options::default()).unwrap().close().unwrap();
    Db::open(&path, no_create).unwrap().close().unwrap();
    let must_be_new = Options { error_if_exists: true, ..Default::default() };
    assert!(matches!(Db::open(&path, must_be_new), Err(Error::InvalidArgument(_))));
}

#[test]
fn concurrent_synced_writers_share_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    let threads = 8;
    let writes_per_thread = 200;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let db = db.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for index in 0..writes_per_thread {
                    db.put(format!("t{thread}-{index:04}"), format!("{index}"), WriteOptions::SYNC)
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = db.stats();
    assert_eq!(stats.write_batches, (threads * writes_per_thread) as u64);
    // Some groups carried more than one writer's batch, so there were fewer WAL syncs.
    assert!(stats.group_commits < stats.write_batches, "{stats}");
    assert!(stats.wal_syncs <= stats.group_commits, "{stats}");
    assert_eq!(collect(db.iter().unwrap()).len(), threads * writes_per_thread);
}

#[test]
fn readers_see_consistent_data_during_writes_and_flushes() {
    // Writers keep every key of a round equal; a reader must never see two rounds mixed in
    // one iterator or snapshot, across memtable freezes and flushes.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_options()).unwrap();
    let key_count = 50u32;
    let write_round = move |round: u32| {
        let mut batch = WriteBatch::new();
        for index in 0..key_count {
            batch.put(format!("key{index:03}"), round.to_le_bytes());
        }
        batch
    };
    db.write(write_round(0), WriteOptions::NO_SYNC).unwrap();
    // The writer's rounds are bounded: with a 4 KiB memtable nearly every round is a flush and
    // a new SST, and every live SST holds an open file until compaction exists.
    const ROUNDS: u32 = 200;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            for round in 1..=ROUNDS {
                db.write(write_round(round), WriteOptions::NO_SYNC).unwrap();
            }
            done.store(true, Ordering::Relaxed);
            ROUNDS
        })
    };
    // Check while the writer runs (and a few times after, so a fast writer still gets checked).
    let mut check = 0u64;
    while check < 300 && !(done.load(Ordering::Relaxed) && check >= 20) {
        check += 1;
        let entries = if check.is_multiple_of(2) {
            collect(db.iter().unwrap())
        } else {
            collect_rev(db.snapshot().unwrap().iter())
        };
        assert_eq!(entries.len(), key_count as usize);
        let first = &entries[0].1;
        assert!(entries.iter().all(|(_, value)| value == first), "mixed rounds in check {check}");
    }
    let rounds = writer.join().unwrap();
    assert!(rounds > 1);
    assert!(db.stats().flushes >= 3, "{}", db.stats());
}

#[test]
fn db_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Db>();
    assert_send_sync::<nanodb_storage::Snapshot>();
    fn assert_send<T: Send>() {}
    assert_send::<nanodb_storage::Iter>();
}
