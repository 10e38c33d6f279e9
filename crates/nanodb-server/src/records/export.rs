//! A stored record as PocketBase's record JSON: `collectionId`, `collectionName`, `id`,
//! `created` and `updated` (as `2006-01-02 15:04:05.000Z`), then every field of the
//! definition with its empty value when unset (`values::output`).
//!
//! Never output: `password` and `tokenKey`. Only to superusers: hidden fields. An auth
//! record's `email` only when `emailVisibility` is on, or to the record itself, to a
//! superuser, or in an auth response. Fields the record has but the definition does not
//! (left by a removed field before its data was cleared) are not output.
//!
//! Thread safety: pure functions.

pub use super::record_json::Email;
use super::record_json::RecordJson;
use crate::auth::requester::Requester;
use crate::schema::CollectionDef;
use nanodb::Document;
use serde_json::{Map as JsonMap, Value as Json};

/// The record JSON of `document` of `def` as `viewer` may see it, as a map that `expand`
/// and `fields` can edit (`RecordJson` states the rules; a response without either writes
/// it out directly instead).
pub fn export(
    def: &CollectionDef,
    document: &Document,
    viewer: &Requester,
    email: Email,
) -> JsonMap<String, Json> {
    match serde_json::to_value(RecordJson { def, document, viewer, email }) {
        Ok(Json::Object(map)) => map,
        // Not reached: a record serializes to a map with string keys.
        _ => JsonMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requester::AuthRecord;
    use crate::schema::defaults;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn secrets_are_never_output_and_emails_follow_visibility() {
        let users = defaults::users();
        let stored = json!({"id": "u1", "email": "u@x.org", "password": "$argon2id$...",
            "tokenKey": "k", "emailVisibility": false, "verified": false, "left": "over"});
        let document = crate::test_support::document(stored);
        let other = crate::test_support::document(json!({"id": "u2"}));
        let viewers = [
            (Requester::Guest, Email::ByVisibility, false),
            (
                Requester::Record(AuthRecord {
                    collection: Arc::new(users.clone()),
                    document: other,
                }),
                Email::ByVisibility,
                false,
            ),
            (
                Requester::Record(AuthRecord {
                    collection: Arc::new(users.clone()),
                    document: document.clone(),
                }),
                Email::ByVisibility,
                true,
            ),
            (Requester::Guest, Email::Shown, true),
        ];
        for (viewer, email, shown) in viewers {
            let json = export(&users, &document, &viewer, email);
            assert!(!json.contains_key("password") && !json.contains_key("tokenKey"), "{json:?}");
            assert!(!json.contains_key("left"), "fields the definition lacks stay out");
            assert_eq!(json.contains_key("email"), shown, "{viewer:?}");
            assert_eq!(json["collectionName"], "users");
            assert_eq!(json["name"], "", "unset text is empty");
            assert!(json["created"].as_str().unwrap().contains(' '));
        }
    }
}
