//! Which field paths a filter, a sort or a rule of a collection may name.
//!
//! The filter language is nanodb's (`nanodb::query::parse_filter`); this module only checks
//! that the paths a parsed filter names belong to the collection, as PocketBase refuses an
//! unknown field with 400 instead of matching nothing. A path is a field name, or a path
//! into a json field (`meta.a.b`). Relation paths (`author.name`) are not supported yet and
//! are refused rather than silently matching nothing. Hidden fields (`password`, `tokenKey`,
//! fields marked hidden, and an auth collection's `email`) may be named only by rules and
//! superusers, so a client cannot learn them by filtering.
//!
//! Thread safety: pure functions.

use super::collection::CollectionDef;
use super::field::FieldKind;
use nanodb::query::{FieldPath, Filter, SortKey};

/// Who is naming the paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathAccess {
    /// A rule or a superuser: hidden fields allowed.
    All,
    /// A client that is not a superuser: hidden fields refused.
    Visible,
}

/// Checks one path; the error says why it cannot be used.
pub fn check_path(def: &CollectionDef, path: &FieldPath, access: PathAccess) -> Result<(), String> {
    let segments = path.segments();
    let name = segments.first().map(String::as_str).unwrap_or("");
    let Some(field) = def.field(name) else {
        return Err(format!("unknown field {name:?} of collection {:?}", def.name));
    };
    let hidden = field.hidden || (def.is_auth() && name == "email");
    if hidden && access == PathAccess::Visible {
        return Err(format!("only superusers can filter or sort by {name:?}"));
    }
    if segments.len() > 1 {
        return match field.kind {
            FieldKind::Json { .. } => Ok(()),
            FieldKind::Relation { .. } => {
                Err(format!("relation paths such as {path} are not supported yet"))
            }
            _ => Err(format!("{name:?} has no fields ({path})")),
        };
    }
    Ok(())
}

/// Checks every path a filter names.
pub fn check_filter(
    def: &CollectionDef,
    filter: &Filter,
    access: PathAccess,
) -> Result<(), String> {
    filter.paths().into_iter().try_for_each(|path| check_path(def, path, access))
}

/// Checks every path a sort names.
pub fn check_sort(def: &CollectionDef, sort: &[SortKey], access: PathAccess) -> Result<(), String> {
    sort.iter().try_for_each(|key| check_path(def, &key.path, access))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::defaults::users;
    use nanodb::query::{parse_filter, parse_sort, FilterContext};
    use nanodb::Map;

    fn check(def: &CollectionDef, text: &str, access: PathAccess) -> Result<(), String> {
        let (params, variables) = (Map::new(), Map::new());
        let filter = parse_filter(text, &FilterContext::new(&params, &variables)).unwrap();
        check_filter(def, &filter, access)
    }

    #[test]
    fn unknown_hidden_and_relation_paths_are_refused() {
        let mut def = users();
        let meta = crate::schema::field::Field::new("meta", FieldKind::Json { max_size: 0 });
        let author = crate::schema::field::Field::new(
            "author",
            FieldKind::Relation {
                collection_id: "x".into(),
                cascade_delete: false,
                min_select: 0,
                max_select: 1,
            },
        );
        def.fields.extend([meta, author]);
        let visible = PathAccess::Visible;
        assert!(check(&def, "name = 'a' && (created > @now || id != '')", visible).is_ok());
        assert!(check(&def, "meta.a.b = 1 && author = 'x'", visible).is_ok());
        assert!(check(&def, "nope = 1", visible).unwrap_err().contains("unknown field"));
        assert!(check(&def, "author.name = 1", visible).unwrap_err().contains("relation"));
        assert!(check(&def, "name.x = 1", visible).is_err());
        for hidden in ["password ~ 'a'", "tokenKey != ''", "email = 'x'", "a = 1 || tokenKey = 1"] {
            assert!(check(&def, hidden, visible).is_err(), "{hidden}");
            if !hidden.starts_with("a =") {
                assert!(check(&def, hidden, PathAccess::All).is_ok(), "{hidden}");
            }
        }
        let sort = parse_sort("-created,name").unwrap();
        assert!(check_sort(&def, &sort, visible).is_ok());
        let sort = parse_sort("tokenKey").unwrap();
        assert!(check_sort(&def, &sort, visible).is_err());
        assert!(check_sort(&def, &sort, PathAccess::All).is_ok());
    }
}
