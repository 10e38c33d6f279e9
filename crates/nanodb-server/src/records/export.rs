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

use super::values::output;
use crate::auth::requester::Requester;
use crate::schema::field::FieldKind;
use crate::schema::CollectionDef;
use nanodb::{Document, Value};
use serde_json::{Map as JsonMap, Value as Json};

/// Whether an auth record's email is shown whatever its visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Email {
    /// By the usual rules.
    ByVisibility,
    /// Always (auth responses: the record logging in is the requester).
    Shown,
}

/// The record JSON of `document` of `def` as `viewer` may see it.
pub fn export(
    def: &CollectionDef,
    document: &Document,
    viewer: &Requester,
    email: Email,
) -> JsonMap<String, Json> {
    // Field by field: a stored document decodes only the fields asked for, never a whole map.
    let mut out = JsonMap::new();
    out.insert("collectionId".into(), Json::from(def.id.as_str()));
    out.insert("collectionName".into(), Json::from(def.name.as_str()));
    out.insert("id".into(), Json::from(document.id()));
    out.insert("created".into(), Json::from(document.created().to_pocketbase()));
    out.insert("updated".into(), Json::from(document.updated().to_pocketbase()));
    let superuser = viewer.is_superuser();
    let is_self = viewer
        .record()
        .is_some_and(|auth| auth.collection.id == def.id && auth.document.id() == document.id());
    for field in &def.fields {
        let name = field.name.as_str();
        if out.contains_key(name) || matches!(field.kind, FieldKind::Password { .. }) {
            continue;
        }
        if name == "tokenKey" && def.is_auth() {
            continue;
        }
        if field.hidden && !superuser {
            continue;
        }
        if def.is_auth() && name == "email" {
            let visible = matches!(document.field("emailVisibility"), Some(Value::Bool(true)));
            if !(visible || superuser || is_self || email == Email::Shown) {
                continue;
            }
        }
        out.insert(name.to_string(), output(field, document.field(name)));
    }
    out
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
