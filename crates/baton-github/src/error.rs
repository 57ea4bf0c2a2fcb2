//! GitHub errors, each with a low-cardinality category for metrics and events.

use std::time::Duration;

/// What went wrong talking to GitHub.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub {operation}: HTTP {status}: {message}")]
    Http {
        operation: &'static str,
        status: u16,
        message: String,
    },
    #[error("GitHub rate limit: retry in {0:?}")]
    RateLimited(Duration),
    /// Baton's share of the request budget is spent: nothing was sent.
    #[error(
        "GitHub request budget: {remaining} of {limit} requests left this hour, the rest is kept for other users of these credentials; resets in {}s",
        reset_in.as_secs()
    )]
    BudgetExhausted {
        remaining: i64,
        limit: i64,
        reset_in: Duration,
    },
    #[error("GitHub {operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("GitHub {operation}: unexpected response: {message}")]
    Decode {
        operation: &'static str,
        message: String,
    },
    #[error("GitHub credentials: {0}")]
    Credentials(String),
    #[error("invalid repository {0:?}: expected owner/name")]
    InvalidRepository(String),
}

impl GitHubError {
    /// A label for metrics and event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            GitHubError::Http { status, .. } if *status == 404 => "github_not_found",
            GitHubError::Http { status, .. } if *status == 401 || *status == 403 => "github_auth",
            GitHubError::Http { status, .. } if *status == 422 => "github_rejected",
            GitHubError::Http { .. } => "github_http",
            GitHubError::RateLimited(_) => "github_rate_limited",
            GitHubError::BudgetExhausted { .. } => "github_budget",
            GitHubError::Transport { .. } => "github_transport",
            GitHubError::Decode { .. } => "github_decode",
            GitHubError::Credentials(_) => "github_credentials",
            GitHubError::InvalidRepository(_) => "invalid_repository",
        }
    }

    /// The HTTP status, if GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether GitHub refused for good: trying again with the same request and the same
    /// credentials will fail the same way (unknown commit, no access, no permission).
    pub fn is_permanent(&self) -> bool {
        match self {
            GitHubError::Http { status, .. } => matches!(status, 400 | 401 | 403 | 404 | 410 | 422),
            GitHubError::Credentials(_) | GitHubError::InvalidRepository(_) => true,
            _ => false,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            GitHubError::Http { status, .. } => *status >= 500 || *status == 429,
            GitHubError::RateLimited(_)
            | GitHubError::BudgetExhausted { .. }
            | GitHubError::Transport { .. } => true,
            _ => false,
        }
    }
}
