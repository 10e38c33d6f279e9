//! One record's create, update or delete inside a caller's nanodb transaction: the write
//! logic the record routes (one write per transaction) and the batch (many writes in one
//! transaction, across collections) share, so both check rules alike.
//!
//! Each function runs every check of its route against the transaction's view: the rule's
//! lock (403), the record and the rule on it (update, delete: 404 if either fails; create:
//! 400 if the new record does not match), the body (`records::write::build`, per-field
//! 400s), relation targets, then the write. Password hashing is slow, so it happens before
//! the transaction (`PasswordChange`); the transaction only checks that the stored hash the
//! old password was verified against is still the record's.
//!
//! Results are two-level: the outer `nanodb::Result` carries what ends the transaction
//! without an answer for this write (a conflict, which the caller retries, or a storage
//! failure), the inner `Result` the write's own answer (a record, or a 4xx). `transact`
//! runs a body over a transaction and commits only when both levels succeed.
//!
//! Thread safety: called on a blocking thread, with the caller's `&mut Transaction`, under
//! the definitions' write gate (taken before the `Target` is made, held to the commit).
//!
//! A delete of a `_superusers` record is refused (400) if it is the last one.
//!
//! Invariant: a write that answers an error has written nothing the caller will commit
//! (`transact` drops the transaction on any inner error).

use super::Call;
use crate::auth::requester::Requester;
use crate::error::{Error, FieldError, Result};
use crate::records::write::{
    build, check_relations, requested_id, unique_violation, WriteAccess, MESSAGE_CREATE_FAILED,
    MESSAGE_UPDATE_FAILED,
};
use crate::rules::context::variables;
use crate::rules::{access, access_or_nothing};
use crate::schema::defaults::{RECORD_ID_LEN, SUPERUSERS_ID};
use crate::schema::CollectionDef;
use crate::state::AppState;
use nanodb::{Collection, Database, Date, Document, Patch, Transaction, Value, WRITE_RETRIES_MAX};
use serde_json::Value as Json;
use std::time::Duration;

/// The answer to a delete of the last superuser (it would lock everyone out).
pub const MESSAGE_LAST_SUPERUSER: &str = "The last superuser cannot be deleted.";

/// The collection a write goes to: its definition and its nanodb collection (opened before
/// the transaction).
#[derive(Debug, Clone)]
pub struct Target {
    /// The definition.
    pub def: std::sync::Arc<CollectionDef>,
    /// The records.
    pub records: Collection,
}

impl Target {
    /// The target of collection `id` with its definition now: call it under the
    /// definitions' write gate (`Definitions::write_gate`), held to the commit, so the
    /// definition cannot change before the write commits (404 if the collection is gone).
    pub fn of(state: &AppState, id: &str) -> Result<Target> {
        let def = state.definitions.writable(id)?;
        let records = state.definitions.records(&def)?;
        Ok(Target { def, records })
    }
}

/// A new password for an update, hashed before the transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordChange {
    /// The new password's hash (`None`: the body sets no password).
    pub hash: Option<String>,
    /// The stored hash the body's `oldPassword` was verified against, if it was.
    pub verified_against: Option<String>,
}

/// Runs `body` over a fresh transaction and commits it if it answers `Ok(Ok(_))`; an inner
/// error drops the transaction (nothing written) and is returned; a conflict (from the body
/// or the commit) runs it again from a fresh snapshot, at most `WRITE_RETRIES_MAX` more
/// times.
pub fn transact<T>(
    database: &Database,
    mut body: impl FnMut(&mut Transaction) -> nanodb::Result<Result<T>>,
) -> Result<T> {
    let mut attempt = 0;
    loop {
        let mut txn = database.transaction()?;
        let outcome = match body(&mut txn) {
            Ok(Ok(value)) => txn.commit().map(|()| Ok(value)),
            Ok(Err(error)) => return Err(error),
            Err(error) => Err(error),
        };
        match outcome {
            Ok(answer) => return answer,
            Err(nanodb::Error::Conflict) if attempt < WRITE_RETRIES_MAX => {
                attempt += 1;
                std::thread::sleep(Duration::from_micros(50 << attempt.min(6)));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Creates a record of `def` from `call`'s body in `txn`.
pub fn create_in(
    state: &AppState,
    txn: &mut Transaction,
    target: &Target,
    call: &Call,
    requester: &Requester,
    password_hash: Option<String>,
) -> nanodb::Result<Result<Document>> {
    let (def, records) = (&*target.def, &target.records);
    let facts = call.facts(requester);
    let rule = match access(&def.rules.create, requester, &variables(&facts, def, None)) {
        Ok(rule) => rule,
        Err(error) => return Ok(Err(error)),
    };
    let superuser = requester.is_superuser();
    let write_access = WriteAccess { superuser, manager: superuser };
    let mut fields = match build(def, None, &call.body, write_access, password_hash) {
        Ok(fields) => fields,
        Err(error) => return Ok(Err(error)),
    };
    let id = match requested_id(&call.body) {
        Ok(Some(id)) => id,
        Ok(None) => nanodb::id::generate(RECORD_ID_LEN)?,
        Err(error) => return Ok(Err(error)),
    };
    let mut would_be = fields.clone();
    would_be.insert("id".into(), Value::String(id.clone()));
    would_be.insert("created".into(), Value::Date(Date::now()));
    would_be.insert("updated".into(), Value::Date(Date::now()));
    if !rule.allows(&would_be) {
        return Ok(Err(Error::bad_request(MESSAGE_CREATE_FAILED)));
    }
    fields.insert("id".into(), Value::String(id));
    let snapshot = state.definitions.snapshot();
    let database = state.database();
    match check_relations(def, &fields, &snapshot, txn, database, MESSAGE_CREATE_FAILED) {
        Ok(()) => {}
        Err(Error::Storage(error)) => return Err(error),
        Err(error) => return Ok(Err(error)),
    }
    written(def, txn.insert(records, Value::Object(fields)), MESSAGE_CREATE_FAILED)
}

/// Updates record `id` of `def` with `call`'s body in `txn`.
pub fn update_in(
    state: &AppState,
    txn: &mut Transaction,
    target: &Target,
    call: &Call,
    requester: &Requester,
    id: &str,
    password: &PasswordChange,
) -> nanodb::Result<Result<Document>> {
    let (def, records) = (&*target.def, &target.records);
    if def.rules.update.is_none() && !requester.is_superuser() {
        return Ok(Err(Error::superusers_only()));
    }
    if let Some(Json::String(body_id)) = call.body.get("id") {
        if body_id != id {
            let error = FieldError::new(
                "validation_pk_change",
                "The record primary key cannot be changed.",
            );
            return Ok(Err(Error::invalid_field(MESSAGE_UPDATE_FAILED, "id", error)));
        }
    }
    if nanodb::names::check_document_id(id).is_err() {
        return Ok(Err(Error::not_found()));
    }
    let Some(current) = txn.get(records, id)? else { return Ok(Err(Error::not_found())) };
    let facts = call.facts(requester);
    let variables = variables(&facts, def, Some(current.fields()));
    let rule = match access(&def.rules.update, requester, &variables) {
        Ok(rule) => rule,
        Err(error) => return Ok(Err(error)),
    };
    if !rule.allows(current.fields()) {
        return Ok(Err(Error::not_found()));
    }
    let manager = match is_manager(def, requester, &variables, &current) {
        Ok(manager) => manager,
        Err(error) => return Ok(Err(error)),
    };
    let hash_now = current.get("password").and_then(Value::as_str);
    if password.hash.is_some() && !manager && password.verified_against.as_deref() != hash_now {
        // No old password, a wrong one, or the password changed since it was checked.
        return Ok(Err(invalid_old_password()));
    }
    let write_access = WriteAccess { superuser: requester.is_superuser(), manager };
    let fields =
        match build(def, Some(current.fields()), &call.body, write_access, password.hash.clone()) {
            Ok(fields) => fields,
            Err(error) => return Ok(Err(error)),
        };
    let snapshot = state.definitions.snapshot();
    match check_relations(def, &fields, &snapshot, txn, state.database(), MESSAGE_UPDATE_FAILED) {
        Ok(()) => {}
        Err(Error::Storage(error)) => return Err(error),
        Err(error) => return Ok(Err(error)),
    }
    written(def, txn.replace(records, id, Value::Object(fields)), MESSAGE_UPDATE_FAILED)
}

/// Deletes record `id` of `def` in `txn`; its last version.
pub fn delete_in(
    txn: &mut Transaction,
    target: &Target,
    call: &Call,
    requester: &Requester,
    id: &str,
) -> nanodb::Result<Result<Document>> {
    let (def, records) = (&*target.def, &target.records);
    if def.rules.delete.is_none() && !requester.is_superuser() {
        return Ok(Err(Error::superusers_only()));
    }
    if nanodb::names::check_document_id(id).is_err() {
        return Ok(Err(Error::not_found()));
    }
    let Some(current) = txn.get(records, id)? else { return Ok(Err(Error::not_found())) };
    let facts = call.facts(requester);
    let rule =
        match access(&def.rules.delete, requester, &variables(&facts, def, Some(current.fields())))
        {
            Ok(rule) => rule,
            Err(error) => return Ok(Err(error)),
        };
    if !rule.allows(current.fields()) {
        return Ok(Err(Error::not_found()));
    }
    if def.id == SUPERUSERS_ID {
        if let Err(error) = keep_another_superuser(txn, records, id)? {
            return Ok(Err(error));
        }
    }
    txn.delete(records, id)?;
    Ok(Ok(current))
}

/// Before superuser `id` is deleted in `txn`: 400 unless another superuser exists in the
/// transaction's view. That one is rewritten unchanged in `txn`, so two concurrent deletes
/// that each count on the other's record conflict, and the retried one finds none left.
fn keep_another_superuser(
    txn: &mut Transaction,
    records: &Collection,
    id: &str,
) -> nanodb::Result<Result<()>> {
    for document in records.documents()? {
        let other = document?;
        if other.id() == id || txn.get(records, other.id())?.is_none() {
            continue;
        }
        txn.patch(records, other.id(), &Patch::new())?;
        return Ok(Ok(()));
    }
    Ok(Err(Error::bad_request(MESSAGE_LAST_SUPERUSER)))
}

/// True if `requester` manages `record` of `def` (a superuser, or an auth collection's
/// `manageRule` matches it).
pub fn is_manager(
    def: &CollectionDef,
    requester: &Requester,
    variables: &nanodb::Map,
    record: &Document,
) -> Result<bool> {
    if requester.is_superuser() {
        return Ok(true);
    }
    if !def.is_auth() {
        return Ok(false);
    }
    Ok(access_or_nothing(&def.auth.manage_rule, requester, variables)?.allows(record.fields()))
}

/// The 400 of a password change without the right old password.
pub fn invalid_old_password() -> Error {
    let error =
        FieldError::new("validation_invalid_old_password", "Missing or invalid old password.");
    Error::invalid_field(MESSAGE_UPDATE_FAILED, "oldPassword", error)
}

/// A write's result: conflicts and storage failures stay outer (the transaction ends), a
/// unique violation, a taken id or an invalid document become this write's 400.
fn written(
    def: &CollectionDef,
    result: nanodb::Result<Document>,
    message: &str,
) -> nanodb::Result<Result<Document>> {
    match result {
        Ok(document) => Ok(Ok(document)),
        Err(nanodb::Error::UniqueViolation { index, .. }) => {
            Ok(Err(unique_violation(def, &index, message)))
        }
        Err(nanodb::Error::AlreadyExists { .. }) => {
            let error = FieldError::new("validation_not_unique", "Value must be unique.");
            Ok(Err(Error::invalid_field(message, "id", error)))
        }
        Err(nanodb::Error::InvalidDocument { detail }) => {
            Ok(Err(Error::BadRequest { message: format!("{message} ({detail})"), data: None }))
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanodb::{NanoDb, NanoDbOptions};

    #[test]
    fn transact_commits_only_success_and_retries_conflicts() {
        let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
        let database = runtime.database("test").unwrap();
        let records = database.collection("records").unwrap();
        let value = |id: &str| Value::from(serde_json::json!({"id": id}));

        let refused: Result<()> = transact(&database, |txn| {
            txn.insert(&records, value("aaaaaaaaaaaaaaa"))?;
            Ok(Err(Error::bad_request("no")))
        });
        assert_eq!(refused.unwrap_err().status().as_u16(), 400);
        assert!(records.get("aaaaaaaaaaaaaaa").unwrap().is_none(), "an inner error writes nothing");

        let mut attempts = 0;
        let done = transact(&database, |txn| {
            attempts += 1;
            txn.insert(&records, value(&format!("attempt{attempts:08}")))?;
            if attempts == 1 {
                return Err(nanodb::Error::Conflict);
            }
            Ok(Ok(attempts))
        })
        .unwrap();
        assert_eq!(done, 2, "a conflict runs the body again");
        assert!(records.get("attempt00000001").unwrap().is_none(), "the lost attempt is dropped");
        assert!(records.get("attempt00000002").unwrap().is_some());

        let mut tries = 0;
        let gave_up: Result<()> = transact(&database, |_| {
            tries += 1;
            Err(nanodb::Error::Conflict)
        });
        assert!(gave_up.is_err());
        assert_eq!(tries, WRITE_RETRIES_MAX + 1, "at most WRITE_RETRIES_MAX more runs");
    }
}
