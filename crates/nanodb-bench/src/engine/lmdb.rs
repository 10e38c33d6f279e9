//! LMDB through heed: one environment with `NO_SYNC` (commits reach the OS, not the disk),
//! a 64 GiB map, reads through the OS page cache (LMDB has no cache of its own, so
//! `cache_size_bytes` does not apply); `put_sync` commits and then forces a sync. Every write
//! is its own write transaction. LMDB has no compression.

use super::{count_entries, text, Engine, EngineConfig, EngineResult};
use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions};
use std::ops::Bound;
use std::path::Path;

const MAP_SIZE_BYTES: usize = 64 << 30;

pub struct Lmdb {
    env: Env,
    db: Database<Bytes, Bytes>,
}

impl Lmdb {
    // heed marks opening an environment unsafe because LMDB's memory map must not be opened
    // twice in one process and the NO_SYNC flag weakens durability; the harness opens each
    // directory once, and NO_SYNC is the documented setting for unsynced writes.
    #[allow(unsafe_code)]
    pub fn open(dir: &Path, _config: EngineConfig) -> EngineResult<Lmdb> {
        std::fs::create_dir_all(dir).map_err(text)?;
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_SIZE_BYTES).max_dbs(1);
        let env = unsafe {
            options.flags(EnvFlags::NO_SYNC);
            options.open(dir)
        }
        .map_err(text)?;
        let mut txn = env.write_txn().map_err(text)?;
        let db = env.create_database(&mut txn, None).map_err(text)?;
        txn.commit().map_err(text)?;
        Ok(Lmdb { env, db })
    }

    fn write(&self, apply: impl FnOnce(&mut heed::RwTxn) -> heed::Result<()>) -> EngineResult<()> {
        let mut txn = self.env.write_txn().map_err(text)?;
        apply(&mut txn).map_err(text)?;
        txn.commit().map_err(text)
    }
}

impl Engine for Lmdb {
    fn increment_transaction(&self, keys: &[Vec<u8>]) -> Option<EngineResult<u64>> {
        // One writer at a time: write transactions never conflict.
        let result = self.write(|txn| {
            for key in keys {
                let next = super::incremented(self.db.get(txn, key)?);
                self.db.put(txn, key, &next)?;
            }
            Ok(())
        });
        Some(result.map(|()| 0))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.write(|txn| self.db.put(txn, key, value))
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.put(key, value)?;
        self.env.force_sync().map_err(text)
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        let txn = self.env.read_txn().map_err(text)?;
        Ok(self.db.get(&txn, key).map_err(text)?.map(<[u8]>::to_vec))
    }

    fn delete(&self, key: &[u8]) -> EngineResult<()> {
        self.write(|txn| self.db.delete(txn, key).map(|_| ()))
    }

    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()> {
        self.write(|txn| {
            for (key, value) in ops {
                match value {
                    Some(value) => self.db.put(txn, key, value)?,
                    None => {
                        self.db.delete(txn, key)?;
                    }
                }
            }
            Ok(())
        })
    }

    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize> {
        let txn = self.env.read_txn().map_err(text)?;
        // LMDB refuses zero-length keys, even as a range bound: an empty start means "from the
        // first key".
        let start_bound = if start.is_empty() { Bound::Unbounded } else { Bound::Included(start) };
        if reverse {
            let bounds = (Bound::Unbounded, start_bound);
            count_entries(self.db.rev_range(&txn, &bounds).map_err(text)?, count)
        } else {
            let bounds = (start_bound, Bound::Unbounded);
            count_entries(self.db.range(&txn, &bounds).map_err(text)?, count)
        }
    }

    fn settle(&self) -> EngineResult<()> {
        // Committed transactions are already in the file (through the OS page cache).
        Ok(())
    }

    fn describe(&self) -> String {
        "LMDB (heed 0.22): NO_SYNC, 64 GiB map, OS page cache, one write transaction per write"
            .into()
    }
}
