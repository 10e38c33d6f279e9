//! Randomness for unit tests: the seed from `NANODB_TEST_SEED` (or a test's default), which
//! every failure message must print, and a small xorshift generator over it.
//!
//! Thread safety: a `TestRng` belongs to one test thread.

/// The seed: `NANODB_TEST_SEED` if set to a number, else `default`.
pub(crate) fn seed_or(default: u64) -> u64 {
    std::env::var("NANODB_TEST_SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

/// A xorshift64 generator (never seeded with zero).
pub(crate) struct TestRng(u64);

impl TestRng {
    /// A generator from `seed`.
    pub(crate) fn new(seed: u64) -> TestRng {
        TestRng(seed | 1)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
