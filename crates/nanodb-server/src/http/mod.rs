//! Reading requests and writing responses the way the PocketBase SDK does them: bodies (JSON,
//! multipart with `@jsonPayload`, url-encoded) under a size limit, query parameters, and
//! JSON responses.
//!
//! Thread safety: pure functions over owned request parts.

pub mod body;
pub mod form_values;
pub mod multipart;
pub mod query;
pub mod response;
