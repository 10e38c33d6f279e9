//! `GET /api/health`: PocketBase's health answer. It touches no database, so it answers
//! while the server runs at all.
//!
//! Thread safety: stateless.

use crate::http::response::ok;
use axum::response::Response;
use serde_json::json;

/// `{"message": "API is healthy.", "code": 200, "data": {}}`.
pub async fn health() -> Response {
    ok(&json!({"message": "API is healthy.", "code": 200, "data": {}}))
}
