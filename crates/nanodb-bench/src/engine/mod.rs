//! The one interface every engine under test implements, and how to open each by name.
//!
//! Each adapter gets the same budget and durability contract (see `EngineConfig`), documented
//! in its module and printed with every result:
//! - `put`, `delete` and `write_batch` are not synced: they survive a process crash where the
//!   engine offers that, and may be lost in a power loss.
//! - `put_sync` returns only once the write is on stable storage (fsync or fdatasync).
//! - Compression is off for every engine (nanodb-storage has none yet).
//!
//! Thread safety: engines are shared by the workload's threads (`Send + Sync`).

#[cfg(feature = "fjall")]
mod fjall;
#[cfg(feature = "lmdb")]
mod lmdb;
mod nanodb;
#[cfg(feature = "redb")]
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
#[cfg(feature = "sled")]
mod sled;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::path::Path;

/// Errors from adapters are reported as text: the harness only prints them.
pub type EngineResult<T> = Result<T, String>;

/// Settings every engine gets the same way.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Memory for the engine's own cache of data, in bytes (engines that rely on the OS page
    /// cache, such as LMDB, ignore it).
    pub cache_size_bytes: usize,
    /// Memtable or write buffer size, for engines that have one, in bytes.
    pub write_buffer_size_bytes: usize,
    /// Open the engine in its transactional form where that is a different kind of database
    /// (RocksDB's `OptimisticTransactionDB`), for the transaction workloads. Only the RocksDB
    /// adapter reads it, so it is unread in builds without that engine.
    #[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
    pub transactional: bool,
}

/// One engine under test.
pub trait Engine: Send + Sync {
    /// Sets `key` to `value`, not synced.
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()>;
    /// Sets `key` to `value` and returns once it is on stable storage.
    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()>;
    /// Reads `key`.
    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>>;
    /// Removes `key`, not synced.
    fn delete(&self, key: &[u8]) -> EngineResult<()>;
    /// Applies puts (`Some`) and deletes (`None`) atomically, not synced.
    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()>;
    /// Visits up to `count` entries from `start` (forward) or from `start` down (reverse);
    /// returns how many it saw. `count == usize::MAX` scans to the end.
    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize>;
    /// Makes sure every acknowledged write has reached the engine's files (at least the OS
    /// page cache), so the size on disk is comparable, without forcing a memtable flush or
    /// anything else that would change the state the next workload starts from.
    fn settle(&self) -> EngineResult<()>;
    /// Writes the memtable (write buffer) out as a table file and waits for it, as a user's
    /// explicit flush does; engines without a write buffer have nothing to do.
    fn flush_memtable(&self) -> EngineResult<()> {
        Ok(())
    }
    /// The settings, as printed with the results.
    fn describe(&self) -> String;
    /// In one transaction, reads each of `keys` (an 8-byte little-endian counter, absent = 0)
    /// and writes it back incremented, then commits (not synced), running the transaction
    /// again whenever it conflicts; returns how many attempts conflicted. `None` for engines
    /// without transactions in this harness.
    fn increment_transaction(&self, _keys: &[Vec<u8>]) -> Option<EngineResult<u64>> {
        None
    }
}

/// The counter stored at a key by `increment_transaction`, plus one.
pub(crate) fn incremented(value: Option<&[u8]>) -> [u8; 8] {
    let current = value.and_then(|bytes| bytes.try_into().ok()).map_or(0, u64::from_le_bytes);
    (current + 1).to_le_bytes()
}

/// Names of the engines compiled into this binary, NanoDB first.
pub fn available() -> Vec<&'static str> {
    let compiled = [
        ("nanodb", true),
        ("rocksdb", cfg!(feature = "rocksdb")),
        ("lmdb", cfg!(feature = "lmdb")),
        ("redb", cfg!(feature = "redb")),
        ("fjall", cfg!(feature = "fjall")),
        ("sled", cfg!(feature = "sled")),
        ("sqlite", cfg!(feature = "sqlite")),
    ];
    compiled.iter().filter(|(_, built)| *built).map(|(name, _)| *name).collect()
}

/// Opens engine `name` on a fresh directory `dir`.
pub fn open(name: &str, dir: &Path, config: EngineConfig) -> EngineResult<Box<dyn Engine>> {
    match name {
        "nanodb" => Ok(Box::new(nanodb::NanoDb::open(dir, config)?)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Ok(Box::new(rocksdb::RocksDb::open(dir, config)?)),
        #[cfg(feature = "lmdb")]
        "lmdb" => Ok(Box::new(lmdb::Lmdb::open(dir, config)?)),
        #[cfg(feature = "redb")]
        "redb" => Ok(Box::new(redb::Redb::open(dir, config)?)),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(fjall::Fjall::open(dir, config)?)),
        #[cfg(feature = "sled")]
        "sled" => Ok(Box::new(sled::Sled::open(dir, config)?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::Sqlite::open(dir, config)?)),
        other => Err(format!("engine {other} is not compiled in; available: {:?}", available())),
    }
}

/// Walks up to `count` entries of a scan, failing on the first error; returns how many.
pub(crate) fn count_entries<T, E: std::fmt::Display>(
    entries: impl Iterator<Item = Result<T, E>>,
    count: usize,
) -> EngineResult<usize> {
    let mut seen = 0;
    for entry in entries.take(count) {
        entry.map_err(text)?;
        seen += 1;
    }
    Ok(seen)
}

/// Turns any displayable error into the harness's error text.
pub(crate) fn text<E: std::fmt::Display>(error: E) -> String {
    error.to_string()
}
