//! `Db`: the public handle of an open database, and the state every part of it shares.
//!
//! Write path: `write` → group-commit queue (`write`) → the leader appends the group to the
//! WAL and syncs once → memtable insert → publish the new seqno → acknowledge. A full memtable
//! is frozen and flushed to an L0 SST in the background (`flush`). Read path (`read`): the
//! memtable, the frozen memtables, then L0 SSTs newest first, each behind its bloom filter.
//!
//! Thread safety: `Db` is `Send + Sync` and cheap to clone; all clones share one database.
//! Lock order (never taken the other way round): `wal` → `engine` → `view`. The write queue's
//! own mutex is never held while any of these is taken.
//!
//! Invariants:
//! 1. `seqno_visible` is published only after every write up to it is in a memtable, so a
//!    reader that takes the seqno first and the view second sees every write up to it.
//! 2. Once poisoned (a failed WAL write or fsync, flush or manifest write) the database
//!    refuses writes until reopened; nothing after the failure is acknowledged.
//! 3. Only one thread at a time holds `wal`: the group-commit leader, or `flush()`.

mod budget;
mod checkpoint;
mod commit_note;
mod compact;
mod conflicts;
mod flush;
mod keyspaces;
mod open;
mod range_del;
mod read;
mod savepoint;
mod stats;
mod transaction;
mod write;

pub use budget::{
    MemoryBudget, MemoryBudgetUsage, MEMORY_BUDGET_BYTES_MIN, MEMORY_STALL_MAX,
    MEMTABLE_SHARE_PERCENT_DEFAULT,
};
pub use checkpoint::CheckpointReport;
pub use commit_note::{CommitListener, CommitNote};
pub use keyspaces::Keyspace;
pub(crate) use read::prefix_bounds;
pub use read::{Iter, Snapshot, VerifyReport};
pub use savepoint::Savepoint;
pub use stats::{DbStats, LevelStats};
pub use transaction::{
    Transaction, TransactionIter, TransactionOptions, TRANSACTION_ENTRY_OVERHEAD_BYTES,
    TRANSACTION_MEMORY_BYTES_MAX_DEFAULT, TRANSACTION_RETRIES_MAX_DEFAULT,
};
pub(crate) use write::panic_message as panic_text;

use crate::batch::WriteBatch;
use crate::fs::{FileLock, Fs};
use crate::manifest::{ManifestState, ManifestWriter};
use crate::memtable::Memtable;
use crate::options::{Options, WriteOptions};
use crate::record_log::RecordWriter;
use crate::version::ReadView;
use crate::{Error, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use stats::StatsCounters;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use write::WriteQueue;

/// Longest a thread waits on `engine_changed` before it checks the state again.
pub(crate) const ENGINE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The WAL being written, owned by the group-commit leader.
pub(crate) struct WalState {
    writer: RecordWriter,
    /// Largest seqno assigned so far.
    seqno_last: u64,
    /// Reused buffer for framing a group's records.
    buffer: Vec<u8>,
}

/// The engine's mutable state, under `DbInner::engine`.
pub(crate) struct EngineState {
    manifest: ManifestWriter,
    state: ManifestState,
    /// Frozen memtables waiting for flush, oldest first.
    imms: VecDeque<Arc<Memtable>>,
    /// True while a flush of `imms[0]` is writing its SST.
    flush_running: bool,
    /// Set when the database closes: the background threads exit.
    shutdown: bool,
    /// Files that running compactions read or replace.
    compacting: HashSet<u64>,
    /// Per level, the largest user key of the last file compacted out of it.
    cursors: Vec<Vec<u8>>,
    /// Set while `Db::compact_all` waits for or runs its compaction: no other compaction
    /// starts meanwhile (its output spans the whole key space of the last level).
    manual_compaction: bool,
}

/// State shared by every handle, snapshot and iterator of one database.
pub(crate) struct DbInner {
    dir: PathBuf,
    options: Options,
    fs: Arc<dyn Fs>,
    view: RwLock<Arc<ReadView>>,
    engine: Mutex<EngineState>,
    /// Signalled whenever `engine` changes: a memtable frozen or flushed, shutdown, poison.
    engine_changed: Condvar,
    queue: WriteQueue,
    wal: Mutex<WalState>,
    seqno_visible: AtomicU64,
    poisoned: AtomicBool,
    poison_cause: Mutex<Option<Error>>,
    closed: AtomicBool,
    stats: StatsCounters,
    /// The cache every SST reader of this database uses (maybe shared with other databases).
    block_cache: Option<Arc<crate::cache::BlockCache>>,
    /// The open SST readers, at most `Options::open_files_max` of them.
    tables: Arc<crate::table_cache::TableCache>,
    /// Paces the SST writes of flushes and compactions (`Options::rate_limit_bytes_per_sec`).
    rate_limiter: Option<Arc<crate::rate_limit::RateLimiter>>,
    /// Live snapshots: seqno → how many.
    snapshots: Mutex<BTreeMap<u64, usize>>,
    /// Identifies this open database among all in the process (keyspace handles carry it).
    token: u64,
    /// The live keyspaces by name (`keyspaces` module); taken after `engine`.
    keyspaces: RwLock<keyspaces::KeyspaceRegistry>,
    /// The default keyspace, which `Db`'s own reads and writes use.
    default_keyspace: Arc<crate::keyspace::KeyspaceState>,
    /// Set by another database's writer when the shared memory budget wants this database's
    /// memtable flushed early; the flush thread acts on it.
    flush_requested: AtomicBool,
    /// Receives the notes of committed transactions (`commit_note` module).
    commit_listener: RwLock<Option<Arc<dyn CommitListener>>>,
    // Dropped last: the directory stays locked while anything can still touch its files.
    _lock: Box<dyn FileLock>,
}

impl DbInner {
    /// Records the first failure and returns it; every later write gets `Error::Poisoned`.
    fn poison(&self, error: Error) -> Error {
        // Closing, or an earlier poisoning, is not a new failure.
        if matches!(error, Error::Closed | Error::Poisoned { .. }) {
            return error;
        }
        let mut cause = self.poison_cause.lock();
        if cause.is_none() {
            *cause = Some(error.clone());
        }
        self.poisoned.store(true, Ordering::Release);
        drop(cause);
        // Wake writers waiting for room and `flush()` callers so they see the failure. This
        // may run with `engine` held, so it does not lock it; every wait on `engine_changed`
        // has a timeout (`ENGINE_WAIT`), so a wakeup lost to that race only costs latency.
        self.engine_changed.notify_all();
        error
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        self.poisoned_error().map_or(Ok(()), Err)
    }

    /// `Error::Poisoned` with its cause, if the database is poisoned.
    fn poisoned_error(&self) -> Option<Error> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        let cause = self.poison_cause.lock().clone().unwrap_or(Error::Closed);
        Some(Error::Poisoned { cause: Box::new(cause) })
    }

    fn current_view(&self) -> Arc<ReadView> {
        Arc::clone(&self.view.read())
    }

    /// The lowest seqno a read may use from now on: the oldest snapshot's, or the visible
    /// seqno (a snapshot taken later gets a seqno at or above it). Range tombstone sets are
    /// pruned at it (`range_del` module).
    fn range_del_read_seqno_min(&self) -> u64 {
        let snapshots = self.snapshots.lock();
        let visible = self.seqno_visible.load(Ordering::Acquire);
        snapshots.keys().next().map_or(visible, |&oldest| oldest.min(visible))
    }
}

/// Owns the background threads; shuts the database down when the last `Db` clone drops.
struct DbHandle {
    inner: Arc<DbInner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl DbHandle {
    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // A flush or compaction waiting for the rate limiter finishes at full speed.
        if let Some(limiter) = &self.inner.rate_limiter {
            limiter.close();
        }
        {
            let mut engine = self.inner.engine.lock();
            engine.shutdown = true;
            self.inner.engine_changed.notify_all();
        }
        for thread in std::mem::take(&mut *self.threads.lock()) {
            // The threads catch panics in their work; a panic escaping one is a bug that has
            // nothing left for us to report.
            let _ = thread.join();
        }
        // Make every acknowledged write durable on a clean close, synced or not. A poisoned
        // database (for example after a failed background flush, which no writer saw) still
        // tries, but cannot promise it: the close reports the poison.
        let mut wal = self.inner.wal.lock();
        let synced = wal.writer.sync();
        if let Some(budget) = &self.inner.options.memory_budget {
            // The memtables leave memory with the database.
            let view = self.inner.current_view();
            let held: usize =
                std::iter::once(&view.mem).chain(view.imms.iter()).map(|m| m.size_bytes()).sum();
            budget.credit(held as u64);
        }
        if let Some(poisoned) = self.inner.poisoned_error() {
            return Err(poisoned);
        }
        synced.map_err(|error| self.inner.poison(error))
    }
}

impl Drop for DbHandle {
    fn drop(&mut self) {
        // Errors here have nowhere to go; `Db::close` reports them.
        let _ = self.shutdown();
    }
}

/// An open database: an ordered map from byte-string keys to byte-string values, durable and
/// safe to share between threads.
#[derive(Clone)]
pub struct Db {
    handle: Arc<DbHandle>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.handle.inner.dir).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (or creates) the database in directory `path`, recovering from the WAL whatever
    /// was not yet in SSTs. Fails with `Error::Locked` if it is already open.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        let inner = Arc::new(open::open(path.as_ref(), options)?);
        if let Some(budget) = &inner.options.memory_budget {
            budget.join(&inner);
        }
        let handle = DbHandle { inner: Arc::clone(&inner), threads: Mutex::new(Vec::new()) };
        // From here a failure to start a thread drops `handle`, which stops those started.
        if let Some(thread) = flush::start_flush_thread(&inner)? {
            handle.threads.lock().push(thread);
        }
        for thread in compact::start_compaction_threads(&inner)? {
            handle.threads.lock().push(thread);
        }
        Ok(Db { handle: Arc::new(handle) })
    }

    fn inner(&self) -> &Arc<DbInner> {
        &self.handle.inner
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner().dir
    }

    /// Sets `key` to `value`.
    pub fn put(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        options: WriteOptions,
    ) -> Result<()> {
        self.write_one(options, |batch| batch.put(key, value))
    }

    /// Sets `key` to `value` for `ttl`: once `Options::clock` passes the expiry, gets,
    /// iterators and transactions treat the key as deleted, and compaction (or the background
    /// expiry sweep) reclaims its space.
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: std::time::Duration,
        options: WriteOptions,
    ) -> Result<()> {
        let expires_at_ms = crate::ttl::expiry_after(self.inner().options.clock.now_ms(), ttl);
        self.write_one(options, |batch| batch.put_expiring_at(key, value, expires_at_ms))
    }

    /// Removes `key` (not an error if it is absent).
    pub fn delete(&self, key: impl AsRef<[u8]>, options: WriteOptions) -> Result<()> {
        self.write_one(options, |batch| batch.delete(key))
    }

    /// Writes the one-operation batch `fill` builds (the single-key writes of `Db` and
    /// `Keyspace`).
    pub(crate) fn write_one(
        &self,
        options: WriteOptions,
        fill: impl FnOnce(&mut WriteBatch) -> &mut WriteBatch,
    ) -> Result<()> {
        let mut batch = WriteBatch::new();
        fill(&mut batch);
        self.write(batch, options)
    }

    /// Removes every key from `start` (inclusive) to `end` (exclusive) without reading them:
    /// one record, whatever the range holds. Snapshots and iterators taken before still see
    /// the keys; compaction reclaims their space (whole files inside the range are dropped
    /// without being read). `start == end` deletes nothing; `start > end` is
    /// `Error::InvalidArgument`. At most `RANGE_TOMBSTONES_LIVE_MAX` range deletions are live
    /// at once (each stays until compaction has removed what it hides).
    pub fn delete_range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
        options: WriteOptions,
    ) -> Result<()> {
        let (start, end) = (start.as_ref(), end.as_ref());
        if start == end {
            // Nothing to delete, but the database state and the key are checked like any
            // write's.
            self.inner().check_writable()?;
            let mut probe = WriteBatch::new();
            probe.delete(start);
            return write::check_limits(self.inner(), &probe);
        }
        let mut batch = WriteBatch::new();
        batch.delete_range(start, end);
        self.write(batch, options)
    }

    /// Applies every operation of `batch` atomically: after a crash all of it or none of it is
    /// there. With `options.sync` it returns only once the batch is on stable storage.
    pub fn write(&self, batch: WriteBatch, options: WriteOptions) -> Result<()> {
        write::write(self.inner(), batch, options)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        keyspaces::get(self.inner(), &self.inner().default_keyspace, key.as_ref())
    }

    /// A consistent read-only view of the database as of now; it stays valid while writes go on.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.inner().check_open()?;
        Ok(Snapshot::new(Arc::clone(self.inner())))
    }

    /// Every key and value in key order (`.rev()` for descending).
    pub fn iter(&self) -> Result<Iter> {
        self.range::<&[u8], _>(..)
    }

    /// The keys in `range` with their values, in key order (`.rev()` for descending).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<Iter> {
        let keyspace = &self.inner().default_keyspace;
        keyspaces::range_latest(self.inner(), keyspace, read::bounds_of(&range))
    }

    /// The keys starting with `prefix` with their values, in key order (`.rev()` for descending).
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Iter> {
        let keyspace = &self.inner().default_keyspace;
        keyspaces::range_latest(self.inner(), keyspace, read::prefix_bounds(prefix.as_ref()))
    }

    /// The keyspace `name`, created if it does not exist. The database's own methods use the
    /// keyspace named `"default"`, which always exists. Names are 1 to
    /// `KEYSPACE_NAME_LEN_MAX` bytes without control characters; at most `KEYSPACES_LIVE_MAX`
    /// keyspaces live at once.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        let state = keyspaces::open(self.inner(), name, keyspaces::OpenMode::Any)?;
        Ok(Keyspace::new(self.clone(), state))
    }

    /// The existing keyspace `name`; `Error::KeyspaceNotFound` if there is none.
    pub fn open_keyspace(&self, name: &str) -> Result<Keyspace> {
        let state = keyspaces::open(self.inner(), name, keyspaces::OpenMode::Existing)?;
        Ok(Keyspace::new(self.clone(), state))
    }

    /// Creates keyspace `name`; `Error::KeyspaceExists` if it exists.
    pub fn create_keyspace(&self, name: &str) -> Result<Keyspace> {
        let state = keyspaces::open(self.inner(), name, keyspaces::OpenMode::New)?;
        Ok(Keyspace::new(self.clone(), state))
    }

    /// The default keyspace (the one `Db::put`, `Db::get` and the others use).
    pub fn default_keyspace(&self) -> Keyspace {
        Keyspace::new(self.clone(), Arc::clone(&self.inner().default_keyspace))
    }

    /// The names of the live keyspaces, `"default"` included, sorted.
    pub fn keyspaces(&self) -> Vec<String> {
        keyspaces::list(self.inner())
    }

    /// Drops keyspace `name` and everything in it, atomically and durably: its files are
    /// deleted, not its keys rewritten. Its handles, and snapshot reads through them, return
    /// `Error::KeyspaceDropped` from then on; iterators made before keep reading their view.
    /// A crash at any point leaves the keyspace either whole or gone.
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        keyspaces::drop_keyspace(self.inner(), name)
    }

    /// Begins an optimistic transaction with the default options (snapshot isolation).
    pub fn transaction(&self) -> Result<Transaction> {
        Transaction::new(self.inner(), TransactionOptions::default())
    }

    /// Sets (or, with `None`, removes) the listener that receives the notes of committed
    /// transactions, in commit order (`Transaction::set_commit_note`, `CommitListener`).
    pub fn set_commit_listener(&self, listener: Option<Arc<dyn CommitListener>>) {
        *self.inner().commit_listener.write() = listener;
    }

    /// Begins an optimistic transaction with `options`.
    pub fn transaction_with(&self, options: TransactionOptions) -> Result<Transaction> {
        Transaction::new(self.inner(), options)
    }

    /// Runs `body` in a transaction and commits it; on `Error::Conflict` (from `body` or the
    /// commit) runs both again, at most `options.retries_max` more times, with a short random
    /// pause between attempts. Any other error is returned at once, nothing committed.
    pub fn run_transaction<T>(
        &self,
        options: TransactionOptions,
        body: impl FnMut(&mut Transaction) -> Result<T>,
    ) -> Result<T> {
        transaction::run(self, options, body)
    }

    /// Freezes the memtable and waits until it and every earlier one are in SSTs.
    pub fn flush(&self) -> Result<()> {
        flush::flush_all(self.inner())
    }

    /// Flushes the memtable, then rewrites every SST into one sorted run in the last level,
    /// dropping every version no snapshot can see and every tombstone no snapshot needs.
    /// Waits for running compactions first; blocks until done. Background compaction keeps
    /// the tree in shape on its own: this is for reclaiming space at once (after deleting
    /// much, for example) or before taking a copy.
    pub fn compact_all(&self) -> Result<()> {
        self.flush()?;
        compact::compact_all(self.inner())
    }

    /// Makes a consistent, openable copy of the database in `target` (which must not exist)
    /// while writes go on: every write acknowledged before the call is in it, none after the
    /// memtable flush it starts. SSTs are hard-linked where the filesystem allows (no extra
    /// space until the database rewrites them), copied otherwise. A failure or crash part-way
    /// leaves `target` without a `CURRENT` file, not a database; remove it before retrying.
    pub fn checkpoint(&self, target: impl AsRef<Path>) -> Result<CheckpointReport> {
        checkpoint::checkpoint(self.inner(), target.as_ref())
    }

    /// Reads every block of every SST, checking every checksum, the key order and the entry
    /// counts against the manifest, and reports what it checked. It goes on past damage: if
    /// anything is wrong the result is `Error::VerifyFailed`, whose report lists every problem
    /// found, each naming its file.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.inner().check_open()?;
        read::verify(self.inner())
    }

    /// The memory this database uses now (and its budget's, if it has one).
    pub fn memory_usage(&self) -> MemoryUsage {
        let view = self.inner().current_view();
        let frozen: usize = view.imms.iter().map(|m| m.size_bytes()).sum();
        let cache = self.inner().block_cache.as_ref().map(|cache| cache.stats());
        MemoryUsage {
            memtable_bytes: view.mem.size_bytes() as u64,
            frozen_memtable_bytes: frozen as u64,
            block_cache_bytes: cache.map_or(0, |stats| stats.usage_bytes),
            block_cache_capacity_bytes: cache.map_or(0, |stats| stats.capacity_bytes),
            budget: self.inner().options.memory_budget.as_ref().map(|budget| budget.usage()),
        }
    }

    /// Counters and the shape of the tree.
    pub fn stats(&self) -> DbStats {
        read::stats(self.inner())
    }

    /// Stops background work, syncs the WAL and releases the database. `Ok` means every
    /// acknowledged write is durable. On a poisoned database (an earlier write, flush or
    /// fsync failed) it returns `Error::Poisoned`: writes acknowledged without `sync` may be
    /// lost in a power loss. Dropping the last clone does the same but cannot report an
    /// error. Other clones then return `Error::Closed`. Snapshots and iterators still alive
    /// keep reading, and keep the directory locked, until they are dropped.
    pub fn close(self) -> Result<()> {
        self.handle.shutdown()
    }
}

/// What `Db::memory_usage` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryUsage {
    /// The active memtable, in bytes (entries plus their measured per-entry overhead).
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for flush.
    pub frozen_memtable_bytes: u64,
    /// Blocks in this database's block cache now (shared with other databases if the cache
    /// or a budget is shared).
    pub block_cache_bytes: u64,
    /// That cache's bound.
    pub block_cache_capacity_bytes: u64,
    /// The shared budget's usage, if the database has one.
    pub budget: Option<MemoryBudgetUsage>,
}

#[cfg(test)]
mod tests;
