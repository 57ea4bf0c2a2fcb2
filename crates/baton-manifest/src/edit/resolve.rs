//! Path resolution: which node a [`crate::path`] names. A path must match in exactly
//! one document; when it matches in none, the error from the document where it got
//! furthest is the one worth reporting.

use super::Working;
use super::plan::Loc;
use crate::EditError;
use crate::path::Step;
use crate::tree::{Kind, Node};

impl Working<'_> {
    pub(super) fn resolve(&self, steps: &[Step]) -> Result<Loc, EditError> {
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
            n => Err(self.ambiguous("the path", n)),
        }
    }

    /// Follows `steps` from `root`; on failure, how many steps matched and why not.
    fn walk(&self, root: &Node, steps: &[Step]) -> Result<Vec<usize>, (usize, EditError)> {
        let mut node = root;
        let mut loc = Vec::new();
        for (depth, step) in steps.iter().enumerate() {
            let parent = if depth == 0 {
                "the document root".to_owned()
            } else {
                format!("{}", steps[depth - 1])
            };
            let (idx, child) = self.step(node, step, &parent).map_err(|err| (depth, err))?;
            loc.push(idx);
            node = child;
        }
        Ok(loc)
    }

    /// One step down from `node` (named `parent` in messages).
    fn step<'n>(
        &self,
        node: &'n Node,
        step: &Step,
        parent: &str,
    ) -> Result<(usize, &'n Node), EditError> {
        match (step, &node.kind) {
            (Step::Key(k), Kind::Map { .. }) => node
                .get(k)
                .ok_or_else(|| self.not_found(format!("{step} under {parent}"))),
            (Step::Index(i), Kind::Seq { items, .. }) => {
                items.get(*i).map(|c| (*i, c)).ok_or_else(|| {
                    self.not_found(format!(
                        "{step} under {parent} (it has {} items)",
                        items.len()
                    ))
                })
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
                    [one] => Ok((*one, &items[*one])),
                    [] => Err(self.not_found(format!("{step} under {parent}"))),
                    many => Err(self.ambiguous(format!("{step}"), many.len())),
                }
            }
            (_, _) => Err(self.unsupported(format!(
                "{step} cannot be applied: {parent} is a {}",
                node.kind_name()
            ))),
        }
    }
}
