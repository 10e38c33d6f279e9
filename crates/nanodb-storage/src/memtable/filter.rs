//! `KeyFilter`: a bloom filter over the user keys written to one memtable, so that a point read
//! of a key the memtable does not hold (most reads, and every existence check of an insert)
//! skips the skip-list search, a chain of dependent memory loads, for one cache line.
//!
//! Blocked layout: a key's bits all lie in one 64-byte line (eight `u64` words, aligned as a
//! cache line), chosen by its hash; `PROBE_COUNT` bits within the line come from the hash (the
//! SST filter's blocked layout, `sst::bloom`). The filter has one bit per `MEMTABLE_BYTES_PER_FILTER_BIT` bytes of the memtable's size limit: a 64th
//! of the limit in memory (256 KiB for a 16 MiB memtable).
//!
//! It is built only once the memtable holds `1 / BUILD_AT_FRACTION` of its limit (`build`,
//! from the keys inserted so far): a small memtable's skip lists are short and cheap to
//! search, and a memtable that a memory budget freezes early, or that sees a few writes, never
//! pays for a filter. The build hashes the keys of that eighth on the inserting thread, once
//! per memtable (a few milliseconds for the default 64 MiB limit; that one commit group waits
//! for it). The memtable counts the filter's bytes in its size when it is built, so
//! the budget sees them. Until then `may_contain` answers true.
//!
//! Nothing here is on disk: the filter lives and dies with its memtable, and a changed hash or
//! layout needs no format version.
//!
//! Thread safety: `Send + Sync`. Bits are set with relaxed `fetch_or` before the key's node is
//! linked into its skip list; the write path publishes the write's seqno with release ordering
//! only after that, and a reader loads the seqno with acquire ordering before it reads the
//! filter, so a reader at seqno S sees the bits of every version at or below S. The memtable
//! serializes `build` with the inserts made before it (see `Memtable::insert`).
//!
//! Invariant: no false negatives: once built, every key added, or inserted in the memtable
//! before the build, reports `may_contain`.

use crate::sst::bloom::{blocked_probes, line_bits};
use crate::sst::hash64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Bytes of memtable size limit per filter bit (a 64th of the limit in filter bytes).
pub const MEMTABLE_BYTES_PER_FILTER_BIT: usize = 8;
/// The filter is built once the memtable holds this fraction (1/n) of its limit.
pub const BUILD_AT_FRACTION: usize = 8;
/// Bits set per key, all within one line. With the default sizing a full memtable of 16-byte
/// keys and 100-byte values (about 145 bytes per version) has about 18 filter bits per key;
/// entries of about 64 bytes get 8 bits per key, about 2.5% false positives.
pub const PROBE_COUNT: u32 = 6;
/// Words per line: 64 bytes.
const LINE_WORDS: usize = 8;
/// Fewest lines of a filter.
const LINES_MIN: usize = 16;

/// One line of the filter, aligned as a cache line.
#[derive(Debug)]
#[repr(align(64))]
struct Line([AtomicU64; LINE_WORDS]);

/// The memtable's key filter; see the module header.
#[derive(Debug)]
pub struct KeyFilter {
    /// Set by `build`.
    lines: OnceLock<Box<[Line]>>,
    line_count: u64,
}

impl KeyFilter {
    /// An unbuilt filter for a memtable frozen at about `memtable_size_bytes_max`.
    pub fn new(memtable_size_bytes_max: usize) -> KeyFilter {
        let bits = memtable_size_bytes_max / MEMTABLE_BYTES_PER_FILTER_BIT;
        // At most 2^32 - 1 lines (`blocked_probes` multiplies the count by a 32-bit hash).
        let line_count = (bits / (LINE_WORDS * 64)).clamp(LINES_MIN, u32::MAX as usize);
        KeyFilter { lines: OnceLock::new(), line_count: line_count as u64 }
    }

    /// Memory the filter holds once built, in bytes.
    pub fn size_bytes(&self) -> usize {
        self.line_count as usize * LINE_WORDS * 8
    }

    /// True once built.
    pub fn is_built(&self) -> bool {
        self.lines.get().is_some()
    }

    /// Allocates the filter, adds every key `fill` passes to its callback, then publishes it;
    /// false (and `fill` is not called) if it was built already.
    pub fn build(&self, fill: impl FnOnce(&mut dyn FnMut(&[u8]))) -> bool {
        let mut built = false;
        self.lines.get_or_init(|| {
            built = true;
            let lines: Box<[Line]> =
                std::iter::repeat_with(|| Line(std::array::from_fn(|_| AtomicU64::new(0))))
                    .take(self.line_count as usize)
                    .collect();
            fill(&mut |user_key| self.set(&lines, user_key));
            lines
        });
        built
    }

    fn set(&self, lines: &[Line], user_key: &[u8]) {
        let (line, seed) = blocked_probes(hash64(user_key), lines.len());
        // The bits of each word first, then one atomic OR per word that gets any.
        let mut masks = [0u64; LINE_WORDS];
        for in_line in line_bits(seed, PROBE_COUNT) {
            masks[in_line / 64] |= 1 << (in_line % 64);
        }
        for (word, mask) in lines[line].0.iter().zip(masks) {
            if mask != 0 {
                word.fetch_or(mask, Ordering::Relaxed);
            }
        }
    }

    /// Records `user_key`; nothing before the filter is built (`build` adds the keys then).
    pub fn add(&self, user_key: &[u8]) {
        if let Some(lines) = self.lines.get() {
            self.set(lines, user_key);
        }
    }

    /// False only if the filter is built and `user_key` was never added.
    #[cfg(test)]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(hash64(user_key))
    }

    /// `may_contain` for a key already hashed: `hash` is `hash64(user_key)`.
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        let Some(lines) = self.lines.get() else { return true };
        let (line, seed) = blocked_probes(hash, lines.len());
        let Line(words) = &lines[line];
        line_bits(seed, PROBE_COUNT)
            .all(|in_line| words[in_line / 64].load(Ordering::Relaxed) & (1 << (in_line % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(key: u32) -> Vec<u8> {
        format!("user{key:08}").into_bytes()
    }

    #[test]
    fn every_key_added_before_or_after_the_build_may_be_there_and_few_others_seem_to_be() {
        // A 1 MiB memtable's filter (16 KiB, 131,072 bits) with 16,384 keys: 8 bits per key.
        let filter = KeyFilter::new(1 << 20);
        assert_eq!(filter.size_bytes(), (1 << 20) / 64);
        let keys = 16_384u32;
        filter.add(&user(0)); // before the build: dropped, the build adds it
        assert!(filter.build(|add| (0..keys / 2).for_each(|key| add(&user(key)))));
        for key in keys / 2..keys {
            filter.add(&user(key));
        }
        assert!(!filter.build(|_| panic!("a second build fills nothing")));
        for key in 0..keys {
            assert!(filter.may_contain(&user(key)), "false negative {key}");
        }
        let probes = 100_000u32;
        let false_positives = (0..probes)
            .filter(|key| filter.may_contain(format!("other{key:08}").as_bytes()))
            .count();
        // A blocked filter at 8 bits per key with 6 probes: about 2.5%; allow for variance.
        assert!(false_positives < probes as usize / 20, "{false_positives} false positives");
    }

    #[test]
    fn an_unbuilt_filter_rules_nothing_out_and_a_tiny_one_has_the_smallest_size() {
        let filter = KeyFilter::new(0);
        assert_eq!(filter.size_bytes(), LINES_MIN * LINE_WORDS * 8);
        filter.add(b"key");
        assert!(!filter.is_built());
        assert!(filter.may_contain(b"anything"));
        assert!(filter.build(|_| {}));
        assert!(filter.is_built());
        assert!(!filter.may_contain(b"key"), "added before the build and not filled");
        filter.add(b"");
        assert!(filter.may_contain(b""));
    }
}
