//! Random document operations checked against a model (a `BTreeMap` of id → fields), across
//! reopens and power cuts.

use crate::common::{base_seed, json, scale, with_seed, Rng};
use nanodb::{Error, Map, NanoDb, NanoDbOptions, Patch, Value};
use nanodb_storage::fs::{CrashMode, SimFs};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The caller's fields of a document (the reserved ones removed).
fn user_fields(document: &nanodb::Document) -> Map {
    let mut fields = document.fields().clone();
    for reserved in ["id", "created", "updated"] {
        fields.remove(reserved);
    }
    fields
}

#[test]
fn random_document_operations_match_a_model() {
    with_seed("random_document_operations_match_a_model", base_seed(), |seed| {
        let mut rng = Rng::new(seed);
        let open = |sim: &SimFs| {
            NanoDb::with_fs(Path::new("/root"), Arc::new(sim.clone()), NanoDbOptions::default())
                .unwrap()
        };
        let mut sim = SimFs::new();
        let mut runtime = open(&sim);
        let mut notes = runtime.database("app").unwrap().collection("notes").unwrap();
        let mut model: BTreeMap<String, Map> = BTreeMap::new();
        let ids: Vec<String> = (0..40).map(|n| format!("doc{n}")).collect();
        for step in 0..1_500 * scale() {
            let id = &ids[rng.below(ids.len() as u64) as usize];
            let n = rng.below(100) as i64;
            match rng.below(100) {
                0..=24 => {
                    let result = notes.insert(json(serde_json::json!({"id": id, "n": n})));
                    if model.contains_key(id) {
                        assert!(matches!(result, Err(Error::AlreadyExists { .. })), "step {step}");
                    } else {
                        result.unwrap();
                        model.insert(id.clone(), [("n".to_string(), Value::Int(n))].into());
                    }
                }
                25..=39 => {
                    notes.upsert(id, json(serde_json::json!({"n": n, "u": true}))).unwrap();
                    let fields: Map =
                        [("n".to_string(), Value::Int(n)), ("u".to_string(), Value::Bool(true))]
                            .into();
                    model.insert(id.clone(), fields);
                }
                40..=54 => {
                    let result = notes.patch(id, &Patch::new().increment("n", n).push("log", n));
                    match model.get_mut(id) {
                        Some(fields) => {
                            result.unwrap();
                            let old = fields.get("n").and_then(Value::as_i64).unwrap_or(0);
                            fields.insert("n".into(), Value::Int(old + n));
                            match fields.entry("log".into()).or_insert(Value::Array(vec![])) {
                                Value::Array(items) => items.push(Value::Int(n)),
                                _ => unreachable!(),
                            }
                        }
                        None => {
                            assert!(matches!(result, Err(Error::NotFound { .. })), "step {step}")
                        }
                    }
                }
                55..=69 => {
                    let deleted = notes.delete(id).unwrap();
                    assert_eq!(deleted.map(|d| user_fields(&d)), model.remove(id), "step {step}");
                }
                70..=71 => {
                    drop(notes);
                    runtime.close().unwrap();
                    runtime = open(&sim);
                    notes = runtime.open_database("app").unwrap().open_collection("notes").unwrap();
                }
                72..=73 => {
                    // Every write was synced, so a power cut keeps all of them.
                    drop(notes);
                    let image = sim.crash_image(CrashMode::DropUnsynced);
                    drop(runtime);
                    sim = image;
                    runtime = open(&sim);
                    notes = runtime.open_database("app").unwrap().open_collection("notes").unwrap();
                }
                74..=75 => runtime.database("app").unwrap().storage().flush().unwrap(),
                _ => {
                    let got = notes.get(id).unwrap().map(|d| user_fields(&d));
                    assert_eq!(got.as_ref(), model.get(id), "step {step}: get {id}");
                }
            }
        }
        let all: BTreeMap<String, Map> = notes
            .documents()
            .unwrap()
            .map(|d| {
                let d = d.unwrap();
                (d.id().to_string(), user_fields(&d))
            })
            .collect();
        assert_eq!(all, model);
    });
}
