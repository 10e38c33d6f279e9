//! The write path: limits, the group-commit queue, WAL append and sync, memtable insert.
//!
//! Writers enqueue their batch and wait. Whoever finds no leader active becomes the leader: it
//! takes the queued batches (in arrival order, up to `group_commit_size_bytes_max`), appends
//! them to the WAL in one write, syncs once if any of them asked for it, inserts them into the
//! memtable, publishes the new seqno and hands every writer of the group its result.
//!
//! Thread safety: the queue's mutex guards only the queue; the leader does its I/O without it,
//! holding `DbInner::wal`, so new writers can queue up for the next group meanwhile.
//!
//! Invariants:
//! 1. Batches get consecutive seqnos in WAL order; `seqno_visible` moves only forward.
//! 2. A writer is told `Ok` only after its batch is in the WAL (and synced, if it asked) and
//!    in the memtable.
//! 3. A failure poisons the database before any writer of the group is answered.

use super::conflicts::{self, ConflictCheck, GroupWrites};
use super::{CommitNote, DbInner, WalState};
use crate::batch::{OpKind, WriteBatch};
use crate::filenames::wal_path;
use crate::key::SEQNO_MAX;
use crate::manifest::sync_dir;
use crate::memtable::Memtable;
use crate::options::{Options, WriteOptions, SLOWDOWN_DELAY_MAX};
use crate::range_del::{RangeTombstone, RANGE_TOMBSTONES_LIVE_MAX};
use crate::version::ReadView;
use crate::wal::create_wal;
use crate::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::StatsCounters;

struct PendingWrite {
    id: u64,
    batch: WriteBatch,
    sync: bool,
    /// A transaction's conflict check, run by the leader before the batch commits.
    check: Option<ConflictCheck>,
    /// Handed to the commit listener with the batch's first seqno once it committed.
    note: Option<CommitNote>,
    /// The batch's first seqno, set by the leader.
    seqno_first: u64,
    /// Set by the leader when the batch cannot commit on its own account (a keyspace it writes
    /// to was dropped, a transaction conflict): it is left out of the group and gets this error.
    rejected: Option<Error>,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<PendingWrite>,
    finished: HashMap<u64, Result<()>>,
    leader_active: bool,
    next_id: u64,
}

/// The group-commit queue.
#[derive(Default)]
pub(crate) struct WriteQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

pub(crate) fn check_limits(inner: &DbInner, batch: &WriteBatch) -> Result<()> {
    let options = &inner.options;
    let checks = [
        ("key size", batch.key_len_max(), options.key_size_bytes_max),
        ("value size", batch.value_len_max(), options.value_size_bytes_max),
        ("write batch size", batch.size_bytes(), options.batch_size_bytes_max),
    ];
    for (what, size, max) in checks {
        if size > max {
            return Err(Error::LimitExceeded { what, size: size as u64, max: max as u64 });
        }
    }
    if batch.has_inverted_range() {
        return Err(Error::InvalidArgument("delete_range: the start is after the end".into()));
    }
    if batch.range_delete_count() > 0 {
        // Checked as the write is queued: writers racing each other may pass the limit by the
        // range deletions they have in flight.
        let live = inner.current_view().range_dels.len() + batch.range_delete_count();
        if live > RANGE_TOMBSTONES_LIVE_MAX {
            return Err(Error::LimitExceeded {
                what: "live range tombstones",
                size: live as u64,
                max: RANGE_TOMBSTONES_LIVE_MAX as u64,
            });
        }
    }
    Ok(())
}

/// Checks that every keyspace `batch` writes to belongs to this database and is live.
fn check_keyspaces(inner: &DbInner, batch: &WriteBatch) -> Result<()> {
    for keyspace in batch.keyspaces() {
        keyspace.check_owner(inner.token)?;
        keyspace.check_live()?;
    }
    Ok(())
}

/// Writes `batch` through the group-commit queue.
pub(crate) fn write(inner: &DbInner, batch: WriteBatch, options: WriteOptions) -> Result<()> {
    write_checked(inner, batch, options, None, None)
}

/// Writes `batch` through the group-commit queue if `check` (a transaction's) finds no
/// conflict when the batch's turn comes; once committed, `note` goes to the commit listener.
pub(crate) fn write_checked(
    inner: &DbInner,
    batch: WriteBatch,
    options: WriteOptions,
    check: Option<ConflictCheck>,
    note: Option<CommitNote>,
) -> Result<()> {
    inner.check_writable()?;
    check_limits(inner, &batch)?;
    check_keyspaces(inner, &batch)?;
    if batch.is_empty() {
        return Ok(());
    }
    let queue = &inner.queue;
    let mut state = queue.state.lock();
    let id = state.next_id;
    state.next_id += 1;
    let sync = options.sync;
    let write = PendingWrite { id, batch, sync, check, note, seqno_first: 0, rejected: None };
    state.pending.push_back(write);
    loop {
        if let Some(result) = state.finished.remove(&id) {
            return result;
        }
        if state.leader_active {
            queue.changed.wait(&mut state);
            continue;
        }
        state.leader_active = true;
        let mut group = take_group(&mut state.pending, inner.options.group_commit_size_bytes_max);
        drop(state);
        // A panic (a bug, or a user-supplied `Fs` that panics) must not leave `leader_active`
        // set, or every later writer would wait forever: it poisons the database instead.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_group(inner, &mut group)
        }))
        .unwrap_or_else(|panic| Err(inner.poison(Error::Internal(panic_message(&panic)))));
        state = queue.state.lock();
        for write in &mut group {
            let own = write.rejected.take().map(Err);
            state.finished.insert(write.id, own.unwrap_or_else(|| result.clone()));
        }
        state.leader_active = false;
        queue.changed.notify_all();
    }
}

/// The text of a caught panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    format!("panic: {}", text.unwrap_or_else(|| "(no message)".into()))
}

fn take_group(pending: &mut VecDeque<PendingWrite>, size_bytes_max: usize) -> Vec<PendingWrite> {
    let mut group = Vec::new();
    let mut size_bytes = 0;
    while let Some(next) = pending.front() {
        if !group.is_empty() && size_bytes + next.batch.size_bytes() > size_bytes_max {
            break;
        }
        size_bytes += next.batch.size_bytes();
        group.extend(pending.pop_front());
    }
    group
}

/// How long to delay a group of `bytes` with L0 `l0_files` deep (the most L0 files of one
/// keyspace, or an eighth of all of them, `Version::l0_pressure`): the write rate falls
/// linearly from `slowdown_rate_bytes_per_sec` at the slowdown trigger to a tenth of it at the
/// stop trigger; no delay below the slowdown trigger.
pub(crate) fn slowdown_delay(options: &Options, l0_files: usize, bytes: usize) -> Duration {
    let (slowdown, stop) = (options.l0_slowdown_trigger, options.l0_stop_trigger);
    if l0_files < slowdown {
        return Duration::ZERO;
    }
    let span = (stop - slowdown).max(1) as u64;
    let over = ((l0_files - slowdown) as u64).min(span);
    let rate = (options.slowdown_rate_bytes_per_sec * (10 * span - 9 * over) / (10 * span)).max(1);
    Duration::from_secs_f64(bytes as f64 / rate as f64).min(SLOWDOWN_DELAY_MAX)
}

/// Delays the group while L0 is past the slowdown trigger and waits while it is past the stop
/// trigger, so background compaction can catch up. Without background threads compaction runs
/// inline after each flush and L0 never piles up.
fn throttle(inner: &DbInner, l0_pressure: usize, bytes: usize) -> Result<()> {
    let options = &inner.options;
    if options.background_threads == 0 {
        return Ok(());
    }
    let l0_pressure_now = || inner.current_view().version.l0_pressure;
    let stats = &inner.stats;
    if l0_pressure >= options.l0_stop_trigger {
        let start = Instant::now();
        let mut engine = inner.engine.lock();
        while l0_pressure_now() >= options.l0_stop_trigger {
            inner.check_writable()?;
            inner.engine_changed.wait_for(&mut engine, super::ENGINE_WAIT);
        }
        StatsCounters::add(&stats.write_stalls, 1);
        StatsCounters::add(&stats.write_stall_micros, start.elapsed().as_micros() as u64);
    } else {
        let delay = slowdown_delay(options, l0_pressure, bytes);
        if !delay.is_zero() {
            std::thread::sleep(delay);
            StatsCounters::add(&stats.write_slowdowns, 1);
            StatsCounters::add(&stats.write_slowdown_micros, delay.as_micros() as u64);
        }
    }
    Ok(())
}

/// The leader's work for one group.
fn commit_group(inner: &DbInner, group: &mut [PendingWrite]) -> Result<()> {
    let mut wal = inner.wal.lock();
    inner.check_writable()?;
    // Keyspaces are dropped under the WAL lock: checked here, none can go before the commit.
    for write in group.iter_mut() {
        write.rejected =
            write.batch.keyspaces().iter().find_map(|keyspace| keyspace.check_live().err());
    }
    check_conflicts(inner, group, wal.seqno_last);
    if group.iter().all(|write| write.rejected.is_some()) {
        return Ok(());
    }
    let view = inner.current_view();
    throttle(inner, view.version.l0_pressure, group.iter().map(|w| w.batch.size_bytes()).sum())?;
    if let Some(budget) = &inner.options.memory_budget {
        super::budget::enforce(inner, budget, &mut wal)?;
    }
    if inner.current_view().mem.entries_bytes() >= inner.options.memtable_size_bytes_max {
        freeze_memtable(inner, &mut wal)?;
    }
    let op_count: u64 = accepted(group).map(|write| write.batch.len() as u64).sum();
    let seqno_first = wal.seqno_last + 1;
    if seqno_first + op_count - 1 > SEQNO_MAX {
        return Err(inner.poison(Error::InvalidArgument("seqno space exhausted".into())));
    }
    let sync = accepted(group).any(|write| write.sync);
    let mut buffer = std::mem::take(&mut wal.buffer);
    buffer.clear();
    let mut seqno = seqno_first;
    for write in group.iter_mut().filter(|write| write.rejected.is_none()) {
        crate::wal::encode_batch_record(&mut buffer, &write.batch, seqno);
        write.seqno_first = seqno;
        seqno += write.batch.len() as u64;
    }
    let appended = wal.writer.append_framed(&buffer);
    let written_bytes = buffer.len() as u64;
    wal.buffer = buffer;
    appended.map_err(|error| inner.poison(error))?;
    if sync {
        wal.writer.sync().map_err(|error| inner.poison(error))?;
        StatsCounters::add(&inner.stats.wal_syncs, 1);
    }

    let mem = Arc::clone(&inner.current_view().mem);
    let mem_bytes_before = mem.size_bytes();
    let mut seqno = seqno_first;
    let mut range_tombstones: Vec<RangeTombstone> = Vec::new();
    for write in accepted(group) {
        for op in write.batch.ops() {
            // The batch was encoded in memory by `WriteBatch`, so it always decodes; if it did
            // not, the WAL already holds it and the database must stop (invariant 3).
            let op = op.map_err(|detail| {
                inner.poison(Error::InvalidArgument(format!("malformed batch: {detail}")))
            })?;
            mem.apply(&op, seqno);
            if op.kind == OpKind::DeleteRange && op.key < op.value {
                range_tombstones.push(RangeTombstone {
                    start: op.key.to_vec(),
                    end: op.value.to_vec(),
                    seqno,
                });
            }
            seqno += 1;
        }
    }
    if !range_tombstones.is_empty() {
        // In the view before the seqno is published, like the memtable entries.
        publish_range_tombstones(inner, &range_tombstones);
    }
    if let Some(budget) = &inner.options.memory_budget {
        budget.charge(mem.size_bytes().saturating_sub(mem_bytes_before) as u64);
    }
    wal.seqno_last = seqno - 1;
    inner.seqno_visible.store(seqno - 1, Ordering::Release);
    notify_listener(inner, group);

    let stats = &inner.stats;
    StatsCounters::add(&stats.write_ops, op_count);
    StatsCounters::add(&stats.write_batches, accepted(group).count() as u64);
    StatsCounters::add(&stats.group_commits, 1);
    StatsCounters::add(&stats.wal_bytes_written, written_bytes);
    Ok(())
}

/// Runs the transactions' conflict checks of `group` in order, each against every commit
/// before it: earlier groups (in the view, the last at `seqno_last`) and earlier batches of
/// this group.
fn check_conflicts(inner: &DbInner, group: &mut [PendingWrite], seqno_last: u64) {
    let checked = |write: &PendingWrite| write.check.is_some() && write.rejected.is_none();
    // Batches after the last checked one are never compared with anything: not collected.
    let Some(last_checked) = group.iter().rposition(checked) else {
        return;
    };
    let view = inner.current_view();
    let mut earlier = GroupWrites::default();
    for (index, write) in group[..=last_checked].iter_mut().enumerate() {
        if write.rejected.is_some() {
            continue;
        }
        if let Some(check) = &write.check {
            if let Err(error) = conflicts::check(inner, &view, check, &earlier, seqno_last) {
                if matches!(error, Error::Conflict { .. }) {
                    StatsCounters::add(&inner.stats.transaction_conflicts, 1);
                }
                write.rejected = Some(error);
                continue;
            }
        }
        if index < last_checked {
            earlier.add(&write.batch);
        }
    }
}

/// Hands the notes of the group's committed batches to the commit listener, in seqno order
/// (called with the WAL lock held, so groups never interleave).
fn notify_listener(inner: &DbInner, group: &[PendingWrite]) {
    let mut notes =
        accepted(group).filter_map(|write| Some((write.seqno_first, write.note.as_ref()?)));
    let Some(first) = notes.next() else { return };
    let listener = inner.commit_listener.read().clone();
    if let Some(listener) = listener {
        for (seqno, note) in std::iter::once(first).chain(notes) {
            listener.committed(seqno, note);
        }
    }
}

/// The writes of `group` the leader did not reject.
fn accepted(group: &[PendingWrite]) -> impl Iterator<Item = &PendingWrite> {
    group.iter().filter(|write| write.rejected.is_none())
}

/// Adds `added` to the view's range tombstones (under the engine lock, like every view swap).
fn publish_range_tombstones(inner: &DbInner, added: &[RangeTombstone]) {
    let _engine = inner.engine.lock();
    let view = inner.current_view();
    let read_seqno_min = inner.range_del_read_seqno_min();
    let range_dels = view.range_dels.with(added, read_seqno_min);
    *inner.view.write() = Arc::new(view.with_range_dels(range_dels));
}

/// Freezes the active memtable and starts a new one with a new WAL. Waits (or, with no
/// background thread, flushes inline) while too many frozen memtables wait for flush.
pub(crate) fn freeze_memtable(inner: &DbInner, wal: &mut WalState) -> Result<()> {
    let mut engine = inner.engine.lock();
    let stall_start = Instant::now();
    let mut stalled = false;
    while engine.imms.len() >= inner.options.frozen_memtables_max {
        inner.check_writable()?;
        stalled = true;
        if inner.options.background_threads == 0 {
            super::flush::flush_oldest_inline(inner, &mut engine)
                .map_err(|error| inner.poison(error))?;
            continue;
        }
        inner.engine_changed.wait_for(&mut engine, super::ENGINE_WAIT);
    }
    if stalled {
        StatsCounters::add(&inner.stats.write_stalls, 1);
        StatsCounters::add(
            &inner.stats.write_stall_micros,
            stall_start.elapsed().as_micros() as u64,
        );
    }
    inner.check_writable()?;

    // The old WAL is made whole before the next exists, so only the newest WAL can be torn.
    wal.writer.sync().map_err(|error| inner.poison(error))?;
    let number = engine.state.next_file_number;
    engine.state.next_file_number += 1;
    let path = wal_path(&inner.dir, number);
    let writer = create_wal(inner.fs.as_ref(), &path)
        .and_then(|writer| sync_dir(inner.fs.as_ref(), &inner.dir).map(|()| writer))
        .map_err(|error| inner.poison(error))?;
    wal.writer = writer;

    let old = inner.current_view();
    let mut imms = Vec::with_capacity(old.imms.len() + 1);
    imms.push(Arc::clone(&old.mem));
    imms.extend(old.imms.iter().cloned());
    let view = ReadView {
        mem: Arc::new(Memtable::new(number, inner.options.memtable_size_bytes_max)),
        imms,
        version: Arc::clone(&old.version),
        range_dels: Arc::clone(&old.range_dels),
    };
    engine.imms.push_back(Arc::clone(&old.mem));
    *inner.view.write() = Arc::new(view);
    inner.engine_changed.notify_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowdown_falls_linearly_from_the_slowdown_to_the_stop_trigger() {
        let options = Options {
            l0_slowdown_trigger: 20,
            l0_stop_trigger: 30,
            slowdown_rate_bytes_per_sec: 1_000_000,
            ..Options::default()
        };
        assert_eq!(slowdown_delay(&options, 19, 1000), Duration::ZERO);
        assert_eq!(slowdown_delay(&options, 20, 1000), Duration::from_millis(1));
        assert_eq!(slowdown_delay(&options, 30, 1000), Duration::from_millis(10));
        let middle = slowdown_delay(&options, 25, 1000);
        assert!(middle > Duration::from_millis(1) && middle < Duration::from_millis(10));
        // Never more than the cap per group, and no division by zero at equal triggers.
        assert_eq!(slowdown_delay(&options, 30, 1 << 30), SLOWDOWN_DELAY_MAX);
        let equal = Options { l0_slowdown_trigger: 30, ..options };
        assert_eq!(slowdown_delay(&equal, 30, 1000), Duration::from_millis(1));
    }
}
