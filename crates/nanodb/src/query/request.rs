//! `Query`: a filter with sort, pagination (offset and limit, or a keyset `Cursor`) and
//! projection; `Page`, what running one returns.
//!
//! Results are ordered by the sort keys, then by id (ascending), so the order is total and a
//! cursor names one position in it. Without sort keys, results come in the order the plan
//! reads them (id order for a collection scan); a query with a cursor and no sort keys is
//! ordered by id.
//!
//! Thread safety: plain owned data.
//!
//! Invariant: a `Cursor` round-trips through its text form (`Display` / `Cursor::parse`), and
//! any other text is refused with `Error::InvalidQuery`, never a panic.

use super::ast::{query_error, FieldPath, Filter, SortKey, SORT_KEYS_MAX};
use super::budget::ReadBudget;
use crate::document::{Document, FIELD_ID};
use crate::value::{msgpack, Map, Value};
use crate::{Error, Result};
use std::fmt;

/// Default for `Query::sort_memory_bytes_max`: 128 MiB of documents held to sort them.
pub const SORT_MEMORY_BYTES_MAX_DEFAULT: usize = 128 * 1024 * 1024;
/// Longest cursor text accepted, in bytes.
pub const CURSOR_TEXT_BYTES_MAX: usize = 64 * 1024;
/// Most paths in a projection.
pub const PROJECTION_PATHS_MAX: usize = 256;

/// Which fields of matching documents to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// Only these paths (and `id`).
    Include(Vec<FieldPath>),
    /// Everything but these paths (`id` is always kept).
    Exclude(Vec<FieldPath>),
}

impl Projection {
    /// Keeps only `paths` (dotted), and `id`.
    pub fn include(paths: &[&str]) -> Result<Projection> {
        Ok(Projection::Include(parse_paths(paths)?))
    }

    /// Drops `paths` (dotted); `id` stays.
    pub fn exclude(paths: &[&str]) -> Result<Projection> {
        Ok(Projection::Exclude(parse_paths(paths)?))
    }

    /// The projected fields of `fields`.
    pub(crate) fn apply(&self, fields: Map) -> Map {
        match self {
            Projection::Include(paths) => {
                let mut out = Map::new();
                if let Some(id) = fields.get(FIELD_ID) {
                    out.insert(FIELD_ID.to_string(), id.clone());
                }
                for path in paths {
                    copy_path(&fields, path.segments(), &mut out);
                }
                out
            }
            Projection::Exclude(paths) => {
                let mut out = fields;
                for path in paths {
                    if path.segments() != [FIELD_ID] {
                        remove_path(&mut out, path.segments());
                    }
                }
                out
            }
        }
    }
}

fn parse_paths(paths: &[&str]) -> Result<Vec<FieldPath>> {
    Error::check_limit("paths in a projection", paths.len(), PROJECTION_PATHS_MAX)?;
    paths.iter().map(|path| FieldPath::parse(path)).collect()
}

/// Copies the value at `segments` of `from` into `to`, creating the objects on the way.
fn copy_path(from: &Map, segments: &[String], to: &mut Map) {
    let Some((first, rest)) = segments.split_first() else { return };
    let Some(value) = from.get(first) else { return };
    if rest.is_empty() {
        to.insert(first.clone(), value.clone());
        return;
    }
    if let Value::Object(inner) = value {
        let slot = to.entry(first.clone()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(target) = slot {
            copy_path(inner, rest, target);
        }
    }
}

fn remove_path(map: &mut Map, segments: &[String]) {
    match segments {
        [] => {}
        [last] => {
            map.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Object(inner)) = map.get_mut(first) {
                remove_path(inner, rest);
            }
        }
    }
}

/// A position in a query's results: the sort values and id of the last document of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub(crate) values: Vec<Value>,
    pub(crate) id: String,
}

impl Cursor {
    /// The cursor after `document` in the order of `sort`.
    pub(crate) fn after(document: &Document, sort: &[SortKey]) -> Cursor {
        let values = sort
            .iter()
            .map(|key| super::eval::single(super::eval::Root::Fields(document), &key.path))
            .map(std::borrow::Cow::into_owned)
            .collect();
        Cursor { values, id: document.id().to_string() }
    }

    /// Reads a cursor from its text form (as `Display` writes it).
    pub fn parse(text: &str) -> Result<Cursor> {
        let bad = || query_error("not a cursor of this database");
        Error::check_limit("cursor length", text.len(), CURSOR_TEXT_BYTES_MAX)?;
        if !text.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|at| text.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let Ok(Value::Array(mut items)) = msgpack::decode(&bytes) else { return Err(bad()) };
        match items.pop() {
            Some(Value::String(id)) if items.len() <= SORT_KEYS_MAX => {
                Ok(Cursor { values: items, id })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = self.values.clone();
        items.push(Value::String(self.id.clone()));
        for byte in msgpack::to_bytes(&Value::Array(items)) {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A query: which documents, in what order, which part of the results, which fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which documents.
    pub filter: Filter,
    /// Their order (then by id).
    pub sort: Vec<SortKey>,
    /// Skip this many results (after the cursor, if any).
    pub offset: usize,
    /// Return at most this many.
    pub limit: Option<usize>,
    /// Start after this position (keyset pagination; `Page::next` of the previous page).
    pub after: Option<Cursor>,
    /// Which fields to return.
    pub projection: Option<Projection>,
    /// Most bytes of documents held in memory to sort them when no index gives the order;
    /// past it the query fails with `Error::LimitExceeded` (add an index, or a limit).
    pub sort_memory_bytes_max: usize,
    /// Stop with `Error::BudgetExceeded` once this is spent (a deadline, a most number of
    /// entries examined); unlimited by default.
    pub budget: ReadBudget,
}

impl Default for Query {
    fn default() -> Query {
        Query {
            filter: Filter::True,
            sort: Vec::new(),
            offset: 0,
            limit: None,
            after: None,
            projection: None,
            sort_memory_bytes_max: SORT_MEMORY_BYTES_MAX_DEFAULT,
            budget: ReadBudget::UNLIMITED,
        }
    }
}

impl Query {
    /// Every document matching `filter`.
    pub fn new(filter: Filter) -> Query {
        Query { filter, ..Query::default() }
    }

    /// Sorted by `keys`.
    pub fn sort(mut self, keys: Vec<SortKey>) -> Query {
        self.sort = keys;
        self
    }

    /// At most `limit` results.
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }

    /// Skipping the first `offset` results.
    pub fn offset(mut self, offset: usize) -> Query {
        self.offset = offset;
        self
    }

    /// Starting after `cursor`.
    pub fn after(mut self, cursor: Cursor) -> Query {
        self.after = Some(cursor);
        self
    }

    /// Stopping with `Error::BudgetExceeded` once `budget` is spent.
    pub fn budget(mut self, budget: ReadBudget) -> Query {
        self.budget = budget;
        self
    }

    /// Returning only what `projection` keeps.
    pub fn project(mut self, projection: Projection) -> Query {
        self.projection = Some(projection);
        self
    }

    /// Checks the query's limits, and that its cursor has one value per sort key.
    pub(crate) fn check(&self) -> Result<()> {
        self.filter.check_limits()?;
        Error::check_limit("sort keys", self.sort.len(), SORT_KEYS_MAX)?;
        if let Some(cursor) = &self.after {
            if cursor.values.len() != self.sort.len() {
                return Err(query_error(format!(
                    "the cursor has {} sort values, the query sorts by {} fields",
                    cursor.values.len(),
                    self.sort.len()
                )));
            }
        }
        Ok(())
    }

    /// True if results must come in sort order (sort keys given, or a cursor).
    pub(crate) fn is_ordered(&self) -> bool {
        !self.sort.is_empty() || self.after.is_some()
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The documents (projected, if the query asked).
    pub documents: Vec<Document>,
    /// Where the next page starts, when this one was cut short by the limit.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_text_is_refused() {
        let cursor = Cursor { values: vec![Value::Int(5), Value::from("x")], id: "abc".into() };
        assert_eq!(Cursor::parse(&cursor.to_string()).unwrap(), cursor);
        for bad in ["", "0", "zz", "90", "c0", "92c0c0", "\u{e9}\u{e9}"] {
            assert!(
                matches!(Cursor::parse(bad), Err(Error::InvalidQuery { .. })),
                "{bad:?} was accepted"
            );
        }
        let long = "0".repeat(CURSOR_TEXT_BYTES_MAX + 2);
        assert!(matches!(Cursor::parse(&long), Err(Error::LimitExceeded { .. })));
    }

    #[test]
    fn projections_keep_or_drop_paths() {
        let fields = match Value::from(serde_json::json!({
            "id": "a", "x": 1, "y": {"z": 2, "w": 3}, "q": 4
        })) {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let kept = Projection::include(&["y.z", "q", "missing"]).unwrap().apply(fields.clone());
        assert_eq!(
            serde_json::Value::from(Value::Object(kept)),
            serde_json::json!({"id": "a", "y": {"z": 2}, "q": 4})
        );
        let dropped = Projection::exclude(&["y.w", "x", "id"]).unwrap().apply(fields);
        assert_eq!(
            serde_json::Value::from(Value::Object(dropped)),
            serde_json::json!({"id": "a", "y": {"z": 2}, "q": 4})
        );
        let many: Vec<String> = (0..=PROJECTION_PATHS_MAX).map(|i| format!("f{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(Projection::include(&refs[..PROJECTION_PATHS_MAX]).is_ok());
        assert!(matches!(Projection::include(&refs), Err(Error::LimitExceeded { .. })));
    }
}
