//! nanodb: an embedded, crash-safe document database on NanoDB's own LSM storage engine.
//!
//! Documents (JSON-like values with dates, stored as MessagePack) live in collections, and
//! collections in logical databases; many databases share one process, one memory budget and
//! one block cache. See ARCHITECTURE.md for how documents, indexes and queries map onto the
//! storage engine's keyspaces and transactions.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod error;
pub mod value;

pub use error::{Error, Result};
pub use value::{Date, Map, Value};
mod catalog;
mod collection;
mod database;
mod document;
mod feed;
mod field_names;
pub mod id;
mod index;
pub mod names;
mod patch;
pub mod query;
mod runtime;
mod schema;
#[cfg(test)]
mod test_support;
mod transaction;
mod ttl;
mod typed;

pub use catalog::CollectionOptions;
pub use collection::{Collection, MANY_DOCUMENTS_MAX};
pub use database::{
    Database, DatabaseOptions, BLOCK_SIZE_BYTES_SMALL_MEMORY,
    BLOOM_BITS_PER_KEY_BOTTOMMOST_SMALL_MEMORY,
};
pub use document::{
    check_field_name, Document, DOCUMENT_SIZE_BYTES_MAX, FIELD_CREATED, FIELD_ID, FIELD_UPDATED,
};
pub use feed::{
    ChangeEvent, ChangeKind, ChangeStream, FeedOptions, FEED_BUFFER_EVENTS_DEFAULT,
    FEED_BUFFER_EVENTS_MAX,
};
pub use field_names::{INTERNED_NAMES_MAX, INTERNED_NAME_BYTES_MAX};
pub use index::{
    IndexBuild, IndexDefinition, IndexField, IndexInfo, IndexStatus, BUILD_CHUNK_DOCUMENTS,
    BUILD_CONFLICTS_MAX, INDEXES_PER_COLLECTION_MAX, INDEX_ENTRIES_PER_DOCUMENT_MAX,
    INDEX_FIELDS_MAX, INDEX_KEY_BYTES_MAX,
};
pub use patch::{Patch, PatchOp};
pub use runtime::{
    NanoDb, NanoDbOptions, DATABASES_OPEN_MAX_DEFAULT, DATABASE_MEMTABLE_BYTES_MAX_DEFAULT,
    MEMORY_BYTES_DEFAULT,
};
pub use schema::{FieldRule, FieldType, Schema, SCHEMA_FIELDS_MAX};
pub use transaction::{Transaction, WRITE_RETRIES_MAX};
pub use ttl::{
    Ttl, REAP_CHUNK_DOCUMENTS, TTL_AFTER_MAX, TTL_CHECK_INTERVAL_DEFAULT, TTL_CHECK_INTERVAL_MAX,
    TTL_CHECK_INTERVAL_MIN, TTL_INDEX_NAME,
};
pub use typed::{Typed, TypedCollection, TypedPage};
