//! Counting the documents that match a filter without reading them where possible: the whole
//! collection by its document keys, and a filter an index answers exactly by that index's
//! entries (`plan::exact_index`: equalities and `in` lists on the leading fields of an index
//! no document has several entries in). Anything else is counted by reading the matches
//! (`exec::for_each_match`).
//!
//! Thread safety: each count reads one storage snapshot; collections are not locked.
//!
//! Invariant: a count equals the number of documents `find` returns for the same filter at
//! the same snapshot; expired documents (TTL) are never counted, so a collection whose
//! documents can expire is always counted by reading them.

use super::ast::Filter;
use super::budget::{ReadBudget, Ticker};
use super::exec::for_each_match;
use super::plan::exact_index;
use crate::database::CollectionState;
use crate::ttl::Expiry;
use crate::value::Date;
use crate::Result;
use nanodb_storage::{Db, Iter};

/// How many documents match `filter`; `Error::BudgetExceeded` once `budget` is spent.
pub(crate) fn count(
    db: &Db,
    state: &CollectionState,
    filter: &Filter,
    budget: ReadBudget,
) -> Result<u64> {
    let mut ticker = Ticker::new(budget);
    if matches!(filter, Filter::True) {
        return count_all(db, state, &mut ticker);
    }
    filter.check_limits()?;
    if let Some(count) = count_by_index(db, state, filter, &mut ticker)? {
        return Ok(count);
    }
    count_matches(db, state, filter, budget)
}

/// How many documents match `filter`, by reading them.
fn count_matches(
    db: &Db,
    state: &CollectionState,
    filter: &Filter,
    budget: ReadBudget,
) -> Result<u64> {
    let mut count = 0;
    for_each_match(db, state, filter, budget, &mut |_| {
        count += 1;
        Ok(())
    })?;
    Ok(count)
}

/// The keys `iter` has left, counted while `ticker` allows.
fn count_keys(iter: Iter, ticker: &mut Ticker) -> Result<u64> {
    let count = ticker.bound(iter).count_keys_while(|_| ticker.keep_going())?;
    ticker.check()?;
    Ok(count)
}

/// How many documents the collection holds, without decoding them (unless they may expire).
fn count_all(db: &Db, state: &CollectionState, ticker: &mut Ticker) -> Result<u64> {
    if Expiry::of(state, Date::now()).is_some() {
        return count_matches(db, state, &Filter::True, ticker.budget());
    }
    let snapshot = db.snapshot()?;
    count_keys(snapshot.range_in::<&[u8], _>(&state.documents, ..)?, ticker)
}

/// How many documents match `filter`, counted from index entries alone when an index answers
/// it exactly and no document can expire; `None` otherwise. `filter` is within its limits.
fn count_by_index(
    db: &Db,
    state: &CollectionState,
    filter: &Filter,
    ticker: &mut Ticker,
) -> Result<Option<u64>> {
    if Expiry::of(state, Date::now()).is_some() {
        return Ok(None);
    }
    let indexes = state.ready_indexes();
    let snapshot = db.snapshot()?;
    // Only now: an index's multikey flag is set before a write that needs it commits.
    let Some((index, ranges)) = exact_index(filter, &indexes) else { return Ok(None) };
    let mut count = 0;
    for range in ranges {
        count += count_keys(snapshot.range_in(&index.keyspace, range)?, ticker)?;
    }
    Ok(Some(count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{parse_filter, FilterContext, Query};
    use crate::test_support::{doc, seed_or, Rng};
    use crate::{Collection, CollectionOptions, IndexDefinition, NanoDb, NanoDbOptions};

    fn filter(text: &str) -> Filter {
        let (params, variables) = (Default::default(), Default::default());
        parse_filter(text, &FilterContext::new(&params, &variables)).unwrap()
    }

    /// The count by reading every document: the reference.
    fn read_count(collection: &Collection, filter: &Filter) -> u64 {
        count_matches(
            collection.database().storage(),
            collection.state(),
            filter,
            ReadBudget::UNLIMITED,
        )
        .unwrap()
    }

    fn by_index(collection: &Collection, text: &str) -> Option<u64> {
        let (db, state) = (collection.database().storage(), collection.state());
        count_by_index(db, state, &filter(text), &mut Ticker::new(ReadBudget::UNLIMITED)).unwrap()
    }

    #[test]
    fn equalities_on_leading_fields_count_entries_until_the_index_turns_multikey() {
        let fs: std::sync::Arc<dyn nanodb_storage::fs::Fs> =
            std::sync::Arc::new(nanodb_storage::fs::SimFs::new());
        let root = std::path::Path::new("/root");
        let open = || NanoDb::with_fs(root, fs.clone(), NanoDbOptions::default()).unwrap();
        let runtime = open();
        let database = runtime.database("count").unwrap();
        let notes = database.create_collection("notes", CollectionOptions::default()).unwrap();
        for n in 0..200i64 {
            let owner = format!("u{}", n % 4);
            let status = if n % 3 == 0 { "open" } else { "done" };
            notes
                .insert(doc(serde_json::json!({"owner": owner, "status": status, "n": n})))
                .unwrap();
        }
        // A single-item array has one entry: still exact, under `=` (all items) as under `?=`.
        notes.insert(doc(serde_json::json!({"owner": ["u1"], "status": "open"}))).unwrap();
        let by_owner = IndexDefinition::new("owner_status", &["owner", "status"]).unwrap();
        notes.create_index(by_owner).unwrap().wait().unwrap();
        assert_eq!(by_index(&notes, "owner = 'u1'"), Some(51));
        assert_eq!(by_index(&notes, "owner ?= 'u1'"), Some(51));
        assert_eq!(by_index(&notes, "owner = 'u1' && status = 'open'"), Some(17));
        assert_eq!(by_index(&notes, "status = 'open' && owner = 'u2'"), Some(17));
        assert_eq!(by_index(&notes, "owner = 'nobody'"), Some(0));
        for not_exact in [
            "status = 'open'",              // not a leading field
            "owner = 'u1' && n > 3",        // a condition the index does not hold
            "owner = 'u1' && owner = 'u2'", // two conditions on one field
            "owner > 'u1'",                 // a range
            "owner = 'u1' || status = 'x'", // not a conjunction
            "owner ~ 'u1'",
        ] {
            assert_eq!(by_index(&notes, not_exact), None, "{not_exact}");
        }
        for text in ["owner = 'u1'", "owner = 'u1' && status = 'open'", "owner = 'u3'"] {
            assert_eq!(notes.count(&filter(text)).unwrap(), read_count(&notes, &filter(text)));
        }
        // Two distinct items: two entries, and `owner = 'u1'` (every item) no longer holds for
        // that document though an entry says u1. The index is multikey from now on.
        notes.insert(doc(serde_json::json!({"owner": ["u1", "u2"], "status": "open"}))).unwrap();
        assert_eq!(by_index(&notes, "owner = 'u1'"), None);
        assert_eq!(notes.count(&filter("owner = 'u1'")).unwrap(), 51);
        assert_eq!(notes.count(&filter("owner ?= 'u1'")).unwrap(), 52);
        // Still multikey after the document goes, and after a reopen (the catalog marker).
        let ids = notes.find(&Query::new(filter("owner ?= 'u2' && status = 'open'"))).unwrap();
        for document in ids.documents.iter().filter(|d| d.field("n").is_none()) {
            notes.delete(document.id()).unwrap();
        }
        assert_eq!(by_index(&notes, "owner = 'u1'"), None);
        runtime.close().unwrap();
        drop((notes, database, runtime));
        let runtime = open();
        let notes = runtime.database("count").unwrap().open_collection("notes").unwrap();
        assert_eq!(by_index(&notes, "owner = 'u1'"), None, "the marker survives a reopen");
        assert_eq!(notes.count(&filter("owner = 'u1'")).unwrap(), 51);
    }

    /// Random documents (scalars, single-item and several-item arrays, missing fields) and
    /// random equality filters: the count from index entries always equals the count read.
    #[test]
    fn index_counts_agree_with_read_counts() {
        let seed = seed_or(0xc0_u64);
        let outcome = std::panic::catch_unwind(|| {
            let mut rng = Rng(seed | 1);
            let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
            let database = runtime.database("count").unwrap();
            let values = [
                serde_json::json!(1),
                serde_json::json!(1.0),
                serde_json::json!(2),
                serde_json::json!("1"),
                serde_json::json!("2024-01-01 00:00:00.000Z"),
                serde_json::json!("2024-01-01T00:00:00Z"),
                serde_json::json!(null),
                serde_json::json!(true),
                serde_json::json!(""),
            ];
            let texts = ["1", "1.0", "2", "'1'", "'2024-01-01 00:00:00.000Z'", "null", "true"];
            for round in 0..4 {
                let name = format!("c{round}");
                let items =
                    database.create_collection(&name, CollectionOptions::default()).unwrap();
                let index = IndexDefinition::new("ab", &["a", "-b"]).unwrap();
                items.create_index(index).unwrap().wait().unwrap();
                let several = round >= 2;
                for _ in 0..300 {
                    let mut fields = serde_json::Map::new();
                    for field in ["a", "b"] {
                        match rng.below(6) {
                            0 => {}
                            1 => {
                                let value = values[rng.below(values.len())].clone();
                                fields.insert(field.into(), serde_json::json!([value]));
                            }
                            2 if several => {
                                let (x, y) = (rng.below(values.len()), rng.below(values.len()));
                                let pair = [values[x].clone(), values[y].clone()];
                                fields.insert(field.into(), serde_json::json!(pair));
                            }
                            _ => {
                                fields
                                    .insert(field.into(), values[rng.below(values.len())].clone());
                            }
                        }
                    }
                    items.insert(doc(serde_json::Value::Object(fields))).unwrap();
                }
                for _ in 0..200 {
                    let a = texts[rng.below(texts.len())];
                    let text = match rng.below(4) {
                        0 => format!("a = {a}"),
                        1 => format!("a ?= {a}"),
                        2 => format!("a = {a} && b = {}", texts[rng.below(texts.len())]),
                        _ => format!("b = {} && a = {a}", texts[rng.below(texts.len())]),
                    };
                    let filter = filter(&text);
                    let expected = read_count(&items, &filter);
                    assert_eq!(items.count(&filter).unwrap(), expected, "{text}");
                    let shortcut = by_index(&items, &text);
                    if let Some(counted) = shortcut {
                        assert_eq!(counted, expected, "{text}");
                    }
                    // `= null` is PocketBase's emptiness test, which no index count answers.
                    let multikey = items.state().indexes()[0].multikey.is_possible();
                    let exact = !multikey && !text.contains("null");
                    assert_eq!(shortcut.is_some(), exact, "{text}");
                }
            }
        });
        if let Err(panic) = outcome {
            eprintln!("NANODB_TEST_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}
