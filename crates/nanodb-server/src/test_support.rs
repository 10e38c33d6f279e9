//! Helpers for unit tests: stored documents (which only a collection can make), built in an
//! in-memory database.

use nanodb::{Document, NanoDb, NanoDbOptions, Value};

/// `fields` stored as a document of a throwaway in-memory collection (so it has `id`,
/// `created` and `updated`; an `id` in `fields` is kept).
pub fn document(fields: serde_json::Value) -> Document {
    let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
    let collection = runtime.database("test").unwrap().collection("test").unwrap();
    collection.insert(Value::from(fields)).unwrap()
}
