//! sled 0.34: page cache `cache_capacity = cache_size_bytes`, compression off (its default),
//! background flush every 500 ms (its default); `put_sync` calls `flush()` after the write.

use super::{count_entries, text, Engine, EngineConfig, EngineResult};
use std::path::Path;

pub struct Sled {
    db: sled::Db,
    config: EngineConfig,
}

impl Sled {
    pub fn open(dir: &Path, config: EngineConfig) -> EngineResult<Sled> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(config.cache_size_bytes as u64)
            .open()
            .map_err(text)?;
        Ok(Sled { db, config })
    }
}

impl Engine for Sled {
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.db.insert(key, value).map(|_| ()).map_err(text)
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.db.insert(key, value).map_err(text)?;
        self.db.flush().map(|_| ()).map_err(text)
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        Ok(self.db.get(key).map_err(text)?.map(|value| value.to_vec()))
    }

    fn delete(&self, key: &[u8]) -> EngineResult<()> {
        self.db.remove(key).map(|_| ()).map_err(text)
    }

    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()> {
        let mut batch = sled::Batch::default();
        for (key, value) in ops {
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        self.db.apply_batch(batch).map_err(text)
    }

    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize> {
        if reverse {
            count_entries(self.db.range(..=start).rev(), count)
        } else {
            count_entries(self.db.range(start..), count)
        }
    }

    fn settle(&self) -> EngineResult<()> {
        self.db.flush().map(|_| ()).map_err(text)
    }

    fn describe(&self) -> String {
        format!(
            "sled 0.34: cache {} MiB, compression off, flush every 500 ms, put_sync flushes",
            self.config.cache_size_bytes >> 20
        )
    }
}
