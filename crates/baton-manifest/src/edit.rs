//! Edits as pure functions from (file text, edit) to new text.
//!
//! Each edit is planned as a small operation on the parsed tree (replace a scalar,
//! insert or remove a mapping entry, append a sequence item), applied by splicing
//! bytes, and verified by parsing the result: the new document must mean exactly
//! the old one with that operation applied. Anything else is an error and nothing
//! is returned.

use saphyr_parser::ScalarStyle;

use crate::EditError;
use crate::path::{self, Step};
use crate::scalar::{self, Style};
use crate::tree::{self, Kind, Node, Value};

/// One change to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Set the existing scalar at `path` (see [`crate::path`]) to the string `value`.
    Set { path: String, value: String },
    /// Set a kustomize `images:` entry, adding it when absent.
    KustomizeImage(KustomizeImage),
}

/// A kustomize image change, as `kustomize edit set image` would make it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KustomizeImage {
    /// The entry's `name` (the image name used in the base manifests).
    pub name: String,
    /// Sets `newTag` and removes a `digest` that would conflict.
    pub new_tag: Option<String>,
    /// Sets `digest` and removes a `newTag` that would conflict.
    pub digest: Option<String>,
    /// Sets `newName`.
    pub new_name: Option<String>,
}

impl Edit {
    /// How the edit is named in messages.
    pub fn label(&self) -> String {
        match self {
            Edit::Set { path, .. } => path.clone(),
            Edit::KustomizeImage(k) => format!("images[name={}]", k.name),
        }
    }
}

/// Applies `edit` to `text` (the content of `file`, used in messages).
pub fn apply(file: &str, text: &str, edit: &Edit) -> Result<String, EditError> {
    let mut doc = Working::parse(file, text, edit.label())?;
    match edit {
        Edit::Set { path, value } => doc.set(path, value)?,
        Edit::KustomizeImage(k) => doc.kustomize_image(k)?,
    }
    Ok(doc.text)
}

/// The value `edit` would replace (`None` when it would add it), for "old -> new" in
/// pull requests. Fails like [`apply`] would.
pub fn current_value(file: &str, text: &str, edit: &Edit) -> Result<Option<String>, EditError> {
    let doc = Working::parse(file, text, edit.label())?;
    match edit {
        Edit::Set { path, .. } => {
            let loc = doc.resolve(&path::parse(path)?)?;
            Ok(doc.node(&loc).and_then(Node::scalar).map(str::to_owned))
        }
        Edit::KustomizeImage(k) => {
            let root = doc.kustomization_root()?;
            let entry = doc
                .node(&root)
                .and_then(|r| r.get("images"))
                .and_then(|(_, images)| match &images.kind {
                    Kind::Seq { items, .. } => items.iter().find(|it| {
                        it.get("name").and_then(|(_, n)| n.scalar()) == Some(k.name.as_str())
                    }),
                    _ => None,
                });
            let field = if k.digest.is_some() {
                "digest"
            } else {
                "newTag"
            };
            Ok(entry
                .and_then(|e| e.get(field))
                .and_then(|(_, v)| v.scalar())
                .map(str::to_owned))
        }
    }
}

/// Applies several edits to one file, in order; all or nothing.
pub fn apply_all(file: &str, text: &str, edits: &[Edit]) -> Result<String, EditError> {
    edits
        .iter()
        .try_fold(text.to_owned(), |t, e| apply(file, &t, e))
}

/// A location: document index, then child indices from its root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loc {
    doc: usize,
    steps: Vec<usize>,
}

/// A value to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NewValue {
    Scalar(String),
    /// A sequence of mappings of string scalars (a new `images:` list).
    MapSeq(Vec<Vec<(String, String)>>),
}

impl NewValue {
    fn meaning(&self) -> Value {
        match self {
            NewValue::Scalar(s) => Value::string(s),
            NewValue::MapSeq(items) => {
                Value::Seq(items.iter().map(|fields| map_value(fields)).collect())
            }
        }
    }
}

fn map_value(fields: &[(String, String)]) -> Value {
    Value::Map(
        fields
            .iter()
            .map(|(k, v)| (Value::string(k), Value::string(v)))
            .collect(),
    )
}

/// One planned tree operation.
#[derive(Debug, Clone)]
enum Op {
    Replace {
        at: Loc,
        value: String,
    },
    Remove {
        map: Loc,
        entry: usize,
    },
    Insert {
        map: Loc,
        key: String,
        value: NewValue,
    },
    Append {
        seq: Loc,
        fields: Vec<(String, String)>,
    },
}

struct Working<'a> {
    file: &'a str,
    label: String,
    text: String,
    docs: Vec<Option<Node>>,
}

impl<'a> Working<'a> {
    fn parse(file: &'a str, text: &str, label: String) -> Result<Self, EditError> {
        let docs = tree::parse(text).map_err(|e| EditError::InvalidYaml {
            file: file.to_owned(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        Ok(Working {
            file,
            label,
            text: text.to_owned(),
            docs,
        })
    }

    fn node(&self, loc: &Loc) -> Option<&Node> {
        self.docs.get(loc.doc)?.as_ref()?.at(&loc.steps)
    }

    fn unsupported(&self, reason: impl Into<String>) -> EditError {
        EditError::Unsupported {
            file: self.file.to_owned(),
            path: self.label.clone(),
            reason: reason.into(),
        }
    }

    fn not_found(&self, missing: impl Into<String>) -> EditError {
        EditError::NotFound {
            file: self.file.to_owned(),
            path: self.label.clone(),
            missing: missing.into(),
        }
    }

    // ---- edits ----

    fn set(&mut self, path: &str, value: &str) -> Result<(), EditError> {
        let steps = path::parse(path)?;
        let at = self.resolve(&steps)?;
        self.run(Op::Replace {
            at,
            value: value.to_owned(),
        })
    }

    fn kustomize_image(&mut self, k: &KustomizeImage) -> Result<(), EditError> {
        if k.new_tag.is_none() && k.digest.is_none() && k.new_name.is_none() {
            return Err(self.unsupported("set at least one of newTag, digest or newName"));
        }
        if let Some(d) = &k.digest {
            let valid = d.split_once(':').is_some_and(|(alg, hex)| {
                !alg.is_empty()
                    && alg
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && hex.len() >= 32
                    && hex.chars().all(|c| c.is_ascii_hexdigit())
            });
            if !valid {
                return Err(self.unsupported(format!(
                    "invalid digest {d:?}: expected algorithm:hex, e.g. sha256:<64 hex>"
                )));
            }
        }
        let root = self.kustomization_root()?;
        let Some((images_idx, images)) = self.node(&root).and_then(|r| r.get("images")) else {
            let mut fields = vec![("name".to_owned(), k.name.clone())];
            fields.extend(desired_fields(k));
            return self.run(Op::Insert {
                map: root,
                key: "images".into(),
                value: NewValue::MapSeq(vec![fields]),
            });
        };
        let Kind::Seq { items, .. } = &images.kind else {
            return Err(self.unsupported(format!(
                "`images` is a {}, expected a sequence",
                images.kind_name()
            )));
        };
        let matches: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, it)| it.get("name").and_then(|(_, n)| n.scalar()) == Some(k.name.as_str()))
            .map(|(i, _)| i)
            .collect();
        let mut images_loc = root.clone();
        images_loc.steps.push(images_idx);
        match matches.as_slice() {
            [] => {
                let mut fields = vec![("name".to_owned(), k.name.clone())];
                fields.extend(desired_fields(k));
                self.run(Op::Append {
                    seq: images_loc,
                    fields,
                })
            }
            [one] => {
                let mut entry = images_loc;
                entry.steps.push(*one);
                self.update_image_entry(&entry, k)
            }
            many => Err(EditError::Ambiguous {
                file: self.file.to_owned(),
                path: self.label.clone(),
                what: format!("image name {:?}", k.name),
                count: many.len(),
            }),
        }
    }

    fn update_image_entry(&mut self, entry: &Loc, k: &KustomizeImage) -> Result<(), EditError> {
        if !matches!(self.node(entry).map(|n| &n.kind), Some(Kind::Map { .. })) {
            return Err(self.unsupported("the image entry is not a mapping"));
        }
        for (key, value) in desired_fields(k) {
            // Re-read after every operation: offsets and indices move.
            match self.node(entry).and_then(|n| n.get(&key)) {
                Some((i, _)) => {
                    let mut at = entry.clone();
                    at.steps.push(i);
                    self.run(Op::Replace { at, value })?;
                }
                None => self.run(Op::Insert {
                    map: entry.clone(),
                    key,
                    value: NewValue::Scalar(value),
                })?,
            }
        }
        // A tag and a digest together are ambiguous; keep the one being set.
        let conflicting = match (&k.new_tag, &k.digest) {
            (Some(_), None) => Some("digest"),
            (None, Some(_)) => Some("newTag"),
            _ => None,
        };
        let stale = conflicting.and_then(|key| self.node(entry).and_then(|n| n.get(key)));
        if let Some((i, _)) = stale {
            self.run(Op::Remove {
                map: entry.clone(),
                entry: i,
            })?;
        }
        Ok(())
    }

    /// The root mapping of the document holding `images:` (or of the first document).
    fn kustomization_root(&self) -> Result<Loc, EditError> {
        let roots: Vec<usize> = self
            .docs
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d.as_ref().map(|n| &n.kind), Some(Kind::Map { .. })))
            .map(|(i, _)| i)
            .collect();
        let with_images: Vec<usize> = roots
            .iter()
            .copied()
            .filter(|&i| {
                self.docs[i]
                    .as_ref()
                    .and_then(|n| n.get("images"))
                    .is_some()
            })
            .collect();
        match (with_images.as_slice(), roots.as_slice()) {
            ([one], _) => Ok(Loc {
                doc: *one,
                steps: vec![],
            }),
            ([], [one]) => Ok(Loc {
                doc: *one,
                steps: vec![],
            }),
            ([], []) => Err(self.not_found("a mapping at the document root")),
            ([], many) | (many, _) => Err(EditError::Ambiguous {
                file: self.file.to_owned(),
                path: self.label.clone(),
                what: "kustomization document".into(),
                count: many.len(),
            }),
        }
    }

    // ---- path resolution ----

    fn resolve(&self, steps: &[Step]) -> Result<Loc, EditError> {
        let mut found = Vec::new();
        let mut deepest: Option<(usize, EditError)> = None;
        for (doc, root) in self.docs.iter().enumerate() {
            let Some(root) = root else { continue };
            match self.walk(root, steps) {
                Ok(steps) => found.push(Loc { doc, steps }),
                Err((depth, err)) => {
                    if matches!(err, EditError::Ambiguous { .. }) {
                        return Err(err);
                    }
                    if deepest.as_ref().is_none_or(|(d, _)| depth > *d) {
                        deepest = Some((depth, err));
                    }
                }
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(deepest
                .map(|(_, e)| e)
                .unwrap_or_else(|| self.not_found("a document"))),
            n => Err(EditError::Ambiguous {
                file: self.file.to_owned(),
                path: self.label.clone(),
                what: "the path".into(),
                count: n,
            }),
        }
    }

    fn walk(&self, root: &Node, steps: &[Step]) -> Result<Vec<usize>, (usize, EditError)> {
        let mut node = root;
        let mut loc = Vec::new();
        for (depth, step) in steps.iter().enumerate() {
            let parent = if depth == 0 {
                "the document root".to_owned()
            } else {
                format!("{}", steps[depth - 1])
            };
            let (idx, child) = match (step, &node.kind) {
                (Step::Key(k), Kind::Map { .. }) => node
                    .get(k)
                    .ok_or_else(|| (depth, self.not_found(format!("{step} under {parent}"))))?,
                (Step::Index(i), Kind::Seq { items, .. }) => {
                    items.get(*i).map(|c| (*i, c)).ok_or_else(|| {
                        (
                            depth,
                            self.not_found(format!(
                                "{step} under {parent} (it has {} items)",
                                items.len()
                            )),
                        )
                    })?
                }
                (Step::Select { key, value }, Kind::Seq { items, .. }) => {
                    let hits: Vec<usize> = items
                        .iter()
                        .enumerate()
                        .filter(|(_, it)| {
                            it.get(key).and_then(|(_, v)| v.scalar()) == Some(value.as_str())
                        })
                        .map(|(i, _)| i)
                        .collect();
                    match hits.as_slice() {
                        [one] => (*one, &items[*one]),
                        [] => {
                            return Err((depth, self.not_found(format!("{step} under {parent}"))));
                        }
                        many => {
                            return Err((
                                depth,
                                EditError::Ambiguous {
                                    file: self.file.to_owned(),
                                    path: self.label.clone(),
                                    what: format!("{step}"),
                                    count: many.len(),
                                },
                            ));
                        }
                    }
                }
                (_, _) => {
                    return Err((
                        depth,
                        self.unsupported(format!(
                            "{step} cannot be applied: {parent} is a {}",
                            node.kind_name()
                        )),
                    ));
                }
            };
            loc.push(idx);
            node = child;
        }
        Ok(loc)
    }

    // ---- operations ----

    fn run(&mut self, op: Op) -> Result<(), EditError> {
        let (start, end, replacement) = self.splice(&op)?;
        let mut text = String::with_capacity(self.text.len() + replacement.len());
        text.push_str(&self.text[..start]);
        text.push_str(&replacement);
        text.push_str(&self.text[end..]);
        let verify = |detail: String| EditError::VerifyFailed {
            file: self.file.to_owned(),
            path: self.label.clone(),
            detail,
        };
        let docs = tree::parse(&text)
            .map_err(|e| verify(format!("the result does not parse: {}", e.message)))?;
        let mut expected = tree::values(&self.docs);
        expected_after(&mut expected, &op)
            .ok_or_else(|| verify("internal: the planned location vanished".into()))?;
        let got = tree::values(&docs);
        if got != expected {
            let doc = got
                .iter()
                .zip(&expected)
                .position(|(g, e)| g != e)
                .unwrap_or(got.len().min(expected.len()));
            return Err(verify(format!(
                "document {} would change beyond the edited value",
                doc + 1
            )));
        }
        self.text = text;
        self.docs = docs;
        Ok(())
    }

    /// The byte range to replace and its replacement for `op`.
    fn splice(&self, op: &Op) -> Result<(usize, usize, String), EditError> {
        match op {
            Op::Replace { at, value } => self.splice_replace(at, value),
            Op::Remove { map, entry } => self.splice_remove(map, *entry),
            Op::Insert { map, key, value } => self.splice_insert(map, key, value),
            Op::Append { seq, fields } => self.splice_append(seq, fields),
        }
    }

    fn splice_replace(&self, at: &Loc, value: &str) -> Result<(usize, usize, String), EditError> {
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
            return Ok((colon + 1, colon + 1, format!(" {rendered}")));
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
        Ok((node.start, node.end, rendered))
    }

    fn splice_remove(&self, map: &Loc, entry: usize) -> Result<(usize, usize, String), EditError> {
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
                (prev_end, k.end.max(v.end), String::new())
            } else {
                (k.start, entries[1].0.start, String::new())
            });
        }
        let ls = line_start(&self.text, k.start);
        if self.text[ls..k.start].trim().is_empty() {
            Ok((ls, line_end(&self.text, k.end.max(v.end)), String::new()))
        } else {
            // First entry after `- `: keep the dash, pull the next key up.
            let next = entries
                .get(entry + 1)
                .ok_or_else(|| self.unsupported("cannot remove this entry"))?;
            Ok((k.start, next.0.start, String::new()))
        }
    }

    fn splice_insert(
        &self,
        map: &Loc,
        key: &str,
        value: &NewValue,
    ) -> Result<(usize, usize, String), EditError> {
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
                Some((k, v)) => (k.end.max(v.end), k.end.max(v.end), format!(", {body}")),
                None => (node.start + 1, node.start + 1, body),
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

    fn splice_append(
        &self,
        seq: &Loc,
        fields: &[(String, String)],
    ) -> Result<(usize, usize, String), EditError> {
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
                Some(last) => (last.end, last.end, format!(", {body}")),
                None => (node.start + 1, node.start + 1, body),
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
    fn insert_line_after(&self, pos: usize, line: &str) -> (usize, usize, String) {
        let at = line_end(&self.text, pos);
        let eol = eol(&self.text);
        if at == self.text.len() && !self.text.ends_with('\n') {
            (at, at, format!("{eol}{line}"))
        } else {
            (at, at, format!("{line}{eol}"))
        }
    }

    /// How a sibling block sequence writes its items relative to its key (`- ` or
    /// `  - `), so a new sequence follows the file's own style.
    fn sibling_dash(&self, entries: &[(Node, Node)]) -> Option<String> {
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
    fn indent_of(&self, pos: usize) -> String {
        let ls = line_start(&self.text, pos);
        let prefix = &self.text[ls..pos];
        if prefix.chars().all(|c| c == ' ') {
            prefix.to_owned()
        } else {
            " ".repeat(prefix.chars().count())
        }
    }

    /// Whether the node at `loc` (or any ancestor) is a flow collection.
    fn in_flow(&self, loc: &Loc) -> bool {
        let Some(Some(mut node)) = self.docs.get(loc.doc).map(Option::as_ref) else {
            return false;
        };
        for &step in &loc.steps {
            if matches!(
                node.kind,
                Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
            ) {
                return true;
            }
            match node.child(step) {
                Some(c) => node = c,
                None => return false,
            }
        }
        matches!(
            node.kind,
            Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
        )
    }
}

fn desired_fields(k: &KustomizeImage) -> Vec<(String, String)> {
    [
        ("newName", &k.new_name),
        ("newTag", &k.new_tag),
        ("digest", &k.digest),
    ]
    .into_iter()
    .filter_map(|(key, v)| v.as_ref().map(|v| (key.to_owned(), v.clone())))
    .collect()
}

/// The meaning of the document after `op`, or `None` if its location does not exist.
fn expected_after(values: &mut [Option<Value>], op: &Op) -> Option<()> {
    match op {
        Op::Replace { at, value } => {
            *values.get_mut(at.doc)?.as_mut()?.at_mut(&at.steps)? = Value::string(value);
        }
        Op::Remove { map, entry } => match values.get_mut(map.doc)?.as_mut()?.at_mut(&map.steps)? {
            Value::Map(entries) if *entry < entries.len() => {
                entries.remove(*entry);
            }
            _ => return None,
        },
        Op::Insert { map, key, value } => {
            match values.get_mut(map.doc)?.as_mut()?.at_mut(&map.steps)? {
                Value::Map(entries) => entries.push((Value::string(key), value.meaning())),
                _ => return None,
            }
        }
        Op::Append { seq, fields } => {
            match values.get_mut(seq.doc)?.as_mut()?.at_mut(&seq.steps)? {
                Value::Seq(items) => items.push(map_value(fields)),
                _ => return None,
            }
        }
    }
    Some(())
}

/// The quote style of the first scalar among `siblings`, so new values look like their neighbours.
fn sibling_style<'n>(siblings: impl IntoIterator<Item = &'n Node>) -> Style {
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

fn flow_map(fields: &[(String, String)], scalar_text: &dyn Fn(&str) -> String) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {}", scalar_text(k), scalar_text(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `- k1: v1` then `  k2: v2` lines of a block sequence item (no trailing newline).
fn block_item(
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

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset just past the line break ending the line that holds `pos`.
fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn eol(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}
