//! `Definitions`: every collection definition, persisted in the nanodb collection
//! `_pb_collections` (one document per definition, its id the collection id) and held in
//! memory as an immutable snapshot that requests share.
//!
//! Each PocketBase collection's records live in the nanodb collection named by its id (so a
//! rename changes only the definition). Changes run one at a time (`changes` lock) and keep
//! this order, so a crash at any point leaves a state `open` repairs:
//! - create: the record collection and its indexes, then the definition (the commit point);
//! - update: the indexes and field data, then the definition;
//! - delete: the definition (the commit point), then the record collection.
//!
//! On open, a record collection without a definition is dropped, and a definition whose
//! record collection or indexes are missing gets them back (`storage::ensure`).
//!
//! Thread safety: `Definitions` is `Send + Sync`; readers take an `Arc` of the snapshot and
//! never wait for a change in progress.
//!
//! Invariant: the snapshot holds exactly the stored definitions, and for each one its
//! record collection exists with the definition's indexes.

use super::collection::{CollectionDef, CollectionKind};
use super::defaults;
use super::field::FieldKind;
use super::storage;
use crate::error::{Error, Result};
use nanodb::{Collection, Database, Document, Value};
use parking_lot::{Mutex, RwLock};
use serde_json::Value as Json;
use std::sync::Arc;

/// The nanodb collection holding the definitions.
pub const DEFINITIONS_COLLECTION: &str = "_pb_collections";
/// The nanodb collection holding server settings (the token secret).
pub const SETTINGS_COLLECTION: &str = "_pb_settings";

/// Every definition at one moment.
#[derive(Debug, Default)]
pub struct DefinitionsSnapshot {
    defs: Vec<Arc<CollectionDef>>,
}

impl DefinitionsSnapshot {
    /// A snapshot of `defs`.
    pub fn from_defs(defs: Vec<Arc<CollectionDef>>) -> DefinitionsSnapshot {
        DefinitionsSnapshot { defs }
    }

    /// The collection with id `key`, else the one named `key` (names compare
    /// case-insensitively, as in PocketBase).
    pub fn find(&self, key: &str) -> Option<Arc<CollectionDef>> {
        self.by_id(key)
            .or_else(|| self.defs.iter().find(|def| def.name.eq_ignore_ascii_case(key)).cloned())
    }

    /// The collection with id `id`.
    pub fn by_id(&self, id: &str) -> Option<Arc<CollectionDef>> {
        self.defs.iter().find(|def| def.id == id).cloned()
    }

    /// Every definition, in creation order.
    pub fn all(&self) -> &[Arc<CollectionDef>] {
        &self.defs
    }
}

/// The definitions and their storage.
pub struct Definitions {
    db: Database,
    store: Collection,
    snapshot: RwLock<Arc<DefinitionsSnapshot>>,
    changes: Mutex<()>,
}

impl Definitions {
    /// Loads the definitions of `db`, repairs their storage, and creates the default
    /// collections (`_superusers`, `users`) on the first start.
    pub fn open(db: &Database) -> Result<Definitions> {
        let store = db.collection(DEFINITIONS_COLLECTION)?;
        let mut defs = Vec::new();
        for document in store.documents()? {
            defs.push(Arc::new(decode(&document?)?));
        }
        defs.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        for name in db.collections() {
            let internal = name == DEFINITIONS_COLLECTION || name == SETTINGS_COLLECTION;
            if !internal && !defs.iter().any(|def| def.id == name) {
                tracing::warn!(collection = %name, "dropping records without a definition");
                db.drop_collection(&name)?;
            }
        }
        for def in &defs {
            storage::ensure(db, def)?;
        }
        let definitions = Definitions {
            db: db.clone(),
            store,
            snapshot: RwLock::new(Arc::new(DefinitionsSnapshot { defs })),
            changes: Mutex::new(()),
        };
        // `users` only on the first start (no definitions at all): one deleted later stays
        // deleted. `_superusers` is a system collection (it cannot be deleted), so it is
        // only ever missing on the first start, or after a crash in the middle of it.
        let first_start = definitions.snapshot().all().is_empty();
        let mut wanted = vec![defaults::superusers()];
        if first_start {
            wanted.push(defaults::users());
        }
        for def in wanted {
            if definitions.snapshot().by_id(&def.id).is_none()
                && definitions.snapshot().find(&def.name).is_none()
            {
                definitions.create(def)?;
            }
        }
        Ok(definitions)
    }

    /// The definitions now.
    pub fn snapshot(&self) -> Arc<DefinitionsSnapshot> {
        Arc::clone(&self.snapshot.read())
    }

    /// The database the records live in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The nanodb collection holding the definitions (for listing them with a filter).
    pub fn store(&self) -> &Collection {
        &self.store
    }

    /// The record collection of `def`.
    pub fn records(&self, def: &CollectionDef) -> Result<Collection> {
        Ok(self.db.open_collection(&def.id)?)
    }

    /// Adds a new collection. Its id and name must be free: neither may be another
    /// collection's id or name, since either finds a collection in a path (checked here,
    /// under the change lock).
    pub fn create(&self, mut def: CollectionDef) -> Result<Arc<CollectionDef>> {
        let _change = self.changes.lock();
        let snapshot = self.snapshot();
        if snapshot.find(&def.id).is_some() || snapshot.find(&def.name).is_some() {
            return Err(Error::bad_request(format!(
                "A collection with the id {:?} or the name {:?} already exists.",
                def.id, def.name
            )));
        }
        storage::ensure(&self.db, &def)?;
        let stored = self.store.insert(encode(&def)?)?;
        (def.created, def.updated) = (Some(stored.created()), Some(stored.updated()));
        let def = Arc::new(def);
        self.publish(|defs| defs.push(Arc::clone(&def)));
        Ok(def)
    }

    /// Replaces the definition of `old.id` with `new`, changing indexes and field data.
    pub fn update(
        &self,
        old: &CollectionDef,
        mut new: CollectionDef,
    ) -> Result<Arc<CollectionDef>> {
        let _change = self.changes.lock();
        let snapshot = self.snapshot();
        let Some(current) = snapshot.by_id(&old.id) else { return Err(Error::not_found()) };
        if let Some(other) = snapshot.find(&new.name).filter(|other| other.id != old.id) {
            return Err(Error::bad_request(format!(
                "A collection named {:?} already exists.",
                other.name
            )));
        }
        if let Err(error) = storage::ensure(&self.db, &new) {
            storage::ensure(&self.db, &current)?; // put the old indexes back
            return Err(error);
        }
        storage::migrate_fields(&self.records(&new)?, &current, &new)?;
        let stored = self.store.replace(&new.id, encode(&new)?)?;
        (new.created, new.updated) = (Some(stored.created()), Some(stored.updated()));
        let new = Arc::new(new);
        self.publish(|defs| {
            if let Some(slot) = defs.iter_mut().find(|def| def.id == new.id) {
                *slot = Arc::clone(&new);
            }
        });
        Ok(new)
    }

    /// Deletes a collection and all its records; 400 if a relation field of another
    /// collection points to it (checked under the change lock, so a relation created
    /// meanwhile cannot slip past the check).
    pub fn delete(&self, def: &CollectionDef) -> Result<()> {
        let _change = self.changes.lock();
        let snapshot = self.snapshot();
        for other in snapshot.all().iter().filter(|other| other.id != def.id) {
            let points_here = other.fields.iter().any(|field| {
                matches!(&field.kind, FieldKind::Relation { collection_id, .. } if *collection_id == def.id)
            });
            if points_here {
                return Err(Error::bad_request(format!(
                    "The collection is referenced by a relation field of {:?}.",
                    other.name
                )));
            }
        }
        if self.store.delete(&def.id)?.is_none() {
            return Err(Error::not_found());
        }
        self.publish(|defs| defs.retain(|other| other.id != def.id));
        match self.db.drop_collection(&def.id) {
            Ok(()) | Err(nanodb::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes every record of a collection (drops and recreates its storage: cheap).
    pub fn truncate(&self, def: &CollectionDef) -> Result<()> {
        let _change = self.changes.lock();
        let Some(current) = self.snapshot().by_id(&def.id) else { return Err(Error::not_found()) };
        self.db.drop_collection(&current.id)?;
        storage::ensure(&self.db, &current)
    }

    fn publish(&self, change: impl FnOnce(&mut Vec<Arc<CollectionDef>>)) {
        let mut guard = self.snapshot.write();
        let mut defs = guard.defs.clone();
        change(&mut defs);
        *guard = Arc::new(DefinitionsSnapshot { defs });
    }
}

/// A definition as the document stored for it (its id is the document id).
fn encode(def: &CollectionDef) -> Result<Value> {
    let Json::Object(mut map) = def.to_json() else {
        return Err(Error::Internal("a definition is not a JSON object".into()));
    };
    for reserved in ["created", "updated"] {
        map.remove(reserved);
    }
    Ok(Value::from(Json::Object(map)))
}

/// A stored definition, read back.
fn decode(document: &Document) -> Result<CollectionDef> {
    let corrupt = |detail: String| {
        Error::Internal(format!(
            "stored definition of collection {:?} is invalid: {detail}",
            document.id()
        ))
    };
    let Json::Object(map) = document.to_json() else { return Err(corrupt("not an object".into())) };
    let kind = match map.get("type").and_then(Json::as_str) {
        Some("auth") => CollectionKind::Auth,
        Some("base") => CollectionKind::Base,
        other => return Err(corrupt(format!("type {other:?}"))),
    };
    let name = map.get("name").and_then(Json::as_str).unwrap_or("");
    let mut start = CollectionDef::new(name, kind);
    start.id = document.id().to_string();
    let mut def =
        CollectionDef::from_body(&start, &map).map_err(|errors| corrupt(format!("{errors:?}")))?;
    def.system = map.get("system").and_then(Json::as_bool).unwrap_or(false);
    (def.created, def.updated) = (Some(document.created()), Some(document.updated()));
    Ok(def)
}

#[cfg(test)]
mod tests {
    use crate::schema::defaults::{SUPERUSERS_ID, USERS_NAME};
    use crate::test_support::TestState;

    #[test]
    fn a_deleted_users_collection_stays_deleted_after_a_restart() {
        let test = TestState::new();
        let users =
            test.state.definitions.snapshot().find(USERS_NAME).expect("made at first start");
        test.state.definitions.delete(&users).unwrap();
        let test = test.reopen();
        let snapshot = test.state.definitions.snapshot();
        assert!(snapshot.find(USERS_NAME).is_none(), "not recreated with its open createRule");
        assert!(snapshot.by_id(SUPERUSERS_ID).is_some());
    }

    #[test]
    fn ids_and_names_never_shadow_each_other() {
        let test = TestState::new();
        let tags = test.create_collection(serde_json::json!({"name": "tags", "id": "tagsid"}));
        let definitions = &test.state.definitions;
        let named = |name: &str, id: &str| {
            let mut def = crate::schema::CollectionDef::new(name, tags.kind);
            def.id = id.to_string();
            def
        };
        for (name, id) in [("other", "tags"), ("other", "TAGS"), ("tagsid", "other2")] {
            let refused = definitions.create(named(name, id)).unwrap_err();
            assert_eq!(refused.status().as_u16(), 400, "{name} {id}");
        }
        definitions.create(named("other", "other1")).unwrap();
        assert_eq!(definitions.snapshot().find("tags").unwrap().id, "tagsid");
    }

    #[test]
    fn a_collection_a_relation_points_to_cannot_be_deleted() {
        let test = TestState::new();
        let tags = test.create_collection(serde_json::json!({"name": "tags"}));
        let posts = test.create_collection(serde_json::json!({"name": "posts",
            "fields": [{"name": "tag", "type": "relation", "collectionId": "tags"}]}));
        let refused = test.state.definitions.delete(&tags).unwrap_err();
        assert!(refused.to_string().contains("\"posts\""), "{refused}");
        assert!(test.state.definitions.snapshot().by_id(&tags.id).is_some());
        test.state.definitions.delete(&posts).unwrap();
        test.state.definitions.delete(&tags).unwrap();
    }
}
