//! `GET /compare/{base}...{head}`: how two commits relate. Only `status` and the
//! ahead/behind counts are meaningful: Baton asks whether one commit is an ancestor
//! of another.

use axum::http::StatusCode;
use serde_json::json;

use super::super::reply::{Reply, error, not_found, reply};
use super::super::state::Repo;
use super::RepoRequest;

pub fn handle(repo: &mut Repo, req: &RepoRequest) -> Reply {
    match (req.method, req.rest) {
        ("GET", ["compare", spec]) => compare(repo, spec),
        _ => not_found(),
    }
}

fn compare(repo: &Repo, spec: &str) -> Reply {
    let Some((b, h)) = spec.split_once("...") else {
        return not_found();
    };
    let (Some(b), Some(h)) = (repo.resolve(b), repo.resolve(h)) else {
        return error(StatusCode::NOT_FOUND, "No common ancestor");
    };
    let status = if b == h {
        "identical"
    } else if repo.is_ancestor(&b, &h) {
        "ahead"
    } else if repo.is_ancestor(&h, &b) {
        "behind"
    } else {
        "diverged"
    };
    reply(
        StatusCode::OK,
        json!({ "status": status, "ahead_by": u8::from(status == "ahead"), "behind_by": u8::from(status == "behind"), "total_commits": 0, "commits": [], "files": [] }),
    )
}
