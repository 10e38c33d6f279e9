//! Collection definitions: what a PocketBase collection is (`collection`, `field`), the
//! ones the server creates (`defaults`), how they are checked (`validate`, `paths`,
//! `index_sql`), and where they live (`catalog`, `storage`).
//!
//! Thread safety: definitions are immutable once in the catalog (`Arc<CollectionDef>`).

pub mod catalog;
pub mod collection;
pub mod defaults;
pub mod field;
pub mod index_sql;
pub mod paths;
pub mod storage;
pub mod validate;

pub use catalog::{Catalog, CatalogSnapshot};
pub use collection::{CollectionDef, CollectionKind, Rule};
pub use field::{Field, FieldKind};
