//! Label and field selectors, as the API server parses and matches them.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {input:?}: {reason}")]
pub struct SelectorError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> SelectorError {
    SelectorError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=` and `==`: the label exists and has one of `values` (exactly one).
    Equals,
    /// `!=`: the label is absent or differs.
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    /// `>` / `<`: the label parses as an integer greater / less than the value.
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    /// Sorted and deduplicated, as the API server keeps them.
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (value, self.values.first()) else {
                    return false;
                };
                match (v.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(v), Ok(b)) if self.op == Op::Gt => v > b,
                    (Ok(v), Ok(b)) => v < b,
                    _ => false,
                }
            }
        }
    }
}

/// `app=web,tier!=db,env in (a,b),!legacy,version`.
///
/// An empty selector matches everything; [`LabelSelector::nothing`] matches
/// nothing (a null `selector` object, as `metav1.LabelSelectorAsSelector`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let tokens = lex(input)?;
        let mut parser = Parser {
            input,
            tokens: &tokens,
            pos: 0,
        };
        let mut requirements = Vec::new();
        if tokens.is_empty() {
            return Ok(Self::default());
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                None => break,
                Some(Token::Comma) => {}
                Some(t) => {
                    return Err(err(
                        input,
                        format!("found '{}', expected: ',' or end of string", t.text()),
                    ));
                }
            }
        }
        Ok(Self::from_requirements(requirements))
    }

    /// A selector that matches no object.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Matches every object (no requirement).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        // Sorted by key, as the API server prints and compares them.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            requirements,
            nothing: false,
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Matches the `metadata.labels` of an object as it is stored (JSON).
    pub fn matches_object(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        self.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    /// Matches against any label lookup.
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(lookup(&r.key)))
    }

    /// The `matchLabels` / `matchExpressions` object form (Deployment.spec.selector).
    /// `null` matches nothing; `{}` matches everything.
    pub fn from_label_selector_json(selector: &Value) -> Result<Self, SelectorError> {
        let input = || selector.to_string();
        let obj = match selector {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(o) => o,
            _ => return Err(err(&input(), "a label selector must be an object")),
        };
        let mut requirements = Vec::new();
        for (field, value) in obj {
            match field.as_str() {
                "matchLabels" => {
                    let labels = match value {
                        Value::Null => continue,
                        Value::Object(l) => l,
                        _ => return Err(err(&input(), "matchLabels must be an object")),
                    };
                    for (k, v) in labels {
                        let Some(v) = v.as_str() else {
                            return Err(err(
                                &input(),
                                format!("matchLabels[{k}] must be a string"),
                            ));
                        };
                        validate_key(k).map_err(|r| err(&input(), r))?;
                        validate_value(v).map_err(|r| err(&input(), r))?;
                        requirements.push(Requirement {
                            key: k.clone(),
                            op: Op::Equals,
                            values: vec![v.to_string()],
                        });
                    }
                }
                "matchExpressions" => {
                    let exprs = match value {
                        Value::Null => continue,
                        Value::Array(e) => e,
                        _ => return Err(err(&input(), "matchExpressions must be a list")),
                    };
                    for (i, expr) in exprs.iter().enumerate() {
                        requirements.push(
                            expression(expr).map_err(|r| {
                                err(&input(), format!("matchExpressions[{i}]: {r}"))
                            })?,
                        );
                    }
                }
                other => {
                    return Err(err(&input(), format!("unknown field {other:?}")));
                }
            }
        }
        Ok(Self::from_requirements(requirements))
    }

    /// A Service-style `selector` map (`{"app":"web"}`): every pair must match.
    pub fn from_match_labels(labels: &Value) -> Result<Self, SelectorError> {
        match labels {
            Value::Null => Ok(Self::default()),
            Value::Object(_) => {
                Self::from_label_selector_json(&serde_json::json!({ "matchLabels": labels }))
            }
            _ => Err(err(&labels.to_string(), "a selector map must be an object")),
        }
    }
}

fn expression(expr: &Value) -> Result<Requirement, String> {
    let key = expr
        .get("key")
        .and_then(Value::as_str)
        .ok_or("key: Required value")?;
    validate_key(key)?;
    let operator = expr
        .get("operator")
        .and_then(Value::as_str)
        .ok_or("operator: Required value")?;
    let mut values = Vec::new();
    match expr.get("values") {
        None | Some(Value::Null) => {}
        Some(Value::Array(vs)) => {
            for v in vs {
                let v = v.as_str().ok_or("values must be strings")?;
                validate_value(v)?;
                values.push(v.to_string());
            }
        }
        Some(_) => return Err("values must be a list".into()),
    }
    let op = match operator {
        "In" => Op::In,
        "NotIn" => Op::NotIn,
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        other => return Err(format!("{other:?} is not a valid label selector operator")),
    };
    match op {
        Op::In | Op::NotIn if values.is_empty() => Err(
            "values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
        ),
        Op::Exists | Op::DoesNotExist if !values.is_empty() => Err(
            "values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                .into(),
        ),
        _ => {
            values.sort();
            values.dedup();
            Ok(Requirement {
                key: key.to_string(),
                op,
                values,
            })
        }
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form (`a=b,c in (d,e),!f`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let first = r.values.first().map(String::as_str).unwrap_or("");
            match r.op {
                Op::Equals => write!(f, "{}={}", r.key, first)?,
                Op::NotEquals => write!(f, "{}!={}", r.key, first)?,
                Op::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Op::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
                Op::Exists => f.write_str(&r.key)?,
                Op::DoesNotExist => write!(f, "!{}", r.key)?,
                Op::Gt => write!(f, "{}>{}", r.key, first)?,
                Op::Lt => write!(f, "{}<{}", r.key, first)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    In,
    NotIn,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Ident(s) => s,
            Token::Not => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '(' | ')' | ',' | '<' | '>') || c.is_whitespace()
}

fn lex(input: &str) -> Result<Vec<Token>, SelectorError> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        chars.next();
        let next_is_eq = chars.peek().is_some_and(|&(_, n)| n == '=');
        let token = match c {
            '!' if next_is_eq => {
                chars.next();
                Token::NotEq
            }
            '!' => Token::Not,
            '=' if next_is_eq => {
                chars.next();
                Token::DoubleEq
            }
            '=' => Token::Eq,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '>' => Token::Gt,
            '<' => Token::Lt,
            _ => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, n)) = chars.peek() {
                    if is_special(n) {
                        break;
                    }
                    end = i + n.len_utf8();
                    chars.next();
                }
                match &input[start..end] {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    word => Token::Ident(word.to_string()),
                }
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

struct Parser<'a> {
    input: &'a str,
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn fail(&self, reason: impl Into<String>) -> SelectorError {
        err(self.input, reason)
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let negated = self.peek() == Some(&Token::Not);
        if negated {
            self.pos += 1;
        }
        let key = match self.next() {
            Some(Token::Ident(k)) => k.clone(),
            Some(t) => {
                let t = t.text().to_string();
                return Err(self.fail(format!("found '{t}', expected: identifier")));
            }
            None => return Err(self.fail("found end of string, expected: identifier")),
        };
        validate_key(&key).map_err(|r| self.fail(r))?;
        let at_end = matches!(self.peek(), None | Some(Token::Comma));
        if negated {
            if !at_end {
                return Err(self.fail(format!("'!{key}' must not be followed by an operator")));
            }
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
                values: Vec::new(),
            });
        }
        if at_end {
            return Ok(Requirement {
                key,
                op: Op::Exists,
                values: Vec::new(),
            });
        }
        let op = match self.next() {
            Some(Token::Eq | Token::DoubleEq) => Op::Equals,
            Some(Token::NotEq) => Op::NotEquals,
            Some(Token::In) => Op::In,
            Some(Token::NotIn) => Op::NotIn,
            Some(Token::Gt) => Op::Gt,
            Some(Token::Lt) => Op::Lt,
            Some(t) => {
                let t = t.text().to_string();
                return Err(self.fail(format!(
                    "found '{t}', expected: '=', '!=', '==', 'in', 'notin', '<' or '>'"
                )));
            }
            None => unreachable!("end of input handled above"),
        };
        let mut values = match op {
            Op::In | Op::NotIn => self.value_set()?,
            _ => vec![self.exact_value()?],
        };
        for v in &values {
            validate_value(v).map_err(|r| self.fail(r))?;
        }
        if matches!(op, Op::Gt | Op::Lt) && values[0].parse::<i64>().is_err() {
            return Err(self.fail(format!(
                "for 'Gt', 'Lt' operators, the value must be an integer, not {:?}",
                values[0]
            )));
        }
        values.sort();
        values.dedup();
        Ok(Requirement { key, op, values })
    }

    /// The value after `=`: an identifier, or empty before `,`/end.
    fn exact_value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Ident(v)) => {
                let v = v.clone();
                self.pos += 1;
                Ok(v)
            }
            // `in`/`notin` are ordinary values after `=`.
            Some(t @ (Token::In | Token::NotIn)) => {
                let v = t.text().to_string();
                self.pos += 1;
                Ok(v)
            }
            Some(t) => {
                let t = t.text().to_string();
                Err(self.fail(format!("found '{t}', expected: identifier")))
            }
        }
    }

    /// `(a, b, )`: identifiers separated by commas; empty entries are "".
    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        if self.next() != Some(&Token::Open) {
            return Err(self.fail("expected '(' after 'in' or 'notin'"));
        }
        let mut values = Vec::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Some(Token::Close) => {
                    if expect_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Some(Token::Comma) => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Some(t @ (Token::Ident(_) | Token::In | Token::NotIn)) if expect_value => {
                    values.push(t.text().to_string());
                    expect_value = false;
                }
                Some(t) => {
                    let t = t.text().to_string();
                    return Err(self.fail(format!("found '{t}', expected: ',' or ')'")));
                }
                None => return Err(self.fail("found end of string, expected: ')'")),
            }
        }
    }
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A qualified name: optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && !is_dns_subdomain(p)
    {
        return Err(format!(
            "invalid label key {key:?}: prefix part must be a DNS subdomain"
        ));
    }
    if !is_name_part(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', \
             start and end with an alphanumeric character, and be at most 63 characters"
        ));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value: {value:?}: a valid label must be an empty string or consist of \
             alphanumeric characters, '-', '_' or '.', start and end with an alphanumeric character, \
             and be at most 63 characters"
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    /// Dotted path split on `.`.
    path: Vec<String>,
    value: String,
    negated: bool,
}

/// `metadata.name=web,metadata.namespace!=kube-system,status.phase=Running`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for term in split_unescaped(input, ',').map_err(|r| err(input, r))? {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, value, negated) = split_term(term)
                .map_err(|r| err(input, r))?
                .ok_or_else(|| err(input, format!("can't understand '{term}'")))?;
            let field = field.trim();
            if field.is_empty() {
                return Err(err(input, format!("empty field name in '{term}'")));
            }
            requirements.push(FieldRequirement {
                path: field.split('.').map(str::to_string).collect(),
                value: unescape(value.trim()).map_err(|r| err(input, r))?,
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// No requirement: matches every object.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Looks the dotted paths up in the object (`metadata.name`, `spec.nodeName`, `type`).
    /// A missing field reads as "" (as for an unscheduled pod's `spec.nodeName`).
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let mut cur = Some(object);
            for part in &r.path {
                cur = cur.and_then(|v| v.get(part));
            }
            let equal = match cur {
                None | Some(Value::Null) => r.value.is_empty(),
                Some(Value::String(s)) => *s == r.value,
                Some(Value::Bool(b)) => r.value == if *b { "true" } else { "false" },
                Some(Value::Number(n)) => n.to_string() == r.value,
                Some(_) => false,
            };
            equal != r.negated
        })
    }
}

/// Splits on `sep` not preceded by a backslash; keeps escapes for [`unescape`].
fn split_unescaped(input: &str, sep: char) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&input[start..i]);
            start = i + 1;
        }
    }
    if escaped {
        return Err("invalid escape sequence at end of selector".into());
    }
    parts.push(&input[start..]);
    Ok(parts)
}

/// `field!=value`, `field==value`, `field=value` (first unescaped operator).
fn split_term(term: &str) -> Result<Option<(&str, &str, bool)>, String> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '!' if term[i + 1..].starts_with('=') => {
                return Ok(Some((&term[..i], &term[i + 2..], true)));
            }
            '=' if term[i + 1..].starts_with('=') => {
                return Ok(Some((&term[..i], &term[i + 2..], false)));
            }
            '=' => return Ok(Some((&term[..i], &term[i + 1..], false))),
            _ => {}
        }
    }
    Ok(None)
}

fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => return Err(format!("invalid escape sequence '\\{e}'")),
                None => return Err("invalid escape sequence at end of value".into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_inequality() {
        let s = LabelSelector::parse("app=web,tier!=db").unwrap();
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "api")])));
        assert!(!s.matches(&labels(&[])));
        let double = LabelSelector::parse("app==web").unwrap();
        assert_eq!(double, LabelSelector::parse("app=web").unwrap());
    }

    #[test]
    fn set_based_and_existence() {
        let s = LabelSelector::parse("env in (a, b),version,!legacy,zone notin (x)").unwrap();
        let ok = labels(&[("env", "b"), ("version", "1"), ("zone", "y")]);
        assert!(s.matches(&ok));
        let mut bad = ok.clone();
        bad.insert("legacy".into(), "true".into());
        assert!(!s.matches(&bad));
        assert!(!s.matches(&labels(&[("env", "c"), ("version", "1")])));
        assert!(!s.matches(&labels(&[("env", "a")])), "version must exist");
        assert!(!s.matches(&labels(&[("env", "a"), ("version", "1"), ("zone", "x")])));
        // notin matches an absent label
        assert!(
            LabelSelector::parse("zone notin (x)")
                .unwrap()
                .matches(&labels(&[]))
        );
    }

    #[test]
    fn whitespace_and_empty() {
        let s = LabelSelector::parse("  app = web ,  env  in  ( a ,b )  ").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "a")])));
        assert!(LabelSelector::parse("").unwrap().is_everything());
        assert!(LabelSelector::parse("   ").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn empty_values() {
        let s = LabelSelector::parse("app=").unwrap();
        assert!(s.matches(&labels(&[("app", "")])));
        assert!(!s.matches(&labels(&[("app", "x")])));
        assert!(!s.matches(&labels(&[])));
        let s = LabelSelector::parse("app in ()").unwrap();
        assert!(s.matches(&labels(&[("app", "")])));
        let s = LabelSelector::parse("app in (,x)").unwrap();
        assert!(s.matches(&labels(&[("app", "")])));
        assert!(s.matches(&labels(&[("app", "x")])));
    }

    #[test]
    fn prefixed_keys_and_gt_lt() {
        let s = LabelSelector::parse("app.kubernetes.io/name=istiod,topology.istio.io/network")
            .unwrap();
        assert!(s.matches(&labels(&[
            ("app.kubernetes.io/name", "istiod"),
            ("topology.istio.io/network", "n1")
        ])));
        let s = LabelSelector::parse("replicas>2").unwrap();
        assert!(s.matches(&labels(&[("replicas", "3")])));
        assert!(!s.matches(&labels(&[("replicas", "2")])));
        assert!(!s.matches(&labels(&[("replicas", "x")])));
        assert!(
            LabelSelector::parse("n<5")
                .unwrap()
                .matches(&labels(&[("n", "-1")]))
        );
    }

    #[test]
    fn errors_name_input_and_reason() {
        for bad in [
            "app=web,",
            ",",
            "=web",
            "app in a",
            "app in (a",
            "!app=x",
            "app=web=x",
            "-app=x",
            "app=-x-",
            "Bad_Prefix/app=x",
            "a>b",
            "app web",
            "app=(x)",
        ] {
            let e = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(!e.reason.is_empty());
            assert!(e.to_string().contains(bad), "{e}");
        }
        let long = "a".repeat(64);
        assert!(LabelSelector::parse(&format!("{long}=x")).is_err());
        assert!(LabelSelector::parse(&format!("x={long}")).is_err());
    }

    #[test]
    fn display_is_canonical() {
        let s = LabelSelector::parse("z in (b,a),a!=x,!m,k").unwrap();
        assert_eq!(s.to_string(), "a!=x,k,!m,z in (a,b)");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn json_form() {
        let sel = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "version", "operator": "Exists"}
            ]
        });
        let s = LabelSelector::from_label_selector_json(&sel).unwrap();
        assert!(s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("version", "1")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("version", "1")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("version", "1"),
            ("tier", "db")
        ])));
        assert!(
            LabelSelector::from_label_selector_json(&json!({}))
                .unwrap()
                .is_everything()
        );
        assert!(
            !LabelSelector::from_label_selector_json(&Value::Null)
                .unwrap()
                .matches(&labels(&[]))
        );
    }

    #[test]
    fn json_form_errors() {
        for bad in [
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}),
            json!({"matchExpressions": [{"operator": "Exists"}]}),
            json!({"matchLabels": {"a": 1}}),
            json!({"matchLabels": {"a b": "x"}}),
            json!({"app": "web"}),
            json!("app=web"),
        ] {
            let e = LabelSelector::from_label_selector_json(&bad).unwrap_err();
            assert!(!e.reason.is_empty(), "{bad}");
        }
        let e = LabelSelector::from_label_selector_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Nope"}]}),
        )
        .unwrap_err();
        assert!(e.reason.contains("matchExpressions[1]"), "{}", e.reason);
    }

    #[test]
    fn match_labels_map_and_objects() {
        let s = LabelSelector::from_match_labels(&json!({"app": "web"})).unwrap();
        let pod = json!({"metadata": {"labels": {"app": "web", "x": "y"}}});
        assert!(s.matches_object(&pod));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(
            LabelSelector::parse("!app")
                .unwrap()
                .matches_object(&json!({"metadata": {}}))
        );
    }

    #[test]
    fn field_selectors() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "node-a"},
            "status": {"phase": "Running"}
        });
        let s = FieldSelector::parse("metadata.name=web-1,status.phase==Running").unwrap();
        assert!(s.matches(&pod));
        assert!(
            !FieldSelector::parse("metadata.namespace!=default")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("metadata.namespace!=kube-system")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&pod)
        );
        let pending = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&pending)
        );
        let secret =
            json!({"type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}});
        assert!(
            FieldSelector::parse("type=kubernetes.io/service-account-token")
                .unwrap()
                .matches(&secret)
        );
        assert!(FieldSelector::parse("").unwrap().matches(&secret));
        assert!(
            FieldSelector::parse(" metadata.name = t ")
                .unwrap()
                .matches(&secret)
        );
    }

    #[test]
    fn field_selector_escapes_and_errors() {
        let obj = json!({"metadata": {"name": "a,b=c"}});
        assert!(
            FieldSelector::parse(r"metadata.name=a\,b\=c")
                .unwrap()
                .matches(&obj)
        );
        for bad in [
            "metadata.name",
            "=x",
            r"metadata.name=a\q",
            "metadata.name=x\\",
        ] {
            let e = FieldSelector::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
        }
    }
}
