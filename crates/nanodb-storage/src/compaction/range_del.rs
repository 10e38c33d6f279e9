//! Compactions that range tombstones ask for: dropping files a tombstone wholly hides, and
//! rewriting files that still hold versions a tombstone hides, so the space is reclaimed and
//! the tombstone can be forgotten (`db/range_del.rs`).
//!
//! Only tombstones no snapshot predates (`seqno <= applicable_seqno_max`) are considered:
//! applying them drops every version they hide, so a file rewritten for one comes out clean
//! (`FileMeta::range_del_applied_seqno` at or above it) and is not picked again for it.
//!
//! Thread safety: pure functions over a `ManifestState`.
//!
//! Invariants:
//! 1. A file is dropped only if its whole key range lies inside one tombstone's range and
//!    every version in it is older than the tombstone.
//! 2. Plans never name a busy file, and are never trivial moves (a move would not apply the
//!    tombstone).

use super::picker::{plan_rewrite, CompactionPlan};
use crate::key::user_key_of;
use crate::manifest::{FileMeta, ManifestState};
use crate::range_del::RangeTombstone;
use std::collections::HashSet;

/// True if `file` may hold a version `tombstone` hides.
pub fn is_dirty(file: &FileMeta, tombstone: &RangeTombstone) -> bool {
    file.seqno_min < tombstone.seqno
        && file.range_del_applied_seqno < tombstone.seqno
        && tombstone.overlaps(user_key_of(&file.smallest_key), user_key_of(&file.largest_key))
}

/// True if `tombstone` hides every version in `file`.
fn hides_whole_file(file: &FileMeta, tombstone: &RangeTombstone) -> bool {
    file.seqno_max < tombstone.seqno
        && tombstone.start.as_slice() <= user_key_of(&file.smallest_key)
        && user_key_of(&file.largest_key) < tombstone.end.as_slice()
}

/// The next compaction a range tombstone asks for, if any.
pub fn pick_range_deletion(
    state: &ManifestState,
    busy: &HashSet<u64>,
    applicable_seqno_max: u64,
) -> Option<CompactionPlan> {
    let applicable = state.range_tombstones.iter().filter(|t| t.seqno <= applicable_seqno_max);
    for tombstone in applicable {
        for (level, files) in state.levels.iter().enumerate() {
            for file in files.iter().filter(|file| is_dirty(file, tombstone)) {
                if busy.contains(&file.number) {
                    continue;
                }
                let plan = if hides_whole_file(file, tombstone) {
                    Some(CompactionPlan {
                        level,
                        output_level: level,
                        inputs: vec![file.clone()],
                        overlaps: Vec::new(),
                        bottommost: false,
                        trivial_move: false,
                        drop_files: true,
                        score: 0.0,
                    })
                } else {
                    plan_rewrite(state, busy, level, file)
                };
                if let Some(mut plan) = plan {
                    plan.trivial_move = false;
                    return Some(plan);
                }
            }
        }
    }
    None
}

/// The durable tombstones no file can still hold a hidden version of: every file over the
/// range is newer than the tombstone or was written with it applied. Forgetting one changes no
/// read, a snapshot's included: nothing it hides is left anywhere (older memtables were all
/// flushed before it became durable).
pub fn collectable(state: &ManifestState) -> Vec<u64> {
    state
        .range_tombstones
        .iter()
        .filter(|tombstone| !state.files().any(|file| is_dirty(file, tombstone)))
        .map(|tombstone| tombstone.seqno)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;

    fn file(number: u64, level: u32, range: (&str, &str), seqnos: (u64, u64)) -> FileMeta {
        FileMeta {
            number,
            level,
            size_bytes: 100,
            entry_count: 2,
            seqno_min: seqnos.0,
            seqno_max: seqnos.1,
            smallest_key: internal_key(range.0.as_bytes(), seqnos.0, 1),
            largest_key: internal_key(range.1.as_bytes(), seqnos.1, 1),
            range_del_applied_seqno: 0,
            expiry_min: 0,
        }
    }

    fn state(files: Vec<FileMeta>, tombstones: Vec<(&str, &str, u64)>) -> ManifestState {
        let mut state = ManifestState::default();
        for file in files {
            state.levels[file.level as usize].push(file);
        }
        state.range_tombstones = tombstones
            .into_iter()
            .map(|(start, end, seqno)| RangeTombstone {
                start: start.into(),
                end: end.into(),
                seqno,
            })
            .collect();
        state
    }

    #[test]
    fn a_wholly_hidden_file_is_dropped_a_partly_hidden_one_rewritten() {
        let inside = file(1, 6, ("c", "d"), (1, 5));
        let partly = file(2, 6, ("d", "z"), (1, 5));
        let newer = file(3, 6, ("e", "f"), (20, 30));
        let state = state(vec![inside, partly.clone(), newer], vec![("b", "e", 10)]);
        let none = HashSet::new();
        let plan = pick_range_deletion(&state, &none, u64::MAX).unwrap();
        assert!(plan.drop_files);
        assert_eq!(plan.inputs[0].number, 1);
        let plan = pick_range_deletion(&state, &HashSet::from([1]), u64::MAX).unwrap();
        assert!(!plan.drop_files && !plan.trivial_move);
        assert_eq!((plan.level, plan.output_level, plan.inputs[0].number), (6, 6, 2));
        assert!(collectable(&state).is_empty());
        // A snapshot older than the tombstone keeps everything.
        assert_eq!(pick_range_deletion(&state, &none, 9), None);
        // Once the files are clean the tombstone can go.
        let mut clean = state.clone();
        clean.levels[6].retain(|file| file.number == 3);
        clean.levels[6].push(FileMeta { range_del_applied_seqno: 10, ..partly });
        assert_eq!(pick_range_deletion(&clean, &none, u64::MAX), None);
        assert_eq!(collectable(&clean), vec![10]);
    }

    #[test]
    fn an_upper_level_file_compacts_into_the_next_level() {
        let upper = file(1, 3, ("a", "m"), (1, 5));
        let below = file(2, 4, ("k", "p"), (1, 2));
        let state = state(vec![upper, below], vec![("c", "d", 10)]);
        let plan = pick_range_deletion(&state, &HashSet::new(), u64::MAX).unwrap();
        assert_eq!((plan.level, plan.output_level), (3, 4));
        assert_eq!(plan.overlaps.len(), 1);
    }
}
