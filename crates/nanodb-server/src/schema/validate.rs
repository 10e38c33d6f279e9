//! The checks of a collection definition that need the other definitions or the filter
//! parser, run before a create or update is stored: relation targets exist (a name is turned
//! into the target's id), rules parse and name only the collection's fields, index
//! statements parse and name only its fields, and an auth collection keeps its unique
//! `email` and `tokenKey` indexes.
//!
//! Thread safety: pure functions over a snapshot of the definitions.

use super::collection::CollectionDef;
use super::defaults::auth_indexes;
use super::definitions::DefinitionsSnapshot;
use super::field::FieldKind;
use super::index_sql;
use super::paths::{check_filter, PathAccess};
use crate::error::{FieldError, FieldErrors};
use nanodb::query::{parse_filter, FilterContext};
use nanodb::Map;

/// Fixes up and checks `def` against `snapshot`; failures by key.
pub fn prepare(def: &mut CollectionDef, snapshot: &DefinitionsSnapshot) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    for (at, field) in def.fields.iter_mut().enumerate() {
        let FieldKind::Relation { collection_id, .. } = &mut field.kind else { continue };
        let is_self = *collection_id == def.id || collection_id.eq_ignore_ascii_case(&def.name);
        match snapshot.find(collection_id) {
            _ if is_self => *collection_id = def.id.clone(),
            Some(target) => *collection_id = target.id.clone(),
            None => {
                let message = format!("No collection {collection_id:?}.");
                errors.insert(
                    format!("fields.{at}.collectionId"),
                    FieldError::new("validation_missing_collection", message),
                );
            }
        }
    }
    if def.is_auth() {
        for required in auth_indexes(def) {
            let columns = index_sql::parse(&required).map(|parsed| parsed.columns).ok();
            let present = def.indexes.iter().any(|sql| {
                index_sql::parse(sql)
                    .is_ok_and(|parsed| parsed.unique && Some(&parsed.columns) == columns.as_ref())
            });
            if !present {
                def.indexes.push(required);
            }
        }
    }
    check_rules(def, &mut errors);
    check_indexes(def, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_rules(def: &CollectionDef, errors: &mut FieldErrors) {
    let mut rules = vec![
        ("listRule", &def.rules.list),
        ("viewRule", &def.rules.view),
        ("createRule", &def.rules.create),
        ("updateRule", &def.rules.update),
        ("deleteRule", &def.rules.delete),
    ];
    if def.is_auth() {
        rules.push(("authRule", &def.auth.auth_rule));
        rules.push(("manageRule", &def.auth.manage_rule));
    }
    let (params, variables) = (Map::new(), Map::new());
    let context = FilterContext::new(&params, &variables);
    for (key, rule) in rules {
        let Some(text) = rule.as_deref().filter(|text| !text.trim().is_empty()) else { continue };
        let checked = parse_filter(text, &context)
            .map_err(|error| error.to_string())
            .and_then(|filter| check_filter(def, &filter, PathAccess::All));
        if let Err(message) = checked {
            errors.insert(key.to_string(), FieldError::new("validation_invalid_rule", message));
        }
    }
}

fn check_indexes(def: &CollectionDef, errors: &mut FieldErrors) {
    let mut names: Vec<String> = Vec::new();
    for (at, sql) in def.indexes.iter().enumerate() {
        let checked = index_sql::parse(sql).and_then(|parsed| {
            nanodb::names::check_index_name(&parsed.name).map_err(|error| error.to_string())?;
            if names.iter().any(|name| name.eq_ignore_ascii_case(&parsed.name)) {
                return Err(format!("duplicated index name {:?}", parsed.name));
            }
            for (column, _) in &parsed.columns {
                if def.field(column).is_none() {
                    return Err(format!("unknown column {column:?}"));
                }
            }
            names.push(parsed.name);
            Ok(())
        });
        if let Err(message) = checked {
            let error = FieldError::new("validation_invalid_index_expression", message);
            errors.insert(format!("indexes.{at}"), error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::collection::CollectionKind;
    use crate::schema::defaults;
    use crate::schema::field::Field;
    use std::sync::Arc;

    fn snapshot() -> DefinitionsSnapshot {
        DefinitionsSnapshot::from_defs(vec![Arc::new(defaults::users())])
    }

    fn relation(name: &str, to: &str) -> Field {
        let kind = FieldKind::Relation {
            collection_id: to.into(),
            cascade_delete: false,
            min_select: 0,
            max_select: 1,
        };
        Field::new(name, kind)
    }

    fn target(def: &CollectionDef, name: &str) -> String {
        match &def.field(name).unwrap().kind {
            FieldKind::Relation { collection_id, .. } => collection_id.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relations_resolve_and_rules_and_indexes_are_checked() {
        let mut def = CollectionDef::new("posts", CollectionKind::Base);
        def.fields.push(relation("author", "users"));
        def.fields.push(relation("parent", "posts"));
        def.rules.list = Some("author = @request.auth.id".into());
        def.indexes = vec!["CREATE INDEX by_author ON posts (author)".into()];
        prepare(&mut def, &snapshot()).unwrap();
        assert_eq!(target(&def, "author"), defaults::USERS_ID);
        assert_eq!(target(&def, "parent"), def.id);

        let mut bad = CollectionDef::new("posts", CollectionKind::Base);
        bad.fields.push(relation("author", "nope"));
        bad.rules.view = Some("missing = 1".into());
        bad.rules.create = Some("a = ".into());
        bad.indexes = vec![
            "CREATE INDEX i ON posts (ghost)".into(),
            "CREATE INDEX `bad-name` ON posts (id)".into(),
            "CREATE INDEX j ON posts (id)".into(),
            "CREATE INDEX J ON posts (created)".into(),
        ];
        let errors = prepare(&mut bad, &snapshot()).unwrap_err();
        let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "createRule",
                "fields.3.collectionId",
                "indexes.0",
                "indexes.1",
                "indexes.3",
                "viewRule"
            ]
        );
    }

    #[test]
    fn auth_collections_keep_their_unique_indexes() {
        let mut def = CollectionDef::new("members", CollectionKind::Auth);
        def.indexes.clear();
        prepare(&mut def, &snapshot()).unwrap();
        assert_eq!(def.indexes, auth_indexes(&def));
        prepare(&mut def, &snapshot()).unwrap();
        assert_eq!(def.indexes.len(), 2, "not added twice");
    }
}
