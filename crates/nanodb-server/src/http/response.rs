//! Responses: JSON with a status, and the empty 204.
//!
//! Thread safety: pure functions.

use crate::error::{Error, Result};
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value as Json;

/// `value` as a JSON response with `status`.
pub fn json(status: StatusCode, value: &Json) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `value` as JSON response text.
pub fn json_text(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|error| Error::Internal(format!("cannot write the response: {error}")))
}

/// A 200 response of JSON text already written (`body`).
pub fn ok_text(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A 200 JSON response.
pub fn ok(value: &Json) -> Response {
    json(StatusCode::OK, value)
}

/// A 204 response with no body.
pub fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
