//! `Block` and `BlockCursor`: reading one SST block (format in `block_builder`).
//!
//! Thread safety: a `Block` is immutable and shared through `Arc`; a cursor is used by one
//! thread. A dropped block's bytes go to the dropping thread's stock of buffers (`buffers`).
//!
//! Invariants:
//! 1. `Block::new` checks the restart array (and the hash index's size and bucket values)
//!    against the block size; entry decoding checks every length against the bytes left. Bad
//!    bytes give `Err(&'static str)`, which the SST reader turns into a `Corruption` error
//!    naming the file and block; nothing here panics on input.
//! 2. A cursor is either positioned at a whole, decoded entry (`valid()`) or not.

use super::block_hash::{
    self, HashProbe, COLLISION_WALK_RESTARTS_MAX, HASH_INDEX_FLAG, HASH_INDEX_TAIL_BYTES,
};
use super::buffers;
use crate::coding::{get_u16_at, get_u32_at, Decoder};
use crate::key::{compare_internal_keys, user_key_of};
use std::cmp::Ordering;
use std::sync::Arc;

/// Why a block's bytes are not a valid block.
pub type BlockError = &'static str;

/// One block's bytes, validated enough to seek in.
#[derive(Debug)]
pub struct Block {
    bytes: Vec<u8>,
    restarts_offset: usize,
    restart_count: usize,
    /// Where the hash index's buckets lie in `bytes`, if the block has one.
    hash_buckets: Option<std::ops::Range<usize>>,
}

impl Block {
    /// Validates the restart array (and the hash index, if any) of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Result<Block, BlockError> {
        let len = bytes.len();
        let count_word = len
            .checked_sub(4)
            .and_then(|offset| get_u32_at(&bytes, offset))
            .ok_or("block shorter than its restart count")?;
        let (restart_count, tail_len, hash_buckets) = if count_word & HASH_INDEX_FLAG == 0 {
            (count_word as usize, 4, None)
        } else {
            let restart_count = (count_word & !HASH_INDEX_FLAG) as usize;
            // The buckets end where the bucket count (u16) and the count word (u32) begin.
            let buckets_end = len
                .checked_sub(HASH_INDEX_TAIL_BYTES)
                .ok_or("block shorter than its hash index")?;
            let bucket_count = get_u16_at(&bytes, buckets_end)
                .map(usize::from)
                .ok_or("block shorter than its hash index")?;
            let start =
                buckets_end.checked_sub(bucket_count).ok_or("hash index larger than the block")?;
            block_hash::check_buckets(&bytes[start..buckets_end], restart_count)?;
            (restart_count, HASH_INDEX_TAIL_BYTES + bucket_count, Some(start..buckets_end))
        };
        let restarts_len = restart_count
            .checked_mul(4)
            .and_then(|size| size.checked_add(tail_len))
            .filter(|&size| size <= len)
            .ok_or("restart count larger than the block")?;
        let restarts_offset = len - restarts_len;
        if restart_count == 0 && restarts_offset != 0 {
            return Err("block with entries but no restart point");
        }
        let block = Block { bytes, restarts_offset, restart_count, hash_buckets };
        let mut previous = None;
        for index in 0..restart_count {
            let restart = block.restart(index);
            if restart >= restarts_offset || previous.is_some_and(|p| restart <= p) {
                return Err("restart offset out of order or out of the block");
            }
            previous = Some(restart);
        }
        if restart_count > 0 && block.restart(0) != 0 {
            return Err("first restart point is not at offset 0");
        }
        Ok(block)
    }

    /// True if the block ends with a hash index.
    #[cfg(test)]
    pub fn has_hash_index(&self) -> bool {
        self.hash_buckets.is_some()
    }

    /// Bytes the block's buffer holds: its capacity, at least the decoded contents and at
    /// most twice them when the buffer came from the thread's stock (`buffers`).
    pub fn size_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The block's bytes (entries, restart array and hash index).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A block of exactly `bytes` that is never searched, for tests that only read bytes out.
    #[cfg(test)]
    pub fn for_tests_with(bytes: Vec<u8>) -> Block {
        Block { bytes, restarts_offset: 0, restart_count: 0, hash_buckets: None }
    }

    /// A block of `len` bytes with no entries, for tests that only look at its size.
    #[cfg(test)]
    pub fn for_tests(len: usize) -> Block {
        Block {
            bytes: vec![0; len.max(4)],
            restarts_offset: 0,
            restart_count: 0,
            hash_buckets: None,
        }
    }

    fn restart(&self, index: usize) -> usize {
        get_u32_at(&self.bytes, self.restarts_offset + 4 * index).unwrap_or(u32::MAX) as usize
    }
}

impl Drop for Block {
    /// The bytes go to the dropping thread's stock, for its next block read (`buffers`).
    fn drop(&mut self) {
        buffers::give(std::mem::take(&mut self.bytes));
    }
}

/// A cursor over one block's entries, movable both ways.
#[derive(Debug)]
pub struct BlockCursor {
    block: Arc<Block>,
    /// Offset of the current entry; `restarts_offset` when past the end.
    current: usize,
    /// Offset just after the current entry.
    next_offset: usize,
    key: Vec<u8>,
    value_start: usize,
    value_end: usize,
    valid: bool,
}

impl BlockCursor {
    /// An unpositioned cursor.
    pub fn new(block: Arc<Block>) -> BlockCursor {
        BlockCursor {
            block,
            current: 0,
            next_offset: 0,
            key: Vec::new(),
            value_start: 0,
            value_end: 0,
            valid: false,
        }
    }

    /// True when positioned at an entry.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The current value.
    pub fn value(&self) -> &[u8] {
        &self.block.bytes[self.value_start..self.value_end]
    }

    /// The current value where it lies: the block and the value's range in its bytes.
    pub fn value_in_block(&self) -> (Arc<Block>, std::ops::Range<usize>) {
        (Arc::clone(&self.block), self.value_start..self.value_end)
    }

    /// Decodes the entry at `offset`, whose key shares a prefix with `self.key`.
    fn decode_at(&mut self, offset: usize) -> Result<(), BlockError> {
        if offset >= self.block.restarts_offset {
            self.valid = false;
            self.current = self.block.restarts_offset;
            return Ok(());
        }
        let entries = &self.block.bytes[..self.block.restarts_offset];
        let mut decoder = Decoder::new(entries.get(offset..).ok_or("entry offset out of range")?);
        let shared = decoder.varint().ok_or("bad entry header")? as usize;
        let unshared = decoder.varint().ok_or("bad entry header")? as usize;
        let value_len = decoder.varint().ok_or("bad entry header")? as usize;
        if shared > self.key.len() {
            self.valid = false;
            return Err("entry shares more key bytes than the previous key has");
        }
        let key_delta = decoder.bytes(unshared).ok_or("entry key runs past the block")?;
        let value_start = offset + decoder.position();
        decoder.bytes(value_len).ok_or("entry value runs past the block")?;
        self.key.truncate(shared);
        self.key.extend_from_slice(key_delta);
        self.current = offset;
        self.value_start = value_start;
        self.value_end = value_start + value_len;
        self.next_offset = self.value_end;
        self.valid = true;
        Ok(())
    }

    fn seek_to_restart(&mut self, index: usize) -> Result<(), BlockError> {
        self.key.clear();
        self.decode_at(self.block.restart(index))
    }

    /// Positions at the first entry.
    pub fn seek_to_first(&mut self) -> Result<(), BlockError> {
        if self.block.restart_count == 0 {
            self.valid = false;
            return Ok(());
        }
        self.seek_to_restart(0)
    }

    /// Positions at the last entry.
    pub fn seek_to_last(&mut self) -> Result<(), BlockError> {
        if self.block.restart_count == 0 {
            self.valid = false;
            return Ok(());
        }
        self.seek_to_restart(self.block.restart_count - 1)?;
        while self.valid && self.next_offset < self.block.restarts_offset {
            self.decode_at(self.next_offset)?;
        }
        Ok(())
    }

    /// Moves to the next entry (invalid past the last).
    pub fn advance(&mut self) -> Result<(), BlockError> {
        debug_assert!(self.valid, "advance on an invalid block cursor");
        self.decode_at(self.next_offset)
    }

    /// Moves to the previous entry (invalid before the first).
    pub fn step_back(&mut self) -> Result<(), BlockError> {
        debug_assert!(self.valid, "step_back on an invalid block cursor");
        let target = self.current;
        // The last restart point strictly before the current entry.
        let mut index = self.restart_index_before(target);
        let Some(restart) = index.map(|i| self.block.restart(i)) else {
            self.valid = false;
            return Ok(());
        };
        if restart == target {
            // The current entry is itself a restart point: go one restart back.
            index = index.and_then(|i| i.checked_sub(1));
            let Some(index) = index else {
                self.valid = false;
                return Ok(());
            };
            self.seek_to_restart(index)?;
        } else {
            self.seek_to_restart(index.unwrap_or(0))?;
        }
        while self.valid && self.next_offset < target {
            self.decode_at(self.next_offset)?;
        }
        if self.next_offset != target {
            self.valid = false;
            return Err("entries do not chain to the current offset");
        }
        Ok(())
    }

    /// Index of the last restart point at or before `offset`.
    fn restart_index_before(&self, offset: usize) -> Option<usize> {
        let (mut low, mut high) = (0, self.block.restart_count);
        while low < high {
            let middle = (low + high) / 2;
            if self.block.restart(middle) <= offset {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low.checked_sub(1)
    }

    /// Positions at the first entry whose key is `>= target` (invalid if none).
    pub fn seek_ge(&mut self, target: &[u8]) -> Result<(), BlockError> {
        if self.block.restart_count == 0 {
            self.valid = false;
            return Ok(());
        }
        // Binary search for the last restart point whose key is < target.
        let (mut low, mut high) = (0, self.block.restart_count);
        while high - low > 1 {
            let middle = (low + high) / 2;
            self.seek_to_restart(middle)?;
            if !self.valid {
                return Err("restart point past the entries");
            }
            if compare_internal_keys(&self.key, target) == Ordering::Less {
                low = middle;
            } else {
                high = middle;
            }
        }
        self.seek_to_restart(low)?;
        while self.valid && compare_internal_keys(&self.key, target) == Ordering::Less {
            self.decode_at(self.next_offset)?;
        }
        Ok(())
    }

    /// Positions as `seek_ge(target)` does, for a point lookup of `target`'s user key, whose
    /// `hash64` is `user_key_hash`: through the block's hash index when it has one. Returns
    /// false, with the cursor invalid, when the index shows the user key has no entry here.
    pub fn seek_for_get(&mut self, target: &[u8], user_key_hash: u64) -> Result<bool, BlockError> {
        let probe = match &self.block.hash_buckets {
            Some(range) => block_hash::probe(&self.block.bytes[range.clone()], user_key_hash),
            None => HashProbe::Collision,
        };
        match probe {
            HashProbe::Absent => {
                self.valid = false;
                Ok(false)
            }
            HashProbe::Collision => self.seek_ge(target).map(|()| true),
            HashProbe::Restart(index) => {
                // Every entry before the key's first one sorts before `target`. The key's first
                // entry, if it has one here, lies within `COLLISION_WALK_RESTARTS_MAX` restart
                // points of `index`: a walk still on smaller keys past them proves it absent.
                let last = index + usize::from(COLLISION_WALK_RESTARTS_MAX);
                let give_up = if last + 1 < self.block.restart_count {
                    self.block.restart(last + 1)
                } else {
                    usize::MAX
                };
                let user_key = user_key_of(target);
                self.seek_to_restart(index)?;
                while self.valid && compare_internal_keys(&self.key, target) == Ordering::Less {
                    if self.current >= give_up && user_key_of(&self.key) < user_key {
                        self.valid = false;
                        return Ok(false);
                    }
                    self.decode_at(self.next_offset)?;
                }
                Ok(true)
            }
        }
    }

    /// Checks the block's hash index against its entries (nothing to check without one): every
    /// user key's bucket must name a restart point at or before its first entry, at most
    /// `COLLISION_WALK_RESTARTS_MAX` before it, or be a collision. For `SstReader::verify`: a
    /// bad index (which its checksum cannot catch if the writer built it wrong) would make
    /// lookups miss keys.
    pub fn check_hash_index(&mut self) -> Result<(), BlockError> {
        let Some(range) = self.block.hash_buckets.clone() else { return Ok(()) };
        self.seek_to_first()?;
        let mut restart_index = 0;
        let mut previous_user_key: Option<Vec<u8>> = None;
        while self.valid {
            while restart_index + 1 < self.block.restart_count
                && self.block.restart(restart_index + 1) <= self.current
            {
                restart_index += 1;
            }
            let user_key = user_key_of(&self.key);
            if previous_user_key.as_deref() != Some(user_key) {
                let hash = super::hash64(user_key);
                match block_hash::probe(&self.block.bytes[range.clone()], hash) {
                    HashProbe::Collision => {}
                    HashProbe::Restart(named)
                        if named <= restart_index
                            && restart_index - named
                                <= usize::from(COLLISION_WALK_RESTARTS_MAX) => {}
                    _ => return Err("hash index does not lead to a key of the block"),
                }
                previous_user_key = Some(user_key.to_vec());
            }
            self.advance()?;
        }
        Ok(())
    }

    /// Positions at the last entry whose key is `<= target` (invalid if none).
    pub fn seek_le(&mut self, target: &[u8]) -> Result<(), BlockError> {
        self.seek_ge(target)?;
        if !self.valid {
            return self.seek_to_last();
        }
        if compare_internal_keys(&self.key, target) == Ordering::Greater {
            self.step_back()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{internal_key, KIND_FOR_SEEK};
    use crate::sst::block_builder::BlockBuilder;

    fn keys(count: u32) -> Vec<Vec<u8>> {
        (0..count).map(|i| internal_key(format!("key{i:05}").as_bytes(), 1, 1)).collect()
    }

    fn block_of(keys: &[Vec<u8>], interval: usize) -> Arc<Block> {
        let mut builder = BlockBuilder::new(interval);
        for (index, key) in keys.iter().enumerate() {
            builder.add(key, format!("value{index}").as_bytes());
        }
        Arc::new(Block::new(builder.finish()).unwrap())
    }

    #[test]
    fn a_dropped_block_leaves_its_bytes_to_its_thread() {
        // On a thread of its own, so its stock of buffers is this test's alone.
        std::thread::spawn(|| {
            let mut builder = BlockBuilder::new(4);
            for key in keys(10) {
                builder.add(&key, b"value");
            }
            let bytes = builder.finish();
            let (address, capacity) = (bytes.as_ptr(), bytes.capacity());
            let block = Arc::new(Block::new(bytes).unwrap());
            let cursor = BlockCursor::new(Arc::clone(&block));
            drop(block);
            assert!(buffers::kept_capacities().is_empty(), "a cursor still holds the block");
            drop(cursor);
            assert_eq!(buffers::kept_capacities(), [capacity]);
            let again = buffers::take(capacity);
            assert_eq!(again.as_ptr(), address);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn forward_and_backward_walks_see_every_entry() {
        for interval in [1, 3, 16] {
            let keys = keys(50);
            let mut cursor = BlockCursor::new(block_of(&keys, interval));
            cursor.seek_to_first().unwrap();
            for (index, key) in keys.iter().enumerate() {
                assert!(cursor.valid());
                assert_eq!(cursor.key(), &key[..]);
                assert_eq!(cursor.value(), format!("value{index}").as_bytes());
                cursor.advance().unwrap();
            }
            assert!(!cursor.valid());
            cursor.seek_to_last().unwrap();
            for key in keys.iter().rev() {
                assert_eq!(cursor.key(), &key[..], "interval {interval}");
                cursor.step_back().unwrap();
            }
            assert!(!cursor.valid());
        }
    }

    #[test]
    fn seeks_land_on_the_right_entries() {
        let keys = keys(40);
        let mut cursor = BlockCursor::new(block_of(&keys, 16));
        for (index, key) in keys.iter().enumerate() {
            cursor.seek_ge(key).unwrap();
            assert_eq!(cursor.key(), &key[..]);
            cursor.seek_le(key).unwrap();
            assert_eq!(cursor.key(), &key[..]);
            // A target between key i and key i+1 ("key00007" < "key00007x" < "key00008").
            let between = internal_key(format!("key{index:05}x").as_bytes(), 1, KIND_FOR_SEEK);
            cursor.seek_ge(&between).unwrap();
            assert_eq!(cursor.valid(), index + 1 < keys.len());
            if cursor.valid() {
                assert_eq!(cursor.key(), &keys[index + 1][..]);
            }
            cursor.seek_le(&between).unwrap();
            assert_eq!(cursor.key(), &key[..]);
        }
        cursor.seek_le(&internal_key(b"a", 1, 1)).unwrap();
        assert!(!cursor.valid());
        cursor.seek_ge(&internal_key(b"z", 1, 1)).unwrap();
        assert!(!cursor.valid());
    }

    #[test]
    fn empty_block_is_valid_and_has_no_entries() {
        let block = Arc::new(Block::new(BlockBuilder::new(16).finish()).unwrap());
        let mut cursor = BlockCursor::new(block);
        cursor.seek_to_first().unwrap();
        assert!(!cursor.valid());
        cursor.seek_ge(b"anything").unwrap();
        assert!(!cursor.valid());
    }

    #[test]
    fn damaged_blocks_give_errors_not_panics() {
        let keys = keys(30);
        let mut builder = BlockBuilder::new(4);
        for key in &keys {
            builder.add(key, b"v");
        }
        let good = builder.finish();
        assert!(Block::new(vec![1, 2]).is_err());
        assert!(Block::new(vec![0xff, 0xff, 0xff, 0x0f]).is_err());
        // Flip every byte in turn: each block either fails validation or every walk ends
        // without a panic.
        for index in 0..good.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bytes = good.clone();
                bytes[index] ^= mask;
                let Ok(block) = Block::new(bytes) else { continue };
                let mut cursor = BlockCursor::new(Arc::new(block));
                let mut steps = 0;
                if cursor.seek_to_first().is_ok() {
                    while cursor.valid() && steps < 100 && cursor.advance().is_ok() {
                        steps += 1;
                    }
                }
                if cursor.seek_to_last().is_ok() {
                    while cursor.valid() && steps < 200 && cursor.step_back().is_ok() {
                        steps += 1;
                    }
                }
                let _ = cursor.seek_ge(&keys[10]);
                let _ = cursor.seek_le(&keys[20]);
            }
        }
    }
}
