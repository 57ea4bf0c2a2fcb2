//! The file's own layout, read so that inserted text looks like its neighbours:
//! indentation, how sequences place their dashes, quote style, flow context and line
//! ends; and the writers that produce new entries in that layout.

use saphyr_parser::ScalarStyle;

use super::Working;
use super::plan::Loc;
use crate::scalar::Style;
use crate::tree::{Kind, Node};

impl Working<'_> {
    /// How a sibling block sequence writes its items relative to its key (`- ` or
    /// `  - `), so a new sequence follows the file's own style.
    pub(super) fn sibling_dash(&self, entries: &[(Node, Node)]) -> Option<String> {
        entries.iter().find_map(|(k, v)| {
            let Kind::Seq { items, flow: false } = &v.kind else {
                return None;
            };
            let first = items.first()?;
            let ls = line_start(&self.text, first.start);
            let prefix = &self.text[ls..first.start];
            let key_col = k.start - line_start(&self.text, k.start);
            (prefix.trim() == "-" && prefix.len() >= key_col).then(|| prefix[key_col..].to_owned())
        })
    }

    /// The indentation of the key starting at `pos`, as spaces.
    pub(super) fn indent_of(&self, pos: usize) -> String {
        let ls = line_start(&self.text, pos);
        let prefix = &self.text[ls..pos];
        if prefix.chars().all(|c| c == ' ') {
            prefix.to_owned()
        } else {
            " ".repeat(prefix.chars().count())
        }
    }

    /// Whether the node at `loc` (or any ancestor) is a flow collection.
    pub(super) fn in_flow(&self, loc: &Loc) -> bool {
        let Some(Some(mut node)) = self.docs.get(loc.doc).map(Option::as_ref) else {
            return false;
        };
        for &step in &loc.steps {
            if is_flow(node) {
                return true;
            }
            match node.child(step) {
                Some(c) => node = c,
                None => return false,
            }
        }
        is_flow(node)
    }
}

fn is_flow(node: &Node) -> bool {
    matches!(
        node.kind,
        Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
    )
}

/// The quote style of the first scalar among `siblings`, so new values look like their neighbours.
pub(super) fn sibling_style<'n>(siblings: impl IntoIterator<Item = &'n Node>) -> Style {
    siblings
        .into_iter()
        .find_map(|n| match &n.kind {
            Kind::Scalar {
                style: ScalarStyle::SingleQuoted,
                ..
            } => Some(Style::Single),
            Kind::Scalar {
                style: ScalarStyle::DoubleQuoted,
                ..
            } => Some(Style::Double),
            Kind::Scalar {
                style: ScalarStyle::Plain,
                ..
            } => Some(Style::Plain),
            _ => None,
        })
        .unwrap_or(Style::Plain)
}

/// `{k1: v1, k2: v2}`.
pub(super) fn flow_map(
    fields: &[(String, String)],
    scalar_text: &dyn Fn(&str) -> String,
) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {}", scalar_text(k), scalar_text(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `- k1: v1` then `  k2: v2` lines of a block sequence item (no trailing newline).
pub(super) fn block_item(
    dash_prefix: &str,
    key_indent: &str,
    fields: &[(String, String)],
    scalar_text: &dyn Fn(&str) -> String,
    eol: &str,
) -> String {
    fields
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            format!(
                "{}{}: {}",
                if i == 0 { dash_prefix } else { key_indent },
                scalar_text(k),
                scalar_text(v)
            )
        })
        .collect::<Vec<_>>()
        .join(eol)
}

/// The offset of the first byte of the line that holds `pos`.
pub(super) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset just past the line break ending the line that holds `pos`.
pub(super) fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

/// The file's line break: CRLF if it uses any, so new lines match.
pub(super) fn eol(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}
