//! Superusers: records of the `_superusers` auth collection. `upsert` creates one or sets
//! the password of an existing one (for `nanodb superuser create` and the first-run install
//! endpoint); `create_superuser` does it on a data directory with no server running.
//!
//! Thread safety: `upsert` writes in one document transaction; the unique email index keeps
//! two concurrent creates of one email from both succeeding.

use crate::auth::password::{check_length, Passwords};
use crate::config::ServerConfig;
use crate::error::{Error, FieldError, Result};
use crate::records::values::email_domain;
use crate::records::write::TOKEN_KEY_LEN;
use crate::schema::defaults::{PASSWORD_LEN_MIN_DEFAULT, RECORD_ID_LEN, SUPERUSERS_ID};
use crate::schema::Definitions;
use crate::state::AppState;
use nanodb::query::{Filter, Query};
use nanodb::Value;

/// What `upsert` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    /// A new superuser with this id.
    Created(String),
    /// The superuser with this id has a new password.
    Updated(String),
}

/// Checks a superuser's email and password before anything is hashed; returns the email
/// as stored (trimmed, lower case).
pub fn check_credentials(email: &str, password: &str) -> Result<String> {
    let message = "Invalid superuser credentials.";
    let email = email.trim().to_ascii_lowercase();
    if email_domain(&email).is_none() {
        let error = FieldError::new("validation_is_email", "Must be a valid email address.");
        return Err(Error::invalid_field(message, "email", error));
    }
    if let Err(error) = check_length(password, PASSWORD_LEN_MIN_DEFAULT) {
        return Err(Error::invalid_field(message, "password", error));
    }
    Ok(email)
}

/// True if at least one superuser exists.
pub fn any_exists(definitions: &Definitions) -> Result<bool> {
    let Some(def) = definitions.snapshot().by_id(SUPERUSERS_ID) else { return Ok(false) };
    let page = definitions.records(&def)?.find(&Query::new(Filter::True).limit(1))?;
    Ok(!page.documents.is_empty())
}

/// Creates the superuser `email` with `password_hash`, or gives the existing one that hash
/// (and a new token key, so its old tokens stop working).
pub fn upsert(definitions: &Definitions, email: &str, password_hash: String) -> Result<Upserted> {
    let def = definitions
        .snapshot()
        .by_id(SUPERUSERS_ID)
        .ok_or_else(|| Error::Internal("the _superusers collection is missing".into()))?;
    let _gate = definitions.write_gate();
    let records = definitions.records(&def)?;
    let token_key = nanodb::id::generate(TOKEN_KEY_LEN)?;
    let existing = records.find_one(Filter::eq("email", email)?)?;
    let mut fields =
        existing.as_ref().map(|document| document.fields().clone()).unwrap_or_default();
    fields.insert("email".into(), Value::from(email));
    fields.insert("password".into(), Value::String(password_hash));
    fields.insert("tokenKey".into(), Value::String(token_key));
    fields.entry("emailVisibility".into()).or_insert(Value::Bool(false));
    fields.insert("verified".into(), Value::Bool(true));
    Ok(match existing {
        Some(document) => {
            records.replace(document.id(), Value::Object(fields))?;
            Upserted::Updated(document.id().to_string())
        }
        None => {
            fields.insert("id".into(), Value::String(nanodb::id::generate(RECORD_ID_LEN)?));
            Upserted::Created(records.insert(Value::Object(fields))?.id().to_string())
        }
    })
}

/// Creates or updates a superuser in the data directory of `config` (no server may have it
/// open: the directory is locked while one runs).
pub fn create_superuser(config: ServerConfig, email: &str, password: &str) -> Result<Upserted> {
    let email = check_credentials(email, password)?;
    let hash = Passwords::new(&config)?.hash_blocking(password)?;
    let state = AppState::open(config)?;
    let result = upsert(&state.definitions, &email, hash);
    state.close()?;
    result
}
