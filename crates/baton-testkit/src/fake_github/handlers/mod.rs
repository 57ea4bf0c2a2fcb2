//! One module per capability, as the provider (`baton-github`) groups them:
//!
//! - [`auth`]: who is calling (personal token, installation token, App JWT); App
//!   installations and installation tokens.
//! - [`refs`]: branches, refs, commits, trees and file contents.
//! - [`pulls`]: pull requests, labels, requested reviewers and reviews.
//! - [`statuses`]: commit statuses.
//! - [`releases`]: releases, found by tag.
//! - [`compare`]: how two commits relate (ancestry).
//! - [`graphql`]: the one mutation Baton sends (auto-merge).
//!
//! Repository endpoints get the repository and a [`RepoRequest`]; [`repo`] picks the
//! module by the first path segment after `/repos/{owner}/{name}/`.

pub mod auth;
mod compare;
mod deployments;
pub mod graphql;
mod pulls;
mod refs;
mod releases;
mod statuses;

use axum::http::HeaderMap;
use serde_json::Value;

use super::reply::{Reply, not_found};
use super::state::Repo;
pub use auth::Auth;

/// A request under `/repos/{owner}/{name}/`, parsed and authenticated.
pub struct RepoRequest<'a> {
    /// `owner/name`.
    pub full: &'a str,
    /// The repository's web address, for `html_url`s.
    pub web: &'a str,
    /// A fresh id for whatever the request creates (statuses, releases).
    pub id: u64,
    pub method: &'a str,
    /// Percent-decoded path segments after `/repos/{owner}/{name}/`.
    pub rest: &'a [&'a str],
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The JSON body, or `Null` when there is none.
    pub body: &'a Value,
}

impl RepoRequest<'_> {
    /// A string field of the JSON body.
    fn field(&self, key: &str) -> Option<String> {
        self.body
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// A query parameter, decoded.
    fn param(&self, key: &str) -> Option<String> {
        query_param(self.query, key)
    }

    fn owner(&self) -> &str {
        self.full.split('/').next().unwrap_or_default()
    }
}

/// Dispatches a repository request to its capability's handler.
pub fn repo(repo: &mut Repo, req: &RepoRequest) -> Reply {
    match req.rest.first().copied() {
        Some("branches" | "contents" | "git") => refs::handle(repo, req),
        Some("pulls" | "issues") => pulls::handle(repo, req),
        Some("commits" | "statuses") => statuses::handle(repo, req),
        Some("releases") => releases::handle(repo, req),
        Some("deployments") => deployments::handle(repo, req),
        Some("compare") => compare::handle(repo, req),
        _ => not_found(),
    }
}

/// Percent-decoding (and `+` as space), as path segments and query values need.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%').then(|| s.get(i + 1..i + 3)).flatten();
        if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}
