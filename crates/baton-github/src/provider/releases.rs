//! Release notes on the source repository.

use std::future::Future;

use super::{Outcome, RepoRef};
use crate::error::GitHubError;

/// A release note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseNote {
    pub tag: String,
    pub target_commitish: String,
    pub name: String,
    pub body: String,
}

/// Release notes.
pub trait Releases {
    /// Creates the release for `note.tag`, or updates its text; never a second one.
    fn ensure_release(
        &self,
        repo: &RepoRef,
        note: &ReleaseNote,
    ) -> impl Future<Output = Result<Outcome, GitHubError>> + Send;
}
