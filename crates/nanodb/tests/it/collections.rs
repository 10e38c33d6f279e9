//! Collections: create, list, rename, drop (cheap, crash-safe), options, reopen.

use crate::common::{json, memory_runtime};
use nanodb::{CollectionOptions, Error, NanoDb, NanoDbOptions};
use nanodb_storage::fs::{CrashMode, SimFs};
use std::path::Path;
use std::sync::Arc;

#[test]
fn collections_are_created_listed_renamed_and_dropped() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let users = db.create_collection("users", CollectionOptions::default()).unwrap();
    let posts = db.collection("posts").unwrap();
    assert!(matches!(
        db.create_collection("users", CollectionOptions::default()),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(db.open_collection("nope"), Err(Error::NotFound { .. })));
    assert!(matches!(db.collection("1bad"), Err(Error::InvalidName { .. })));
    assert_eq!(db.collections(), vec!["posts", "users"]);

    let alice = users.insert(json(serde_json::json!({"name": "alice"}))).unwrap();
    db.rename_collection("users", "people").unwrap();
    assert_eq!(db.collections(), vec!["people", "posts"]);
    assert_eq!(users.name(), "people", "handles follow a rename");
    assert_eq!(db.open_collection("people").unwrap().get(alice.id()).unwrap(), Some(alice.clone()));
    assert!(matches!(db.rename_collection("people", "posts"), Err(Error::AlreadyExists { .. })));
    assert!(matches!(db.rename_collection("nobody", "x"), Err(Error::NotFound { .. })));

    db.drop_collection("people").unwrap();
    assert_eq!(db.collections(), vec!["posts"]);
    assert!(matches!(users.get(alice.id()), Err(Error::NotFound { .. })));
    assert!(matches!(users.insert(json(serde_json::json!({}))), Err(Error::NotFound { .. })));
    let reborn = db.collection("people").unwrap();
    assert_eq!(reborn.get(alice.id()).unwrap(), None, "a new collection starts empty");
    posts.insert(json(serde_json::json!({"title": "t"}))).unwrap();
}

#[test]
fn dropping_a_large_collection_deletes_files_without_reading_them() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let big = db.collection("big").unwrap();
    let batch: Vec<_> =
        (0..20_000).map(|n| json(serde_json::json!({"n": n, "text": "x".repeat(100)}))).collect();
    big.insert_many(batch).unwrap();
    db.storage().compact_all().unwrap();
    let before = db.storage().stats();
    db.drop_collection("big").unwrap();
    let after = db.storage().stats();
    assert!(after.keyspace_drop_files_removed > before.keyspace_drop_files_removed);
    assert_eq!(after.compaction_bytes_written, before.compaction_bytes_written);
    assert!(after.sst_size_bytes() < before.sst_size_bytes() / 10, "{after}");
}

#[test]
fn id_length_is_an_option_with_limits() {
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let options = CollectionOptions { id_length: 24, ..Default::default() };
    let long = db.create_collection("long", options).unwrap();
    assert_eq!(long.insert(json(serde_json::json!({}))).unwrap().id().len(), 24);
    for bad in [7, 129] {
        let options = CollectionOptions { id_length: bad, ..Default::default() };
        assert!(db.create_collection("bad", options).is_err(), "{bad}");
    }
}

/// Power cut at every filesystem operation of a collection drop: afterwards the collection
/// is either whole or gone, an acknowledged drop never comes back, and a gone one leaves no
/// keyspace behind.
#[test]
fn a_drop_cut_by_power_loss_leaves_the_collection_whole_or_gone() {
    let open = |sim: &SimFs| {
        NanoDb::with_fs(Path::new("/root"), Arc::new(sim.clone()), NanoDbOptions::default())
            .unwrap()
    };
    let (mut whole, mut gone) = (0, 0);
    for cut_after in 0u64.. {
        let sim = SimFs::new();
        let runtime = open(&sim);
        let db = runtime.database("app").unwrap();
        let doomed = db.collection("doomed").unwrap();
        for n in 0..50 {
            doomed.insert(json(serde_json::json!({"n": n}))).unwrap();
        }
        db.collection("kept").unwrap().insert(json(serde_json::json!({"k": 1}))).unwrap();
        sim.crash_after_ops(cut_after);
        let result = db.drop_collection("doomed");
        drop((doomed, db, runtime));
        let image = sim.crash_image(CrashMode::DropUnsynced);
        let runtime = open(&image);
        let db = runtime.open_database("app").unwrap();
        match db.open_collection("doomed") {
            Ok(doomed) => {
                assert!(result.is_err(), "cut {cut_after}: an acknowledged drop came back");
                assert_eq!(doomed.documents().unwrap().count(), 50, "cut {cut_after}");
                whole += 1;
            }
            Err(Error::NotFound { .. }) => {
                let keyspaces = db.storage().keyspaces();
                assert_eq!(keyspaces, vec!["_catalog", "c2", "default"], "cut {cut_after}");
                gone += 1;
            }
            Err(error) => panic!("cut {cut_after}: {error}"),
        }
        assert_eq!(db.open_collection("kept").unwrap().documents().unwrap().count(), 1);
        if result.is_ok() {
            break;
        }
        assert!(cut_after < 1_000, "the drop never finished");
    }
    assert!(whole > 0 && gone > 0, "whole {whole}, gone {gone}");
}

#[test]
fn a_schema_checks_every_write_and_can_change() {
    use nanodb::{FieldRule, FieldType, Patch, Schema};
    let runtime = memory_runtime();
    let db = runtime.database("app").unwrap();
    let schema = Schema::new(vec![
        FieldRule::required("title", FieldType::String),
        FieldRule::optional("votes", FieldType::Int),
    ])
    .strict();
    let options = CollectionOptions { schema: Some(schema), ..Default::default() };
    let posts = db.create_collection("posts", options).unwrap();
    let post = posts.insert(json(serde_json::json!({"title": "hi", "votes": 1}))).unwrap();
    for bad in [
        serde_json::json!({"votes": 1}),
        serde_json::json!({"title": 5}),
        serde_json::json!({"title": "x", "votes": "many"}),
        serde_json::json!({"title": "x", "extra": true}),
    ] {
        assert!(
            matches!(posts.insert(json(bad.clone())), Err(Error::InvalidDocument { .. })),
            "{bad}"
        );
    }
    let error = posts.patch(post.id(), &Patch::new().unset("title")).unwrap_err();
    assert!(error.to_string().contains("\"title\" is required"), "{error}");
    assert!(posts.replace(post.id(), json(serde_json::json!({"title": 1}))).is_err());
    let mut txn = db.transaction().unwrap();
    assert!(txn.upsert(&posts, "x", json(serde_json::json!({"nope": 1}))).is_err());
    drop(txn);
    assert_eq!(posts.documents().unwrap().count(), 1, "refused writes wrote nothing");

    // Loosened: stored documents stay, new ones pass the new rules.
    posts.set_schema(None).unwrap();
    posts.insert(json(serde_json::json!({"anything": true}))).unwrap();
    let bad_schema = Schema::new(vec![FieldRule::optional("id", FieldType::String)]);
    assert!(posts.set_schema(Some(bad_schema)).is_err());
    posts.set_schema(Some(Schema::new(vec![FieldRule::required("n", FieldType::Number)]))).unwrap();
    assert!(posts.insert(json(serde_json::json!({"n": "1"}))).is_err());
    posts.insert(json(serde_json::json!({"n": 1.5}))).unwrap();
}
