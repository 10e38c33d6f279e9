//! The tokens of PocketBase's filter syntax (see `pocketbase` for the grammar built on them),
//! and the constants some of them stand for: numbers and the date macros (`@now`, ...).
//!
//! Whitespace is space, tab, `\n` and `\r`; `// ...` is a comment to the end of the line.
//! Text in `'...'` or `"..."` has JSON-style escapes decoded (`\" \' \\ \/ \n \r \t \b \f
//! \uXXXX`, surrogate pairs included); an unknown escape `\x` stays as written, both characters.
//! A number is `-`?, digits, and at most one `.` followed by digits: an `Int` when whole and in
//! range, else a `Float`.
//!
//! Thread safety: pure functions over borrowed text.
//!
//! Invariant: every token carries the byte offset of its first character in the filter text,
//! and every lexing error points at the byte where the bad token starts.

use super::ast::query_error_at;
use crate::value::{civil_from_days, days_from_civil, Date, Value, DATE_MS_MAX, DATE_MS_MIN};
use crate::Result;
use std::str::CharIndices;

/// A comparison written between two operands (with or without the `?` "any" prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sign {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `~`
    Like,
    /// `!~`
    NotLike,
}

/// The operators by their text, longest first so `>=` is not read as `>` then `=`.
const SIGNS: [(&str, Sign); 8] = [
    ("!=", Sign::Ne),
    (">=", Sign::Gte),
    ("<=", Sign::Lte),
    ("!~", Sign::NotLike),
    ("=", Sign::Eq),
    (">", Sign::Gt),
    ("<", Sign::Lt),
    ("~", Sign::Like),
];

impl Sign {
    /// The operator as written, without the `?`.
    pub(crate) fn symbol(self) -> &'static str {
        SIGNS.iter().find(|(_, sign)| *sign == self).map_or("?", |(symbol, _)| symbol)
    }
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A name as written: a field, `true`/`false`/`null`, or an `@` variable or macro.
    Identifier(String),
    /// Quoted text, escapes decoded.
    Text(String),
    /// A number: as written (`-12`, `3.50`), and its value.
    Number { text: String, value: Value },
    /// `{:name}`: the name.
    Placeholder(String),
    /// A comparison; `any` for its `?` form.
    Sign { sign: Sign, any: bool },
    /// `&&`
    And,
    /// `||`
    Or,
    /// `(`
    Open,
    /// `)`
    Close,
}

impl TokenKind {
    /// The token for an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            TokenKind::Identifier(name) => format!("`{name}`"),
            TokenKind::Text(_) => "text".to_string(),
            TokenKind::Number { text, .. } => format!("the number {text}"),
            TokenKind::Placeholder(name) => format!("the placeholder {{:{name}}}"),
            TokenKind::Sign { sign, any } => {
                format!("`{}{}`", if *any { "?" } else { "" }, sign.symbol())
            }
            TokenKind::And => "`&&`".to_string(),
            TokenKind::Or => "`||`".to_string(),
            TokenKind::Open => "`(`".to_string(),
            TokenKind::Close => "`)`".to_string(),
        }
    }
}

/// One token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) position: usize,
}

/// Splits `text` into tokens, or says where it cannot.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(first) = text[at..].chars().next() {
        let rest = &text[at..];
        let start = at;
        let kind = match first {
            ' ' | '\t' | '\n' | '\r' => {
                at += 1;
                continue;
            }
            '/' if rest.starts_with("//") => {
                at += rest.find('\n').unwrap_or(rest.len());
                continue;
            }
            '(' | ')' => {
                at += 1;
                if first == '(' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                }
            }
            '&' | '|' => {
                let doubled = if first == '&' { "&&" } else { "||" };
                if !rest.starts_with(doubled) {
                    return Err(query_error_at(
                        start,
                        format!("`{first}` must be doubled: `{doubled}`"),
                    ));
                }
                at += 2;
                if first == '&' {
                    TokenKind::And
                } else {
                    TokenKind::Or
                }
            }
            '\'' | '"' => {
                let (decoded, length) = text_literal(rest, start)?;
                at += length;
                TokenKind::Text(decoded)
            }
            '{' => {
                let length = placeholder_length(rest)
                    .ok_or_else(|| query_error_at(start, "a placeholder is written `{:name}`"))?;
                at += length;
                TokenKind::Placeholder(rest[2..length - 1].to_string())
            }
            '-' | '0'..='9' => {
                let length = number_length(rest, start)?;
                at += length;
                let text = &rest[..length];
                TokenKind::Number { text: text.to_string(), value: number_value(text, start)? }
            }
            c if c.is_alphabetic() || matches!(c, '_' | '@' | '#') => {
                let length = identifier_length(rest, start)?;
                at += length;
                TokenKind::Identifier(rest[..length].to_string())
            }
            _ => {
                let (any, operator) = match rest.strip_prefix('?') {
                    Some(after) => (true, after),
                    None => (false, rest),
                };
                let Some((symbol, sign)) =
                    SIGNS.iter().find(|(symbol, _)| operator.starts_with(symbol))
                else {
                    return Err(query_error_at(start, format!("unexpected character {first:?}")));
                };
                at += usize::from(any) + symbol.len();
                TokenKind::Sign { sign: *sign, any }
            }
        };
        tokens.push(Token { kind, position: start });
    }
    Ok(tokens)
}

/// The byte length of the identifier at the start of `rest`.
fn identifier_length(rest: &str, start: usize) -> Result<usize> {
    // The first character (a letter, `_`, `@` or `#`) was checked by the caller.
    let first = rest.chars().next().map_or(0, char::len_utf8);
    let later = rest[first..]
        .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | ':')))
        .unwrap_or(rest.len() - first);
    let name = &rest[..first + later];
    if matches!(name, "@" | "_" | "#") {
        return Err(query_error_at(start, format!("`{name}` alone is not a name")));
    }
    if name.ends_with('.') || name.ends_with(':') {
        return Err(query_error_at(start, format!("the name `{name}` must not end in `.` or `:`")));
    }
    Ok(name.len())
}

/// The byte length of the number at the start of `rest`: `-`?, digits, and `.` digits.
fn number_length(rest: &str, start: usize) -> Result<usize> {
    let bytes = rest.as_bytes();
    let digits_from = |from: usize| {
        bytes[from.min(bytes.len())..].iter().take_while(|b| b.is_ascii_digit()).count()
    };
    let sign = usize::from(bytes.first() == Some(&b'-'));
    let whole = digits_from(sign);
    if whole == 0 {
        return Err(query_error_at(start, "a `-` must start a number"));
    }
    let mut length = sign + whole;
    if bytes.get(length) == Some(&b'.') {
        let fraction = digits_from(length + 1);
        if fraction == 0 {
            let shown = &rest[..=length];
            return Err(query_error_at(start, format!("the number `{shown}` ends in a `.`")));
        }
        length += 1 + fraction;
    }
    Ok(length)
}

/// A number's value: `Int` when whole and in range, else `Float`.
fn number_value(text: &str, start: usize) -> Result<Value> {
    if !text.contains('.') {
        if let Ok(whole) = text.parse::<i64>() {
            return Ok(Value::Int(whole));
        }
    }
    match text.parse::<f64>() {
        Ok(float) if float.is_finite() => Ok(Value::Float(float)),
        _ => Err(query_error_at(start, format!("the number {text} is out of range"))),
    }
}

/// The byte length of `{:name}` at the start of `rest`, if it is one.
fn placeholder_length(rest: &str) -> Option<usize> {
    let name = rest.strip_prefix("{:")?;
    let name_length =
        name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(name.len());
    (name_length > 0 && name[name_length..].starts_with('}')).then_some(2 + name_length + 1)
}

/// Decodes the quoted text at the start of `rest` (which starts with its quote): the text and
/// the byte length of the literal, quotes included.
fn text_literal(rest: &str, start: usize) -> Result<(String, usize)> {
    let mut chars = rest.char_indices();
    let quote = chars.next().map_or('"', |(_, c)| c);
    let mut decoded = String::new();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            return Ok((decoded, offset + 1));
        }
        if c != '\\' {
            decoded.push(c);
            continue;
        }
        let escape_at = start + offset;
        let Some((_, escaped)) = chars.next() else { break };
        match escaped {
            '"' | '\'' | '\\' | '/' => decoded.push(escaped),
            'n' => decoded.push('\n'),
            'r' => decoded.push('\r'),
            't' => decoded.push('\t'),
            'b' => decoded.push('\u{8}'),
            'f' => decoded.push('\u{c}'),
            'u' => decoded.push(unicode_escape(&mut chars, escape_at)?),
            other => {
                decoded.push('\\');
                decoded.push(other);
            }
        }
    }
    Err(query_error_at(start, "the text is not closed"))
}

/// The character of a `\uXXXX` escape (after its `u`), with its low half when it is the high
/// half of a surrogate pair.
fn unicode_escape(chars: &mut CharIndices, escape_at: usize) -> Result<char> {
    let bad = |detail: &str| query_error_at(escape_at, detail.to_string());
    let high = hex4(chars).ok_or_else(|| bad("`\\u` needs four hex digits"))?;
    if !(0xD800..0xDC00).contains(&high) {
        return char::from_u32(high).ok_or_else(|| bad("`\\u` escapes a lone low surrogate"));
    }
    let mut ahead = chars.clone();
    let low = match (ahead.next(), ahead.next()) {
        (Some((_, '\\')), Some((_, 'u'))) => {
            hex4(&mut ahead).filter(|low| (0xDC00..0xE000).contains(low))
        }
        _ => None,
    };
    let low = low.ok_or_else(|| bad("`\\u` escapes a high surrogate without its low half"))?;
    *chars = ahead;
    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        .ok_or_else(|| bad("`\\u` escapes no character"))
}

/// Four hex digits as a number.
fn hex4(chars: &mut CharIndices) -> Option<u32> {
    (0..4).try_fold(0, |number, _| Some(number * 16 + chars.next()?.1.to_digit(16)?))
}

const MS_PER_DAY: i64 = 86_400_000;

/// The value of a date macro at `now` (UTC), if `name` is one.
pub(crate) fn date_macro(name: &str, now: Date) -> Option<Value> {
    let ms = now.unix_ms();
    let day_number = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(day_number);
    let start_of = |year, month| days_from_civil(year, month, 1) * MS_PER_DAY;
    let (next_month_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let date = |ms: i64| Date::from_unix_ms(ms.clamp(DATE_MS_MIN, DATE_MS_MAX)).map(Value::Date);
    match name {
        "@now" => Some(Value::Date(now)),
        "@yesterday" => date(ms - MS_PER_DAY),
        "@tomorrow" => date(ms + MS_PER_DAY),
        "@todayStart" => date(day_number * MS_PER_DAY),
        "@todayEnd" => date((day_number + 1) * MS_PER_DAY - 1),
        "@monthStart" => date(start_of(year, month)),
        "@monthEnd" => date(start_of(next_month_year, next_month) - 1),
        "@yearStart" => date(start_of(year, 1)),
        "@yearEnd" => date(start_of(year + 1, 1) - 1),
        "@second" => Some(Value::Int(in_day / 1000 % 60)),
        "@minute" => Some(Value::Int(in_day / 60_000 % 60)),
        "@hour" => Some(Value::Int(in_day / 3_600_000)),
        "@day" => Some(Value::Int(day)),
        "@month" => Some(Value::Int(month)),
        "@year" => Some(Value::Int(year)),
        "@weekday" => Some(Value::Int((day_number + 4).rem_euclid(7))), // 1970-01-01: Thursday
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text).unwrap().into_iter().map(|token| token.kind).collect()
    }

    fn error_position(text: &str) -> usize {
        match tokenize(text) {
            Err(Error::InvalidQuery { position: Some(position), .. }) => position,
            other => panic!("{text:?}: expected a positioned error, got {other:?}"),
        }
    }

    fn date(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    fn text(decoded: &str) -> TokenKind {
        TokenKind::Text(decoded.to_string())
    }

    #[test]
    fn every_token_kind_with_positions() {
        let tokens =
            tokenize("(a.b:length ?>= -1.5)||x!~'t' && @request.auth.id={:p1} // c\n#h").unwrap();
        let positions: Vec<usize> = tokens.iter().map(|token| token.position).collect();
        assert_eq!(positions, [0, 1, 12, 16, 20, 21, 23, 24, 26, 30, 33, 49, 50, 61]);
        assert_eq!(tokens[2].kind, TokenKind::Sign { sign: Sign::Gte, any: true });
        assert_eq!(tokens[3].kind, TokenKind::Number { text: "-1.5".into(), value: (-1.5).into() });
        assert_eq!(tokens[12].kind, TokenKind::Placeholder("p1".into()));
        assert_eq!(tokens[13].kind, TokenKind::Identifier("#h".into()));
        for (symbol, sign) in SIGNS {
            assert_eq!(kinds(&format!("?{symbol}")), [TokenKind::Sign { sign, any: true }]);
            assert_eq!(kinds(symbol), [TokenKind::Sign { sign, any: false }]);
        }
        assert_eq!(kinds("\t\r\n// only a comment"), []);
        assert_eq!(kinds("é_1:x"), [TokenKind::Identifier("é_1:x".into())]);
    }

    #[test]
    fn text_escapes_decode_like_json() {
        assert_eq!(
            kinds(r#""a\"b\'c\\d\/e\nf\rg\th\bi\fj""#),
            [text("a\"b'c\\d/e\nf\rg\th\u{8}i\u{c}j")]
        );
        assert_eq!(kinds(r"'\u00e9\u20AC \ud83d\ude00'"), [text("é€ 😀")]);
        assert_eq!(kinds(r"'\x\%'"), [text(r"\x\%")]);
        assert_eq!(kinds(r#"'say "hi"' "it's""#), [text("say \"hi\""), text("it's")]);
    }

    #[test]
    fn malformed_tokens_are_refused_where_they_start() {
        let cases = [
            ("a = 'open", 4),
            ("a = \"open\\\"", 4),
            ("a = .5", 4),
            ("a = 5.", 4),
            ("a = -", 4),
            ("a = -x", 4),
            ("a & b", 2),
            ("a | b", 2),
            ("a ? b", 2),
            ("a ! b", 2),
            ("x = {:}", 4),
            ("x = {:a-b}", 4),
            ("x = {name}", 4),
            ("a. = 1", 0),
            ("a: = 1", 0),
            ("@ = 1", 0),
            (" _ = 1", 1),
            ("a = 1 / 2", 6),
            ("x='\\u12'", 3),
            ("x='\\ud83d'", 3),
            ("x='\\ude00'", 3),
            ("x='\\ud83d\\u0041'", 3),
            ("é = $", 5),
        ];
        for (text, position) in cases {
            assert_eq!(error_position(text), position, "{text:?}");
        }
    }

    #[test]
    fn date_macros_follow_the_calendar() {
        let at = |now: &str, name: &str| date_macro(name, date(now)).unwrap();
        let leap = "2024-02-29T13:14:15.678Z";
        for (name, expected) in [
            ("@now", leap),
            ("@yesterday", "2024-02-28T13:14:15.678Z"),
            ("@tomorrow", "2024-03-01T13:14:15.678Z"),
            ("@todayStart", "2024-02-29T00:00:00.000Z"),
            ("@todayEnd", "2024-02-29T23:59:59.999Z"),
            ("@monthStart", "2024-02-01T00:00:00.000Z"),
            ("@monthEnd", "2024-02-29T23:59:59.999Z"),
            ("@yearStart", "2024-01-01T00:00:00.000Z"),
            ("@yearEnd", "2024-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(at(leap, name), Value::Date(date(expected)), "{name}");
        }
        let fields = ["@second", "@minute", "@hour", "@day", "@month", "@weekday", "@year"];
        let numbers = |now| fields.map(|name| at(now, name).as_i64().unwrap());
        assert_eq!(numbers(leap), [15, 14, 13, 29, 2, 4, 2024]);
        let new_year_eve = "2023-12-31T23:59:59.999Z";
        assert_eq!(numbers(new_year_eve), [59, 59, 23, 31, 12, 0, 2023]);
        assert_eq!(at(new_year_eve, "@tomorrow"), Value::Date(date("2024-01-01T23:59:59.999Z")));
        assert_eq!(at(new_year_eve, "@monthEnd"), Value::Date(date(new_year_eve)));
        assert_eq!(at(new_year_eve, "@yearStart"), Value::Date(date("2023-01-01")));
        assert_eq!(at("1969-12-31T12:00:00Z", "@weekday"), Value::Int(3));
        assert_eq!(
            at("9999-12-31T23:00:00Z", "@tomorrow"),
            Value::Date(date("9999-12-31T23:59:59.999Z"))
        );
        for day_number in (-719_528..2_932_896).step_by(7_919) {
            let (year, month, day) = civil_from_days(day_number);
            assert_eq!(days_from_civil(year, month, day), day_number);
            let midnight = date(&format!("{year:04}-{month:02}-{day:02}"));
            assert_eq!(midnight.unix_ms(), day_number * MS_PER_DAY);
        }
    }
}
