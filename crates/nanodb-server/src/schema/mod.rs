//! Collection definitions: what a PocketBase collection is (`collection`, `field`), the
//! ones the server creates (`defaults`), how they are checked (`validate`, `paths`,
//! `index_sql`), and where they live (`definitions`, `storage`).
//!
//! Thread safety: definitions are immutable once stored (`Arc<CollectionDef>`).

pub mod collection;
pub mod defaults;
pub mod definitions;
pub mod field;
pub mod index_sql;
pub mod paths;
pub mod storage;
pub mod validate;

pub use collection::{CollectionDef, CollectionKind, Rule};
pub use definitions::{Definitions, DefinitionsSnapshot};
pub use field::{Field, FieldKind};
