//! One field's value: read from request JSON into its stored form (`cast`), checked against
//! the field's options with PocketBase's error codes (`check`), and its empty JSON form.
//!
//! Stored forms: text, email and url as a non-empty string; number as an integer or a float;
//! bool as a bool; date as a date; a single select or relation as a non-empty string, a
//! multiple one as an array of distinct strings; json as any value. An empty text, date,
//! single select or relation and a null json are not stored at all (`None`), so filters see
//! them as empty and unique indexes ignore them; numbers and bools are always stored, so
//! `n = 0` and `b = false` match.
//!
//! Thread safety: pure functions, but for the shared cache of compiled patterns (`pattern`,
//! one mutex held for a lookup or an insert; a pattern compiles outside it).

use super::record_json::{FieldJson, StoredJson};
use crate::error::FieldError;
use crate::schema::field::{Field, FieldKind, JSON_FIELD_BYTES_MAX_DEFAULT, TEXT_LEN_MAX_DEFAULT};
use nanodb::{Date, Value};
use parking_lot::Mutex;
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// Longest text pattern, in bytes.
pub const PATTERN_BYTES_MAX: usize = 1_024;
/// Most memory a compiled pattern may take, in bytes.
const PATTERN_COMPILED_BYTES_MAX: usize = 1 << 20;
/// Longest email address, in bytes (RFC 5321).
pub const EMAIL_BYTES_MAX: usize = 254;
/// Longest URL, in bytes.
pub const URL_BYTES_MAX: usize = 8 * 1024;

/// Most compiled text patterns kept (`pattern`); when full, the cache starts over.
pub const PATTERN_CACHE_ENTRIES_MAX: usize = 1_024;

/// The compiled form of a text field's pattern, compiled once per pattern (so once per
/// field, not per value) and kept in a bounded cache; `None` if it does not compile (the
/// definition's validation refuses such patterns, so a value is then simply invalid).
pub fn pattern(text: &str) -> Option<Arc<regex::Regex>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<regex::Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(compiled) = cache.lock().get(text) {
        return compiled.clone();
    }
    let compiled = compile_pattern(text).ok().map(Arc::new);
    let mut cache = cache.lock();
    if cache.len() >= PATTERN_CACHE_ENTRIES_MAX {
        cache.clear();
    }
    cache.insert(text.to_string(), compiled.clone());
    compiled
}

/// Compiles a text field's pattern (linear-time matching, bounded size).
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > PATTERN_BYTES_MAX {
        return Err(format!("The pattern is over {PATTERN_BYTES_MAX} bytes."));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(PATTERN_COMPILED_BYTES_MAX)
        .build()
        .map_err(|error| format!("Invalid pattern: {error}"))
}

fn invalid(message: impl Into<String>) -> FieldError {
    FieldError::new("validation_invalid_value", message)
}

/// Text of a scalar (numbers and bools as their JSON text, as a form body infers `"123"` to
/// the number 123), `""` for null.
pub fn text_of(json: &Json) -> Result<String, FieldError> {
    match json {
        Json::Null => Ok(String::new()),
        Json::String(text) => Ok(text.clone()),
        Json::Number(number) => Ok(number.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        _ => Err(invalid("Must be text.")),
    }
}

/// The strings of a select or relation value (one string, or an array of strings), empty and
/// repeated ones left out; `validation_too_many_values` past `max_select` (`distinct`).
fn strings_of(json: &Json, max_select: usize) -> Result<Vec<String>, FieldError> {
    match json {
        Json::Array(items) => distinct(items.iter().map(text_of), max_select),
        other => distinct([text_of(other)], max_select),
    }
}

/// `items` without empty and repeated values, in first-seen order. Linear time (a hash
/// set), and the limit is checked as each value comes: past `max_select` distinct values
/// (at least 1) it fails at once, before the rest is read.
pub fn distinct(
    items: impl IntoIterator<Item = Result<String, FieldError>>,
    max_select: usize,
) -> Result<Vec<String>, FieldError> {
    let max = max_select.max(1);
    let mut seen: HashSet<String> = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let item = item?;
        if item.is_empty() || seen.contains(&item) {
            continue;
        }
        if out.len() == max {
            return Err(too_many_values(max));
        }
        seen.insert(item.clone());
        out.push(item);
    }
    Ok(out)
}

/// PocketBase's failure for more values than a field holds.
fn too_many_values(max: usize) -> FieldError {
    let message = match max {
        1 => "Select only one value.".to_string(),
        max => format!("Select no more than {max}."),
    };
    FieldError::new("validation_too_many_values", message)
}

/// A number from JSON (a numeric string counts; null and `""` are 0).
fn number_of(json: &Json) -> Result<Value, FieldError> {
    let not_a_number = || FieldError::new("validation_not_a_number", "Must be a number.");
    let float = match json {
        Json::Null => return Ok(Value::Int(0)),
        Json::Bool(b) => return Ok(Value::Int(i64::from(*b))),
        Json::Number(number) => match number.as_i64() {
            Some(whole) => return Ok(Value::Int(whole)),
            None => number.as_f64().ok_or_else(not_a_number)?,
        },
        Json::String(text) if text.trim().is_empty() => return Ok(Value::Int(0)),
        Json::String(text) => text.trim().parse::<f64>().map_err(|_| not_a_number())?,
        _ => return Err(not_a_number()),
    };
    if !float.is_finite() {
        return Err(not_a_number());
    }
    Ok(number_value(float))
}

/// `float` as an integer when it is whole and exact, else as a float.
pub fn number_value(float: f64) -> Value {
    if float.fract() == 0.0 && float.abs() < 9.0e15 {
        Value::Int(float as i64)
    } else {
        Value::Float(float)
    }
}

/// The stored form of `json` for `field` (`None`: empty, not stored).
pub fn cast(field: &Field, json: &Json) -> Result<Option<Value>, FieldError> {
    let non_empty = |text: String| (!text.is_empty()).then_some(Value::String(text));
    Ok(match &field.kind {
        FieldKind::Text { .. } | FieldKind::Email { .. } | FieldKind::Url { .. } => {
            non_empty(text_of(json)?)
        }
        FieldKind::Password { .. } => non_empty(text_of(json)?),
        FieldKind::Number { .. } => Some(number_of(json)?),
        FieldKind::Bool => Some(Value::Bool(match json {
            Json::Bool(b) => *b,
            Json::Null => false,
            Json::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
            Json::String(text) => match text.as_str() {
                "" | "false" | "0" => false,
                "true" | "1" => true,
                _ => return Err(invalid("Must be a bool.")),
            },
            _ => return Err(invalid("Must be a bool.")),
        })),
        FieldKind::Date { .. } | FieldKind::Autodate { .. } => match text_of(json)?.trim() {
            "" => None,
            text => Some(Value::Date(Date::parse(text).ok_or_else(|| {
                FieldError::new("validation_invalid_date", "Must be a valid date.")
            })?)),
        },
        FieldKind::Select { .. } | FieldKind::Relation { .. } => {
            let mut items = strings_of(json, field.kind.max_select())?;
            if field.kind.is_multiple() {
                Some(Value::Array(items.into_iter().map(Value::String).collect()))
            } else {
                items.pop().map(Value::String)
            }
        }
        FieldKind::Json { .. } => match json {
            Json::Null => None,
            other => Some(Value::from(other.clone())),
        },
    })
}

/// True if `value` is the field's empty value (what `required` refuses).
pub fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(Value::Int(0)) | Some(Value::Bool(false)) => true,
        Some(Value::Float(x)) => *x == 0.0,
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    }
}

/// Checks a stored value against `field`'s options (relation ids are checked by the
/// writer, which can read the target collection).
pub fn check(field: &Field, value: Option<&Value>) -> Result<(), FieldError> {
    if is_blank(value) {
        return if field.required {
            Err(FieldError::new("validation_required", "Cannot be blank."))
        } else {
            Ok(())
        };
    }
    let Some(value) = value else { return Ok(()) };
    match (&field.kind, value) {
        (FieldKind::Text { min, max, pattern, .. }, Value::String(text)) => {
            let length = text.chars().count();
            let max = if *max == 0 { TEXT_LEN_MAX_DEFAULT } else { *max };
            if length < *min {
                let message = format!("Must be at least {min} character(s).");
                return Err(FieldError::new("validation_min_text_constraint", message));
            }
            if length > max {
                let message = format!("Must be less than {max} character(s).");
                return Err(FieldError::new("validation_max_text_constraint", message));
            }
            if !pattern.is_empty() && !self::pattern(pattern).is_some_and(|re| re.is_match(text)) {
                return Err(FieldError::new("validation_invalid_format", "Invalid value format."));
            }
        }
        (FieldKind::Number { min, max, only_int }, number) => {
            let n = number.as_f64().unwrap_or(0.0);
            if *only_int && n.fract() != 0.0 {
                let message = "Decimal numbers are not allowed.";
                return Err(FieldError::new("validation_only_int_constraint", message));
            }
            if min.is_some_and(|min| n < min) {
                let message = format!("Must be larger than {}.", min.unwrap_or_default());
                return Err(FieldError::new("validation_min_number_constraint", message));
            }
            if max.is_some_and(|max| n > max) {
                let message = format!("Must be less than {}.", max.unwrap_or_default());
                return Err(FieldError::new("validation_max_number_constraint", message));
            }
        }
        (FieldKind::Email { except_domains, only_domains }, Value::String(text)) => {
            let domain = email_domain(text).ok_or_else(|| {
                FieldError::new("validation_is_email", "Must be a valid email address.")
            })?;
            check_domain(
                domain,
                except_domains,
                only_domains,
                "validation_email_domain_not_allowed",
            )?;
        }
        (FieldKind::Url { except_domains, only_domains }, Value::String(text)) => {
            let host = url_host(text)
                .ok_or_else(|| FieldError::new("validation_is_url", "Must be a valid url."))?;
            check_domain(host, except_domains, only_domains, "validation_url_domain_not_allowed")?;
        }
        (FieldKind::Date { min, max }, Value::Date(date)) => {
            if min.is_some_and(|min| *date < min) {
                let message = format!(
                    "Must be at or after {}.",
                    min.map(Date::to_pocketbase).unwrap_or_default()
                );
                return Err(FieldError::new("validation_min_date_constraint", message));
            }
            if max.is_some_and(|max| *date > max) {
                let message = format!(
                    "Must be at or before {}.",
                    max.map(Date::to_pocketbase).unwrap_or_default()
                );
                return Err(FieldError::new("validation_max_date_constraint", message));
            }
        }
        (FieldKind::Select { values, max_select }, value) => {
            for item in items(value) {
                if !values.iter().any(|allowed| allowed == item) {
                    return Err(invalid(format!("Invalid value {item}.")));
                }
            }
            check_count(items(value).len(), 0, *max_select)?;
        }
        (FieldKind::Relation { min_select, max_select, .. }, value) => {
            check_count(items(value).len(), *min_select, *max_select)?;
        }
        (FieldKind::Json { max_size }, value) => {
            let limit = if *max_size == 0 { JSON_FIELD_BYTES_MAX_DEFAULT } else { *max_size };
            let size = value.to_string().len();
            if size > limit {
                let message = format!("The maximum allowed JSON size is {limit} bytes.");
                return Err(FieldError::new("validation_json_size_limit", message));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The strings of a select or relation value.
pub fn items(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn check_count(count: usize, min: usize, max: usize) -> Result<(), FieldError> {
    if count > max.max(1) {
        return Err(too_many_values(max.max(1)));
    }
    if count < min {
        let message = format!("Select at least {min}.");
        return Err(FieldError::new("validation_not_enough_values", message));
    }
    Ok(())
}

fn check_domain(
    domain: &str,
    except: &[String],
    only: &[String],
    code: &'static str,
) -> Result<(), FieldError> {
    let listed = |list: &[String]| list.iter().any(|d| d.eq_ignore_ascii_case(domain));
    if listed(except) || (!only.is_empty() && !listed(only)) {
        return Err(FieldError::new(code, "The domain is not allowed."));
    }
    Ok(())
}

/// The domain of a plausible email address (`local@domain.tld`, no spaces).
pub fn email_domain(text: &str) -> Option<&str> {
    if text.len() > EMAIL_BYTES_MAX || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = text.rsplit_once('@')?;
    let labels_ok = domain
        .split('.')
        .all(|label| !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-'));
    (!local.is_empty() && !local.contains('@') && domain.contains('.') && labels_ok)
        .then_some(domain)
}

/// The host of a plausible absolute URL (`scheme://host[:port][/...]`).
pub fn url_host(text: &str) -> Option<&str> {
    if text.len() > URL_BYTES_MAX || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = text.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = host_port.split(':').next()?;
    (scheme_ok && !host.is_empty()).then_some(host)
}

/// The JSON of a stored value for output (dates in PocketBase's form).
pub fn to_json(value: &Value) -> Json {
    // Not reached as an error: stored values have string keys.
    serde_json::to_value(StoredJson(value)).unwrap_or(Json::Null)
}

/// The JSON `field` shows for a stored value (`FieldJson` states the rules).
pub fn output(field: &Field, value: Option<&Value>) -> Json {
    serde_json::to_value(FieldJson { field, value }).unwrap_or(Json::Null)
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
