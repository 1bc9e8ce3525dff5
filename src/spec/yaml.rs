//! A small YAML tree that remembers where every node came from.
//!
//! serde_yaml reports only its first error and `from_value` forgets
//! locations, so the spec is read into this tree (built from granit-parser's
//! located events) and decoded by hand, which lets every error carry a line
//! and column and lets many errors be reported at once.

use granit_parser::{Event, Options, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// A YAML node located in its file: where it starts, and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlNode {
    pub pos: Pos,
    pub value: Value,
}

/// What a node holds: a scalar, a sequence or a mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<YamlNode>),
    Map(Vec<Entry>),
}

/// One key and its value in a mapping (entries keep file order).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: YamlNode,
    pub value: YamlNode,
}

/// A scalar as written, before the core schema gives it a type.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// Quoted or block scalars are always strings; plain ones are resolved
    /// by the YAML 1.2 core schema (`true`, `12`, `null` ...).
    pub plain: bool,
    /// An explicit `!!str` tag.
    pub tagged_str: bool,
}

/// What a scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    pub fn resolve(&self) -> Resolved<'_> {
        if !self.plain || self.tagged_str {
            return Resolved::Str(&self.text);
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
            "true" | "True" | "TRUE" => return Resolved::Bool(true),
            "false" | "False" | "FALSE" => return Resolved::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Resolved::Float(f64::INFINITY);
            }
            "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
            _ => {}
        }
        if let Some(i) = resolve_int(t) {
            return Resolved::Int(i);
        }
        if looks_like_float(t)
            && let Ok(f) = t.parse::<f64>()
        {
            return Resolved::Float(f);
        }
        Resolved::Str(&self.text)
    }
}

fn resolve_int(t: &str) -> Option<i64> {
    if let Some(hex) = t.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    None
}

/// Core schema float: `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`.
fn looks_like_float(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int)
        && frac.is_none_or(all_digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exp_ok
}

impl YamlNode {
    /// "a string", "a list", ... for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
            Value::Scalar(s) => match s.resolve() {
                Resolved::Null => "nothing (null)".into(),
                Resolved::Bool(b) => format!("a boolean `{b}`"),
                Resolved::Int(_) | Resolved::Float(_) => format!("a number `{}`", s.text),
                Resolved::Str(t) => format!("a string `{}`", shorten(t)),
            },
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.resolve() == Resolved::Null)
    }
}

/// Keeps quoted user text in messages to one short, printable line: a
/// diagnostic is one line, and a terminal escape in a spec stays inert.
pub fn shorten(t: &str) -> String {
    let mut out = String::new();
    for (n, c) in t.chars().enumerate() {
        if n == 40 {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// A YAML syntax error (or a structure the tree refuses), located.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

/// Upper bound on nodes, counting alias expansions ("billion laughs").
const MAX_NODES: usize = 100_000;
/// Far deeper than any spec; keeps recursion in the decoder shallow.
const MAX_NESTING: usize = 64;

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<YamlNode>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<YamlNode>,
    },
}

/// Parses one YAML document. `Ok(None)` means the text holds no document.
pub fn parse(text: &str) -> Result<Option<YamlNode>, SyntaxError> {
    let mut options = Options::default();
    options.emit_comments = false;
    options.flow_nesting_limit = MAX_NESTING;
    options.block_nesting_limit = MAX_NESTING;
    let mut b = Builder::default();
    for event in Parser::new_from_str_with_options(text, options) {
        let (event, span) = event.map_err(|e| syntax_error(text, &e))?;
        b.event(event, &span)?;
    }
    Ok(b.root)
}

fn syntax_error(text: &str, e: &granit_parser::ScanError) -> SyntaxError {
    let m = e.marker();
    let mut pos = Pos {
        line: m.line().max(1),
        column: m.col() + 1,
    };
    let message = e.info();
    // Point at the offending tab itself, not past it.
    let indent_tab = text.lines().nth(pos.line.saturating_sub(1)).and_then(|l| {
        let indent = &l[..l.len() - l.trim_start_matches([' ', '\t']).len()];
        indent.find('\t')
    });
    if let Some(col) = indent_tab {
        pos.column = col + 1;
    }
    let hint = if message.contains("tab") || indent_tab.is_some() {
        Some("indent with spaces; YAML does not allow tabs for indentation".into())
    } else if message.contains("did not find expected") || message.contains("indentation") {
        Some("check the indentation of this line against its siblings".into())
    } else {
        None
    };
    SyntaxError {
        pos,
        message: format!("invalid YAML: {message}"),
        hint,
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, YamlNode>,
    root: Option<YamlNode>,
    documents: usize,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), SyntaxError> {
        let pos = Pos::from_span(span);
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                let node = YamlNode {
                    pos,
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tagged_str,
                    }),
                };
                self.finish(node, anchor)?;
            }
            Event::SequenceStart(_, anchor, _) => self.stack.push(Frame::Seq {
                pos,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(_, anchor, _) => self.stack.push(Frame::Map {
                pos,
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (
                        YamlNode {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (
                        YamlNode {
                            pos,
                            value: Value::Map(entries),
                        },
                        anchor,
                    ),
                    None => {
                        return Err(SyntaxError {
                            pos,
                            message: "invalid YAML: unbalanced collection end".into(),
                            hint: None,
                        });
                    }
                };
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(SyntaxError {
                        pos,
                        message: "an alias refers to the collection that contains it".into(),
                        hint: Some("anchors cannot be used recursively".into()),
                    });
                };
                let mut node = target.clone();
                node.pos = pos;
                let size = count_nodes(&node);
                self.finish_sized(node, 0, size)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, node: YamlNode, anchor: usize) -> Result<(), SyntaxError> {
        self.finish_sized(node, anchor, 1)
    }

    fn finish_sized(
        &mut self,
        node: YamlNode,
        anchor: usize,
        size: usize,
    ) -> Result<(), SyntaxError> {
        self.nodes += size;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos: node.pos,
                message: format!("the document expands to more than {MAX_NODES} nodes"),
                hint: Some("a spec this large is almost certainly an alias loop".into()),
            });
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push(Entry {
                    key: k,
                    value: node,
                }),
                None => *key = Some(node),
            },
            None => {
                if self.documents > 1 && !node.is_null() {
                    return Err(SyntaxError {
                        pos: node.pos,
                        message: "a second YAML document; a spec file holds one MeshMigration"
                            .into(),
                        hint: Some("remove the `---` separator and what follows".into()),
                    });
                }
                if self.root.as_ref().is_none_or(YamlNode::is_null) {
                    self.root = Some(node);
                }
            }
        }
        Ok(())
    }
}

fn count_nodes(node: &YamlNode) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|e| count_nodes(&e.key) + count_nodes(&e.value))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &YamlNode) -> &[Entry] {
        match &node.value {
            Value::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse("a: 1\nb:\n  - x\n  - {c: d}\n").unwrap().unwrap();
        let entries = map(&root);
        assert_eq!(entries[0].key.pos, Pos { line: 1, column: 1 });
        assert_eq!(entries[0].value.pos, Pos { line: 1, column: 4 });
        let Value::Seq(items) = &entries[1].value.value else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
        assert_eq!(map(&items[1])[0].value.pos, Pos { line: 4, column: 9 });
    }

    #[test]
    fn resolves_core_schema() {
        let s = |text: &str, plain| Scalar {
            text: text.into(),
            plain,
            tagged_str: false,
        };
        assert_eq!(s("12", true).resolve(), Resolved::Int(12));
        assert_eq!(s("-0x1", true).resolve(), Resolved::Str("-0x1"));
        assert_eq!(s("1.30", true).resolve(), Resolved::Float(1.3));
        assert_eq!(s("1.30.3", true).resolve(), Resolved::Str("1.30.3"));
        assert_eq!(s("1e3", true).resolve(), Resolved::Float(1000.0));
        assert_eq!(s("12", false).resolve(), Resolved::Str("12"));
        assert_eq!(s("~", true).resolve(), Resolved::Null);
        assert_eq!(s("yes", true).resolve(), Resolved::Str("yes"));
        assert_eq!(s("TRUE", true).resolve(), Resolved::Bool(true));
        assert_eq!(s(".", true).resolve(), Resolved::Str("."));
    }

    #[test]
    fn user_text_in_messages_stays_on_one_line() {
        assert_eq!(shorten("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(shorten(&"x".repeat(50)), format!("{}...", "x".repeat(40)));
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn tabs_are_located() {
        let e = parse("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(e.hint.unwrap().contains("tabs"));
    }

    #[test]
    fn aliases_expand_and_are_bounded() {
        let root = parse("a: &x {b: 1}\nc: *x\n").unwrap().unwrap();
        assert_eq!(map(&root)[1].value.value, map(&root)[0].value.value);
        assert_eq!(map(&root)[1].value.pos, Pos { line: 2, column: 4 });
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            laughs.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&laughs).unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
    }

    #[test]
    fn second_document_is_refused() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 3);
        assert!(parse("a: 1\n---\n").unwrap().is_some());
        assert!(parse("# nothing\n").unwrap().is_none());
    }
}
