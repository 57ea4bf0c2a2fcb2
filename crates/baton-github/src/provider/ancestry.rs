//! Commit ancestry.

use std::future::Future;

use super::RepoRef;
use crate::error::GitHubError;

/// Commit ancestry.
pub trait Ancestry {
    /// Whether `ancestor` is `descendant` or one of its ancestors (cached: the answer never changes).
    fn contains(
        &self,
        repo: &RepoRef,
        ancestor: &str,
        descendant: &str,
    ) -> impl Future<Output = Result<bool, GitHubError>> + Send;
    /// The committer dates (RFC 3339) of many commits, by GraphQL, into the cache
    /// [`Ancestry::commit_time`] reads first (a commit's date never changes). Commits
    /// GitHub does not know are left out.
    fn commit_dates(
        &self,
        commits: &[(RepoRef, String)],
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
    /// The committer date of `sha` (RFC 3339), for lead-time metrics: from the cache,
    /// else by one REST request.
    fn commit_time(
        &self,
        repo: &RepoRef,
        sha: &str,
    ) -> impl Future<Output = Result<Option<String>, GitHubError>> + Send;
}
