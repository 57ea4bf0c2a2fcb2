//! GitHub Deployments on the source repository: what runs where, on the repository's
//! Environments page and its commits.

use std::future::Future;

use super::RepoRef;
use crate::error::GitHubError;

/// One deployment: a service's commit to an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRequest {
    pub repo: RepoRef,
    /// The commit deployed.
    pub sha: String,
    /// GitHub environment name (the Environment's name).
    pub environment: String,
    /// `deploy:<service>`: one service's deployments are told apart from another's in
    /// the same GitHub environment (a monorepo deploys several).
    pub task: String,
    pub description: String,
    pub production: bool,
    /// Identifies the deployment of one Promotion object and service, so a restart
    /// finds it instead of creating another.
    pub marker: String,
}

/// The states a deployment moves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    Queued,
    InProgress,
    Success,
    Failure,
    Error,
    Inactive,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Queued => "queued",
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Success => "success",
            DeploymentState::Failure => "failure",
            DeploymentState::Error => "error",
            DeploymentState::Inactive => "inactive",
        }
    }
}

/// A deployment status to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentUpdate {
    pub state: DeploymentState,
    pub description: String,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
}

/// GitHub Deployments.
pub trait Deployments {
    /// The deployment carrying `req.marker`, created if there is none (looked up first
    /// only when `look_first`: after an attempt whose answer may have been lost).
    /// Returns its id.
    fn ensure_deployment(
        &self,
        req: &DeploymentRequest,
        look_first: bool,
    ) -> impl Future<Output = Result<u64, GitHubError>> + Send;
    /// Posts a status on deployment `id`.
    fn deployment_status(
        &self,
        repo: &RepoRef,
        id: u64,
        update: &DeploymentUpdate,
    ) -> impl Future<Output = Result<(), GitHubError>> + Send;
    /// Marks the newest deployment of `task` in `environment` older than `id` inactive
    /// (GitHub's own `auto_inactive` would also retire other services' deployments in
    /// the same environment). Returns the id it retired, if any.
    fn retire_previous(
        &self,
        repo: &RepoRef,
        environment: &str,
        task: &str,
        id: u64,
    ) -> impl Future<Output = Result<Option<u64>, GitHubError>> + Send;
}
