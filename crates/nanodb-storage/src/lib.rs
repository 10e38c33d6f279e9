//! nanodb-storage: NanoDB's storage engine, an ordered, crash-safe key-value store built as a
//! log-structured merge tree.
//!
//! ```no_run
//! use nanodb_storage::{Db, Options, WriteOptions};
//!
//! let db = Db::open("my-db", Options::default())?;
//! db.put(b"hello", b"world", WriteOptions::SYNC)?;
//! assert_eq!(db.get(b"hello")?.as_deref(), Some(&b"world"[..]));
//! for entry in db.prefix(b"he")? {
//!     let (key, value) = entry?;
//!     println!("{key:?} = {value:?}");
//! }
//! db.close()?;
//! # Ok::<(), nanodb_storage::Error>(())
//! ```
//!
//! The engine knows nothing of documents, JSON or HTTP: bytes in, bytes out. See
//! ARCHITECTURE.md for the write and read paths and docs/format/ for every on-disk format.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod batch;
mod cache;
mod coding;
mod compaction;
mod db;
mod error;
mod filenames;
mod found;
pub mod fs;
mod iter;
mod key;
mod keyspace;
mod manifest;
mod memtable;
mod options;
mod range_del;
mod rate_limit;
mod record_log;
mod sst;
mod table_cache;
#[cfg(test)]
mod test_rng;
mod ttl;
mod version;
mod wal;

/// The engine's building blocks, for the criterion micro-benchmarks in `benches/`. Not a
/// stable API: present only with the `bench-internals` feature, which nothing else enables.
#[cfg(feature = "bench-internals")]
pub mod internals {
    pub use crate::iter::{Direction, InternalIterator, MergingIterator};
    pub use crate::key::{internal_key, ValueKind, KIND_FOR_SEEK};
    pub use crate::memtable::Memtable;
    pub use crate::record_log::{encode_record_parts, Framing, RecordWriter};
    pub use crate::sst::{
        Block, BlockBuilder, BlockCursor, BloomBuilder, BloomFilter, FilterLayout,
    };
    pub use crate::wal::{WAL_FORMAT_VERSION, WAL_MAGIC};
}

pub use batch::WriteBatch;
pub use cache::{BlockCache, BlockCacheStats};
pub use db::{
    CheckpointReport, CommitListener, CommitNote, Db, DbStats, Iter, Keyspace, LevelStats,
    MemoryBudget, MemoryBudgetUsage, MemoryUsage, Savepoint, Snapshot, Transaction,
    TransactionIter, TransactionOptions, VerifyReport, MEMORY_BUDGET_BYTES_MIN, MEMORY_STALL_MAX,
    MEMTABLE_SHARE_PERCENT_DEFAULT, TRANSACTION_ENTRY_OVERHEAD_BYTES,
    TRANSACTION_MEMORY_BYTES_MAX_DEFAULT, TRANSACTION_RETRIES_MAX_DEFAULT,
};
pub use error::{Error, Result};
pub use keyspace::{
    DEFAULT_KEYSPACE_NAME, KEYSPACES_LIVE_MAX, KEYSPACE_NAME_LEN_MAX, KEYSPACE_PREFIX_LEN_MAX,
};
pub use options::{
    Compression, Options, WalRecovery, WriteOptions, BACKGROUND_THREADS_LIMIT,
    BATCH_SIZE_BYTES_MAX_DEFAULT, BATCH_SIZE_BYTES_MAX_LIMIT, BLOCK_CACHE_SIZE_BYTES_DEFAULT,
    BLOCK_SIZE_BYTES_DEFAULT, BLOCK_SIZE_BYTES_LIMIT, BLOCK_SIZE_BYTES_MIN,
    BLOOM_BITS_PER_KEY_DEFAULT, BLOOM_BITS_PER_KEY_MAX, COMPRESSION_DEFAULT,
    KEY_SIZE_BYTES_MAX_DEFAULT, KEY_SIZE_BYTES_MAX_LIMIT, L0_COMPACTION_TRIGGER_DEFAULT,
    L0_SLOWDOWN_TRIGGER_DEFAULT, L0_STOP_TRIGGER_DEFAULT, L0_STOP_TRIGGER_LIMIT,
    LEVEL_SIZE_BASE_BYTES_DEFAULT, LEVEL_SIZE_BYTES_MIN, LEVEL_SIZE_MULTIPLIER_DEFAULT,
    LEVEL_SIZE_MULTIPLIER_RANGE, MEMTABLE_SIZE_BYTES_MAX_DEFAULT, MEMTABLE_SIZE_BYTES_MAX_MIN,
    OPEN_FILES_MAX_DEFAULT, OPEN_FILES_MAX_MIN, PIN_INDEX_AND_FILTER_DEFAULT,
    RATE_LIMIT_BYTES_PER_SEC_DEFAULT, RATE_LIMIT_BYTES_PER_SEC_MIN, SLOWDOWN_DELAY_MAX,
    SLOWDOWN_RATE_BYTES_PER_SEC_DEFAULT, SST_SIZE_BYTES_TARGET_DEFAULT,
    VALUE_SIZE_BYTES_MAX_DEFAULT, VALUE_SIZE_BYTES_MAX_LIMIT, ZSTD_LEVEL_DEFAULT, ZSTD_LEVEL_MAX,
    ZSTD_LEVEL_MIN,
};
pub use range_del::RANGE_TOMBSTONES_LIVE_MAX;
pub use sst::FILTER_KEYS_PER_OUTPUT_MAX;
pub use ttl::{Clock, ManualClock, SystemClock};
