//! The requests of a batch body, read from either format:
//!
//! - PocketBase's: `{"requests": [{"method": "POST", "url": "/api/collections/posts/records?expand=a",
//!   "headers": {...}, "body": {...}}, ...]}` (the SDK sends it as the `@jsonPayload` part of a
//!   multipart body; `http::body` has already merged it into one object). Four actions match
//!   on method and path: `POST .../records` creates, `PATCH .../records/{id}` updates,
//!   `DELETE .../records/{id}` deletes, `PUT .../records` upserts (by `body.id`).
//! - NanoDB's short form: `{"requests": [{"method": "create" | "update" | "delete" |
//!   "upsert", "collection": "posts", "id": "...", "data": {...}}, ...]}`.
//!
//! The list must hold 1 to `batch_requests_max` items (400 "Invalid batch request data."
//! with `data.requests.code` otherwise), and each item must be well formed (the same 400,
//! with the failures under `data.requests.<index>.<field>`). An item whose method and path
//! match no action is not a form error: it fails when the batch runs, at its index
//! (`Parsed::Unknown`), as in PocketBase.
//!
//! Thread safety: pure functions.

use crate::error::{Error, FieldError, FieldErrors, Result};
use crate::http::query::QueryParams;
use serde_json::{json, Map as JsonMap, Value as Json};

/// Default most requests in one batch (PocketBase's `batch.maxRequests`).
pub const BATCH_REQUESTS_MAX_DEFAULT: usize = 50;
/// Longest `url` of one batch request, in bytes (PocketBase's).
pub const BATCH_URL_BYTES_MAX: usize = 2_000;
/// PocketBase's message for a malformed batch body.
pub const MESSAGE_INVALID_BATCH: &str = "Invalid batch request data.";

/// What one batch request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create a record (`POST .../records`, `create`).
    Create,
    /// Update record `id` (`PATCH .../records/{id}`, `update`).
    Update,
    /// Delete record `id` (`DELETE .../records/{id}`, `delete`).
    Delete,
    /// Update the record `body.id` if it exists, else create it (`PUT .../records`,
    /// `upsert`).
    Upsert,
}

impl Action {
    /// The HTTP method the action stands for (`@request.method` of its rules).
    pub fn method(self) -> axum::http::Method {
        use axum::http::Method;
        match self {
            Action::Create => Method::POST,
            Action::Update => Method::PATCH,
            Action::Delete => Method::DELETE,
            Action::Upsert => Method::PUT,
        }
    }
}

/// One batch request, read.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// What it does.
    pub action: Action,
    /// The collection's name or id.
    pub collection: String,
    /// The record id (update, delete; an upsert's is `body.id`).
    pub id: Option<String>,
    /// The query of its url (`expand`, `fields` of the answer).
    pub query: QueryParams,
    /// Its own headers (`@request.headers.*`; never its `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: JsonMap<String, Json>,
}

/// A batch request as read: an item, or a well-formed request that names no action.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A request the batch can run.
    Item(BatchItem),
    /// A method and url that match no action (it fails when the batch runs).
    Unknown {
        /// The method given.
        method: String,
        /// The url given.
        url: String,
    },
}

/// The requests of a batch body; a 400 if the list or an item is malformed.
pub fn parse(body: &JsonMap<String, Json>, requests_max: usize) -> Result<Vec<Parsed>> {
    let list = match body.get("requests") {
        Some(Json::Array(list)) if !list.is_empty() => list,
        Some(Json::Array(_)) | None | Some(Json::Null) => {
            return Err(list_error("validation_required", "Cannot be blank."))
        }
        Some(_) => return Err(list_error("validation_invalid_value", "Must be a list.")),
    };
    if list.len() > requests_max {
        let message = format!("The length must be no more than {requests_max}.");
        return Err(list_error("validation_length_too_long", &message));
    }
    let mut items = Vec::with_capacity(list.len());
    let mut failures = JsonMap::new();
    for (index, raw) in list.iter().enumerate() {
        match parse_one(raw) {
            Ok(parsed) => items.push(parsed),
            Err(fields) => {
                let fields = fields
                    .into_iter()
                    .map(|(name, error)| {
                        (name, json!({"code": error.code, "message": error.message}))
                    })
                    .collect();
                failures.insert(index.to_string(), Json::Object(fields));
            }
        }
    }
    if !failures.is_empty() {
        let data = JsonMap::from_iter([("requests".to_string(), Json::Object(failures))]);
        return Err(Error::BadRequest { message: MESSAGE_INVALID_BATCH.into(), data: Some(data) });
    }
    Ok(items)
}

fn list_error(code: &str, message: &str) -> Error {
    let detail = json!({"code": code, "message": message});
    let data = JsonMap::from_iter([("requests".to_string(), detail)]);
    Error::BadRequest { message: MESSAGE_INVALID_BATCH.into(), data: Some(data) }
}

fn parse_one(raw: &Json) -> Result<Parsed, FieldErrors> {
    let mut errors = FieldErrors::new();
    let Some(object) = raw.as_object() else {
        errors.insert("method".into(), FieldError::new("validation_required", "Cannot be blank."));
        return Err(errors);
    };
    let text = |name: &str, errors: &mut FieldErrors| match object.get(name) {
        Some(Json::String(text)) if !text.is_empty() => Some(text.clone()),
        Some(Json::String(_)) | None | Some(Json::Null) => {
            errors.insert(name.into(), FieldError::new("validation_required", "Cannot be blank."));
            None
        }
        Some(_) => {
            errors
                .insert(name.into(), FieldError::new("validation_invalid_value", "Must be text."));
            None
        }
    };
    let short_form = object.contains_key("collection") && !object.contains_key("url");
    let method = text("method", &mut errors);
    let body_key = if short_form { "data" } else { "body" };
    let body = match object.get(body_key) {
        None | Some(Json::Null) => JsonMap::new(),
        Some(Json::Object(body)) => body.clone(),
        Some(_) => {
            let error = FieldError::new("validation_invalid_value", "Must be an object.");
            errors.insert(body_key.into(), error);
            JsonMap::new()
        }
    };
    let headers = headers_of(object.get("headers"), &mut errors);
    if short_form {
        let collection = text("collection", &mut errors);
        let id = match object.get("id") {
            Some(Json::String(id)) if !id.is_empty() => Some(id.clone()),
            _ => None,
        };
        let (Some(method), Some(collection)) = (method, collection) else { return Err(errors) };
        let action = match method.to_ascii_lowercase().as_str() {
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            "upsert" => Action::Upsert,
            _ => {
                let message = "Must be one of create, update, delete, upsert.";
                errors.insert("method".into(), FieldError::new("validation_in_invalid", message));
                return Err(errors);
            }
        };
        if id.is_none() && matches!(action, Action::Update | Action::Delete) {
            errors.insert("id".into(), FieldError::new("validation_required", "Cannot be blank."));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (id, body) = match action {
            Action::Upsert => (None, with_id(body, id)),
            _ => (id, body),
        };
        let query = QueryParams::default();
        return Ok(Parsed::Item(BatchItem { action, collection, id, query, headers, body }));
    }
    let url = text("url", &mut errors);
    if let Some(url) = &url {
        if url.len() > BATCH_URL_BYTES_MAX {
            let message = format!("The length must be no more than {BATCH_URL_BYTES_MAX}.");
            errors.insert("url".into(), FieldError::new("validation_length_too_long", message));
        }
    }
    let method = method.map(|method| method.to_ascii_uppercase());
    if let Some(method) = &method {
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            let message = "Must be a valid value.";
            errors.insert("method".into(), FieldError::new("validation_in_invalid", message));
        }
    }
    let (Some(method), Some(url)) = (method, url) else { return Err(errors) };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(match action_of(&method, &url) {
        Some((action, collection, id, query)) => {
            Parsed::Item(BatchItem { action, collection, id, query, headers, body })
        }
        None => Parsed::Unknown { method, url },
    })
}

/// `body` with `id` set, when the short form gives the id beside the data.
fn with_id(mut body: JsonMap<String, Json>, id: Option<String>) -> JsonMap<String, Json> {
    if let Some(id) = id {
        body.entry("id").or_insert(Json::String(id));
    }
    body
}

fn headers_of(raw: Option<&Json>, errors: &mut FieldErrors) -> Vec<(String, String)> {
    match raw {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Object(map)) => map
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
            .map(|(name, value)| {
                let value = match value {
                    Json::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (name.clone(), value)
            })
            .collect(),
        Some(_) => {
            let error = FieldError::new("validation_invalid_value", "Must be an object.");
            errors.insert("headers".into(), error);
            Vec::new()
        }
    }
}

/// The action, collection, id and query of `method url`, if it is one of the four.
fn action_of(method: &str, url: &str) -> Option<(Action, String, Option<String>, QueryParams)> {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, QueryParams::parse(Some(query))),
        None => (url, QueryParams::default()),
    };
    let rest = path.strip_prefix("/api/collections/")?;
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let decode = |segment: &str| -> Option<String> {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
        (!decoded.is_empty()).then(|| decoded.into_owned())
    };
    match (method, segments.as_slice()) {
        ("POST", [collection, "records"]) => {
            Some((Action::Create, decode(collection)?, None, query))
        }
        ("PUT", [collection, "records"]) => {
            Some((Action::Upsert, decode(collection)?, None, query))
        }
        ("PATCH", [collection, "records", id]) => {
            Some((Action::Update, decode(collection)?, Some(decode(id)?), query))
        }
        ("DELETE", [collection, "records", id]) => {
            Some((Action::Delete, decode(collection)?, Some(decode(id)?), query))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: Json) -> JsonMap<String, Json> {
        json.as_object().unwrap().clone()
    }

    fn item(parsed: &Parsed) -> &BatchItem {
        match parsed {
            Parsed::Item(item) => item,
            Parsed::Unknown { .. } => panic!("not an item: {parsed:?}"),
        }
    }

    #[test]
    fn pocketbase_requests_match_the_four_actions() {
        let parsed = parse(
            &body(json!({"requests": [
                {"method": "POST", "url": "/api/collections/posts/records?expand=author", "body": {"title": "a"}},
                {"method": "patch", "url": "/api/collections/po%20sts/records/abc", "body": {}},
                {"method": "DELETE", "url": "/api/collections/posts/records/abc"},
                {"method": "PUT", "url": "/api/collections/posts/records", "body": {"id": "x"},
                 "headers": {"X-Trace": "1", "Authorization": "forged"}},
                {"method": "GET", "url": "/api/collections/posts/records"},
                {"method": "POST", "url": "/api/collections/posts/records/abc"},
            ]})),
            BATCH_REQUESTS_MAX_DEFAULT,
        )
        .unwrap();
        assert_eq!(item(&parsed[0]).action, Action::Create);
        assert_eq!(item(&parsed[0]).query.get("expand"), Some("author"));
        assert_eq!(item(&parsed[0]).body["title"], "a");
        assert_eq!(item(&parsed[1]).action, Action::Update);
        assert_eq!(item(&parsed[1]).collection, "po sts");
        assert_eq!(item(&parsed[1]).id.as_deref(), Some("abc"));
        assert_eq!(item(&parsed[2]).action, Action::Delete);
        assert_eq!(item(&parsed[3]).action, Action::Upsert);
        assert_eq!(item(&parsed[3]).headers, vec![("X-Trace".to_string(), "1".to_string())]);
        assert!(matches!(&parsed[4], Parsed::Unknown { method, .. } if method == "GET"));
        assert!(matches!(&parsed[5], Parsed::Unknown { .. }));
    }

    #[test]
    fn short_form_requests() {
        let parsed = parse(
            &body(json!({"requests": [
                {"method": "create", "collection": "posts", "data": {"title": "a"}},
                {"method": "Update", "collection": "posts", "id": "abc", "data": {"title": "b"}},
                {"method": "delete", "collection": "posts", "id": "abc"},
                {"method": "upsert", "collection": "posts", "id": "abc", "data": {"n": 1}},
            ]})),
            BATCH_REQUESTS_MAX_DEFAULT,
        )
        .unwrap();
        let actions: Vec<Action> = parsed.iter().map(|parsed| item(parsed).action).collect();
        assert_eq!(actions, [Action::Create, Action::Update, Action::Delete, Action::Upsert]);
        assert_eq!(item(&parsed[1]).id.as_deref(), Some("abc"));
        assert_eq!(item(&parsed[3]).body["id"], "abc", "an upsert's id goes into its body");
        assert_eq!(item(&parsed[3]).id, None);
    }

    #[test]
    fn malformed_lists_and_items_are_400_with_their_index() {
        let status = |json: Json| parse(&body(json), 2).unwrap_err();
        for (bad, code) in [
            (json!({}), "validation_required"),
            (json!({"requests": []}), "validation_required"),
            (json!({"requests": "x"}), "validation_invalid_value"),
        ] {
            let error = status(bad);
            assert_eq!(error.body()["data"]["requests"]["code"], code);
            assert_eq!(error.body()["message"], MESSAGE_INVALID_BATCH);
        }
        let error = status(json!({"requests": [
            {"method": "POST", "url": "/api/collections/p/records"},
            {"url": "/x"},
            {"method": "create", "collection": "p", "data": 3},
        ]}));
        assert_eq!(error.body()["data"]["requests"]["code"], "validation_length_too_long");
        let error = status(json!({"requests": [
            {"url": "/x"},
            {"method": "update", "collection": "p"},
        ]}));
        let data = &error.body()["data"]["requests"];
        assert_eq!(data["0"]["method"]["code"], "validation_required");
        assert_eq!(data["1"]["id"]["code"], "validation_required");
        let error = status(json!({"requests": [
            {"method": "TRACE", "url": "/x", "body": []},
            {"method": "rename", "collection": "p"},
        ]}));
        let data = &error.body()["data"]["requests"];
        assert_eq!(data["0"]["method"]["code"], "validation_in_invalid");
        assert_eq!(data["0"]["body"]["code"], "validation_invalid_value");
        assert_eq!(data["1"]["method"]["code"], "validation_in_invalid");
    }

    #[test]
    fn the_request_count_and_url_length_limits_hold_at_their_boundaries() {
        let request = json!({"method": "DELETE", "url": "/api/collections/p/records/a"});
        let list = |n: usize| body(json!({"requests": vec![request.clone(); n]}));
        assert_eq!(
            parse(&list(BATCH_REQUESTS_MAX_DEFAULT), BATCH_REQUESTS_MAX_DEFAULT).unwrap().len(),
            50
        );
        assert!(parse(&list(BATCH_REQUESTS_MAX_DEFAULT + 1), BATCH_REQUESTS_MAX_DEFAULT).is_err());
        let prefix = "/api/collections/p/records/";
        let url = |len: usize| format!("{prefix}{}", "a".repeat(len - prefix.len()));
        let one = |url: String| body(json!({"requests": [{"method": "DELETE", "url": url}]}));
        assert!(parse(&one(url(BATCH_URL_BYTES_MAX)), 1).is_ok());
        let error = parse(&one(url(BATCH_URL_BYTES_MAX + 1)), 1).unwrap_err();
        assert_eq!(
            error.body()["data"]["requests"]["0"]["url"]["code"],
            "validation_length_too_long"
        );
    }
}
