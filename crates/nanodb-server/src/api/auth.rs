//! Auth endpoints: `POST /api/collections/{c}/auth-with-password` (`{identity, password}`),
//! its alias `POST /api/auth/login` (`{email, password, collection}`, collection `users` by
//! default), `POST /api/collections/{c}/auth-refresh`, and the first-run
//! `POST /api/install` (`{token, email, password}`).
//!
//! A login looks the identity up by email (lower case, through the unique email index),
//! then verifies the password under the hashing cap; an unknown email verifies against a
//! dummy hash, so both failures take as long and give the same 400 "Failed to
//! authenticate.". The collection's `authRule` is checked against the record last (403),
//! with `@request.context` = `password`; an auth-refresh checks it again (with the
//! request's own context), so a record that no longer passes it gets no new token.
//! Responses are `{record, token}` with the record's email shown.
//!
//! Thread safety: database work on blocking threads; hashing under `Passwords`' cap.

use super::{collection, Call, Segments};
use crate::auth::requester::{issue_token, AuthRecord, Requester};
use crate::auth::superusers::{any_exists, check_credentials, upsert};
use crate::auth::token::{decode_unverified, now_secs};
use crate::error::{Error, Result};
use crate::records::expand::{expand, ExpandTree};
use crate::records::export::{export, Email};
use crate::records::password_input::body_text;
use crate::records::picker::Picker;
use crate::rules::access_or_nothing;
use crate::rules::context::{variables, CONTEXT_PASSWORD};
use crate::schema::defaults::{SUPERUSERS_ID, USERS_NAME};
use crate::schema::CollectionDef;
use crate::state::{blocking, AppState};
use axum::extract::{Request, State};
use axum::response::Response;
use nanodb::query::Filter;
use nanodb::{Document, Value};
use serde_json::{Map as JsonMap, Value as Json};
use std::sync::Arc;

/// PocketBase's message for a failed login.
pub const MESSAGE_AUTH_FAILED: &str = "Failed to authenticate.";
/// The answer to an install request without the held install token.
pub const MESSAGE_INSTALL_REFUSED: &str = "Invalid or expired install token.";
/// PocketBase's message for a record that does not pass its collection's `authRule`.
pub const MESSAGE_AUTH_RULE_FAILED: &str =
    "The request doesn't satisfy the collection requirements to authenticate.";
/// PocketBase's message for an auth endpoint on a collection that is not an auth one.
pub const MESSAGE_NOT_AUTH_COLLECTION: &str = "Missing or invalid auth collection context.";

/// `POST /api/collections/{c}/auth-with-password`.
pub async fn auth_with_password(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
    request: Request,
) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    if let Some(field) = call.body.get("identityField").and_then(Json::as_str) {
        if field != "email" {
            return Err(Error::bad_request(format!(
                "{MESSAGE_AUTH_FAILED} (only email identities)"
            )));
        }
    }
    let identity = body_text(&call.body, "identity");
    let password = body_text(&call.body, "password");
    login_with(state, call, key, identity, password).await
}

/// `POST /api/auth/login`: `{email, password, collection}`.
pub async fn login(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    let text = |name: &str| body_text(&call.body, name);
    let key = Some(text("collection")).filter(|key| !key.is_empty()).unwrap_or(USERS_NAME.into());
    let (identity, password) = (text("email"), text("password"));
    login_with(state, call, key, identity, password).await
}

async fn login_with(
    state: Arc<AppState>,
    call: Call,
    key: String,
    identity: String,
    password: String,
) -> Result<Response> {
    let email = identity.trim().to_ascii_lowercase();
    let (def, found) = blocking(&state, move |state| {
        let def = auth_collection(state, &key)?;
        if !def.auth.password_enabled {
            return Err(Error::Forbidden(
                "The collection is not configured to allow password authentication.".into(),
            ));
        }
        let found = match Filter::eq("email", email.as_str()) {
            Ok(filter) if !email.is_empty() => state.definitions.records(&def)?.find_one(filter)?,
            _ => None,
        };
        Ok((def, found))
    })
    .await?;
    let hash = found.as_ref().and_then(|document| document.get("password")).and_then(Value::as_str);
    let matched = state.passwords.verify(password, hash.map(str::to_string)).await?;
    let document = match found {
        Some(document) if matched => document,
        _ => return Err(Error::bad_request(MESSAGE_AUTH_FAILED)),
    };
    blocking(&state, move |state| {
        let record = AuthRecord { collection: def, document };
        check_auth_rule(&record, &Call { context: CONTEXT_PASSWORD, ..call.clone() })?;
        auth_response(state, &record, issue_token(state, &record), &call)
    })
    .await
    .map(|json| crate::http::response::ok(&json))
}

/// `POST /api/collections/{c}/auth-refresh`: a new token for the caller's record.
pub async fn auth_refresh(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
    request: Request,
) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    blocking(&state, move |state| {
        let requester = call.requester(state)?;
        let def = auth_collection(state, &key)?;
        let Some(record) = requester.record().cloned() else {
            return Err(Error::Unauthorized(
                "The request requires valid record authorization token.".into(),
            ));
        };
        if record.collection.id != def.id {
            return Err(Error::Forbidden(format!(
                "The request requires auth record from {} collection.",
                def.name
            )));
        }
        // The record may no longer pass the authRule (changed since the login, or the
        // record changed): then it gets no new token, as in PocketBase.
        check_auth_rule(&record, &call)?;
        let old = crate::auth::requester::token_from(&call.headers).unwrap_or_default();
        let refreshable =
            decode_unverified(&old, now_secs()).is_ok_and(|claims| claims.refreshable);
        let token = if refreshable { issue_token(state, &record) } else { old };
        auth_response(state, &record, token, &call)
    })
    .await
    .map(|json| crate::http::response::ok(&json))
}

/// `POST /api/install`: `{token, email, password}` creates the first superuser with the
/// one-time install token.
pub async fn install(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    let text = |name: &str| body_text(&call.body, name);
    let (token, email, password) = (text("token"), text("email"), text("password"));
    // The token is checked before the (slow) hash, so no hash is spent without it; it is
    // taken, atomically, only below.
    if !state.install.matches(&token) {
        return Err(Error::bad_request(MESSAGE_INSTALL_REFUSED));
    }
    let email = check_credentials(&email, &password)?;
    let hash = state.passwords.hash(password).await?;
    blocking(&state, move |state| {
        let invalid = || Error::bad_request(MESSAGE_INSTALL_REFUSED);
        if any_exists(&state.definitions)? {
            state.install.clear();
            return Err(invalid());
        }
        if !state.install.take(&token) {
            return Err(invalid());
        }
        let created = upsert(&state.definitions, &email, hash);
        if created.is_err() {
            state.install.restore(token.clone());
        }
        created?;
        tracing::info!(%email, "the first superuser was created with the install token");
        let def = collection(state, SUPERUSERS_ID)?;
        let document = state
            .definitions
            .records(&def)?
            .find_one(Filter::eq("email", email.as_str())?)?
            .ok_or_else(|| Error::Internal("the new superuser is missing".into()))?;
        let record = AuthRecord { collection: def, document };
        auth_response(state, &record, issue_token(state, &record), &call)
    })
    .await
    .map(|json| crate::http::response::ok(&json))
}

fn auth_collection(state: &AppState, key: &str) -> Result<Arc<CollectionDef>> {
    collection(state, key)
        .ok()
        .filter(|def| def.is_auth())
        .ok_or_else(|| Error::NotFound(MESSAGE_NOT_AUTH_COLLECTION.into()))
}

/// 403 unless `record` passes its collection's `authRule` (a locked rule passes only
/// superusers), with the request values of `call`.
fn check_auth_rule(record: &AuthRecord, call: &Call) -> Result<()> {
    let requester = requester_of(record);
    let facts = call.facts(&requester);
    let fields = record.document.fields();
    let variables = variables(&facts, &record.collection, Some(fields));
    match access_or_nothing(&record.collection.auth.auth_rule, &requester, &variables)? {
        rule if rule.allows(fields) => Ok(()),
        _ => Err(Error::Forbidden(MESSAGE_AUTH_RULE_FAILED.into())),
    }
}

fn requester_of(record: &AuthRecord) -> Requester {
    if record.collection.id == SUPERUSERS_ID {
        Requester::Superuser(record.clone())
    } else {
        Requester::Record(record.clone())
    }
}

/// `{record, token}`, the record with its email, `expand` applied to it and `fields` to
/// the whole response.
fn auth_response(
    state: &AppState,
    record: &AuthRecord,
    token: String,
    call: &Call,
) -> Result<Json> {
    let requester = requester_of(record);
    let facts = call.facts(&requester);
    let documents: &[Document] = std::slice::from_ref(&record.document);
    let mut outputs = vec![export(&record.collection, &record.document, &requester, Email::Shown)];
    if let Some(tree) = ExpandTree::parse(call.query.get("expand"))? {
        let snapshot = state.definitions.snapshot();
        expand(state, &snapshot, &record.collection, documents, &mut outputs, &tree, &facts)?;
    }
    let output = outputs.pop().unwrap_or_default();
    let mut response = JsonMap::new();
    response.insert("record".into(), Json::Object(output));
    response.insert("token".into(), Json::String(token));
    let response = Json::Object(response);
    Ok(match (Picker::parse(call.query.get("fields"))?, response) {
        (Some(picker), Json::Object(map)) => Json::Object(picker.apply(map)),
        (_, response) => response,
    })
}
