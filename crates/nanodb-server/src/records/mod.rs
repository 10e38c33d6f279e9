//! Records (documents at the HTTP boundary): their values (`values`, `modifiers`), how a
//! body becomes stored fields (`write`, `password_input`), how stored fields become record
//! JSON (`record_json`, `export`, `expand`, `picker`).
//!
//! Thread safety: pure functions, except `expand`, which reads the database.

pub mod expand;
pub mod export;
pub mod modifiers;
pub mod password_input;
pub mod picker;
pub mod record_json;
pub mod values;
pub mod write;
