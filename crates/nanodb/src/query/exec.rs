//! Running a query: read the documents the plan chose, at one storage snapshot, keep those
//! the filter matches, order them, cut the page, project.
//!
//! When the access yields the query's order, results stream and a limit ends the read early;
//! otherwise they are sorted in memory (only the best `offset + limit` are kept when there is
//! a limit), bounded by `Query::sort_memory_bytes_max`. An index scan in sort order checks
//! each document against the index order (`sorts_like_index`: one plain value per indexed
//! path, whose entry then sorts exactly as the document; a document whose indexed field is an
//! array sorts as the array, not as its items); at the first that does not fit, the query runs
//! again with a sort in memory.
//!
//! Thread safety: each run owns its snapshot; collections are not locked.
//!
//! Invariant: every returned document matches the filter as of the snapshot, and each appears
//! once; none has expired (TTL) when the query began.

use super::ast::{Filter, SortKey};
use super::budget::{ReadBudget, Ticker};
use super::eval::{matches, matches_document, single, top_level_names, Root};
use super::plan::{plan, Access, Choice, Plan};
use super::request::{Cursor, Page, Query};
use crate::database::CollectionState;
use crate::document::{stored, Document};
use crate::index::{index_key_after, sorts_like_index};
use crate::ttl::{expired, Expiry};
use crate::value::{compare, Date, Value};
use crate::{Error, Result};
use nanodb_storage::{Db, Snapshot};
use std::cmp::Ordering;
use std::collections::HashSet;
use std::ops::Bound;

/// What a visitor tells the reader.
enum Flow {
    Continue,
    Stop,
    /// The index order does not fit the sort: start again, sorting in memory.
    Unordered,
}

/// A matching document with its sort values and stored size.
struct Hit {
    values: Vec<Value>,
    document: Document,
    size_bytes: usize,
}

fn sort_values(document: &Document, sort: &[SortKey]) -> Vec<Value> {
    sort.iter().map(|key| single(Root::Fields(document), &key.path).into_owned()).collect()
}

/// The query order of two positions (sort values, then id).
fn order(sort: &[SortKey], a: (&[Value], &str), b: (&[Value], &str)) -> Ordering {
    for ((key, x), y) in sort.iter().zip(a.0).zip(b.0) {
        let order = compare(x, y);
        if order != Ordering::Equal {
            return if key.descending { order.reverse() } else { order };
        }
    }
    a.1.as_bytes().cmp(b.1.as_bytes())
}

/// Runs `query` on collection `state`.
pub(crate) fn find(db: &Db, state: &CollectionState, query: &Query) -> Result<Page> {
    query.check()?;
    let indexes = state.ready_indexes();
    let snapshot = db.snapshot()?;
    let (choice, _) = plan(query, &state.documents, &indexes, &snapshot, false)?;
    match run(&snapshot, state, query, &choice)? {
        Some(page) => Ok(page),
        None => {
            let unordered = Choice { ordered: false, ..choice };
            run(&snapshot, state, query, &unordered)?
                .ok_or_else(|| Error::invalid("a query without an order cannot lose it"))
        }
    }
}

/// The plan `find` would use.
pub(crate) fn explain(db: &Db, state: &CollectionState, query: &Query) -> Result<Plan> {
    query.check()?;
    let indexes = state.ready_indexes();
    let snapshot = db.snapshot()?;
    Ok(plan(query, &state.documents, &indexes, &snapshot, true)?.1)
}

/// Calls `visit` with every document matching `filter`, in the plan's order, at one snapshot.
pub(crate) fn for_each_match(
    db: &Db,
    state: &CollectionState,
    filter: &Filter,
    budget: ReadBudget,
    visit: &mut dyn FnMut(&Document) -> Result<()>,
) -> Result<()> {
    let query = Query::new(filter.clone()).budget(budget);
    query.check()?;
    let indexes = state.ready_indexes();
    let snapshot = db.snapshot()?;
    let (choice, _) = plan(&query, &state.documents, &indexes, &snapshot, false)?;
    read(&snapshot, state, &query, &choice, &mut |document, _, _| {
        if matches_document(&query.filter, &document) {
            visit(&document)?;
        }
        Ok(Flow::Continue)
    })?;
    Ok(())
}

/// One run; `None` if an index order turned out not to fit the sort.
fn run(
    snapshot: &Snapshot,
    state: &CollectionState,
    query: &Query,
    choice: &Choice,
) -> Result<Option<Page>> {
    let sort = &query.sort;
    let cursor = query.after.as_ref();
    let keep = query.limit.map(|limit| query.offset.saturating_add(limit));
    let in_memory = query.is_ordered() && !choice.ordered;
    let mut hits: Vec<Hit> = Vec::new();
    let mut held_bytes = 0usize;
    let mut skipped = 0usize;
    let index = match &choice.access {
        Access::Index { index, .. } if choice.ordered && query.is_ordered() => Some(index),
        _ => None,
    };
    let outcome = read(snapshot, state, query, choice, &mut |document, size_bytes, fits_index| {
        if index.is_some() && !fits_index {
            return Ok(Flow::Unordered);
        }
        if !matches_document(&query.filter, &document) {
            return Ok(Flow::Continue);
        }
        let values = if query.is_ordered() { sort_values(&document, sort) } else { Vec::new() };
        if let Some(cursor) = cursor {
            let position = (values.as_slice(), document.id());
            if order(sort, position, (&cursor.values, &cursor.id)) != Ordering::Greater {
                return Ok(Flow::Continue);
            }
        }
        if !in_memory {
            if skipped < query.offset {
                skipped += 1;
                return Ok(Flow::Continue);
            }
            hits.push(Hit { values, document, size_bytes });
            let full = query.limit.is_some_and(|limit| hits.len() >= limit);
            return Ok(if full { Flow::Stop } else { Flow::Continue });
        }
        held_bytes += size_bytes;
        hits.push(Hit { values, document, size_bytes });
        if let Some(keep) = keep {
            if hits.len() >= keep.saturating_mul(2).max(64) {
                sort_hits(&mut hits, sort);
                hits.truncate(keep);
                held_bytes = hits.iter().map(|hit| hit.size_bytes).sum();
            }
        }
        Error::check_limit(
            "bytes of documents held to sort",
            held_bytes,
            query.sort_memory_bytes_max,
        )?;
        Ok(Flow::Continue)
    })?;
    if matches!(outcome, Flow::Unordered) {
        return Ok(None);
    }
    if in_memory {
        sort_hits(&mut hits, sort);
        hits.drain(..query.offset.min(hits.len()));
        if let Some(limit) = query.limit {
            hits.truncate(limit);
        }
    }
    let cut_short = query.limit.is_some_and(|limit| limit > 0 && hits.len() == limit);
    let resumable =
        query.is_ordered() || matches!(choice.access, Access::Scan { .. } | Access::Ids(_));
    let next = match hits.last() {
        Some(hit) if cut_short && resumable => Some(Cursor::after(&hit.document, sort)),
        _ => None,
    };
    let documents = hits
        .into_iter()
        .map(|hit| match &query.projection {
            Some(projection) => Document::projected(projection.apply(hit.document.into_map())),
            None => hit.document,
        })
        .collect();
    Ok(Some(Page { documents, next }))
}

fn sort_hits(hits: &mut [Hit], sort: &[SortKey]) {
    hits.sort_by(|a, b| order(sort, (&a.values, a.document.id()), (&b.values, b.document.id())));
}

/// Reads the documents `choice` says, in its order, passing each (with the bytes it holds, and
/// whether it sorts like the index entry it was found by: `sorts_like_index`, true off an
/// index) to `visit` until it says stop; returns the last flow.
fn read(
    snapshot: &Snapshot,
    state: &CollectionState,
    query: &Query,
    choice: &Choice,
    visit: &mut dyn FnMut(Document, usize, bool) -> Result<Flow>,
) -> Result<Flow> {
    let collection = state.name();
    // A document with the bytes it holds: its map, put back together from the stored form
    // (which a sort's memory limit counts), else the stored length.
    let sized = |document: Document, stored_bytes: usize| {
        let size_bytes = document.map_bytes().map_or(stored_bytes, <[u8]>::len);
        (document, size_bytes)
    };
    let decode = |id: &str, bytes: Vec<u8>| {
        let stored_bytes = bytes.len();
        let context = || format!("document {id:?} of {collection}");
        Document::from_stored(bytes, id, &state.names, context).map(|d| sized(d, stored_bytes))
    };
    // The same for a document read by id, straight from its cached block.
    let read_by_id = |id: &str| -> Result<Option<(Document, usize)>> {
        let decode = |bytes: &[u8]| {
            let context = || format!("document {id:?} of {collection}");
            let document = Document::from_stored_slice(bytes, id, &state.names, context);
            document.map(|d| sized(d, bytes.len()))
        };
        snapshot.get_in_with(&state.documents, id, decode)?.transpose()
    };
    // Expired documents (in a TTL collection) are passed over as if gone.
    let expiry = Expiry::of(state, Date::now());
    let mut visit = |document: Document, size_bytes: usize, fits: bool| {
        if expired(expiry.as_ref(), &document) {
            return Ok(Flow::Continue);
        }
        visit(document, size_bytes, fits)
    };
    let resume = query.after.as_ref().filter(|_| choice.ordered && query.is_ordered());
    // Every entry examined (document, id or index entry) ticks the query's budget.
    let mut ticker = Ticker::new(query.budget);
    match &choice.access {
        Access::Scan { range } => {
            let mut range = range.clone();
            if let Some(cursor) = resume {
                range.0 = later(range.0, Bound::Excluded(cursor.id.as_bytes().to_vec()));
            }
            // A scan tests the filter on just the fields it reads first: most documents it
            // passes over are then never decoded (nor checked) whole.
            let names = top_level_names(&query.filter);
            let prefilter = !matches!(query.filter, Filter::True);
            for entry in ticker.bound(snapshot.range_in(&state.documents, range)?) {
                ticker.tick()?;
                let (key, bytes) = entry?;
                let id = String::from_utf8_lossy(&key);
                if prefilter {
                    let fields = stored::decode_fields(&bytes, &id, &names, &state.names);
                    if fields.is_some_and(|fields| !matches(&query.filter, &fields)) {
                        continue;
                    }
                }
                let (document, size_bytes) = decode(&id, bytes)?;
                match visit(document, size_bytes, true)? {
                    Flow::Continue => {}
                    other => return Ok(other),
                }
            }
        }
        Access::Ids(ids) => {
            for id in ids {
                ticker.tick()?;
                if resume.is_some_and(|cursor| id.as_str() <= cursor.id.as_str()) {
                    continue;
                }
                let Some((document, size_bytes)) = read_by_id(id)? else { continue };
                match visit(document, size_bytes, true)? {
                    Flow::Continue => {}
                    other => return Ok(other),
                }
            }
        }
        Access::Index { index, ranges, equal_values } => {
            let mut seen: HashSet<String> = HashSet::new();
            for range in ranges {
                let mut range = range.clone();
                if let (Some(cursor), 1) = (resume, ranges.len()) {
                    let values: Vec<Value> =
                        equal_values.iter().chain(&cursor.values).cloned().collect();
                    if values.len() == index.definition.fields.len() {
                        let after = index_key_after(&index.definition, &values, &cursor.id);
                        range.0 = later(range.0, Bound::Included(after));
                    }
                }
                for entry in ticker.bound(snapshot.range_in(&index.keyspace, range)?) {
                    ticker.tick()?;
                    let (_, id) = entry?;
                    let id = String::from_utf8_lossy(&id).into_owned();
                    let Some((document, size_bytes)) = read_by_id(&id)? else {
                        return Err(Error::corruption(
                            format!("index {:?} of {collection}", index.definition.name),
                            format!("an entry names document {id:?}, which does not exist"),
                        ));
                    };
                    // Only a document with an array (or several values) at an indexed path can
                    // have several entries and be met again: only its first meeting counts.
                    let single_entry = sorts_like_index(&index.definition, &document);
                    if !single_entry && !seen.insert(id) {
                        continue;
                    }
                    match visit(document, size_bytes, single_entry)? {
                        Flow::Continue => {}
                        other => return Ok(other),
                    }
                }
            }
        }
    }
    Ok(Flow::Continue)
}

/// The later of two lower bounds.
fn later(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    let key = |bound: &Bound<Vec<u8>>| match bound {
        Bound::Included(key) | Bound::Excluded(key) => Some(key.clone()),
        Bound::Unbounded => None,
    };
    match (key(&a), key(&b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(x), Some(y)) if x > y => a,
        (Some(x), Some(y)) if y > x => b,
        _ if matches!(a, Bound::Excluded(_)) => a,
        _ => b,
    }
}
