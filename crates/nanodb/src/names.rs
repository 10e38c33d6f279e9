//! Names and ids: what a database, collection or index name and a document id may be.
//!
//! Database names become directory names, so they are the strictest: ASCII letters, digits,
//! `_`, `-` and `.`, not starting with `.` (so never `.` or `..`, and no hidden files), and no
//! `/` or `\` (no path traversal). Collection and index names are letters, digits and `_`
//! (PocketBase's rule), not starting with a digit. Document ids are letters, digits, `_` and
//! `-`. Every kind has a length limit.
//!
//! Thread safety: pure functions.
//!
//! Invariant: a name that passes `check_database_name` is a single, non-special path component
//! on every platform.

use crate::{Error, Result};

/// Longest database name, in bytes.
pub const DATABASE_NAME_LEN_MAX: usize = 64;
/// Longest collection name, in bytes.
pub const COLLECTION_NAME_LEN_MAX: usize = 64;
/// Longest index name, in bytes.
pub const INDEX_NAME_LEN_MAX: usize = 64;
/// Longest document id, in bytes.
pub const DOCUMENT_ID_LEN_MAX: usize = 128;

fn invalid(kind: &'static str, name: &str, reason: impl Into<String>) -> Error {
    let shown: String = name.chars().take(80).collect();
    Error::InvalidName { kind, name: shown, reason: reason.into() }
}

fn check(
    kind: &'static str,
    name: &str,
    len_max: usize,
    allowed: impl Fn(char) -> bool,
    allowed_text: &str,
) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(kind, name, "it is empty"));
    }
    if name.len() > len_max {
        return Err(invalid(kind, name, format!("it is longer than {len_max} bytes")));
    }
    if let Some(bad) = name.chars().find(|&c| !allowed(c)) {
        return Err(invalid(kind, name, format!("{bad:?} is not allowed (only {allowed_text})")));
    }
    Ok(())
}

/// Checks a database name.
pub fn check_database_name(name: &str) -> Result<()> {
    check(
        "database",
        name,
        DATABASE_NAME_LEN_MAX,
        |c| c.is_ascii_alphanumeric() || "_-.".contains(c),
        "ASCII letters, digits, '_', '-' and '.'",
    )?;
    if name.starts_with('.') {
        return Err(invalid("database", name, "it starts with '.'"));
    }
    Ok(())
}

/// Checks a collection name.
pub fn check_collection_name(name: &str) -> Result<()> {
    check_word("collection", name, COLLECTION_NAME_LEN_MAX)
}

/// Checks an index name.
pub fn check_index_name(name: &str) -> Result<()> {
    check_word("index", name, INDEX_NAME_LEN_MAX)
}

fn check_word(kind: &'static str, name: &str, len_max: usize) -> Result<()> {
    check(
        kind,
        name,
        len_max,
        |c| c.is_ascii_alphanumeric() || c == '_',
        "ASCII letters, digits and '_'",
    )?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid(kind, name, "it starts with a digit"));
    }
    Ok(())
}

/// Checks a document id given by a caller.
pub fn check_document_id(id: &str) -> Result<()> {
    check(
        "document id",
        id,
        DOCUMENT_ID_LEN_MAX,
        |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
        "ASCII letters, digits, '_' and '-'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_cannot_escape_the_root() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\0b", "a\nb", "é", "a b"] {
            assert!(matches!(check_database_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        for good in ["app", "my-app.v2", "A_1", "x."] {
            assert!(check_database_name(good).is_ok(), "{good}");
        }
        assert!(check_database_name(&"d".repeat(DATABASE_NAME_LEN_MAX)).is_ok());
        let error = check_database_name(&"d".repeat(DATABASE_NAME_LEN_MAX + 1)).unwrap_err();
        assert!(error.to_string().contains("longer than 64"), "{error}");
    }

    #[test]
    fn collection_index_and_id_rules() {
        assert!(check_collection_name("users").is_ok());
        assert!(check_collection_name("_superusers").is_ok());
        assert!(check_collection_name("1st").is_err());
        assert!(check_collection_name("a-b").is_err());
        assert!(check_collection_name(&"c".repeat(COLLECTION_NAME_LEN_MAX)).is_ok());
        assert!(check_collection_name(&"c".repeat(COLLECTION_NAME_LEN_MAX + 1)).is_err());
        assert!(check_index_name("by_email").is_ok());
        assert!(check_index_name(&"i".repeat(INDEX_NAME_LEN_MAX + 1)).is_err());
        assert!(check_document_id("abc-123_X").is_ok());
        assert!(check_document_id("a.b").is_err());
        assert!(check_document_id(&"i".repeat(DOCUMENT_ID_LEN_MAX)).is_ok());
        assert!(check_document_id(&"i".repeat(DOCUMENT_ID_LEN_MAX + 1)).is_err());
        let error = check_document_id("a/b").unwrap_err().to_string();
        assert!(error.contains("'/' is not allowed"), "{error}");
    }
}
