//! The document layer's one error type.
//!
//! Thread safety: `Error` is `Send + Sync + Clone`.
//!
//! Invariant: bad input (a document, a filter, a name) is never a panic: it is one of these,
//! with a message that says what was wrong and, for text, where.

use std::fmt;

/// Result type of every fallible call of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the document layer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed (I/O, corruption, a closed or poisoned database, ...).
    Storage(nanodb_storage::Error),
    /// Stored bytes are not a valid document or catalog entry.
    Corruption {
        /// What was being read.
        context: String,
        /// What was wrong.
        detail: String,
    },
    /// A document, value or option is not acceptable.
    InvalidDocument {
        /// What was wrong.
        detail: String,
    },
    /// A name (database, collection, index, field) is not acceptable.
    InvalidName {
        /// What kind of name.
        kind: &'static str,
        /// The name, as given (shortened if long).
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// A size or count limit was exceeded.
    LimitExceeded {
        /// What was limited.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// The size or count found.
        actual: u64,
    },
    /// A named thing does not exist.
    NotFound {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A named thing already exists.
    AlreadyExists {
        /// What kind of thing.
        kind: &'static str,
        /// Its name or id.
        name: String,
    },
    /// A write would give two documents the same value of a unique index.
    UniqueViolation {
        /// The collection.
        collection: String,
        /// The index.
        index: String,
        /// The value (as JSON).
        value: String,
    },
    /// A transaction lost to a concurrent commit; retrying it may succeed.
    Conflict,
    /// A filter or query could not be parsed or does not make sense.
    InvalidQuery {
        /// What was wrong.
        detail: String,
        /// Byte offset in the filter text, when the query came as text.
        position: Option<usize>,
    },
    /// The runtime or database was closed.
    Closed,
    /// A query or count spent its `ReadBudget` (its deadline or its entries) and stopped;
    /// nothing was changed, and the same call with a larger budget can run it to the end.
    BudgetExceeded {
        /// Which part of the budget ran out: `"deadline"` or `"entries examined"`.
        spent: &'static str,
    },
    /// A change-feed subscriber fell behind by more than its buffer; it missed this many
    /// events (and every later one) and must read the state again and subscribe anew.
    Lagged {
        /// Events dropped after the buffer filled.
        missed: u64,
    },
}

impl Error {
    pub(crate) fn invalid(detail: impl Into<String>) -> Error {
        Error::InvalidDocument { detail: detail.into() }
    }

    /// `Error::LimitExceeded` if `actual` is over `limit`.
    pub(crate) fn check_limit(what: &'static str, actual: usize, limit: usize) -> Result<()> {
        if actual > limit {
            return Err(Error::LimitExceeded { what, limit: limit as u64, actual: actual as u64 });
        }
        Ok(())
    }

    pub(crate) fn corruption(context: impl Into<String>, detail: impl fmt::Display) -> Error {
        Error::Corruption { context: context.into(), detail: detail.to_string() }
    }
}

impl From<nanodb_storage::Error> for Error {
    fn from(error: nanodb_storage::Error) -> Error {
        match error {
            nanodb_storage::Error::Conflict { .. } => Error::Conflict,
            // Only a read budget sets an iterator's step limit (`query::budget`).
            nanodb_storage::Error::IteratorStepLimit { .. } => {
                Error::BudgetExceeded { spent: "entries examined" }
            }
            other => Error::Storage(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Storage(error) => write!(f, "storage: {error}"),
            Error::Corruption { context, detail } => write!(f, "corrupt {context}: {detail}"),
            Error::InvalidDocument { detail } => write!(f, "invalid document: {detail}"),
            Error::InvalidName { kind, name, reason } => {
                write!(f, "invalid {kind} name {name:?}: {reason}")
            }
            Error::LimitExceeded { what, limit, actual } => {
                write!(f, "{what} is {actual}, over the limit of {limit}")
            }
            Error::NotFound { kind, name } => write!(f, "{kind} {name:?} not found"),
            Error::AlreadyExists { kind, name } => write!(f, "{kind} {name:?} already exists"),
            Error::UniqueViolation { collection, index, value } => write!(
                f,
                "unique index {index:?} of collection {collection:?} already holds the value {value}"
            ),
            Error::Conflict => {
                f.write_str("transaction conflict: another commit changed what it touched")
            }
            Error::BudgetExceeded { spent } => {
                write!(f, "the read stopped when its budget ran out ({spent})")
            }
            Error::InvalidQuery { detail, position: Some(position) } => {
                write!(f, "invalid query at byte {position}: {detail}")
            }
            Error::InvalidQuery { detail, position: None } => write!(f, "invalid query: {detail}"),
            Error::Closed => f.write_str("the database is closed"),
            Error::Lagged { missed } => write!(
                f,
                "the change feed subscriber fell behind its buffer and missed {missed} events"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage(error) => Some(error),
            _ => None,
        }
    }
}
