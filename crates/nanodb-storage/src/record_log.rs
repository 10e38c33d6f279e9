//! Append-only files of checksummed records: the framing shared by the WAL and the manifest.
//!
//! Layout (docs/format/wal.md and docs/format/manifest.md):
//!
//! ```text
//! file header (16 bytes): magic u64 LE | format_version u32 LE | crc32c(magic, version) u32 LE
//! record*:                length u32 LE | crc32c(length bytes, payload) u32 LE | payload
//! ```
//!
//! Thread safety: a `RecordWriter` belongs to one thread at a time (the WAL's group-commit
//! leader, or the manifest's writer under the version lock). Reading is a pure function.
//!
//! Invariants:
//! 1. A record is valid only if its whole frame is present and its checksum matches.
//! 2. Scanning stops at the first invalid record and reports whether it looks like a torn
//!    tail (the normal result of a crash: the frame runs past the end of the file, or the
//!    rest of the file is zeros, or it is the last record) or damage in the middle.
//! 3. Scanning allocates nothing proportional to a length field it has not checked against
//!    the file size.

use crate::coding::{crc32c, crc32c_two, get_u32_at, get_u64_at, put_u32, put_u64};
use crate::fs::{Fs, WritableFile};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Size of the file header, in bytes. DO NOT CHANGE: on-disk format.
pub const FILE_HEADER_LEN: usize = 16;
/// Size of a record's frame header (length and checksum), in bytes. DO NOT CHANGE.
pub const RECORD_HEADER_LEN: usize = 8;
/// Largest record payload, in bytes: the length field is a `u32`, and we keep it signed-safe.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = (u32::MAX / 2) as usize;

/// Appends the frame of one record to `out`.
pub fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    assert!(payload.len() <= RECORD_PAYLOAD_BYTES_MAX, "record payload over the format limit");
    assert!(!payload.is_empty(), "empty records are not part of the format");
    let len = (payload.len() as u32).to_le_bytes();
    put_u32(out, payload.len() as u32);
    put_u32(out, crc32c_two(&len, payload));
    out.extend_from_slice(payload);
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
}

impl RecordWriter {
    /// Creates the file at `path` and writes its header (not yet synced).
    pub fn create(fs: &dyn Fs, path: &Path, magic: u64, version: u32) -> Result<RecordWriter> {
        let mut file = fs
            .create(path)
            .map_err(|error| Error::io(format!("create {}", path.display()), error))?;
        let header = encode_file_header(magic, version);
        file.append(&header)
            .map_err(|error| Error::io(format!("write header of {}", path.display()), error))?;
        Ok(RecordWriter { file, path: path.to_path_buf(), size_bytes: FILE_HEADER_LEN as u64 })
    }

    /// Appends already-framed records (see `encode_record`).
    pub fn append_framed(&mut self, framed: &[u8]) -> Result<()> {
        self.file
            .append(framed)
            .map_err(|error| Error::io(format!("append to {}", self.path.display()), error))?;
        self.size_bytes += framed.len() as u64;
        Ok(())
    }

    /// Frames and appends one record.
    pub fn append_record(&mut self, payload: &[u8]) -> Result<()> {
        let mut framed = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
        encode_record(&mut framed, payload);
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

/// Reads every valid record of the file at `path`, calling `on_record(offset, payload)` for
/// each, and reports how the file ended. Errors from `on_record` stop the scan and are returned.
pub fn scan_records(
    fs: &dyn Fs,
    path: &Path,
    magic: u64,
    version_max: u32,
    mut on_record: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<ScanEnd> {
    let bytes =
        fs.read_all(path).map_err(|error| Error::io(format!("read {}", path.display()), error))?;
    let Some(header) = bytes.get(..FILE_HEADER_LEN) else {
        return Ok(ScanEnd::TornHeader);
    };
    if header.iter().all(|&byte| byte == 0) {
        return Ok(ScanEnd::TornHeader);
    }
    check_file_header(path, header, magic, version_max)?;

    let mut offset = FILE_HEADER_LEN;
    while offset < bytes.len() {
        match frame_at(&bytes, offset) {
            Ok(payload) => {
                on_record(offset as u64, payload)?;
                offset += RECORD_HEADER_LEN + payload.len();
            }
            Err(detail) => return Ok(classify_bad_record(&bytes, offset, detail)),
        }
    }
    Ok(ScanEnd::Clean)
}

fn check_file_header(path: &Path, header: &[u8], magic: u64, version_max: u32) -> Result<()> {
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
    Ok(())
}

/// The payload of the record at `offset`, or what is wrong with it.
fn frame_at(bytes: &[u8], offset: usize) -> std::result::Result<&[u8], String> {
    let len = get_u32_at(bytes, offset).ok_or("record header incomplete")? as usize;
    let stored_crc = get_u32_at(bytes, offset + 4).ok_or("record header incomplete")?;
    let start = offset + RECORD_HEADER_LEN;
    let payload = start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| format!("record of {len} bytes runs past the end of the file"))?;
    if len == 0 {
        return Err("record of length zero".into());
    }
    let actual_crc = crc32c_two(&(len as u32).to_le_bytes(), payload);
    if stored_crc != actual_crc {
        return Err(format!(
            "record checksum mismatch: stored {stored_crc:#010x}, computed {actual_crc:#010x}"
        ));
    }
    Ok(payload)
}

fn classify_bad_record(bytes: &[u8], offset: usize, detail: String) -> ScanEnd {
    let rest = &bytes[offset..];
    let claimed_end = get_u32_at(bytes, offset)
        .and_then(|len| (offset + RECORD_HEADER_LEN).checked_add(len as usize));
    let runs_past_end = claimed_end.is_none_or(|end| end > bytes.len());
    let is_last_record = claimed_end == Some(bytes.len());
    let rest_is_zeros = rest.iter().all(|&byte| byte == 0);
    if runs_past_end || is_last_record || rest_is_zeros {
        ScanEnd::TornTail { offset: offset as u64 }
    } else {
        ScanEnd::Corrupt { offset: offset as u64, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    const MAGIC: u64 = 0x0102_0304_0506_0708;

    fn write_file(fs: &SimFs, payloads: &[&[u8]]) -> PathBuf {
        let path = PathBuf::from("/db/log");
        fs.create_dir_all(Path::new("/db")).unwrap();
        let mut writer = RecordWriter::create(fs, &path, MAGIC, 1).unwrap();
        for payload in payloads {
            writer.append_record(payload).unwrap();
        }
        writer.sync().unwrap();
        path
    }

    fn scan(fs: &SimFs, path: &Path) -> (Vec<Vec<u8>>, Result<ScanEnd>) {
        let mut records = Vec::new();
        let end = scan_records(fs, path, MAGIC, 1, |_, payload| {
            records.push(payload.to_vec());
            Ok(())
        });
        (records, end)
    }

    #[test]
    fn records_round_trip() {
        let fs = SimFs::new();
        let path = write_file(&fs, &[b"one", b"two", &[9; 1000]]);
        let (records, end) = scan(&fs, &path);
        assert_eq!(end.unwrap(), ScanEnd::Clean);
        assert_eq!(records, vec![b"one".to_vec(), b"two".to_vec(), vec![9; 1000]]);
    }

    #[test]
    fn every_truncation_gives_a_prefix_and_a_torn_tail() {
        let fs = SimFs::new();
        let path = write_file(&fs, &[b"first", b"second", b"third"]);
        let full = fs.read_live(&path).unwrap();
        for len in 0..full.len() {
            let fs = SimFs::new();
            fs.create_dir_all(Path::new("/db")).unwrap();
            fs.create(&path).unwrap().append(&full[..len]).unwrap();
            let (records, end) = scan(&fs, &path);
            let end = end.unwrap();
            if len < FILE_HEADER_LEN {
                assert_eq!(end, ScanEnd::TornHeader, "len {len}");
            } else {
                assert!(
                    matches!(end, ScanEnd::TornTail { .. } | ScanEnd::Clean),
                    "len {len}: {end:?}"
                );
            }
            let expected: Vec<&[u8]> = vec![b"first", b"second", b"third"];
            assert!(records.len() <= 3);
            for (got, want) in records.iter().zip(expected) {
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn damage_in_the_middle_is_corruption_and_at_the_end_is_a_torn_tail() {
        let fs = SimFs::new();
        let path = write_file(&fs, &[b"first", b"second", b"third"]);
        let first_payload = FILE_HEADER_LEN + RECORD_HEADER_LEN;
        fs.corrupt_byte(&path, first_payload, 0x01);
        let (records, end) = scan(&fs, &path);
        assert!(records.is_empty());
        assert!(
            matches!(end.unwrap(), ScanEnd::Corrupt { offset, .. } if offset == FILE_HEADER_LEN as u64)
        );

        let fs = SimFs::new();
        let path = write_file(&fs, &[b"first", b"second", b"third"]);
        let size = fs.read_live(&path).unwrap().len();
        fs.corrupt_byte(&path, size - 1, 0x80);
        let (records, end) = scan(&fs, &path);
        assert_eq!(records.len(), 2);
        assert!(matches!(end.unwrap(), ScanEnd::TornTail { .. }));
    }

    #[test]
    fn zeroed_tail_is_torn_and_bad_headers_are_errors() {
        let fs = SimFs::new();
        let path = write_file(&fs, &[b"first"]);
        let mut writer = fs.create(Path::new("/db/zeros")).unwrap();
        let mut bytes = fs.read_live(&path).unwrap();
        bytes.extend_from_slice(&[0; 100]);
        writer.append(&bytes).unwrap();
        let (records, end) = scan(&fs, Path::new("/db/zeros"));
        assert_eq!(records.len(), 1);
        assert!(matches!(end.unwrap(), ScanEnd::TornTail { .. }));

        let wrong_magic = scan_records(&fs, &path, MAGIC + 1, 1, |_, _| Ok(()));
        assert!(wrong_magic.unwrap_err().is_corruption());
        fs.corrupt_byte(&path, 3, 0xff);
        let bad_header = scan_records(&fs, &path, MAGIC, 1, |_, _| Ok(()));
        assert!(matches!(bad_header.unwrap_err(), Error::ChecksumMismatch { offset: 0, .. }));
    }

    #[test]
    fn newer_format_versions_are_refused() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = PathBuf::from("/db/v2");
        let mut writer = RecordWriter::create(&fs, &path, MAGIC, 2).unwrap();
        writer.append_record(b"x").unwrap();
        let error = scan_records(&fs, &path, MAGIC, 1, |_, _| Ok(())).unwrap_err();
        assert!(matches!(error, Error::UnsupportedVersion { found: 2, supported: 1, .. }));
    }
}
