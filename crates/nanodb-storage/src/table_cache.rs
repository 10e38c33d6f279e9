//! `TableCache`: the open SST readers of one database, at most `Options::open_files_max` of
//! them, least recently used first out. A reader holds the file open (and, with
//! `Options::pin_index_and_filter`, its index and filter in memory); an evicted one is opened
//! again, and validated again, the next time its `SstHandle` is read.
//!
//! The bound is on the readers cached here. A read, cursor or compaction that holds an
//! `Arc<SstReader>` keeps it (and its file descriptor) alive after eviction until it is done,
//! so in-flight users can exceed the bound for as long as they run: an iterator holds one
//! reader per L0 file and one per deeper level it is in, a compaction one per input.
//!
//! Readers are keyed by their handle's id (`next_cache_id`), not by file number: ids are
//! unique in the process and never reused, and the same id keys the file's blocks in the
//! block cache, so a reopened reader finds the blocks cached before.
//!
//! Thread safety: `Send + Sync`; ids are spread over up to `SHARD_COUNT_MAX` shards, each
//! under its own read-write lock, held only for map operations, never while a file is opened.
//! A hit (every point read asks once per file it searches) takes only the read lock and
//! stamps the entry's last use from the shard's clock; an insert takes the write lock and,
//! past the bound, evicts the entry with the oldest stamp (a scan of the shard, which only
//! opening a file pays).
//!
//! Invariants:
//! 1. Per shard, at most `shard_capacity` readers are cached after every insert; the sum over
//!    the shards is at most the capacity. The evicted reader is the least recently used one
//!    (uses racing on two threads may stamp in either order).
//! 2. Only a live `SstHandle` asks for its id, and the handle evicts its id when it drops,
//!    before an obsolete file is deleted. So a file is never opened again after its deletion,
//!    and no entry outlives its handle.

use crate::cache::{BlockCache, KeyHasher};
use crate::fs::Fs;
use crate::sst::SstReader;
use crate::{Error, Result};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most shards of a table cache.
pub const SHARD_COUNT_MAX: usize = 8;
/// Fewest readers per shard: a small cache uses fewer shards, so that an uneven spread of ids
/// over the shards does not evict readers while the cache as a whole has room.
pub const SHARD_CAPACITY_MIN: usize = 16;

/// Source of `next_cache_id`.
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// A new id for one SST file, unique in the process: its key in the table cache and its part
/// of the keys of its blocks in the block cache.
pub fn next_cache_id() -> u64 {
    NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed)
}

/// One cached reader and the shard clock's reading at its last use.
struct Entry {
    reader: Arc<SstReader>,
    used: AtomicU64,
}

#[derive(Default)]
struct Shard {
    entries: RwLock<HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>>,
    /// Counts uses; the entry with the smallest stamp is the least recently used.
    clock: AtomicU64,
}

impl Shard {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn get(&self, id: u64) -> Option<Arc<SstReader>> {
        let entries = self.entries.read();
        let entry = entries.get(&id)?;
        entry.used.store(self.tick(), Ordering::Relaxed);
        Some(Arc::clone(&entry.reader))
    }

    /// Caches `reader` as `id` unless an entry is there (returned instead), then evicts the
    /// least recently used entries past `capacity`.
    fn insert(&self, id: u64, reader: Arc<SstReader>, capacity: usize) -> Arc<SstReader> {
        let mut entries = self.entries.write();
        if let Some(existing) = entries.get(&id) {
            existing.used.store(self.tick(), Ordering::Relaxed);
            return Arc::clone(&existing.reader);
        }
        let used = AtomicU64::new(self.tick());
        entries.insert(id, Entry { reader: Arc::clone(&reader), used });
        while entries.len() > capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.used.load(Ordering::Relaxed))
                .map(|(id, _)| *id);
            let Some(oldest) = oldest else { break };
            entries.remove(&oldest);
        }
        reader
    }

    fn remove(&self, id: u64) {
        self.entries.write().remove(&id);
    }

    fn len(&self) -> usize {
        self.entries.read().len()
    }

    fn pinned_bytes(&self) -> u64 {
        self.entries.read().values().map(|entry| entry.reader.pinned_bytes()).sum()
    }
}

/// Counters of a table cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCacheStats {
    /// Readers cached now.
    pub files: u64,
    /// Lookups that found their reader.
    pub hits: u64,
    /// Lookups that had to open the file.
    pub misses: u64,
    /// Files opened (and validated), including at database open and after flushes and
    /// compactions.
    pub opens: u64,
    /// Of `opens`, those read through a memory map (`Options::mmap_reads`; a file that could
    /// not be mapped is read with `pread` and not counted here).
    pub opens_mapped: u64,
    /// Bytes of index and filter the cached readers hold (`Options::pin_index_and_filter`),
    /// outside the block cache and the memory budget.
    pub pinned_bytes: u64,
}

/// The bounded cache of open SST readers of one database.
pub struct TableCache {
    fs: Arc<dyn Fs>,
    block_cache: Option<Arc<BlockCache>>,
    /// `Options::pin_index_and_filter`, for every reader opened.
    pin_index_and_filter: bool,
    /// `Options::mmap_reads`, for every reader opened.
    mmap_reads: bool,
    shards: Vec<Shard>,
    shard_capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    opens: AtomicU64,
    opens_mapped: AtomicU64,
}

impl std::fmt::Debug for TableCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCache")
            .field("shards", &self.shards.len())
            .field("shard_capacity", &self.shard_capacity)
            .finish_non_exhaustive()
    }
}

impl TableCache {
    /// A cache of at most `capacity` (at least 1) readers of files on `fs`, whose blocks go
    /// through `block_cache`, which pin their index and filter if `pin_index_and_filter` and
    /// are memory-mapped if `mmap_reads`.
    pub fn new(
        fs: Arc<dyn Fs>,
        block_cache: Option<Arc<BlockCache>>,
        capacity: usize,
        pin_index_and_filter: bool,
        mmap_reads: bool,
    ) -> Arc<TableCache> {
        let capacity = capacity.max(1);
        let shard_count = (capacity / SHARD_CAPACITY_MIN).clamp(1, SHARD_COUNT_MAX);
        Arc::new(TableCache {
            fs,
            block_cache,
            pin_index_and_filter,
            mmap_reads,
            shards: (0..shard_count).map(|_| Shard::default()).collect(),
            shard_capacity: capacity / shard_count,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            opens_mapped: AtomicU64::new(0),
        })
    }

    /// The filesystem the files live on.
    pub fn fs(&self) -> &Arc<dyn Fs> {
        &self.fs
    }

    fn shard(&self, id: u64) -> &Shard {
        let hash = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.shards[(hash >> 32) as usize % self.shards.len()]
    }

    /// Opens and validates the SST at `path` as file `id`, without caching it. With
    /// `size_bytes`, the file must have that size (the manifest's record of it).
    pub fn open(&self, id: u64, path: &Path, size_bytes: Option<u64>) -> Result<SstReader> {
        self.opens.fetch_add(1, Ordering::Relaxed);
        let pin = self.pin_index_and_filter;
        let (cache, mmap) = (self.block_cache.as_ref(), self.mmap_reads);
        let reader =
            SstReader::open(self.fs.as_ref(), path, cache, id, pin, mmap).map_err(|error| {
                match error {
                    Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                        Error::corruption(path, "listed in the manifest but missing")
                    }
                    other => other,
                }
            })?;
        if reader.is_mapped() {
            self.opens_mapped.fetch_add(1, Ordering::Relaxed);
        }
        match size_bytes {
            Some(expected) if reader.size_bytes() != expected => Err(Error::corruption(
                path,
                format!("size {} differs from the manifest's {expected}", reader.size_bytes()),
            )),
            _ => Ok(reader),
        }
    }

    /// The reader of file `id`, opening the file at `path` (which must have `size_bytes`) if
    /// it is not cached.
    pub fn reader(&self, id: u64, path: &Path, size_bytes: u64) -> Result<Arc<SstReader>> {
        if let Some(reader) = self.shard(id).get(id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(reader);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let reader = Arc::new(self.open(id, path, Some(size_bytes))?);
        Ok(self.insert(id, reader))
    }

    /// Caches `reader` as file `id`, evicting the least recently used readers past the bound,
    /// and returns the cached reader (an earlier one, if another thread opened it first).
    pub fn insert(&self, id: u64, reader: Arc<SstReader>) -> Arc<SstReader> {
        self.shard(id).insert(id, reader, self.shard_capacity)
    }

    /// Drops the cached reader of file `id`, if any (its handle is dropping).
    pub fn evict(&self, id: u64) {
        self.shard(id).remove(id);
    }

    /// The counters.
    pub fn stats(&self) -> TableCacheStats {
        TableCacheStats {
            files: self.shards.iter().map(|shard| shard.len() as u64).sum(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            opens: self.opens.load(Ordering::Relaxed),
            opens_mapped: self.opens_mapped.load(Ordering::Relaxed),
            pinned_bytes: self.shards.iter().map(Shard::pinned_bytes).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;
    use crate::key::{internal_key, SEQNO_MAX};
    use crate::memtable::Lookup;
    use crate::sst::{SstWriter, SstWriterOptions};
    use std::path::PathBuf;

    fn write_file(fs: &SimFs, number: u64) -> (PathBuf, u64) {
        write_file_in(fs, Path::new("/db"), number)
    }

    fn write_file_in(fs: &dyn Fs, dir: &Path, number: u64) -> (PathBuf, u64) {
        let path = dir.join(format!("{number:06}.sst"));
        let options = SstWriterOptions {
            block_size_bytes: 256,
            bloom_bits_per_key: 10,
            compression: crate::options::Compression::None,
        };
        let mut writer = SstWriter::create(fs, &path, options).unwrap();
        for index in 0..100u64 {
            let key = internal_key(format!("key{index:03}").as_bytes(), index + 1, 1);
            writer.add(&key, format!("{number}:{index}").as_bytes()).unwrap();
        }
        writer.finish().unwrap();
        let size = fs.open(&path).unwrap().size_bytes();
        (path, size)
    }

    fn value(reader: &SstReader, index: u64) -> Vec<u8> {
        match reader.get(format!("key{index:03}").as_bytes(), SEQNO_MAX).unwrap() {
            Lookup::Found(value, _) => value.into_vec(),
            other => panic!("key{index:03}: {other:?}"),
        }
    }

    fn setup(files: u64) -> (SimFs, Vec<(u64, PathBuf, u64)>) {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let files = (1..=files)
            .map(|number| {
                let (path, size) = write_file(&fs, number);
                (next_cache_id(), path, size)
            })
            .collect();
        (fs, files)
    }

    #[test]
    fn mmap_reads_map_files_of_a_real_filesystem_only() {
        let dir = tempfile::tempdir().unwrap();
        let (path, size) = write_file_in(&crate::fs::RealFs, dir.path(), 1);
        for mmap_reads in [false, true] {
            let cache = TableCache::new(Arc::new(crate::fs::RealFs), None, 16, true, mmap_reads);
            let reader = cache.reader(next_cache_id(), &path, size).unwrap();
            assert_eq!(reader.is_mapped(), mmap_reads);
            assert_eq!(cache.stats().opens_mapped, u64::from(mmap_reads));
            assert_eq!(value(&reader, 7), b"1:7");
            // A size other than the manifest's is corruption, mapped or not.
            let error = cache.reader(next_cache_id(), &path, size + 1).unwrap_err();
            assert!(error.is_corruption(), "{error}");
        }
        // SimFs reads its files in memory: it never maps.
        let (fs, files) = setup(1);
        let cache = TableCache::new(Arc::new(fs), None, 16, true, true);
        let (id, path, size) = &files[0];
        assert!(!cache.reader(*id, path, *size).unwrap().is_mapped());
    }

    #[test]
    fn pinned_bytes_count_the_cached_readers_index_and_filter() {
        let (fs, files) = setup(3);
        let fs: Arc<dyn Fs> = Arc::new(fs);
        let unpinned = TableCache::new(Arc::clone(&fs), None, 16, false, false);
        let pinned = TableCache::new(fs, None, 16, true, false);
        let mut expected = 0;
        for (id, path, size) in &files {
            assert_eq!(unpinned.reader(*id, path, *size).unwrap().pinned_bytes(), 0);
            let reader = pinned.reader(*id, path, *size).unwrap();
            // 100 keys: an index of several blocks and a filter of 125 bytes and more.
            assert!(
                reader.pinned_bytes() > 125 + std::mem::size_of::<crate::sst::SstIndex>() as u64
            );
            expected += reader.pinned_bytes();
            assert_eq!(pinned.stats().pinned_bytes, expected);
        }
        assert_eq!(unpinned.stats().pinned_bytes, 0);
        pinned.evict(files[0].0);
        let first =
            SstReader::open(pinned.fs().as_ref(), &files[0].1, None, 0, true, false).unwrap();
        assert_eq!(pinned.stats().pinned_bytes, expected - first.pinned_bytes());
    }

    #[test]
    fn the_bound_holds_and_evicted_readers_reopen_transparently() {
        let (fs, files) = setup(40);
        let cache = TableCache::new(Arc::new(fs), None, 16, true, false);
        assert_eq!(cache.shards.len(), 1);
        for round in 0..3 {
            for (number, (id, path, size)) in files.iter().enumerate() {
                let reader = cache.reader(*id, path, *size).unwrap();
                assert_eq!(value(&reader, 7), format!("{}:7", number + 1).into_bytes());
                assert!(cache.stats().files <= 16, "round {round}");
            }
        }
        let stats = cache.stats();
        assert_eq!(stats.files, 16);
        // Cycling through 40 files with room for 16 opens every file every round.
        assert_eq!((stats.hits, stats.misses, stats.opens), (0, 120, 120), "{stats:?}");
        // The 16 most recent files hit.
        for (id, path, size) in &files[24..] {
            cache.reader(*id, path, *size).unwrap();
        }
        assert_eq!(cache.stats().hits, 16);
    }

    #[test]
    fn a_hit_makes_a_reader_the_most_recent_so_eviction_passes_it_by() {
        let (fs, files) = setup(18);
        let cache = TableCache::new(Arc::new(fs), None, 16, true, false);
        for (id, path, size) in &files[..16] {
            cache.reader(*id, path, *size).unwrap();
        }
        let (first_id, first_path, first_size) = &files[0];
        cache.reader(*first_id, first_path, *first_size).unwrap();
        // Two more files evict files 1 and 2, the least recently used; file 0 stays.
        for (id, path, size) in &files[16..] {
            cache.reader(*id, path, *size).unwrap();
        }
        let opens = cache.stats().opens;
        cache.reader(*first_id, first_path, *first_size).unwrap();
        assert_eq!(cache.stats().opens, opens, "file 0 was used recently and stays cached");
        let (second_id, second_path, second_size) = &files[1];
        cache.reader(*second_id, second_path, *second_size).unwrap();
        assert_eq!(cache.stats().opens, opens + 1, "file 1 was the least recently used");
    }

    #[test]
    fn a_reader_in_use_outlives_its_eviction_and_eviction_by_id_works() {
        let (fs, files) = setup(20);
        let cache = TableCache::new(Arc::new(fs), None, 16, true, false);
        let (id, path, size) = &files[0];
        let held = cache.reader(*id, path, *size).unwrap();
        for (id, path, size) in &files[1..] {
            cache.reader(*id, path, *size).unwrap();
        }
        // Evicted from the cache, still usable by its holder.
        assert_eq!(cache.stats().files, 16);
        assert_eq!(value(&held, 3), b"1:3".to_vec());
        let (last_id, last_path, last_size) = &files[19];
        cache.evict(*last_id);
        assert_eq!(cache.stats().files, 15);
        let opens = cache.stats().opens;
        cache.reader(*last_id, last_path, *last_size).unwrap();
        assert_eq!(cache.stats().opens, opens + 1);
    }

    #[test]
    fn a_reopened_reader_finds_its_blocks_in_the_block_cache() {
        let (fs, files) = setup(1);
        let blocks = BlockCache::new(1 << 20);
        let cache = TableCache::new(Arc::new(fs), Some(Arc::clone(&blocks)), 16, true, false);
        let (id, path, size) = &files[0];
        assert_eq!(value(&cache.reader(*id, path, *size).unwrap(), 42), b"1:42".to_vec());
        let inserts = blocks.stats().inserts;
        cache.evict(*id);
        let hits = blocks.stats().hits;
        assert_eq!(value(&cache.reader(*id, path, *size).unwrap(), 42), b"1:42".to_vec());
        assert_eq!(blocks.stats().hits, hits + 1, "the block read before the reopen hits");
        assert_eq!(blocks.stats().inserts, inserts);
    }

    #[test]
    fn a_missing_or_resized_file_is_corruption() {
        let (fs, files) = setup(1);
        let cache = TableCache::new(Arc::new(fs.clone()), None, 16, true, false);
        let (id, path, size) = &files[0];
        let error = cache.reader(*id, path, size + 1).unwrap_err();
        assert!(error.is_corruption() && error.to_string().contains("differs"), "{error}");
        fs.remove_file(path).unwrap();
        let error = cache.reader(*id, path, *size).unwrap_err();
        assert!(error.is_corruption() && error.to_string().contains("missing"), "{error}");
    }

    #[test]
    fn large_caches_shard_and_keep_the_total_bound() {
        let (fs, _) = setup(0);
        for (capacity, shards) in [(1, 1), (16, 1), (31, 1), (32, 2), (1000, 8), (1001, 8)] {
            let cache = TableCache::new(Arc::new(fs.clone()), None, capacity, true, false);
            assert_eq!(cache.shards.len(), shards, "capacity {capacity}");
            assert!(cache.shard_capacity * shards <= capacity.max(1));
        }
    }
}
