//! `POST /graphql`: the mutations Baton sends (enabling and disabling auto-merge on a
//! pull request) and the queries it reads with ([`query`]: pull request states in
//! batches, commit dates). GraphQL errors come back as 200 with `errors`, as GitHub
//! sends them. Every answer carries its cost in points, counted against the GraphQL
//! budget, apart from REST's.

mod query;

use axum::http::StatusCode;
use graphql_parser::query::Field;
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
        use graphql_parser::query::{Definition, OperationDefinition as Op, Selection};
        match def {
            Definition::Operation(Op::Query(q)) => {
                let a = query::run(state, &q.selection_set, &vars);
                return costed(a.body, a.cost);
            }
            Definition::Operation(Op::SelectionSet(set)) => {
                let a = query::run(state, set, &vars);
                return costed(a.body, a.cost);
            }
            Definition::Operation(Op::Mutation(m)) => {
                if let Some(Selection::Field(f)) = m.selection_set.items.first() {
                    let mut r = mutation(state, f, &vars);
                    r.graphql_cost = Some(1);
                    return r;
                }
            }
            _ => {}
        }
    }
    costed(
        json!({ "errors": [{ "message": "the fake GitHub found no query or mutation field to run" }] }),
        1,
    )
}

fn costed(body: Value, cost: i64) -> Reply {
    let mut r = reply(StatusCode::OK, body);
    r.graphql_cost = Some(cost);
    r
}

fn mutation(state: &mut State, field: &Field<'_, String>, vars: &Value) -> Reply {
    let mutation = field.name.as_str();
    if !matches!(
        mutation,
        "enablePullRequestAutoMerge" | "disablePullRequestAutoMerge"
    ) {
        return reply(
            StatusCode::OK,
            json!({ "errors": [{ "message": "the fake GitHub only knows enablePullRequestAutoMerge and disablePullRequestAutoMerge" }] }),
        );
    }
    // The id as GitHub resolves it, variables included (the contract gate has already
    // checked the document against GitHub's schema).
    let input = query::argument(field, "input", vars);
    let id = input
        .get("pullRequestId")
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
