//! Queries and indexes through the public API: filters, sort, pages, cursors, projection,
//! count, explain; index creation on live data, unique constraints, multikey and compound
//! indexes, and index verification.

use crate::common::{json, memory_runtime};
use nanodb::query::{CompareOp, Cursor, Filter, Projection, Query, SortKey};
use nanodb::{Collection, Error, IndexDefinition, IndexStatus, Value};

fn people(runtime: &nanodb::NanoDb) -> Collection {
    let people = runtime.database("app").unwrap().collection("people").unwrap();
    let rows = [
        ("ann", 31, "oslo", vec!["a", "b"]),
        ("bob", 25, "rome", vec!["b"]),
        ("cid", 47, "oslo", vec![]),
        ("dan", 25, "paris", vec!["c", "a"]),
        ("eve", 38, "rome", vec!["a"]),
    ];
    for (name, age, city, tags) in rows {
        people
            .insert(json(serde_json::json!({
                "id": name, "age": age, "address": {"city": city}, "tags": tags
            })))
            .unwrap();
    }
    people.insert(json(serde_json::json!({"id": "fay", "address": {"city": null}}))).unwrap();
    people
}

fn ids(page: &nanodb::query::Page) -> Vec<&str> {
    page.documents.iter().map(|document| document.id()).collect()
}

fn sort(keys: &[&str]) -> Vec<SortKey> {
    keys.iter()
        .map(|key| match key.strip_prefix('-') {
            Some(path) => SortKey::descending(path).unwrap(),
            None => SortKey::ascending(key).unwrap(),
        })
        .collect()
}

#[test]
fn filters_sorts_pages_and_projections() {
    let runtime = memory_runtime();
    let people = people(&runtime);
    let older = Query::new(Filter::gt("age", 30).unwrap()).sort(sort(&["-age"]));
    assert_eq!(ids(&people.find(&older).unwrap()), ["cid", "eve", "ann"]);
    let in_oslo = Filter::eq("address.city", "oslo").unwrap();
    assert_eq!(people.count(&in_oslo).unwrap(), 2);
    let tagged_a = Query::new(Filter::eq("tags", "a").unwrap()).sort(sort(&["age", "id"]));
    assert_eq!(ids(&people.find(&tagged_a).unwrap()), ["dan", "ann", "eve"]);
    // Ties on age are broken by id; missing ages sort first (as null).
    let by_age = Query::new(Filter::True).sort(sort(&["age"]));
    assert_eq!(ids(&people.find(&by_age).unwrap()), ["fay", "bob", "dan", "ann", "eve", "cid"]);
    let page = people.find(&by_age.clone().offset(2).limit(2)).unwrap();
    assert_eq!(ids(&page), ["dan", "ann"]);
    let projected =
        people.find(&Query::new(in_oslo).project(Projection::include(&["age"]).unwrap())).unwrap();
    assert_eq!(projected.documents[0].to_json(), serde_json::json!({"id": "ann", "age": 31}));
    assert_eq!(people.find_one(Filter::eq("age", 47).unwrap()).unwrap().unwrap().id(), "cid");
    assert!(people.find_one(Filter::eq("age", 99).unwrap()).unwrap().is_none());
}

#[test]
fn cursors_walk_every_page_once_with_and_without_an_index() {
    let runtime = memory_runtime();
    let people = people(&runtime);
    for indexed in [false, true] {
        if indexed {
            people
                .create_index(IndexDefinition::new("age", &["-age"]).unwrap())
                .unwrap()
                .wait()
                .unwrap();
        }
        for keys in [vec![], vec!["-age"], vec!["address.city", "-age"]] {
            let query = Query::new(Filter::True).sort(sort(&keys)).limit(2);
            let all = people.find(&Query { limit: None, ..query.clone() }).unwrap();
            let mut walked = Vec::new();
            let mut next: Option<Cursor> = None;
            loop {
                let mut this = query.clone();
                if let Some(cursor) = next.take() {
                    this = this.after(Cursor::parse(&cursor.to_string()).unwrap());
                }
                let page = people.find(&this).unwrap();
                walked.extend(page.documents.iter().map(|d| d.id().to_string()));
                match page.next {
                    Some(cursor) => next = Some(cursor),
                    None => break,
                }
            }
            let expected: Vec<String> = all.documents.iter().map(|d| d.id().to_string()).collect();
            if keys.is_empty() {
                assert_eq!(walked, ["ann", "bob", "cid", "dan", "eve", "fay"]);
            } else {
                assert_eq!(walked, expected, "sort {keys:?}, indexed {indexed}");
            }
        }
    }
    let mismatched = Query::new(Filter::True).sort(sort(&["age"])).after(
        Cursor::parse(
            &people.find(&Query::new(Filter::True).limit(1)).unwrap().next.unwrap().to_string(),
        )
        .unwrap(),
    );
    assert!(matches!(people.find(&mismatched), Err(Error::InvalidQuery { .. })));
}

#[test]
fn indexes_build_on_live_data_and_serve_queries() {
    let runtime = memory_runtime();
    let people = people(&runtime);
    let build = people.create_index(IndexDefinition::new("city", &["address.city"]).unwrap());
    build.unwrap().wait().unwrap();
    people.create_index(IndexDefinition::new("tags", &["tags"]).unwrap()).unwrap().wait().unwrap();
    let compound = IndexDefinition::new("city_age", &["address.city", "-age"]).unwrap();
    people.create_index(compound).unwrap().wait().unwrap();
    assert!(people.indexes().iter().all(|index| index.status == IndexStatus::Ready));
    assert!(matches!(
        people.create_index(IndexDefinition::new("city", &["x"]).unwrap()),
        Err(Error::AlreadyExists { .. })
    ));
    // Tags: two entries each for ann and dan, one for the empty array and one for missing.
    assert_eq!(people.verify_indexes().unwrap(), 6 + 8 + 6);

    let in_rome = Query::new(Filter::eq("address.city", "rome").unwrap()).sort(sort(&["-age"]));
    let plan = people.explain(&in_rome).unwrap();
    assert_eq!(plan.chosen.access, "index city_age", "{plan}");
    assert!(!plan.sort_in_memory, "{plan}");
    assert!(plan.considered.len() >= 3, "{plan}");
    assert_eq!(ids(&people.find(&in_rome).unwrap()), ["eve", "bob"]);
    let tag = Query::new(Filter::eq("tags", "a").unwrap());
    assert_eq!(people.explain(&tag).unwrap().chosen.access, "index tags");
    let mut tagged =
        ids(&people.find(&tag).unwrap()).into_iter().map(String::from).collect::<Vec<_>>();
    tagged.sort();
    assert_eq!(tagged, ["ann", "dan", "eve"]);
    let by_id = Query::new(Filter::eq("id", "bob").unwrap());
    assert_eq!(people.explain(&by_id).unwrap().chosen.access, "ids (1)");

    // Writes keep every index exact.
    people.patch("ann", &nanodb::Patch::new().set("tags", json(serde_json::json!(["z"])))).unwrap();
    people.delete("bob").unwrap();
    people
        .replace("cid", json(serde_json::json!({"address": {"city": "rome"}, "age": 50})))
        .unwrap();
    people.verify_indexes().unwrap();
    assert_eq!(ids(&people.find(&in_rome).unwrap()), ["cid", "eve"]);
    assert_eq!(people.count(&Filter::eq("tags", "a").unwrap()).unwrap(), 2);

    people.drop_index("tags").unwrap();
    assert!(matches!(people.drop_index("tags"), Err(Error::NotFound { .. })));
    assert_eq!(people.explain(&tag).unwrap().chosen.access, "collection scan");
    assert_eq!(people.count(&Filter::eq("tags", "a").unwrap()).unwrap(), 2);
}

#[test]
fn unique_indexes_refuse_duplicates_but_not_a_documents_own_value() {
    let runtime = memory_runtime();
    let users = runtime.database("app").unwrap().collection("users").unwrap();
    let email = IndexDefinition::new("email", &["email"]).unwrap().unique();
    users.create_index(email).unwrap().wait().unwrap();
    users.insert(json(serde_json::json!({"id": "u1", "email": "a@x", "n": 1}))).unwrap();
    let duplicate = users.insert(json(serde_json::json!({"id": "u2", "email": "a@x"})));
    match duplicate {
        Err(Error::UniqueViolation { index, value, .. }) => {
            assert_eq!(index, "email");
            assert_eq!(value, "\"a@x\"");
        }
        other => panic!("expected a unique violation, got {other:?}"),
    }
    assert!(users.get("u2").unwrap().is_none(), "nothing of a refused write is kept");
    // Keeping one's own value is no violation; missing and null values are never duplicates.
    users.patch("u1", &nanodb::Patch::new().set("n", 2)).unwrap();
    users.replace("u1", json(serde_json::json!({"email": "a@x"}))).unwrap();
    users.insert(json(serde_json::json!({"id": "u3"}))).unwrap();
    users.insert(json(serde_json::json!({"id": "u4", "email": null}))).unwrap();
    users.insert(json(serde_json::json!({"id": "u5"}))).unwrap();
    // A value freed by a change or a delete can be taken.
    users.patch("u1", &nanodb::Patch::new().set("email", "b@x")).unwrap();
    users.insert(json(serde_json::json!({"id": "u6", "email": "a@x"}))).unwrap();
    users.delete("u6").unwrap();
    users.insert(json(serde_json::json!({"id": "u7", "email": "a@x"}))).unwrap();
    users.verify_indexes().unwrap();
    // Building a unique index over duplicates fails and leaves no index.
    let names = IndexDefinition::new("missing_everywhere", &["nothing"]).unwrap().unique();
    users.create_index(names).unwrap().wait().unwrap();
    users.insert(json(serde_json::json!({"id": "u8", "tag": "same"}))).unwrap();
    users.insert(json(serde_json::json!({"id": "u9", "tag": "same"}))).unwrap();
    let tags = IndexDefinition::new("tag", &["tag"]).unwrap().unique();
    let failed = users.create_index(tags).unwrap().wait();
    assert!(matches!(failed, Err(Error::UniqueViolation { .. })), "{failed:?}");
    assert!(users.indexes().iter().all(|index| index.definition.name != "tag"));
}

#[test]
fn concurrent_inserts_of_one_unique_value_have_one_winner() {
    let runtime = memory_runtime();
    let users = runtime.database("app").unwrap().collection("users").unwrap();
    let email = IndexDefinition::new("email", &["email"]).unwrap().unique();
    users.create_index(email).unwrap().wait().unwrap();
    for round in 0..20 {
        let value = format!("user{round}@x");
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let users = users.clone();
                    let value = value.clone();
                    scope.spawn(move || {
                        users.insert(json(serde_json::json!({"email": value}))).is_ok()
                    })
                })
                .collect();
            handles.into_iter().map(|handle| usize::from(handle.join().unwrap())).sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
    users.verify_indexes().unwrap();
}

#[test]
fn an_index_built_during_writes_misses_nothing() {
    let runtime = memory_runtime();
    let items = runtime.database("app").unwrap().collection("items").unwrap();
    let batch: Vec<Value> = (0..3_000).map(|n| json(serde_json::json!({"n": n % 97}))).collect();
    items.insert_many(batch).unwrap();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for n in 0..400 {
                let document = items.insert(json(serde_json::json!({"n": n}))).unwrap();
                if n % 3 == 0 {
                    items.patch(document.id(), &nanodb::Patch::new().increment("n", 1000)).unwrap();
                }
                if n % 5 == 0 {
                    items.delete(document.id()).unwrap();
                }
            }
        });
        let build = items.create_index(IndexDefinition::new("n", &["n"]).unwrap()).unwrap();
        build.wait().unwrap();
        writer.join().unwrap();
    });
    assert_eq!(items.verify_indexes().unwrap(), items.count(&Filter::True).unwrap());
    let high = Filter::compare("n", CompareOp::Gte, 1000).unwrap();
    let query = Query::new(high.clone());
    assert_eq!(items.explain(&query).unwrap().chosen.access, "index n");
    let scanned = items
        .documents()
        .unwrap()
        .filter(|d| d.as_ref().unwrap().get("n").and_then(Value::as_i64).unwrap() >= 1000);
    assert_eq!(items.count(&high).unwrap(), scanned.count() as u64);
}

#[test]
fn indexes_survive_reopen_and_an_interrupted_build_resumes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let runtime = nanodb::NanoDb::open(dir.path(), Default::default()).unwrap();
        let people = people(&runtime);
        people
            .create_index(IndexDefinition::new("age", &["age"]).unwrap())
            .unwrap()
            .wait()
            .unwrap();
        runtime.close().unwrap();
    }
    let runtime = nanodb::NanoDb::open(dir.path(), Default::default()).unwrap();
    let people = runtime.database("app").unwrap().collection("people").unwrap();
    let infos = people.indexes();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].status, IndexStatus::Ready);
    people.verify_indexes().unwrap();
    let query = Query::new(Filter::lt("age", 30).unwrap());
    assert_eq!(people.explain(&query).unwrap().chosen.access, "index age");
    assert_eq!(people.count(&Filter::lt("age", 30).unwrap()).unwrap(), 2);
}

#[test]
fn sort_memory_is_bounded() {
    let runtime = memory_runtime();
    let people = people(&runtime);
    let sorted =
        Query { sort_memory_bytes_max: 10, ..Query::new(Filter::True).sort(sort(&["age"])) };
    assert!(matches!(people.find(&sorted), Err(Error::LimitExceeded { .. })));
    let roomy = Query { sort_memory_bytes_max: 1 << 20, ..sorted };
    assert_eq!(people.find(&roomy).unwrap().documents.len(), 6);
}

#[test]
fn aggregations_group_count_sum_avg_min_max() {
    use nanodb::query::{Accumulator, Aggregation, FieldPath};
    let runtime = memory_runtime();
    let people = people(&runtime);
    let age = || FieldPath::parse("age").unwrap();
    let aggregation = Aggregation {
        filter: Filter::True,
        group_by: vec![FieldPath::parse("address.city").unwrap()],
        accumulators: vec![
            ("n".into(), Accumulator::Count),
            ("sum".into(), Accumulator::Sum(age())),
            ("avg".into(), Accumulator::Avg(age())),
            ("min".into(), Accumulator::Min(age())),
            ("max".into(), Accumulator::Max(age())),
        ],
    };
    let groups = people.aggregate(&aggregation).unwrap();
    let rows: Vec<serde_json::Value> = groups
        .iter()
        .map(|group| {
            let mut row = serde_json::Value::from(Value::Object(group.values.clone()));
            row["key"] = serde_json::Value::from(group.key[0].clone());
            row
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"key": null, "n": 1, "sum": 0, "avg": null, "min": null, "max": null}),
            serde_json::json!({"key": "oslo", "n": 2, "sum": 78, "avg": 39.0, "min": 31, "max": 47}),
            serde_json::json!({"key": "paris", "n": 1, "sum": 25, "avg": 25.0, "min": 25, "max": 25}),
            serde_json::json!({"key": "rome", "n": 2, "sum": 63, "avg": 31.5, "min": 25, "max": 38}),
        ]
    );
    let total = Aggregation {
        filter: Filter::gt("age", 30).unwrap(),
        group_by: vec![],
        accumulators: vec![("n".into(), Accumulator::Count)],
    };
    let groups = people.aggregate(&total).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].values["n"], Value::Int(3));
}

#[test]
fn aggregation_groups_are_bounded_at_the_limit() {
    use nanodb::query::{Accumulator, Aggregation, FieldPath, AGGREGATE_GROUPS_MAX};
    let runtime = memory_runtime();
    let numbers = runtime.database("app").unwrap().collection("numbers").unwrap();
    let all: Vec<i64> = (0..=AGGREGATE_GROUPS_MAX as i64).collect();
    for chunk in all.chunks(20_000) {
        numbers
            .insert_many(chunk.iter().map(|g| json(serde_json::json!({"g": g}))).collect())
            .unwrap();
    }
    let by_g = |filter: Filter| Aggregation {
        filter,
        group_by: vec![FieldPath::parse("g").unwrap()],
        accumulators: vec![("n".into(), Accumulator::Count)],
    };
    let at_limit = by_g(Filter::lt("g", AGGREGATE_GROUPS_MAX as i64).unwrap());
    assert_eq!(numbers.aggregate(&at_limit).unwrap().len(), AGGREGATE_GROUPS_MAX);
    let over = numbers.aggregate(&by_g(Filter::True));
    assert!(matches!(over, Err(Error::LimitExceeded { .. })), "{over:?}");
}

#[test]
fn finds_and_counts_stop_when_their_budget_is_spent_and_run_to_the_end_without_one() {
    use nanodb::query::{ReadBudget, DEADLINE_CHECK_ENTRIES};
    use std::time::{Duration, Instant};
    let runtime = memory_runtime();
    let items = runtime.database("app").unwrap().collection("items").unwrap();
    let total = DEADLINE_CHECK_ENTRIES * 20;
    let batch: Vec<Value> =
        (0..total).map(|n| json(serde_json::json!({"n": n, "group": n % 2}))).collect();
    items.insert_many(batch).unwrap();
    items.create_index(IndexDefinition::new("group", &["group"]).unwrap()).unwrap().wait().unwrap();
    let past = ReadBudget::until(Instant::now() - Duration::from_millis(1));
    let future = ReadBudget::until(Instant::now() + Duration::from_secs(3600));
    fn spent<T>(result: &Result<T, Error>) -> bool {
        matches!(result, Err(Error::BudgetExceeded { .. }))
    }
    let odd = Filter::eq("group", 1).unwrap();
    let unindexed = Filter::compare("n", CompareOp::Gte, 0).unwrap();
    // (filter, entries a find examines, entries a count examines)
    let cases =
        [(&odd, total / 2, total / 2), (&unindexed, total, total), (&Filter::True, total, total)];
    for (filter, find_entries, count_entries) in cases {
        let query = Query::new(filter.clone());
        let all = items.find(&query).unwrap().documents.len();
        let late = items.find(&query.clone().budget(past));
        assert!(spent(&late), "{filter:?}: {late:?}");
        assert_eq!(items.find(&query.clone().budget(future)).unwrap().documents.len(), all);
        let exact = query.clone().budget(ReadBudget::entries(find_entries));
        assert_eq!(items.find(&exact).unwrap().documents.len(), all, "{filter:?}");
        let short = items.find(&query.clone().budget(ReadBudget::entries(find_entries - 1)));
        assert!(spent(&short), "{filter:?}: {short:?}");
        let counted = items.count(filter).unwrap();
        assert_eq!(counted, all as u64);
        assert!(spent(&items.count_within(filter, past)), "{filter:?}");
        assert_eq!(items.count_within(filter, future).unwrap(), counted);
        assert_eq!(
            items.count_within(filter, ReadBudget::entries(count_entries)).unwrap(),
            counted
        );
        let short = items.count_within(filter, ReadBudget::entries(count_entries - 1));
        assert!(spent(&short), "{filter:?}: {short:?}");
    }
    // The clock is read every DEADLINE_CHECK_ENTRIES entries: a page shorter than that ends
    // before the first check, and a stopped read changed nothing.
    let half = DEADLINE_CHECK_ENTRIES as usize / 2;
    let page = Query::new(odd.clone()).limit(half).budget(past);
    assert_eq!(items.find(&page).unwrap().documents.len(), half);
    assert_eq!(items.count(&Filter::True).unwrap(), total);
    // Deleted documents between the live ones count too: their tombstones are entries the
    // storage iterator passes over, and a budget bounds those as well.
    let sparse = runtime.database("app").unwrap().collection("sparse").unwrap();
    let batch: Vec<Value> = (0..1_000).map(|n| json(serde_json::json!({"n": n}))).collect();
    let ids: Vec<String> =
        sparse.insert_many(batch).unwrap().iter().map(|doc| doc.id().to_string()).collect();
    for id in &ids[..990] {
        sparse.delete(id).unwrap();
    }
    let small = ReadBudget::entries(100);
    assert!(spent(&sparse.find(&Query::new(Filter::True).budget(small))));
    assert!(spent(&sparse.count_within(&Filter::True, small)));
    let large = ReadBudget::entries(10_000);
    assert_eq!(sparse.find(&Query::new(Filter::True).budget(large)).unwrap().documents.len(), 10);
    assert_eq!(sparse.count_within(&Filter::True, large).unwrap(), 10);
    let error = Error::BudgetExceeded { spent: "deadline" };
    assert_eq!(error.to_string(), "the read stopped when its budget ran out (deadline)");
}

#[test]
fn a_plan_probe_over_many_deleted_entries_stops_and_counts_as_the_maximum() {
    use nanodb::query::{PLAN_PROBE_ENTRIES_MAX, PLAN_PROBE_STEPS_MAX};
    let runtime = memory_runtime();
    let items = runtime.database("app").unwrap().collection("items").unwrap();
    items.create_index(IndexDefinition::new("g", &["g"]).unwrap()).unwrap().wait().unwrap();
    // Each deleted document leaves its index entry and a tombstone over it: two stored
    // entries the probe passes over.
    let deleted = PLAN_PROBE_STEPS_MAX / 2 + 1;
    let total = deleted + 10;
    let batch: Vec<Value> = (0..total).map(|_| json(serde_json::json!({"g": 1}))).collect();
    let ids: Vec<String> =
        items.insert_many(batch).unwrap().iter().map(|doc| doc.id().to_string()).collect();
    let one = Query::new(Filter::eq("g", 1).unwrap());
    let estimate = |items: &Collection| {
        let plan = items.explain(&one).unwrap();
        plan.considered.iter().find(|a| a.access == "index g").and_then(|a| a.estimate)
    };
    assert_eq!(estimate(&items), Some(PLAN_PROBE_ENTRIES_MAX as u64), "live entries: capped");
    for id in &ids[..deleted as usize] {
        items.delete(id).unwrap();
    }
    assert_eq!(estimate(&items), Some(PLAN_PROBE_ENTRIES_MAX as u64), "tombstones: the max");
    assert_eq!(items.find(&one).unwrap().documents.len(), 10);
    // Fewer tombstones than the step limit: the probe counts the live entries exactly.
    let few = runtime.database("app").unwrap().collection("few").unwrap();
    few.create_index(IndexDefinition::new("g", &["g"]).unwrap()).unwrap().wait().unwrap();
    let batch: Vec<Value> = (0..110).map(|_| json(serde_json::json!({"g": 1}))).collect();
    let ids: Vec<String> =
        few.insert_many(batch).unwrap().iter().map(|doc| doc.id().to_string()).collect();
    for id in &ids[..100] {
        few.delete(id).unwrap();
    }
    assert_eq!(estimate(&few), Some(10));
}
