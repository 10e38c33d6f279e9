//! API rules: what a collection's `listRule`, `viewRule`, `createRule`, `updateRule`,
//! `deleteRule` (and an auth collection's `authRule`, `manageRule`) mean for one request.
//!
//! A rule is parsed by nanodb's filter parser with the request's `@request.*` values bound
//! (`context`), so it becomes an ordinary `nanodb::query::Filter`: the list rule is ANDed
//! into the list query (row-level security, using indexes like any filter), the others are
//! evaluated on one record with nanodb's evaluator. The server evaluates nothing itself.
//!
//! Outcomes (PocketBase's): superusers pass every rule; a locked rule (`null`) is 403 for
//! everyone else; `""` lets everyone through; otherwise a list keeps only matching records,
//! a create that does not match is 400, and a view, update or delete that does not match is
//! 404, as if the record did not exist. Those statuses are the callers'; this module says
//! only whether a rule applies and what it matches.
//!
//! Thread safety: pure functions.

pub mod context;

use crate::auth::requester::Requester;
use crate::error::{Error, Result};
use crate::schema::Rule;
use nanodb::query::{eval, parse_filter, Filter, FilterContext, Params};
use nanodb::Map;

/// What a rule requires of the records a request touches.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Every record (a superuser, or an empty rule).
    All,
    /// The records matching the filter.
    Matching(Filter),
}

impl Access {
    /// True if a record with stored fields `fields` is allowed.
    pub fn allows(&self, fields: &Map) -> bool {
        match self {
            Access::All => true,
            Access::Matching(filter) => eval::matches(filter, fields),
        }
    }

    /// The filter to AND into a query (`None`: nothing to add).
    pub fn filter(&self) -> Option<&Filter> {
        match self {
            Access::All => None,
            Access::Matching(filter) => Some(filter),
        }
    }
}

/// What `rule` allows `requester`, with the request's `variables`; 403 if it is locked.
pub fn access(rule: &Rule, requester: &Requester, variables: &Map) -> Result<Access> {
    if requester.is_superuser() {
        return Ok(Access::All);
    }
    match rule.as_deref() {
        None => Err(Error::superusers_only()),
        Some(text) if text.trim().is_empty() => Ok(Access::All),
        Some(text) => {
            let params = Params::new();
            let filter = parse_filter(text, &FilterContext::new(&params, variables))?;
            Ok(Access::Matching(filter))
        }
    }
}

/// Like `access`, but a locked rule simply allows nothing (for expand and `manageRule`,
/// where a lock hides instead of failing the request).
pub fn access_or_nothing(rule: &Rule, requester: &Requester, variables: &Map) -> Result<Access> {
    match access(rule, requester, variables) {
        Err(Error::Forbidden(_)) => Ok(Access::Matching(Filter::False)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requester::AuthRecord;
    use crate::schema::defaults;
    use nanodb::Value;
    use std::sync::Arc;

    fn record(collection: crate::schema::CollectionDef, id: &str) -> AuthRecord {
        let document = crate::test_support::document(serde_json::json!({"id": id}));
        AuthRecord { collection: Arc::new(collection), document }
    }

    #[test]
    fn outcomes_of_locked_empty_and_filter_rules() {
        let guest = Requester::Guest;
        let superuser = Requester::Superuser(record(defaults::superusers(), "root"));
        let variables = Map::new();
        assert!(matches!(access(&None, &guest, &variables), Err(Error::Forbidden(_))));
        assert_eq!(access(&None, &superuser, &variables).unwrap(), Access::All);
        assert_eq!(access(&Some(" ".into()), &guest, &variables).unwrap(), Access::All);
        let filter = access(&Some("n > 1".into()), &guest, &variables).unwrap();
        let two: Map = [("n".to_string(), Value::Int(2))].into();
        let one: Map = [("n".to_string(), Value::Int(1))].into();
        assert!(filter.allows(&two) && !filter.allows(&one));
        assert!(filter.filter().is_some() && Access::All.filter().is_none());
        assert_eq!(
            access_or_nothing(&None, &guest, &variables).unwrap(),
            Access::Matching(Filter::False)
        );
        assert!(!access_or_nothing(&None, &guest, &variables).unwrap().allows(&two));
        assert!(matches!(
            access(&Some("n >".into()), &guest, &variables),
            Err(Error::BadRequest { .. })
        ));
    }
}
