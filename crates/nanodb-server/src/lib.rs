//! nanodb-server: NanoDB as a small backend, over HTTP with an API the official PocketBase
//! JavaScript SDK can use unmodified: collections, records (list with filter, sort, pages,
//! expand, fields), auth with passwords and JWTs, and per-collection access rules.
//!
//! Every PocketBase collection is a collection of one nanodb database (`state`); filters,
//! sorts and rules are nanodb's filter language, parsed and run by nanodb (`rules`,
//! `api::records_read`): the server translates and checks, it holds no query logic. Entry
//! point: `run`, on any `tokio::net::TcpListener` (port 0 in tests). See ARCHITECTURE.md
//! ("Server") and docs/server.md.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod ops;
pub mod realtime;
pub mod records;
pub mod rules;
pub mod schema;
mod server;
pub mod state;
#[cfg(test)]
mod test_support;

pub use auth::superusers::{create_superuser, Upserted};
pub use config::{ServerConfig, BODY_BYTES_MAX_DEFAULT};
pub use error::{Error, Result};
pub use server::run;
