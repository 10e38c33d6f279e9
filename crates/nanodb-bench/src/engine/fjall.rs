//! fjall 3: one keyspace, block cache `cache_size_bytes`, memtable `write_buffer_size_bytes`,
//! compression disabled for data and index blocks (fjall's default compresses deeper levels
//! with LZ4). Unsynced writes are buffered in fjall's journal writer (they may not survive a
//! process crash until fjall flushes it); `put_sync` calls `persist(SyncData)`.

use super::{count_entries, text, Engine, EngineConfig, EngineResult};
use fjall::config::CompressionPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::Path;

pub struct Fjall {
    db: Database,
    keyspace: Keyspace,
    config: EngineConfig,
}

impl Fjall {
    pub fn open(dir: &Path, config: EngineConfig) -> EngineResult<Fjall> {
        let db = Database::builder(dir)
            .cache_size(config.cache_size_bytes as u64)
            .open()
            .map_err(text)?;
        let keyspace = db
            .keyspace("kv", || {
                KeyspaceCreateOptions::default()
                    .data_block_compression_policy(CompressionPolicy::disabled())
                    .index_block_compression_policy(CompressionPolicy::disabled())
                    .max_memtable_size(config.write_buffer_size_bytes as u64)
            })
            .map_err(text)?;
        Ok(Fjall { db, keyspace, config })
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.keyspace.insert(key, value).map_err(text)
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.keyspace.insert(key, value).map_err(text)?;
        self.db.persist(PersistMode::SyncData).map_err(text)
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        Ok(self.keyspace.get(key).map_err(text)?.map(|value| value.to_vec()))
    }

    fn delete(&self, key: &[u8]) -> EngineResult<()> {
        self.keyspace.remove(key).map_err(text)
    }

    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()> {
        let mut batch = self.db.batch();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(&self.keyspace, key.as_slice(), value.as_slice()),
                None => batch.remove(&self.keyspace, key.as_slice()),
            }
        }
        batch.commit().map_err(text)
    }

    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize> {
        if reverse {
            count_entries(self.keyspace.range(..=start).rev().map(fjall::Guard::into_inner), count)
        } else {
            count_entries(self.keyspace.range(start..).map(fjall::Guard::into_inner), count)
        }
    }

    fn settle(&self) -> EngineResult<()> {
        // Hand fjall's buffered journal writes to the OS.
        self.db.persist(PersistMode::Buffer).map_err(text)
    }

    fn flush_memtable(&self) -> EngineResult<()> {
        self.keyspace.rotate_memtable_and_wait().map_err(text)
    }

    fn describe(&self) -> String {
        format!(
            "fjall 3: block cache {} MiB, memtable {} MiB, compression off, journal not synced except put_sync",
            self.config.cache_size_bytes >> 20,
            self.config.write_buffer_size_bytes >> 20
        )
    }
}
