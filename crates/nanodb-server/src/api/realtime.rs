//! `GET /api/realtime` (the SSE stream) and `POST /api/realtime` (set its subscriptions).
//!
//! GET: registers a client (`Realtime::connect`: 429 past `realtime_clients_max`, 503 while
//! stopping) and answers 200 `text/event-stream` whose first message is
//! `id:<clientId>`, `event:PB_CONNECT`, `data:{"clientId":"<clientId>"}`. The SSE request
//! carries no auth (an EventSource cannot send headers).
//!
//! POST `{"clientId", "subscriptions": [...]}` (as the SDK sends it, with the user's
//! `Authorization`): 400 for a missing or over-long client id, more than `SUBSCRIPTIONS_MAX`
//! subscriptions or a bad one; 404 "Missing or invalid client id." for an unknown client;
//! 400 if it comes from another IP than the stream; 403 if its auth is not the client's
//! (a guest client may log in; a logged-in one may not change record or become a guest).
//! Then the client's auth is the token's record (a forged or expired token is a guest), the
//! subscription set is replaced whole, and the answer is 204.
//!
//! Thread safety: registration and the auth check run on blocking threads.

use super::{Call, MESSAGE_UNKNOWN_CLIENT};
use crate::auth::requester::Requester;
use crate::error::{Error, FieldError, FieldErrors, Result};
use crate::http::response::no_content;
use crate::realtime::sse::EventStream;
use crate::realtime::topic::{Subscription, SUBSCRIPTIONS_MAX};
use crate::state::{blocking, AppState};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Map as JsonMap, Value as Json};
use std::sync::Arc;

/// Longest client id a subscription request may name, in bytes (PocketBase's).
pub const CLIENT_ID_BYTES_MAX: usize = 255;
/// PocketBase's message for a subscription request with another auth than the client's.
pub const MESSAGE_AUTH_MISMATCH: &str =
    "The current and the previous request authorization don't match.";
/// PocketBase's message for a form that fails validation.
pub const MESSAGE_INVALID_DATA: &str = "An error occurred while validating the submitted data.";

/// `GET /api/realtime`.
pub async fn connect(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let ip = super::client_ip(&state, &request);
    // Once the feed runs, registering is a few map operations: done here. The first client
    // starts the feed, which waits for writes in flight: on a blocking thread.
    let (client, inbox) = match state.realtime.connect_if_running(ip) {
        Some(connected) => connected?,
        None => {
            let registering = Arc::clone(&state);
            tokio::task::spawn_blocking(move || registering.realtime.connect(&registering, ip))
                .await
                .map_err(|error| Error::Internal(format!("a realtime task failed: {error}")))??
        }
    };
    let weak = Arc::downgrade(&state);
    let id = client.id.clone();
    let stream = EventStream::new(
        inbox,
        state.config.realtime_ping_interval,
        state.config.realtime_idle_timeout,
        move || {
            if let Some(state) = weak.upgrade() {
                state.realtime.remove(&id);
            }
        },
    );
    let mut response = Response::new(Body::new(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// `POST /api/realtime`.
pub async fn subscribe(State(state): State<Arc<AppState>>, request: Request) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    let (client_id, subscriptions) = read_form(&call.body)?;
    blocking(&state, move |state| {
        let client = state
            .realtime
            .client(&client_id)
            .ok_or_else(|| Error::NotFound(MESSAGE_UNKNOWN_CLIENT.into()))?;
        if client.ip.is_some() && call.ip != client.ip {
            return Err(Error::bad_request("The current and the previous request IP don't match."));
        }
        let requester = call.requester(state)?;
        if !may_replace(&client.auth(), &requester) {
            return Err(Error::Forbidden(MESSAGE_AUTH_MISMATCH.into()));
        }
        state.realtime.set_subscriptions(&client, subscriptions)?;
        client.set_auth(requester);
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// True if a client whose auth is `current` may now be `next`: the same record (or guest),
/// or a guest logging in.
fn may_replace(current: &Requester, next: &Requester) -> bool {
    match (current.record(), next.record()) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => {
            a.collection.id == b.collection.id && a.document.id() == b.document.id()
        }
    }
}

/// The client id and the subscriptions of a subscription request; a 400 naming every bad
/// field.
fn read_form(body: &JsonMap<String, Json>) -> Result<(String, Vec<Subscription>)> {
    let mut errors = FieldErrors::new();
    let client_id = match body.get("clientId") {
        Some(Json::String(id)) if !id.is_empty() && id.len() <= CLIENT_ID_BYTES_MAX => id.clone(),
        Some(Json::String(id)) if !id.is_empty() => {
            let message = format!("The length must be between 1 and {CLIENT_ID_BYTES_MAX}.");
            errors.insert(
                "clientId".into(),
                FieldError::new("validation_length_out_of_range", message),
            );
            String::new()
        }
        _ => {
            errors.insert(
                "clientId".into(),
                FieldError::new("validation_required", "Cannot be blank."),
            );
            String::new()
        }
    };
    let mut subscriptions = Vec::new();
    match body.get("subscriptions") {
        None | Some(Json::Null) => {}
        Some(Json::Array(list)) if list.len() > SUBSCRIPTIONS_MAX => {
            let message = format!("The length must be no more than {SUBSCRIPTIONS_MAX}.");
            errors.insert(
                "subscriptions".into(),
                FieldError::new("validation_length_too_long", message),
            );
        }
        Some(Json::Array(list)) => {
            for (index, item) in list.iter().enumerate() {
                let parsed = match item {
                    Json::String(text) => Subscription::parse(text),
                    _ => Err("a subscription must be text".to_string()),
                };
                match parsed {
                    Ok(subscription) => subscriptions.push(subscription),
                    Err(reason) => {
                        errors.insert(
                            format!("subscriptions.{index}"),
                            FieldError::new("validation_invalid_value", reason),
                        );
                    }
                }
            }
        }
        Some(_) => {
            errors.insert(
                "subscriptions".into(),
                FieldError::new("validation_invalid_value", "Must be a list of text."),
            );
        }
    }
    if errors.is_empty() {
        Ok((client_id, subscriptions))
    } else {
        Err(Error::Validation { message: MESSAGE_INVALID_DATA.into(), fields: errors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requester::AuthRecord;
    use crate::schema::defaults;
    use serde_json::json;

    fn record(id: &str) -> Requester {
        let document = crate::test_support::document(json!({"id": id}));
        Requester::Record(AuthRecord { collection: Arc::new(defaults::users()), document })
    }

    #[test]
    fn a_guest_may_log_in_but_auth_never_changes_hands() {
        let (guest, alice, bob) =
            (Requester::Guest, record("alice0000000000"), record("bob000000000000"));
        assert!(may_replace(&guest, &guest));
        assert!(may_replace(&guest, &alice), "a guest logs in");
        assert!(may_replace(&alice, &record("alice0000000000")), "the same record again");
        assert!(!may_replace(&alice, &bob), "another record");
        assert!(!may_replace(&alice, &guest), "back to a guest");
    }

    #[test]
    fn the_form_and_its_limits() {
        let form = |json: Json| read_form(json.as_object().unwrap());
        let (id, subscriptions) =
            form(json!({"clientId": "c", "subscriptions": ["a/*", "b/x"]})).unwrap();
        assert_eq!((id.as_str(), subscriptions.len()), ("c", 2));
        assert!(form(json!({"clientId": "c"})).unwrap().1.is_empty(), "no list is an empty set");
        assert!(form(json!({"clientId": "x".repeat(CLIENT_ID_BYTES_MAX)})).is_ok());
        let long = form(json!({"clientId": "x".repeat(CLIENT_ID_BYTES_MAX + 1)})).unwrap_err();
        assert_eq!(long.body()["data"]["clientId"]["code"], "validation_length_out_of_range");
        let many = vec!["a/*"; SUBSCRIPTIONS_MAX];
        assert!(form(json!({"clientId": "c", "subscriptions": many})).is_ok());
        let too_many = vec!["a/*"; SUBSCRIPTIONS_MAX + 1];
        let error = form(json!({"clientId": "c", "subscriptions": too_many})).unwrap_err();
        assert_eq!(error.body()["data"]["subscriptions"]["code"], "validation_length_too_long");
        let error = form(json!({"clientId": 5, "subscriptions": [1, "ok"]})).unwrap_err();
        assert_eq!(error.body()["data"]["clientId"]["code"], "validation_required");
        assert_eq!(error.body()["data"]["subscriptions.0"]["code"], "validation_invalid_value");
        assert_eq!(error.body()["message"], MESSAGE_INVALID_DATA);
    }
}
