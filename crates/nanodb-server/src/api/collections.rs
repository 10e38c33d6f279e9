//! The collections API, for superusers only (a guest gets 401, another record 403):
//! `GET /api/collections` (list, with `page`, `perPage`, `filter`, `sort` run by nanodb over
//! the stored definitions), `POST` (create), `GET/PATCH/DELETE /api/collections/{c}`, and
//! `DELETE /api/collections/{c}/truncate` (every record deleted, 204).
//!
//! A definition is read (`CollectionDef::from_body`), checked against the other definitions
//! (`schema::validate::prepare`) and stored by `Definitions`, which also builds its indexes;
//! every failure is a 400 with per-key `data`. System collections (`_superusers`) cannot be
//! renamed, deleted, or have their rules changed, and `_superusers` cannot be truncated; a
//! collection that another collection's relation points to cannot be deleted.
//!
//! Thread safety: database work on blocking threads; `Definitions` serializes changes.

use super::{collection, Call, Segments};
use crate::error::{Error, FieldErrors, Result, MESSAGE_FORM_FAILED};
use crate::http::query::ListParams;
use crate::http::response::{json_text, no_content, ok, ok_text};
use crate::schema::collection::{CollectionDef, CollectionKind};
use crate::schema::defaults::SUPERUSERS_ID;
use crate::schema::validate::prepare;
use crate::state::{blocking, AppState};
use axum::extract::{Request, State};
use axum::response::Response;
use nanodb::query::{parse_filter, parse_sort, Filter, FilterContext, Params};
use serde_json::Value as Json;
use std::sync::Arc;

/// The answer to a truncate of `_superusers` (it would lock everyone out).
pub const MESSAGE_TRUNCATE_SUPERUSERS: &str = "The _superusers collection cannot be truncated.";

fn form_error(fields: FieldErrors) -> Error {
    Error::Validation { message: MESSAGE_FORM_FAILED.into(), fields }
}

/// 401 for guests, 403 for records that are not superusers.
fn require_superuser(state: &AppState, call: &Call) -> Result<()> {
    match call.requester(state)? {
        requester if requester.is_superuser() => Ok(()),
        requester if requester.record().is_some() => Err(Error::Forbidden(
            "The authorized record is not allowed to perform this action.".into(),
        )),
        _ => Err(Error::Unauthorized(
            "The request requires valid superuser authorization token.".into(),
        )),
    }
}

/// Runs `work` for a superuser on a blocking thread.
async fn as_superuser<T: Send + 'static>(
    state: Arc<AppState>,
    request: Request,
    work: impl FnOnce(&AppState, &Call) -> Result<T> + Send + 'static,
) -> Result<T> {
    let call = Call::read(&state, request).await?;
    blocking(&state, move |state| {
        require_superuser(state, &call)?;
        work(state, &call)
    })
    .await
}

/// `GET /api/collections`.
pub async fn list(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let json = as_superuser(state, request, |state, call| {
        let params = ListParams::from_query(&call.query)?;
        let (no_params, no_variables) = (Params::new(), nanodb::Map::new());
        let filter = match &params.filter {
            Some(text) => parse_filter(text, &FilterContext::new(&no_params, &no_variables))?,
            None => Filter::True,
        };
        // Without a sort, in creation order (as PocketBase lists them), ties by name.
        let sort = parse_sort(params.sort.as_deref().unwrap_or("created,name"))?;
        let store = state.definitions.store();
        let query = params.query(filter.clone(), sort, state.config.sort_memory_bytes_max);
        let page = store.find(&query)?;
        let snapshot = state.definitions.snapshot();
        let items: Vec<Json> = page
            .documents
            .iter()
            .filter_map(|document| snapshot.by_id(document.id()))
            .map(|def| def.to_json())
            .collect();
        let total = match params.skip_total {
            true => None,
            false => Some(store.count(&filter)?),
        };
        json_text(&params.page_of(&items, total))
    })
    .await?;
    Ok(ok_text(json))
}

/// `POST /api/collections`.
pub async fn create(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let json = as_superuser(state, request, |state, call| {
        let body = &call.body;
        let kind = match body.get("type").and_then(Json::as_str).unwrap_or("base") {
            "base" => CollectionKind::Base,
            "auth" => CollectionKind::Auth,
            other => {
                let message = format!("Unsupported collection type {other:?} (base or auth).");
                return Err(form_error(one("type", "validation_invalid_value", &message)));
            }
        };
        let name = body.get("name").and_then(Json::as_str).unwrap_or("");
        let mut start = CollectionDef::new(name, kind);
        if let Some(id) = body.get("id").and_then(Json::as_str).filter(|id| !id.is_empty()) {
            check_custom_id(id)?;
            start.id = id.to_string();
        }
        let mut def = CollectionDef::from_body(&start, body).map_err(form_error)?;
        prepare(&mut def, &state.definitions.snapshot()).map_err(form_error)?;
        Ok(state.definitions.create(def)?.to_json())
    })
    .await?;
    Ok(ok(&json))
}

/// `GET /api/collections/{c}`.
pub async fn view(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
    request: Request,
) -> Result<Response> {
    let json = as_superuser(state, request, move |state, _| Ok(collection(state, &key)?.to_json()))
        .await?;
    Ok(ok(&json))
}

/// `PATCH /api/collections/{c}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
    request: Request,
) -> Result<Response> {
    let json = as_superuser(state, request, move |state, call| {
        let old = collection(state, &key)?;
        let body = &call.body;
        if body.get("type").and_then(Json::as_str).is_some_and(|kind| kind != old.kind.name()) {
            let message = "The type of a collection cannot be changed.";
            return Err(form_error(one("type", "validation_invalid_value", message)));
        }
        let mut def = CollectionDef::from_body(&old, body).map_err(form_error)?;
        if old.system && (def.name != old.name || def.rules != old.rules || def.auth != old.auth) {
            let message =
                "The name, rules and auth options of a system collection cannot be changed.";
            return Err(form_error(one("name", "validation_system_collection", message)));
        }
        for field in &def.fields {
            let changed = old.fields.iter().find(|before| before.id == field.id);
            if changed.is_some_and(|before| before.kind.type_name() != field.kind.type_name()) {
                let message = format!("The type of field {:?} cannot be changed.", field.name);
                return Err(form_error(one(&field.name, "validation_field_type_change", &message)));
            }
        }
        prepare(&mut def, &state.definitions.snapshot()).map_err(form_error)?;
        Ok(state.definitions.update(&old, def)?.to_json())
    })
    .await?;
    Ok(ok(&json))
}

/// `DELETE /api/collections/{c}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
    request: Request,
) -> Result<Response> {
    as_superuser(state, request, move |state, _| {
        let def = collection(state, &key)?;
        if def.system {
            return Err(Error::bad_request("System collections cannot be deleted."));
        }
        state.definitions.delete(&def)
    })
    .await?;
    Ok(no_content())
}

/// `DELETE /api/collections/{c}/truncate`.
pub async fn truncate(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
    request: Request,
) -> Result<Response> {
    as_superuser(state, request, move |state, _| {
        let def = collection(state, &key)?;
        if def.id == SUPERUSERS_ID {
            return Err(Error::bad_request(MESSAGE_TRUNCATE_SUPERUSERS));
        }
        state.definitions.truncate(&def)
    })
    .await?;
    Ok(no_content())
}

fn one(key: &str, code: &'static str, message: &str) -> FieldErrors {
    FieldErrors::from([(key.to_string(), crate::error::FieldError::new(code, message))])
}

/// A collection id a client chooses: letters, digits and `_`, not starting with a digit or
/// `_` (reserved for the server's own collections), at most 64 bytes.
fn check_custom_id(id: &str) -> Result<()> {
    let valid = nanodb::names::check_collection_name(id).is_ok() && !id.starts_with('_');
    if valid {
        return Ok(());
    }
    let message = "Only letters, digits and underscores, not starting with a digit or '_'.";
    Err(form_error(one("id", "validation_invalid_value", message)))
}

/// The JSON object of a definition, for tests.
#[cfg(test)]
fn object(def: &CollectionDef) -> serde_json::Map<String, Json> {
    def.to_json().as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_are_plain_words_not_reserved() {
        for good in ["pbc_1", "posts", "A_b9"] {
            assert!(check_custom_id(good).is_ok(), "{good}");
        }
        for bad in ["_pb_collections", "_x", "1a", "a-b", "../x", "a/b", &"a".repeat(65)] {
            assert!(check_custom_id(bad).is_err(), "{bad}");
        }
        assert!(object(&CollectionDef::new("x", CollectionKind::Base)).contains_key("listRule"));
    }
}
