//! Append-only files of checksummed records: the framing shared by the WAL and the manifest.
//!
//! Layout (docs/format/wal.md and docs/format/manifest.md):
//!
//! ```text
//! file header (16 bytes): magic u64 LE | format_version u32 LE | crc32c(magic, version) u32 LE
//! record*, fixed framing:   length u32 LE    | crc32c(length bytes, payload) u32 LE | payload
//! record*, compact framing: length varint    | crc32c(length bytes, payload) u32 LE | payload
//! ```
//!
//! The framing is a property of the file's format version, chosen by the caller: the manifest
//! and WAL files up to version 3 use the fixed framing, WAL files from version 4 the compact one
//! (a one-byte length for payloads under 128 bytes instead of four).
//!
//! Thread safety: a `RecordWriter` belongs to one thread at a time (the WAL's group-commit
//! leader, or the manifest's writer under the version lock). Reading is a pure function.
//!
//! Invariants:
//! 1. A record is valid only if its whole frame is present and its checksum matches.
//! 2. Scanning stops at the first invalid record and reports whether it looks like a torn
//!    tail (the normal result of a crash: the frame runs past the end of the file, or the
//!    rest of the file is zeros, or it is the last record, or, compact framing only, no intact
//!    record follows it) or damage in the middle.
//! 3. Scanning allocates nothing proportional to a length field it has not checked against
//!    the file size.

use crate::coding::{crc32c, crc32c_two, get_u32_at, get_u64_at, put_u32, put_u64, put_varint};
use crate::fs::{Fs, WritableFile};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Size of the file header, in bytes. DO NOT CHANGE: on-disk format.
pub const FILE_HEADER_LEN: usize = 16;
/// Size of a fixed record frame's header (length and checksum), in bytes. DO NOT CHANGE.
pub const RECORD_HEADER_LEN: usize = 8;
/// Largest record payload, in bytes: the length field is a `u32`, and we keep it signed-safe.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = (u32::MAX / 2) as usize;
/// Longest length varint of a compact frame, in bytes (enough for `RECORD_PAYLOAD_BYTES_MAX`).
const COMPACT_LENGTH_LEN_MAX: usize = 5;

/// How the records of a file are framed; fixed by the file's format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `length u32 LE | crc u32 LE | payload`: the manifest, and WAL files up to version 3.
    Fixed,
    /// `length varint | crc u32 LE | payload`: WAL files from version 4.
    Compact,
}

/// Appends the frame of one record whose payload is `head ‖ body` to `out`, without copying
/// the two parts together first.
pub fn encode_record_parts(out: &mut Vec<u8>, framing: Framing, head: &[u8], body: &[u8]) {
    let payload_len = head.len() + body.len();
    assert!(payload_len <= RECORD_PAYLOAD_BYTES_MAX, "record payload over the format limit");
    assert!(payload_len > 0, "empty records are not part of the format");
    let length_start = out.len();
    match framing {
        Framing::Fixed => put_u32(out, payload_len as u32),
        Framing::Compact => put_varint(out, payload_len as u64),
    }
    let crc = crc32c::crc32c_append(crc32c_two(&out[length_start..], head), body);
    put_u32(out, crc);
    out.extend_from_slice(head);
    out.extend_from_slice(body);
}

fn encode_file_header(magic: u64, version: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(FILE_HEADER_LEN);
    put_u64(&mut header, magic);
    put_u32(&mut header, version);
    let crc = crc32c(&header);
    put_u32(&mut header, crc);
    header
}

/// Writes records to a new file.
pub struct RecordWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    size_bytes: u64,
    /// How `append_record` frames: what the file's format version says.
    framing: Framing,
}

impl RecordWriter {
    /// Creates the file at `path` and writes its header (not yet synced); `append_record`
    /// frames with `framing`, which must be the one `version` stands for.
    pub fn create(
        fs: &dyn Fs,
        path: &Path,
        magic: u64,
        version: u32,
        framing: Framing,
    ) -> Result<RecordWriter> {
        let mut file = fs
            .create(path)
            .map_err(|error| Error::io(format!("create {}", path.display()), error))?;
        let header = encode_file_header(magic, version);
        file.append(&header)
            .map_err(|error| Error::io(format!("write header of {}", path.display()), error))?;
        Ok(RecordWriter {
            file,
            path: path.to_path_buf(),
            size_bytes: FILE_HEADER_LEN as u64,
            framing,
        })
    }

    /// Appends already-framed records (see `encode_record_parts`), framed as this file's
    /// `framing`.
    pub fn append_framed(&mut self, framed: &[u8]) -> Result<()> {
        self.file
            .append(framed)
            .map_err(|error| Error::io(format!("append to {}", self.path.display()), error))?;
        self.size_bytes += framed.len() as u64;
        Ok(())
    }

    /// Frames one record with the file's framing and appends it.
    pub fn append_record(&mut self, payload: &[u8]) -> Result<()> {
        let mut framed = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
        encode_record_parts(&mut framed, self.framing, &[], payload);
        self.append_framed(&framed)
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync().map_err(|error| Error::io(format!("sync {}", self.path.display()), error))
    }

    /// Bytes in the file, header included.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
}

/// How a scan of a record file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belonged to a valid record.
    Clean,
    /// The file header itself is incomplete or zeroed: the file was created but never synced.
    TornHeader,
    /// An incomplete or damaged last record starts at `offset`; everything before is valid.
    /// (A crash on a filesystem that persists a file's size before its data can leave a whole
    /// frame of garbage at the end, so a complete last frame with a bad checksum counts too.)
    TornTail {
        /// Where the torn record starts.
        offset: u64,
    },
    /// A damaged record at `offset` is followed by more data.
    Corrupt {
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
}

/// Reads every valid record of the file at `path`, calling `on_record(version, offset,
/// payload)` for each (`version` is the file's format version, whose framing `framing_of`
/// gives), and reports how the file ended. Errors from `on_record` stop the scan and are
/// returned.
pub fn scan_records(
    fs: &dyn Fs,
    path: &Path,
    magic: u64,
    version_max: u32,
    framing_of: fn(u32) -> Framing,
    mut on_record: impl FnMut(u32, u64, &[u8]) -> Result<()>,
) -> Result<ScanEnd> {
    let bytes =
        fs.read_all(path).map_err(|error| Error::io(format!("read {}", path.display()), error))?;
    let Some(header) = bytes.get(..FILE_HEADER_LEN) else {
        return Ok(ScanEnd::TornHeader);
    };
    if header.iter().all(|&byte| byte == 0) {
        return Ok(ScanEnd::TornHeader);
    }
    let version = check_file_header(path, header, magic, version_max)?;
    let framing = framing_of(version);

    let mut offset = FILE_HEADER_LEN;
    while offset < bytes.len() {
        match frame_at(&bytes, offset, framing) {
            Ok((payload_start, payload)) => {
                on_record(version, offset as u64, payload)?;
                offset = payload_start + payload.len();
            }
            Err(detail) => return Ok(classify_bad_record(&bytes, offset, framing, detail)),
        }
    }
    Ok(ScanEnd::Clean)
}

/// Checks the file header; returns the file's format version.
fn check_file_header(path: &Path, header: &[u8], magic: u64, version_max: u32) -> Result<u32> {
    let stored_crc = get_u32_at(header, 12).unwrap_or(0);
    let actual_crc = crc32c(&header[..12]);
    if stored_crc != actual_crc {
        return Err(Error::ChecksumMismatch {
            file: path.to_path_buf(),
            offset: 0,
            expected: stored_crc,
            actual: actual_crc,
        });
    }
    let found_magic = get_u64_at(header, 0).unwrap_or(0);
    if found_magic != magic {
        return Err(Error::corruption(
            path,
            format!("bad magic number {found_magic:#018x}, expected {magic:#018x}"),
        ));
    }
    let version = get_u32_at(header, 8).unwrap_or(0);
    if version == 0 || version > version_max {
        return Err(Error::UnsupportedVersion {
            file: path.to_path_buf(),
            found: version,
            supported: version_max,
        });
    }
    Ok(version)
}

/// What the length field of the frame at `offset` says.
enum FrameLength<'a> {
    /// The payload's length, and the field's bytes (which the checksum covers).
    Length(usize, &'a [u8]),
    /// The field runs past the end of the file.
    Incomplete,
    /// A compact length longer than five bytes or above `RECORD_PAYLOAD_BYTES_MAX`.
    Malformed,
}

fn frame_length(bytes: &[u8], offset: usize, framing: Framing) -> FrameLength<'_> {
    match framing {
        Framing::Fixed => match offset.checked_add(4).and_then(|end| bytes.get(offset..end)) {
            Some(field) => {
                let len = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
                FrameLength::Length(len as usize, field)
            }
            None => FrameLength::Incomplete,
        },
        Framing::Compact => {
            let mut len = 0usize;
            for index in 0..COMPACT_LENGTH_LEN_MAX {
                let Some(&byte) = bytes.get(offset + index) else {
                    return FrameLength::Incomplete;
                };
                len |= usize::from(byte & 0x7f) << (7 * index);
                if byte & 0x80 == 0 {
                    if len > RECORD_PAYLOAD_BYTES_MAX {
                        return FrameLength::Malformed;
                    }
                    return FrameLength::Length(len, &bytes[offset..=offset + index]);
                }
            }
            FrameLength::Malformed
        }
    }
}

/// Where the payload of the record at `offset` starts, and the payload; or what is wrong.
fn frame_at(
    bytes: &[u8],
    offset: usize,
    framing: Framing,
) -> std::result::Result<(usize, &[u8]), String> {
    let (len, length_field) = match frame_length(bytes, offset, framing) {
        FrameLength::Length(len, field) => (len, field),
        FrameLength::Incomplete => return Err("record header incomplete".into()),
        FrameLength::Malformed => return Err("record length field malformed".into()),
    };
    let crc_at = offset + length_field.len();
    let stored_crc = get_u32_at(bytes, crc_at).ok_or("record header incomplete")?;
    let start = crc_at + 4;
    let payload = start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| format!("record of {len} bytes runs past the end of the file"))?;
    if len == 0 {
        return Err("record of length zero".into());
    }
    let actual_crc = crc32c_two(length_field, payload);
    if stored_crc != actual_crc {
        return Err(format!(
            "record checksum mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}"
        ));
    }
    Ok((start, payload))
}

/// How far past a bad compact frame `classify_bad_record` looks for an intact one, in bytes.
const INTACT_FRAME_SEARCH_BYTES: usize = 64 * 1024;

fn classify_bad_record(bytes: &[u8], offset: usize, framing: Framing, detail: String) -> ScanEnd {
    let rest = &bytes[offset..];
    // Where the frame claims to end: `None` when its length field is cut off by the end of
    // the file (so it runs past the end); its own offset, standing for no end, when the field
    // is malformed.
    let claimed_end = match frame_length(bytes, offset, framing) {
        FrameLength::Length(len, field) => (offset + field.len() + 4).checked_add(len),
        FrameLength::Incomplete => None,
        FrameLength::Malformed => Some(offset),
    };
    let runs_past_end = claimed_end.is_none_or(|end| end > bytes.len());
    let is_last_record = claimed_end == Some(bytes.len());
    let rest_is_zeros = rest.iter().all(|&byte| byte == 0);
    // A compact frame's one-byte length, read from garbage a crash left in the unsynced tail,
    // usually claims an end inside the file; so there, damage counts as damage in the middle
    // only when an intact record follows it: at the claimed end, or within the next
    // `INTACT_FRAME_SEARCH_BYTES`. (The fixed frame, kept by the manifest, keeps its rule:
    // garbage gives a four-byte length that almost always runs past the end.)
    let nothing_intact_follows =
        framing == Framing::Compact && !intact_frame_follows(bytes, offset, claimed_end);
    if runs_past_end || is_last_record || rest_is_zeros || nothing_intact_follows {
        ScanEnd::TornTail { offset: offset as u64 }
    } else {
        ScanEnd::Corrupt { offset: offset as u64, detail }
    }
}

/// True if a compact frame with a valid checksum starts at `claimed_end` or anywhere in the
/// `INTACT_FRAME_SEARCH_BYTES` after `offset`.
fn intact_frame_follows(bytes: &[u8], offset: usize, claimed_end: Option<usize>) -> bool {
    let is_intact =
        |start: usize| start < bytes.len() && frame_at(bytes, start, Framing::Compact).is_ok();
    if claimed_end.is_some_and(|end| end > offset && is_intact(end)) {
        return true;
    }
    let search_end = bytes.len().min(offset.saturating_add(1 + INTACT_FRAME_SEARCH_BYTES));
    (offset + 1..search_end).any(is_intact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    const MAGIC: u64 = 0x0102_0304_0506_0708;
    /// Test files: version 1 is framed fixed, version 2 compact.
    const VERSIONS: [u32; 2] = [1, 2];

    fn framing_of(version: u32) -> Framing {
        if version >= 2 {
            Framing::Compact
        } else {
            Framing::Fixed
        }
    }

    fn write_file(fs: &SimFs, version: u32, payloads: &[&[u8]]) -> PathBuf {
        let path = PathBuf::from("/db/log");
        fs.create_dir_all(Path::new("/db")).unwrap();
        let mut writer =
            RecordWriter::create(fs, &path, MAGIC, version, framing_of(version)).unwrap();
        for payload in payloads {
            let (head, body) = payload.split_at(payload.len() / 2);
            let mut framed = Vec::new();
            encode_record_parts(&mut framed, framing_of(version), head, body);
            writer.append_framed(&framed).unwrap();
        }
        writer.sync().unwrap();
        path
    }

    fn scan(fs: &SimFs, path: &Path) -> (Vec<Vec<u8>>, Result<ScanEnd>) {
        let mut records = Vec::new();
        let end = scan_records(fs, path, MAGIC, 2, framing_of, |_, _, payload| {
            records.push(payload.to_vec());
            Ok(())
        });
        (records, end)
    }

    #[test]
    fn records_round_trip() {
        for version in VERSIONS {
            let fs = SimFs::new();
            let long = [9u8; 1000];
            let path = write_file(&fs, version, &[b"one", b"two", &long]);
            let (records, end) = scan(&fs, &path);
            assert_eq!(end.unwrap(), ScanEnd::Clean, "version {version}");
            assert_eq!(records, vec![b"one".to_vec(), b"two".to_vec(), vec![9; 1000]]);
        }
    }

    #[test]
    fn fixed_frames_are_the_manifest_layout_and_compact_frames_save_three_bytes() {
        let mut fixed = Vec::new();
        encode_record_parts(&mut fixed, Framing::Fixed, b"", b"abc");
        assert_eq!(&fixed[..4], &3u32.to_le_bytes());
        assert_eq!(&fixed[4..8], &crc32c_two(&3u32.to_le_bytes(), b"abc").to_le_bytes());
        assert_eq!(&fixed[8..], b"abc");

        let mut compact = Vec::new();
        encode_record_parts(&mut compact, Framing::Compact, b"a", b"bc");
        assert_eq!(compact[0], 3);
        assert_eq!(&compact[1..5], &crc32c_two(&[3], b"abc").to_le_bytes());
        assert_eq!(&compact[5..], b"abc");
        // A 200-byte payload takes a two-byte length.
        let mut compact = Vec::new();
        encode_record_parts(&mut compact, Framing::Compact, &[], &[7; 200]);
        assert_eq!(&compact[..2], &[0xc8, 0x01]);
        assert_eq!(compact.len(), 2 + 4 + 200);
    }

    #[test]
    fn every_truncation_gives_a_prefix_and_a_torn_tail() {
        for version in VERSIONS {
            let fs = SimFs::new();
            let long = [5u8; 300];
            let payloads: Vec<&[u8]> = vec![b"first", &long, b"third"];
            let path = write_file(&fs, version, &payloads);
            let full = fs.read_live(&path).unwrap();
            for len in 0..full.len() {
                let fs = SimFs::new();
                fs.create_dir_all(Path::new("/db")).unwrap();
                fs.create(&path).unwrap().append(&full[..len]).unwrap();
                let (records, end) = scan(&fs, &path);
                let end = end.unwrap();
                if len < FILE_HEADER_LEN {
                    assert_eq!(end, ScanEnd::TornHeader, "version {version}, len {len}");
                } else {
                    assert!(
                        matches!(end, ScanEnd::TornTail { .. } | ScanEnd::Clean),
                        "version {version}, len {len}: {end:?}"
                    );
                }
                assert!(records.len() <= 3);
                for (got, want) in records.iter().zip(&payloads) {
                    assert_eq!(got, want);
                }
            }
        }
    }

    #[test]
    fn damage_in_the_middle_is_corruption_and_at_the_end_is_a_torn_tail() {
        for version in VERSIONS {
            let fs = SimFs::new();
            let path = write_file(&fs, version, &[b"first", b"second", b"third"]);
            let first_frame_header = if version == 1 { RECORD_HEADER_LEN } else { 5 };
            fs.corrupt_byte(&path, FILE_HEADER_LEN + first_frame_header, 0x01);
            let (records, end) = scan(&fs, &path);
            assert!(records.is_empty());
            assert!(
                matches!(end.unwrap(), ScanEnd::Corrupt { offset, .. } if offset == FILE_HEADER_LEN as u64),
                "version {version}"
            );

            let fs = SimFs::new();
            let path = write_file(&fs, version, &[b"first", b"second", b"third"]);
            let size = fs.read_live(&path).unwrap().len();
            fs.corrupt_byte(&path, size - 1, 0x80);
            let (records, end) = scan(&fs, &path);
            assert_eq!(records.len(), 2);
            assert!(matches!(end.unwrap(), ScanEnd::TornTail { .. }), "version {version}");
        }
    }

    #[test]
    fn a_malformed_compact_length_in_the_middle_is_corruption() {
        let fs = SimFs::new();
        let path = write_file(&fs, 2, &[b"first", b"second", b"third"]);
        let mut bytes = fs.read_live(&path).unwrap();
        // Six continuation bytes where the first record's one-byte length was: too long for
        // a length, and not a torn tail (valid records follow).
        bytes.splice(FILE_HEADER_LEN..FILE_HEADER_LEN + 1, [0xff; 6]);
        let damaged = Path::new("/db/damaged");
        fs.create(damaged).unwrap().append(&bytes).unwrap();
        let (records, end) = scan(&fs, damaged);
        assert!(records.is_empty());
        match end.unwrap() {
            ScanEnd::Corrupt { offset, detail } => {
                assert_eq!(offset, FILE_HEADER_LEN as u64);
                assert!(detail.contains("length field malformed"), "{detail}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_garbage_tail_after_compact_frames_is_torn_however_its_length_reads() {
        let fs = SimFs::new();
        let path = write_file(&fs, 2, &[b"first", b"second"]);
        let good = fs.read_live(&path).unwrap();
        // Garbage whose first byte reads as a short length ending inside it, garbage with a
        // malformed length, and garbage claiming to end exactly at the end of the file.
        let tails: [Vec<u8>; 3] = [
            vec![3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            vec![0xff; 40],
            vec![5, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5],
        ];
        for tail in tails {
            let mut bytes = good.clone();
            bytes.extend_from_slice(&tail);
            let torn = Path::new("/db/torn");
            let _ = fs.remove_file(torn);
            fs.create(torn).unwrap().append(&bytes).unwrap();
            let (records, end) = scan(&fs, torn);
            assert_eq!(records.len(), 2, "tail {tail:?}");
            assert_eq!(end.unwrap(), ScanEnd::TornTail { offset: good.len() as u64 });
        }
    }

    #[test]
    fn a_damaged_compact_length_followed_by_an_intact_record_is_corruption() {
        let fs = SimFs::new();
        let long = [7u8; 300];
        let path = write_file(&fs, 2, &[&long, b"second", b"third"]);
        let mut bytes = fs.read_live(&path).unwrap();
        // The 300-byte payload's length is two bytes (0xac 0x02): make it claim 44 bytes, so
        // the frame ends inside its own payload, where no record starts.
        bytes[FILE_HEADER_LEN] = 0x2c;
        bytes[FILE_HEADER_LEN + 1] = 0x7f;
        let damaged = Path::new("/db/damaged-length");
        fs.create(damaged).unwrap().append(&bytes).unwrap();
        let (records, end) = scan(&fs, damaged);
        assert!(records.is_empty());
        assert!(
            matches!(end.unwrap(), ScanEnd::Corrupt { offset, .. } if offset == FILE_HEADER_LEN as u64)
        );
    }

    #[test]
    fn zeroed_tail_is_torn_and_bad_headers_are_errors() {
        let fs = SimFs::new();
        let path = write_file(&fs, 1, &[b"first"]);
        let mut writer = fs.create(Path::new("/db/zeros")).unwrap();
        let mut bytes = fs.read_live(&path).unwrap();
        bytes.extend_from_slice(&[0; 100]);
        writer.append(&bytes).unwrap();
        let (records, end) = scan(&fs, Path::new("/db/zeros"));
        assert_eq!(records.len(), 1);
        assert!(matches!(end.unwrap(), ScanEnd::TornTail { .. }));

        let wrong_magic = scan_records(&fs, &path, MAGIC + 1, 1, framing_of, |_, _, _| Ok(()));
        assert!(wrong_magic.unwrap_err().is_corruption());
        fs.corrupt_byte(&path, 3, 0xff);
        let bad_header = scan_records(&fs, &path, MAGIC, 1, framing_of, |_, _, _| Ok(()));
        assert!(matches!(bad_header.unwrap_err(), Error::ChecksumMismatch { offset: 0, .. }));
    }

    #[test]
    fn newer_format_versions_are_refused() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = PathBuf::from("/db/v2");
        let mut writer = RecordWriter::create(&fs, &path, MAGIC, 2, Framing::Compact).unwrap();
        writer.append_record(b"x").unwrap();
        let error = scan_records(&fs, &path, MAGIC, 1, framing_of, |_, _, _| Ok(())).unwrap_err();
        assert!(matches!(error, Error::UnsupportedVersion { found: 2, supported: 1, .. }));
    }
}
