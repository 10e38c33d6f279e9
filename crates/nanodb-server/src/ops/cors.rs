//! Cross-origin requests: which browser origins may call the API
//! (`ServerConfig::cors_origins`; the CLI's `--origins` / `NANODB_ORIGINS`).
//!
//! `*` (the default, as PocketBase's) allows every origin; a list allows those origins
//! (compared without regard to ASCII case); an empty list sends no CORS headers at all. An
//! allowed request gets `Access-Control-Allow-Origin` (`*`, or its origin with
//! `Vary: Origin`); a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
//! 204 here with the methods, the requested headers and `Access-Control-Max-Age`, or 204
//! without them for an origin that is not allowed (the browser then refuses). Credentials
//! are never allowed: the API authenticates with the `Authorization` header, not cookies.
//!
//! Thread safety: immutable after start.

use axum::http::{header, HeaderMap, HeaderValue};

/// How long a browser may cache a preflight answer, in seconds.
pub const CORS_MAX_AGE_SECONDS: u32 = 86_400;
/// The methods a preflight allows.
pub const CORS_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// The allowed origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

impl Cors {
    /// From the configured list (`*` anywhere in it allows every origin).
    pub fn new(origins: &[String]) -> Cors {
        let origins: Vec<String> = origins
            .iter()
            .map(|origin| origin.trim().trim_end_matches('/').to_string())
            .filter(|origin| !origin.is_empty())
            .collect();
        Cors { any: origins.iter().any(|origin| origin == "*"), origins }
    }

    /// True if no origin is allowed (no CORS headers are sent).
    pub fn is_off(&self) -> bool {
        self.origins.is_empty()
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
    pub fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }

    /// Adds the CORS headers of an answer to a request from `origin`.
    pub fn decorate(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        if let Some(allowed) = self.allow_origin(origin) {
            if !self.any {
                headers.append(header::VARY, HeaderValue::from_static("Origin"));
            }
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        }
    }

    /// The headers of a preflight answer for `origin` asking for `request_headers`.
    pub fn preflight(
        &self,
        origin: &HeaderValue,
        request_headers: Option<&HeaderValue>,
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self.allow_origin(origin).is_none() {
            return headers;
        }
        self.decorate(origin, &mut headers);
        headers
            .insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(CORS_METHODS));
        if let Some(requested) = request_headers {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(CORS_MAX_AGE_SECONDS));
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).unwrap()
    }

    #[test]
    fn any_a_list_or_none() {
        let any = Cors::new(&["*".into()]);
        assert_eq!(any.allow_origin(&value("https://a.example")).unwrap(), "*");
        let list = Cors::new(&["https://a.example/".into(), " http://localhost:5173 ".into()]);
        assert_eq!(list.allow_origin(&value("https://A.example")).unwrap(), "https://A.example");
        assert!(list.allow_origin(&value("http://localhost:5173")).is_some());
        assert!(list.allow_origin(&value("https://evil.example")).is_none());
        let mut headers = HeaderMap::new();
        list.decorate(&value("https://a.example"), &mut headers);
        assert_eq!(headers[header::VARY], "Origin");
        let off = Cors::new(&[]);
        assert!(off.is_off() && off.allow_origin(&value("https://a.example")).is_none());

        let preflight = list
            .preflight(&value("https://a.example"), Some(&value("content-type, authorization")));
        assert_eq!(preflight[header::ACCESS_CONTROL_ALLOW_METHODS], CORS_METHODS);
        assert_eq!(preflight[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type, authorization");
        assert_eq!(preflight[header::ACCESS_CONTROL_MAX_AGE], "86400");
        assert!(list.preflight(&value("https://evil.example"), None).is_empty());
    }
}
