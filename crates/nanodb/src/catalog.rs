//! The catalog: which collections a database has, with their options, stored in the
//! database's `_catalog` keyspace.
//!
//! Layout of the `_catalog` keyspace:
//! - `c/<collection name>` → the collection's spec, a MessagePack map (`CollectionSpec`), with
//!   its indexes;
//! - `next_collection_id` → the next collection id, a MessagePack integer;
//! - `m/<index id>` (decimal) → empty: some document has given that index several entries
//!   (`index::multikey`);
//! - `n/<name id>` (decimal) → a field name's UTF-8 bytes: the database's interned field names
//!   (`field_names`), which stored documents refer to by id.
//!
//! A collection's documents live in keyspace `c<id>`, each of its indexes in `x<index id>`; ids are never reused, so renaming a
//! collection only moves its catalog entry, and a dropped collection's keyspaces never come
//! back under a new collection.
//!
//! Thread safety: pure encoding; `Database` serializes catalog changes.
//!
//! Invariant: every live collection has exactly one catalog entry and one keyspace `c<id>`;
//! keyspaces named `c<id>` with no catalog entry are leftovers of an interrupted drop, removed
//! on open.

use crate::id::{GENERATED_ID_LEN_DEFAULT, GENERATED_ID_LEN_MIN};
use crate::index::{decode_specs, encode_specs, IndexSpec};
use crate::names::DOCUMENT_ID_LEN_MAX;
use crate::schema::Schema;
use crate::ttl::Ttl;
use crate::value::{msgpack, Map, Value};
use crate::{Error, Result};
use std::time::Duration;

/// The keyspace holding the catalog.
pub(crate) const CATALOG_KEYSPACE: &str = "_catalog";
/// Catalog key of the next collection id.
pub(crate) const NEXT_COLLECTION_ID_KEY: &[u8] = b"next_collection_id";
/// Prefix of collection entries in the catalog.
pub(crate) const COLLECTION_KEY_PREFIX: &[u8] = b"c/";
/// Prefix of the markers of multikey indexes (`index::multikey`) in the catalog.
pub(crate) const MULTIKEY_KEY_PREFIX: &[u8] = b"m/";
/// Prefix of the interned field names (`field_names`) in the catalog.
pub(crate) const FIELD_NAME_KEY_PREFIX: &[u8] = b"n/";

/// Options of a collection, given when it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionOptions {
    /// Length of generated document ids (`GENERATED_ID_LEN_MIN` to `DOCUMENT_ID_LEN_MAX`).
    pub id_length: usize,
    /// Expire documents by a date field (see `Ttl`); `None`: documents never expire.
    pub ttl: Option<Ttl>,
    /// The fields every document must have (see `Schema`); `None`: any fields.
    pub schema: Option<Schema>,
}

impl Default for CollectionOptions {
    fn default() -> CollectionOptions {
        CollectionOptions { id_length: GENERATED_ID_LEN_DEFAULT, ttl: None, schema: None }
    }
}

impl CollectionOptions {
    /// Checks the options against their limits.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(GENERATED_ID_LEN_MIN..=DOCUMENT_ID_LEN_MAX).contains(&self.id_length) {
            return Err(Error::invalid(format!(
                "id_length must be {GENERATED_ID_LEN_MIN} to {DOCUMENT_ID_LEN_MAX}, not {}",
                self.id_length
            )));
        }
        self.schema.as_ref().map_or(Ok(()), Schema::validate)?;
        self.ttl.as_ref().map_or(Ok(()), Ttl::validate)
    }
}

/// A collection as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CollectionSpec {
    /// Never reused within a database; names the collection's keyspaces.
    pub id: u64,
    pub name: String,
    pub options: CollectionOptions,
    /// The collection's indexes, ready or building.
    pub indexes: Vec<IndexSpec>,
}

impl CollectionSpec {
    /// Name of the keyspace holding the documents.
    pub fn documents_keyspace(&self) -> String {
        documents_keyspace(self.id)
    }

    /// Catalog key of the spec.
    pub fn catalog_key(&self) -> Vec<u8> {
        collection_key(&self.name)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut map = Map::new();
        map.insert("id".into(), Value::Int(self.id as i64));
        map.insert("name".into(), Value::String(self.name.clone()));
        map.insert("id_length".into(), Value::Int(self.options.id_length as i64));
        map.insert("indexes".into(), encode_specs(&self.indexes));
        if let Some(ttl) = &self.options.ttl {
            map.insert("ttl_field".into(), Value::String(ttl.field.clone()));
            let after_ms = i64::try_from(ttl.after.as_millis()).unwrap_or(i64::MAX);
            map.insert("ttl_after_ms".into(), Value::Int(after_ms));
        }
        if let Some(schema) = &self.options.schema {
            map.insert("schema".into(), schema.to_value());
        }
        msgpack::to_bytes(&Value::Object(map))
    }

    pub fn decode(bytes: &[u8]) -> Result<CollectionSpec> {
        let context = "catalog entry";
        let map = match msgpack::decode(bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Error::corruption(context, "not a map")),
            Err(error) => return Err(Error::corruption(context, error)),
        };
        let int = |name: &str| match map.get(name) {
            Some(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
            _ => Err(Error::corruption(context, format!("field {name} is missing or not a count"))),
        };
        let Some(Value::String(name)) = map.get("name") else {
            return Err(Error::corruption(context, "field name is missing"));
        };
        let ttl = match map.get("ttl_field") {
            None => None,
            Some(Value::String(field)) => {
                Some(Ttl::new(field, Duration::from_millis(int("ttl_after_ms")?)))
            }
            Some(_) => return Err(Error::corruption(context, "field ttl_field is not a string")),
        };
        let spec = CollectionSpec {
            id: int("id")?,
            name: name.clone(),
            options: CollectionOptions {
                id_length: int("id_length")? as usize,
                ttl,
                schema: map.get("schema").map(Schema::from_value).transpose()?,
            },
            indexes: decode_specs(map.get("indexes"))?,
        };
        spec.options.validate().map_err(|error| Error::corruption(context, error))?;
        Ok(spec)
    }
}

/// Name of the keyspace holding collection `id`'s documents.
pub(crate) fn documents_keyspace(id: u64) -> String {
    format!("c{id}")
}

/// The collection id a keyspace name belongs to, if it is a collection keyspace.
pub(crate) fn collection_of_keyspace(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('c')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Catalog key of collection `name`.
pub(crate) fn collection_key(name: &str) -> Vec<u8> {
    [COLLECTION_KEY_PREFIX, name.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_bad_bytes_are_corruption() {
        let definition = crate::index::IndexDefinition::new("by_age", &["age"]).unwrap();
        let index = IndexSpec { id: 8, definition, status: crate::index::IndexStatus::Building };
        let spec = CollectionSpec {
            id: 7,
            name: "users".into(),
            options: CollectionOptions::default(),
            indexes: vec![index],
        };
        assert_eq!(CollectionSpec::decode(&spec.encode()).unwrap(), spec);
        assert_eq!(spec.documents_keyspace(), "c7");
        assert_eq!(collection_of_keyspace("c7"), Some(7));
        assert_eq!(collection_of_keyspace("c"), None);
        assert_eq!(collection_of_keyspace("_catalog"), None);
        assert_eq!(collection_of_keyspace("c7x"), None);
        assert!(matches!(CollectionSpec::decode(&[0x80]), Err(Error::Corruption { .. })));
        assert!(matches!(CollectionSpec::decode(&[0xc1]), Err(Error::Corruption { .. })));
        let ttl = Some(Ttl::new("meta.seen", Duration::from_millis(1500)));
        let rules = vec![crate::FieldRule::required("name", crate::FieldType::String)];
        let schema = Some(Schema::new(rules).strict());
        let with_ttl = CollectionSpec {
            options: CollectionOptions { ttl, schema, ..CollectionOptions::default() },
            ..spec.clone()
        };
        assert_eq!(CollectionSpec::decode(&with_ttl.encode()).unwrap(), with_ttl);
        let bad_options = CollectionOptions { id_length: 2, ..CollectionOptions::default() };
        let bad = CollectionSpec { options: bad_options, ..spec };
        assert!(matches!(CollectionSpec::decode(&bad.encode()), Err(Error::Corruption { .. })));
    }
}
