//! Bloom filter over the user keys of one SST, to skip the file on point reads.
//!
//! Layout: `bits: [u8; n] | probe_count: u8` (docs/format/sst.md). Key `k` sets the bits
//! `(h1 + i * h2) mod (8 n)` for `i` in `0..probe_count`, where `h1` is `hash64(k)` and `h2` is
//! `h1` rotated by 32 bits with its low bit set (double hashing).
//!
//! Thread safety: an immutable filter is shared between readers; the builder is single-threaded.
//!
//! Invariants:
//! 1. No false negatives: every key added reports "may contain".
//! 2. `hash64` is part of the on-disk format: DO NOT CHANGE it without a new format version.
//! 3. A filter read from disk with a probe count outside 1..=30 is reported as corrupt.

/// Most probes per key that the format allows.
pub const BLOOM_PROBES_MAX: u8 = 30;

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

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

    /// Builds the filter for `bits_per_key` (at least 1).
    pub fn finish(&self, bits_per_key: u32) -> Vec<u8> {
        let bits_per_key = bits_per_key.max(1) as usize;
        let probes = ((bits_per_key as f64) * std::f64::consts::LN_2).round() as u8;
        let probes = probes.clamp(1, BLOOM_PROBES_MAX);
        let bit_count = (self.hashes.len() * bits_per_key).max(64);
        let byte_count = bit_count.div_ceil(8);
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

/// A filter read back from an SST.
#[derive(Debug, Clone)]
pub struct BloomFilter {
    bytes: Vec<u8>,
    probes: u8,
}

impl BloomFilter {
    /// Validates filter bytes read from disk.
    pub fn new(mut bytes: Vec<u8>) -> Result<BloomFilter, &'static str> {
        let probes = bytes.pop().ok_or("empty bloom filter")?;
        if probes == 0 || probes > BLOOM_PROBES_MAX {
            return Err("bloom filter probe count out of range");
        }
        if bytes.is_empty() {
            return Err("bloom filter without bits");
        }
        Ok(BloomFilter { bytes, probes })
    }

    /// Memory the filter holds, in bytes.
    pub fn size_bytes(&self) -> usize {
        self.bytes.capacity() + 1
    }

    /// False if `user_key` is certainly absent; true if it may be present.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(hash64(user_key))
    }

    /// Like `may_contain`, for a key already hashed with `hash64`.
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        let bit_count = (self.bytes.len() * 8) as u64;
        let (mut position, step) = (hash, hash.rotate_left(32) | 1);
        for _ in 0..self.probes {
            let bit = position % bit_count;
            if self.bytes[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
                return false;
            }
            position = position.wrapping_add(step);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The false-positive rate of an ideal bloom filter of `bits` bits with `probes` probes
    /// holding `keys` keys: `(1 - e^(-k n / m))^k`.
    fn theoretical_rate(keys: usize, bits: usize, probes: u8) -> f64 {
        let k = f64::from(probes);
        (1.0 - (-k * keys as f64 / bits as f64).exp()).powi(i32::from(probes))
    }

    #[test]
    fn no_false_negatives_and_a_false_positive_rate_close_to_theory() {
        let (key_count, probe_count) = (100_000usize, 100_000usize);
        for bits_per_key in [5u32, 10, 16] {
            let mut builder = BloomBuilder::new();
            for index in 0..key_count {
                builder.add_key(format!("key{index}").as_bytes());
            }
            let bytes = builder.finish(bits_per_key);
            let bits = (bytes.len() - 1) * 8;
            let filter = BloomFilter::new(bytes).unwrap();
            for index in 0..key_count {
                assert!(filter.may_contain(format!("key{index}").as_bytes()), "key{index}");
            }
            let false_positives = (0..probe_count)
                .filter(|index| filter.may_contain(format!("absent{index}").as_bytes()))
                .count();
            let measured = false_positives as f64 / probe_count as f64;
            let theory = theoretical_rate(key_count, bits, filter.probes);
            println!(
                "{bits_per_key} bits per key, {} probes: measured {:.3}%, theory {:.3}%",
                filter.probes,
                measured * 100.0,
                theory * 100.0
            );
            // Generous: 1.5 times the theory plus 0.05 points, and not absurdly below it.
            assert!(measured <= theory * 1.5 + 0.0005, "{measured} vs {theory}");
            assert!(measured >= theory / 1.5 - 0.0005, "{measured} vs {theory}");
        }
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
        assert!(BloomFilter::new(vec![]).is_err());
        assert!(BloomFilter::new(vec![0xff, 0]).is_err());
        assert!(BloomFilter::new(vec![0xff, 31]).is_err());
        assert!(BloomFilter::new(vec![7]).is_err());
    }
}
