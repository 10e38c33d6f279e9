//! The definitions the server creates by itself: the system fields every collection has, and
//! the two auth collections every data directory starts with, `_superusers` and `users`, as
//! PocketBase has them (without `users.avatar`: no file fields yet).
//!
//! Thread safety: pure functions.

use super::collection::{CollectionDef, CollectionKind, Rules};
use super::field::{Field, FieldKind};

/// Id of the superusers collection (PocketBase's, which the SDK checks).
pub const SUPERUSERS_ID: &str = "pbc_3142635823";
/// Name of the superusers collection.
pub const SUPERUSERS_NAME: &str = "_superusers";
/// Id of the default users collection (fixed in PocketBase).
pub const USERS_ID: &str = "_pb_users_auth_";
/// Name of the default users collection.
pub const USERS_NAME: &str = "users";
/// Lifetime of a superuser's auth token (1 day), in seconds.
pub const SUPERUSER_TOKEN_SECONDS: u64 = 86_400;
/// Shortest password an auth collection accepts by default.
pub const PASSWORD_LEN_MIN_DEFAULT: usize = 8;
/// Length of a generated record id.
pub const RECORD_ID_LEN: usize = 15;

/// Keys of a record body or of record JSON that are never field names.
pub const RESERVED_RECORD_KEYS: &[&str] =
    &["collectionId", "collectionName", "expand", "passwordConfirm", "oldPassword"];

/// The fields every collection of `def`'s kind has, in order: `id`, the auth fields for an
/// auth collection, `created`, `updated`.
pub fn system_fields(def: &CollectionDef) -> Vec<Field> {
    let id = FieldKind::Text {
        min: RECORD_ID_LEN,
        max: RECORD_ID_LEN,
        pattern: "^[a-z0-9]+$".into(),
        primary_key: true,
    };
    let mut fields = vec![Field::new("id", id).system().required()];
    if def.kind == CollectionKind::Auth {
        let no_domains = || FieldKind::Email { except_domains: vec![], only_domains: vec![] };
        let token_key =
            FieldKind::Text { min: 30, max: 60, pattern: String::new(), primary_key: false };
        fields.extend([
            Field::new("password", FieldKind::Password { min: PASSWORD_LEN_MIN_DEFAULT })
                .system()
                .hidden()
                .required(),
            Field::new("tokenKey", token_key).system().hidden().required(),
            Field::new("email", no_domains()).system().required(),
            Field::new("emailVisibility", FieldKind::Bool).system(),
            Field::new("verified", FieldKind::Bool).system(),
        ]);
    }
    fields.push(Field::new("created", FieldKind::Autodate { on_create: true, on_update: false }));
    fields.push(Field::new("updated", FieldKind::Autodate { on_create: true, on_update: true }));
    fields
}

/// The unique indexes every auth collection has (on `tokenKey`, and on `email` when set).
pub fn auth_indexes(def: &CollectionDef) -> Vec<String> {
    let suffix: String =
        def.id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    vec![
        format!("CREATE UNIQUE INDEX `idx_tokenKey_{suffix}` ON `{}` (`tokenKey`)", def.name),
        format!(
            "CREATE UNIQUE INDEX `idx_email_{suffix}` ON `{}` (`email`) WHERE `email` != ''",
            def.name
        ),
    ]
}

/// `_superusers`: every rule locked, 1-day tokens.
pub fn superusers() -> CollectionDef {
    let mut def = CollectionDef::new(SUPERUSERS_NAME, CollectionKind::Auth);
    def.system = true;
    def.auth.token_seconds = SUPERUSER_TOKEN_SECONDS;
    def.indexes = auth_indexes(&def);
    def
}

/// `users`: a user sees and changes only their own record; anyone may sign up.
pub fn users() -> CollectionDef {
    let mut def = CollectionDef::new(USERS_NAME, CollectionKind::Auth);
    def.id = USERS_ID.to_string();
    let owner = Some("id = @request.auth.id".to_string());
    def.rules = Rules {
        list: owner.clone(),
        view: owner.clone(),
        create: Some(String::new()),
        update: owner.clone(),
        delete: owner,
    };
    let name = FieldKind::Text { min: 0, max: 255, pattern: String::new(), primary_key: false };
    def.fields.insert(def.fields.len() - 2, Field::new("name", name));
    def.indexes = auth_indexes(&def);
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_collections_match_pocketbase() {
        let superusers = superusers();
        assert_eq!(superusers.id, SUPERUSERS_ID);
        assert_eq!(superusers.rules, Rules::default());
        let users = users();
        assert_eq!(users.id, USERS_ID);
        assert_eq!(users.rules.create.as_deref(), Some(""));
        assert!(users.field("name").is_some());
        assert_eq!(users.indexes.len(), 2);
        assert!(users.indexes[1].contains("WHERE `email` != ''"));
    }
}
