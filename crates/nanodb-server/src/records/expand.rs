//! The `expand` query parameter: relation fields replaced, under the record's `expand` key,
//! by the records they point to, nested up to `EXPAND_DEPTH_MAX` levels
//! (`expand=author,comments.user`).
//!
//! Each expanded record passes its own collection's view rule for the requester, checked
//! with `@request.context` = `expand` (a locked rule hides it from non-superusers), so
//! expand never shows a record the requester could not view directly; it is exported as the
//! record routes export it (hidden fields only to superusers). A hidden relation field is
//! not expanded for non-superusers. Records missing or hidden are left out; a single
//! relation becomes an object, a multiple one an array in the relation's order. Names that
//! are not relation fields are ignored, as PocketBase does.
//!
//! Thread safety: reads the database; run from a blocking thread.
//!
//! Invariant: one response holds at most `EXPAND_RECORDS_MAX` expanded records, every copy
//! counted; the count is checked before each copy is made, so a request past it costs at
//! most that many copies before its 400.

use super::export::{export, Email};
use crate::error::{Error, Result, MESSAGE_BAD_REQUEST};
use crate::records::values::items;
use crate::rules::access_or_nothing;
use crate::rules::context::{variables, RequestFacts, CONTEXT_EXPAND};
use crate::schema::field::FieldKind;
use crate::schema::{CollectionDef, DefinitionsSnapshot};
use crate::state::AppState;
use nanodb::Document;
use serde_json::{Map as JsonMap, Value as Json};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Deepest expand path (`a.b.c.d.e.f`).
pub const EXPAND_DEPTH_MAX: usize = 6;
/// Most paths in one `expand` parameter.
pub const EXPAND_PATHS_MAX: usize = 32;
/// Most expanded records one response may hold, every copy counted: a record expanded
/// under two parents counts twice, since each parent's JSON holds its own copy of the
/// subtree below it (a self-relation of f ids expanded 6 levels deep would otherwise hold
/// f^6 records). Past it the request is a 400.
pub const EXPAND_RECORDS_MAX: usize = 10_000;

/// A parsed `expand` parameter: relation names, each with what to expand below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpandTree {
    children: BTreeMap<String, ExpandTree>,
}

impl ExpandTree {
    /// Parses `expand`; `None` for a blank parameter.
    pub fn parse(text: Option<&str>) -> Result<Option<ExpandTree>> {
        let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(None);
        };
        let bad = |detail: String| {
            Error::bad_request(format!("{MESSAGE_BAD_REQUEST} (expand: {detail})"))
        };
        let paths: Vec<&str> = text.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        if paths.len() > EXPAND_PATHS_MAX {
            return Err(bad(format!("more than {EXPAND_PATHS_MAX} paths")));
        }
        let mut root = ExpandTree::default();
        for path in paths {
            let segments: Vec<&str> = path.split('.').collect();
            if segments.len() > EXPAND_DEPTH_MAX || segments.iter().any(|s| s.is_empty()) {
                return Err(bad(format!("{path:?} is empty or deeper than {EXPAND_DEPTH_MAX}")));
            }
            let mut node = &mut root;
            for segment in segments {
                node = node.children.entry(segment.to_string()).or_default();
            }
        }
        Ok(Some(root))
    }
}

/// Adds `expand` to `outputs`, the record JSON of `documents` (same order) of `def`; 400 if
/// the response would hold more than `EXPAND_RECORDS_MAX` expanded records.
pub fn expand(
    state: &AppState,
    snapshot: &DefinitionsSnapshot,
    def: &CollectionDef,
    documents: &[Document],
    outputs: &mut [JsonMap<String, Json>],
    tree: &ExpandTree,
    facts: &RequestFacts,
) -> Result<()> {
    let facts = RequestFacts { context: CONTEXT_EXPAND, ..*facts };
    let level = Level { state, snapshot, facts: &facts, records_max: EXPAND_RECORDS_MAX };
    level.expand(def, documents, outputs, tree).map(|_| ())
}

/// What every level of one expansion shares.
struct Level<'a> {
    state: &'a AppState,
    snapshot: &'a DefinitionsSnapshot,
    facts: &'a RequestFacts<'a>,
    records_max: usize,
}

impl Level<'_> {
    /// Expands `tree` below `documents` into `outputs`; how many expanded records (copies
    /// included) each output now holds.
    fn expand(
        &self,
        def: &CollectionDef,
        documents: &[Document],
        outputs: &mut [JsonMap<String, Json>],
        tree: &ExpandTree,
    ) -> Result<Vec<usize>> {
        let requester = self.facts.requester;
        let mut counts = vec![0usize; documents.len()];
        let mut total = 0usize;
        for (name, below) in &tree.children {
            let Some(field) = def.field(name) else { continue };
            if field.hidden && !requester.is_superuser() {
                continue;
            }
            let FieldKind::Relation { collection_id, .. } = &field.kind else { continue };
            let Some(target) = self.snapshot.by_id(collection_id) else { continue };
            let related = self.related(&target, documents, name)?;
            let mut related_outputs: Vec<JsonMap<String, Json>> = related
                .iter()
                .map(|document| export(&target, document, requester, Email::ByVisibility))
                .collect();
            let below_counts = self.expand(&target, &related, &mut related_outputs, below)?;
            let by_id: HashMap<&str, (Json, usize)> = related
                .iter()
                .zip(related_outputs)
                .zip(below_counts)
                .map(|((document, output), below)| {
                    (document.id(), (Json::Object(output), below.saturating_add(1)))
                })
                .collect();
            for ((document, output), count) in
                documents.iter().zip(outputs.iter_mut()).zip(&mut counts)
            {
                let ids = document.get(name).map(items).unwrap_or_default();
                let mut picked: Vec<&(Json, usize)> =
                    ids.iter().filter_map(|id| by_id.get(id)).collect();
                if !field.kind.is_multiple() {
                    picked = picked.pop().into_iter().collect();
                }
                if picked.is_empty() {
                    continue;
                }
                // Counted before anything is copied: past the cap, nothing more is built.
                let added = picked.iter().fold(0usize, |sum, (_, n)| sum.saturating_add(*n));
                total = total.saturating_add(added);
                if total > self.records_max {
                    return Err(too_many_records(self.records_max));
                }
                *count += added;
                let value = match field.kind.is_multiple() {
                    true => Json::Array(picked.iter().map(|(json, _)| json.clone()).collect()),
                    false => picked[0].0.clone(),
                };
                let slot = output.entry("expand").or_insert_with(|| Json::Object(JsonMap::new()));
                if let Json::Object(map) = slot {
                    map.insert(name.clone(), value);
                }
            }
        }
        Ok(counts)
    }

    /// The distinct records of `target` that relation `name` of `documents` points to and
    /// the requester may view; 400 past `records_max` of them.
    fn related(
        &self,
        target: &CollectionDef,
        documents: &[Document],
        name: &str,
    ) -> Result<Vec<Document>> {
        let facts = self.facts;
        let view = access_or_nothing(
            &target.rules.view,
            facts.requester,
            &variables(facts, target, None),
        )?;
        let records = self.state.definitions.records(target)?;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut found = Vec::new();
        for document in documents {
            for id in document.get(name).map(items).unwrap_or_default() {
                if !seen.insert(id) || nanodb::names::check_document_id(id).is_err() {
                    continue;
                }
                if let Some(related) =
                    records.get(id)?.filter(|related| view.allows(related.fields()))
                {
                    if found.len() == self.records_max {
                        return Err(too_many_records(self.records_max));
                    }
                    found.push(related);
                }
            }
        }
        Ok(found)
    }
}

fn too_many_records(records_max: usize) -> Error {
    Error::bad_request(format!(
        "{MESSAGE_BAD_REQUEST} (expand: more than {records_max} expanded records)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requester::{AuthRecord, Requester};
    use crate::http::query::QueryParams;
    use crate::schema::defaults;
    use crate::test_support::TestState;
    use axum::http::HeaderMap;
    use nanodb::Value;
    use serde_json::json;
    use std::sync::Arc;

    const IDS: [&str; 5] =
        ["node00000000000", "node00000000001", "node00000000002", "node00000000003", "node4"];

    /// `nodes`, every one related to all five (itself too), with a hidden field and a
    /// hidden relation; its view rule lets only expand read it.
    fn nodes(test: &TestState) -> (Arc<CollectionDef>, Vec<Document>) {
        let def = test.create_collection(json!({"name": "nodes", "listRule": "",
            "viewRule": "@request.context = 'expand'",
            "fields": [
                {"name": "next", "type": "relation", "collectionId": "nodes", "maxSelect": 5},
                {"name": "secret", "type": "text", "hidden": true},
                {"name": "back", "type": "relation", "collectionId": "nodes", "hidden": true}]}));
        let records = test.state.definitions.records(&def).unwrap();
        let documents = IDS
            .iter()
            .map(|id| {
                let fields = json!({"id": id, "next": IDS, "secret": "s", "back": IDS[0]});
                records.insert(Value::from(fields)).unwrap()
            })
            .collect();
        (def, documents)
    }

    fn run(
        test: &TestState,
        def: &CollectionDef,
        documents: &[Document],
        expand: &str,
        requester: &Requester,
        records_max: usize,
    ) -> Result<Vec<JsonMap<String, Json>>> {
        let (query, headers, body) = (QueryParams::default(), HeaderMap::new(), JsonMap::new());
        let facts = RequestFacts {
            method: "GET",
            context: CONTEXT_EXPAND,
            query: &query,
            headers: &headers,
            body: &body,
            requester,
        };
        let snapshot = test.state.definitions.snapshot();
        let level = Level { state: &test.state, snapshot: &snapshot, facts: &facts, records_max };
        let mut outputs: Vec<_> = documents
            .iter()
            .map(|document| export(def, document, requester, Email::ByVisibility))
            .collect();
        let tree = ExpandTree::parse(Some(expand)).unwrap().unwrap();
        level.expand(def, documents, &mut outputs, &tree)?;
        Ok(outputs)
    }

    /// One record, five related, each with five below: 5 + 25 = 30 records.
    #[test]
    fn expanded_records_are_capped_at_the_boundary() {
        let test = TestState::new();
        let (def, documents) = nodes(&test);
        let one = &documents[..1];
        let guest = Requester::Guest;
        let outputs = run(&test, &def, one, "next.next", &guest, 30).unwrap();
        let next = outputs[0]["expand"]["next"].as_array().unwrap();
        assert_eq!(next.len(), 5, "the view rule passes in the expand context");
        assert_eq!(next[2]["expand"]["next"].as_array().unwrap().len(), 5);
        let error = run(&test, &def, one, "next.next", &guest, 29).unwrap_err();
        assert_eq!(error.status().as_u16(), 400);
        assert!(error.to_string().contains("more than 29 expanded records"), "{error}");
        // The shipped cap: a self-relation six levels deep (5 x 19530 records) is refused.
        let deep = ["next"; EXPAND_DEPTH_MAX].join(".");
        let error = run(&test, &def, &documents, &deep, &guest, EXPAND_RECORDS_MAX).unwrap_err();
        assert_eq!(error.status().as_u16(), 400);
    }

    #[test]
    fn hidden_relations_and_fields_are_for_superusers() {
        let test = TestState::new();
        let (def, documents) = nodes(&test);
        let guest = Requester::Guest;
        let outputs = run(&test, &def, &documents[..1], "back,next", &guest, 100).unwrap();
        let expanded = outputs[0]["expand"].as_object().unwrap();
        assert!(!expanded.contains_key("back"), "a hidden relation is not expanded");
        assert!(!expanded["next"][0].as_object().unwrap().contains_key("secret"));
        let document = crate::test_support::document(json!({"id": "root"}));
        let collection = Arc::new(defaults::superusers());
        let superuser = Requester::Superuser(AuthRecord { collection, document });
        let outputs = run(&test, &def, &documents[..1], "back,next", &superuser, 100).unwrap();
        assert_eq!(outputs[0]["expand"]["back"]["id"], IDS[0]);
        assert_eq!(outputs[0]["expand"]["next"][0]["secret"], "s");
    }

    #[test]
    fn expand_paths_parse_with_limits() {
        let tree = ExpandTree::parse(Some("author, comments.user,comments.post")).unwrap().unwrap();
        assert_eq!(tree.children.len(), 2);
        assert_eq!(tree.children["comments"].children.len(), 2);
        assert_eq!(ExpandTree::parse(Some(" ")).unwrap(), None);
        let deepest = ["a"; EXPAND_DEPTH_MAX].join(".");
        assert!(ExpandTree::parse(Some(&deepest)).is_ok());
        assert!(ExpandTree::parse(Some(&format!("{deepest}.a"))).is_err());
        assert!(ExpandTree::parse(Some("a..b")).is_err());
        let most = ["a"; EXPAND_PATHS_MAX].join(",");
        assert!(ExpandTree::parse(Some(&most)).is_ok());
        assert!(ExpandTree::parse(Some(&format!("{most},b"))).is_err());
    }
}
