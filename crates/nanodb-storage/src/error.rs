//! The storage engine's one error type.
//!
//! Thread safety: `Error` is `Send + Sync + Clone`, so one failure can be handed to every
//! writer of a commit group and kept as the reason a database is poisoned.
//!
//! Invariants:
//! 1. Bytes read from disk that fail validation are `Corruption` or `ChecksumMismatch`, always
//!    naming the file; they never panic.
//! 2. `Poisoned` is returned by every write after a failed write or fsync, carrying the first
//!    failure, until the database is reopened.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Result type of every fallible engine call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage engine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    Io {
        /// What the engine was doing, for example "append to WAL 000007.wal".
        context: String,
        /// The underlying error.
        source: Arc<io::Error>,
    },
    /// Bytes on disk are not what the format allows.
    Corruption {
        /// The file the bad bytes were read from.
        file: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A checksum stored on disk does not match the bytes it covers.
    ChecksumMismatch {
        /// The file the bad bytes were read from.
        file: PathBuf,
        /// Byte offset of the checksummed region in that file.
        offset: u64,
        /// The checksum stored on disk.
        expected: u32,
        /// The checksum computed over the bytes read.
        actual: u32,
    },
    /// A file was written by a format version this build cannot read.
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Another `Db` (in this or another process) holds the directory's lock.
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// A caller-supplied value is over a configured limit.
    LimitExceeded {
        /// What was too large, for example "key size".
        what: &'static str,
        /// The size given.
        size: u64,
        /// The configured maximum.
        max: u64,
    },
    /// A caller-supplied argument is invalid for another reason.
    InvalidArgument(String),
    /// An earlier write or fsync failed; no further writes are accepted until the
    /// database is reopened.
    Poisoned {
        /// The failure that poisoned the database.
        cause: Box<Error>,
    },
    /// The database was closed.
    Closed,
    /// A panic inside the engine (a bug, or a panic in a user-supplied `Fs`) was caught; the
    /// database is poisoned.
    Internal(String),
    /// The directory holds no database and `Options::create_if_missing` is false.
    NotFound {
        /// The database directory.
        path: PathBuf,
    },
    /// No keyspace has this name.
    KeyspaceNotFound {
        /// The name asked for.
        name: String,
    },
    /// A keyspace with this name already exists.
    KeyspaceExists {
        /// The name asked for.
        name: String,
    },
    /// The keyspace was dropped; its handles no longer read or write.
    KeyspaceDropped {
        /// The keyspace's name.
        name: String,
    },
    /// `Db::verify` found damage; the report lists every problem (each one a `Corruption`,
    /// `ChecksumMismatch` or I/O error naming its file) and what was checked.
    VerifyFailed {
        /// The full report.
        report: Box<crate::db::VerifyReport>,
    },
    /// A transaction could not commit: another commit changed a key it wrote (or, when
    /// serializable, a key or range it read) after it began. Nothing of it was written;
    /// running it again may succeed.
    Conflict {
        /// The first conflicting key found (in its keyspace), for diagnostics.
        key: Vec<u8>,
    },
    /// An iterator given a step limit (`Iter::limit_steps`) passed over that many stored
    /// entries (keys, older versions, tombstones) and stopped; nothing is wrong with the data.
    IteratorStepLimit {
        /// The limit.
        max: u64,
    },
}

impl Error {
    /// Wraps an I/O error with what the engine was doing when it happened.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source: Arc::new(source) }
    }

    /// Builds a `Corruption` error for `file`.
    pub fn corruption(file: impl Into<PathBuf>, detail: impl Into<String>) -> Error {
        Error::Corruption { file: file.into(), detail: detail.into() }
    }

    /// True for errors that mean bytes on disk are damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corruption { .. }
                | Error::ChecksumMismatch { .. }
                | Error::UnsupportedVersion { .. }
                | Error::VerifyFailed { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "I/O error while trying to {context}: {source}"),
            Error::Corruption { file, detail } => {
                write!(f, "corruption in {}: {detail}", file.display())
            }
            Error::ChecksumMismatch { file, offset, expected, actual } => write!(
                f,
                "checksum mismatch in {} at offset {offset}: stored {expected:#010x}, computed {actual:#010x}",
                file.display()
            ),
            Error::UnsupportedVersion { file, found, supported } => write!(
                f,
                "{} has format version {found}, which this build cannot read (it writes version {supported})",
                file.display()
            ),
            Error::Locked { path } => write!(
                f,
                "database {} is locked: another Db handle, in this or another process, has it open",
                path.display()
            ),
            Error::LimitExceeded { what, size, max } => {
                write!(f, "{what} of {size} is over the limit of {max}")
            }
            Error::InvalidArgument(message) => write!(f, "invalid argument: {message}"),
            Error::Poisoned { cause } => write!(
                f,
                "database refuses writes after an earlier failure (reopen it to recover): {cause}"
            ),
            Error::Closed => write!(f, "database is closed"),
            Error::Internal(message) => write!(
                f,
                "internal error (a bug, or a panic in a user-supplied filesystem): {message}"
            ),
            Error::NotFound { path } => write!(
                f,
                "no database at {} and Options::create_if_missing is false",
                path.display()
            ),
            Error::KeyspaceNotFound { name } => write!(f, "no keyspace named {name:?}"),
            Error::KeyspaceExists { name } => write!(f, "a keyspace named {name:?} already exists"),
            Error::KeyspaceDropped { name } => {
                write!(f, "keyspace {name:?} was dropped; open or create it again to use the name")
            }
            Error::VerifyFailed { report } => {
                write!(f, "verify found {} problem(s) in {} SSTs:", report.problems.len(), report.sst_files)?;
                for problem in report.problems.iter().take(10) {
                    write!(f, " [{problem}]")?;
                }
                if report.problems.len() > 10 {
                    write!(f, " and {} more", report.problems.len() - 10)?;
                }
                Ok(())
            }
            Error::Conflict { key } => write!(
                f,
                "transaction conflict on key {}: another commit changed it after the transaction began; retry",
                crate::error::escape_key(key)
            ),
            Error::IteratorStepLimit { max } => {
                write!(f, "the iterator passed over {max} stored entries, its limit, and stopped")
            }
        }
    }
}

/// A key as text for messages: printable ASCII as is, other bytes as `\xNN`, cut at 64 bytes.
pub(crate) fn escape_key(key: &[u8]) -> String {
    let mut text: String = key
        .iter()
        .take(64)
        .flat_map(|&byte| std::ascii::escape_default(byte))
        .map(char::from)
        .collect();
    if key.len() > 64 {
        text.push_str("...");
    }
    format!("\"{text}\"")
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source.as_ref()),
            Error::Poisoned { cause } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_file_and_the_checksums() {
        let error = Error::ChecksumMismatch {
            file: PathBuf::from("db/000004.sst"),
            offset: 4096,
            expected: 0xdead_beef,
            actual: 1,
        };
        let text = error.to_string();
        assert!(text.contains("db/000004.sst"), "{text}");
        assert!(text.contains("0xdeadbeef"), "{text}");
        assert!(error.is_corruption());
    }

    #[test]
    fn poisoned_keeps_its_cause() {
        let cause = Error::io("sync WAL", io::Error::other("disk gone"));
        let error = Error::Poisoned { cause: Box::new(cause) };
        assert!(error.to_string().contains("disk gone"));
        assert!(std::error::Error::source(&error).is_some());
    }
}
