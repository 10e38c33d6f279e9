//! SQL `LIKE` matching, as PocketBase's `~` uses it: `%` matches any run of characters
//! (including none), `_` exactly one character, `\` makes the next character literal; letters
//! compare ASCII case-insensitively (SQLite's rule); the whole text must match.
//!
//! Matching is the classic two-pointer wildcard walk with one backtrack point (the last `%`),
//! so it takes O(text × pattern) steps at worst and no recursion.
//!
//! Thread safety: pure functions.

/// One element of a parsed pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `%`.
    AnyRun,
    /// `_`.
    AnyOne,
    /// A character to match (already lower-cased if ASCII).
    Literal(char),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => Token::AnyRun,
            '_' => Token::AnyOne,
            // A trailing backslash escapes nothing: it matches itself.
            '\\' => Token::Literal(chars.next().unwrap_or('\\').to_ascii_lowercase()),
            c => Token::Literal(c.to_ascii_lowercase()),
        });
    }
    out
}

/// True if all of `text` matches `pattern`.
pub fn like(text: &str, pattern: &str) -> bool {
    let pattern = tokens(pattern);
    let text: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut t, mut p) = (0, 0);
    // Where to resume after the last `%`: the pattern position after it, and the text position
    // it has consumed up to.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::AnyRun) => {
                p += 1;
                resume = Some((p, t));
            }
            Some(Token::AnyOne) => {
                p += 1;
                t += 1;
            }
            Some(Token::Literal(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                // Let the last `%` swallow one more character and try again.
                Some((after, consumed)) => {
                    p = after;
                    t = consumed + 1;
                    resume = Some((after, consumed + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|token| *token == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn wildcards_escapes_and_case() {
        let cases = [
            ("hello", "hello", true),
            ("hello", "%ell%", true),
            ("hello", "%ELL%", true),
            ("HeLLo", "hello", true),
            ("hello", "h_llo", true),
            ("hello", "h_lo", false),
            ("hello", "%", true),
            ("", "%", true),
            ("", "", true),
            ("", "_", false),
            ("a", "", false),
            ("abc", "a%c", true),
            ("abcbc", "a%bc", true),
            ("abcbd", "a%bc", false),
            ("50%", "50\\%", true),
            ("500", "50\\%", false),
            ("a_b", "a\\_b", true),
            ("axb", "a\\_b", false),
            ("back\\slash", "%\\\\%", true),
            ("trailing\\", "trailing\\", true),
            ("héllo", "h_llo", true),
            ("ÉCOLE", "école", false),
            ("mississippi", "%iss%ppi", true),
            ("mississippi", "%iss%ppx", false),
            ("aaa", "%%%a", true),
        ];
        for (text, pattern, expected) in cases {
            assert_eq!(like(text, pattern), expected, "{text:?} LIKE {pattern:?}");
        }
    }

    #[test]
    fn long_inputs_finish() {
        let text = "a".repeat(5_000);
        let pattern = format!("{}b", "%a".repeat(50));
        assert!(!like(&text, &pattern));
    }
}
