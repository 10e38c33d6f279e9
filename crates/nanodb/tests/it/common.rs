//! Helpers shared by the document-layer tests: seeds, a small generator, JSON documents.

use nanodb::{NanoDb, NanoDbOptions, Value};

/// The seed of a randomized test: `NANODB_TEST_SEED` if set, else the clock.
pub fn base_seed() -> u64 {
    match std::env::var("NANODB_TEST_SEED") {
        Ok(text) => text.parse().expect("NANODB_TEST_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// Multiplier for how much randomized work a test does (`NANODB_TEST_SCALE`, default 1).
pub fn scale() -> u64 {
    std::env::var("NANODB_TEST_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1)
}

/// Runs `case(seed)` and, if it panics, prints the seed so the failure can be replayed.
pub fn with_seed<T>(name: &str, seed: u64, case: impl FnOnce(u64) -> T) -> T {
    struct Reporter<'a>(&'a str, u64);
    impl Drop for Reporter<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!(
                    "{} failed with seed {}: rerun with NANODB_TEST_SEED={}",
                    self.0, self.1, self.1
                );
            }
        }
    }
    let _reporter = Reporter(name, seed);
    case(seed)
}

/// A small deterministic generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A value from JSON.
pub fn json(value: serde_json::Value) -> Value {
    Value::from(value)
}

/// An in-memory runtime with default options.
pub fn memory_runtime() -> NanoDb {
    NanoDb::in_memory(NanoDbOptions::default()).unwrap()
}
