//! The edit plan: the tree operations an [`Edit`](super::Edit) becomes, and where they
//! apply. A `Set` is one [`Op::Replace`]; kustomize image edits (see
//! [`super::kustomize`]) may need several operations, run one after another.

use super::Working;
use crate::EditError;
use crate::path;

/// A location: document index, then child indices from its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) doc: usize,
    pub(super) steps: Vec<usize>,
}

impl Loc {
    /// The root node of document `doc`.
    pub(super) fn root(doc: usize) -> Loc {
        Loc { doc, steps: vec![] }
    }

    /// The `index`-th child of this location.
    pub(super) fn child(&self, index: usize) -> Loc {
        let mut loc = self.clone();
        loc.steps.push(index);
        loc
    }
}

/// A value to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NewValue {
    Scalar(String),
    /// A sequence of mappings of string scalars (a new `images:` list).
    MapSeq(Vec<Vec<(String, String)>>),
}

/// One planned tree operation.
#[derive(Debug, Clone)]
pub(super) enum Op {
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

impl Working<'_> {
    /// `Edit::Set`: replace the one scalar the path names.
    pub(super) fn set(&mut self, path: &str, value: &str) -> Result<(), EditError> {
        let steps = path::parse(path)?;
        let at = self.resolve(&steps)?;
        self.run(Op::Replace {
            at,
            value: value.to_owned(),
        })
    }
}
