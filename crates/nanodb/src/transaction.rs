//! `Transaction`: document writes across the collections of one database that commit
//! together, with snapshot isolation.
//!
//! A transaction reads the database as of its start (plus its own writes) and buffers its
//! writes in a storage transaction; `commit` applies them all or, if another commit changed a
//! document it wrote since it began, none (`Error::Conflict`). `Database::run_transaction`
//! runs a closure again after a conflict. Every index of a touched collection is updated in the
//! same commit, unique indexes checked against the transaction's view; the change feed gets
//! the transaction's changes as one commit.
//!
//! Each collection a transaction touches has its writers gate held (shared) from the first
//! touch to the end of the transaction, so its index list cannot change under it: creating or
//! dropping an index of that collection, or subscribing to it, waits for the transaction. Keep
//! transactions short. The first gate waits behind exclusive takers, so a steady stream of
//! writes cannot starve them; the later gates of a transaction are taken "recursively"
//! (ignoring waiting exclusive takers), so two transactions touching the same collections in
//! different orders cannot deadlock with an index creation waiting between them.
//!
//! Each write of a transaction is atomic on its own (`atomically`): one that fails (a unique
//! value taken, a document too large, the transaction's memory limit) leaves nothing of
//! itself behind, and the transaction can go on and commit the writes that succeeded.
//!
//! Every single-document write of `Collection` is such a transaction with one collection.
//!
//! Thread safety: a `Transaction` is `Send`, used by one thread (`&mut self`).
//!
//! Invariants: a transaction's changes reach the change feed only if its commit succeeds; a
//! write that returned an error left no document, index entry or feed change behind.

use crate::collection::{document_context, object, Collection};
use crate::database::{CollectionState, Database};
use crate::document::{
    check_fields, check_size, stored, Document, FIELD_CREATED, FIELD_ID, FIELD_UPDATED,
};
use crate::feed::{commit_note, Change, ChangeKind};
use crate::index::{update_entries, IndexState};
use crate::names::check_document_id;
use crate::patch::Patch;
use crate::query::eval::TopFields;
use crate::ttl::{expired, Expiry};
use crate::value::{msgpack, Date, Map, Value};
use crate::{id, Error, Result};
use nanodb_storage::TransactionOptions;
use parking_lot::lock_api::ArcRwLockReadGuard;
use parking_lot::RawRwLock;
use std::sync::Arc;
use std::time::Duration;

mod encoded;

/// How many times a document write (or `Database::run_transaction`) runs again after losing to
/// a concurrent commit.
pub const WRITE_RETRIES_MAX: u32 = 8;

/// A multi-document, multi-collection transaction (`Database::transaction`). Dropping it
/// without `commit` discards its writes.
pub struct Transaction {
    db: Database,
    writes: Writes,
    touched: Vec<Touched>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("database", &self.db.name())
            .field("collections", &self.touched.len())
            .finish_non_exhaustive()
    }
}

/// The storage transaction and the changes recorded for the feed.
pub(crate) struct Writes {
    pub txn: nanodb_storage::Transaction,
    pub changes: Vec<Change>,
    /// The time every document written gets.
    pub now: Date,
    /// Indexes whose multikey marker this transaction writes: recorded once it commits.
    pub multikey_marked: Vec<Arc<IndexState>>,
}

/// A collection the transaction has touched.
struct Touched {
    state: Arc<CollectionState>,
    indexes: Arc<Vec<Arc<IndexState>>>,
    expiry: Option<Expiry>,
    /// Whether the feed had subscribers when the collection was first touched.
    record: bool,
    /// Held to the end of the transaction.
    _gate: ArcRwLockReadGuard<RawRwLock, ()>,
}

impl Transaction {
    pub(crate) fn begin(db: &Database) -> Result<Transaction> {
        let options = TransactionOptions {
            write_options: db.inner.write_options(),
            ..TransactionOptions::default()
        };
        let txn = db.inner.db.transaction_with(options)?;
        let writes =
            Writes { txn, changes: Vec::new(), now: Date::now(), multikey_marked: Vec::new() };
        Ok(Transaction { db: db.clone(), writes, touched: Vec::new() })
    }

    /// The collection's context in this transaction, touching it first if needed.
    pub(crate) fn context(
        &mut self,
        state: &Arc<CollectionState>,
    ) -> Result<(Context<'_>, &mut Writes)> {
        let position = match self.touched.iter().position(|t| Arc::ptr_eq(&t.state, state)) {
            Some(position) => position,
            None => {
                state.check_live()?;
                // The first gate waits behind exclusive takers (so they are not starved); the
                // next ones must not, holding one already (see the module header).
                let gate = if self.touched.is_empty() {
                    state.writers.read_arc()
                } else {
                    state.writers.read_arc_recursive()
                };
                let record = self.db.inner.hub.recording();
                self.touched.push(Touched {
                    state: Arc::clone(state),
                    indexes: state.indexes(),
                    expiry: Expiry::of(state, self.writes.now),
                    record,
                    _gate: gate,
                });
                self.touched.len() - 1
            }
        };
        let touched = &self.touched[position];
        let context = Context {
            state: &touched.state,
            indexes: &touched.indexes,
            expiry: touched.expiry.as_ref(),
            record: touched.record,
        };
        Ok((context, &mut self.writes))
    }

    fn of(&mut self, collection: &Collection) -> Result<(Context<'_>, &mut Writes)> {
        if !Arc::ptr_eq(&collection.database().inner, &self.db.inner) {
            return Err(Error::invalid(format!(
                "collection {} belongs to another database than this transaction's",
                collection.name()
            )));
        }
        self.context(collection.state())
    }

    /// The document with `id` as this transaction sees it (its own writes included).
    pub fn get(&mut self, collection: &Collection, id: &str) -> Result<Option<Document>> {
        let (context, writes) = self.of(collection)?;
        context.read(writes, id)
    }

    /// Inserts a document, as `Collection::insert` does.
    pub fn insert(
        &mut self,
        collection: &Collection,
        document: impl Into<Value>,
    ) -> Result<Document> {
        let fields = object(document.into())?;
        let (context, writes) = self.of(collection)?;
        atomically(writes, |writes| context.insert(writes, &fields))
    }

    /// Replaces document `id`, as `Collection::replace` does.
    pub fn replace(
        &mut self,
        collection: &Collection,
        id: &str,
        document: impl Into<Value>,
    ) -> Result<Document> {
        let fields = object(document.into())?;
        let (context, writes) = self.of(collection)?;
        atomically(writes, |writes| context.replace(writes, id, &fields))
    }

    /// Applies `patch` to document `id`, as `Collection::patch` does.
    pub fn patch(&mut self, collection: &Collection, id: &str, patch: &Patch) -> Result<Document> {
        let (context, writes) = self.of(collection)?;
        atomically(writes, |writes| context.patch(writes, id, patch))
    }

    /// Replaces or inserts document `id`, as `Collection::upsert` does.
    pub fn upsert(
        &mut self,
        collection: &Collection,
        id: &str,
        document: impl Into<Value>,
    ) -> Result<Document> {
        check_document_id(id)?;
        let fields = object(document.into())?;
        let (context, writes) = self.of(collection)?;
        atomically(writes, |writes| context.upsert(writes, id, &fields))
    }

    /// Deletes document `id`; returns its last version, if there was one.
    pub fn delete(&mut self, collection: &Collection, id: &str) -> Result<Option<Document>> {
        let (context, writes) = self.of(collection)?;
        atomically(writes, |writes| context.delete(writes, id))
    }

    /// Commits every write atomically, or none with `Error::Conflict`.
    pub fn commit(self) -> Result<()> {
        let Transaction { writes, touched, .. } = self;
        let Writes { mut txn, changes, multikey_marked, .. } = writes;
        if !changes.is_empty() {
            txn.set_commit_note(commit_note(changes));
        }
        let committed = txn.commit().map_err(Error::from);
        if committed.is_ok() {
            for index in multikey_marked {
                index.multikey.set_recorded();
            }
        }
        // The gates are released only after the commit (see the module header).
        drop(touched);
        committed
    }
}

impl Database {
    /// Begins a transaction over the collections of this database.
    pub fn transaction(&self) -> Result<Transaction> {
        Transaction::begin(self)
    }

    /// Runs `body` in a transaction and commits it; after a conflict (from `body` or the
    /// commit) runs both again from a fresh snapshot, at most `WRITE_RETRIES_MAX` more times.
    /// Any other error is returned at once and nothing is written.
    pub fn run_transaction<T>(
        &self,
        mut body: impl FnMut(&mut Transaction) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let mut txn = Transaction::begin(self)?;
            let result = body(&mut txn).and_then(|value| txn.commit().map(|()| value));
            match result {
                Err(Error::Conflict) if attempt < WRITE_RETRIES_MAX => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_micros(50 << attempt.min(6)));
                }
                other => return other,
            }
        }
    }
}

/// One collection in a transaction: its state, the index list and expiry the transaction
/// uses, and whether its changes go to the feed.
pub(crate) struct Context<'a> {
    state: &'a CollectionState,
    indexes: &'a [Arc<IndexState>],
    expiry: Option<&'a Expiry>,
    record: bool,
}

impl Context<'_> {
    /// The stored document `id`, expired or not.
    fn read_stored(&self, writes: &mut Writes, id: &str) -> Result<Option<Document>> {
        let Some(bytes) = writes.txn.get_in(&self.state.documents, id)? else { return Ok(None) };
        let context = || document_context(id, &self.state.name());
        Document::from_stored(bytes, id, &self.state.names, context).map(Some)
    }

    /// Document `id` unless it is missing or expired.
    pub fn read(&self, writes: &mut Writes, id: &str) -> Result<Option<Document>> {
        let document = self.read_stored(writes, id)?;
        Ok(document.filter(|document| !expired(self.expiry, document)))
    }

    pub fn insert(&self, writes: &mut Writes, fields: &Map) -> Result<Document> {
        let (id, stored) = self.claim_id(writes, fields.get(FIELD_ID))?;
        // An expired document under the id is replaced as if it were gone.
        self.store(writes, &id, fields, stored.as_ref(), false)
    }

    /// The id a new document gets: `given` (its `id` field, which must be a string and not
    /// the id of a live document), else a fresh one; with what is stored under it (an expired
    /// document, or nothing).
    fn claim_id(
        &self,
        writes: &mut Writes,
        given: Option<&Value>,
    ) -> Result<(String, Option<Document>)> {
        match given {
            Some(Value::String(id)) => {
                check_document_id(id)?;
                let stored = self.read_stored(writes, id)?;
                if stored.as_ref().is_some_and(|old| !expired(self.expiry, old)) {
                    return Err(Error::AlreadyExists { kind: "document", name: id.clone() });
                }
                Ok((id.clone(), stored))
            }
            Some(other) => {
                Err(Error::invalid(format!("id must be a string, not a {}", other.type_name())))
            }
            None => loop {
                let id_length = self.state.spec.read().options.id_length;
                let id = id::generate(id_length)?;
                if writes.txn.get_in(&self.state.documents, &id)?.is_none() {
                    break Ok((id, None));
                }
            },
        }
    }

    pub fn replace(&self, writes: &mut Writes, id: &str, fields: &Map) -> Result<Document> {
        let Some(old) = self.read(writes, id)? else { return Err(not_found(id)) };
        self.store(writes, id, fields, Some(&old), true)
    }

    pub fn patch(&self, writes: &mut Writes, id: &str, patch: &Patch) -> Result<Document> {
        let Some(old) = self.read(writes, id)? else { return Err(not_found(id)) };
        let mut fields = old.fields().clone();
        patch.apply(&mut fields)?;
        self.store(writes, id, &fields, Some(&old), true)
    }

    pub fn upsert(&self, writes: &mut Writes, id: &str, fields: &Map) -> Result<Document> {
        let stored = self.read_stored(writes, id)?;
        let live = stored.as_ref().is_some_and(|old| !expired(self.expiry, old));
        self.store(writes, id, fields, stored.as_ref(), live)
    }

    /// Writes `fields` as document `id` in place of `old` (stored, maybe expired: its index
    /// entries go), with the reserved fields set (whatever `fields` holds under their names);
    /// `updating` keeps `old`'s `created`.
    fn store(
        &self,
        writes: &mut Writes,
        id: &str,
        fields: &Map,
        old: Option<&Document>,
        updating: bool,
    ) -> Result<Document> {
        check_fields(fields)?;
        if let Some(schema) = &self.state.spec.read().options.schema {
            schema.check(fields)?;
        }
        let (created, updated) = self.stamp_times(writes, old, updating);
        let (created, updated) = (Value::Date(created), Value::Date(updated));
        let id_value = Value::String(id.to_string());
        let reserved =
            [(FIELD_CREATED, &created), (FIELD_ID, &id_value), (FIELD_UPDATED, &updated)];
        let mut bytes = Vec::new();
        msgpack::encode_map_replacing(fields, &reserved, &mut bytes);
        self.write_stamped(writes, id, bytes, None, old, updating)
    }

    /// The end of every document write: `bytes` (the document with its reserved fields set,
    /// laid out as `spans` when the writer knows them) stored in place of `old`, the index
    /// entries moved from `old`'s values to its own, the change recorded for the feed.
    fn write_stamped(
        &self,
        writes: &mut Writes,
        id: &str,
        bytes: Vec<u8>,
        spans: Option<Vec<msgpack::FieldSpan>>,
        old: Option<&Document>,
        updating: bool,
    ) -> Result<Document> {
        check_size(&bytes)?;
        // The stored form after the index checks: a write a unique index refuses interns
        // none of its names.
        let stored_form = |bytes: &[u8]| stored::compact(bytes, id, &self.state.names);
        let document = match spans {
            Some(spans) => Document::laid_out(bytes, spans),
            None => Document::encoded(bytes, || document_context(id, &self.state.name()))?,
        };
        let old_fields = old.map(|old| old as &dyn TopFields);
        update_entries(writes, self.state, self.indexes, id, old_fields, Some(&document))?;
        let stored = match document.map_bytes() {
            Some(map) => stored_form(map)?,
            // Held decoded (never for the encoder's own bytes, whose names are sorted).
            None => stored_form(&msgpack::to_bytes(&Value::Object(document.fields().clone())))?,
        };
        writes.txn.put_in(&self.state.documents, id, &stored)?;
        let kind = if updating { ChangeKind::Update } else { ChangeKind::Create };
        self.record(writes, kind, &document);
        Ok(document)
    }

    /// The `created` and `updated` of a document written in place of `old` (kept `created`
    /// when `updating`); an expired `old` being replaced is recorded as deleted first.
    fn stamp_times(
        &self,
        writes: &mut Writes,
        old: Option<&Document>,
        updating: bool,
    ) -> (Date, Date) {
        let now = writes.now;
        if let Some(old) = old.filter(|_| !updating) {
            // An expired document replaced before the reaper came: it goes first.
            self.record(writes, ChangeKind::Delete, old);
        }
        let created = old.filter(|_| updating).map_or(now, Document::created);
        (created, now.max(created))
    }

    /// Deletes document `id` (expired or not); returns it if it was live.
    pub fn delete(&self, writes: &mut Writes, id: &str) -> Result<Option<Document>> {
        let Some(old) = self.read_stored(writes, id)? else { return Ok(None) };
        self.remove(writes, id, &old)?;
        Ok(Some(old).filter(|old| !expired(self.expiry, old)))
    }

    /// Deletes document `id` if it is expired; true if it was.
    pub fn delete_if_expired(&self, writes: &mut Writes, id: &str) -> Result<bool> {
        let Some(old) = self.read_stored(writes, id)? else { return Ok(false) };
        if !expired(self.expiry, &old) {
            return Ok(false);
        }
        self.remove(writes, id, &old)?;
        Ok(true)
    }

    fn remove(&self, writes: &mut Writes, id: &str, old: &Document) -> Result<()> {
        writes.txn.delete_in(&self.state.documents, id)?;
        update_entries(writes, self.state, self.indexes, id, Some(old), None)?;
        self.record(writes, ChangeKind::Delete, old);
        Ok(())
    }

    fn record(&self, writes: &mut Writes, kind: ChangeKind, document: &Document) {
        if self.record {
            let spec = self.state.spec.read();
            writes.changes.push(Change {
                collection_id: spec.id,
                collection: spec.name.clone(),
                kind,
                document: document.clone(),
            });
        }
    }
}

/// Runs one document write under a savepoint of the storage transaction: if it fails, every
/// write it made (the document, some of its index entries) and every change it recorded for
/// the feed are undone, and the transaction goes on as it was before the write (a failed
/// write neither half-happens nor spoils the transaction).
fn atomically<T>(writes: &mut Writes, write: impl FnOnce(&mut Writes) -> Result<T>) -> Result<T> {
    let savepoint = writes.txn.savepoint();
    let (changes, marked) = (writes.changes.len(), writes.multikey_marked.len());
    let result = write(writes);
    match &result {
        Ok(_) => writes.txn.release(savepoint)?,
        Err(_) => {
            writes.txn.rollback_to(savepoint)?;
            writes.changes.truncate(changes);
            writes.multikey_marked.truncate(marked);
        }
    }
    result
}

fn not_found(id: &str) -> Error {
    Error::NotFound { kind: "document", name: id.to_string() }
}
