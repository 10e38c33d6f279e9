//! The feed pump: one thread that reads the change feed of the `pb` database and turns each
//! committed record change into SSE messages for the subscriptions it matches.
//!
//! For each event, in commit order: find the record's collection (changes of other
//! collections, such as the definitions, are skipped); if it is an auth collection, bring
//! the auth of clients logged in as that record up to date (a deleted record, or one whose
//! token key changed, leaves them guests, as PocketBase does); then for every client and
//! every subscription matching the record, check with the client's auth the collection's
//! list rule (`coll/*`) or view rule (`coll/id`), plus the subscription's own `filter`
//! option, on the record as committed (a delete's last version), and render
//! `{"action", "record"}` with the options' `expand` and `fields` (applied to the record), as
//! the record routes would for that client. A client whose queue is full is dropped.
//!
//! Rules and filters are nanodb filters run by nanodb's evaluator (`rules::access`,
//! `api::records_read::client_query`); the pump only binds the realtime request values:
//! method `GET`, context `realtime`, the options' query and headers.
//!
//! Thread safety: the pump thread holds only a `Weak<AppState>` between events; clients are
//! read from the registry one snapshot per event.

use super::client::{message, Client, Sent};
use super::topic::Subscription;
use crate::api::records_read::{client_query, render};
use crate::api::Call;
use crate::auth::requester::{AuthRecord, Requester};
use crate::error::Result;
use crate::http::query::ListParams;
use crate::rules::access;
use crate::rules::context::{variables, CONTEXT_REALTIME};
use crate::schema::CollectionDef;
use crate::state::AppState;
use axum::http::Method;
use nanodb::query::eval;
use nanodb::{ChangeEvent, ChangeKind, ChangeStream, FeedOptions, Value};
use serde_json::{json, Map as JsonMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Subscribes to the feed and starts the pump thread on it.
pub fn start(state: &Arc<AppState>, buffer_events_max: usize) -> Result<()> {
    let stream = state.database().subscribe(FeedOptions { buffer_events_max })?;
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("nanodb-realtime".into())
        .spawn(move || run(weak, stream))
        .map_err(|error| crate::error::Error::io("start the realtime thread", error))?;
    Ok(())
}

fn run(weak: Weak<AppState>, stream: ChangeStream) {
    let mut idle_since = None;
    loop {
        let Some(state) = weak.upgrade() else { return };
        let realtime = &state.realtime;
        match stream.recv_timeout(super::PUMP_POLL) {
            Ok(Some(event)) => {
                idle_since = None;
                dispatch(&state, &event);
            }
            Ok(None) => {
                if realtime.pump_may_stop(&mut idle_since) {
                    return;
                }
            }
            Err(nanodb::Error::Lagged { missed }) => {
                tracing::warn!(missed, "the realtime feed fell behind; dropping every client");
                realtime.stats.feed_lagged.fetch_add(1, Ordering::Relaxed);
                realtime.pump_failed();
                return;
            }
            Err(error) => {
                tracing::info!(%error, "the realtime feed ended");
                realtime.pump_failed();
                return;
            }
        }
    }
}

/// Sends `event` to every subscription that matches it and may see it.
fn dispatch(state: &AppState, event: &ChangeEvent) {
    let snapshot = state.definitions.snapshot();
    let Some(def) = snapshot.by_id(&event.collection) else { return };
    let realtime = &state.realtime;
    if def.is_auth() {
        refresh_auth(&realtime.clients(), &def, event);
    }
    let id = event.document.id();
    for client in realtime.clients() {
        let subscriptions = client.subscriptions();
        let mut matching =
            subscriptions.iter().filter(|sub| sub.matches(&def.name, &def.id, id)).peekable();
        if matching.peek().is_none() {
            continue;
        }
        let requester = client.auth();
        for subscription in matching {
            let Some(data) = event_data(state, &def, event, subscription, &requester) else {
                continue;
            };
            match client.send(message(&client.id, &subscription.name, &data)) {
                Sent::Queued => {
                    realtime.stats.events_sent.fetch_add(1, Ordering::Relaxed);
                }
                Sent::Overflowed => {
                    tracing::info!(client = %client.id, "dropping a realtime client that reads too slowly");
                    realtime.stats.clients_dropped_slow.fetch_add(1, Ordering::Relaxed);
                    realtime.remove(&client.id);
                    break;
                }
                Sent::Closed => break,
            }
        }
    }
}

/// The clients logged in as the changed auth record see its new version, or become guests
/// when it is deleted or its token key changed (a new password revokes their tokens).
fn refresh_auth(clients: &[Arc<Client>], def: &Arc<CollectionDef>, event: &ChangeEvent) {
    let id = event.document.id();
    let token_key = |document: &nanodb::Document| {
        document.get("tokenKey").and_then(Value::as_str).map(str::to_string)
    };
    for client in clients {
        client.update_auth(|requester| {
            let Some(record) = requester.record() else { return };
            if record.collection.id != def.id || record.document.id() != id {
                return;
            }
            let revoked = event.kind == ChangeKind::Delete
                || token_key(&record.document) != token_key(&event.document);
            let fresh =
                AuthRecord { collection: Arc::clone(def), document: event.document.clone() };
            *requester = match requester {
                _ if revoked => Requester::Guest,
                Requester::Superuser(_) => Requester::Superuser(fresh),
                _ => Requester::Record(fresh),
            };
        });
    }
}

/// The event's `data` for `subscription` as `requester` may see it; `None` if a rule or the
/// subscription's filter hides the record (or its options cannot be used).
fn event_data(
    state: &AppState,
    def: &CollectionDef,
    event: &ChangeEvent,
    subscription: &Subscription,
    requester: &Requester,
) -> Option<String> {
    let call = Call {
        method: Method::GET,
        context: CONTEXT_REALTIME,
        query: subscription.query.clone(),
        headers: subscription.headers.clone(),
        body: JsonMap::new(),
        ip: None,
    };
    let facts = call.facts(requester);
    let variables = variables(&facts, def, None);
    let rule = match subscription.record {
        None => &def.rules.list,
        Some(_) => &def.rules.view,
    };
    let fields = event.document.fields();
    if !access(rule, requester, &variables).ok()?.allows(fields) {
        return None;
    }
    let params = ListParams {
        page: 1,
        per_page: 1,
        skip_total: true,
        filter: subscription.query.non_blank("filter").map(str::to_string),
        sort: None,
    };
    let (filter, _) = client_query(def, &params, requester, &variables).ok()?;
    if !eval::matches(&filter, fields) {
        return None;
    }
    let record = match render(state, def, std::slice::from_ref(&event.document), &call, &facts) {
        Ok(mut records) => records.pop()?,
        Err(error) => {
            tracing::debug!(%error, subscription = %subscription.name, "a realtime event could not be rendered");
            return None;
        }
    };
    Some(json!({"action": event.kind.as_str(), "record": record}).to_string())
}
