//! Record JSON as `serde::Serialize` views over stored documents: `RecordJson` (one record
//! as `export` describes it), `FieldJson` (one field's output form), and `StoredJson` (a
//! stored value with dates in PocketBase's form); a list answer of them is
//! `http::query::PageJson`.
//!
//! These are the one statement of what a record looks like on the wire. `export` and
//! `values::output` build `serde_json` values from them (for `expand` and `fields`, which
//! edit the JSON), and a list or view without either serializes them straight to the
//! response text: no map, key string or value is allocated per field on the way.
//!
//! Thread safety: borrowed, immutable views; pure functions.
//!
//! Invariants:
//! 1. Keys come in byte order (as PocketBase writes them, and as `export`'s map holds them):
//!    `collectionId`, `collectionName`, `id`, `created`, `updated` and the definition's
//!    fields that the viewer may see.
//! 2. Serializing a view cannot fail for lack of string keys: every map key is a string.

use super::values::items;
use crate::auth::requester::Requester;
use crate::schema::field::{Field, FieldKind};
use crate::schema::CollectionDef;
use nanodb::{Document, Value};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

/// Whether an auth record's email is shown whatever its visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Email {
    /// By the usual rules.
    ByVisibility,
    /// Always (auth responses: the record logging in is the requester).
    Shown,
}

/// Keys every record starts with; a field of the same name is not output again.
const LEADING_KEYS: [&str; 5] = ["collectionId", "collectionName", "id", "created", "updated"];

/// The record JSON of `document` of `def` as `viewer` may see it.
pub struct RecordJson<'a> {
    /// The record's collection.
    pub def: &'a CollectionDef,
    /// The stored record.
    pub document: &'a Document,
    /// Who asks (hidden fields and emails depend on it).
    pub viewer: &'a Requester,
    /// Whether the email is shown whatever its visibility.
    pub email: Email,
}

impl RecordJson<'_> {
    /// The fields of the definition this viewer sees, in order.
    fn shown_fields(&self) -> impl Iterator<Item = &Field> {
        let (def, document) = (self.def, self.document);
        let superuser = self.viewer.is_superuser();
        let is_self = self.viewer.record().is_some_and(|auth| {
            auth.collection.id == def.id && auth.document.id() == document.id()
        });
        let email_shown = def.is_auth()
            && (superuser
                || is_self
                || self.email == Email::Shown
                || matches!(document.field("emailVisibility"), Some(Value::Bool(true))));
        def.fields.iter().filter(move |field| {
            let name = field.name.as_str();
            !(LEADING_KEYS.contains(&name)
                || matches!(field.kind, FieldKind::Password { .. })
                || (name == "tokenKey" && def.is_auth())
                || (field.hidden && !superuser)
                || (def.is_auth() && name == "email" && !email_shown))
        })
    }
}

/// One key of a record and where its value comes from.
enum Entry<'a> {
    CollectionId,
    CollectionName,
    Id,
    Created,
    Updated,
    Field(&'a Field),
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let document = self.document;
        let leading =
            [Entry::CollectionId, Entry::CollectionName, Entry::Id, Entry::Created, Entry::Updated];
        let mut entries: Vec<(&str, Entry)> = LEADING_KEYS.into_iter().zip(leading).collect();
        entries.extend(self.shown_fields().map(|field| (field.name.as_str(), Entry::Field(field))));
        // Keys in byte order, as PocketBase writes them (Go sorts map keys) and as the
        // `serde_json` map of `export` holds them.
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (name, entry) in entries {
            match entry {
                Entry::CollectionId => map.serialize_entry(name, &self.def.id)?,
                Entry::CollectionName => map.serialize_entry(name, &self.def.name)?,
                Entry::Id => map.serialize_entry(name, document.id())?,
                Entry::Created => map.serialize_entry(name, &document.created().to_pocketbase())?,
                Entry::Updated => map.serialize_entry(name, &document.updated().to_pocketbase())?,
                Entry::Field(field) => {
                    let value = document.field(&field.name);
                    map.serialize_entry(name, &FieldJson { field, value })?;
                }
            }
        }
        map.end()
    }
}

/// The JSON `field` shows for a stored value (its empty form when missing), shaped to the
/// field's current options (a multiple field shows an array even if the value was stored
/// when it was single, and the other way round).
pub struct FieldJson<'a> {
    /// The field's definition.
    pub field: &'a Field,
    /// Its stored value, if set.
    pub value: Option<&'a Value>,
}

impl Serialize for FieldJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (&self.field.kind, self.value) {
            (kind, value) if kind.is_multiple() => {
                let strings = value.map(items).unwrap_or_default();
                let mut seq = serializer.serialize_seq(Some(strings.len()))?;
                for text in strings {
                    seq.serialize_element(text)?;
                }
                seq.end()
            }
            (FieldKind::Select { .. } | FieldKind::Relation { .. }, Some(value)) => {
                serializer.serialize_str(items(value).last().copied().unwrap_or(""))
            }
            (_, Some(value)) => StoredJson(value).serialize(serializer),
            (FieldKind::Number { .. }, None) => serializer.serialize_i64(0),
            (FieldKind::Bool, None) => serializer.serialize_bool(false),
            (FieldKind::Json { .. }, None) => serializer.serialize_unit(),
            (_, None) => serializer.serialize_str(""),
        }
    }
}

/// A stored value for output: as the value serializes itself, but dates (also inside arrays
/// and objects) in PocketBase's `2006-01-02 15:04:05.000Z` form.
pub struct StoredJson<'a>(pub &'a Value);

impl Serialize for StoredJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Date(date) => serializer.serialize_str(&date.to_pocketbase()),
            Value::Array(values) => serializer.collect_seq(values.iter().map(StoredJson)),
            Value::Object(map) => {
                serializer.collect_map(map.iter().map(|(name, value)| (name, StoredJson(value))))
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requester::AuthRecord;
    use crate::records::export::export;
    use crate::schema::collection::CollectionKind;
    use crate::schema::defaults;
    use nanodb::{Date, NanoDb, NanoDbOptions};
    use serde_json::{json, Value as Json};
    use std::sync::Arc;

    fn things() -> CollectionDef {
        let start = CollectionDef::new("things", CollectionKind::Base);
        let body = json!({"name": "things", "fields": [
            {"name": "title", "type": "text"},
            {"name": "count", "type": "number"},
            {"name": "done", "type": "bool"},
            {"name": "mail", "type": "email"},
            {"name": "site", "type": "url"},
            {"name": "due", "type": "date"},
            {"name": "tag", "type": "select", "values": ["a", "b"], "maxSelect": 1},
            {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            {"name": "data", "type": "json"},
            {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
            {"name": "owners", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 5},
            {"name": "secret", "type": "text", "hidden": true},
        ]});
        CollectionDef::from_body(&start, body.as_object().unwrap()).unwrap()
    }

    fn documents(values: Vec<Value>) -> Vec<Document> {
        let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
        let collection = runtime.database("test").unwrap().collection("test").unwrap();
        values.into_iter().map(|value| collection.insert(value).unwrap()).collect()
    }

    fn date(text: &str) -> Value {
        Value::Date(Date::parse(text).unwrap())
    }

    /// The record written as text, parsed back.
    fn written(record: &RecordJson) -> Json {
        let text = serde_json::to_string(record).unwrap();
        // The keys in byte order: the first of each object at top level is its smallest.
        let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Json>>(&text)
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let in_text: Vec<usize> =
            keys.iter().map(|key| text.find(&format!("\"{key}\":")).unwrap()).collect();
        assert!(in_text.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
        serde_json::from_str(&text).unwrap()
    }

    fn viewers() -> Vec<Requester> {
        let users = Arc::new(defaults::users());
        let someone = documents(vec![Value::from(json!({"id": "someone0000001"}))]).remove(0);
        let superusers = Arc::new(defaults::superusers());
        vec![
            Requester::Guest,
            Requester::Record(AuthRecord { collection: users, document: someone.clone() }),
            Requester::Superuser(AuthRecord { collection: superusers, document: someone }),
        ]
    }

    #[test]
    fn written_records_show_each_field_in_its_output_form() {
        let def = things();
        let mut fields = nanodb::Map::new();
        fields.insert("id".into(), Value::from("thing000000001a"));
        fields.insert("tags".into(), Value::from("a"));
        fields.insert("tag".into(), Value::Array(vec![Value::from("a"), Value::from("b")]));
        fields.insert("due".into(), date("2024-05-01T10:20:30.123Z"));
        let mut nested = nanodb::Map::new();
        nested.insert("at".into(), date("2000-02-29T00:00:00Z"));
        nested.insert("x".into(), Value::Float(f64::NAN));
        nested.insert("list".into(), Value::Array(vec![Value::Int(-3), Value::Float(1.5)]));
        fields.insert("data".into(), Value::Object(nested));
        fields.insert("owners".into(), Value::from("u1"));
        fields.insert("secret".into(), Value::from("s"));
        fields.insert("left".into(), Value::from("over"));
        let document = documents(vec![Value::Object(fields)]).remove(0);
        let guest = Requester::Guest;
        let record = RecordJson {
            def: &def,
            document: &document,
            viewer: &guest,
            email: Email::ByVisibility,
        };
        let json = written(&record);
        assert_eq!(json["collectionName"], "things");
        assert_eq!(json["id"], "thing000000001a");
        assert!(json["created"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            (&json["title"], &json["count"], &json["done"]),
            (&json!(""), &json!(0), &json!(false))
        );
        assert_eq!((&json["mail"], &json["site"]), (&json!(""), &json!("")));
        assert_eq!(json["due"], "2024-05-01 10:20:30.123Z");
        assert_eq!((&json["tag"], &json["tags"]), (&json!("b"), &json!(["a"])));
        assert_eq!(
            json["data"],
            json!({"at": "2000-02-29 00:00:00.000Z", "x": null, "list": [-3, 1.5]})
        );
        assert_eq!((&json["owner"], &json["owners"]), (&json!(""), &json!(["u1"])));
        assert!(json.get("secret").is_none() && json.get("left").is_none(), "{json}");
        let superuser = viewers().remove(2);
        let record = RecordJson { viewer: &superuser, ..record };
        assert_eq!(written(&record)["secret"], "s");
    }

    #[test]
    fn written_text_and_exported_maps_agree_for_every_viewer() {
        let (things, users) = (things(), defaults::users());
        let thing_values = vec![
            json!({"title": "t", "count": 2.5, "done": true, "tags": ["a", "b"], "data": [1, {"k": "v"}]}),
            json!({"count": -7, "owner": ["x", "y"], "data": "text", "secret": "s"}),
            json!({}),
        ];
        let user_values = vec![
            json!({"email": "a@x.org", "emailVisibility": true, "password": "p", "tokenKey": "k"}),
            json!({"id": "someone0000001", "email": "b@x.org", "emailVisibility": false}),
            json!({"email": "c@x.org", "name": "c", "verified": true}),
        ];
        let cases = [(&things, thing_values), (&users, user_values)];
        for (def, values) in cases {
            let documents = documents(values.into_iter().map(Value::from).collect());
            for viewer in &viewers() {
                for email in [Email::ByVisibility, Email::Shown] {
                    for document in &documents {
                        let record = RecordJson { def, document, viewer, email };
                        let exported = Json::Object(export(def, document, viewer, email));
                        assert_eq!(written(&record), exported, "{viewer:?} {email:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_written_page_carries_its_items_and_totals() {
        let def = things();
        let documents =
            documents(vec![Value::from(json!({"title": "one"})), Value::from(json!({}))]);
        let guest = Requester::Guest;
        let items: Vec<RecordJson> = documents
            .iter()
            .map(|document| RecordJson {
                def: &def,
                document,
                viewer: &guest,
                email: Email::ByVisibility,
            })
            .collect();
        let page =
            crate::http::query::PageJson { items: &items, page: 2, per_page: 2, totals: (5, 3) };
        let json: Json = serde_json::from_slice(&serde_json::to_vec(&page).unwrap()).unwrap();
        assert_eq!((&json["page"], &json["perPage"]), (&json!(2), &json!(2)));
        assert_eq!((&json["totalItems"], &json["totalPages"]), (&json!(5), &json!(3)));
        assert_eq!(json["items"][0]["title"], "one");
        assert_eq!(json["items"].as_array().unwrap().len(), 2);
    }
}
