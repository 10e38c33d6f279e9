//! Realtime subscriptions as the SDK submits them: `posts/*`, `posts/RECORD_ID`, the
//! deprecated bare `posts` (like `posts/*`), or any other text (a custom topic, which no
//! record event matches), each optionally followed by `?options=` + the URL-encoded JSON
//! `{"query": {...}, "headers": {...}}` of the subscriber's options.
//!
//! The options' values are coerced to text (strings as they are, anything else as its JSON);
//! header names become `@request.headers.*` names as for any request. `query.filter` is an
//! extra filter, `query.expand` and `query.fields` shape the pushed record. Malformed options
//! are ignored (the topic still matches), as in PocketBase.
//!
//! Thread safety: plain owned data.
//!
//! Invariant: a subscription's name never holds a control character (it becomes an SSE
//! `event:` line, where a line break would forge another field or message).

use crate::http::query::QueryParams;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value as Json;

/// Most subscriptions of one client (PocketBase's).
pub const SUBSCRIPTIONS_MAX: usize = 1_000;
/// Longest subscription, in bytes (PocketBase's).
pub const SUBSCRIPTION_BYTES_MAX: usize = 2_500;

/// One subscription of a realtime client.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The subscription exactly as submitted: the SSE event name of its messages.
    pub name: String,
    /// The collection name or id before the `/`.
    pub collection: String,
    /// The record id after it; `None` for `*` (every record) or a bare collection.
    pub record: Option<String>,
    /// `options.query`, as text.
    pub query: QueryParams,
    /// `options.headers`.
    pub headers: HeaderMap,
}

impl Subscription {
    /// Parses a submitted subscription; `Err` with the reason for one over
    /// `SUBSCRIPTION_BYTES_MAX` bytes, empty, or holding a control character.
    pub fn parse(name: &str) -> Result<Subscription, String> {
        if name.is_empty() {
            return Err("a subscription cannot be empty".into());
        }
        if name.len() > SUBSCRIPTION_BYTES_MAX {
            return Err(format!("a subscription is longer than {SUBSCRIPTION_BYTES_MAX} bytes"));
        }
        if name.chars().any(char::is_control) {
            return Err("a subscription cannot hold control characters".into());
        }
        let (topic, raw_query) = match name.split_once('?') {
            Some((topic, query)) => (topic, Some(query)),
            None => (name, None),
        };
        let (collection, record) = match topic.split_once('/') {
            Some((collection, "*")) => (collection, None),
            Some((collection, record)) => (collection, Some(record.to_string())),
            None => (topic, None),
        };
        let options = QueryParams::parse(raw_query)
            .get("options")
            .and_then(|text| serde_json::from_str::<Json>(text).ok())
            .unwrap_or(Json::Null);
        let query = QueryParams::from_pairs(text_pairs(&options["query"]));
        let mut headers = HeaderMap::new();
        for (name, value) in text_pairs(&options["headers"]) {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
            {
                headers.insert(name, value);
            }
        }
        Ok(Subscription {
            name: name.to_string(),
            collection: collection.to_string(),
            record,
            query,
            headers,
        })
    }

    /// True if an event on record `id` of the collection named `name` with id
    /// `collection_id` belongs to this subscription.
    pub fn matches(&self, name: &str, collection_id: &str, id: &str) -> bool {
        let collection =
            self.collection.eq_ignore_ascii_case(name) || self.collection == collection_id;
        collection && self.record.as_deref().is_none_or(|record| record == id)
    }
}

/// The members of a JSON object as text pairs (non-objects have none).
fn text_pairs(json: &Json) -> Vec<(String, String)> {
    let Some(object) = json.as_object() else { return Vec::new() };
    object
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Json::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    #[test]
    fn topics_and_options_as_the_sdk_sends_them() {
        let options = r#"{"query":{"filter":"title != \"\"","expand":"author","n":5},"headers":{"X-Trace":"t1"}}"#;
        let name = format!("posts/*?options={}", encode(options));
        let all = Subscription::parse(&name).unwrap();
        assert_eq!(all.name, name, "the event name is the subscription as submitted");
        assert_eq!((all.collection.as_str(), all.record.as_deref()), ("posts", None));
        assert_eq!(all.query.get("filter"), Some("title != \"\""));
        assert_eq!(all.query.get("expand"), Some("author"));
        assert_eq!(all.query.get("n"), Some("5"), "values are coerced to text");
        assert_eq!(all.headers.get("x-trace").unwrap(), "t1");
        assert!(all.matches("posts", "pbc_1", "anyid") && all.matches("POSTS", "pbc_1", "x"));
        assert!(!all.matches("other", "pbc_2", "x"));

        let one = Subscription::parse("pbc_1/abc").unwrap();
        assert_eq!(one.record.as_deref(), Some("abc"));
        assert!(one.matches("posts", "pbc_1", "abc") && !one.matches("posts", "pbc_1", "abd"));
        let bare = Subscription::parse("posts").unwrap();
        assert!(bare.matches("posts", "pbc_1", "x"), "a bare collection is every record");
        let broken = Subscription::parse("posts/*?options=%7Bnot-json").unwrap();
        assert_eq!(broken.query.pairs().len(), 0, "malformed options are ignored");
        assert!(Subscription::parse("PB_CONNECT").is_ok());
    }

    #[test]
    fn bad_subscriptions_and_the_length_limit() {
        assert!(Subscription::parse("").is_err());
        assert!(Subscription::parse("posts/*\nevent:forged").is_err());
        assert!(Subscription::parse("posts/\r").is_err());
        let at_limit = format!("posts/{}", "a".repeat(SUBSCRIPTION_BYTES_MAX - 6));
        assert!(Subscription::parse(&at_limit).is_ok());
        assert!(Subscription::parse(&format!("{at_limit}a")).is_err());
    }
}
