//! Promotion pull requests.

use std::future::Future;

use super::{BranchHead, FileChange, RepoRef};
use crate::error::GitHubError;

/// Everything needed to open a promotion pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionChange {
    pub repo: RepoRef,
    pub base_branch: String,
    pub head_branch: String,
    pub commit_message: String,
    pub files: Vec<FileChange>,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub auto_merge: bool,
    /// UID of the Promotion the PR belongs to (its marker is in `body`).
    pub owner_uid: String,
}

/// Where a pull request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrState {
    Open,
    Merged { merge_commit: String },
    Closed,
}

/// A pull request as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    pub head_branch: String,
    pub head_sha: Option<String>,
    pub state: PrState,
    pub labels: Vec<String>,
    /// Reviewers (logins) and teams (slugs) whose review is requested.
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    /// Whether auto-merge is enabled on it.
    pub auto_merge_enabled: bool,
    /// The Promotion UID in the PR body's marker (only a PR carrying the asking
    /// Promotion's UID is adopted).
    pub promotion_uid: Option<String>,
    /// GraphQL node id (for auto-merge).
    pub node_id: Option<String>,
    /// Why auto-merge could not be enabled, when it was asked for and refused
    /// (e.g. the repository does not allow it). The PR itself is fine.
    pub auto_merge_problem: Option<String>,
}

/// What reviewers decided so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    /// No approval yet.
    ReviewRequired,
    Approved,
    ChangesRequested,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::ReviewRequired => "ReviewRequired",
            ReviewDecision::Approved => "Approved",
            ReviewDecision::ChangesRequested => "ChangesRequested",
        }
    }
}

/// A pull request's state, as one batched query reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrSnapshot {
    pub state: PrState,
    /// The reviewers' decision (latest decisive review of each).
    pub review: ReviewDecision,
    pub auto_merge_enabled: bool,
    /// GraphQL node id (for auto-merge).
    pub node_id: Option<String>,
    /// Whether the head branch still exists (GitHub may delete it on merge).
    pub head_exists: bool,
}

/// The most pull requests one query asks for (GitHub's page size).
pub const PULLS_PER_QUERY: usize = 100;

/// Promotion pull requests.
pub trait PullRequests {
    /// Creates the branch, one commit with every file change, the PR, labels,
    /// reviewers and auto-merge. Safe to call again after any failure or crash: what
    /// exists is reused, nothing is created twice.
    fn open_promotion(
        &self,
        change: &PromotionChange,
        base: &BranchHead,
    ) -> impl Future<Output = Result<PullRequest, GitHubError>> + Send;
    /// Gives an existing PR what a fresh one gets: missing labels, the reviewers (when
    /// none is requested yet) and auto-merge. Idempotent: what is there is kept.
    fn complete_promotion(
        &self,
        change: &PromotionChange,
        pr: PullRequest,
    ) -> impl Future<Output = Result<PullRequest, GitHubError>> + Send;
    /// The PR whose head is `branch` and whose body carries the marker of the Promotion
    /// with UID `owner_uid` (an open one first, else the newest), if any. A PR of an
    /// earlier object with the same name is never returned.
    fn find_by_head(
        &self,
        repo: &RepoRef,
        branch: &str,
        owner_uid: &str,
    ) -> impl Future<Output = Result<Option<PullRequest>, GitHubError>> + Send;
    /// The PR's current state, by conditional request (unchanged PRs cost no quota).
    fn observe(
        &self,
        repo: &RepoRef,
        number: u64,
    ) -> impl Future<Output = Result<PullRequest, GitHubError>> + Send;
    /// The state and review decision of many PRs of one repository, by GraphQL: one
    /// query per [`PULLS_PER_QUERY`] PRs, whatever their number. A PR GitHub does not
    /// know is left out of the answer.
    fn pull_states(
        &self,
        repo: &RepoRef,
        numbers: &[u64],
    ) -> impl Future<Output = Result<std::collections::BTreeMap<u64, PrSnapshot>, GitHubError>> + Send;
    /// The reviewers' decision (latest review per reviewer), by conditional request.
    fn review_decision(
        &self,
        repo: &RepoRef,
        number: u64,
    ) -> impl Future<Output = Result<ReviewDecision, GitHubError>> + Send;
    /// Deletes a branch; a branch already gone is fine.
    fn delete_branch(
        &self,
        repo: &RepoRef,
        branch: &str,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
    /// Comments on the PR once: when a comment already carries `marker` (an earlier
    /// attempt posted it), nothing is posted.
    fn comment_once(
        &self,
        repo: &RepoRef,
        number: u64,
        marker: &str,
        body: &str,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
    /// Posts a comment, without looking for an earlier one: for a first attempt the
    /// caller has recorded ahead (so none can exist).
    fn add_comment(
        &self,
        repo: &RepoRef,
        number: u64,
        body: &str,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
    /// Keeps one comment carrying `marker` on the PR with `body`: edited in place when
    /// it exists (and differs), created otherwise.
    fn upsert_comment(
        &self,
        repo: &RepoRef,
        number: u64,
        marker: &str,
        body: &str,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
    /// Turns auto-merge on or off on an open PR (node id from [`PullRequest::node_id`]):
    /// off while a window holds merges, on again when it opens. A refusal (repository
    /// settings) is returned as text, not as an error.
    fn set_auto_merge(
        &self,
        node_id: &str,
        enabled: bool,
    ) -> impl Future<Output = Result<Option<String>, GitHubError>> + Send;
    /// Closes an unmerged PR and deletes its branch.
    fn close_and_delete_branch(
        &self,
        repo: &RepoRef,
        number: u64,
        branch: &str,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
}
