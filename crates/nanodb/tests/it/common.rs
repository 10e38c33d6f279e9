//! Helpers shared by the document-layer tests. Seeds, the scale knob and the generator are the
//! storage engine's test helpers (one copy, so both crates replay seeds the same way).

use nanodb::{NanoDb, NanoDbOptions, Value};

#[path = "../../../nanodb-storage/tests/it/common.rs"]
mod storage_common;

pub use storage_common::{base_seed, scale, with_seed, Rng};

/// A value from JSON.
pub fn json(value: serde_json::Value) -> Value {
    Value::from(value)
}

/// An in-memory runtime with default options.
pub fn memory_runtime() -> NanoDb {
    NanoDb::in_memory(NanoDbOptions::default()).unwrap()
}
