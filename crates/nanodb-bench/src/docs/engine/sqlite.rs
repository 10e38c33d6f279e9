//! SQLite (rusqlite, bundled) as a document store: `docs(id TEXT PRIMARY KEY, body TEXT)` with
//! each document as JSON text (its id included), WAL mode, `synchronous = NORMAL` (a commit is
//! written to the WAL file, not fsynced; SQLite fsyncs at checkpoints), a 256 MiB page cache
//! (nanodb's whole memory budget), and the expression index
//! `docs_city ON docs(json_extract(body, '$.city'))`. Reads parse the body into a
//! `serde_json::Value`; a patch is `json_set` in an `UPDATE`.
//!
//! The `sqlite-mmap` engine is the same with `PRAGMA mmap_size` on every connection, beside
//! `nanodb-mmap` (`DatabaseOptions::mmap_reads`).
//!
//! Thread safety: one connection, used by one thread; each reader of `get-parallel` opens
//! its own connection to the same file (SQLite connections are not shared across threads),
//! with its own 256 MiB page cache, so SQLite readers get up to that much each: more memory
//! than nanodb's one shared budget, which favours SQLite.
//!
//! Invariant: the filtered query's SQL uses the same `json_extract` expression as the index,
//! so SQLite's planner uses it for `city` (and has nothing to use for `team`).

use super::{check_field, text, DocEngine, DocReader, DocResult, Probe, Tally};
use crate::docs::gen::{Doc, INDEXED_FIELD};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// Page cache, in KiB: nanodb's memory budget.
const CACHE_KIB: usize = 256 * 1024;
/// `PRAGMA mmap_size` of the `sqlite-mmap` engine, in bytes: more than the database file at
/// 1,000,000 documents (SQLite's bundled build caps it at 2 GiB).
const MMAP_SIZE_BYTES: u64 = 2 << 30;
const INSERT: &str = "INSERT INTO docs (id, body) VALUES (?1, ?2)";

pub struct SqliteDocs {
    connection: Connection,
    path: PathBuf,
    /// Reads through a memory map (`sqlite-mmap`).
    mmap: bool,
}

impl SqliteDocs {
    /// With `mmap`, every connection reads the file through a memory map of up to
    /// `MMAP_SIZE_BYTES` (`PRAGMA mmap_size`), as `nanodb-mmap` does.
    pub fn open(dir: &Path, mmap: bool) -> DocResult<SqliteDocs> {
        std::fs::create_dir_all(dir).map_err(text)?;
        let path = dir.join("docs.db");
        let connection = connect(&path, mmap)?;
        connection
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE docs (id TEXT PRIMARY KEY, body TEXT NOT NULL);
                 CREATE INDEX docs_{INDEXED_FIELD} ON docs (json_extract(body, '$.{INDEXED_FIELD}'));"
            ))
            .map_err(text)?;
        Ok(SqliteDocs { connection, path, mmap })
    }
}

/// A connection to the database file at `path`, with the page cache every connection gets
/// (and the memory map, with `mmap`).
fn connect(path: &Path, mmap: bool) -> DocResult<Connection> {
    let connection = Connection::open(path).map_err(text)?;
    connection.execute_batch(&format!("PRAGMA cache_size = -{CACHE_KIB};")).map_err(text)?;
    if mmap {
        let size: i64 = connection
            .query_row(&format!("PRAGMA mmap_size = {MMAP_SIZE_BYTES}"), [], |row| row.get(0))
            .map_err(text)?;
        if size <= 0 {
            return Err(format!("SQLite refused mmap_size = {MMAP_SIZE_BYTES} (got {size})"));
        }
    }
    Ok(connection)
}

/// Reads document `id` through `connection` and the two fields a lookup checks.
fn probe(connection: &Connection, id: &str) -> DocResult<Option<Probe>> {
    let mut statement =
        connection.prepare_cached("SELECT body FROM docs WHERE id = ?1").map_err(text)?;
    let body: Option<String> =
        statement.query_row(params![id], |row| row.get(0)).optional().map_err(text)?;
    let Some(body) = body else { return Ok(None) };
    let document = parse(&body)?;
    let counter = document.get("counter").and_then(serde_json::Value::as_i64);
    Probe::of(id, age(&document), counter).map(Some)
}

/// A connection of its own, for one thread of `get-parallel`.
struct SqliteReader(Connection);

impl DocReader for SqliteReader {
    fn get(&mut self, id: &str) -> DocResult<Option<Probe>> {
        probe(&self.0, id)
    }
}

fn body(doc: &Doc) -> DocResult<String> {
    serde_json::to_string(doc).map_err(text)
}

/// Parses a stored body: the decoding every read does.
fn parse(body: &str) -> DocResult<serde_json::Value> {
    serde_json::from_str(body).map_err(text)
}

fn age(document: &serde_json::Value) -> Option<i64> {
    document.get("age").and_then(serde_json::Value::as_i64)
}

/// Runs `sql` (one parameter, or none) and tallies the parsed bodies of its rows.
fn tally_rows(connection: &Connection, sql: &str, parameter: Option<&str>) -> DocResult<Tally> {
    let mut statement = connection.prepare_cached(sql).map_err(text)?;
    let mut rows = match parameter {
        Some(value) => statement.query(params![value]),
        None => statement.query([]),
    }
    .map_err(text)?;
    let mut tally = Tally::default();
    while let Some(row) = rows.next().map_err(text)? {
        let body = row.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(text)?;
        tally.add(age(&parse(body)?))?;
    }
    Ok(tally)
}

impl DocEngine for SqliteDocs {
    fn insert(&mut self, doc: &Doc) -> DocResult<()> {
        let body = body(doc)?;
        let mut statement = self.connection.prepare_cached(INSERT).map_err(text)?;
        statement.execute(params![doc.id, body]).map(|_| ()).map_err(text)
    }

    fn insert_many(&mut self, docs: &[Doc]) -> DocResult<()> {
        let txn = self.connection.transaction().map_err(text)?;
        {
            let mut statement = txn.prepare_cached(INSERT).map_err(text)?;
            for doc in docs {
                statement.execute(params![doc.id, body(doc)?]).map_err(text)?;
            }
        }
        txn.commit().map_err(text)
    }

    fn get(&mut self, id: &str) -> DocResult<Option<Probe>> {
        probe(&self.connection, id)
    }

    fn readers(&mut self, count: usize) -> DocResult<Option<Vec<Box<dyn DocReader>>>> {
        let mut readers: Vec<Box<dyn DocReader>> = Vec::with_capacity(count);
        for _ in 0..count {
            readers.push(Box::new(SqliteReader(connect(&self.path, self.mmap)?)));
        }
        Ok(Some(readers))
    }

    fn scan(&mut self) -> DocResult<Tally> {
        tally_rows(&self.connection, "SELECT body FROM docs", None)
    }

    fn find_eq(&mut self, field: &str, value: &str) -> DocResult<Tally> {
        let field = check_field(field)?;
        let sql = format!("SELECT body FROM docs WHERE json_extract(body, '$.{field}') = ?1");
        tally_rows(&self.connection, &sql, Some(value))
    }

    fn set_counter(&mut self, id: &str, counter: i64) -> DocResult<()> {
        let mut statement = self
            .connection
            .prepare_cached("UPDATE docs SET body = json_set(body, '$.counter', ?2) WHERE id = ?1")
            .map_err(text)?;
        match statement.execute(params![id, counter]).map_err(text)? {
            0 => Err(format!("update: no document {id}")),
            _ => Ok(()),
        }
    }

    fn delete(&mut self, id: &str) -> DocResult<()> {
        let mut statement =
            self.connection.prepare_cached("DELETE FROM docs WHERE id = ?1").map_err(text)?;
        match statement.execute(params![id]).map_err(text)? {
            0 => Err(format!("delete: no document {id}")),
            _ => Ok(()),
        }
    }

    fn count(&mut self) -> DocResult<u64> {
        let count: i64 = self
            .connection
            .query_row("SELECT COUNT(*) FROM docs", [], |row| row.get(0))
            .map_err(text)?;
        u64::try_from(count).map_err(text)
    }

    fn describe(&self) -> String {
        format!(
            "SQLite {} (bundled): docs(id TEXT PRIMARY KEY, body TEXT) of JSON text, WAL mode, synchronous NORMAL (no fsync per commit), page cache {} MiB{}, expression index on json_extract(body, '$.{INDEXED_FIELD}'), patch by json_set",
            rusqlite::version(),
            CACHE_KIB >> 10,
            if self.mmap { format!(", mmap_size {} MiB", MMAP_SIZE_BYTES >> 20) } else { String::new() }
        )
    }

    fn close(self: Box<Self>) -> DocResult<()> {
        self.connection.close().map_err(|(_, error)| text(error))
    }
}
