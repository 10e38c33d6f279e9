//! Queries: one filter representation (`ast`) with two front ends (`pocketbase`, `mongo`),
//! its evaluator (`eval`), and the query (filter, sort, pagination, projection) run against a
//! collection.
//!
//! Thread safety: plain owned data.

pub mod ast;
mod lexer;
pub mod mongo;
pub mod pocketbase;

pub use ast::{
    CompareOp, FieldPath, Filter, Operand, Params, Pattern, Quantifier, SortKey, Transform,
};
pub use mongo::parse_mongo;
pub use pocketbase::{parse_filter, parse_sort, FilterContext};
