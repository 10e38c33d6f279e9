//! Integration tests of the server: one binary, a module per concern, each test against a
//! real server on 127.0.0.1:0 in a temporary directory (`server::TestServer`), called over
//! HTTP by a tiny client (`client`).

mod auth;
mod batch;
mod client;
mod collections;
mod health;
mod ops;
mod realtime;
mod records;
mod rules;
mod security;
mod server;
mod sse;
