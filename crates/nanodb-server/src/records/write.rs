//! The stored fields of a record to create or update, from a request body: each key applied
//! with its modifier (`modifiers`), each field cast and checked (`values`), the auth system
//! fields handled by who may change them, and every failure collected per field with
//! PocketBase's codes, so one 400 lists them all.
//!
//! Who may do what: hidden fields are set only by superusers (silently dropped otherwise, as
//! in PocketBase); on an auth collection `verified` and another record's `email` only by
//! superusers and managers (`manageRule`); `tokenKey` by nobody (a new one comes with every
//! password change); `password` arrives already hashed (hashing is slow, so callers do it
//! before the write transaction).
//!
//! Thread safety: pure functions; relation targets are read through the caller's
//! transaction.

use super::modifiers::{apply, split_key, Modifier};
use super::password_input::body_text;
use super::values::{check, email_domain, items};
use crate::error::{Error, FieldError, FieldErrors};
use crate::schema::defaults::RECORD_ID_LEN;
use crate::schema::field::FieldKind;
use crate::schema::{index_sql, CollectionDef, DefinitionsSnapshot};
use nanodb::{Map, Transaction, Value};
use serde_json::{Map as JsonMap, Value as Json};

/// PocketBase's message for a failed create.
pub const MESSAGE_CREATE_FAILED: &str = "Failed to create record.";
/// PocketBase's message for a failed update.
pub const MESSAGE_UPDATE_FAILED: &str = "Failed to update record.";
/// Length of a generated `tokenKey`.
pub const TOKEN_KEY_LEN: usize = 50;

/// What the writer may change beyond a plain owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteAccess {
    /// A superuser: hidden fields too.
    pub superuser: bool,
    /// A superuser or a record matching the collection's `manageRule`: `verified`, `email`,
    /// a password without the old one.
    pub manager: bool,
}

/// The stored fields (without `id`, `created`, `updated`) of `current` (`None`: a new
/// record) changed by `body`; `password_hash` is the new password's hash, if one was given.
pub fn build(
    def: &CollectionDef,
    current: Option<&Map>,
    body: &JsonMap<String, Json>,
    access: WriteAccess,
    password_hash: Option<String>,
) -> Result<Map, Error> {
    let message = if current.is_some() { MESSAGE_UPDATE_FAILED } else { MESSAGE_CREATE_FAILED };
    let mut fields = current.cloned().unwrap_or_default();
    for reserved in ["id", "created", "updated"] {
        fields.remove(reserved);
    }
    let mut errors = FieldErrors::new();
    let mut modified: Vec<(&str, Modifier, &Json)> = body
        .iter()
        .map(|(key, json)| {
            let (name, modifier) = split_key(key);
            (name, modifier, json)
        })
        .collect();
    // Plain values first, then modifiers, each in body order.
    modified.sort_by_key(|(_, modifier, _)| *modifier != Modifier::Set);
    for (name, modifier, json) in modified {
        let Some(field) = def.field(name) else { continue };
        if field.system || matches!(field.kind, FieldKind::Autodate { .. }) {
            continue;
        }
        if field.hidden && !access.superuser {
            continue;
        }
        match apply(field, fields.get(name), modifier, json) {
            Ok(Some(value)) => {
                fields.insert(name.to_string(), value);
            }
            Ok(None) => {
                fields.remove(name);
            }
            Err(error) => {
                errors.insert(name.to_string(), error);
            }
        }
    }
    if def.is_auth() {
        auth_fields(&mut fields, current, body, access, password_hash, &mut errors);
    }
    for field in def.data_fields() {
        if errors.contains_key(&field.name) {
            continue;
        }
        if let Err(error) = check(field, fields.get(&field.name)) {
            errors.insert(field.name.clone(), error);
        }
    }
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(Error::Validation { message: message.to_string(), fields: errors })
    }
}

fn auth_fields(
    fields: &mut Map,
    current: Option<&Map>,
    body: &JsonMap<String, Json>,
    access: WriteAccess,
    password_hash: Option<String>,
    errors: &mut FieldErrors,
) {
    let flag =
        |key: &str| body.get(key).map(|json| matches!(json, Json::Bool(true)) || json == "true");
    if let Some(visible) = flag("emailVisibility") {
        fields.insert("emailVisibility".into(), Value::Bool(visible));
    }
    if let Some(verified) = flag("verified").filter(|_| access.manager) {
        fields.insert("verified".into(), Value::Bool(verified));
    }
    for name in ["emailVisibility", "verified"] {
        fields.entry(name.to_string()).or_insert(Value::Bool(false));
    }
    if body.contains_key("email") {
        let email = body_text(body, "email").trim().to_ascii_lowercase();
        let old = current.and_then(|map| map.get("email")).and_then(Value::as_str);
        if current.is_some() && old != Some(email.as_str()) && !access.manager {
            let message = "Only managers can change the email here; use the email change flow.";
            errors.insert(
                "email".into(),
                FieldError::new("validation_email_change_not_allowed", message),
            );
        } else if email.is_empty() {
            fields.remove("email");
        } else {
            fields.insert("email".into(), Value::String(email));
        }
    }
    match fields.get("email").and_then(Value::as_str) {
        None if !errors.contains_key("email") => {
            errors
                .insert("email".into(), FieldError::new("validation_required", "Cannot be blank."));
        }
        Some(email) if email_domain(email).is_none() => {
            errors.insert(
                "email".into(),
                FieldError::new("validation_is_email", "Must be a valid email address."),
            );
        }
        _ => {}
    }
    match password_hash {
        Some(hash) => {
            fields.insert("password".into(), Value::String(hash));
            match nanodb::id::generate(TOKEN_KEY_LEN) {
                Ok(token_key) => {
                    fields.insert("tokenKey".into(), Value::String(token_key));
                }
                Err(error) => {
                    errors.insert(
                        "tokenKey".into(),
                        FieldError::new("validation_invalid_value", error.to_string()),
                    );
                }
            }
        }
        None if current.is_none() && !errors.contains_key("password") => {
            errors.insert(
                "password".into(),
                FieldError::new("validation_required", "Cannot be blank."),
            );
        }
        None => {}
    }
}

/// The id a create body asks for, checked (`None`: generate one).
pub fn requested_id(body: &JsonMap<String, Json>) -> Result<Option<String>, Error> {
    let fail = |code, message: &str| {
        Error::invalid_field(MESSAGE_CREATE_FAILED, "id", FieldError::new(code, message))
    };
    let id = match body.get("id") {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::String(id)) if id.is_empty() => return Ok(None),
        Some(Json::String(id)) => id,
        Some(_) => return Err(fail("validation_invalid_value", "Must be text.")),
    };
    let length = id.chars().count();
    if length < RECORD_ID_LEN {
        let message = format!("Must be at least {RECORD_ID_LEN} character(s).");
        return Err(fail("validation_min_text_constraint", &message));
    }
    if length > RECORD_ID_LEN {
        let message = format!("Must be less than {RECORD_ID_LEN} character(s).");
        return Err(fail("validation_max_text_constraint", &message));
    }
    if !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(fail("validation_invalid_format", "Invalid value format."));
    }
    Ok(Some(id.clone()))
}

/// Checks that every relation value of `fields` names an existing record, reading through
/// `txn`; failures by field.
pub fn check_relations(
    def: &CollectionDef,
    fields: &Map,
    snapshot: &DefinitionsSnapshot,
    txn: &mut Transaction,
    database: &nanodb::Database,
    message: &str,
) -> Result<(), Error> {
    let mut errors = FieldErrors::new();
    for field in def.data_fields() {
        let FieldKind::Relation { collection_id, .. } = &field.kind else { continue };
        let Some(value) = fields.get(&field.name) else { continue };
        let target = snapshot.by_id(collection_id);
        let collection = match target {
            Some(target) => Some(database.open_collection(&target.id)?),
            None if *collection_id == def.id => Some(database.open_collection(&def.id)?),
            None => None,
        };
        let mut all_found = collection.is_some();
        if let Some(collection) = collection {
            for id in items(value) {
                if nanodb::names::check_document_id(id).is_err()
                    || txn.get(&collection, id)?.is_none()
                {
                    all_found = false;
                    break;
                }
            }
        }
        if !all_found {
            let message = "Failed to find all relation records with the provided ids.";
            errors.insert(
                field.name.clone(),
                FieldError::new("validation_missing_rel_records", message),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation { message: message.to_string(), fields: errors })
    }
}

/// The 400 for a unique index violation: `validation_not_unique` on the index's fields.
pub fn unique_violation(def: &CollectionDef, index: &str, message: &str) -> Error {
    let columns = def
        .indexes
        .iter()
        .filter_map(|sql| index_sql::parse(sql).ok())
        .find(|parsed| parsed.name == index)
        .map(|parsed| parsed.columns.into_iter().map(|(column, _)| column).collect())
        .unwrap_or_else(|| vec!["id".to_string()]);
    let fields = columns
        .into_iter()
        .map(|column| (column, FieldError::new("validation_not_unique", "Value must be unique.")))
        .collect();
    Error::Validation { message: message.to_string(), fields }
}
