//! Sorted string tables: immutable files of sorted internal entries (docs/format/sst.md).
//!
//! `SstWriter` turns a sorted stream into a file of checksummed data blocks (prefix-compressed
//! keys with restart points), a bloom filter over user keys, an index block and a properties
//! block, closed by a fixed-size footer. Data and index blocks are compressed (LZ4 or zstd,
//! recorded per block) when that pays. `SstReader` opens one, keeping the index and filter in
//! memory (pinned) or in the block cache, and serves point reads and cursors; data blocks are
//! cached decompressed.
//!
//! Thread safety: see each module; readers are shared, writers are single-threaded.

mod block;
mod block_builder;
mod block_hash;
pub(crate) mod bloom;
mod buffers;
mod compression;
mod format;
mod index;
mod properties;
mod reader;
mod writer;

pub use block::Block;
#[cfg(feature = "bench-internals")]
pub use block::BlockCursor;
#[cfg(feature = "bench-internals")]
pub use block_builder::BlockBuilder;
pub use bloom::hash64;
#[cfg(feature = "bench-internals")]
pub use bloom::BloomBuilder;
pub use bloom::BloomFilter;
#[cfg(feature = "bench-internals")]
pub use bloom::FilterLayout;
pub use index::SstIndex;
pub use properties::SstProperties;
pub use reader::{SstCursor, SstReader};
pub use writer::{CompressionBytes, SstWriter, SstWriterOptions, FILTER_KEYS_PER_OUTPUT_MAX};

#[cfg(test)]
mod tests;
