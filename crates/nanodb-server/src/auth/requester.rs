//! Who is asking: a guest, a superuser, or an auth record, from the `Authorization` header.
//!
//! The header holds the raw JWT (the SDK sends no `Bearer ` prefix; one is accepted,
//! case-insensitively). A token that is missing, malformed, expired, badly signed, or whose
//! record is gone or in another collection than it claims makes the request a guest's, as
//! in PocketBase; endpoints that need auth then answer 401.
//!
//! Thread safety: `resolve` reads the database; call it from a blocking thread.

use super::token::{decode_unverified, now_secs, sign, signing_key, verify_signature, Claims};
use crate::error::Result;
use crate::schema::defaults::SUPERUSERS_ID;
use crate::schema::CollectionDef;
use crate::state::AppState;
use axum::http::{header, HeaderMap};
use nanodb::{Document, Value};
use std::sync::Arc;

/// An authenticated record and its collection.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    /// The record's (auth) collection.
    pub collection: Arc<CollectionDef>,
    /// The record as stored.
    pub document: Document,
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub enum Requester {
    /// No valid token.
    Guest,
    /// A record of `_superusers`: every rule is bypassed.
    Superuser(AuthRecord),
    /// A record of another auth collection.
    Record(AuthRecord),
}

impl Requester {
    /// True for a superuser.
    pub fn is_superuser(&self) -> bool {
        matches!(self, Requester::Superuser(_))
    }

    /// The authenticated record, if any.
    pub fn record(&self) -> Option<&AuthRecord> {
        match self {
            Requester::Guest => None,
            Requester::Superuser(record) | Requester::Record(record) => Some(record),
        }
    }
}

/// The token of the `Authorization` header, without an optional `Bearer ` prefix.
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = match (value.get(..6), value.get(6..)) {
        (Some(prefix), Some(rest))
            if prefix.eq_ignore_ascii_case("bearer")
                && (rest.is_empty() || rest.starts_with(char::is_whitespace)) =>
        {
            rest.trim()
        }
        _ => value,
    };
    (!token.is_empty()).then(|| token.to_string())
}

/// The requester a token names; a guest unless every check passes.
pub fn resolve(state: &AppState, token: Option<&str>) -> Result<Requester> {
    let Some(token) = token else { return Ok(Requester::Guest) };
    let Ok(claims) = decode_unverified(token, now_secs()) else { return Ok(Requester::Guest) };
    Ok(match verified_record(state, token, &claims)? {
        Some(record) if record.collection.id == SUPERUSERS_ID => Requester::Superuser(record),
        Some(record) => Requester::Record(record),
        None => Requester::Guest,
    })
}

/// The record of a token whose claims decoded, if it exists in the claimed auth collection
/// and the signature is right under its token key.
pub fn verified_record(
    state: &AppState,
    token: &str,
    claims: &Claims,
) -> Result<Option<AuthRecord>> {
    let Some(collection) = state.definitions.snapshot().by_id(&claims.collection_id) else {
        return Ok(None);
    };
    if !collection.is_auth() || nanodb::names::check_document_id(&claims.id).is_err() {
        return Ok(None);
    }
    let Some(document) = state.definitions.records(&collection)?.get(&claims.id)? else {
        return Ok(None);
    };
    let token_key = document.get("tokenKey").and_then(Value::as_str).unwrap_or("");
    if token_key.is_empty() || !verify_signature(token, &signing_key(token_key, &state.secret)) {
        return Ok(None);
    }
    Ok(Some(AuthRecord { collection, document }))
}

/// A new auth token for `record`, valid for its collection's token lifetime.
pub fn issue_token(state: &AppState, record: &AuthRecord) -> String {
    let token_key = record.document.get("tokenKey").and_then(Value::as_str).unwrap_or("");
    let lifetime = i64::try_from(record.collection.auth.token_seconds).unwrap_or(i64::MAX);
    let claims = Claims {
        id: record.document.id().to_string(),
        collection_id: record.collection.id.clone(),
        exp: now_secs().saturating_add(lifetime),
        refreshable: true,
    };
    sign(&claims, &signing_key(token_key, &state.secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_come_raw_or_with_bearer() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            token_from(&headers)
        };
        assert_eq!(with("abc.def.ghi").as_deref(), Some("abc.def.ghi"));
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bEaReR  abc ").as_deref(), Some("abc"));
        assert_eq!(with("Bearer "), None);
        assert_eq!(with(""), None);
        assert_eq!(token_from(&HeaderMap::new()), None);
    }
}
