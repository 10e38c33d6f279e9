//! Building an index over the documents a collection already has, in the background.
//!
//! The index is registered first (`Collection::create_index`), with every write in flight
//! finished, so from then on every write maintains it. The builder then walks the documents
//! in id order, a chunk at a time; each chunk is one serializable transaction that reads each
//! document and writes its entries, so a chunk that raced a write of one of its documents
//! conflicts and runs again (with half as many documents) instead of writing stale entries.
//! When the walk ends the index is marked ready in the catalog. A crash before that leaves
//! it `Building`; the next open starts the build again (the entries already written are
//! right, and writing them again changes nothing).
//!
//! A unique index whose documents already hold a duplicate fails to build: it is removed and
//! `IndexBuild::wait` returns the `UniqueViolation`.
//!
//! Thread safety: one builder thread per index; `IndexBuild` may be waited on from any thread.
//!
//! Invariant: the index is marked ready only after every document that existed when it was
//! registered has its entries committed.

use super::{entries_of, IndexState};
use crate::database::{CollectionState, Database};
use crate::document::Document;
use crate::{Error, Result};
use nanodb_storage::{TransactionOptions, WriteOptions};
use parking_lot::{Condvar, Mutex};
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Documents per builder transaction at first (halved after each conflict).
pub const BUILD_CHUNK_DOCUMENTS: usize = 1_000;
/// How many conflicts in a row a builder takes before it gives up.
pub const BUILD_CONFLICTS_MAX: u32 = 64;

#[derive(Default)]
struct Outcome {
    result: Mutex<Option<Result<()>>>,
    done: Condvar,
}

/// A background index build (`Collection::create_index`).
#[derive(Clone)]
pub struct IndexBuild {
    outcome: Arc<Outcome>,
}

impl std::fmt::Debug for IndexBuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuild").field("finished", &self.is_finished()).finish()
    }
}

impl IndexBuild {
    /// Blocks until the build ends; its result (a `UniqueViolation` if the documents hold a
    /// duplicate of a unique index, `Closed` if the database closed first).
    pub fn wait(&self) -> Result<()> {
        let mut result = self.outcome.result.lock();
        while result.is_none() {
            self.outcome.done.wait(&mut result);
        }
        result.clone().unwrap_or(Ok(()))
    }

    /// True once the build has ended.
    pub fn is_finished(&self) -> bool {
        self.outcome.result.lock().is_some()
    }
}

/// Starts building `index` of collection `state` in a background thread.
pub(crate) fn start_build(
    database: &Database,
    state: Arc<CollectionState>,
    index: Arc<IndexState>,
) -> IndexBuild {
    let outcome = Arc::new(Outcome::default());
    let handle = IndexBuild { outcome: Arc::clone(&outcome) };
    let thread_database = database.clone();
    let spawned = std::thread::Builder::new().name("nanodb-index-build".into()).spawn(move || {
        let result = build(&thread_database, &state, &index)
            .and_then(|()| super::admin::mark_ready(&thread_database, &state, &index));
        if let Err(error) = &result {
            // A build stopped by closing resumes at the next open; any other failure removes
            // the index (the error reaches whoever waits on the build).
            if !matches!(error, Error::Closed) {
                let _ = super::admin::remove_failed(&thread_database, &state, &index);
            }
        }
        *outcome.result.lock() = Some(result);
        outcome.done.notify_all();
    });
    let mut builders = database.inner.builders.lock();
    builders.retain(|builder| !builder.is_finished());
    match spawned {
        Ok(thread) => builders.push(thread),
        Err(error) => {
            let failure = Error::invalid(format!("cannot start an index builder: {error}"));
            *handle.outcome.result.lock() = Some(Err(failure));
        }
    }
    handle
}

/// Writes the entries of every document of `state` into `index`.
fn build(database: &Database, state: &CollectionState, index: &IndexState) -> Result<()> {
    let inner = &database.inner;
    let mut after: Option<Vec<u8>> = None;
    let mut chunk_documents = BUILD_CHUNK_DOCUMENTS;
    let mut conflicts = 0;
    loop {
        if inner.closing.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        state.check_live()?;
        if index.dropped.load(Ordering::Acquire) {
            return Err(Error::NotFound { kind: "index", name: index.definition.name.clone() });
        }
        let start = after.clone().map_or(Bound::Unbounded, Bound::Excluded);
        let mut ids = Vec::with_capacity(chunk_documents);
        for entry in state.documents.range::<Vec<u8>, _>((start, Bound::Unbounded))? {
            ids.push(entry?.0);
            if ids.len() == chunk_documents {
                break;
            }
        }
        let Some(last) = ids.last().cloned() else { return Ok(()) };
        let options = TransactionOptions {
            write_options: WriteOptions::NO_SYNC,
            ..TransactionOptions::serializable()
        };
        let mut txn = inner.db.transaction_with(options)?;
        let mut marked = false;
        for id in &ids {
            let Some(bytes) = txn.get_in(&state.documents, id)? else { continue };
            let id = String::from_utf8_lossy(id);
            let context = || format!("document {id:?}");
            let document = Document::from_stored(bytes, &id, &state.names, context)?;
            let entries = entries_of(&index.definition, &document, &id)?;
            marked |= index.note_entries(&mut txn, entries.len())?;
            for entry in entries {
                if entry.unique {
                    if let Some(other) = txn.get_in(&index.keyspace, &entry.key)? {
                        if other != id.as_bytes() {
                            return Err(super::admin::violation(state, index, &document));
                        }
                    }
                }
                txn.put_in(&index.keyspace, &entry.key, id.as_bytes())?;
            }
        }
        match txn.commit().map_err(Error::from) {
            Ok(()) => {
                if marked {
                    index.multikey.set_recorded();
                }
                index.built_documents.fetch_add(ids.len() as u64, Ordering::Relaxed);
                after = Some(last);
                conflicts = 0;
            }
            Err(Error::Conflict) if conflicts < BUILD_CONFLICTS_MAX => {
                conflicts += 1;
                chunk_documents = (chunk_documents / 2).max(1);
            }
            Err(error) => return Err(error),
        }
    }
}
