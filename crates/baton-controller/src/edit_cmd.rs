//! `baton edit`: preview (or apply) the change a promotion PR makes to one file.

use std::path::PathBuf;

use baton_manifest::{Edit, KustomizeImage};

/// Arguments of `baton edit`.
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The YAML file to edit.
    pub file: PathBuf,
    /// Set the scalar at PATH, e.g. `service.chartTag=api-v9.1.1` or `images[name=api].newTag=v1.2.3`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Set the kustomize `images:` entry with this name (added when absent).
    #[arg(long = "kustomize-image", value_name = "NAME")]
    pub kustomize_image: Option<String>,
    /// With --kustomize-image: the newTag to set (removes a conflicting digest).
    #[arg(long, requires = "kustomize_image")]
    pub tag: Option<String>,
    /// With --kustomize-image: the digest to set (removes a conflicting newTag).
    #[arg(long, requires = "kustomize_image")]
    pub digest: Option<String>,
    /// With --kustomize-image: the newName to set.
    #[arg(long, requires = "kustomize_image")]
    pub new_name: Option<String>,
    /// Write the result back to FILE instead of stdout.
    #[arg(long)]
    pub in_place: bool,
}

/// Why `baton edit` failed.
#[derive(Debug, thiserror::Error)]
pub enum EditCmdError {
    #[error("--set {0:?}: expected PATH=VALUE")]
    BadSet(String),
    #[error("nothing to do: give --set or --kustomize-image")]
    NoEdit,
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("cannot write {0}: {1}")]
    Write(String, std::io::Error),
    #[error(transparent)]
    Edit(#[from] baton_manifest::EditError),
}

/// The edits the arguments ask for, in order.
pub fn edits(args: &EditArgs) -> Result<Vec<Edit>, EditCmdError> {
    let mut out = Vec::new();
    for s in &args.set {
        // Split at the first `=` after any `[...]` selector, so `images[name=api].newTag=v1` works.
        let mut depth = 0i32;
        let split = s.char_indices().find(|&(_, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            c == '=' && depth == 0
        });
        let Some((i, _)) = split else {
            return Err(EditCmdError::BadSet(s.clone()));
        };
        out.push(Edit::Set {
            path: s[..i].to_owned(),
            value: s[i + 1..].to_owned(),
        });
    }
    if let Some(name) = &args.kustomize_image {
        out.push(Edit::KustomizeImage(KustomizeImage {
            name: name.clone(),
            new_tag: args.tag.clone(),
            digest: args.digest.clone(),
            new_name: args.new_name.clone(),
        }));
    }
    if out.is_empty() {
        return Err(EditCmdError::NoEdit);
    }
    Ok(out)
}

/// Runs `baton edit`; the new text goes to stdout unless `--in-place`.
pub fn run(args: &EditArgs) -> Result<Option<String>, EditCmdError> {
    let edits = edits(args)?;
    let name = args.file.display().to_string();
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| EditCmdError::Read(name.clone(), e))?;
    let new = baton_manifest::apply_all(&name, &text, &edits)?;
    if args.in_place {
        // Write a sibling then rename, so a failure never leaves a half-written file.
        let tmp = args.file.with_extension("baton-tmp");
        std::fs::write(&tmp, &new).map_err(|e| EditCmdError::Write(name.clone(), e))?;
        std::fs::rename(&tmp, &args.file).map_err(|e| EditCmdError::Write(name, e))?;
        Ok(None)
    } else {
        Ok(Some(new))
    }
}
