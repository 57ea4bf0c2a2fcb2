//! Commit statuses on the source repository.

use std::future::Future;

use super::{Outcome, RepoRef};
use crate::error::GitHubError;

/// Commit status states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Success,
    Failure,
    /// Not deployed for another reason than a failed rollout (e.g. superseded).
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A commit status to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: StatusState,
    pub context: String,
    /// At most 140 characters (longer text is cut with an ellipsis).
    pub description: String,
    pub target_url: Option<String>,
}

/// Commit statuses on the source repository.
pub trait CommitStatuses {
    /// Posts `status` on `sha` unless the same state and description are already
    /// there. With `look_first` false the lookup is skipped (the caller knows no
    /// attempt was made before); a failed attempt always looks before retrying.
    fn ensure_status(
        &self,
        repo: &RepoRef,
        sha: &str,
        status: &CommitStatus,
        look_first: bool,
    ) -> impl Future<Output = Result<Outcome, GitHubError>> + Send;
}
