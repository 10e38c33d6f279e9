//! Time to live with an injected clock: expired keys vanish from every read at once, stay
//! expired across reopen, and their space is reclaimed by compaction and by the background
//! sweep; a model-based test checks random TTL writes against a `BTreeMap` with expiries.

use crate::common::{base_seed, key, scale, small_levels, with_seed, Rng};
use nanodb_storage::fs::SimFs;
use nanodb_storage::{Clock, Db, ManualClock, Options, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const START_MS: u64 = 1_700_000_000_000;

fn with_clock(options: Options) -> (Options, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    (Options { clock: clock.clone(), ..options }, clock)
}

#[test]
fn an_expired_key_is_invisible_to_every_read_at_once() {
    let (options, clock) = with_clock(Options::in_memory());
    let db = Db::open("/db", options).unwrap();
    db.put(b"k", b"old", WriteOptions::NO_SYNC).unwrap();
    db.put_with_ttl(b"k", b"new", Duration::from_secs(10), WriteOptions::NO_SYNC).unwrap();
    db.put_with_ttl(b"short", b"1", Duration::from_secs(1), WriteOptions::NO_SYNC).unwrap();
    db.put(b"z", b"plain", WriteOptions::NO_SYNC).unwrap();
    let snapshot = db.snapshot().unwrap();
    let iter_before = db.iter().unwrap();
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(db.iter().unwrap().count(), 3);
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"new"[..]), "one ms before expiry");
    assert_eq!(db.get(b"short").unwrap(), None);
    clock.advance(Duration::from_millis(1));
    // Expired: gone, and the older version stays hidden.
    assert_eq!(db.get(b"k").unwrap(), None);
    let keys: Vec<Vec<u8>> = db.iter().unwrap().map(|e| e.unwrap().0).collect();
    assert_eq!(keys, vec![b"z".to_vec()]);
    assert_eq!(db.iter().unwrap().rev().count(), 1);
    assert_eq!(db.prefix(b"k").unwrap().count(), 0);
    // Expiry is not a write: a snapshot reads it as expired too; an iterator made before
    // the expiry keeps the time it was made at.
    assert_eq!(snapshot.get(b"k").unwrap(), None);
    assert_eq!(iter_before.count(), 3);
    let mut txn = db.transaction().unwrap();
    assert_eq!(txn.get(b"k").unwrap(), None);
    assert_eq!(txn.range::<&[u8], _>(..).unwrap().count(), 1);
    // The same once the versions are in SSTs.
    db.flush().unwrap();
    assert_eq!(db.get(b"k").unwrap(), None);
    assert_eq!(db.iter().unwrap().count(), 1);
    // Keyspaces and batches take expiries too.
    let sessions = db.keyspace("sessions").unwrap();
    sessions.put_with_ttl(b"s1", b"x", Duration::from_secs(5), WriteOptions::NO_SYNC).unwrap();
    let mut batch = WriteBatch::new();
    batch.put_expiring_at_in(&sessions, b"s2", b"y", START_MS + 10_000 + 60_000);
    db.write(batch, WriteOptions::NO_SYNC).unwrap();
    assert_eq!(sessions.iter().unwrap().count(), 2);
    clock.advance(Duration::from_secs(5));
    assert_eq!(sessions.iter().unwrap().count(), 1);
    assert_eq!(sessions.get(b"s2").unwrap().as_deref(), Some(&b"y"[..]));
}

#[test]
fn expiries_survive_reopen_from_the_wal_and_from_ssts() {
    let sim = SimFs::new();
    let (options, clock) = with_clock(small_levels(&sim));
    let db = Db::open("/db", options.clone()).unwrap();
    db.put_with_ttl(b"in-sst", b"1", Duration::from_secs(60), WriteOptions::NO_SYNC).unwrap();
    db.flush().unwrap();
    db.put_with_ttl(b"in-wal", b"2", Duration::from_secs(60), WriteOptions::SYNC).unwrap();
    db.close().unwrap();
    let db = Db::open("/db", options.clone()).unwrap();
    assert_eq!(db.iter().unwrap().count(), 2);
    clock.advance(Duration::from_secs(60));
    assert_eq!(db.iter().unwrap().count(), 0);
    db.close().unwrap();
    let db = Db::open("/db", options).unwrap();
    assert_eq!(db.get(b"in-wal").unwrap(), None);
}

#[test]
fn compaction_reclaims_expired_versions() {
    let sim = SimFs::new();
    let (options, clock) = with_clock(small_levels(&sim));
    let db = Db::open("/db", options).unwrap();
    for index in 0..2_000 {
        db.put(key(index), b"older", WriteOptions::NO_SYNC).unwrap();
        let ttl = Duration::from_secs(if index % 2 == 0 { 10 } else { 1_000 });
        db.put_with_ttl(key(index), [7u8; 100], ttl, WriteOptions::NO_SYNC).unwrap();
    }
    db.compact_all().unwrap();
    let before = db.verify().unwrap().sst_entries;
    assert_eq!(before, 2_000, "one version per key after compact_all");
    clock.advance(Duration::from_secs(10));
    db.compact_all().unwrap();
    let stats = db.stats();
    assert_eq!(stats.ttl_entries_expired, 1_000);
    assert_eq!(db.verify().unwrap().sst_entries, 1_000, "expired versions and what they hid gone");
    assert_eq!(db.iter().unwrap().count(), 1_000);
}

#[test]
fn the_background_sweep_reclaims_expired_data_nothing_else_compacts() {
    let sim = SimFs::new();
    let (options, clock) = with_clock(Options { background_threads: 1, ..small_levels(&sim) });
    let db = Db::open("/db", options).unwrap();
    for index in 0..3_000 {
        db.put_with_ttl(key(index), [1u8; 100], Duration::from_secs(30), WriteOptions::NO_SYNC)
            .unwrap();
    }
    for index in 3_000..3_100 {
        db.put(key(index), [1u8; 100], WriteOptions::NO_SYNC).unwrap();
    }
    // Everything in the last level: no size-driven compaction will touch it again.
    db.compact_all().unwrap();
    let bytes = |db: &Db| db.stats().levels.iter().map(|level| level.size_bytes).sum::<u64>();
    let full = bytes(&db);
    clock.advance(Duration::from_secs(31));
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.stats().ttl_entries_expired < 3_000 {
        assert!(Instant::now() < deadline, "the sweep did not run: {:?}", db.stats().ttl_sweeps);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(db.stats().ttl_sweeps > 0);
    assert!(bytes(&db) < full / 5, "{full} -> {} bytes", bytes(&db));
    assert_eq!(db.iter().unwrap().count(), 100);
    // Nothing is left to sweep: the sweep does not run again and again.
    let sweeps = db.stats().ttl_sweeps;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(db.stats().ttl_sweeps, sweeps);
}

/// Random puts (with and without TTL), deletes, clock moves, flushes, compactions and
/// reopens, checked against a model of values with expiries.
#[test]
fn random_ttl_operations_match_a_model() {
    let seed = base_seed();
    with_seed("random_ttl_operations_match_a_model", seed, |seed| {
        let mut rng = Rng::new(seed);
        let sim = SimFs::new();
        let (options, clock) = with_clock(small_levels(&sim));
        let mut db = Db::open("/db", options.clone()).unwrap();
        // key → (value, expiry in ms or None)
        let mut model: BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> = BTreeMap::new();
        let mut expired_reads = 0;
        for step in 0..3_000 * scale() {
            let now = clock.now_ms();
            let k = key(rng.below(200));
            match rng.below(100) {
                0..=34 => {
                    let ttl = Duration::from_millis(1 + rng.below(5_000));
                    db.put_with_ttl(&k, step.to_le_bytes(), ttl, WriteOptions::NO_SYNC).unwrap();
                    model.insert(
                        k,
                        (step.to_le_bytes().to_vec(), Some(now + ttl.as_millis() as u64)),
                    );
                }
                35..=59 => {
                    db.put(&k, step.to_le_bytes(), WriteOptions::NO_SYNC).unwrap();
                    model.insert(k, (step.to_le_bytes().to_vec(), None));
                }
                60..=69 => {
                    db.delete(&k, WriteOptions::NO_SYNC).unwrap();
                    model.remove(&k);
                }
                70..=79 => clock.advance(Duration::from_millis(rng.below(1_500))),
                80..=81 => db.flush().unwrap(),
                82 => db.compact_all().unwrap(),
                83 => {
                    db.close().unwrap();
                    db = Db::open("/db", options.clone()).unwrap();
                }
                _ => {
                    let live = |(value, expiry): &(Vec<u8>, Option<u64>)| {
                        expiry.is_none_or(|at| at > now).then(|| value.clone())
                    };
                    let want = model.get(&k).and_then(live);
                    if want.is_none() && model.contains_key(&k) {
                        expired_reads += 1;
                    }
                    assert_eq!(db.get(&k).unwrap(), want, "step {step}: get");
                    let got: Vec<_> = db.iter().unwrap().map(|e| e.unwrap()).collect();
                    let want: Vec<_> = model
                        .iter()
                        .filter_map(|(k, entry)| live(entry).map(|v| (k.clone(), v)))
                        .collect();
                    assert!(got == want, "step {step}: iteration differs");
                }
            }
        }
        assert!(expired_reads > 20, "only {expired_reads} reads of expired keys");
    });
}
