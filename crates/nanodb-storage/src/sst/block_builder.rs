//! `BlockBuilder`: builds one SST block of prefix-compressed, sorted entries.
//!
//! Entry: `shared: varint | unshared: varint | value_len: varint | key[shared..] | value`,
//! where `shared` is the length of the prefix shared with the previous key. A restart point
//! stores the full key (`shared = 0`): every `restart_interval` entries and, in data blocks,
//! also once `restart_bytes` of entries were written since the last one (so an entry that
//! follows one of that size or more starts a restart point, and documents of that size each
//! start one a lookup can jump to). The block ends with the restart offsets
//! (`u32 LE` each) and their count (`u32 LE`). A data block may also end with a hash index
//! (`block_hash`) mapping each user key to its restart point; its count word then carries
//! `HASH_INDEX_FLAG`. See docs/format/sst.md.
//!
//! Thread safety: a plain value used by one thread (the SST writer).
//!
//! Invariants:
//! 1. Keys are added in strictly increasing internal-key order (asserted by the SST writer).
//! 2. A block always has at least one restart point (offset 0) once an entry is added.
//! 3. With a hash index, every distinct user key of the block is noted once in `hash_index`,
//!    with the restart point of its first (newest) entry in this block.

use super::block_hash::{self, HashIndexBuilder};
use crate::coding::{put_u32, put_varint};
use crate::key::user_key_of;

/// Builds one block.
#[derive(Debug)]
pub struct BlockBuilder {
    buffer: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    /// Bytes of entries after which the next entry starts a restart point (0: count only).
    restart_bytes: usize,
    entries_since_restart: usize,
    last_key: Vec<u8>,
    entry_count: usize,
    /// The user keys and their restart points, when the block gets a hash index.
    hash_index: Option<HashIndexBuilder>,
}

impl BlockBuilder {
    /// A builder placing a restart point every `restart_interval` entries, without a hash
    /// index (the index block's shape).
    pub fn new(restart_interval: usize) -> BlockBuilder {
        assert!(restart_interval >= 1, "restart interval must be at least 1");
        BlockBuilder {
            buffer: Vec::new(),
            restarts: Vec::new(),
            restart_interval,
            restart_bytes: 0,
            entries_since_restart: 0,
            last_key: Vec::new(),
            entry_count: 0,
            hash_index: None,
        }
    }

    /// A builder of data blocks: a restart point every `restart_interval` entries or
    /// `restart_bytes` bytes of entries, whichever comes first, and a hash index when
    /// `hash_index` (and the block has few enough restart points for it).
    pub fn for_data(
        restart_interval: usize,
        restart_bytes: usize,
        hash_index: bool,
    ) -> BlockBuilder {
        let mut builder = BlockBuilder::new(restart_interval);
        builder.restart_bytes = restart_bytes;
        builder.hash_index = hash_index.then(HashIndexBuilder::default);
        builder
    }

    fn restart_due(&self) -> bool {
        if self.entry_count == 0 || self.entries_since_restart == self.restart_interval {
            return true;
        }
        let last_restart = self.restarts.last().map_or(0, |&offset| offset as usize);
        self.restart_bytes > 0 && self.buffer.len() - last_restart >= self.restart_bytes
    }

    /// Appends an entry; `key` must sort after every key added before.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let restart = self.restart_due();
        if let Some(hash_index) = &mut self.hash_index {
            let user_key = user_key_of(key);
            if self.entry_count == 0 || user_key_of(&self.last_key) != user_key {
                let restart_index = self.restarts.len() - usize::from(!restart);
                hash_index.add(user_key, restart_index);
            }
        }
        let shared = if restart {
            self.restarts.push(self.buffer.len() as u32);
            self.entries_since_restart = 0;
            0
        } else {
            self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count()
        };
        put_varint(&mut self.buffer, shared as u64);
        put_varint(&mut self.buffer, (key.len() - shared) as u64);
        put_varint(&mut self.buffer, value.len() as u64);
        self.buffer.extend_from_slice(&key[shared..]);
        self.buffer.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries_since_restart += 1;
        self.entry_count += 1;
    }

    /// Size the finished block would have, in bytes.
    pub fn size_estimate_bytes(&self) -> usize {
        let hash_index = self
            .hash_index
            .as_ref()
            .map_or(0, |index| index.size_estimate_bytes(self.restarts.len()));
        self.buffer.len() + 4 * self.restarts.len() + 4 + hash_index
    }

    /// True if no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// The last key added.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Finishes the block, returns its bytes and resets the builder for the next block.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut block = std::mem::take(&mut self.buffer);
        for &restart in &self.restarts {
            put_u32(&mut block, restart);
        }
        let restart_count = self.restarts.len() as u32;
        let indexed = match &mut self.hash_index {
            Some(hash_index) => hash_index.finish(&mut block, self.restarts.len()),
            None => false,
        };
        put_u32(
            &mut block,
            if indexed { restart_count | block_hash::HASH_INDEX_FLAG } else { restart_count },
        );
        self.restarts.clear();
        self.entries_since_restart = 0;
        self.entry_count = 0;
        self.last_key.clear();
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;

    #[test]
    fn large_entries_are_each_a_restart_point_and_small_ones_share_one() {
        let mut builder = BlockBuilder::for_data(16, 256, false);
        for i in 0..4u32 {
            builder.add(&internal_key(format!("big{i}").as_bytes(), 1, 1), &[7; 300]);
        }
        assert_eq!(builder.restarts, [0, 316, 632, 948], "each entry 4 + 12 + 300 bytes");
        builder.finish();
        for i in 0..20u32 {
            builder.add(&internal_key(format!("small{i:02}").as_bytes(), 1, 1), &[7; 40]);
        }
        // Entries of about 50 bytes: the byte rule (256) places a restart point every sixth
        // entry or so, before the count rule (16) would.
        assert!(builder.restarts.len() >= 3, "{:?}", builder.restarts);
        for pair in builder.restarts.windows(2) {
            assert!(pair[1] - pair[0] >= 256 && pair[1] - pair[0] < 256 + 60, "{pair:?}");
        }
        let mut counted = BlockBuilder::new(16);
        for i in 0..20u32 {
            counted.add(&internal_key(format!("big{i:02}").as_bytes(), 1, 1), &[7; 300]);
        }
        assert_eq!(counted.restarts.len(), 2, "the index block's shape counts entries only");
    }

    #[test]
    fn data_blocks_of_16_kib_keep_their_hash_index_down_to_the_smallest_entries() {
        use crate::sst::block::Block;
        use crate::sst::writer::{DATA_BLOCK_RESTART_BYTES, DATA_BLOCK_RESTART_INTERVAL};
        // The smallest entries (one-byte user keys, empty values) and documents' (about 430
        // bytes): a block filled to 16 KiB (`small_memory`'s size) has few enough restart
        // points for the index's one-byte buckets. Past `HASH_INDEX_RESTARTS_MAX` restart
        // points a block is written without one and read by binary search.
        for value_bytes in [0, 8, 40, 430] {
            let mut builder =
                BlockBuilder::for_data(DATA_BLOCK_RESTART_INTERVAL, DATA_BLOCK_RESTART_BYTES, true);
            let mut key_index = 0u32;
            while builder.size_estimate_bytes() < 16 * 1024 {
                // Keys that differ in their last byte keep the shared prefix long and the
                // entries short.
                let key = key_index.to_be_bytes();
                builder.add(&internal_key(&key, 1, 1), &vec![7; value_bytes]);
                key_index += 1;
            }
            let restart_count = builder.restarts.len();
            let block = Block::new(builder.finish()).unwrap();
            assert!(
                block.has_hash_index(),
                "values of {value_bytes} bytes: {restart_count} restarts"
            );
            assert!(restart_count <= block_hash::HASH_INDEX_RESTARTS_MAX, "{restart_count}");
        }
    }
}
