//! `SstIndex`: the decoded index block of one SST, one entry per data block (its last key and
//! its handle), searched by binary search.
//!
//! The keys of one SST often share a long prefix (a keyspace, a collection). The search
//! compares first the eight bytes of each user key that follow the prefix all keys share,
//! held big-endian in one array of `u64`s (`heads`), so most steps read one word from a
//! small contiguous array instead of a key; only equal heads compare whole keys.
//!
//! A reader keeps it in memory (pinned) or fetches it from the block cache for each lookup
//! (`Options::pin_index_and_filter`); either way it is decoded and validated once per load.
//!
//! Thread safety: immutable after `decode`, shared through `Arc`.
//!
//! Invariants:
//! 1. Keys are valid internal keys in strictly increasing order; handles are contiguous from
//!    offset 0 and end at or before `data_end`; there are exactly `data_block_count` entries.
//!    `decode` checks all of it; bad bytes are `Corruption`, never a panic.
//! 2. Every user key starts with `prefix`, and `heads[i]` is `head(prefix.len(), key i)`:
//!    two keys whose heads differ are ordered as their heads are.

use super::block::{Block, BlockCursor};
use super::format::{BlockHandle, BLOCK_TRAILER_LEN};
use crate::coding::Decoder;
use crate::key::{compare_internal_keys, parse_internal_key, user_key_of};
use crate::{Error, Result};
use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

/// Bytes charged per entry on top of its key: its key's end offset and its handle.
const ENTRY_OVERHEAD_BYTES: usize =
    std::mem::size_of::<usize>() + std::mem::size_of::<BlockHandle>();

/// The index of one SST: the blocks' last keys back to back in one buffer (a binary search
/// then reads one contiguous region), with each key's end offset and each block's handle.
#[derive(Debug)]
pub struct SstIndex {
    keys: Vec<u8>,
    /// `keys[key_ends[i - 1]..key_ends[i]]` is block `i`'s last key.
    key_ends: Vec<usize>,
    handles: Vec<BlockHandle>,
    /// The prefix every user key starts with.
    prefix: Vec<u8>,
    /// Each key's eight user-key bytes after `prefix`, big-endian, zero-padded.
    heads: Vec<u64>,
    size_bytes: usize,
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
        let mut cursor = BlockCursor::new(Arc::new(Block::new(bytes).map_err(corrupt)?));
        cursor.seek_to_first().map_err(corrupt)?;
        let mut keys = Vec::new();
        let mut key_ends: Vec<usize> = Vec::new();
        let mut handles: Vec<BlockHandle> = Vec::new();
        let mut next_offset = 0u64;
        let mut size_bytes = 0;
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
            if parse_internal_key(cursor.key()).is_none() {
                return Err(corrupt("malformed internal key"));
            }
            let last_start = key_ends.len().checked_sub(2).map_or(0, |i| key_ends[i]);
            if let Some(&last_end) = key_ends.last() {
                let last = &keys[last_start..last_end];
                if compare_internal_keys(last, cursor.key()) != Ordering::Less {
                    return Err(corrupt("keys out of order"));
                }
            }
            size_bytes += cursor.key().len() + ENTRY_OVERHEAD_BYTES;
            keys.extend_from_slice(cursor.key());
            key_ends.push(keys.len());
            handles.push(handle);
            cursor.advance().map_err(corrupt)?;
        }
        if handles.len() as u64 != data_block_count {
            return Err(Error::corruption(
                path,
                "index and properties disagree on the block count",
            ));
        }
        keys.shrink_to_fit();
        let mut index =
            SstIndex { keys, key_ends, handles, prefix: Vec::new(), heads: Vec::new(), size_bytes };
        if index.len() > 0 {
            // Sorted keys: what the first and last user keys share, every key between shares.
            let (first, last) =
                (user_key_of(index.last_key(0)), user_key_of(index.last_key(index.len() - 1)));
            let shared = first.iter().zip(last).take_while(|(a, b)| a == b).count();
            index.prefix = first[..shared].to_vec();
            index.heads =
                (0..index.len()).map(|i| head(shared, user_key_of(index.last_key(i)))).collect();
            index.size_bytes += index.prefix.len() + index.heads.len() * std::mem::size_of::<u64>();
        }
        Ok(index)
    }

    /// Number of data blocks.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// The handle of data block `position`, if there is one.
    pub fn handle(&self, position: usize) -> Option<BlockHandle> {
        self.handles.get(position).copied()
    }

    /// The last key of block `position` (< `len()`).
    fn last_key(&self, position: usize) -> &[u8] {
        let start = if position == 0 { 0 } else { self.key_ends[position - 1] };
        &self.keys[start..self.key_ends[position]]
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
        let target_head = head(self.prefix.len(), user_key);
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let before = match self.heads[middle].cmp(&target_head) {
                Ordering::Equal => {
                    compare_internal_keys(self.last_key(middle), target) == Ordering::Less
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

    /// Memory the decoded index holds, in bytes (its block cache charge).
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;
    use crate::sst::block_builder::BlockBuilder;

    /// An index over `user_keys` (sorted, distinct), block `i` ending at key `i`.
    fn index_of(user_keys: &[Vec<u8>]) -> SstIndex {
        let mut builder = BlockBuilder::new(16);
        let mut offset = 0u64;
        for (i, key) in user_keys.iter().enumerate() {
            let handle = BlockHandle { offset, size: 10 };
            offset += 10 + BLOCK_TRAILER_LEN as u64;
            let mut value = Vec::new();
            handle.encode(&mut value);
            builder.add(&internal_key(key, 100 + i as u64, 1), &value);
        }
        let bytes = builder.finish();
        SstIndex::decode(Path::new("/t"), bytes, offset, user_keys.len() as u64).unwrap()
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
            user_keys.dedup();
            let index = index_of(&user_keys);
            let mut targets: Vec<Vec<u8>> = user_keys.clone();
            targets.extend([Vec::new(), b"j".to_vec(), b"l".to_vec(), vec![255; 20]]);
            for user_key in &user_keys {
                let mut longer = user_key.clone();
                longer.push(0);
                targets.push(longer);
                targets.push(user_key[..user_key.len().saturating_sub(1)].to_vec());
            }
            for target in targets {
                for seqno in [0, 100 + below(50), crate::key::SEQNO_MAX] {
                    let target = internal_key(&target, seqno, 1);
                    let plain = (0..index.len())
                        .find(|&i| {
                            compare_internal_keys(index.last_key(i), &target) != Ordering::Less
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
