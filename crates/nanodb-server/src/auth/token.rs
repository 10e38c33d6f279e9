//! Auth tokens: JWTs signed with HMAC-SHA256 (HS256), with PocketBase's claims
//! `{collectionId, exp, id, refreshable, type: "auth"}`.
//!
//! The signing key of a record's tokens is its `tokenKey` (random, replaced on every
//! password change) followed by the server's secret, so changing a password invalidates
//! every token issued before, and a token is useless without the server's secret.
//!
//! Verification is strict: three base64url segments; a header that is exactly an object
//! with `"alg": "HS256"` (and at most `"typ": "JWT"`), so `alg: none` or any other algorithm
//! is refused before any key is used; claims of the right types with `type` "auth"; `exp` in
//! the future; and last the signature, compared in constant time (`hmac`'s `verify_slice`).
//! Checking that the record still exists and belongs to the claimed collection is the
//! caller's (`auth::requester`), since it needs the database.
//!
//! Thread safety: pure functions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value as Json};
use sha2::Sha256;

/// Longest token accepted, in bytes (a real one is about 250).
pub const TOKEN_BYTES_MAX: usize = 2 * 1024;
/// The token type of auth tokens.
pub const TOKEN_TYPE_AUTH: &str = "auth";

type HmacSha256 = Hmac<Sha256>;

/// The claims of an auth token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The record id.
    pub id: String,
    /// The record's collection id.
    pub collection_id: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: i64,
    /// Whether `auth-refresh` may issue a new token from it.
    pub refreshable: bool,
}

/// The HMAC key of a record's tokens.
pub fn signing_key(token_key: &str, secret: &str) -> Vec<u8> {
    [token_key.as_bytes(), secret.as_bytes()].concat()
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// A signed token for `claims`.
pub fn sign(claims: &Claims, key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = json!({
        "collectionId": claims.collection_id, "exp": claims.exp, "id": claims.id,
        "refreshable": claims.refreshable, "type": TOKEN_TYPE_AUTH,
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = mac(key);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn segment_json(segment: &str) -> Result<Json, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| "a segment is not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "a segment is not JSON")
}

/// The claims of `token` if its form, header, claims and expiry (against `now_secs`) are
/// right; the signature is not checked (see `verify_signature`).
pub fn decode_unverified(token: &str, now_secs: i64) -> Result<Claims, &'static str> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err("the token is too long");
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err("a token has three segments");
    };
    let header = segment_json(header)?;
    let header = header.as_object().ok_or("the header is not an object")?;
    if header.get("alg").and_then(Json::as_str) != Some("HS256") {
        return Err("the algorithm is not HS256");
    }
    let allowed = |(key, value): (&String, &Json)| match key.as_str() {
        "alg" => true,
        "typ" => value.as_str() == Some("JWT"),
        _ => false,
    };
    if !header.iter().all(allowed) {
        return Err("the header has other fields");
    }
    let claims = segment_json(payload)?;
    let text = |name: &str| claims.get(name).and_then(Json::as_str).filter(|s| !s.is_empty());
    if text("type") != Some(TOKEN_TYPE_AUTH) {
        return Err("not an auth token");
    }
    let (Some(id), Some(collection_id)) = (text("id"), text("collectionId")) else {
        return Err("the id or collectionId claim is missing");
    };
    let exp = claims.get("exp").and_then(Json::as_i64).ok_or("the exp claim is missing")?;
    if exp <= now_secs {
        return Err("the token has expired");
    }
    Ok(Claims {
        id: id.to_string(),
        collection_id: collection_id.to_string(),
        exp,
        refreshable: claims.get("refreshable").and_then(Json::as_bool).unwrap_or(false),
    })
}

/// True if `token`'s signature is HS256 of its first two segments under `key`.
pub fn verify_signature(token: &str, key: &[u8]) -> bool {
    let Some((signing_input, signature)) = token.rsplit_once('.') else { return false };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else { return false };
    let mut mac = mac(key);
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    nanodb::Date::now().unix_ms().div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600;

    fn claims() -> Claims {
        Claims {
            id: "abcdefghijklmno".into(),
            collection_id: "_pb_users_auth_".into(),
            exp: NOW + 60,
            refreshable: true,
        }
    }

    fn forge(header: &str, payload: &str, key: &[u8]) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let mut mac = mac(key);
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signed_tokens_decode_and_verify() {
        let key = signing_key("tokenkey", "secret");
        let token = sign(&claims(), &key);
        assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."), "{token}");
        assert_eq!(decode_unverified(&token, NOW), Ok(claims()));
        assert!(verify_signature(&token, &key));
        assert!(!verify_signature(&token, &signing_key("tokenkey2", "secret")));
        assert!(!verify_signature(&token, &signing_key("tokenkey", "secret2")));
        let payload = token.split('.').nth(1).unwrap();
        assert!(!payload.contains(['-', '_']), "the SDK decodes claims with atob");
    }

    #[test]
    fn forged_and_expired_tokens_are_refused() {
        let key = signing_key("k", "s");
        let payload =
            r#"{"collectionId":"c","exp":1767225660,"id":"i","refreshable":true,"type":"auth"}"#;
        let cases = [
            (forge(r#"{"alg":"none","typ":"JWT"}"#, payload, &key), "the algorithm is not HS256"),
            (forge(r#"{"alg":"HS512"}"#, payload, &key), "the algorithm is not HS256"),
            (forge(r#"{"typ":"JWT"}"#, payload, &key), "the algorithm is not HS256"),
            (forge(r#"{"alg":"HS256","kid":"x"}"#, payload, &key), "the header has other fields"),
            (forge(r#"{"alg":"HS256","typ":"JWS"}"#, payload, &key), "the header has other fields"),
            (forge(r#"["HS256"]"#, payload, &key), "the header is not an object"),
            (
                forge(r#"{"alg":"HS256"}"#, &payload.replace("auth", "file"), &key),
                "not an auth token",
            ),
            (
                forge(r#"{"alg":"HS256"}"#, &payload.replace("1767225660", "1767225600"), &key),
                "the token has expired",
            ),
            (
                forge(r#"{"alg":"HS256"}"#, &payload.replace("\"i\"", "\"\""), &key),
                "the id or collectionId claim is missing",
            ),
            (
                forge(r#"{"alg":"HS256"}"#, &payload.replace("1767225660", "\"x\""), &key),
                "the exp claim is missing",
            ),
            ("a.b".to_string(), "a token has three segments"),
            ("a.b.c.d".to_string(), "a token has three segments"),
            ("!!.b.c".to_string(), "a segment is not base64url"),
            ("x".repeat(TOKEN_BYTES_MAX), "a token has three segments"),
            ("x".repeat(TOKEN_BYTES_MAX + 1), "the token is too long"),
        ];
        for (token, reason) in cases {
            assert_eq!(decode_unverified(&token, NOW), Err(reason), "{token}");
        }
        let unsigned =
            format!("{}.", forge(r#"{"alg":"none"}"#, payload, &key).rsplit_once('.').unwrap().0);
        assert!(!verify_signature(&unsigned, &key));
        assert!(!verify_signature("no-dots", &key));
    }
}
