//! The entries a document gives an index.
//!
//! Each indexed field yields the values its path leads to (`query::eval::resolve`): a missing
//! field yields null, an array yields each of its distinct items (an empty array yields `[]`
//! itself), anything else yields itself. A compound index takes every combination of its
//! fields' values (at most `INDEX_ENTRIES_PER_DOCUMENT_MAX`).
//!
//! An entry's key is the `keycode` encodings of its values in field order (inverted for
//! descending fields), followed by the document id, except in a unique index when no value is
//! null: then the key is the values alone, so two documents with the same values write the same
//! key (a transaction conflict if concurrent, a visible `UniqueViolation` otherwise). Every
//! entry's value is the document id.
//!
//! Thread safety: pure functions.
//!
//! Invariant: the keys are byte-ordered like the values (ties broken by id), so range and
//! prefix scans of the index keyspace are value range scans; a document's entries are
//! distinct.

use super::{IndexDefinition, INDEX_ENTRIES_PER_DOCUMENT_MAX, INDEX_KEY_BYTES_MAX};
use crate::query::eval::{resolve, Root, TopFields};
use crate::value::{keycode, Value};
use crate::{Error, Result};

/// One index entry of a document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    /// The entry's key in the index keyspace.
    pub key: Vec<u8>,
    /// A unique index's entry without null values: no other document may have this key.
    pub unique: bool,
}

/// The encoded values one field of `definition` gives document `fields`, deduplicated.
fn field_values(
    fields: &dyn TopFields,
    index: usize,
    definition: &IndexDefinition,
) -> Vec<(Vec<u8>, bool)> {
    let field = &definition.fields[index];
    let resolved = resolve(Root::Fields(fields), &field.path);
    let mut values: Vec<&Value> = Vec::new();
    if resolved.is_empty() {
        values.push(&Value::Null);
    }
    for value in resolved {
        match value {
            Value::Array(items) if !items.is_empty() => values.extend(items.iter()),
            other => values.push(other),
        }
    }
    let mut encoded: Vec<(Vec<u8>, bool)> = values
        .into_iter()
        .map(|value| {
            let mut bytes = Vec::new();
            if field.descending {
                keycode::encode_descending(value, &mut bytes);
            } else {
                keycode::encode(value, &mut bytes);
            }
            (bytes, value.is_null())
        })
        .collect();
    encoded.sort();
    encoded.dedup();
    encoded
}

/// The entries document `fields` (with id `id`) gives the index `definition`, sorted.
pub(crate) fn entries_of(
    definition: &IndexDefinition,
    fields: &dyn TopFields,
    id: &str,
) -> Result<Vec<Entry>> {
    let per_field: Vec<Vec<(Vec<u8>, bool)>> =
        (0..definition.fields.len()).map(|index| field_values(fields, index, definition)).collect();
    let combinations =
        per_field.iter().try_fold(1usize, |product, values| product.checked_mul(values.len()));
    let combinations = combinations.unwrap_or(usize::MAX);
    Error::check_limit(
        "entries of one document in one index",
        combinations,
        INDEX_ENTRIES_PER_DOCUMENT_MAX,
    )?;
    let mut entries = Vec::with_capacity(combinations);
    let mut choice = vec![0usize; per_field.len()];
    loop {
        let mut key = Vec::new();
        let mut has_null = false;
        for (values, &chosen) in per_field.iter().zip(&choice) {
            let (bytes, null) = &values[chosen];
            key.extend_from_slice(bytes);
            has_null |= null;
        }
        let unique = definition.unique && !has_null;
        if !unique {
            key.extend_from_slice(id.as_bytes());
        }
        Error::check_limit("index entry key size in bytes", key.len(), INDEX_KEY_BYTES_MAX)?;
        entries.push(Entry { key, unique });
        // The next combination, last field fastest.
        let mut position = per_field.len();
        loop {
            if position == 0 {
                entries.sort();
                entries.dedup();
                return Ok(entries);
            }
            position -= 1;
            choice[position] += 1;
            if choice[position] < per_field[position].len() {
                break;
            }
            choice[position] = 0;
        }
    }
}

/// The smallest index key after the entry a document with sort values `values` (one per index
/// field) and id `id` has: where a keyset page that ended at that document resumes.
pub(crate) fn index_key_after(definition: &IndexDefinition, values: &[Value], id: &str) -> Vec<u8> {
    let mut key = Vec::new();
    for (field, value) in definition.fields.iter().zip(values) {
        if field.descending {
            keycode::encode_descending(value, &mut key);
        } else {
            keycode::encode(value, &mut key);
        }
    }
    if definition.unique && !values.iter().any(Value::is_null) {
        // No other entry starts with these values: skip all that do.
        return keycode::prefix_end(&key).unwrap_or(key);
    }
    key.extend_from_slice(id.as_bytes());
    key.push(0x00);
    key
}

/// True if the index orders document `fields` the way sorting by the index's fields does: every
/// indexed path leads to at most one value, and not to an array.
pub(crate) fn sorts_like_index(definition: &IndexDefinition, fields: &dyn TopFields) -> bool {
    definition.fields.iter().all(|field| {
        let resolved = resolve(Root::Fields(fields), &field.path);
        resolved.len() <= 1 && !resolved.iter().any(|value| matches!(value, Value::Array(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::doc;
    use crate::value::Map;

    #[test]
    fn scalar_missing_array_and_compound_entries() {
        let by_a = IndexDefinition::new("a", &["a"]).unwrap();
        let one = entries_of(&by_a, &doc(serde_json::json!({"a": 5})), "id1").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].key, [keycode::to_key(&Value::Int(5)), b"id1".to_vec()].concat());
        let missing = entries_of(&by_a, &doc(serde_json::json!({})), "id1").unwrap();
        assert_eq!(missing[0].key, [keycode::to_key(&Value::Null), b"id1".to_vec()].concat());
        let array = entries_of(&by_a, &doc(serde_json::json!({"a": [3, 1, 3]})), "x").unwrap();
        assert_eq!(array.len(), 2, "distinct items");
        let empty = entries_of(&by_a, &doc(serde_json::json!({"a": []})), "x").unwrap();
        assert_eq!(empty.len(), 1);
        let compound = IndexDefinition::new("ab", &["a", "-b"]).unwrap();
        let product =
            entries_of(&compound, &doc(serde_json::json!({"a": [1, 2], "b": [3, 4, 5]})), "x");
        assert_eq!(product.unwrap().len(), 6);
    }

    #[test]
    fn unique_entries_have_no_id_unless_null() {
        let unique = IndexDefinition::new("e", &["email"]).unwrap().unique();
        let entry =
            &entries_of(&unique, &doc(serde_json::json!({"email": "a@b"})), "i").unwrap()[0];
        assert!(entry.unique);
        assert_eq!(entry.key, keycode::to_key(&Value::from("a@b")));
        let null = &entries_of(&unique, &doc(serde_json::json!({"email": null})), "i").unwrap()[0];
        assert!(!null.unique);
        assert!(null.key.ends_with(b"i"));
    }

    #[test]
    fn entry_limits_hold_at_their_boundaries() {
        let compound = IndexDefinition::new("ab", &["a", "b"]).unwrap();
        let items = |n: usize| Value::Array((0..n as i64).map(Value::Int).collect());
        let mut fields = Map::new();
        fields.insert("a".into(), items(10));
        fields.insert("b".into(), items(INDEX_ENTRIES_PER_DOCUMENT_MAX / 10));
        assert_eq!(entries_of(&compound, &fields, "x").unwrap().len(), 1_000);
        fields.insert("b".into(), items(INDEX_ENTRIES_PER_DOCUMENT_MAX / 10 + 1));
        assert!(matches!(entries_of(&compound, &fields, "x"), Err(Error::LimitExceeded { .. })));
        let by_s = IndexDefinition::new("s", &["s"]).unwrap().unique();
        // A string's key is its tag, its bytes and two terminating bytes.
        let fits = "x".repeat(INDEX_KEY_BYTES_MAX - 3);
        assert!(entries_of(&by_s, &doc(serde_json::json!({"s": fits})), "i").is_ok());
        let long = "x".repeat(INDEX_KEY_BYTES_MAX - 2);
        assert!(matches!(
            entries_of(&by_s, &doc(serde_json::json!({"s": long})), "i"),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn keys_after_skip_exactly_one_entry() {
        let by_a = IndexDefinition::new("a", &["a"]).unwrap();
        let first = entries_of(&by_a, &doc(serde_json::json!({"a": 5})), "ab").unwrap();
        let second = entries_of(&by_a, &doc(serde_json::json!({"a": 5})), "ab0").unwrap();
        let after = index_key_after(&by_a, &[Value::Int(5)], "ab");
        assert!(first[0].key < after && after <= second[0].key);
        let unique = IndexDefinition::new("a", &["a"]).unwrap().unique();
        let entry = entries_of(&unique, &doc(serde_json::json!({"a": 5})), "x").unwrap();
        let next = entries_of(&unique, &doc(serde_json::json!({"a": 6})), "x").unwrap();
        let after = index_key_after(&unique, &[Value::Int(5)], "x");
        assert!(entry[0].key < after && after <= next[0].key);
    }
}
