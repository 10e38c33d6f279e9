//! The memtable: recent writes, in memory, ordered by internal key, one skip list per keyspace.
//!
//! Each keyspace that has writes in the memtable gets its own *partition*: an arena skip list
//! (`skiplist::SkipList`) of encoded internal keys (stored key, then trailer; newest versions
//! first) and values, each version one node of about 30 bytes plus its key and value in the
//! partition's chunks. A read in one keyspace searches only that keyspace's list, and a flush
//! writes each partition to its own SST. All partitions of a memtable share one WAL file, so
//! they are frozen and flushed together (what RocksDB calls an atomic flush). One writer at a
//! time inserts (the group-commit leader; each list also serializes its inserts); any number of
//! readers get and iterate concurrently, without locks on the lists. When its entries' size
//! (`entries_bytes`, without the key filter) passes `Options::memtable_size_bytes_max` it is
//! frozen (no more inserts) and flushed. A memtable made for WAL replay (`for_replay`) has
//! no key filter: it is only flushed, never read through `get`.
//!
//! Thread safety: `Memtable` is `Send + Sync`; reads may race with everything. The partition
//! map is behind a read-write lock: a point get or insert holds its read guard for one
//! skip-list operation, cursors only while they look a partition up; the write lock is taken
//! only to create a partition.
//!
//! Invariants:
//! 1. Each (stored key, seqno) is inserted at most once.
//! 2. `size_bytes` only grows, and counts every arena chunk the lists allocated (used or not:
//!    the memory they really hold), `RANGE_TOMBSTONE_OVERHEAD_BYTES` per range tombstone
//!    beside its bounds, and the key filter once built; `entries_bytes` is the same without
//!    the filter (what freezes the memtable).
//! 3. A reader at seqno S sees exactly the versions with seqno <= S, because the write path
//!    publishes S only after every write up to S is inserted.
//! 4. A key lives in partition `keyspace_order(key)`; partitions in map order hold ascending,
//!    disjoint key ranges, so walking them in order walks the whole memtable in key order.
//!    A partition, once created, stays until the memtable drops (a dropped keyspace's entries
//!    are left out by the flush), so a cursor made after seqno S was published finds every
//!    partition holding versions at or below S.
//! 5. Range tombstones are kept beside the skip lists (`range_tombstones`), in seqno order; the
//!    read view carries them for reads (`range_del`), the flush moves them to the manifest.
//! 6. Once `filter` (`filter::KeyFilter`) is built, every user key inserted is in it before
//!    its node is linked, and it was built from every key inserted before, so a get the
//!    filter rules out has no version here to miss. Inserts made while it is not built, and
//!    its build, hold `filter_build` (a lock no insert takes once it is built).

mod cursor;
mod filter;
mod skiplist;

pub use cursor::MemtableCursor;
use skiplist::chunk_bytes_max_for;
pub use skiplist::SkipList as Partition;

use crate::batch::{BatchOp, OpKind};
use crate::found::FoundValue;
use crate::key::{pack_trailer, split_internal_key, ValueKind, KIND_FOR_SEEK};
use crate::keyspace::keyspace_order;
use crate::range_del::RangeTombstone;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Bytes a range tombstone costs beyond its two bounds: the `RangeTombstone` in the list (56)
/// and the allocator's headers and rounding of its two bounds.
pub const RANGE_TOMBSTONE_OVERHEAD_BYTES: usize = 96;

/// What a memtable (or an SST) knows about a key at a seqno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The newest visible version is a put of this value, at this seqno.
    Found(FoundValue, u64),
    /// The newest visible version is a delete, at this seqno.
    Deleted(u64),
    /// The newest visible version is an expiring put: its stored value (expiry, then the
    /// value, `ttl.rs`) and seqno. Whether it is expired is for the reader's clock to say.
    Expiring(FoundValue, u64),
    /// No visible version here; look in older sources.
    Absent,
}

/// An in-memory ordered table of recent writes, partitioned by keyspace.
#[derive(Debug)]
pub struct Memtable {
    /// `keyspace_order` of the keys → that keyspace's partition.
    partitions: RwLock<BTreeMap<u64, Arc<Partition>>>,
    /// Bytes of the versions and range tombstones (`entries_bytes`).
    size_bytes: AtomicUsize,
    seqno_max: AtomicU64,
    wal_number: u64,
    range_tombstones: Mutex<Vec<RangeTombstone>>,
    /// Chunk size the partitions' arenas grow to.
    chunk_bytes_max: usize,
    /// The user keys inserted, for gets of keys not here (invariant 6).
    filter: filter::KeyFilter,
    /// Serializes the filter's build with the inserts made before it (invariant 6).
    filter_build: Mutex<()>,
    /// Size at which the filter is built.
    filter_build_at_bytes: usize,
}

impl Memtable {
    /// An empty memtable that only collects versions to flush (WAL replay at open): it never
    /// builds a key filter.
    pub fn for_replay(size_bytes_max: usize) -> Memtable {
        Memtable { filter_build_at_bytes: usize::MAX, ..Memtable::new(0, size_bytes_max) }
    }

    /// An empty memtable whose writes are logged in WAL file `wal_number`, to be frozen once
    /// it holds about `size_bytes_max` (which sizes its arenas' chunks).
    pub fn new(wal_number: u64, size_bytes_max: usize) -> Memtable {
        Memtable {
            partitions: RwLock::new(BTreeMap::new()),
            size_bytes: AtomicUsize::new(0),
            seqno_max: AtomicU64::new(0),
            wal_number,
            range_tombstones: Mutex::new(Vec::new()),
            chunk_bytes_max: chunk_bytes_max_for(size_bytes_max),
            filter: filter::KeyFilter::new(size_bytes_max),
            filter_build: Mutex::new(()),
            filter_build_at_bytes: size_bytes_max / filter::BUILD_AT_FRACTION,
        }
    }

    /// Number of the WAL file holding this memtable's writes.
    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// The first partition at or after (`forward`) or at or before order `order`, with its
    /// order; `None` past the last one.
    fn partition_from(&self, order: u64, forward: bool) -> Option<(u64, Arc<Partition>)> {
        let partitions = self.partitions.read();
        let found = if forward {
            partitions.range(order..).next()
        } else {
            partitions.range(..=order).next_back()
        };
        found.map(|(order, partition)| (*order, Arc::clone(partition)))
    }

    /// Inserts one version. Memory-safe from any thread; the write path inserts from one
    /// thread, in seqno order (invariants 1 and 5 rely on it).
    pub fn insert(&self, user_key: &[u8], seqno: u64, kind: ValueKind, value: &[u8]) {
        let trailer = pack_trailer(seqno, kind as u8);
        // Until the filter is built, inserts hold the lock its build takes (invariant 6).
        let building = (!self.filter.is_built()).then(|| self.filter_build.lock());
        self.filter.add(user_key);
        self.insert_in_partition(user_key, trailer, value);
        if building.is_some() && self.entries_bytes() >= self.filter_build_at_bytes {
            self.build_filter();
        }
        drop(building);
        self.seqno_max.fetch_max(seqno, AtomicOrdering::Relaxed);
    }

    /// Builds the filter from every key inserted so far (nothing if it was built already).
    fn build_filter(&self) {
        let partitions = self.partitions.read();
        self.filter.build(|add| {
            for partition in partitions.values() {
                let _ = partition.for_each(|internal_key, _| {
                    add(split_internal_key(internal_key).0);
                    Ok::<(), ()>(())
                });
            }
        });
    }

    /// Links one version into its keyspace's partition and counts its bytes.
    fn insert_in_partition(&self, user_key: &[u8], trailer: u64, value: &[u8]) {
        let order = keyspace_order(user_key);
        // The partition is looked up under the read guard (no reference count touched); only
        // the first write of a keyspace takes the write lock, to create its partition.
        let partitions = self.partitions.read();
        let added = match partitions.get(&order) {
            Some(partition) => partition.insert(user_key, trailer, value),
            None => {
                drop(partitions);
                let mut partitions = self.partitions.write();
                let chunk_bytes_max = self.chunk_bytes_max;
                let partition = partitions
                    .entry(order)
                    .or_insert_with(|| Arc::new(Partition::new(chunk_bytes_max)));
                std::mem::size_of::<Partition>() + partition.insert(user_key, trailer, value)
            }
        };
        self.size_bytes.fetch_add(added, AtomicOrdering::Relaxed);
    }

    /// Applies one batch operation at `seqno` (as `insert`).
    pub fn apply(&self, op: &BatchOp<'_>, seqno: u64) {
        match op.kind {
            OpKind::Put => self.insert(op.key, seqno, ValueKind::Put, op.value),
            OpKind::Delete => self.insert(op.key, seqno, ValueKind::Delete, op.value),
            OpKind::PutExpiring => self.insert(op.key, seqno, ValueKind::PutExpiring, op.value),
            OpKind::DeleteRange if op.key >= op.value => {
                // An empty range deletes nothing (an inverted one never reaches a memtable).
                self.seqno_max.fetch_max(seqno, AtomicOrdering::Relaxed);
            }
            OpKind::DeleteRange => {
                let added = op.key.len() + op.value.len() + RANGE_TOMBSTONE_OVERHEAD_BYTES;
                self.range_tombstones.lock().push(RangeTombstone {
                    start: op.key.to_vec(),
                    end: op.value.to_vec(),
                    seqno,
                });
                self.size_bytes.fetch_add(added, AtomicOrdering::Relaxed);
                self.seqno_max.fetch_max(seqno, AtomicOrdering::Relaxed);
            }
        }
    }

    /// The non-empty partitions in key order.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().filter(|partition| !partition.is_empty()).cloned().collect()
    }

    /// The range tombstones written to this memtable, by seqno ascending.
    pub fn range_tombstones(&self) -> Vec<RangeTombstone> {
        self.range_tombstones.lock().clone()
    }

    /// True if the memtable holds versions of keys (not only range tombstones).
    pub fn has_entries(&self) -> bool {
        self.partitions.read().values().any(|partition| !partition.is_empty())
    }

    /// The newest version of `user_key` with seqno `<= seqno`.
    #[cfg(any(test, feature = "bench-internals"))]
    pub fn get(&self, user_key: &[u8], seqno: u64) -> Lookup {
        self.get_hashed(user_key, crate::sst::hash64(user_key), seqno)
    }

    /// `get` for a key already hashed: `hash` is `hash64(user_key)`.
    pub fn get_hashed(&self, user_key: &[u8], hash: u64, seqno: u64) -> Lookup {
        if !self.filter.may_contain_hash(hash) {
            return Lookup::Absent;
        }
        let partitions = self.partitions.read();
        let Some(partition) = partitions.get(&keyspace_order(user_key)) else {
            return Lookup::Absent;
        };
        let seek_trailer = pack_trailer(seqno, KIND_FOR_SEEK);
        let Some((found_key, value)) = partition.first_at_or_after(user_key, seek_trailer) else {
            return Lookup::Absent;
        };
        let (found_user_key, trailer) = split_internal_key(found_key);
        if found_user_key != user_key {
            return Lookup::Absent;
        }
        match (trailer & 0xff) as u8 {
            kind if kind == ValueKind::Delete as u8 => Lookup::Deleted(trailer >> 8),
            kind if kind == ValueKind::PutExpiring as u8 => {
                Lookup::Expiring(value.to_vec().into(), trailer >> 8)
            }
            _ => Lookup::Found(value.to_vec().into(), trailer >> 8),
        }
    }

    /// Approximate memory used, in bytes.
    pub fn size_bytes(&self) -> usize {
        let filter_bytes = if self.filter.is_built() { self.filter.size_bytes() } else { 0 };
        self.entries_bytes() + filter_bytes
    }

    /// Memory used by the versions and range tombstones alone (`size_bytes` without the key
    /// filter): what `Options::memtable_size_bytes_max` bounds, so the filter does not move
    /// the point where a memtable is frozen.
    pub fn entries_bytes(&self) -> usize {
        self.size_bytes.load(AtomicOrdering::Relaxed)
    }

    /// True if nothing was inserted (no version and no range tombstone).
    pub fn is_empty(&self) -> bool {
        !self.has_entries() && self.range_tombstones.lock().is_empty()
    }

    /// Largest seqno inserted (0 if empty).
    pub fn seqno_max(&self) -> u64 {
        self.seqno_max.load(AtomicOrdering::Relaxed)
    }

    /// Calls `visit(encoded_internal_key, value)` for every entry in internal-key order.
    #[cfg(test)]
    pub fn for_each(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]) -> crate::Result<()>,
    ) -> crate::Result<()> {
        for partition in self.partitions() {
            partition.for_each(&mut visit)?;
        }
        Ok(())
    }

    /// An iterator in `direction` over the whole memtable that keeps it alive.
    pub fn cursor(self: &Arc<Memtable>, direction: crate::iter::Direction) -> MemtableCursor {
        MemtableCursor::new(Arc::clone(self), direction, (Bound::Unbounded, Bound::Unbounded))
    }

    /// An iterator in `direction` that reads only the partitions keys within `bounds` can be
    /// in (it may still yield keys outside `bounds`, from those partitions).
    pub fn cursor_within(
        self: &Arc<Memtable>,
        direction: crate::iter::Direction,
        bounds: (Bound<&[u8]>, Bound<&[u8]>),
    ) -> MemtableCursor {
        MemtableCursor::new(Arc::clone(self), direction, bounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::{Direction, InternalIterator};
    use crate::key::{internal_key, parse_internal_key, SEQNO_MAX};

    fn filled() -> Arc<Memtable> {
        let memtable = Arc::new(Memtable::new(7, 1 << 20));
        memtable.insert(b"a", 1, ValueKind::Put, b"a1");
        memtable.insert(b"b", 2, ValueKind::Put, b"b2");
        memtable.insert(b"a", 3, ValueKind::Put, b"a3");
        memtable.insert(b"b", 4, ValueKind::Delete, b"");
        memtable
    }

    #[test]
    fn get_sees_the_newest_version_at_a_seqno() {
        let memtable = filled();
        assert_eq!(memtable.get(b"a", 0), Lookup::Absent);
        assert_eq!(memtable.get(b"a", 1), Lookup::Found(FoundValue::from(b"a1".to_vec()), 1));
        assert_eq!(memtable.get(b"a", 2), Lookup::Found(FoundValue::from(b"a1".to_vec()), 1));
        assert_eq!(
            memtable.get(b"a", SEQNO_MAX),
            Lookup::Found(FoundValue::from(b"a3".to_vec()), 3)
        );
        assert_eq!(memtable.get(b"b", 3), Lookup::Found(FoundValue::from(b"b2".to_vec()), 2));
        assert!(matches!(memtable.get(b"b", 4), Lookup::Deleted(_)));
        assert_eq!(memtable.get(b"c", 9), Lookup::Absent);
        assert_eq!(memtable.seqno_max(), 4);
        assert_eq!(memtable.wal_number(), 7);
        assert!(memtable.size_bytes() >= 4 * 24);
    }

    #[test]
    fn the_key_filter_is_built_at_an_eighth_of_the_limit_and_loses_no_key() {
        let limit = 64 * 1024;
        let memtable = Memtable::new(1, limit);
        let key = |index: u32| format!("key{index:06}").into_bytes();
        let mut inserted = 0;
        while !memtable.filter.is_built() {
            // Versions of a few keys before the build, so the build sees more than one each.
            memtable.insert(&key(inserted), 2 * u64::from(inserted) + 1, ValueKind::Put, b"v");
            if inserted % 3 == 0 {
                memtable.insert(
                    &key(inserted),
                    2 * u64::from(inserted) + 2,
                    ValueKind::Delete,
                    b"",
                );
            }
            inserted += 1;
            assert!(inserted < 10_000, "no build");
        }
        assert!(memtable.entries_bytes() >= limit / filter::BUILD_AT_FRACTION);
        assert_eq!(memtable.size_bytes(), memtable.entries_bytes() + memtable.filter.size_bytes());
        let before_build = memtable.entries_bytes();
        // Arena chunks are counted whole, so the size steps past the threshold by a chunk.
        assert!(before_build < limit / 4, "{before_build}");
        for index in inserted..inserted + 500 {
            memtable.insert(&key(index), 2 * u64::from(index) + 1, ValueKind::Put, b"v");
        }
        for index in 0..inserted + 500 {
            let deleted = index < inserted && index % 3 == 0;
            let expected = if deleted {
                Lookup::Deleted(2 * u64::from(index) + 2)
            } else {
                Lookup::Found(FoundValue::from(b"v".to_vec()), 2 * u64::from(index) + 1)
            };
            assert_eq!(memtable.get(&key(index), SEQNO_MAX), expected, "key {index}");
        }
        let absent = (0..2000)
            .filter(|index| memtable.get(&key(100_000 + index), SEQNO_MAX) != Lookup::Absent);
        assert_eq!(absent.count(), 0);
        // The filter, not only the skip list, answers for keys that are not here.
        let ruled_out =
            (0..2000).filter(|index| !memtable.filter.may_contain(&key(100_000 + index))).count();
        assert!(ruled_out > 1900, "the filter ruled out only {ruled_out} of 2000 absent keys");
        let replay = Memtable::for_replay(limit);
        for index in 0..inserted + 500 {
            replay.insert(&key(index), u64::from(index) + 1, ValueKind::Put, b"v");
        }
        assert!(!replay.filter.is_built(), "a replay memtable never builds a filter");
        assert_eq!(replay.size_bytes(), replay.entries_bytes());
    }

    /// Readers racing the inserter across the filter's build never miss a published version.
    #[test]
    fn readers_racing_the_filter_build_find_every_published_key() {
        let memtable = Memtable::new(1, 256 * 1024);
        let published = AtomicU64::new(0);
        let key = |index: u64| format!("key{index:08}").into_bytes();
        let total = 8_000u64;
        std::thread::scope(|scope| {
            for reader in 0..2u64 {
                let (memtable, published) = (&memtable, &published);
                scope.spawn(move || {
                    let mut probe = reader;
                    while published.load(AtomicOrdering::Acquire) < total {
                        let seqno = published.load(AtomicOrdering::Acquire);
                        if seqno > 0 {
                            probe = probe
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            let index = (probe >> 33) % seqno;
                            let found = memtable.get(&key(index), seqno);
                            assert_eq!(
                                found,
                                Lookup::Found(FoundValue::from(b"v".to_vec()), index + 1),
                                "{index}"
                            );
                        }
                    }
                });
            }
            for index in 0..total {
                memtable.insert(&key(index), index + 1, ValueKind::Put, b"v");
                published.store(index + 1, AtomicOrdering::Release);
            }
        });
        assert!(memtable.filter.is_built());
    }

    fn collect(cursor: &mut MemtableCursor) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        while cursor.valid() {
            let parsed = parse_internal_key(cursor.key()).unwrap();
            out.push((parsed.user_key.to_vec(), parsed.seqno));
            cursor.next().unwrap();
        }
        out
    }

    #[test]
    fn cursors_walk_both_directions_and_seek() {
        let memtable = filled();
        let mut forward = memtable.cursor(Direction::Forward);
        forward.seek_to_start().unwrap();
        let expected =
            vec![(b"a".to_vec(), 3), (b"a".to_vec(), 1), (b"b".to_vec(), 4), (b"b".to_vec(), 2)];
        assert_eq!(collect(&mut forward), expected);

        let mut reverse = memtable.cursor(Direction::Reverse);
        reverse.seek_to_start().unwrap();
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(collect(&mut reverse), reversed);

        forward.seek(&internal_key(b"a", 2, KIND_FOR_SEEK)).unwrap();
        assert_eq!(collect(&mut forward)[0], (b"a".to_vec(), 1));
        reverse.seek(&internal_key(b"b", 3, KIND_FOR_SEEK)).unwrap();
        // (b, 4) sorts before (b, 3): newer versions come first in internal-key order.
        assert_eq!(collect(&mut reverse)[0], (b"b".to_vec(), 4));
    }

    #[test]
    fn cursor_crosses_chunk_boundaries_while_inserts_continue() {
        let memtable = Arc::new(Memtable::new(1, 1 << 20));
        for index in 0..1000u32 {
            memtable.insert(&index.to_be_bytes(), u64::from(index) + 1, ValueKind::Put, b"v");
        }
        let mut cursor = memtable.cursor(Direction::Forward);
        cursor.seek_to_start().unwrap();
        let mut seen = 0u32;
        while cursor.valid() {
            let parsed = parse_internal_key(cursor.key()).unwrap();
            assert_eq!(parsed.user_key, seen.to_be_bytes());
            seen += 1;
            // Inserting behind and ahead of the cursor must not disturb the walk.
            memtable.insert(
                &(5000 + seen).to_be_bytes(),
                100_000 + u64::from(seen),
                ValueKind::Put,
                b"w",
            );
            cursor.next().unwrap();
            if seen == 1000 {
                break;
            }
        }
        assert_eq!(seen, 1000);
        let mut count = 0;
        memtable
            .for_each(|_, _| {
                count += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(count, 2000);
    }
}
