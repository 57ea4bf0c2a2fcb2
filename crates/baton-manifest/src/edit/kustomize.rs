//! Kustomize image rules, as `kustomize edit set image` applies them: find the
//! kustomization document, then the one `images:` entry with the given `name`; update
//! it in place, append it, or add the whole `images:` list. Setting a tag drops a
//! digest and vice versa, since both together are ambiguous.

use super::plan::{Loc, NewValue, Op};
use super::{KustomizeImage, Working};
use crate::EditError;
use crate::tree::{Kind, Node};

impl Working<'_> {
    /// `Edit::KustomizeImage`.
    pub(super) fn kustomize_image(&mut self, k: &KustomizeImage) -> Result<(), EditError> {
        if k.new_tag.is_none() && k.digest.is_none() && k.new_name.is_none() {
            return Err(self.unsupported("set at least one of newTag, digest or newName"));
        }
        if let Some(d) = &k.digest
            && !valid_digest(d)
        {
            return Err(self.unsupported(format!(
                "invalid digest {d:?}: expected algorithm:hex, e.g. sha256:<64 hex>"
            )));
        }
        let root = self.kustomization_root()?;
        let Some((images_idx, images)) = self.node(&root).and_then(|r| r.get("images")) else {
            return self.run(Op::Insert {
                map: root,
                key: "images".into(),
                value: NewValue::MapSeq(vec![new_entry(k)]),
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
            .filter(|(_, it)| is_named(it, &k.name))
            .map(|(i, _)| i)
            .collect();
        let images_loc = root.child(images_idx);
        match matches.as_slice() {
            [] => self.run(Op::Append {
                seq: images_loc,
                fields: new_entry(k),
            }),
            [one] => self.update_image_entry(&images_loc.child(*one), k),
            many => Err(self.ambiguous(format!("image name {:?}", k.name), many.len())),
        }
    }

    /// The value a kustomize image edit would replace: the entry's `digest` when a
    /// digest is being set, its `newTag` otherwise; `None` when either is absent.
    pub(super) fn current_image_value(
        &self,
        k: &KustomizeImage,
    ) -> Result<Option<String>, EditError> {
        let root = self.kustomization_root()?;
        let entry = self
            .node(&root)
            .and_then(|r| r.get("images"))
            .and_then(|(_, images)| match &images.kind {
                Kind::Seq { items, .. } => items.iter().find(|it| is_named(it, &k.name)),
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

    fn update_image_entry(&mut self, entry: &Loc, k: &KustomizeImage) -> Result<(), EditError> {
        if !matches!(self.node(entry).map(|n| &n.kind), Some(Kind::Map { .. })) {
            return Err(self.unsupported("the image entry is not a mapping"));
        }
        for (key, value) in desired_fields(k) {
            // Re-read after every operation: offsets and indices move.
            match self.node(entry).and_then(|n| n.get(&key)) {
                Some((i, _)) => self.run(Op::Replace {
                    at: entry.child(i),
                    value,
                })?,
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
            ([one], _) | ([], [one]) => Ok(Loc::root(*one)),
            ([], []) => Err(self.not_found("a mapping at the document root")),
            ([], many) | (many, _) => Err(self.ambiguous("kustomization document", many.len())),
        }
    }
}

/// Whether `item` is an `images:` entry whose `name` is `name`.
fn is_named(item: &Node, name: &str) -> bool {
    item.get("name").and_then(|(_, n)| n.scalar()) == Some(name)
}

/// `algorithm:hex`, as in an OCI digest, with at least 128 bits of hex.
fn valid_digest(d: &str) -> bool {
    d.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && alg
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && hex.len() >= 32
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// A whole new `images:` entry: `name` first, then the fields being set.
fn new_entry(k: &KustomizeImage) -> Vec<(String, String)> {
    let mut fields = vec![("name".to_owned(), k.name.clone())];
    fields.extend(desired_fields(k));
    fields
}

/// The fields the edit sets, in the order kustomize writes them.
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
