//! Leveled compaction: what to compact (`picker`) and how (`job`). The database's part —
//! threads, locking, installing the result — is in `db/compact.rs`.
//!
//! Thread safety: see each module; both are free of shared state.

pub mod job;
pub mod picker;
pub mod range_del;

pub use job::JobInput;
pub use picker::{level_targets, pick, CompactionPlan};
pub use range_del::{collectable, pick_range_deletion};
