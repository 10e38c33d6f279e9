//! `POST /api/collections/{c}/records` (create, 200), `PATCH .../records/{id}` (update,
//! 200) and `DELETE .../records/{id}` (204).
//!
//! Each runs in up to three steps: on a blocking thread, who is asking, the rule's lock
//! (403) and, for auth records, the password fields (cheap checks first); then, if a
//! password is set, the slow hashing under the hashing cap (and the old password's check);
//! then one nanodb transaction that reads the record, checks the rule against it (update,
//! delete: 404 if it does not match; create: 400 if the new record does not match), checks
//! relation targets, and writes. A unique index violation is a 400 naming its fields.
//!
//! Thread safety: the transaction makes the rule check and the write one atomic step (a
//! concurrent change of the record makes it run again from a fresh snapshot).

use super::records_read::render;
use super::{collection, Call};
use crate::auth::requester::Requester;
use crate::error::{Error, FieldError, Result};
use crate::http::response::{no_content, ok};
use crate::records::password_input::{new_password, old_password};
use crate::records::write::{
    build, check_relations, requested_id, unique_violation, WriteAccess, MESSAGE_CREATE_FAILED,
    MESSAGE_UPDATE_FAILED,
};
use crate::rules::context::variables;
use crate::rules::{access, access_or_nothing, Access};
use crate::schema::defaults::RECORD_ID_LEN;
use crate::schema::CollectionDef;
use crate::state::{blocking, AppState};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use nanodb::{Date, Document, Value};
use serde_json::Value as Json;
use std::sync::Arc;

/// `POST /api/collections/{c}/records`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    request: Request,
) -> Result<Response> {
    let call = Arc::new(Call::read(&state, request).await?);
    let first = Arc::clone(&call);
    let (requester, def, password) = blocking(&state, move |state| {
        let requester = first.requester(state)?;
        let def = collection(state, &key)?;
        if def.rules.create.is_none() && !requester.is_superuser() {
            return Err(Error::superusers_only());
        }
        let password = match def.is_auth() {
            true => new_password(&def, &first.body, MESSAGE_CREATE_FAILED)?,
            false => None,
        };
        Ok((requester, def, password))
    })
    .await?;
    let password_hash = match password {
        Some(password) => Some(state.passwords.hash(password).await?),
        None => None,
    };
    blocking(&state, move |state| create_record(state, &call, &requester, &def, password_hash))
        .await
        .map(|json| ok(&json))
}

fn create_record(
    state: &AppState,
    call: &Call,
    requester: &Requester,
    def: &CollectionDef,
    password_hash: Option<String>,
) -> Result<Json> {
    let facts = call.facts(requester);
    let rule = access(&def.rules.create, requester, &variables(&facts, def, None))?;
    let superuser = requester.is_superuser();
    let write_access = WriteAccess { superuser, manager: superuser };
    let mut fields = build(def, None, &call.body, write_access, password_hash)?;
    let id = match requested_id(&call.body)? {
        Some(id) => id,
        None => nanodb::id::generate(RECORD_ID_LEN)?,
    };
    let mut would_be = fields.clone();
    would_be.insert("id".into(), Value::String(id.clone()));
    would_be.insert("created".into(), Value::Date(Date::now()));
    would_be.insert("updated".into(), Value::Date(Date::now()));
    if !rule.allows(&would_be) {
        return Err(Error::bad_request(MESSAGE_CREATE_FAILED));
    }
    fields.insert("id".into(), Value::String(id));
    let records = state.definitions.records(def)?;
    let snapshot = state.definitions.snapshot();
    let database = state.database();
    let written = database.run_transaction(|txn| {
        if let Err(error) =
            check_relations(def, &fields, &snapshot, txn, database, MESSAGE_CREATE_FAILED)
        {
            return Ok(Err(error));
        }
        Ok(Ok(txn.insert(&records, Value::Object(fields.clone()))?))
    });
    let document = written_or_error(def, written, MESSAGE_CREATE_FAILED)?;
    render_one(state, def, document, call, requester)
}

/// `PATCH /api/collections/{c}/records/{id}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Path((key, id)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    let call = Arc::new(Call::read(&state, request).await?);
    let first = Arc::clone(&call);
    let first_id = id.clone();
    let plan = blocking(&state, move |state| plan_update(state, &key, &first_id, &first)).await?;
    let password_hash = match &plan.new_password {
        None => None,
        Some(password) => {
            if !plan.manager {
                let old = old_password(&call.body).unwrap_or_default();
                let matched = state.passwords.verify(old, plan.stored_hash.clone()).await?;
                if !matched {
                    return Err(invalid_old_password());
                }
            }
            Some(state.passwords.hash(password.clone()).await?)
        }
    };
    blocking(&state, move |state| update_record(state, &call, &plan, &id, password_hash))
        .await
        .map(|json| ok(&json))
}

/// What the first step of an update found.
struct UpdatePlan {
    requester: Requester,
    def: Arc<CollectionDef>,
    manager: bool,
    new_password: Option<String>,
    stored_hash: Option<String>,
}

fn invalid_old_password() -> Error {
    let error =
        FieldError::new("validation_invalid_old_password", "Missing or invalid old password.");
    Error::invalid_field(MESSAGE_UPDATE_FAILED, "oldPassword", error)
}

/// The record of `def` with `id` if `rule` lets the caller at it; else 404.
fn allowed_record(records: &nanodb::Collection, id: &str, rule: &Access) -> Result<Document> {
    if nanodb::names::check_document_id(id).is_err() {
        return Err(Error::not_found());
    }
    records.get(id)?.filter(|document| rule.allows(document.fields())).ok_or_else(Error::not_found)
}

fn plan_update(state: &AppState, key: &str, id: &str, call: &Call) -> Result<UpdatePlan> {
    let requester = call.requester(state)?;
    let def = collection(state, key)?;
    let records = state.definitions.records(&def)?;
    let facts = call.facts(&requester);
    let existing = records.get(id).ok().flatten();
    let variables = variables(&facts, &def, existing.as_ref().map(Document::fields));
    let rule = access(&def.rules.update, &requester, &variables)?;
    let document = allowed_record(&records, id, &rule)?;
    let manager = requester.is_superuser()
        || (def.is_auth()
            && access_or_nothing(&def.auth.manage_rule, &requester, &variables)?
                .allows(document.fields()));
    let new_password = match def.is_auth() {
        true => new_password(&def, &call.body, MESSAGE_UPDATE_FAILED)?,
        false => None,
    };
    let stored_hash = document.get("password").and_then(Value::as_str).map(str::to_string);
    Ok(UpdatePlan { requester, def, manager, new_password, stored_hash })
}

fn update_record(
    state: &AppState,
    call: &Call,
    plan: &UpdatePlan,
    id: &str,
    password_hash: Option<String>,
) -> Result<Json> {
    let def = &plan.def;
    if let Some(Json::String(body_id)) = call.body.get("id") {
        if body_id != id {
            let error = FieldError::new(
                "validation_pk_change",
                "The record primary key cannot be changed.",
            );
            return Err(Error::invalid_field(MESSAGE_UPDATE_FAILED, "id", error));
        }
    }
    let records = state.definitions.records(def)?;
    let snapshot = state.definitions.snapshot();
    let database = state.database();
    let facts = call.facts(&plan.requester);
    let write_access =
        WriteAccess { superuser: plan.requester.is_superuser(), manager: plan.manager };
    let written = database.run_transaction(|txn| {
        let Some(current) = txn.get(&records, id)? else { return Ok(Err(Error::not_found())) };
        let variables = variables(&facts, def, Some(current.fields()));
        let rule = match access(&def.rules.update, &plan.requester, &variables) {
            Ok(rule) => rule,
            Err(error) => return Ok(Err(error)),
        };
        if !rule.allows(current.fields()) {
            return Ok(Err(Error::not_found()));
        }
        let hash_now = current.get("password").and_then(Value::as_str);
        if password_hash.is_some() && hash_now != plan.stored_hash.as_deref() {
            return Ok(Err(invalid_old_password())); // changed since it was checked
        }
        let fields = match build(
            def,
            Some(current.fields()),
            &call.body,
            write_access,
            password_hash.clone(),
        ) {
            Ok(fields) => fields,
            Err(error) => return Ok(Err(error)),
        };
        if let Err(error) =
            check_relations(def, &fields, &snapshot, txn, database, MESSAGE_UPDATE_FAILED)
        {
            return Ok(Err(error));
        }
        Ok(Ok(txn.replace(&records, id, Value::Object(fields))?))
    });
    let document = written_or_error(def, written, MESSAGE_UPDATE_FAILED)?;
    render_one(state, def, document, call, &plan.requester)
}

/// `DELETE /api/collections/{c}/records/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((key, id)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    blocking(&state, move |state| delete_record(state, &key, &id, &call)).await?;
    Ok(no_content())
}

fn delete_record(state: &AppState, key: &str, id: &str, call: &Call) -> Result<()> {
    let requester = call.requester(state)?;
    let def = collection(state, key)?;
    let facts = call.facts(&requester);
    if def.rules.delete.is_none() && !requester.is_superuser() {
        return Err(Error::superusers_only());
    }
    if nanodb::names::check_document_id(id).is_err() {
        return Err(Error::not_found());
    }
    let records = state.definitions.records(&def)?;
    let deleted = state.database().run_transaction(|txn| {
        let Some(current) = txn.get(&records, id)? else { return Ok(Err(Error::not_found())) };
        let rule = match access(
            &def.rules.delete,
            &requester,
            &variables(&facts, &def, Some(current.fields())),
        ) {
            Ok(rule) => rule,
            Err(error) => return Ok(Err(error)),
        };
        if !rule.allows(current.fields()) {
            return Ok(Err(Error::not_found()));
        }
        txn.delete(&records, id)?;
        Ok(Ok(()))
    });
    deleted?
}

/// The written record, or the write's error with unique violations and taken ids as
/// PocketBase's field errors.
fn written_or_error(
    def: &CollectionDef,
    written: nanodb::Result<Result<Document>>,
    message: &str,
) -> Result<Document> {
    match written {
        Ok(outcome) => outcome,
        Err(nanodb::Error::UniqueViolation { index, .. }) => {
            Err(unique_violation(def, &index, message))
        }
        Err(nanodb::Error::AlreadyExists { .. }) => {
            let error = FieldError::new("validation_not_unique", "Value must be unique.");
            Err(Error::invalid_field(message, "id", error))
        }
        Err(nanodb::Error::InvalidDocument { detail }) => {
            Err(Error::BadRequest { message: format!("{message} ({detail})"), data: None })
        }
        Err(error) => Err(error.into()),
    }
}

fn render_one(
    state: &AppState,
    def: &CollectionDef,
    document: Document,
    call: &Call,
    requester: &Requester,
) -> Result<Json> {
    let facts = call.facts(requester);
    let mut items = render(state, def, std::slice::from_ref(&document), call, &facts)?;
    Ok(items.pop().unwrap_or(Json::Null))
}
