//! Choosing the next compaction: level targets with a dynamic base level, scores, inputs.
//!
//! Level targets follow the size of the last level: it gets its actual size, each level above
//! a `multiplier`-th of the one below, and the first level whose target falls to
//! `level_size_base_bytes` or below is the *base level*: L0 compacts straight into it and the
//! levels between are left empty. Space amplification then stays near
//! `1 + 1/multiplier + 1/multiplier² ...` (about 1.11 with the default 10) however big the
//! database grows. A level scores `size / target`; L0 scores its depth (the most L0 files one
//! keyspace has, `l0` module) over `l0_compaction_trigger`, or its file count over
//! `L0_FILES_TOTAL_PER_TRIGGER` times that, whichever is higher; the highest score at or above
//! 1 is compacted.
//!
//! Thread safety: pure functions over a `ManifestState`.
//!
//! Invariants:
//! 1. A plan never names a file another running compaction uses (`busy`).
//! 2. L0 is compacted a group at a time (`l0::groups`: every file sharing a keyspace with
//!    another of the group, so never a newer file of a key range without the older ones) into
//!    the base level, or into the first non-empty level above it; a level `n` file goes to
//!    level `n + 1` with every file there that overlaps it. Data never skips a level that holds
//!    data.
//! 3. A trivial move (no overlap below) only moves a single file, and for L0 only when it is
//!    its group's only file and holds one keyspace, so a newer file never ends up below an
//!    older one.

use super::l0;
use crate::key::user_key_of;
use crate::keyspace::file_keyspace;
use crate::manifest::{FileMeta, ManifestState, LEVEL_COUNT};
use crate::options::Options;
use std::collections::HashSet;

/// L0 is compacted also once it holds this many times `Options::l0_compaction_trigger` files
/// in all, however shallow: many keyspaces with a few L0 files each still cost every point
/// read a look at each file's key range.
pub const L0_FILES_TOTAL_PER_TRIGGER: usize = 8;

/// One compaction to run.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionPlan {
    /// Level the compaction reads from.
    pub level: usize,
    /// Level it writes to.
    pub output_level: usize,
    /// Files of `level` (for L0 newest first).
    pub inputs: Vec<FileMeta>,
    /// Files of `output_level` that overlap the inputs, by key.
    pub overlaps: Vec<FileMeta>,
    /// No level below `output_level` holds a key in the compaction's range, so tombstones
    /// that no snapshot needs can be dropped.
    pub bottommost: bool,
    /// The single input moves to `output_level` without being rewritten.
    pub trivial_move: bool,
    /// The inputs are removed without being read: a range tombstone hides all they hold, or
    /// they belong to a dropped keyspace.
    pub drop_files: bool,
    /// The score that chose it (1.0 or more).
    pub score: f64,
}

impl CompactionPlan {
    /// Every file the compaction reads.
    pub fn all_files(&self) -> impl Iterator<Item = &FileMeta> {
        self.inputs.iter().chain(&self.overlaps)
    }
}

/// The shape the tree should have: base level and per-level target sizes in bytes (0 for L0
/// and for the unused levels above the base level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelTargets {
    /// The level L0 compacts into.
    pub base_level: usize,
    /// Target bytes per level.
    pub size_bytes: [u64; LEVEL_COUNT],
}

fn level_size_bytes(state: &ManifestState, level: usize) -> u64 {
    state.levels[level].iter().map(|file| file.size_bytes).sum()
}

/// Computes the level targets for `state` (RocksDB's "dynamic level bytes" idea).
pub fn level_targets(state: &ManifestState, options: &Options) -> LevelTargets {
    let last = LEVEL_COUNT - 1;
    let multiplier = u64::from(options.level_size_multiplier);
    let base_size = options.level_size_base_bytes;
    let largest = (1..LEVEL_COUNT).map(|level| level_size_bytes(state, level)).max().unwrap_or(0);
    let mut size_bytes = [0u64; LEVEL_COUNT];
    let mut target = largest.max(base_size);
    let mut base_level = last;
    size_bytes[last] = target;
    while base_level > 1 && target / multiplier >= base_size {
        target /= multiplier;
        base_level -= 1;
        size_bytes[base_level] = target;
    }
    LevelTargets { base_level, size_bytes }
}

fn overlaps_range(file: &FileMeta, smallest: &[u8], largest: &[u8]) -> bool {
    user_key_of(&file.largest_key) >= smallest && user_key_of(&file.smallest_key) <= largest
}

fn key_range(files: &[FileMeta]) -> (Vec<u8>, Vec<u8>) {
    let smallest = files.iter().map(|f| user_key_of(&f.smallest_key)).min().unwrap_or_default();
    let largest = files.iter().map(|f| user_key_of(&f.largest_key)).max().unwrap_or_default();
    (smallest.to_vec(), largest.to_vec())
}

/// Picks the most urgent compaction, if any level needs one. `busy` holds the numbers of
/// files that running compactions use; `cursors[level]` is the largest user key of the last
/// file compacted out of that level (round-robin through the key space).
pub fn pick(
    state: &ManifestState,
    options: &Options,
    busy: &HashSet<u64>,
    cursors: &[Vec<u8>],
) -> Option<CompactionPlan> {
    let targets = level_targets(state, options);
    let mut scored: Vec<(f64, usize)> = Vec::new();
    let mut l0_depth_min = 1;
    let l0_files = &state.levels[0];
    if !l0_files.is_empty() {
        let trigger = options.l0_compaction_trigger as f64;
        let ranges = l0_files.iter().map(|f| l0::keyspace_range(&f.smallest_key, &f.largest_key));
        let by_depth = l0::depth(ranges) as f64 / trigger;
        let by_count = l0_files.len() as f64 / (trigger * L0_FILES_TOTAL_PER_TRIGGER as f64);
        scored.push((by_depth.max(by_count), 0));
        // Past the count trigger any group may go; otherwise only the groups at the trigger.
        l0_depth_min = if by_count >= 1.0 { 1 } else { options.l0_compaction_trigger };
    }
    for level in 1..LEVEL_COUNT - 1 {
        let size = level_size_bytes(state, level);
        if size == 0 {
            continue;
        }
        let score = if level < targets.base_level {
            // A level above the base level should be empty: drain it.
            f64::MAX
        } else {
            size as f64 / targets.size_bytes[level].max(1) as f64
        };
        scored.push((score, level));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (score, level) in scored.into_iter().take_while(|(score, _)| *score >= 1.0) {
        let plan = if level == 0 {
            plan_l0(state, busy, targets.base_level, l0_depth_min)
        } else {
            plan_level(state, busy, level, cursors.get(level).map_or(&[][..], Vec::as_slice))
        };
        if let Some(mut plan) = plan {
            plan.score = score;
            return Some(plan);
        }
    }
    None
}

/// A compaction that rewrites `file` of `level` (so every version in it passes through the
/// version filter again): for L0 the file's group (`l0::group_of`) into the first level below
/// holding data, a deeper file
/// into the next level with what overlaps it there, a last-level file in place. Never a
/// trivial move. `None` if a file it needs is busy.
pub(crate) fn plan_rewrite(
    state: &ManifestState,
    busy: &HashSet<u64>,
    level: usize,
    file: &FileMeta,
) -> Option<CompactionPlan> {
    let last = LEVEL_COUNT - 1;
    let plan = if level == 0 {
        let base_level =
            (1..LEVEL_COUNT).find(|&level| !state.levels[level].is_empty()).unwrap_or(last);
        let group = l0::group_of(&state.levels[0], file.number)?;
        plan_l0_group(state, busy, base_level, group)
    } else if level < last {
        finish_plan(state, level, level + 1, vec![file.clone()], busy)
    } else {
        Some(CompactionPlan {
            level,
            output_level: level,
            inputs: vec![file.clone()],
            overlaps: Vec::new(),
            bottommost: true,
            trivial_move: false,
            drop_files: false,
            score: 0.0,
        })
    };
    plan.map(|plan| CompactionPlan { trivial_move: false, ..plan })
}

pub(crate) fn finish_plan(
    state: &ManifestState,
    level: usize,
    output_level: usize,
    inputs: Vec<FileMeta>,
    busy: &HashSet<u64>,
) -> Option<CompactionPlan> {
    let (smallest, largest) = key_range(&inputs);
    let overlaps: Vec<FileMeta> = state.levels[output_level]
        .iter()
        .filter(|file| overlaps_range(file, &smallest, &largest))
        .cloned()
        .collect();
    if overlaps.iter().any(|file| busy.contains(&file.number)) {
        return None;
    }
    // The outputs span the overlapping files too, which may reach past the inputs.
    let (smallest, largest) = key_range(&[inputs.as_slice(), overlaps.as_slice()].concat());
    let bottommost = state.levels[output_level + 1..]
        .iter()
        .flatten()
        .all(|file| !overlaps_range(file, &smallest, &largest));
    // L0 inputs are a whole group, so a lone one shares its keyspace with no other L0 file;
    // an older L0 file may mix keyspaces (below L0 files never do): it moves only if it does
    // not.
    let trivial_move = overlaps.is_empty()
        && inputs.len() == 1
        && (level > 0 || file_keyspace(&inputs[0]).is_some());
    // A file of a dropped keyspace (written by a compaction that ran across the drop) is
    // removed rather than moved: moving never filters.
    let dropped = trivial_move
        && file_keyspace(&inputs[0]).is_some_and(|id| state.keyspace_filter().is_dropped(id));
    Some(CompactionPlan {
        level,
        output_level,
        inputs,
        overlaps,
        bottommost,
        trivial_move: trivial_move && !dropped,
        drop_files: dropped,
        score: 0.0,
    })
}

/// An L0 compaction of the deepest group (`l0::groups`) at least `depth_min` deep whose
/// files, and the files below it overlaps, no running compaction uses.
fn plan_l0(
    state: &ManifestState,
    busy: &HashSet<u64>,
    base_level: usize,
    depth_min: usize,
) -> Option<CompactionPlan> {
    l0::groups(&state.levels[0])
        .into_iter()
        .take_while(|group| group.depth >= depth_min)
        .find_map(|group| plan_l0_group(state, busy, base_level, group))
}

fn plan_l0_group(
    state: &ManifestState,
    busy: &HashSet<u64>,
    base_level: usize,
    group: l0::L0Group,
) -> Option<CompactionPlan> {
    if group.files.iter().any(|file| busy.contains(&file.number)) {
        return None;
    }
    // When the base level has moved down (the tree shrank), levels above it may still hold
    // data: L0 must go into the first of them, never past older data.
    let output_level =
        (1..base_level).find(|&level| !state.levels[level].is_empty()).unwrap_or(base_level);
    finish_plan(state, 0, output_level, group.files, busy)
}

fn plan_level(
    state: &ManifestState,
    busy: &HashSet<u64>,
    level: usize,
    cursor: &[u8],
) -> Option<CompactionPlan> {
    let mut files: Vec<&FileMeta> = state.levels[level].iter().collect();
    files.sort_by(|a, b| user_key_of(&a.smallest_key).cmp(user_key_of(&b.smallest_key)));
    // Start after the cursor and wrap around, so every part of the key space takes its turn.
    let start = files.partition_point(|file| user_key_of(&file.largest_key) <= cursor);
    let order = files[start..].iter().chain(&files[..start]);
    for file in order {
        if busy.contains(&file.number) {
            continue;
        }
        if let Some(plan) = finish_plan(state, level, level + 1, vec![(*file).clone()], busy) {
            return Some(plan);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;

    fn file(number: u64, level: u32, smallest: &str, largest: &str, size_bytes: u64) -> FileMeta {
        FileMeta {
            number,
            level,
            size_bytes,
            entry_count: 1,
            seqno_min: number,
            seqno_max: number,
            smallest_key: internal_key(smallest.as_bytes(), number, 1),
            largest_key: internal_key(largest.as_bytes(), number, 1),
            range_del_applied_seqno: 0,
            expiry_min: 0,
        }
    }

    fn state(files: Vec<FileMeta>) -> ManifestState {
        let mut state = ManifestState::default();
        for file in files {
            state.levels[file.level as usize].push(file);
        }
        state
    }

    const MIB: u64 = 1 << 20;

    fn options() -> Options {
        Options { level_size_base_bytes: 256 * MIB, ..Default::default() }
    }

    #[test]
    fn base_level_follows_the_last_level() {
        let empty = level_targets(&ManifestState::default(), &options());
        assert_eq!(empty.base_level, LEVEL_COUNT - 1);
        assert_eq!(empty.size_bytes[LEVEL_COUNT - 1], 256 * MIB);

        // 30 GiB in the last level: targets 30 GiB, 3 GiB, 300 MiB; base level two above it.
        let big = state(vec![file(1, 6, "a", "z", 30 * 1024 * MIB)]);
        let targets = level_targets(&big, &options());
        assert_eq!(targets.base_level, 4);
        assert_eq!(targets.size_bytes[6], 30 * 1024 * MIB);
        assert_eq!(targets.size_bytes[5], 3 * 1024 * MIB);
        assert_eq!(targets.size_bytes[4], 3 * 1024 * MIB / 10);
        assert_eq!(targets.size_bytes[3], 0);
        // Exactly base * multiplier in the last level moves the base level up by one.
        let edge = state(vec![file(1, 6, "a", "z", 2560 * MIB)]);
        assert_eq!(level_targets(&edge, &options()).base_level, 5);
        let below = state(vec![file(1, 6, "a", "z", 2560 * MIB - 1)]);
        assert_eq!(level_targets(&below, &options()).base_level, 6);
    }

    #[test]
    fn l0_compacts_whole_into_the_base_level_at_the_trigger() {
        let trigger = options().l0_compaction_trigger as u64;
        let mut files: Vec<FileMeta> = (1..trigger).map(|n| file(n, 0, "a", "m", MIB)).collect();
        files.push(file(50, 6, "c", "d", MIB));
        files.push(file(51, 6, "x", "y", MIB));
        assert_eq!(pick(&state(files.clone()), &options(), &HashSet::new(), &[]), None);
        files.push(file(trigger, 0, "b", "n", MIB));
        let plan = pick(&state(files), &options(), &HashSet::new(), &[]).unwrap();
        assert_eq!((plan.level, plan.output_level), (0, 6));
        let numbers: Vec<u64> = plan.inputs.iter().map(|f| f.number).collect();
        assert_eq!(numbers, (1..=trigger).rev().collect::<Vec<_>>(), "newest first");
        assert_eq!(plan.overlaps.iter().map(|f| f.number).collect::<Vec<_>>(), vec![50]);
        assert!(plan.bottommost && !plan.trivial_move);
    }

    #[test]
    fn busy_files_are_never_picked() {
        let files: Vec<FileMeta> = (1..=4).map(|n| file(n, 0, "a", "m", MIB)).collect();
        let busy: HashSet<u64> = [2].into();
        assert_eq!(pick(&state(files.clone()), &options(), &busy, &[]), None);
        let mut with_overlap = files;
        with_overlap.push(file(9, 6, "b", "c", MIB));
        let busy: HashSet<u64> = [9].into();
        assert_eq!(pick(&state(with_overlap), &options(), &busy, &[]), None);
    }

    #[test]
    fn an_oversized_level_moves_one_file_down_round_robin() {
        // Base level 5 (the last level holds 2.5 GiB); L5's target is 256 MiB.
        let files = vec![
            file(1, 5, "a", "c", 200 * MIB),
            file(2, 5, "d", "f", 200 * MIB),
            file(3, 6, "e", "g", 2560 * MIB),
        ];
        let plan = pick(&state(files.clone()), &options(), &HashSet::new(), &[]).unwrap();
        assert_eq!((plan.level, plan.output_level), (5, 6));
        assert_eq!(plan.inputs[0].number, 1);
        assert!(plan.trivial_move && plan.bottommost);
        // With the cursor past file 1, file 2 is next, and it overlaps file 3.
        let cursors =
            vec![Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), b"c".to_vec()];
        let plan = pick(&state(files), &options(), &HashSet::new(), &cursors).unwrap();
        assert_eq!(plan.inputs[0].number, 2);
        assert_eq!(plan.overlaps[0].number, 3);
        assert!(!plan.trivial_move);
    }

    #[test]
    fn levels_above_the_base_level_are_drained_and_deeper_data_blocks_tombstone_drops() {
        let files = vec![file(1, 2, "a", "b", MIB), file(2, 6, "a", "z", MIB)];
        let plan = pick(&state(files), &options(), &HashSet::new(), &[]).unwrap();
        assert_eq!((plan.level, plan.output_level), (2, 3));
        assert!(plan.trivial_move);
        assert!(!plan.bottommost, "L6 holds keys in the range");
    }

    #[test]
    fn bottommost_looks_at_the_whole_output_range() {
        // The input covers only "m", but the overlapping L5 file reaches "a".."z", and L6
        // holds "b": tombstones in the output may hide versions there.
        let options = Options { l0_compaction_trigger: 1, ..options() };
        let files = vec![
            file(1, 0, "m", "m", MIB),
            file(2, 5, "a", "z", MIB),
            file(3, 6, "b", "b", 3000 * MIB),
        ];
        let plan = pick(&state(files), &options, &HashSet::new(), &[]).unwrap();
        assert_eq!((plan.level, plan.output_level), (0, 5));
        assert!(!plan.bottommost);
    }

    #[test]
    fn l0_never_skips_a_level_that_still_holds_data() {
        // The base level is L6, but L3 still holds older data from when the tree was bigger.
        let mut files: Vec<FileMeta> = (1..=4).map(|n| file(n, 0, "a", "m", MIB)).collect();
        files.push(file(10, 3, "x", "y", MIB));
        let plan = pick(&state(files), &options(), &HashSet::new(), &[]).unwrap();
        // L3 is drained first (it scores highest), and then L0 goes to L3's successor chain.
        assert_eq!((plan.level, plan.output_level), (3, 4));
        let mut files: Vec<FileMeta> = (1..=4).map(|n| file(n, 0, "a", "m", MIB)).collect();
        files.push(file(10, 3, "x", "y", MIB));
        let busy: HashSet<u64> = [10].into();
        let plan = pick(&state(files), &options(), &busy, &[]).unwrap();
        assert_eq!((plan.level, plan.output_level), (0, 3));
    }

    #[test]
    fn a_lone_l0_file_moves_but_not_past_older_l0_files() {
        let options = Options { l0_compaction_trigger: 1, ..options() };
        // Keys "a" and "ab" are in one keyspace (their first byte is the keyspace prefix).
        let plan =
            pick(&state(vec![file(1, 0, "a", "ab", MIB)]), &options, &HashSet::new(), &[]).unwrap();
        assert!(plan.trivial_move);
        // A lone L0 file spanning two keyspaces is rewritten, so L1 files never mix them.
        let plan =
            pick(&state(vec![file(1, 0, "a", "b", MIB)]), &options, &HashSet::new(), &[]).unwrap();
        assert!(!plan.trivial_move);
        // Two L0 files of one keyspace go down together, rewritten.
        let two = state(vec![file(1, 0, "a", "ab", MIB), file(2, 0, "aa", "ac", MIB)]);
        let plan = pick(&two, &options, &HashSet::new(), &[]).unwrap();
        assert!(!plan.trivial_move);
        assert_eq!(plan.inputs.len(), 2);
    }

    #[test]
    fn a_lone_file_of_a_dropped_keyspace_is_removed_not_moved() {
        let options = Options { l0_compaction_trigger: 1, ..options() };
        let mut dropped = state(vec![file(1, 0, "a", "ab", MIB)]);
        // Keyspace ids below 200 were created; only "b" (98) is still live.
        dropped.next_keyspace_id = 200;
        dropped.keyspaces.insert(u32::from(b'b'), "b".into());
        let plan = pick(&dropped, &options, &HashSet::new(), &[]).unwrap();
        assert!(plan.drop_files && !plan.trivial_move, "{plan:?}");
        let mut live = state(vec![file(1, 0, "b", "bb", MIB)]);
        live.next_keyspace_id = 200;
        live.keyspaces.insert(u32::from(b'b'), "b".into());
        let plan = pick(&live, &options, &HashSet::new(), &[]).unwrap();
        assert!(plan.trivial_move && !plan.drop_files, "{plan:?}");
    }

    #[test]
    fn l0_groups_of_different_keyspaces_compact_apart() {
        let trigger = options().l0_compaction_trigger as u64;
        // Keyspace "c" reaches the trigger; keyspace "x" has one file.
        let mut files: Vec<FileMeta> = (1..=trigger).map(|n| file(n, 0, "ca", "cz", MIB)).collect();
        files.push(file(20, 0, "xa", "xz", MIB));
        files.push(file(30, 6, "xb", "xc", MIB));
        let plan = pick(&state(files.clone()), &options(), &HashSet::new(), &[]).unwrap();
        let numbers: Vec<u64> = plan.inputs.iter().map(|f| f.number).collect();
        assert_eq!(numbers, (1..=trigger).rev().collect::<Vec<_>>());
        assert!(plan.overlaps.is_empty(), "keyspace x's file below is not touched");
        // While keyspace c compacts, the shallow keyspace x is left alone.
        let busy: HashSet<u64> = (1..=trigger).collect();
        assert_eq!(pick(&state(files), &options(), &busy, &[]), None);

        // Many keyspaces with one L0 file each: nothing is deep, but the count trigger fires.
        let count = options().l0_compaction_trigger * L0_FILES_TOTAL_PER_TRIGGER;
        let many: Vec<FileMeta> = (0..count as u64)
            .map(|n| {
                let key = format!("{}", char::from(b'!' + n as u8));
                file(n + 1, 0, &key, &key, MIB)
            })
            .collect();
        assert_eq!(pick(&state(many[1..].to_vec()), &options(), &HashSet::new(), &[]), None);
        let plan = pick(&state(many), &options(), &HashSet::new(), &[]).unwrap();
        assert_eq!(plan.inputs.len(), 1);
        assert!(plan.trivial_move, "a lone file of its keyspace moves down");
    }
}
