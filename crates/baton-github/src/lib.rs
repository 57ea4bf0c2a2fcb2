//! Baton's source-control side: small provider traits with domain arguments (no
//! Kubernetes types), their GitHub implementation on octocrab, pure rendering of the
//! promotion pull request, and webhook verification.
//!
//! ```text
//! provider/   the traits the controller depends on, one file per capability
//! github/     GitHub's implementation: client (retries, ETags, rate limits), auth
//!             (token or App), then files, pulls, statuses, releases, ancestry, graphql
//! pr_body     the PR's title, body and commit message (pure)
//! webhook     signature check and the pull_request events Baton wakes up on
//! ```
//!
//! Every create is idempotent: it either looks first or treats GitHub's "already
//! exists" answer as success, so retries and restarts never duplicate a branch, pull
//! request, label, status or release.

pub mod error;
pub mod github;
pub mod naming;
pub mod pr_body;
pub mod provider;
pub mod webhook;

pub use error::GitHubError;
pub use github::auth::Credentials;
pub use github::client::{GitHub, Operation, RetryPolicy, Stats, graphql_base};
pub use github::{auth, client};
pub use provider::*;
