//! Random documents and random filters, run by the engine (with and without indexes, sorted
//! and paged) and by a small reference evaluator written here from the documented rules;
//! the results must agree exactly. Also: after random writes, power cuts and reopens, every
//! index agrees with the documents.

use crate::common::{base_seed, json, scale, with_seed, Rng};
use nanodb::query::{CompareOp, FieldPath, Filter, Operand, Quantifier, Query, SortKey};
use nanodb::{Collection, IndexDefinition, NanoDb, NanoDbOptions};
use nanodb_storage::fs::{CrashMode, SimFs};
use std::cmp::Ordering;
use std::sync::Arc;

const FIELDS: [&str; 5] = ["a", "b", "c", "tags", "n.x"];

fn random_scalar(rng: &mut Rng) -> serde_json::Value {
    match rng.below(7) {
        0 => serde_json::Value::Null,
        1 | 2 => serde_json::json!(rng.below(6) as i64 - 1),
        3 => serde_json::json!(rng.below(6) as f64 / 2.0),
        4 | 5 => serde_json::json!(["x", "y", "z", ""][rng.below(4) as usize]),
        _ => serde_json::json!(rng.below(2) == 0),
    }
}

fn random_document(rng: &mut Rng, id: usize) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("id".into(), serde_json::json!(format!("d{id:04}")));
    for field in ["a", "b", "c"] {
        if rng.below(5) > 0 {
            map.insert(field.into(), random_scalar(rng));
        }
    }
    if rng.below(3) > 0 {
        let items: Vec<_> = (0..rng.below(4)).map(|_| random_scalar(rng)).collect();
        map.insert("tags".into(), serde_json::Value::Array(items));
    }
    if rng.below(2) == 0 {
        map.insert("n".into(), serde_json::json!({"x": random_scalar(rng)}));
    }
    serde_json::Value::Object(map)
}

fn random_filter(rng: &mut Rng, depth: usize) -> Filter {
    let path = |rng: &mut Rng| FieldPath::parse(FIELDS[rng.below(5) as usize]).unwrap();
    let choice = if depth >= 3 { rng.below(5) } else { rng.below(8) };
    match choice {
        0..=2 => {
            let ops = [
                CompareOp::Eq,
                CompareOp::Ne,
                CompareOp::Gt,
                CompareOp::Gte,
                CompareOp::Lt,
                CompareOp::Lte,
            ];
            Filter::Compare {
                left: Operand::field(path(rng)),
                op: ops[rng.below(6) as usize],
                right: Operand::Value(json(random_scalar(rng))),
                quantifier: if rng.below(3) == 0 { Quantifier::All } else { Quantifier::Any },
            }
        }
        3 => Filter::In {
            path: path(rng),
            values: (0..rng.below(3) + 1).map(|_| json(random_scalar(rng))).collect(),
        },
        4 => match rng.below(2) {
            0 => Filter::Exists { path: path(rng) },
            _ => Filter::Empty { path: path(rng) },
        },
        5 => Filter::And((0..rng.below(3) + 1).map(|_| random_filter(rng, depth + 1)).collect()),
        6 => Filter::Or((0..rng.below(3) + 1).map(|_| random_filter(rng, depth + 1)).collect()),
        _ => Filter::Not(Box::new(random_filter(rng, depth + 1))),
    }
}

// ---- The reference: the documented rules, written plainly over JSON. ----

fn lookup<'a>(document: &'a serde_json::Value, path: &FieldPath) -> Vec<&'a serde_json::Value> {
    // The generated paths go through objects only (n.x), never through arrays.
    let mut current = document;
    for segment in path.segments() {
        match current.get(segment) {
            Some(next) => current = next,
            None => return Vec::new(),
        }
    }
    vec![current]
}

fn rank(value: &serde_json::Value) -> u8 {
    match value {
        serde_json::Value::Null => 0,
        serde_json::Value::Number(_) => 1,
        serde_json::Value::String(_) => 2,
        serde_json::Value::Object(_) => 3,
        serde_json::Value::Array(_) => 4,
        serde_json::Value::Bool(_) => 5,
    }
}

fn reference_compare(a: &serde_json::Value, b: &serde_json::Value) -> Ordering {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => {
            x.as_f64().unwrap().partial_cmp(&y.as_f64().unwrap()).unwrap()
        }
        (serde_json::Value::String(x), serde_json::Value::String(y)) => x.cmp(y),
        (serde_json::Value::Bool(x), serde_json::Value::Bool(y)) => x.cmp(y),
        (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let order = reference_compare(p, q);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn reference_holds(value: &serde_json::Value, op: CompareOp, literal: &serde_json::Value) -> bool {
    let order = reference_compare(value, literal);
    let same_type = rank(value) == rank(literal);
    match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Gt => same_type && order == Ordering::Greater,
        CompareOp::Gte => same_type && order != Ordering::Less,
        CompareOp::Lt => same_type && order == Ordering::Less,
        CompareOp::Lte => same_type && order != Ordering::Greater,
    }
}

fn reference_matches(filter: &Filter, document: &serde_json::Value) -> bool {
    let null = serde_json::Value::Null;
    match filter {
        Filter::True => true,
        Filter::False => false,
        Filter::And(all) => all.iter().all(|f| reference_matches(f, document)),
        Filter::Or(any) => any.iter().any(|f| reference_matches(f, document)),
        Filter::Not(inner) => !reference_matches(inner, document),
        Filter::Compare {
            left: Operand::Field { path, .. },
            op,
            right: Operand::Value(literal),
            quantifier,
        } => {
            let literal = serde_json::Value::from(literal.clone());
            let found = lookup(document, path);
            let value = found.first().copied().unwrap_or(&null);
            match (value, quantifier) {
                (serde_json::Value::Array(items), Quantifier::Any) => {
                    reference_holds(value, *op, &literal)
                        || items.iter().any(|item| reference_holds(item, *op, &literal))
                }
                (serde_json::Value::Array(items), Quantifier::All) => {
                    !items.is_empty()
                        && items.iter().all(|item| reference_holds(item, *op, &literal))
                }
                _ => reference_holds(value, *op, &literal),
            }
        }
        Filter::In { path, values } => values.iter().any(|wanted| {
            let eq = Filter::Compare {
                left: Operand::field(path.clone()),
                op: CompareOp::Eq,
                right: Operand::Value(wanted.clone()),
                quantifier: Quantifier::Any,
            };
            reference_matches(&eq, document)
        }),
        Filter::Exists { path } => !lookup(document, path).is_empty(),
        Filter::Empty { path } => match lookup(document, path).first() {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::String(text)) => text.is_empty(),
            Some(serde_json::Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        },
        other => panic!("the reference does not know {other:?}"),
    }
}

fn reference_sort_value(document: &serde_json::Value, path: &FieldPath) -> serde_json::Value {
    lookup(document, path).first().map_or(serde_json::Value::Null, |value| (*value).clone())
}

fn sorted_reference(
    documents: &[serde_json::Value],
    filter: &Filter,
    sort: &[SortKey],
) -> Vec<String> {
    let mut hits: Vec<&serde_json::Value> =
        documents.iter().filter(|document| reference_matches(filter, document)).collect();
    hits.sort_by(|x, y| {
        for key in sort {
            let order = reference_compare(
                &reference_sort_value(x, &key.path),
                &reference_sort_value(y, &key.path),
            );
            if order != Ordering::Equal {
                return if key.descending { order.reverse() } else { order };
            }
        }
        x["id"].as_str().cmp(&y["id"].as_str())
    });
    hits.iter().map(|document| document["id"].as_str().unwrap().to_string()).collect()
}

fn found_ids(collection: &Collection, query: &Query) -> Vec<String> {
    let page = collection.find(query).unwrap();
    page.documents.iter().map(|document| document.id().to_string()).collect()
}

#[test]
fn random_filters_agree_with_the_reference_with_and_without_indexes() {
    let cases = 3_000 * scale();
    with_seed("query_model", base_seed(), |seed| {
        let mut rng = Rng::new(seed);
        let runtime = NanoDb::in_memory(NanoDbOptions::default()).unwrap();
        let database = runtime.database("model").unwrap();
        let plain = database.collection("plain").unwrap();
        let indexed = database.collection("indexed").unwrap();
        for (name, fields) in [
            ("a", vec!["a"]),
            ("b_desc", vec!["-b"]),
            ("tags", vec!["tags"]),
            ("nx", vec!["n.x"]),
            ("ab", vec!["a", "-c"]),
            ("ba", vec!["b", "a"]),
        ] {
            indexed
                .create_index(IndexDefinition::new(name, &fields).unwrap())
                .unwrap()
                .wait()
                .unwrap();
        }
        let documents: Vec<serde_json::Value> =
            (0..400).map(|id| random_document(&mut rng, id)).collect();
        for document in &documents {
            plain.insert(json(document.clone())).unwrap();
            indexed.insert(json(document.clone())).unwrap();
        }
        indexed.verify_indexes().unwrap();
        let mut used_index = 0;
        for case in 0..cases {
            let filter = random_filter(&mut rng, 0);
            let sort: Vec<SortKey> = (0..rng.below(3))
                .map(|_| SortKey {
                    path: FieldPath::parse(FIELDS[rng.below(5) as usize]).unwrap(),
                    descending: rng.below(2) == 0,
                })
                .collect();
            let expected = sorted_reference(&documents, &filter, &sort);
            let query = Query::new(filter.clone()).sort(sort.clone());
            let context = format!("case {case}: filter {filter:?}, sort {sort:?}");
            for collection in [&plain, &indexed] {
                let mut found = found_ids(collection, &query);
                if sort.is_empty() {
                    found.sort();
                }
                assert_eq!(found, expected, "{context}, {}", collection.explain(&query).unwrap());
                assert_eq!(collection.count(&filter).unwrap(), expected.len() as u64, "{context}");
            }
            if indexed.explain(&query).unwrap().chosen.access.starts_with("index") {
                used_index += 1;
            }
            if !sort.is_empty() {
                let (offset, limit) = (rng.below(5) as usize, rng.below(7) as usize + 1);
                let page = Query { offset, limit: Some(limit), ..query.clone() };
                let window: Vec<String> =
                    expected.iter().skip(offset).take(limit).cloned().collect();
                assert_eq!(
                    found_ids(&indexed, &page),
                    window,
                    "{context}, offset {offset}, limit {limit}"
                );
            }
        }
        assert!(used_index > cases / 10, "indexes served only {used_index} of {cases} queries");
    });
}

#[test]
fn indexes_agree_with_documents_after_writes_power_cuts_and_reopens() {
    let rounds = 6 * scale();
    with_seed("index_crash_model", base_seed(), |seed| {
        let mut rng = Rng::new(seed);
        let mut sim = SimFs::new();
        let open = |sim: &SimFs| {
            NanoDb::with_fs(
                std::path::Path::new("/db"),
                Arc::new(sim.clone()),
                NanoDbOptions::default(),
            )
            .unwrap()
        };
        for round in 0..rounds {
            let runtime = open(&sim);
            let items = runtime.database("app").unwrap().collection("items").unwrap();
            if round == 0 {
                items
                    .create_index(IndexDefinition::new("a", &["a"]).unwrap())
                    .unwrap()
                    .wait()
                    .unwrap();
                items
                    .create_index(IndexDefinition::new("tags", &["tags", "-b"]).unwrap())
                    .unwrap()
                    .wait()
                    .unwrap();
            }
            if round == 2 {
                // Left building when the power goes: the next open resumes it.
                items.create_index(IndexDefinition::new("late", &["c"]).unwrap()).unwrap();
            }
            for _ in 0..150 {
                let id = format!("d{:03}", rng.below(60));
                let document = json(random_document(&mut rng, 0));
                let result = match rng.below(4) {
                    0 => items.delete(&id).map(|_| ()),
                    _ => items.upsert(&id, document).map(|_| ()),
                };
                result.unwrap();
            }
            items.verify_indexes().unwrap_or_else(|error| panic!("round {round}: {error}"));
            counts_agree_with_finds(&items, &format!("round {round}"));
            drop(items);
            let image = sim.crash_image(CrashMode::DropUnsynced);
            drop(runtime);
            sim = image;
        }
        let runtime = open(&sim);
        let items = runtime.database("app").unwrap().collection("items").unwrap();
        for info in items.indexes() {
            if info.status != nanodb::IndexStatus::Ready {
                // Wait for the resumed build through a fresh handle: poll until ready.
                for _ in 0..1_000 {
                    if items.indexes().iter().all(|i| i.status == nanodb::IndexStatus::Ready) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        assert!(items.indexes().iter().all(|i| i.status == nanodb::IndexStatus::Ready));
        assert_eq!(items.indexes().len(), 3);
        items.verify_indexes().unwrap();
        counts_agree_with_finds(&items, "after the last reopen");
    });
}

/// Counts of equalities on indexed fields (which an index answers by its entries alone while
/// no document has several entries in it) equal the number of documents found.
fn counts_agree_with_finds(items: &Collection, context: &str) {
    let values = [serde_json::json!(0), serde_json::json!(1.5), serde_json::json!("x")];
    for field in ["a", "tags", "c"] {
        for value in &values {
            for quantifier in [Quantifier::All, Quantifier::Any] {
                let filter = Filter::Compare {
                    left: Operand::field(FieldPath::parse(field).unwrap()),
                    op: CompareOp::Eq,
                    right: Operand::Value(json(value.clone())),
                    quantifier,
                };
                let found = items.find(&Query::new(filter.clone())).unwrap().documents.len();
                let counted = items.count(&filter).unwrap();
                assert_eq!(counted, found as u64, "{context}: {filter:?}");
            }
        }
    }
}
