//! The route table: every method and path the server answers, with its handler. The router
//! is built from it (`router`), `/metrics` labels requests by its paths (`route_of`), the
//! auth rate limit picks its routes from it (`Route::auth`), and a test checks that the
//! OpenAPI document describes exactly its routes.
//!
//! Paths use axum's and OpenAPI's `{name}` for a segment.
//!
//! Thread safety: static data.

use super::{auth, batch, collections, health, ops, realtime, records_read, records_write};
use crate::state::AppState;
use axum::routing::{self, MethodRouter};
use std::sync::Arc;

/// One route: a method and path, and its handler.
pub struct Route {
    /// The HTTP method (upper case).
    pub method: &'static str,
    /// The path, with `{name}` segments.
    pub path: &'static str,
    /// Whether the auth rate limit applies (login and token endpoints).
    pub auth: bool,
    /// The handler, as a method router for `method`.
    pub handler: fn() -> MethodRouter<Arc<AppState>>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    handler: fn() -> MethodRouter<Arc<AppState>>,
) -> Route {
    Route { method, path, auth: false, handler }
}

const fn auth_route(
    method: &'static str,
    path: &'static str,
    handler: fn() -> MethodRouter<Arc<AppState>>,
) -> Route {
    Route { method, path, auth: true, handler }
}

/// Every route of the server.
pub static ROUTES: &[Route] = &[
    route("GET", "/api/health", || routing::get(health::health)),
    route("HEAD", "/api/health", || routing::head(health::health)),
    route("GET", "/api/collections", || routing::get(collections::list)),
    route("POST", "/api/collections", || routing::post(collections::create)),
    route("GET", "/api/collections/{collection}", || routing::get(collections::view)),
    route("PATCH", "/api/collections/{collection}", || routing::patch(collections::update)),
    route("DELETE", "/api/collections/{collection}", || routing::delete(collections::delete)),
    route("DELETE", "/api/collections/{collection}/truncate", || {
        routing::delete(collections::truncate)
    }),
    route("GET", "/api/collections/{collection}/records", || routing::get(records_read::list)),
    route("POST", "/api/collections/{collection}/records", || routing::post(records_write::create)),
    route("GET", "/api/collections/{collection}/records/{id}", || routing::get(records_read::view)),
    route("PATCH", "/api/collections/{collection}/records/{id}", || {
        routing::patch(records_write::update)
    }),
    route("DELETE", "/api/collections/{collection}/records/{id}", || {
        routing::delete(records_write::delete)
    }),
    auth_route("POST", "/api/collections/{collection}/auth-with-password", || {
        routing::post(auth::auth_with_password)
    }),
    auth_route("POST", "/api/collections/{collection}/auth-refresh", || {
        routing::post(auth::auth_refresh)
    }),
    auth_route("POST", "/api/auth/login", || routing::post(auth::login)),
    auth_route("POST", "/api/install", || routing::post(auth::install)),
    route("POST", "/api/batch", || routing::post(batch::batch)),
    route("GET", "/api/realtime", || routing::get(realtime::connect)),
    route("POST", "/api/realtime", || routing::post(realtime::subscribe)),
    route("GET", "/api/openapi.json", || routing::get(ops::openapi)),
    route("GET", "/metrics", || routing::get(ops::metrics)),
];

/// The route whose path matches `path` (any method); `None` for unknown paths. A `{name}`
/// segment matches any one non-empty segment.
pub fn route_of(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| path_matches(route.path, path))
}

fn path_matches(template: &str, path: &str) -> bool {
    let mut given = path.split('/');
    for expected in template.split('/') {
        match given.next() {
            Some(segment) if expected.starts_with('{') => {
                if segment.is_empty() {
                    return false;
                }
            }
            Some(segment) if segment == expected => {}
            _ => return false,
        }
    }
    given.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_route_template() {
        let path = |given: &str| route_of(given).map(|route| route.path);
        assert_eq!(path("/api/health"), Some("/api/health"));
        assert_eq!(path("/api/collections/posts"), Some("/api/collections/{collection}"));
        assert_eq!(
            path("/api/collections/posts/records/abc"),
            Some("/api/collections/{collection}/records/{id}")
        );
        assert_eq!(
            path("/api/collections/posts/truncate"),
            Some("/api/collections/{collection}/truncate")
        );
        for unknown in ["/", "/api", "/api/collections//records", "/api/health/x", "/metricsx"] {
            assert_eq!(path(unknown), None, "{unknown}");
        }
        let auth: Vec<&str> =
            ROUTES.iter().filter(|route| route.auth).map(|route| route.path).collect();
        assert_eq!(auth.len(), 4);
        assert!(auth.contains(&"/api/auth/login"));
    }
}
