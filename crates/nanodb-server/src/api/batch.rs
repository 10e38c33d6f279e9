//! `POST /api/batch`: several record writes, across collections, in ONE nanodb transaction:
//! all of them commit, or none.
//!
//! Steps: read the body under the body limit (413; JSON, or multipart with `@jsonPayload`),
//! parse its requests (`batch_items`: 400 "Invalid batch request data." for a malformed
//! list, at most `ServerConfig::batch_requests_max`); on a blocking thread resolve the
//! requester (the outer `Authorization` serves every request; an item's own is ignored),
//! each item's collection, and the stored password hash of auth records a request changes
//! the password of; then hash new passwords (and verify old ones) under the hashing cap,
//! outside the transaction; then run every request in order inside one transaction with
//! `api::writes`, the same checks as the single routes (rules included, with
//! `@request.context` = `batch`). The first request that fails drops the transaction and
//! answers 400 "Batch transaction failed." with its index:
//! `data.requests.<index> = {code: "batch_request_failed", message, response: <its error>}`.
//! A transaction running past `ServerConfig::batch_timeout` (password hashing, before it,
//! does not count) fails the same way at the request it reached. On success: 200 `[{status, body}, ...]` in request order (200 with the record,
//! rendered with the request's own `expand` and `fields`; 204 with `null` for deletes).
//!
//! Thread safety: the transaction runs on one blocking thread; a conflict with a concurrent
//! commit runs the whole batch again from a fresh snapshot (`writes::transact`).
//!
//! Invariant: a failed batch writes nothing; the change feed sees a successful batch as one
//! commit.

use super::batch_items::{self, Action, BatchItem, Parsed};
use super::records_read::render;
use super::writes::{create_in, delete_in, transact, update_in, PasswordChange, Target};
use super::{Call, MESSAGE_MISSING_COLLECTION};
use crate::auth::requester::Requester;
use crate::error::{Error, Result};
use crate::http::response::ok;
use crate::records::expand::ExpandTree;
use crate::records::password_input::{new_password, old_password};
use crate::records::picker::Picker;
use crate::records::write::{MESSAGE_CREATE_FAILED, MESSAGE_UPDATE_FAILED};
use crate::rules::context::CONTEXT_BATCH;
use crate::state::{blocking, AppState};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use nanodb::{Document, Value};
use serde_json::{json, Map as JsonMap, Value as Json};
use std::sync::Arc;
use std::time::Instant;

/// PocketBase's message for a batch whose transaction failed.
pub const MESSAGE_BATCH_FAILED: &str = "Batch transaction failed.";
/// PocketBase's message for the request that made it fail.
pub const MESSAGE_REQUEST_FAILED: &str = "Batch request failed.";
/// The answer to a request whose method and url name no batch action.
pub const MESSAGE_UNKNOWN_ACTION: &str = "Missing or invalid batch request action.";

/// `POST /api/batch`.
pub async fn batch(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let outer = Call::read(&state, request).await?;
    let parsed = batch_items::parse(&outer.body, state.config.batch_requests_max)?;
    let mut steps = blocking(&state, move |state| plan(state, &outer, parsed)).await?;
    for step in &mut steps {
        if let Ok(prepared) = &mut step.prepared {
            if let Err(error) = hash_passwords(&state, prepared).await {
                if matches!(error, Error::TooManyRequests(_)) {
                    return Err(error);
                }
                step.prepared = Err(error);
            }
        }
    }
    blocking(&state, move |state| {
        let deadline = Instant::now() + state.config.batch_timeout;
        run(state, &steps, deadline)
    })
    .await
    .map(|json| ok(&json))
}

/// One request of the batch, ready to run (or already failed, to report at its index).
struct Step {
    prepared: Result<Prepared>,
}

struct Prepared {
    action: Action,
    target: Target,
    id: Option<String>,
    call: Call,
    requester: Requester,
    /// The new password (checked), to hash before the transaction.
    new_password: Option<String>,
    /// The record's stored password hash before the batch (to check `oldPassword`).
    stored_hash: Option<String>,
    password: PasswordChange,
}

/// Resolves the requester, each item's collection and call, and what its passwords need.
fn plan(state: &AppState, outer: &Call, parsed: Vec<Parsed>) -> Result<Vec<Step>> {
    let requester = outer.requester(state)?;
    Ok(parsed
        .into_iter()
        .map(|parsed| Step { prepared: prepare(state, outer, &requester, parsed) })
        .collect())
}

fn prepare(
    state: &AppState,
    outer: &Call,
    requester: &Requester,
    parsed: Parsed,
) -> Result<Prepared> {
    let item = match parsed {
        Parsed::Item(item) => item,
        Parsed::Unknown { .. } => return Err(Error::bad_request(MESSAGE_UNKNOWN_ACTION)),
    };
    let BatchItem { action, collection, id, query, headers, body } = item;
    let def = state
        .definitions
        .snapshot()
        .find(&collection)
        .ok_or_else(|| Error::NotFound(MESSAGE_MISSING_COLLECTION.into()))?;
    let target = Target::of(state, &def.id)?;
    let mut call_headers = outer.headers.clone();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            call_headers.insert(name, value);
        }
    }
    let call = Call {
        method: action.method(),
        context: CONTEXT_BATCH,
        query,
        headers: call_headers,
        body,
        ip: outer.ip,
    };
    // Checked now, so a bad one fails the batch before anything commits.
    Picker::parse(call.query.get("fields"))?;
    ExpandTree::parse(call.query.get("expand"))?;
    let id = match action {
        Action::Upsert => call.body.get("id").and_then(Json::as_str).map(str::to_string),
        _ => id,
    };
    let mut prepared = Prepared {
        action,
        target,
        id,
        call,
        requester: requester.clone(),
        new_password: None,
        stored_hash: None,
        password: PasswordChange::default(),
    };
    let def = &prepared.target.def;
    let locked = |rule: &crate::schema::Rule| rule.is_none() && !requester.is_superuser();
    let may_hash = def.is_auth()
        && match action {
            Action::Create => !locked(&def.rules.create),
            Action::Update => !locked(&def.rules.update),
            Action::Upsert => !locked(&def.rules.create) || !locked(&def.rules.update),
            Action::Delete => false,
        };
    if may_hash {
        let message = match action {
            Action::Create => MESSAGE_CREATE_FAILED,
            _ => MESSAGE_UPDATE_FAILED,
        };
        prepared.new_password = new_password(def, &prepared.call.body, message)?;
        if prepared.new_password.is_some() && action != Action::Create {
            if let Some(id) =
                prepared.id.as_deref().filter(|id| nanodb::names::check_document_id(id).is_ok())
            {
                prepared.stored_hash = prepared.target.records.get(id)?.and_then(|document| {
                    document.get("password").and_then(Value::as_str).map(str::to_string)
                });
            }
        }
    }
    Ok(prepared)
}

/// Hashes the new password, after verifying the old one if the body gives it.
async fn hash_passwords(state: &Arc<AppState>, prepared: &mut Prepared) -> Result<()> {
    let Some(password) = prepared.new_password.take() else { return Ok(()) };
    if let (Some(old), Some(stored)) = (old_password(&prepared.call.body), &prepared.stored_hash) {
        if state.passwords.verify(old, Some(stored.clone())).await? {
            prepared.password.verified_against = Some(stored.clone());
        }
    }
    prepared.password.hash = Some(state.passwords.hash(password).await?);
    Ok(())
}

/// Runs every step in one transaction; the answers, or the first failure with its index.
fn run(state: &AppState, steps: &[Step], deadline: Instant) -> Result<Json> {
    // The definitions now, under the write gate held to the commit (a collection change
    // may have run since the steps were prepared).
    let gate = state.definitions.write_gate();
    let targets = steps
        .iter()
        .map(|step| step.prepared.as_ref().ok().map(|p| Target::of(state, &p.target.def.id)))
        .map(Option::transpose)
        .collect::<Result<Vec<Option<Target>>>>()?;
    let done = transact(state.database(), |txn| {
        let mut done: Vec<Option<Document>> = Vec::with_capacity(steps.len());
        for (index, step) in steps.iter().enumerate() {
            if Instant::now() >= deadline {
                let timeout = state.config.batch_timeout;
                let error = Error::bad_request(format!(
                    "The batch took longer than its timeout of {} ms.",
                    timeout.as_millis()
                ));
                return Ok(Err(failed(index, &error)));
            }
            let prepared = match &step.prepared {
                Ok(prepared) => prepared,
                Err(error) if error.status().is_server_error() => {
                    return Ok(Err(Error::Internal(error.to_string())))
                }
                Err(error) => return Ok(Err(failed(index, error))),
            };
            let Prepared { action, id, call, requester, password, .. } = prepared;
            let Some(target) = &targets[index] else { continue };
            let outcome = match action {
                Action::Create => {
                    create_in(state, txn, target, call, requester, password.hash.clone())
                }
                Action::Update => update_in(
                    state,
                    txn,
                    target,
                    call,
                    requester,
                    id.as_deref().unwrap_or(""),
                    password,
                ),
                Action::Delete => {
                    delete_in(txn, target, call, requester, id.as_deref().unwrap_or(""))
                }
                Action::Upsert => {
                    let existing = match id
                        .as_deref()
                        .filter(|id| nanodb::names::check_document_id(id).is_ok())
                    {
                        Some(id) => txn.get(&target.records, id)?.map(|_| id),
                        None => None,
                    };
                    match existing {
                        Some(id) => update_in(state, txn, target, call, requester, id, password),
                        None => {
                            create_in(state, txn, target, call, requester, password.hash.clone())
                        }
                    }
                }
            };
            match outcome? {
                Ok(document) => done.push((*action != Action::Delete).then_some(document)),
                Err(error) => return Ok(Err(failed(index, &error))),
            }
        }
        Ok(Ok(done))
    })?;
    drop(gate);
    let mut answers = Vec::with_capacity(done.len());
    for (step, document) in steps.iter().zip(done) {
        let Ok(prepared) = &step.prepared else { continue };
        answers.push(match document {
            None => json!({"status": 204, "body": null}),
            Some(document) => {
                let facts = prepared.call.facts(&prepared.requester);
                let mut rendered = render(
                    state,
                    &prepared.target.def,
                    std::slice::from_ref(&document),
                    &prepared.call,
                    &facts,
                )?;
                json!({"status": 200, "body": rendered.pop().unwrap_or(Json::Null)})
            }
        });
    }
    Ok(Json::Array(answers))
}

/// The batch's 400 for request `index` failing with `error`.
fn failed(index: usize, error: &Error) -> Error {
    let detail = json!({
        "code": "batch_request_failed",
        "message": MESSAGE_REQUEST_FAILED,
        "response": error.body(),
    });
    let requests = JsonMap::from_iter([(index.to_string(), detail)]);
    let data = JsonMap::from_iter([("requests".to_string(), Json::Object(requests))]);
    Error::BadRequest { message: MESSAGE_BATCH_FAILED.into(), data: Some(data) }
}
