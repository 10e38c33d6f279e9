//! `SstReader`: an open SST, and `SstCursor`, an `InternalIterator` over its entries in either
//! direction.
//!
//! The index and the bloom filter are either pinned (decoded at open and held as long as the
//! reader lives) or, with `Options::pin_index_and_filter` off, looked up in the block cache on
//! every use and read again from the file when it has evicted them, so their memory is bounded
//! by the cache. Without a block cache, unpinned index and filter are read for every lookup.
//! A cursor holds the index it loaded at its first seek until it is dropped.
//!
//! Thread safety: `SstReader` is immutable after `open` and shared (`Arc`) by every read and
//! iterator that uses the file; reads are positional, so any number may run at once.
//!
//! Invariants:
//! 1. `open` validates the footer, the index (`SstIndex::decode`), the filter and the
//!    properties, pinned or not; a file that fails is corrupt. An unpinned index or filter is
//!    validated again each time it is read from the file.
//! 2. Every data block is checksummed, then decompressed, when read from the file; an error
//!    names the file and the offset. The block cache holds blocks decompressed.

use super::block::{Block, BlockCursor};
use super::bloom::{BloomFilter, FilterLayout};
use super::format::{read_block, BlockHandle, Footer};
use super::index::SstIndex;
use super::properties::SstProperties;
use crate::cache::{BlockCache, CachedBlock};
use crate::found::FoundValue;
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

/// Where a reader finds its index or filter.
#[derive(Debug)]
enum Part<T> {
    /// Held by the reader.
    Pinned(Arc<T>),
    /// In the block cache under this block's offset, or else in the file.
    Cached(BlockHandle),
}

/// An open SST.
#[derive(Debug)]
pub struct SstReader {
    file: Arc<dyn ReadableFile>,
    path: PathBuf,
    index: Part<SstIndex>,
    /// `None` when the file has no filter.
    filter: Option<Part<BloomFilter>>,
    /// End of the data region (the filter block's offset).
    data_end: u64,
    /// The filter's layout, from the file's format version.
    filter_layout: FilterLayout,
    properties: SstProperties,
    cache: Option<Arc<BlockCache>>,
    /// The file's part of block cache keys, unique in the process. It belongs to the file, not
    /// to this reader: a reader opened again for the same file finds the blocks cached before.
    cache_id: u64,
}

impl SstReader {
    /// Opens and validates the SST at `path`; its blocks go through `cache`, if given, under
    /// `cache_id` (unique per file in the process: see `table_cache::next_cache_id`). With
    /// `pin_index_and_filter` the reader holds its index and filter; without, it fetches them
    /// from the cache (and puts them there now, if they are not already). With `mmap_reads`
    /// the file is read through a memory map where `fs` can make one (`Fs::open_mapped`).
    pub fn open(
        fs: &dyn Fs,
        path: &Path,
        cache: Option<&Arc<BlockCache>>,
        cache_id: u64,
        pin_index_and_filter: bool,
        mmap_reads: bool,
    ) -> Result<SstReader> {
        let file = if mmap_reads { fs.open_mapped(path) } else { fs.open(path) };
        let file = file.map_err(|error| Error::io(format!("open {}", path.display()), error))?;
        let footer = Footer::read(file.as_ref(), path)?;
        let properties_bytes = read_block(file.as_ref(), path, footer.properties)?;
        let properties = SstProperties::decode(&properties_bytes)
            .ok_or_else(|| Error::corruption(path, "malformed properties block"))?;
        let mut reader = SstReader {
            file,
            path: path.to_path_buf(),
            index: Part::Cached(footer.index),
            filter: (footer.filter.size > 0).then_some(Part::Cached(footer.filter)),
            data_end: footer.filter.offset,
            filter_layout: FilterLayout::of_version(footer.version),
            properties,
            cache: cache.cloned(),
            cache_id,
        };
        // Both are validated now, pinned or not (invariant 1).
        if pin_index_and_filter {
            if reader.filter.is_some() {
                reader.filter = Some(Part::Pinned(reader.read_filter(footer.filter)?));
            }
            reader.index = Part::Pinned(reader.read_index(footer.index)?);
        } else {
            reader.filter()?;
            reader.index()?;
        }
        Ok(reader)
    }

    /// Size of the file, in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.file.size_bytes()
    }

    /// Bytes of the index and filter this reader holds itself (pinned), outside the block
    /// cache; 0 for parts it fetches from the cache.
    pub fn pinned_bytes(&self) -> u64 {
        let index = match &self.index {
            Part::Pinned(index) => index.size_bytes(),
            Part::Cached(_) => 0,
        };
        let filter = match &self.filter {
            Some(Part::Pinned(filter)) => filter.size_bytes(),
            _ => 0,
        };
        (index + filter) as u64
    }

    /// True when the file is read through a memory map (`Options::mmap_reads`, and the map
    /// could be made), false when it is read with `pread`.
    pub fn is_mapped(&self) -> bool {
        self.file.mapped().is_some()
    }

    /// The handles of the data blocks, in file order.
    #[cfg(test)]
    pub(crate) fn data_block_handles(&self) -> Vec<BlockHandle> {
        let index = self.index().expect("index");
        (0..index.len()).filter_map(|position| index.handle(position)).collect()
    }

    /// How many of the file's data blocks end with a hash index, and how many it has.
    #[cfg(test)]
    pub(crate) fn data_blocks_with_hash_index(&self) -> (usize, usize) {
        let handles = self.data_block_handles();
        let indexed = handles
            .iter()
            .filter(|&&handle| self.read_data_block(handle, false).unwrap().has_hash_index())
            .count();
        (indexed, handles.len())
    }

    /// True if the file has a bloom filter.
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// False if the bloom filter rules `user_key` out (always true without a filter).
    #[cfg(test)]
    pub fn may_contain(&self, user_key: &[u8]) -> Result<bool> {
        Ok(self.filter()?.is_none_or(|filter| filter.may_contain(user_key)))
    }

    /// `may_contain` for a key already hashed with `hash64`.
    pub fn may_contain_hash(&self, hash: u64) -> Result<bool> {
        Ok(self.filter()?.is_none_or(|filter| filter.may_contain_hash(hash)))
    }

    fn cached(&self, handle: BlockHandle) -> Option<CachedBlock> {
        self.cache.as_ref()?.get((self.cache_id, handle.offset))
    }

    fn remember(&self, handle: BlockHandle, block: CachedBlock) {
        if let Some(cache) = &self.cache {
            cache.insert((self.cache_id, handle.offset), block);
        }
    }

    /// The filter, if the file has one: pinned, from the cache, or read from the file.
    fn filter(&self) -> Result<Option<Arc<BloomFilter>>> {
        let handle = match &self.filter {
            None => return Ok(None),
            Some(Part::Pinned(filter)) => return Ok(Some(Arc::clone(filter))),
            Some(Part::Cached(handle)) => *handle,
        };
        if let Some(CachedBlock::Filter(filter)) = self.cached(handle) {
            return Ok(Some(filter));
        }
        let filter = self.read_filter(handle)?;
        self.remember(handle, CachedBlock::Filter(Arc::clone(&filter)));
        Ok(Some(filter))
    }

    /// Reads and validates the filter block at `handle`.
    fn read_filter(&self, handle: BlockHandle) -> Result<Arc<BloomFilter>> {
        let bytes = read_block(self.file.as_ref(), &self.path, handle)?;
        let filter = BloomFilter::new(bytes, self.filter_layout)
            .map_err(|detail| Error::corruption(&self.path, detail))?;
        Ok(Arc::new(filter))
    }

    /// The index: pinned, from the cache, or read from the file.
    fn index(&self) -> Result<Arc<SstIndex>> {
        let handle = match &self.index {
            Part::Pinned(index) => return Ok(Arc::clone(index)),
            Part::Cached(handle) => *handle,
        };
        if let Some(CachedBlock::Index(index)) = self.cached(handle) {
            return Ok(index);
        }
        let index = self.read_index(handle)?;
        self.remember(handle, CachedBlock::Index(Arc::clone(&index)));
        Ok(index)
    }

    /// Reads and validates the index block at `handle`.
    fn read_index(&self, handle: BlockHandle) -> Result<Arc<SstIndex>> {
        let bytes = read_block(self.file.as_ref(), &self.path, handle)?;
        let count = self.properties.data_block_count;
        Ok(Arc::new(SstIndex::decode(&self.path, bytes, self.data_end, count)?))
    }

    /// The data block at `handle`: from the cache, or read from the file (and put in the
    /// cache when `fill_cache`).
    fn read_data_block(&self, handle: BlockHandle, fill_cache: bool) -> Result<Arc<Block>> {
        if let Some(CachedBlock::Data(block)) = self.cached(handle) {
            return Ok(block);
        }
        let bytes = read_block(self.file.as_ref(), &self.path, handle)?;
        let block = Block::new(bytes)
            .map(Arc::new)
            .map_err(|detail| self.block_error(handle.offset, detail))?;
        if fill_cache {
            self.remember(handle, CachedBlock::Data(Arc::clone(&block)));
        }
        Ok(block)
    }

    fn block_error(&self, offset: u64, detail: &str) -> Error {
        Error::corruption(&self.path, format!("data block at offset {offset}: {detail}"))
    }

    /// The newest version of `user_key` with seqno `<= seqno` in this file. Does not consult
    /// the bloom filter (the caller does, to count skips).
    #[cfg(test)]
    pub fn get(&self, user_key: &[u8], seqno: u64) -> Result<Lookup> {
        self.get_hashed(user_key, super::hash64(user_key), seqno)
    }

    /// `get` for a key already hashed: `hash` is `hash64(user_key)`, which the block's hash
    /// index (when the block has one) uses too.
    pub fn get_hashed(&self, user_key: &[u8], hash: u64, seqno: u64) -> Result<Lookup> {
        let target = internal_key(user_key, seqno, KIND_FOR_SEEK);
        let index = self.index()?;
        let Some(handle) = index.handle(index.block_for(&target)) else {
            return Ok(Lookup::Absent);
        };
        let mut cursor = BlockCursor::new(self.read_data_block(handle, true)?);
        let may_hold = cursor
            .seek_for_get(&target, hash)
            .map_err(|detail| self.block_error(handle.offset, detail))?;
        if !may_hold {
            return Ok(Lookup::Absent);
        }
        if !cursor.valid() {
            // The index promised a key >= target in this block.
            return Err(
                self.block_error(handle.offset, "block ends before the key its index entry names")
            );
        }
        let parsed = parse_internal_key(cursor.key())
            .ok_or_else(|| self.block_error(handle.offset, "malformed internal key"))?;
        if parsed.user_key != user_key {
            return Ok(Lookup::Absent);
        }
        // The value stays in its block (shared with the cache): a reader that only looks at
        // it need not copy it.
        let (block, range) = cursor.value_in_block();
        Ok(match parsed.kind {
            ValueKind::Put => Lookup::Found(FoundValue::InBlock(block, range), parsed.seqno),
            ValueKind::Delete => Lookup::Deleted(parsed.seqno),
            ValueKind::PutExpiring => {
                Lookup::Expiring(FoundValue::InBlock(block, range), parsed.seqno)
            }
        })
    }

    /// An iterator over the file in `direction`; the data blocks it reads are put in the
    /// block cache.
    pub fn cursor(self: &Arc<SstReader>, direction: Direction) -> SstCursor {
        self.cursor_with(direction, true)
    }

    /// An iterator over the file in `direction` that uses blocks already in the block cache
    /// but puts none there: for compaction, which reads each block once and would otherwise
    /// evict what readers use (`verify` reads its blocks the same way).
    pub fn cursor_uncached(self: &Arc<SstReader>, direction: Direction) -> SstCursor {
        self.cursor_with(direction, false)
    }

    fn cursor_with(self: &Arc<SstReader>, direction: Direction, fill_cache: bool) -> SstCursor {
        SstCursor {
            reader: Arc::clone(self),
            index: None,
            direction,
            fill_cache,
            position: 0,
            offset: 0,
            block: None,
        }
    }

    /// Reads every block and checks every checksum, the key order and the data blocks' hash
    /// indexes; returns the entry count. Each data block is read once (through the block
    /// cache when it holds it, without filling it), its entries checked, then its index.
    pub fn verify(self: &Arc<SstReader>) -> Result<u64> {
        let index = self.index()?;
        let mut previous: Vec<u8> = Vec::new();
        let mut count = 0u64;
        for handle in (0..index.len()).filter_map(|position| index.handle(position)) {
            let block_error = |detail| self.block_error(handle.offset, detail);
            let mut cursor = BlockCursor::new(self.read_data_block(handle, false)?);
            cursor.seek_to_first().map_err(block_error)?;
            while cursor.valid() {
                if parse_internal_key(cursor.key()).is_none() {
                    return Err(Error::corruption(&self.path, "malformed internal key"));
                }
                if count > 0 && compare_internal_keys(&previous, cursor.key()) != Ordering::Less {
                    return Err(Error::corruption(&self.path, "keys out of order"));
                }
                previous.clear();
                previous.extend_from_slice(cursor.key());
                count += 1;
                cursor.advance().map_err(block_error)?;
            }
            // The hash index, which lookups trust to rule keys out.
            cursor.check_hash_index().map_err(block_error)?;
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

/// An `InternalIterator` over one SST.
#[derive(Debug)]
pub struct SstCursor {
    reader: Arc<SstReader>,
    /// The index, loaded at the first seek and held until the cursor drops.
    index: Option<Arc<SstIndex>>,
    direction: Direction,
    /// Whether blocks read from the file are put in the block cache.
    fill_cache: bool,
    /// Index of the block `block` holds.
    position: usize,
    /// That block's offset, for errors.
    offset: u64,
    block: Option<BlockCursor>,
}

impl SstCursor {
    fn index(&mut self) -> Result<Arc<SstIndex>> {
        if let Some(index) = &self.index {
            return Ok(Arc::clone(index));
        }
        let index = self.reader.index()?;
        self.index = Some(Arc::clone(&index));
        Ok(index)
    }

    /// Loads block `position` (which `index` has).
    fn load(&mut self, index: &SstIndex, position: usize) -> Result<&mut BlockCursor> {
        self.position = position;
        self.block = None;
        let handle = index.handle(position).unwrap_or_default();
        self.offset = handle.offset;
        let block = self.reader.read_data_block(handle, self.fill_cache)?;
        Ok(self.block.insert(BlockCursor::new(block)))
    }

    fn block_result(&self, result: std::result::Result<(), &'static str>) -> Result<()> {
        result.map_err(|detail| self.reader.block_error(self.offset, detail))
    }

    /// Moves to following blocks while the current one is exhausted.
    fn skip_exhausted_blocks(&mut self) -> Result<()> {
        // The common case, a step inside a block, clones nothing.
        if self.block.as_ref().is_none_or(BlockCursor::valid) {
            return Ok(());
        }
        let Some(index) = self.index.clone() else { return Ok(()) };
        while self.block.as_ref().is_some_and(|block| !block.valid()) {
            let next = match self.direction {
                Direction::Forward => self.position + 1,
                Direction::Reverse => match self.position.checked_sub(1) {
                    Some(previous) => previous,
                    None => break,
                },
            };
            if next >= index.len() {
                break;
            }
            let direction = self.direction;
            let block = self.load(&index, next)?;
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
        let direction = self.direction;
        let result = (|| {
            let index = self.index()?;
            let (count, position) = (index.len(), index.block_for(target));
            match direction {
                Direction::Forward => {
                    if position == count {
                        self.block = None;
                        return Ok(());
                    }
                    let result = self.load(&index, position)?.seek_ge(target);
                    self.block_result(result)?;
                }
                Direction::Reverse => {
                    if count == 0 {
                        self.block = None;
                        return Ok(());
                    }
                    let result = self.load(&index, position.min(count - 1))?.seek_le(target);
                    self.block_result(result)?;
                }
            }
            self.skip_exhausted_blocks()
        })();
        result.map_err(|error| self.fail(error))
    }

    fn seek_to_start(&mut self) -> Result<()> {
        let direction = self.direction;
        let result = (|| {
            let index = self.index()?;
            let count = index.len();
            if count == 0 {
                self.block = None;
                return Ok(());
            }
            let result = match direction {
                Direction::Forward => self.load(&index, 0)?.seek_to_first(),
                Direction::Reverse => self.load(&index, count - 1)?.seek_to_last(),
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
