//! Commit notes: an opaque value a transaction hands to its commit, which the database's
//! commit listener receives with the commit's seqno once the commit is durable and visible.
//!
//! Layers above the engine use this to learn of their own commits in commit order (the
//! document layer's change feed): the group-commit leader calls the listener for every
//! committed batch that carries a note, in seqno order, after the WAL append (and sync, if
//! asked) and the memtable insert, and before the writer is answered. A batch that is
//! rejected (a conflict, a dropped keyspace) or fails never reaches the listener.
//!
//! Thread safety: the listener is called from whichever writer thread leads the group, one
//! call at a time (the leader holds the WAL lock), so calls never overlap and never reorder.
//! It must be quick and must not write to the database (the WAL lock is held): hand the note
//! to a queue and return.
//!
//! Invariant: for two notes delivered, the one with the lower seqno is delivered first.

use std::any::Any;
use std::sync::Arc;

/// An opaque value carried by a commit to the commit listener (`Transaction::set_commit_note`).
pub type CommitNote = Arc<dyn Any + Send + Sync>;

/// Receives the notes of committed transactions (`Db::set_commit_listener`).
pub trait CommitListener: Send + Sync {
    /// Called once per committed transaction that carried a note: `seqno` is the seqno of its
    /// first write. Called in seqno order, never concurrently, with the WAL lock held.
    fn committed(&self, seqno: u64, note: &CommitNote);
}
