//! `MemoryBudget`: one memory limit shared by several open databases, covering their
//! memtables and one shared block cache.
//!
//! The budget covers a block cache (every database under it uses that one cache) and the
//! memtables, which may use up to a share of it. The cache gets what the memtables do not
//! hold: its capacity follows their size in steps of `1 / CACHE_CAPACITY_STEPS` of the share,
//! rounded against the cache, so cache and memtables together never pass the budget, and a
//! database that is only read has the whole budget for its cache. (The cost: memory a flushed
//! memtable gave back may stay with the allocator, in another thread's arena, while the cache
//! grows; `with_fixed_cache` keeps the cache at the budget less the share instead, for a
//! resident size that never holds both.) Each database charges the budget for what its writes add to
//! its memtable and is credited when a flush releases a frozen memtable (or when it closes).
//! When the memtables of all its databases pass three quarters of the share, the writer that
//! notices asks the database with the largest active memtable to freeze it early (itself, at
//! once; another, by a flag its flush thread acts on): frozen memtables still count until their
//! flush ends, so flushing starts before the share is reached. Past seven eighths writers are
//! slowed; at the share they wait (`MEMORY_STALL_MAX` at most per group) until flushes catch
//! up. So memtables pass their share by at most the groups being written at that moment.
//!
//! Thread safety: counters are atomics; the member list is under a mutex taken only to add a
//! database or to find the largest memtable, never while a database lock is taken inside it.
//!
//! Invariants:
//! 1. `memtable_bytes` equals the sum, over open member databases, of what their active and
//!    frozen memtables were charged: charges and credits pair up per memtable.
//! 2. A database never waits on the budget while holding anything but its own WAL lock. The
//!    flushes that free memory need only the engine lock; the early freeze a flush thread does
//!    for the budget needs the WAL lock too, but only tries it for a bounded time and gives
//!    up, so a stalled writer never blocks the work that unblocks it.

use super::{DbInner, WalState};
use crate::cache::BlockCache;
use crate::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Smallest budget accepted, in bytes.
pub const MEMORY_BUDGET_BYTES_MIN: u64 = 4 * 1024 * 1024;
/// Default percentage of a budget given to memtables (the rest is the block cache).
pub const MEMTABLE_SHARE_PERCENT_DEFAULT: u8 = 50;
/// The block cache's capacity changes in steps of this fraction of the memtable share.
pub const CACHE_CAPACITY_STEPS: u64 = 32;
/// Longest a writer group waits for memory before it writes anyway (the overshoot is then
/// bounded by what writers add during flushes, and counted as a stall).
pub const MEMORY_STALL_MAX: Duration = Duration::from_secs(10);

/// A memory limit shared by the databases opened with it (`Options::memory_budget`).
pub struct MemoryBudget {
    total_bytes: u64,
    memtable_share_bytes: u64,
    cache_takes_idle_share: bool,
    cache: Arc<BlockCache>,
    memtable_bytes: AtomicU64,
    memtable_bytes_peak: AtomicU64,
    early_flushes: AtomicU64,
    slowdowns: AtomicU64,
    stall_micros: AtomicU64,
    members: Mutex<Vec<Weak<DbInner>>>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total_bytes", &self.total_bytes)
            .field("memtable_share_bytes", &self.memtable_share_bytes)
            .finish_non_exhaustive()
    }
}

/// What a budget has handed out, now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryBudgetUsage {
    /// The budget.
    pub total_bytes: u64,
    /// The most the memtables may hold (the block cache has the rest, and what they leave).
    pub memtable_share_bytes: u64,
    /// Memtables (active and frozen) of every database under the budget.
    pub memtable_bytes: u64,
    /// The largest `memtable_bytes` seen.
    pub memtable_bytes_peak: u64,
    /// Bytes in the shared block cache.
    pub block_cache_bytes: u64,
    /// Memtables frozen early because the memtables passed their share.
    pub early_flushes: u64,
    /// Writer groups slowed because the memtables were far over their share.
    pub slowdowns: u64,
    /// Time writers spent slowed or waiting for memory, in microseconds.
    pub stall_micros: u64,
}

impl MemoryBudget {
    /// A budget of `total_bytes` (at least `MEMORY_BUDGET_BYTES_MIN`), of which memtables
    /// may hold half; the block cache has the rest and what the memtables leave.
    pub fn new(total_bytes: u64) -> Result<Arc<MemoryBudget>> {
        MemoryBudget::with_memtable_share(total_bytes, MEMTABLE_SHARE_PERCENT_DEFAULT)
    }

    /// A budget of `total_bytes` with `memtable_percent` (1 to 99) of it for memtables.
    pub fn with_memtable_share(
        total_bytes: u64,
        memtable_percent: u8,
    ) -> Result<Arc<MemoryBudget>> {
        MemoryBudget::build(total_bytes, memtable_percent, true)
    }

    /// A budget of `total_bytes` with `memtable_percent` (1 to 99) of it for memtables whose
    /// block cache always has exactly the rest, used or not by the memtables.
    pub fn with_fixed_cache(total_bytes: u64, memtable_percent: u8) -> Result<Arc<MemoryBudget>> {
        MemoryBudget::build(total_bytes, memtable_percent, false)
    }

    fn build(
        total_bytes: u64,
        memtable_percent: u8,
        cache_takes_idle_share: bool,
    ) -> Result<Arc<MemoryBudget>> {
        if total_bytes < MEMORY_BUDGET_BYTES_MIN {
            return Err(Error::InvalidArgument(format!(
                "a memory budget of {total_bytes} bytes is below the minimum of {MEMORY_BUDGET_BYTES_MIN}"
            )));
        }
        if !(1..=99).contains(&memtable_percent) {
            return Err(Error::InvalidArgument(format!(
                "the memtable share of a memory budget must be 1 to 99 percent, not {memtable_percent}"
            )));
        }
        let memtable_share_bytes = total_bytes / 100 * u64::from(memtable_percent);
        let cache_bytes =
            if cache_takes_idle_share { total_bytes } else { total_bytes - memtable_share_bytes };
        Ok(Arc::new(MemoryBudget {
            total_bytes,
            memtable_share_bytes,
            cache_takes_idle_share,
            cache: BlockCache::new(cache_bytes),
            memtable_bytes: AtomicU64::new(0),
            memtable_bytes_peak: AtomicU64::new(0),
            early_flushes: AtomicU64::new(0),
            slowdowns: AtomicU64::new(0),
            stall_micros: AtomicU64::new(0),
            members: Mutex::new(Vec::new()),
        }))
    }

    /// The block cache every database under the budget uses.
    pub fn block_cache(&self) -> &Arc<BlockCache> {
        &self.cache
    }

    /// What is used now.
    pub fn usage(&self) -> MemoryBudgetUsage {
        MemoryBudgetUsage {
            total_bytes: self.total_bytes,
            memtable_share_bytes: self.memtable_share_bytes,
            memtable_bytes: self.memtable_bytes.load(Ordering::Acquire),
            memtable_bytes_peak: self.memtable_bytes_peak.load(Ordering::Acquire),
            block_cache_bytes: self.cache.usage_bytes(),
            early_flushes: self.early_flushes.load(Ordering::Relaxed),
            slowdowns: self.slowdowns.load(Ordering::Relaxed),
            stall_micros: self.stall_micros.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn join(&self, member: &Arc<DbInner>) {
        let mut members = self.members.lock();
        members.retain(|weak| weak.strong_count() > 0);
        members.push(Arc::downgrade(member));
    }

    pub(crate) fn charge(&self, bytes: u64) {
        let now = self.memtable_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.memtable_bytes_peak.fetch_max(now, Ordering::AcqRel);
        self.resize_cache();
    }

    pub(crate) fn credit(&self, bytes: u64) {
        // Saturating: a credit never exceeds the charges it pairs with (invariant 1), but a
        // bug must not wrap the counter into a permanent stall.
        let _ = self.memtable_bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            Some(used.saturating_sub(bytes))
        });
        self.resize_cache();
    }

    /// The cache's capacity when the memtables hold `memtable_bytes`: the budget less their
    /// size (at most their share) rounded up to a whole step.
    fn cache_capacity_for(&self, memtable_bytes: u64) -> u64 {
        let share = self.memtable_share_bytes;
        let step = (share / CACHE_CAPACITY_STEPS).max(1);
        let held = memtable_bytes.min(share).div_ceil(step).saturating_mul(step).min(share);
        self.total_bytes - held
    }

    /// Sets the cache's capacity for the memtables' size now; almost always a comparison
    /// only, as it changes only when the memtables cross a step. Racing callers each set what
    /// they read last, then check again, so the capacity settles on the latest size.
    fn resize_cache(&self) {
        if !self.cache_takes_idle_share {
            return;
        }
        for _ in 0..4 {
            let target = self.cache_capacity_for(self.memtable_bytes.load(Ordering::Acquire));
            if target == self.cache.capacity_bytes() {
                return;
            }
            self.cache.set_capacity(target);
        }
    }

    /// The member with the largest active memtable not yet asked to flush.
    fn largest_member(&self) -> Option<Arc<DbInner>> {
        let members = self.members.lock();
        members
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|member| !member.flush_requested.load(Ordering::Acquire))
            .filter(|member| member.poisoned_error().is_none())
            .max_by_key(|member| member.current_view().mem.size_bytes())
    }
}

/// Called by `inner`'s group-commit leader (holding `wal`) before it writes a group: starts an
/// early flush when the memtables near their share (freezing `inner`'s own memtable if it is
/// the largest), and slows or stops the group while they are at or past it.
pub(crate) fn enforce(inner: &DbInner, budget: &MemoryBudget, wal: &mut WalState) -> Result<()> {
    let share = budget.memtable_share_bytes;
    let used = || budget.memtable_bytes.load(Ordering::Acquire);
    if used() <= share / 4 * 3 {
        return Ok(());
    }
    request_early_flush(inner, budget, wal)?;
    let slowdown_from = share / 8 * 7;
    if used() >= share {
        let start = Instant::now();
        let mut rounds = 0u32;
        while used() >= share && start.elapsed() < MEMORY_STALL_MAX {
            inner.check_writable()?;
            std::thread::sleep(Duration::from_millis(1));
            rounds += 1;
            if rounds.is_multiple_of(10) {
                // The memtable asked for may have been busy; ask the now largest.
                request_early_flush(inner, budget, wal)?;
            }
        }
        budget.stall_micros.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    } else if used() > slowdown_from {
        // A pause growing with how close the memtables are to their share, up to 1 ms.
        let span = (share - slowdown_from).max(1);
        let pause =
            Duration::from_micros(1_000 * (used().saturating_sub(slowdown_from)).min(span) / span);
        std::thread::sleep(pause);
        budget.slowdowns.fetch_add(1, Ordering::Relaxed);
        budget.stall_micros.fetch_add(pause.as_micros() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Freezes the largest active memtable among the budget's databases: `inner`'s own at once,
/// another's through its flush thread.
fn request_early_flush(inner: &DbInner, budget: &MemoryBudget, wal: &mut WalState) -> Result<()> {
    let Some(largest) = budget.largest_member() else { return Ok(()) };
    // A small memtable is not worth an L0 file of its own: the memory is then in frozen
    // memtables, whose flushes are already under way. "Small" is below a sixteenth of the
    // share or half the database's own memtable limit, whichever is less, so a memtable
    // that fills up on its own is always big enough.
    let small_bytes =
        (budget.memtable_share_bytes / 16).min(largest.options.memtable_size_bytes_max as u64 / 2);
    if (largest.current_view().mem.size_bytes() as u64) < small_bytes.max(1) {
        return Ok(());
    }
    budget.early_flushes.fetch_add(1, Ordering::Relaxed);
    if std::ptr::eq(Arc::as_ptr(&largest), inner) {
        super::write::freeze_memtable(inner, wal)
    } else {
        largest.flush_requested.store(true, Ordering::Release);
        largest.engine_changed.notify_all();
        Ok(())
    }
}

/// Flush-thread side: true once if another database's writer asked this one to flush early.
pub(crate) fn take_flush_request(flag: &AtomicBool) -> bool {
    flag.swap(false, Ordering::AcqRel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_checked_and_split() {
        assert!(MemoryBudget::new(MEMORY_BUDGET_BYTES_MIN - 1).is_err());
        assert!(MemoryBudget::with_memtable_share(MEMORY_BUDGET_BYTES_MIN, 0).is_err());
        assert!(MemoryBudget::with_memtable_share(MEMORY_BUDGET_BYTES_MIN, 100).is_err());
        let budget = MemoryBudget::with_memtable_share(100 << 20, 25).unwrap();
        let usage = budget.usage();
        assert_eq!(usage.memtable_share_bytes, 25 << 20);
        let capacity = || budget.block_cache().stats().capacity_bytes;
        assert_eq!(capacity(), 100 << 20, "no memtable: the cache has it all");
        budget.charge(10);
        budget.charge(5);
        let step = (25 << 20) / CACHE_CAPACITY_STEPS;
        assert_eq!(capacity(), (100 << 20) - step, "a started step counts whole");
        budget.credit(10);
        assert_eq!(budget.usage().memtable_bytes, 5);
        assert_eq!(budget.usage().memtable_bytes_peak, 15);
        budget.charge(step - 5);
        assert_eq!(capacity(), (100 << 20) - step, "exactly one step");
        budget.charge(1);
        assert_eq!(capacity(), (100 << 20) - 2 * step);
        budget.charge(100 << 20);
        assert_eq!(capacity(), 75 << 20, "past the share, the cache keeps the rest");
        budget.credit(200 << 20);
        assert_eq!(budget.usage().memtable_bytes, 0, "credits saturate");
        assert_eq!(capacity(), 100 << 20);
        let fixed = MemoryBudget::with_fixed_cache(100 << 20, 25).unwrap();
        assert_eq!(fixed.block_cache().stats().capacity_bytes, 75 << 20);
        fixed.charge(10 << 20);
        assert_eq!(fixed.block_cache().stats().capacity_bytes, 75 << 20);
    }
}
