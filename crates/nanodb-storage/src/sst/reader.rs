//! `SstReader`: an open SST, with its index and bloom filter in memory, and `SstCursor`, an
//! `InternalIterator` over its entries in either direction.
//!
//! Thread safety: `SstReader` is immutable after `open` and shared (`Arc`) by every version,
//! read and iterator that uses the file; reads are positional, so any number may run at once.
//!
//! Invariants:
//! 1. `open` validates the footer, the index (keys parse and ascend, handles lie in the data
//!    region and ascend), the filter and the properties; a file that fails is corrupt.
//! 2. Every data block is checksummed when read; an error names the file and the offset.

use super::block::{Block, BlockCursor};
use super::bloom::BloomFilter;
use super::format::{read_block, BlockHandle, Footer};
use super::properties::SstProperties;
use crate::cache::BlockCache;
use crate::coding::Decoder;
use crate::fs::{Fs, ReadableFile};
use crate::iter::{Direction, InternalIterator};
use crate::key::{
    compare_internal_keys, internal_key, parse_internal_key, ValueKind, KIND_FOR_SEEK,
};
use crate::memtable::Lookup;
use crate::{Error, Result};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug)]
struct IndexEntry {
    last_key: Vec<u8>,
    handle: BlockHandle,
}

/// An open SST.
#[derive(Debug)]
pub struct SstReader {
    file: Arc<dyn ReadableFile>,
    path: PathBuf,
    index: Vec<IndexEntry>,
    filter: Option<BloomFilter>,
    properties: SstProperties,
    cache: Option<Arc<BlockCache>>,
    /// The file's part of block cache keys, unique in the process. It belongs to the file, not
    /// to this reader: a reader opened again for the same file finds the blocks cached before.
    cache_id: u64,
}

impl SstReader {
    /// Opens and validates the SST at `path`; its data blocks go through `cache`, if given,
    /// under `cache_id` (unique per file in the process: see `table_cache::next_cache_id`).
    pub fn open(
        fs: &dyn Fs,
        path: &Path,
        cache: Option<&Arc<BlockCache>>,
        cache_id: u64,
    ) -> Result<SstReader> {
        let file =
            fs.open(path).map_err(|error| Error::io(format!("open {}", path.display()), error))?;
        let footer = Footer::read(file.as_ref(), path)?;
        let properties_bytes = read_block(file.as_ref(), path, footer.properties)?;
        let properties = SstProperties::decode(&properties_bytes)
            .ok_or_else(|| Error::corruption(path, "malformed properties block"))?;
        let filter_bytes = read_block(file.as_ref(), path, footer.filter)?;
        let filter = if filter_bytes.is_empty() {
            None
        } else {
            Some(BloomFilter::new(filter_bytes).map_err(|detail| Error::corruption(path, detail))?)
        };
        let index_bytes = read_block(file.as_ref(), path, footer.index)?;
        let index = decode_index(path, index_bytes, footer.filter.offset)?;
        if index.len() as u64 != properties.data_block_count {
            return Err(Error::corruption(
                path,
                "index and properties disagree on the block count",
            ));
        }
        Ok(SstReader {
            file,
            path: path.to_path_buf(),
            index,
            filter,
            properties,
            cache: cache.cloned(),
            cache_id,
        })
    }

    /// Size of the file, in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.file.size_bytes()
    }

    /// False if the bloom filter rules `user_key` out (always true without a filter).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|filter| filter.may_contain(user_key))
    }

    /// True if the file has a bloom filter.
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    fn read_data_block(&self, position: usize) -> Result<Arc<Block>> {
        let handle = self.index[position].handle;
        let key = (self.cache_id, handle.offset);
        if let Some(block) = self.cache.as_ref().and_then(|cache| cache.get(key)) {
            return Ok(block);
        }
        let bytes = read_block(self.file.as_ref(), &self.path, handle)?;
        let block =
            Block::new(bytes).map(Arc::new).map_err(|detail| self.block_error(position, detail))?;
        if let Some(cache) = &self.cache {
            cache.insert(key, Arc::clone(&block));
        }
        Ok(block)
    }

    fn block_error(&self, position: usize, detail: &str) -> Error {
        let offset = self.index.get(position).map_or(0, |entry| entry.handle.offset);
        Error::corruption(&self.path, format!("data block at offset {offset}: {detail}"))
    }

    /// Index of the first block whose last key is `>= target`.
    fn block_for(&self, target: &[u8]) -> usize {
        self.index.partition_point(|entry| {
            compare_internal_keys(&entry.last_key, target) == Ordering::Less
        })
    }

    /// The newest version of `user_key` with seqno `<= seqno` in this file. Does not consult
    /// the bloom filter (the caller does, to count skips).
    pub fn get(&self, user_key: &[u8], seqno: u64) -> Result<Lookup> {
        let target = internal_key(user_key, seqno, KIND_FOR_SEEK);
        let position = self.block_for(&target);
        if position == self.index.len() {
            return Ok(Lookup::Absent);
        }
        let mut cursor = BlockCursor::new(self.read_data_block(position)?);
        cursor.seek_ge(&target).map_err(|detail| self.block_error(position, detail))?;
        if !cursor.valid() {
            // The index promised a key >= target in this block.
            return Err(
                self.block_error(position, "block ends before the key its index entry names")
            );
        }
        let parsed = parse_internal_key(cursor.key())
            .ok_or_else(|| self.block_error(position, "malformed internal key"))?;
        if parsed.user_key != user_key {
            return Ok(Lookup::Absent);
        }
        Ok(match parsed.kind {
            ValueKind::Put => Lookup::Found(cursor.value().to_vec()),
            ValueKind::Delete => Lookup::Deleted,
        })
    }

    /// An iterator over the file in `direction`.
    pub fn cursor(self: &Arc<SstReader>, direction: Direction) -> SstCursor {
        SstCursor { reader: Arc::clone(self), direction, position: 0, block: None }
    }

    /// Reads every block and checks every checksum and the key order; returns the entry count.
    pub fn verify(self: &Arc<SstReader>) -> Result<u64> {
        let mut cursor = self.cursor(Direction::Forward);
        cursor.seek_to_start()?;
        let mut previous: Option<Vec<u8>> = None;
        let mut count = 0u64;
        while cursor.valid() {
            if parse_internal_key(cursor.key()).is_none() {
                return Err(Error::corruption(&self.path, "malformed internal key"));
            }
            if let Some(previous) = &previous {
                if compare_internal_keys(previous, cursor.key()) != Ordering::Less {
                    return Err(Error::corruption(&self.path, "keys out of order"));
                }
            }
            previous = Some(cursor.key().to_vec());
            count += 1;
            cursor.next()?;
        }
        if count != self.properties.entry_count {
            return Err(Error::corruption(
                &self.path,
                format!("{count} entries found, properties say {}", self.properties.entry_count),
            ));
        }
        Ok(count)
    }
}

fn decode_index(path: &Path, bytes: Vec<u8>, data_end: u64) -> Result<Vec<IndexEntry>> {
    let block = Arc::new(
        Block::new(bytes)
            .map_err(|detail| Error::corruption(path, format!("index block: {detail}")))?,
    );
    let mut cursor = BlockCursor::new(block);
    let corrupt = |detail: &str| Error::corruption(path, format!("index block: {detail}"));
    cursor.seek_to_first().map_err(corrupt)?;
    let mut entries: Vec<IndexEntry> = Vec::new();
    let mut next_offset = 0u64;
    while cursor.valid() {
        let mut decoder = Decoder::new(cursor.value());
        let handle = BlockHandle::decode(&mut decoder)
            .filter(|_| decoder.is_empty())
            .ok_or_else(|| corrupt("malformed block handle"))?;
        if handle.offset != next_offset {
            return Err(corrupt("data blocks are not contiguous"));
        }
        next_offset =
            handle.offset + u64::from(handle.size) + super::format::BLOCK_TRAILER_LEN as u64;
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
        entries.push(IndexEntry { last_key: cursor.key().to_vec(), handle });
        cursor.advance().map_err(corrupt)?;
    }
    Ok(entries)
}

/// An `InternalIterator` over one SST.
#[derive(Debug)]
pub struct SstCursor {
    reader: Arc<SstReader>,
    direction: Direction,
    /// Index of the block `block` holds.
    position: usize,
    block: Option<BlockCursor>,
}

impl SstCursor {
    fn load(&mut self, position: usize) -> Result<&mut BlockCursor> {
        self.position = position;
        let block = self.reader.read_data_block(position)?;
        Ok(self.block.insert(BlockCursor::new(block)))
    }

    fn block_result(&self, result: std::result::Result<(), &'static str>) -> Result<()> {
        result.map_err(|detail| self.reader.block_error(self.position, detail))
    }

    /// Moves to following blocks while the current one is exhausted.
    fn skip_exhausted_blocks(&mut self) -> Result<()> {
        while self.block.as_ref().is_some_and(|block| !block.valid()) {
            let next = match self.direction {
                Direction::Forward => self.position + 1,
                Direction::Reverse => match self.position.checked_sub(1) {
                    Some(previous) => previous,
                    None => break,
                },
            };
            if next >= self.reader.index.len() {
                break;
            }
            let direction = self.direction;
            let block = self.load(next)?;
            let result = match direction {
                Direction::Forward => block.seek_to_first(),
                Direction::Reverse => block.seek_to_last(),
            };
            self.block_result(result)?;
        }
        Ok(())
    }

    fn fail(&mut self, error: Error) -> Error {
        self.block = None;
        error
    }
}

impl InternalIterator for SstCursor {
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let count = self.reader.index.len();
        let position = self.reader.block_for(target);
        let direction = self.direction;
        let result = (|| {
            match direction {
                Direction::Forward => {
                    if position == count {
                        self.block = None;
                        return Ok(());
                    }
                    let result = self.load(position)?.seek_ge(target);
                    self.block_result(result)?;
                }
                Direction::Reverse => {
                    if count == 0 {
                        self.block = None;
                        return Ok(());
                    }
                    let result = self.load(position.min(count - 1))?.seek_le(target);
                    self.block_result(result)?;
                }
            }
            self.skip_exhausted_blocks()
        })();
        result.map_err(|error| self.fail(error))
    }

    fn seek_to_start(&mut self) -> Result<()> {
        let count = self.reader.index.len();
        if count == 0 {
            self.block = None;
            return Ok(());
        }
        let direction = self.direction;
        let result = (|| {
            let result = match direction {
                Direction::Forward => self.load(0)?.seek_to_first(),
                Direction::Reverse => self.load(count - 1)?.seek_to_last(),
            };
            self.block_result(result)?;
            self.skip_exhausted_blocks()
        })();
        result.map_err(|error| self.fail(error))
    }

    fn next(&mut self) -> Result<()> {
        let Some(block) = self.block.as_mut() else { return Ok(()) };
        let result = match self.direction {
            Direction::Forward => block.advance(),
            Direction::Reverse => block.step_back(),
        };
        let result = self.block_result(result).and_then(|()| self.skip_exhausted_blocks());
        result.map_err(|error| self.fail(error))
    }

    fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(BlockCursor::valid)
    }

    fn key(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], BlockCursor::key)
    }

    fn value(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], BlockCursor::value)
    }
}
