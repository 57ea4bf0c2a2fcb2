//! Byte splicing: each planned operation becomes one byte range of the file and the
//! text to put there. Only that range changes; new text copies the surrounding
//! layout (see [`super::layout`]). Whether the result means what was intended is
//! checked afterwards by [`super::verify`].

use saphyr_parser::ScalarStyle;

use super::Working;
use super::layout::{block_item, eol, flow_map, line_end, line_start, sibling_style};
use super::plan::{Loc, NewValue, Op};
use crate::EditError;
use crate::scalar::{self, Style};
use crate::tree::Kind;

/// Replace bytes `start..end` with `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Splice {
    start: usize,
    end: usize,
    with: String,
}

impl Splice {
    pub(super) fn new(start: usize, end: usize, with: String) -> Self {
        Splice { start, end, with }
    }

    /// Nothing is replaced: `with` goes in at `at`.
    fn insert(at: usize, with: String) -> Self {
        Splice::new(at, at, with)
    }

    /// The replaced byte range.
    pub(super) fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    /// How many bytes longer the text gets (negative when shorter).
    pub(super) fn growth(&self) -> isize {
        self.with.len() as isize - (self.end - self.start) as isize
    }

    pub(super) fn apply_to(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + self.with.len());
        out.push_str(&text[..self.start]);
        out.push_str(&self.with);
        out.push_str(&text[self.end..]);
        out
    }
}

impl Working<'_> {
    /// The byte range to replace and its replacement for `op`.
    pub(super) fn splice(&self, op: &Op) -> Result<Splice, EditError> {
        match op {
            Op::Replace { at, value } => self.splice_replace(at, value),
            Op::Remove { map, entry } => self.splice_remove(map, *entry),
            Op::Insert { map, key, value } => self.splice_insert(map, key, value),
            Op::Append { seq, fields } => self.splice_append(seq, fields),
        }
    }

    fn splice_replace(&self, at: &Loc, value: &str) -> Result<Splice, EditError> {
        let node = self.node(at).ok_or_else(|| self.not_found("the value"))?;
        let Kind::Scalar { style, .. } = &node.kind else {
            return Err(EditError::NotAScalar {
                file: self.file.to_owned(),
                path: self.label.clone(),
                found: node.kind_name(),
            });
        };
        let preferred = match style {
            ScalarStyle::Plain => Style::Plain,
            ScalarStyle::SingleQuoted => Style::Single,
            ScalarStyle::DoubleQuoted => Style::Double,
            ScalarStyle::Literal | ScalarStyle::Folded => {
                return Err(self.unsupported(
                    "the value is a block scalar (| or >); write it as a one-line scalar first",
                ));
            }
        };
        let rendered = scalar::render(
            value,
            scalar::choose_style(value, preferred, self.in_flow(at)),
        );
        if node.start == node.end {
            // An empty value (`key:`): write after the colon.
            let colon = self.text[..node.start.max(1)]
                .rfind(':')
                .ok_or_else(|| self.unsupported("cannot place a value for an empty key"))?;
            let trail = &self.text[colon + 1..node.start];
            if !trail.trim().is_empty() {
                return Err(self.unsupported("cannot place a value for an empty key"));
            }
            return Ok(Splice::insert(colon + 1, format!(" {rendered}")));
        }
        // Defence in depth: the bytes replaced must be exactly the old scalar.
        let old = &self.text[node.start..node.end];
        let exact = match preferred {
            Style::Plain => !old.contains(" #") && !old.ends_with(char::is_whitespace),
            Style::Single => old.len() >= 2 && old.starts_with('\'') && old.ends_with('\''),
            Style::Double => old.len() >= 2 && old.starts_with('"') && old.ends_with('"'),
        };
        if !exact {
            return Err(self.unsupported(format!(
                "cannot locate the exact bytes of the value {old:?}"
            )));
        }
        Ok(Splice::new(node.start, node.end, rendered))
    }

    fn splice_remove(&self, map: &Loc, entry: usize) -> Result<Splice, EditError> {
        let node = self
            .node(map)
            .ok_or_else(|| self.not_found("the mapping"))?;
        let Kind::Map { entries, flow } = &node.kind else {
            return Err(self.unsupported("not a mapping"));
        };
        if entries.len() < 2 {
            return Err(self.unsupported("cannot remove the only entry of a mapping"));
        }
        let (k, v) = &entries[entry];
        if *flow {
            return Ok(if entry > 0 {
                let prev_end = entries[entry - 1].0.end.max(entries[entry - 1].1.end);
                Splice::new(prev_end, k.end.max(v.end), String::new())
            } else {
                Splice::new(k.start, entries[1].0.start, String::new())
            });
        }
        let ls = line_start(&self.text, k.start);
        if self.text[ls..k.start].trim().is_empty() {
            let end = line_end(&self.text, k.end.max(v.end));
            Ok(Splice::new(ls, end, String::new()))
        } else {
            // First entry after `- `: keep the dash, pull the next key up.
            let next = entries
                .get(entry + 1)
                .ok_or_else(|| self.unsupported("cannot remove this entry"))?;
            Ok(Splice::new(k.start, next.0.start, String::new()))
        }
    }

    fn splice_insert(&self, map: &Loc, key: &str, value: &NewValue) -> Result<Splice, EditError> {
        let node = self
            .node(map)
            .ok_or_else(|| self.not_found("the mapping"))?;
        let Kind::Map { entries, flow } = &node.kind else {
            return Err(self.unsupported("not a mapping"));
        };
        let style = sibling_style(entries.iter().map(|(_, v)| v));
        let flow_ctx = *flow || self.in_flow(map);
        let scalar_text = |s: &str| scalar::render(s, scalar::choose_style(s, style, flow_ctx));
        let key_text = scalar_text(key);
        if *flow {
            let body = match value {
                NewValue::Scalar(s) => format!("{key_text}: {}", scalar_text(s)),
                NewValue::MapSeq(items) => format!(
                    "{key_text}: [{}]",
                    items
                        .iter()
                        .map(|f| flow_map(f, &scalar_text))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Ok(match entries.last() {
                Some((k, v)) => Splice::insert(k.end.max(v.end), format!(", {body}")),
                None => Splice::insert(node.start + 1, body),
            });
        }
        let Some((last_k, last_v)) = entries.last() else {
            return Err(self.unsupported("cannot add to an empty block mapping"));
        };
        let indent = self.indent_of(last_k.start);
        let eol = eol(&self.text);
        let body = match value {
            NewValue::Scalar(s) => format!("{indent}{key_text}: {}", scalar_text(s)),
            NewValue::MapSeq(items) => {
                let dash = self
                    .sibling_dash(entries)
                    .unwrap_or_else(|| "- ".to_owned());
                let key_indent = " ".repeat(dash.chars().count());
                let mut out = format!("{indent}{key_text}:");
                for fields in items {
                    out.push_str(eol);
                    out.push_str(&block_item(
                        &format!("{indent}{dash}"),
                        &format!("{indent}{key_indent}"),
                        fields,
                        &scalar_text,
                        eol,
                    ));
                }
                out
            }
        };
        Ok(self.insert_line_after(last_k.end.max(last_v.end), &body))
    }

    fn splice_append(&self, seq: &Loc, fields: &[(String, String)]) -> Result<Splice, EditError> {
        let node = self
            .node(seq)
            .ok_or_else(|| self.not_found("the sequence"))?;
        let Kind::Seq { items, flow } = &node.kind else {
            return Err(self.unsupported("not a sequence"));
        };
        let style = sibling_style(items.iter().flat_map(|it| match &it.kind {
            Kind::Map { entries, .. } => entries.iter().map(|(_, v)| v).collect::<Vec<_>>(),
            _ => vec![],
        }));
        let flow_ctx = *flow || self.in_flow(seq);
        let scalar_text = |s: &str| scalar::render(s, scalar::choose_style(s, style, flow_ctx));
        if *flow {
            let body = flow_map(fields, &scalar_text);
            return Ok(match items.last() {
                Some(last) => Splice::insert(last.end, format!(", {body}")),
                None => Splice::insert(node.start + 1, body),
            });
        }
        let (first, last) = match (items.first(), items.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(self.unsupported("cannot add to an empty block sequence")),
        };
        let ls = line_start(&self.text, first.start);
        let prefix = &self.text[ls..first.start];
        // Copy the first item's exact `  -   ` prefix so new items line up with old ones.
        if prefix.trim() != "-" {
            return Err(
                self.unsupported("unusual sequence layout: item content not on the dash line")
            );
        }
        let key_indent = " ".repeat(prefix.chars().count());
        let body = block_item(prefix, &key_indent, fields, &scalar_text, eol(&self.text));
        Ok(self.insert_line_after(last.end, &body))
    }

    /// Inserts `line` on a new line after the line holding byte `pos`, keeping the
    /// file's final newline (or its absence).
    fn insert_line_after(&self, pos: usize, line: &str) -> Splice {
        let at = line_end(&self.text, pos);
        let eol = eol(&self.text);
        if at == self.text.len() && !self.text.ends_with('\n') {
            Splice::insert(at, format!("{eol}{line}"))
        } else {
            Splice::insert(at, format!("{line}{eol}"))
        }
    }
}
