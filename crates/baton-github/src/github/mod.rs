//! The provider traits on GitHub's REST API (and GraphQL for auto-merge and batched
//! reads), one file per capability, with the HTTP client and authentication beside them.
//!
//! REST budget of one single-file promotion, Pending to Synced: branch head, file
//! read, create ref, update file, create PR, labels, commit status, delete the branch
//! = 8 counted requests. The PR's state and the source commit's date come from GraphQL
//! queries shared by up to a hundred PRs (GraphQL's own budget, one point each).

pub mod ancestry;
pub mod auth;
pub mod client;
pub mod deployments;
pub mod files;
pub mod graphql;
pub mod pulls;
pub mod releases;
pub mod statuses;

use http::Method;
use serde_json::Value;

use crate::client::{GitHub, Operation, Reply};
use crate::error::GitHubError;

/// Percent-encodes a value as one URL path segment or query value. Slashes are
/// encoded too: GitHub accepts `contents/a%2Fb.yaml` and `git/refs/heads%2Fx`, and
/// the OpenAPI description models each of these as a single parameter.
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

pub(crate) fn decode_err(op: Operation, what: &str) -> GitHubError {
    GitHubError::Decode {
        operation: op.as_str(),
        message: format!("missing {what}"),
    }
}

impl GitHub {
    pub(crate) async fn call(
        &self,
        op: Operation,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Reply, GitHubError> {
        self.send(op, method, &path, body.as_ref()).await
    }
}
