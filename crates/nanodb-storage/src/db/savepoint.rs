//! Savepoints of a transaction: the writes buffered since a savepoint can be undone, so an
//! operation made of several writes that fails halfway (a document and its index entries,
//! say) leaves the transaction as it was before the operation, as SQLite rolls back a failed
//! statement and keeps its transaction.
//!
//! While a savepoint is open, every buffered write records what it replaced: the key (its
//! bytes appended to one buffer, so recording allocates nothing once the buffers have grown)
//! and the key's previous buffered write, if it had one (moved out of the map, not copied).
//! Rolling back replays the records newest first. With no savepoint open nothing is
//! recorded, so transactions that never take one pay nothing.
//!
//! Thread safety: part of a `Transaction`, used by one thread.
//!
//! Invariants:
//! 1. Records exist only while a savepoint is open (closing the last clears them).
//! 2. A savepoint's marks are at most the current counts: savepoints close in the reverse of
//!    the order they opened (`Savepoint::depth` checks it), rolling back one closes it and
//!    every later one.

use std::collections::BTreeMap;

/// A point a transaction can go back to (`Transaction::savepoint`); close it with
/// `Transaction::release` (keep the writes since) or `Transaction::rollback_to` (undo them).
#[derive(Debug)]
#[must_use = "a savepoint left open keeps recording every write until the transaction ends"]
pub struct Savepoint {
    pub(super) records: usize,
    pub(super) memory_bytes: usize,
    pub(super) keyspaces: usize,
    /// How many savepoints were open before this one.
    pub(super) depth: usize,
}

/// One write made while a savepoint was open: where its key ends in `UndoLog::keys`, and the
/// write it replaced (`None`: the key had no buffered write).
#[derive(Debug)]
struct Record {
    key_end: usize,
    previous: Option<Option<Vec<u8>>>,
}

/// The records of the writes made while savepoints are open.
#[derive(Debug, Default)]
pub(super) struct UndoLog {
    keys: Vec<u8>,
    records: Vec<Record>,
    open: usize,
}

impl UndoLog {
    /// Whether writes are being recorded.
    pub(super) fn is_open(&self) -> bool {
        self.open > 0
    }

    /// Opens a savepoint; the caller fills in the transaction's own counts.
    pub(super) fn open(&mut self) -> (usize, usize) {
        let marks = (self.records.len(), self.open);
        self.open += 1;
        marks
    }

    /// Records a write of `key` about to be buffered (what it replaces follows, by
    /// `replaced`, once the write is in the map that hands it back).
    pub(super) fn record(&mut self, key: &[u8]) {
        self.keys.extend_from_slice(key);
        self.records.push(Record { key_end: self.keys.len(), previous: None });
    }

    /// What the write just recorded replaced.
    pub(super) fn replaced(&mut self, previous: Option<Option<Vec<u8>>>) {
        if let Some(record) = self.records.last_mut() {
            record.previous = previous;
        }
    }

    /// Closes `savepoint` (and any opened after it), keeping the writes made since.
    pub(super) fn release(&mut self, savepoint: &Savepoint) {
        debug_assert!(savepoint.depth < self.open, "a savepoint closed twice");
        self.open = savepoint.depth.min(self.open);
        if self.open == 0 {
            self.keys.clear();
            self.records.clear();
        }
    }

    /// Puts every key written since `savepoint` back as it was in `writes`, newest first, and
    /// closes the savepoint (and any opened after it).
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
        self.release(savepoint);
    }
}
