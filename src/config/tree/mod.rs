//! Step 1: the YAML text as a tree whose every node knows its position (anchors expanded,
//! merge keys applied, duplicate keys and unsupported tags reported). Step 2, the serde
//! deserializer over it, is in `de`.

mod de;

#[cfg(test)]
pub(super) use de::MAX_ROUNDS;
pub(super) use de::deserialize_all;

use std::collections::{HashMap, HashSet};

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::diagnostics::{Pos, Problem};

#[derive(Debug, Clone)]
pub(super) struct Node {
    /// Preorder id; the node's descendants have ids `id + 1 ..= last`.
    id: usize,
    last: usize,
    pos: Pos,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone)]
struct Scalar {
    text: String,
    /// Unquoted and untagged (or tagged with a core type other than `!!str`): may resolve to
    /// null, a boolean or a number.
    plain: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Always a scalar.
    key: Node,
    value: Node,
}

impl Entry {
    fn name(&self) -> &str {
        match &self.key.kind {
            Kind::Scalar(scalar) => &scalar.text,
            _ => "",
        }
    }
}

enum Int {
    Unsigned(u64),
    Signed(i64),
}

impl Scalar {
    fn is_null(&self) -> bool {
        self.plain && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    fn as_bool(&self) -> Option<bool> {
        match self.text.as_str() {
            "true" | "True" | "TRUE" if self.plain => Some(true),
            "false" | "False" | "FALSE" if self.plain => Some(false),
            _ => None,
        }
    }

    /// YAML 1.2 core integers: decimal, `0x` hex, `0o` octal, optional sign.
    fn as_int(&self) -> Option<Int> {
        if !self.plain {
            return None;
        }
        let text = self.text.as_str();
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (radix, digits) = if let Some(hex) = unsigned.strip_prefix("0x") {
            (16, hex)
        } else if let Some(octal) = unsigned.strip_prefix("0o") {
            (8, octal)
        } else {
            (10, unsigned)
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let magnitude = u64::from_str_radix(digits, radix).ok()?;
        if negative {
            i64::try_from(-i128::from(magnitude)).ok().map(Int::Signed)
        } else {
            Some(Int::Unsigned(magnitude))
        }
    }

    fn as_float(&self) -> Option<f64> {
        if !self.plain {
            return None;
        }
        let text = self.text.as_str();
        match text {
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
            "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
            _ => {}
        }
        let numeric = text.bytes().any(|b| b.is_ascii_digit())
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
        if numeric { text.parse().ok() } else { None }
    }
}

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 100_000;

/// Parses the text into a located tree. Recoverable problems (duplicate keys, unsupported
/// tags, a second document) come back with the tree, with the ids of the nodes they make
/// unusable; a syntax error is fatal.
pub(super) fn build_tree(text: &str) -> Result<(Node, Vec<Problem>, HashSet<usize>), Problem> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        problems: Vec::new(),
        poisoned: HashSet::new(),
        next_id: 0,
        end: Pos { line: 1, column: 1 },
    };
    let root = builder.document()?;
    Ok((root, builder.problems, builder.poisoned))
}

struct Builder<'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    problems: Vec<Problem>,
    /// Nodes step 2 must treat as hidden from the start (their problem is already reported).
    poisoned: HashSet<usize>,
    next_id: usize,
    /// Position of the last event read (for "unexpected end").
    end: Pos,
}

impl<'a> Builder<'a> {
    /// The next structural event (comments and anchor metadata are skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), Problem> {
        loop {
            match self.parser.next() {
                None => return Err(Problem::error(self.end, "unexpected end of the YAML input")),
                Some(Err(error)) => {
                    return Err(Problem::error(
                        Pos::of(error.marker()),
                        format!("YAML syntax error: {}", error.info()),
                    ));
                }
                Some(Ok((event, span))) => {
                    self.end = Pos::of(&span.start);
                    if matches!(
                        event,
                        Event::StreamStart
                            | Event::StreamEnd
                            | Event::DocumentStart(..)
                            | Event::DocumentEnd
                            | Event::Alias(_)
                            | Event::UnresolvedAlias(_)
                            | Event::Scalar(..)
                            | Event::SequenceStart(..)
                            | Event::SequenceEnd
                            | Event::MappingStart(..)
                            | Event::MappingEnd
                    ) {
                        return Ok((event, span));
                    }
                }
            }
        }
    }

    fn document(&mut self) -> Result<Node, Problem> {
        let (event, span) = self.next()?;
        if !matches!(event, Event::StreamStart) {
            return Err(Problem::error(
                Pos::of(&span.start),
                "malformed YAML stream",
            ));
        }
        let (event, span) = self.next()?;
        let root = match event {
            Event::StreamEnd => return Ok(self.null(Pos { line: 1, column: 1 })),
            Event::DocumentStart(..) => {
                let (event, span) = self.next()?;
                if matches!(event, Event::DocumentEnd) {
                    return Ok(self.null(Pos::of(&span.start)));
                }
                self.node(event, &span, 0)?
            }
            _ => {
                return Err(Problem::error(
                    Pos::of(&span.start),
                    "malformed YAML stream",
                ));
            }
        };
        let (event, span) = self.next()?;
        if !matches!(event, Event::DocumentEnd) {
            return Err(Problem::error(
                Pos::of(&span.start),
                "malformed YAML document",
            ));
        }
        let (event, span) = self.next()?;
        if matches!(event, Event::DocumentStart(..)) {
            self.problems.push(Problem::error(
                Pos::of(&span.start),
                "only one YAML document is allowed (found a second `---`)",
            ));
        }
        Ok(root)
    }

    fn alloc(&mut self, pos: Pos) -> Result<usize, Problem> {
        if self.next_id >= MAX_NODES {
            return Err(Problem::error(
                pos,
                format!("the document has more than {MAX_NODES} nodes (after expanding aliases)"),
            ));
        }
        self.next_id += 1;
        Ok(self.next_id - 1)
    }

    fn null(&mut self, pos: Pos) -> Node {
        let id = self.next_id;
        self.next_id += 1;
        Node {
            id,
            last: id,
            pos,
            kind: Kind::Scalar(Scalar {
                text: String::new(),
                plain: true,
            }),
        }
    }

    fn node(&mut self, event: Event<'a>, span: &Span, depth: usize) -> Result<Node, Problem> {
        let pos = Pos::of(&span.start);
        if depth > MAX_DEPTH {
            return Err(Problem::error(
                pos,
                format!("nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        if let Event::Alias(anchor) = event {
            return self.alias(anchor, pos);
        }
        if let Event::UnresolvedAlias(name) = event {
            self.problems
                .push(Problem::error(pos, format!("unknown alias `*{name}`")));
            let node = self.null(pos);
            self.poisoned.insert(node.id);
            return Ok(node);
        }
        let id = self.alloc(pos)?;
        let tag_pos = span.tag_start().map_or(pos, |marker| Pos::of(&marker));
        let (kind, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let mut plain = style == ScalarStyle::Plain;
                if let Some(tag) = tag {
                    match tag.core_suffix() {
                        Some("str") => plain = false,
                        Some("null" | "bool" | "int" | "float") => plain = true,
                        _ if is_non_specific(&tag) => plain = false,
                        _ => self.unsupported_tag(&tag, id, tag_pos),
                    }
                }
                let text = text.into_owned();
                (Kind::Scalar(Scalar { text, plain }), anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                if let Some(tag) = tag.filter(|tag| tag.core_suffix() != Some("seq")) {
                    self.unsupported_tag(&tag, id, tag_pos);
                }
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, &span, depth + 1)?);
                }
                (Kind::Seq(items), anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                if let Some(tag) = tag.filter(|tag| tag.core_suffix() != Some("map")) {
                    self.unsupported_tag(&tag, id, tag_pos);
                }
                (Kind::Map(self.mapping(depth)?), anchor)
            }
            _ => return Err(Problem::error(pos, "malformed YAML: unexpected event")),
        };
        let node = Node {
            id,
            last: self.next_id - 1,
            pos,
            kind,
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn unsupported_tag(&mut self, tag: &Tag, id: usize, pos: Pos) {
        self.poisoned.insert(id);
        self.problems.push(Problem::error(
            pos,
            format!(
                "unsupported YAML tag `{}{}`",
                tag.original_handle(),
                tag.suffix()
            ),
        ));
    }

    fn alias(&mut self, anchor: usize, pos: Pos) -> Result<Node, Problem> {
        match self.anchors.get(&anchor).cloned() {
            Some(mut node) => {
                self.renumber(&mut node)?;
                Ok(node)
            }
            None => {
                self.problems
                    .push(Problem::error(pos, "alias to an unknown anchor"));
                let node = self.null(pos);
                self.poisoned.insert(node.id);
                Ok(node)
            }
        }
    }

    /// Gives a copied subtree fresh preorder ids (each alias use is its own node).
    fn renumber(&mut self, node: &mut Node) -> Result<(), Problem> {
        node.id = self.alloc(node.pos)?;
        match &mut node.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => {
                for item in items {
                    self.renumber(item)?;
                }
            }
            Kind::Map(entries) => {
                for entry in entries {
                    self.renumber(&mut entry.key)?;
                    self.renumber(&mut entry.value)?;
                }
            }
        }
        node.last = self.next_id - 1;
        Ok(())
    }

    fn mapping(&mut self, depth: usize) -> Result<Vec<Entry>, Problem> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merges = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key = self.node(event, &span, depth + 1)?;
            let (event, span) = self.next()?;
            let value = self.node(event, &span, depth + 1)?;
            let Kind::Scalar(scalar) = &key.kind else {
                self.problems.push(Problem::error(
                    key.pos,
                    "mapping keys must be plain strings, not lists or mappings",
                ));
                continue;
            };
            if scalar.plain && scalar.text == "<<" {
                merges.push(value);
                continue;
            }
            if let Some(first) = entries.iter().find(|entry| entry.name() == scalar.text) {
                self.problems.push(Problem::error(
                    key.pos,
                    format!(
                        "duplicate key `{}` (first on line {})",
                        scalar.text, first.key.pos.line
                    ),
                ));
                continue;
            }
            entries.push(Entry { key, value });
        }
        // `<<` merge keys: explicit keys win, then earlier merged mappings over later ones.
        for merge in merges {
            let pos = merge.pos;
            let sources = match merge.kind {
                Kind::Map(source) => vec![source],
                Kind::Seq(items) => {
                    let mut sources = Vec::new();
                    for item in items {
                        match item.kind {
                            Kind::Map(source) => sources.push(source),
                            _ => self.problems.push(Problem::error(
                                item.pos,
                                "a `<<` merge list may only hold mappings",
                            )),
                        }
                    }
                    sources
                }
                Kind::Scalar(_) => {
                    self.problems.push(Problem::error(
                        pos,
                        "a `<<` merge value must be a mapping or a list of mappings",
                    ));
                    Vec::new()
                }
            };
            for source in sources {
                for entry in source {
                    if !entries.iter().any(|e| e.name() == entry.name()) {
                        entries.push(entry);
                    }
                }
            }
        }
        Ok(entries)
    }
}

/// The non-specific tag `!` (as in `! 123`) makes a scalar a string.
fn is_non_specific(tag: &Tag) -> bool {
    tag.original_handle() == "!" && tag.suffix().is_empty()
}
