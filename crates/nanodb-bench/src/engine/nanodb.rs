//! nanodb-storage: default options but the memtable and block cache sizes; writes are
//! `sync = false` (in the OS page cache after each group commit, so they survive a process
//! crash) or `sync = true`. Leveled compaction runs on one background thread.

use super::{count_entries, text, Engine, EngineConfig, EngineResult};
use nanodb_storage::{Compression, Db, Options, TransactionOptions, WriteBatch, WriteOptions};
use std::path::Path;

pub struct NanoDb {
    db: Db,
    config: EngineConfig,
}

impl NanoDb {
    pub fn open(dir: &Path, config: EngineConfig) -> EngineResult<NanoDb> {
        let options = Options {
            memtable_size_bytes_max: config.write_buffer_size_bytes,
            block_cache_size_bytes: config.cache_size_bytes as u64,
            // Every engine runs with compression off, so the comparison is of the engines.
            compression: Compression::None,
            ..Default::default()
        };
        Ok(NanoDb { db: Db::open(dir, options).map_err(text)?, config })
    }
}

impl Engine for NanoDb {
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.db.put(key, value, WriteOptions::NO_SYNC).map_err(text)
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.db.put(key, value, WriteOptions::SYNC).map_err(text)
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.db.get(key).map_err(text)
    }

    fn delete(&self, key: &[u8]) -> EngineResult<()> {
        self.db.delete(key, WriteOptions::NO_SYNC).map_err(text)
    }

    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()> {
        let mut batch = WriteBatch::new();
        for (key, value) in ops {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            };
        }
        self.db.write(batch, WriteOptions::NO_SYNC).map_err(text)
    }

    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize> {
        if reverse {
            count_entries(self.db.range(..=start).map_err(text)?.rev(), count)
        } else {
            count_entries(self.db.range(start..).map_err(text)?, count)
        }
    }

    fn settle(&self) -> EngineResult<()> {
        // Every acknowledged write is already in a WAL file (the page cache).
        Ok(())
    }

    fn flush_memtable(&self) -> EngineResult<()> {
        self.db.flush().map_err(text)
    }

    fn increment_transaction(&self, keys: &[Vec<u8>]) -> Option<EngineResult<u64>> {
        let mut attempts = 0u64;
        let options = TransactionOptions { retries_max: u32::MAX, ..TransactionOptions::default() };
        let result = self.db.run_transaction(options, |txn| {
            attempts += 1;
            for key in keys {
                let value = txn.get(key)?;
                txn.put(key, super::incremented(value.as_deref()))?;
            }
            Ok(())
        });
        Some(result.map(|()| attempts - 1).map_err(text))
    }

    fn describe(&self) -> String {
        format!(
            "nanodb-storage {}: memtable {} MiB, block cache {} MiB, 4 KiB blocks, bloom 10 bits/key, no compression, leveled compaction (1 thread)",
            env!("CARGO_PKG_VERSION"),
            self.config.write_buffer_size_bytes >> 20,
            self.config.cache_size_bytes >> 20
        )
    }
}
