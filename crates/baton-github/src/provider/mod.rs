//! Provider traits, one file per capability, with domain arguments only (no Kubernetes
//! types). The GitHub implementation is in `github/`; the conformance suite
//! (`tests/conformance.rs`) runs it against the fake GitHub through the contract check,
//! and is the checklist a second provider (GitLab, Gitea) would pass.

mod ancestry;
mod deployments;
mod files;
mod pulls;
mod releases;
pub mod reviews;
mod statuses;

pub use ancestry::Ancestry;
pub use deployments::{DeploymentRequest, DeploymentState, DeploymentUpdate, Deployments};
pub use files::{BranchHead, FileChange, Files, RepoFile};
pub use pulls::{
    PULLS_PER_QUERY, PrSnapshot, PrState, PromotionChange, PullRequest, PullRequests,
    ReviewDecision,
};
pub use releases::{ReleaseNote, Releases};
pub use statuses::{CommitStatus, CommitStatuses, StatusState};

use crate::error::GitHubError;

/// `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    /// Parses `owner/name`.
    pub fn parse(full: &str) -> Result<Self, GitHubError> {
        match full.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok(RepoRef {
                owner: o.to_owned(),
                name: n.to_owned(),
            }),
            _ => Err(GitHubError::InvalidRepository(full.to_owned())),
        }
    }

    /// `owner/name` for URLs.
    pub fn path(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

impl std::fmt::Display for RepoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Whether a create made something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    AlreadyPresent,
    Updated,
}

/// Everything the controller needs from a source-control provider.
pub trait Provider:
    Files + PullRequests + CommitStatuses + Releases + Deployments + Ancestry + Send + Sync
{
}

impl<T: Files + PullRequests + CommitStatuses + Releases + Deployments + Ancestry + Send + Sync>
    Provider for T
{
}
