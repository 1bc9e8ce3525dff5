//! Splits a `sh -c` script into words and operators, with sh's quoting rules
//! (single quotes literal, double quotes expanding `$x` and `$(...)`, backslash).

/// One piece of a word, kept apart so expansion knows what was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text (quotes removed).
    Lit(String),
    /// `$name` / `${name}`; `quoted` when inside double quotes.
    Var { name: String, quoted: bool },
    /// `$(...)` (its text); `quoted` when inside double quotes.
    Subst { text: String, quoted: bool },
}

/// A shell word: parts joined without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Word(pub Vec<Part>);

impl Word {
    /// The word when it is plain unquoted-or-quoted literal text.
    pub fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(t) => s.push_str(t),
                _ => return None,
            }
        }
        Some(s)
    }

    /// The text as written (for messages).
    pub fn display(&self) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Lit(t) => t.clone(),
                Part::Var { name, .. } => format!("${name}"),
                Part::Subst { text, .. } => format!("$({text})"),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Word(Word),
    /// `;`, newline, `&&`, `||`, `|`, `&`, `(`, `)`.
    Op(&'static str),
    /// A redirection: the operator as written (`>`, `2>`, `2>&1`, `>&2`, `>>`, `<`, `&>`)
    /// and its target word (empty for the `N>&M` forms).
    Redirect(String, Option<Word>),
}

/// Tokenizes `src`; the error is what sh would say about the syntax.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\n' | ';' => {
                out.push(Token::Op(if c == '\n' { "\n" } else { ";" }));
                i += 1;
            }
            '&' | '|' => {
                let double = chars.get(i + 1) == Some(&c);
                if c == '&' && chars.get(i + 1) == Some(&'>') {
                    i += 2;
                    let target = read_word(&chars, &mut i)?;
                    out.push(Token::Redirect("&>".into(), target));
                    continue;
                }
                out.push(Token::Op(match (c, double) {
                    ('&', true) => "&&",
                    ('&', false) => "&",
                    ('|', true) => "||",
                    _ => "|",
                }));
                i += if double { 2 } else { 1 };
            }
            '(' | ')' => {
                out.push(Token::Op(if c == '(' { "(" } else { ")" }));
                i += 1;
            }
            '>' | '<' => {
                let mut op = String::from(c);
                i += 1;
                if c == '>' && chars.get(i) == Some(&'>') {
                    op.push('>');
                    i += 1;
                }
                out.push(redirect(op, &chars, &mut i)?);
            }
            '0'..='9' if matches!(chars.get(i + 1), Some('>' | '<')) => {
                let mut op = String::from(c);
                op.push(chars[i + 1]);
                i += 2;
                if chars.get(i) == Some(&'>') {
                    op.push('>');
                    i += 1;
                }
                out.push(redirect(op, &chars, &mut i)?);
            }
            _ => {
                if let Some(w) = read_word(&chars, &mut i)? {
                    out.push(Token::Word(w));
                }
            }
        }
    }
    Ok(out)
}

/// After a redirection operator: `&N` (fd duplication) or a target word.
fn redirect(mut op: String, chars: &[char], i: &mut usize) -> Result<Token, String> {
    if chars.get(*i) == Some(&'&') {
        op.push('&');
        *i += 1;
        while let Some(d) = chars.get(*i).filter(|d| d.is_ascii_digit()) {
            op.push(*d);
            *i += 1;
        }
        return Ok(Token::Redirect(op, None));
    }
    let target = read_word(chars, i)?;
    if target.is_none() {
        return Err("syntax error: redirection without a target".into());
    }
    Ok(Token::Redirect(op, target))
}

fn is_break(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
    )
}

/// Reads one word starting at `*i` (after skipping blanks); `None` at an operator or the end.
fn read_word(chars: &[char], i: &mut usize) -> Result<Option<Word>, String> {
    while matches!(chars.get(*i), Some(' ' | '\t')) {
        *i += 1;
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut lit = String::new();
    let mut any = false;
    let flush = |lit: &mut String, parts: &mut Vec<Part>| {
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(lit)));
        }
    };
    while let Some(&c) = chars.get(*i) {
        if is_break(c) {
            break;
        }
        any = true;
        match c {
            '\'' => {
                *i += 1;
                let start = *i;
                while chars.get(*i).is_some_and(|&c| c != '\'') {
                    *i += 1;
                }
                if *i >= chars.len() {
                    return Err("syntax error: unterminated quoted string".into());
                }
                lit.extend(&chars[start..*i]);
                // An empty '' still makes a word.
                if start == *i {
                    parts.push(Part::Lit(String::new()));
                }
                *i += 1;
            }
            '"' => {
                *i += 1;
                let mut closed = false;
                if chars.get(*i) == Some(&'"') {
                    parts.push(Part::Lit(String::new()));
                }
                while let Some(&d) = chars.get(*i) {
                    match d {
                        '"' => {
                            closed = true;
                            *i += 1;
                            break;
                        }
                        '\\' if matches!(chars.get(*i + 1), Some('"' | '\\' | '$' | '`')) => {
                            lit.push(chars[*i + 1]);
                            *i += 2;
                        }
                        '$' => {
                            flush(&mut lit, &mut parts);
                            dollar(chars, i, true, &mut parts, &mut lit)?;
                        }
                        _ => {
                            lit.push(d);
                            *i += 1;
                        }
                    }
                }
                if !closed {
                    return Err("syntax error: unterminated quoted string".into());
                }
            }
            '\\' => {
                if let Some(&n) = chars.get(*i + 1) {
                    lit.push(n);
                }
                *i += 2;
            }
            '$' => {
                flush(&mut lit, &mut parts);
                dollar(chars, i, false, &mut parts, &mut lit)?;
            }
            _ => {
                lit.push(c);
                *i += 1;
            }
        }
    }
    flush(&mut lit, &mut parts);
    Ok(any.then_some(Word(parts)))
}

/// At a `$`: a variable, `${...}`, `$(...)`, or a literal dollar.
fn dollar(
    chars: &[char],
    i: &mut usize,
    quoted: bool,
    parts: &mut Vec<Part>,
    lit: &mut String,
) -> Result<(), String> {
    *i += 1;
    match chars.get(*i) {
        Some('(') => {
            let start = *i + 1;
            let mut depth = 1;
            let mut j = start;
            while j < chars.len() {
                match chars[j] {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err("syntax error: unterminated $(".into());
            }
            parts.push(Part::Subst {
                text: chars[start..j].iter().collect(),
                quoted,
            });
            *i = j + 1;
        }
        Some('{') => {
            let start = *i + 1;
            let end = chars[start..]
                .iter()
                .position(|&c| c == '}')
                .map(|p| start + p)
                .ok_or("syntax error: missing '}'")?;
            parts.push(Part::Var {
                name: chars[start..end].iter().collect(),
                quoted,
            });
            *i = end + 1;
        }
        Some(&c) if c.is_ascii_alphanumeric() || c == '_' || c == '?' => {
            let start = *i;
            if c == '?' || c.is_ascii_digit() {
                *i += 1;
            } else {
                while chars
                    .get(*i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    *i += 1;
                }
            }
            parts.push(Part::Var {
                name: chars[start..*i].iter().collect(),
                quoted,
            });
        }
        _ => lit.push('$'),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(src: &str) -> Vec<String> {
        lex(src)
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Token::Word(w) => w.display(),
                Token::Op(o) => format!("<{o}>"),
                Token::Redirect(o, w) => {
                    format!("[{o}{}]", w.map(|w| w.display()).unwrap_or_default())
                }
            })
            .collect()
    }

    #[test]
    fn quotes_operators_and_substitutions() {
        assert_eq!(
            words(
                r#"for i in $(seq 1 3); do curl -s "http://a:1/$i" -o /dev/null 2>&1; done && echo 'a b'"#
            ),
            vec![
                "for",
                "i",
                "in",
                "$(seq 1 3)",
                "<;>",
                "do",
                "curl",
                "-s",
                "http://a:1/$i",
                "-o",
                "/dev/null",
                "[2>&1]",
                "<;>",
                "done",
                "<&&>",
                "echo",
                "a b"
            ]
        );
        assert!(lex("echo 'open").is_err());
        assert_eq!(words("echo a\\ b # note"), vec!["echo", "a b"]);
    }
}
