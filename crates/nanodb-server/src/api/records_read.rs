//! `GET /api/collections/{c}/records` (list) and `GET .../records/{id}` (view).
//!
//! List: the list rule (403 if locked for the caller) is ANDed with the client's `filter`;
//! both are nanodb filters (`parse_filter`), run by nanodb's query planner with `sort`,
//! the page's offset and `perPage` as the limit; `totalItems` is nanodb's count of the same
//! filter unless `skipTotal`. A non-superuser's filter or sort may not mention `@request.`
//! or `@collection.` (403) nor hidden fields (400). Without `sort`, records come in id order.
//!
//! View: the view rule (403 if locked) must match the record, else 404 as if it did not
//! exist.
//!
//! Thread safety: a list or view without `expand` runs first on the async worker, within a
//! budget of entries (`state::read_inline_first`); with `expand`, or past the budget, on a
//! blocking thread.

use super::{collection, Call, Segments};
use crate::auth::requester::Requester;
use crate::error::{Error, Result};
use crate::http::query::ListParams;
use crate::http::response::{json_text, ok_text};
use crate::records::expand::{expand, ExpandTree};
use crate::records::export::{export, Email};
use crate::records::picker::Picker;
use crate::records::record_json::RecordJson;
use crate::rules::access;
use crate::rules::context::{variables, RequestFacts};
use crate::schema::paths::{check_filter, check_sort, PathAccess};
use crate::schema::CollectionDef;
use crate::state::{blocking, read_inline_first, AppState};
use axum::extract::{Request, State};
use axum::response::Response;
use nanodb::query::{parse_filter, parse_sort, Filter, FilterContext, Params, ReadBudget};
use nanodb::Document;
use serde_json::{Map as JsonMap, Value as Json};
use std::sync::Arc;

/// `GET /api/collections/{c}/records`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Segments(key): Segments<String>,
    request: Request,
) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    if has_expand(&call) {
        let work = move |state: &AppState| list_records(state, &key, &call, ReadBudget::UNLIMITED);
        return blocking(&state, work).await.map(ok_text);
    }
    let work = move |state: &AppState, budget| list_records(state, &key, &call, budget);
    read_inline_first(&state, work).await.map(ok_text)
}

/// `GET /api/collections/{c}/records/{id}`.
pub async fn view(
    State(state): State<Arc<AppState>>,
    Segments((key, id)): Segments<(String, String)>,
    request: Request,
) -> Result<Response> {
    let call = Call::read(&state, request).await?;
    let expand = has_expand(&call);
    let work = move |state: &AppState| view_record(state, &key, &id, &call);
    if expand {
        return blocking(&state, work).await.map(ok_text);
    }
    // One point read: it runs on the worker whatever the budget.
    read_inline_first(&state, move |state, _| work(state)).await.map(ok_text)
}

/// True if the call asks for related records (`expand`): its reads are not bounded by a
/// budget, so it goes straight to a blocking thread.
fn has_expand(call: &Call) -> bool {
    call.query.get("expand").is_some_and(|text| !text.trim().is_empty())
}

/// The client's filter and sort, checked: `@request.` and `@collection.` are for
/// superusers (403), paths must be the collection's (400).
pub fn client_query(
    def: &CollectionDef,
    params: &ListParams,
    requester: &Requester,
    variables: &nanodb::Map,
) -> Result<(Filter, Vec<nanodb::query::SortKey>)> {
    let superuser = requester.is_superuser();
    for text in [&params.filter, &params.sort].into_iter().flatten() {
        for prefix in ["@request.", "@collection."] {
            if !superuser && text.contains(prefix) {
                return Err(Error::Forbidden(format!("Only superusers can filter by {prefix}")));
            }
        }
    }
    let path_access = if superuser { PathAccess::All } else { PathAccess::Visible };
    let bad = Error::invalid_filter;
    let filter = match &params.filter {
        None => Filter::True,
        Some(text) => {
            let params = Params::new();
            let filter = parse_filter(text, &FilterContext::new(&params, variables))?;
            check_filter(def, &filter, path_access).map_err(bad)?;
            filter
        }
    };
    let sort = match &params.sort {
        None => Vec::new(),
        Some(text) => {
            let sort = parse_sort(text)?;
            check_sort(def, &sort, path_access).map_err(bad)?;
            sort
        }
    };
    Ok((filter, sort))
}

fn list_records(state: &AppState, key: &str, call: &Call, budget: ReadBudget) -> Result<Vec<u8>> {
    let requester = call.requester(state)?;
    let def = collection(state, key)?;
    let facts = call.facts(&requester);
    let variables = variables(&facts, &def, None);
    let rule = access(&def.rules.list, &requester, &variables)?;
    let params = ListParams::from_query(&call.query)?;
    let (client_filter, sort) = client_query(&def, &params, &requester, &variables)?;
    let filter = match rule.filter() {
        Some(rule) => rule.clone().and(client_filter),
        None => client_filter,
    };
    let records = state.definitions.records(&def)?;
    let mut query = params.query(filter.clone(), sort, state.config.sort_memory_bytes_max);
    query.budget = budget;
    let page = records.find(&query)?;
    let total = match params.skip_total {
        true => None,
        false => Some(records.count_within(&filter, budget)?),
    };
    if is_plain(call)? {
        let items: Vec<RecordJson> = page
            .documents
            .iter()
            .map(|document| RecordJson {
                def: &def,
                document,
                viewer: facts.requester,
                email: Email::ByVisibility,
            })
            .collect();
        return json_text(&params.page_of(&items, total));
    }
    let items = render(state, &def, &page.documents, call, &facts)?;
    json_text(&params.page_of(&items, total))
}

/// True if the call asks for neither `expand` nor `fields` (both checked, so a malformed
/// one is still a 400): its records can be written out without a JSON value in between.
fn is_plain(call: &Call) -> Result<bool> {
    let picker = Picker::parse(call.query.get("fields"))?;
    let tree = ExpandTree::parse(call.query.get("expand"))?;
    Ok(picker.is_none() && tree.is_none())
}

fn view_record(state: &AppState, key: &str, id: &str, call: &Call) -> Result<Vec<u8>> {
    let requester = call.requester(state)?;
    let def = collection(state, key)?;
    let facts = call.facts(&requester);
    let rule = access(&def.rules.view, &requester, &variables(&facts, &def, None))?;
    if nanodb::names::check_document_id(id).is_err() {
        return Err(Error::not_found());
    }
    let document = state.definitions.records(&def)?.get(id)?;
    let document =
        document.filter(|document| rule.allows(document.fields())).ok_or_else(Error::not_found)?;
    if is_plain(call)? {
        let email = Email::ByVisibility;
        return json_text(&RecordJson {
            def: &def,
            document: &document,
            viewer: facts.requester,
            email,
        });
    }
    let mut items = render(state, &def, std::slice::from_ref(&document), call, &facts)?;
    json_text(&items.pop().unwrap_or(Json::Null))
}

/// Record JSON of `documents` with the call's `expand` and `fields` applied.
pub fn render(
    state: &AppState,
    def: &CollectionDef,
    documents: &[Document],
    call: &Call,
    facts: &RequestFacts,
) -> Result<Vec<Json>> {
    let picker = Picker::parse(call.query.get("fields"))?;
    let tree = ExpandTree::parse(call.query.get("expand"))?;
    let mut outputs: Vec<JsonMap<String, Json>> = documents
        .iter()
        .map(|document| export(def, document, facts.requester, Email::ByVisibility))
        .collect();
    if let Some(tree) = tree {
        expand(state, &state.definitions.snapshot(), def, documents, &mut outputs, &tree, facts)?;
    }
    Ok(outputs
        .into_iter()
        .map(|output| {
            Json::Object(match &picker {
                Some(picker) => picker.apply(output),
                None => output,
            })
        })
        .collect())
}
