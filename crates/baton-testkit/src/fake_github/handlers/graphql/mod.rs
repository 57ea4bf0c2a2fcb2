//! `POST /graphql`: the mutations Baton sends (enabling and disabling auto-merge on a
//! pull request) and the queries it reads with ([`query`]: pull request states in
//! batches, commit dates). GraphQL errors come back as 200 with `errors`, as GitHub
//! sends them. Every answer carries its cost in points, counted against the GraphQL
//! budget, apart from REST's.

mod query;

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
    let doc = match graphql_parser::parse_query::<String>(query) {
        Ok(d) => d,
        Err(e) => {
            return costed(
                json!({ "errors": [{ "message": format!("Parse error: {e}") }] }),
                1,
            );
        }
    };
    let vars = body.get("variables").cloned().unwrap_or(Value::Null);
    for def in &doc.definitions {
        use graphql_parser::query::{Definition, OperationDefinition as Op};
        match def {
            Definition::Operation(Op::Query(q)) => {
                let a = query::run(state, &q.selection_set, &vars);
                return costed(a.body, a.cost);
            }
            Definition::Operation(Op::SelectionSet(set)) => {
                let a = query::run(state, set, &vars);
                return costed(a.body, a.cost);
            }
            _ => {}
        }
    }
    let mut r = mutation(state, query, body);
    r.graphql_cost = Some(1);
    r
}

fn costed(body: Value, cost: i64) -> Reply {
    let mut r = reply(StatusCode::OK, body);
    r.graphql_cost = Some(cost);
    r
}

fn mutation(state: &mut State, query: &str, body: &Value) -> Reply {
    let mutation = if query.contains("enablePullRequestAutoMerge") {
        "enablePullRequestAutoMerge"
    } else if query.contains("disablePullRequestAutoMerge") {
        "disablePullRequestAutoMerge"
    } else {
        return reply(
            StatusCode::OK,
            json!({ "errors": [{ "message": "the fake GitHub only knows enablePullRequestAutoMerge and disablePullRequestAutoMerge" }] }),
        );
    };
    // The argument names the variable that carries the id, as GitHub resolves it (the
    // contract gate has already checked the document against GitHub's schema).
    let id = argument_variable(query, "pullRequestId")
        .and_then(|var| body.get("variables")?.get(var)?.as_str())
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
            p.auto_merge = mutation == "enablePullRequestAutoMerge";
            p.version += 1;
            return reply(
                StatusCode::OK,
                json!({ "data": { mutation: { "pullRequest": { "number": p.number } } } }),
            );
        }
    }
    reply(
        StatusCode::OK,
        json!({ "errors": [{ "message": format!("Could not resolve to a node with the global id of '{id}'"), "type": "NOT_FOUND" }] }),
    )
}

/// The variable passed to `argument` in `query`: `pullRequestId: $id` gives `id`.
fn argument_variable<'q>(query: &'q str, argument: &str) -> Option<&'q str> {
    let at = query.find(&format!("{argument}:"))? + argument.len() + 1;
    let rest = query[at..].trim_start().strip_prefix('$')?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}
