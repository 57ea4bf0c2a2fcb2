//! Releases: looked up by tag, created (one per tag), edited.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::reply::{Reply, not_found, reply, unprocessable};
use super::super::state::{Release, Repo};
use super::RepoRequest;

pub fn handle(repo: &mut Repo, req: &RepoRequest) -> Reply {
    match (req.method, req.rest) {
        ("GET", ["releases", "tags", tag @ ..]) => by_tag(repo, req, &tag.join("/")),
        ("POST", ["releases"]) => create(repo, req),
        ("PATCH", ["releases", rid]) => update(repo, req, rid),
        _ => not_found(),
    }
}

fn by_tag(repo: &Repo, req: &RepoRequest, tag: &str) -> Reply {
    match repo.releases.iter().find(|r| r.tag_name == tag) {
        Some(r) => reply(StatusCode::OK, release_json(r, req.web)),
        None => not_found(),
    }
}

fn create(repo: &mut Repo, req: &RepoRequest) -> Reply {
    let Some(tag) = req.field("tag_name") else {
        return unprocessable("Validation Failed", "tag_name is required");
    };
    if repo.releases.iter().any(|r| r.tag_name == tag) {
        // GitHub's shape for a duplicate differs from other validation errors.
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "message": "Validation Failed", "errors": [{ "resource": "Release", "code": "already_exists", "field": "tag_name" }] }),
        );
    }
    let r = Release {
        id: req.id,
        tag_name: tag.clone(),
        name: req.field("name").unwrap_or(tag),
        body: req.field("body").unwrap_or_default(),
        target_commitish: req
            .field("target_commitish")
            .unwrap_or_else(|| "main".into()),
    };
    repo.releases.push(r.clone());
    reply(StatusCode::CREATED, release_json(&r, req.web))
}

fn update(repo: &mut Repo, req: &RepoRequest, rid: &str) -> Reply {
    let Some(r) = repo.releases.iter_mut().find(|r| r.id.to_string() == rid) else {
        return not_found();
    };
    if let Some(n) = req.field("name") {
        r.name = n;
    }
    if let Some(b) = req.field("body") {
        r.body = b;
    }
    let r = r.clone();
    reply(StatusCode::OK, release_json(&r, req.web))
}

fn release_json(r: &Release, web: &str) -> Value {
    json!({ "id": r.id, "tag_name": r.tag_name, "name": r.name, "body": r.body, "target_commitish": r.target_commitish, "html_url": format!("{web}/releases/tag/{}", r.tag_name), "draft": false, "prerelease": false })
}
