//! `Field`: one field of a collection definition, with its type and options, read from and
//! written to PocketBase's field JSON (`{"id", "name", "type", "required", ...options}`).
//!
//! Types: text, number, bool, email, url, date, select, json, relation, and the system types
//! password and autodate. Options this server does not know are dropped; the output always
//! carries every option of the type, with PocketBase's defaults.
//!
//! Thread safety: plain owned data.
//!
//! Invariant: a parsed `Field` has a valid name (`check_field_name`) and options in range
//! (`select` has values, `relation` a collection id).

use crate::error::{FieldError, FieldErrors};
use nanodb::Date;
use serde_json::{json, Map as JsonMap, Value as Json};

/// Longest field name, in bytes.
pub const FIELD_NAME_LEN_MAX: usize = 100;
/// Longest text value when a text field's `max` is 0.
pub const TEXT_LEN_MAX_DEFAULT: usize = 5_000;
/// Largest JSON value, in bytes of its JSON text, when a json field's `maxSize` is 0.
pub const JSON_FIELD_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Most values a select field may list.
pub const SELECT_VALUES_MAX: usize = 1_000;

/// What a field holds, with its type's options.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// Text.
    Text {
        /// Fewest characters of a non-empty value.
        min: usize,
        /// Most characters (0: `TEXT_LEN_MAX_DEFAULT`).
        max: usize,
        /// A regular expression a non-empty value must match (empty: any).
        pattern: String,
        /// True for the `id` field.
        primary_key: bool,
    },
    /// A number.
    Number {
        /// Smallest value, if any.
        min: Option<f64>,
        /// Largest value, if any.
        max: Option<f64>,
        /// Whole numbers only.
        only_int: bool,
    },
    /// True or false.
    Bool,
    /// An email address.
    Email {
        /// Domains refused.
        except_domains: Vec<String>,
        /// The only domains accepted (empty: any).
        only_domains: Vec<String>,
    },
    /// An absolute URL.
    Url {
        /// Hosts refused.
        except_domains: Vec<String>,
        /// The only hosts accepted (empty: any).
        only_domains: Vec<String>,
    },
    /// A date.
    Date {
        /// Earliest date, if any.
        min: Option<Date>,
        /// Latest date, if any.
        max: Option<Date>,
    },
    /// One or several of listed values.
    Select {
        /// The values allowed.
        values: Vec<String>,
        /// Most values (1: a single value, stored as text; more: an array).
        max_select: usize,
    },
    /// Any JSON value.
    Json {
        /// Most bytes of its JSON text (0: `JSON_FIELD_BYTES_MAX_DEFAULT`).
        max_size: usize,
    },
    /// Ids of records of a collection.
    Relation {
        /// The collection the ids belong to.
        collection_id: String,
        /// Kept for PocketBase compatibility; deletes do not cascade yet.
        cascade_delete: bool,
        /// Fewest ids.
        min_select: usize,
        /// Most ids (1: a single id, stored as text; more: an array).
        max_select: usize,
    },
    /// An auth collection's password (stored hashed, never output).
    Password {
        /// Fewest characters.
        min: usize,
    },
    /// A date the server sets (`created`, `updated`).
    Autodate {
        /// Set when the record is created.
        on_create: bool,
        /// Set whenever the record changes.
        on_update: bool,
    },
}

impl FieldKind {
    /// PocketBase's name of the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Number { .. } => "number",
            FieldKind::Bool => "bool",
            FieldKind::Email { .. } => "email",
            FieldKind::Url { .. } => "url",
            FieldKind::Date { .. } => "date",
            FieldKind::Select { .. } => "select",
            FieldKind::Json { .. } => "json",
            FieldKind::Relation { .. } => "relation",
            FieldKind::Password { .. } => "password",
            FieldKind::Autodate { .. } => "autodate",
        }
    }

    /// Most values a select or relation field holds (at least 1); 1 for other kinds.
    pub fn max_select(&self) -> usize {
        match self {
            FieldKind::Select { max_select, .. } | FieldKind::Relation { max_select, .. } => {
                (*max_select).max(1)
            }
            _ => 1,
        }
    }

    /// True for a select or relation field that holds several values.
    pub fn is_multiple(&self) -> bool {
        match self {
            FieldKind::Select { max_select, .. } | FieldKind::Relation { max_select, .. } => {
                *max_select > 1
            }
            _ => false,
        }
    }
}

/// One field of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Stable id (survives a rename of the field).
    pub id: String,
    /// The name records use.
    pub name: String,
    /// The type and its options.
    pub kind: FieldKind,
    /// Created by the server (`id`, auth fields, ...); cannot be removed.
    pub system: bool,
    /// Output only to superusers (and never for password).
    pub hidden: bool,
    /// Shown by admin UIs as the record's label (kept, not used).
    pub presentable: bool,
    /// A record must have a non-empty value.
    pub required: bool,
}

impl Field {
    /// A plain field of `kind` named `name`, with an id from its type and name.
    pub fn new(name: &str, kind: FieldKind) -> Field {
        let id = format!("{}{}", kind.type_name(), crc32(name));
        Field {
            id,
            name: name.to_string(),
            kind,
            system: false,
            hidden: false,
            presentable: false,
            required: false,
        }
    }

    /// The same field, system.
    pub fn system(mut self) -> Field {
        self.system = true;
        self
    }

    /// The same field, hidden.
    pub fn hidden(mut self) -> Field {
        self.hidden = true;
        self
    }

    /// The same field, required.
    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// The field as PocketBase's JSON.
    pub fn to_json(&self) -> Json {
        let mut out = json!({
            "id": self.id, "name": self.name, "type": self.kind.type_name(),
            "system": self.system, "hidden": self.hidden, "presentable": self.presentable,
            "required": self.required,
        });
        let options = match &self.kind {
            FieldKind::Text { min, max, pattern, primary_key } => json!({
                "min": min, "max": max, "pattern": pattern, "autogeneratePattern":
                if *primary_key { "[a-z0-9]{15}" } else { "" }, "primaryKey": primary_key,
            }),
            FieldKind::Number { min, max, only_int } => {
                let number = |bound: &Option<f64>| {
                    bound.map(|n| {
                        crate::records::values::to_json(&crate::records::values::number_value(n))
                    })
                };
                json!({"min": number(min), "max": number(max), "onlyInt": only_int})
            }
            FieldKind::Bool => json!({}),
            FieldKind::Email { except_domains, only_domains }
            | FieldKind::Url { except_domains, only_domains } => {
                json!({"exceptDomains": except_domains, "onlyDomains": only_domains})
            }
            FieldKind::Date { min, max } => {
                let text = |date: &Option<Date>| date.map(Date::to_pocketbase).unwrap_or_default();
                json!({"min": text(min), "max": text(max)})
            }
            FieldKind::Select { values, max_select } => {
                json!({"values": values, "maxSelect": max_select})
            }
            FieldKind::Json { max_size } => json!({"maxSize": max_size}),
            FieldKind::Relation { collection_id, cascade_delete, min_select, max_select } => {
                json!({"collectionId": collection_id, "cascadeDelete": cascade_delete,
                       "minSelect": min_select, "maxSelect": max_select})
            }
            FieldKind::Password { min } => {
                json!({"min": min, "max": 0, "cost": 0, "pattern": ""})
            }
            FieldKind::Autodate { on_create, on_update } => {
                json!({"onCreate": on_create, "onUpdate": on_update})
            }
        };
        if let (Json::Object(out), Json::Object(options)) = (&mut out, options) {
            out.extend(options);
        }
        out
    }

    /// Reads a field from PocketBase's JSON; failures are reported under `path` (such as
    /// `fields.2.name`) in `errors`.
    pub fn from_json(json: &Json, path: &str, errors: &mut FieldErrors) -> Option<Field> {
        let mut fail = |key: &str, code: &'static str, message: String| {
            errors.insert(format!("{path}.{key}"), FieldError::new(code, message));
        };
        let Some(map) = json.as_object() else {
            fail("type", "validation_invalid_value", "A field must be an object.".into());
            return None;
        };
        let name = map.get("name").and_then(Json::as_str).unwrap_or("").to_string();
        if let Err(message) = check_name(&name) {
            fail("name", "validation_invalid_name", message);
            return None;
        }
        let type_name = map.get("type").and_then(Json::as_str).unwrap_or("");
        let kind = match kind_from_json(type_name, map) {
            Ok(kind) => kind,
            Err((key, message)) => {
                fail(key, "validation_invalid_value", message);
                return None;
            }
        };
        let flag = |key: &str| map.get(key).and_then(Json::as_bool).unwrap_or(false);
        let mut field = Field::new(&name, kind);
        if let Some(id) = map.get("id").and_then(Json::as_str).filter(|id| !id.is_empty()) {
            field.id = id.to_string();
        }
        field.system = flag("system");
        field.hidden = flag("hidden");
        field.presentable = flag("presentable");
        field.required = flag("required");
        Some(field)
    }
}

/// Checks a field name: 1 to `FIELD_NAME_LEN_MAX` letters, digits and `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Cannot be blank.".into());
    }
    if name.len() > FIELD_NAME_LEN_MAX {
        return Err(format!("Must be at most {FIELD_NAME_LEN_MAX} characters."));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("Only letters, digits and underscores are allowed.".into());
    }
    Ok(())
}

fn strings(map: &JsonMap<String, Json>, key: &str) -> Vec<String> {
    let items = map.get(key).and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Json::as_str).map(str::to_string).collect()
}

fn count(map: &JsonMap<String, Json>, key: &str) -> usize {
    map.get(key).and_then(Json::as_u64).map_or(0, |n| n.min(u32::MAX.into()) as usize)
}

/// The type and options of a field's JSON; an error names the bad key.
fn kind_from_json(
    type_name: &str,
    map: &JsonMap<String, Json>,
) -> Result<FieldKind, (&'static str, String)> {
    let number = |key: &str| map.get(key).and_then(Json::as_f64);
    let date = |key: &'static str| -> Result<Option<Date>, (&'static str, String)> {
        match map.get(key).and_then(Json::as_str).filter(|text| !text.is_empty()) {
            None => Ok(None),
            Some(text) => {
                Date::parse(text).map(Some).ok_or((key, format!("{text:?} is not a date.")))
            }
        }
    };
    Ok(match type_name {
        "text" => {
            let pattern = map.get("pattern").and_then(Json::as_str).unwrap_or("").to_string();
            if !pattern.is_empty() {
                crate::records::values::compile_pattern(&pattern)
                    .map_err(|message| ("pattern", message))?;
            }
            let primary_key = map.get("primaryKey").and_then(Json::as_bool).unwrap_or(false);
            FieldKind::Text { min: count(map, "min"), max: count(map, "max"), pattern, primary_key }
        }
        "number" => FieldKind::Number {
            min: number("min"),
            max: number("max"),
            only_int: map.get("onlyInt").and_then(Json::as_bool).unwrap_or(false),
        },
        "bool" => FieldKind::Bool,
        "email" => FieldKind::Email {
            except_domains: strings(map, "exceptDomains"),
            only_domains: strings(map, "onlyDomains"),
        },
        "url" => FieldKind::Url {
            except_domains: strings(map, "exceptDomains"),
            only_domains: strings(map, "onlyDomains"),
        },
        "date" => FieldKind::Date { min: date("min")?, max: date("max")? },
        "select" => {
            let values = strings(map, "values");
            if values.is_empty() || values.len() > SELECT_VALUES_MAX {
                let message = format!("A select field needs 1 to {SELECT_VALUES_MAX} values.");
                return Err(("values", message));
            }
            FieldKind::Select { values, max_select: count(map, "maxSelect").max(1) }
        }
        "json" => FieldKind::Json { max_size: count(map, "maxSize") },
        "relation" => {
            let collection_id = map.get("collectionId").and_then(Json::as_str).unwrap_or("");
            if collection_id.is_empty() {
                return Err(("collectionId", "A relation needs a collectionId.".into()));
            }
            FieldKind::Relation {
                collection_id: collection_id.to_string(),
                cascade_delete: map.get("cascadeDelete").and_then(Json::as_bool).unwrap_or(false),
                min_select: count(map, "minSelect"),
                max_select: count(map, "maxSelect").max(1),
            }
        }
        "password" => FieldKind::Password { min: count(map, "min") },
        "autodate" => FieldKind::Autodate {
            on_create: map.get("onCreate").and_then(Json::as_bool).unwrap_or(true),
            on_update: map.get("onUpdate").and_then(Json::as_bool).unwrap_or(false),
        },
        "file" => return Err(("type", "File fields are not supported yet.".into())),
        "" => return Err(("type", "Cannot be blank.".into())),
        other => {
            return Err(("type", format!("Unknown or unsupported field type {other:?}.")));
        }
    })
}

/// CRC-32 (IEEE) of `text`, which PocketBase uses in default ids.
pub fn crc32(text: &str) -> u32 {
    crc32fast::hash(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: Json) -> Result<Field, FieldErrors> {
        let mut errors = FieldErrors::new();
        Field::from_json(&json, "fields.0", &mut errors).ok_or(errors)
    }

    #[test]
    fn every_type_round_trips_through_json() {
        let fields = [
            json!({"name": "t", "type": "text", "min": 2, "max": 10, "pattern": "^[a-z]+$", "required": true}),
            json!({"name": "n", "type": "number", "min": 0, "max": 9.5, "onlyInt": true}),
            json!({"name": "b", "type": "bool", "hidden": true}),
            json!({"name": "e", "type": "email", "onlyDomains": ["x.org"]}),
            json!({"name": "u", "type": "url", "exceptDomains": ["bad.com"]}),
            json!({"name": "d", "type": "date", "min": "2024-01-01 00:00:00.000Z"}),
            json!({"name": "s", "type": "select", "values": ["a", "b"], "maxSelect": 2}),
            json!({"name": "j", "type": "json", "maxSize": 100}),
            json!({"name": "r", "type": "relation", "collectionId": "pbc_1", "maxSelect": 1}),
            json!({"name": "created", "type": "autodate", "onCreate": true, "onUpdate": false}),
        ];
        for json in fields {
            let field = parse(json.clone()).unwrap_or_else(|e| panic!("{json}: {e:?}"));
            let again = parse(field.to_json()).unwrap();
            assert_eq!(again, field, "{json}");
            for (key, value) in json.as_object().unwrap() {
                assert_eq!(&field.to_json()[key], value, "{key} of {json}");
            }
        }
    }

    #[test]
    fn bad_fields_are_reported_by_key() {
        let cases = [
            (json!({"name": "", "type": "text"}), "fields.0.name"),
            (json!({"name": "a-b", "type": "text"}), "fields.0.name"),
            (json!({"name": "f", "type": "file"}), "fields.0.type"),
            (json!({"name": "f", "type": "geo"}), "fields.0.type"),
            (json!({"name": "f"}), "fields.0.type"),
            (json!({"name": "s", "type": "select", "values": []}), "fields.0.values"),
            (json!({"name": "r", "type": "relation"}), "fields.0.collectionId"),
            (json!({"name": "d", "type": "date", "max": "soon"}), "fields.0.max"),
            (json!({"name": "t", "type": "text", "pattern": "("}), "fields.0.pattern"),
            (json!([1]), "fields.0.type"),
        ];
        for (json, key) in cases {
            let errors = parse(json.clone()).unwrap_err();
            assert!(errors.contains_key(key), "{json}: {errors:?}");
        }
        let select = |count: usize| {
            let values: Vec<String> = (0..count).map(|i| format!("v{i}")).collect();
            parse(json!({"name": "s", "type": "select", "values": values}))
        };
        assert!(select(SELECT_VALUES_MAX).is_ok());
        assert!(select(SELECT_VALUES_MAX + 1).is_err());
        assert!(check_name(&"f".repeat(FIELD_NAME_LEN_MAX)).is_ok());
        assert!(check_name(&"f".repeat(FIELD_NAME_LEN_MAX + 1)).is_err());
    }

    #[test]
    fn default_ids_follow_pocketbase() {
        assert_eq!(crc32("_superusers"), crc32("_superusers"));
        assert_eq!(format!("pbc_{}", crc32("auth_superusers")), "pbc_3142635823");
        assert_eq!(format!("pbc_{}", crc32("baseposts")), "pbc_1125843985");
        assert!(Field::new("title", FieldKind::Bool).id.starts_with("bool"));
    }
}
