//! `SstWriter`: writes a sorted run of internal entries to a new SST file.
//!
//! Thread safety: one writer per file, used by one thread (a flush or a compaction).
//!
//! Invariants:
//! 1. Entries are added in strictly increasing internal-key order (asserted: the callers feed
//!    it from sorted sources, so a violation is a bug, not bad input).
//! 2. `finish` syncs the file before returning; the caller then syncs the directory and only
//!    after that records the file in the manifest.
//! 3. With a rate limiter, every byte appended was first requested from it, in chunks of
//!    `RateLimiter::chunk_bytes`.

use super::block_builder::BlockBuilder;
use super::bloom::BloomBuilder;
use super::format::{encode_block, BlockHandle, Footer, BLOCK_HANDLE_LEN};
use super::properties::SstProperties;
use crate::fs::{Fs, WritableFile};
use crate::key::{compare_internal_keys, parse_internal_key, user_key_of};
use crate::rate_limit::{IoPriority, RateLimiter};
use crate::{Error, Result};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Entries between restart points in data blocks. Part of the written format's shape, not of
/// its definition: readers accept any interval.
pub const DATA_BLOCK_RESTART_INTERVAL: usize = 16;
/// Bytes buffered before they are appended to the file.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// How to shape the SST.
#[derive(Debug, Clone, Copy)]
pub struct SstWriterOptions {
    /// Target size of a data block before it is closed, in bytes.
    pub block_size_bytes: usize,
    /// Bloom filter bits per key; 0 writes no filter.
    pub bloom_bits_per_key: u32,
}

/// Writes one SST.
pub struct SstWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    options: SstWriterOptions,
    data: BlockBuilder,
    index: BlockBuilder,
    bloom: BloomBuilder,
    buffer: Vec<u8>,
    offset: u64,
    last_key: Vec<u8>,
    properties: SstProperties,
    rate_limit: Option<(Arc<RateLimiter>, IoPriority)>,
}

impl SstWriter {
    /// Creates the file at `path`.
    pub fn create(fs: &dyn Fs, path: &Path, options: SstWriterOptions) -> Result<SstWriter> {
        let file = fs
            .create(path)
            .map_err(|error| Error::io(format!("create {}", path.display()), error))?;
        Ok(SstWriter {
            file,
            path: path.to_path_buf(),
            options,
            data: BlockBuilder::new(DATA_BLOCK_RESTART_INTERVAL),
            index: BlockBuilder::new(1),
            bloom: BloomBuilder::new(),
            buffer: Vec::with_capacity(WRITE_BUFFER_BYTES + options.block_size_bytes * 2),
            offset: 0,
            last_key: Vec::new(),
            properties: SstProperties::default(),
            rate_limit: None,
        })
    }

    /// Paces every append through `limiter` at `priority` (no limit when `None`).
    pub fn rate_limited(
        mut self,
        limiter: Option<&Arc<RateLimiter>>,
        priority: IoPriority,
    ) -> SstWriter {
        self.rate_limit = limiter.map(|limiter| (Arc::clone(limiter), priority));
        self
    }

    /// Adds one entry. `key` is an encoded internal key greater than the previous one.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let parsed = parse_internal_key(key);
        assert!(parsed.is_some(), "SstWriter::add given a malformed internal key");
        let first = self.properties.entry_count == 0;
        if !first {
            assert_eq!(
                compare_internal_keys(&self.last_key, key),
                Ordering::Less,
                "SstWriter::add keys out of order"
            );
        }
        let user_key = user_key_of(key);
        if first || user_key_of(&self.last_key) != user_key {
            self.bloom.add_key(user_key);
        }
        if let Some(parsed) = parsed {
            self.properties.note_entry(key, parsed.seqno, value.len());
        }
        self.data.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        if self.data.size_estimate_bytes() >= self.options.block_size_bytes {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Bytes the file would have if finished now (without filter and index), for splitting
    /// compaction outputs.
    pub fn size_bytes_estimate(&self) -> u64 {
        self.offset + self.data.size_estimate_bytes() as u64
    }

    fn write_block(&mut self, contents: &[u8]) -> Result<BlockHandle> {
        let handle = BlockHandle { offset: self.offset, size: contents.len() as u32 };
        let before = self.buffer.len();
        encode_block(&mut self.buffer, contents);
        self.offset += (self.buffer.len() - before) as u64;
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.drain_buffer()?;
        }
        Ok(handle)
    }

    fn drain_buffer(&mut self) -> Result<()> {
        let append_error = |error| Error::io(format!("append to {}", self.path.display()), error);
        match &self.rate_limit {
            None => self.file.append(&self.buffer).map_err(append_error)?,
            Some((limiter, priority)) => {
                for chunk in self.buffer.chunks(limiter.chunk_bytes()) {
                    limiter.request(chunk.len(), *priority);
                    self.file.append(chunk).map_err(append_error)?;
                }
            }
        }
        self.buffer.clear();
        Ok(())
    }

    fn finish_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last_key = self.data.last_key().to_vec();
        let contents = self.data.finish();
        let handle = self.write_block(&contents)?;
        let mut encoded = Vec::with_capacity(BLOCK_HANDLE_LEN);
        handle.encode(&mut encoded);
        self.index.add(&last_key, &encoded);
        self.properties.data_block_count += 1;
        Ok(())
    }

    /// Writes the filter, index, properties and footer, syncs the file and returns what it holds.
    pub fn finish(mut self) -> Result<SstProperties> {
        self.finish_data_block()?;
        let filter_contents = if self.options.bloom_bits_per_key > 0 && self.bloom.key_count() > 0 {
            self.bloom.finish(self.options.bloom_bits_per_key)
        } else {
            Vec::new()
        };
        let filter = self.write_block(&filter_contents)?;
        let index_contents = self.index.finish();
        let index = self.write_block(&index_contents)?;
        let properties_contents = self.properties.encode();
        let properties = self.write_block(&properties_contents)?;
        self.buffer.extend_from_slice(&Footer { index, filter, properties }.encode());
        self.drain_buffer()?;
        self.file
            .sync()
            .map_err(|error| Error::io(format!("sync {}", self.path.display()), error))?;
        Ok(self.properties)
    }
}
