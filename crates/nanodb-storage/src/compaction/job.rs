//! Running one compaction: merge the input SSTs, drop what no reader can see, write outputs.
//!
//! Versions of one user key arrive newest first. The live snapshots cut the seqno space into
//! *stripes*: a version belongs to the stripe of the oldest snapshot that can see it (or to
//! the newest stripe when no snapshot can). Only the newest version in each stripe is visible
//! to anyone, so older ones in the same stripe are dropped. A tombstone in the oldest stripe
//! is dropped too when the output level is bottommost: every older version of its key is in
//! the same stripe (dropped with it) and no level below can hold another.
//!
//! A version a durable range tombstone hides is dropped too when no snapshot lies between
//! the two (the same stripe): nobody can see it. The outputs record the newest tombstone
//! seqno whose hidden versions were all dropped (`range_del_applied_seqno`).
//!
//! Outputs are split at `sst_size_bytes_target` or at `filter_keys_per_output_max` distinct
//! keys (which bounds the writer's filter buffer), only between user keys, so the files of a
//! level never share a user key, and wherever the keyspace changes, so no output mixes
//! keyspaces (`keyspace.rs`). Entries of dropped keyspaces are left out.
//!
//! Thread safety: runs on one thread without any database lock; it only reads its inputs
//! (immutable files) and writes new files no one else knows about.
//!
//! Invariants:
//! 1. An entry is written only if it parsed as an internal key from a block whose checksum
//!    matched: a corrupt input stops the compaction with an error and nothing is installed.
//! 2. On error every output written so far is removed.

use crate::filenames::sst_path;
use crate::fs::Fs;
use crate::iter::{Direction, InternalIterator, MergingIterator};
use crate::key::{parse_internal_key, ValueKind};
use crate::keyspace::{keyspace_of, KeyspaceFilter};
use crate::manifest::sync_dir;
use crate::range_del::RangeTombstones;
use crate::rate_limit::{IoPriority, RateLimiter};
use crate::sst::{CompressionBytes, SstWriter, SstWriterOptions};
use crate::table_cache::TableCache;
use crate::version::SstHandle;
use crate::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How often (in entries) a running compaction checks whether the database is closing.
const CLOSE_CHECK_INTERVAL_ENTRIES: u64 = 4096;

/// What one compaction needs to run.
pub struct JobInput<'a> {
    /// The filesystem and directory of the database.
    pub fs: &'a Arc<dyn Fs>,
    /// The database directory.
    pub dir: &'a Path,
    /// The files to merge, newest source first.
    pub inputs: Vec<Arc<SstHandle>>,
    /// Level the outputs go to.
    pub output_level: usize,
    /// Live snapshot seqnos, ascending.
    pub snapshots: Vec<u64>,
    /// Tombstones in the oldest stripe may be dropped.
    pub bottommost: bool,
    /// Durable range tombstones (pruned at the oldest snapshot).
    pub range_dels: Arc<RangeTombstones>,
    /// Every tombstone up to this seqno is older than every snapshot: recorded in the outputs
    /// as applied.
    pub range_del_applied_seqno: u64,
    /// Size at which a new output file starts, in bytes.
    pub sst_size_bytes_target: u64,
    /// Distinct user keys at which a new output file starts
    /// (`sst::FILTER_KEYS_PER_OUTPUT_MAX` outside tests).
    pub filter_keys_per_output_max: u64,
    /// Block size, bloom filter and compression of the outputs.
    pub writer_options: SstWriterOptions,
    /// Set when the database is closing: the job stops early with `Error::Closed`.
    pub closing: &'a AtomicBool,
    /// Where the outputs' readers are cached.
    pub tables: &'a Arc<TableCache>,
    /// Paces the output writes, at compaction priority.
    pub rate_limiter: Option<&'a Arc<RateLimiter>>,
    /// Allocates the file number of the next output.
    pub next_file_number: &'a dyn Fn() -> u64,
    /// Which keyspaces were dropped: their entries are not written.
    pub keyspaces: KeyspaceFilter,
    /// The clock's time when the job started: expiring versions with an expiry at or before
    /// it are written as tombstones (and dropped where tombstones are).
    pub now_ms: u64,
}

/// What a finished compaction produced.
#[derive(Debug, Default)]
pub struct JobOutput {
    /// The new files, open, in key order.
    pub outputs: Vec<Arc<SstHandle>>,
    /// Entries read from the inputs.
    pub entries_read: u64,
    /// Entries written to the outputs.
    pub entries_written: u64,
    /// Expired versions turned into tombstones or dropped.
    pub entries_expired: u64,
    /// Bytes of input files read.
    pub bytes_read: u64,
    /// Bytes of output files written.
    pub bytes_written: u64,
    /// How the outputs' blocks compressed.
    pub compression: CompressionBytes,
}

/// Decides, one entry at a time, which versions survive.
#[derive(Debug, Default)]
pub(crate) struct VersionFilter {
    snapshots: Vec<u64>,
    bottommost: bool,
    user_key: Vec<u8>,
    has_key: bool,
    last_stripe: usize,
}

impl VersionFilter {
    pub(crate) fn new(snapshots: Vec<u64>, bottommost: bool) -> VersionFilter {
        VersionFilter { snapshots, bottommost, ..Default::default() }
    }

    /// The oldest snapshot that sees version `seqno`; `snapshots.len()` when none does.
    fn stripe(&self, seqno: u64) -> usize {
        self.snapshots.partition_point(|&snapshot| snapshot < seqno)
    }

    /// True if a range tombstone hides version `seqno` of `user_key` from every reader: no
    /// snapshot sees the version without also seeing the tombstone.
    pub(crate) fn hidden(&self, range_dels: &RangeTombstones, user_key: &[u8], seqno: u64) -> bool {
        range_dels
            .oldest_hiding(user_key, seqno)
            .is_some_and(|tombstone| self.stripe(tombstone) == self.stripe(seqno))
    }

    /// True if the version (`user_key`, `seqno`, `kind`) must be kept. Versions must come in
    /// internal key order.
    pub(crate) fn keep(&mut self, user_key: &[u8], seqno: u64, kind: ValueKind) -> bool {
        // The oldest snapshot that sees this version; `snapshots.len()` when none does.
        let stripe = self.stripe(seqno);
        if self.has_key && self.user_key == user_key {
            if stripe == self.last_stripe {
                return false;
            }
        } else {
            self.user_key.clear();
            self.user_key.extend_from_slice(user_key);
            self.has_key = true;
        }
        self.last_stripe = stripe;
        !(kind == ValueKind::Delete && self.bottommost && stripe == 0)
    }
}

fn remove_outputs(fs: &dyn Fs, outputs: &[Arc<SstHandle>], current: Option<&Path>) {
    for output in outputs {
        let _ = fs.remove_file(output.path());
    }
    if let Some(path) = current {
        let _ = fs.remove_file(path);
    }
}

struct OpenOutput {
    writer: SstWriter,
    number: u64,
    path: std::path::PathBuf,
}

/// Runs the compaction.
pub fn run(job: JobInput<'_>) -> Result<JobOutput> {
    let mut output = JobOutput {
        bytes_read: job.inputs.iter().map(|input| input.meta.size_bytes).sum(),
        ..JobOutput::default()
    };
    let mut current: Option<OpenOutput> = None;
    // A panic (a bug) must still clean up the outputs: it becomes an error here.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        merge_into_outputs(&job, &mut output, &mut current)
    }))
    .unwrap_or_else(|panic| Err(Error::Internal(crate::db::panic_text(&panic))));
    match result {
        Ok(()) => {
            // Output files are synced by `SstWriter::finish`; their directory entries now.
            if !output.outputs.is_empty() {
                if let Err(error) = sync_dir(job.fs.as_ref(), job.dir) {
                    remove_outputs(job.fs.as_ref(), &output.outputs, None);
                    return Err(error);
                }
            }
            Ok(output)
        }
        Err(error) => {
            remove_outputs(
                job.fs.as_ref(),
                &output.outputs,
                current.as_ref().map(|open| open.path.as_path()),
            );
            Err(error)
        }
    }
}

fn merge_into_outputs(
    job: &JobInput<'_>,
    output: &mut JobOutput,
    current: &mut Option<OpenOutput>,
) -> Result<()> {
    let children: Vec<Box<dyn InternalIterator>> = job
        .inputs
        .iter()
        .map(|input| {
            let cursor = input.reader()?.cursor_uncached(Direction::Forward);
            Ok(Box::new(cursor) as Box<dyn InternalIterator>)
        })
        .collect::<Result<_>>()?;
    let mut merged = MergingIterator::new(children, Direction::Forward);
    merged.seek_to_start()?;
    let mut filter = VersionFilter::new(job.snapshots.clone(), job.bottommost);
    let mut previous_user_key: Vec<u8> = Vec::new();
    while merged.valid() {
        output.entries_read += 1;
        if output.entries_read.is_multiple_of(CLOSE_CHECK_INTERVAL_ENTRIES)
            && job.closing.load(Ordering::Acquire)
        {
            return Err(Error::Closed);
        }
        let key = merged.key();
        let parsed = parse_internal_key(key).ok_or_else(|| {
            let path = job.inputs.first().map_or(job.dir, |input| input.path());
            Error::corruption(path, "compaction input holds a malformed internal key")
        })?;
        let expired = parsed.kind == ValueKind::PutExpiring
            && crate::ttl::expiry_of(merged.value()) <= job.now_ms;
        // An expired version is a delete from now on: it still hides older versions.
        let kind = if expired { ValueKind::Delete } else { parsed.kind };
        if expired {
            output.entries_expired += 1;
        }
        if !job.keyspaces.is_dropped_key(parsed.user_key)
            && filter.keep(parsed.user_key, parsed.seqno, kind)
            && !filter.hidden(&job.range_dels, parsed.user_key, parsed.seqno)
        {
            let new_user_key = parsed.user_key != previous_user_key.as_slice();
            let full = current.as_ref().is_some_and(|open| {
                open.writer.size_bytes_estimate() >= job.sst_size_bytes_target
                    || open.writer.filter_key_count() >= job.filter_keys_per_output_max
            });
            let new_keyspace = current.is_some()
                && keyspace_of(parsed.user_key) != keyspace_of(&previous_user_key);
            if (full && new_user_key) || new_keyspace {
                finish_output(job, output, current)?;
            }
            if current.is_none() {
                let number = (job.next_file_number)();
                let path = sst_path(job.dir, number);
                let writer = SstWriter::create(job.fs.as_ref(), &path, job.writer_options)?
                    .rate_limited(job.rate_limiter, IoPriority::Low);
                *current = Some(OpenOutput { writer, number, path });
            }
            if let Some(open) = current.as_mut() {
                if expired {
                    let tombstone = crate::key::internal_key(
                        parsed.user_key,
                        parsed.seqno,
                        ValueKind::Delete as u8,
                    );
                    open.writer.add(&tombstone, &[])?;
                } else {
                    open.writer.add(key, merged.value())?;
                }
            }
            output.entries_written += 1;
            if new_user_key {
                previous_user_key.clear();
                previous_user_key.extend_from_slice(parsed.user_key);
            }
        }
        merged.next()?;
    }
    finish_output(job, output, current)
}

fn finish_output(
    job: &JobInput<'_>,
    output: &mut JobOutput,
    current: &mut Option<OpenOutput>,
) -> Result<()> {
    let Some(open) = current.take() else { return Ok(()) };
    let OpenOutput { mut writer, number, path } = open;
    writer.set_range_del_applied_seqno(job.range_del_applied_seqno);
    let (properties, compression) = match writer.finish() {
        Ok(finished) => finished,
        Err(error) => {
            let _ = job.fs.remove_file(&path);
            return Err(error);
        }
    };
    let level = job.output_level as u32;
    let handle = SstHandle::open_written(job.tables, &path, number, level, properties)?;
    output.bytes_written += handle.meta.size_bytes;
    output.compression.add(compression);
    output.outputs.push(Arc::new(handle));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUT: ValueKind = ValueKind::Put;
    const DEL: ValueKind = ValueKind::Delete;

    fn kept(snapshots: &[u64], bottommost: bool, versions: &[(&str, u64, ValueKind)]) -> Vec<u64> {
        let mut filter = VersionFilter::new(snapshots.to_vec(), bottommost);
        versions
            .iter()
            .filter(|(key, seqno, kind)| filter.keep(key.as_bytes(), *seqno, *kind))
            .map(|(_, seqno, _)| *seqno)
            .collect()
    }

    #[test]
    fn a_range_tombstone_hides_versions_in_its_own_stripe_only() {
        use crate::range_del::RangeTombstone;
        let tombstone = RangeTombstone { start: b"b".to_vec(), end: b"d".to_vec(), seqno: 10 };
        let range_dels = RangeTombstones::build(vec![tombstone], 0);
        let filter = VersionFilter::new(vec![], false);
        assert!(filter.hidden(&range_dels, b"c", 9));
        assert!(!filter.hidden(&range_dels, b"c", 11), "newer than the tombstone");
        assert!(!filter.hidden(&range_dels, b"d", 9), "the end is exclusive");
        // Snapshot 7 sees version 5 and not the tombstone: 5 stays, 8 may go.
        let filter = VersionFilter::new(vec![7], false);
        assert!(!filter.hidden(&range_dels, b"c", 5));
        assert!(filter.hidden(&range_dels, b"c", 8));
    }

    #[test]
    fn without_snapshots_only_the_newest_version_survives() {
        let versions = [("a", 9, PUT), ("a", 5, PUT), ("a", 2, DEL), ("b", 3, PUT)];
        assert_eq!(kept(&[], false, &versions), vec![9, 3]);
    }

    #[test]
    fn each_snapshot_keeps_the_version_it_sees() {
        let versions = [("a", 9, PUT), ("a", 7, PUT), ("a", 5, PUT), ("a", 4, PUT), ("a", 1, PUT)];
        // Snapshot 5 sees 5; snapshot 6 also sees 5; snapshot 8 sees 7.
        assert_eq!(kept(&[5, 6, 8], false, &versions), vec![9, 7, 5]);
        // A snapshot at exactly a version's seqno sees that version.
        assert_eq!(kept(&[4], false, &versions), vec![9, 4]);
        assert_eq!(kept(&[0], false, &versions), vec![9]);
    }

    #[test]
    fn tombstones_drop_only_at_the_bottom_and_in_the_oldest_stripe() {
        let versions = [("a", 9, DEL), ("a", 5, PUT), ("b", 4, PUT)];
        assert_eq!(kept(&[], false, &versions), vec![9, 4]);
        assert_eq!(kept(&[], true, &versions), vec![4]);
        // Snapshot 6 still sees a=5: the tombstone must stay to hide it from newer readers.
        assert_eq!(kept(&[6], true, &versions), vec![9, 5, 4]);
        // Snapshot 10 sees the tombstone, which is in the oldest stripe: both go.
        assert_eq!(kept(&[10], true, &versions), vec![4]);
    }
}
