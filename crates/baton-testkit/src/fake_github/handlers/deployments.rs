//! Deployments and their statuses, with GitHub's list filters (`sha`, `task`,
//! `environment`) and newest-first order.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::reply::{Reply, not_found, reply, unprocessable};
use super::super::state::{Deployment, DeploymentStatus, Repo};
use super::RepoRequest;

const STATES: &[&str] = &[
    "error",
    "failure",
    "inactive",
    "in_progress",
    "queued",
    "pending",
    "success",
];

pub fn handle(repo: &mut Repo, req: &RepoRequest) -> Reply {
    match (req.method, req.rest) {
        ("GET", ["deployments"]) => list(repo, req),
        ("POST", ["deployments"]) => create(repo, req),
        ("POST", ["deployments", id, "statuses"]) => add_status(repo, req, id),
        ("GET", ["deployments", id, "statuses"]) => statuses(repo, id),
        _ => not_found(),
    }
}

fn list(repo: &Repo, req: &RepoRequest) -> Reply {
    let keep = |d: &&Deployment| {
        req.param("sha").is_none_or(|v| v == d.sha)
            && req.param("task").is_none_or(|v| v == d.task)
            && req.param("environment").is_none_or(|v| v == d.environment)
    };
    let out: Vec<Value> = repo
        .deployments
        .iter()
        .rev()
        .filter(keep)
        .map(|d| deployment_json(d, req))
        .collect();
    reply(StatusCode::OK, Value::Array(out))
}

fn create(repo: &mut Repo, req: &RepoRequest) -> Reply {
    let Some(git_ref) = req.field("ref") else {
        return unprocessable("Invalid request.", "ref is required");
    };
    // GitHub resolves the ref; Baton always sends a full commit SHA.
    let Some(sha) = repo.commits.contains_key(&git_ref).then_some(git_ref) else {
        return reply(
            StatusCode::CONFLICT,
            json!({ "message": "No ref found for the given sha" }),
        );
    };
    let d = Deployment {
        id: req.id,
        sha,
        task: req.field("task").unwrap_or_else(|| "deploy".into()),
        environment: req
            .field("environment")
            .unwrap_or_else(|| "production".into()),
        description: req.field("description").unwrap_or_default(),
        production: req
            .body
            .get("production_environment")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        payload: req.body.get("payload").cloned().unwrap_or(Value::Null),
        statuses: vec![],
    };
    repo.deployments.push(d.clone());
    reply(StatusCode::CREATED, deployment_json(&d, req))
}

fn add_status(repo: &mut Repo, req: &RepoRequest, id: &str) -> Reply {
    let Some(d) = repo.deployments.iter_mut().find(|d| d.id.to_string() == id) else {
        return not_found();
    };
    let Some(state) = req.field("state").filter(|s| STATES.contains(&s.as_str())) else {
        return unprocessable("Validation Failed", "state is invalid");
    };
    let s = DeploymentStatus {
        state: state.clone(),
        description: req.field("description").unwrap_or_default(),
        log_url: req.field("log_url"),
        environment_url: req.field("environment_url"),
    };
    d.statuses.push(s.clone());
    reply(
        StatusCode::CREATED,
        json!({ "id": req.id, "state": state, "description": s.description, "environment": d.environment,
                "log_url": s.log_url, "environment_url": s.environment_url }),
    )
}

fn statuses(repo: &Repo, id: &str) -> Reply {
    let Some(d) = repo.deployments.iter().find(|d| d.id.to_string() == id) else {
        return not_found();
    };
    let out: Vec<Value> = d
        .statuses
        .iter()
        .rev()
        .map(|s| json!({ "state": s.state, "description": s.description }))
        .collect();
    reply(StatusCode::OK, Value::Array(out))
}

fn deployment_json(d: &Deployment, req: &RepoRequest) -> Value {
    json!({
        "id": d.id, "sha": d.sha, "ref": d.sha, "task": d.task, "environment": d.environment,
        "description": d.description, "production_environment": d.production, "payload": d.payload,
        "url": format!("{}/deployments/{}", req.web, d.id),
    })
}
