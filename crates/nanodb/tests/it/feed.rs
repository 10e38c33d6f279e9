//! The change feed: events once, in commit order, only after commit and never for rolled-back
//! or conflicting transactions; scopes; the bounded buffer and its lagged signal; the end of a
//! stream; and a replay of the events that rebuilds the collection exactly.

use crate::common::{base_seed, json, memory_runtime, scale, with_seed, Rng};
use nanodb::{ChangeKind, Error, FeedOptions, Patch, Value, FEED_BUFFER_EVENTS_MAX};
use serde_json::json as j;
use std::collections::BTreeMap;
use std::time::Duration;

fn drain(stream: &nanodb::ChangeStream) -> Vec<nanodb::ChangeEvent> {
    let mut events = Vec::new();
    while let Some(event) = stream.try_recv().unwrap() {
        events.push(event);
    }
    events
}

#[test]
fn events_carry_kind_document_and_commit_order() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let notes = db.collection("notes").unwrap();
    let other = db.collection("other").unwrap();
    notes.insert(json(j!({"id": "before"}))).unwrap();
    let stream = notes.subscribe(FeedOptions::default()).unwrap();
    let everything = db.subscribe(FeedOptions::default()).unwrap();
    assert!(stream.try_recv().unwrap().is_none(), "a commit before subscribing was delivered");

    let created = notes.insert(json(j!({"id": "n1", "v": 1}))).unwrap();
    let updated = notes.patch("n1", &Patch::new().set("v", 2)).unwrap();
    let upserted = notes.upsert("n2", json(j!({"v": 3}))).unwrap();
    other.insert(json(j!({"id": "o1"}))).unwrap();
    let deleted = notes.delete("n1").unwrap().unwrap();
    notes.delete("n1").unwrap(); // deletes nothing: no event

    let events = drain(&stream);
    let summary: Vec<(ChangeKind, &str)> =
        events.iter().map(|event| (event.kind, event.document.id())).collect();
    assert_eq!(
        summary,
        [
            (ChangeKind::Create, "n1"),
            (ChangeKind::Update, "n1"),
            (ChangeKind::Create, "n2"),
            (ChangeKind::Delete, "n1"),
        ]
    );
    assert_eq!(events[0].document, created);
    assert_eq!(events[1].document, updated);
    assert_eq!(events[2].document, upserted);
    assert_eq!(events[3].document, deleted, "a delete carries the last version");
    assert!(events.iter().all(|event| event.collection == "notes"));
    assert!(events.windows(2).all(|pair| pair[0].seqno < pair[1].seqno));
    assert!(events[0].seqno > stream.start_seqno());

    // The database-wide stream has the other collection's event in its place.
    let all: Vec<(String, ChangeKind)> =
        drain(&everything).into_iter().map(|event| (event.collection, event.kind)).collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[3], ("other".to_string(), ChangeKind::Create));

    // A transaction's changes share its seqno and arrive together, in the order made.
    db.run_transaction(|txn| {
        txn.insert(&notes, json(j!({"id": "t1"})))?;
        txn.insert(&other, json(j!({"id": "t2"})))?;
        txn.patch(&notes, "t1", &Patch::new().set("x", 1))
    })
    .unwrap();
    let batch = drain(&everything);
    assert_eq!(batch.len(), 3);
    assert!(batch.iter().all(|event| event.seqno == batch[0].seqno));
    assert_eq!(batch[2].kind, ChangeKind::Update);
    assert_eq!(drain(&stream).len(), 2, "the collection stream has only its own changes");
}

#[test]
fn rolled_back_and_conflicting_transactions_emit_nothing() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let items = db.collection("items").unwrap();
    items.insert(json(j!({"id": "k", "v": 0}))).unwrap();
    let stream = db.subscribe(FeedOptions::default()).unwrap();

    let mut dropped = db.transaction().unwrap();
    dropped.insert(&items, json(j!({"id": "gone"}))).unwrap();
    drop(dropped);
    let failed: nanodb::Result<()> = db.run_transaction(|txn| {
        txn.insert(&items, json(j!({"id": "half"})))?;
        txn.insert(&items, json(j!({"id": "k"})))?; // already exists
        Ok(())
    });
    assert!(matches!(failed, Err(Error::AlreadyExists { .. })));
    let mut loser = db.transaction().unwrap();
    loser.patch(&items, "k", &Patch::new().set("v", "loser")).unwrap();
    items.patch("k", &Patch::new().set("v", "winner")).unwrap();
    assert!(matches!(loser.commit(), Err(Error::Conflict)));

    let events = drain(&stream);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].document.get("v"), Some(&Value::from("winner")));
}

#[test]
fn a_slow_subscriber_gets_what_fits_then_lagged() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let items = db.collection("items").unwrap();
    let slow = items.subscribe(FeedOptions { buffer_events_max: 5 }).unwrap();
    let fast = items.subscribe(FeedOptions::default()).unwrap();
    for n in 0..5 {
        items.insert(json(j!({"n": n}))).unwrap();
    }
    assert_eq!(slow.pending(), 5, "exactly the buffer fits");
    for n in 5..8 {
        items.insert(json(j!({"n": n}))).unwrap();
    }
    for _ in 0..5 {
        slow.recv().unwrap();
    }
    assert!(matches!(slow.recv(), Err(Error::Lagged { missed: 1 })));
    // It stays ended, and the iterator form ends after the error.
    assert!(matches!(slow.try_recv(), Err(Error::Lagged { .. })));
    let mut ended = items.subscribe(FeedOptions { buffer_events_max: 1 }).unwrap();
    items.insert(json(j!({}))).unwrap();
    items.insert(json(j!({}))).unwrap();
    assert!(ended.next().unwrap().is_ok());
    assert!(matches!(ended.next(), Some(Err(Error::Lagged { .. }))));
    assert!(ended.next().is_none());
    // Others are not held back.
    assert_eq!(drain(&fast).len(), 10);

    for bad in [0, FEED_BUFFER_EVENTS_MAX + 1] {
        let options = FeedOptions { buffer_events_max: bad };
        assert!(items.subscribe(options).is_err(), "buffer of {bad} accepted");
    }
    items.subscribe(FeedOptions { buffer_events_max: FEED_BUFFER_EVENTS_MAX }).unwrap();
}

#[test]
fn streams_end_when_their_collection_or_database_goes() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let items = db.collection("items").unwrap();
    let stream = items.subscribe(FeedOptions::default()).unwrap();
    let everything = db.subscribe(FeedOptions::default()).unwrap();
    items.insert(json(j!({"id": "last"}))).unwrap();
    db.drop_collection("items").unwrap();
    assert_eq!(stream.recv().unwrap().document.id(), "last", "held events come first");
    assert!(matches!(stream.recv(), Err(Error::NotFound { .. })));
    assert!(matches!(items.subscribe(FeedOptions::default()), Err(Error::NotFound { .. })));

    let waiter = std::thread::spawn(move || {
        let first = everything.recv();
        (first, everything.recv_timeout(Duration::from_secs(30)))
    });
    std::thread::sleep(Duration::from_millis(20));
    runtime.close().unwrap();
    let (first, second) = waiter.join().unwrap();
    assert!(first.is_ok(), "the insert before the drop: {first:?}");
    assert!(matches!(second, Err(Error::Closed)), "{second:?}");
}

#[test]
fn a_replay_of_the_events_rebuilds_the_collection() {
    with_seed("feed_replay", base_seed(), |seed| {
        let runtime = memory_runtime();
        let db = runtime.database("app").unwrap();
        let items = db.collection("items").unwrap();
        let other = db.collection("other").unwrap();
        let stream = items.subscribe(FeedOptions { buffer_events_max: 1 << 16 }).unwrap();
        let ops = 150 * scale();
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let (db, items, other) = (&db, &items, &other);
                scope.spawn(move || {
                    let mut rng = Rng::new(seed ^ ((thread + 1) * 0x9e37));
                    for _ in 0..ops {
                        let id = format!("d{}", rng.below(20));
                        let result = match rng.below(6) {
                            0 => items.upsert(&id, json(j!({"n": rng.below(100)}))).map(drop),
                            1 => items.delete(&id).map(drop),
                            2 => items.patch(&id, &Patch::new().increment("n", 1)).map(drop),
                            3 => db
                                .run_transaction(|txn| {
                                    txn.upsert(items, &id, json(j!({"t": thread})))?;
                                    txn.upsert(other, &id, json(j!({"t": thread})))?;
                                    txn.delete(items, "d0")
                                })
                                .map(drop),
                            4 => {
                                // A transaction that fails after writing: no event may leak.
                                let failed: nanodb::Result<()> = db.run_transaction(|txn| {
                                    txn.upsert(items, &id, json(j!({"doomed": true})))?;
                                    Err(Error::NotFound { kind: "test", name: "x".into() })
                                });
                                assert!(failed.is_err());
                                Ok(())
                            }
                            _ => items.insert(json(j!({"fresh": true}))).map(drop),
                        };
                        match result {
                            Ok(()) | Err(Error::NotFound { .. } | Error::Conflict) => {}
                            Err(error) => panic!("seed {seed}: {error}"),
                        }
                    }
                });
            }
        });
        let mut replayed: BTreeMap<String, nanodb::Document> = BTreeMap::new();
        let mut last_seqno = 0;
        for event in drain(&stream) {
            assert!(event.seqno >= last_seqno, "seed {seed}: out of commit order");
            last_seqno = event.seqno;
            assert!(event.document.get("doomed").is_none(), "seed {seed}: a rolled-back write");
            let id = event.document.id().to_string();
            match event.kind {
                ChangeKind::Create => {
                    assert!(
                        replayed.insert(id, event.document).is_none(),
                        "seed {seed}: create of a live id"
                    );
                }
                ChangeKind::Update => {
                    assert!(
                        replayed.insert(id, event.document).is_some(),
                        "seed {seed}: update of a missing id"
                    );
                }
                ChangeKind::Delete => {
                    assert_eq!(replayed.remove(&id), Some(event.document), "seed {seed}: delete");
                }
            }
        }
        let actual: BTreeMap<String, nanodb::Document> = items
            .documents()
            .unwrap()
            .map(|document| document.map(|document| (document.id().to_string(), document)))
            .collect::<nanodb::Result<_>>()
            .unwrap();
        assert_eq!(replayed, actual, "seed {seed}: the replay differs from the collection");
    });
}

#[test]
fn a_subscription_started_amid_writes_misses_no_commit_after_its_start() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let items = db.collection("items").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let reference = db.subscribe(FeedOptions { buffer_events_max: 1 << 20 }).unwrap();
    let late: Vec<nanodb::ChangeStream> = std::thread::scope(|scope| {
        for _ in 0..3 {
            let (items, stop) = (&items, &stop);
            scope.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    items.insert(json(j!({}))).unwrap();
                }
            });
        }
        let mut late = Vec::new();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(2));
            late.push(items.subscribe(FeedOptions { buffer_events_max: 1 << 20 }).unwrap());
        }
        // One commit after the last subscription, so every stream has one to see even if the
        // writers were descheduled since (the assertion below relied on their timing).
        items.insert(json(j!({}))).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        late
    });
    let all = drain(&reference);
    for stream in &late {
        let expected: Vec<_> =
            all.iter().filter(|event| event.seqno > stream.start_seqno()).cloned().collect();
        assert!(!expected.is_empty());
        assert_eq!(drain(stream), expected, "subscribed at seqno {}", stream.start_seqno());
    }
}
