//! The one interface every document engine under test implements, and how to open each by name.
//!
//! Every adapter stores the generator's documents in its own native form (nanodb: `Value`
//! maps stored as MessagePack; SQLite: JSON text; PoloDB: BSON), builds that form inside the
//! timed operation, and decodes what it reads into its native document type before touching a
//! field, so encoding and decoding are measured on every engine.
//!
//! Durability contract, the same for every engine: a write is acknowledged once it is in the
//! engine's log in the OS page cache, without an fsync, so it survives a process crash but may
//! be lost to a power cut (SQLite WAL with `synchronous = NORMAL`, nanodb `sync: false`,
//! PoloDB 4 which never fsyncs).
//!
//! Thread safety: an engine is driven by one thread (`&mut self`); none needs to be `Sync`.
//! The readers an engine hands out (`DocEngine::readers`) are `Send`, one per thread of the
//! `get-parallel` workload.
//!
//! Invariant: `open` gives an empty collection with an index on `gen::INDEXED_FIELD` and none
//! on `gen::UNINDEXED_FIELD`, so inserts maintain one secondary index on every engine.

mod nanodb;
#[cfg(feature = "polodb")]
mod polodb;
#[cfg(feature = "sqlite")]
mod sqlite;

use super::gen::Doc;
use std::path::Path;

/// Errors from adapters are reported as text: the harness only prints them.
pub type DocResult<T> = Result<T, String>;

/// What reading one document saw: two of its fields, read from the decoded document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub age: i64,
    pub counter: i64,
}

impl Probe {
    /// The probe of document `id` from the `age` and `counter` an adapter read from it; an
    /// error naming the document when either is missing or not an integer.
    pub fn of(id: &str, age: Option<i64>, counter: Option<i64>) -> DocResult<Probe> {
        match (age, counter) {
            (Some(age), Some(counter)) => Ok(Probe { age, counter }),
            _ => Err(format!("document {id} lacks age or counter")),
        }
    }
}

/// What a scan or a query saw: how many documents, and the sum of their `age` fields (read
/// from each decoded document, so the decoding cannot be skipped, and comparable across
/// engines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub documents: u64,
    pub age_sum: i64,
}

impl Tally {
    /// Counts one document whose `age` is `age` (`None` counts as a broken document).
    pub fn add(&mut self, age: Option<i64>) -> DocResult<()> {
        let age = age.ok_or("a document read back has no integer age")?;
        self.documents += 1;
        self.age_sum += age;
        Ok(())
    }
}

/// A handle that reads documents by id from another thread while the engine's own thread
/// waits (`get-parallel`).
pub trait DocReader: Send {
    /// Reads document `id` by its primary key, as `DocEngine::get` does.
    fn get(&mut self, id: &str) -> DocResult<Option<Probe>>;
}

/// One document engine under test, holding one collection.
pub trait DocEngine {
    /// Inserts one document, in its own transaction (not synced).
    fn insert(&mut self, doc: &Doc) -> DocResult<()>;
    /// Inserts the documents atomically, in one transaction (not synced).
    fn insert_many(&mut self, docs: &[Doc]) -> DocResult<()>;
    /// Reads document `id` by its primary key.
    fn get(&mut self, id: &str) -> DocResult<Option<Probe>>;
    /// Reads and decodes every document.
    fn scan(&mut self) -> DocResult<Tally>;
    /// Reads and decodes every document whose `field` equals `value` (a string).
    fn find_eq(&mut self, field: &str, value: &str) -> DocResult<Tally>;
    /// Sets field `counter` of document `id`, leaving the others as they are; an error if
    /// there is no such document.
    fn set_counter(&mut self, id: &str, counter: i64) -> DocResult<()>;
    /// Deletes document `id`; an error if there is no such document.
    fn delete(&mut self, id: &str) -> DocResult<()>;
    /// How many documents the collection holds.
    fn count(&mut self) -> DocResult<u64>;
    /// `count` readers of the collection, one per thread, each as fast as the engine allows
    /// a reader to be (its own connection where the engine needs one); `None` when the engine
    /// cannot be read from several threads, and `get-parallel` is then skipped.
    fn readers(&mut self, _count: usize) -> DocResult<Option<Vec<Box<dyn DocReader>>>> {
        Ok(None)
    }
    /// Why this engine's equality queries on the indexed field cannot be measured (wrong
    /// answers), if they cannot; `query-indexed` is then skipped and `find_eq` refuses it.
    fn index_queries_broken(&self) -> Option<&'static str> {
        None
    }
    /// The settings, as printed with the results.
    fn describe(&self) -> String;
    /// Closes the engine, making every acknowledged write reach its files.
    fn close(self: Box<Self>) -> DocResult<()>;
}

/// Names of the document engines compiled into this binary, nanodb first. `nanodb-mmap` and
/// `sqlite-mmap` read their files through memory maps (not run unless named: `default_engines`).
pub fn available() -> Vec<&'static str> {
    let compiled = [
        ("nanodb", true),
        ("sqlite", cfg!(feature = "sqlite")),
        ("polodb", cfg!(feature = "polodb")),
        ("nanodb-mmap", true),
        ("sqlite-mmap", cfg!(feature = "sqlite")),
    ];
    compiled.iter().filter(|(_, built)| *built).map(|(name, _)| *name).collect()
}

/// The engines a run without `--engines` measures: every compiled one in its default
/// configuration (the memory-mapped variants are asked for by name).
pub fn default_engines() -> Vec<&'static str> {
    available().into_iter().filter(|name| !name.ends_with("-mmap")).collect()
}

/// Opens engine `name` on the empty directory `dir`, with the collection and its index.
pub fn open(name: &str, dir: &Path) -> DocResult<Box<dyn DocEngine>> {
    match name {
        "nanodb" => Ok(Box::new(nanodb::NanoDocs::open(dir, false)?)),
        "nanodb-mmap" => Ok(Box::new(nanodb::NanoDocs::open(dir, true)?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::SqliteDocs::open(dir, false)?)),
        #[cfg(feature = "sqlite")]
        "sqlite-mmap" => Ok(Box::new(sqlite::SqliteDocs::open(dir, true)?)),
        #[cfg(feature = "polodb")]
        "polodb" => Ok(Box::new(polodb::PoloDocs::open(dir)?)),
        other => {
            Err(format!("document engine {other} is not compiled in; available: {:?}", available()))
        }
    }
}

/// Checks that a field name given to `find_eq` is one of the generator's plain field names,
/// so adapters can put it into query text (SQLite's JSON path) safely.
pub(crate) fn check_field(field: &str) -> DocResult<&str> {
    if !field.is_empty() && field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(field)
    } else {
        Err(format!("field name {field:?} is not a plain identifier"))
    }
}

/// Turns any displayable error into the harness's error text.
pub(crate) fn text<E: std::fmt::Display>(error: E) -> String {
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_needs_both_fields() {
        assert_eq!(Probe::of("a", Some(3), Some(4)), Ok(Probe { age: 3, counter: 4 }));
        for (age, counter) in [(None, Some(4)), (Some(3), None), (None, None)] {
            let error = Probe::of("doc7", age, counter).unwrap_err();
            assert!(error.contains("doc7"), "{error}");
        }
    }
}
