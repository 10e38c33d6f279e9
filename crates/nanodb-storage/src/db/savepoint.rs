//! Savepoints of a transaction: the writes buffered since a savepoint can be undone, so an
//! operation made of several writes that fails halfway (a document and its index entries,
//! say) leaves the transaction as it was before the operation, as SQLite rolls back a failed
//! statement and keeps its transaction.
//!
//! While a savepoint is open, every buffered write records what it replaced: the key (its
//! bytes appended to one buffer, so recording allocates nothing once the buffers have grown)
//! and the key's previous buffered write, if it had one (moved out of the map, not copied).
//! Rolling back replays the records newest first. With no savepoint open nothing is
//! recorded, so transactions that never take one pay nothing. The records count against the
//! transaction's memory limit (`record_bytes`) until the last savepoint closes.
//!
//! Thread safety: part of a `Transaction`, used by one thread.
//!
//! Invariants:
//! 1. Records exist only while a savepoint is open; `bytes` is the charge of the records held.
//! 2. Savepoints close latest first: closing one closes every savepoint opened after it, and a
//!    savepoint of another transaction, or one already closed, is refused (`check`), so every
//!    open savepoint's marks are at most the current counts.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one record costs against the transaction's memory limit besides its key and the
/// value it holds: the record itself and the map entry it may put back.
pub const UNDO_RECORD_OVERHEAD_BYTES: usize = 48;

/// Source of the undo logs' identities (one per transaction).
static NEXT_LOG_ID: AtomicU64 = AtomicU64::new(1);

/// A point a transaction can go back to (`Transaction::savepoint`); close it with
/// `Transaction::release` (keep the writes since) or `Transaction::rollback_to` (undo them).
#[derive(Debug)]
#[must_use = "a savepoint left open keeps recording every write until the transaction ends"]
pub struct Savepoint {
    /// The undo log (so the transaction) it belongs to.
    pub(super) log_id: u64,
    /// How many savepoints were open before this one.
    pub(super) depth: usize,
    pub(super) records: usize,
    /// The log's charge when it opened.
    pub(super) undo_bytes: usize,
    /// The transaction's memory charge for writes (and records) when it opened.
    pub(super) write_bytes: usize,
    pub(super) keyspaces: usize,
}

/// One write made while a savepoint was open: where its key ends in `UndoLog::keys`, and the
/// write it replaced (`None`: the key had no buffered write).
#[derive(Debug)]
struct Record {
    key_end: usize,
    previous: Option<Option<Vec<u8>>>,
}

/// The records of the writes made while savepoints are open.
#[derive(Debug)]
pub(super) struct UndoLog {
    id: u64,
    keys: Vec<u8>,
    records: Vec<Record>,
    open: usize,
    bytes: usize,
}

impl Default for UndoLog {
    fn default() -> UndoLog {
        let id = NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed);
        UndoLog { id, keys: Vec::new(), records: Vec::new(), open: 0, bytes: 0 }
    }
}

/// The charge of a record of a write of a `key_len`-byte key that replaced a buffered value
/// of `replaced_len` bytes (`None`: no buffered write).
pub(super) fn record_bytes(key_len: usize, replaced_len: Option<usize>) -> usize {
    key_len + replaced_len.unwrap_or(0) + UNDO_RECORD_OVERHEAD_BYTES
}

impl UndoLog {
    /// Whether writes are being recorded.
    pub(super) fn is_open(&self) -> bool {
        self.open > 0
    }

    /// Opens a savepoint at the transaction's `write_bytes` and `keyspaces` count.
    pub(super) fn open(&mut self, write_bytes: usize, keyspaces: usize) -> Savepoint {
        let savepoint = Savepoint {
            log_id: self.id,
            depth: self.open,
            records: self.records.len(),
            undo_bytes: self.bytes,
            write_bytes,
            keyspaces,
        };
        self.open += 1;
        savepoint
    }

    /// Refuses a savepoint of another transaction or one no longer open.
    pub(super) fn check(&self, savepoint: &Savepoint) -> Result<()> {
        if savepoint.log_id != self.id {
            return Err(Error::InvalidArgument("a savepoint of another transaction".into()));
        }
        if savepoint.depth >= self.open {
            return Err(Error::InvalidArgument(
                "a savepoint already released or rolled back (directly or by an earlier one)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Records a write of `key` about to be buffered, charged `bytes` (`record_bytes`); what
    /// it replaces follows by `replaced`, once the map hands it back.
    pub(super) fn record(&mut self, key: &[u8], bytes: usize) {
        self.keys.extend_from_slice(key);
        self.records.push(Record { key_end: self.keys.len(), previous: None });
        self.bytes += bytes;
    }

    /// What the write just recorded replaced.
    pub(super) fn replaced(&mut self, previous: Option<Option<Vec<u8>>>) {
        if let Some(record) = self.records.last_mut() {
            record.previous = previous;
        }
    }

    /// Closes `savepoint` (checked) and every one opened after it, keeping the writes made
    /// since; returns the charge freed (all of the log's, when the last savepoint closes).
    pub(super) fn release(&mut self, savepoint: &Savepoint) -> usize {
        self.open = savepoint.depth;
        if self.open > 0 {
            return 0;
        }
        self.keys.clear();
        self.records.clear();
        std::mem::take(&mut self.bytes)
    }

    /// Puts every key written since `savepoint` (checked) back as it was in `writes`, newest
    /// first, and closes it and every savepoint opened after it.
    pub(super) fn roll_back(
        &mut self,
        savepoint: &Savepoint,
        writes: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) {
        while self.records.len() > savepoint.records {
            let Some(record) = self.records.pop() else { break };
            let key_start = self.records.last().map_or(0, |before| before.key_end);
            let key = &self.keys[key_start..record.key_end];
            match record.previous {
                Some(previous) => {
                    writes.insert(key.to_vec(), previous);
                }
                None => {
                    writes.remove(key);
                }
            }
            self.keys.truncate(key_start);
        }
        self.bytes = savepoint.undo_bytes;
        self.release(savepoint);
    }
}
