//! Keyspaces: independence, limits, cheap and crash-safe drop, atomic batches across keyspaces,
//! and a model-based test of random keyspace operations against one `BTreeMap` per keyspace.

use crate::common::{base_seed, key, scale, small_levels, with_seed, Rng};
use nanodb_storage::fs::{CrashMode, SimFs};
use nanodb_storage::{Db, Error, Options, WriteBatch, WriteOptions, KEYSPACE_NAME_LEN_MAX};
use std::collections::BTreeMap;

fn value(index: u64) -> Vec<u8> {
    format!("value-{index}-{}", "x".repeat(60)).into_bytes()
}

#[test]
fn keyspaces_are_independent_ordered_key_spaces() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    let users = db.keyspace("users").unwrap();
    let posts = db.create_keyspace("posts").unwrap();
    db.put(b"k", b"default", WriteOptions::NO_SYNC).unwrap();
    users.put(b"k", b"users", WriteOptions::NO_SYNC).unwrap();
    posts.put(b"k", b"posts", WriteOptions::NO_SYNC).unwrap();
    for index in 0..100 {
        users.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
    }
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"default"[..]));
    assert_eq!(users.get(b"k").unwrap().as_deref(), Some(&b"users"[..]));
    assert_eq!(posts.get(b"k").unwrap().as_deref(), Some(&b"posts"[..]));
    assert_eq!(db.get(key(5)).unwrap(), None);
    // Unbounded iteration stays within the keyspace, in both directions, keys without prefix.
    assert_eq!(users.iter().unwrap().count(), 101);
    assert_eq!(
        posts.iter().unwrap().map(|e| e.unwrap().0).collect::<Vec<_>>(),
        vec![b"k".to_vec()]
    );
    assert_eq!(users.iter().unwrap().next_back().unwrap().unwrap().0, key(99));
    assert_eq!(users.iter().unwrap().next().unwrap().unwrap().0, b"k".to_vec());
    assert_eq!(users.prefix(b"key00000").unwrap().count(), 10);
    assert_eq!(users.range(key(10)..key(20)).unwrap().count(), 10);
    assert_eq!(db.iter().unwrap().count(), 1);
    users.delete_range(key(0), key(50), WriteOptions::NO_SYNC).unwrap();
    assert_eq!(users.iter().unwrap().count(), 51);
    assert_eq!(posts.get(b"k").unwrap().as_deref(), Some(&b"posts"[..]));
    // The same after the data moves to SSTs and through compaction.
    db.compact_all().unwrap();
    assert_eq!(users.iter().unwrap().count(), 51);
    assert_eq!(users.range(..key(60)).unwrap().count(), 11, "\"k\" and key50..key59");
    assert_eq!(db.iter().unwrap().count(), 1);
    let snapshot = db.snapshot().unwrap();
    users.put(b"late", b"1", WriteOptions::NO_SYNC).unwrap();
    assert_eq!(snapshot.get_in(&users, b"late").unwrap(), None);
    assert_eq!(snapshot.range_in::<&[u8], _>(&users, ..).unwrap().count(), 51);
    assert_eq!(snapshot.prefix_in(&posts, b"").unwrap().count(), 1);
    assert_eq!(db.keyspaces(), vec!["default", "posts", "users"]);
    db.verify().unwrap();
}

#[test]
fn names_and_lookups_give_clear_errors() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    assert!(matches!(db.open_keyspace("missing"), Err(Error::KeyspaceNotFound { .. })));
    db.create_keyspace("a").unwrap();
    assert!(matches!(db.create_keyspace("a"), Err(Error::KeyspaceExists { .. })));
    assert!(db.open_keyspace("a").is_ok());
    assert!(matches!(db.keyspace(""), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.keyspace("tab\there"), Err(Error::InvalidArgument(_))));
    let longest = "n".repeat(KEYSPACE_NAME_LEN_MAX);
    assert!(db.keyspace(&longest).is_ok());
    let too_long = "n".repeat(KEYSPACE_NAME_LEN_MAX + 1);
    assert!(matches!(db.keyspace(&too_long), Err(Error::LimitExceeded { .. })));
    assert!(matches!(db.drop_keyspace("default"), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.drop_keyspace("missing"), Err(Error::KeyspaceNotFound { .. })));
    assert_eq!(db.default_keyspace().name(), "default");

    // A keyspace handle of another database is refused, not written into a namesake.
    let other = Db::open("/other", Options::in_memory()).unwrap();
    let foreign = other.keyspace("a").unwrap();
    let mut batch = WriteBatch::new();
    batch.put_in(&foreign, b"k", b"v");
    assert!(matches!(db.write(batch, WriteOptions::NO_SYNC), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_dropped_keyspace_is_gone_its_handles_refuse_and_its_name_starts_empty() {
    let sim = SimFs::new();
    let options = small_levels(&sim);
    let db = Db::open("/db", options.clone()).unwrap();
    let doomed = db.keyspace("doomed").unwrap();
    let kept = db.keyspace("kept").unwrap();
    for index in 0..3_000 {
        doomed.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
        kept.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
    }
    db.compact_all().unwrap();
    // Some of the keyspace is still in the memtable and L0 when it is dropped.
    for index in 3_000..3_100 {
        doomed.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
    }
    let snapshot = db.snapshot().unwrap();
    let early_iter = doomed.iter().unwrap();
    let before = db.stats();
    let bytes_before: u64 = before.levels.iter().map(|level| level.size_bytes).sum();
    db.drop_keyspace("doomed").unwrap();
    let after = db.stats();
    let bytes_after: u64 = after.levels.iter().map(|level| level.size_bytes).sum();
    assert!(after.keyspace_drop_files_removed > 0, "no file removed by the drop");
    assert!(bytes_after < bytes_before * 6 / 10, "{bytes_before} -> {bytes_after} bytes");
    assert_eq!(
        after.compaction_bytes_written, before.compaction_bytes_written,
        "a drop must not rewrite anything"
    );
    assert!(matches!(doomed.get(key(1)), Err(Error::KeyspaceDropped { .. })));
    assert!(matches!(
        doomed.put(b"k", b"v", WriteOptions::NO_SYNC),
        Err(Error::KeyspaceDropped { .. })
    ));
    assert!(matches!(doomed.iter(), Err(Error::KeyspaceDropped { .. })));
    // A batch that also writes to a live keyspace is refused whole.
    let mut batch = WriteBatch::new();
    batch.put_in(&kept, b"new", b"1").put_in(&doomed, b"new", b"1");
    assert!(matches!(db.write(batch, WriteOptions::NO_SYNC), Err(Error::KeyspaceDropped { .. })));
    assert_eq!(kept.get(b"new").unwrap(), None);
    // The drop is immediate for snapshots too; an iterator made before it keeps reading.
    assert!(matches!(snapshot.get_in(&doomed, key(7)), Err(Error::KeyspaceDropped { .. })));
    assert_eq!(early_iter.take(10).count(), 10);
    drop(snapshot);
    assert_eq!(db.keyspaces(), vec!["default", "kept"]);
    let reborn = db.keyspace("doomed").unwrap();
    assert_eq!(reborn.iter().unwrap().count(), 0);
    assert_eq!(reborn.get(key(3_050)).unwrap(), None);
    // Leftovers in L0 and the memtable go with the next flush and compaction.
    db.compact_all().unwrap();
    assert_eq!(kept.iter().unwrap().count(), 3_000);
    // Keyspace handles share the database like `Db` clones: dropped before it reopens.
    drop((doomed, kept, reborn));
    db.close().unwrap();

    let db = Db::open("/db", options).unwrap();
    assert_eq!(db.keyspaces(), vec!["default", "doomed", "kept"]);
    assert_eq!(db.open_keyspace("doomed").unwrap().iter().unwrap().count(), 0);
    assert_eq!(db.open_keyspace("kept").unwrap().iter().unwrap().count(), 3_000);
    let total_entries: u64 = db.verify().unwrap().sst_entries;
    assert_eq!(total_entries, 3_000, "the dropped keyspace's entries are all reclaimed");
}

/// A batch across keyspaces is one WAL record: after a power cut all of it or none is there.
#[test]
fn a_batch_across_keyspaces_is_atomic_across_power_loss() {
    let seed = base_seed();
    with_seed("a_batch_across_keyspaces_is_atomic_across_power_loss", seed, |seed| {
        let mut rng = Rng::new(seed);
        for round in 0..20 * scale() {
            let sim = SimFs::new();
            let options = small_levels(&sim);
            let db = Db::open("/db", options.clone()).unwrap();
            let left = db.keyspace("left").unwrap();
            let right = db.keyspace("right").unwrap();
            let batches = 50 + rng.below(200);
            let cut = rng.below(400);
            sim.crash_after_ops(cut);
            let mut acknowledged_synced = 0;
            for index in 0..batches {
                let mut batch = WriteBatch::new();
                batch.put_in(&left, key(index), value(index)).put_in(
                    &right,
                    key(index),
                    value(index),
                );
                let sync = rng.chance(20);
                let write = if sync { WriteOptions::SYNC } else { WriteOptions::NO_SYNC };
                match db.write(batch, write) {
                    Ok(()) if sync => acknowledged_synced = index + 1,
                    Ok(()) => {}
                    Err(_) => break,
                }
            }
            drop(db);
            let image = sim.crash_image(CrashMode::DropUnsynced);
            let db = Db::open("/db", Options { create_if_missing: false, ..small_levels(&image) });
            let Ok(db) = db else {
                // The crash came before the database's first manifest was durable.
                assert!(cut < 10, "round {round}: reopen failed after {cut} ops");
                continue;
            };
            let (Ok(left), Ok(right)) = (db.open_keyspace("left"), db.open_keyspace("right"))
            else {
                assert_eq!(acknowledged_synced, 0, "round {round}: a keyspace was lost");
                continue;
            };
            let left_keys: Vec<_> = left.iter().unwrap().map(|e| e.unwrap()).collect();
            let right_keys: Vec<_> = right.iter().unwrap().map(|e| e.unwrap()).collect();
            assert_eq!(left_keys, right_keys, "round {round}: a batch was split by the crash");
            assert!(
                left_keys.len() as u64 >= acknowledged_synced,
                "round {round}: synced writes lost"
            );
            for (index, (got_key, got_value)) in left_keys.iter().enumerate() {
                assert_eq!((got_key, got_value), (&key(index as u64), &value(index as u64)));
            }
        }
    });
}

/// Power cut at every I/O call of a drop: after reopen the keyspace is whole or gone, and the
/// other keyspaces are untouched.
#[test]
fn a_drop_cut_by_power_loss_at_any_point_leaves_the_keyspace_whole_or_gone() {
    let (mut whole, mut gone) = (0, 0);
    for cut_after in 0u64.. {
        let sim = SimFs::new();
        let options = small_levels(&sim);
        let db = Db::open("/db", options).unwrap();
        let doomed = db.keyspace("doomed").unwrap();
        let kept = db.keyspace("kept").unwrap();
        for index in 0..600 {
            doomed.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
            kept.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
        }
        db.flush().unwrap();
        doomed.put(b"last", b"1", WriteOptions::SYNC).unwrap();
        sim.crash_after_ops(cut_after);
        let result = db.drop_keyspace("doomed");
        drop(db);
        let image = sim.crash_image(CrashMode::DropUnsynced);
        let db =
            Db::open("/db", Options { create_if_missing: false, ..small_levels(&image) }).unwrap();
        assert_eq!(db.open_keyspace("kept").unwrap().iter().unwrap().count(), 600);
        match db.open_keyspace("doomed") {
            Ok(doomed) => {
                assert!(result.is_err(), "cut {cut_after}: an acknowledged drop came back");
                assert_eq!(doomed.iter().unwrap().count(), 601, "cut {cut_after}: partly dropped");
                whole += 1;
            }
            Err(Error::KeyspaceNotFound { .. }) => gone += 1,
            Err(other) => panic!("cut {cut_after}: {other}"),
        }
        db.verify().unwrap();
        if result.is_ok() {
            break;
        }
        assert!(cut_after < 1_000, "the drop never finished");
    }
    assert!(whole > 0 && gone > 0, "whole {whole}, gone {gone}");
}

#[derive(Default)]
struct Model {
    /// Live keyspaces (the default one is "default").
    spaces: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
}

/// Random puts, deletes, range deletions and batches over random keyspaces, with creates,
/// drops, re-creates, flushes, compactions, reopens and power losses, checked against a model.
#[test]
fn random_keyspace_operations_match_a_model() {
    let seed = base_seed();
    with_seed("random_keyspace_operations_match_a_model", seed, |seed| {
        let mut rng = Rng::new(seed);
        let names = ["default", "a", "b", "c"];
        let mut sim = SimFs::new();
        let mut db = Db::open("/db", small_levels(&sim)).unwrap();
        let mut model = Model::default();
        model.spaces.insert("default".into(), BTreeMap::new());
        let steps = 3_000 * scale();
        let (mut checks, mut drops_of_data, mut flushes) = (0u64, 0u64, 0u64);
        for step in 0..steps {
            let name = names[rng.below(names.len() as u64) as usize];
            let live = model.spaces.contains_key(name);
            let roll = rng.below(1000);
            let context = format!("step {step} ({roll}) on {name}");
            match roll {
                0..=19 if name != "default" => {
                    if model.spaces.get(name).is_some_and(|space| !space.is_empty()) {
                        drops_of_data += 1;
                    }
                    let result = db.drop_keyspace(name);
                    assert_eq!(result.is_ok(), live, "{context}: {result:?}");
                    model.spaces.remove(name);
                }
                20..=29 => {
                    db.keyspace(name).unwrap();
                    model.spaces.entry(name.to_string()).or_default();
                }
                30..=34 => {
                    db.flush().unwrap();
                    flushes += 1;
                }
                35..=37 => {
                    db.compact_all().unwrap();
                    flushes += 1;
                }
                38..=40 => {
                    db.close().unwrap();
                    db = Db::open("/db", small_levels(&sim)).unwrap();
                }
                41..=43 => {
                    // A synced write first, so the power loss keeps everything acknowledged.
                    db.put(b"sync", b"1", WriteOptions::SYNC).unwrap();
                    model
                        .spaces
                        .get_mut("default")
                        .unwrap()
                        .insert(b"sync".to_vec(), b"1".to_vec());
                    drop(db);
                    sim = sim.crash_image(CrashMode::DropUnsynced);
                    db = Db::open("/db", small_levels(&sim)).unwrap();
                }
                _ if !live => {
                    let result = db.open_keyspace(name);
                    assert!(matches!(result, Err(Error::KeyspaceNotFound { .. })), "{context}");
                }
                44..=99 => {
                    // A batch over two keyspaces.
                    let other = names[rng.below(names.len() as u64) as usize];
                    if !model.spaces.contains_key(other) {
                        continue;
                    }
                    let (first, second) =
                        (db.open_keyspace(name).unwrap(), db.open_keyspace(other).unwrap());
                    let mut batch = WriteBatch::new();
                    let (k1, k2) = (key(rng.below(300)), key(rng.below(300)));
                    let len = rng.below(100) as usize;
                    let v = rng.bytes(len);
                    batch.put_in(&first, &k1, &v).delete_in(&second, &k2);
                    db.write(batch, WriteOptions::NO_SYNC).unwrap();
                    model.spaces.get_mut(name).unwrap().insert(k1, v);
                    model.spaces.get_mut(other).unwrap().remove(&k2);
                }
                100..=119 => {
                    let keyspace = db.open_keyspace(name).unwrap();
                    let (a, b) = (rng.below(300), rng.below(300));
                    let (start, end) = (key(a.min(b)), key(a.max(b)));
                    keyspace.delete_range(&start, &end, WriteOptions::NO_SYNC).unwrap();
                    let space = model.spaces.get_mut(name).unwrap();
                    space.retain(|k, _| !(k >= &start && k < &end));
                }
                120..=299 => {
                    let keyspace = db.open_keyspace(name).unwrap();
                    let k = key(rng.below(300));
                    keyspace.delete(&k, WriteOptions::NO_SYNC).unwrap();
                    model.spaces.get_mut(name).unwrap().remove(&k);
                }
                300..=799 => {
                    let keyspace = db.open_keyspace(name).unwrap();
                    let (k, len) = (key(rng.below(300)), rng.below(200) as usize);
                    let v = rng.bytes(len);
                    keyspace.put(&k, &v, WriteOptions::NO_SYNC).unwrap();
                    model.spaces.get_mut(name).unwrap().insert(k, v);
                }
                _ => {
                    let keyspace = db.open_keyspace(name).unwrap();
                    let k = key(rng.below(300));
                    let space = &model.spaces[name];
                    assert_eq!(keyspace.get(&k).unwrap().as_ref(), space.get(&k), "{context}");
                    let got: Vec<_> = keyspace.iter().unwrap().map(|e| e.unwrap()).collect();
                    let want: Vec<_> = space.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    assert!(got == want, "{context}: {} entries, want {}", got.len(), want.len());
                    checks += 1;
                }
            }
        }
        assert!(
            checks > 100 * scale() && drops_of_data >= 3 && flushes >= 6,
            "too little exercised: {checks} checks, {drops_of_data} drops, {flushes} flushes"
        );
        let mut listed = db.keyspaces();
        listed.sort();
        assert_eq!(listed, model.spaces.keys().cloned().collect::<Vec<_>>());
        for (name, space) in &model.spaces {
            let got: Vec<_> =
                db.open_keyspace(name).unwrap().iter().unwrap().map(|e| e.unwrap()).collect();
            assert_eq!(got.len(), space.len(), "final {name}");
        }
        db.verify().unwrap();
    });
}

/// A dropped keyspace's range deletions still in the memtable leave memory at the next flush,
/// so drops cannot use up the live range tombstone limit.
#[test]
fn range_deletions_of_a_dropped_keyspace_do_not_outlive_it() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    for round in 0..5 {
        let doomed = db.keyspace("doomed").unwrap();
        doomed.put(b"k", b"v", WriteOptions::NO_SYNC).unwrap();
        doomed.delete_range(b"a", b"z", WriteOptions::NO_SYNC).unwrap();
        db.drop_keyspace("doomed").unwrap();
        db.flush().unwrap();
        assert_eq!(db.stats().range_tombstones_live, 0, "round {round}");
    }
}

/// Each keyspace has its own memtable partition and its own L0 files: a flush writes one file
/// per keyspace, a drop removes even the dropped keyspace's L0 files unread, and L0 files
/// spread over many keyspaces neither slow writers down nor trigger compactions, since no key
/// is in more than one of them.
#[test]
fn flushes_write_one_l0_file_per_keyspace_and_only_deep_keyspaces_slow_writes() {
    let sim = SimFs::new();
    let options = Options {
        background_threads: 1,
        l0_compaction_trigger: 2,
        l0_slowdown_trigger: 3,
        l0_stop_trigger: 4,
        // Only explicit flushes.
        memtable_size_bytes_max: 1 << 20,
        ..small_levels(&sim)
    };
    let db = Db::open("/db", options).unwrap();
    let names: Vec<String> = (0..6).map(|index| format!("ks{index}")).collect();
    let handles: Vec<_> = names.iter().map(|name| db.keyspace(name).unwrap()).collect();
    for (number, keyspace) in handles.iter().enumerate() {
        for index in 0..50 {
            keyspace.put(key(index), value(number as u64), WriteOptions::NO_SYNC).unwrap();
        }
    }
    db.flush().unwrap();
    let stats = db.stats();
    assert_eq!(stats.levels[0].files, 6, "one L0 file per keyspace written");
    assert_eq!(stats.l0_depth, 1);
    assert_eq!(stats.compactions, 0, "six shallow keyspaces need no compaction: {stats:#?}");

    // Two flushes more: 18 L0 files, past the stop trigger in all, but 3 deep per keyspace,
    // which is the slowdown trigger and below the stop trigger.
    for round in 1..3u64 {
        for keyspace in &handles {
            keyspace.put(key(round), value(round), WriteOptions::NO_SYNC).unwrap();
        }
        db.flush().unwrap();
    }
    // Background compaction brings every keyspace back below the trigger.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let settled =
        |stats: &nanodb_storage::DbStats| stats.levels[0].files <= 6 && stats.l0_depth < 2;
    while !settled(&db.stats()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stats = db.stats();
    assert!(stats.l0_depth < 2, "{stats}");
    assert_eq!(stats.write_stalls, 0, "no writer waited for compaction");
    assert!(stats.compactions >= 6, "each keyspace at the trigger compacts: {stats:?}");
    assert!(stats.levels[0].files <= 6, "{:?}", stats.levels[0]);
    for (number, keyspace) in handles.iter().enumerate() {
        assert_eq!(keyspace.iter().unwrap().count(), 50, "keyspace {number}");
        assert_eq!(keyspace.get(key(2)).unwrap(), Some(value(2)));
        assert_eq!(keyspace.get(key(40)).unwrap(), Some(value(number as u64)));
    }
}

/// With one L0 file per keyspace, a drop removes the dropped keyspace's L0 files too, unread.
#[test]
fn a_drop_removes_the_keyspaces_l0_files() {
    let sim = SimFs::new();
    let options = Options { memtable_size_bytes_max: 1 << 20, ..small_levels(&sim) };
    let db = Db::open("/db", options).unwrap();
    let (doomed, kept) = (db.keyspace("doomed").unwrap(), db.keyspace("kept").unwrap());
    for index in 0..100 {
        doomed.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
        kept.put(key(index), value(index), WriteOptions::NO_SYNC).unwrap();
    }
    db.flush().unwrap();
    let before = db.stats();
    assert_eq!(before.levels[0].files, 2);
    db.drop_keyspace("doomed").unwrap();
    let after = db.stats();
    assert_eq!(after.levels[0].files, 1);
    assert_eq!(after.keyspace_drop_files_removed, 1);
    assert_eq!(after.compaction_bytes_written, before.compaction_bytes_written);
    assert_eq!(kept.iter().unwrap().count(), 100);
}

/// `get_with` passes exactly the bytes `get` returns, wherever the value lies (memtable, an
/// SST's cached block, an expiring value without its header), and never runs for a missing,
/// deleted, dropped-by-range or expired key.
#[test]
fn get_with_sees_what_get_returns_wherever_the_value_lies() {
    use nanodb_storage::ManualClock;
    use std::cell::RefCell;
    use std::sync::Arc;
    use std::time::Duration;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let db = Db::open("/db", Options { clock: clock.clone(), ..Options::in_memory() }).unwrap();
    let docs = db.keyspace("docs").unwrap();
    let value = |i: u32| format!("value {i} ").repeat(i as usize % 7 + 1).into_bytes();
    // What every key should read: written below, changed as the test goes.
    let model: RefCell<BTreeMap<String, Vec<u8>>> = RefCell::new(BTreeMap::new());
    for i in 0..300u32 {
        docs.put(format!("k{i:03}"), value(i), WriteOptions::NO_SYNC).unwrap();
        model.borrow_mut().insert(format!("k{i:03}"), value(i));
    }
    docs.put_with_ttl("short", b"soon gone", Duration::from_secs(5), WriteOptions::NO_SYNC)
        .unwrap();
    model.borrow_mut().insert("short".into(), b"soon gone".to_vec());
    docs.delete("k007", WriteOptions::NO_SYNC).unwrap();
    model.borrow_mut().remove("k007");
    let check = |stage: &str| {
        for key in (0..300u32).map(|i| format!("k{i:03}")).chain(["short".into(), "nope".into()]) {
            let expected = model.borrow().get(&key).cloned();
            let mut ran = false;
            let seen = docs
                .get_with(&key, |bytes| {
                    ran = true;
                    bytes.to_vec()
                })
                .unwrap();
            assert_eq!(seen, expected, "{stage}: {key}");
            assert_eq!(ran, expected.is_some(), "{stage}: {key}: f runs only for a value");
            assert_eq!(docs.get(&key).unwrap(), expected, "{stage}: get of {key}");
        }
    };
    check("memtable");
    db.flush().unwrap();
    check("sst");
    db.compact_all().unwrap();
    check("compacted");
    // A range deletion over values in an SST: f never runs for them.
    docs.delete_range("k200", "k210", WriteOptions::NO_SYNC).unwrap();
    model.borrow_mut().retain(|key, _| !(key.as_str() >= "k200" && key.as_str() < "k210"));
    check("range deleted, memtable");
    db.flush().unwrap();
    check("range deleted, sst");
    // Through a snapshot: the version it saw, from the block, after the key changed.
    let snapshot = db.snapshot().unwrap();
    docs.put("k123", b"newer", WriteOptions::NO_SYNC).unwrap();
    let old = snapshot.get_in_with(&docs, "k123", |bytes| bytes.to_vec()).unwrap();
    assert_eq!(old, Some(value(123)));
    assert_eq!(old, snapshot.get_in(&docs, "k123").unwrap());
    assert_eq!(snapshot.get_in_with(&docs, "k205", |_| ()).unwrap(), None, "range deleted");
    assert_eq!(snapshot.get_in_with(&docs, "nope", |_| ()).unwrap(), None);
    model.borrow_mut().insert("k123".into(), b"newer".to_vec());
    // The expiring value in an SST: its header skipped, then gone at its expiry.
    check("before expiry");
    clock.advance(Duration::from_secs(5));
    model.borrow_mut().remove("short");
    check("expired");
}
