//! The change feed: committed document changes of a database, delivered to subscribers in
//! commit order.
//!
//! Every write transaction that changes documents while someone subscribes records its
//! changes (`Change`) and hands them to its storage commit as a commit note. The storage
//! engine gives the database's `Hub` (its commit listener) each note with the commit's seqno,
//! in seqno order, once the commit is durable and visible; the hub copies the events into the
//! buffer of every subscriber whose scope (one collection, or the whole database) they are in.
//! A commit that fails or conflicts is never delivered.
//!
//! Starting a subscription: the hub's `active` count goes up first; then every collection in
//! scope has its writers gate taken exclusively, once, which waits out the writes that began
//! before (and so may not have recorded their changes); then, under the hub's lock, the
//! subscriber's start seqno is the last visible one. A commit after it started after the count
//! went up, so it carried its changes: no commit after the start seqno is missed.
//!
//! Thread safety: the hub is shared by the database and its commit listener; its lock is held
//! by the commit listener (under the storage WAL lock) only to copy events into buffers.
//!
//! Invariants:
//! 1. A subscriber receives exactly the events of commits with seqno above its start, in
//!    seqno order, each once, until its buffer overflows (`Error::Lagged`) or it is closed.
//! 2. A buffer never holds more than its `FeedOptions::buffer_events_max` events.

mod stream;

pub use stream::ChangeStream;

use crate::document::Document;
use crate::{Error, Result};
use nanodb_storage::{CommitListener, CommitNote};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use stream::Subscriber;

/// Default of `FeedOptions::buffer_events_max`.
pub const FEED_BUFFER_EVENTS_DEFAULT: usize = 4096;
/// Largest `FeedOptions::buffer_events_max`.
pub const FEED_BUFFER_EVENTS_MAX: usize = 1 << 20;

/// What a change did to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The document was inserted (also by an upsert of a new id).
    Create,
    /// The document was replaced or patched (also by an upsert of an existing id).
    Update,
    /// The document was deleted (also by TTL expiry); the event holds its last version.
    Delete,
}

impl ChangeKind {
    /// `"create"`, `"update"` or `"delete"` (PocketBase's action names).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// One committed change of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The commit's seqno: increasing in commit order, equal for the changes of one
    /// transaction.
    pub seqno: u64,
    /// The collection's name when the change was made.
    pub collection: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The document as committed (for a delete, its last version).
    pub document: Document,
}

/// Options of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedOptions {
    /// Most events held for the subscriber; when one more arrives the subscription ends with
    /// `Error::Lagged` after the events already held.
    pub buffer_events_max: usize,
}

impl Default for FeedOptions {
    fn default() -> FeedOptions {
        FeedOptions { buffer_events_max: FEED_BUFFER_EVENTS_DEFAULT }
    }
}

impl FeedOptions {
    fn validate(&self) -> Result<()> {
        if self.buffer_events_max == 0 {
            return Err(Error::invalid("buffer_events_max must be at least 1"));
        }
        Error::check_limit("feed buffer events", self.buffer_events_max, FEED_BUFFER_EVENTS_MAX)
    }
}

/// A change recorded by a write, before its commit.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub collection_id: u64,
    pub collection: String,
    pub kind: ChangeKind,
    pub document: Document,
}

/// The changes of one transaction: its commit note.
struct ChangeNote(Vec<Change>);

/// Wraps a transaction's changes as its commit note.
pub(crate) fn commit_note(changes: Vec<Change>) -> CommitNote {
    Arc::new(ChangeNote(changes))
}

/// The subscribers of one database; its storage commit listener.
#[derive(Default)]
pub(crate) struct Hub {
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// Subscriptions started or starting; writes record changes while it is above zero.
    active: AtomicUsize,
}

impl Hub {
    /// True if writes must record their changes (read with the collection's writers gate
    /// held, see the module header).
    pub fn recording(&self) -> bool {
        self.active.load(Ordering::SeqCst) > 0
    }

    /// Ends every subscription (the database is closing).
    pub fn close_all(&self) {
        for subscriber in self.subscribers.lock().drain(..) {
            subscriber.close(Error::Closed);
            self.active.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Ends the subscriptions to collection `id` (it was dropped).
    pub fn close_collection(&self, id: u64, name: &str) {
        self.subscribers.lock().retain(|subscriber| {
            if subscriber.scope != Some(id) {
                return true;
            }
            subscriber.close(Error::NotFound { kind: "collection", name: name.to_string() });
            self.active.fetch_sub(1, Ordering::SeqCst);
            false
        });
    }

    fn remove(&self, subscriber: &Arc<Subscriber>) {
        let mut subscribers = self.subscribers.lock();
        let before = subscribers.len();
        subscribers.retain(|other| !Arc::ptr_eq(other, subscriber));
        if subscribers.len() < before {
            self.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl CommitListener for Hub {
    fn committed(&self, seqno: u64, note: &CommitNote) {
        let Some(ChangeNote(changes)) = note.downcast_ref::<ChangeNote>() else { return };
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|subscriber| {
            if seqno <= subscriber.start_seqno {
                return true;
            }
            let mut events = changes
                .iter()
                .filter(|change| subscriber.scope.is_none_or(|id| id == change.collection_id))
                .map(|change| ChangeEvent {
                    seqno,
                    collection: change.collection.clone(),
                    kind: change.kind,
                    document: change.document.clone(),
                })
                .peekable();
            if events.peek().is_none() || subscriber.push(events) {
                return true;
            }
            // Lagged: it receives nothing more, so writes need not record for it.
            self.active.fetch_sub(1, Ordering::SeqCst);
            false
        });
    }
}

/// Starts a subscription to the changes of `collections` (`scope`: one collection's id, or
/// `None` for every collection of the database).
pub(crate) fn subscribe(
    database: &crate::Database,
    scope: Option<u64>,
    options: &FeedOptions,
) -> Result<ChangeStream> {
    options.validate()?;
    let inner = &database.inner;
    let hub = &inner.hub;
    hub.active.fetch_add(1, Ordering::SeqCst);
    let started = (|| {
        for state in database.collection_states() {
            if scope.is_none_or(|id| id == state.id()) {
                // Waits out the writes that may have begun before `active` went up.
                drop(state.writers.write());
            }
        }
        let mut subscribers = hub.subscribers.lock();
        let start_seqno = inner.db.snapshot()?.seqno();
        let subscriber = Arc::new(Subscriber::new(scope, start_seqno, options.buffer_events_max));
        subscribers.push(Arc::clone(&subscriber));
        Ok(subscriber)
    })();
    match started {
        Ok(subscriber) => Ok(ChangeStream::new(Arc::downgrade(&inner.hub), subscriber)),
        Err(error) => {
            hub.active.fetch_sub(1, Ordering::SeqCst);
            Err(error)
        }
    }
}
