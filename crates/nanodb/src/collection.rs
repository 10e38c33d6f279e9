//! `Collection`: the documents of one collection: insert, get, replace, patch, upsert, delete,
//! and their many-document forms, each atomic.
//!
//! Every write is a `Transaction` touching this one collection (snapshot isolation), so its
//! existence checks and its writes commit together: two concurrent inserts of one id cannot
//! both succeed, and a write that loses to a concurrent commit of the same document is retried
//! (up to `WRITE_RETRIES_MAX` times) from a fresh snapshot. Documents are stored as MessagePack
//! under their id in the collection's keyspace; every index is updated in the same commit
//! (`transaction::Context`). In a collection with a TTL, expired documents are never returned.
//!
//! Thread safety: `Collection` is `Send + Sync` and cheap to clone.
//!
//! Invariants:
//! 1. A stored document always has `id` (equal to its key), `created` and `updated`, with
//!    `created <= updated`; the collection sets them, callers cannot change `created`.
//! 2. Nothing is written unless every document of the call passes its checks.

use crate::database::{CollectionState, Database};
use crate::document::Document;
use crate::feed::{ChangeStream, FeedOptions};
use crate::names::check_document_id;
use crate::patch::Patch;
use crate::transaction::{Context, Writes};
use crate::ttl::{expired, Expiry};
use crate::value::{Date, Map, Value};
use crate::{Error, Result};
use std::sync::Arc;

/// Most documents one `insert_many`, `upsert_many` or `delete_many` call takes.
pub const MANY_DOCUMENTS_MAX: usize = 100_000;

/// A handle to one collection. Cheap to clone.
#[derive(Clone)]
pub struct Collection {
    db: Database,
    state: Arc<CollectionState>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection").field("name", &self.state.name()).finish_non_exhaustive()
    }
}

/// The fields of a document to write, from any value that is an object.
pub(crate) fn object(document: Value) -> Result<Map> {
    match document {
        Value::Object(map) => Ok(map),
        other => Err(Error::invalid(format!(
            "a document must be an object, not a {}",
            other.type_name()
        ))),
    }
}

impl Collection {
    pub(crate) fn new(db: Database, state: Arc<CollectionState>) -> Collection {
        Collection { db, state }
    }

    /// The collection's name.
    pub fn name(&self) -> String {
        self.state.name()
    }

    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    pub(crate) fn state(&self) -> &Arc<CollectionState> {
        &self.state
    }

    /// Runs `body` in a transaction touching only this collection and commits it, again
    /// from a fresh snapshot after a conflict (`Database::run_transaction`).
    pub(crate) fn write<T>(
        &self,
        mut body: impl FnMut(&Context, &mut Writes) -> Result<T>,
    ) -> Result<T> {
        self.db.run_transaction(|txn| {
            let (context, writes) = txn.context(&self.state)?;
            body(&context, writes)
        })
    }

    /// Inserts a document (an object) and returns it as stored. Its `id` is the caller's, if
    /// given (`Error::AlreadyExists` if taken), else generated; `created` and `updated` are
    /// set to now.
    pub fn insert(&self, document: impl Into<Value>) -> Result<Document> {
        let fields = object(document.into())?;
        self.write(|context, writes| context.insert(writes, &fields))
    }

    /// Inserts every document, all or none.
    pub fn insert_many(&self, documents: Vec<Value>) -> Result<Vec<Document>> {
        check_many(documents.len())?;
        let all: Vec<Map> = documents.into_iter().map(object).collect::<Result<_>>()?;
        self.write(|context, writes| {
            all.iter().map(|fields| context.insert(writes, fields)).collect()
        })
    }

    /// The document with `id`, if any.
    pub fn get(&self, id: &str) -> Result<Option<Document>> {
        self.state.check_live()?;
        let context = || document_context(id, &self.state.name());
        // Put back together straight from the cached block, without copying the value out.
        let read =
            |bytes: &[u8]| Document::from_stored_slice(bytes, id, &self.state.names, context);
        let Some(document) = self.state.documents.get_with(id, read)? else { return Ok(None) };
        let document = document?;
        let expiry = Expiry::of(&self.state, Date::now());
        Ok(Some(document).filter(|document| !expired(expiry.as_ref(), document)))
    }

    /// Replaces the fields of document `id` with `document` (keeping `id` and `created`);
    /// `Error::NotFound` if there is no such document.
    pub fn replace(&self, id: &str, document: impl Into<Value>) -> Result<Document> {
        let fields = object(document.into())?;
        self.write(|context, writes| context.replace(writes, id, &fields))
    }

    /// Applies `patch` to document `id`; `Error::NotFound` if there is no such document.
    pub fn patch(&self, id: &str, patch: &Patch) -> Result<Document> {
        self.write(|context, writes| context.patch(writes, id, patch))
    }

    /// Replaces document `id` with `document`, or inserts it with that id.
    pub fn upsert(&self, id: &str, document: impl Into<Value>) -> Result<Document> {
        check_document_id(id)?;
        let fields = object(document.into())?;
        self.write(|context, writes| context.upsert(writes, id, &fields))
    }

    /// Deletes document `id`; returns its last version, or `None` if there was none.
    pub fn delete(&self, id: &str) -> Result<Option<Document>> {
        self.write(|context, writes| context.delete(writes, id))
    }

    /// Deletes every listed document, all in one commit; returns those that existed.
    pub fn delete_many(&self, ids: &[&str]) -> Result<Vec<Document>> {
        check_many(ids.len())?;
        self.write(|context, writes| {
            let mut deleted = Vec::new();
            for id in ids {
                deleted.extend(context.delete(writes, id)?);
            }
            Ok(deleted)
        })
    }

    /// Deletes those of `ids` that are expired, in one commit; returns how many.
    pub(crate) fn delete_expired(&self, ids: &[&str]) -> Result<usize> {
        self.write(|context, writes| {
            let mut deleted = 0;
            for id in ids {
                deleted += usize::from(context.delete_if_expired(writes, id)?);
            }
            Ok(deleted)
        })
    }

    /// Subscribes to the committed changes of this collection (see `ChangeStream`). Waits for
    /// the writes in flight to finish first.
    pub fn subscribe(&self, options: FeedOptions) -> Result<ChangeStream> {
        self.state.check_live()?;
        let id = self.state.id();
        crate::feed::subscribe(&self.db, Some(id), &options)
    }

    /// Every document, in id order (a full scan of the collection's keyspace).
    pub fn documents(&self) -> Result<impl Iterator<Item = Result<Document>> + use<>> {
        self.state.check_live()?;
        let name = self.name();
        let expiry = Expiry::of(&self.state, Date::now());
        let iter = self.state.documents.iter()?;
        let names = Arc::clone(&self.state.names);
        Ok(iter.filter_map(move |entry| {
            let decoded = entry.map_err(Error::from).and_then(|(key, bytes)| {
                let id = String::from_utf8_lossy(&key);
                Document::from_stored(bytes, &id, &names, || document_context(&id, &name))
            });
            match decoded {
                Ok(document) if expired(expiry.as_ref(), &document) => None,
                other => Some(other),
            }
        }))
    }
}

pub(crate) fn check_many(count: usize) -> Result<()> {
    Error::check_limit("documents in one call", count, MANY_DOCUMENTS_MAX)
}

/// How errors name document `id` of collection `collection`.
pub(crate) fn document_context(id: &str, collection: &str) -> String {
    format!("document {id:?} of {collection}")
}
