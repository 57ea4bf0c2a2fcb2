//! Provider traits, one per capability, with domain arguments only. The GitHub
//! implementation is in `github.rs`; tests run it against the fake GitHub server.

use std::future::Future;

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

/// Commit status states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
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

/// A release note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseNote {
    pub tag: String,
    pub target_commitish: String,
    pub name: String,
    pub body: String,
}

/// Whether a create made something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    AlreadyPresent,
    Updated,
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
    /// The PR whose head is `branch`, newest first, if any.
    fn find_by_head(
        &self,
        repo: &RepoRef,
        branch: &str,
    ) -> impl Future<Output = Result<Option<PullRequest>, GitHubError>> + Send;
    /// The PR's current state, by conditional request (unchanged PRs cost no quota).
    fn observe(
        &self,
        repo: &RepoRef,
        number: u64,
    ) -> impl Future<Output = Result<PullRequest, GitHubError>> + Send;
    /// The reviewers' decision (latest review per reviewer), by conditional request.
    fn review_decision(
        &self,
        repo: &RepoRef,
        number: u64,
    ) -> impl Future<Output = Result<ReviewDecision, GitHubError>> + Send;
    /// Closes an unmerged PR and deletes its branch.
    fn close_and_delete_branch(
        &self,
        repo: &RepoRef,
        number: u64,
        branch: &str,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
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

/// Release notes.
pub trait Releases {
    /// Creates the release for `note.tag`, or updates its text; never a second one.
    fn ensure_release(
        &self,
        repo: &RepoRef,
        note: &ReleaseNote,
    ) -> impl Future<Output = Result<Outcome, GitHubError>> + Send;
}

/// Commit ancestry.
pub trait Ancestry {
    /// Whether `ancestor` is `descendant` or one of its ancestors (cached: the answer never changes).
    fn contains(
        &self,
        repo: &RepoRef,
        ancestor: &str,
        descendant: &str,
    ) -> impl Future<Output = Result<bool, GitHubError>> + Send;
    /// The committer date of `sha` (RFC 3339), for lead-time metrics.
    fn commit_time(
        &self,
        repo: &RepoRef,
        sha: &str,
    ) -> impl Future<Output = Result<Option<String>, GitHubError>> + Send;
}
