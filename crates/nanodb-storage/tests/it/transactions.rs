//! Optimistic transactions: read-your-writes, conflicts (snapshot isolation and serializable),
//! the memory limit, the retry helper, a model of interleaved transactions, power loss during
//! commits, and concurrent isolation checks (transfers, list appends, write skew).

use crate::common::{base_seed, key, scale, small_levels, with_seed, Rng};
use nanodb_storage::fs::{CrashMode, SimFs};
use nanodb_storage::{
    Db, Error, Options, Transaction, TransactionOptions, WriteOptions,
    TRANSACTION_ENTRY_OVERHEAD_BYTES,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

fn collect(iter: nanodb_storage::TransactionIter) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.map(|entry| entry.unwrap()).collect()
}

#[test]
fn a_transaction_reads_its_own_writes_over_its_snapshot() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    for index in 0..10 {
        db.put(key(index), b"old", WriteOptions::NO_SYNC).unwrap();
    }
    let mut txn = db.transaction().unwrap();
    txn.put(key(3), b"mine").unwrap();
    txn.delete(key(4)).unwrap();
    txn.put(key(20), b"new").unwrap();
    // Another writer commits meanwhile: the transaction does not see it.
    db.put(key(5), b"theirs", WriteOptions::NO_SYNC).unwrap();
    db.put(key(6), b"theirs", WriteOptions::NO_SYNC).unwrap();
    assert_eq!(txn.get(key(3)).unwrap().as_deref(), Some(&b"mine"[..]));
    assert_eq!(txn.get(key(4)).unwrap(), None);
    assert_eq!(txn.get(key(5)).unwrap().as_deref(), Some(&b"old"[..]));
    let scanned = collect(txn.range(key(2)..key(30)).unwrap());
    let keys: Vec<Vec<u8>> = scanned.iter().map(|(k, _)| k.clone()).collect();
    let want: Vec<Vec<u8>> = [2, 3, 5, 6, 7, 8, 9, 20].iter().map(|&i| key(i)).collect();
    assert_eq!(keys, want);
    assert_eq!(scanned[1].1, b"mine");
    assert_eq!(scanned[2].1, b"old", "the snapshot's value, not the concurrent write");
    assert_eq!(collect(txn.prefix(b"key00002").unwrap()).len(), 1);
    // Nothing is visible outside before commit.
    assert_eq!(db.get(key(20)).unwrap(), None);
    txn.commit().unwrap();
    assert_eq!(db.get(key(3)).unwrap().as_deref(), Some(&b"mine"[..]));
    assert_eq!(db.get(key(4)).unwrap(), None);
    assert_eq!(db.get(key(20)).unwrap().as_deref(), Some(&b"new"[..]));
    // Dropping a transaction discards it.
    let mut dropped = db.transaction().unwrap();
    dropped.put(b"ghost", b"1").unwrap();
    drop(dropped);
    assert_eq!(db.get(b"ghost").unwrap(), None);
    assert_eq!(db.stats().transaction_commits, 1);
}

/// Reversed and empty ranges read nothing and never panic, in either mode, with or without
/// buffered writes and with other commits in the same group.
#[test]
fn reversed_and_empty_ranges_read_nothing() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    db.put(b"b", b"1", WriteOptions::NO_SYNC).unwrap();
    for serializable in [false, true] {
        let options = TransactionOptions { serializable, ..TransactionOptions::default() };
        let mut txn = db.transaction_with(options).unwrap();
        assert_eq!(collect(txn.range(b"m".to_vec()..b"a".to_vec()).unwrap()).len(), 0);
        txn.put(b"c", b"2").unwrap();
        assert_eq!(collect(txn.range(b"m".to_vec()..b"a".to_vec()).unwrap()).len(), 0);
        let empty =
            (std::ops::Bound::Excluded(b"b".to_vec()), std::ops::Bound::Excluded(b"b".to_vec()));
        assert_eq!(collect(txn.range(empty).unwrap()).len(), 0);
        assert_eq!(collect(txn.range(b"a".to_vec()..=b"z".to_vec()).unwrap()).len(), 2);
        // Another commit outside every range read, in the same group or just before.
        db.put(b"zz", b"x", WriteOptions::NO_SYNC).unwrap();
        txn.commit().unwrap();
    }
    // The database is still writable: no commit group was poisoned.
    db.put(b"still-writable", b"1", WriteOptions::NO_SYNC).unwrap();
}

#[test]
fn transactions_span_keyspaces() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    let accounts = db.keyspace("accounts").unwrap();
    let log = db.keyspace("log").unwrap();
    accounts.put(b"alice", b"10", WriteOptions::NO_SYNC).unwrap();
    let mut txn = db.transaction().unwrap();
    assert_eq!(txn.get_in(&accounts, b"alice").unwrap().as_deref(), Some(&b"10"[..]));
    assert_eq!(txn.get(b"alice").unwrap(), None, "the default keyspace is another space");
    txn.put_in(&accounts, b"alice", b"5").unwrap();
    txn.put_in(&log, b"0001", b"alice -5").unwrap();
    txn.delete_in(&log, b"0000").unwrap();
    assert_eq!(collect(txn.prefix_in(&log, b"").unwrap()).len(), 1);
    assert_eq!(collect(txn.range_in::<&[u8], _>(&accounts, ..).unwrap()).len(), 1);
    txn.commit().unwrap();
    assert_eq!(accounts.get(b"alice").unwrap().as_deref(), Some(&b"5"[..]));
    assert_eq!(log.iter().unwrap().count(), 1);
    // A transaction writing to a keyspace dropped before it commits fails whole.
    let mut txn = db.transaction().unwrap();
    txn.put_in(&log, b"0002", b"x").unwrap();
    txn.put_in(&accounts, b"bob", b"1").unwrap();
    db.drop_keyspace("log").unwrap();
    assert!(matches!(txn.commit(), Err(Error::KeyspaceDropped { .. })));
    assert_eq!(accounts.get(b"bob").unwrap(), None);
}

#[test]
fn the_first_committer_wins_and_the_loser_writes_nothing() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    let mut first = db.transaction().unwrap();
    let mut second = db.transaction().unwrap();
    first.put(b"k", b"first").unwrap();
    second.put(b"k", b"second").unwrap();
    second.put(b"other", b"second").unwrap();
    first.commit().unwrap();
    match second.commit() {
        Err(Error::Conflict { key }) => assert_eq!(key, b"\0k", "the stored key is named"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(db.get(b"other").unwrap(), None);
    // A plain write counts as a commit too, and so does a delete or a range deletion.
    for conflicting in 0..3 {
        let mut txn = db.transaction().unwrap();
        txn.put(b"k", b"txn").unwrap();
        match conflicting {
            0 => db.put(b"k", b"plain", WriteOptions::NO_SYNC).unwrap(),
            1 => db.delete(b"k", WriteOptions::NO_SYNC).unwrap(),
            _ => db.delete_range(b"a", b"z", WriteOptions::NO_SYNC).unwrap(),
        }
        assert!(matches!(txn.commit(), Err(Error::Conflict { .. })), "case {conflicting}");
    }
    // Writes to other keys, or before the transaction began, do not conflict.
    db.put(b"k", b"before", WriteOptions::NO_SYNC).unwrap();
    let mut txn = db.transaction().unwrap();
    db.put(b"unrelated", b"1", WriteOptions::NO_SYNC).unwrap();
    db.flush().unwrap();
    txn.put(b"k", b"txn").unwrap();
    txn.commit().unwrap();
    assert!(db.stats().transaction_conflicts >= 4);
}

#[test]
fn snapshot_isolation_allows_write_skew_and_serializable_refuses_it() {
    for serializable in [false, true] {
        let db = Db::open("/db", Options::in_memory()).unwrap();
        db.put(b"x", b"1", WriteOptions::NO_SYNC).unwrap();
        db.put(b"y", b"1", WriteOptions::NO_SYNC).unwrap();
        let options = TransactionOptions { serializable, ..TransactionOptions::default() };
        // Two doctors on call; each goes off call if the other is still on.
        let mut first = db.transaction_with(options.clone()).unwrap();
        let mut second = db.transaction_with(options).unwrap();
        for txn in [&mut first, &mut second] {
            let on_call =
                [b"x", b"y"].iter().filter(|k| txn.get(k).unwrap().as_deref() == Some(b"1"));
            assert_eq!(on_call.count(), 2);
        }
        first.put(b"x", b"0").unwrap();
        second.put(b"y", b"0").unwrap();
        first.commit().unwrap();
        let result = second.commit();
        if serializable {
            assert!(matches!(result, Err(Error::Conflict { .. })), "write skew let through");
        } else {
            result.unwrap();
            assert_eq!(db.get(b"x").unwrap().as_deref(), Some(&b"0"[..]));
            assert_eq!(db.get(b"y").unwrap().as_deref(), Some(&b"0"[..]));
        }
    }
}

#[test]
fn serializable_scans_see_phantoms_as_conflicts() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    db.put(b"task/1", b"open", WriteOptions::NO_SYNC).unwrap();
    let mut txn = db.transaction_with(TransactionOptions::serializable()).unwrap();
    assert_eq!(collect(txn.prefix(b"task/").unwrap()).len(), 1);
    txn.put(b"count", b"1").unwrap();
    // A key outside the scanned range does not conflict...
    db.put(b"tasl", b"x", WriteOptions::NO_SYNC).unwrap();
    // ...one inside does, even though it did not exist when the scan ran.
    db.put(b"task/2", b"open", WriteOptions::NO_SYNC).unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict { .. })));

    // The same range scanned, nothing written in it: commits. And a snapshot-isolation
    // transaction ignores what it only read.
    for serializable in [true, false] {
        let options = TransactionOptions { serializable, ..TransactionOptions::default() };
        let mut txn = db.transaction_with(options).unwrap();
        collect(txn.prefix(b"task/").unwrap());
        txn.get(b"tasl").unwrap();
        txn.put(b"count", b"2").unwrap();
        db.put(b"zzz", b"x", WriteOptions::NO_SYNC).unwrap();
        if !serializable {
            db.put(b"task/3", b"open", WriteOptions::NO_SYNC).unwrap();
            db.put(b"tasl", b"y", WriteOptions::NO_SYNC).unwrap();
        }
        txn.commit().unwrap();
    }
    // A point read that changed conflicts in serializable mode, also after a flush moved it.
    let mut txn = db.transaction_with(TransactionOptions::serializable()).unwrap();
    txn.get(b"tasl").unwrap();
    txn.put(b"count", b"3").unwrap();
    db.put(b"tasl", b"z", WriteOptions::NO_SYNC).unwrap();
    db.flush().unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict { .. })));
}

#[test]
fn the_memory_limit_is_exact_and_clear() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    // One write of key "k" (stored as 2 bytes) and a 34-byte value takes exactly 100 bytes.
    let entry = 2 + 34 + TRANSACTION_ENTRY_OVERHEAD_BYTES;
    let options =
        TransactionOptions { memory_bytes_max: 2 * entry, ..TransactionOptions::default() };
    let mut txn = db.transaction_with(options).unwrap();
    txn.put(b"k", [1u8; 34]).unwrap();
    txn.put(b"j", [1u8; 34]).unwrap();
    assert_eq!(txn.memory_bytes(), 2 * entry);
    // Overwriting with a value of the same size fits; one byte more does not.
    txn.put(b"k", [2u8; 34]).unwrap();
    match txn.put(b"k", [2u8; 35]) {
        Err(Error::LimitExceeded { what, size, max }) => {
            assert_eq!(
                (what, size, max),
                ("transaction memory", 2 * entry as u64 + 1, 2 * entry as u64)
            );
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(matches!(txn.put(b"new", b""), Err(Error::LimitExceeded { .. })));
    // A smaller value frees room.
    txn.put(b"k", [3u8; 10]).unwrap();
    assert_eq!(txn.memory_bytes(), 2 * entry - 24);
    txn.commit().unwrap();
    assert_eq!(db.get(b"k").unwrap(), Some(vec![3u8; 10]));

    // No cap besides memory: a transaction of 100,000 writes commits.
    let mut big = db.transaction().unwrap();
    for index in 0..100_000 {
        big.put(key(index), b"v").unwrap();
    }
    assert_eq!(big.write_count(), 100_000);
    big.commit().unwrap();
    assert_eq!(db.prefix(b"key").unwrap().count(), 100_000);
}

#[test]
fn run_transaction_retries_conflicts_a_bounded_number_of_times() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    let mut attempts = 0;
    let options = TransactionOptions { retries_max: 3, ..TransactionOptions::default() };
    let result = db.run_transaction(options.clone(), |txn| {
        attempts += 1;
        txn.put(b"k", b"mine")?;
        // Someone else always commits first.
        db.put(b"k", b"theirs", WriteOptions::NO_SYNC)?;
        Ok(())
    });
    assert!(matches!(result, Err(Error::Conflict { .. })));
    assert_eq!(attempts, 4, "the first run and 3 retries");
    // A conflict that goes away is retried to success; other errors are not retried.
    let mut attempts = 0;
    let value = db
        .run_transaction(options.clone(), |txn| {
            attempts += 1;
            txn.put(b"k", b"mine")?;
            if attempts < 3 {
                db.put(b"k", b"theirs", WriteOptions::NO_SYNC)?;
            }
            Ok(attempts)
        })
        .unwrap();
    assert_eq!(value, 3);
    let mut attempts = 0;
    let result: Result<(), Error> = db.run_transaction(options, |_| {
        attempts += 1;
        Err(Error::InvalidArgument("no".into()))
    });
    assert!(matches!(result, Err(Error::InvalidArgument(_))));
    assert_eq!(attempts, 1);
}

/// Several transactions open at once in one thread, committed in random order, checked
/// against a model: a commit succeeds exactly when no key it wrote was written by another
/// commit after it began, and then the database equals the model.
#[test]
fn interleaved_transactions_match_a_model() {
    let seed = base_seed();
    with_seed("interleaved_transactions_match_a_model", seed, |seed| {
        let mut rng = Rng::new(seed);
        let sim = SimFs::new();
        let db = Db::open("/db", small_levels(&sim)).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        // Per key: the commit counter value of its last write.
        let mut last_write: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut commits = 0u64;
        struct Open {
            txn: Transaction,
            started_at: u64,
            writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        }
        let mut open: Vec<Open> = Vec::new();
        let (mut committed, mut conflicted) = (0u64, 0u64);
        for step in 0..4_000 * scale() {
            let context = format!("step {step}");
            match rng.below(100) {
                0..=9 if open.len() < 6 => open.push(Open {
                    txn: db.transaction().unwrap(),
                    started_at: commits,
                    writes: BTreeMap::new(),
                }),
                10..=59 if !open.is_empty() => {
                    let index = rng.below(open.len() as u64) as usize;
                    let k = key(rng.below(40));
                    let entry = &mut open[index];
                    if rng.chance(25) {
                        entry.txn.delete(&k).unwrap();
                        entry.writes.insert(k, None);
                    } else {
                        let len = rng.below(50) as usize;
                        let value = rng.bytes(len);
                        entry.txn.put(&k, &value).unwrap();
                        entry.writes.insert(k, Some(value));
                    }
                }
                60..=69 if !open.is_empty() => {
                    // Reads see the snapshot plus own writes.
                    let index = rng.below(open.len() as u64) as usize;
                    let k = key(rng.below(40));
                    let entry = &mut open[index];
                    let got = entry.txn.get(&k).unwrap();
                    if let Some(own) = entry.writes.get(&k) {
                        assert_eq!(&got, own, "{context}: own write");
                    }
                }
                70..=84 if !open.is_empty() => {
                    let index = rng.below(open.len() as u64) as usize;
                    let entry = open.swap_remove(index);
                    let conflict = entry
                        .writes
                        .keys()
                        .any(|k| last_write.get(k).is_some_and(|&at| at > entry.started_at));
                    let result = entry.txn.commit();
                    if entry.writes.is_empty() {
                        result.unwrap();
                        continue;
                    }
                    if conflict {
                        assert!(
                            matches!(result, Err(Error::Conflict { .. })),
                            "{context}: {result:?}"
                        );
                        conflicted += 1;
                    } else {
                        result.unwrap_or_else(|error| panic!("{context}: {error}"));
                        commits += 1;
                        committed += 1;
                        for (k, v) in entry.writes {
                            last_write.insert(k.clone(), commits);
                            match v {
                                Some(v) => model.insert(k, v),
                                None => model.remove(&k),
                            };
                        }
                    }
                }
                85..=89 => {
                    // A plain write: a commit of its own.
                    let k = key(rng.below(40));
                    db.put(&k, b"plain", WriteOptions::NO_SYNC).unwrap();
                    commits += 1;
                    last_write.insert(k.clone(), commits);
                    model.insert(k, b"plain".to_vec());
                }
                90..=91 => db.flush().unwrap(),
                92 => db.compact_all().unwrap(),
                _ => {
                    let got: Vec<_> = db.iter().unwrap().map(|e| e.unwrap()).collect();
                    let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    assert!(got == want, "{context}: database differs from the model");
                }
            }
        }
        assert!(committed > 50 && conflicted > 10, "{committed} commits, {conflicted} conflicts");
    });
}

/// Power cut during a stream of transaction commits: every transaction is all or nothing,
/// and every one acknowledged with a sync is there.
#[test]
fn transaction_commits_are_atomic_across_power_loss() {
    let seed = base_seed();
    with_seed("transaction_commits_are_atomic_across_power_loss", seed, |seed| {
        let mut rng = Rng::new(seed);
        for round in 0..20 * scale() {
            let sim = SimFs::new();
            let db = Db::open("/db", small_levels(&sim)).unwrap();
            let cut = rng.below(300);
            sim.crash_after_ops(cut);
            let mut acknowledged = 0;
            for index in 0..200u64 {
                let options =
                    TransactionOptions { write_options: WriteOptions::SYNC, ..Default::default() };
                let result = db.run_transaction(options, |txn| {
                    // Each transaction moves the counter and writes its own two keys.
                    let counter = txn
                        .get(b"counter")?
                        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
                    txn.put(b"counter", (counter + 1).to_le_bytes())?;
                    txn.put(format!("a{index:04}"), b"1")?;
                    txn.put(format!("b{index:04}"), b"1")
                });
                match result {
                    Ok(()) => acknowledged = index + 1,
                    Err(_) => break,
                }
            }
            drop(db);
            let image = sim.crash_image(CrashMode::DropUnsynced);
            let Ok(db) =
                Db::open("/db", Options { create_if_missing: false, ..small_levels(&image) })
            else {
                assert!(cut < 10, "round {round}: reopen failed after {cut} ops");
                continue;
            };
            let counter = db
                .get(b"counter")
                .unwrap()
                .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
            assert!(counter >= acknowledged, "round {round}: acknowledged commits lost");
            assert_eq!(db.prefix(b"a").unwrap().count() as u64, counter, "round {round}");
            assert_eq!(db.prefix(b"b").unwrap().count() as u64, counter, "round {round}");
        }
    });
}

fn read_u64(value: Option<Vec<u8>>) -> u64 {
    value.map_or(0, |bytes| u64::from_le_bytes(bytes.try_into().expect("8-byte value")))
}

/// Transfers between accounts from many threads (snapshot isolation): the total never changes
/// in any transaction's view, and no update is lost.
#[test]
fn concurrent_transfers_keep_the_total() {
    let db =
        Db::open("/db", Options { memtable_size_bytes_max: 256 * 1024, ..Options::in_memory() })
            .unwrap();
    const ACCOUNTS: u64 = 8;
    const START: u64 = 1_000;
    for account in 0..ACCOUNTS {
        db.put(key(account), START.to_le_bytes(), WriteOptions::NO_SYNC).unwrap();
    }
    let seed = base_seed();
    let transfers = 400 * scale();
    let threads: Vec<_> = (0..6u64)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ thread);
                for _ in 0..transfers {
                    let (from, to) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
                    let amount = rng.below(50);
                    let options = TransactionOptions { retries_max: 1_000, ..Default::default() };
                    db.run_transaction(options, |txn| {
                        let balance = read_u64(txn.get(key(from))?);
                        if from == to || balance < amount {
                            return Ok(());
                        }
                        txn.put(key(from), (balance - amount).to_le_bytes())?;
                        let other = read_u64(txn.get(key(to))?);
                        txn.put(key(to), (other + amount).to_le_bytes())
                    })
                    .expect("transfer");
                    if rng.chance(10) {
                        // A read-only transaction sees a consistent total.
                        let mut txn = db.transaction().unwrap();
                        let total: u64 =
                            (0..ACCOUNTS).map(|a| read_u64(txn.get(key(a)).unwrap())).sum();
                        assert_eq!(
                            total,
                            ACCOUNTS * START,
                            "seed {seed}: an inconsistent snapshot"
                        );
                        // Reading twice inside one transaction gives the same answer.
                        let again = read_u64(txn.get(key(0)).unwrap());
                        assert_eq!(again, read_u64(txn.get(key(0)).unwrap()));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let total: u64 = (0..ACCOUNTS).map(|a| read_u64(db.get(key(a)).unwrap())).sum();
    assert_eq!(total, ACCOUNTS * START);
}

/// List appends from many threads: every committed append is in the final list exactly once
/// (no lost update), every transaction read a prefix of the final list (it saw only committed
/// data, in commit order), and an aborted transaction's writes are never read (no dirty read).
#[test]
fn concurrent_list_appends_lose_nothing_and_read_only_committed_prefixes() {
    let db =
        Db::open("/db", Options { memtable_size_bytes_max: 256 * 1024, ..Options::in_memory() })
            .unwrap();
    let seed = base_seed();
    const LISTS: u64 = 4;
    let appends = 150 * scale();
    let stop = Arc::new(AtomicBool::new(false));
    let dirty_reads = Arc::new(AtomicU64::new(0));
    // A thread that writes a marker in transactions it never commits.
    let aborter = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut txn = db.transaction().unwrap();
                for list in 0..LISTS {
                    txn.put(key(list), b"DIRTY,").unwrap();
                }
                std::thread::yield_now();
                drop(txn);
            }
        })
    };
    let workers: Vec<_> = (0..6u64)
        .map(|thread| {
            let (db, dirty_reads) = (db.clone(), Arc::clone(&dirty_reads));
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (thread << 32));
                let mut history = Vec::new();
                for index in 0..appends {
                    let list = rng.below(LISTS);
                    let element = format!("{thread}.{index},");
                    let options = TransactionOptions { retries_max: 1_000, ..Default::default() };
                    let seen = db
                        .run_transaction(options, |txn| {
                            let current = txn.get(key(list))?.unwrap_or_default();
                            let mut next = current.clone();
                            next.extend_from_slice(element.as_bytes());
                            txn.put(key(list), next)?;
                            Ok(current)
                        })
                        .expect("append");
                    if seen.windows(6).any(|w| w == b"DIRTY,") {
                        dirty_reads.fetch_add(1, Ordering::Relaxed);
                    }
                    history.push((list, seen, element));
                }
                history
            })
        })
        .collect();
    let histories: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    aborter.join().unwrap();
    assert_eq!(dirty_reads.load(Ordering::Relaxed), 0, "seed {seed}: dirty reads");
    let finals: Vec<String> = (0..LISTS)
        .map(|list| String::from_utf8(db.get(key(list)).unwrap().unwrap_or_default()).unwrap())
        .collect();
    let mut total = 0;
    for history in &histories {
        for (list, seen, element) in history {
            let final_list = &finals[*list as usize];
            let seen = std::str::from_utf8(seen).unwrap();
            assert!(
                final_list.starts_with(seen),
                "seed {seed}: a read that is not a committed prefix"
            );
            // The append comes right after what it saw: the final list has it there.
            assert!(
                final_list[seen.len()..].starts_with(element.as_str()),
                "seed {seed}: append {element} is not right after what its transaction read"
            );
            assert_eq!(final_list.matches(element.as_str()).count(), 1, "seed {seed}: {element}");
            total += 1;
        }
    }
    let elements: usize = finals.iter().map(|list| list.matches(',').count()).sum();
    assert_eq!(elements, total, "seed {seed}: lost or phantom appends");
}

/// Write skew under concurrency: two on-call flags, each transaction takes one off call only
/// if both are on, another puts both back. Serializable: at least one is always on call.
#[test]
fn serializable_transactions_never_show_write_skew_under_concurrency() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    db.put(b"x", b"1", WriteOptions::NO_SYNC).unwrap();
    db.put(b"y", b"1", WriteOptions::NO_SYNC).unwrap();
    let seed = base_seed();
    let rounds = 300 * scale();
    let workers: Vec<_> = (0..4u64)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (thread << 40));
                let options = TransactionOptions {
                    retries_max: 10_000,
                    ..TransactionOptions::serializable()
                };
                for _ in 0..rounds {
                    let off: &[u8] = if rng.chance(50) { b"x" } else { b"y" };
                    let reset = rng.chance(30);
                    db.run_transaction(options.clone(), |txn| {
                        let x = txn.get(b"x")?;
                        let y = txn.get(b"y")?;
                        // Widen the window between reading and committing.
                        std::thread::sleep(std::time::Duration::from_micros(100));
                        if reset {
                            txn.put(b"x", b"1")?;
                            return txn.put(b"y", b"1");
                        }
                        if x.as_deref() == Some(b"1") && y.as_deref() == Some(b"1") {
                            txn.put(off, b"0")?;
                        }
                        Ok(())
                    })
                    .expect("on-call transaction");
                    let snapshot = db.snapshot().unwrap();
                    let on_call = [b"x", b"y"]
                        .iter()
                        .filter(|k| snapshot.get(k).unwrap().as_deref() == Some(b"1"))
                        .count();
                    assert!(on_call >= 1, "seed {seed}: write skew: nobody on call");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}

/// Random puts and deletes with nested savepoints released or rolled back at random: after
/// every step the transaction reads (key by key and by a scan) what a model keeping a copy
/// per open savepoint holds, its memory is what it was at the savepoint rolled back to, and
/// the commit writes exactly the model.
#[test]
fn savepoints_roll_back_exactly_the_writes_made_after_them() {
    let seed = base_seed();
    with_seed("savepoints_roll_back_exactly_the_writes_made_after_them", seed, |seed| {
        let mut rng = Rng::new(seed);
        let db = Db::open("/db", Options::in_memory()).unwrap();
        for index in 0..20 {
            db.put(key(index), b"committed", WriteOptions::NO_SYNC).unwrap();
        }
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> =
            (0..20).map(|index| (key(index), b"committed".to_vec())).collect();
        let mut txn = db.transaction().unwrap();
        // Each open savepoint with the model and the memory at its opening.
        let mut open = Vec::new();
        for step in 0..400 * scale() {
            match rng.below(10) {
                0 | 1 => open.push((txn.savepoint(), model.clone(), txn.memory_bytes())),
                2 if !open.is_empty() => {
                    let (savepoint, _, _) = open.pop().unwrap();
                    txn.release(savepoint).unwrap();
                }
                3 if !open.is_empty() => {
                    // Roll back to a random open savepoint: the later ones close with it.
                    let at = rng.below(open.len() as u64) as usize;
                    let (savepoint, saved, memory_bytes) = open.drain(at..).next().unwrap();
                    txn.rollback_to(savepoint).unwrap();
                    model = saved;
                    assert_eq!(txn.memory_bytes(), memory_bytes, "step {step}");
                }
                4..=6 => {
                    let k = key(rng.below(40));
                    let len = rng.below(20) as usize;
                    let value = rng.bytes(len);
                    txn.put(&k, &value).unwrap();
                    model.insert(k, value);
                }
                _ => {
                    let k = key(rng.below(40));
                    txn.delete(&k).unwrap();
                    model.remove(&k);
                }
            }
            for index in [rng.below(40), rng.below(40)] {
                assert_eq!(txn.get(key(index)).unwrap(), model.get(&key(index)).cloned());
            }
            if step % 50 == 0 {
                let scanned = collect(txn.prefix(b"key").unwrap());
                let expected: Vec<_> = model.clone().into_iter().collect();
                assert_eq!(scanned, expected, "step {step}");
            }
        }
        if let Some((outermost, _, _)) = open.into_iter().next() {
            // Releasing the outermost closes the rest; the records' charge goes with them.
            // (Not a bound from below by the memory at its opening: writes since then may
            // have replaced longer values with shorter ones, or deleted keys.)
            let before = txn.memory_bytes();
            txn.release(outermost).unwrap();
            assert!(txn.memory_bytes() <= before, "{} > {before}", txn.memory_bytes());
        }
        txn.commit().unwrap();
        let stored: BTreeMap<_, _> =
            db.prefix(b"key").unwrap().map(|entry| entry.unwrap()).collect();
        assert_eq!(stored, model);
    });
}

#[test]
fn a_rolled_back_savepoint_undoes_overwrites_and_deletes_of_earlier_writes() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    db.put(b"a", b"0", WriteOptions::NO_SYNC).unwrap();
    let mut txn = db.transaction().unwrap();
    txn.put(b"a", b"1").unwrap();
    txn.put(b"b", b"1").unwrap();
    let memory_bytes = txn.memory_bytes();
    let savepoint = txn.savepoint();
    txn.put(b"a", b"2-longer").unwrap();
    txn.delete(b"b").unwrap();
    txn.put(b"c", b"2").unwrap();
    txn.put(b"c", b"3").unwrap();
    assert_eq!(txn.write_count(), 3);
    assert!(txn.memory_bytes() > memory_bytes);
    txn.rollback_to(savepoint).unwrap();
    assert_eq!(txn.memory_bytes(), memory_bytes);
    assert_eq!(txn.write_count(), 2);
    assert_eq!(txn.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(txn.get(b"b").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(txn.get(b"c").unwrap(), None);
    // A released savepoint keeps its writes.
    let savepoint = txn.savepoint();
    txn.put(b"d", b"4").unwrap();
    txn.release(savepoint).unwrap();
    txn.commit().unwrap();
    let stored: Vec<_> = db.prefix(b"").unwrap().map(|entry| entry.unwrap()).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = [("a", "1"), ("b", "1"), ("d", "4")]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(stored, expected);
}

#[test]
fn savepoints_refuse_misuse_and_count_their_records_against_the_limit() {
    let db = Db::open("/db", Options::in_memory()).unwrap();
    // A savepoint closed by an earlier one's rollback, or of another transaction: refused,
    // and the transaction unchanged.
    let mut txn = db.transaction().unwrap();
    let mut other = db.transaction().unwrap();
    let outer = txn.savepoint();
    txn.put(b"a", b"1").unwrap();
    let inner = txn.savepoint();
    txn.put(b"b", b"2").unwrap();
    txn.rollback_to(outer).unwrap();
    let memory_bytes = txn.memory_bytes();
    assert!(matches!(txn.rollback_to(inner), Err(Error::InvalidArgument(_))));
    assert!(matches!(other.release(txn.savepoint()), Err(Error::InvalidArgument(_))));
    let foreign = other.savepoint();
    assert!(matches!(txn.rollback_to(foreign), Err(Error::InvalidArgument(_))));
    assert_eq!((txn.write_count(), txn.memory_bytes()), (0, memory_bytes));

    // Under a savepoint, overwriting a value does not free it (the record keeps it): with a
    // limit that fits two entries, the overwrites under a savepoint run out of room first.
    let entry = 2 + 34 + TRANSACTION_ENTRY_OVERHEAD_BYTES;
    let options =
        TransactionOptions { memory_bytes_max: 4 * entry, ..TransactionOptions::default() };
    let mut txn = db.transaction_with(options).unwrap();
    txn.put(b"k", [1u8; 34]).unwrap();
    let before = txn.memory_bytes();
    let savepoint = txn.savepoint();
    let mut overwrites = 0;
    while txn.put(b"k", [2u8; 34]).is_ok() {
        overwrites += 1;
        assert!(overwrites < 100, "records are never charged");
    }
    assert!(overwrites >= 1);
    txn.rollback_to(savepoint).unwrap();
    assert_eq!(txn.memory_bytes(), before);
    assert_eq!(txn.get(b"k").unwrap(), Some(vec![1u8; 34]));
    // Released, the records' charge goes: the same overwrites fit again without one.
    let savepoint = txn.savepoint();
    txn.put(b"k", [3u8; 34]).unwrap();
    txn.release(savepoint).unwrap();
    assert_eq!(txn.memory_bytes(), before);
    for _ in 0..100 {
        txn.put(b"k", [4u8; 34]).unwrap();
    }

    // Serializable reads made after a savepoint keep their charge when it is rolled back.
    let options = TransactionOptions { serializable: true, ..TransactionOptions::default() };
    let mut probe = db.transaction_with(options.clone()).unwrap();
    probe.get(b"r").unwrap();
    let read_charge = probe.memory_bytes();
    assert!(read_charge > 0);
    let mut txn = db.transaction_with(options).unwrap();
    let savepoint = txn.savepoint();
    txn.put(b"w", b"1").unwrap();
    txn.get(b"r").unwrap();
    txn.rollback_to(savepoint).unwrap();
    assert_eq!(txn.memory_bytes(), read_charge);
}
