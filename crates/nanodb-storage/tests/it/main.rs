//! Integration tests of nanodb-storage's public API: one binary, one module per concern.
//!
//! Randomized tests print their seed on failure; set `NANODB_TEST_SEED` to replay one, and
//! `NANODB_TEST_SCALE` (default 1) to multiply how many cases they run.

mod api;
mod budget;
mod cache;
mod checkpoint;
mod common;
mod compaction;
mod compression;
mod corruption;
mod crash;
mod io;
mod keyspaces;
mod kill;
mod model;
mod range_delete;
mod transactions;
mod ttl;
