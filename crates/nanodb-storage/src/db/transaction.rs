//! Optimistic transactions: reads at a snapshot, writes buffered in memory, and a conflict
//! check at commit (`conflicts.rs`).
//!
//! A transaction reads at the seqno it began at, with its own writes laid over (read your
//! writes). `commit` turns the buffered writes into one `WriteBatch` and hands it to the
//! group-commit leader with a `ConflictCheck`: the batch commits only if no key it writes (and,
//! with `TransactionOptions::serializable`, no key or range it read) changed since the
//! transaction began; otherwise `Error::Conflict` and nothing is written. That is snapshot
//! isolation (first committer wins); serializable mode also rules out write skew.
//!
//! Thread safety: a `Transaction` is `Send` and used by one thread (`&mut self` for writes).
//! It holds a registered snapshot, so compaction keeps every version it may read.
//!
//! Invariants:
//! 1. `memory_bytes` counts every buffered write, recorded read and savepoint record
//!    (`read_bytes` the reads' part); it never passes `TransactionOptions::memory_bytes_max`
//!    (the write that would is refused).
//! 2. A transaction commits at most once; after `commit` it is consumed.

use super::conflicts::ConflictCheck;
use super::keyspaces::Keyspace;
use super::read::{self, bounds_of, prefix_bounds, Iter, KeyBounds, Snapshot};
use super::savepoint::{self, Savepoint, UndoLog};
use super::stats::StatsCounters;
use super::{CommitNote, Db, DbInner};
use crate::batch::WriteBatch;
use crate::keyspace::{prefix_len, stored_bounds, stored_key, KeyspaceState};
use crate::options::WriteOptions;
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::Duration;

/// Default for `TransactionOptions::memory_bytes_max`: 64 MiB, the default batch size limit.
pub const TRANSACTION_MEMORY_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Default for `TransactionOptions::retries_max`.
pub const TRANSACTION_RETRIES_MAX_DEFAULT: u32 = 16;
/// Memory counted per buffered write or recorded read, besides its key and value bytes.
pub const TRANSACTION_ENTRY_OVERHEAD_BYTES: usize = 64;
/// Longest pause between two attempts of `Db::run_transaction`.
const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(10);

/// How a transaction checks and commits.
#[derive(Debug, Clone)]
pub struct TransactionOptions {
    /// Also refuse to commit when a key or range the transaction read changed after it began
    /// (serializable; rules out write skew). Default false: snapshot isolation, where only
    /// keys it wrote are checked.
    pub serializable: bool,
    /// Most memory the buffered writes and recorded reads may take; past it a write or read
    /// fails with `Error::LimitExceeded` ("transaction memory"). The commit is also one write
    /// batch, so `Options::batch_size_bytes_max` bounds what it can write.
    pub memory_bytes_max: usize,
    /// How the commit is written (`sync` for durability before `commit` returns).
    pub write_options: WriteOptions,
    /// How many times `Db::run_transaction` runs the closure again after a conflict.
    pub retries_max: u32,
}

impl Default for TransactionOptions {
    fn default() -> TransactionOptions {
        TransactionOptions {
            serializable: false,
            memory_bytes_max: TRANSACTION_MEMORY_BYTES_MAX_DEFAULT,
            write_options: WriteOptions::NO_SYNC,
            retries_max: TRANSACTION_RETRIES_MAX_DEFAULT,
        }
    }
}

impl TransactionOptions {
    /// The defaults with `serializable` set.
    pub fn serializable() -> TransactionOptions {
        TransactionOptions { serializable: true, ..TransactionOptions::default() }
    }
}

/// An optimistic transaction (`Db::transaction`). Reads see the database as of its start plus
/// its own writes; `commit` applies its writes atomically or fails with `Error::Conflict`.
/// Dropping it without `commit` discards its writes.
pub struct Transaction {
    inner: Arc<DbInner>,
    snapshot: Snapshot,
    options: TransactionOptions,
    /// Buffered writes by stored key: `Some(value)` puts, `None` deletes.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Keyspaces (besides the default) the writes go to.
    keyspaces: Vec<Arc<KeyspaceState>>,
    /// Stored keys read (serializable only).
    reads: BTreeSet<Vec<u8>>,
    /// Stored-key ranges scanned (serializable only).
    read_ranges: Vec<KeyBounds>,
    memory_bytes: usize,
    /// The part of `memory_bytes` charged for recorded reads.
    read_bytes: usize,
    /// Handed to the commit listener if the transaction commits (`set_commit_note`).
    note: Option<CommitNote>,
    /// What the writes since the open savepoints replaced (`savepoint.rs`).
    undo: UndoLog,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("seqno", &self.snapshot.seqno())
            .field("writes", &self.writes.len())
            .field("serializable", &self.options.serializable)
            .finish_non_exhaustive()
    }
}

impl Transaction {
    pub(crate) fn new(inner: &Arc<DbInner>, options: TransactionOptions) -> Result<Transaction> {
        inner.check_open()?;
        Ok(Transaction {
            inner: Arc::clone(inner),
            snapshot: Snapshot::new(Arc::clone(inner)),
            options,
            writes: BTreeMap::new(),
            keyspaces: Vec::new(),
            reads: BTreeSet::new(),
            read_ranges: Vec::new(),
            memory_bytes: 0,
            read_bytes: 0,
            note: None,
            undo: UndoLog::default(),
        })
    }

    /// The seqno the transaction reads at.
    pub fn seqno(&self) -> u64 {
        self.snapshot.seqno()
    }

    /// Memory taken by buffered writes and recorded reads, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// Number of buffered writes (one per key).
    pub fn write_count(&self) -> usize {
        self.writes.len()
    }

    /// The value of `key` (default keyspace): this transaction's own write if it made one,
    /// else the database as of the transaction's start.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let default = Arc::clone(&self.inner.default_keyspace);
        self.get_stored(&default, key.as_ref())
    }

    /// The same in `keyspace`.
    pub fn get_in(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        let state = Arc::clone(self.check_keyspace(keyspace)?);
        self.get_stored(&state, key.as_ref())
    }

    fn get_stored(&mut self, keyspace: &KeyspaceState, key: &[u8]) -> Result<Option<Vec<u8>>> {
        keyspace.check_live()?;
        let stored = stored_key(&keyspace.prefix, key);
        if let Some(write) = self.writes.get(&stored) {
            return Ok(write.clone());
        }
        let found = read::get(&self.inner, &stored, self.snapshot.seqno())?;
        if self.options.serializable && !self.reads.contains(&stored) {
            self.charge_read(stored.len())?;
            self.reads.insert(stored);
        }
        Ok(found)
    }

    /// Sets `key` (default keyspace) to `value` when the transaction commits.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let default = Arc::clone(&self.inner.default_keyspace);
        self.write_stored(&default, key.as_ref(), Some(value.as_ref()))
    }

    /// The same in `keyspace`.
    pub fn put_in(
        &mut self,
        keyspace: &Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let state = Arc::clone(self.check_keyspace(keyspace)?);
        self.write_stored(&state, key.as_ref(), Some(value.as_ref()))
    }

    /// Removes `key` (default keyspace) when the transaction commits.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let default = Arc::clone(&self.inner.default_keyspace);
        self.write_stored(&default, key.as_ref(), None)
    }

    /// The same in `keyspace`.
    pub fn delete_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> Result<()> {
        let state = Arc::clone(self.check_keyspace(keyspace)?);
        self.write_stored(&state, key.as_ref(), None)
    }

    fn write_stored(
        &mut self,
        keyspace: &Arc<KeyspaceState>,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<()> {
        keyspace.check_live()?;
        let options = &self.inner.options;
        let value_len = value.map_or(0, <[u8]>::len);
        for (what, size, max) in [
            ("key size", key.len(), options.key_size_bytes_max),
            ("value size", value_len, options.value_size_bytes_max),
        ] {
            if size > max {
                return Err(Error::LimitExceeded { what, size: size as u64, max: max as u64 });
            }
        }
        let stored = stored_key(&keyspace.prefix, key);
        let replaced = self.writes.get(&stored).map(|old| old.as_ref().map_or(0, Vec::len));
        // Under a savepoint the write is recorded too: the key again, and the replaced value
        // (which moves into the record rather than going away).
        let undo_bytes = match self.undo.is_open() {
            true => savepoint::record_bytes(stored.len(), replaced),
            false => 0,
        };
        match replaced {
            // The key is already counted; only the value's size changes.
            Some(old_len) => {
                let grown = value_len.saturating_sub(old_len);
                self.charge_bytes(grown + undo_bytes)?;
                self.memory_bytes -= old_len.saturating_sub(value_len);
            }
            None => self.charge(stored.len() + value_len + undo_bytes)?,
        }
        if keyspace.id != crate::keyspace::DEFAULT_KEYSPACE_ID
            && !self.keyspaces.iter().any(|known| Arc::ptr_eq(known, keyspace))
        {
            self.keyspaces.push(Arc::clone(keyspace));
        }
        let value = value.map(<[u8]>::to_vec);
        if self.undo.is_open() {
            self.undo.record(&stored, undo_bytes);
            let previous = self.writes.insert(stored, value);
            self.undo.replaced(previous);
        } else {
            self.writes.insert(stored, value);
        }
        Ok(())
    }

    /// Opens a savepoint: `rollback_to` it undoes every write made after it (reads recorded
    /// for serializable mode stay, with their charge: they can only add conflicts). Close it
    /// with `release` or `rollback_to`; closing one closes those opened after it too. While
    /// one is open, each write also keeps what it replaced, counted against the memory limit.
    pub fn savepoint(&mut self) -> Savepoint {
        let write_bytes = self.memory_bytes - self.read_bytes;
        self.undo.open(write_bytes, self.keyspaces.len())
    }

    /// Closes `savepoint` (and any opened after it), keeping the writes made since.
    /// `Error::InvalidArgument` for a savepoint of another transaction or one already closed.
    pub fn release(&mut self, savepoint: Savepoint) -> Result<()> {
        self.undo.check(&savepoint)?;
        self.memory_bytes -= self.undo.release(&savepoint);
        Ok(())
    }

    /// Undoes every write made since `savepoint` and closes it (and any opened after it).
    /// `Error::InvalidArgument` for a savepoint of another transaction or one already closed.
    pub fn rollback_to(&mut self, savepoint: Savepoint) -> Result<()> {
        self.undo.check(&savepoint)?;
        self.undo.roll_back(&savepoint, &mut self.writes);
        self.memory_bytes = savepoint.write_bytes + self.read_bytes;
        self.keyspaces.truncate(savepoint.keyspaces);
        Ok(())
    }

    /// The keys in `range` (default keyspace) with their values, in key order, as the
    /// transaction sees them: its own writes over the database as of its start.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        range: R,
    ) -> Result<TransactionIter> {
        let default = Arc::clone(&self.inner.default_keyspace);
        self.scan(&default, bounds_of(&range))
    }

    /// The keys starting with `prefix` (default keyspace), as `range` sees them.
    pub fn prefix(&mut self, prefix: impl AsRef<[u8]>) -> Result<TransactionIter> {
        let default = Arc::clone(&self.inner.default_keyspace);
        self.scan(&default, prefix_bounds(prefix.as_ref()))
    }

    /// The keys of `keyspace` in `range`, as `range` sees them.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        keyspace: &Keyspace,
        range: R,
    ) -> Result<TransactionIter> {
        let state = Arc::clone(self.check_keyspace(keyspace)?);
        self.scan(&state, bounds_of(&range))
    }

    /// The keys of `keyspace` starting with `prefix`, as `range` sees them.
    pub fn prefix_in(
        &mut self,
        keyspace: &Keyspace,
        prefix: impl AsRef<[u8]>,
    ) -> Result<TransactionIter> {
        let state = Arc::clone(self.check_keyspace(keyspace)?);
        self.scan(&state, prefix_bounds(prefix.as_ref()))
    }

    fn scan(&mut self, keyspace: &KeyspaceState, bounds: KeyBounds) -> Result<TransactionIter> {
        keyspace.check_live()?;
        let stored = stored_bounds(&keyspace.prefix, bounds);
        let strip = keyspace.prefix.len();
        if read::bounds_are_empty(&stored) {
            // A reversed or empty range holds nothing: nothing to read, record or merge.
            let base = Iter::new(&self.inner, self.snapshot.seqno(), stored, strip);
            return Ok(TransactionIter {
                base,
                base_next: None,
                local: Vec::new().into_iter().peekable(),
            });
        }
        if self.options.serializable {
            let size = bound_len(&stored.0) + bound_len(&stored.1);
            self.charge_read(size)?;
            self.read_ranges.push(stored.clone());
        }
        let local: Vec<BufferedWrite> = self
            .writes
            .range::<Vec<u8>, _>((stored.0.as_ref(), stored.1.as_ref()))
            .map(|(key, value)| (key[strip..].to_vec(), value.clone()))
            .collect();
        let base = Iter::new(&self.inner, self.snapshot.seqno(), stored, strip);
        Ok(TransactionIter { base, base_next: None, local: local.into_iter().peekable() })
    }

    fn check_keyspace<'k>(&self, keyspace: &'k Keyspace) -> Result<&'k Arc<KeyspaceState>> {
        let state = keyspace.state();
        state.check_owner(self.inner.token)?;
        Ok(state)
    }

    fn charge(&mut self, bytes: usize) -> Result<()> {
        self.charge_bytes(bytes + TRANSACTION_ENTRY_OVERHEAD_BYTES)
    }

    /// `charge` for a read recorded in serializable mode (kept apart: a rollback to a
    /// savepoint undoes writes, not reads).
    fn charge_read(&mut self, bytes: usize) -> Result<()> {
        self.charge(bytes)?;
        self.read_bytes += bytes + TRANSACTION_ENTRY_OVERHEAD_BYTES;
        Ok(())
    }

    fn charge_bytes(&mut self, bytes: usize) -> Result<()> {
        let total = self.memory_bytes.saturating_add(bytes);
        if total > self.options.memory_bytes_max {
            return Err(Error::LimitExceeded {
                what: "transaction memory",
                size: total as u64,
                max: self.options.memory_bytes_max as u64,
            });
        }
        self.memory_bytes = total;
        Ok(())
    }

    /// Sets the note the database's commit listener receives, with the commit's seqno, once
    /// this transaction has committed (`Db::set_commit_listener`). It is never delivered if
    /// the transaction does not commit or writes nothing.
    pub fn set_commit_note(&mut self, note: CommitNote) {
        self.note = Some(note);
    }

    /// Applies every write atomically, or none with `Error::Conflict` if another commit
    /// changed a key this transaction wrote (or, serializable, read) since it began. A
    /// transaction without writes always commits.
    pub fn commit(self) -> Result<()> {
        self.inner.check_writable()?;
        if self.writes.is_empty() {
            StatsCounters::add(&self.inner.stats.transaction_commits, 1);
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for keyspace in &self.keyspaces {
            batch.note_keyspace_state(keyspace);
        }
        let mut keys = Vec::with_capacity(self.writes.len() + self.reads.len());
        for (stored, value) in &self.writes {
            let (prefix, key) = stored.split_at(prefix_len(stored));
            match value {
                Some(value) => batch.put_prefixed(prefix, key, value),
                None => batch.delete_prefixed(prefix, key),
            };
            keys.push(stored.clone());
        }
        if self.options.serializable {
            keys.extend(self.reads.iter().filter(|key| !self.writes.contains_key(*key)).cloned());
        }
        let check = ConflictCheck {
            snapshot_seqno: self.snapshot.seqno(),
            keys,
            ranges: self.read_ranges.clone(),
        };
        let options = self.options.write_options;
        super::write::write_checked(&self.inner, batch, options, Some(check), self.note)?;
        StatsCounters::add(&self.inner.stats.transaction_commits, 1);
        Ok(())
    }
}

fn bound_len(bound: &Bound<Vec<u8>>) -> usize {
    match bound {
        Bound::Included(key) | Bound::Excluded(key) => key.len(),
        Bound::Unbounded => 0,
    }
}

/// A buffered write seen by a scan: key without prefix, `None` for a delete.
type BufferedWrite = (Vec<u8>, Option<Vec<u8>>);

/// The entries of a transaction's range or prefix scan, in key order: its own writes merged
/// over the database as of its start. Forward only. Items are `Result`s like `Iter`'s.
pub struct TransactionIter {
    base: Iter,
    base_next: Option<(Vec<u8>, Vec<u8>)>,
    local: std::iter::Peekable<std::vec::IntoIter<BufferedWrite>>,
}

impl std::fmt::Debug for TransactionIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionIter").finish_non_exhaustive()
    }
}

impl Iterator for TransactionIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.base_next.is_none() {
                match self.base.next() {
                    Some(Ok(entry)) => self.base_next = Some(entry),
                    Some(Err(error)) => return Some(Err(error)),
                    None => {}
                }
            }
            let order = match (&self.base_next, self.local.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some((base_key, _)), Some((local_key, _))) => local_key.cmp(base_key),
            };
            if order == std::cmp::Ordering::Equal {
                self.base_next = None; // shadowed by the transaction's own write
            }
            let take_local = order != std::cmp::Ordering::Greater;
            if !take_local {
                return self.base_next.take().map(Ok);
            }
            if let Some((key, Some(value))) = self.local.next() {
                return Some(Ok((key, value)));
            }
            // A buffered delete: skip it (and the base entry it shadowed).
        }
    }
}

/// Runs `body` in a transaction and commits it, running both again (after a short random
/// pause) when either fails with `Error::Conflict`, at most `options.retries_max` more times.
pub(crate) fn run<T>(
    db: &Db,
    options: TransactionOptions,
    mut body: impl FnMut(&mut Transaction) -> Result<T>,
) -> Result<T> {
    let mut attempt: u32 = 0;
    loop {
        let mut transaction = Transaction::new(db.inner(), options.clone())?;
        let result = body(&mut transaction).and_then(|value| transaction.commit().map(|()| value));
        match result {
            Err(Error::Conflict { .. }) if attempt < options.retries_max => {
                attempt += 1;
                std::thread::sleep(backoff(attempt));
            }
            other => return other,
        }
    }
}

/// A random pause growing with `attempt`, up to `RETRY_BACKOFF_MAX`.
fn backoff(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::from(since.subsec_nanos()));
    let ceiling_micros = (20u64 << attempt.min(10)).min(RETRY_BACKOFF_MAX.as_micros() as u64);
    Duration::from_micros(nanos % ceiling_micros.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_under_its_cap() {
        for attempt in 0..40 {
            assert!(backoff(attempt) <= RETRY_BACKOFF_MAX);
        }
    }
}
