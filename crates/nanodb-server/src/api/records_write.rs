//! `POST /api/collections/{c}/records` (create, 200), `PATCH .../records/{id}` (update,
//! 200) and `DELETE .../records/{id}` (204).
//!
//! Each runs in up to three steps: on a blocking thread, who is asking, the rule's lock
//! (403) and, for auth records, the password fields (cheap checks first); then, if a
//! password is set, the slow hashing under the hashing cap (and the old password's check);
//! then one nanodb transaction (`writes`: shared with the batch) that reads the record,
//! checks the rule against it (update, delete: 404 if it does not match; create: 400 if the
//! new record does not match), checks relation targets, and writes. A unique index
//! violation is a 400 naming its fields.
//!
//! Thread safety: the transaction makes the rule check and the write one atomic step (a
//! concurrent change of the record makes it run again from a fresh snapshot); the
//! definitions' write gate, held from reading the definition to the commit, keeps a
//! collection change (and its field migration) from running meanwhile.

use super::records_read::render;
use super::writes::{
    create_in, delete_in, invalid_old_password, is_manager, transact, update_in, PasswordChange,
    Target,
};
use super::{collection, Call, Segments};
use crate::auth::requester::Requester;
use crate::error::{Error, Result};
use crate::http::response::{no_content, ok};
use crate::records::password_input::{new_password, old_password};
use crate::records::write::{MESSAGE_CREATE_FAILED, MESSAGE_UPDATE_FAILED};
use crate::rules::context::variables;
use crate::rules::{access, Access};
use crate::schema::CollectionDef;
use crate::state::{blocking, AppState};
use axum::extract::{Request, State};
use axum::response::Response;
use nanodb::{Document, Value};
use serde_json::Value as Json;
use std::sync::Arc;

/// `POST /api/collections/{c}/records`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
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
    blocking(&state, move |state| create_record(state, &call, &requester, def, password_hash))
        .await
        .map(|json| ok(&json))
}

fn create_record(
    state: &AppState,
    call: &Call,
    requester: &Requester,
    def: Arc<CollectionDef>,
    password_hash: Option<String>,
) -> Result<Json> {
    let gate = state.definitions.write_gate();
    let target = Target::of(state, &def.id)?;
    let document = transact(state.database(), |txn| {
        create_in(state, txn, &target, call, requester, password_hash.clone())
    })?;
    drop(gate);
    render_one(state, &target.def, document, call, requester)
}

/// `PATCH /api/collections/{c}/records/{id}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Segments((key, id)): Segments<(String, String)>,
    request: Request,
) -> Result<Response> {
    let call = Arc::new(Call::read(&state, request).await?);
    let first = Arc::clone(&call);
    let first_id = id.clone();
    let plan = blocking(&state, move |state| plan_update(state, &key, &first_id, &first)).await?;
    let password = match &plan.new_password {
        None => PasswordChange::default(),
        Some(password) => {
            let verified_against = match plan.manager {
                true => None,
                false => {
                    let old = old_password(&call.body).unwrap_or_default();
                    let matched = state.passwords.verify(old, plan.stored_hash.clone()).await?;
                    if !matched {
                        return Err(invalid_old_password());
                    }
                    plan.stored_hash.clone()
                }
            };
            let hash = Some(state.passwords.hash(password.clone()).await?);
            PasswordChange { hash, verified_against }
        }
    };
    blocking(&state, move |state| update_record(state, &call, plan, &id, password))
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

/// The record of `def` with `id` if `rule` lets the caller at it; else 404.
fn allowed_record(records: &nanodb::Collection, id: &str, rule: &Access) -> Result<Document> {
    if nanodb::names::check_document_id(id).is_err() {
        return Err(Error::not_found());
    }
    records.get(id)?.filter(|document| rule.allows(document.fields())).ok_or_else(Error::not_found)
}

/// The cheap checks of an update, before any password is hashed: the rule's lock (403),
/// the record and the rule on it (404), the new password's fields (400).
fn plan_update(state: &AppState, key: &str, id: &str, call: &Call) -> Result<UpdatePlan> {
    let requester = call.requester(state)?;
    let def = collection(state, key)?;
    let records = state.definitions.records(&def)?;
    let facts = call.facts(&requester);
    let existing = records.get(id).ok().flatten();
    let variables = variables(&facts, &def, existing.as_ref().map(Document::fields));
    let rule = access(&def.rules.update, &requester, &variables)?;
    let document = allowed_record(&records, id, &rule)?;
    let manager = is_manager(&def, &requester, &variables, &document)?;
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
    plan: UpdatePlan,
    id: &str,
    password: PasswordChange,
) -> Result<Json> {
    let gate = state.definitions.write_gate();
    let target = Target::of(state, &plan.def.id)?;
    let document = transact(state.database(), |txn| {
        update_in(state, txn, &target, call, &plan.requester, id, &password)
    })?;
    drop(gate);
    render_one(state, &target.def, document, call, &plan.requester)
}

/// `DELETE /api/collections/{c}/records/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Segments((key, id)): Segments<(String, String)>,
    request: Request,
) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    blocking(&state, move |state| delete_record(state, &key, &id, &call)).await?;
    Ok(no_content())
}

fn delete_record(state: &AppState, key: &str, id: &str, call: &Call) -> Result<()> {
    let requester = call.requester(state)?;
    let id_of_collection = collection(state, key)?.id.clone();
    let _gate = state.definitions.write_gate();
    let target = Target::of(state, &id_of_collection)?;
    transact(state.database(), |txn| delete_in(txn, &target, call, &requester, id))?;
    Ok(())
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
