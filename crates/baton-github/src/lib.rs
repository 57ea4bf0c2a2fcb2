//! Baton's source-control side: small provider traits with domain arguments (no
//! Kubernetes types), their GitHub implementation on octocrab, pure rendering of the
//! promotion pull request, and webhook verification.
//!
//! Every create is idempotent: it either looks first or treats GitHub's "already
//! exists" answer as success, so retries and restarts never duplicate a branch, pull
//! request, label, status or release.

pub mod auth;
pub mod client;
pub mod error;
pub mod github;
pub mod naming;
pub mod pr_body;
pub mod provider;
pub mod webhook;

pub use auth::Credentials;
pub use client::{GitHub, Operation, RetryPolicy, Stats};
pub use error::GitHubError;
pub use provider::*;
