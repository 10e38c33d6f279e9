//! Counters kept by a database, and the `DbStats` snapshot `Db::stats()` returns.
//!
//! Thread safety: counters are relaxed atomics, bumped from any thread; they are statistics,
//! not synchronisation, so a snapshot may be a few operations stale.

use crate::manifest::LEVEL_COUNT;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub(crate) write_ops: AtomicU64,
    pub(crate) write_batches: AtomicU64,
    pub(crate) group_commits: AtomicU64,
    pub(crate) wal_bytes_written: AtomicU64,
    pub(crate) wal_syncs: AtomicU64,
    pub(crate) gets: AtomicU64,
    pub(crate) get_hits: AtomicU64,
    pub(crate) bloom_checks: AtomicU64,
    pub(crate) bloom_skips: AtomicU64,
    pub(crate) sst_reads: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) flush_bytes_written: AtomicU64,
    pub(crate) write_stalls: AtomicU64,
    pub(crate) write_stall_micros: AtomicU64,
    pub(crate) iterators_created: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) trivial_moves: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) compaction_entries_dropped: AtomicU64,
    pub(crate) write_slowdowns: AtomicU64,
    pub(crate) write_slowdown_micros: AtomicU64,
    pub(crate) range_deletion_files_dropped: AtomicU64,
    pub(crate) range_tombstones_collected: AtomicU64,
    pub(crate) keyspaces_dropped: AtomicU64,
    pub(crate) transaction_commits: AtomicU64,
    pub(crate) ttl_entries_expired: AtomicU64,
    pub(crate) ttl_sweeps: AtomicU64,
    pub(crate) transaction_conflicts: AtomicU64,
    pub(crate) keyspace_drop_files_removed: AtomicU64,
    pub(crate) compression_bytes_in: AtomicU64,
    pub(crate) compression_bytes_out: AtomicU64,
    /// Per level: bytes written into it (flushes into L0, compactions into their output).
    pub(crate) level_bytes_written: [AtomicU64; LEVEL_COUNT],
    /// Per level: bytes compactions read out of it.
    pub(crate) level_bytes_read: [AtomicU64; LEVEL_COUNT],
    /// Per level: point reads that searched one of its files.
    pub(crate) level_point_reads: [AtomicU64; LEVEL_COUNT],
}

impl StatsCounters {
    pub(crate) fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    /// Counts the data and index blocks of one written SST.
    pub(crate) fn add_compression(&self, bytes: crate::sst::CompressionBytes) {
        StatsCounters::add(&self.compression_bytes_in, bytes.bytes_in);
        StatsCounters::add(&self.compression_bytes_out, bytes.bytes_out);
    }

    fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The shape of one level and the I/O it has seen since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelStats {
    /// SST files in the level.
    pub files: u64,
    /// Bytes of those files.
    pub size_bytes: u64,
    /// The level's target size (0 for L0 and for unused levels above the base level).
    pub target_size_bytes: u64,
    /// Bytes written into the level by flushes (L0) or compactions.
    pub bytes_written: u64,
    /// Bytes compactions read out of the level.
    pub bytes_read: u64,
    /// Point reads that searched a file of the level (after range and bloom checks).
    pub point_reads: u64,
}

/// A snapshot of a database's counters and shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStats {
    /// The newest seqno visible to readers.
    pub seqno_last: u64,
    /// Bytes in the active memtable.
    pub memtable_size_bytes: u64,
    /// Frozen memtables waiting for flush.
    pub frozen_memtables: u64,
    /// Files and bytes per level, L0 first.
    pub levels: Vec<LevelStats>,
    /// The most L0 files of one keyspace (flushes write one L0 file per keyspace): what the
    /// L0 compaction, slowdown and stop triggers compare with.
    pub l0_depth: u64,
    /// Puts and deletes written.
    pub write_ops: u64,
    /// Write batches committed (a single put is a batch of one).
    pub write_batches: u64,
    /// WAL appends, each carrying one group of batches.
    pub group_commits: u64,
    /// Bytes appended to WAL files.
    pub wal_bytes_written: u64,
    /// WAL fsyncs.
    pub wal_syncs: u64,
    /// Point reads.
    pub gets: u64,
    /// Point reads that found a value.
    pub get_hits: u64,
    /// SSTs whose bloom filter a point read consulted.
    pub bloom_checks: u64,
    /// Of those, the SSTs the filter let the read skip.
    pub bloom_skips: u64,
    /// SSTs a point read searched (a data block read), after key-range and bloom checks.
    pub sst_reads: u64,
    /// Memtables flushed to SSTs.
    pub flushes: u64,
    /// Bytes of SSTs written by flushes.
    pub flush_bytes_written: u64,
    /// Times a writer waited for a flush to make room (or, with no background thread, ran it).
    pub write_stalls: u64,
    /// Total time writers waited for flushes, in microseconds.
    pub write_stall_micros: u64,
    /// Snapshots currently held.
    pub snapshots_live: u64,
    /// Iterators created.
    pub iterators_created: u64,
    /// Compactions that merged files.
    pub compactions: u64,
    /// Compactions that moved a file to the next level without rewriting it.
    pub trivial_moves: u64,
    /// Bytes of SSTs compactions read.
    pub compaction_bytes_read: u64,
    /// Bytes of SSTs compactions wrote.
    pub compaction_bytes_written: u64,
    /// Versions and tombstones compactions dropped.
    pub compaction_entries_dropped: u64,
    /// Group commits delayed because L0 passed `Options::l0_slowdown_trigger`.
    pub write_slowdowns: u64,
    /// Total delay of those group commits, in microseconds.
    pub write_slowdown_micros: u64,
    /// Range tombstones live (in memtables or the manifest).
    pub range_tombstones_live: u64,
    /// SSTs removed without being read because a range tombstone hid all they held.
    pub range_deletion_files_dropped: u64,
    /// Range tombstones forgotten once nothing they hid was left.
    pub range_tombstones_collected: u64,
    /// Keyspaces dropped since the database opened.
    pub keyspaces_dropped: u64,
    /// Expired versions compaction turned into tombstones or dropped.
    pub ttl_entries_expired: u64,
    /// Compactions the expiry sweep started for files holding expired versions.
    pub ttl_sweeps: u64,
    /// Transactions committed (read-only ones included).
    pub transaction_commits: u64,
    /// Transaction commits refused with `Error::Conflict`.
    pub transaction_conflicts: u64,
    /// SSTs those drops removed without reading them.
    pub keyspace_drop_files_removed: u64,
    /// Bytes of data and index blocks that flushes and compactions wrote, before compression.
    pub compression_bytes_in: u64,
    /// The same blocks as stored: compressed, or raw where compression did not pay (equal to
    /// `compression_bytes_in` with `Compression::None`).
    pub compression_bytes_out: u64,
    /// SST readers (open files) in the table cache now, at most `Options::open_files_max`.
    pub table_cache_files: u64,
    /// Reads of an SST that found its reader open.
    pub table_cache_hits: u64,
    /// Reads of an SST that had to open it again (it was evicted).
    pub table_cache_misses: u64,
    /// SST files opened and validated: at database open, after each flush and compaction
    /// output, and on every table cache miss.
    pub table_cache_opens: u64,
    /// Of `table_cache_opens`, the files read through a memory map (`Options::mmap_reads`;
    /// 0 without it, or when no file could be mapped).
    pub table_cache_opens_mapped: u64,
    /// Bytes of index and filter the open readers hold (`Options::pin_index_and_filter`):
    /// memory outside the block cache and the memory budget, growing with the data.
    pub table_cache_pinned_bytes: u64,
    /// Bytes flushes and compactions asked the rate limiter for (0 without a limit).
    pub rate_limit_bytes: u64,
    /// Total time flushes and compactions waited for the rate limiter, in microseconds.
    pub rate_limit_wait_micros: u64,
    /// The block cache's counters (shared by every database using the same cache), if the
    /// database has one.
    pub block_cache: Option<crate::cache::BlockCacheStats>,
}

impl DbStats {
    pub(crate) fn fill_counters(&mut self, counters: &StatsCounters) {
        let read = StatsCounters::read;
        self.write_ops = read(&counters.write_ops);
        self.write_batches = read(&counters.write_batches);
        self.group_commits = read(&counters.group_commits);
        self.wal_bytes_written = read(&counters.wal_bytes_written);
        self.wal_syncs = read(&counters.wal_syncs);
        self.gets = read(&counters.gets);
        self.get_hits = read(&counters.get_hits);
        self.bloom_checks = read(&counters.bloom_checks);
        self.bloom_skips = read(&counters.bloom_skips);
        self.sst_reads = read(&counters.sst_reads);
        self.flushes = read(&counters.flushes);
        self.flush_bytes_written = read(&counters.flush_bytes_written);
        self.write_stalls = read(&counters.write_stalls);
        self.write_stall_micros = read(&counters.write_stall_micros);
        self.iterators_created = read(&counters.iterators_created);
        self.compactions = read(&counters.compactions);
        self.trivial_moves = read(&counters.trivial_moves);
        self.compaction_bytes_read = read(&counters.compaction_bytes_read);
        self.compaction_bytes_written = read(&counters.compaction_bytes_written);
        self.compaction_entries_dropped = read(&counters.compaction_entries_dropped);
        self.write_slowdowns = read(&counters.write_slowdowns);
        self.write_slowdown_micros = read(&counters.write_slowdown_micros);
        self.range_deletion_files_dropped = read(&counters.range_deletion_files_dropped);
        self.range_tombstones_collected = read(&counters.range_tombstones_collected);
        self.keyspaces_dropped = read(&counters.keyspaces_dropped);
        self.transaction_commits = read(&counters.transaction_commits);
        self.ttl_entries_expired = read(&counters.ttl_entries_expired);
        self.ttl_sweeps = read(&counters.ttl_sweeps);
        self.transaction_conflicts = read(&counters.transaction_conflicts);
        self.keyspace_drop_files_removed = read(&counters.keyspace_drop_files_removed);
        self.compression_bytes_in = read(&counters.compression_bytes_in);
        self.compression_bytes_out = read(&counters.compression_bytes_out);
        for (level, stats) in self.levels.iter_mut().enumerate().take(LEVEL_COUNT) {
            stats.bytes_written = read(&counters.level_bytes_written[level]);
            stats.bytes_read = read(&counters.level_bytes_read[level]);
            stats.point_reads = read(&counters.level_point_reads[level]);
        }
    }

    /// Bytes written to storage (WAL, flushes, compactions) per byte of user writes
    /// (`wal_bytes_written` approximates the user bytes); 0 before any write.
    pub fn write_amplification(&self) -> f64 {
        if self.wal_bytes_written == 0 {
            return 0.0;
        }
        let storage =
            self.wal_bytes_written + self.flush_bytes_written + self.compaction_bytes_written;
        storage as f64 / self.wal_bytes_written as f64
    }

    /// Total bytes in SSTs over all levels.
    pub fn sst_size_bytes(&self) -> u64 {
        self.levels.iter().map(|level| level.size_bytes).sum()
    }
}

impl fmt::Display for DbStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seqno_last            {}", self.seqno_last)?;
        writeln!(
            f,
            "memtable              {} bytes, {} frozen",
            self.memtable_size_bytes, self.frozen_memtables
        )?;
        writeln!(f, "L0 depth              {}", self.l0_depth)?;
        for (level, stats) in self.levels.iter().enumerate() {
            if stats.files == 0 && stats.bytes_written == 0 {
                continue;
            }
            writeln!(
                f,
                "L{level}                    {} files, {} bytes (target {}), written {}, read {}, {} point reads",
                stats.files,
                stats.size_bytes,
                stats.target_size_bytes,
                stats.bytes_written,
                stats.bytes_read,
                stats.point_reads
            )?;
        }
        writeln!(
            f,
            "writes                {} ops in {} batches, {} group commits",
            self.write_ops, self.write_batches, self.group_commits
        )?;
        writeln!(
            f,
            "wal                   {} bytes, {} syncs",
            self.wal_bytes_written, self.wal_syncs
        )?;
        writeln!(
            f,
            "gets                  {} ({} found, {} read an sst)",
            self.gets, self.get_hits, self.sst_reads
        )?;
        writeln!(
            f,
            "bloom                 {} checks, {} skips",
            self.bloom_checks, self.bloom_skips
        )?;
        writeln!(f, "flushes               {} ({} bytes)", self.flushes, self.flush_bytes_written)?;
        writeln!(
            f,
            "compactions           {} ({} trivial moves), {} bytes read, {} written, {} entries dropped",
            self.compactions,
            self.trivial_moves,
            self.compaction_bytes_read,
            self.compaction_bytes_written,
            self.compaction_entries_dropped
        )?;
        writeln!(
            f,
            "compression           {} bytes of blocks stored in {}",
            self.compression_bytes_in, self.compression_bytes_out
        )?;
        writeln!(f, "write amplification   {:.2}", self.write_amplification())?;
        writeln!(
            f,
            "range tombstones      {} live, {} collected, {} files dropped",
            self.range_tombstones_live,
            self.range_tombstones_collected,
            self.range_deletion_files_dropped
        )?;
        writeln!(
            f,
            "keyspaces             {} dropped, {} files removed by drops",
            self.keyspaces_dropped, self.keyspace_drop_files_removed
        )?;
        writeln!(
            f,
            "transactions          {} committed, {} conflicts",
            self.transaction_commits, self.transaction_conflicts
        )?;
        writeln!(
            f,
            "ttl                   {} expired versions reclaimed, {} sweeps",
            self.ttl_entries_expired, self.ttl_sweeps
        )?;
        if let Some(cache) = &self.block_cache {
            writeln!(
                f,
                "block cache           {} of {} bytes, {} hits, {} misses",
                cache.usage_bytes, cache.capacity_bytes, cache.hits, cache.misses
            )?;
        }
        writeln!(
            f,
            "table cache           {} files, {} hits, {} misses, {} opens ({} mapped), {} bytes pinned",
            self.table_cache_files,
            self.table_cache_hits,
            self.table_cache_misses,
            self.table_cache_opens,
            self.table_cache_opens_mapped,
            self.table_cache_pinned_bytes
        )?;
        writeln!(
            f,
            "rate limit            {} bytes, waited {} us",
            self.rate_limit_bytes, self.rate_limit_wait_micros
        )?;
        writeln!(
            f,
            "write slowdowns       {} ({} us)",
            self.write_slowdowns, self.write_slowdown_micros
        )?;
        write!(f, "write stalls          {} ({} us)", self.write_stalls, self.write_stall_micros)
    }
}
