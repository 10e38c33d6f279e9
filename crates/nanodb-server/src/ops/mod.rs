//! Operations: what runs around the API rather than in it. Request metrics in Prometheus'
//! text format (`metrics`, with the process' own figures from `process`), the per-IP rate
//! limit of the auth endpoints (`rate_limit`), and cross-origin requests (`cors`). The
//! middleware that applies them and the `/metrics` and `/api/openapi.json` handlers are in
//! `api::ops`.
//!
//! Thread safety: each piece is shared by all requests (`AppState`) and synchronizes itself.

pub mod cors;
pub mod metrics;
pub mod process;
pub mod rate_limit;
