//! Helpers shared by the integration tests: a seeded RNG, seed and scale knobs, small-tree
//! options and numbered keys.

#![allow(dead_code)]

/// A small, fast, seedable RNG (splitmix64); tests must be reproducible from a printed seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// The base seed: `NANODB_TEST_SEED` if set, else one derived from the clock (and printed).
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

/// Runs `case(seed)` and, if it panics, reports the seed so the failure can be replayed.
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

/// Tiny memtables, files and levels, compacting inline on `sim`: many levels from little data.
pub fn small_levels(sim: &nanodb_storage::fs::SimFs) -> nanodb_storage::Options {
    nanodb_storage::Options {
        fs: std::sync::Arc::new(sim.clone()),
        memtable_size_bytes_max: nanodb_storage::MEMTABLE_SIZE_BYTES_MAX_MIN,
        block_size_bytes: 256,
        background_threads: 0,
        l0_compaction_trigger: 2,
        level_size_base_bytes: nanodb_storage::LEVEL_SIZE_BYTES_MIN,
        level_size_multiplier: 2,
        sst_size_bytes_target: nanodb_storage::LEVEL_SIZE_BYTES_MIN,
        ..Default::default()
    }
}

/// Key number `index`: `key000123`, sorting like the number.
pub fn key(index: u64) -> Vec<u8> {
    format!("key{index:06}").into_bytes()
}
