//! The memtable's skip-list key: a user key and its value in one allocation, with the
//! trailer, ordered by user key and then newest first.
//!
//! Thread safety: plain immutable values.
//!
//! Invariant: the order is exactly the internal-key order (`key` module): user key bytes
//! ascending, then trailer descending; the inline prefix is only a shortcut to it.

use crate::key::{pack_trailer, parse_internal_key};
use std::cmp::Ordering;

/// A skip-list key: the user key and the value in one allocation (`bytes`, the first
/// `key_len` of them the user key), and the trailer. Ordered by user key, then newest first;
/// the value takes no part in the order.
///
/// `prefix` holds the first 16 bytes of the user key (zero-padded, as big-endian integers)
/// inside the list node, so most comparisons of a search are one integer comparison and do not touch
/// `bytes`, a separate allocation (a cache miss each). Padding keeps the order: if two
/// prefixes differ, the keys differ in the same direction; if they are equal, the full keys
/// decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MemKey {
    prefix: (u64, u64),
    bytes: Box<[u8]>,
    pub(super) key_len: u32,
    pub(super) trailer: u64,
}

impl Ord for MemKey {
    fn cmp(&self, other: &MemKey) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.user_key().cmp(other.user_key()))
            .then_with(|| other.trailer.cmp(&self.trailer))
    }
}

/// The first 16 bytes of `user_key`, zero-padded, as two big-endian integers (two `u64`
/// rather than a `u128`, whose 16-byte alignment would pad every list node).
fn key_prefix(user_key: &[u8]) -> (u64, u64) {
    let mut prefix = [0u8; 16];
    let len = user_key.len().min(16);
    prefix[..len].copy_from_slice(&user_key[..len]);
    let prefix = u128::from_be_bytes(prefix);
    ((prefix >> 64) as u64, prefix as u64)
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &MemKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl MemKey {
    /// An entry's key: `user_key` and `value` copied into one allocation. Keys are at most
    /// `KEY_SIZE_BYTES_MAX_LIMIT` (1 MiB) long, so the length fits in a `u32`.
    pub(super) fn new(user_key: &[u8], trailer: u64, value: &[u8]) -> MemKey {
        let mut bytes = Vec::with_capacity(user_key.len() + value.len());
        bytes.extend_from_slice(user_key);
        bytes.extend_from_slice(value);
        MemKey {
            prefix: key_prefix(user_key),
            bytes: bytes.into_boxed_slice(),
            key_len: user_key.len() as u32,
            trailer,
        }
    }

    /// A key to seek to (no value).
    pub(super) fn seek_target(user_key: &[u8], trailer: u64) -> MemKey {
        MemKey::new(user_key, trailer, &[])
    }

    pub(super) fn from_internal(encoded: &[u8]) -> MemKey {
        match parse_internal_key(encoded) {
            Some(parsed) => {
                MemKey::seek_target(parsed.user_key, pack_trailer(parsed.seqno, parsed.kind as u8))
            }
            // Targets are built by this crate and always parse; an unparsable one sorts as
            // its raw bytes with the newest trailer, which is still a valid seek position.
            None => MemKey::seek_target(encoded, u64::MAX),
        }
    }

    pub(super) fn user_key(&self) -> &[u8] {
        &self.bytes[..self.key_len as usize]
    }

    pub(super) fn value(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..]
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(self.user_key());
        out.extend_from_slice(&self.trailer.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_with_the_inline_prefix_is_user_key_then_newest_first() {
        // Keys around the 16-byte prefix: shorter, equal and longer, with zero bytes that the
        // padding could confuse, and shared 16-byte heads that only the full key separates.
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        for len in [1usize, 2, 15, 16, 17, 24] {
            for fill in [0u8, 1, 255] {
                let mut key = vec![fill; len];
                keys.push(key.clone());
                key[len - 1] = 0;
                keys.push(key.clone());
                key[len / 2] = 7;
                keys.push(key);
            }
        }
        for (a, b) in keys.iter().flat_map(|a| keys.iter().map(move |b| (a, b))) {
            for (trailer_a, trailer_b) in [(5u64, 5u64), (5, 9), (9, 5)] {
                let left = MemKey::seek_target(a, trailer_a);
                let right = MemKey::new(b, trailer_b, b"value");
                let expected = a.cmp(b).then(trailer_b.cmp(&trailer_a));
                assert_eq!(left.cmp(&right), expected, "{a:?}@{trailer_a} vs {b:?}@{trailer_b}");
            }
        }
    }
}
