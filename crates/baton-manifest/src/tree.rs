//! A YAML document as nodes with byte spans, built from saphyr's event parser, so
//! edits can splice exactly the bytes of one node and leave every other byte alone.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::scalar;

/// A node and the bytes it occupies in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    /// Byte offset of the first byte (for a block collection: of its first child).
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar {
        value: String,
        style: ScalarStyle,
        tag: Option<String>,
    },
    Map {
        entries: Vec<(Node, Node)>,
        flow: bool,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
    Alias,
}

impl Node {
    /// "mapping", "sequence", ... for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Scalar { .. } => "scalar",
            Kind::Map { .. } => "mapping",
            Kind::Seq { .. } => "sequence",
            Kind::Alias => "alias",
        }
    }

    /// The scalar's value, if this is a scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value under `key`, with the entry's index, if this is a mapping.
    pub fn get(&self, key: &str) -> Option<(usize, &Node)> {
        match &self.kind {
            Kind::Map { entries, .. } => entries
                .iter()
                .enumerate()
                .find(|(_, (k, _))| k.scalar() == Some(key))
                .map(|(i, (_, v))| (i, v)),
            _ => None,
        }
    }

    /// The child at `step` (entry value index for mappings, item index for sequences).
    pub fn child(&self, step: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Map { entries, .. } => entries.get(step).map(|(_, v)| v),
            Kind::Seq { items, .. } => items.get(step),
            _ => None,
        }
    }

    /// The node at `loc` below this one.
    pub fn at(&self, loc: &[usize]) -> Option<&Node> {
        loc.iter().try_fold(self, |node, &step| node.child(step))
    }
}

/// A parse error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses every document of `text`. An empty document has no root.
pub fn parse(text: &str) -> Result<Vec<Option<Node>>, ParseError> {
    let offsets = ByteOffsets::new(text);
    let mut events = Vec::new();
    for item in Parser::new_from_str(text) {
        match item {
            Ok((event, span)) => events.push((event, span)),
            Err(e) => {
                return Err(ParseError {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    message: e.info().to_owned(),
                });
            }
        }
    }
    let mut builder = Builder {
        events: events.into_iter(),
        offsets,
        text,
    };
    builder.documents()
}

/// Parses `part`, a piece of a larger text starting at byte `offset` of it, with
/// node positions in that larger text.
pub(crate) fn parse_at(part: &str, offset: usize) -> Result<Vec<Option<Node>>, ParseError> {
    let mut docs = parse(part)?;
    for node in docs.iter_mut().flatten() {
        node.shift(offset);
    }
    Ok(docs)
}

impl Node {
    fn shift(&mut self, by: usize) {
        self.start += by;
        self.end += by;
        match &mut self.kind {
            Kind::Map { entries, .. } => {
                for (k, v) in entries {
                    k.shift(by);
                    v.shift(by);
                }
            }
            Kind::Seq { items, .. } => items.iter_mut().for_each(|n| n.shift(by)),
            Kind::Scalar { .. } | Kind::Alias => {}
        }
    }
}

/// saphyr reports character indices; edits need byte offsets.
struct ByteOffsets {
    /// Byte offset of each character, present only when the text is not ASCII.
    table: Option<Vec<usize>>,
    len: usize,
}

impl ByteOffsets {
    fn new(text: &str) -> Self {
        let table = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        ByteOffsets {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

struct Builder<'a, I> {
    events: I,
    offsets: ByteOffsets,
    text: &'a str,
}

type Ev<'a> = (Event<'a>, Span);

impl<'a, I: Iterator<Item = Ev<'a>>> Builder<'_, I> {
    fn next(&mut self) -> Result<Ev<'a>, ParseError> {
        self.events.next().ok_or_else(|| ParseError {
            line: 0,
            column: 0,
            message: "unexpected end of events".into(),
        })
    }

    fn documents(&mut self) -> Result<Vec<Option<Node>>, ParseError> {
        let mut docs = Vec::new();
        loop {
            let (event, _) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    let (first, span) = self.next()?;
                    if matches!(first, Event::DocumentEnd) {
                        docs.push(None);
                    } else {
                        docs.push(Some(self.node(first, span)?));
                    }
                }
                other => {
                    return Err(ParseError {
                        line: 0,
                        column: 0,
                        message: format!("unexpected event {other:?}"),
                    });
                }
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, ParseError> {
        let start = self.offsets.byte(span.start.index());
        let end = self.offsets.byte(span.end.index());
        match event {
            Event::Scalar(value, style, _, tag) => {
                // saphyr's span of a quoted scalar can run on over trailing spaces and a
                // comment; the closing quote is the real end.
                let end = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        quoted_end(self.text, start).unwrap_or(end)
                    }
                    _ => end,
                };
                Ok(Node {
                    kind: Kind::Scalar {
                        value: value.into_owned(),
                        style,
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    },
                    start,
                    end,
                })
            }
            Event::Alias(_) => Ok(Node {
                kind: Kind::Alias,
                start,
                end,
            }),
            Event::MappingStart(..) => {
                let flow = self.text.as_bytes().get(start) == Some(&b'{');
                let mut entries = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::MappingEnd = ev {
                        let close = self.offsets.byte(sp.end.index());
                        let end = if flow {
                            close
                        } else {
                            last_end(
                                entries.iter().map(|(k, v): &(Node, Node)| k.end.max(v.end)),
                                start,
                            )
                        };
                        return Ok(Node {
                            kind: Kind::Map { entries, flow },
                            start,
                            end,
                        });
                    }
                    let key = self.node(ev, sp)?;
                    let (vev, vsp) = self.next()?;
                    let value = self.node(vev, vsp)?;
                    entries.push((key, value));
                }
            }
            Event::SequenceStart(..) => {
                let flow = self.text.as_bytes().get(start) == Some(&b'[');
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if let Event::SequenceEnd = ev {
                        let close = self.offsets.byte(sp.end.index());
                        let end = if flow {
                            close
                        } else {
                            last_end(items.iter().map(|n: &Node| n.end), start)
                        };
                        return Ok(Node {
                            kind: Kind::Seq { items, flow },
                            start,
                            end,
                        });
                    }
                    items.push(self.node(ev, sp)?);
                }
            }
            other => Err(ParseError {
                line: span.start.line(),
                column: span.start.col() + 1,
                message: format!("unexpected event {other:?}"),
            }),
        }
    }
}

/// The byte just past the closing quote of the quoted scalar starting at `start`.
fn quoted_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let quote = *bytes.get(start)?;
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn last_end(ends: impl Iterator<Item = usize>, start: usize) -> usize {
    ends.max().unwrap_or(start).max(start)
}

/// A document's meaning without positions or styles, to compare before and after an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text and whether it reads as a string (`"1.10"`) or as something else (`1.10`).
    Scalar {
        text: String,
        is_string: bool,
    },
    Map(Vec<(Value, Value)>),
    Seq(Vec<Value>),
    Alias,
}

impl Value {
    /// The meaning of `node`.
    pub fn of(node: &Node) -> Value {
        match &node.kind {
            Kind::Scalar { value, style, tag } => Value::Scalar {
                text: value.clone(),
                is_string: scalar::reads_as_string(value, *style, tag.as_deref()),
            },
            Kind::Map { entries, .. } => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (Value::of(k), Value::of(v)))
                    .collect(),
            ),
            Kind::Seq { items, .. } => Value::Seq(items.iter().map(Value::of).collect()),
            Kind::Alias => Value::Alias,
        }
    }

    /// A string scalar.
    pub fn string(text: &str) -> Value {
        Value::Scalar {
            text: text.to_owned(),
            is_string: true,
        }
    }

    /// The child at `step`, mutably.
    pub fn child_mut(&mut self, step: usize) -> Option<&mut Value> {
        match self {
            Value::Map(entries) => entries.get_mut(step).map(|(_, v)| v),
            Value::Seq(items) => items.get_mut(step),
            _ => None,
        }
    }

    /// The value at `loc`, mutably.
    pub fn at_mut(&mut self, loc: &[usize]) -> Option<&mut Value> {
        loc.iter().try_fold(self, |v, &step| v.child_mut(step))
    }
}

/// The meaning of every document.
pub fn values(docs: &[Option<Node>]) -> Vec<Option<Value>> {
    docs.iter().map(|d| d.as_ref().map(Value::of)).collect()
}
