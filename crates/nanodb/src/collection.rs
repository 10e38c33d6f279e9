//! `Collection`: the documents of one collection: insert, get, replace, patch, upsert, delete,
//! and their many-document forms, each atomic.
//!
//! Every write runs in a storage transaction (snapshot isolation), so its existence checks and
//! its writes commit together: two concurrent inserts of one id cannot both succeed, and a
//! write that loses to a concurrent commit of the same document is retried (up to
//! `WRITE_RETRIES_MAX` times) from a fresh snapshot. Documents are stored as MessagePack under
//! their id in the collection's keyspace.
//!
//! Thread safety: `Collection` is `Send + Sync` and cheap to clone.
//!
//! Every index of the collection is updated in the same transaction as the document
//! (`index::update_entries`).
//!
//! Invariants:
//! 1. A stored document always has `id` (equal to its key), `created` and `updated`, with
//!    `created <= updated`; the collection sets them, callers cannot change `created`.
//! 2. Nothing is written unless every document of the call passes its checks.

use crate::database::{CollectionState, Database};
use crate::document::{check_fields, check_size, Document, FIELD_CREATED, FIELD_ID, FIELD_UPDATED};
use crate::index::{update_entries, IndexState};
use crate::names::check_document_id;
use crate::patch::Patch;
use crate::value::{msgpack, Date, Map, Value};
use crate::{id, Error, Result};
use nanodb_storage::{Transaction, TransactionOptions};
use std::sync::Arc;
use std::time::Duration;

/// How many times a document write is run again after losing to a concurrent commit.
pub const WRITE_RETRIES_MAX: u32 = 8;
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
fn object(document: Value) -> Result<Map> {
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

    /// Runs `body` in a storage transaction and commits it, again from a fresh snapshot after
    /// a conflict (at most `WRITE_RETRIES_MAX` more times).
    fn write<T>(&self, mut body: impl FnMut(&mut Transaction, &Context) -> Result<T>) -> Result<T> {
        let options = TransactionOptions {
            write_options: self.db.inner.write_options(),
            ..TransactionOptions::default()
        };
        let mut attempt = 0;
        loop {
            self.state.check_live()?;
            // Held to the commit: an index cannot appear in the middle of this write.
            let _writing = self.state.writers.read();
            let mut txn = self.db.inner.db.transaction_with(options.clone())?;
            let indexes = self.state.indexes();
            let context = Context { state: &self.state, indexes: &indexes, now: Date::now() };
            let value = body(&mut txn, &context)?;
            let committed = txn.commit().map_err(Error::from);
            drop(_writing);
            match committed {
                Ok(()) => return Ok(value),
                Err(Error::Conflict) if attempt < WRITE_RETRIES_MAX => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_micros(50 << attempt.min(6)));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Inserts a document (an object) and returns it as stored. Its `id` is the caller's, if
    /// given (`Error::AlreadyExists` if taken), else generated; `created` and `updated` are
    /// set to now.
    pub fn insert(&self, document: impl Into<Value>) -> Result<Document> {
        let fields = object(document.into())?;
        self.write(|txn, context| context.insert(txn, fields.clone()))
    }

    /// Inserts every document, all or none.
    pub fn insert_many(&self, documents: Vec<Value>) -> Result<Vec<Document>> {
        check_many(documents.len())?;
        let all: Vec<Map> = documents.into_iter().map(object).collect::<Result<_>>()?;
        self.write(|txn, context| {
            all.iter().map(|fields| context.insert(txn, fields.clone())).collect()
        })
    }

    /// The document with `id`, if any.
    pub fn get(&self, id: &str) -> Result<Option<Document>> {
        self.state.check_live()?;
        let Some(bytes) = self.state.documents.get(id)? else { return Ok(None) };
        Document::decode(&bytes, &document_context(id, &self.state.name())).map(Some)
    }

    /// Replaces the fields of document `id` with `document` (keeping `id` and `created`);
    /// `Error::NotFound` if there is no such document.
    pub fn replace(&self, id: &str, document: impl Into<Value>) -> Result<Document> {
        let fields = object(document.into())?;
        self.write(|txn, context| {
            let Some(old) = context.read(txn, id)? else {
                return Err(Error::NotFound { kind: "document", name: id.to_string() });
            };
            context.store(txn, id, fields.clone(), Some(&old))
        })
    }

    /// Applies `patch` to document `id`; `Error::NotFound` if there is no such document.
    pub fn patch(&self, id: &str, patch: &Patch) -> Result<Document> {
        self.write(|txn, context| {
            let Some(old) = context.read(txn, id)? else {
                return Err(Error::NotFound { kind: "document", name: id.to_string() });
            };
            let mut fields = old.fields().clone();
            patch.apply(&mut fields)?;
            context.store(txn, id, fields, Some(&old))
        })
    }

    /// Replaces document `id` with `document`, or inserts it with that id.
    pub fn upsert(&self, id: &str, document: impl Into<Value>) -> Result<Document> {
        check_document_id(id)?;
        let fields = object(document.into())?;
        self.write(|txn, context| {
            let old = context.read(txn, id)?;
            context.store(txn, id, fields.clone(), old.as_ref())
        })
    }

    /// Deletes document `id`; returns its last version, or `None` if there was none.
    pub fn delete(&self, id: &str) -> Result<Option<Document>> {
        self.write(|txn, context| context.delete(txn, id))
    }

    /// Deletes every listed document, all in one commit; returns those that existed.
    pub fn delete_many(&self, ids: &[&str]) -> Result<Vec<Document>> {
        check_many(ids.len())?;
        self.write(|txn, context| {
            let mut deleted = Vec::new();
            for id in ids {
                deleted.extend(context.delete(txn, id)?);
            }
            Ok(deleted)
        })
    }

    /// Every document, in id order (a full scan of the collection's keyspace).
    pub fn documents(&self) -> Result<impl Iterator<Item = Result<Document>> + use<>> {
        self.state.check_live()?;
        let name = self.name();
        let iter = self.state.documents.iter()?;
        Ok(iter.map(move |entry| {
            let (key, bytes) = entry?;
            Document::decode(&bytes, &document_context(&String::from_utf8_lossy(&key), &name))
        }))
    }
}

fn check_many(count: usize) -> Result<()> {
    Error::check_limit("documents in one call", count, MANY_DOCUMENTS_MAX)
}

/// How errors name document `id` of collection `collection`.
fn document_context(id: &str, collection: &str) -> String {
    format!("document {id:?} of {collection}")
}

/// One write attempt: the collection, its indexes and the time its documents get.
struct Context<'a> {
    state: &'a CollectionState,
    indexes: &'a [Arc<IndexState>],
    now: Date,
}

impl Context<'_> {
    fn read(&self, txn: &mut Transaction, id: &str) -> Result<Option<Document>> {
        let Some(bytes) = txn.get_in(&self.state.documents, id)? else { return Ok(None) };
        Document::decode(&bytes, &document_context(id, &self.state.name())).map(Some)
    }

    fn insert(&self, txn: &mut Transaction, mut fields: Map) -> Result<Document> {
        let id = match fields.remove(FIELD_ID) {
            Some(Value::String(id)) => {
                check_document_id(&id)?;
                if txn.get_in(&self.state.documents, &id)?.is_some() {
                    return Err(Error::AlreadyExists { kind: "document", name: id });
                }
                id
            }
            Some(other) => {
                return Err(Error::invalid(format!(
                    "id must be a string, not a {}",
                    other.type_name()
                )))
            }
            None => loop {
                let id = id::generate(self.state.spec.read().options.id_length)?;
                if txn.get_in(&self.state.documents, &id)?.is_none() {
                    break id;
                }
            },
        };
        self.store(txn, &id, fields, None)
    }

    /// Writes `fields` as document `id` (replacing `old`, if any), with the reserved fields
    /// set, and updates the indexes.
    fn store(
        &self,
        txn: &mut Transaction,
        id: &str,
        mut fields: Map,
        old: Option<&Document>,
    ) -> Result<Document> {
        let created = old.map_or(self.now, Document::created);
        fields.remove(FIELD_ID);
        fields.remove(FIELD_CREATED);
        fields.remove(FIELD_UPDATED);
        check_fields(&fields)?;
        fields.insert(FIELD_ID.into(), Value::String(id.to_string()));
        fields.insert(FIELD_CREATED.into(), Value::Date(created));
        fields.insert(FIELD_UPDATED.into(), Value::Date(self.now.max(created)));
        let mut bytes = Vec::new();
        msgpack::encode_map(&fields, &mut bytes);
        check_size(&bytes)?;
        txn.put_in(&self.state.documents, id, bytes)?;
        let old_fields = old.map(Document::fields);
        update_entries(txn, self.state, self.indexes, id, old_fields, Some(&fields))?;
        Document::from_stored(fields, "a new document")
    }

    fn delete(&self, txn: &mut Transaction, id: &str) -> Result<Option<Document>> {
        let old = self.read(txn, id)?;
        if let Some(old) = &old {
            txn.delete_in(&self.state.documents, id)?;
            update_entries(txn, self.state, self.indexes, id, Some(old.fields()), None)?;
        }
        Ok(old)
    }
}
