//! Whether an index is multikey: whether some document has given it more than one entry (an
//! array of distinct items at an indexed path, or a path through an array of objects). While
//! an index is not, every document has exactly one entry in it, so a count of the documents
//! whose leading indexed fields equal given values is a count of entries
//! (`query::exec::count_by_index`), with no document read.
//!
//! The flag is recorded once in the catalog (`m/<index id>`, see `catalog`), by the first write
//! that gives a document several entries, in that write's own storage transaction: so it is
//! durable exactly when such a document is, whatever crashes. It is never cleared: deleting
//! the document leaves the index multikey (as in MongoDB), which only costs counts their
//! shortcut. Markers of dropped indexes are removed on open.
//!
//! Thread safety: the in-memory flags are atomics. `possible` is set before the write that
//! gives several entries commits, and a reader takes its storage snapshot before it reads the
//! flag: if the snapshot holds such a document, the commit was published before it, and the
//! flag store before that. `recorded` is set only after a commit that wrote the marker, so a
//! failed or conflicting write leaves the next one to write it.
//!
//! Invariant: if any committed document has several entries in an index, the catalog holds
//! the index's marker, and `possible` is set in every open process.

use crate::catalog::MULTIKEY_KEY_PREFIX;
use crate::{Error, Result};
use nanodb_storage::{Keyspace, Transaction};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// An index's multikey flags.
#[derive(Debug)]
pub(crate) struct Multikey {
    /// Some document may have given the index several entries.
    possible: AtomicBool,
    /// The catalog holds the index's marker.
    recorded: AtomicBool,
}

impl Multikey {
    /// The flags of an index whose marker the catalog holds (`recorded`) or not.
    pub fn new(recorded: bool) -> Multikey {
        Multikey { possible: AtomicBool::new(recorded), recorded: AtomicBool::new(recorded) }
    }

    /// True if some document may have several entries in the index. Read it after taking the
    /// snapshot it is to describe.
    pub fn is_possible(&self) -> bool {
        self.possible.load(Ordering::SeqCst)
    }

    /// Notes that a write in `txn` gives a document `entries` entries in index `index_id`. When
    /// that is several and the marker is not recorded yet, puts it into `txn` (in `catalog`)
    /// and returns true: the caller calls `set_recorded` once `txn` commits.
    pub fn note(
        &self,
        txn: &mut Transaction,
        catalog: &Keyspace,
        index_id: u64,
        entries: usize,
    ) -> Result<bool> {
        if entries <= 1 || self.recorded.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.possible.store(true, Ordering::SeqCst);
        txn.put_in(catalog, marker_key(index_id), [])?;
        Ok(true)
    }

    /// The marker is durable in the catalog.
    pub fn set_recorded(&self) {
        self.recorded.store(true, Ordering::Release);
    }
}

/// The catalog key of index `index_id`'s marker.
pub(crate) fn marker_key(index_id: u64) -> Vec<u8> {
    [MULTIKEY_KEY_PREFIX, index_id.to_string().as_bytes()].concat()
}

/// The ids of the indexes whose markers `catalog` holds.
pub(crate) fn recorded_ids(catalog: &Keyspace) -> Result<HashSet<u64>> {
    let mut ids = HashSet::new();
    for entry in catalog.prefix(MULTIKEY_KEY_PREFIX)? {
        let (key, _) = entry?;
        let id = std::str::from_utf8(&key[MULTIKEY_KEY_PREFIX.len()..])
            .ok()
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or_else(|| {
                Error::corruption("catalog", format!("bad multikey marker key {key:?}"))
            })?;
        ids.insert(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_bad_keys_are_corruption() {
        let options = nanodb_storage::Options::in_memory();
        let db = nanodb_storage::Db::open("/db", options).unwrap();
        let catalog = db.keyspace("_catalog").unwrap();
        let flags = Multikey::new(false);
        let mut txn = db.transaction().unwrap();
        assert!(!flags.note(&mut txn, &catalog, 7, 1).unwrap(), "one entry is not multikey");
        assert!(!flags.is_possible());
        assert!(flags.note(&mut txn, &catalog, 7, 2).unwrap());
        assert!(flags.is_possible(), "set before the commit");
        txn.commit().unwrap();
        flags.set_recorded();
        let mut txn = db.transaction().unwrap();
        assert!(!flags.note(&mut txn, &catalog, 7, 3).unwrap(), "recorded once");
        assert_eq!(recorded_ids(&catalog).unwrap(), HashSet::from([7]));
        assert!(Multikey::new(true).is_possible());
        let sync = nanodb_storage::WriteOptions::SYNC;
        catalog.put([MULTIKEY_KEY_PREFIX, b"x1"].concat(), [], sync).unwrap();
        assert!(matches!(recorded_ids(&catalog), Err(Error::Corruption { .. })));
    }
}
