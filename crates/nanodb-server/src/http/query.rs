//! Query parameters: the raw pairs (for `@request.query.*`), and the list parameters
//! (`page`, `perPage`, `sort`, `filter`, `expand`, `fields`, `skipTotal`) normalized the way
//! PocketBase does.
//!
//! Thread safety: plain owned data.
//!
//! Invariant: `ListParams::per_page` is always 1 to `PER_PAGE_MAX`, `page` at least 1, and
//! the offset (`(page - 1) * per_page`) at most `LIST_OFFSET_MAX`.

use crate::error::{Error, Result, MESSAGE_BAD_REQUEST};
use nanodb::query::{Filter, Query, SortKey};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// Default page size of a list.
pub const PER_PAGE_DEFAULT: usize = 30;
/// Largest page size; a larger `perPage` is capped to it (and echoed capped).
pub const PER_PAGE_MAX: usize = 1_000;
/// Most items a list may skip (`(page - 1) * perPage`); a later page is a 400. Skipped
/// items are still read, and with a sort no index gives they are held in memory, so an
/// unbounded offset is an unbounded cost. Past it, narrow the filter instead.
pub const LIST_OFFSET_MAX: usize = 1_000_000;

/// The query string's pairs, decoded, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes a raw query string (`a=1&b=x%20y`); `None` is no query.
    pub fn parse(raw: Option<&str>) -> QueryParams {
        let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        QueryParams { pairs }
    }

    /// Query parameters from decoded pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> QueryParams {
        QueryParams { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, unless it is missing or blank.
    pub fn non_blank(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|value| !value.is_empty())
    }

    /// Every pair.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// A list request's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    /// The page, from 1.
    pub page: usize,
    /// Items per page, 1 to `PER_PAGE_MAX`.
    pub per_page: usize,
    /// Skip counting the total (`totalItems` and `totalPages` are then -1).
    pub skip_total: bool,
    /// The filter text, if any.
    pub filter: Option<String>,
    /// The sort text, if any.
    pub sort: Option<String>,
}

impl ListParams {
    /// Reads and normalizes the list parameters: a `page` of 0 or less is 1, a `perPage` of
    /// 0 or less is the default and above the maximum the maximum; a non-integer is 400.
    pub fn from_query(query: &QueryParams) -> Result<ListParams> {
        let integer = |name: &str| -> Result<Option<i64>> {
            match query.non_blank(name) {
                None => Ok(None),
                Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
                    Error::bad_request(format!("{MESSAGE_BAD_REQUEST} ({name} is not an integer)"))
                }),
            }
        };
        let page = integer("page")?.filter(|page| *page > 0).map_or(1, |page| page as usize);
        let per_page = match integer("perPage")? {
            Some(n) if n > 0 => (n as u64).min(PER_PAGE_MAX as u64) as usize,
            _ => PER_PAGE_DEFAULT,
        };
        if (page - 1).saturating_mul(per_page) > LIST_OFFSET_MAX {
            return Err(Error::bad_request(format!(
                "{MESSAGE_BAD_REQUEST} (page {page} of {per_page} items is past the first \
                 {LIST_OFFSET_MAX} items a list may skip; narrow the filter instead)"
            )));
        }
        let skip_total = match query.non_blank("skipTotal") {
            None => false,
            Some(text) => parse_bool(text).ok_or_else(|| {
                Error::bad_request(format!("{MESSAGE_BAD_REQUEST} (skipTotal is not a boolean)"))
            })?,
        };
        Ok(ListParams {
            page,
            per_page,
            skip_total,
            filter: query.non_blank("filter").map(str::to_string),
            sort: query.non_blank("sort").map(str::to_string),
        })
    }

    /// How many items come before the page (at most `LIST_OFFSET_MAX`).
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// The query of this page: `filter` sorted by `sort`, holding at most
    /// `sort_memory_bytes_max` bytes of documents to sort them.
    pub fn query(&self, filter: Filter, sort: Vec<SortKey>, sort_memory_bytes_max: usize) -> Query {
        let mut query = Query::new(filter).sort(sort).offset(self.offset()).limit(self.per_page);
        query.sort_memory_bytes_max = sort_memory_bytes_max;
        query
    }

    /// The list answer of `items` with the page, `perPage`, and `totalItems`/`totalPages`
    /// from `total` (both -1 when the total was skipped).
    pub fn page_of<'a, T: Serialize>(&self, items: &'a [T], total: Option<u64>) -> PageJson<'a, T> {
        let totals = match total {
            Some(total) => (total as i64, total.div_ceil(self.per_page as u64) as i64),
            None => (-1, -1),
        };
        PageJson { items, page: self.page, per_page: self.per_page, totals }
    }
}

/// A list answer, its items serialized as it is written (keys in byte order, as PocketBase's).
pub struct PageJson<'a, T: Serialize> {
    /// The page's items.
    pub items: &'a [T],
    /// The page number, from 1.
    pub page: usize,
    /// Items per page.
    pub per_page: usize,
    /// `totalItems` and `totalPages`, both -1 when the total was skipped.
    pub totals: (i64, i64),
}

impl<T: Serialize> Serialize for PageJson<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("items", self.items)?;
        map.serialize_entry("page", &self.page)?;
        map.serialize_entry("perPage", &self.per_page)?;
        map.serialize_entry("totalItems", &self.totals.0)?;
        map.serialize_entry("totalPages", &self.totals.1)?;
        map.end()
    }
}

/// Go's `strconv.ParseBool`, which PocketBase uses for `skipTotal`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &str) -> Result<ListParams> {
        ListParams::from_query(&QueryParams::parse(Some(raw)))
    }

    #[test]
    fn pages_are_normalized_and_capped_at_the_boundary() {
        let defaults = list("").unwrap();
        assert_eq!((defaults.page, defaults.per_page, defaults.skip_total), (1, 30, false));
        assert_eq!(list("page=0&perPage=0").unwrap().page, 1);
        assert_eq!(list("page=-3&perPage=-1").unwrap().per_page, PER_PAGE_DEFAULT);
        assert_eq!(list("perPage=1000").unwrap().per_page, PER_PAGE_MAX);
        assert_eq!(list("perPage=1001").unwrap().per_page, PER_PAGE_MAX);
        assert_eq!(list("perPage=99999999999999999").unwrap().per_page, PER_PAGE_MAX);
        assert_eq!(list("perPage=99999999999999999999").unwrap_err().status().as_u16(), 400);
        assert_eq!(list("page=3&perPage=2").unwrap().offset(), 4);
        let last = LIST_OFFSET_MAX / PER_PAGE_MAX + 1;
        assert_eq!(list(&format!("page={last}&perPage=1000")).unwrap().offset(), LIST_OFFSET_MAX);
        let past = list(&format!("page={}&perPage=1000", last + 1)).unwrap_err();
        assert!(past.to_string().contains("narrow the filter"), "{past}");
        assert_eq!(
            list(&format!("page={}&perPage=1", LIST_OFFSET_MAX + 2)).unwrap_err().status(),
            400
        );
        assert_eq!(list(&format!("page={}&perPage=1000", i64::MAX)).unwrap_err().status(), 400);
        for bad in ["page=x", "perPage=1.5", "skipTotal=yes"] {
            assert_eq!(list(bad).unwrap_err().status().as_u16(), 400, "{bad}");
        }
        assert!(list("skipTotal=1").unwrap().skip_total);
        assert!(list("skipTotal=true").unwrap().skip_total);
        assert!(!list("skipTotal=F").unwrap().skip_total);
        let text = list("filter=a%20%3D%201&sort=-n,%2Btitle").unwrap();
        assert_eq!(text.filter.as_deref(), Some("a = 1"));
        assert_eq!(text.sort.as_deref(), Some("-n,+title"));
        assert_eq!(list("filter=%20%20").unwrap().filter, None);
    }
}
