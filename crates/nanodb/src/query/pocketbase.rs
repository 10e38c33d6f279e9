//! PocketBase's filter and sort syntax, parsed into the filter AST (`ast::Filter`).
//!
//! `expr := term (("&&" | "||") term)*`, `term := "(" expr ")" | operand OP operand`, where an
//! operand is a field (`author.name`, with an optional `:length`, `:lower` or `:each`
//! modifier), text, a number, `true`/`false`/`null`, an `@` variable or date macro, or a
//! `{:name}` placeholder bound to a parameter as one literal value (never spliced into the
//! text). `&&` binds tighter than `||`. The tokens are in `lexer`; how each `left OP right`
//! becomes a node is documented on `condition` and `like`.
//!
//! Thread safety: pure functions; `FilterContext` only borrows.
//!
//! Invariant: bad text is an `Error::InvalidQuery` whose position is the byte offset of the
//! offending token (the text's length when more was expected); nothing panics, and a parsed
//! filter passes `Filter::check_limits`.

use super::ast::{
    query_error_at, CompareOp, FieldPath, Filter, Operand, Params, Quantifier, SortKey, Transform,
    FILTER_DEPTH_MAX, SORT_KEYS_MAX,
};
use super::lexer::{date_macro, tokenize, Sign, Token, TokenKind};
use crate::value::{Date, Map, Value};
use crate::{Error, Result};
use std::iter::Peekable;
use std::vec::IntoIter;

/// Longest filter text, in bytes.
pub const FILTER_TEXT_BYTES_MAX: usize = 16 * 1024;
/// Longest item of a sort (`-created`), in bytes.
pub const SORT_ITEM_BYTES_MAX: usize = 255;

/// Values the filter's `@` identifiers resolve to, and its `{:name}` placeholders.
#[derive(Debug, Clone, Copy)]
pub struct FilterContext<'a> {
    /// Values of the `{:name}` placeholders, by name.
    pub params: &'a Params,
    /// Values of `@` identifiers, by their whole text (`@request.auth.id`); they take
    /// precedence over the date macros and the `@request.*` defaults.
    pub variables: &'a Map,
    /// The instant the date macros (`@now`, `@todayStart`, ...) are computed from, in UTC.
    pub now: Date,
}

impl<'a> FilterContext<'a> {
    /// A context with the current time.
    pub fn new(params: &'a Params, variables: &'a Map) -> FilterContext<'a> {
        FilterContext { params, variables, now: Date::now() }
    }
}

/// Parses a PocketBase filter (`status = "open" && (votes > 10 || @request.auth.id != "")`).
pub fn parse_filter(text: &str, context: &FilterContext) -> Result<Filter> {
    Error::check_limit("bytes of filter text", text.len(), FILTER_TEXT_BYTES_MAX)?;
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(query_error_at(text.len(), "the filter is empty"));
    }
    let mut parser = Parser { tokens: tokens.into_iter().peekable(), end: text.len(), context };
    let filter = parser.expression(0)?;
    if let Some(token) = parser.tokens.next() {
        let found = token.kind.describe();
        return Err(query_error_at(
            token.position,
            format!("expected `&&` or `||`, found {found}"),
        ));
    }
    filter.check_limits()?;
    Ok(filter)
}

/// Parses a PocketBase sort (`-created,+title`): comma-separated fields, `-` for descending,
/// `+` or nothing for ascending. Errors carry the byte offset of the bad item.
pub fn parse_sort(text: &str) -> Result<Vec<SortKey>> {
    let mut keys = Vec::new();
    let mut item_start = 0;
    for item in text.split(',') {
        let position = item_start + (item.len() - item.trim_start().len());
        item_start += item.len() + 1;
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        Error::check_limit("bytes of a sort item", item.len(), SORT_ITEM_BYTES_MAX)?;
        Error::check_limit("fields in a sort", keys.len() + 1, SORT_KEYS_MAX)?;
        let (descending, name) = match item.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, item.strip_prefix('+').unwrap_or(item)),
        };
        if name.starts_with('@') {
            return Err(query_error_at(position, format!("sorting by `{name}` is not supported")));
        }
        let is_name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
        if !name.starts_with(|c: char| c.is_alphabetic() || c == '_')
            || !name.chars().all(is_name_char)
        {
            return Err(query_error_at(position, format!("`{item}` is not a field to sort by")));
        }
        let path = FieldPath::parse(name).map_err(|cause| positioned(position, cause))?;
        keys.push(SortKey { path, descending });
    }
    Ok(keys)
}

/// One side of a comparison, resolved.
enum Side {
    Field {
        path: FieldPath,
        transform: Transform,
        position: usize,
    },
    /// A constant; `number_text` is the number as written, for `~`.
    Literal {
        value: Value,
        number_text: Option<String>,
        position: usize,
    },
}

impl Side {
    fn into_operand(self) -> Operand {
        match self {
            Side::Field { path, transform, .. } => Operand::Field { path, transform },
            Side::Literal { value, .. } => Operand::Value(value),
        }
    }
}

struct Parser<'c, 'a> {
    tokens: Peekable<IntoIter<Token>>,
    /// The text's length: where "expected more" errors point.
    end: usize,
    context: &'c FilterContext<'a>,
}

impl Parser<'_, '_> {
    /// `term (("&&" | "||") term)*` at `depth` parentheses: an `Or` of `And`s, flattened.
    fn expression(&mut self, depth: usize) -> Result<Filter> {
        let mut any_of = Vec::new();
        let mut all_of = Vec::new();
        push_flat(&mut all_of, self.term(depth)?, true);
        loop {
            match self.tokens.peek().map(|token| &token.kind) {
                Some(TokenKind::And) => {}
                Some(TokenKind::Or) => {
                    let all = combine(std::mem::take(&mut all_of), Filter::And);
                    push_flat(&mut any_of, all, false);
                }
                _ => break,
            }
            self.tokens.next();
            push_flat(&mut all_of, self.term(depth)?, true);
        }
        push_flat(&mut any_of, combine(all_of, Filter::And), false);
        Ok(combine(any_of, Filter::Or))
    }

    /// `"(" expr ")" | operand OP operand`.
    fn term(&mut self, depth: usize) -> Result<Filter> {
        let token = self.expect("a condition")?;
        if token.kind == TokenKind::Open {
            if depth >= FILTER_DEPTH_MAX {
                let detail = format!("parentheses nest deeper than {FILTER_DEPTH_MAX}");
                return Err(query_error_at(token.position, detail));
            }
            let inner = self.expression(depth + 1)?;
            let close = self.expect("`)`")?;
            if close.kind != TokenKind::Close {
                let detail = format!("expected `)` to close the `(` at byte {}", token.position);
                return Err(query_error_at(close.position, detail));
            }
            return Ok(inner);
        }
        let left = self.operand(token)?;
        let operator = self.expect("an operator such as `=`")?;
        let TokenKind::Sign { sign, any } = operator.kind else {
            let found = operator.kind.describe();
            let detail = format!("expected an operator such as `=`, found {found}");
            return Err(query_error_at(operator.position, detail));
        };
        let right = self.expect(&format!("a value after `{}`", sign.symbol()))?;
        let right = self.operand(right)?;
        condition(left, sign, any, right)
    }

    /// The next token, or an error at the end of the text saying `what` was expected.
    fn expect(&mut self, what: &str) -> Result<Token> {
        self.tokens.next().ok_or_else(|| query_error_at(self.end, format!("expected {what}")))
    }

    fn operand(&mut self, token: Token) -> Result<Side> {
        let position = token.position;
        let literal = |value| Ok(Side::Literal { value, number_text: None, position });
        match token.kind {
            TokenKind::Identifier(name) => {
                if matches!(self.tokens.peek(), Some(Token { kind: TokenKind::Open, .. })) {
                    let detail = format!("unsupported function `{name}(...)`");
                    return Err(query_error_at(position, detail));
                }
                self.identifier(&name, position)
            }
            TokenKind::Text(text) => literal(Value::String(text)),
            TokenKind::Number { text, value } => {
                Ok(Side::Literal { value, number_text: Some(text), position })
            }
            TokenKind::Placeholder(name) => match self.context.params.get(&name) {
                Some(value) => literal(value.clone()),
                None => Err(query_error_at(position, format!("no parameter named {name:?}"))),
            },
            other => {
                let detail = format!("expected a field or a value, found {}", other.describe());
                Err(query_error_at(position, detail))
            }
        }
    }

    /// A literal (`true`, `null`, an `@` variable or macro) or a field with its modifier.
    fn identifier(&self, name: &str, position: usize) -> Result<Side> {
        let literal = |value| Ok(Side::Literal { value, number_text: None, position });
        for (word, value) in [("true", true.into()), ("false", false.into()), ("null", Value::Null)]
        {
            if name.eq_ignore_ascii_case(word) {
                return literal(value);
            }
        }
        if name.starts_with('@') {
            return literal(self.variable(name, position)?);
        }
        if name.starts_with('#') {
            return Err(query_error_at(position, format!("`{name}`: `#` names are not supported")));
        }
        let (dotted, modifier) = name.split_once(':').map_or((name, None), |(d, m)| (d, Some(m)));
        let transform = match modifier {
            None | Some("each") => Transform::None,
            Some("length") => Transform::Length,
            Some("lower") => Transform::Lower,
            Some(other) => {
                let detail = format!("unknown modifier `:{other}` (known: :length, :lower, :each)");
                return Err(query_error_at(position + dotted.len(), detail));
            }
        };
        let path = FieldPath::parse(dotted).map_err(|cause| positioned(position, cause))?;
        Ok(Side::Field { path, transform, position })
    }

    /// The value of an `@` identifier: a context variable, a date macro, or a `@request.*`
    /// default for what the request does not carry (`:isset`: whether the variable without
    /// the modifier is given).
    fn variable(&self, name: &str, position: usize) -> Result<Value> {
        if let Some(value) = self.context.variables.get(name) {
            return Ok(value.clone());
        }
        if let Some(value) = date_macro(name, self.context.now) {
            return Ok(value);
        }
        if let Some(field) = name.strip_prefix("@request.") {
            return Ok(if let Some(unmodified) = name.strip_suffix(":isset") {
                Value::Bool(self.context.variables.contains_key(unmodified))
            } else if field.starts_with("auth.") {
                Value::String(String::new()) // a guest: every auth field is ""
            } else {
                Value::Null
            });
        }
        Err(query_error_at(position, format!("`{name}` is not supported")))
    }
}

/// `cause` (from `FieldPath::parse`) as an `InvalidQuery` at byte `position`.
fn positioned(position: usize, cause: Error) -> Error {
    match cause {
        Error::InvalidQuery { detail, .. } => query_error_at(position, detail),
        other => query_error_at(position, other.to_string()),
    }
}

/// Appends `filter` to a list of `And` (`is_and`) or `Or` operands, splicing in the operands
/// of a nested node of the same kind.
fn push_flat(list: &mut Vec<Filter>, filter: Filter, is_and: bool) {
    match filter {
        Filter::And(inner) if is_and => list.extend(inner),
        Filter::Or(inner) if !is_and => list.extend(inner),
        other => list.push(other),
    }
}

/// The only filter of `list`, or `make(list)`.
fn combine(mut list: Vec<Filter>, make: fn(Vec<Filter>) -> Filter) -> Filter {
    if list.len() == 1 {
        if let Some(only) = list.pop() {
            return only;
        }
    }
    make(list)
}

/// `left OP right` as a node. A field goes on the left (a literal on the left is swapped
/// with a field on the right, flipping the operator). `=`/`!=` against `""` or `null` on an
/// untransformed field are `Empty`/`Not(Empty)`; everything else is a `Compare`, quantified
/// `Any` for the `?` forms and `All` otherwise (two literals: `All`).
fn condition(left: Side, sign: Sign, any: bool, right: Side) -> Result<Filter> {
    let op = match sign {
        Sign::Like | Sign::NotLike => return like(left, sign, any, right),
        Sign::Eq => CompareOp::Eq,
        Sign::Ne => CompareOp::Ne,
        Sign::Gt => CompareOp::Gt,
        Sign::Gte => CompareOp::Gte,
        Sign::Lt => CompareOp::Lt,
        Sign::Lte => CompareOp::Lte,
    };
    let (left, op, right) = match (left, right) {
        (literal @ Side::Literal { .. }, field @ Side::Field { .. }) => {
            (field, op.flipped(), literal)
        }
        (left, right) => (left, op, right),
    };
    let quantifier = match (&left, any) {
        (Side::Field { .. }, true) => Quantifier::Any,
        _ => Quantifier::All,
    };
    if let (Side::Field { path, transform: Transform::None, .. }, Side::Literal { value, .. }) =
        (&left, &right)
    {
        let empty_literal = value.is_null() || value.as_str() == Some("");
        if empty_literal && matches!(op, CompareOp::Eq | CompareOp::Ne) {
            let empty = Filter::Empty { path: path.clone() };
            return Ok(if op == CompareOp::Eq { empty } else { empty.not() });
        }
    }
    Ok(Filter::Compare { left: left.into_operand(), op, right: right.into_operand(), quantifier })
}

/// `field ~ text` (`!~`, `?~`, `?!~`) as a `Like`. Text without an unescaped `%` matches
/// anywhere: its `%`, `_` and `\` are escaped and it is wrapped in `%...%`; text with one is
/// the pattern itself. A number counts as its text. `:lower` changes nothing (`Like` ignores
/// ASCII case). `!~` is "no value matches", `?!~` "some value does not match".
fn like(left: Side, sign: Sign, any: bool, right: Side) -> Result<Filter> {
    let symbol = format!("{}{}", if any { "?" } else { "" }, sign.symbol());
    let text = match right {
        Side::Field { position, .. } => {
            let detail = format!("a field on the right of `{symbol}` is not supported");
            return Err(query_error_at(position, detail));
        }
        Side::Literal { number_text: Some(digits), .. } => digits,
        Side::Literal { value: Value::String(text), .. } => text,
        Side::Literal { value: Value::Int(whole), .. } => whole.to_string(),
        Side::Literal { value: Value::Float(float), .. } => float.to_string(),
        Side::Literal { value, position, .. } => {
            let detail = format!("`{symbol}` needs text or a number, not a {}", value.type_name());
            return Err(query_error_at(position, detail));
        }
    };
    let path = match left {
        Side::Field { path, transform: Transform::None | Transform::Lower, .. } => path,
        Side::Field { position, .. } => {
            let detail = format!("`:length` cannot be used with `{symbol}`");
            return Err(query_error_at(position, detail));
        }
        Side::Literal { position, .. } => {
            let detail = format!("the left of `{symbol}` must be a field");
            return Err(query_error_at(position, detail));
        }
    };
    let pattern = if has_unescaped_percent(&text) {
        text
    } else {
        let mut pattern = String::with_capacity(text.len() + 2);
        pattern.push('%');
        for c in text.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    };
    let negated = sign == Sign::NotLike;
    let quantifier = if any != negated { Quantifier::Any } else { Quantifier::All };
    let like = Filter::Like { path, pattern, quantifier };
    Ok(if negated { like.not() } else { like })
}

fn has_unescaped_percent(text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '%' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ast::FILTER_NODES_MAX;
    use crate::test_support::{seed_or, Rng};
    use CompareOp::*;
    use Quantifier::{All, Any};

    const NOW: &str = "2024-02-29T13:14:15.678Z";

    fn parse_with(text: &str, params: &Params, variables: &Map) -> Result<Filter> {
        parse_filter(text, &FilterContext { params, variables, now: Date::parse(NOW).unwrap() })
    }

    fn try_parse(text: &str) -> Result<Filter> {
        parse_with(text, &Params::new(), &Map::new())
    }

    fn parse(text: &str) -> Filter {
        try_parse(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
    }

    fn error_position(result: Result<impl std::fmt::Debug>) -> usize {
        match result {
            Err(Error::InvalidQuery { position: Some(position), .. }) => position,
            other => panic!("expected a positioned InvalidQuery, got {other:?}"),
        }
    }

    /// Each case marks with `»` the byte its error must point at; the text parsed is the case
    /// without the mark.
    fn assert_error_positions(cases: &[&str], parse: impl Fn(&str) -> Result<Filter>) {
        for case in cases {
            let expected = case.find('»').unwrap();
            assert_eq!(error_position(parse(&case.replace('»', ""))), expected, "{case:?}");
        }
    }

    fn field(path: &str, transform: Transform) -> Operand {
        Operand::Field { path: FieldPath::parse(path).unwrap(), transform }
    }

    fn value(value: impl Into<Value>) -> Operand {
        Operand::Value(value.into())
    }

    fn compare(left: Operand, op: CompareOp, right: Operand, quantifier: Quantifier) -> Filter {
        Filter::Compare { left, op, right, quantifier }
    }

    fn cmp(path: &str, op: CompareOp, right: impl Into<Value>, quantifier: Quantifier) -> Filter {
        compare(field(path, Transform::None), op, value(right), quantifier)
    }

    fn eq(path: &str, right: i64) -> Filter {
        cmp(path, Eq, right, All)
    }

    fn empty(path: &str) -> Filter {
        Filter::Empty { path: FieldPath::parse(path).unwrap() }
    }

    fn like(path: &str, pattern: &str, quantifier: Quantifier) -> Filter {
        Filter::Like { path: FieldPath::parse(path).unwrap(), pattern: pattern.into(), quantifier }
    }

    #[test]
    fn every_operator_maps_to_its_node() {
        let (tags_length, lower) = (field("tags", Transform::Length), Transform::Lower);
        let cases = [
            ("a = 1", cmp("a", Eq, 1, All)),
            ("a.b ?= 'x'", cmp("a.b", Eq, "x", Any)),
            ("a != 2.5", cmp("a", Ne, 2.5, All)),
            ("a ?!= -2", cmp("a", Ne, -2, Any)),
            ("a > -3", cmp("a", Gt, -3, All)),
            ("a ?> 3", cmp("a", Gt, 3, Any)),
            ("a >= 9223372036854775807", cmp("a", Gte, i64::MAX, All)),
            ("a ?>= 9223372036854775808", cmp("a", Gte, 9.223_372_036_854_776e18, Any)),
            ("a < true", cmp("a", Lt, true, All)),
            ("a ?< False", cmp("a", Lt, false, Any)),
            ("a <= 0.5", cmp("a", Lte, 0.5, All)),
            ("a ?<= 1", cmp("a", Lte, 1, Any)),
            ("5 < a", cmp("a", Gt, 5, All)),
            ("5 ?>= a", cmp("a", Lte, 5, Any)),
            ("a = ''", empty("a")),
            ("a = NULL", empty("a")),
            ("null ?= a", empty("a")),
            ("a != \"\"", empty("a").not()),
            ("a ?!= null", empty("a").not()),
            ("a > ''", cmp("a", Gt, "", All)),
            ("tags:length ?= ''", compare(tags_length.clone(), Eq, value(""), Any)),
            ("3 < tags:length", compare(tags_length.clone(), Gt, value(3), All)),
            ("name:lower = 'x'", compare(field("name", lower), Eq, value("x"), All)),
            ("tags:each = 1", eq("tags", 1)),
            ("a = b", compare(field("a", Transform::None), Eq, field("b", Transform::None), All)),
            (
                "a ?< b.c:length",
                compare(field("a", Transform::None), Lt, field("b.c", Transform::Length), Any),
            ),
            ("1 = 1", compare(value(1), Eq, value(1), All)),
            ("'a' ?!= 'b'", compare(value("a"), Ne, value("b"), All)),
            ("a ~ 'x'", like("a", "%x%", All)),
            ("a ?~ 'x'", like("a", "%x%", Any)),
            ("a !~ 'x'", like("a", "%x%", Any).not()),
            ("a ?!~ 'x'", like("a", "%x%", All).not()),
            (r"a ~ 'a_b\\c'", like("a", r"%a\_b\\c%", All)),
            (r"a ~ 'x\\%'", like("a", r"%x\\\%%", All)),
            ("a ~ 'ab%'", like("a", "ab%", All)),
            ("a ~ 12.50", like("a", "%12.50%", All)),
            ("a:lower ~ 'X'", like("a", "%X%", All)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_nesting_flattens() {
        let (a, b, c, d) = (eq("a", 1), eq("b", 2), eq("c", 3), eq("d", 4));
        let and = |items: &[&Filter]| Filter::And(items.iter().map(|f| (*f).clone()).collect());
        let or = |items: &[&Filter]| Filter::Or(items.iter().map(|f| (*f).clone()).collect());
        assert_eq!(parse("a=1 && b=2 || c=3"), or(&[&and(&[&a, &b]), &c]));
        assert_eq!(parse("a=1 || b=2 && c=3 || d=4"), or(&[&a, &and(&[&b, &c]), &d]));
        assert_eq!(parse("(a=1 || b=2) && c=3"), and(&[&or(&[&a, &b]), &c]));
        assert_eq!(parse("(a=1 && b=2) && (c=3 && d=4)"), and(&[&a, &b, &c, &d]));
        assert_eq!(parse("a=1 || (b=2 || (c=3)) // comment"), or(&[&a, &b, &c]));
        let nested = format!("{}a=1{}", "(".repeat(FILTER_DEPTH_MAX), ")".repeat(FILTER_DEPTH_MAX));
        assert_eq!(parse(&nested), a);
        assert_eq!(error_position(try_parse(&format!("({nested})"))), FILTER_DEPTH_MAX);
        let at_node_limit = vec!["a=1"; FILTER_NODES_MAX - 1].join("&&"); // and the `And`
        assert!(try_parse(&at_node_limit).is_ok());
        let over = try_parse(&format!("{at_node_limit}&&a=1"));
        assert!(matches!(over, Err(Error::LimitExceeded { .. })));
    }

    #[test]
    fn placeholders_bind_whole_values() {
        let tricky = "it's \"x\" || a = 1 // ";
        let params: Params =
            [("s".into(), tricky.into()), ("n".into(), 3.into()), ("e".into(), "".into())].into();
        let parsed = parse_with("a = {:s} && {:n} < b ||c={:e}", &params, &Map::new());
        let expected = Filter::Or(vec![
            Filter::And(vec![cmp("a", Eq, tricky, All), cmp("b", Gt, 3, All)]),
            empty("c"),
        ]);
        assert_eq!(parsed.unwrap(), expected);
        let missing = parse_with("a = 1 && b = {:nope}", &params, &Map::new());
        assert_eq!(error_position(missing), 13);
    }

    #[test]
    fn request_variables_macros_and_their_defaults() {
        let variables: Map = [
            ("@request.auth.id".into(), "u1".into()),
            ("@request.body.x:isset".into(), true.into()),
            ("@yesterday".into(), "overridden".into()),
        ]
        .into();
        let value_of =
            |name: &str| match parse_with(&format!("a > {name}"), &Params::new(), &variables) {
                Ok(Filter::Compare { right: Operand::Value(value), .. }) => Ok(value),
                other => other.map(|filter| panic!("{filter:?}")),
            };
        for (name, expected) in [
            ("@request.auth.id", Value::from("u1")),
            ("@request.auth.email", "".into()),
            ("@request.body.x:isset", true.into()),
            ("@request.body.y:isset", false.into()),
            ("@request.auth.id:isset", true.into()),
            ("@request.auth.email:isset", false.into()),
            ("@request.method", Value::Null),
            ("@yesterday", "overridden".into()),
            ("@todayStart", Date::parse("2024-02-29").unwrap().into()),
            ("@weekday", 4.into()),
        ] {
            assert_eq!(value_of(name).unwrap(), expected, "{name}");
        }
        assert_eq!(parse("@request.auth.id != ''"), compare(value(""), Ne, value(""), All));
        assert_eq!(error_position(value_of("@collection.users.id")), 4);
        assert_eq!(error_position(value_of("@Now")), 4);
    }

    #[test]
    fn bad_filters_are_refused_at_the_right_byte() {
        #[rustfmt::skip]
        let cases = [
            "»", "  // only a comment»", "a = »'unterminated", "a = »", "a =»= 1", "(a=1»",
            "(a=1 »b=2)", "a=1»)", "a = 1 »b = 2", "a = ».5", "a = »5.", "a = »-", "a=1 &&»",
            "a=1 || »", "a»", "a »1", "»= 1", "(»)", "a = »(b)", "a.b»:upper = 1", "a»:isset = 1",
            "»a..b = 1", "»count(a) > 1", "a = »lower ('X')", "»@foo = 1", "»#x = 1", "'a' ~ »b",
            "»'a' !~ 'b'", "»a:length ~ 'x'", "a ~ »null", "a = 1»e5", "a = 1.2».3",
        ];
        assert_error_positions(&cases, try_parse);
    }

    #[test]
    fn text_length_limit_at_the_boundary() {
        let padded = format!("{:<width$}", "a = 1", width = FILTER_TEXT_BYTES_MAX);
        assert_eq!(parse(&padded), eq("a", 1));
        let commented = format!("a = 1 //{}", "é".repeat((FILTER_TEXT_BYTES_MAX - 8) / 2));
        assert_eq!(commented.len(), FILTER_TEXT_BYTES_MAX);
        assert_eq!(parse(&commented), eq("a", 1));
        assert!(matches!(try_parse(&format!("{padded} ")), Err(Error::LimitExceeded { .. })));
    }

    #[test]
    fn sorts_parse_with_limits() {
        let key =
            |path: &str, descending| SortKey { path: FieldPath::parse(path).unwrap(), descending };
        let keys = parse_sort(" -created, +title,,name.first ,").unwrap();
        assert_eq!(keys, [key("created", true), key("title", false), key("name.first", false)]);
        assert_eq!(parse_sort("").unwrap(), []);
        assert_eq!(parse_sort(" , ").unwrap(), []);
        let eight = ["a"; SORT_KEYS_MAX].join(",");
        assert_eq!(parse_sort(&eight).unwrap().len(), SORT_KEYS_MAX);
        assert!(matches!(parse_sort(&format!("{eight},b")), Err(Error::LimitExceeded { .. })));
        let longest = format!("-{}", "x".repeat(SORT_ITEM_BYTES_MAX - 1));
        assert_eq!(parse_sort(&longest).unwrap(), [key(&longest[1..], true)]);
        assert!(matches!(parse_sort(&format!("{longest}x")), Err(Error::LimitExceeded { .. })));
        let cases = ["a, »-@random", "»@rowid", "a,,»b..c", "»- a", "»a b", "»a:lower", "»1a"];
        assert_error_positions(&cases, |text| parse_sort(text).map(|_| Filter::True));
    }

    #[test]
    fn random_text_never_panics() {
        let seed = seed_or(0x5eed_f11e_u64);
        let mut rng = Rng(seed | 1);
        #[rustfmt::skip]
        let pieces = [
            "a", "b.c", ":length", ":lower", ":x", "@now", "@request.auth.id", "@", "#", "_", "1",
            "-", ".", "5", "'", "\"", "\\", "\\u", "d83d", "{:", "p", "}", "(", ")", "&&", "||",
            "&", "?", "=", "!", "~", ">", "<", " ", "//", "\n", "é", "😀", "null", "true", ",",
        ];
        let valid = [
            r"a = 1 && (b.c ?~ 'x\u00e9' || d:length > -2.5) // c",
            "@request.auth.id != '' && tags:each ?!= {:p} || x <= @todayEnd",
        ];
        let params: Params = [("p".to_string(), Value::Int(1))].into();
        let context = FilterContext::new(&params, &params);
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut text = String::new();
            if round % 2 == 0 {
                (0..rng.below(24)).for_each(|_| text.push_str(pieces[rng.below(pieces.len())]));
            } else {
                text.push_str(valid[rng.below(valid.len())]);
                for _ in 0..=rng.below(4) {
                    let at = rng.below(text.len());
                    if text.is_char_boundary(at) {
                        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                        let removed = if rng.below(2) == 0 { at } else { end };
                        text.replace_range(at..removed, pieces[rng.below(pieces.len())]);
                    }
                }
            }
            let outcome = std::panic::catch_unwind(|| {
                let _ = parse_sort(&text);
                parse_filter(&text, &context).is_ok()
            });
            assert!(outcome.is_ok(), "seed {seed}, round {round}: {text:?} panicked");
            accepted += usize::from(outcome.unwrap_or(false));
        }
        assert!(accepted > 100, "seed {seed}: only {accepted} mutated filters were valid");
    }
}
