//! `SstIndex`: the decoded index block of one SST, one entry per data block (its last key and
//! its handle), searched by binary search.
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

use super::block::{Block, BlockCursor};
use super::format::{BlockHandle, BLOCK_TRAILER_LEN};
use crate::coding::Decoder;
use crate::key::{compare_internal_keys, parse_internal_key};
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
    size_bytes: usize,
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
        Ok(SstIndex { keys, key_ends, handles, size_bytes })
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
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if compare_internal_keys(self.last_key(middle), target) == Ordering::Less {
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
