//! `POST /graphql`: the one mutation Baton sends, enabling auto-merge on a pull
//! request. GraphQL errors come back as 200 with `errors`, as GitHub sends them.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::reply::{Reply, reply};
use super::super::state::State;
use super::pulls::node_id;

pub fn handle(state: &mut State, body: &Value) -> Reply {
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !query.contains("enablePullRequestAutoMerge") {
        return reply(
            StatusCode::OK,
            json!({ "errors": [{ "message": "the fake GitHub only knows enablePullRequestAutoMerge" }] }),
        );
    }
    let id = body
        .pointer("/variables/pullRequestId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for (full, repo) in state.repos.iter_mut() {
        if let Some(p) = repo
            .pulls
            .iter_mut()
            .find(|p| node_id(full, p.number) == id)
        {
            if p.state != "open" {
                return reply(
                    StatusCode::OK,
                    json!({ "errors": [{ "message": "Pull request is not open", "type": "UNPROCESSABLE" }] }),
                );
            }
            p.auto_merge = true;
            p.version += 1;
            return reply(
                StatusCode::OK,
                json!({ "data": { "enablePullRequestAutoMerge": { "pullRequest": { "number": p.number } } } }),
            );
        }
    }
    reply(
        StatusCode::OK,
        json!({ "errors": [{ "message": format!("Could not resolve to a node with the global id of '{id}'"), "type": "NOT_FOUND" }] }),
    )
}
