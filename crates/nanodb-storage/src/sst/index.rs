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

/// Bytes charged per entry on top of its key: the `Vec` header and the handle.
const ENTRY_OVERHEAD_BYTES: usize = std::mem::size_of::<IndexEntry>();

#[derive(Debug)]
struct IndexEntry {
    last_key: Vec<u8>,
    handle: BlockHandle,
}

/// The index of one SST.
#[derive(Debug)]
pub struct SstIndex {
    entries: Vec<IndexEntry>,
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
        let mut entries: Vec<IndexEntry> = Vec::new();
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
            if let Some(last) = entries.last() {
                if compare_internal_keys(&last.last_key, cursor.key()) != Ordering::Less {
                    return Err(corrupt("keys out of order"));
                }
            }
            size_bytes += cursor.key().len() + ENTRY_OVERHEAD_BYTES;
            entries.push(IndexEntry { last_key: cursor.key().to_vec(), handle });
            cursor.advance().map_err(corrupt)?;
        }
        if entries.len() as u64 != data_block_count {
            return Err(Error::corruption(
                path,
                "index and properties disagree on the block count",
            ));
        }
        Ok(SstIndex { entries, size_bytes })
    }

    /// Number of data blocks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The handle of data block `position`, if there is one.
    pub fn handle(&self, position: usize) -> Option<BlockHandle> {
        self.entries.get(position).map(|entry| entry.handle)
    }

    /// Position of the first block whose last key is `>= target` (`len()` if none).
    pub fn block_for(&self, target: &[u8]) -> usize {
        self.entries.partition_point(|entry| {
            compare_internal_keys(&entry.last_key, target) == Ordering::Less
        })
    }

    /// Memory the decoded index holds, in bytes (its block cache charge).
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }
}
