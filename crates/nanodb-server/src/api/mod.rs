//! The HTTP API: the router, and `Call`, one request read the way every handler needs it.
//!
//! Routes (`routes::ROUTES`, PocketBase's paths): `/api/health`;
//! `/api/collections[/{c}[/truncate]]`; `/api/collections/{c}/records[/{id}]`;
//! `/api/collections/{c}/auth-with-password`, `/auth-refresh`; `/api/auth/login`;
//! `/api/install`; `/api/batch`; `/api/realtime`; `/api/openapi.json`; `/metrics`. Anything
//! else is a 404 (a known path with another method a 405) in PocketBase's error shape.
//! Every request is timed, counted and logged, and CORS and the auth rate limit apply
//! (`ops`).
//!
//! Thread safety: handlers share `Arc<AppState>`; document-layer work runs through
//! `state::blocking`.

mod auth;
mod batch;
pub mod batch_items;
mod collections;
mod health;
mod ops;
mod realtime;
pub mod records_read;
mod records_write;
pub mod routes;
pub mod writes;

use crate::auth::requester::{resolve, token_from, Requester};
use crate::error::{Error, Result};
use crate::http::{body, query::QueryParams};
use crate::rules::context::{RequestFacts, CONTEXT_DEFAULT};
use crate::schema::CollectionDef;
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{Map as JsonMap, Value as Json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// PocketBase's message for an unknown realtime client id.
pub const MESSAGE_UNKNOWN_CLIENT: &str = "Missing or invalid client id.";

/// PocketBase's message for an unknown collection.
pub const MESSAGE_MISSING_COLLECTION: &str = "Missing collection context.";

/// The server's routes (`routes::ROUTES`), inside the operational middleware (`ops`).
pub fn router(state: Arc<AppState>) -> Router {
    let mut routes = Router::new();
    for route in routes::ROUTES {
        routes = routes.route(route.path, (route.handler)());
    }
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::clone(&state));
    // An outer router whose only service is the inner one: the middleware sees every
    // request before routing (preflights and unknown paths included).
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), ops::limit_auth))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), ops::cors))
        .layer(middleware::from_fn_with_state(state, ops::observe))
}

async fn not_found() -> Response {
    Error::not_found().into_response()
}

async fn method_not_allowed() -> Response {
    Error::MethodNotAllowed.into_response()
}

/// The `{name}` segments of a route's path (axum's `Path`), with a bad one (not UTF-8 once
/// percent-decoded, such as `%FF`) answered in PocketBase's error shape instead of axum's
/// plain text.
#[derive(Debug, Clone)]
pub struct Segments<T>(pub T);

impl<S, T> FromRequestParts<S> for Segments<T>
where
    S: Send + Sync,
    T: Send,
    Path<T>: FromRequestParts<S, Rejection = PathRejection>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Segments<T>> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(segments)) => Ok(Segments(segments)),
            Err(PathRejection::FailedToDeserializePathParams(rejection)) => {
                Err(Error::bad_request(format!("{MESSAGE_BAD_PATH} ({})", rejection.body_text())))
            }
            Err(rejection) => Err(Error::Internal(rejection.body_text())),
        }
    }
}

/// The answer to a path whose segments cannot be read.
pub const MESSAGE_BAD_PATH: &str = "Invalid path parameter.";

/// One request, read: method, query, headers, and the body as one JSON object.
#[derive(Debug, Clone)]
pub struct Call {
    /// The HTTP method.
    pub method: Method,
    /// PocketBase's request context for rules (`@request.context`): `default`, or `batch`
    /// for the requests of a batch, `realtime` for realtime events.
    pub context: &'static str,
    /// The query parameters.
    pub query: QueryParams,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (`{}` for GET, DELETE and empty bodies).
    pub body: JsonMap<String, Json>,
    /// The IP the request came from (the peer of its connection), if known.
    pub ip: Option<IpAddr>,
}

impl Call {
    /// Reads `request` under the body limit (413 past it).
    pub async fn read(state: &AppState, request: Request) -> Result<Call> {
        let ip = client_ip(state, &request);
        let (parts, raw) = request.into_parts();
        let bytes = body::read(raw, &parts.headers, state.config.body_bytes_max).await?;
        let takes_body = matches!(parts.method, Method::POST | Method::PATCH | Method::PUT);
        let body = if takes_body { body::parse(&parts.headers, &bytes)? } else { JsonMap::new() };
        Ok(Call {
            method: parts.method,
            context: CONTEXT_DEFAULT,
            query: QueryParams::parse(parts.uri.query()),
            headers: parts.headers,
            body,
            ip,
        })
    }

    /// Who sent it (reads the database: call from a blocking thread).
    pub fn requester(&self, state: &AppState) -> Result<Requester> {
        resolve(state, token_from(&self.headers).as_deref())
    }

    /// What rules may read of it.
    pub fn facts<'a>(&'a self, requester: &'a Requester) -> RequestFacts<'a> {
        RequestFacts {
            method: self.method.as_str(),
            context: self.context,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
            requester,
        }
    }
}

/// The client IP of `request`: the peer address of its connection (`ConnectInfo`), or, with
/// `ServerConfig::trusted_proxy`, the last address of its `X-Forwarded-For` (the one the
/// proxy appended) when it has a valid one.
pub fn client_ip(state: &AppState, request: &Request) -> Option<IpAddr> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    if !state.config.trusted_proxy {
        return peer;
    }
    forwarded_ip(request.headers()).or(peer)
}

/// The last address of the `X-Forwarded-For` headers, if it is a valid IP.
fn forwarded_ip(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

/// The collection named or identified by `key`; 404 if none.
pub fn collection(state: &AppState, key: &str) -> Result<Arc<CollectionDef>> {
    state
        .definitions
        .snapshot()
        .find(key)
        .ok_or_else(|| Error::NotFound(MESSAGE_MISSING_COLLECTION.into()))
}
