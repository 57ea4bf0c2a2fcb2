//! Large files: a `Set` parsed and verified within the one root entry it touches.
//!
//! Parsing a 1 MB values file with saphyr takes tens of milliseconds, twice per edit
//! (before, and again to verify). For a file of at least [`MIN_LEN`] bytes whose
//! root entries [`crate::outline`] can delimit, only the entry the path starts in
//! is parsed: the first one with the path's first key, the one the whole-file path
//! would follow. The path is resolved and the value spliced as usual; then the
//! edited entry is checked twice:
//!
//! - the outline scanner must read it again as exactly one root entry with the same
//!   key, so the entry still ends where the next one begins: every other entry,
//!   byte for byte unchanged and starting on a boundary the scanner proved, still
//!   parses exactly as before;
//! - saphyr must read it as the old entry with only the value changed (the same
//!   comparison [`super::verify`] makes for the whole file).
//!
//! Together that is what verifying the whole file establishes, for the cost of one
//! line scan. Whenever the outline cannot be made, or no longer holds after the
//! edit, the caller does the whole-file edit instead.

use std::borrow::Cow;

use super::Working;
use super::plan::Op;
use super::splice::Splice;
use crate::EditError;
use crate::outline::{self, Entry};
use crate::path::{self, Step};
use crate::tree::{self, Kind, Node};

/// Smaller files are parsed whole: a few milliseconds at most, and the path every
/// small-file test has always exercised.
pub(super) const MIN_LEN: usize = 64 * 1024;

/// `Edit::Set` on a large file; `None` when the whole file must be edited instead.
pub(super) fn set(
    file: &str,
    text: &str,
    path: &str,
    value: &str,
) -> Option<Result<String, EditError>> {
    (text.len() >= MIN_LEN).then(|| set_in_entry(file, text, path, value))?
}

/// [`set`] whatever the size of the file.
pub(super) fn set_in_entry(
    file: &str,
    text: &str,
    path: &str,
    value: &str,
) -> Option<Result<String, EditError>> {
    let steps = path::parse(path).ok()?;
    let (doc, entry) = Working::parse_entry(file, text, path.to_owned(), &steps)?;
    let op = match doc.resolve(&steps) {
        Ok(at) => Op::Replace {
            at,
            value: value.to_owned(),
        },
        Err(e) => return Some(Err(e)),
    };
    let splice = match doc.splice(&op) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    doc.check_entry(&op, &splice, &entry)
}

/// The value at `path` in a large file; `None` when the whole file must be read.
pub(super) fn current(
    file: &str,
    text: &str,
    path: &str,
) -> Option<Result<Option<String>, EditError>> {
    (text.len() >= MIN_LEN).then(|| current_in_entry(file, text, path))?
}

/// [`current`] whatever the size of the file.
pub(super) fn current_in_entry(
    file: &str,
    text: &str,
    path: &str,
) -> Option<Result<Option<String>, EditError>> {
    let steps = path::parse(path).ok()?;
    let (doc, _) = Working::parse_entry(file, text, path.to_owned(), &steps)?;
    Some(
        doc.resolve(&steps)
            .map(|loc| doc.node(&loc).and_then(Node::scalar).map(str::to_owned)),
    )
}

impl<'a> Working<'a> {
    /// The file with only the root entry `steps` starts in parsed: one document whose
    /// root mapping holds that entry alone (or nothing, when no entry has the key,
    /// so that resolving fails as it would on the whole file).
    pub(super) fn parse_entry(
        file: &'a str,
        text: &str,
        label: String,
        steps: &[Step],
    ) -> Option<(Self, Entry<'static>)> {
        let Some(Step::Key(first)) = steps.first() else {
            return None;
        };
        let entries = outline::root_entries(text)?;
        let (root, entry) = match entries.into_iter().find(|e| e.key == first.as_str()) {
            Some(e) => {
                let docs = tree::parse_at(&text[e.start..e.end], e.start).ok()?;
                let [Some(root)] = <[Option<Node>; 1]>::try_from(docs).ok()? else {
                    return None;
                };
                // What the scanner found must be what saphyr reads.
                let Kind::Map {
                    entries,
                    flow: false,
                } = &root.kind
                else {
                    return None;
                };
                if !matches!(entries.as_slice(), [(k, _)] if k.scalar() == Some(first.as_str())) {
                    return None;
                }
                let entry = Entry {
                    key: Cow::Owned(e.key.into_owned()),
                    start: e.start,
                    end: e.end,
                };
                (root, entry)
            }
            None => {
                let root = Node {
                    kind: Kind::Map {
                        entries: Vec::new(),
                        flow: false,
                    },
                    start: 0,
                    end: 0,
                };
                let entry = Entry {
                    key: Cow::Owned(first.clone()),
                    start: 0,
                    end: 0,
                };
                (root, entry)
            }
        };
        let doc = Working {
            file,
            label,
            text: text.to_owned(),
            docs: vec![Some(root)],
        };
        Some((doc, entry))
    }

    /// The edited text, if `splice` (the splice planned for `op`) stays within
    /// `entry` and the entry afterwards is still one root entry with the same key that
    /// means exactly the old one with `op` applied. `None`: not provable here.
    pub(super) fn check_entry(
        &self,
        op: &Op,
        splice: &Splice,
        entry: &Entry<'_>,
    ) -> Option<Result<String, EditError>> {
        let range = splice.range();
        if range.start < entry.start || range.end > entry.end || entry.start == entry.end {
            return None;
        }
        let text = splice.apply_to(&self.text);
        let end = entry.end.checked_add_signed(splice.growth())?;
        let part = text.get(entry.start..end)?;
        // The next entry's key line must still start a line.
        if end < text.len() && !part.ends_with('\n') {
            return None;
        }
        match outline::root_entries(part)?.as_slice() {
            [again] if again.key == entry.key && again.start == 0 => {}
            _ => return None,
        }
        Some(
            self.check(op, tree::parse_at(part, entry.start))
                .map(|_| text),
        )
    }
}
