//! Edits as pure functions from (file text, edit) to new text.
//!
//! An [`Edit`] becomes one or more small operations on the parsed tree ([`plan`]:
//! replace a scalar, insert or remove a mapping entry, append a sequence item); a
//! path is found with [`resolve`], kustomize `images:` rules live in [`kustomize`].
//! Each operation is turned into a byte range and its replacement ([`splice`], using
//! the file's own layout from [`layout`]), and the result is parsed back and checked
//! to mean exactly the old document with that operation applied ([`verify`]).
//! Anything else is an error and nothing is returned. A `Set` on a large file does
//! this within one root entry ([`entry`]).

mod entry;
mod kustomize;
mod layout;
mod plan;
mod resolve;
mod splice;
#[cfg(test)]
mod tests;
mod verify;

use crate::EditError;
use crate::path;
use crate::tree::{self, Node};
use plan::{Loc, Op};

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
    if let Edit::Set { path, value } = edit
        && let Some(done) = entry::set(file, text, path, value)
    {
        return done;
    }
    apply_whole(file, text, edit)
}

/// [`apply`] with the whole file parsed and verified.
fn apply_whole(file: &str, text: &str, edit: &Edit) -> Result<String, EditError> {
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
    if let Edit::Set { path, .. } = edit
        && let Some(done) = entry::current(file, text, path)
    {
        return done;
    }
    current_whole(file, text, edit)
}

/// [`current_value`] with the whole file parsed.
fn current_whole(file: &str, text: &str, edit: &Edit) -> Result<Option<String>, EditError> {
    let doc = Working::parse(file, text, edit.label())?;
    match edit {
        Edit::Set { path, .. } => {
            let loc = doc.resolve(&path::parse(path)?)?;
            Ok(doc.node(&loc).and_then(Node::scalar).map(str::to_owned))
        }
        Edit::KustomizeImage(k) => doc.current_image_value(k),
    }
}

/// Applies several edits to one file, in order; all or nothing.
pub fn apply_all(file: &str, text: &str, edits: &[Edit]) -> Result<String, EditError> {
    edits
        .iter()
        .try_fold(text.to_owned(), |t, e| apply(file, &t, e))
}

/// The file being edited: its text and the tree parsed from it, kept in step after
/// every operation. `file` and `label` only name things in errors.
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

    fn ambiguous(&self, what: impl Into<String>, count: usize) -> EditError {
        EditError::Ambiguous {
            file: self.file.to_owned(),
            path: self.label.clone(),
            what: what.into(),
            count,
        }
    }

    /// Carries out one planned operation: splice, verify, and only then adopt the new
    /// text and tree, so a refused operation leaves the document as it was.
    fn run(&mut self, op: Op) -> Result<(), EditError> {
        let text = self.splice(&op)?.apply_to(&self.text);
        self.docs = self.verify(&op, &text)?;
        self.text = text;
        Ok(())
    }
}
