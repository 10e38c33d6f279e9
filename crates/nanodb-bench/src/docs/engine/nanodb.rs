//! nanodb (the document layer): one runtime with default options (256 MiB shared by memtables
//! and block cache, 16 MiB memtable, LZ4 blocks: the storage engine's defaults) except
//! `DatabaseOptions { sync: false }`: a write is in the wal (OS page cache) when it returns,
//! not fsynced, like SQLite's `synchronous = NORMAL`. Documents are written through the typed
//! collection (`Collection::typed`: the `Doc` serialized straight to MessagePack, as SQLite's
//! adapter serializes it straight to JSON), with the caller's id; nanodb adds `created` and
//! `updated`. They are read through the dynamic one (the two fields a lookup checks decoded,
//! not the whole `Doc`). The collection has the index `by_city`.
//!
//! The `nanodb-mmap` engine is the same with `DatabaseOptions::mmap_reads`, beside
//! `sqlite-mmap`.
//!
//! Thread safety: `NanoDocs` is used by one thread; the handles inside are `Send + Sync`, so
//! the readers of `get-parallel` are clones of the one collection handle (one shared block
//! cache and memory budget).
//!
//! Invariant: the runtime is closed by `close` (every acknowledged write reaches its files).

use super::{check_field, text, DocEngine, DocReader, DocResult, Probe, Tally};
use crate::docs::gen::{Doc, INDEXED_FIELD};
use nanodb::query::{Filter, Query};
use nanodb::{
    Collection, CollectionOptions, DatabaseOptions, Document, IndexDefinition, NanoDb,
    NanoDbOptions, Patch, TypedCollection, Value,
};
use std::path::Path;

pub struct NanoDocs {
    runtime: NanoDb,
    /// `DatabaseOptions::mmap_reads` (`nanodb-mmap`).
    mmap_reads: bool,
    collection: Collection,
    /// The same collection, for writes of `Doc`s.
    typed: TypedCollection<Doc>,
}

impl NanoDocs {
    /// With `mmap_reads`, the SST files are read through memory maps (`nanodb-mmap`).
    pub fn open(dir: &Path, mmap_reads: bool) -> DocResult<NanoDocs> {
        let options = NanoDbOptions {
            database: DatabaseOptions { sync: false, mmap_reads, ..DatabaseOptions::default() },
            ..NanoDbOptions::default()
        };
        let runtime = NanoDb::open(dir, options).map_err(text)?;
        let database = runtime.database("bench").map_err(text)?;
        let collection =
            database.create_collection("docs", CollectionOptions::default()).map_err(text)?;
        let index = IndexDefinition::new("by_city", &[INDEXED_FIELD]).map_err(text)?;
        collection.create_index(index).map_err(text)?.wait().map_err(text)?;
        let typed = collection.typed();
        Ok(NanoDocs { runtime, mmap_reads, collection, typed })
    }
}

fn age(document: &Document) -> Option<i64> {
    document.get("age").and_then(Value::as_i64)
}

/// Reads document `id` and the two fields a lookup checks.
fn probe(collection: &Collection, id: &str) -> DocResult<Option<Probe>> {
    let Some(document) = collection.get(id).map_err(text)? else { return Ok(None) };
    let counter = document.get("counter").and_then(Value::as_i64);
    Probe::of(id, age(&document), counter).map(Some)
}

/// A clone of the collection handle, for one thread of `get-parallel`.
struct NanoReader(Collection);

impl DocReader for NanoReader {
    fn get(&mut self, id: &str) -> DocResult<Option<Probe>> {
        probe(&self.0, id)
    }
}

impl DocEngine for NanoDocs {
    fn insert(&mut self, doc: &Doc) -> DocResult<()> {
        self.typed.insert(doc).map(|_| ()).map_err(text)
    }

    fn insert_many(&mut self, docs: &[Doc]) -> DocResult<()> {
        self.typed.insert_many(docs).map(|_| ()).map_err(text)
    }

    fn get(&mut self, id: &str) -> DocResult<Option<Probe>> {
        probe(&self.collection, id)
    }

    fn readers(&mut self, count: usize) -> DocResult<Option<Vec<Box<dyn DocReader>>>> {
        let reader = |_| Box::new(NanoReader(self.collection.clone())) as Box<dyn DocReader>;
        Ok(Some((0..count).map(reader).collect()))
    }

    fn scan(&mut self) -> DocResult<Tally> {
        let mut tally = Tally::default();
        for document in self.collection.documents().map_err(text)? {
            tally.add(age(&document.map_err(text)?))?;
        }
        Ok(tally)
    }

    fn find_eq(&mut self, field: &str, value: &str) -> DocResult<Tally> {
        let filter = Filter::eq(check_field(field)?, value).map_err(text)?;
        let page = self.collection.find(&Query::new(filter)).map_err(text)?;
        let mut tally = Tally::default();
        for document in &page.documents {
            tally.add(age(document))?;
        }
        Ok(tally)
    }

    fn set_counter(&mut self, id: &str, counter: i64) -> DocResult<()> {
        self.collection.patch(id, &Patch::new().set("counter", counter)).map(|_| ()).map_err(text)
    }

    fn delete(&mut self, id: &str) -> DocResult<()> {
        match self.collection.delete(id).map_err(text)? {
            Some(_) => Ok(()),
            None => Err(format!("delete: no document {id}")),
        }
    }

    fn count(&mut self) -> DocResult<u64> {
        self.collection.count(&Filter::True).map_err(text)
    }

    fn describe(&self) -> String {
        format!(
            "nanodb {}: NanoDbOptions::default() (256 MiB memory budget for memtables and block cache, 16 MiB memtable, LZ4 blocks) with DatabaseOptions {{ sync: false{} }} (wal write per commit, no fsync); MessagePack documents, caller-given ids; index by_city",
            env!("CARGO_PKG_VERSION"),
            if self.mmap_reads { ", mmap_reads: true" } else { "" }
        )
    }

    fn close(self: Box<Self>) -> DocResult<()> {
        self.runtime.close().map_err(text)
    }
}
