//! Range tombstones: `delete_range(start, end)` records, and `RangeTombstones`, the immutable
//! set a read view, a compaction or the garbage collector consults.
//!
//! A range tombstone `[start, end) @ seqno` hides every version of every user key in
//! `start..end` whose seqno is below `seqno`, from readers at `seqno` or above. Tombstones are
//! not stored in SSTs: they live in the memtable that received them (and its WAL) until it is
//! flushed, then in the manifest, until the garbage collector finds that no file still holds a
//! version they hide (see `db/range_del.rs`).
//!
//! Lookups use *fragments*: the tombstones' boundaries cut the key space into disjoint
//! intervals, each with the seqnos of the tombstones covering all of it, newest first. A
//! fragment's list is pruned at build time: of the seqnos at or below `read_seqno_min` only the
//! largest is kept, since every read that may use the set reads at `read_seqno_min` or above
//! and so sees all of them (the read path retries below it, like `Version::read_seqno_min`).
//!
//! Thread safety: immutable after `build`; shared in `Arc`s.
//!
//! Invariants:
//! 1. Every tombstone has `start < end` (checked when written, and when decoded from disk).
//! 2. Fragments are sorted, disjoint and non-empty; each seqno list is strictly descending.

use std::cmp::Ordering;

/// The most range tombstones a database keeps live at once; a write that would pass it fails
/// with `Error::LimitExceeded`. Each is held in memory and checked by reads in its range.
pub const RANGE_TOMBSTONES_LIVE_MAX: usize = 65_536;

/// One `delete_range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    /// First user key deleted.
    pub start: Vec<u8>,
    /// First user key after the range (exclusive).
    pub end: Vec<u8>,
    /// Seqno of the deletion.
    pub seqno: u64,
}

impl RangeTombstone {
    /// True if the range shares a key with `smallest..=largest`.
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.start.as_slice() <= largest && smallest < self.end.as_slice()
    }
}

/// True if the range `start..end` may share a key with `lower..upper` (bounds as in
/// `RangeBounds`). Conservative by one key at an excluded lower bound.
pub(crate) fn overlaps_bounds(
    start: &[u8],
    end: &[u8],
    lower: std::ops::Bound<&[u8]>,
    upper: std::ops::Bound<&[u8]>,
) -> bool {
    use std::ops::Bound;
    let starts_before_upper = match upper {
        Bound::Included(key) => start <= key,
        Bound::Excluded(key) => start < key,
        Bound::Unbounded => true,
    };
    let ends_after_lower = match lower {
        Bound::Included(key) | Bound::Excluded(key) => key < end,
        Bound::Unbounded => true,
    };
    starts_before_upper && ends_after_lower
}

#[derive(Debug, Clone)]
struct Fragment {
    start: Vec<u8>,
    end: Vec<u8>,
    /// Seqnos of the tombstones covering the fragment, newest first (pruned, see above).
    seqnos: Vec<u64>,
}

/// An immutable, queryable set of range tombstones.
#[derive(Debug, Clone, Default)]
pub struct RangeTombstones {
    /// Every tombstone, by seqno ascending.
    tombstones: Vec<RangeTombstone>,
    fragments: Vec<Fragment>,
    read_seqno_min: u64,
}

impl RangeTombstones {
    /// Builds the set of `tombstones`; reads of it must be at `read_seqno_min` or above.
    pub fn build(mut tombstones: Vec<RangeTombstone>, read_seqno_min: u64) -> RangeTombstones {
        tombstones.sort_by_key(|tombstone| tombstone.seqno);
        tombstones.dedup_by_key(|tombstone| tombstone.seqno);
        let fragments = fragment(&tombstones, read_seqno_min);
        RangeTombstones { tombstones, fragments, read_seqno_min }
    }

    /// This set plus `added`, for reads at `read_seqno_min` or above.
    pub fn with(&self, added: &[RangeTombstone], read_seqno_min: u64) -> RangeTombstones {
        let mut tombstones = self.tombstones.clone();
        tombstones.extend_from_slice(added);
        RangeTombstones::build(tombstones, read_seqno_min.max(self.read_seqno_min))
    }

    /// This set without the tombstones whose seqno `remove` returns true for.
    pub fn without(&self, remove: impl Fn(&RangeTombstone) -> bool) -> RangeTombstones {
        let kept = self.tombstones.iter().filter(|tombstone| !remove(tombstone)).cloned().collect();
        RangeTombstones::build(kept, self.read_seqno_min)
    }

    /// True if the set holds no tombstone.
    pub fn is_empty(&self) -> bool {
        self.tombstones.is_empty()
    }

    /// Number of tombstones.
    pub fn len(&self) -> usize {
        self.tombstones.len()
    }

    /// Reads of this set must be at this seqno or above (see the module comment).
    pub fn read_seqno_min(&self) -> u64 {
        self.read_seqno_min
    }

    fn fragment_of(&self, user_key: &[u8]) -> Option<&Fragment> {
        let position = self.fragments.partition_point(|f| f.end.as_slice() <= user_key);
        self.fragments.get(position).filter(|f| f.start.as_slice() <= user_key)
    }

    /// The seqno of the newest tombstone a reader at `read_seqno` sees over `user_key`, or 0.
    pub fn covering_seqno(&self, user_key: &[u8], read_seqno: u64) -> u64 {
        if self.fragments.is_empty() {
            return 0;
        }
        self.fragment_of(user_key)
            .and_then(|f| f.seqnos.iter().copied().find(|&seqno| seqno <= read_seqno))
            .unwrap_or(0)
    }

    /// True if a reader at `read_seqno` sees a tombstone that hides version `seqno` of
    /// `user_key`.
    pub fn hides(&self, user_key: &[u8], seqno: u64, read_seqno: u64) -> bool {
        !self.is_empty() && self.covering_seqno(user_key, read_seqno) > seqno
    }

    /// The newest tombstone with a seqno above `seqno` that shares a key with the range
    /// `lower..upper` (bounds as in `RangeBounds`), if any: a write a transaction that read the
    /// range at `seqno` did not see.
    pub fn newer_overlapping(
        &self,
        lower: std::ops::Bound<&[u8]>,
        upper: std::ops::Bound<&[u8]>,
        seqno: u64,
    ) -> Option<&RangeTombstone> {
        self.tombstones
            .iter()
            .rev()
            .take_while(|tombstone| tombstone.seqno > seqno)
            .find(|t| overlaps_bounds(&t.start, &t.end, lower, upper))
    }

    /// The oldest tombstone over `user_key` newer than version `seqno` (for compaction, which
    /// may drop the version when no snapshot lies between the two), if any.
    pub fn oldest_hiding(&self, user_key: &[u8], seqno: u64) -> Option<u64> {
        if self.fragments.is_empty() {
            return None;
        }
        let fragment = self.fragment_of(user_key)?;
        fragment.seqnos.iter().rev().copied().find(|&tombstone| tombstone > seqno)
    }
}

/// Cuts `tombstones` into disjoint fragments with pruned seqno lists.
fn fragment(tombstones: &[RangeTombstone], read_seqno_min: u64) -> Vec<Fragment> {
    let mut bounds: Vec<&[u8]> = tombstones
        .iter()
        .flat_map(|tombstone| [tombstone.start.as_slice(), tombstone.end.as_slice()])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    // Sweep: tombstones sorted by start enter the active set, leave it at their end.
    let mut by_start: Vec<&RangeTombstone> = tombstones.iter().collect();
    by_start.sort_by(|a, b| a.start.cmp(&b.start));
    let mut next = 0;
    let mut active: Vec<&RangeTombstone> = Vec::new();
    let mut fragments: Vec<Fragment> = Vec::new();
    for pair in bounds.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        active.retain(|tombstone| tombstone.end.as_slice() > start);
        while next < by_start.len() && by_start[next].start.as_slice() <= start {
            active.push(by_start[next]);
            next += 1;
        }
        if active.is_empty() {
            continue;
        }
        let mut seqnos: Vec<u64> = Vec::new();
        let mut newest_old = 0;
        for tombstone in &active {
            if tombstone.seqno <= read_seqno_min {
                newest_old = newest_old.max(tombstone.seqno);
            } else {
                seqnos.push(tombstone.seqno);
            }
        }
        if newest_old > 0 {
            seqnos.push(newest_old);
        }
        seqnos.sort_unstable_by(|a, b| b.cmp(a));
        // Merge with the previous fragment when it ends here with the same seqnos.
        if let Some(last) = fragments.last_mut() {
            if last.end.as_slice() == start && last.seqnos == seqnos {
                last.end = end.to_vec();
                continue;
            }
        }
        fragments.push(Fragment { start: start.to_vec(), end: end.to_vec(), seqnos });
    }
    debug_assert!(fragments
        .windows(2)
        .all(|pair| pair[0].end.as_slice().cmp(&pair[1].start) != Ordering::Greater));
    fragments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tombstone(start: &str, end: &str, seqno: u64) -> RangeTombstone {
        RangeTombstone { start: start.into(), end: end.into(), seqno }
    }

    /// The answer straight from the definition, to check the fragments against.
    fn brute_covering(tombstones: &[RangeTombstone], key: &[u8], read_seqno: u64) -> u64 {
        tombstones
            .iter()
            .filter(|t| t.start.as_slice() <= key && key < t.end.as_slice())
            .filter(|t| t.seqno <= read_seqno)
            .map(|t| t.seqno)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn covering_seqno_matches_the_definition() {
        let tombstones = vec![
            tombstone("b", "f", 10),
            tombstone("d", "k", 20),
            tombstone("a", "c", 30),
            tombstone("e", "e\0", 40),
            tombstone("x", "z", 5),
        ];
        let set = RangeTombstones::build(tombstones.clone(), 0);
        for key in ["", "a", "b", "bz", "c", "d", "e", "e\0", "f", "j", "k", "x", "y", "z", "zz"] {
            for read_seqno in [0, 4, 5, 9, 10, 15, 20, 25, 30, 35, 40, 100] {
                assert_eq!(
                    set.covering_seqno(key.as_bytes(), read_seqno),
                    brute_covering(&tombstones, key.as_bytes(), read_seqno),
                    "key {key:?} at {read_seqno}"
                );
            }
        }
        assert!(set.hides(b"d", 15, 25));
        assert!(!set.hides(b"d", 25, 100));
        assert_eq!(set.oldest_hiding(b"d", 5), Some(10));
        assert_eq!(set.oldest_hiding(b"d", 15), Some(20));
        assert_eq!(set.oldest_hiding(b"d", 20), None);
        assert_eq!(set.oldest_hiding(b"q", 1), None);
    }

    #[test]
    fn pruning_keeps_every_answer_at_or_above_the_minimum() {
        let tombstones: Vec<RangeTombstone> = (1..=50u64)
            .map(|seqno| {
                let start = format!("k{:02}", seqno % 7);
                let end = format!("k{:02}", seqno % 7 + 1 + seqno % 5);
                tombstone(&start, &end, seqno * 2)
            })
            .collect();
        let pruned = RangeTombstones::build(tombstones.clone(), 60);
        let full = RangeTombstones::build(tombstones.clone(), 0);
        for key in 0..15 {
            let key = format!("k{key:02}");
            for read_seqno in 60..=110 {
                let expected = brute_covering(&tombstones, key.as_bytes(), read_seqno);
                assert_eq!(pruned.covering_seqno(key.as_bytes(), read_seqno), expected);
                assert_eq!(full.covering_seqno(key.as_bytes(), read_seqno), expected);
            }
        }
        let longest = |set: &RangeTombstones| set.fragments.iter().map(|f| f.seqnos.len()).max();
        assert!(longest(&pruned) < longest(&full));
    }

    #[test]
    fn with_and_without_add_and_remove() {
        let set = RangeTombstones::build(vec![tombstone("a", "c", 1)], 0);
        assert_eq!(set.len(), 1);
        let set = set.with(&[tombstone("b", "d", 2)], 0);
        assert_eq!(set.covering_seqno(b"c", 10), 2);
        let set = set.without(|t| t.seqno == 2);
        assert_eq!(set.covering_seqno(b"c", 10), 0);
        assert_eq!(set.covering_seqno(b"b", 10), 1);
        assert!(set.without(|_| true).is_empty());
        assert!(RangeTombstones::default().covering_seqno(b"x", 9) == 0);
    }
}
