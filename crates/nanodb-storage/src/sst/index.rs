//! `SstIndex`: the decoded index block of one SST, one entry per data block (its last key and
//! where the block lies), searched by binary search.
//!
//! A reader pins one for every open file (`Options::pin_index_and_filter`), so its size per
//! data block is memory per byte of data, outside the block cache's budget; the layout keeps
//! it small:
//! - The keys of one SST often share a long prefix (a keyspace, a collection). It is stored
//!   once (`prefix`), and each block's last key without it, back to back in one buffer
//!   (`key_tails`), with each tail's end as a `u32`.
//! - Data blocks are contiguous from offset 0 (checked at decode), so block `i` lies between
//!   `block_starts[i]` and `block_starts[i + 1]` less its trailer: one `u64` per block, not
//!   a whole handle.
//! - The search compares first the eight bytes of each user key that follow the prefix, held
//!   big-endian in one array of `u64`s (`heads`), so most steps read one word from a small
//!   contiguous array instead of a key; only equal heads compare tails.
//!
//! Every vector is allocated once at its final size (the tails, whose total is known only at
//! the end, in a buffer the size of the block, shrunk to them): none grows by doubling.
//!
//! A reader keeps it in memory (pinned) or fetches it from the block cache for each lookup
//! (`Options::pin_index_and_filter`); either way it is decoded and validated once per load.
//!
//! Thread safety: immutable after `decode`, shared through `Arc`.
//!
//! Invariants:
//! 1. Keys are valid internal keys in strictly increasing order; blocks are contiguous from
//!    offset 0 and end at or before `data_end`; there are exactly `data_block_count` entries.
//!    `decode` checks all of it; bad bytes are `Corruption`, never a panic.
//! 2. Every user key starts with `prefix`; `prefix` followed by tail `i` is block `i`'s last
//!    key; `heads[i]` is `head(prefix.len(), user key i)`: two keys whose heads differ are
//!    ordered as their heads are.
//! 3. `block_starts` has one more element than there are blocks; each difference is a
//!    block's stored size plus `BLOCK_TRAILER_LEN`, and the stored size fits a `u32`.

use super::block::{Block, BlockCursor};
use super::format::{BlockHandle, BLOCK_TRAILER_LEN};
use crate::coding::Decoder;
use crate::key::{compare_internal_keys, parse_internal_key, user_key_of};
use crate::{Error, Result};
use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

/// Fewest bytes an index entry takes in the block: three one-byte lengths, an internal key
/// (at least its 8-byte trailer), a handle (a u64 and a u32) and its restart point (4 bytes,
/// as every index entry is one).
const INDEX_ENTRY_BYTES_MIN: usize = 3 + 8 + 12 + 4;

/// The index of one SST (see the module header for the layout).
#[derive(Debug)]
pub struct SstIndex {
    /// The prefix every user key starts with.
    prefix: Vec<u8>,
    /// Each block's last internal key without `prefix`, back to back.
    key_tails: Vec<u8>,
    /// `key_tails[tail_ends[i - 1]..tail_ends[i]]` is block `i`'s tail.
    tail_ends: Vec<u32>,
    /// Block `i` starts at `block_starts[i]`; the last element is where the data blocks end.
    block_starts: Vec<u64>,
    /// Each key's eight user-key bytes after `prefix`, big-endian, zero-padded.
    heads: Vec<u64>,
}

/// The eight bytes of `user_key` after its first `skip`, big-endian, zero-padded: for two
/// user keys sharing those `skip` bytes, a smaller head means a smaller key (a missing byte
/// pads as 0, and a key that ends there is a prefix of, so before, any longer one).
fn head(skip: usize, user_key: &[u8]) -> u64 {
    let rest = user_key.get(skip..).unwrap_or_default();
    let mut bytes = [0u8; 8];
    let taken = rest.len().min(8);
    bytes[..taken].copy_from_slice(&rest[..taken]);
    u64::from_be_bytes(bytes)
}

impl SstIndex {
    /// Decodes and validates the index block `bytes` of the file at `path`, whose data region
    /// ends at `data_end` and holds `data_block_count` blocks.
    pub fn decode(
        path: &Path,
        bytes: Vec<u8>,
        data_end: u64,
        data_block_count: u64,
    ) -> Result<SstIndex> {
        let corrupt = |detail: &str| Error::corruption(path, format!("index block: {detail}"));
        let block_bytes = bytes.len();
        if u32::try_from(block_bytes).is_err() {
            return Err(corrupt("larger than 4 GiB"));
        }
        // A count the block's size cannot hold is not believed for the allocation (the count
        // check at the end rejects it), so damaged properties cannot make the vectors below
        // larger than the block itself; a hint too small only costs reallocations.
        let count_hint = usize::try_from(data_block_count)
            .unwrap_or(usize::MAX)
            .min(block_bytes / INDEX_ENTRY_BYTES_MIN);
        let mut cursor = BlockCursor::new(Arc::new(Block::new(bytes).map_err(corrupt)?));
        // Sorted keys (checked below): what the first and last user keys share, every key
        // between shares.
        cursor.seek_to_last().map_err(corrupt)?;
        let last = cursor.valid().then(|| user_key_of(cursor.key()).to_vec());
        cursor.seek_to_first().map_err(corrupt)?;
        let prefix = match (&last, cursor.valid()) {
            (Some(last), true) => {
                let first = user_key_of(cursor.key());
                let shared = first.iter().zip(last).take_while(|(a, b)| a == b).count();
                first[..shared].to_vec()
            }
            _ => Vec::new(),
        };
        let mut index = SstIndex {
            prefix,
            key_tails: Vec::with_capacity(block_bytes),
            tail_ends: Vec::with_capacity(count_hint),
            block_starts: Vec::with_capacity(count_hint + 1),
            heads: Vec::with_capacity(count_hint),
        };
        index.block_starts.push(0);
        let mut previous: Vec<u8> = Vec::new();
        let mut keys_bytes = 0;
        let mut next_offset = 0u64;
        while cursor.valid() {
            let mut decoder = Decoder::new(cursor.value());
            let handle = BlockHandle::decode(&mut decoder)
                .filter(|_| decoder.is_empty())
                .ok_or_else(|| corrupt("malformed block handle"))?;
            if handle.offset != next_offset {
                return Err(corrupt("data blocks are not contiguous"));
            }
            next_offset = handle.offset + u64::from(handle.size) + BLOCK_TRAILER_LEN as u64;
            if next_offset > data_end {
                return Err(corrupt("block handle points past the data region"));
            }
            let key = cursor.key();
            if parse_internal_key(key).is_none() {
                return Err(corrupt("malformed internal key"));
            }
            // Every index entry is a restart point holding its whole key, so the keys together
            // fit in the block. Entries sharing bytes with the one before (which a damaged or
            // crafted block could have) could otherwise grow them without bound; this also
            // keeps every tail end within a u32 (the block is under 4 GiB, checked above).
            keys_bytes += key.len();
            if keys_bytes > block_bytes {
                return Err(corrupt("keys longer than the block"));
            }
            // A key without the first and last keys' prefix cannot lie between them.
            let user_key = user_key_of(key);
            if (index.len() > 0 && compare_internal_keys(&previous, key) != Ordering::Less)
                || !user_key.starts_with(&index.prefix)
            {
                return Err(corrupt("keys out of order"));
            }
            index.heads.push(head(index.prefix.len(), user_key));
            index.key_tails.extend_from_slice(&key[index.prefix.len()..]);
            // At most the keys' length, so the block's (checked above): it fits.
            index.tail_ends.push(index.key_tails.len() as u32);
            index.block_starts.push(next_offset);
            previous.clear();
            previous.extend_from_slice(key);
            cursor.advance().map_err(corrupt)?;
        }
        if index.len() as u64 != data_block_count {
            return Err(Error::corruption(
                path,
                "index and properties disagree on the block count",
            ));
        }
        // Sized for the whole block above: the tails are shorter by the prefix and the rest of
        // each entry.
        index.key_tails.shrink_to_fit();
        Ok(index)
    }

    /// Number of data blocks.
    pub fn len(&self) -> usize {
        self.tail_ends.len()
    }

    /// The handle of data block `position`, if there is one.
    pub fn handle(&self, position: usize) -> Option<BlockHandle> {
        let (&offset, &end) =
            (self.block_starts.get(position)?, self.block_starts.get(position + 1)?);
        // Invariant 3: the difference is a u32 size plus the trailer.
        let size = (end - offset - BLOCK_TRAILER_LEN as u64) as u32;
        Some(BlockHandle { offset, size })
    }

    /// The last key of block `position` (< `len()`) without `prefix`.
    fn tail(&self, position: usize) -> &[u8] {
        let start = if position == 0 { 0 } else { self.tail_ends[position - 1] as usize };
        &self.key_tails[start..self.tail_ends[position] as usize]
    }

    /// Position of the first block whose last key is `>= target` (`len()` if none).
    pub fn block_for(&self, target: &[u8]) -> usize {
        let user_key = user_key_of(target);
        if !user_key.starts_with(&self.prefix) {
            // Before every key or after every key: the prefix alone decides.
            return match user_key.cmp(&self.prefix) {
                Ordering::Less => 0,
                _ => self.len(),
            };
        }
        // Both sides without the prefix every key shares: the same order.
        let target_tail = &target[self.prefix.len()..];
        let target_head = head(self.prefix.len(), user_key);
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let before = match self.heads[middle].cmp(&target_head) {
                Ordering::Equal => {
                    compare_internal_keys(self.tail(middle), target_tail) == Ordering::Less
                }
                ordering => ordering == Ordering::Less,
            };
            if before {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// Block `position`'s last key, whole (tests).
    #[cfg(test)]
    fn whole_key(&self, position: usize) -> Vec<u8> {
        [self.prefix.as_slice(), self.tail(position)].concat()
    }

    /// Memory the decoded index holds, in bytes (its block cache charge).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<SstIndex>()
            + self.prefix.capacity()
            + self.key_tails.capacity()
            + self.tail_ends.capacity() * std::mem::size_of::<u32>()
            + self.block_starts.capacity() * std::mem::size_of::<u64>()
            + self.heads.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;
    use crate::sst::block_builder::BlockBuilder;

    /// The internal key ending block `i` of an index over `user_keys`.
    fn block_key(user_keys: &[Vec<u8>], i: usize) -> Vec<u8> {
        internal_key(&user_keys[i], 100 + (user_keys.len() - i) as u64, 1)
    }

    /// The index block over `user_keys` (sorted; a key may repeat, as when one key's versions
    /// span blocks: its later blocks end at older versions), block `i` ending at key `i`, and
    /// where its data region ends.
    fn index_block_of(user_keys: &[Vec<u8>]) -> (Vec<u8>, u64) {
        let mut builder = BlockBuilder::new(1);
        let mut offset = 0u64;
        for i in 0..user_keys.len() {
            let handle = BlockHandle { offset, size: 10 };
            offset += 10 + BLOCK_TRAILER_LEN as u64;
            let mut value = Vec::new();
            handle.encode(&mut value);
            builder.add(&block_key(user_keys, i), &value);
        }
        (builder.finish(), offset)
    }

    /// An index over `user_keys` (sorted), block `i` ending at key `i`.
    fn index_of(user_keys: &[Vec<u8>]) -> SstIndex {
        let (bytes, data_end) = index_block_of(user_keys);
        SstIndex::decode(Path::new("/t"), bytes, data_end, user_keys.len() as u64).unwrap()
    }

    #[test]
    fn entries_sharing_key_bytes_past_the_block_size_are_corruption() {
        // Written with restart points every 16 entries, so entries share bytes with the one
        // before: the keys together are longer than the block, which an index never is.
        let mut builder = BlockBuilder::new(16);
        let mut offset = 0u64;
        for i in 0..10u8 {
            let handle = BlockHandle { offset, size: 10 };
            offset += 10 + BLOCK_TRAILER_LEN as u64;
            let mut value = Vec::new();
            handle.encode(&mut value);
            builder.add(&internal_key(&[&[b'p'; 200][..], &[i][..]].concat(), 1, 1), &value);
        }
        let error = SstIndex::decode(Path::new("/t"), builder.finish(), offset, 10).unwrap_err();
        assert!(error.to_string().contains("keys longer than the block"), "{error}");
    }

    #[test]
    fn a_block_count_other_than_the_entries_is_corruption() {
        let user_keys: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'k', i]).collect();
        for count in [0, 4, 6, u64::MAX] {
            let (bytes, data_end) = index_block_of(&user_keys);
            let error = SstIndex::decode(Path::new("/t"), bytes, data_end, count).unwrap_err();
            assert!(error.to_string().contains("disagree on the block count"), "{count}: {error}");
        }
    }

    #[test]
    fn keys_and_handles_come_back_as_written() {
        let user_keys: Vec<Vec<u8>> = ["doc:a1", "doc:a2", "doc:b", "doc:bz", "doc:c"]
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect();
        let index = index_of(&user_keys);
        assert_eq!(index.prefix, b"doc:");
        assert_eq!(index.len(), user_keys.len());
        for (i, key) in user_keys.iter().enumerate() {
            assert_eq!(index.whole_key(i), block_key(&user_keys, i), "{key:?}");
            let expected =
                BlockHandle { offset: i as u64 * (10 + BLOCK_TRAILER_LEN as u64), size: 10 };
            assert_eq!(index.handle(i), Some(expected));
        }
        assert_eq!(index.handle(user_keys.len()), None);
        // Exact allocations: the tails (key less prefix, plus the 8-byte trailer), one u32, one
        // block start and one head per block, and one more block start.
        let tails: usize = user_keys.iter().map(|key| key.len() - 4 + 8).sum();
        let expected = std::mem::size_of::<SstIndex>() + 4 + tails + 5 * (4 + 8 + 8) + 8;
        assert_eq!(index.size_bytes(), expected);
    }

    #[test]
    fn an_empty_index_finds_no_block() {
        let index = index_of(&[]);
        assert_eq!(index.len(), 0);
        assert_eq!(index.handle(0), None);
        assert_eq!(index.block_for(&internal_key(b"any", 1, 1)), 0);
    }

    #[test]
    fn the_head_search_finds_what_a_plain_binary_search_finds() {
        // Seed `NANODB_TEST_SEED`; every failure message names it.
        let seed = crate::test_rng::seed_or(0x1dea);
        let mut rng = crate::test_rng::TestRng::new(seed);
        let mut below = |bound: u64| rng.below(bound);
        for round in 0..300 {
            let prefix: Vec<u8> = vec![b'k'; below(12) as usize];
            let mut user_keys: Vec<Vec<u8>> = (0..1 + below(40))
                .map(|_| {
                    let mut key = prefix.clone();
                    for _ in 0..below(14) {
                        key.push([0u8, 1, b'a', 255][below(4) as usize]);
                    }
                    key
                })
                .collect();
            user_keys.sort();
            if below(2) == 0 {
                user_keys.dedup(); // else a key may end several blocks, at older versions
            }
            let index = index_of(&user_keys);
            let mut targets: Vec<Vec<u8>> = user_keys.clone();
            targets.extend([Vec::new(), b"j".to_vec(), b"l".to_vec(), vec![255; 20]]);
            // Targets that leave the prefix inside it, and the prefix itself.
            for cut in 0..prefix.len() {
                for last in [b'j', b'l'] {
                    targets.push([&prefix[..cut], &[last][..]].concat());
                }
            }
            targets.push(prefix.clone());
            for user_key in &user_keys {
                let mut longer = user_key.clone();
                longer.push(0);
                targets.push(longer);
                targets.push(user_key[..user_key.len().saturating_sub(1)].to_vec());
            }
            for target in targets {
                for seqno in [0, 100 + below(50), 100 + below(50), crate::key::SEQNO_MAX] {
                    let target = internal_key(&target, seqno, 1);
                    let plain = (0..index.len())
                        .find(|&i| {
                            compare_internal_keys(&block_key(&user_keys, i), &target)
                                != Ordering::Less
                        })
                        .unwrap_or(index.len());
                    assert_eq!(
                        index.block_for(&target),
                        plain,
                        "NANODB_TEST_SEED={seed} round {round}"
                    );
                }
            }
        }
    }
}
