//! Reading the GitOps repository.

use std::future::Future;

use super::RepoRef;
use crate::error::GitHubError;

/// The head of a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchHead {
    pub sha: String,
    pub tree: String,
}

/// A file as stored at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    pub content: String,
    /// Blob SHA, needed to update the file through the contents API.
    pub blob_sha: String,
}

/// A file's new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub content: String,
    /// The blob SHA the change was computed from.
    pub base_blob_sha: String,
}

/// Reading the GitOps repository.
pub trait Files {
    fn branch_head(
        &self,
        repo: &RepoRef,
        branch: &str,
    ) -> impl Future<Output = Result<BranchHead, GitHubError>> + Send;
    /// `None` when the file does not exist at `reference`.
    fn read_file(
        &self,
        repo: &RepoRef,
        reference: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<RepoFile>, GitHubError>> + Send;
}
