//! The `expand` query parameter: relation fields replaced, under the record's `expand` key,
//! by the records they point to, nested up to `EXPAND_DEPTH_MAX` levels
//! (`expand=author,comments.user`).
//!
//! Each expanded record passes its own collection's view rule for the requester (a locked
//! rule hides it from non-superusers), so expand never shows a record the requester could
//! not view directly. Records missing or hidden are left out; a single relation becomes an
//! object, a multiple one an array in the relation's order. Names that are not relation
//! fields are ignored, as PocketBase does.
//!
//! Thread safety: reads the database; run from a blocking thread.

use super::export::{export, Email};
use crate::error::{Error, Result, MESSAGE_BAD_REQUEST};
use crate::records::values::items;
use crate::rules::access_or_nothing;
use crate::rules::context::{variables, RequestFacts};
use crate::schema::field::FieldKind;
use crate::schema::{CollectionDef, DefinitionsSnapshot};
use crate::state::AppState;
use nanodb::Document;
use serde_json::{Map as JsonMap, Value as Json};
use std::collections::{BTreeMap, HashMap};

/// Deepest expand path (`a.b.c.d.e.f`).
pub const EXPAND_DEPTH_MAX: usize = 6;
/// Most paths in one `expand` parameter.
pub const EXPAND_PATHS_MAX: usize = 32;

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

/// Adds `expand` to `outputs`, the record JSON of `documents` (same order) of `def`.
pub fn expand(
    state: &AppState,
    snapshot: &DefinitionsSnapshot,
    def: &CollectionDef,
    documents: &[Document],
    outputs: &mut [JsonMap<String, Json>],
    tree: &ExpandTree,
    facts: &RequestFacts,
) -> Result<()> {
    for (name, below) in &tree.children {
        let Some(field) = def.field(name) else { continue };
        let FieldKind::Relation { collection_id, .. } = &field.kind else { continue };
        let Some(target) = snapshot.by_id(collection_id) else { continue };
        let view = access_or_nothing(
            &target.rules.view,
            facts.requester,
            &variables(facts, &target, None),
        )?;
        let records = state.definitions.records(&target)?;
        let mut found: HashMap<String, Document> = HashMap::new();
        for document in documents {
            for id in document.get(name).map(items).unwrap_or_default() {
                if found.contains_key(id) || nanodb::names::check_document_id(id).is_err() {
                    continue;
                }
                if let Some(related) =
                    records.get(id)?.filter(|related| view.allows(related.fields()))
                {
                    found.insert(id.to_string(), related);
                }
            }
        }
        let related: Vec<Document> = found.values().cloned().collect();
        let mut related_outputs: Vec<JsonMap<String, Json>> = related
            .iter()
            .map(|document| export(&target, document, facts.requester, Email::ByVisibility))
            .collect();
        expand(state, snapshot, &target, &related, &mut related_outputs, below, facts)?;
        let by_id: HashMap<&str, Json> = related
            .iter()
            .zip(related_outputs)
            .map(|(document, output)| (document.id(), Json::Object(output)))
            .collect();
        for (document, output) in documents.iter().zip(outputs.iter_mut()) {
            let ids = document.get(name).map(items).unwrap_or_default();
            let mut values: Vec<Json> =
                ids.iter().filter_map(|id| by_id.get(id).cloned()).collect();
            let value = if field.kind.is_multiple() {
                if values.is_empty() {
                    continue;
                }
                Json::Array(values)
            } else {
                match values.pop() {
                    Some(value) => value,
                    None => continue,
                }
            };
            let slot = output.entry("expand").or_insert_with(|| Json::Object(JsonMap::new()));
            if let Json::Object(map) = slot {
                map.insert(name.clone(), value);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
