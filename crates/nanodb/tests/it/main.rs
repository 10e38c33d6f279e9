//! Integration tests of the document layer: one binary, a module per concern.

mod collections;
mod common;
mod documents;
mod feed;
mod field_names;
mod model;
mod queries;
mod query_model;
mod runtime;
mod transactions;
mod ttl;
