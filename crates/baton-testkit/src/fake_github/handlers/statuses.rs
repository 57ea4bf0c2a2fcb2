//! Commit statuses: listed newest first and paginated, created with GitHub's
//! validation (state, description length, at most 1000 per SHA and context).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::reply::{Reply, not_found, reply, unprocessable};
use super::super::state::{Repo, Status};
use super::RepoRequest;

pub fn handle(repo: &mut Repo, req: &RepoRequest) -> Reply {
    match (req.method, req.rest) {
        ("GET", ["commits", reference, "statuses"]) => list(repo, req, reference),
        ("POST", ["statuses", sha]) => create(repo, req, sha),
        _ => not_found(),
    }
}

/// `reference` is a branch or a SHA.
fn list(repo: &Repo, req: &RepoRequest, reference: &str) -> Reply {
    let sha = repo
        .resolve(reference)
        .unwrap_or_else(|| reference.to_owned());
    let per_page: usize = req
        .param("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .min(100);
    let page: usize = req
        .param("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    // Newest first, like GitHub.
    let all: Vec<Value> = repo
        .statuses
        .get(&sha)
        .map(|v| v.iter().rev().map(status_json).collect())
        .unwrap_or_default();
    let out: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    reply(StatusCode::OK, Value::Array(out))
}

fn create(repo: &mut Repo, req: &RepoRequest, sha: &str) -> Reply {
    let Some(state) = req.field("state") else {
        return unprocessable("Validation Failed", "state is required");
    };
    if !["error", "failure", "pending", "success"].contains(&state.as_str()) {
        return unprocessable("Validation Failed", "state is not included in the list");
    }
    let description = req.field("description").unwrap_or_default();
    if description.chars().count() > 140 {
        return unprocessable(
            "Validation Failed",
            "description is too long (maximum is 140 characters)",
        );
    }
    let context = req.field("context").unwrap_or_else(|| "default".into());
    if !repo.commits.contains_key(sha) {
        return unprocessable("No commit found for SHA", sha);
    }
    let list = repo.statuses.entry(sha.to_owned()).or_default();
    if list.iter().filter(|st| st.context == context).count() >= 1000 {
        return unprocessable(
            "Validation Failed",
            "This SHA and context has reached the maximum number of statuses.",
        );
    }
    let st = Status {
        id: req.id,
        state,
        context,
        description,
        target_url: req.field("target_url"),
    };
    list.push(st.clone());
    repo.status_log.push((sha.to_owned(), st.clone()));
    reply(StatusCode::CREATED, status_json(&st))
}

fn status_json(s: &Status) -> Value {
    json!({ "id": s.id, "state": s.state, "context": s.context, "description": s.description, "target_url": s.target_url, "created_at": "2026-11-23T10:00:00Z" })
}
