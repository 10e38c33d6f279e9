//! Aggregation: count, and group-by with count, sum, avg, min and max, over the documents a
//! filter matches.
//!
//! A group's key is the value of each `group_by` path (`eval::single`: missing is null). Sum
//! and avg take numbers only (other values are skipped; a sum of integers stays an integer
//! until it would overflow, then it is a float); min and max take every present value, in the
//! total order of `value::order`; each is null when the group has no value to take.
//!
//! Thread safety: `Groups` is owned by the one query that fills it.
//!
//! Invariant: at most `AGGREGATE_GROUPS_MAX` groups are held.

use super::ast::{FieldPath, Filter};
use super::eval::{resolve, single, Root};
use crate::document::Document;
use crate::value::{compare, keycode, Map, Value};
use crate::{Error, Result};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Most groups one aggregation may produce.
pub const AGGREGATE_GROUPS_MAX: usize = 100_000;

/// What to compute per group.
#[derive(Debug, Clone, PartialEq)]
pub enum Accumulator {
    /// The number of documents.
    Count,
    /// The sum of the numbers at the path.
    Sum(FieldPath),
    /// The mean of the numbers at the path.
    Avg(FieldPath),
    /// The smallest value at the path.
    Min(FieldPath),
    /// The largest value at the path.
    Max(FieldPath),
}

/// An aggregation: which documents, grouped by what, computing what (each result named).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    /// Which documents.
    pub filter: Filter,
    /// The grouping paths (none: one group of everything).
    pub group_by: Vec<FieldPath>,
    /// Named results.
    pub accumulators: Vec<(String, Accumulator)>,
}

/// One group's key (one value per `group_by` path) and results by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group's values of the `group_by` paths.
    pub key: Vec<Value>,
    /// The accumulators' results, by name.
    pub values: Map,
}

#[derive(Clone)]
enum State {
    Count(u64),
    Sum { int: Option<i64>, float: f64, any: bool },
    Avg { total: f64, count: u64 },
    Extreme(Option<Value>),
}

pub(crate) struct Groups<'a> {
    aggregation: &'a Aggregation,
    /// By the keycode of the key, so groups come out in key order.
    groups: BTreeMap<Vec<u8>, (Vec<Value>, Vec<State>)>,
    error: Option<Error>,
}

impl<'a> Groups<'a> {
    pub fn new(aggregation: &'a Aggregation) -> Groups<'a> {
        Groups { aggregation, groups: BTreeMap::new(), error: None }
    }

    pub fn add(&mut self, document: &Document) -> Result<()> {
        let root = Root::Fields(document);
        let key: Vec<Value> =
            self.aggregation.group_by.iter().map(|path| single(root, path).into_owned()).collect();
        let mut encoded = Vec::new();
        for value in &key {
            keycode::encode(value, &mut encoded);
        }
        if !self.groups.contains_key(&encoded) {
            Error::check_limit(
                "groups of an aggregation",
                self.groups.len() + 1,
                AGGREGATE_GROUPS_MAX,
            )?;
            let states = self.aggregation.accumulators.iter().map(|(_, acc)| match acc {
                Accumulator::Count => State::Count(0),
                Accumulator::Sum(_) => State::Sum { int: Some(0), float: 0.0, any: false },
                Accumulator::Avg(_) => State::Avg { total: 0.0, count: 0 },
                Accumulator::Min(_) | Accumulator::Max(_) => State::Extreme(None),
            });
            self.groups.insert(encoded.clone(), (key, states.collect()));
        }
        let Some((_, states)) = self.groups.get_mut(&encoded) else { return Ok(()) };
        for ((_, accumulator), state) in self.aggregation.accumulators.iter().zip(states) {
            match (accumulator, state) {
                (Accumulator::Count, State::Count(count)) => *count += 1,
                (Accumulator::Sum(path), State::Sum { int, float, any }) => {
                    for value in resolve(root, path) {
                        match value {
                            Value::Int(n) => {
                                *int = int.and_then(|sum| sum.checked_add(*n));
                                *float += *n as f64;
                                *any = true;
                            }
                            Value::Float(x) => {
                                *int = None;
                                *float += x;
                                *any = true;
                            }
                            _ => {}
                        }
                    }
                }
                (Accumulator::Avg(path), State::Avg { total, count }) => {
                    for value in resolve(root, path) {
                        if let Some(x) = value.as_f64() {
                            *total += x;
                            *count += 1;
                        }
                    }
                }
                (Accumulator::Min(path), State::Extreme(best)) => {
                    keep(best, resolve(root, path), Ordering::Less)
                }
                (Accumulator::Max(path), State::Extreme(best)) => {
                    keep(best, resolve(root, path), Ordering::Greater)
                }
                _ => self.error = Some(Error::invalid("aggregation state out of step")),
            }
        }
        self.error.take().map_or(Ok(()), Err)
    }

    pub fn finish(self) -> Vec<Group> {
        let names = &self.aggregation.accumulators;
        self.groups
            .into_values()
            .map(|(key, states)| {
                let values = names
                    .iter()
                    .zip(states)
                    .map(|((name, _), state)| {
                        let value = match state {
                            State::Count(count) => Value::Int(count as i64),
                            State::Sum { any: false, .. } => Value::Int(0),
                            State::Sum { int: Some(sum), .. } => Value::Int(sum),
                            State::Sum { float, .. } => Value::Float(float),
                            State::Avg { count: 0, .. } => Value::Null,
                            State::Avg { total, count } => Value::Float(total / count as f64),
                            State::Extreme(best) => best.unwrap_or(Value::Null),
                        };
                        (name.clone(), value)
                    })
                    .collect();
                Group { key, values }
            })
            .collect()
    }
}

fn keep(best: &mut Option<Value>, values: Vec<&Value>, wanted: Ordering) {
    for value in values {
        if best.as_ref().is_none_or(|current| compare(value, current) == wanted) {
            *best = Some(value.clone());
        }
    }
}
