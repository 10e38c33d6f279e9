//! `TypedCollection<T>`: a collection seen through a Rust type, for any
//! `T: Serialize + DeserializeOwned`, beside the dynamic `Collection`.
//!
//! Values go through serde's JSON data model: a `T` is stored as the document JSON would make
//! of it (its fields as the document's fields, so `T` must serialize as a map), serialized
//! straight to MessagePack without building a `Value` (`value::serialize`); a stored document
//! is read back into `T` as JSON would give it (dates as RFC 3339 strings), straight from its
//! bytes (`value::deserialize`: the fields `T` lacks are stepped over, not decoded). The
//! reserved fields come separately in `Typed<T>` (`id`, `created`, `updated`); a `T` may also
//! declare `id: String` to receive the id, or to choose it on insert. A field of `T` that the
//! document lacks is an error unless `T` gives it a serde default; fields of the document
//! that `T` lacks are ignored (unless `T` denies unknown fields).
//!
//! Thread safety: like `Collection`, `Send + Sync` and cheap to clone.

use crate::collection::{check_many, Collection};
use crate::document::Document;
use crate::names::check_document_id;
use crate::query::{Cursor, Filter, Query};
use crate::transaction::{Context, Writes};
use crate::value::{deserialize, serialize, Date};
use crate::{Database, Error, Patch, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A stored document read as a `T`, with its reserved fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed<T> {
    /// The document's id.
    pub id: String,
    /// When it was inserted.
    pub created: Date,
    /// When it last changed.
    pub updated: Date,
    /// The document's fields as a `T`.
    pub value: T,
}

/// A page of a typed query.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedPage<T> {
    /// The documents, as `T`s.
    pub documents: Vec<Typed<T>>,
    /// Where the next page starts, when this one was cut short by the limit.
    pub next: Option<Cursor>,
}

/// A collection whose documents are `T`s (`Collection::typed`).
pub struct TypedCollection<T> {
    collection: Collection,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedCollection<T> {
    fn clone(&self) -> Self {
        TypedCollection { collection: self.collection.clone(), _type: PhantomData }
    }
}

impl<T> std::fmt::Debug for TypedCollection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedCollection")
            .field("name", &self.collection.name())
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

/// `value` as a document's MessagePack (what its JSON would encode to).
fn to_body<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serialize::to_document_bytes(value).map_err(|error| match error {
        Error::InvalidDocument { detail } => {
            Error::invalid(format!("cannot store a {}: {detail}", std::any::type_name::<T>()))
        }
        other => other,
    })
}

/// Document `document` as a `T`: straight from its stored bytes (`value::deserialize`), or
/// through its JSON form when it holds decoded fields (a projection).
pub(crate) fn from_document<T: DeserializeOwned>(document: Document) -> Result<Typed<T>> {
    let (id, created, updated) =
        (document.id().to_string(), document.created(), document.updated());
    let value = match document.map_bytes() {
        Some(bytes) => deserialize::from_document_bytes(bytes).map_err(|error| error.0),
        None => serde_json::from_value(serde_json::Value::from(document.into_value()))
            .map_err(|error| error.to_string()),
    };
    let value = value.map_err(|error| {
        Error::invalid(format!(
            "document {id:?} does not fit the type {}: {error}",
            std::any::type_name::<T>()
        ))
    })?;
    Ok(Typed { id, created, updated, value })
}

impl Collection {
    /// This collection seen through type `T`.
    pub fn typed<T: Serialize + DeserializeOwned>(&self) -> TypedCollection<T> {
        TypedCollection { collection: self.clone(), _type: PhantomData }
    }
}

impl Database {
    /// Collection `name` (created if it does not exist) seen through type `T`.
    pub fn typed_collection<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<TypedCollection<T>> {
        Ok(self.collection(name)?.typed())
    }
}

impl<T: Serialize + DeserializeOwned> TypedCollection<T> {
    /// The dynamic collection underneath.
    pub fn untyped(&self) -> &Collection {
        &self.collection
    }

    /// Inserts `value` (see `Collection::insert`); returns its id. (The value is not read
    /// back: `get` does that.)
    pub fn insert(&self, value: &T) -> Result<String> {
        let body = to_body(value)?;
        let insert = |context: &Context, writes: &mut Writes| context.insert_encoded(writes, &body);
        Ok(self.collection.write(insert)?.id().to_string())
    }

    /// Inserts every value, all or none; returns their ids, in order. (The values are not
    /// read back: a batch is written without decoding a single document.)
    pub fn insert_many(&self, values: &[T]) -> Result<Vec<String>> {
        check_many(values.len())?;
        let bodies = values.iter().map(to_body).collect::<Result<Vec<_>>>()?;
        self.collection.write(|context, writes| {
            bodies
                .iter()
                .map(|body| Ok(context.insert_encoded(writes, body)?.id().to_string()))
                .collect()
        })
    }

    /// Document `id` as a `T`, if it exists.
    pub fn get(&self, id: &str) -> Result<Option<Typed<T>>> {
        self.collection.get(id)?.map(from_document).transpose()
    }

    /// Replaces document `id` with `value`; `Error::NotFound` if there is none.
    pub fn replace(&self, id: &str, value: &T) -> Result<Typed<T>> {
        let body = to_body(value)?;
        let replace =
            |context: &Context, writes: &mut Writes| context.replace_encoded(writes, id, &body);
        from_document(self.collection.write(replace)?)
    }

    /// Replaces document `id` with `value`, or inserts it with that id.
    pub fn upsert(&self, id: &str, value: &T) -> Result<Typed<T>> {
        check_document_id(id)?;
        let body = to_body(value)?;
        let upsert =
            |context: &Context, writes: &mut Writes| context.upsert_encoded(writes, id, &body);
        from_document(self.collection.write(upsert)?)
    }

    /// Applies `patch` to document `id`; the result must still be a `T`, or nothing is
    /// written.
    pub fn patch(&self, id: &str, patch: &Patch) -> Result<Typed<T>> {
        let collection = &self.collection;
        collection
            .database()
            .run_transaction(|txn| from_document(txn.patch(collection, id, patch)?))
    }

    /// Deletes document `id`; returns its last version, if there was one.
    pub fn delete(&self, id: &str) -> Result<Option<Typed<T>>> {
        self.collection.delete(id)?.map(from_document).transpose()
    }

    /// The documents `query` selects (a projection must keep every field `T` needs).
    pub fn find(&self, query: &Query) -> Result<TypedPage<T>> {
        let page = self.collection.find(query)?;
        let documents = page.documents.into_iter().map(from_document).collect::<Result<_>>()?;
        Ok(TypedPage { documents, next: page.next })
    }

    /// The first document matching `filter`, in id order.
    pub fn find_one(&self, filter: Filter) -> Result<Option<Typed<T>>> {
        self.collection.find_one(filter)?.map(from_document).transpose()
    }

    /// How many documents match `filter`.
    pub fn count(&self, filter: &Filter) -> Result<u64> {
        self.collection.count(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct User {
        name: String,
        age: u32,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn typed_documents_round_trip_and_misfits_are_errors() {
        let runtime = crate::NanoDb::in_memory(crate::NanoDbOptions::default()).unwrap();
        let db = runtime.database("app").unwrap();
        let users = db.typed_collection::<User>("users").unwrap();
        let ada = User { name: "Ada".into(), age: 36, tags: vec!["math".into()] };
        let id = users.insert(&ada).unwrap();
        assert_eq!(id.len(), 15);
        let stored = users.get(&id).unwrap().unwrap();
        assert_eq!(stored.value, ada);
        assert_eq!(stored.id, id);
        let older = User { age: 37, ..ada.clone() };
        assert_eq!(users.replace(&stored.id, &older).unwrap().value, older);
        let patched = users.patch(&stored.id, &Patch::new().set("age", 38)).unwrap();
        assert_eq!(patched.value.age, 38);
        assert_eq!(patched.created, stored.created);

        // A patch that would leave something that is not a `User` writes nothing.
        let error = users.patch(&stored.id, &Patch::new().set("age", "old")).unwrap_err();
        assert!(error.to_string().contains("does not fit the type"), "{error}");
        assert_eq!(users.get(&stored.id).unwrap().unwrap().value.age, 38);
        // A document changed through the dynamic collection may stop fitting: a clear error.
        users.untyped().patch(&stored.id, &Patch::new().set("age", -1)).unwrap();
        let error = users.get(&stored.id).unwrap_err();
        assert!(matches!(error, Error::InvalidDocument { .. }), "{error}");

        // Values that are not maps cannot be documents.
        let numbers = db.typed_collection::<u32>("numbers").unwrap();
        assert!(matches!(numbers.insert(&5), Err(Error::InvalidDocument { .. })));

        let many = users
            .insert_many(&[User { name: "Bo".into(), age: 3, tags: vec![] }, older.clone()])
            .unwrap();
        assert_eq!(many.len(), 2);
        let filter =
            crate::query::parse_mongo(&Value::from(serde_json::json!({"age": {"$gt": 30}})))
                .unwrap();
        let page = users.find(&Query::new(filter.clone())).unwrap();
        assert_eq!(page.documents.len(), 1, "37; not 3, nor the misfit at -1");
        assert_eq!(users.count(&filter).unwrap(), 1);
        assert!(users.find_one(filter).unwrap().is_some());
        assert_eq!(users.delete(&many[0]).unwrap().map(|user| user.value.name), Some("Bo".into()));
        assert_eq!(users.upsert("ada", &ada).unwrap().id, "ada");
        let inserted = users.insert(&User { name: "x".into(), age: 1, tags: vec![] });
        assert_eq!(inserted.unwrap().len(), 15);
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Account {
        id: String,
        email: String,
        age: u32,
        tags: Vec<String>,
        nick: Option<String>,
    }

    fn account(i: usize) -> Account {
        Account {
            id: format!("a{i:03}"),
            email: format!("user{i}@example.com"),
            age: (i % 7) as u32,
            tags: vec![format!("t{}", i % 5), "all".into()],
            nick: i.is_multiple_of(2).then(|| format!("n{i}")),
        }
    }

    /// The fields of stored document `id`, without the times the write set.
    fn stored(collection: &Collection, id: &str) -> crate::Map {
        let mut fields = collection.get(id).unwrap().expect("stored").into_map();
        fields.remove("created").expect("created set");
        fields.remove("updated").expect("updated set");
        fields
    }

    #[test]
    fn typed_writes_store_and_index_what_dynamic_writes_do() {
        use crate::index::IndexDefinition;
        let runtime = crate::NanoDb::in_memory(crate::NanoDbOptions::default()).unwrap();
        let db = runtime.database("app").unwrap();
        let dynamic = db.collection("dynamic").unwrap();
        let typed = db.typed_collection::<Account>("typed").unwrap();
        for collection in [&dynamic, typed.untyped()] {
            let by_email = IndexDefinition::new("by_email", &["email"]).unwrap().unique();
            collection.create_index(by_email).unwrap().wait().unwrap();
            let by_tag = IndexDefinition::new("by_tag", &["tags"]).unwrap();
            collection.create_index(by_tag).unwrap().wait().unwrap();
        }
        let accounts: Vec<Account> = (0..50).map(account).collect();
        let ids = typed.insert_many(&accounts).unwrap();
        assert_eq!(ids, accounts.iter().map(|a| a.id.clone()).collect::<Vec<_>>());
        let values = accounts.iter().map(|a| Value::from(serde_json::to_value(a).unwrap()));
        dynamic.insert_many(values.collect()).unwrap();
        for id in &ids {
            assert_eq!(stored(typed.untyped(), id), stored(&dynamic, id), "{id}");
            assert_eq!(typed.get(id).unwrap().unwrap().value, account(id[1..].parse().unwrap()));
        }
        for tag in ["t3", "all"] {
            let query = Query::new(Filter::eq("tags", tag).unwrap());
            let found = |c: &Collection| -> Vec<String> {
                c.find(&query).unwrap().documents.iter().map(|d| d.id().to_string()).collect()
            };
            assert_eq!(found(typed.untyped()), found(&dynamic), "{tag}");
            assert!(!found(&dynamic).is_empty());
        }

        // A taken id, a taken unique value: an error, and nothing of the batch is written.
        let count = |c: &TypedCollection<Account>| c.count(&Filter::True).unwrap();
        let taken_id = [account(50), account(7)];
        let error = typed.insert_many(&taken_id).unwrap_err();
        assert!(matches!(error, Error::AlreadyExists { .. }), "{error}");
        let taken_email = [account(51), Account { id: "x".into(), ..account(8) }];
        let error = typed.insert_many(&taken_email).unwrap_err();
        assert!(matches!(error, Error::UniqueViolation { .. }), "{error}");
        assert_eq!(count(&typed), 50);
        assert!(typed.get("a050").unwrap().is_none());

        // The id must be a string, as on the dynamic path; without one it is generated.
        #[derive(Serialize, Deserialize)]
        struct NumberId {
            id: u32,
        }
        let error =
            db.typed_collection::<NumberId>("numbers").unwrap().insert_many(&[NumberId { id: 1 }]);
        assert!(error.unwrap_err().to_string().contains("id must be a string, not a number"));
        let users = db.typed_collection::<User>("users").unwrap();
        let ids = users.insert_many(&[User { name: "Cy".into(), age: 1, tags: vec![] }]).unwrap();
        assert_eq!(ids[0].len(), 15);
        assert_eq!(users.get(&ids[0]).unwrap().unwrap().value.name, "Cy");
        let limit =
            users.insert_many(&vec![User { name: "x".into(), age: 1, tags: vec![] }; 100_001]);
        assert!(matches!(limit, Err(Error::LimitExceeded { .. })));
    }

    #[test]
    fn typed_replace_and_upsert_keep_created_their_unique_values_and_feed_events() {
        use crate::index::IndexDefinition;
        use crate::{ChangeKind, FeedOptions};
        let runtime = crate::NanoDb::in_memory(crate::NanoDbOptions::default()).unwrap();
        let db = runtime.database("app").unwrap();
        let accounts = db.typed_collection::<Account>("accounts").unwrap();
        let by_email = IndexDefinition::new("by_email", &["email"]).unwrap().unique();
        accounts.untyped().create_index(by_email).unwrap().wait().unwrap();
        let stream = accounts.untyped().subscribe(FeedOptions::default()).unwrap();
        accounts.insert(&account(1)).unwrap();
        let first = accounts.get("a001").unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));

        // Its own unique value kept: not a violation; `created` kept, `updated` moved.
        let older = Account { age: 40, ..account(1) };
        let replaced = accounts.replace("a001", &older).unwrap();
        assert_eq!(replaced.value, older);
        assert_eq!(replaced.created, first.created);
        assert!(replaced.updated > first.updated);
        // Another's unique value: refused, nothing written.
        accounts.insert(&account(2)).unwrap();
        let stolen = Account { email: account(2).email, ..account(1) };
        let error = accounts.replace("a001", &stolen).unwrap_err();
        assert!(matches!(error, Error::UniqueViolation { .. }), "{error}");
        assert_eq!(accounts.get("a001").unwrap().unwrap().value, older);
        let error = accounts.replace("nobody", &account(3)).unwrap_err();
        assert!(matches!(error, Error::NotFound { .. }), "{error}");

        // Upsert: an update of a live document (its `created` kept), else an insert with
        // the id given (whatever `id` the value holds).
        let upserted = accounts.upsert("a001", &account(1)).unwrap();
        assert_eq!(upserted.created, first.created);
        let fresh = accounts.upsert("a009", &account(4)).unwrap();
        assert_eq!((fresh.id.as_str(), fresh.value.id.as_str()), ("a009", "a009"));
        assert!(accounts.upsert("bad/id", &account(5)).is_err());
        assert!(accounts
            .upsert("a010", &Account { email: account(2).email, ..account(5) })
            .is_err());

        let mut kinds = Vec::new();
        while let Some(event) = stream.try_recv().unwrap() {
            kinds.push((event.kind, event.document.id().to_string()));
        }
        let expected = [
            (ChangeKind::Create, "a001"),
            (ChangeKind::Update, "a001"),
            (ChangeKind::Create, "a002"),
            (ChangeKind::Update, "a001"),
            (ChangeKind::Create, "a009"),
        ];
        let expected: Vec<_> = expected.iter().map(|(k, id)| (*k, id.to_string())).collect();
        assert_eq!(kinds, expected);
        assert_eq!(accounts.untyped().verify_indexes().unwrap(), 3);
    }

    #[test]
    fn typed_writes_to_a_collection_with_a_schema_pass_its_checks() {
        use crate::schema::{FieldRule, FieldType, Schema};
        let runtime = crate::NanoDb::in_memory(crate::NanoDbOptions::default()).unwrap();
        let db = runtime.database("app").unwrap();
        let schema = Schema::new(vec![FieldRule::required("email", FieldType::String)]);
        let options = crate::CollectionOptions { schema: Some(schema), ..Default::default() };
        let accounts = db.create_collection("accounts", options).unwrap().typed::<Account>();
        assert_eq!(accounts.insert_many(&[account(1)]).unwrap(), ["a001"]);
        let users = accounts.untyped().typed::<User>();
        let error = users.insert_many(&[User { name: "Di".into(), age: 2, tags: vec![] }]);
        assert!(error.is_err(), "no email: the schema refuses it");
        assert_eq!(accounts.count(&Filter::True).unwrap(), 1);
    }
}
