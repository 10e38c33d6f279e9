//! PocketBase's `indexes` entries, SQL `CREATE INDEX` statements, read into nanodb index
//! definitions.
//!
//! Accepted: `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table (column [ASC|DESC], ...)
//! [WHERE column != '']`, names bare or quoted with backticks, double quotes or brackets, an
//! optional `;` at the end. The table name is not checked (PocketBase rewrites it on rename;
//! the statement belongs to its collection anyway). The only `WHERE` accepted is "column is
//! not empty", which is what a nanodb index does anyway: empty values are stored as missing
//! (`records::values`), and unique indexes ignore missing values. Anything else (expressions,
//! `COLLATE`, other conditions) is refused with a reason, never silently changed.
//!
//! Thread safety: pure functions.

use nanodb::{IndexDefinition, IndexField};

/// An index statement, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSql {
    /// The index name.
    pub name: String,
    /// No two records may share the indexed values.
    pub unique: bool,
    /// The columns (field names), each with its direction (true: descending).
    pub columns: Vec<(String, bool)>,
}

impl IndexSql {
    /// The nanodb index this statement describes.
    pub fn definition(&self) -> Result<IndexDefinition, String> {
        let fields = self
            .columns
            .iter()
            .map(|(column, descending)| {
                let path = nanodb::query::FieldPath::parse(column).map_err(|e| e.to_string())?;
                Ok(IndexField { path, descending: *descending })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut definition = IndexDefinition::new(&self.name, &[]).map_err(|e| e.to_string())?;
        definition.fields = fields;
        definition.unique = self.unique;
        Ok(definition)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Text(String),
    Punct(&'static str),
}

fn tokens(sql: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let closing = match c {
            '`' => Some('`'),
            '"' => Some('"'),
            '[' => Some(']'),
            '\'' => Some('\''),
            _ => None,
        };
        if let Some(closing) = closing {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err("a quoted name or text does not end".into()),
                    Some(d) if d == closing => break,
                    Some(d) => text.push(d),
                }
            }
            out.push(if c == '\'' { Token::Text(text) } else { Token::Quoted(text) });
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_alphanumeric() || **d == '_') {
                word.push(d);
                chars.next();
            }
            out.push(Token::Word(word));
            continue;
        }
        chars.next();
        let punct = match (c, chars.peek()) {
            ('!', Some('=')) | ('<', Some('>')) => {
                chars.next();
                "!="
            }
            ('(', _) => "(",
            (')', _) => ")",
            (',', _) => ",",
            (';', _) => ";",
            _ => return Err(format!("unexpected {c:?}")),
        };
        out.push(Token::Punct(punct));
    }
    Ok(out)
}

struct Reader {
    tokens: std::vec::IntoIter<Token>,
    peeked: Option<Token>,
}

impl Reader {
    fn next(&mut self) -> Option<Token> {
        self.peeked.take().or_else(|| self.tokens.next())
    }

    fn peek(&mut self) -> Option<&Token> {
        if self.peeked.is_none() {
            self.peeked = self.tokens.next();
        }
        self.peeked.as_ref()
    }

    /// Consumes the keyword `word` if it comes next.
    fn keyword(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word));
        if found {
            self.next();
        }
        found
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), String> {
        self.keyword(word).then_some(()).ok_or_else(|| format!("expected {word}"))
    }

    fn name(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(name)) | Some(Token::Quoted(name)) => Ok(name),
            _ => Err(format!("expected {what}")),
        }
    }

    fn punct(&mut self, punct: &str) -> Result<(), String> {
        match self.next() {
            Some(Token::Punct(p)) if p == punct => Ok(()),
            _ => Err(format!("expected `{punct}`")),
        }
    }
}

/// Parses one index statement.
pub fn parse(sql: &str) -> Result<IndexSql, String> {
    let mut reader = Reader { tokens: tokens(sql)?.into_iter(), peeked: None };
    reader.expect_keyword("CREATE")?;
    let unique = reader.keyword("UNIQUE");
    reader.expect_keyword("INDEX")?;
    if reader.keyword("IF") {
        reader.expect_keyword("NOT")?;
        reader.expect_keyword("EXISTS")?;
    }
    let name = reader.name("the index name")?;
    reader.expect_keyword("ON")?;
    reader.name("the table name")?;
    reader.punct("(")?;
    let mut columns = Vec::new();
    loop {
        let column = reader.name("a column name")?;
        let descending = if reader.keyword("DESC") {
            true
        } else {
            reader.keyword("ASC");
            false
        };
        if matches!(reader.peek(), Some(Token::Word(_))) {
            return Err(format!("only plain columns are supported (after {column:?})"));
        }
        columns.push((column, descending));
        match reader.next() {
            Some(Token::Punct(",")) => continue,
            Some(Token::Punct(")")) => break,
            _ => return Err("expected `,` or `)`".into()),
        }
    }
    if reader.keyword("WHERE") {
        let column = reader.name("a column in WHERE")?;
        reader.punct("!=")?;
        let empty = matches!(reader.next(), Some(Token::Text(text)) if text.is_empty());
        if !empty || !columns.iter().any(|(indexed, _)| *indexed == column) {
            return Err("the only WHERE supported is `<indexed column> != ''`".into());
        }
    }
    if matches!(reader.peek(), Some(Token::Punct(";"))) {
        reader.next();
    }
    if reader.next().is_some() {
        return Err("unexpected text after the index".into());
    }
    Ok(IndexSql { name, unique, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(parsed: &IndexSql) -> Vec<(&str, bool)> {
        parsed.columns.iter().map(|(c, d)| (c.as_str(), *d)).collect()
    }

    #[test]
    fn pocketbase_statements_parse() {
        let parsed =
            parse("CREATE UNIQUE INDEX `idx_email_x` ON `users` (`email`) WHERE `email` != ''")
                .unwrap();
        assert_eq!((parsed.name.as_str(), parsed.unique), ("idx_email_x", true));
        assert_eq!(columns(&parsed), [("email", false)]);
        let parsed =
            parse("create index if not exists by_n on \"posts\" ([n] DESC, title asc);").unwrap();
        assert!(!parsed.unique);
        assert_eq!(columns(&parsed), [("n", true), ("title", false)]);
        let definition = parsed.definition().unwrap();
        assert_eq!(definition.name, "by_n");
        assert_eq!(definition.fields.len(), 2);
        assert!(definition.fields[0].descending);
    }

    #[test]
    fn unsupported_statements_are_refused() {
        for bad in [
            "",
            "DROP INDEX x",
            "CREATE INDEX x ON t",
            "CREATE INDEX x ON t ()",
            "CREATE INDEX x ON t (a COLLATE NOCASE)",
            "CREATE INDEX x ON t (lower(a))",
            "CREATE INDEX x ON t (a) WHERE a > 1",
            "CREATE INDEX x ON t (a) WHERE b != ''",
            "CREATE INDEX x ON t (a) extra",
            "CREATE INDEX `x ON t (a)",
            "CREATE INDEX x ON t (a) WHERE a != 'x'",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
