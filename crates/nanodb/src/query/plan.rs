//! The query planner: how to find a query's documents, and `explain`, which shows the choice
//! and the alternatives.
//!
//! Access paths: the documents by id (`id = ...`, `id in [...]`), a scan of the documents in id
//! order (narrowed by range conditions on `id`), or a scan of one ready index over the key
//! ranges its fields' conditions allow. Only conditions at the top level of the filter (joined
//! by `&&`/`$and`) narrow an access path; the full filter is always evaluated on each document
//! read, so an index only has to find a superset of the matches.
//!
//! An index fits when its first field has a condition (equality, range, `in`, PocketBase's
//! empty test); equalities on leading fields extend the key prefix, and the first field with a
//! range ends it. The planner probes each fitting index, counting the entries in its ranges up
//! to `PLAN_PROBE_ENTRIES_MAX`, and takes the fewest, preferring on a tie one that already
//! yields the query's sort order (then the results stream, and a limit stops the scan early).
//! When the counts could not change the choice (one index narrows, and no other alternative
//! competes with it), a query skips them; `explain` always counts.
//! An index that yields the sort order with no condition is used when no condition narrows
//! better. Otherwise the collection is scanned.
//!
//! Thread safety: planning reads a storage snapshot; `Plan` is plain data.

use super::ast::{CompareOp, Filter, Operand, SortKey, Transform};
use super::interval::{self, Interval, KeyRange};
use super::request::Query;
use crate::document::FIELD_ID;
use crate::index::IndexState;
use crate::value::Value;
use crate::Result;
use nanodb_storage::{Keyspace, Snapshot};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

/// Most entries the planner counts in one index's ranges to estimate how many it would read.
pub const PLAN_PROBE_ENTRIES_MAX: usize = 1_000;
/// Most stored entries (keys, tombstones, older versions) one range's probe looks at.
pub const PLAN_PROBE_STEPS_MAX: u64 = 4 * PLAN_PROBE_ENTRIES_MAX as u64;
/// Most key ranges one index scan may have (combinations of `in` lists across the fields of a
/// compound index); past it the prefix stops growing.
pub const PLAN_RANGES_MAX: usize = 256;

/// How the documents are read.
#[derive(Clone)]
pub(crate) enum Access {
    /// The documents in `range` of ids, in id order.
    Scan { range: KeyRange },
    /// The documents with these ids, sorted and distinct.
    Ids(Vec<String>),
    /// The documents of the index entries in `ranges` (disjoint, in key order);
    /// `equal_values` are the values of its leading fields fixed by equalities (when
    /// `ranges` is one prefix), for resuming after a cursor.
    Index { index: Arc<IndexState>, ranges: Vec<KeyRange>, equal_values: Vec<Value> },
}

/// The planner's decision.
#[derive(Clone)]
pub(crate) struct Choice {
    pub access: Access,
    /// The access yields documents in the query's order.
    pub ordered: bool,
}

/// One way the planner considered to read the documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// What it reads (`collection scan`, `ids`, `index <name>`).
    pub access: String,
    /// Entries counted in its ranges, up to `PLAN_PROBE_ENTRIES_MAX` (`None`: not counted);
    /// a range whose probe passed over `PLAN_PROBE_STEPS_MAX` stored entries counts as that
    /// maximum.
    pub estimate: Option<u64>,
    /// It yields the query's sort order.
    pub ordered: bool,
    /// Why it was or was not chosen.
    pub note: String,
}

/// What `Collection::explain` returns: the chosen access and the alternatives considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The chosen alternative.
    pub chosen: Alternative,
    /// The results are sorted in memory after reading (no access yields the order).
    pub sort_in_memory: bool,
    /// Every alternative considered, the chosen one included.
    pub considered: Vec<Alternative>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.chosen.access)?;
        if self.sort_in_memory {
            f.write_str(", then sort in memory")?;
        }
        for alternative in &self.considered {
            let estimate =
                alternative.estimate.map_or_else(|| "?".to_string(), |count| count.to_string());
            write!(f, "\n  {} (entries: {estimate}): {}", alternative.access, alternative.note)?;
        }
        Ok(())
    }
}

/// The top-level conditions of `filter` (the operands of a top-level `And`).
fn conjuncts(filter: &Filter) -> Vec<&Filter> {
    match filter {
        Filter::And(all) => all.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

/// The intervals a field's values must fall in, from one condition on it; `None` if no
/// condition narrows it. Conditions are not intersected: on an array field each may hold for a
/// different item (`tags = 4 && tags < 1` matches `[4, 0]`), so only one condition's intervals
/// are a safe superset. The one with the fewest points is taken (any points before a range).
fn field_intervals(conditions: &[&Filter], path: &super::FieldPath) -> Option<Vec<Interval>> {
    let mut best: Option<Vec<Interval>> = None;
    for condition in conditions {
        let intervals = match condition {
            Filter::Compare {
                left: Operand::Field { path: field, transform: Transform::None },
                op,
                right: Operand::Value(value),
                ..
            } if field == path => interval::for_compare(*op, value),
            Filter::In { path: field, values } if field == path => interval::for_in(values),
            Filter::Empty { path: field } if field == path => Some(interval::for_empty()),
            _ => None,
        };
        let Some(intervals) = intervals else { continue };
        let rank = |list: &[Interval]| {
            let points = list.iter().all(|interval| interval.point.is_some());
            (!points, list.len())
        };
        if best.as_ref().is_none_or(|so_far| rank(&intervals) < rank(so_far)) {
            best = Some(intervals);
        }
    }
    best
}

/// How an index could be scanned for a query.
struct IndexScan {
    ranges: Vec<KeyRange>,
    equal_values: Vec<Value>,
    /// Leading fields fixed to one value each.
    equal_fields: usize,
    /// Leading fields fixed to lists of values (points), whose combinations the ranges are.
    point_fields: usize,
    /// Some field has a condition.
    narrowed: bool,
}

fn index_scan(index: &IndexState, conditions: &[&Filter]) -> IndexScan {
    let mut prefixes: Vec<Vec<u8>> = vec![Vec::new()];
    let mut equal_values = Vec::new();
    let mut narrowed = false;
    let mut point_fields = 0;
    for field in &index.definition.fields {
        let Some(intervals) = field_intervals(conditions, &field.path) else { break };
        narrowed = true;
        let points: Option<Vec<&(Vec<u8>, Value)>> =
            intervals.iter().map(|interval| interval.point.as_ref()).collect();
        let encode = |prefix: &Vec<u8>, bytes: &[u8]| {
            let mut key = prefix.clone();
            if field.descending {
                key.extend(bytes.iter().map(|byte| !byte));
            } else {
                key.extend_from_slice(bytes);
            }
            key
        };
        match points {
            Some(points) if prefixes.len() * points.len() <= PLAN_RANGES_MAX => {
                if let ([(_, value)], 1) = (points.as_slice(), prefixes.len()) {
                    equal_values.push(value.clone());
                }
                prefixes = prefixes
                    .iter()
                    .flat_map(|prefix| points.iter().map(move |(bytes, _)| encode(prefix, bytes)))
                    .collect();
            }
            _ if prefixes.len() * intervals.len() > PLAN_RANGES_MAX => break,
            _ => {
                let equal_fields = equal_values.len();
                let ranges = prefixes
                    .iter()
                    .flat_map(|prefix| {
                        intervals
                            .iter()
                            .map(|interval| interval::key_range(prefix, interval, field.descending))
                    })
                    .collect();
                return IndexScan { ranges, equal_values, equal_fields, point_fields, narrowed };
            }
        }
        point_fields += 1;
        if prefixes.len() > 1 {
            equal_values.clear();
        }
    }
    let equal_fields = if prefixes.len() == 1 { equal_values.len() } else { 0 };
    let ranges = prefixes.iter().map(|prefix| interval::prefix_range(prefix)).collect();
    IndexScan { ranges, equal_values, equal_fields, point_fields, narrowed }
}

/// An index whose entries in its key ranges for `filter` are exactly the documents matching
/// it, one entry each, with those ranges; `None` if no index of `indexes` is. One is when every
/// top-level condition of `filter` is an `=` or `in` on a plain field with scalar values (the
/// index's points: no ranges, so no type bracketing or date coercion beyond the points), the
/// conditions' fields are the leading fields of the index, one condition each, and no document
/// has several entries in it (`Multikey::is_possible`: call this after taking the snapshot the
/// entries are read at). Then an `=` holds for a document exactly when its one entry has the
/// value: under `Quantifier::All` as under `Any`, an array at the path has one distinct item.
pub(crate) fn exact_index(
    filter: &Filter,
    indexes: &[Arc<IndexState>],
) -> Option<(Arc<IndexState>, Vec<KeyRange>)> {
    let conditions = conjuncts(filter);
    let scalar = |value: &Value| !matches!(value, Value::Array(_) | Value::Object(_));
    let mut paths: Vec<&super::FieldPath> = Vec::with_capacity(conditions.len());
    for condition in &conditions {
        let path = match condition {
            Filter::Compare {
                left: Operand::Field { path, transform: Transform::None },
                op: CompareOp::Eq,
                right: Operand::Value(value),
                ..
            } if scalar(value) => path,
            Filter::In { path, values } if values.iter().all(scalar) => path,
            _ => return None,
        };
        if paths.contains(&path) {
            return None;
        }
        paths.push(path);
    }
    indexes.iter().filter(|index| !index.multikey.is_possible()).find_map(|index| {
        let scan = index_scan(index, &conditions);
        let fixed = &index.definition.fields[..scan.point_fields];
        let covered = fixed.len() == paths.len()
            && paths.iter().all(|path| fixed.iter().any(|field| &field.path == *path));
        covered.then(|| (Arc::clone(index), scan.ranges))
    })
}

/// True if scanning `index` (with its first `equal_fields` fixed) yields `sort`'s order.
fn index_yields(index: &IndexState, equal_fields: usize, sort: &[SortKey]) -> bool {
    let rest = &index.definition.fields[equal_fields..];
    !sort.is_empty()
        && rest.len() == sort.len()
        && rest
            .iter()
            .zip(sort)
            .all(|(field, key)| field.path == key.path && field.descending == key.descending)
}

/// True if `sort` is id order.
fn sorted_by_id(sort: &[SortKey]) -> bool {
    sort.is_empty()
        || (sort.len() == 1 && sort[0].path.segments() == [FIELD_ID] && !sort[0].descending)
}

/// Ids fixed by equality or `in` conditions on `id`, if any.
fn id_lookups(conditions: &[&Filter]) -> Option<Vec<String>> {
    let id_path = super::FieldPath::parse(FIELD_ID).ok()?;
    let intervals = field_intervals(conditions, &id_path)?;
    let mut ids = Vec::new();
    for interval in &intervals {
        // Ids are strings: other values never match.
        if let Value::String(id) = &interval.point.as_ref()?.1 {
            ids.push(id.clone());
        }
    }
    ids.sort();
    ids.dedup();
    Some(ids)
}

/// The range of ids the string comparisons on `id` allow.
fn id_range(conditions: &[&Filter]) -> KeyRange {
    let mut lower: Bound<Vec<u8>> = Bound::Unbounded;
    let mut upper: Bound<Vec<u8>> = Bound::Unbounded;
    for condition in conditions {
        let Filter::Compare {
            left: Operand::Field { path, transform: Transform::None },
            op,
            right: Operand::Value(Value::String(text)),
            ..
        } = condition
        else {
            continue;
        };
        if path.segments() != [FIELD_ID] {
            continue;
        }
        let key = text.as_bytes().to_vec();
        match op {
            CompareOp::Gt => lower = tighter_lower(lower, Bound::Excluded(key)),
            CompareOp::Gte => lower = tighter_lower(lower, Bound::Included(key)),
            CompareOp::Lt => upper = tighter_upper(upper, Bound::Excluded(key)),
            CompareOp::Lte => upper = tighter_upper(upper, Bound::Included(key)),
            _ => {}
        }
    }
    (lower, upper)
}

fn bound_key(bound: &Bound<Vec<u8>>) -> Option<&Vec<u8>> {
    match bound {
        Bound::Included(key) | Bound::Excluded(key) => Some(key),
        Bound::Unbounded => None,
    }
}

fn tighter_lower(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (bound_key(&a), bound_key(&b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(x), Some(y)) if x != y => {
            if x > y {
                a
            } else {
                b
            }
        }
        _ => {
            if matches!(a, Bound::Excluded(_)) {
                a
            } else {
                b
            }
        }
    }
}

fn tighter_upper(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (bound_key(&a), bound_key(&b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(x), Some(y)) if x != y => {
            if x < y {
                a
            } else {
                b
            }
        }
        _ => {
            if matches!(a, Bound::Excluded(_)) {
                a
            } else {
                b
            }
        }
    }
}

/// Counts entries of `keyspace` in `ranges`, up to `PLAN_PROBE_ENTRIES_MAX`. A range whose
/// iterator passes over `PLAN_PROBE_STEPS_MAX` stored entries first (tombstones of deleted
/// documents, older versions) counts as the maximum: it is that costly to read, and the
/// probe's work stays bounded.
fn probe(snapshot: &Snapshot, keyspace: &Keyspace, ranges: &[KeyRange]) -> Result<u64> {
    let max = PLAN_PROBE_ENTRIES_MAX as u64;
    let mut count = 0;
    for range in ranges {
        let iter = snapshot.range_in(keyspace, range.clone())?.limit_steps(PLAN_PROBE_STEPS_MAX);
        count += match iter.count_keys_up_to(max - count) {
            Err(nanodb_storage::Error::IteratorStepLimit { .. }) => max - count,
            other => other?,
        };
        if count >= max {
            break;
        }
    }
    Ok(count)
}

/// What an alternative can do for the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Conditions narrow what it reads.
    Narrows,
    /// It reads everything, in the query's order.
    Orders,
    /// It reads everything.
    Scans,
    /// It cannot serve the query.
    Unusable,
}

struct Candidate {
    choice: Choice,
    alternative: Alternative,
    role: Role,
}

/// Chooses how to read `query`'s documents from `documents` and `indexes` at `snapshot`.
/// Plans `query` over `indexes`, which must all be ready (`CollectionState::ready_indexes`,
/// taken before `snapshot`).
pub(crate) fn plan(
    query: &Query,
    documents: &Keyspace,
    indexes: &[Arc<IndexState>],
    snapshot: &Snapshot,
    count_always: bool,
) -> Result<(Choice, Plan)> {
    let conditions = conjuncts(&query.filter);
    let ordered_query = query.is_ordered();
    let id_order = !ordered_query || sorted_by_id(&query.sort);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut add = |access, ordered, role, name: String, estimate, note: &str| {
        candidates.push(Candidate {
            choice: Choice { access, ordered },
            alternative: Alternative { access: name, estimate, ordered, note: note.into() },
            role,
        })
    };
    if let Some(ids) = id_lookups(&conditions) {
        let (name, count) = (format!("ids ({})", ids.len()), Some(ids.len() as u64));
        add(Access::Ids(ids), id_order, Role::Narrows, name, count, "conditions fix the ids");
    }
    for index in indexes {
        let scan = index_scan(index, &conditions);
        let ordered = !ordered_query
            || (scan.ranges.len() == 1 && index_yields(index, scan.equal_fields, &query.sort));
        let name = format!("index {}", index.definition.name);
        let role = match (scan.narrowed, ordered && ordered_query) {
            (true, _) => Role::Narrows,
            (false, true) => Role::Orders,
            (false, false) => Role::Unusable,
        };
        let (estimate, note) = match role {
            // Counted below, if the count can matter.
            Role::Narrows => (None, "conditions narrow its key ranges"),
            Role::Orders => {
                (None, "no condition on its first field, but its order is the sort order")
            }
            _ => (None, "no condition on its first field"),
        };
        let access = Access::Index {
            index: Arc::clone(index),
            ranges: scan.ranges,
            equal_values: scan.equal_values,
        };
        add(access, ordered, role, name, estimate, note);
    }
    let range = id_range(&conditions);
    if range != (Bound::Unbounded, Bound::Unbounded) {
        let estimate = Some(probe(snapshot, documents, std::slice::from_ref(&range))?);
        let name = "collection scan of an id range".to_string();
        let access = Access::Scan { range };
        add(access, id_order, Role::Narrows, name, estimate, "conditions narrow the ids");
    }
    let everything = (Bound::Unbounded, Bound::Unbounded);
    let name = "collection scan".to_string();
    add(
        Access::Scan { range: everything },
        id_order,
        Role::Scans,
        name,
        None,
        "reads every document",
    );
    let narrowing = candidates.iter().filter(|candidate| candidate.role == Role::Narrows).count();
    let ordered_rival = candidates.iter().any(|candidate| {
        candidate.role == Role::Orders && matches!(candidate.choice.access, Access::Index { .. })
    });
    if count_always || narrowing > 1 || ordered_rival {
        for candidate in candidates.iter_mut().filter(|candidate| candidate.role == Role::Narrows) {
            if let (Access::Index { index, ranges, .. }, None) =
                (&candidate.choice.access, candidate.alternative.estimate)
            {
                candidate.alternative.estimate = Some(probe(snapshot, &index.keyspace, ranges)?);
            }
        }
    }
    let best = choose(&candidates, query.limit.is_some());
    let choice = candidates[best].choice.clone();
    let chosen = candidates[best].alternative.clone();
    let considered = candidates.into_iter().map(|candidate| candidate.alternative).collect();
    let sort_in_memory = ordered_query && !choice.ordered;
    Ok((choice, Plan { chosen, sort_in_memory, considered }))
}

/// The best candidate: the narrowing one with the fewest estimated entries (the ordered one
/// on a tie); when none narrows below the probe cap, an index in the query's order if there is
/// a limit or no narrowing at all; else a collection scan.
fn choose(candidates: &[Candidate], limited: bool) -> usize {
    let cap = PLAN_PROBE_ENTRIES_MAX as u64;
    let best = candidates
        .iter()
        .enumerate()
        .filter(|(_, candidate)| candidate.role == Role::Narrows)
        .min_by_key(|(_, candidate)| {
            let alternative = &candidate.alternative;
            (alternative.estimate.unwrap_or(u64::MAX), !alternative.ordered)
        })
        .map(|(position, candidate)| {
            (position, candidate.alternative.estimate.unwrap_or(u64::MAX))
        });
    if let Some((position, estimate)) = best {
        if estimate < cap || candidates[position].alternative.ordered {
            return position;
        }
    }
    let ordered_index = candidates.iter().position(|candidate| {
        candidate.alternative.ordered
            && matches!(candidate.choice.access, Access::Index { .. })
            && candidate.role != Role::Unusable
    });
    match (ordered_index, best) {
        (Some(position), None) => position,
        (Some(position), Some(_)) if limited => position,
        (_, Some((position, _))) => position,
        (None, None) => candidates.len() - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{parse_filter, parse_sort, FilterContext};
    use crate::test_support::doc;
    use crate::{CollectionOptions, IndexDefinition, NanoDb, NanoDbOptions};

    /// Skipping the counts never changes the choice: every query plans the same with them.
    #[test]
    fn a_query_skips_counts_only_where_they_cannot_change_the_choice() {
        let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
        let database = runtime.database("plan").unwrap();
        let people = database.create_collection("people", CollectionOptions::default()).unwrap();
        for n in 0..3000i64 {
            let city = if n % 100 == 0 { "rome" } else { "oslo" };
            people.insert(doc(serde_json::json!({"n": n, "city": city, "age": n % 90}))).unwrap();
        }
        let state = people.state();
        let counted = |text: &str, sort: &str, limit: Option<usize>, indexes: &[&str]| {
            let (params, variables) = (Default::default(), Default::default());
            let context = FilterContext::new(&params, &variables);
            let mut query =
                Query::new(parse_filter(text, &context).unwrap()).sort(parse_sort(sort).unwrap());
            if let Some(limit) = limit {
                query = query.limit(limit);
            }
            let ready = state.ready_indexes();
            let ready: Vec<_> = ready
                .into_iter()
                .filter(|index| indexes.contains(&index.definition.name.as_str()))
                .collect();
            let snapshot = database.storage().snapshot().unwrap();
            let (quick, _) = plan(&query, &state.documents, &ready, &snapshot, false).unwrap();
            let (full, explained) =
                plan(&query, &state.documents, &ready, &snapshot, true).unwrap();
            let name = |choice: &Choice| match &choice.access {
                Access::Index { index, .. } => format!("index {}", index.definition.name),
                Access::Scan { .. } => "scan".to_string(),
                Access::Ids(ids) => format!("ids {ids:?}"),
            };
            assert_eq!(name(&quick), name(&full), "{text} / {sort}: {explained}");
            (name(&quick), explained.chosen.estimate)
        };
        for name in ["city", "age", "n"] {
            let index = IndexDefinition::new(name, &[name]).unwrap();
            people.create_index(index).unwrap().wait().unwrap();
        }
        let all: &[&str] = &["city", "age", "n"];
        let (chosen, estimate) = counted("city = 'rome'", "", None, &["city"]);
        assert_eq!((chosen.as_str(), estimate), ("index city", Some(30)), "explain counts");
        assert_eq!(counted("city = 'oslo'", "", None, &["city"]).0, "index city");
        assert_eq!(counted("city = 'oslo' && age = 3", "", None, all).0, "index age");
        assert_eq!(counted("city = 'rome' && age > 3", "", None, all).0, "index city");
        assert_eq!(counted("city = 'oslo'", "n", Some(5), all).0, "index n");
        assert_eq!(counted("city = 'rome'", "n", Some(5), all).0, "index city");
        assert_eq!(counted("id = 'x' && city = 'rome'", "", None, all).0, "ids [\"x\"]");
        assert_eq!(counted("team = 'x'", "", None, all).0, "scan");
    }
}
