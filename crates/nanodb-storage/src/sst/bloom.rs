//! Bloom filter over the user keys of one SST, to skip the file on point reads.
//!
//! Two layouts, chosen by the file's format version (`FilterLayout::of_version`); both are
//! `bits: [u8; n] | probe_count: u8` (docs/format/sst.md), with `h = hash64(key)`:
//! - **Blocked** (version 3 on, what the writer writes): the bits are 64-byte lines (512
//!   bits); a key's `probe_count` bits all lie in one line, so a lookup reads one cache line.
//!   The line is `((h >> 32) * line_count) >> 32`; in it, probe `i` (from 0) sets bit
//!   `g_i >> 23` (the top 9 bits), where `g_0` is `h`'s low 32 bits and
//!   `g_(i+1) = g_i * 0x9E3779B9` in wrapping 32-bit arithmetic (two probes may set the same
//!   bit).
//! - **Classic** (versions 1 and 2, still read): key `k` sets the bits
//!   `(h + i * h2) mod (8 n)` for `i` in `0..probe_count`, where `h2` is `h` rotated by 32
//!   bits with its low bit set (double hashing over the whole array).
//!
//! A blocked filter is held as 64-byte aligned lines, so its line is one cache line in memory.
//!
//! Thread safety: an immutable filter is shared between readers; the builder is single-threaded.
//!
//! Invariants:
//! 1. No false negatives: every key added reports "may contain", in either layout.
//! 2. `hash64` and both layouts are part of the on-disk format: DO NOT CHANGE them without a
//!    new format version.
//! 3. A filter read from disk with a probe count outside 1..=30, no bits, or (blocked) a bit
//!    array that is not whole lines, is reported as corrupt.

/// Most probes per key that the format allows.
pub const BLOOM_PROBES_MAX: u8 = 30;
/// Bytes of one line of a blocked filter (a cache line).
pub const BLOOM_LINE_BYTES: usize = 64;
/// Most lines of a blocked filter (the line is picked by a 32-bit multiply-shift).
pub const BLOOM_LINES_MAX: usize = u32::MAX as usize;

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
const LINE_BITS: u32 = (BLOOM_LINE_BYTES * 8) as u32;
const PROBE_MULTIPLIER: u32 = 0x9e37_79b9;
const LINE_WORDS: usize = BLOOM_LINE_BYTES / 8;

fn mix(mut value: u64) -> u64 {
    value ^= value >> 30;
    value = value.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value ^= value >> 27;
    value = value.wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// The 64-bit hash of the filter. Part of the on-disk format.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut state = (bytes.len() as u64).wrapping_mul(MULTIPLIER);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        state = mix(state ^ u64::from_le_bytes(word)).wrapping_add(MULTIPLIER);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        state = mix(state ^ u64::from_le_bytes(word) ^ 0xff).wrapping_add(MULTIPLIER);
    }
    mix(state)
}

/// Where a key's bits lie in a blocked filter of `line_count` lines (at most
/// `BLOOM_LINES_MAX`): its line, and the seed of its probes within the line (`line_bits`).
/// Part of the on-disk format; the memtable's filter uses it too.
pub(crate) fn blocked_probes(hash: u64, line_count: usize) -> (usize, u32) {
    let line = ((hash >> 32) * line_count as u64) >> 32;
    (line as usize, hash as u32)
}

/// The bits, within its line (0..512), of the `probes` probes of a key whose seed is `seed`.
pub(crate) fn line_bits(seed: u32, probes: u32) -> impl Iterator<Item = usize> {
    (0..probes).scan(seed, |state, _| {
        let bit = (*state >> (32 - LINE_BITS.trailing_zeros())) as usize;
        *state = state.wrapping_mul(PROBE_MULTIPLIER);
        Some(bit)
    })
}

/// How a filter's bits are laid out; see the module header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterLayout {
    /// Probes spread over the whole bit array (SST format versions 1 and 2).
    Classic,
    /// All probes of a key in one 64-byte line (version 3 on).
    Blocked,
}

impl FilterLayout {
    /// The layout of the filter of a file of format `version`.
    pub fn of_version(version: u32) -> FilterLayout {
        if version >= 3 {
            FilterLayout::Blocked
        } else {
            FilterLayout::Classic
        }
    }
}

/// The probe count for `bits_per_key`: `round(b ln 2)`, within 1..=`BLOOM_PROBES_MAX`.
fn probe_count(bits_per_key: usize) -> u8 {
    let probes = ((bits_per_key as f64) * std::f64::consts::LN_2).round() as u8;
    probes.clamp(1, BLOOM_PROBES_MAX)
}

/// Collects key hashes and builds the filter bytes.
#[derive(Debug, Default)]
pub struct BloomBuilder {
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// An empty builder.
    pub fn new() -> BloomBuilder {
        BloomBuilder::default()
    }

    /// Adds a user key.
    pub fn add_key(&mut self, user_key: &[u8]) {
        self.hashes.push(hash64(user_key));
    }

    /// Number of keys added.
    pub fn key_count(&self) -> usize {
        self.hashes.len()
    }

    /// Builds the filter for `bits_per_key` (at least 1) in `layout`: the writer builds
    /// `Blocked`; `Classic` is what files of versions 1 and 2 hold (tests write such files).
    pub fn finish(&self, bits_per_key: u32, layout: FilterLayout) -> Vec<u8> {
        let bits_per_key = bits_per_key.max(1) as usize;
        let probes = probe_count(bits_per_key);
        let bits_wanted = self.hashes.len().saturating_mul(bits_per_key);
        match layout {
            FilterLayout::Blocked => {
                let line_count =
                    bits_wanted.div_ceil(BLOOM_LINE_BYTES * 8).clamp(1, BLOOM_LINES_MAX);
                let mut filter = vec![0u8; line_count * BLOOM_LINE_BYTES + 1];
                for &hash in &self.hashes {
                    let (line, seed) = blocked_probes(hash, line_count);
                    let line = &mut filter[line * BLOOM_LINE_BYTES..][..BLOOM_LINE_BYTES];
                    for bit in line_bits(seed, u32::from(probes)) {
                        line[bit / 8] |= 1 << (bit % 8);
                    }
                }
                filter[line_count * BLOOM_LINE_BYTES] = probes;
                filter
            }
            FilterLayout::Classic => {
                let byte_count = bits_wanted.max(64).div_ceil(8);
                let bit_count = (byte_count * 8) as u64;
                let mut filter = vec![0u8; byte_count + 1];
                for &hash in &self.hashes {
                    let (mut position, step) = (hash, hash.rotate_left(32) | 1);
                    for _ in 0..probes {
                        let bit = position % bit_count;
                        filter[(bit / 8) as usize] |= 1 << (bit % 8);
                        position = position.wrapping_add(step);
                    }
                }
                filter[byte_count] = probes;
                filter
            }
        }
    }
}

/// One line of a blocked filter, aligned as a cache line.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Line([u64; LINE_WORDS]);

/// The bits of a filter, in its layout.
#[derive(Debug, Clone)]
enum Bits {
    Classic(Vec<u8>),
    /// Each line's bytes as little-endian words: bit `j` of the line is bit `j % 64` of word
    /// `j / 64`, the same bit as bit `j % 8` of byte `j / 8`.
    Blocked(Vec<Line>),
}

/// A filter read back from an SST.
#[derive(Debug, Clone)]
pub struct BloomFilter {
    bits: Bits,
    probes: u8,
}

impl BloomFilter {
    /// Validates filter bytes read from a file whose filter has `layout`.
    pub fn new(mut bytes: Vec<u8>, layout: FilterLayout) -> Result<BloomFilter, &'static str> {
        let probes = bytes.pop().ok_or("empty bloom filter")?;
        if probes == 0 || probes > BLOOM_PROBES_MAX {
            return Err("bloom filter probe count out of range");
        }
        if bytes.is_empty() {
            return Err("bloom filter without bits");
        }
        let bits = match layout {
            FilterLayout::Classic => Bits::Classic(bytes),
            FilterLayout::Blocked => {
                if !bytes.len().is_multiple_of(BLOOM_LINE_BYTES) {
                    return Err("blocked bloom filter is not whole 64-byte lines");
                }
                if bytes.len() / BLOOM_LINE_BYTES > BLOOM_LINES_MAX {
                    return Err("blocked bloom filter has too many lines");
                }
                let lines = bytes
                    .chunks_exact(BLOOM_LINE_BYTES)
                    .map(|line| {
                        let mut words = [0u64; LINE_WORDS];
                        for (word, bytes) in words.iter_mut().zip(line.chunks_exact(8)) {
                            let mut array = [0u8; 8];
                            array.copy_from_slice(bytes);
                            *word = u64::from_le_bytes(array);
                        }
                        Line(words)
                    })
                    .collect();
                Bits::Blocked(lines)
            }
        };
        Ok(BloomFilter { bits, probes })
    }

    /// Memory the filter holds, in bytes.
    pub fn size_bytes(&self) -> usize {
        let bits = match &self.bits {
            Bits::Classic(bytes) => bytes.capacity(),
            Bits::Blocked(lines) => lines.capacity() * BLOOM_LINE_BYTES,
        };
        bits + 1
    }

    /// False if `user_key` is certainly absent; true if it may be present.
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(hash64(user_key))
    }

    /// Like `may_contain`, for a key already hashed with `hash64`.
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        match &self.bits {
            Bits::Blocked(lines) => {
                let (line, seed) = blocked_probes(hash, lines.len());
                let Line(words) = &lines[line];
                line_bits(seed, u32::from(self.probes))
                    .all(|bit| words[bit / 64] & (1 << (bit % 64)) != 0)
            }
            Bits::Classic(bytes) => {
                let bit_count = (bytes.len() * 8) as u64;
                let (mut position, step) = (hash, hash.rotate_left(32) | 1);
                for _ in 0..self.probes {
                    let bit = position % bit_count;
                    if bytes[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
                        return false;
                    }
                    position = position.wrapping_add(step);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The false-positive rate of an ideal bloom filter of `bits` bits with `probes` probes
    /// holding `keys` keys: `(1 - e^(-k n / m))^k`.
    fn classic_rate(keys: usize, bits: usize, probes: u8) -> f64 {
        let k = f64::from(probes);
        (1.0 - (-k * keys as f64 / bits as f64).exp()).powi(i32::from(probes))
    }

    /// The same for a blocked filter: a line holds a Poisson number of keys (mean `keys /
    /// lines`), each setting `probes` random bits of 512; an absent key tests one line.
    fn blocked_rate(keys: usize, lines: usize, probes: u8) -> f64 {
        let mean = keys as f64 / lines as f64;
        let k = f64::from(probes);
        let (mut rate, mut poisson) = (0.0, (-mean).exp());
        for load in 0..2000 {
            if load > 0 {
                poisson *= mean / f64::from(load);
            }
            let set: f64 = 1.0 - (1.0f64 - 1.0 / 512.0).powf(k * f64::from(load));
            rate += poisson * set.powi(i32::from(probes));
        }
        rate
    }

    fn filter_of(
        key_count: usize,
        bits_per_key: u32,
        layout: FilterLayout,
    ) -> (BloomFilter, usize) {
        let mut builder = BloomBuilder::new();
        for index in 0..key_count {
            builder.add_key(format!("key{index}").as_bytes());
        }
        let bytes = builder.finish(bits_per_key, layout);
        let bits = (bytes.len() - 1) * 8;
        (BloomFilter::new(bytes, layout).unwrap(), bits)
    }

    #[test]
    fn no_false_negatives_and_a_false_positive_rate_close_to_theory() {
        let (key_count, probe_count) = (100_000usize, 100_000usize);
        for layout in [FilterLayout::Blocked, FilterLayout::Classic] {
            for bits_per_key in [5u32, 10, 16] {
                let (filter, bits) = filter_of(key_count, bits_per_key, layout);
                for index in 0..key_count {
                    assert!(filter.may_contain(format!("key{index}").as_bytes()), "key{index}");
                }
                let false_positives = (0..probe_count)
                    .filter(|index| filter.may_contain(format!("absent{index}").as_bytes()))
                    .count();
                let measured = false_positives as f64 / probe_count as f64;
                let theory = match layout {
                    FilterLayout::Classic => classic_rate(key_count, bits, filter.probes),
                    FilterLayout::Blocked => blocked_rate(key_count, bits / 512, filter.probes),
                };
                println!(
                    "{layout:?}, {bits_per_key} bits per key, {} probes: measured {:.3}%, \
                     theory {:.3}%",
                    filter.probes,
                    measured * 100.0,
                    theory * 100.0
                );
                // Generous: 1.5 times the theory plus 0.05 points, and not absurdly below it.
                assert!(measured <= theory * 1.5 + 0.0005, "{measured} vs {theory}");
                assert!(measured >= theory / 1.5 - 0.0005, "{measured} vs {theory}");
            }
        }
    }

    #[test]
    fn a_blocked_filter_is_whole_lines_and_a_key_touches_only_its_line() {
        // 1000 keys at 10 bits: 10,000 bits, rounded up to 20 lines.
        let (filter, bits) = filter_of(1000, 10, FilterLayout::Blocked);
        assert_eq!(bits, 20 * 512);
        let Bits::Blocked(lines) = &filter.bits else { panic!("not blocked") };
        assert_eq!(lines.len(), 20);
        // One key at 2048 bits per key: four lines, 30 probes (the most), all in the key's
        // line, the high half of its hash times 4, over 2^32; the other lines stay empty.
        let mut builder = BloomBuilder::new();
        builder.add_key(b"only");
        let bytes = builder.finish(2048, FilterLayout::Blocked);
        assert_eq!(bytes.len(), 4 * BLOOM_LINE_BYTES + 1);
        assert_eq!(bytes[4 * BLOOM_LINE_BYTES], BLOOM_PROBES_MAX);
        let hash = hash64(b"only");
        let line = (((hash >> 32) * 4) >> 32) as usize;
        assert_eq!(blocked_probes(hash, 4).0, line);
        let distinct: std::collections::BTreeSet<usize> =
            line_bits(hash as u32, u32::from(BLOOM_PROBES_MAX)).collect();
        for (index, line_bytes) in
            bytes[..4 * BLOOM_LINE_BYTES].chunks(BLOOM_LINE_BYTES).enumerate()
        {
            let set: Vec<usize> =
                (0..512).filter(|bit| line_bytes[bit / 8] & (1 << (bit % 8)) != 0).collect();
            if index == line {
                assert_eq!(set, distinct.iter().copied().collect::<Vec<_>>(), "line {index}");
            } else {
                assert!(set.is_empty(), "line {index} has bits {set:?}");
            }
        }
        // Pinned values of the format: the line comes from the high half of the hash, the
        // probes from the low half, multiplied by 0x9E3779B9 after each.
        assert_eq!(blocked_probes(hash64(b"nanodb"), 1000), (788, 0x4e7c_e874));
        assert_eq!(blocked_probes(u64::MAX, 1000).0, 999);
        assert_eq!(blocked_probes(0xffff_ffff, 1000).0, 0);
        // Seed 1: 1 >> 23, then 0x9E3779B9 >> 23, then 0x9E3779B9^2 mod 2^32 >> 23.
        assert_eq!(line_bits(1, 3).collect::<Vec<_>>(), [0, 316, 454]);
    }

    #[test]
    fn the_blocked_layout_is_fixed() {
        // Part of the on-disk format (docs/format/sst.md has this example): these bytes
        // must never change.
        let mut builder = BloomBuilder::new();
        for key in ["apple", "apricot", "pear"] {
            builder.add_key(key.as_bytes());
        }
        let bytes = builder.finish(10, FilterLayout::Blocked);
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        println!("{hex}");
        assert_eq!(hex, EXAMPLE_BLOCKED_HEX);
        let filter = BloomFilter::new(bytes, FilterLayout::Blocked).unwrap();
        assert!(["apple", "apricot", "pear"].iter().all(|key| filter.may_contain(key.as_bytes())));
    }

    const EXAMPLE_BLOCKED_HEX: &str = "0000000000000008000080000004000000000000080100042002000000020000\
                                        000041000000010000000000004120004400000000101002000001000000000007";

    #[test]
    fn the_classic_layout_is_still_read() {
        // The example of docs/format/sst.md's version-2 files.
        let bytes = vec![0x00, 0x47, 0x18, 0xc8, 0x00, 0x17, 0x38, 0xe2, 0x07];
        let mut builder = BloomBuilder::new();
        for key in ["apple", "apricot", "pear"] {
            builder.add_key(key.as_bytes());
        }
        assert_eq!(builder.finish(10, FilterLayout::Classic), bytes);
        let filter = BloomFilter::new(bytes.clone(), FilterLayout::Classic).unwrap();
        assert!(["apple", "apricot", "pear"].iter().all(|key| filter.may_contain(key.as_bytes())));
        // Nine bytes are not whole lines: as a blocked filter they are corrupt.
        assert!(BloomFilter::new(bytes, FilterLayout::Blocked).is_err());
    }

    #[test]
    fn the_layout_follows_the_format_version() {
        assert_eq!(FilterLayout::of_version(1), FilterLayout::Classic);
        assert_eq!(FilterLayout::of_version(2), FilterLayout::Classic);
        assert_eq!(FilterLayout::of_version(3), FilterLayout::Blocked);
    }

    #[test]
    fn hash_is_stable() {
        // Part of the on-disk format: these values must never change.
        assert_eq!(hash64(b""), hash64(b""));
        assert_ne!(hash64(b"a"), hash64(b"b"));
        assert_ne!(hash64(b"abcdefgh"), hash64(b"abcdefgh\0"));
        assert_eq!(hash64(b"nanodb"), 0xc9cd_c69f_4e7c_e874, "{:#x}", hash64(b"nanodb"));
    }

    #[test]
    fn bad_filters_are_rejected() {
        for layout in [FilterLayout::Classic, FilterLayout::Blocked] {
            assert!(BloomFilter::new(vec![], layout).is_err());
            assert!(BloomFilter::new(vec![0xff, 0], layout).is_err());
            assert!(BloomFilter::new(vec![0xff, 31], layout).is_err());
            assert!(BloomFilter::new(vec![7], layout).is_err());
        }
        let mut line = vec![0u8; BLOOM_LINE_BYTES];
        line.push(7);
        assert!(BloomFilter::new(line.clone(), FilterLayout::Blocked).is_ok());
        line.insert(0, 0);
        assert!(BloomFilter::new(line.clone(), FilterLayout::Blocked).is_err(), "65 bytes");
        line.drain(..2);
        assert!(BloomFilter::new(line, FilterLayout::Blocked).is_err(), "63 bytes");
    }
}
