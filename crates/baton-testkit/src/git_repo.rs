//! A real Git repository in a temporary folder, driven with the `git` CLI, that Argo CD
//! reads through a `file://` URL.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a Git command failed.
#[derive(Debug, thiserror::Error)]
#[error("git {args}: {detail}")]
pub struct GitError {
    args: String,
    detail: String,
}

/// A non-bare repository on branch `main`; removed when dropped.
pub struct GitRepo {
    dir: tempfile::TempDir,
}

impl GitRepo {
    /// An empty repository with branch `main`.
    pub fn init() -> Result<Self, GitError> {
        let dir = tempfile::Builder::new()
            .prefix("baton-git-")
            .tempdir()
            .map_err(|e| GitError {
                args: "init".into(),
                detail: e.to_string(),
            })?;
        let repo = GitRepo { dir };
        repo.git(&["init", "--quiet", "--initial-branch=main"])?;
        Ok(repo)
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `file:///…` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// Writes `files` (path relative to the root, content), commits them on `main` and
    /// returns the new commit's sha.
    pub fn commit(&self, message: &str, files: &[(&str, &str)]) -> Result<String, GitError> {
        for (path, content) in files {
            let full: PathBuf = self.dir.path().join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|e| GitError {
                    args: format!("mkdir {}", parent.display()),
                    detail: e.to_string(),
                })?;
            }
            std::fs::write(&full, content).map_err(|e| GitError {
                args: format!("write {path}"),
                detail: e.to_string(),
            })?;
        }
        self.git(&["add", "--all"])?;
        self.git(&["commit", "--quiet", "--message", message])?;
        self.head()
    }

    /// The sha `main` points at.
    pub fn head(&self) -> Result<String, GitError> {
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_string())
    }

    /// Runs `git ARGS` in the working tree with a fixed identity and no user or system
    /// configuration, and returns its standard output.
    pub fn git(&self, args: &[&str]) -> Result<String, GitError> {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Baton Tests")
            .env("GIT_AUTHOR_EMAIL", "tests@baton.invalid")
            .env("GIT_COMMITTER_NAME", "Baton Tests")
            .env("GIT_COMMITTER_EMAIL", "tests@baton.invalid")
            .output()
            .map_err(|e| GitError {
                args: args.join(" "),
                detail: e.to_string(),
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(GitError {
                args: args.join(" "),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }
}
