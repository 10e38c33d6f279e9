//! SQLite (rusqlite, bundled): a `WITHOUT ROWID` key-value table in WAL mode, page cache
//! `cache_size_bytes` per connection, one connection per thread (from a pool). Unsynced
//! writes use `synchronous = NORMAL` (a commit reaches the WAL file but is not fsynced);
//! `put_sync` uses connections with `synchronous = FULL`. SQLite has no compression.

use super::{text, Engine, EngineConfig, EngineResult};
use parking_lot_free::Pool;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

pub struct Sqlite {
    path: PathBuf,
    config: EngineConfig,
    normal: Pool,
    full: Pool,
}

/// A tiny connection pool: connections are taken for one operation and put back.
mod parking_lot_free {
    use rusqlite::Connection;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Pool(Mutex<Vec<Connection>>);

    impl Pool {
        pub fn take(&self) -> Option<Connection> {
            self.0.lock().ok().and_then(|mut connections| connections.pop())
        }

        pub fn give_back(&self, connection: Connection) {
            if let Ok(mut connections) = self.0.lock() {
                connections.push(connection);
            }
        }
    }
}

impl Sqlite {
    pub fn open(dir: &Path, config: EngineConfig) -> EngineResult<Sqlite> {
        std::fs::create_dir_all(dir).map_err(text)?;
        let sqlite = Sqlite {
            path: dir.join("sqlite.db"),
            config,
            normal: Pool::default(),
            full: Pool::default(),
        };
        let connection = sqlite.connect("NORMAL")?;
        connection
            .execute_batch("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;")
            .map_err(text)?;
        sqlite.normal.give_back(connection);
        Ok(sqlite)
    }

    fn connect(&self, synchronous: &str) -> EngineResult<Connection> {
        let connection = Connection::open(&self.path).map_err(text)?;
        connection.busy_timeout(std::time::Duration::from_secs(60)).map_err(text)?;
        let cache_kib = self.config.cache_size_bytes / 1024;
        connection
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA cache_size = -{cache_kib};"
            ))
            .map_err(text)?;
        Ok(connection)
    }

    fn with<T>(
        &self,
        durable: bool,
        run: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> EngineResult<T> {
        let (pool, synchronous) =
            if durable { (&self.full, "FULL") } else { (&self.normal, "NORMAL") };
        let mut connection = match pool.take() {
            Some(connection) => connection,
            None => self.connect(synchronous)?,
        };
        let result = run(&mut connection).map_err(text);
        pool.give_back(connection);
        result
    }
}

const UPSERT: &str =
    "INSERT INTO kv (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v";

impl Engine for Sqlite {
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.with(false, |c| c.prepare_cached(UPSERT)?.execute(params![key, value]).map(|_| ()))
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.with(true, |c| c.prepare_cached(UPSERT)?.execute(params![key, value]).map(|_| ()))
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.with(false, |c| {
            c.prepare_cached("SELECT v FROM kv WHERE k = ?1")?
                .query_row(params![key], |row| row.get(0))
                .optional()
        })
    }

    fn delete(&self, key: &[u8]) -> EngineResult<()> {
        self.with(false, |c| {
            c.prepare_cached("DELETE FROM kv WHERE k = ?1")?.execute(params![key]).map(|_| ())
        })
    }

    fn write_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> EngineResult<()> {
        self.with(false, |c| {
            let txn = c.transaction()?;
            for (key, value) in ops {
                match value {
                    Some(value) => txn.prepare_cached(UPSERT)?.execute(params![key, value])?,
                    None => {
                        txn.prepare_cached("DELETE FROM kv WHERE k = ?1")?.execute(params![key])?
                    }
                };
            }
            txn.commit()
        })
    }

    fn scan(&self, start: &[u8], count: usize, reverse: bool) -> EngineResult<usize> {
        let limit: i64 = i64::try_from(count).unwrap_or(-1);
        let sql = if reverse {
            "SELECT k, v FROM kv WHERE k <= ?1 ORDER BY k DESC LIMIT ?2"
        } else {
            "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2"
        };
        self.with(false, |c| {
            let mut statement = c.prepare_cached(sql)?;
            let mut rows = statement.query(params![start, limit])?;
            let mut seen = 0;
            while let Some(row) = rows.next()? {
                let _value: &[u8] = row.get_ref(1)?.as_blob()?;
                seen += 1;
            }
            Ok(seen)
        })
    }

    fn settle(&self) -> EngineResult<()> {
        // Committed transactions are already in the WAL file; a checkpoint would change the
        // state the next workload starts from.
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "SQLite {} (bundled): WITHOUT ROWID table, WAL mode, synchronous NORMAL (FULL for put_sync), cache {} MiB per connection",
            rusqlite::version(),
            self.config.cache_size_bytes >> 20
        )
    }
}
