//! Leveled compaction: what to compact (`picker`, and `range_del` and `expiry` for the
//! compactions range tombstones and expired values ask for) and how (`job`). The database's part —
//! threads, locking, installing the result — is in `db/compact.rs`.
//!
//! Thread safety: see each module; both are free of shared state.

pub mod expiry;
pub mod job;
pub(crate) mod l0;
pub mod picker;
pub mod range_del;

pub use expiry::pick_expired;
pub use job::JobInput;
pub use picker::{level_targets, pick, CompactionPlan};
pub use range_del::{collectable, pick_range_deletion};
