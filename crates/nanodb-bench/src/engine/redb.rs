//! redb 4: cache `cache_size_bytes`; every write is its own write transaction, committed with
//! `Durability::None` (visible, not persisted until a later durable commit) or, for
//! `put_sync`, `Durability::Immediate`. redb has no compression.

use super::{count_entries, text, Engine, EngineConfig, EngineResult};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

pub struct Redb {
    db: Database,
    config: EngineConfig,
}

impl Redb {
    pub fn open(dir: &Path, config: EngineConfig) -> EngineResult<Redb> {
        std::fs::create_dir_all(dir).map_err(text)?;
        let db = Database::builder()
            .set_cache_size(config.cache_size_bytes)
            .create(dir.join("redb.db"))
            .map_err(text)?;
        let redb = Redb { db, config };
        redb.write(Durability::Immediate, |_| Ok(()))?;
        Ok(redb)
    }

    fn write(
        &self,
        durability: Durability,
        apply: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<(), redb::StorageError>,
    ) -> EngineResult<()> {
        let mut txn = self.db.begin_write().map_err(text)?;
        txn.set_durability(durability).map_err(text)?;
        {
            let mut table = txn.open_table(TABLE).map_err(text)?;
            apply(&mut table).map_err(text)?;
        }
        txn.commit().map_err(text)
    }
}

impl Engine for Redb {
    fn increment_transaction(&self, keys: &[Vec<u8>]) -> Option<EngineResult<u64>> {
        // One writer at a time: write transactions never conflict.
        let result = self.write(Durability::None, |table| {
            for key in keys {
                let next =
                    super::incremented(table.get(key.as_slice())?.as_ref().map(|v| v.value()));
                table.insert(key.as_slice(), next.as_slice())?;
            }
            Ok(())
        });
        Some(result.map(|()| 0))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.write(Durability::None, |table| table.insert(key, value).map(|_| ()))
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.write(Durability::Immediate, |table| table.insert(key, value).map(|_| ()))
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(text)?;
        let table = txn.open_table(TABLE).map_err(text)?;
        Ok(table.get(key).map_err(text)?.map(|value| value.value().to_vec()))
    }

    fn delete(&self, key: &[u8]) -> EngineResult<()> {
        self.write(Durability::None, |table| table.remove(key).map(|_| ()))
    }

    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()> {
        self.write(Durability::None, |table| {
            for (key, value) in ops {
                match value {
                    Some(value) => table.insert(key.as_slice(), value.as_slice()).map(|_| ())?,
                    None => table.remove(key.as_slice()).map(|_| ())?,
                }
            }
            Ok(())
        })
    }

    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize> {
        let txn = self.db.begin_read().map_err(text)?;
        let table = txn.open_table(TABLE).map_err(text)?;
        if reverse {
            count_entries(table.range(..=start).map_err(text)?.rev(), count)
        } else {
            count_entries(table.range(start..).map_err(text)?, count)
        }
    }

    fn settle(&self) -> EngineResult<()> {
        // A durable empty commit persists every earlier non-durable one.
        self.write(Durability::Immediate, |_| Ok(()))
    }

    fn describe(&self) -> String {
        format!(
            "redb 4: cache {} MiB, one write transaction per write, Durability::None except put_sync (Immediate)",
            self.config.cache_size_bytes >> 20
        )
    }
}
