//! Names of the files in a database directory.
//!
//! ```text
//! 000007.wal        a WAL file             000009.sst     an SST
//! MANIFEST-000008   a manifest             CURRENT        names the live manifest
//! LOCK              held while open        CURRENT.*.tmp  a CURRENT being written (removed on open)
//! ```
//!
//! File numbers come from one counter recorded in the manifest, so every file has a unique
//! number. Thread safety: plain functions.

use std::path::{Path, PathBuf};

/// Name of the file naming the live manifest.
pub const CURRENT_FILE_NAME: &str = "CURRENT";
/// Name of the lock file.
pub const LOCK_FILE_NAME: &str = "LOCK";
const MANIFEST_PREFIX: &str = "MANIFEST-";
/// Largest file number: 2^48 - 1, far beyond any real database's count, and low enough that
/// `number + 1` never overflows. Names with larger numbers are not the engine's.
pub const FILE_NUMBER_MAX: u64 = (1 << 48) - 1;

/// The kinds of files the engine owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `NNNNNN.wal`
    Wal(u64),
    /// `NNNNNN.sst`
    Sst(u64),
    /// `MANIFEST-NNNNNN`
    Manifest(u64),
    /// `CURRENT`
    Current,
    /// `LOCK`
    Lock,
    /// `CURRENT.*.tmp`
    Temporary,
}

/// Path of WAL file `number`.
pub fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.wal"))
}

/// Path of SST `number`.
pub fn sst_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}.sst"))
}

/// Name of manifest `number` (also the contents of CURRENT, with a newline).
pub fn manifest_name(number: u64) -> String {
    format!("{MANIFEST_PREFIX}{number:06}")
}

/// Classifies a directory entry; `None` for files that are not the engine's.
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    fn number(digits: &str) -> Option<u64> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
            .filter(|&number| number <= FILE_NUMBER_MAX)
    }
    match name {
        CURRENT_FILE_NAME => return Some(FileKind::Current),
        LOCK_FILE_NAME => return Some(FileKind::Lock),
        _ => {}
    }
    if name.starts_with("CURRENT.") && name.ends_with(".tmp") {
        return Some(FileKind::Temporary);
    }
    if let Some(digits) = name.strip_suffix(".wal") {
        return number(digits).map(FileKind::Wal);
    }
    if let Some(digits) = name.strip_suffix(".sst") {
        return number(digits).map(FileKind::Sst);
    }
    name.strip_prefix(MANIFEST_PREFIX).and_then(number).map(FileKind::Manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/db");
        assert_eq!(wal_path(dir, 7), Path::new("/db/000007.wal"));
        assert_eq!(parse_file_name("000007.wal"), Some(FileKind::Wal(7)));
        assert_eq!(parse_file_name("1234567.sst"), Some(FileKind::Sst(1_234_567)));
        assert_eq!(parse_file_name(&manifest_name(3)), Some(FileKind::Manifest(3)));
        assert_eq!(parse_file_name("CURRENT"), Some(FileKind::Current));
        assert_eq!(parse_file_name("CURRENT.5.tmp"), Some(FileKind::Temporary));
        assert_eq!(
            parse_file_name(&format!("{FILE_NUMBER_MAX}.sst")),
            Some(FileKind::Sst(FILE_NUMBER_MAX))
        );
        assert_eq!(parse_file_name(&format!("{}.sst", FILE_NUMBER_MAX + 1)), None);
        assert_eq!(parse_file_name("notes.tmp"), None);
        for foreign in [
            "",
            ".wal",
            "x.sst",
            "MANIFEST-",
            "MANIFEST-1a",
            "notes.txt",
            "99999999999999999999.sst",
        ] {
            assert_eq!(parse_file_name(foreign), None, "{foreign}");
        }
    }
}
