//! The read path: point reads, iterators and snapshots over a `ReadView` at a seqno.
//!
//! Thread safety: every read takes the seqno first and the view second (see `db/mod.rs`
//! invariant 1) and then works only on `Arc`s it owns, never blocking writers.
//!
//! Invariants:
//! 1. A point read checks sources newest first and stops at the first version it finds.
//! 2. An `Iter` walked from both ends never yields a key twice: each end stops where the
//!    other has already been.

use super::stats::StatsCounters;
use super::Keyspace;
use super::{DbInner, DbStats, LevelStats};
use crate::found::FoundValue;
use crate::iter::{
    DbIterator, Direction, InternalIterator, LevelCursor, MergingIterator, PointRead,
};
use crate::keyspace::{stored_bounds, stored_key, KeyspaceState};
use crate::memtable::Lookup;
use crate::sst::hash64;
use crate::version::{ReadView, SstHandle};
use crate::Result;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Lower and upper bounds of an iteration, as owned keys.
pub(crate) type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

pub(crate) fn bounds_of<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> KeyBounds {
    let own = |bound: Bound<&K>| match bound {
        Bound::Included(key) => Bound::Included(key.as_ref().to_vec()),
        Bound::Excluded(key) => Bound::Excluded(key.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

/// True if no key lies within `bounds` (start after end, or equal ends with one excluded).
/// Ordered maps panic on such ranges; iterators just yield nothing.
pub(crate) fn bounds_are_empty((lower, upper): &KeyBounds) -> bool {
    match (lower, upper) {
        (Bound::Included(start), Bound::Included(end)) => start > end,
        (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
        | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
        _ => false,
    }
}

/// Bounds covering exactly the keys that start with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> KeyBounds {
    let mut upper = prefix.to_vec();
    // The smallest key above every key with this prefix: drop trailing 0xff bytes and
    // increment the last remaining one. A prefix of only 0xff bytes has no upper bound.
    while upper.last() == Some(&0xff) {
        upper.pop();
    }
    let upper = match upper.last_mut() {
        Some(last) => {
            *last += 1;
            Bound::Excluded(upper)
        }
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix.to_vec()), upper)
}

/// The latest visible seqno and a view that holds every version a read at it needs.
///
/// The seqno is read before the view (`db/mod.rs` invariant 1). If a compaction installed in
/// between dropped versions at or above that seqno (`version.rs` invariant 4), both are read
/// again: the seqno only grows, so the second try succeeds.
pub(crate) fn latest_seqno_and_view(inner: &DbInner) -> (u64, Arc<ReadView>) {
    loop {
        let seqno = inner.seqno_visible.load(Ordering::Acquire);
        let view = inner.current_view();
        if seqno >= view.read_seqno_min() {
            return (seqno, view);
        }
    }
}

/// The value of `key` as of now, where it lies (in its cached block, when read from an SST).
pub(crate) fn get_latest_found(inner: &DbInner, key: &[u8]) -> Result<Option<FoundValue>> {
    let (seqno, view) = latest_seqno_and_view(inner);
    get_with_view(inner, &view, key, seqno)
}

/// The value of `key` at the registered snapshot `seqno`.
pub(crate) fn get(inner: &DbInner, key: &[u8], seqno: u64) -> Result<Option<Vec<u8>>> {
    Ok(get_with_view(inner, &inner.current_view(), key, seqno)?.map(FoundValue::into_vec))
}

fn get_with_view(
    inner: &DbInner,
    view: &ReadView,
    key: &[u8],
    seqno: u64,
) -> Result<Option<FoundValue>> {
    let stats = &inner.stats;
    StatsCounters::add(&stats.gets, 1);
    let found = get_in_view(inner, view, key, seqno)?;
    if found.is_some() {
        StatsCounters::add(&stats.get_hits, 1);
    }
    Ok(found)
}

fn get_in_view(
    inner: &DbInner,
    view: &ReadView,
    key: &[u8],
    seqno: u64,
) -> Result<Option<FoundValue>> {
    let found = newest_version(inner, view, key, seqno)?;
    // A range tombstone newer than the version hides it, and every older version with it;
    // an expired version reads as a delete.
    Ok(match found {
        Lookup::Found(value, version) if !view.range_dels.hides(key, version, seqno) => Some(value),
        Lookup::Expiring(mut stored, version) if !view.range_dels.hides(key, version, seqno) => {
            let now_ms = inner.options.clock.now_ms();
            if crate::ttl::expiry_of(stored.as_slice()) > now_ms {
                stored.skip_front(crate::ttl::EXPIRY_HEADER_LEN);
                Some(stored)
            } else {
                None
            }
        }
        _ => None,
    })
}

/// The newest version of `key` at `seqno` among the view's memtables and SSTs.
pub(crate) fn newest_version(
    inner: &DbInner,
    view: &ReadView,
    key: &[u8],
    seqno: u64,
) -> Result<Lookup> {
    // Hashed once for every memtable's and file's filter.
    let hash = hash64(key);
    for memtable in std::iter::once(&view.mem).chain(view.imms.iter()) {
        match memtable.get_hashed(key, hash, seqno) {
            Lookup::Absent => {}
            found => return Ok(found),
        }
    }
    let version = &view.version;
    let l0 = version.levels[0].iter().filter(|handle| handle.covers(key));
    for handle in l0 {
        match search_file(inner, handle, 0, key, hash, seqno)? {
            Lookup::Absent => {}
            found => return Ok(found),
        }
    }
    for level in 1..version.levels.len() {
        if let Some(handle) = version.file_covering(level, key) {
            match search_file(inner, handle, level, key, hash, seqno)? {
                Lookup::Absent => {}
                found => return Ok(found),
            }
        }
    }
    Ok(Lookup::Absent)
}

/// Searches one file whose range covers `key` (`hash` is `hash64(key)`), behind its bloom
/// filter.
fn search_file(
    inner: &DbInner,
    handle: &SstHandle,
    level: usize,
    key: &[u8],
    hash: u64,
    seqno: u64,
) -> Result<Lookup> {
    let stats = &inner.stats;
    if handle.meta.seqno_min > seqno {
        return Ok(Lookup::Absent);
    }
    let reader = handle.reader()?;
    if reader.has_filter() {
        StatsCounters::add(&stats.bloom_checks, 1);
        if !reader.may_contain_hash(hash)? {
            StatsCounters::add(&stats.bloom_skips, 1);
            return Ok(Lookup::Absent);
        }
    }
    StatsCounters::add(&stats.sst_reads, 1);
    StatsCounters::add(&stats.level_point_reads[level], 1);
    reader.get_hashed(key, hash, seqno)
}

/// The sources of `view` merged, for an iterator over stored keys within `bounds`: only the
/// memtable partitions and L0 files that can hold such keys take part (each L0 file holds one
/// keyspace, so an iterator in one keyspace reads only that keyspace's L0 files).
fn merged_iterator(view: &ReadView, direction: Direction, bounds: &KeyBounds) -> MergingIterator {
    let (lower, upper) =
        (bounds.0.as_ref().map(Vec::as_slice), bounds.1.as_ref().map(Vec::as_slice));
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    for memtable in std::iter::once(&view.mem).chain(view.imms.iter()) {
        if !memtable.is_empty() {
            children.push(Box::new(memtable.cursor_within(direction, (lower, upper))));
        }
    }
    // Each L0 file gets a one-file level cursor, which opens the file only when a seek lands
    // in its range.
    for handle in view.version.levels[0].iter().filter(|handle| handle.overlaps(lower, upper)) {
        children.push(Box::new(LevelCursor::new(vec![Arc::clone(handle)], direction)));
    }
    for files in view.version.levels.iter().skip(1).filter(|files| !files.is_empty()) {
        children.push(Box::new(LevelCursor::new(files.clone(), direction)));
    }
    MergingIterator::new(children, direction)
}

/// An iterator over keys and values at one seqno, in key order; `.rev()` walks backwards, and
/// both ends can be used together. Items are `Result`s: an I/O or corruption error is yielded
/// once and ends the iteration.
pub struct Iter {
    // Keeps the database (and its directory lock) alive while the iterator reads its files.
    inner: Arc<DbInner>,
    view: Arc<ReadView>,
    seqno: u64,
    bounds: KeyBounds,
    front: Option<DbIterator>,
    back: Option<DbIterator>,
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    finished: bool,
    /// Length of the keyspace prefix cut off every key yielded.
    prefix_len: usize,
    /// The clock's time when the iterator was made: versions expired by then are hidden.
    now_ms: u64,
    /// Most stored entries each direction may look at (`limit_steps`).
    steps_max: Option<u64>,
}

impl Iter {
    /// An iterator at the latest seqno over stored-key `bounds` within one keyspace, whose
    /// prefix (`prefix_len` bytes) it cuts off the keys it yields.
    pub(crate) fn latest(inner: &Arc<DbInner>, bounds: KeyBounds, prefix_len: usize) -> Iter {
        let (seqno, view) = latest_seqno_and_view(inner);
        Iter::with_view(inner, view, seqno, bounds, prefix_len)
    }

    /// The same at the registered snapshot `seqno`.
    pub(crate) fn new(
        inner: &Arc<DbInner>,
        seqno: u64,
        bounds: KeyBounds,
        prefix_len: usize,
    ) -> Iter {
        Iter::with_view(inner, inner.current_view(), seqno, bounds, prefix_len)
    }

    fn with_view(
        inner: &Arc<DbInner>,
        view: Arc<ReadView>,
        seqno: u64,
        bounds: KeyBounds,
        prefix_len: usize,
    ) -> Iter {
        StatsCounters::add(&inner.stats.iterators_created, 1);
        Iter {
            inner: Arc::clone(inner),
            view,
            seqno,
            bounds,
            front: None,
            back: None,
            front_last: None,
            back_last: None,
            finished: false,
            prefix_len,
            now_ms: inner.options.clock.now_ms(),
            steps_max: None,
        }
    }

    /// Stops with `Error::IteratorStepLimit` once a direction has looked at `max` stored
    /// entries: the keys it yields or counts, and the older versions, tombstones and expired
    /// or range-deleted versions it passes over on the way. A caller bounding its work (a
    /// read budget) sets it, so a range of many deleted keys cannot hold it unbounded inside
    /// one `next`. Set it before the first `next`.
    pub fn limit_steps(mut self, max: u64) -> Iter {
        self.steps_max = Some(max);
        self
    }

    fn make(&self, direction: Direction) -> DbIterator {
        let merged = merged_iterator(&self.view, direction, &self.bounds);
        let (inner, view, seqno) = (Arc::clone(&self.inner), Arc::clone(&self.view), self.seqno);
        let point_read: PointRead = Box::new(move |key| {
            Ok(get_in_view(&inner, &view, key, seqno)?.map(FoundValue::into_vec))
        });
        let range_dels = Arc::clone(&self.view.range_dels);
        let bounds = self.bounds.clone();
        let mut iterator = DbIterator::new(
            merged,
            direction,
            self.seqno,
            bounds,
            point_read,
            range_dels,
            self.now_ms,
        );
        if let Some(max) = self.steps_max {
            iterator.limit_steps(max);
        }
        iterator
    }

    fn finish_with(
        &mut self,
        result: Result<Option<(Vec<u8>, Vec<u8>)>>,
    ) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        match result {
            Ok(Some((mut key, value))) => {
                key.drain(..self.prefix_len.min(key.len()));
                Some(Ok((key, value)))
            }
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(error) => {
                self.finished = true;
                Some(Err(error))
            }
        }
    }

    /// How many keys the iterator has left to yield, counted without copying any key or
    /// value (a count over a range allocates nothing per key). Consumes the iterator.
    pub fn count_keys(self) -> Result<u64> {
        self.count_keys_up_to(u64::MAX)
    }

    /// `count_keys`, stopping at `max`: the smaller of the two. It reads no key past the
    /// `max`th (`count_keys_while` looks for the next key before asking).
    pub fn count_keys_up_to(self, max: u64) -> Result<u64> {
        self.count_keys_asking(true, |count| count < max)
    }

    /// `count_keys`, asking `keep_going` (with the count so far) about each key it finds
    /// before counting it, and stopping at the first `false`: a caller's limit, or its
    /// deadline checked every so many keys. It is asked once per key, never at the end.
    pub fn count_keys_while(self, keep_going: impl FnMut(u64) -> bool) -> Result<u64> {
        self.count_keys_asking(false, keep_going)
    }

    /// Counts the keys left, asking `keep_going` before looking for each key
    /// (`ask_first`) or after finding it.
    fn count_keys_asking(
        mut self,
        ask_first: bool,
        mut keep_going: impl FnMut(u64) -> bool,
    ) -> Result<u64> {
        if self.finished {
            return Ok(0);
        }
        // Once keys were taken from the back, the keys counted must also stay below the last
        // of them: the plain `next` compares them. Otherwise skip keys without copying.
        let mut forward = match self.back {
            Some(_) => None,
            None => Some(self.front.take().unwrap_or_else(|| self.make(Direction::Forward))),
        };
        let mut count = 0;
        loop {
            if ask_first && !keep_going(count) {
                break;
            }
            let found = match forward.as_mut() {
                Some(forward) => forward.skip_entry()?,
                None => self.next().transpose()?.is_some(),
            };
            if !found || (!ask_first && !keep_going(count)) {
                break;
            }
            count += 1;
        }
        Ok(count)
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.front.is_none() {
            self.front = Some(self.make(Direction::Forward));
        }
        let result = self.front.as_mut().map_or(Ok(None), DbIterator::next_entry);
        let result = result.map(|entry| {
            entry.filter(|(key, _)| self.back_last.as_ref().is_none_or(|back| key < back))
        });
        if let Ok(Some((key, _))) = &result {
            self.front_last = Some(key.clone());
        }
        self.finish_with(result)
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.back.is_none() {
            self.back = Some(self.make(Direction::Reverse));
        }
        let result = self.back.as_mut().map_or(Ok(None), DbIterator::next_entry);
        let result = result.map(|entry| {
            entry.filter(|(key, _)| self.front_last.as_ref().is_none_or(|front| key > front))
        });
        if let Ok(Some((key, _))) = &result {
            self.back_last = Some(key.clone());
        }
        self.finish_with(result)
    }
}

/// A consistent, read-only view of the database at one seqno. Reads through it ignore every
/// write made after it was taken. Dropping it releases it.
pub struct Snapshot {
    inner: Arc<DbInner>,
    seqno: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("seqno", &self.seqno).finish()
    }
}

impl Snapshot {
    pub(crate) fn new(inner: Arc<DbInner>) -> Snapshot {
        let seqno = {
            // Registered under the lock so a future compaction sees it before dropping versions.
            let mut snapshots = inner.snapshots.lock();
            let seqno = inner.seqno_visible.load(Ordering::Acquire);
            *snapshots.entry(seqno).or_insert(0) += 1;
            seqno
        };
        Snapshot { inner, seqno }
    }

    /// The seqno this snapshot reads at.
    pub fn seqno(&self) -> u64 {
        self.seqno
    }

    /// The value of `key` (in the default keyspace) as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        get(&self.inner, &stored_key(&self.inner.default_keyspace.prefix, key.as_ref()), self.seqno)
    }

    /// Every key and value (of the default keyspace) as of the snapshot.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The keys in `range` (of the default keyspace) as of the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.iter_in_state(&self.inner.default_keyspace, bounds_of(&range))
    }

    /// The keys starting with `prefix` (in the default keyspace) as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.iter_in_state(&self.inner.default_keyspace, prefix_bounds(prefix.as_ref()))
    }

    /// The value of `key` in `keyspace` as of the snapshot. A drop is immediate for snapshots
    /// too: once the keyspace is dropped this is `Error::KeyspaceDropped`.
    pub fn get_in(&self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let state = self.check_keyspace(keyspace)?;
        get(&self.inner, &stored_key(&state.prefix, key.as_ref()), self.seqno)
    }

    /// `f` of the value of `key` in `keyspace` as of the snapshot, read where it lies (see
    /// `Keyspace::get_with`).
    pub fn get_in_with<T>(
        &self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>> {
        let state = self.check_keyspace(keyspace)?;
        let key = stored_key(&state.prefix, key.as_ref());
        let found = get_with_view(&self.inner, &self.inner.current_view(), &key, self.seqno)?;
        Ok(found.map(|value| f(value.as_slice())))
    }

    /// The keys of `keyspace` in `range` as of the snapshot.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        keyspace: &Keyspace,
        range: R,
    ) -> Result<Iter> {
        let state = self.check_keyspace(keyspace)?;
        Ok(self.iter_in_state(state, bounds_of(&range)))
    }

    /// The keys of `keyspace` starting with `prefix` as of the snapshot.
    pub fn prefix_in(&self, keyspace: &Keyspace, prefix: impl AsRef<[u8]>) -> Result<Iter> {
        let state = self.check_keyspace(keyspace)?;
        Ok(self.iter_in_state(state, prefix_bounds(prefix.as_ref())))
    }

    /// `keyspace`'s state, if it belongs to this snapshot's database and is live.
    fn check_keyspace<'k>(&self, keyspace: &'k Keyspace) -> Result<&'k KeyspaceState> {
        let state = keyspace.state();
        state.check_live()?;
        state.check_owner(self.inner.token)?;
        Ok(state)
    }

    fn iter_in_state(&self, keyspace: &KeyspaceState, bounds: KeyBounds) -> Iter {
        let stored = stored_bounds(&keyspace.prefix, bounds);
        Iter::new(&self.inner, self.seqno, stored, keyspace.prefix.len())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut snapshots = self.inner.snapshots.lock();
        if let Some(count) = snapshots.get_mut(&self.seqno) {
            *count -= 1;
            if *count == 0 {
                snapshots.remove(&self.seqno);
            }
        }
    }
}

/// Builds `DbStats` from the counters and the current view.
pub(crate) fn stats(inner: &DbInner) -> DbStats {
    let view = inner.current_view();
    let mut stats = DbStats {
        seqno_last: inner.seqno_visible.load(Ordering::Acquire),
        memtable_size_bytes: view.mem.size_bytes() as u64,
        frozen_memtables: view.imms.len() as u64,
        l0_depth: view.version.l0_depth as u64,
        levels: view
            .version
            .levels
            .iter()
            .map(|files| LevelStats {
                files: files.len() as u64,
                size_bytes: files.iter().map(|file| file.meta.size_bytes).sum(),
                ..LevelStats::default()
            })
            .collect(),
        snapshots_live: inner.snapshots.lock().values().map(|&count| count as u64).sum(),
        range_tombstones_live: view.range_dels.len() as u64,
        ..DbStats::default()
    };
    let targets = crate::compaction::level_targets(&inner.engine.lock().state, &inner.options);
    for (level, level_stats) in stats.levels.iter_mut().enumerate() {
        level_stats.target_size_bytes = targets.size_bytes[level];
    }
    stats.fill_counters(&inner.stats);
    stats.block_cache = inner.block_cache.as_ref().map(|cache| cache.stats());
    let tables = inner.tables.stats();
    stats.table_cache_files = tables.files;
    stats.table_cache_hits = tables.hits;
    stats.table_cache_misses = tables.misses;
    stats.table_cache_opens = tables.opens;
    stats.table_cache_opens_mapped = tables.opens_mapped;
    stats.table_cache_pinned_bytes = tables.pinned_bytes;
    if let Some(limiter) = &inner.rate_limiter {
        stats.rate_limit_bytes = limiter.bytes_requested();
        stats.rate_limit_wait_micros = limiter.wait_micros();
    }
    stats
}

/// What `Db::verify` checked and found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// SST files read.
    pub sst_files: u64,
    /// Entries (versions) read from them.
    pub sst_entries: u64,
    /// Bytes of those files.
    pub sst_bytes: u64,
    /// Every problem found, each naming its file: bad checksums, keys out of order, entry
    /// counts that disagree with the manifest, overlapping files in a level. Empty when the
    /// database is sound (`Db::verify` then returns `Ok`).
    pub problems: Vec<crate::Error>,
}

/// Reads and checks every SST of the current view, going on past problems so the report
/// names all of them.
pub(crate) fn verify(inner: &DbInner) -> Result<VerifyReport> {
    let view = inner.current_view();
    let mut report = VerifyReport::default();
    for (level, files) in view.version.levels.iter().enumerate().skip(1) {
        for pair in files.windows(2) {
            if pair[0].largest_user_key() >= pair[1].smallest_user_key() {
                report.problems.push(crate::Error::corruption(
                    pair[1].path(),
                    format!(
                        "level {level} files {} and {} overlap",
                        pair[0].meta.number, pair[1].meta.number
                    ),
                ));
            }
        }
    }
    for handle in view.version.levels.iter().flatten() {
        report.sst_files += 1;
        report.sst_bytes += handle.meta.size_bytes;
        let entries = match handle.reader().and_then(|reader| reader.verify()) {
            Ok(entries) => entries,
            Err(error) => {
                report.problems.push(error);
                continue;
            }
        };
        report.sst_entries += entries;
        if entries != handle.meta.entry_count {
            report.problems.push(crate::Error::corruption(
                handle.path(),
                format!("{entries} entries, the manifest says {}", handle.meta.entry_count),
            ));
        }
    }
    if report.problems.is_empty() {
        Ok(report)
    } else {
        Err(crate::Error::VerifyFailed { report: Box::new(report) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_exactly_the_prefix() {
        assert_eq!(
            prefix_bounds(b"ab"),
            (Bound::Included(b"ab".to_vec()), Bound::Excluded(b"ac".to_vec()))
        );
        assert_eq!(
            prefix_bounds(b"a\xff\xff"),
            (Bound::Included(b"a\xff\xff".to_vec()), Bound::Excluded(b"b".to_vec()))
        );
        assert_eq!(prefix_bounds(b"\xff"), (Bound::Included(b"\xff".to_vec()), Bound::Unbounded));
        assert_eq!(prefix_bounds(b""), (Bound::Included(Vec::new()), Bound::Unbounded));
    }
}
