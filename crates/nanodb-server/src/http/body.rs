//! Request bodies: read under the size limit, then turned into one JSON object whatever the
//! content type.
//!
//! - `application/json` (and anything that is not a form): a JSON object.
//! - `multipart/form-data`: plain parts are form values (types inferred, `form_values`), each
//!   `@jsonPayload` part is a JSON object merged in; file parts are refused (no file fields
//!   yet).
//! - `application/x-www-form-urlencoded`: form values.
//!
//! An empty body is `{}` whatever the content type says (the SDK sends
//! `Content-Type: application/json` with no body on GET, DELETE and `auth-refresh`).
//!
//! Thread safety: pure functions over owned bytes.
//!
//! Invariant: no more than the body limit is ever read into memory; a longer body is
//! `Error::PayloadTooLarge`, told from its `Content-Length` before reading when it has one.

use super::{form_values, multipart};
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map as JsonMap, Value as Json};

/// PocketBase's message for a body it cannot read.
pub const MESSAGE_BAD_BODY: &str = "Failed to load the submitted data due to invalid formatting.";
/// The multipart field whose value is JSON merged into the body.
pub const JSON_PAYLOAD_FIELD: &str = "@jsonPayload";

/// Reads the whole body, refusing one over `body_bytes_max` bytes with 413.
pub async fn read(body: Body, headers: &HeaderMap, body_bytes_max: usize) -> Result<Bytes> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > body_bytes_max as u64) {
        return Err(Error::PayloadTooLarge { body_bytes_max });
    }
    match Limited::new(body, body_bytes_max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Error::PayloadTooLarge { body_bytes_max })
        }
        Err(error) => Err(Error::bad_request(format!("Failed to read the request body: {error}"))),
    }
}

/// The body as one JSON object, by its content type.
pub fn parse(headers: &HeaderMap, bytes: &[u8]) -> Result<JsonMap<String, Json>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonMap::new());
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if let Some(boundary) = multipart::boundary(content_type) {
        return parse_multipart(bytes, &boundary);
    }
    let kind = content_type.split(';').next().unwrap_or("").trim();
    if kind.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let mut fields = JsonMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            form_values::add(&mut fields, &name, form_values::infer(&value));
        }
        return Ok(fields);
    }
    json_object(bytes)
}

fn json_object(bytes: &[u8]) -> Result<JsonMap<String, Json>> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(map)) => Ok(map),
        _ => Err(Error::bad_request(MESSAGE_BAD_BODY)),
    }
}

fn parse_multipart(bytes: &[u8], boundary: &str) -> Result<JsonMap<String, Json>> {
    let parts = multipart::parse(bytes, boundary)
        .map_err(|reason| Error::bad_request(format!("{MESSAGE_BAD_BODY} ({reason})")))?;
    let mut fields = JsonMap::new();
    for part in parts {
        if part.filename.is_some() {
            return Err(Error::bad_request(format!(
                "File uploads are not supported yet (part {:?}).",
                part.name
            )));
        }
        if part.name == JSON_PAYLOAD_FIELD {
            fields.extend(json_object(&part.data)?);
            continue;
        }
        let text = String::from_utf8(part.data)
            .map_err(|_| Error::bad_request(format!("{MESSAGE_BAD_BODY} (not UTF-8)")))?;
        form_values::add(&mut fields, &part.name, form_values::infer(&text));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    #[test]
    fn json_forms_and_multipart_become_one_object() {
        let json_headers = headers("application/json");
        assert_eq!(parse(&json_headers, b"").unwrap(), JsonMap::new());
        assert_eq!(parse(&json_headers, b" \n").unwrap(), JsonMap::new());
        let parsed = parse(&json_headers, br#"{"a": [1, {"b": null}]}"#).unwrap();
        assert_eq!(Json::Object(parsed), json!({"a": [1, {"b": null}]}));
        let form = parse(&headers("application/x-www-form-urlencoded"), b"n=2&t=a+b&t=c").unwrap();
        assert_eq!(Json::Object(form), json!({"n": 2, "t": ["a b", "c"]}));
        let body = "--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n\
            --b\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n2\r\n\
            --b\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n{\"meta\":{\"k\":1}}\r\n\
            --b--\r\n";
        let parsed = parse(&headers("multipart/form-data; boundary=b"), body.as_bytes()).unwrap();
        assert_eq!(Json::Object(parsed), json!({"title": "x", "n": 2, "meta": {"k": 1}}));
    }

    #[test]
    fn bad_bodies_are_400() {
        let json_headers = headers("application/json");
        for bad in [&b"{"[..], b"[1]", b"\"text\"", b"{\"a\":1}x", b"\xff"] {
            let error = parse(&json_headers, bad).unwrap_err();
            assert_eq!(error.status().as_u16(), 400, "{bad:?}");
        }
        let file =
            "--b\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"f\"\r\n\r\nx\r\n--b--";
        let error =
            parse(&headers("multipart/form-data; boundary=b"), file.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("File uploads are not supported"), "{error}");
        let payload =
            "--b\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n[1]\r\n--b--";
        let error = parse(&headers("multipart/form-data; boundary=b"), payload.as_bytes());
        assert!(error.is_err());
    }
}
