//! L0 by keyspace: how deep L0 is, and which L0 files must be compacted together.
//!
//! A flush writes one L0 file per keyspace, so L0 files of different keyspaces never overlap.
//! What slows reads and what compaction must fix is then the number of L0 files one key may be
//! in, the *depth*: the most files whose keyspace ranges share a keyspace. L0 files whose
//! keyspace ranges overlap, directly or through others, form a *group*; a group is compacted
//! whole (never a newer file of a key range without the older ones), and different groups can
//! be compacted apart, even at the same time.
//!
//! Thread safety: pure functions.
//!
//! Invariants:
//! 1. Groups partition L0: every file is in exactly one, and no two files of different groups
//!    share a keyspace (so their user-key ranges do not overlap either).
//! 2. A file's keyspace range is `keyspace_order` of its smallest and largest user keys; a file
//!    written by a flush or compaction holds one keyspace, only older files may span several.

use crate::key::user_key_of;
use crate::keyspace::keyspace_order;
use crate::manifest::FileMeta;

/// The keyspace range (as `keyspace_order` values, inclusive) of a file with these keys.
pub(crate) fn keyspace_range(smallest_key: &[u8], largest_key: &[u8]) -> (u64, u64) {
    (keyspace_order(user_key_of(smallest_key)), keyspace_order(user_key_of(largest_key)))
}

/// The most ranges that share one point: the depth of L0 given its files' keyspace ranges.
pub(crate) fn depth(ranges: impl Iterator<Item = (u64, u64)>) -> usize {
    // Closed ranges: at one point, starts count before ends.
    let mut events: Vec<(u64, u8)> = ranges.flat_map(|(low, high)| [(low, 0), (high, 1)]).collect();
    events.sort_unstable();
    let (mut open, mut deepest) = (0usize, 0usize);
    for (_, kind) in events {
        if kind == 0 {
            open += 1;
            deepest = deepest.max(open);
        } else {
            open -= 1;
        }
    }
    deepest
}

/// One group of L0 files: the files (newest first) and how deep the group is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct L0Group {
    pub files: Vec<FileMeta>,
    pub depth: usize,
}

/// Splits L0 `files` into groups, deepest first (then the larger group, then the one with
/// the oldest file, so ties go the same way every time).
pub(crate) fn groups(files: &[FileMeta]) -> Vec<L0Group> {
    let mut ranged: Vec<((u64, u64), &FileMeta)> = files
        .iter()
        .map(|file| (keyspace_range(&file.smallest_key, &file.largest_key), file))
        .collect();
    ranged.sort_by_key(|((low, high), file)| (*low, *high, file.number));
    let mut groups: Vec<L0Group> = Vec::new();
    let mut current: Vec<((u64, u64), &FileMeta)> = Vec::new();
    let mut current_high = 0u64;
    let mut close = |current: &mut Vec<((u64, u64), &FileMeta)>| {
        if current.is_empty() {
            return;
        }
        let depth = depth(current.iter().map(|(range, _)| *range));
        let mut files: Vec<FileMeta> = current.drain(..).map(|(_, file)| file.clone()).collect();
        files.sort_by_key(|file| std::cmp::Reverse(file.number));
        groups.push(L0Group { files, depth });
    };
    for (range, file) in ranged {
        if !current.is_empty() && range.0 > current_high {
            close(&mut current);
        }
        current_high = if current.is_empty() { range.1 } else { current_high.max(range.1) };
        current.push((range, file));
    }
    close(&mut current);
    let oldest = |group: &L0Group| group.files.iter().map(|file| file.number).min();
    groups.sort_by(|a, b| {
        b.depth
            .cmp(&a.depth)
            .then(b.files.len().cmp(&a.files.len()))
            .then(oldest(a).cmp(&oldest(b)))
    });
    groups
}

/// The group of L0 `files` that holds file `number`, if any.
pub(crate) fn group_of(files: &[FileMeta], number: u64) -> Option<L0Group> {
    groups(files).into_iter().find(|group| group.files.iter().any(|file| file.number == number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;
    use crate::keyspace::prefix_of;

    fn file(number: u64, first_keyspace: u32, last_keyspace: u32) -> FileMeta {
        let key = |id: u32, tail: &[u8]| {
            let mut key = prefix_of(id);
            key.extend_from_slice(tail);
            internal_key(&key, number, 1)
        };
        FileMeta {
            number,
            level: 0,
            size_bytes: 100,
            entry_count: 1,
            seqno_min: number,
            seqno_max: number,
            smallest_key: key(first_keyspace, b"a"),
            largest_key: key(last_keyspace, b"z"),
            range_del_applied_seqno: 0,
            expiry_min: 0,
        }
    }

    fn numbers(group: &L0Group) -> Vec<u64> {
        group.files.iter().map(|file| file.number).collect()
    }

    #[test]
    fn depth_counts_the_files_sharing_a_keyspace() {
        assert_eq!(depth(std::iter::empty()), 0);
        assert_eq!(depth([(1, 1), (2, 2), (3, 3)].into_iter()), 1);
        assert_eq!(depth([(1, 1), (1, 1), (2, 2)].into_iter()), 2);
        // Touching closed ranges share their end point.
        assert_eq!(depth([(1, 3), (3, 5), (5, 5)].into_iter()), 2);
        assert_eq!(depth([(1, 9), (2, 2), (2, 2), (4, 4)].into_iter()), 3);
    }

    #[test]
    fn files_of_one_keyspace_group_together_and_spanning_files_join_groups() {
        let files = vec![file(1, 1, 1), file(2, 2, 2), file(3, 1, 1), file(4, 3, 3), file(5, 1, 1)];
        let found = groups(&files);
        assert_eq!(found.len(), 3);
        assert_eq!((numbers(&found[0]), found[0].depth), (vec![5, 3, 1], 3));
        // Equal depths: the larger group, then the older.
        assert_eq!(numbers(&found[1]), vec![2]);
        assert_eq!(numbers(&found[2]), vec![4]);

        // An older file spanning keyspaces 1 to 2 ties their groups together.
        let mut spanning = files.clone();
        spanning.push(file(0, 1, 2));
        let found = groups(&spanning);
        assert_eq!(found.len(), 2);
        assert_eq!((numbers(&found[0]), found[0].depth), (vec![5, 3, 2, 1, 0], 4));
        assert_eq!(group_of(&spanning, 2).map(|group| numbers(&group)), Some(vec![5, 3, 2, 1, 0]));
        assert_eq!(group_of(&spanning, 4).map(|group| numbers(&group)), Some(vec![4]));
        assert_eq!(group_of(&spanning, 99), None);
    }

    #[test]
    fn long_keyspace_ids_group_apart_from_short_ones() {
        let files = vec![file(1, 254, 254), file(2, 255, 255), file(3, 70_000, 70_000)];
        let found = groups(&files);
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|group| group.depth == 1));
    }
}
