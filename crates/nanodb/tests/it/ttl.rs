//! Collection TTL: expired documents are never returned by any read, are treated as gone by
//! writes, are removed with their index entries (on demand and by the background thread, as
//! change-feed deletes), and the option is checked and survives a reopen.

use crate::common::{json, memory_runtime};
use nanodb::query::{parse_filter, FilterContext, Query};
use nanodb::{
    ChangeKind, CollectionOptions, DatabaseOptions, Date, Error, FeedOptions, IndexDefinition,
    NanoDb, NanoDbOptions, Patch, Ttl, Value, TTL_AFTER_MAX, TTL_CHECK_INTERVAL_MAX,
    TTL_CHECK_INTERVAL_MIN, TTL_INDEX_NAME,
};
use nanodb_storage::fs::SimFs;
use serde_json::json as j;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A date `offset_ms` from now.
fn from_now(offset_ms: i64) -> Value {
    Value::Date(Date::from_unix_ms(Date::now().unix_ms() + offset_ms).unwrap())
}

fn with_expiry(id: &str, expires_at: Value, group: &str) -> Value {
    let mut fields = nanodb::Map::new();
    fields.insert("id".into(), Value::from(id));
    fields.insert("group".into(), Value::from(group));
    fields.insert("expires_at".into(), expires_at);
    Value::Object(fields)
}

fn ttl_options(ttl: Ttl) -> CollectionOptions {
    CollectionOptions { ttl: Some(ttl), ..CollectionOptions::default() }
}

fn filter(text: &str) -> nanodb::query::Filter {
    let (params, variables) = (nanodb::query::Params::new(), nanodb::Map::new());
    parse_filter(text, &FilterContext::new(&params, &variables)).unwrap()
}

#[test]
fn expired_documents_are_never_returned() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let sessions = db.create_collection("sessions", ttl_options(Ttl::at("expires_at"))).unwrap();
    sessions
        .create_index(IndexDefinition::new("by_group", &["group"]).unwrap())
        .unwrap()
        .wait()
        .unwrap();
    sessions.insert(with_expiry("old", from_now(-1000), "g")).unwrap();
    sessions.insert(with_expiry("live", from_now(3_600_000), "g")).unwrap();
    sessions.insert(with_expiry("forever", Value::from("not a date"), "g")).unwrap();
    sessions.insert(json(j!({"id": "no_field", "group": "g"}))).unwrap();

    assert_eq!(sessions.get("old").unwrap(), None);
    assert!(sessions.get("live").unwrap().is_some());
    let ids = |query: &Query| -> Vec<String> {
        sessions.find(query).unwrap().documents.iter().map(|d| d.id().to_string()).collect()
    };
    let everything = vec!["forever", "live", "no_field"];
    assert_eq!(ids(&Query::new(filter("group = 'g'"))), everything, "index scan");
    assert_eq!(ids(&Query::new(filter("id != ''"))), everything, "full scan");
    assert_eq!(ids(&Query::new(filter("id = 'old'"))), Vec::<String>::new(), "id lookup");
    let by_date = Query::new(filter("expires_at < @now"));
    assert_eq!(ids(&by_date), Vec::<String>::new(), "ttl index scan");
    assert_eq!(sessions.count(&filter("group = 'g'")).unwrap(), 3);
    assert_eq!(sessions.count(&nanodb::query::Filter::True).unwrap(), 3, "count of everything");
    let plain = db.collection("plain").unwrap();
    plain.insert_many(vec![json(j!({})), json(j!({}))]).unwrap();
    plain.delete_many(&[]).unwrap();
    assert_eq!(plain.count(&nanodb::query::Filter::True).unwrap(), 2);
    let listed: Vec<String> =
        sessions.documents().unwrap().map(|d| d.unwrap().id().to_string()).collect();
    assert_eq!(listed, everything);
    let mut txn = db.transaction().unwrap();
    assert_eq!(txn.get(&sessions, "old").unwrap(), None);
    assert!(txn.get(&sessions, "live").unwrap().is_some());
}

#[test]
fn writes_treat_expired_documents_as_gone() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let sessions = db.create_collection("sessions", ttl_options(Ttl::at("expires_at"))).unwrap();
    for id in ["a", "b", "c", "d"] {
        sessions.insert(with_expiry(id, from_now(-1000), "g")).unwrap();
    }
    assert!(matches!(sessions.patch("a", &Patch::new().set("x", 1)), Err(Error::NotFound { .. })));
    assert!(matches!(sessions.replace("a", json(j!({}))), Err(Error::NotFound { .. })));
    assert_eq!(sessions.delete("b").unwrap(), None, "an expired document is not returned");
    // Its id can be taken again, as a new document.
    let before = Date::now();
    let reused = sessions.insert(with_expiry("c", from_now(60_000), "new")).unwrap();
    assert!(reused.created() >= before);
    let upserted = sessions.upsert("d", with_expiry("d", from_now(60_000), "new")).unwrap();
    assert!(upserted.created() >= before, "an upsert over an expired document creates");
    assert_eq!(sessions.verify_indexes().unwrap(), 3, "the TTL index holds a, c and d");
    // Pushing the expiry forward revives nothing already expired, but keeps a live one.
    sessions.patch("c", &Patch::new().set("expires_at", from_now(120_000))).unwrap();
    assert_eq!(sessions.remove_expired().unwrap(), 1, "only a was left expired");
    assert_eq!(sessions.verify_indexes().unwrap(), 2);
}

#[test]
fn remove_expired_deletes_documents_and_index_entries_as_feed_events() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let ttl = Ttl::new("created", Duration::from_millis(1));
    let items = db.create_collection("items", ttl_options(ttl)).unwrap();
    items.create_index(IndexDefinition::new("by_n", &["n"]).unwrap()).unwrap().wait().unwrap();
    let stream = items.subscribe(FeedOptions::default()).unwrap();
    let count = nanodb::REAP_CHUNK_DOCUMENTS + 10;
    let documents: Vec<Value> = (0..count).map(|n| json(j!({"n": n}))).collect();
    items.insert_many(documents).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(items.documents().unwrap().count(), 0, "every document is expired");
    assert_eq!(items.remove_expired().unwrap(), count as u64, "more than one chunk");
    assert_eq!(items.remove_expired().unwrap(), 0);
    assert_eq!(items.verify_indexes().unwrap(), 0, "index entries went with the documents");
    let mut deletes = 0;
    while let Some(event) = stream.try_recv().unwrap() {
        deletes += usize::from(event.kind == ChangeKind::Delete);
    }
    assert_eq!(deletes, count);
}

#[test]
fn the_background_thread_removes_expired_documents() {
    let options = NanoDbOptions {
        database: DatabaseOptions {
            ttl_check_interval: Duration::from_millis(20),
            ..DatabaseOptions::default()
        },
        ..NanoDbOptions::default()
    };
    let runtime = NanoDb::in_memory(options).unwrap();
    let db = runtime.database("app").unwrap();
    let sessions = db.create_collection("sessions", ttl_options(Ttl::at("expires_at"))).unwrap();
    let stream = sessions.subscribe(FeedOptions::default()).unwrap();
    sessions.insert(with_expiry("soon", from_now(50), "g")).unwrap();
    sessions.insert(with_expiry("later", from_now(3_600_000), "g")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut deleted = Vec::new();
    while deleted.is_empty() && Instant::now() < deadline {
        if let Some(event) = stream.recv_timeout(Duration::from_millis(100)).unwrap() {
            if event.kind == ChangeKind::Delete {
                deleted.push(event.document.id().to_string());
            }
        }
    }
    assert_eq!(deleted, ["soon"], "the reaper did not remove the expired document");
    assert_eq!(sessions.verify_indexes().unwrap(), 1);
    // Closing stops the thread (close joins it).
    runtime.close().unwrap();
}

#[test]
fn ttl_options_are_checked_reserved_and_kept_across_reopen() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let bad = [
        Ttl::at("id"),
        Ttl::at(""),
        Ttl::at("a..b"),
        Ttl::new("created", TTL_AFTER_MAX + Duration::from_millis(1)),
    ];
    for ttl in bad {
        assert!(db.create_collection("bad", ttl_options(ttl.clone())).is_err(), "{ttl:?} accepted");
    }
    let longest = db.create_collection("longest", ttl_options(Ttl::new("created", TTL_AFTER_MAX)));
    longest.unwrap();
    let interval = |ttl_check_interval| NanoDbOptions {
        database: DatabaseOptions { ttl_check_interval, ..DatabaseOptions::default() },
        ..NanoDbOptions::default()
    };
    let tick = Duration::from_millis(1);
    for (check_interval, ok) in [
        (TTL_CHECK_INTERVAL_MIN, true),
        (TTL_CHECK_INTERVAL_MIN - tick, false),
        (TTL_CHECK_INTERVAL_MAX, true),
        (TTL_CHECK_INTERVAL_MAX + tick, false),
    ] {
        let opened = NanoDb::in_memory(interval(check_interval));
        assert_eq!(opened.is_ok(), ok, "ttl_check_interval {check_interval:?}");
    }

    let sim = SimFs::new();
    let open = || {
        NanoDb::with_fs(Path::new("/root"), Arc::new(sim.clone()), NanoDbOptions::default())
            .unwrap()
    };
    let runtime = open();
    let db = runtime.database("app").unwrap();
    let sessions =
        db.create_collection("sessions", ttl_options(Ttl::at("meta.expires_at"))).unwrap();
    let index = IndexDefinition::new(TTL_INDEX_NAME, &["x"]).unwrap();
    assert!(matches!(sessions.create_index(index), Err(Error::InvalidName { .. })));
    assert!(matches!(sessions.drop_index(TTL_INDEX_NAME), Err(Error::InvalidName { .. })));
    let mut meta = nanodb::Map::new();
    meta.insert("expires_at".into(), Value::Date(Date::parse("2001-01-01T00:00:00Z").unwrap()));
    let mut past = nanodb::Map::new();
    past.insert("id".into(), Value::from("gone"));
    past.insert("meta".into(), Value::Object(meta));
    sessions.insert(Value::Object(past)).unwrap();
    // A collection without TTL may use the name for its own index.
    let plain = db.collection("plain").unwrap();
    plain.create_index(IndexDefinition::new("_ttl_like", &["x"]).unwrap()).unwrap();
    runtime.close().unwrap();
    drop((sessions, plain, db, runtime));

    let runtime = open();
    let sessions = runtime.database("app").unwrap().open_collection("sessions").unwrap();
    assert_eq!(sessions.get("gone").unwrap(), None, "the TTL came back with the catalog");
    assert_eq!(sessions.remove_expired().unwrap(), 1);
}

#[test]
fn typed_inserts_take_the_id_of_an_expired_document_with_its_index_entries() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Session {
        id: String,
        group: String,
    }
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let options = ttl_options(Ttl::new("created", Duration::from_secs(1)));
    let sessions = db.create_collection("sessions", options).unwrap();
    let by_group = IndexDefinition::new("by_group", &["group"]).unwrap();
    sessions.create_index(by_group).unwrap().wait().unwrap();
    let typed = sessions.typed::<Session>();
    let session = |group: &str| Session { id: "s".into(), group: group.into() };
    typed.insert_many(&[session("old")]).unwrap();
    let taken = typed.insert(&session("again"));
    assert!(matches!(taken, Err(Error::AlreadyExists { .. })), "live: the id is taken");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(typed.insert(&session("new")).unwrap(), "s", "expired: the id is free");
    let stored = sessions.get("s").unwrap().expect("the new one is live");
    assert_eq!(stored.get("group"), Some(&Value::from("new")));
    // The old version's entries (its group, its created) went with it: one entry in each of
    // the two indexes (by_group and the TTL index), both agreeing with the document.
    assert_eq!(sessions.verify_indexes().unwrap(), 2);
    assert_eq!(sessions.count(&filter("group = 'old'")).unwrap(), 0);
}
