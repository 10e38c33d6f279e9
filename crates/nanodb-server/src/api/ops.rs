//! The operational middleware and endpoints: every request is timed, counted and logged
//! (`observe`), answered with CORS headers and preflights (`cors`), and, on the auth routes,
//! held to the per-IP rate limit (`limit_auth`: 429 with `Retry-After`; the IP is the
//! connection's peer address, or `X-Forwarded-For`'s last one with `trusted_proxy`);
//! `GET /metrics` serves the Prometheus page (behind a bearer token when `metrics_token` is
//! set) and `GET /api/openapi.json` the OpenAPI document of the API.
//!
//! Order (outermost first): `observe`, `cors`, `limit_auth`, then routing, so refused and
//! preflight requests are counted and carry CORS headers too.
//!
//! Thread safety: shares `Arc<AppState>`; each piece synchronizes itself.

use super::routes::{route_of, ROUTES};
use crate::auth::install::constant_time_eq;
use crate::error::Error;
use crate::http::response::no_content;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

/// The OpenAPI 3 document of the API.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");
/// The answer to a `/metrics` request without the metrics token.
pub const MESSAGE_METRICS_TOKEN: &str = "The metrics require the metrics bearer token.";
/// The message of a request refused by the auth rate limit.
pub const MESSAGE_RATE_LIMITED: &str = "Too many requests, try again later.";

/// Times, counts and logs every request.
pub async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let route =
        route_of(&path).and_then(|route| ROUTES.iter().position(|r| std::ptr::eq(r, route)));
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.record(route, method.as_str(), status, elapsed);
    let elapsed_us = elapsed.as_micros() as u64;
    tracing::info!(%method, %path, status, elapsed_us, "request");
    response
}

/// Adds CORS headers, and answers preflights.
pub async fn cors(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let Some(origin) = origin.filter(|_| !state.cors.is_off()) else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let requested = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS);
        let headers = state.cors.preflight(&origin, requested);
        let mut response = no_content();
        response.headers_mut().extend(headers);
        return response;
    }
    let mut response = next.run(request).await;
    state.cors.decorate(&origin, response.headers_mut());
    response
}

/// Holds the auth routes to the per-IP rate limit.
pub async fn limit_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let auth_route = route_of(request.uri().path())
        .is_some_and(|route| route.auth && route.method == request.method().as_str());
    if auth_route {
        let ip = super::client_ip(&state, &request);
        if let Err(wait) = state.auth_rate_limit.check(ip, Instant::now()) {
            let mut response = Error::TooManyRequests(MESSAGE_RATE_LIMITED.into()).into_response();
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            return response;
        }
    }
    next.run(request).await
}

/// `GET /metrics`: Prometheus' text format; with `ServerConfig::metrics_token`, only for a
/// request that carries it as a bearer token (else 401).
pub async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return Error::Unauthorized(MESSAGE_METRICS_TOKEN.into()).into_response();
        }
    }
    let page = match crate::state::blocking(&state, |state| Ok(crate::ops::metrics::render(state)))
        .await
    {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    let mut response = Response::new(Body::from(page));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /api/openapi.json`.
pub async fn openapi() -> Response {
    let mut response = Response::new(Body::from(OPENAPI_JSON));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let document: Json = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        let paths = document["paths"].as_object().unwrap();
        for route in ROUTES {
            let operation = &paths
                .get(route.path)
                .unwrap_or_else(|| panic!("{} is not in the OpenAPI document", route.path))
                [route.method.to_ascii_lowercase()];
            assert!(
                operation.is_object(),
                "{} {} is not in the OpenAPI document",
                route.method,
                route.path
            );
            assert!(
                operation["responses"].is_object(),
                "{} {} has no responses",
                route.method,
                route.path
            );
        }
        let operations = ["get", "head", "post", "put", "patch", "delete", "options"];
        for (path, item) in paths {
            for (method, _) in item
                .as_object()
                .unwrap()
                .iter()
                .filter(|(key, _)| operations.contains(&key.as_str()))
            {
                let method = method.to_ascii_uppercase();
                assert!(
                    ROUTES.iter().any(|route| route.path == path && route.method == method),
                    "the OpenAPI document has {method} {path}, which no route serves"
                );
            }
        }
        // Every schema a document points at exists.
        let text = OPENAPI_JSON;
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let parameters = document["components"]["parameters"].as_object().unwrap();
        let responses = document["components"]["responses"].as_object().unwrap();
        for reference in text.split("\"$ref\": \"#/components/").skip(1) {
            let reference = &reference[..reference.find('"').unwrap()];
            let (kind, name) = reference.split_once('/').unwrap();
            let known = match kind {
                "schemas" => schemas.contains_key(name),
                "parameters" => parameters.contains_key(name),
                "responses" => responses.contains_key(name),
                _ => false,
            };
            assert!(known, "unknown reference {reference}");
        }
    }
}
