//! RocksDB (the `rocksdb` crate): block cache `cache_size_bytes` (LRU), write buffer
//! `write_buffer_size_bytes`, bloom filter 10 bits per key, 4 KiB blocks, compression off.
//! Unsynced writes go to the WAL without fsync; `put_sync` sets `WriteOptions::sync`. For the
//! transaction workloads (`EngineConfig::transactional`) the same settings open an
//! `OptimisticTransactionDB`: transactions read with `get` and write with `put`, and a commit
//! that fails with `Busy` or `TryAgain` (a conflict) runs again.

use super::{count_entries, text, Engine, EngineConfig, EngineResult};
use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, Direction, ErrorKind, IteratorMode,
    OptimisticTransactionDB, Options, WriteOptions, DB,
};
use std::path::Path;

/// The database: plain, or opened for optimistic transactions.
enum Handle {
    Plain(DB),
    Optimistic(OptimisticTransactionDB),
}

/// Runs `$body` with `$db` bound to whichever database `$handle` holds (both have the plain
/// operations, but no trait the crate exports names them).
macro_rules! on_db {
    ($handle:expr, $db:ident => $body:expr) => {
        match $handle {
            Handle::Plain($db) => $body,
            Handle::Optimistic($db) => $body,
        }
    };
}

pub struct RocksDb {
    db: Handle,
    config: EngineConfig,
    unsynced: WriteOptions,
    synced: WriteOptions,
}

/// The options every RocksDB database opens with.
fn options(config: EngineConfig) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(config.cache_size_bytes));
    table.set_bloom_filter(10.0, false);
    table.set_block_size(4096);
    let mut options = Options::default();
    options.create_if_missing(true);
    options.set_write_buffer_size(config.write_buffer_size_bytes);
    options.set_compression_type(DBCompressionType::None);
    options.set_block_based_table_factory(&table);
    options.increase_parallelism(2);
    options
}

impl RocksDb {
    pub fn open(dir: &Path, config: EngineConfig) -> EngineResult<RocksDb> {
        let options = options(config);
        let db = if config.transactional {
            Handle::Optimistic(OptimisticTransactionDB::open(&options, dir).map_err(text)?)
        } else {
            Handle::Plain(DB::open(&options, dir).map_err(text)?)
        };
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        Ok(RocksDb { db, config, unsynced: WriteOptions::default(), synced })
    }
}

impl Engine for RocksDb {
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        on_db!(&self.db, db => db.put_opt(key, value, &self.unsynced).map_err(text))
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        on_db!(&self.db, db => db.put_opt(key, value, &self.synced).map_err(text))
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        on_db!(&self.db, db => db.get(key).map_err(text))
    }

    fn delete(&self, key: &[u8]) -> EngineResult<()> {
        on_db!(&self.db, db => db.delete_opt(key, &self.unsynced).map_err(text))
    }

    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()> {
        match &self.db {
            Handle::Plain(db) => {
                let mut batch = rocksdb::WriteBatch::default();
                for (key, value) in ops {
                    match value {
                        Some(value) => batch.put(key, value),
                        None => batch.delete(key),
                    }
                }
                db.write_opt(batch, &self.unsynced).map_err(text)
            }
            Handle::Optimistic(db) => {
                let txn = db.transaction_opt(&self.unsynced, &Default::default());
                for (key, value) in ops {
                    match value {
                        Some(value) => txn.put(key, value).map_err(text)?,
                        None => txn.delete(key).map_err(text)?,
                    }
                }
                txn.commit().map_err(text)
            }
        }
    }

    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize> {
        let direction = if reverse { Direction::Reverse } else { Direction::Forward };
        on_db!(&self.db, db => count_entries(db.iterator(IteratorMode::From(start, direction)), count))
    }

    fn settle(&self) -> EngineResult<()> {
        // Unsynced writes are already in the WAL file; make sure no WAL buffer is held back.
        on_db!(&self.db, db => db.flush_wal(false).map_err(text))
    }

    fn flush_memtable(&self) -> EngineResult<()> {
        on_db!(&self.db, db => db.flush().map_err(text))
    }

    fn describe(&self) -> String {
        let kind = match self.db {
            Handle::Plain(_) => "",
            Handle::Optimistic(_) => " OptimisticTransactionDB",
        };
        format!(
            "RocksDB {}{kind}: block cache {} MiB, write buffer {} MiB, bloom 10 bits/key, 4 KiB blocks, compression off",
            rocksdb_version(),
            self.config.cache_size_bytes >> 20,
            self.config.write_buffer_size_bytes >> 20
        )
    }

    fn increment_transaction(&self, keys: &[Vec<u8>]) -> Option<EngineResult<u64>> {
        let Handle::Optimistic(db) = &self.db else { return None };
        let mut retries = 0;
        loop {
            let txn = db.transaction_opt(&self.unsynced, &Default::default());
            let attempt = (|| {
                for key in keys {
                    let value = txn.get(key)?;
                    txn.put(key, super::incremented(value.as_deref()))?;
                }
                txn.commit()
            })();
            match attempt {
                Ok(()) => return Some(Ok(retries)),
                Err(error) if matches!(error.kind(), ErrorKind::Busy | ErrorKind::TryAgain) => {
                    retries += 1;
                }
                Err(error) => return Some(Err(text(error))),
            }
        }
    }
}

fn rocksdb_version() -> &'static str {
    "10.4 (librocksdb-sys 0.17)"
}
