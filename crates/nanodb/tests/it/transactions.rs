//! Multi-document transactions: atomic commits across collections, read-your-writes, snapshot
//! isolation and conflicts, rollback, unique indexes inside a transaction, and no deadlock with
//! index creation.

use crate::common::{json, memory_runtime};
use nanodb::{Error, IndexDefinition, Patch, Value};
use serde_json::json as j;

fn int(document: &nanodb::Document, field: &str) -> i64 {
    match document.get(field) {
        Some(Value::Int(n)) => *n,
        other => panic!("{field} is {other:?}"),
    }
}

#[test]
fn a_transaction_commits_across_collections_at_once() {
    let runtime = memory_runtime();
    let db = runtime.database("bank").unwrap();
    let accounts = db.collection("accounts").unwrap();
    let ledger = db.collection("ledger").unwrap();
    accounts.insert(json(j!({"id": "alice", "balance": 100}))).unwrap();
    accounts.insert(json(j!({"id": "bob", "balance": 0}))).unwrap();

    let mut txn = db.transaction().unwrap();
    txn.patch(&accounts, "alice", &Patch::new().increment("balance", -30)).unwrap();
    txn.patch(&accounts, "bob", &Patch::new().increment("balance", 30)).unwrap();
    let entry =
        txn.insert(&ledger, json(j!({"from": "alice", "to": "bob", "amount": 30}))).unwrap();
    // The transaction reads its own writes; nobody else sees them before the commit.
    assert_eq!(int(&txn.get(&accounts, "alice").unwrap().unwrap(), "balance"), 70);
    assert_eq!(int(&accounts.get("alice").unwrap().unwrap(), "balance"), 100);
    assert_eq!(ledger.get(entry.id()).unwrap(), None);
    txn.commit().unwrap();

    assert_eq!(int(&accounts.get("alice").unwrap().unwrap(), "balance"), 70);
    assert_eq!(int(&accounts.get("bob").unwrap().unwrap(), "balance"), 30);
    assert_eq!(ledger.get(entry.id()).unwrap(), Some(entry));
}

#[test]
fn dropped_or_failed_transactions_write_nothing() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let a = db.collection("a").unwrap();
    let b = db.collection("b").unwrap();
    let mut txn = db.transaction().unwrap();
    txn.insert(&a, json(j!({"id": "x"}))).unwrap();
    txn.upsert(&b, "y", json(j!({"v": 1}))).unwrap();
    drop(txn);
    assert_eq!(a.get("x").unwrap(), None);
    assert_eq!(b.get("y").unwrap(), None);

    // An error in the body of run_transaction: nothing from the attempt is written.
    let result: nanodb::Result<()> = db.run_transaction(|txn| {
        txn.insert(&a, json(j!({"id": "x"})))?;
        txn.insert(&b, json(j!({"id": "y"})))?;
        txn.replace(&b, "missing", json(j!({})))?;
        Ok(())
    });
    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
    assert_eq!(a.documents().unwrap().count() + b.documents().unwrap().count(), 0);

    // Every operation of a transaction refuses a collection of another database.
    let other = runtime.database("other").unwrap().collection("a").unwrap();
    let mut txn = db.transaction().unwrap();
    let error = txn.insert(&other, json(j!({}))).unwrap_err();
    assert!(error.to_string().contains("another database"), "{error}");
    assert!(matches!(txn.get(&other, "x"), Err(Error::InvalidDocument { .. })));
    // A dropped collection is gone for transactions too.
    db.drop_collection("b").unwrap();
    assert!(matches!(txn.insert(&b, json(j!({}))), Err(Error::NotFound { .. })));
}

#[test]
fn snapshot_isolation_first_committer_wins() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let items = db.collection("items").unwrap();
    items.insert(json(j!({"id": "k", "v": 1}))).unwrap();

    let mut first = db.transaction().unwrap();
    let mut second = db.transaction().unwrap();
    first.patch(&items, "k", &Patch::new().set("v", 2)).unwrap();
    first.commit().unwrap();
    // The second still reads the value as of its start.
    assert_eq!(int(&second.get(&items, "k").unwrap().unwrap(), "v"), 1);
    second.patch(&items, "k", &Patch::new().set("v", 3)).unwrap();
    assert!(matches!(second.commit(), Err(Error::Conflict)));
    assert_eq!(int(&items.get("k").unwrap().unwrap(), "v"), 2);

    // Disjoint writes both commit (snapshot isolation checks written documents only).
    let mut left = db.transaction().unwrap();
    let mut right = db.transaction().unwrap();
    left.insert(&items, json(j!({"id": "l"}))).unwrap();
    right.insert(&items, json(j!({"id": "r"}))).unwrap();
    left.commit().unwrap();
    right.commit().unwrap();
    assert_eq!(items.documents().unwrap().count(), 3);
}

#[test]
fn concurrent_transfers_keep_the_total() {
    let runtime = memory_runtime();
    let db = runtime.database("bank").unwrap();
    let accounts = db.collection("accounts").unwrap();
    let transfers = db.collection("transfers").unwrap();
    for n in 0..4 {
        accounts.insert(json(j!({"id": format!("acct{n}"), "balance": 1000}))).unwrap();
    }
    let committed: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|thread| {
                let (db, accounts, transfers) = (&db, &accounts, &transfers);
                scope.spawn(move || {
                    let mut committed = 0;
                    for i in 0..40u64 {
                        let (from, to) = (
                            format!("acct{}", (thread + i) % 4),
                            format!("acct{}", (thread + i + 1) % 4),
                        );
                        let result = db.run_transaction(|txn| {
                            txn.patch(accounts, &from, &Patch::new().increment("balance", -7))?;
                            txn.patch(accounts, &to, &Patch::new().increment("balance", 7))?;
                            txn.insert(transfers, json(j!({"from": from, "to": to})))
                        });
                        match result {
                            Ok(_) => committed += 1,
                            Err(Error::Conflict) => {}
                            Err(error) => panic!("{error}"),
                        }
                    }
                    committed
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).sum()
    });
    let total: i64 =
        accounts.documents().unwrap().map(|document| int(&document.unwrap(), "balance")).sum();
    assert_eq!(total, 4000, "money was created or lost");
    assert_eq!(transfers.documents().unwrap().count() as u64, committed);
    assert!(committed > 0);
}

#[test]
fn unique_indexes_hold_inside_a_transaction() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let users = db.collection("users").unwrap();
    users
        .create_index(IndexDefinition::new("by_email", &["email"]).unwrap().unique())
        .unwrap()
        .wait()
        .unwrap();
    users.insert(json(j!({"id": "u1", "email": "a@x"}))).unwrap();

    let result = db.run_transaction(|txn| {
        txn.insert(&users, json(j!({"id": "u2", "email": "b@x"})))?;
        txn.insert(&users, json(j!({"id": "u3", "email": "b@x"})))
    });
    assert!(matches!(result, Err(Error::UniqueViolation { .. })), "{result:?}");
    assert_eq!(users.get("u2").unwrap(), None);

    // Moving a value from one document to another inside one transaction is fine.
    db.run_transaction(|txn| {
        txn.patch(&users, "u1", &Patch::new().set("email", "old@x"))?;
        txn.insert(&users, json(j!({"id": "u2", "email": "a@x"})))
    })
    .unwrap();
    assert_eq!(users.verify_indexes().unwrap(), 2);
}

#[test]
fn transactions_in_opposite_orders_and_index_creation_never_deadlock() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let a = db.collection("a").unwrap();
    let b = db.collection("b").unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // Two transactions hold one collection each and want the other, while an index creation
    // waits on each: with gates taken plainly (not recursively) that is a deadlock.
    let worker = std::thread::spawn(move || {
        std::thread::scope(|scope| {
            for thread in 0..2 {
                let (db, a, b) = (&db, &a, &b);
                scope.spawn(move || {
                    for i in 0..100 {
                        let (first, second) = if thread == 0 { (a, b) } else { (b, a) };
                        let result = db.run_transaction(|txn| {
                            txn.upsert(first, &format!("d{thread}-{i}"), json(j!({"n": i})))?;
                            std::thread::sleep(std::time::Duration::from_micros(500));
                            txn.upsert(second, &format!("d{thread}-{i}"), json(j!({"n": i})))
                        });
                        assert!(matches!(result, Ok(_) | Err(Error::Conflict)), "{result:?}");
                    }
                });
            }
            for collection in [&a, &b] {
                scope.spawn(move || {
                    for i in 0..20 {
                        let definition = IndexDefinition::new(&format!("n{i}"), &["n"]).unwrap();
                        collection.create_index(definition).unwrap().wait().unwrap();
                    }
                });
                // Subscribing takes the gate exclusively too, and is quick: waiting takers of
                // both gates are nearly always there.
                scope.spawn(move || {
                    for _ in 0..2000 {
                        drop(collection.subscribe(nanodb::FeedOptions::default()).unwrap());
                    }
                });
            }
        });
        assert!(a.verify_indexes().unwrap() > 0);
        assert!(b.verify_indexes().unwrap() > 0);
        done_tx.send(()).unwrap();
    });
    let finished = done_rx.recv_timeout(std::time::Duration::from_secs(60));
    assert!(finished.is_ok() || worker.is_finished(), "deadlock: no progress in 60 s");
    worker.join().unwrap();
}

#[test]
fn a_power_cut_keeps_transactions_whole() {
    use crate::common::{base_seed, scale, with_seed, Rng};
    use nanodb::{DatabaseOptions, NanoDb, NanoDbOptions};
    use nanodb_storage::fs::{CrashMode, SimFs};
    use std::path::Path;
    use std::sync::Arc;
    // Unsynced commits: a power cut loses the last ones, but never part of one.
    let options = NanoDbOptions {
        database: DatabaseOptions { sync: false, ..DatabaseOptions::default() },
        ..NanoDbOptions::default()
    };
    let open = |fs: &SimFs| {
        NanoDb::with_fs(Path::new("/root"), Arc::new(fs.clone()), options.clone()).unwrap()
    };
    with_seed("txn_power_cut", base_seed(), |seed| {
        let mut rng = Rng::new(seed);
        for round in 0..4 * scale() {
            let sim = SimFs::new();
            let runtime = open(&sim);
            let db = runtime.database("bank").unwrap();
            let accounts = db.collection("accounts").unwrap();
            let log = db.collection("log").unwrap();
            let by_to = IndexDefinition::new("by_to", &["to"]).unwrap();
            log.create_index(by_to).unwrap().wait().unwrap();
            let mut setup = db.transaction().unwrap();
            for n in 0..5 {
                setup.insert(&accounts, json(j!({"id": format!("a{n}"), "balance": 100}))).unwrap();
            }
            setup.commit().unwrap();
            // A synced write makes the setup before it durable too.
            db.storage().put(b"sync", b"", nanodb_storage::WriteOptions::SYNC).unwrap();
            let mut durable_steps = 0;
            for step in 0..1 + rng.below(300) {
                let (from, to) = (format!("a{}", rng.below(5)), format!("a{}", rng.below(5)));
                let amount = rng.below(20) as i64;
                db.run_transaction(|txn| {
                    txn.patch(&accounts, &from, &Patch::new().increment("balance", -amount))?;
                    txn.patch(&accounts, &to, &Patch::new().increment("balance", amount))?;
                    txn.insert(&log, json(j!({"step": step, "to": to, "amount": amount})))
                })
                .unwrap();
                if rng.below(30) == 0 {
                    db.storage().put(b"sync", b"", nanodb_storage::WriteOptions::SYNC).unwrap();
                    durable_steps = step + 1;
                }
            }
            let image = sim.crash_image(CrashMode::DropUnsynced);
            drop((accounts, log, db, runtime));
            let runtime = open(&image);
            let db = runtime.open_database("bank").unwrap();
            let accounts = db.open_collection("accounts").unwrap();
            let log = db.open_collection("log").unwrap();
            let balances = accounts.documents().unwrap().map(|d| int(&d.unwrap(), "balance"));
            assert_eq!(balances.sum::<i64>(), 500, "seed {seed} round {round}: a transfer was cut");
            assert_eq!(accounts.documents().unwrap().count(), 5, "seed {seed} round {round}");
            // The log holds a prefix of the steps, and its index agrees with it.
            let mut steps: Vec<i64> =
                log.documents().unwrap().map(|d| int(&d.unwrap(), "step")).collect();
            steps.sort_unstable();
            let prefix = steps.iter().enumerate().all(|(i, step)| *step == i as i64);
            assert!(prefix, "seed {seed} round {round}: steps {steps:?}");
            assert!(steps.len() as u64 >= durable_steps, "seed {seed} round {round}: lost synced");
            log.verify_indexes().unwrap();
        }
    });
}

#[test]
fn a_write_that_fails_inside_a_transaction_leaves_nothing_behind() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let users = db.collection("users").unwrap();
    let by_email = IndexDefinition::new("by_email", &["email"]).unwrap().unique();
    users.create_index(by_email).unwrap().wait().unwrap();
    let by_tag = IndexDefinition::new("by_tag", &["tags"]).unwrap();
    users.create_index(by_tag).unwrap().wait().unwrap();
    users.insert(json(j!({"id": "u1", "email": "a@x", "tags": ["t"]}))).unwrap();
    let stream = users.subscribe(nanodb::FeedOptions::default()).unwrap();
    let mut txn = db.transaction().unwrap();
    txn.insert(&users, json(j!({"id": "u2", "email": "b@x"}))).unwrap();
    // Each of these fails after it has written something: the document, and for the
    // replace, patch and upsert the removal of the old entries of an index before the
    // unique one refuses the new value.
    let taken = json(j!({"id": "u3", "email": "a@x", "tags": ["x", "y"]}));
    let error = txn.insert(&users, taken).unwrap_err();
    assert!(matches!(error, Error::UniqueViolation { .. }), "{error}");
    let error = txn.replace(&users, "u1", json(j!({"email": "b@x", "tags": []}))).unwrap_err();
    assert!(matches!(error, Error::UniqueViolation { .. }), "{error}");
    let error = txn.patch(&users, "u1", &Patch::new().set("email", "b@x")).unwrap_err();
    assert!(matches!(error, Error::UniqueViolation { .. }), "{error}");
    let error = txn.upsert(&users, "u4", json(j!({"email": "b@x"}))).unwrap_err();
    assert!(matches!(error, Error::UniqueViolation { .. }), "{error}");
    // The transaction goes on and commits what succeeded.
    txn.patch(&users, "u1", &Patch::new().set("n", 1)).unwrap();
    txn.commit().unwrap();
    assert_eq!(users.get("u3").unwrap(), None);
    assert_eq!(users.get("u4").unwrap(), None);
    let u1 = users.get("u1").unwrap().unwrap();
    assert_eq!(u1.get("email"), Some(&Value::from("a@x")));
    assert_eq!(u1.get("n"), Some(&Value::from(1)));
    // u1's email and tag, u2's email and its missing tags (indexed as null): the entries
    // agree with the documents.
    assert_eq!(users.verify_indexes().unwrap(), 4);
    let mut events = Vec::new();
    while let Some(event) = stream.try_recv().unwrap() {
        events.push((event.kind, event.document.id().to_string()));
    }
    let expected =
        [(nanodb::ChangeKind::Create, "u2".to_string()), (nanodb::ChangeKind::Update, "u1".into())];
    assert_eq!(events, expected, "no event for the failed writes");
}

#[test]
fn a_failed_write_over_an_expired_document_records_no_delete() {
    use nanodb::{CollectionOptions, FeedOptions, Ttl};
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let options =
        CollectionOptions { ttl: Some(Ttl::at("expires")), ..CollectionOptions::default() };
    let sessions = db.create_collection("sessions", options).unwrap();
    let by_email = IndexDefinition::new("by_email", &["email"]).unwrap().unique();
    sessions.create_index(by_email).unwrap().wait().unwrap();
    let past = nanodb::Date::from_unix_ms(nanodb::Date::now().unix_ms() - 60_000).unwrap();
    let mut old = nanodb::Map::new();
    old.insert("id".into(), Value::from("s1"));
    old.insert("expires".into(), Value::Date(past));
    sessions.insert(Value::Object(old)).unwrap();
    sessions.insert(json(j!({"id": "s2", "email": "a@x"}))).unwrap();
    let stream = sessions.subscribe(FeedOptions::default()).unwrap();
    // Taking the expired s1's id records its delete first, then the unique index refuses:
    // the write goes, and with it the delete it recorded.
    let mut txn = db.transaction().unwrap();
    let error = txn.insert(&sessions, json(j!({"id": "s1", "email": "a@x"}))).unwrap_err();
    assert!(matches!(error, Error::UniqueViolation { .. }), "{error}");
    txn.insert(&sessions, json(j!({"id": "s3"}))).unwrap();
    txn.commit().unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.try_recv().unwrap() {
        events.push((event.kind, event.document.id().to_string()));
    }
    assert_eq!(events, [(nanodb::ChangeKind::Create, "s3".to_string())]);
    assert_eq!(sessions.remove_expired().unwrap(), 1, "s1 is still there, expired");
}
