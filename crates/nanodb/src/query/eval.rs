//! The evaluator: whether a document matches a `Filter`. It is the reference for what every
//! filter means; indexes only narrow which documents it is asked about.
//!
//! **Paths.** A path is followed field by field. Through an array, a numeric part picks an
//! item, and any part is also followed into every item that is an object (`tags.name` on
//! `tags: [{name: "a"}, {name: "b"}]` yields both names). So a path yields zero or more
//! values; zero means the field is missing.
//!
//! **Comparisons** (`Compare`, `In`), value against value:
//! - equality is the total order of `value::order`: `1 == 1.0`, `"a" != "A"`, values of
//!   different types are never equal (`1 != "1"`, `null != false`);
//! - `>`, `>=`, `<`, `<=` hold only between values of one type (numbers with numbers, strings
//!   with strings by UTF-8 bytes, dates with dates, ...): `5 > "4"` and `"5" > 4` are both
//!   false (MongoDB's type bracketing);
//! - a string that parses as a date (RFC 3339 or PocketBase's `2006-01-02 15:04:05.000Z`)
//!   compares with a date as that date, so `created > "2024-01-01"` works on date fields;
//! - a missing field compares as null: `x = null` holds when `x` is missing or null, and
//!   `x >= null` too; `x > 5` is false when `x` is missing.
//!
//! **Several values** (arrays, paths through arrays): with `Quantifier::Any` a comparison
//! holds if it holds for the field's value itself or for any item of it (`tags = "a"` on
//! `["a", "b"]`); with `Quantifier::All` it must hold for every item, and an empty array
//! matches nothing. `Ne` is compared item by item too: MongoDB's `$ne` is `Not(Eq)`.
//!
//! **Others**: `Exists` (the path yields a value, null included), `Empty` (missing, null,
//! `""` or `[]`), `Like` (strings, and numbers as their decimal text), `Regex` (strings),
//! `Size` (an array of that length), `ElemMatch` (an array item matches the inner filter, whose
//! paths start at the item).
//!
//! Thread safety: pure functions over borrowed data.

use super::ast::{CompareOp, FieldPath, Filter, Operand, Quantifier, Transform};
use super::like::like;
use crate::value::{compare, type_rank, Date, Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;

/// The top-level fields of a document, as a path's first segment looks them up: a `Map`, or
/// a stored `Document`, which then decodes only the fields a filter or sort reads.
pub(crate) trait TopFields {
    /// The value of top-level field `name`.
    fn top(&self, name: &str) -> Option<&Value>;
}

impl TopFields for Map {
    fn top(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl TopFields for crate::Document {
    fn top(&self, name: &str) -> Option<&Value> {
        self.field(name)
    }
}

/// What a path starts from: a document's fields, or one value (an array item).
#[derive(Clone, Copy)]
pub(crate) enum Root<'a> {
    /// A document.
    Fields(&'a dyn TopFields),
    /// A value (inside `ElemMatch`).
    Value(&'a Value),
}

/// True if `document` matches `filter`.
pub fn matches(filter: &Filter, document: &Map) -> bool {
    eval(filter, Root::Fields(document))
}

/// The top-level fields `filter` reads (the first segment of each of its paths), each once.
pub(crate) fn top_level_names(filter: &Filter) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for first in filter.paths().into_iter().filter_map(|path| path.segments().first()) {
        if !names.contains(&first.as_str()) {
            names.push(first);
        }
    }
    names
}

/// True if the stored `document` matches `filter` (decoding only the fields it reads).
pub(crate) fn matches_document(filter: &Filter, document: &crate::Document) -> bool {
    eval(filter, Root::Fields(document))
}

/// True if `value` (as a root, the way `ElemMatch` sees an item) matches `filter`.
pub fn matches_value(filter: &Filter, value: &Value) -> bool {
    eval(filter, Root::Value(value))
}

pub(crate) fn eval(filter: &Filter, root: Root<'_>) -> bool {
    match filter {
        Filter::True => true,
        Filter::False => false,
        Filter::And(all) => all.iter().all(|filter| eval(filter, root)),
        Filter::Or(any) => any.iter().any(|filter| eval(filter, root)),
        Filter::Not(inner) => !eval(inner, root),
        Filter::Compare { left, op, right, quantifier } => {
            eval_compare(left, *op, right, *quantifier, root)
        }
        Filter::In { path, values } => candidates(root, path, Quantifier::Any)
            .iter()
            .any(|value| values.iter().any(|wanted| holds(value, CompareOp::Eq, wanted))),
        Filter::Exists { path } => !resolve(root, path).is_empty(),
        Filter::Empty { path } => resolve(root, path).iter().all(|value| is_empty(value)),
        Filter::Like { path, pattern, quantifier } => {
            quantified(&candidates(root, path, *quantifier), *quantifier, |value| match value {
                Value::String(text) => like(text, pattern),
                Value::Int(n) => like(&n.to_string(), pattern),
                Value::Float(x) => like(&x.to_string(), pattern),
                _ => false,
            })
        }
        Filter::Regex { path, pattern } => candidates(root, path, Quantifier::Any)
            .iter()
            .any(|value| value.as_str().is_some_and(|text| pattern.is_match(text))),
        Filter::Size { path, len } => resolve(root, path)
            .iter()
            .any(|value| value.as_array().is_some_and(|items| items.len() == *len)),
        Filter::ElemMatch { path, filter } => resolve(root, path).iter().any(|value| {
            value
                .as_array()
                .is_some_and(|items| items.iter().any(|item| eval(filter, Root::Value(item))))
        }),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The values `path` leads to from `root` (none if the field is missing).
pub(crate) fn resolve<'a>(root: Root<'a>, path: &FieldPath) -> Vec<&'a Value> {
    let mut out = Vec::new();
    match (root, path.segments().split_first()) {
        (Root::Value(value), None) => out.push(value),
        (Root::Fields(_), None) => {}
        (Root::Fields(map), Some((first, rest))) => {
            if let Some(value) = map.top(first) {
                follow(value, rest, &mut out);
            }
        }
        (Root::Value(value), Some(_)) => follow_into(value, path.segments(), &mut out),
    }
    out
}

/// Pushes what `segments` lead to from `value` (the value itself when there are none).
fn follow<'a>(value: &'a Value, segments: &[String], out: &mut Vec<&'a Value>) {
    if segments.is_empty() {
        out.push(value);
    } else {
        follow_into(value, segments, out);
    }
}

/// Pushes what the (non-empty) `segments` lead to inside `value`.
fn follow_into<'a>(value: &'a Value, segments: &[String], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = segments.split_first() else { return };
    match value {
        Value::Object(map) => {
            if let Some(field) = map.get(first) {
                follow(field, rest, out);
            }
        }
        Value::Array(items) => {
            if let Some(item) = first.parse::<usize>().ok().and_then(|index| items.get(index)) {
                follow(item, rest, out);
            }
            for item in items {
                if matches!(item, Value::Object(_)) {
                    follow_into(item, segments, out);
                }
            }
        }
        _ => {}
    }
}

static NULL: Value = Value::Null;

/// The values a quantified comparison looks at: with `Any` each value and each item of an
/// array value; with `All` the items of arrays and other values as they are. A missing field
/// is one null.
pub(crate) fn candidates<'a>(
    root: Root<'a>,
    path: &FieldPath,
    quantifier: Quantifier,
) -> Vec<&'a Value> {
    let resolved = resolve(root, path);
    if resolved.is_empty() {
        return vec![&NULL];
    }
    let mut out = Vec::with_capacity(resolved.len());
    for value in resolved {
        match (value, quantifier) {
            (Value::Array(items), Quantifier::Any) => {
                out.push(value);
                out.extend(items.iter());
            }
            (Value::Array(items), Quantifier::All) => out.extend(items.iter()),
            _ => out.push(value),
        }
    }
    out
}

/// The one value a path stands for when it is sorted on or compared as a whole: the value if
/// there is one, null if missing, an array of them if the path went through an array.
pub(crate) fn single<'a>(root: Root<'a>, path: &FieldPath) -> Cow<'a, Value> {
    let mut resolved = resolve(root, path);
    match resolved.len() {
        0 => Cow::Owned(Value::Null),
        1 => Cow::Borrowed(resolved.remove(0)),
        _ => Cow::Owned(Value::Array(resolved.into_iter().cloned().collect())),
    }
}

fn quantified(values: &[&Value], quantifier: Quantifier, test: impl Fn(&Value) -> bool) -> bool {
    match quantifier {
        Quantifier::Any => values.iter().any(|value| test(value)),
        Quantifier::All => !values.is_empty() && values.iter().all(|value| test(value)),
    }
}

fn eval_compare(
    left: &Operand,
    op: CompareOp,
    right: &Operand,
    quantifier: Quantifier,
    root: Root<'_>,
) -> bool {
    let right_value = whole(right, root);
    match left {
        Operand::Value(left_value) => holds(left_value, op, &right_value),
        Operand::Field { path, transform: Transform::Length } => {
            holds(&length(root, path), op, &right_value)
        }
        Operand::Field { path, transform } => {
            let values = candidates(root, path, quantifier);
            quantified(&values, quantifier, |value| match transform {
                Transform::Lower => holds(&lower(value), op, &right_value),
                _ => holds(value, op, &right_value),
            })
        }
    }
}

/// An operand as one value (a field as `single` says, transformed).
fn whole<'a>(operand: &'a Operand, root: Root<'a>) -> Cow<'a, Value> {
    match operand {
        Operand::Value(value) => Cow::Borrowed(value),
        Operand::Field { path, transform: Transform::None } => single(root, path),
        Operand::Field { path, transform: Transform::Length } => Cow::Owned(length(root, path)),
        Operand::Field { path, transform: Transform::Lower } => {
            Cow::Owned(lower(&single(root, path)))
        }
    }
}

/// The number of values a path holds: items of arrays, one for any other value.
fn length(root: Root<'_>, path: &FieldPath) -> Value {
    let count: usize =
        resolve(root, path).iter().map(|value| value.as_array().map_or(1, Vec::len)).sum();
    Value::Int(count as i64)
}

fn lower(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(text.to_lowercase()),
        other => other.clone(),
    }
}

/// `left op right` for two single values, by the rules in the module header.
pub(crate) fn holds(left: &Value, op: CompareOp, right: &Value) -> bool {
    let (left, right) = coerce_dates(left, right);
    let order = compare(&left, &right);
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        _ if type_rank(&left) != type_rank(&right) => false,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Gte => order != Ordering::Less,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Lte => order != Ordering::Greater,
    }
}

/// A date against a string that parses as a date: both as dates.
fn coerce_dates<'a>(left: &'a Value, right: &'a Value) -> (Cow<'a, Value>, Cow<'a, Value>) {
    let as_date = |text: &str| Date::parse(text).map(|date| Cow::Owned(Value::Date(date)));
    match (left, right) {
        (Value::Date(_), Value::String(text)) => {
            (Cow::Borrowed(left), as_date(text).unwrap_or(Cow::Borrowed(right)))
        }
        (Value::String(text), Value::Date(_)) => {
            (as_date(text).unwrap_or(Cow::Borrowed(left)), Cow::Borrowed(right))
        }
        _ => (Cow::Borrowed(left), Cow::Borrowed(right)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::Pattern;
    use crate::test_support::doc;

    fn path(text: &str) -> FieldPath {
        FieldPath::parse(text).unwrap()
    }

    fn cmp(field: &str, op: CompareOp, value: Value, quantifier: Quantifier) -> Filter {
        Filter::Compare {
            left: Operand::field(path(field)),
            op,
            right: Operand::Value(value),
            quantifier,
        }
    }

    #[test]
    fn paths_follow_objects_arrays_and_positions() {
        let d = doc(serde_json::json!({
            "a": {"b": 1}, "tags": [{"name": "x"}, {"name": "y"}, 5], "list": [10, 20]
        }));
        let root = Root::Fields(&d);
        assert_eq!(resolve(root, &path("a.b")), vec![&Value::Int(1)]);
        assert_eq!(resolve(root, &path("tags.name")).len(), 2);
        assert_eq!(resolve(root, &path("list.1")), vec![&Value::Int(20)]);
        assert!(resolve(root, &path("a.b.c")).is_empty());
        assert!(resolve(root, &path("missing")).is_empty());
        assert_eq!(*single(root, &path("missing")), Value::Null);
        assert_eq!(*single(root, &path("tags.name")), Value::from(serde_json::json!(["x", "y"])));
    }

    #[test]
    fn comparisons_follow_the_documented_rules() {
        use CompareOp::*;
        let d = doc(serde_json::json!({"n": 5, "s": "5", "f": 5.0, "nul": null}));
        let yes = |filter: Filter| assert!(matches(&filter, &d), "{filter:?}");
        let no = |filter: Filter| assert!(!matches(&filter, &d), "{filter:?}");
        let any = Quantifier::Any;
        yes(cmp("n", Eq, Value::Float(5.0), any));
        yes(cmp("f", Eq, Value::Int(5), any));
        no(cmp("n", Eq, Value::from("5"), any));
        yes(cmp("n", Ne, Value::from("5"), any));
        no(cmp("n", Gt, Value::from("4"), any));
        no(cmp("s", Gt, Value::Int(4), any));
        no(cmp("n", Lt, Value::from("6"), any));
        yes(cmp("s", Gt, Value::from("4"), any));
        yes(cmp("missing", Eq, Value::Null, any));
        yes(cmp("nul", Eq, Value::Null, any));
        yes(cmp("missing", Gte, Value::Null, any));
        no(cmp("missing", Gt, Value::Int(0), any));
        no(cmp("missing", Lt, Value::Int(0), any));
        no(cmp("nul", Eq, Value::Bool(false), any));
    }

    #[test]
    fn dates_compare_with_date_strings() {
        let mut d = Map::new();
        d.insert("at".into(), Value::Date(Date::parse("2024-05-01T00:00:00Z").unwrap()));
        let any = Quantifier::Any;
        assert!(matches(
            &cmp("at", CompareOp::Gt, Value::from("2024-01-01 00:00:00.000Z"), any),
            &d
        ));
        assert!(!matches(&cmp("at", CompareOp::Lt, Value::from("2024-01-01"), any), &d));
        assert!(!matches(&cmp("at", CompareOp::Gt, Value::from("not a date"), any), &d));
    }

    #[test]
    fn quantifiers_over_arrays() {
        use CompareOp::*;
        let d = doc(serde_json::json!({"t": ["a", "b"], "e": [], "n": [1, 5, 9]}));
        let m = |filter: Filter| matches(&filter, &d);
        assert!(m(cmp("t", Eq, Value::from("a"), Quantifier::Any)));
        assert!(!m(cmp("t", Eq, Value::from("a"), Quantifier::All)));
        assert!(m(cmp("t", Eq, Value::from(serde_json::json!(["a", "b"])), Quantifier::Any)));
        assert!(m(cmp("n", Gt, Value::Int(0), Quantifier::All)));
        assert!(!m(cmp("n", Gt, Value::Int(1), Quantifier::All)));
        assert!(m(cmp("n", Gt, Value::Int(8), Quantifier::Any)));
        assert!(!m(cmp("e", Eq, Value::Null, Quantifier::All)));
        assert!(!m(cmp("e", Gt, Value::Int(0), Quantifier::All)));
        assert!(m(Filter::Not(Box::new(cmp("t", Eq, Value::from("c"), Quantifier::Any)))));
        assert!(m(Filter::In { path: path("n"), values: vec![Value::Int(7), Value::Int(9)] }));
        assert!(m(Filter::In { path: path("missing"), values: vec![Value::Null] }));
        assert!(m(Filter::Size { path: path("n"), len: 3 }));
        assert!(!m(Filter::Size { path: path("t"), len: 3 }));
        let length = Filter::Compare {
            left: Operand::Field { path: path("n"), transform: Transform::Length },
            op: Eq,
            right: Operand::Value(Value::Int(3)),
            quantifier: Quantifier::All,
        };
        assert!(m(length));
    }

    #[test]
    fn exists_empty_like_regex_elem_match() {
        let d = doc(serde_json::json!({
            "nul": null, "blank": "", "e": [], "name": "Hello World", "n": 42,
            "items": [{"k": 1, "v": "x"}, {"k": 2, "v": "y"}], "nums": [3, 8]
        }));
        let m = |filter: Filter| matches(&filter, &d);
        assert!(m(Filter::Exists { path: path("nul") }));
        assert!(!m(Filter::Exists { path: path("missing") }));
        for empty in ["nul", "blank", "e", "missing"] {
            assert!(m(Filter::Empty { path: path(empty) }), "{empty}");
        }
        assert!(!m(Filter::Empty { path: path("name") }));
        let like = |field: &str, pattern: &str| Filter::Like {
            path: path(field),
            pattern: pattern.into(),
            quantifier: Quantifier::All,
        };
        assert!(m(like("name", "%world%")));
        assert!(m(like("n", "4%")));
        assert!(!m(like("nul", "%")));
        let regex = |source: &str, flags: &str| Filter::Regex {
            path: path("name"),
            pattern: Pattern::new(source, flags).unwrap(),
        };
        assert!(m(regex("^Hello", "")));
        assert!(!m(regex("^hello", "")));
        assert!(m(regex("^hello", "i")));
        let both = Filter::And(vec![
            cmp("k", CompareOp::Eq, Value::Int(2), Quantifier::Any),
            cmp("v", CompareOp::Eq, Value::from("y"), Quantifier::Any),
        ]);
        assert!(m(Filter::ElemMatch { path: path("items"), filter: Box::new(both) }));
        let crossed = Filter::And(vec![
            cmp("k", CompareOp::Eq, Value::Int(1), Quantifier::Any),
            cmp("v", CompareOp::Eq, Value::from("y"), Quantifier::Any),
        ]);
        assert!(!m(Filter::ElemMatch { path: path("items"), filter: Box::new(crossed) }));
        let range = Filter::And(vec![
            Filter::Compare {
                left: Operand::field(FieldPath::root()),
                op: CompareOp::Gt,
                right: Operand::Value(Value::Int(4)),
                quantifier: Quantifier::Any,
            },
            Filter::Compare {
                left: Operand::field(FieldPath::root()),
                op: CompareOp::Lt,
                right: Operand::Value(Value::Int(6)),
                quantifier: Quantifier::Any,
            },
        ]);
        // 3 and 8 each satisfy one side, but no single item both.
        assert!(!m(Filter::ElemMatch { path: path("nums"), filter: Box::new(range) }));
    }

    #[test]
    fn fields_compare_with_fields() {
        let d = doc(serde_json::json!({"a": 3, "b": 3, "c": "x"}));
        let fields = |left: &str, op, right: &str| Filter::Compare {
            left: Operand::field(path(left)),
            op,
            right: Operand::field(path(right)),
            quantifier: Quantifier::All,
        };
        assert!(matches(&fields("a", CompareOp::Eq, "b"), &d));
        assert!(!matches(&fields("a", CompareOp::Eq, "c"), &d));
        assert!(matches(&fields("a", CompareOp::Ne, "c"), &d));
        assert!(matches(&fields("missing", CompareOp::Eq, "other"), &d));
    }
}
