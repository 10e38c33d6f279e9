//! Helpers shared by the unit tests of this crate: a document from JSON, and a small seeded
//! generator for random inputs (seed from `NANODB_TEST_SEED`, printed by the tests on failure).
//!
//! Thread safety: test-only plain functions and owned state.

use crate::value::{Map, Value};

/// The fields of a JSON object.
pub(crate) fn doc(json: serde_json::Value) -> Map {
    match Value::from(json) {
        Value::Object(map) => map,
        other => panic!("not an object: {other:?}"),
    }
}

/// The seed of a randomized test: `NANODB_TEST_SEED` if set, else `default`.
pub(crate) fn seed_or(default: u64) -> u64 {
    std::env::var("NANODB_TEST_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(default)
}

/// A small xorshift generator for reproducible random inputs.
pub(crate) struct Rng(pub u64);

impl Rng {
    /// A number below `bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}
