//! The server's one error type, and how each error becomes PocketBase's error response.
//!
//! Every failed request answers `{"data": {...}, "message": "...", "status": N}` (the shape
//! the PocketBase SDK parses into `ClientResponseError`). `data` is always an object: empty,
//! or for validation failures one `{code, message}` per field (`FieldErrors`). Messages are
//! PocketBase's own sentences where the SDK or its users may compare them.
//!
//! Errors of the document layer (`nanodb::Error`) map onto statuses by `From`: bad input is a
//! 400, a missing thing a 404, everything else (storage, corruption, a closed database) a 500
//! whose detail is logged, never sent.
//!
//! Thread safety: plain owned data.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map as JsonMap, Value as Json};
use std::collections::BTreeMap;
use std::fmt;

/// Result type of the server's fallible calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// PocketBase's message for a missing record (and for a view, update or delete rule that
/// does not match, so the two cannot be told apart).
pub const MESSAGE_NOT_FOUND: &str = "The requested resource wasn't found.";
/// PocketBase's message for a locked (null) rule and a caller who is not a superuser.
pub const MESSAGE_SUPERUSERS_ONLY: &str = "Only superusers can perform this action.";
/// PocketBase's message for an invalid form (a collection definition).
pub const MESSAGE_FORM_FAILED: &str = "An error occurred while submitting the form.";
/// PocketBase's message for a filter, sort or page it cannot use.
pub const MESSAGE_BAD_REQUEST: &str = "Something went wrong while processing your request.";

/// One field's validation failure: a PocketBase code (`validation_required`, ...) and a
/// sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The machine-readable code.
    pub code: &'static str,
    /// The human-readable sentence.
    pub message: String,
}

impl FieldError {
    /// A failure with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> FieldError {
        FieldError { code, message: message.into() }
    }
}

/// Validation failures by field name, in name order.
pub type FieldErrors = BTreeMap<String, FieldError>;

/// Everything that can go wrong in the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// 400 with per-field failures in `data`.
    Validation {
        /// What failed ("Failed to create record.").
        message: String,
        /// The failures by field.
        fields: FieldErrors,
    },
    /// 400 with a message, and optionally details in `data`.
    BadRequest {
        /// What was wrong.
        message: String,
        /// Extra details (an object), or `None` for `{}`.
        data: Option<JsonMap<String, Json>>,
    },
    /// 401: the request needs an auth token it does not carry.
    Unauthorized(String),
    /// 403: the caller may not do this.
    Forbidden(String),
    /// 404: no such collection, record or route (or a rule hides it).
    NotFound(String),
    /// 405: the route exists, but not with this method.
    MethodNotAllowed,
    /// 413: the request body is over the limit.
    PayloadTooLarge {
        /// The limit, in bytes.
        body_bytes_max: usize,
    },
    /// 429: too many requests wait for the same scarce resource (password hashing).
    TooManyRequests(String),
    /// 503: the server cannot take this now (it is stopping).
    Unavailable(String),
    /// 500: the document layer failed (storage, corruption, closed).
    Storage(nanodb::Error),
    /// 500: a file or socket operation failed (startup, shutdown).
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
    /// 500: anything else that should not happen (a panicked worker, a bad secret).
    Internal(String),
}

impl Error {
    /// A 400 with `message` and empty `data`.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::BadRequest { message: message.into(), data: None }
    }

    /// A 400 with one field's failure in `data`, under `message`.
    pub fn invalid_field(message: &str, field: &str, error: FieldError) -> Error {
        let fields = FieldErrors::from([(field.to_string(), error)]);
        Error::Validation { message: message.to_string(), fields }
    }

    /// A 400 for a filter or sort that cannot be used: `detail` under `data.filter`, with
    /// code `validation_invalid_filter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Error {
        let detail = json!({"code": "validation_invalid_filter", "message": detail.into()});
        let data = JsonMap::from_iter([("filter".to_string(), detail)]);
        Error::BadRequest { message: MESSAGE_BAD_REQUEST.into(), data: Some(data) }
    }

    /// A 404 with PocketBase's generic message.
    pub fn not_found() -> Error {
        Error::NotFound(MESSAGE_NOT_FOUND.to_string())
    }

    /// A 403 for a locked rule.
    pub fn superusers_only() -> Error {
        Error::Forbidden(MESSAGE_SUPERUSERS_ONLY.to_string())
    }

    /// An I/O failure while doing `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Validation { .. } | Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Storage(_) | Error::Io { .. } | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The response body: `{data, message, status}`. Internal details stay in the log.
    pub fn body(&self) -> Json {
        let (message, data) = match self {
            Error::Validation { message, fields } => {
                let data = fields
                    .iter()
                    .map(|(name, error)| {
                        (name.clone(), json!({"code": error.code, "message": error.message}))
                    })
                    .collect();
                (message.clone(), data)
            }
            Error::BadRequest { message, data } => {
                (message.clone(), data.clone().unwrap_or_default())
            }
            Error::Unauthorized(message)
            | Error::Forbidden(message)
            | Error::NotFound(message)
            | Error::TooManyRequests(message)
            | Error::Unavailable(message) => (message.clone(), JsonMap::new()),
            Error::MethodNotAllowed => ("Method not allowed.".to_string(), JsonMap::new()),
            Error::PayloadTooLarge { body_bytes_max } => (
                format!("The request body is over the limit of {body_bytes_max} bytes."),
                JsonMap::new(),
            ),
            Error::Storage(_) | Error::Io { .. } | Error::Internal(_) => {
                (MESSAGE_BAD_REQUEST.to_string(), JsonMap::new())
            }
        };
        json!({"data": data, "message": sentenize(&message), "status": self.status().as_u16()})
    }
}

/// PocketBase's "sentenized" message: first letter upper case, ending in `.`, `?` or `!`.
pub fn sentenize(message: &str) -> String {
    let trimmed = message.trim();
    let mut chars = trimmed.chars();
    let Some(first) = chars.next() else { return String::new() };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '?', '!']) {
        out.push('.');
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Validation { message, fields } => {
                write!(f, "{message}")?;
                for (name, error) in fields {
                    write!(f, " {name}: {} ({})", error.message, error.code)?;
                }
                Ok(())
            }
            Error::BadRequest { message, data: None } => write!(f, "bad request: {message}"),
            Error::BadRequest { message, data: Some(data) } => {
                write!(f, "bad request: {message} {}", Json::Object(data.clone()))
            }
            Error::Unauthorized(message) => write!(f, "unauthorized: {message}"),
            Error::Forbidden(message) => write!(f, "forbidden: {message}"),
            Error::NotFound(message) => write!(f, "not found: {message}"),
            Error::MethodNotAllowed => f.write_str("method not allowed"),
            Error::PayloadTooLarge { body_bytes_max } => {
                write!(f, "request body over the limit of {body_bytes_max} bytes")
            }
            Error::TooManyRequests(message) => write!(f, "too many requests: {message}"),
            Error::Unavailable(message) => write!(f, "unavailable: {message}"),
            Error::Storage(error) => write!(f, "document layer: {error}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage(error) => Some(error),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// True if a read spent its budget and stopped (`state::read_inline_first` then runs it
    /// again without one).
    pub fn is_budget_spent(&self) -> bool {
        matches!(self, Error::Storage(nanodb::Error::BudgetExceeded { .. }))
    }
}

impl From<nanodb::Error> for Error {
    /// Bad input is a 400 (a query's detail under `data.filter`), a missing thing a 404,
    /// the rest a 500. Unique violations are mapped where the field names are known
    /// (`records::write`); here they are a plain 400.
    fn from(error: nanodb::Error) -> Error {
        use nanodb::Error as E;
        match error {
            E::InvalidQuery { .. } => Error::invalid_filter(error.to_string()),
            E::InvalidDocument { .. }
            | E::InvalidName { .. }
            | E::LimitExceeded { .. }
            | E::UniqueViolation { .. }
            | E::AlreadyExists { .. } => Error::bad_request(error.to_string()),
            E::NotFound { .. } => Error::not_found(),
            other => Error::Storage(other),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        crate::http::response::json(status, &self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_pocketbase_shape() {
        let error = Error::invalid_field(
            "Failed to create record.",
            "title",
            FieldError::new("validation_required", "Cannot be blank."),
        );
        assert_eq!(
            error.body(),
            json!({"data": {"title": {"code": "validation_required", "message": "Cannot be blank."}},
                   "message": "Failed to create record.", "status": 400})
        );
        assert_eq!(
            Error::not_found().body(),
            json!({"data": {}, "message": MESSAGE_NOT_FOUND, "status": 404})
        );
        assert_eq!(Error::PayloadTooLarge { body_bytes_max: 10 }.status().as_u16(), 413);
        assert_eq!(Error::MethodNotAllowed.body()["status"], 405);
        assert_eq!(Error::TooManyRequests("x".into()).status().as_u16(), 429);
        assert_eq!(Error::Unavailable("x".into()).status().as_u16(), 503);
        let internal = Error::Internal("secret detail".into());
        assert_eq!(internal.status().as_u16(), 500);
        assert!(!internal.body().to_string().contains("secret"), "details stay in the log");
    }

    #[test]
    fn messages_are_sentenized() {
        assert_eq!(sentenize("failed"), "Failed.");
        assert_eq!(sentenize("Done!"), "Done!");
        assert_eq!(sentenize("  why? "), "Why?");
        assert_eq!(sentenize(""), "");
    }

    #[test]
    fn document_errors_map_to_statuses() {
        let query = nanodb::Error::InvalidQuery { detail: "bad".into(), position: Some(3) };
        let mapped = Error::from(query);
        assert_eq!(mapped.status().as_u16(), 400);
        assert_eq!(mapped.body()["data"]["filter"]["code"], "validation_invalid_filter");
        let missing = nanodb::Error::NotFound { kind: "collection", name: "x".into() };
        assert_eq!(Error::from(missing).status().as_u16(), 404);
        assert_eq!(Error::from(nanodb::Error::Closed).status().as_u16(), 500);
        assert!(Error::from(nanodb::Error::Closed).to_string().contains("closed"));
    }
}
