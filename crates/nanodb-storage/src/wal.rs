//! The write-ahead log: every write batch is appended here before it enters the memtable.
//!
//! A WAL file is a record file (`record_log`) whose records are encoded `WriteBatch`es, each
//! stamped with the seqno of its first operation (docs/format/wal.md). Each memtable has one
//! WAL file; a new one is started when the memtable is frozen, and the old file is deleted once
//! the memtable's SST is recorded in the manifest.
//!
//! Thread safety: `WalWriter` is owned by the write path and used only by the current
//! group-commit leader.
//!
//! Invariants:
//! 1. Records are appended in seqno order, with no gaps: the batch after one with seqnos
//!    `s..s+n` starts at `s+n`. Recovery checks this.
//! 2. A WAL is synced before the next WAL file is created, so only the newest WAL can have a
//!    torn tail.

use crate::batch::{decode_batch, BatchHeader, BatchOp};
use crate::fs::Fs;
use crate::options::WalRecovery;
use crate::record_log::{scan_records, RecordWriter, ScanEnd};
use crate::{Error, Result};
use std::path::Path;

/// Magic number at the start of every WAL file ("NANOWAL1" read as little-endian bytes).
/// DO NOT CHANGE: on-disk format.
pub const WAL_MAGIC: u64 = u64::from_le_bytes(*b"NANOWAL1");
/// Current WAL format version. Version 1: the first format. Version 2: batches may hold range
/// deletions (op kind 2). Version 3: keys carry their keyspace prefix and batches may hold
/// expiring puts (op kind 3); a database with older WALs is refused by its manifest first.
pub const WAL_FORMAT_VERSION: u32 = 3;

/// Creates a new WAL file, writes its header and syncs it.
pub fn create_wal(fs: &dyn Fs, path: &Path) -> Result<RecordWriter> {
    let mut writer = RecordWriter::create(fs, path, WAL_MAGIC, WAL_FORMAT_VERSION)?;
    writer.sync()?;
    Ok(writer)
}

/// What replaying one WAL file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalReplay {
    /// Batches replayed.
    pub batches: u64,
    /// Where replay stopped early (a torn tail, or damage tolerated by the options), if it did.
    pub stopped_at: Option<u64>,
}

/// Replays the batches of the WAL at `path`, in order, calling `on_batch(header, ops)`.
///
/// A torn tail ends the replay quietly. Damage followed by valid data is a `Corruption` error
/// unless `recovery` is `StopAtFirstCorruption`. A malformed batch inside a record with a valid
/// checksum is always corruption.
pub fn replay_wal(
    fs: &dyn Fs,
    path: &Path,
    recovery: WalRecovery,
    mut on_batch: impl FnMut(BatchHeader, &mut dyn Iterator<Item = BatchOp<'_>>) -> Result<()>,
) -> Result<WalReplay> {
    let mut batches = 0;
    let end = scan_records(fs, path, WAL_MAGIC, WAL_FORMAT_VERSION, |offset, payload| {
        let (header, ops) = decode_batch(payload).map_err(|detail| {
            Error::corruption(path, format!("WAL record at offset {offset}: {detail}"))
        })?;
        let ops: Vec<BatchOp<'_>> =
            ops.collect::<std::result::Result<_, _>>().map_err(|detail| {
                Error::corruption(path, format!("WAL record at offset {offset}: {detail}"))
            })?;
        batches += 1;
        on_batch(header, &mut ops.into_iter())
    })?;
    let stopped_at = match end {
        ScanEnd::Clean | ScanEnd::TornHeader => None,
        ScanEnd::TornTail { offset } => Some(offset),
        ScanEnd::Corrupt { offset, detail } => match recovery {
            WalRecovery::StopAtFirstCorruption => Some(offset),
            WalRecovery::TolerateTornTail => {
                return Err(Error::corruption(
                    path,
                    format!(
                        "damaged WAL record at offset {offset} followed by more data: {detail}"
                    ),
                ))
            }
        },
    };
    Ok(WalReplay { batches, stopped_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::WriteBatch;
    use crate::fs::SimFs;
    use crate::record_log::{encode_record, FILE_HEADER_LEN, RECORD_HEADER_LEN};
    use std::path::PathBuf;

    fn wal_with_batches(count: u64) -> (SimFs, PathBuf) {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = PathBuf::from("/db/000001.wal");
        let mut writer = create_wal(&fs, &path).unwrap();
        for index in 0..count {
            let mut batch = WriteBatch::new();
            batch.put(format!("key{index}"), b"value");
            let mut framed = Vec::new();
            encode_record(&mut framed, batch.encode_with_seqno(index + 1));
            writer.append_framed(&framed).unwrap();
        }
        writer.sync().unwrap();
        (fs, path)
    }

    fn replay(fs: &SimFs, path: &Path, recovery: WalRecovery) -> Result<(Vec<u64>, WalReplay)> {
        let mut seqnos = Vec::new();
        let outcome = replay_wal(fs, path, recovery, |header, ops| {
            seqnos.push(header.seqno_first);
            assert_eq!(ops.count(), 1);
            Ok(())
        })?;
        Ok((seqnos, outcome))
    }

    #[test]
    fn replays_every_batch_in_order() {
        let (fs, path) = wal_with_batches(5);
        let (seqnos, outcome) = replay(&fs, &path, WalRecovery::TolerateTornTail).unwrap();
        assert_eq!(seqnos, vec![1, 2, 3, 4, 5]);
        assert_eq!(outcome, WalReplay { batches: 5, stopped_at: None });
    }

    #[test]
    fn mid_file_damage_is_an_error_unless_tolerated() {
        let (fs, path) = wal_with_batches(5);
        let second_record = FILE_HEADER_LEN + RECORD_HEADER_LEN;
        fs.corrupt_byte(&path, second_record + 2, 0x10);
        let error = replay(&fs, &path, WalRecovery::TolerateTornTail).unwrap_err();
        assert!(error.is_corruption(), "{error}");
        assert!(error.to_string().contains("000001.wal"), "{error}");
        let (seqnos, outcome) = replay(&fs, &path, WalRecovery::StopAtFirstCorruption).unwrap();
        assert!(seqnos.is_empty());
        assert_eq!(outcome.stopped_at, Some(FILE_HEADER_LEN as u64));
    }

    #[test]
    fn torn_tail_keeps_the_whole_records_before_it() {
        let (fs, path) = wal_with_batches(3);
        let size = fs.read_live(&path).unwrap().len();
        fs.truncate(&path, size - 3);
        let (seqnos, outcome) = replay(&fs, &path, WalRecovery::TolerateTornTail).unwrap();
        assert_eq!(seqnos, vec![1, 2]);
        assert!(outcome.stopped_at.is_some());
    }

    #[test]
    fn malformed_batch_with_valid_checksum_is_corruption() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = PathBuf::from("/db/000002.wal");
        let mut writer = create_wal(&fs, &path).unwrap();
        writer.append_record(b"short").unwrap();
        let error = replay(&fs, &path, WalRecovery::StopAtFirstCorruption).unwrap_err();
        assert!(error.is_corruption());
    }
}
