//! A collection definition's storage: its nanodb record collection, the nanodb indexes its
//! `indexes` statements describe, and the data changes a field change needs.
//!
//! `ensure` makes the storage match a definition, whatever was there: it creates the record
//! collection if missing, drops the nanodb indexes the definition no longer has (or has
//! changed) and creates, and waits for, the ones it lacks. A unique index that the existing
//! records violate fails with a 400 naming the index. It is idempotent, so `Definitions` uses
//! it both for changes and to repair after a crash.
//!
//! `FieldMigration` is what a field change does to the records: a removed field's values
//! are deleted (so a later field of that name starts empty), a renamed field's values move,
//! and a new number or bool field gets its zero value (so `n = 0` matches old records too).
//! `migrate_records` applies it in chunks, each with the migration's progress, so a
//! migration cut short resumes where it stopped (`Definitions` keeps the pending migration).
//!
//! Thread safety: called under the definitions' change lock, with record writes held off
//! (`Definitions::write_gate`).

use super::collection::CollectionDef;
use super::field::FieldKind;
use super::index_sql;
use crate::error::{Error, FieldError, Result, MESSAGE_FORM_FAILED};
use nanodb::{Collection, Database, Document, IndexDefinition, Patch, Value};
use serde_json::{json, Map as JsonMap, Value as Json};

/// The nanodb index definitions of `def`'s `indexes` statements.
pub fn index_definitions(def: &CollectionDef) -> Result<Vec<IndexDefinition>> {
    def.indexes
        .iter()
        .enumerate()
        .map(|(at, sql)| {
            index_sql::parse(sql).and_then(|parsed| parsed.definition()).map_err(|reason| {
                Error::invalid_field(
                    MESSAGE_FORM_FAILED,
                    &format!("indexes.{at}"),
                    FieldError::new("validation_invalid_index_expression", reason),
                )
            })
        })
        .collect()
}

/// Makes `def`'s record collection and indexes exist, exactly.
pub fn ensure(db: &Database, def: &CollectionDef) -> Result<()> {
    let wanted = index_definitions(def)?;
    let records = db.collection(&def.id)?;
    for index in records.indexes() {
        let keep = wanted.contains(&index.definition);
        if !keep && index.definition.name != nanodb::TTL_INDEX_NAME {
            records.drop_index(&index.definition.name)?;
        }
    }
    let existing = records.indexes();
    for (at, definition) in wanted.into_iter().enumerate() {
        if existing.iter().any(|index| index.definition == definition) {
            continue;
        }
        let name = definition.name.clone();
        let built = records.create_index(definition).and_then(|build| build.wait());
        if let Err(error) = built {
            let _ = records.drop_index(&name);
            let code = match error {
                nanodb::Error::UniqueViolation { .. } => "validation_not_unique",
                nanodb::Error::InvalidName { .. } | nanodb::Error::AlreadyExists { .. } => {
                    "validation_invalid_index_expression"
                }
                other => return Err(other.into()),
            };
            return Err(Error::invalid_field(
                MESSAGE_FORM_FAILED,
                &format!("indexes.{at}"),
                FieldError::new(code, error.to_string()),
            ));
        }
    }
    Ok(())
}

/// Documents migrated per transaction (with the migration's progress).
pub const MIGRATION_CHUNK_DOCUMENTS: usize = 256;

/// What a field change does to every record: fields whose values are deleted (removed
/// fields), moved (renamed ones) and set where missing (new number and bool fields get
/// their zero value). Stored in the pending migration record, so a migration an error or a
/// crash cut short can be finished.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldMigration {
    /// Fields whose values are deleted.
    pub unset: Vec<String>,
    /// (old name, new name) of renamed fields.
    pub renames: Vec<(String, String)>,
    /// New fields and the value they get where missing.
    pub defaults: Vec<(String, Value)>,
}

impl FieldMigration {
    /// What changing a collection from `old` to `new` does to its records.
    pub fn between(old: &CollectionDef, new: &CollectionDef) -> FieldMigration {
        let mut migration = FieldMigration::default();
        for field in &old.fields {
            match new.fields.iter().find(|other| other.id == field.id) {
                None => migration.unset.push(field.name.clone()),
                Some(renamed) if renamed.name != field.name => {
                    migration.renames.push((field.name.clone(), renamed.name.clone()));
                }
                Some(_) => {}
            }
        }
        for field in &new.fields {
            if old.fields.iter().any(|other| other.id == field.id) {
                continue;
            }
            match field.kind {
                FieldKind::Number { .. } => {
                    migration.defaults.push((field.name.clone(), Value::Int(0)));
                }
                FieldKind::Bool => {
                    migration.defaults.push((field.name.clone(), Value::Bool(false)))
                }
                _ => {}
            }
        }
        migration
    }

    /// True if it changes no record.
    pub fn is_empty(&self) -> bool {
        self.unset.is_empty() && self.renames.is_empty() && self.defaults.is_empty()
    }

    /// The change of one record: every old value is taken out before any is put back, so
    /// renames that swap or reuse names (`a` to `b` and `b` to `a`) move each value once.
    pub fn patch(&self, document: &Document) -> Patch {
        let mut patch = Patch::new();
        for name in self.unset.iter().chain(self.renames.iter().map(|(from, _)| from)) {
            if document.get(name).is_some() {
                patch = patch.unset(name.clone());
            }
        }
        for (from, to) in &self.renames {
            if let Some(value) = document.get(from) {
                patch = patch.set(to.clone(), value.clone());
            }
        }
        let moved_to = |name: &str| {
            self.renames.iter().any(|(from, to)| to == name && document.get(from).is_some())
        };
        for (name, zero) in &self.defaults {
            if document.get(name).is_none() && !moved_to(name) {
                patch = patch.set(name.clone(), zero.clone());
            }
        }
        patch
    }

    /// As JSON, for the pending migration record.
    pub fn to_json(&self) -> Json {
        let defaults: JsonMap<String, Json> = self
            .defaults
            .iter()
            .map(|(name, value)| (name.clone(), Json::from(value.clone())))
            .collect();
        json!({"unset": self.unset, "renames": self.renames, "defaults": defaults})
    }

    /// Read back from `to_json`'s form; `None` if it is not.
    pub fn from_json(json: &Json) -> Option<FieldMigration> {
        let texts = |value: &Json| -> Option<Vec<String>> {
            value.as_array()?.iter().map(|item| item.as_str().map(str::to_string)).collect()
        };
        let unset = texts(json.get("unset")?)?;
        let renames = json
            .get("renames")?
            .as_array()?
            .iter()
            .map(|pair| match texts(pair)?.as_slice() {
                [from, to] => Some((from.clone(), to.clone())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        let defaults = json
            .get("defaults")?
            .as_object()?
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.clone())))
            .collect();
        Some(FieldMigration { unset, renames, defaults })
    }
}

/// Applies `migration` to the records of `records` whose ids sort after `after`, in id
/// order, `MIGRATION_CHUNK_DOCUMENTS` per transaction; each transaction also sets the
/// progress (`after`, the chunk's last id) of pending migration record `pending` of
/// `migrations`, so each record is migrated exactly once however often this is cut short
/// and run again. `after_chunk` runs after each committed chunk with its number (from 1);
/// its error ends the migration (tests inject failures with it).
pub fn migrate_records(
    db: &Database,
    records: &Collection,
    migrations: &Collection,
    pending: &str,
    migration: &FieldMigration,
    after: &str,
    after_chunk: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<()> {
    if migration.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(MIGRATION_CHUNK_DOCUMENTS);
    let mut chunks = 0;
    let mut documents = records.documents()?.peekable();
    while documents.peek().is_some() {
        ids.clear();
        for document in documents.by_ref() {
            let id = document?.id().to_string();
            if id.as_str() > after {
                ids.push(id);
                if ids.len() == MIGRATION_CHUNK_DOCUMENTS {
                    break;
                }
            }
        }
        let Some(last) = ids.last().cloned() else { break };
        db.run_transaction(|txn| {
            for id in &ids {
                let Some(document) = txn.get(records, id)? else { continue };
                let patch = migration.patch(&document);
                if patch != Patch::new() {
                    txn.patch(records, id, &patch)?;
                }
            }
            txn.patch(migrations, pending, &Patch::new().set("after", last.as_str()))?;
            Ok(())
        })?;
        chunks += 1;
        after_chunk(chunks)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapped_and_reused_names_move_each_value_once() {
        let migration = FieldMigration {
            unset: vec!["gone".into()],
            renames: vec![("a".into(), "b".into()), ("b".into(), "a".into())],
            defaults: vec![("b".into(), Value::Int(0)), ("n".into(), Value::Int(0))],
        };
        let document = crate::test_support::document(json!({"a": 1, "b": 2, "gone": 3, "n": 4}));
        let mut fields = document.fields().clone();
        for op in migration.patch(&document).ops() {
            match op {
                nanodb::PatchOp::Set(path, value) => {
                    fields.insert(path.clone(), value.clone());
                }
                nanodb::PatchOp::Unset(path) => {
                    fields.remove(path);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            (fields.get("a"), fields.get("b")),
            (Some(&Value::Int(2)), Some(&Value::Int(1)))
        );
        assert_eq!(fields.get("gone"), None);
        assert_eq!(fields.get("n"), Some(&Value::Int(4)), "a default fills only a gap");
        let round = FieldMigration::from_json(&migration.to_json()).unwrap();
        assert_eq!(round, migration);
        assert!(FieldMigration::from_json(&json!({"unset": 1})).is_none());
    }
}
