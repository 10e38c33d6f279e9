//! A collection definition's storage: its nanodb record collection, the nanodb indexes its
//! `indexes` statements describe, and the data changes a field change needs.
//!
//! `ensure` makes the storage match a definition, whatever was there: it creates the record
//! collection if missing, drops the nanodb indexes the definition no longer has (or has
//! changed) and creates, and waits for, the ones it lacks. A unique index that the existing
//! records violate fails with a 400 naming the index. It is idempotent, so `Definitions` uses
//! it both for changes and to repair after a crash.
//!
//! `migrate_fields` rewrites records after a field change: a removed field's values are
//! deleted (so a later field of that name starts empty), a renamed field's values move, and
//! a new number or bool field gets its zero value (so `n = 0` matches old records too).
//!
//! Thread safety: called under the definitions' change lock; record writes may run meanwhile
//! (each document is changed in its own transaction).

use super::collection::CollectionDef;
use super::field::FieldKind;
use super::index_sql;
use crate::error::{Error, FieldError, Result};
use nanodb::{Collection, Database, IndexDefinition, Patch, Value};

/// The nanodb index definitions of `def`'s `indexes` statements.
pub fn index_definitions(def: &CollectionDef) -> Result<Vec<IndexDefinition>> {
    def.indexes
        .iter()
        .enumerate()
        .map(|(at, sql)| {
            index_sql::parse(sql).and_then(|parsed| parsed.definition()).map_err(|reason| {
                Error::invalid_field(
                    "An error occurred while submitting the form.",
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
                "An error occurred while submitting the form.",
                &format!("indexes.{at}"),
                FieldError::new(code, error.to_string()),
            ));
        }
    }
    Ok(())
}

/// Rewrites the records of `records` after its definition changed from `old` to `new`.
pub fn migrate_fields(
    records: &Collection,
    old: &CollectionDef,
    new: &CollectionDef,
) -> Result<()> {
    let mut patch = Patch::new();
    for field in &old.fields {
        match new.fields.iter().find(|other| other.id == field.id) {
            None => patch = patch.unset(field.name.clone()),
            Some(renamed) if renamed.name != field.name => {
                // Handled per document below (a move needs the old value).
            }
            Some(_) => {}
        }
    }
    let renames: Vec<(String, String)> = old
        .fields
        .iter()
        .filter_map(|field| {
            let renamed = new.fields.iter().find(|other| other.id == field.id)?;
            (renamed.name != field.name).then(|| (field.name.clone(), renamed.name.clone()))
        })
        .collect();
    let defaults: Vec<(String, Value)> = new
        .fields
        .iter()
        .filter(|field| !old.fields.iter().any(|other| other.id == field.id))
        .filter_map(|field| match field.kind {
            FieldKind::Number { .. } => Some((field.name.clone(), Value::Int(0))),
            FieldKind::Bool => Some((field.name.clone(), Value::Bool(false))),
            _ => None,
        })
        .collect();
    if patch == Patch::new() && renames.is_empty() && defaults.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = records
        .documents()?
        .map(|document| document.map(|document| document.id().to_string()))
        .collect::<Result<_, _>>()?;
    for id in ids {
        let Some(document) = records.get(&id)? else { continue };
        let mut per_document = patch.clone();
        for (from, to) in &renames {
            if let Some(value) = document.get(from) {
                per_document = per_document.set(to.clone(), value.clone()).unset(from.clone());
            }
        }
        for (name, zero) in &defaults {
            if document.get(name).is_none() {
                per_document = per_document.set(name.clone(), zero.clone());
            }
        }
        match records.patch(&id, &per_document) {
            Ok(_) | Err(nanodb::Error::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
