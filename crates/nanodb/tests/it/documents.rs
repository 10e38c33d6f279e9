//! Documents: insert, get, replace, patch, upsert, delete, the many-document forms, limits,
//! concurrency, and durability across a power cut.

use crate::common::{json, memory_runtime};
use nanodb::{Date, Error, NanoDb, NanoDbOptions, Patch, Value, DOCUMENT_SIZE_BYTES_MAX};
use nanodb_storage::fs::{CrashMode, SimFs};
use std::path::Path;
use std::sync::Arc;

#[test]
fn crud_sets_id_created_and_updated() {
    let runtime = memory_runtime();
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    let before = Date::now();
    let note = notes.insert(json(serde_json::json!({"text": "hello", "tags": ["a"]}))).unwrap();
    assert_eq!(note.id().len(), 15);
    assert!(note.id().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert!(note.created() >= before && note.updated() == note.created());
    assert_eq!(notes.get(note.id()).unwrap(), Some(note.clone()));
    assert_eq!(note.get("text"), Some(&Value::from("hello")));

    // Replace keeps id and created; callers cannot set created or updated.
    let fake = json(serde_json::json!({"text": "new", "created": "1999-01-01", "updated": 5}));
    let replaced = notes.replace(note.id(), fake).unwrap();
    assert_eq!(replaced.created(), note.created());
    assert!(replaced.updated() >= note.updated());
    assert_eq!(replaced.get("tags"), None, "replace drops fields it does not give");
    assert!(matches!(
        notes.replace("nobody", json(serde_json::json!({}))),
        Err(Error::NotFound { .. })
    ));

    let patched = notes.patch(note.id(), &Patch::new().set("n", 1).push("tags", "b")).unwrap();
    assert_eq!(patched.get("text"), Some(&Value::from("new")));
    assert_eq!(patched.to_json()["tags"], serde_json::json!(["b"]));
    assert!(matches!(notes.patch("nobody", &Patch::new()), Err(Error::NotFound { .. })));
    assert!(notes.patch(note.id(), &Patch::new().increment("text", 1)).is_err());
    assert_eq!(
        notes.get(note.id()).unwrap(),
        Some(patched.clone()),
        "a failed patch writes nothing"
    );

    let upserted = notes.upsert("chosen_id", json(serde_json::json!({"v": 1}))).unwrap();
    assert_eq!(upserted.id(), "chosen_id");
    let again = notes.upsert("chosen_id", json(serde_json::json!({"v": 2}))).unwrap();
    assert_eq!(again.created(), upserted.created());
    assert_eq!(again.get("v"), Some(&Value::Int(2)));

    assert_eq!(notes.delete(note.id()).unwrap(), Some(patched));
    assert_eq!(notes.delete(note.id()).unwrap(), None);
    assert_eq!(notes.get(note.id()).unwrap(), None);
}

#[test]
fn caller_ids_are_checked_and_never_overwrite() {
    let runtime = memory_runtime();
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    notes.insert(json(serde_json::json!({"id": "mine", "v": 1}))).unwrap();
    let error = notes.insert(json(serde_json::json!({"id": "mine", "v": 2}))).unwrap_err();
    assert!(matches!(error, Error::AlreadyExists { kind: "document", .. }), "{error}");
    assert_eq!(notes.get("mine").unwrap().unwrap().get("v"), Some(&Value::Int(1)));
    for bad in [
        serde_json::json!({"id": 5}),
        serde_json::json!({"id": "a/b"}),
        serde_json::json!({"id": ""}),
    ] {
        assert!(notes.insert(json(bad.clone())).is_err(), "{bad}");
    }
    assert!(notes.insert(Value::from("not an object")).is_err());
    assert!(notes.upsert("bad id", json(serde_json::json!({}))).is_err());
}

#[test]
fn many_document_writes_are_all_or_nothing() {
    let runtime = memory_runtime();
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    notes.insert(json(serde_json::json!({"id": "taken"}))).unwrap();
    let batch = vec![
        json(serde_json::json!({"id": "one"})),
        json(serde_json::json!({"id": "two"})),
        json(serde_json::json!({"id": "taken"})),
    ];
    assert!(matches!(notes.insert_many(batch), Err(Error::AlreadyExists { .. })));
    assert_eq!(notes.get("one").unwrap(), None, "nothing of a failed batch is written");
    let bad_field =
        vec![json(serde_json::json!({"id": "three"})), json(serde_json::json!({"a.b": 1}))];
    assert!(notes.insert_many(bad_field).is_err());
    assert_eq!(notes.get("three").unwrap(), None);
    let inserted = notes
        .insert_many(vec![json(serde_json::json!({"id": "one"})), json(serde_json::json!({}))])
        .unwrap();
    assert_eq!(inserted.len(), 2);
    let deleted = notes.delete_many(&["one", "missing", "taken"]).unwrap();
    assert_eq!(deleted.iter().map(|d| d.id()).collect::<Vec<_>>(), vec!["one", "taken"]);
    assert_eq!(notes.documents().unwrap().count(), 1);
    let too_many = vec![Value::Null; nanodb::MANY_DOCUMENTS_MAX + 1];
    assert!(matches!(notes.insert_many(too_many), Err(Error::LimitExceeded { .. })));
}

#[test]
fn document_limits_hold_at_their_boundaries() {
    let runtime = memory_runtime();
    let blobs = runtime.database("app").unwrap().collection("blobs").unwrap();
    // The encoded document: the text's header and bytes plus the reserved fields.
    let overhead = {
        let probe = blobs.insert(json(serde_json::json!({"t": ""}))).unwrap();
        let mut bytes = Vec::new();
        nanodb::value::msgpack::encode(&probe.into_value(), &mut bytes);
        bytes.len() + 4 // str32 header instead of fixstr
    };
    let fits = "x".repeat(DOCUMENT_SIZE_BYTES_MAX - overhead);
    blobs.insert(json(serde_json::json!({"t": fits}))).unwrap();
    let over = "x".repeat(DOCUMENT_SIZE_BYTES_MAX - overhead + 1);
    let error = blobs.insert(json(serde_json::json!({"t": over}))).unwrap_err();
    assert!(
        matches!(error, Error::LimitExceeded { what: "document size in bytes", .. }),
        "{error}"
    );
    let long_name = "f".repeat(nanodb::value::FIELD_NAME_LEN_MAX + 1);
    let mut fields = nanodb::Map::new();
    fields.insert(long_name, Value::Null);
    assert!(matches!(blobs.insert(Value::Object(fields)), Err(Error::LimitExceeded { .. })));
}

#[test]
fn concurrent_inserts_of_one_id_let_exactly_one_win() {
    let runtime = memory_runtime();
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    for round in 0..20 {
        let id = format!("contested{round}");
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|thread| {
                    let (notes, id) = (notes.clone(), id.clone());
                    scope.spawn(move || {
                        let doc = json(serde_json::json!({"id": id, "by": thread}));
                        match notes.insert(doc) {
                            Ok(_) => 1,
                            Err(Error::AlreadyExists { .. } | Error::Conflict) => 0,
                            Err(error) => panic!("{error}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
    // Concurrent increments lose nothing.
    notes.insert(json(serde_json::json!({"id": "counter", "n": 0}))).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let notes = notes.clone();
            scope.spawn(move || {
                for _ in 0..50 {
                    notes.patch("counter", &Patch::new().increment("n", 1)).unwrap();
                }
            });
        }
    });
    assert_eq!(notes.get("counter").unwrap().unwrap().get("n"), Some(&Value::Int(200)));
}

#[test]
fn acknowledged_writes_survive_a_power_cut() {
    let sim = SimFs::new();
    let open = |sim: &SimFs| {
        NanoDb::with_fs(Path::new("/root"), Arc::new(sim.clone()), NanoDbOptions::default())
            .unwrap()
    };
    let runtime = open(&sim);
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    let mut ids = Vec::new();
    for n in 0..100 {
        ids.push(notes.insert(json(serde_json::json!({"n": n}))).unwrap().id().to_string());
    }
    notes.delete(&ids[0]).unwrap();
    notes.patch(&ids[1], &Patch::new().set("n", -1)).unwrap();
    let image = sim.crash_image(CrashMode::DropUnsynced);
    drop((notes, runtime));
    let runtime = open(&image);
    let notes = runtime.open_database("app").unwrap().open_collection("notes").unwrap();
    assert_eq!(notes.documents().unwrap().count(), 99);
    assert_eq!(notes.get(&ids[0]).unwrap(), None);
    assert_eq!(notes.get(&ids[1]).unwrap().unwrap().get("n"), Some(&Value::Int(-1)));
    assert_eq!(notes.get(&ids[99]).unwrap().unwrap().get("n"), Some(&Value::Int(99)));
}
