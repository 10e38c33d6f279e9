//! Collection TTL: documents that expire by a date field, never returned once expired, and
//! removed in the background.
//!
//! A collection created with `CollectionOptions::ttl` expires a document when its TTL field
//! holds a date and that date plus `Ttl::after` is not in the future. With `after` zero the
//! field is a per-document expiry time (`expires_at`); with `created` and a duration it is a
//! lifetime. A document whose field is missing or not a date never expires.
//!
//! Expired documents are invisible at once: reads, queries, counts, aggregations and
//! transactions skip them, an insert may reuse their id, and replace, patch and delete treat
//! them as gone. The collection keeps a hidden index on the field (`TTL_INDEX_NAME`), so a
//! background thread per database (`start_reaper`, every `DatabaseOptions::ttl_check_interval`)
//! finds expired documents without a scan and deletes them, with their index entries, in
//! transactions of at most `REAP_CHUNK_DOCUMENTS`; each deletion is a change-feed event.
//!
//! Thread safety: the reaper holds only a weak reference to the database, and stops at
//! shutdown (`Database::shutdown` wakes and joins it) or when the database is gone.
//!
//! Invariant: a document is deleted by the reaper only if it is expired in the transaction
//! that deletes it (an update that pushed its date forward wins).

use crate::collection::Collection;
use crate::database::{CollectionState, Database, DatabaseInner};
use crate::index::IndexDefinition;
use crate::query::ast::{CompareOp, FieldPath};
use crate::query::eval::{single, Root, TopFields};
use crate::query::interval::{for_compare, key_range};
use crate::value::{Date, Value, DATE_MS_MAX};
use crate::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Name of the index a TTL collection keeps on its TTL field (reserved: users cannot create
/// or drop an index of this name).
pub const TTL_INDEX_NAME: &str = "_ttl";
/// Longest `Ttl::after`: 1,000 years.
pub const TTL_AFTER_MAX: Duration = Duration::from_secs(1000 * 366 * 86_400);
/// Most documents the reaper deletes in one transaction.
pub const REAP_CHUNK_DOCUMENTS: usize = 1000;
/// Default of `DatabaseOptions::ttl_check_interval`.
pub const TTL_CHECK_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Shortest `DatabaseOptions::ttl_check_interval`.
pub const TTL_CHECK_INTERVAL_MIN: Duration = Duration::from_millis(10);
/// Longest `DatabaseOptions::ttl_check_interval`: a day.
pub const TTL_CHECK_INTERVAL_MAX: Duration = Duration::from_secs(86_400);

/// How a collection's documents expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    /// The date field (a dotted path) that expiry counts from.
    pub field: String,
    /// How long after the field's date a document expires.
    pub after: Duration,
}

impl Ttl {
    /// Documents expire `after` the date in `field` (for example `Ttl::new("created",
    /// Duration::from_secs(3600))` keeps each document an hour).
    pub fn new(field: &str, after: Duration) -> Ttl {
        Ttl { field: field.to_string(), after }
    }

    /// Each document expires at the date in its `field` (a per-document expiry time).
    pub fn at(field: &str) -> Ttl {
        Ttl::new(field, Duration::ZERO)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let path = FieldPath::parse(&self.field)?;
        if path.segments().first().map(String::as_str) == Some(crate::FIELD_ID) {
            return Err(Error::invalid("the TTL field cannot be the id, which is not a date"));
        }
        if self.after > TTL_AFTER_MAX {
            return Err(Error::invalid(format!(
                "the TTL duration is {:?}, over the limit of {TTL_AFTER_MAX:?}",
                self.after
            )));
        }
        Ok(())
    }

    /// The hidden index on the field.
    pub(crate) fn index(&self) -> Result<IndexDefinition> {
        IndexDefinition::new(TTL_INDEX_NAME, &[self.field.as_str()])
    }

    fn after_ms(&self) -> i64 {
        i64::try_from(self.after.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Which documents of a collection are expired at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Expiry {
    path: FieldPath,
    /// A document whose field is a date at or before this many milliseconds since the epoch
    /// has expired.
    cutoff_ms: i64,
}

impl Expiry {
    /// The expiry of collection `state` at `now`; `None` if it has no TTL.
    pub fn of(state: &CollectionState, now: Date) -> Option<Expiry> {
        let spec = state.spec.read();
        let ttl = spec.options.ttl.as_ref()?;
        let path = FieldPath::parse(&ttl.field).ok()?;
        Some(Expiry { path, cutoff_ms: now.unix_ms().saturating_sub(ttl.after_ms()) })
    }

    /// True if the document with `fields` has expired.
    pub(crate) fn is_expired(&self, fields: &dyn TopFields) -> bool {
        match single(Root::Fields(fields), &self.path).as_ref() {
            Value::Date(date) => date.unix_ms() <= self.cutoff_ms,
            _ => false,
        }
    }
}

/// True if `fields` are expired in collection `state` at `now` (no TTL: never).
pub(crate) fn expired(expiry: Option<&Expiry>, fields: &dyn TopFields) -> bool {
    expiry.is_some_and(|expiry| expiry.is_expired(fields))
}

impl Collection {
    /// Deletes every document that has expired (with its index entries), as the background
    /// reaper does; returns how many. Does nothing in a collection without TTL.
    pub fn remove_expired(&self) -> Result<u64> {
        self.state().check_live()?;
        let mut removed = 0;
        loop {
            let Some(expiry) = Expiry::of(self.state(), Date::now()) else { return Ok(0) };
            let ids = self.expired_ids(&expiry)?;
            if ids.is_empty() {
                return Ok(removed);
            }
            let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            removed += self.delete_expired(&id_refs)? as u64;
            if ids.len() < REAP_CHUNK_DOCUMENTS {
                return Ok(removed);
            }
        }
    }

    /// Up to `REAP_CHUNK_DOCUMENTS` ids from the TTL index whose date is at or before the
    /// cutoff (the oldest first).
    fn expired_ids(&self, expiry: &Expiry) -> Result<Vec<String>> {
        let state = self.state();
        let indexes = state.indexes();
        let Some(index) = indexes.iter().find(|index| index.definition.name == TTL_INDEX_NAME)
        else {
            return Err(Error::corruption(
                format!("collection {}", state.name()),
                "a TTL collection without its TTL index",
            ));
        };
        let mut ids = Vec::new();
        // Before the earliest date nothing can have expired.
        let Some(cutoff) = Date::from_unix_ms(expiry.cutoff_ms.min(DATE_MS_MAX)) else {
            return Ok(ids);
        };
        // The intervals also cover strings that read as dates; those ids are re-checked (and
        // kept) by `delete_expired`.
        for interval in for_compare(CompareOp::Lte, &Value::Date(cutoff)).unwrap_or_default() {
            let range = key_range(&[], &interval, false);
            for entry in index.keyspace.range(range)? {
                let (_, id) = entry?;
                ids.push(String::from_utf8_lossy(&id).into_owned());
                if ids.len() == REAP_CHUNK_DOCUMENTS {
                    return Ok(ids);
                }
            }
        }
        Ok(ids)
    }
}

/// Wakes the reaper early: at shutdown.
#[derive(Default)]
pub(crate) struct ReaperWake {
    closing: Mutex<bool>,
    changed: Condvar,
}

impl ReaperWake {
    /// Tells the reaper to stop.
    pub fn close(&self) {
        *self.closing.lock() = true;
        self.changed.notify_all();
    }

    /// Waits `interval` or until closed; true if closed.
    fn wait(&self, interval: Duration) -> bool {
        let mut closing = self.closing.lock();
        if !*closing {
            self.changed.wait_for(&mut closing, interval);
        }
        *closing
    }
}

/// Starts the database's TTL reaper unless it runs already.
pub(crate) fn start_reaper(database: &Database) {
    let inner = &database.inner;
    if inner.reaper_started.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak = Arc::downgrade(inner);
    let wake = Arc::clone(&inner.reaper_wake);
    let interval = inner.options.ttl_check_interval;
    let spawned = std::thread::Builder::new()
        .name("nanodb-ttl".into())
        .spawn(move || reap_until_closed(&weak, &wake, interval));
    match spawned {
        Ok(thread) => inner.builders.lock().push(thread),
        // Expired documents stay invisible, only not removed; the next TTL collection
        // created or opened tries again.
        Err(_) => inner.reaper_started.store(false, Ordering::Release),
    }
}

/// The reaper's loop: a pass over every TTL collection per interval. Holds the database
/// only during a pass, so dropping every handle ends it.
fn reap_until_closed(weak: &Weak<DatabaseInner>, wake: &ReaperWake, interval: Duration) {
    while !wake.wait(interval) {
        let Some(inner) = weak.upgrade() else { return };
        let database = Database { inner };
        for collection in database.ttl_collections() {
            // A failed pass (a closing database, a conflict) is tried again next interval.
            let _ = collection.remove_expired();
        }
    }
}
