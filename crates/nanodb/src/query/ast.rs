//! The one representation of a filter, which both front ends (PocketBase's filter syntax in
//! `pocketbase`, MongoDB-style JSON in `mongo`) produce and the evaluator (`eval`) and the
//! planner (`plan`) consume.
//!
//! What each node means is documented on it and in `eval`, which is the reference; the
//! comparison rules across types are in `value::order` and in the `eval` module header.
//!
//! Thread safety: plain owned data (`Send + Sync`).
//!
//! Invariant: a `FieldPath` has at most `PATH_SEGMENTS_MAX` segments, none empty; a `Pattern`
//! always holds a compiled regex whose source is `source`.

use crate::value::{Map, Value};
use crate::{Error, Result};
use std::fmt;

/// Most segments in a field path (`a.b.c` has three).
pub const PATH_SEGMENTS_MAX: usize = 32;
/// Most nodes in one filter (every comparison, `&&`, `||`, `not`, ... counts one).
pub const FILTER_NODES_MAX: usize = 1_000;
/// Deepest nesting of `&&`, `||`, `not` and `$elemMatch` in one filter.
pub const FILTER_DEPTH_MAX: usize = 32;
/// Longest regular expression source, in bytes.
pub const REGEX_LEN_MAX: usize = 1_024;
/// Most memory a compiled regular expression may take, in bytes.
pub const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;

/// A path into a document: field names, and array positions as decimal digits. The empty path
/// is the value itself (inside `ElemMatch`, the array element).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses a dotted path (`"address.city"`, `"tags.0"`).
    pub fn parse(dotted: &str) -> Result<FieldPath> {
        if dotted.is_empty() {
            return Err(query_error("an empty field path"));
        }
        let segments: Vec<String> = dotted.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(query_error(format!("field path {dotted:?} has an empty part")));
        }
        if segments.len() > PATH_SEGMENTS_MAX {
            return Err(Error::LimitExceeded {
                what: "parts in a field path",
                limit: PATH_SEGMENTS_MAX as u64,
                actual: segments.len() as u64,
            });
        }
        Ok(FieldPath(segments))
    }

    /// The value itself (used inside `ElemMatch`).
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// The path's parts.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// True for the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// What is compared of a field: its values, or something computed from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The values themselves.
    None,
    /// The number of items of an array (1 for any other present value, 0 when missing);
    /// PocketBase's `:length`.
    Length,
    /// Strings in lower case (other values unchanged); PocketBase's `:lower`.
    Lower,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A field of the document, possibly transformed.
    Field {
        /// Where the field is.
        path: FieldPath,
        /// What is compared of it.
        transform: Transform,
    },
    /// A constant.
    Value(Value),
}

impl Operand {
    /// The field at `path`, untransformed.
    pub fn field(path: FieldPath) -> Operand {
        Operand::Field { path, transform: Transform::None }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal (in the total order: `1 == 1.0`).
    Eq,
    /// Not equal.
    Ne,
    /// Greater than, within one type (numbers with numbers, strings with strings, ...).
    Gt,
    /// Greater than or equal, within one type.
    Gte,
    /// Less than, within one type.
    Lt,
    /// Less than or equal, within one type.
    Lte,
}

impl CompareOp {
    /// The operator with its sides swapped (`a < b` is `b > a`).
    pub fn flipped(self) -> CompareOp {
        match self {
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Gte => CompareOp::Lte,
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Lte => CompareOp::Gte,
            other => other,
        }
    }

    /// The operator as PocketBase writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Gt => ">",
            CompareOp::Gte => ">=",
            CompareOp::Lt => "<",
            CompareOp::Lte => "<=",
        }
    }
}

/// How a comparison treats a field with several values (an array, or a path through an array
/// of objects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// At least one value matches (the field itself, or one of its items): MongoDB's rule and
    /// PocketBase's `?=`, `?>`, ... operators.
    Any,
    /// Every item matches, and there is at least one: PocketBase's plain operators on
    /// multi-valued fields. On a single value it is the same as `Any`.
    All,
}

/// A compiled regular expression with its source (for display and equality).
#[derive(Clone)]
pub struct Pattern {
    source: String,
    flags: String,
    regex: regex::Regex,
}

impl Pattern {
    /// Compiles `source` with MongoDB's option letters `flags` (`i` case-insensitive, `m`
    /// multi-line, `s` dot matches newline, `x` extended). Linear-time matching, bounded
    /// size: a pattern cannot make a query slow by backtracking.
    pub fn new(source: &str, flags: &str) -> Result<Pattern> {
        Error::check_limit("regular expression length", source.len(), REGEX_LEN_MAX)
            .map_err(|error| query_error(error.to_string()))?;
        let mut builder = regex::RegexBuilder::new(source);
        for flag in flags.chars() {
            match flag {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                other => return Err(query_error(format!("unknown regex option {other:?}"))),
            };
        }
        builder.size_limit(REGEX_COMPILED_BYTES_MAX).dfa_size_limit(REGEX_COMPILED_BYTES_MAX);
        let regex = builder
            .build()
            .map_err(|error| query_error(format!("bad regular expression {source:?}: {error}")))?;
        Ok(Pattern { source: source.to_string(), flags: flags.to_string(), regex })
    }

    /// True if `text` matches somewhere (anchors are the pattern's to give).
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The pattern's source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The pattern's option letters.
    pub fn flags(&self) -> &str {
        &self.flags
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/{}", self.source, self.flags)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source && self.flags == other.flags
    }
}

/// A condition on a document. See `eval` for the exact rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every document.
    True,
    /// No document.
    False,
    /// All of the conditions (`True` when empty).
    And(Vec<Filter>),
    /// At least one of the conditions (`False` when empty).
    Or(Vec<Filter>),
    /// The condition does not hold.
    Not(Box<Filter>),
    /// `left op right`, quantified over the values of a field operand (on the left if both
    /// are fields). A missing field compares as null.
    Compare {
        /// Left side.
        left: Operand,
        /// Operator.
        op: CompareOp,
        /// Right side.
        right: Operand,
        /// How several values of a field are treated.
        quantifier: Quantifier,
    },
    /// One of the field's values (Any) equals one of `values` (MongoDB's `$in`).
    In {
        /// The field.
        path: FieldPath,
        /// The accepted values.
        values: Vec<Value>,
    },
    /// The path leads to a value (null counts); MongoDB's `$exists: true`.
    Exists {
        /// The field.
        path: FieldPath,
    },
    /// The field is missing, null, `""` or `[]`: PocketBase's `x = ""` and `x = null`.
    Empty {
        /// The field.
        path: FieldPath,
    },
    /// A string value matches an SQL `LIKE` pattern (`%` any run, `_` one character, `\`
    /// escapes), ASCII case-insensitively: PocketBase's `~`.
    Like {
        /// The field.
        path: FieldPath,
        /// The pattern.
        pattern: String,
        /// How several values are treated.
        quantifier: Quantifier,
    },
    /// A string value (Any) matches a regular expression: MongoDB's `$regex`.
    Regex {
        /// The field.
        path: FieldPath,
        /// The expression.
        pattern: Pattern,
    },
    /// The field is an array of exactly `len` items: MongoDB's `$size`.
    Size {
        /// The field.
        path: FieldPath,
        /// The length.
        len: usize,
    },
    /// The field is an array with an item matching `filter` (whose paths start at the item;
    /// the root path is the item itself): MongoDB's `$elemMatch`.
    ElemMatch {
        /// The field.
        path: FieldPath,
        /// The condition on one item.
        filter: Box<Filter>,
    },
}

impl Filter {
    /// Every field path the filter names, in its order, nested conditions included: fields
    /// compared (on either side) and the fields of the other conditions. An `ElemMatch`
    /// gives its own path only (the paths inside it start at an item).
    pub fn paths(&self) -> Vec<&FieldPath> {
        fn walk<'a>(filter: &'a Filter, out: &mut Vec<&'a FieldPath>) {
            match filter {
                Filter::True | Filter::False => {}
                Filter::And(all) | Filter::Or(all) => all.iter().for_each(|inner| walk(inner, out)),
                Filter::Not(inner) => walk(inner, out),
                Filter::Compare { left, right, .. } => {
                    for operand in [left, right] {
                        if let Operand::Field { path, .. } = operand {
                            out.push(path);
                        }
                    }
                }
                Filter::In { path, .. }
                | Filter::Exists { path }
                | Filter::Empty { path }
                | Filter::Like { path, .. }
                | Filter::Regex { path, .. }
                | Filter::Size { path, .. }
                | Filter::ElemMatch { path, .. } => out.push(path),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// `path op value`, Any-quantified (MongoDB's rule).
    pub fn compare(path: &str, op: CompareOp, value: impl Into<Value>) -> Result<Filter> {
        Ok(Filter::Compare {
            left: Operand::field(FieldPath::parse(path)?),
            op,
            right: Operand::Value(value.into()),
            quantifier: Quantifier::Any,
        })
    }

    /// `path = value`.
    pub fn eq(path: &str, value: impl Into<Value>) -> Result<Filter> {
        Filter::compare(path, CompareOp::Eq, value)
    }

    /// `path > value`.
    pub fn gt(path: &str, value: impl Into<Value>) -> Result<Filter> {
        Filter::compare(path, CompareOp::Gt, value)
    }

    /// `path >= value`.
    pub fn gte(path: &str, value: impl Into<Value>) -> Result<Filter> {
        Filter::compare(path, CompareOp::Gte, value)
    }

    /// `path < value`.
    pub fn lt(path: &str, value: impl Into<Value>) -> Result<Filter> {
        Filter::compare(path, CompareOp::Lt, value)
    }

    /// `path <= value`.
    pub fn lte(path: &str, value: impl Into<Value>) -> Result<Filter> {
        Filter::compare(path, CompareOp::Lte, value)
    }

    /// Both conditions.
    pub fn and(self, other: Filter) -> Filter {
        if matches!(other, Filter::True) {
            return self;
        }
        match self {
            Filter::And(mut all) => {
                all.push(other);
                Filter::And(all)
            }
            Filter::True => other,
            first => Filter::And(vec![first, other]),
        }
    }

    /// Either condition.
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut any) => {
                any.push(other);
                Filter::Or(any)
            }
            Filter::False => other,
            first => Filter::Or(vec![first, other]),
        }
    }

    /// The opposite condition.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }

    /// Checks the filter against `FILTER_NODES_MAX` and `FILTER_DEPTH_MAX` (the front ends
    /// call it; a filter built by hand is checked when a query runs).
    pub fn check_limits(&self) -> Result<()> {
        let mut nodes = 0;
        self.count(1, &mut nodes)?;
        Ok(())
    }

    fn count(&self, depth: usize, nodes: &mut usize) -> Result<()> {
        *nodes += 1;
        Error::check_limit("nodes in a filter", *nodes, FILTER_NODES_MAX)?;
        Error::check_limit("nesting of a filter", depth, FILTER_DEPTH_MAX)?;
        match self {
            Filter::And(all) | Filter::Or(all) => {
                all.iter().try_for_each(|filter| filter.count(depth + 1, nodes))
            }
            Filter::Not(inner) | Filter::ElemMatch { filter: inner, .. } => {
                inner.count(depth + 1, nodes)
            }
            _ => Ok(()),
        }
    }
}

/// An `Error::InvalidQuery` without a position.
pub(crate) fn query_error(detail: impl Into<String>) -> Error {
    Error::InvalidQuery { detail: detail.into(), position: None }
}

/// An `Error::InvalidQuery` at byte `position` of the filter text.
pub(crate) fn query_error_at(position: usize, detail: impl Into<String>) -> Error {
    Error::InvalidQuery { detail: detail.into(), position: Some(position) }
}

/// Named values bound to a PocketBase filter's `{:name}` placeholders.
pub type Params = Map;

/// Most fields one sort may name.
pub const SORT_KEYS_MAX: usize = 8;

/// One field of a sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The field (missing sorts as null; several values through arrays sort as an array).
    pub path: FieldPath,
    /// Largest first.
    pub descending: bool,
}

impl SortKey {
    /// Ascending by `path`.
    pub fn ascending(path: &str) -> Result<SortKey> {
        Ok(SortKey { path: FieldPath::parse(path)?, descending: false })
    }

    /// Descending by `path`.
    pub fn descending(path: &str) -> Result<SortKey> {
        Ok(SortKey { path: FieldPath::parse(path)?, descending: true })
    }
}
