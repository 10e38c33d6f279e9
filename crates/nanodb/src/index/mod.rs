//! Secondary indexes: what an index is (`IndexSpec`), how it is recorded in the catalog, and
//! the live state every write consults.
//!
//! An index has its own keyspace `x<id>` (ids come from the database's collection-id counter,
//! never reused). Its entries (`entries`) map the document's indexed values, encoded with
//! `keycode` so byte order is value order, to the document id. Every document write updates
//! the entries of every index of its collection in the same storage transaction, so an index
//! never disagrees with the documents, whatever crashes.
//!
//! Thread safety: `IndexState` is shared (`Arc`) by the collection state, writers, queries and
//! the background builder; its mutable parts are atomics.
//!
//! Invariants:
//! 1. An index whose state is `Ready` holds exactly the entries of every document.
//! 2. While `Building`, every write maintains it too; the builder adds the entries of the
//!    documents written before it existed. Queries use only `Ready` indexes.

mod admin;
mod build;
mod entries;
mod multikey;

pub(crate) use admin::update_entries;
pub(crate) use build::start_build;
pub use build::{IndexBuild, BUILD_CHUNK_DOCUMENTS, BUILD_CONFLICTS_MAX};
pub(crate) use entries::{entries_of, index_key_after, sorts_like_index, Entry};
pub(crate) use multikey::{marker_key, recorded_ids, Multikey};

use crate::query::FieldPath;
use crate::value::{Map, Value};
use crate::{Error, Result};
use nanodb_storage::{Keyspace, Transaction};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Most indexes one collection may have.
pub const INDEXES_PER_COLLECTION_MAX: usize = 64;
/// Most fields in one compound index.
pub const INDEX_FIELDS_MAX: usize = 16;
/// Most entries one document may give one index (items of indexed arrays, multiplied across
/// the fields of a compound index).
pub const INDEX_ENTRIES_PER_DOCUMENT_MAX: usize = 1_000;
/// Longest index entry key, in bytes: a document whose indexed values are longer is refused.
pub const INDEX_KEY_BYTES_MAX: usize = 4 * 1024;

/// One field of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexField {
    /// Where the value is.
    pub path: FieldPath,
    /// Entries in descending order of this field.
    pub descending: bool,
}

/// What an index covers, as given to `Collection::create_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    /// The index's name, unique within its collection.
    pub name: String,
    /// The indexed fields, in key order (more than one: a compound index).
    pub fields: Vec<IndexField>,
    /// No two documents may share a value (null and missing values excepted).
    pub unique: bool,
}

impl IndexDefinition {
    /// An index named `name` on `fields` (a leading `-` makes a field descending).
    pub fn new(name: &str, fields: &[&str]) -> Result<IndexDefinition> {
        let fields = fields
            .iter()
            .map(|field| {
                let (descending, path) = match field.strip_prefix('-') {
                    Some(path) => (true, path),
                    None => (false, *field),
                };
                Ok(IndexField { path: FieldPath::parse(path)?, descending })
            })
            .collect::<Result<_>>()?;
        Ok(IndexDefinition { name: name.to_string(), fields, unique: false })
    }

    /// The same index, unique.
    pub fn unique(mut self) -> IndexDefinition {
        self.unique = true;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        crate::names::check_index_name(&self.name)?;
        if self.fields.is_empty() {
            return Err(Error::invalid(format!("index {:?} has no fields", self.name)));
        }
        Error::check_limit("fields in an index", self.fields.len(), INDEX_FIELDS_MAX)
    }
}

/// Whether an index can answer queries yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStatus {
    /// Being built over the existing documents; writes maintain it already.
    Building,
    /// Complete.
    Ready,
}

/// An index as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexSpec {
    pub id: u64,
    pub definition: IndexDefinition,
    pub status: IndexStatus,
}

impl IndexSpec {
    pub fn keyspace_name(&self) -> String {
        index_keyspace(self.id)
    }

    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::Int(self.id as i64));
        map.insert("name".into(), Value::String(self.definition.name.clone()));
        map.insert("unique".into(), Value::Bool(self.definition.unique));
        map.insert("ready".into(), Value::Bool(self.status == IndexStatus::Ready));
        let fields = self.definition.fields.iter().map(|field| {
            let sign = if field.descending { "-" } else { "" };
            Value::String(format!("{sign}{}", field.path))
        });
        map.insert("fields".into(), Value::Array(fields.collect()));
        Value::Object(map)
    }

    pub fn from_value(value: &Value) -> Result<IndexSpec> {
        let bad = |detail: &str| Error::corruption("catalog index entry", detail);
        let map = value.as_object().ok_or_else(|| bad("not a map"))?;
        let id = match map.get("id") {
            Some(Value::Int(id)) if *id > 0 => *id as u64,
            _ => return Err(bad("id is missing")),
        };
        let name = map.get("name").and_then(Value::as_str).ok_or_else(|| bad("no name"))?;
        let fields: Vec<&str> = map
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no fields"))?
            .iter()
            .map(|field| field.as_str().ok_or_else(|| bad("a field is not a string")))
            .collect::<Result<_>>()?;
        let flag = |name: &str| map.get(name).and_then(Value::as_bool).unwrap_or(false);
        let mut definition =
            IndexDefinition::new(name, &fields).map_err(|error| bad(&error.to_string()))?;
        definition.unique = flag("unique");
        definition.validate().map_err(|error| bad(&error.to_string()))?;
        let status = if flag("ready") { IndexStatus::Ready } else { IndexStatus::Building };
        Ok(IndexSpec { id, definition, status })
    }
}

/// Name of the keyspace holding index `id`'s entries.
pub(crate) fn index_keyspace(id: u64) -> String {
    format!("x{id}")
}

/// The index id a keyspace name belongs to, if it is an index keyspace.
pub(crate) fn index_of_keyspace(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('x')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A live index: its definition, keyspace and progress.
pub(crate) struct IndexState {
    pub id: u64,
    pub definition: IndexDefinition,
    pub keyspace: Keyspace,
    ready: AtomicBool,
    /// Set when the index is dropped: its builder stops.
    pub dropped: AtomicBool,
    /// Documents the builder has indexed so far.
    pub built_documents: AtomicU64,
    /// Whether some document may have several entries (`multikey`).
    pub multikey: Multikey,
    /// The database's catalog, where the multikey marker goes.
    pub catalog: Keyspace,
}

impl IndexState {
    /// The live state of index `spec`, whose entries are in `keyspace`; `multikey`: the
    /// `catalog` holds its multikey marker.
    pub fn new(spec: &IndexSpec, keyspace: Keyspace, catalog: Keyspace, multikey: bool) -> Self {
        IndexState {
            id: spec.id,
            definition: spec.definition.clone(),
            keyspace,
            ready: AtomicBool::new(spec.status == IndexStatus::Ready),
            dropped: AtomicBool::new(false),
            built_documents: AtomicU64::new(0),
            multikey: Multikey::new(multikey),
            catalog,
        }
    }

    /// Notes that a write in `txn` gives a document `entries` entries (see `Multikey::note`).
    pub fn note_entries(&self, txn: &mut Transaction, entries: usize) -> Result<bool> {
        self.multikey.note(txn, &self.catalog, self.id, entries)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn spec(&self) -> IndexSpec {
        let status = if self.is_ready() { IndexStatus::Ready } else { IndexStatus::Building };
        IndexSpec { id: self.id, definition: self.definition.clone(), status }
    }
}

/// What `Collection::indexes` reports of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// The definition.
    pub definition: IndexDefinition,
    /// Ready or still building.
    pub status: IndexStatus,
    /// While building: documents indexed so far by the builder.
    pub built_documents: u64,
}

pub(crate) fn encode_specs(specs: &[IndexSpec]) -> Value {
    Value::Array(specs.iter().map(IndexSpec::to_value).collect())
}

pub(crate) fn decode_specs(value: Option<&Value>) -> Result<Vec<IndexSpec>> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(IndexSpec::from_value).collect(),
        Some(_) => Err(Error::corruption("catalog entry", "indexes is not a list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_definitions_are_checked() {
        let definition = IndexDefinition::new("by_age", &["age", "-name.last"]).unwrap().unique();
        let spec = IndexSpec { id: 9, definition, status: IndexStatus::Building };
        assert_eq!(IndexSpec::from_value(&spec.to_value()).unwrap(), spec);
        assert_eq!(spec.keyspace_name(), "x9");
        assert_eq!(index_of_keyspace("x9"), Some(9));
        assert_eq!(index_of_keyspace("x"), None);
        assert_eq!(index_of_keyspace("c9"), None);
        assert!(IndexDefinition::new("empty", &[]).unwrap().validate().is_err());
        assert!(IndexDefinition::new("bad name", &["a"]).unwrap().validate().is_err());
        let fields: Vec<String> = (0..=INDEX_FIELDS_MAX).map(|i| format!("f{i}")).collect();
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        assert!(IndexDefinition::new("many", &refs[..INDEX_FIELDS_MAX])
            .unwrap()
            .validate()
            .is_ok());
        assert!(matches!(
            IndexDefinition::new("many", &refs).unwrap().validate(),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(decode_specs(Some(&Value::Int(1))).is_err());
        assert!(decode_specs(None).unwrap().is_empty());
    }
}
