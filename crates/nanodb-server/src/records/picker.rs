//! The `fields` query parameter: which keys of each record JSON to return.
//!
//! `fields=id,title,expand.author.name` keeps those paths; `*` keeps every key at its level
//! (`*,expand.author.name` keeps every top-level key but only `name` of the expanded
//! author); a path ending in `:excerpt(max, ellipsis)` keeps a plain-text excerpt of at most
//! `max` characters (HTML tags removed, whitespace collapsed, `...` added when cut if
//! `ellipsis` is true). Paths through arrays apply to each item. On list responses the pick
//! applies to each item, not to the envelope.
//!
//! Thread safety: plain owned data.

use crate::error::{Error, Result, MESSAGE_BAD_REQUEST};
use serde_json::{Map as JsonMap, Value as Json};
use std::collections::BTreeMap;

/// Most paths in one `fields` parameter.
pub const PICK_PATHS_MAX: usize = 256;

/// A parsed `fields` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picker {
    all: bool,
    excerpt: Option<(usize, bool)>,
    children: BTreeMap<String, Picker>,
}

impl Picker {
    /// Parses `fields`; `None` for a blank parameter (keep everything).
    pub fn parse(text: Option<&str>) -> Result<Option<Picker>> {
        let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(None);
        };
        let bad =
            |detail: &str| Error::bad_request(format!("{MESSAGE_BAD_REQUEST} (fields: {detail})"));
        let mut root = Picker::default();
        let paths = split_top_level(text);
        if paths.len() > PICK_PATHS_MAX {
            return Err(bad(&format!("more than {PICK_PATHS_MAX} paths")));
        }
        for path in paths {
            let (dotted, excerpt) = match path.split_once(":excerpt(") {
                Some((dotted, args)) => {
                    (dotted, Some(parse_excerpt(args).ok_or_else(|| bad(path))?))
                }
                None => (path, None),
            };
            let mut node = &mut root;
            for segment in dotted.split('.') {
                if segment.is_empty() {
                    return Err(bad(path));
                }
                if segment == "*" {
                    node.all = true;
                    break;
                }
                node = node.children.entry(segment.to_string()).or_default();
            }
            if excerpt.is_some() {
                node.excerpt = excerpt;
            }
        }
        Ok(Some(root))
    }

    /// Keeps only the picked keys of `object`.
    pub fn apply(&self, object: JsonMap<String, Json>) -> JsonMap<String, Json> {
        object
            .into_iter()
            .filter_map(|(key, value)| match self.children.get(&key) {
                Some(child) => Some((key, child.apply_value(value))),
                None if self.all => Some((key, value)),
                None => None,
            })
            .collect()
    }

    fn apply_value(&self, value: Json) -> Json {
        if let Some((max, ellipsis)) = self.excerpt {
            return match value {
                Json::String(text) => Json::String(excerpt(&text, max, ellipsis)),
                other => other,
            };
        }
        if self.children.is_empty() && !self.all {
            return value;
        }
        match value {
            Json::Object(object) => Json::Object(self.apply(object)),
            Json::Array(items) => {
                Json::Array(items.into_iter().map(|item| self.apply_value(item)).collect())
            }
            other => other,
        }
    }
}

/// Splits on commas outside parentheses (`a,b:excerpt(5,true)` is two paths).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(text[start..at].trim());
                start = at + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim());
    out.into_iter().filter(|path| !path.is_empty()).collect()
}

fn parse_excerpt(args: &str) -> Option<(usize, bool)> {
    let inner = args.strip_suffix(')')?;
    let mut parts = inner.split(',').map(str::trim);
    let max = parts.next()?.parse::<usize>().ok()?;
    let ellipsis = match parts.next() {
        None => false,
        Some(flag) => crate::http::query::parse_bool(flag)?,
    };
    parts.next().is_none().then_some((max, ellipsis))
}

/// Plain text of `html`: tags dropped, whitespace collapsed, cut to `max` characters.
pub fn excerpt(html: &str, max: usize, ellipsis: bool) -> String {
    let mut plain = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                plain.push(' ');
            }
            _ if in_tag => {}
            _ => plain.push(c),
        }
    }
    let collapsed = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max).collect::<String>().trim_end().to_string();
    if ellipsis {
        cut.push_str("...");
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pick(fields: &str, value: Json) -> Json {
        let picker = Picker::parse(Some(fields)).unwrap().unwrap();
        Json::Object(picker.apply(value.as_object().unwrap().clone()))
    }

    #[test]
    fn paths_stars_and_excerpts_pick_keys() {
        let record = json!({"id": "a", "title": "T", "body": "<p>Hello   <b>big</b> world</p>",
            "expand": {"author": {"id": "u", "name": "N", "email": "e"},
                       "tags": [{"id": "t1", "n": 1}, {"id": "t2", "n": 2}]}});
        assert_eq!(pick("id,title", record.clone()), json!({"id": "a", "title": "T"}));
        assert_eq!(
            pick("id, expand.author.name,expand.tags.n", record.clone()),
            json!({"id": "a", "expand": {"author": {"name": "N"}, "tags": [{"n": 1}, {"n": 2}]}})
        );
        let starred = pick("*,expand.author.id", record.clone());
        assert_eq!(starred["title"], "T");
        assert_eq!(starred["expand"], json!({"author": {"id": "u"}}));
        assert_eq!(pick("body:excerpt(9,true)", record.clone()), json!({"body": "Hello big..."}));
        assert_eq!(pick("body:excerpt(100)", record.clone()), json!({"body": "Hello big world"}));
        assert_eq!(pick("expand.*", record.clone())["expand"]["author"]["email"], "e");
        assert_eq!(Picker::parse(Some("  ")).unwrap(), None);
    }

    #[test]
    fn bad_parameters_are_400_and_paths_are_capped() {
        for bad in ["a..b", "a:excerpt(x)", "a:excerpt(1,maybe)", "a:excerpt(1,true,3)"] {
            assert_eq!(Picker::parse(Some(bad)).unwrap_err().status().as_u16(), 400, "{bad}");
        }
        let at_limit = ["a"; PICK_PATHS_MAX].join(",");
        assert!(Picker::parse(Some(&at_limit)).is_ok());
        let over = vec!["a"; PICK_PATHS_MAX + 1].join(",");
        assert!(Picker::parse(Some(&over)).is_err());
    }
}
