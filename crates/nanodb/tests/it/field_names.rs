//! Interned field names through the public API: documents with new names survive torn power
//! cuts with their names (unsynced writes), more names than the table holds still round-trip,
//! documents in the earlier plain form still read, and a stored document naming an unknown
//! name id is a corruption error.

use crate::common::{base_seed, json, scale, with_seed, Rng};
use nanodb::query::{Filter, Query};
use nanodb::{DatabaseOptions, Error, Map, NanoDb, NanoDbOptions, Value};
use nanodb_storage::fs::{CrashMode, SimFs};
use nanodb_storage::{Keyspace, WriteOptions};
use std::path::Path;
use std::sync::Arc;

fn open(sim: &SimFs, sync: bool) -> NanoDb {
    let options = NanoDbOptions {
        database: DatabaseOptions { sync, ..DatabaseOptions::default() },
        ..NanoDbOptions::default()
    };
    NanoDb::with_fs(Path::new("/root"), Arc::new(sim.clone()), options).unwrap()
}

/// The caller's fields of a document (the reserved ones removed).
fn user_fields(document: &nanodb::Document) -> Map {
    let mut fields = document.fields().clone();
    for reserved in ["id", "created", "updated"] {
        fields.remove(reserved);
    }
    fields
}

/// A document with fields named from a pool of 400 (some nested), so most writes bring names
/// the database has not seen.
fn random_fields(rng: &mut Rng) -> Map {
    let name = |rng: &mut Rng| format!("f{}", rng.below(400));
    let mut fields = Map::new();
    for _ in 0..1 + rng.below(6) {
        fields.insert(name(rng), Value::Int(rng.below(1000) as i64));
    }
    let inner: Map = (0..rng.below(3)).map(|_| (name(rng), Value::Bool(true))).collect();
    fields.insert(name(rng), Value::Object(inner));
    fields
}

/// Inserts only, with unsynced writes and a flush now and then; after each torn power cut the
/// documents left are a prefix of those inserted, at least up to the last flush, and every one
/// reads back whole with its names.
#[test]
fn documents_with_new_names_survive_torn_power_cuts_with_their_names() {
    with_seed("documents_with_new_names_survive_torn_power_cuts", base_seed(), |seed| {
        let mut rng = Rng::new(seed);
        let mut sim = SimFs::new();
        let mut runtime = open(&sim, false);
        let mut notes = runtime.database("app").unwrap().collection("notes").unwrap();
        let mut inserted: Vec<Map> = Vec::new();
        let mut durable = 0;
        for step in 0..600 * scale() {
            match rng.below(100) {
                0..=84 => {
                    let fields = random_fields(&mut rng);
                    let mut document = fields.clone();
                    document.insert("id".into(), Value::String(format!("d{:05}", inserted.len())));
                    notes.insert(Value::Object(document)).unwrap();
                    inserted.push(fields);
                }
                85..=91 => {
                    runtime.database("app").unwrap().storage().flush().unwrap();
                    durable = inserted.len();
                }
                _ => {
                    drop(notes);
                    let image = sim.crash_image(CrashMode::TornUnsynced { seed: seed ^ step });
                    drop(runtime);
                    sim = image;
                    runtime = open(&sim, false);
                    let database = runtime.open_database("app").unwrap();
                    notes = database.open_collection("notes").unwrap();
                    let kept: Vec<Map> = notes
                        .documents()
                        .unwrap()
                        .map(|document| user_fields(&document.unwrap()))
                        .collect();
                    assert!(kept.len() >= durable, "step {step}: flushed documents lost");
                    assert_eq!(kept[..], inserted[..kept.len()], "step {step}: not a prefix");
                    inserted.truncate(kept.len());
                    durable = kept.len();
                }
            }
        }
    });
}

#[test]
fn more_names_than_the_table_holds_still_round_trip_after_a_reopen() {
    let sim = SimFs::new();
    let runtime = open(&sim, true);
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    let limit = nanodb::INTERNED_NAMES_MAX;
    let per_document = 200;
    let documents = (limit + 100).div_ceil(per_document);
    let fields_of = |d: usize| -> Map {
        (0..per_document)
            .map(|f| (format!("n{}", d * per_document + f), Value::Int(f as i64)))
            .collect()
    };
    for d in 0..documents {
        let mut document = fields_of(d);
        document.insert("id".into(), Value::String(format!("d{d}")));
        notes.insert(Value::Object(document)).unwrap();
    }
    drop(notes);
    runtime.close().unwrap();
    let runtime = open(&sim, true);
    let notes = runtime.open_database("app").unwrap().open_collection("notes").unwrap();
    for d in 0..documents {
        let document = notes.get(&format!("d{d}")).unwrap().unwrap();
        assert_eq!(user_fields(&document), fields_of(d), "document {d}");
    }
    let last = format!("n{}", documents * per_document - 1);
    let found = notes.find(&Query::new(Filter::eq(&last, per_document as i64 - 1).unwrap()));
    assert_eq!(found.unwrap().documents.len(), 1, "a filter on a name spelled out");
}

/// The keyspace holding collection `notes`' documents (the only collection).
fn documents_keyspace(runtime: &NanoDb) -> Keyspace {
    let storage = runtime.database("app").unwrap().storage().clone();
    let name = storage.keyspaces().into_iter().find(|name| {
        name.len() > 1 && name.starts_with('c') && name[1..].bytes().all(|b| b.is_ascii_digit())
    });
    storage.open_keyspace(&name.unwrap()).unwrap()
}

#[test]
fn documents_in_the_earlier_plain_form_still_read_and_are_rewritten_compact() {
    let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    let written = notes.insert(json(serde_json::json!({"id": "new", "title": "x"}))).unwrap();
    let keyspace = documents_keyspace(&runtime);
    // The plain form: the map as `msgpack` encodes it, `id` included.
    let mut plain = written.fields().clone();
    plain.insert("id".into(), Value::String("old".into()));
    let bytes = nanodb::value::msgpack::to_bytes(&Value::Object(plain));
    keyspace.put("old", &bytes, WriteOptions::SYNC).unwrap();
    let old = notes.get("old").unwrap().unwrap();
    assert_eq!(old.get("title"), Some(&Value::String("x".into())));
    assert_eq!(old.id(), "old");
    let filter = Filter::eq("title", "x").unwrap();
    assert_eq!(notes.find(&Query::new(filter)).unwrap().documents.len(), 2);
    notes.patch("old", &nanodb::Patch::new().set("title", "y")).unwrap();
    let rewritten = keyspace.get("old").unwrap().unwrap();
    assert_eq!(rewritten[0], 0xc1, "an update writes the stored form");
    assert!(rewritten.len() < bytes.len());
    assert_eq!(notes.get("old").unwrap().unwrap().get("title"), Some(&Value::String("y".into())));
}

#[test]
fn a_stored_document_naming_an_unknown_name_id_is_a_corruption_error() {
    let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
    let notes = runtime.database("app").unwrap().collection("notes").unwrap();
    notes.insert(json(serde_json::json!({"id": "good", "title": "x"}))).unwrap();
    let keyspace = documents_keyspace(&runtime);
    // Stored form 1, a map of one field named by id 99, which the table does not have.
    keyspace.put("bad", [0xc1, 0x01, 0x81, 99, 0x01], WriteOptions::SYNC).unwrap();
    let is_corruption = |error: Error| match error {
        Error::Corruption { detail, .. } => assert!(detail.contains("name id 99"), "{detail}"),
        other => panic!("{other:?}"),
    };
    is_corruption(notes.get("bad").unwrap_err());
    let all: Vec<_> = notes.documents().unwrap().collect();
    assert!(all[0].is_err() && all[1].is_ok(), "the scan reports it and goes on");
    is_corruption(notes.find(&Query::new(Filter::True)).unwrap_err());
}
