//! A small, source-positioned YAML node tree.
//!
//! `yaml-rust2`'s high-level loader throws positions away, so this module drives its event
//! parser directly and builds a tree in which every node remembers the line and column it
//! starts at. Validation ([`crate::validate`]) then walks the tree by hand and can point every
//! diagnostic at the exact key or value it is about.
//!
//! Scalars keep their source text and style; their YAML 1.2 core-schema type (null, boolean,
//! integer, float, string) is resolved on demand by [`Node::scalar`]. Anchors and aliases are
//! supported (aliases are expanded, with a budget against "billion laughs" documents).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::Diagnostic;

/// Deepest nesting accepted; policy files need about six levels.
const MAX_DEPTH: usize = 64;
/// Most nodes that alias expansion may copy in one document.
const MAX_ALIAS_NODES: usize = 10_000;

/// A 1-based source position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    /// Line, 1-based.
    pub line: usize,
    /// Column in characters, 1-based.
    pub column: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Unquoted: subject to type resolution (`12` is a number, `true` a boolean).
    Plain,
    /// Quoted or block scalar: always a string.
    Quoted,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What the node is.
    pub kind: NodeKind,
}

/// The three kinds of YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// A scalar, with its source text and style; `tag` is the tag suffix (`str`, `int`, …) if any.
    Scalar {
        text: String,
        style: Style,
        tag: Option<String>,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order (duplicate keys are kept; validation reports them).
    Map(Vec<(Node, Node)>),
}

/// A scalar resolved with the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// The resolved scalar value, or `None` for a sequence or mapping.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        let NodeKind::Scalar { text, style, tag } = &self.kind else {
            return None;
        };
        if *style == Style::Quoted {
            return Some(Scalar::Str(text));
        }
        match tag.as_deref() {
            Some("str") => return Some(Scalar::Str(text)),
            Some("null") if text.is_empty() => return Some(Scalar::Null),
            _ => {}
        }
        Some(resolve_plain(text))
    }

    /// The scalar as a string, if it resolves to a string.
    pub fn as_str(&self) -> Option<&str> {
        match self.scalar() {
            Some(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The source text of a scalar (whatever type it resolves to).
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short description for "expected X, found Y" messages: `a string ("2k")`, `a list`.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Seq(_) => "a list".to_owned(),
            NodeKind::Map(_) => "a mapping".to_owned(),
            NodeKind::Scalar { text, .. } => match self.scalar() {
                Some(Scalar::Null) | None => "an empty value".to_owned(),
                Some(Scalar::Bool(_)) => format!("a boolean ({text})"),
                Some(Scalar::Int(_) | Scalar::Float(_)) => format!("a number ({text})"),
                Some(Scalar::Str(s)) => format!("a string ({})", quote_short(s)),
            },
        }
    }
}

/// `"value"` in double quotes, cut to a readable length.
pub(crate) fn quote_short(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}", format!("{cut}…"))
    } else {
        format!("{s:?}")
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Scalar<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(v) = i128::from_str_radix(hex, 16)
        {
            return Scalar::Int(v);
        }
        return Scalar::Str(text);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty()
            && oct.bytes().all(|b| (b'0'..=b'7').contains(&b))
            && let Ok(v) = i128::from_str_radix(oct, 8)
        {
            return Scalar::Int(v);
        }
        return Scalar::Str(text);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i128>() {
            Ok(v) => Scalar::Int(v),
            // Absurdly long digit strings are still numbers, just not integers we can hold.
            Err(_) => text.parse::<f64>().map_or(Scalar::Str(text), Scalar::Float),
        };
    }
    if is_core_float(digits)
        && let Ok(v) = text.parse::<f64>()
    {
        return Scalar::Float(v);
    }
    Scalar::Str(text)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, sign already removed.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// A collection being built.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        index: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<(Node, usize)>,
    },
}

/// Builds the tree from parser events.
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    alias_budget: usize,
}

impl Builder {
    /// Attaches a finished node (which started at char `index`) to its parent.
    fn push(&mut self, mut node: Node, index: usize) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                pos,
                index: map_index,
                entries,
                key,
                ..
            }) => match key.take() {
                None => {
                    // A block mapping's start event is reported after its first key;
                    // point the mapping at that key instead.
                    if entries.is_empty() && index < *map_index {
                        *pos = node.pos;
                    }
                    *key = Some((node, index));
                }
                Some((k, _)) => {
                    // An empty value (`key:` then a newline) is reported on the next line;
                    // point it at its key, which is where the user looks.
                    if matches!(&node.kind, NodeKind::Scalar { text, style: Style::Plain, tag: None } if text.is_empty())
                    {
                        node.pos = k.pos;
                    }
                    entries.push((k, node));
                }
            },
        }
    }

    fn register(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }
}

/// Counts the nodes in a tree (for the alias budget).
fn size(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| size(k) + size(v))
                .sum::<usize>()
        }
    }
}

fn syntax_error(pos: Pos, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(pos.line, pos.column, "", message)
}

/// Parses `src` into a tree. `Ok(None)` means the document is empty (no content at all, or only
/// comments). A syntax error becomes one diagnostic at the scanner's position.
pub(crate) fn load(src: &str) -> Result<Option<Node>, Diagnostic> {
    let mut parser = Parser::new_from_str(src);
    let mut b = Builder {
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        alias_budget: MAX_ALIAS_NODES,
    };
    let mut documents = 0usize;
    loop {
        let (event, marker) = match parser.next_token() {
            Ok(next) => next,
            Err(e) => {
                return Err(syntax_error(
                    Pos::from_marker(e.marker()),
                    format!("invalid YAML: {}", e.info()),
                ));
            }
        };
        let pos = Pos::from_marker(&marker);
        let index = marker.index();
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    let mut d = syntax_error(
                        pos,
                        "a policy file holds one YAML document, found a second one",
                    );
                    d.suggestion =
                        Some("remove the `---` separator, or split the file in two".to_owned());
                    return Err(d);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    _ => Style::Quoted,
                };
                let node = Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text,
                        style,
                        tag: tag.map(|t| t.suffix),
                    },
                };
                b.register(anchor, &node);
                b.push(node, index);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if b.stack.len() >= MAX_DEPTH {
                    return Err(syntax_error(
                        pos,
                        format!("the document is nested too deeply (more than {MAX_DEPTH} levels)"),
                    ));
                }
                let frame = if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        pos,
                        index,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                };
                b.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, start) = match b.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (
                        Node {
                            pos,
                            kind: NodeKind::Seq(items),
                        },
                        anchor,
                        index,
                    ),
                    Some(Frame::Map {
                        pos,
                        index: start,
                        anchor,
                        mut entries,
                        key,
                    }) => {
                        if let Some((k, _)) = key {
                            // Cannot happen with a well-formed event stream; keep the key.
                            let null = Node {
                                pos: k.pos,
                                kind: NodeKind::Scalar {
                                    text: String::new(),
                                    style: Style::Plain,
                                    tag: None,
                                },
                            };
                            entries.push((k, null));
                        }
                        (
                            Node {
                                pos,
                                kind: NodeKind::Map(entries),
                            },
                            anchor,
                            start,
                        )
                    }
                    None => return Err(syntax_error(pos, "invalid YAML: unbalanced collection")),
                };
                b.register(anchor, &node);
                b.push(node, start.min(index));
            }
            Event::Alias(id) => {
                let Some(target) = b.anchors.get(&id) else {
                    return Err(syntax_error(pos, "invalid YAML: unknown alias"));
                };
                let cost = size(target);
                if cost > b.alias_budget {
                    return Err(syntax_error(
                        pos,
                        "aliases expand to too large a document (more than 10000 nodes)",
                    ));
                }
                b.alias_budget -= cost;
                let mut node = target.clone();
                node.pos = pos;
                b.push(node, index);
            }
        }
    }
    match b.root {
        Some(root) if root.scalar() == Some(Scalar::Null) => Ok(None),
        root => Ok(root),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scalar(src: &str) -> Node {
        let root = load(&format!("k: {src}\n")).unwrap().unwrap();
        let NodeKind::Map(mut entries) = root.kind else {
            panic!("not a map")
        };
        entries.remove(0).1
    }

    #[test]
    fn resolves_core_schema_types() {
        assert_eq!(scalar("12").scalar(), Some(Scalar::Int(12)));
        assert_eq!(scalar("-3").scalar(), Some(Scalar::Int(-3)));
        assert_eq!(scalar("0x1f").scalar(), Some(Scalar::Int(31)));
        assert_eq!(scalar("2.5").scalar(), Some(Scalar::Float(2.5)));
        assert_eq!(scalar("1e3").scalar(), Some(Scalar::Float(1000.0)));
        assert_eq!(scalar("true").scalar(), Some(Scalar::Bool(true)));
        assert_eq!(scalar("~").scalar(), Some(Scalar::Null));
        assert_eq!(scalar("").scalar(), Some(Scalar::Null));
        assert_eq!(scalar("\"12\"").scalar(), Some(Scalar::Str("12")));
        assert_eq!(scalar("!!str 12").scalar(), Some(Scalar::Str("12")));
        assert_eq!(scalar("2k").scalar(), Some(Scalar::Str("2k")));
        assert_eq!(scalar("yes").scalar(), Some(Scalar::Str("yes")));
        assert_eq!(scalar("1.2.3").scalar(), Some(Scalar::Str("1.2.3")));
        assert_eq!(scalar(".").scalar(), Some(Scalar::Str(".")));
    }

    #[test]
    fn positions_are_one_based_and_point_at_keys() {
        let root = load("a: 1\nb:\n  - x\n  - {c: d}\n").unwrap().unwrap();
        assert_eq!(root.pos, Pos { line: 1, column: 1 });
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        assert_eq!(entries[1].0.pos, Pos { line: 2, column: 1 });
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
        assert_eq!(items[1].pos, Pos { line: 4, column: 5 });
    }

    #[test]
    fn empty_value_points_at_its_key() {
        let root = load("a:\nb: 1\n").unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        assert_eq!(entries[0].1.pos, Pos { line: 1, column: 1 });
    }

    #[test]
    fn empty_documents() {
        assert_eq!(load("").unwrap(), None);
        assert_eq!(load("# just a comment\n").unwrap(), None);
        assert_eq!(load("---\n").unwrap(), None);
        assert_eq!(load("~\n").unwrap(), None);
    }

    #[test]
    fn aliases_expand_within_budget() {
        let root = load("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!()
        };
        assert_eq!(entries[0].1.kind, entries[1].1.kind);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(load(&bomb).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert!(load(&deep).is_err());
    }

    #[test]
    fn second_document_is_an_error() {
        let err = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
    }

    #[test]
    fn syntax_error_has_scanner_position() {
        let err = load("a: b\n  c: [d\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        assert!(err.message.contains("mapping values are not allowed"));
    }
}
