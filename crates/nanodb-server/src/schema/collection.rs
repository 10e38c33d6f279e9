//! `CollectionDef`: a PocketBase collection definition (id, name, type, fields, indexes, the
//! five rules, and for auth collections the auth options), read from and written to
//! PocketBase's collection JSON.
//!
//! `from_body` merges a create or update body over a starting definition and normalizes it:
//! the system fields (`id`, and for auth collections `password`, `tokenKey`, `email`,
//! `emailVisibility`, `verified`, first; `created` and `updated` last) are always present with
//! their fixed types, and names are checked. Checks that need other collections (relation targets, rule
//! syntax, index columns) are in `schema::validate`.
//!
//! Thread safety: plain owned data, shared read-only (`Arc`) once in `Definitions`.
//!
//! Invariant: a `CollectionDef` that passed `from_body` has exactly one field per name
//! (compared case-insensitively), in the order `system_fields` gives, the others between its
//! auth fields and `created`.

use super::defaults::{system_fields, RESERVED_RECORD_KEYS};
use super::field::{crc32, Field, FieldKind};
use crate::error::{FieldError, FieldErrors};
use nanodb::Date;
use serde_json::{json, Map as JsonMap, Value as Json};

/// Default lifetime of an auth token of a regular auth collection (5 days), in seconds.
pub const AUTH_TOKEN_SECONDS_DEFAULT: u64 = 432_000;
/// Longest auth token lifetime a collection may ask for (1 year), in seconds.
pub const AUTH_TOKEN_SECONDS_MAX: u64 = 365 * 86_400;
/// Longest collection name, in bytes.
pub const COLLECTION_NAME_LEN_MAX: usize = 64;
/// Most fields of one collection (system fields included).
pub const COLLECTION_FIELDS_MAX: usize = 200;
/// Longest rule, in bytes.
pub const RULE_BYTES_MAX: usize = 8 * 1024;

/// A base collection (records) or an auth collection (records that can log in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionKind {
    /// Plain records.
    Base,
    /// Records with email and password that authenticate.
    Auth,
}

impl CollectionKind {
    /// PocketBase's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            CollectionKind::Base => "base",
            CollectionKind::Auth => "auth",
        }
    }
}

/// A rule: `None` is locked (superusers only), `Some("")` everyone, else a filter.
pub type Rule = Option<String>;

/// The five API rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Which records a list returns (ANDed into its filter).
    pub list: Rule,
    /// Which records may be viewed.
    pub view: Rule,
    /// Which new records may be created.
    pub create: Rule,
    /// Which records may be updated.
    pub update: Rule,
    /// Which records may be deleted.
    pub delete: Rule,
}

/// The options of an auth collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// Who may log in (checked against the record at login).
    pub auth_rule: Rule,
    /// Who may manage other records (change email, verified, password without the old one).
    pub manage_rule: Rule,
    /// Whether password login is on.
    pub password_enabled: bool,
    /// Lifetime of an auth token, in seconds.
    pub token_seconds: u64,
}

impl Default for AuthOptions {
    fn default() -> AuthOptions {
        AuthOptions {
            auth_rule: Some(String::new()),
            manage_rule: None,
            password_enabled: true,
            token_seconds: AUTH_TOKEN_SECONDS_DEFAULT,
        }
    }
}

/// A collection definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionDef {
    /// Stable id (`pbc_<crc32>` by default); also the name of its document collection.
    pub id: String,
    /// The name records and URLs use.
    pub name: String,
    /// Base or auth.
    pub kind: CollectionKind,
    /// Created by the server; cannot be deleted or renamed.
    pub system: bool,
    /// The fields, system fields first.
    pub fields: Vec<Field>,
    /// `CREATE [UNIQUE] INDEX` statements (`schema::index_sql`).
    pub indexes: Vec<String>,
    /// The API rules.
    pub rules: Rules,
    /// Auth options (used only by auth collections).
    pub auth: AuthOptions,
    /// When the definition was created and last changed (set by `Definitions`).
    pub created: Option<Date>,
    /// See `created`.
    pub updated: Option<Date>,
}

impl CollectionDef {
    /// An empty definition of `kind` named `name`, with PocketBase's default id.
    pub fn new(name: &str, kind: CollectionKind) -> CollectionDef {
        let mut def = CollectionDef {
            id: format!("pbc_{}", crc32(&format!("{}{name}", kind.name()))),
            name: name.to_string(),
            kind,
            system: false,
            fields: Vec::new(),
            indexes: Vec::new(),
            rules: Rules::default(),
            auth: AuthOptions::default(),
            created: None,
            updated: None,
        };
        def.fields = system_fields(&def);
        def
    }

    /// True for an auth collection.
    pub fn is_auth(&self) -> bool {
        self.kind == CollectionKind::Auth
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// The fields records write and validate one by one: all but `id`, the autodates and
    /// the auth system fields.
    pub fn data_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields
            .iter()
            .filter(|field| !(field.system || matches!(field.kind, FieldKind::Autodate { .. })))
    }

    /// The definition as PocketBase's collection JSON.
    pub fn to_json(&self) -> Json {
        let date = |date: Option<Date>| date.map(Date::to_pocketbase).unwrap_or_default();
        let mut out = json!({
            "id": self.id, "name": self.name, "type": self.kind.name(), "system": self.system,
            "fields": self.fields.iter().map(Field::to_json).collect::<Vec<_>>(),
            "indexes": self.indexes,
            "listRule": self.rules.list, "viewRule": self.rules.view,
            "createRule": self.rules.create, "updateRule": self.rules.update,
            "deleteRule": self.rules.delete,
            "created": date(self.created), "updated": date(self.updated),
        });
        if self.is_auth() {
            let auth = json!({
                "authRule": self.auth.auth_rule, "manageRule": self.auth.manage_rule,
                "passwordAuth": {"enabled": self.auth.password_enabled, "identityFields": ["email"]},
                "authToken": {"duration": self.auth.token_seconds},
            });
            if let (Json::Object(out), Json::Object(auth)) = (&mut out, auth) {
                out.extend(auth);
            }
        }
        out
    }

    /// `start` with the keys of `body` applied (a create body over `CollectionDef::new`, an
    /// update body over the current definition), normalized; failures by key.
    pub fn from_body(
        start: &CollectionDef,
        body: &JsonMap<String, Json>,
    ) -> Result<CollectionDef, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut def = start.clone();
        let mut fail = |key: &str, code: &'static str, message: &str| {
            errors.insert(key.to_string(), FieldError::new(code, message));
        };
        if let Some(name) = body.get("name") {
            match name.as_str() {
                Some(name) => def.name = name.to_string(),
                None => fail("name", "validation_invalid_value", "Must be a string."),
            }
        }
        if let Err(message) = check_collection_name(&def.name) {
            fail("name", "validation_invalid_name", &message);
        }
        read_rules(body, &mut def, &mut fail);
        if let Some(indexes) = body.get("indexes") {
            let texts: Option<Option<Vec<&str>>> =
                indexes.as_array().map(|items| items.iter().map(Json::as_str).collect());
            match texts {
                Some(Some(items)) => {
                    def.indexes = items.into_iter().map(str::to_string).collect::<Vec<_>>();
                }
                _ => fail("indexes", "validation_invalid_value", "Must be a list of strings."),
            }
        }
        if def.is_auth() {
            read_auth_options(body, &mut def.auth, &mut fail);
        }
        if let Some(fields) = body.get("fields") {
            match fields.as_array() {
                Some(items) => {
                    let mut parsed = Vec::new();
                    for (at, item) in items.iter().enumerate() {
                        parsed.extend(Field::from_json(item, &format!("fields.{at}"), &mut errors));
                    }
                    def.fields = parsed;
                }
                None => {
                    errors.insert(
                        "fields".into(),
                        FieldError::new("validation_invalid_value", "Must be a list."),
                    );
                }
            }
        }
        if errors.is_empty() {
            normalize_fields(&mut def, &mut errors);
        }
        if errors.is_empty() {
            Ok(def)
        } else {
            Err(errors)
        }
    }
}

/// Checks a collection name: 1 to `COLLECTION_NAME_LEN_MAX` letters, digits and `_`, not
/// starting with a digit.
pub fn check_collection_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Cannot be blank.".into());
    }
    if name.len() > COLLECTION_NAME_LEN_MAX {
        return Err(format!("Must be at most {COLLECTION_NAME_LEN_MAX} characters."));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err("Only letters, digits and underscores, not starting with a digit.".into());
    }
    Ok(())
}

fn read_rules(
    body: &JsonMap<String, Json>,
    def: &mut CollectionDef,
    fail: &mut impl FnMut(&str, &'static str, &str),
) {
    let rules = &mut def.rules;
    let mut slots: Vec<(&str, &mut Rule)> = vec![
        ("listRule", &mut rules.list),
        ("viewRule", &mut rules.view),
        ("createRule", &mut rules.create),
        ("updateRule", &mut rules.update),
        ("deleteRule", &mut rules.delete),
    ];
    if def.kind == CollectionKind::Auth {
        slots.push(("authRule", &mut def.auth.auth_rule));
        slots.push(("manageRule", &mut def.auth.manage_rule));
    }
    for (key, slot) in slots {
        match body.get(key) {
            None => {}
            Some(Json::Null) => *slot = None,
            Some(Json::String(text)) if text.len() <= RULE_BYTES_MAX => {
                *slot = Some(text.clone());
            }
            Some(Json::String(_)) => {
                fail(key, "validation_length_too_long", "The rule is too long.");
            }
            Some(_) => fail(key, "validation_invalid_value", "Must be null or a string."),
        }
    }
}

fn read_auth_options(
    body: &JsonMap<String, Json>,
    auth: &mut AuthOptions,
    fail: &mut impl FnMut(&str, &'static str, &str),
) {
    if let Some(enabled) = body.pointer_in("passwordAuth", "enabled") {
        match enabled.as_bool() {
            Some(enabled) => auth.password_enabled = enabled,
            None => fail("passwordAuth.enabled", "validation_invalid_value", "Must be a bool."),
        }
    }
    if let Some(duration) = body.pointer_in("authToken", "duration") {
        match duration.as_u64().filter(|s| (1..=AUTH_TOKEN_SECONDS_MAX).contains(s)) {
            Some(seconds) => auth.token_seconds = seconds,
            None => fail(
                "authToken.duration",
                "validation_invalid_value",
                "Must be a number of seconds from 1 to one year.",
            ),
        }
    }
}

trait PointerIn {
    fn pointer_in(&self, object: &str, key: &str) -> Option<&Json>;
}

impl PointerIn for JsonMap<String, Json> {
    fn pointer_in(&self, object: &str, key: &str) -> Option<&Json> {
        self.get(object)?.as_object()?.get(key)
    }
}

/// Puts the system fields first (keeping the ids of given ones), refuses reserved and
/// duplicate names, and caps the count.
fn normalize_fields(def: &mut CollectionDef, errors: &mut FieldErrors) {
    let system = system_fields(def);
    let given = std::mem::take(&mut def.fields);
    let mut fields = Vec::with_capacity(given.len() + system.len());
    let mut autodates = Vec::new();
    for mut fixed in system.iter().cloned() {
        if let Some(same) = given.iter().find(|field| field.name == fixed.name) {
            if same.kind.type_name() != fixed.kind.type_name() {
                let message = format!("{} must be a {} field.", fixed.name, fixed.kind.type_name());
                errors.insert(
                    fixed.name.clone(),
                    FieldError::new("validation_invalid_value", message),
                );
            }
            fixed.id = same.id.clone();
            fixed.presentable = same.presentable;
        }
        if matches!(fixed.kind, FieldKind::Autodate { .. }) {
            autodates.push(fixed);
        } else {
            fields.push(fixed);
        }
    }
    for field in given {
        if system.iter().any(|fixed| fixed.name == field.name) {
            continue;
        }
        let lower = field.name.to_ascii_lowercase();
        if RESERVED_RECORD_KEYS.iter().any(|reserved| reserved.eq_ignore_ascii_case(&lower))
            || system.iter().any(|fixed| fixed.name.eq_ignore_ascii_case(&lower))
        {
            let message = format!("{:?} is a reserved field name.", field.name);
            errors.insert(field.name.clone(), FieldError::new("validation_invalid_name", message));
            continue;
        }
        if matches!(field.kind, FieldKind::Autodate { .. } | FieldKind::Password { .. }) {
            let message =
                format!("Only the system fields may be {} fields.", field.kind.type_name());
            errors.insert(field.name.clone(), FieldError::new("validation_invalid_value", message));
            continue;
        }
        if fields.iter().any(|other: &Field| other.name.eq_ignore_ascii_case(&lower)) {
            let message = format!("Duplicated field name {:?}.", field.name);
            errors.insert(field.name.clone(), FieldError::new("validation_duplicated", message));
            continue;
        }
        fields.push(field);
    }
    fields.extend(autodates);
    if fields.len() > COLLECTION_FIELDS_MAX {
        errors.insert(
            "fields".into(),
            FieldError::new("validation_length_too_long", "Too many fields."),
        );
    }
    for (at, field) in fields.iter().enumerate() {
        if fields[..at].iter().any(|earlier| earlier.id == field.id) {
            let message = format!("Duplicated field id {:?}.", field.id);
            errors.insert(field.name.clone(), FieldError::new("validation_duplicated", message));
        }
    }
    def.fields = fields;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: Json) -> JsonMap<String, Json> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn creates_get_system_fields_and_round_trip() {
        let start = CollectionDef::new("posts", CollectionKind::Base);
        assert_eq!(start.id, "pbc_1125843985");
        let def = CollectionDef::from_body(
            &start,
            &body(json!({"name": "posts", "listRule": "", "viewRule": null,
                "fields": [{"name": "title", "type": "text", "required": true}]})),
        )
        .unwrap();
        let names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "title", "created", "updated"]);
        assert_eq!(def.rules.list.as_deref(), Some(""));
        assert_eq!(def.rules.view, None);
        assert_eq!(def.data_fields().count(), 1);
        let again = CollectionDef::from_body(&start, def.to_json().as_object().unwrap()).unwrap();
        assert_eq!(again, def);
        let auth = CollectionDef::new("members", CollectionKind::Auth);
        let names: Vec<&str> = auth.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "password",
                "tokenKey",
                "email",
                "emailVisibility",
                "verified",
                "created",
                "updated"
            ]
        );
        assert_eq!(auth.to_json()["authToken"]["duration"], AUTH_TOKEN_SECONDS_DEFAULT);
        assert!(auth.to_json().get("authToken").unwrap().get("secret").is_none());
    }

    #[test]
    fn bad_bodies_report_each_key() {
        let start = CollectionDef::new("posts", CollectionKind::Base);
        let cases = [
            (json!({"name": "a b"}), "name"),
            (json!({"name": "1a"}), "name"),
            (json!({"name": "x".repeat(COLLECTION_NAME_LEN_MAX + 1)}), "name"),
            (json!({"listRule": 5}), "listRule"),
            (json!({"listRule": "x".repeat(RULE_BYTES_MAX + 1)}), "listRule"),
            (json!({"indexes": [1]}), "indexes"),
            (json!({"fields": {}}), "fields"),
            (json!({"fields": [{"name": "expand", "type": "text"}]}), "expand"),
            (
                json!({"fields": [{"name": "a", "type": "text"}, {"name": "A", "type": "bool"}]}),
                "A",
            ),
            (json!({"fields": [{"name": "id", "type": "number"}]}), "id"),
            (json!({"fields": [{"name": "when", "type": "autodate"}]}), "when"),
        ];
        for (json, key) in cases {
            let errors = CollectionDef::from_body(&start, &body(json.clone())).unwrap_err();
            assert!(errors.contains_key(key), "{json}: {errors:?}");
        }
        let ok = CollectionDef::from_body(
            &start,
            &body(json!({"listRule": "x".repeat(RULE_BYTES_MAX)})),
        );
        assert!(ok.is_ok());
        let auth = CollectionDef::new("members", CollectionKind::Auth);
        let duration = |seconds: u64| {
            CollectionDef::from_body(&auth, &body(json!({"authToken": {"duration": seconds}})))
        };
        assert!(duration(0).unwrap_err().contains_key("authToken.duration"));
        assert_eq!(
            duration(AUTH_TOKEN_SECONDS_MAX).unwrap().auth.token_seconds,
            AUTH_TOKEN_SECONDS_MAX
        );
        assert!(duration(AUTH_TOKEN_SECONDS_MAX + 1).is_err());
        let fields = |count: usize| {
            let list: Vec<Json> =
                (0..count).map(|i| json!({"name": format!("f{i}"), "type": "bool"})).collect();
            CollectionDef::from_body(&start, &body(json!({"fields": list})))
        };
        // `id`, `created` and `updated` are added to the fields given.
        assert!(fields(COLLECTION_FIELDS_MAX - 3).is_ok());
        assert!(fields(COLLECTION_FIELDS_MAX - 2).unwrap_err().contains_key("fields"));
    }
}
