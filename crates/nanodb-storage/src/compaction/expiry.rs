//! The expiry sweep: compactions that reclaim expired versions in files nothing else would
//! compact (a quiet tree, or the last level, which size-driven compaction never rewrites).
//!
//! A file's earliest expiry comes from the manifest (`FileMeta::expiry_min`). Once the clock
//! passes it, the file is rewritten (`plan_rewrite`): its expired versions become tombstones,
//! dropped where tombstones may be, so the outputs no longer report that expiry and the file
//! is not picked again for it.
//!
//! Thread safety: pure functions over a `ManifestState`.
//!
//! Invariants:
//! 1. Only files whose earliest expiry is at or before `now_ms` are picked, never a busy one.
//! 2. The sweep runs only when no size- or range-deletion-driven compaction is due.

use super::picker::{plan_rewrite, CompactionPlan};
use crate::manifest::ManifestState;
use std::collections::HashSet;

/// The next compaction the expiry sweep asks for at `now_ms`, if any: the file with the
/// earliest expiry that has passed.
pub fn pick_expired(
    state: &ManifestState,
    busy: &HashSet<u64>,
    now_ms: u64,
) -> Option<CompactionPlan> {
    let mut expired: Vec<(u64, usize, &crate::manifest::FileMeta)> = state
        .levels
        .iter()
        .enumerate()
        .flat_map(|(level, files)| files.iter().map(move |file| (file.expiry_min, level, file)))
        .filter(|(expiry, _, file)| {
            *expiry > 0 && *expiry <= now_ms && !busy.contains(&file.number)
        })
        .collect();
    expired.sort_by_key(|(expiry, level, _)| (*expiry, *level));
    expired.into_iter().find_map(|(_, level, file)| plan_rewrite(state, busy, level, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;
    use crate::manifest::{FileMeta, VersionEdit};

    fn file(number: u64, level: u32, range: (&str, &str), expiry_min: u64) -> FileMeta {
        FileMeta {
            number,
            level,
            size_bytes: 100,
            entry_count: 1,
            seqno_min: number,
            seqno_max: number,
            smallest_key: internal_key(range.0.as_bytes(), number, 1),
            largest_key: internal_key(range.1.as_bytes(), number, 1),
            range_del_applied_seqno: 0,
            expiry_min,
        }
    }

    #[test]
    fn only_files_with_a_passed_expiry_are_rewritten_earliest_first() {
        let mut state = ManifestState::default();
        let edit = VersionEdit {
            added: vec![
                file(1, 6, ("a", "c"), 500),
                file(2, 6, ("d", "f"), 200),
                file(3, 5, ("d", "e"), 0),
                file(4, 6, ("g", "h"), 9_000),
            ],
            ..Default::default()
        };
        state.apply(&edit).unwrap();
        assert!(pick_expired(&state, &HashSet::new(), 100).is_none(), "nothing expired yet");
        let plan = pick_expired(&state, &HashSet::new(), 600).unwrap();
        assert_eq!(plan.inputs[0].number, 2, "the earliest expiry first");
        assert_eq!((plan.level, plan.output_level, plan.bottommost), (6, 6, true));
        assert!(!plan.trivial_move);
        let busy: HashSet<u64> = [2].into_iter().collect();
        assert_eq!(pick_expired(&state, &busy, 600).unwrap().inputs[0].number, 1);
        let busy: HashSet<u64> = [1, 2].into_iter().collect();
        assert!(pick_expired(&state, &busy, 600).is_none());
    }
}
