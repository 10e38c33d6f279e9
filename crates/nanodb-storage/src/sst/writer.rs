//! `SstWriter`: writes a sorted run of internal entries to a new SST file.
//!
//! Data blocks and the index block are compressed with `SstWriterOptions::compression` when it
//! saves at least an eighth of a block; the filter block (random bits) and the properties block
//! are always raw.
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
use super::bloom::{BloomBuilder, FilterLayout};
use super::compression::BlockCompressor;
use super::format::{encode_block, BlockHandle, Footer, BLOCK_HANDLE_LEN, SST_FORMAT_VERSION};
use super::properties::SstProperties;
use crate::fs::{Fs, WritableFile};
use crate::key::{compare_internal_keys, parse_internal_key, user_key_of};
use crate::options::Compression;
use crate::rate_limit::{IoPriority, RateLimiter};
use crate::{Error, Result};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most entries between restart points in data blocks. Part of the written format's shape,
/// not of its definition: readers accept any interval.
pub const DATA_BLOCK_RESTART_INTERVAL: usize = 16;
/// Bytes of entries after which a data block's next entry is a restart point, even before
/// `DATA_BLOCK_RESTART_INTERVAL` entries: entries of this size or more (documents) are each a
/// restart point, which the block's hash index can name (a lookup then decodes one entry, not
/// the ones before it). Also only the writer's choice.
pub const DATA_BLOCK_RESTART_BYTES: usize = 256;
/// The first format version whose data blocks may have a hash index.
const HASH_INDEX_FORMAT_VERSION: u32 = 4;

/// The builder of the data blocks of a file of format `version`.
fn data_block_builder(version: u32) -> BlockBuilder {
    let hash_index = version >= HASH_INDEX_FORMAT_VERSION;
    BlockBuilder::for_data(DATA_BLOCK_RESTART_INTERVAL, DATA_BLOCK_RESTART_BYTES, hash_index)
}
/// Bytes buffered before they are appended to the file.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// How to shape the SST.
#[derive(Debug, Clone, Copy)]
pub struct SstWriterOptions {
    /// Target size of a data block before it is closed, in bytes.
    pub block_size_bytes: usize,
    /// Bloom filter bits per key; 0 writes no filter.
    pub bloom_bits_per_key: u32,
    /// Codec for the data and index blocks.
    pub compression: Compression,
}

/// Sizes of the blocks a writer may compress (data and index blocks), in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressionBytes {
    /// Their contents, before compression.
    pub bytes_in: u64,
    /// What was stored for them: compressed, or raw when compression did not pay (so equal to
    /// `bytes_in` with `Compression::None`).
    pub bytes_out: u64,
}

impl CompressionBytes {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: CompressionBytes) {
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
    }
}

/// Most distinct user keys a compaction writes into one output file while the bloom filter
/// is on. The writer keeps an 8-byte hash per key until the filter is built at `finish`, so
/// this bounds that buffer at 1 MiB: without it, a 64 MiB output of small entries (index
/// entries of a few dozen bytes) held 2 million hashes, 16 MiB, most of a small server's peak
/// memory; at 2^19 keys (4 MiB) `nanodb serve` peaked at 58 MiB under creates (two runs),
/// at 2^17 at 51 and 53 MiB, with 10 to 18% more creates per second (issue 7,
/// docs/benchmarks.md). Outputs of entries over about 510 bytes reach `sst_size_bytes_target`
/// first; smaller entries make more, smaller files (about 16 MB at 100-byte values). A flush
/// is not cut: its buffer holds one hash per distinct key of the memtable it writes (about
/// 450,000 for a full 64 MiB memtable of 100-byte values: 3.5 MiB).
pub const FILTER_KEYS_PER_OUTPUT_MAX: u64 = 1 << 17;

/// Writes one SST.
pub struct SstWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    options: SstWriterOptions,
    compressor: BlockCompressor,
    compression_bytes: CompressionBytes,
    data: BlockBuilder,
    index: BlockBuilder,
    bloom: BloomBuilder,
    buffer: Vec<u8>,
    offset: u64,
    last_key: Vec<u8>,
    properties: SstProperties,
    rate_limit: Option<(Arc<RateLimiter>, IoPriority)>,
    /// The format version written: `SST_FORMAT_VERSION`, or an older one in tests.
    format_version: u32,
}

impl SstWriter {
    /// Creates the file at `path`.
    pub fn create(fs: &dyn Fs, path: &Path, options: SstWriterOptions) -> Result<SstWriter> {
        let compressor = BlockCompressor::new(options.compression)?;
        let file = fs
            .create(path)
            .map_err(|error| Error::io(format!("create {}", path.display()), error))?;
        Ok(SstWriter {
            file,
            path: path.to_path_buf(),
            options,
            compressor,
            compression_bytes: CompressionBytes::default(),
            data: data_block_builder(SST_FORMAT_VERSION),
            index: BlockBuilder::new(1),
            bloom: BloomBuilder::new(),
            buffer: Vec::with_capacity(WRITE_BUFFER_BYTES + options.block_size_bytes * 2),
            offset: 0,
            last_key: Vec::new(),
            properties: SstProperties::default(),
            rate_limit: None,
            format_version: SST_FORMAT_VERSION,
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
        let filtered = self.options.bloom_bits_per_key > 0;
        if filtered && (first || user_key_of(&self.last_key) != user_key) {
            self.bloom.add_key(user_key);
        }
        if let Some(parsed) = parsed {
            self.properties.note_entry(key, parsed.seqno, value.len());
            if parsed.kind == crate::key::ValueKind::PutExpiring {
                self.properties.note_expiry(crate::ttl::expiry_of(value));
            }
        }
        self.data.add(key, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        if self.data.size_estimate_bytes() >= self.options.block_size_bytes {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Records that every range tombstone up to `seqno` was applied to the entries added.
    pub fn set_range_del_applied_seqno(&mut self, seqno: u64) {
        self.properties.range_del_applied_seqno = seqno;
    }

    /// Bytes the file would have if finished now (without filter and index), for splitting
    /// compaction outputs.
    pub fn size_bytes_estimate(&self) -> u64 {
        self.offset + self.data.size_estimate_bytes() as u64
    }

    /// Distinct user keys whose hashes wait for the bloom filter (0 when it is off).
    pub fn filter_key_count(&self) -> u64 {
        self.bloom.key_count() as u64
    }

    /// Appends one block, compressed if `compress` and the codec pays.
    fn write_block(&mut self, contents: &[u8], compress: bool) -> Result<BlockHandle> {
        let before = self.buffer.len();
        let compressor = compress.then_some(&mut self.compressor);
        let size = encode_block(&mut self.buffer, contents, compressor);
        if compress {
            self.compression_bytes
                .add(CompressionBytes { bytes_in: contents.len() as u64, bytes_out: size as u64 });
        }
        let handle = BlockHandle { offset: self.offset, size: size as u32 };
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
        let handle = self.write_block(&contents, true)?;
        let mut encoded = Vec::with_capacity(BLOCK_HANDLE_LEN);
        handle.encode(&mut encoded);
        self.index.add(&last_key, &encoded);
        self.properties.data_block_count += 1;
        Ok(())
    }

    /// Writes format `version` (2 or `SST_FORMAT_VERSION`), the file an older build wrote:
    /// tests read such files back.
    #[cfg(test)]
    pub(crate) fn with_format_version(mut self, version: u32) -> SstWriter {
        assert!((2..=SST_FORMAT_VERSION).contains(&version), "version {version}");
        assert!(self.data.is_empty(), "the version is chosen before the first entry");
        self.format_version = version;
        self.data = data_block_builder(version);
        self
    }

    /// Entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.properties.entry_count
    }

    /// Writes the filter, index, properties and footer, syncs the file and returns what it
    /// holds and how well its blocks compressed.
    pub fn finish(mut self) -> Result<(SstProperties, CompressionBytes)> {
        self.finish_data_block()?;
        // Keys are collected only while the filter is on (`add`).
        let filter_contents = if self.bloom.key_count() > 0 {
            self.bloom.finish(
                self.options.bloom_bits_per_key,
                FilterLayout::of_version(self.format_version),
            )
        } else {
            Vec::new()
        };
        // Bloom filter bits look random: compressing them would waste the writer's time.
        let filter = self.write_block(&filter_contents, false)?;
        let index_contents = self.index.finish();
        let index = self.write_block(&index_contents, true)?;
        // Kept raw so tools can read a file's summary without a decompressor.
        let properties_contents = self.properties.encode();
        let properties = self.write_block(&properties_contents, false)?;
        self.buffer.extend_from_slice(
            &Footer { index, filter, properties, version: self.format_version }.encode(),
        );
        self.drain_buffer()?;
        self.file
            .sync()
            .map_err(|error| Error::io(format!("sync {}", self.path.display()), error))?;
        Ok((self.properties, self.compression_bytes))
    }
}
