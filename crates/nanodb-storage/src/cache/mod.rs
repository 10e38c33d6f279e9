//! `BlockCache`: decoded SST blocks kept in memory, bounded in bytes, shared by every SST of a
//! database and, when the same handle is passed in `Options::block_cache`, by several
//! databases. It holds data blocks and, when `Options::pin_index_and_filter` is off, the
//! decoded index and bloom filter of each file (`CachedBlock`): all three kinds share one
//! key space, the file's cache id and the block's offset, which no two blocks of a file share.
//!
//! Policy: segmented LRU, per shard. A block enters the *probation* segment; a hit there moves
//! it to the *protected* segment (at most `PROTECTED_PERCENT` of the shard). Eviction takes
//! the least recently used probation block first, so a long scan, which touches each block
//! once, only churns probation and leaves the blocks that are read again in place.
//!
//! The capacity can change while the cache is in use (`set_capacity`: a `MemoryBudget` gives
//! its cache what the memtables do not use); a smaller capacity evicts at once.
//!
//! Thread safety: `Send + Sync`; keys are spread over `SHARD_COUNT` shards, each under its own
//! mutex held only for a few map operations (never during I/O). The hit, miss and insert
//! counters live in the shards too, so readers on different cores share no counter line.
//!
//! Invariants:
//! 1. Per shard, `usage_bytes` is the sum of the charges of its entries, and after every
//!    insert and every `set_capacity` it is at most the shard's capacity (a `SHARD_COUNT`th
//!    of the cache's; an entry larger than the whole shard is not cached at all).
//! 2. Every entry is in exactly one segment (`slru.rs`, whose lists make every operation
//!    O(1)).
//! 3. An entry is charged the memory its decoded value holds plus `ENTRY_OVERHEAD_BYTES`.

mod slru;

use crate::sst::{Block, BloomFilter, SstIndex};
use parking_lot::Mutex;
pub(crate) use slru::KeyHasher;
use slru::{Segment, Shard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shards of a cache (a power of two).
pub const SHARD_COUNT: usize = 16;
/// Share of a shard's capacity the protected segment may hold, in percent.
pub const PROTECTED_PERCENT: u64 = 80;
/// Bytes charged per entry on top of the block's own bytes (map entries, `Arc`, bookkeeping).
pub const ENTRY_OVERHEAD_BYTES: u64 = 96;

/// Identifies a block: the file's cache id and the block's offset in the file.
pub type BlockKey = (u64, u64);

/// A decoded block, of any of the kinds a reader looks up.
#[derive(Debug, Clone)]
pub enum CachedBlock {
    /// A data block.
    Data(Arc<Block>),
    /// A file's index (when not pinned).
    Index(Arc<SstIndex>),
    /// A file's bloom filter (when not pinned).
    Filter(Arc<BloomFilter>),
}

impl CachedBlock {
    /// Memory the decoded block holds, in bytes.
    pub fn size_bytes(&self) -> usize {
        match self {
            CachedBlock::Data(block) => block.size_bytes(),
            CachedBlock::Index(index) => index.size_bytes(),
            CachedBlock::Filter(filter) => filter.size_bytes(),
        }
    }
}

/// A byte-bounded, scan-resistant cache of SST blocks.
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    capacity_bytes: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity_bytes", &self.capacity_bytes())
            .field("usage_bytes", &self.usage_bytes())
            .finish_non_exhaustive()
    }
}

/// Counters of a block cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockCacheStats {
    /// The bound, in bytes.
    pub capacity_bytes: u64,
    /// Bytes charged by the cached blocks now.
    pub usage_bytes: u64,
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not (the block was read from its file).
    pub misses: u64,
    /// Blocks inserted.
    pub inserts: u64,
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of blocks (0 caches nothing).
    pub fn new(capacity_bytes: u64) -> Arc<BlockCache> {
        Arc::new(BlockCache {
            shards: (0..SHARD_COUNT).map(|_| Mutex::new(Shard::default())).collect(),
            capacity_bytes: AtomicU64::new(capacity_bytes),
        })
    }

    /// The bound now, in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes.load(Ordering::Acquire)
    }

    fn shard_capacity_bytes(&self) -> u64 {
        self.capacity_bytes() / SHARD_COUNT as u64
    }

    /// Changes the bound; a smaller one evicts blocks until every shard is within it.
    pub fn set_capacity(&self, capacity_bytes: u64) {
        let before = self.capacity_bytes.swap(capacity_bytes, Ordering::AcqRel);
        if capacity_bytes < before {
            let shard_capacity_bytes = self.shard_capacity_bytes();
            for shard in &self.shards {
                shard.lock().enforce(shard_capacity_bytes);
            }
        }
    }

    fn shard(&self, key: BlockKey) -> &Mutex<Shard> {
        // Offsets of neighbouring blocks differ in their low bits; mix both parts.
        let hash = (key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1.rotate_left(29))
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        &self.shards[(hash >> 60) as usize % SHARD_COUNT]
    }

    /// The cached block for `key`, if any; a hit protects it from the next scan.
    pub(crate) fn get(&self, key: BlockKey) -> Option<CachedBlock> {
        let mut shard = self.shard(key).lock();
        match shard.get(key) {
            Some((block, segment)) => {
                // Only a promotion grows the protected segment; usage never changes on a hit.
                if segment == Segment::Probation {
                    shard.enforce(self.shard_capacity_bytes());
                }
                shard.counters.hits += 1;
                Some(block)
            }
            None => {
                shard.counters.misses += 1;
                None
            }
        }
    }

    /// Caches `block` under `key`, charging its size plus `ENTRY_OVERHEAD_BYTES`.
    pub(crate) fn insert(&self, key: BlockKey, block: CachedBlock) {
        let charge = block.size_bytes() as u64 + ENTRY_OVERHEAD_BYTES;
        let shard_capacity_bytes = self.shard_capacity_bytes();
        if charge > shard_capacity_bytes {
            return;
        }
        let mut shard = self.shard(key).lock();
        if shard.contains(key) {
            return;
        }
        shard.insert(key, block, charge);
        shard.enforce(shard_capacity_bytes);
        shard.counters.inserts += 1;
    }

    /// Bytes charged by the cached blocks now.
    pub fn usage_bytes(&self) -> u64 {
        self.shards.iter().map(|shard| shard.lock().usage_bytes).sum()
    }

    /// The counters (summed over the shards, each read under its lock).
    pub fn stats(&self) -> BlockCacheStats {
        let mut stats =
            BlockCacheStats { capacity_bytes: self.capacity_bytes(), ..BlockCacheStats::default() };
        for shard in &self.shards {
            let shard = shard.lock();
            stats.usage_bytes += shard.usage_bytes;
            stats.hits += shard.counters.hits;
            stats.misses += shard.counters.misses;
            stats.inserts += shard.counters.inserts;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(len: usize) -> CachedBlock {
        // The cache only looks at the size.
        CachedBlock::Data(Arc::new(Block::for_tests(len)))
    }

    #[test]
    fn usage_stays_within_capacity() {
        let cache = BlockCache::new(SHARD_COUNT as u64 * 10_000);
        for offset in 0..10_000u64 {
            cache.insert((1, offset * 4096), block(1000));
        }
        assert!(cache.usage_bytes() <= cache.capacity_bytes());
        assert!(cache.usage_bytes() > cache.capacity_bytes() / 2);
        let per_shard = cache.shard_capacity_bytes();
        for shard in &cache.shards {
            assert!(shard.lock().usage_bytes <= per_shard);
        }
        // A smaller capacity evicts at once; a larger one lets blocks in again.
        cache.set_capacity(SHARD_COUNT as u64 * 3_000);
        for shard in &cache.shards {
            assert!(shard.lock().usage_bytes <= 3_000);
        }
        assert!(cache.usage_bytes() > 0);
        cache.set_capacity(SHARD_COUNT as u64 * 10_000);
        for offset in 0..10_000u64 {
            cache.insert((2, offset * 4096), block(1000));
        }
        assert!(cache.usage_bytes() > SHARD_COUNT as u64 * 3_000);
        assert!(cache.usage_bytes() <= cache.capacity_bytes());
    }

    #[test]
    fn a_block_larger_than_a_shard_is_not_cached_and_zero_caches_nothing() {
        let cache = BlockCache::new(SHARD_COUNT as u64 * 2000);
        cache.insert((1, 0), block(2000 - ENTRY_OVERHEAD_BYTES as usize + 1));
        assert!(cache.get((1, 0)).is_none());
        cache.insert((1, 0), block(2000 - ENTRY_OVERHEAD_BYTES as usize));
        assert!(cache.get((1, 0)).is_some(), "exactly a shard's capacity fits");
        let none = BlockCache::new(0);
        none.insert((1, 0), block(10));
        assert!(none.get((1, 0)).is_none());
        assert_eq!(none.usage_bytes(), 0);
    }

    #[test]
    fn a_scan_does_not_evict_blocks_that_are_read_again() {
        let cache = BlockCache::new(SHARD_COUNT as u64 * 20_000);
        let hot: Vec<BlockKey> = (0..64).map(|i| (7, i * 4096)).collect();
        for &key in &hot {
            cache.insert(key, block(1000));
            assert!(cache.get(key).is_some());
        }
        // A scan ten times the cache's size, each block touched once.
        for offset in 0..3200u64 {
            cache.insert((9, offset * 4096), block(1000));
        }
        let kept = hot.iter().filter(|&&key| cache.get(key).is_some()).count();
        assert_eq!(kept, hot.len(), "the protected blocks survive the scan");
        let stats = cache.stats();
        assert!(stats.hits >= 128 && stats.inserts == 64 + 3200, "{stats:?}");
    }
}
