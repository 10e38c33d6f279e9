//! The write-ahead log: every write batch is appended here before it enters the memtable.
//!
//! A WAL file is a record file (`record_log`) whose records are encoded `WriteBatch`es, each
//! stamped with the seqno of its first operation (docs/format/wal.md). Files of version 4 on
//! frame records compactly and give batches a varint header; replay still reads version 3.
//! Each memtable has one WAL file; a new one is started when the memtable is frozen, and the
//! old file is deleted once the memtable's SST is recorded in the manifest.
//!
//! Thread safety: `WalWriter` is owned by the write path and used only by the current
//! group-commit leader.
//!
//! Invariants:
//! 1. Records are appended in seqno order, with no gaps: the batch after one with seqnos
//!    `s..s+n` starts at `s+n`. Recovery checks this.
//! 2. A WAL is synced before the next WAL file is created, so only the newest WAL can have a
//!    torn tail.

use crate::batch::{decode_batch, BatchHeader, BatchHeaderFormat, BatchOp, WriteBatch};
use crate::fs::Fs;
use crate::options::WalRecovery;
use crate::record_log::{encode_record_parts, scan_records, Framing, RecordWriter, ScanEnd};
use crate::{Error, Result};
use std::path::Path;

/// Magic number at the start of every WAL file ("NANOWAL1" read as little-endian bytes).
/// DO NOT CHANGE: on-disk format.
pub const WAL_MAGIC: u64 = u64::from_le_bytes(*b"NANOWAL1");
/// Current WAL format version. Version 1: the first format. Version 2: batches may hold range
/// deletions (op kind 2). Version 3: keys carry their keyspace prefix and batches may hold
/// expiring puts (op kind 3); a database with older WALs is refused by its manifest first.
/// Version 4: compact record frames (a varint length) and varint batch headers, 10 bytes less
/// per single-put record; version 3 files are still replayed.
pub const WAL_FORMAT_VERSION: u32 = 4;
/// The first version with compact frames and varint batch headers.
const WAL_VERSION_COMPACT: u32 = 4;

fn framing_of(version: u32) -> Framing {
    if version >= WAL_VERSION_COMPACT {
        Framing::Compact
    } else {
        Framing::Fixed
    }
}

/// Batches have a varint header exactly in the files whose records are framed compactly.
fn batch_header_format_of(version: u32) -> BatchHeaderFormat {
    match framing_of(version) {
        Framing::Compact => BatchHeaderFormat::Varint,
        Framing::Fixed => BatchHeaderFormat::Fixed,
    }
}

/// Appends the record of `batch`, committed at `seqno_first`, to `out`, framed for a WAL of
/// the current version.
pub fn encode_batch_record(out: &mut Vec<u8>, batch: &WriteBatch, seqno_first: u64) {
    debug_assert_eq!(batch_header_format_of(WAL_FORMAT_VERSION), BatchHeaderFormat::Varint);
    let (header, header_len) = batch.varint_header(seqno_first);
    let framing = framing_of(WAL_FORMAT_VERSION);
    encode_record_parts(out, framing, &header[..header_len], batch.ops_bytes());
}

/// Creates a new WAL file, writes its header and syncs it.
pub fn create_wal(fs: &dyn Fs, path: &Path) -> Result<RecordWriter> {
    let mut writer = RecordWriter::create(
        fs,
        path,
        WAL_MAGIC,
        WAL_FORMAT_VERSION,
        framing_of(WAL_FORMAT_VERSION),
    )?;
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
    let end = scan_records(
        fs,
        path,
        WAL_MAGIC,
        WAL_FORMAT_VERSION,
        framing_of,
        |version, offset, payload| {
            let corrupt = |detail: &str| {
                Error::corruption(path, format!("WAL record at offset {offset}: {detail}"))
            };
            let (header, ops) =
                decode_batch(payload, batch_header_format_of(version)).map_err(corrupt)?;
            let ops: Vec<BatchOp<'_>> =
                ops.collect::<std::result::Result<_, _>>().map_err(corrupt)?;
            batches += 1;
            on_batch(header, &mut ops.into_iter())
        },
    )?;
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
    use crate::fs::SimFs;
    use crate::record_log::FILE_HEADER_LEN;
    use std::path::PathBuf;

    /// A filesystem holding `/db/<name>`, a new WAL of the current version, and its writer.
    fn new_wal(name: &str) -> (SimFs, PathBuf, RecordWriter) {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = Path::new("/db").join(name);
        let writer = create_wal(&fs, &path).unwrap();
        (fs, path, writer)
    }

    fn wal_with_batches(count: u64) -> (SimFs, PathBuf) {
        let (fs, path, mut writer) = new_wal("000001.wal");
        for index in 0..count {
            let mut batch = WriteBatch::new();
            batch.put(format!("key{index}"), b"value");
            let mut framed = Vec::new();
            encode_batch_record(&mut framed, &batch, index + 1);
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
    fn a_single_put_record_costs_fourteen_bytes_beyond_its_key_and_value() {
        let mut batch = WriteBatch::new();
        batch.put(b"0000000000000007", [1u8; 100]);
        let mut framed = Vec::new();
        encode_batch_record(&mut framed, &batch, 10_000_000);
        // Frame 5 (length, crc), header 5 (seqno, count), op 4 (kind, keyspace prefix, two
        // lengths): 14 bytes, against 24 in version 3.
        assert_eq!(framed.len(), 16 + 100 + 14);
        let mut fixed = Vec::new();
        let payload = batch.encode(BatchHeaderFormat::Fixed, 10_000_000);
        encode_record_parts(&mut fixed, Framing::Fixed, &[], &payload);
        assert_eq!(fixed.len(), 16 + 100 + 24);
    }

    #[test]
    fn the_format_example_is_what_the_writer_writes() {
        let (fs, path, mut writer) = new_wal("000001.wal");
        let mut first = WriteBatch::new();
        first.put(b"apple", b"red").delete(b"pear");
        let mut second = WriteBatch::new();
        second.put(b"apricot", b"orange");
        let mut framed = Vec::new();
        encode_batch_record(&mut framed, &first, 1);
        encode_batch_record(&mut framed, &second, 3);
        writer.append_framed(&framed).unwrap();
        writer.sync().unwrap();
        let hex: String =
            fs.read_live(&path).unwrap().iter().map(|byte| format!("{byte:02x}")).collect();
        // docs/format/wal.md, "Example".
        let expected = concat!(
            "4e414e4f57414c31040000009c33a29a",
            "159a2fb1ae",
            "0102",
            "0106006170706c6503726564",
            "00050070656172",
            "133aae1364",
            "0301",
            "01080061707269636f74066f72616e6765",
        );
        assert_eq!(hex, expected);
    }

    #[test]
    fn version_3_files_still_replay() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = PathBuf::from("/db/000003.wal");
        let mut writer = RecordWriter::create(&fs, &path, WAL_MAGIC, 3, framing_of(3)).unwrap();
        for seqno in [1, 3] {
            let mut batch = WriteBatch::new();
            batch.put(b"a", b"1").delete(b"b");
            writer.append_record(&batch.encode(BatchHeaderFormat::Fixed, seqno)).unwrap();
        }
        writer.sync().unwrap();
        let mut replayed = Vec::new();
        let outcome = replay_wal(&fs, &path, WalRecovery::TolerateTornTail, |header, ops| {
            replayed.push((header.seqno_first, header.count, ops.count()));
            Ok(())
        })
        .unwrap();
        assert_eq!(replayed, vec![(1, 2, 2), (3, 2, 2)]);
        assert_eq!(outcome, WalReplay { batches: 2, stopped_at: None });
    }

    #[test]
    fn mid_file_damage_is_an_error_unless_tolerated() {
        let (fs, path) = wal_with_batches(5);
        // Inside the first record's payload (after its 1-byte length and 4-byte crc).
        let second_record = FILE_HEADER_LEN + 5;
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
        let (fs, path, mut writer) = new_wal("000002.wal");
        // A valid frame whose payload claims 104 ops ("h") and holds three bytes.
        writer.append_record(b"short").unwrap();
        let error = replay(&fs, &path, WalRecovery::StopAtFirstCorruption).unwrap_err();
        assert!(error.is_corruption(), "{error}");
    }
}
