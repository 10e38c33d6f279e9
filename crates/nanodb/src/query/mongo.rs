//! MongoDB-style filters (`{"age": {"$gte": 18}, "$or": [{"a": 1}, {"b": 2}]}`), given as a
//! `Value` (JSON callers convert with `Value::from(serde_json::Value)`), parsed into the
//! filter AST.
//!
//! A filter is an object: `{}` matches everything, several keys are all required (`And`, in
//! key order). `$and`, `$or`, `$nor` take non-empty arrays of filters, `$not` one filter. Any
//! other key is a dotted field path with a condition: an operator object (every key starts
//! with `$`: `$eq $ne $gt $gte $lt $lte $in $nin $exists $regex`/`$options $size $elemMatch
//! $not`), or else a literal the field must equal (`Any` of its values, MongoDB's rule).
//! `{"$date": "<RFC 3339>"}` or `{"$date": <ms>}` is a date wherever a literal is expected.
//!
//! Thread safety: pure functions.
//!
//! Invariant: bad input is an `Error::InvalidQuery` (no position) whose detail starts with a
//! JSON-path-like location of the culprit (`$.age.$foo`), or a `LimitExceeded`; recursion is
//! bounded by `FILTER_DEPTH_MAX` (filters) and `NESTING_DEPTH_MAX` (literals), so no input
//! overflows the stack or panics; a parsed filter passes `Filter::check_limits`.

use super::ast::{
    query_error, CompareOp, FieldPath, Filter, Operand, Pattern, Quantifier, FILTER_DEPTH_MAX,
};
use crate::value::{Date, Map, Value, NESTING_DEPTH_MAX};
use crate::{Error, Result};
use std::fmt::Display;

/// Parses a MongoDB-style filter object.
pub fn parse_mongo(filter: &Value) -> Result<Filter> {
    let filter = document(filter, "$", 1)?;
    filter.check_limits()?;
    Ok(filter)
}

/// An error about the part of the filter at `location`.
fn error(location: &str, detail: impl Display) -> Error {
    query_error(format!("{location}: {detail}"))
}

/// What `cause` (from `FieldPath::parse` or `Pattern::new`) says, without its kind.
fn detail(cause: Error) -> String {
    match cause {
        Error::InvalidQuery { detail, .. } => detail,
        other => other.to_string(),
    }
}

/// Refuses filters nested deeper than `FILTER_DEPTH_MAX` (each level of recursion here also
/// adds a level to the filter built, so this never refuses what `check_limits` accepts).
fn check_depth(depth: usize) -> Result<()> {
    Error::check_limit("nesting of a filter", depth, FILTER_DEPTH_MAX)
}

/// The one filter of `filters`, or all of them (`True` when there is none).
fn all_of(mut filters: Vec<Filter>) -> Filter {
    match filters.len() {
        0 => Filter::True,
        1 => filters.pop().unwrap_or(Filter::True),
        _ => Filter::And(filters),
    }
}

/// A filter object at `location`, `depth` levels deep.
fn document(value: &Value, location: &str, depth: usize) -> Result<Filter> {
    check_depth(depth)?;
    let Value::Object(fields) = value else {
        return Err(error(location, format!("a filter is an object, not a {}", value.type_name())));
    };
    let mut filters = Vec::with_capacity(fields.len());
    for (key, condition) in fields {
        let here = format!("{location}.{key}");
        filters.push(match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let items = match condition {
                    Value::Array(items) if !items.is_empty() => items,
                    _ => return Err(error(&here, "needs a non-empty array of filters")),
                };
                let nested = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| document(item, &format!("{here}[{index}]"), depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                match key.as_str() {
                    "$and" => Filter::And(nested),
                    "$or" => Filter::Or(nested),
                    _ => Filter::Or(nested).not(),
                }
            }
            "$not" => document(condition, &here, depth + 1)?.not(),
            operator if operator.starts_with('$') => {
                return Err(error(&here, format!("unknown top-level operator `{operator}`")));
            }
            _ => {
                let path = FieldPath::parse(key).map_err(|cause| error(&here, detail(cause)))?;
                match operator_object(condition, &here)? {
                    Some(operators) => operators_on(&path, operators, &here, depth)?,
                    None => compare(&path, CompareOp::Eq, condition, &here)?,
                }
            }
        });
    }
    Ok(all_of(filters))
}

/// The operators of an operator object (`{"$gt": 1}`: every key starts with `$`, and it is
/// not `{"$date": ...}`); `None` for a literal; an error when `$` keys and names are mixed.
fn operator_object<'v>(condition: &'v Value, location: &str) -> Result<Option<&'v Map>> {
    let Value::Object(map) = condition else { return Ok(None) };
    let operators = map.keys().filter(|key| key.starts_with('$')).count();
    if operators == 0 || is_date(map) {
        return Ok(None);
    }
    if operators < map.len() {
        return Err(error(location, "mixes operators (`$...`) with field names"));
    }
    Ok(Some(map))
}

fn is_date(map: &Map) -> bool {
    map.len() == 1 && map.contains_key("$date")
}

/// `path op literal`, Any-quantified.
fn compare(path: &FieldPath, op: CompareOp, operand: &Value, location: &str) -> Result<Filter> {
    Ok(Filter::Compare {
        left: Operand::field(path.clone()),
        op,
        right: Operand::Value(literal(operand, location, 0)?),
        quantifier: Quantifier::Any,
    })
}

/// The conditions of an operator object on `path`, all required.
fn operators_on(path: &FieldPath, operators: &Map, location: &str, depth: usize) -> Result<Filter> {
    check_depth(depth)?;
    let mut filters = Vec::with_capacity(operators.len());
    for (operator, operand) in operators {
        let here = format!("{location}.{operator}");
        let path = path.clone();
        filters.push(match operator.as_str() {
            "$eq" => compare(&path, CompareOp::Eq, operand, &here)?,
            "$ne" => compare(&path, CompareOp::Eq, operand, &here)?.not(),
            "$gt" => compare(&path, CompareOp::Gt, operand, &here)?,
            "$gte" => compare(&path, CompareOp::Gte, operand, &here)?,
            "$lt" => compare(&path, CompareOp::Lt, operand, &here)?,
            "$lte" => compare(&path, CompareOp::Lte, operand, &here)?,
            "$in" | "$nin" => {
                let Value::Array(items) = operand else {
                    return Err(error(&here, "needs an array of values"));
                };
                let values = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| literal(item, &format!("{here}[{index}]"), 0))
                    .collect::<Result<Vec<_>>>()?;
                let within = Filter::In { path, values };
                if operator == "$in" {
                    within
                } else {
                    within.not()
                }
            }
            "$exists" => {
                let exists = match operand {
                    Value::Bool(exists) => *exists,
                    Value::Int(number) => *number != 0,
                    Value::Float(number) => *number != 0.0,
                    _ => return Err(error(&here, "needs true, false or a number")),
                };
                let exists_filter = Filter::Exists { path };
                if exists {
                    exists_filter
                } else {
                    exists_filter.not()
                }
            }
            "$regex" => {
                let source = operand.as_str().ok_or_else(|| error(&here, "needs a string"))?;
                let flags = match operators.get("$options") {
                    None => "",
                    Some(Value::String(flags)) => flags,
                    Some(_) => {
                        return Err(error(&format!("{location}.$options"), "needs a string"))
                    }
                };
                let pattern =
                    Pattern::new(source, flags).map_err(|cause| error(&here, detail(cause)))?;
                Filter::Regex { path, pattern }
            }
            "$options" if operators.contains_key("$regex") => continue, // read with `$regex`
            "$options" => return Err(error(&here, "needs a sibling `$regex`")),
            "$size" => {
                let len = operand.as_i64().and_then(|len| usize::try_from(len).ok());
                let len = len.ok_or_else(|| error(&here, "needs a non-negative integer"))?;
                Filter::Size { path, len }
            }
            "$elemMatch" => {
                let Value::Object(item) = operand else {
                    return Err(error(&here, "needs an object"));
                };
                // Operators only (not `$and`/`$or`/`$nor`): conditions on the item itself.
                let logical = |key: &String| matches!(key.as_str(), "$and" | "$or" | "$nor");
                let on_item = !item.is_empty()
                    && item.keys().all(|key| key.starts_with('$') && !logical(key));
                let filter = if on_item {
                    operators_on(&FieldPath::root(), item, &here, depth + 1)?
                } else {
                    document(operand, &here, depth + 1)?
                };
                Filter::ElemMatch { path, filter: Box::new(filter) }
            }
            "$not" => match operator_object(operand, &here)? {
                Some(inner) => operators_on(&path, inner, &here, depth + 1)?.not(),
                None => return Err(error(&here, "needs an operator object such as {\"$gt\": 1}")),
            },
            _ => return Err(error(&here, format!("unknown operator `{operator}`"))),
        });
    }
    Ok(all_of(filters))
}

/// A literal, with `{"$date": ...}` objects (at any depth) turned into dates.
fn literal(value: &Value, location: &str, depth: usize) -> Result<Value> {
    match value {
        Value::Object(map) if is_date(map) => {
            let operand = map.get("$date").unwrap_or(&Value::Null);
            let date = match operand {
                Value::String(text) => Date::parse(text),
                Value::Date(date) => Some(*date),
                other => other.as_i64().and_then(Date::from_unix_ms),
            };
            let detail = "`$date` needs an RFC 3339 string or whole milliseconds (years 0-9999)";
            date.map(Value::Date).ok_or_else(|| error(location, detail))
        }
        Value::Object(_) | Value::Array(_) if depth >= NESTING_DEPTH_MAX => {
            Err(error(location, format!("a value nests deeper than {NESTING_DEPTH_MAX}")))
        }
        Value::Object(map) => map
            .iter()
            .map(|(name, item)| Ok((name.clone(), literal(item, location, depth + 1)?)))
            .collect::<Result<Map>>()
            .map(Value::Object),
        Value::Array(items) => items
            .iter()
            .map(|item| literal(item, location, depth + 1))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{seed_or, Rng};
    use serde_json::json;
    use CompareOp::*;

    fn parse(json: serde_json::Value) -> Result<Filter> {
        parse_mongo(&Value::from(json))
    }

    fn ok(json: serde_json::Value) -> Filter {
        parse(json.clone()).unwrap_or_else(|error| panic!("{json}: {error}"))
    }

    fn cmp(path: &str, op: CompareOp, value: impl Into<Value>) -> Filter {
        Filter::compare(path, op, value).unwrap()
    }

    fn on_item(op: CompareOp, value: impl Into<Value>) -> Filter {
        let (left, right) = (Operand::field(FieldPath::root()), Operand::Value(value.into()));
        Filter::Compare { left, op, right, quantifier: Quantifier::Any }
    }

    fn path(dotted: &str) -> FieldPath {
        FieldPath::parse(dotted).unwrap()
    }

    fn date(text: &str) -> Value {
        Value::Date(Date::parse(text).unwrap())
    }

    fn regex(field: &str, source: &str, flags: &str) -> Filter {
        Filter::Regex { path: path(field), pattern: Pattern::new(source, flags).unwrap() }
    }

    #[test]
    fn field_operators_map_to_their_nodes() {
        let object = |json: serde_json::Value| Value::from(json);
        let exists = Filter::Exists { path: path("a") };
        let cases = [
            (json!({}), Filter::True),
            (json!({"a": 1}), cmp("a", Eq, 1)),
            (json!({"a.b": "x"}), cmp("a.b", Eq, "x")),
            (json!({"a": null}), cmp("a", Eq, Value::Null)),
            (json!({"a": [1, "x"]}), cmp("a", Eq, object(json!([1, "x"])))),
            (json!({"a": {"b": 1}}), cmp("a", Eq, object(json!({"b": 1})))),
            (json!({"a": {}}), cmp("a", Eq, Map::new())),
            (json!({"a": {"$eq": 1}}), cmp("a", Eq, 1)),
            (json!({"a": {"$eq": {"$gt": 1}}}), cmp("a", Eq, object(json!({"$gt": 1})))),
            (json!({"a": {"$ne": 1}}), cmp("a", Eq, 1).not()),
            (json!({"a": {"$gt": 1.5}}), cmp("a", Gt, 1.5)),
            (json!({"a": {"$gte": "x"}}), cmp("a", Gte, "x")),
            (json!({"a": {"$lt": true}}), cmp("a", Lt, true)),
            (json!({"a": {"$lte": -1}}), cmp("a", Lte, -1)),
            (
                json!({"a": {"$in": [1, "x"]}}),
                Filter::In { path: path("a"), values: vec![1.into(), "x".into()] },
            ),
            (json!({"a": {"$nin": []}}), Filter::In { path: path("a"), values: vec![] }.not()),
            (json!({"a": {"$exists": true}}), exists.clone()),
            (json!({"a": {"$exists": 1}}), exists.clone()),
            (json!({"a": {"$exists": false}}), exists.clone().not()),
            (json!({"a": {"$exists": 0.0}}), exists.not()),
            (json!({"a": {"$regex": "^x"}}), regex("a", "^x", "")),
            (json!({"a": {"$options": "si", "$regex": "^x"}}), regex("a", "^x", "si")),
            (json!({"a": {"$size": 3}}), Filter::Size { path: path("a"), len: 3 }),
            (json!({"a": {"$size": 0.0}}), Filter::Size { path: path("a"), len: 0 }),
            (json!({"a": {"$not": {"$gt": 5}}}), cmp("a", Gt, 5).not()),
            (json!({"a": {"$not": {"$regex": "x", "$options": "m"}}}), regex("a", "x", "m").not()),
            (
                json!({"a": {"$lt": 5, "$gt": 1}}),
                Filter::And(vec![cmp("a", Gt, 1), cmp("a", Lt, 5)]),
            ),
            (json!({"b": 2, "a": 1}), Filter::And(vec![cmp("a", Eq, 1), cmp("b", Eq, 2)])),
        ];
        for (json, expected) in cases {
            assert_eq!(ok(json.clone()), expected, "{json}");
        }
    }

    #[test]
    fn logical_operators_nest() {
        let (a, b, c) = (cmp("a", Eq, 1), cmp("b", Eq, 2), cmp("c", Lt, 3));
        let cases = [
            (json!({"$and": [{"a": 1}, {"b": 2}]}), Filter::And(vec![a.clone(), b.clone()])),
            (json!({"$and": [{"a": 1}]}), Filter::And(vec![a.clone()])),
            (
                json!({"$or": [{"a": 1}, {"$and": [{"b": 2}, {"c": {"$lt": 3}}]}]}),
                Filter::Or(vec![a.clone(), Filter::And(vec![b.clone(), c.clone()])]),
            ),
            (json!({"$nor": [{"a": 1}, {"b": 2}]}), Filter::Or(vec![a.clone(), b.clone()]).not()),
            (json!({"$not": {"a": 1, "b": 2}}), Filter::And(vec![a.clone(), b.clone()]).not()),
            (json!({"$not": {}}), Filter::True.not()),
            (
                json!({"c": {"$lt": 3}, "$or": [{"a": 1}, {"b": 2}]}),
                Filter::And(vec![Filter::Or(vec![a, b]), c]),
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(ok(json.clone()), expected, "{json}");
        }
    }

    #[test]
    fn elem_match_on_items_or_their_fields() {
        let elem_match =
            |field: &str, filter| Filter::ElemMatch { path: path(field), filter: Box::new(filter) };
        let cases = [
            (
                json!({"tags": {"$elemMatch": {"$gte": 2, "$lt": 5}}}),
                elem_match("tags", Filter::And(vec![on_item(Gte, 2), on_item(Lt, 5)])),
            ),
            (
                json!({"tags": {"$elemMatch": {"$not": {"$eq": 1}}}}),
                elem_match("tags", on_item(Eq, 1).not()),
            ),
            (
                json!({"items": {"$elemMatch": {"qty": {"$gt": 1}, "sku": "x"}}}),
                elem_match("items", Filter::And(vec![cmp("qty", Gt, 1), cmp("sku", Eq, "x")])),
            ),
            (
                json!({"items": {"$elemMatch": {"$or": [{"a": 1}, {"b": 2}]}}}),
                elem_match("items", Filter::Or(vec![cmp("a", Eq, 1), cmp("b", Eq, 2)])),
            ),
            (json!({"items": {"$elemMatch": {}}}), elem_match("items", Filter::True)),
        ];
        for (json, expected) in cases {
            assert_eq!(ok(json.clone()), expected, "{json}");
        }
    }

    #[test]
    fn dates_wherever_literals_go() {
        let may = "2024-05-01T10:20:30.123Z";
        assert_eq!(ok(json!({"at": {"$date": may}})), cmp("at", Eq, date(may)));
        assert_eq!(
            ok(json!({"at": {"$gte": {"$date": 1_714_558_830_123i64}}})),
            cmp("at", Gte, date(may))
        );
        let listed = ok(json!({"at": {"$in": [{"$date": "2024-05-01"}, 5]}}));
        assert_eq!(
            listed,
            Filter::In { path: path("at"), values: vec![date("2024-05-01"), 5.into()] }
        );
        let nested = ok(json!({"doc": {"when": [{"$date": 0}]}}));
        let expected: Map = [("when".to_string(), Value::Array(vec![date("1970-01-01")]))].into();
        assert_eq!(nested, cmp("doc", Eq, expected));
        assert_eq!(ok(json!({"at": {"$date": 86_400_000.0}})), cmp("at", Eq, date("1970-01-02")));
    }

    #[test]
    fn bad_filters_name_where_they_are_wrong() {
        let cases = [
            (json!(5), "$: a filter is an object, not a number"),
            (json!([]), "$: a filter is an object"),
            (json!({"$foo": 1}), "$.$foo: unknown top-level operator `$foo`"),
            (json!({"$and": []}), "$.$and: needs a non-empty array"),
            (json!({"$and": 5}), "$.$and: needs a non-empty array"),
            (json!({"$or": [{"a": 1}, 5]}), "$.$or[1]: a filter is an object"),
            (json!({"$nor": [[]]}), "$.$nor[0]: a filter is an object"),
            (json!({"$not": 1}), "$.$not: a filter is an object"),
            (json!({"age": {"$foo": 1}}), "$.age.$foo: unknown operator `$foo`"),
            (json!({"a": {"$gt": 1, "b": 2}}), "$.a: mixes operators"),
            (json!({"a": {"$date": 0, "b": 2}}), "$.a: mixes operators"),
            (json!({"a": {"$in": 5}}), "$.a.$in: needs an array"),
            (json!({"a": {"$nin": {"x": 1}}}), "$.a.$nin: needs an array"),
            (json!({"a": {"$exists": "yes"}}), "$.a.$exists: needs true, false or a number"),
            (json!({"a": {"$regex": 5}}), "$.a.$regex: needs a string"),
            (json!({"a": {"$regex": "("}}), "$.a.$regex: bad regular expression"),
            (json!({"a": {"$regex": "x", "$options": "q"}}), "$.a.$regex: unknown regex option"),
            (json!({"a": {"$regex": "x", "$options": 1}}), "$.a.$options: needs a string"),
            (json!({"a": {"$options": "i"}}), "$.a.$options: needs a sibling `$regex`"),
            (json!({"a": {"$size": -1}}), "$.a.$size: needs a non-negative integer"),
            (json!({"a": {"$size": 1.5}}), "$.a.$size: needs a non-negative integer"),
            (json!({"a": {"$size": "3"}}), "$.a.$size: needs a non-negative integer"),
            (json!({"a": {"$elemMatch": [1]}}), "$.a.$elemMatch: needs an object"),
            (json!({"a": {"$not": 5}}), "$.a.$not: needs an operator object"),
            (json!({"a": {"$not": {}}}), "$.a.$not: needs an operator object"),
            (json!({"a": {"$not": {"b": 1}}}), "$.a.$not: needs an operator object"),
            (json!({"": 1}), "$.: an empty field path"),
            (json!({"a..b": 1}), "$.a..b: field path \"a..b\" has an empty part"),
            (json!({"a": {"$date": "yesterday"}}), "$.a: `$date` needs"),
            (json!({"a": {"$date": 1.5}}), "$.a: `$date` needs"),
            (json!({"a": {"$date": 253_402_300_800_000i64}}), "$.a: `$date` needs"),
            (json!({"a": {"$lt": {"$date": true}}}), "$.a.$lt: `$date` needs"),
            (json!({"a": {"$in": [1, {"$date": "x"}]}}), "$.a.$in[1]: `$date` needs"),
            (
                json!({"$and": [{"a": {"$elemMatch": {"$foo": 1}}}]}),
                "$.$and[0].a.$elemMatch.$foo: unknown operator",
            ),
        ];
        for (json, expected) in cases {
            match parse(json.clone()) {
                Err(Error::InvalidQuery { detail, position: None }) => {
                    assert!(detail.starts_with(expected), "{json}: {detail:?}");
                }
                other => panic!("{json}: expected an InvalidQuery, got {other:?}"),
            }
        }
    }

    fn wrap(times: usize, inner: Value, around: impl Fn(Value) -> Value) -> Value {
        (0..times).fold(inner, |value, _| around(value))
    }

    fn one(key: &str, value: Value) -> Value {
        Value::Object([(key.to_string(), value)].into())
    }

    #[test]
    fn nesting_is_limited_at_the_boundary() {
        let over = |result: Result<Filter>| matches!(result, Err(Error::LimitExceeded { .. }));
        // Each `$not` or `$elemMatch` adds one level above the comparison.
        let top_not = |times| parse_mongo(&wrap(times, one("a", 1.into()), |v| one("$not", v)));
        let gt = one("$gt", 1.into());
        let field_not = |times| parse_mongo(&one("a", wrap(times, gt.clone(), |v| one("$not", v))));
        let elem_match = |times| {
            parse_mongo(&wrap(times, one("a", 1.into()), |v| one("a", one("$elemMatch", v))))
        };
        for parse in [&top_not as &dyn Fn(usize) -> Result<Filter>, &field_not, &elem_match] {
            assert!(parse(FILTER_DEPTH_MAX - 1).is_ok());
            assert!(over(parse(FILTER_DEPTH_MAX)));
            assert!(over(parse(1_000)), "deep input is refused, not a stack overflow");
        }
        let literal =
            |depth| one("a", one("$in", wrap(depth, Value::Int(1), |v| Value::Array(vec![v]))));
        // The `$in` array is a list of literals, not one: its items may nest 64 deep.
        assert!(parse_mongo(&literal(NESTING_DEPTH_MAX + 1)).is_ok());
        assert!(parse_mongo(&literal(NESTING_DEPTH_MAX + 2)).is_err());
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        const KEYS: [&str; 20] = [
            "$and",
            "$or",
            "$nor",
            "$not",
            "$eq",
            "$ne",
            "$gt",
            "$in",
            "$nin",
            "$exists",
            "$regex",
            "$options",
            "$size",
            "$elemMatch",
            "$date",
            "$foo",
            "a",
            "b.c",
            "",
            "a..b",
        ];
        const TEXTS: [&str; 6] = ["x", "i", "(", "a+", "2024-05-01", "imsx"];
        match rng.below(if depth > 5 { 6 } else { 9 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => Value::Int(rng.below(7) as i64 - 3),
            3 => Value::Float([1.5, -0.0, f64::NAN, 2.0, 1e300][rng.below(5)]),
            4 | 5 => Value::from(TEXTS[rng.below(TEXTS.len())]),
            6 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth + 1)).collect()),
            _ => Value::Object(
                (0..rng.below(4))
                    .map(|_| {
                        (KEYS[rng.below(KEYS.len())].to_string(), random_value(rng, depth + 1))
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn random_values_never_panic() {
        let seed = seed_or(0x3a7d_11fe_u64);
        let mut rng = Rng(seed | 1);
        let mut accepted = 0;
        for round in 0..20_000 {
            let value = random_value(&mut rng, 0);
            let outcome = std::panic::catch_unwind(|| parse_mongo(&value).is_ok());
            assert!(outcome.is_ok(), "seed {seed}, round {round}: {value:?} panicked");
            accepted += usize::from(outcome.unwrap_or(false));
        }
        assert!(accepted > 200, "seed {seed}: only {accepted} random filters were valid");
    }
}
