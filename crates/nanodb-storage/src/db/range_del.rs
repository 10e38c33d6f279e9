//! Range tombstones in the database: which durable tombstones a compaction applies, and the
//! garbage collector that forgets a tombstone once nothing it hides is left.
//!
//! Thread safety: called with the engine lock held; the snapshots lock is taken briefly
//! inside (it is a leaf lock).
//!
//! Invariants:
//! 1. A tombstone leaves the manifest and the view only when no live file may still hold a
//!    version it hides (`compaction::collectable`). Reads, a snapshot's included, are then the
//!    same with or without it.
//! 2. Only durable tombstones (in the manifest) are applied by compactions: one still in a
//!    memtable may be lost with an unsynced WAL tail, and the versions it hides must then
//!    still exist.

use super::flush::commit_edit;
use super::{DbInner, EngineState};
use crate::compaction::collectable;
use crate::manifest::{ManifestState, VersionEdit};
use crate::range_del::RangeTombstones;
use crate::Result;
use parking_lot::MutexGuard;
use std::collections::HashSet;
use std::sync::Arc;

/// Tombstones with a seqno up to this one are seen by every snapshot (all of them when there
/// is none), so applying them drops every version they hide.
pub(crate) fn applicable_seqno_max(inner: &DbInner) -> u64 {
    inner.snapshots.lock().keys().next().copied().unwrap_or(u64::MAX)
}

/// The durable tombstones of `state`, for a compaction whose oldest snapshot (or horizon,
/// with none) is `read_seqno_min`, and the seqno its outputs record as applied.
pub(crate) fn for_compaction(
    state: &ManifestState,
    snapshots: &[u64],
    read_seqno_min: u64,
) -> (Arc<RangeTombstones>, u64) {
    let oldest_snapshot = snapshots.first().copied().unwrap_or(u64::MAX);
    let applied = state
        .range_tombstones
        .iter()
        .map(|tombstone| tombstone.seqno)
        .filter(|&seqno| seqno <= oldest_snapshot)
        .max()
        .unwrap_or(0);
    let set = RangeTombstones::build(state.range_tombstones.clone(), read_seqno_min);
    (Arc::new(set), applied)
}

/// Forgets the durable tombstones nothing needs any more: one manifest edit and a view swap.
pub(crate) fn collect_garbage(
    inner: &DbInner,
    engine: &mut MutexGuard<'_, EngineState>,
) -> Result<()> {
    if engine.state.range_tombstones.is_empty() {
        return Ok(());
    }
    let removed: HashSet<u64> = collectable(&engine.state).into_iter().collect();
    if removed.is_empty() {
        return Ok(());
    }
    let mut seqnos: Vec<u64> = removed.iter().copied().collect();
    seqnos.sort_unstable();
    let edit = VersionEdit { removed_range_tombstones: seqnos, ..VersionEdit::default() };
    commit_edit(inner, engine, &edit)?;
    let view = inner.current_view();
    let range_dels = view.range_dels.without(|tombstone| removed.contains(&tombstone.seqno));
    *inner.view.write() = Arc::new(view.with_range_dels(range_dels));
    super::stats::StatsCounters::add(&inner.stats.range_tombstones_collected, removed.len() as u64);
    Ok(())
}
