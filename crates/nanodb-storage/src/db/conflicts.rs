//! Conflict checks for optimistic transactions, run by the group-commit leader.
//!
//! A transaction read at snapshot seqno `s`. It may commit only if no write it would overwrite
//! (snapshot isolation), and, when serializable, no key or range it read, changed after `s`:
//! no version (put or delete) of such a key has a seqno above `s`, no range tombstone above
//! `s` covers it, and no batch before it in the same commit group writes it.
//!
//! Thread safety: called by the leader with the WAL lock held, after every earlier group is
//! in the memtable: the current view then holds every committed write, so check and commit
//! are one atomic step with respect to other commits.
//!
//! Invariants:
//! 1. The newest version of a key is never dropped by compaction while a snapshot older than
//!    it lives (the transaction holds its snapshot), so a key's latest change after the
//!    snapshot is always seen. One case is missed: a key absent at the snapshot, then put and
//!    removed by a range deletion whose tombstone is collected before the commit; the state
//!    is then as if neither happened, so committing over it loses no write.
//! 2. The checks are conservative: they may report a conflict that a finer check would not
//!    (for example a range bound excluded by one byte), never miss one.

use super::read::{newest_version, KeyBounds};
use super::DbInner;
use crate::batch::{OpKind, WriteBatch};
use crate::iter::{Direction, InternalIterator, LevelCursor, MergingIterator};
use crate::key::{internal_key, parse_internal_key, KIND_FOR_SEEK, SEQNO_MAX};
use crate::memtable::Lookup;
use crate::range_del::overlaps_bounds;
use crate::version::ReadView;
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

/// What a transaction asks to be checked when it commits.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConflictCheck {
    /// The seqno the transaction read at.
    pub(crate) snapshot_seqno: u64,
    /// Stored keys that must not have changed since: those written, and (serializable) read.
    pub(crate) keys: Vec<Vec<u8>>,
    /// Stored-key ranges that must not have changed (serializable scans).
    pub(crate) ranges: Vec<KeyBounds>,
}

/// The keys and ranges the batches before the current one in a commit group write.
#[derive(Debug, Default)]
pub(crate) struct GroupWrites {
    keys: BTreeSet<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl GroupWrites {
    /// Adds what `batch` writes.
    pub(crate) fn add(&mut self, batch: &WriteBatch) {
        for op in batch.ops().flatten() {
            match op.kind {
                OpKind::DeleteRange => self.ranges.push((op.key.to_vec(), op.value.to_vec())),
                _ => {
                    self.keys.insert(op.key.to_vec());
                }
            }
        }
    }

    fn touches_key(&self, key: &[u8]) -> bool {
        self.keys.contains(key)
            || self
                .ranges
                .iter()
                .any(|(start, end)| start.as_slice() <= key && key < end.as_slice())
    }

    fn touches_range(&self, bounds: &KeyBounds) -> Option<Vec<u8>> {
        if super::read::bounds_are_empty(bounds) {
            return None;
        }
        let (lower, upper) = bounds;
        let range = (as_ref(lower), as_ref(upper));
        if let Some(key) = self.keys.range::<[u8], _>(range).next() {
            return Some(key.clone());
        }
        self.ranges
            .iter()
            .find(|(start, end)| overlaps_bounds(start, end, as_ref(lower), as_ref(upper)))
            .map(|(start, _)| start.clone())
    }
}

fn as_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// `Err(Error::Conflict)` naming the first key that changed after the snapshot. `seqno_last`
/// is the seqno of the last commit in the view: when it is not past the snapshot, nothing
/// committed since, and only the group's earlier batches are looked at (no key is read).
pub(crate) fn check(
    inner: &DbInner,
    view: &ReadView,
    check: &ConflictCheck,
    group: &GroupWrites,
    seqno_last: u64,
) -> Result<()> {
    let snapshot = check.snapshot_seqno;
    let committed_since = seqno_last > snapshot;
    for key in &check.keys {
        if group.touches_key(key) || (committed_since && key_changed(inner, view, key, snapshot)?) {
            return Err(Error::Conflict { key: key.clone() });
        }
    }
    for range in &check.ranges {
        if let Some(key) = group.touches_range(range) {
            return Err(Error::Conflict { key });
        }
        if !committed_since {
            continue;
        }
        if let Some(key) = range_changed(view, range, snapshot)? {
            return Err(Error::Conflict { key });
        }
    }
    Ok(())
}

/// True if `key` has a version or a covering range tombstone newer than `snapshot`.
fn key_changed(inner: &DbInner, view: &ReadView, key: &[u8], snapshot: u64) -> Result<bool> {
    if view.range_dels.covering_seqno(key, SEQNO_MAX) > snapshot {
        return Ok(true);
    }
    Ok(match newest_version(inner, view, key, SEQNO_MAX)? {
        Lookup::Found(_, seqno) | Lookup::Deleted(seqno) | Lookup::Expiring(_, seqno) => {
            seqno > snapshot
        }
        Lookup::Absent => false,
    })
}

/// The first key in `range` with a version newer than `snapshot`, if any. Only sources that
/// hold such versions at all (largest seqno above the snapshot) are read.
fn range_changed(view: &ReadView, range: &KeyBounds, snapshot: u64) -> Result<Option<Vec<u8>>> {
    let (lower, upper) = range;
    if let Some(tombstone) =
        view.range_dels.newer_overlapping(as_ref(lower), as_ref(upper), snapshot)
    {
        return Ok(Some(tombstone.start.clone()));
    }
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    for memtable in std::iter::once(&view.mem).chain(view.imms.iter()) {
        if memtable.seqno_max() > snapshot {
            children.push(Box::new(memtable.cursor(Direction::Forward)));
        }
    }
    for (level, files) in view.version.levels.iter().enumerate() {
        let newer: Vec<_> =
            files.iter().filter(|file| file.meta.seqno_max > snapshot).map(Arc::clone).collect();
        if level == 0 {
            // L0 files may overlap (within a keyspace): one cursor each.
            for file in newer {
                children.push(Box::new(LevelCursor::new(vec![file], Direction::Forward)));
            }
        } else if !newer.is_empty() {
            children.push(Box::new(LevelCursor::new(newer, Direction::Forward)));
        }
    }
    if children.is_empty() {
        return Ok(None);
    }
    let mut merged = MergingIterator::new(children, Direction::Forward);
    match lower {
        Bound::Included(key) | Bound::Excluded(key) => {
            merged.seek(&internal_key(key, SEQNO_MAX, KIND_FOR_SEEK))?
        }
        Bound::Unbounded => merged.seek_to_start()?,
    }
    while merged.valid() {
        let Some(parsed) = parse_internal_key(merged.key()) else {
            return Err(Error::Internal("a source yielded a malformed internal key".into()));
        };
        let past_upper = match upper {
            Bound::Included(key) => parsed.user_key > key.as_slice(),
            Bound::Excluded(key) => parsed.user_key >= key.as_slice(),
            Bound::Unbounded => false,
        };
        if past_upper {
            break;
        }
        let before_lower =
            matches!(lower, Bound::Excluded(key) if parsed.user_key == key.as_slice());
        if parsed.seqno > snapshot && !before_lower {
            return Ok(Some(parsed.user_key.to_vec()));
        }
        merged.next()?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_writes_see_keys_and_ranges_of_earlier_batches() {
        let mut batch = WriteBatch::new();
        batch.put(b"b", b"1").delete_range(b"m", b"p");
        let mut group = GroupWrites::default();
        group.add(&batch);
        // Stored keys carry the default keyspace prefix (0).
        assert!(group.touches_key(b"\0b"));
        assert!(group.touches_key(b"\0n"), "inside the range deletion");
        assert!(!group.touches_key(b"\0p"), "the range's end is exclusive");
        let range = |lower: &[u8], upper: &[u8]| {
            (Bound::Included(lower.to_vec()), Bound::Excluded(upper.to_vec()))
        };
        assert_eq!(group.touches_range(&range(b"\0a", b"\0c")), Some(b"\0b".to_vec()));
        assert!(group.touches_range(&range(b"\0c", b"\0m")).is_none());
        assert!(group.touches_range(&range(b"\0o", b"\0z")).is_some());
    }
}
