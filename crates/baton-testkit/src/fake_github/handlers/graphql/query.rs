//! GraphQL queries: the fields Baton reads, resolved from the fake's state. The
//! contract gate has already validated the document against GitHub's schema, so a
//! field this executor does not know is a gap in the fake, answered as an error that
//! names it (the test fails) rather than quietly left out.
//!
//! Served: `rateLimit`, `repository(owner, name)` with `pullRequest(number)` and
//! `object(oid)` (commits). The cost follows GitHub's rule: one point per hundred
//! connection pages requested, at least one.

use std::collections::BTreeMap;

use graphql_parser::query::{Field, Selection, SelectionSet, Value as Gql};
use serde_json::{Map, Value, json};

use super::super::pulls::node_id;
use crate::fake_github::state::{Pull, Repo, State};

/// What a query resolved to: `data`, `errors` and the points it cost.
pub struct Answer {
    pub body: Value,
    pub cost: i64,
}

/// Resolves `selection` (the query's root) against the state.
pub fn run(state: &State, selection: &SelectionSet<'_, String>, vars: &Value) -> Answer {
    let mut q = Exec {
        vars,
        errors: Vec::new(),
        connections: 0,
    };
    // Connections are counted first: `rateLimit { cost }` reports this query's cost.
    q.count_connections(selection);
    let cost = (q.connections as i64 + 50) / 100;
    let cost = cost.max(1);
    let mut data = Map::new();
    for field in fields(selection, "Query") {
        let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
        let value = match field.name.as_str() {
            "rateLimit" => {
                let remaining = state.graphql_remaining - cost;
                let object = json!({
                    "cost": cost, "limit": state.graphql_limit, "remaining": remaining.max(0),
                    "used": state.graphql_limit - remaining, "resetAt": reset_at(state), "nodeCount": q.connections,
                    "__typename": "RateLimit",
                });
                q.project(&object, &field.selection_set, "RateLimit")
            }
            "repository" => q.repository(state, field),
            other => q.gap(other, "Query"),
        };
        data.insert(key, value);
    }
    let mut body = json!({ "data": data });
    if !q.errors.is_empty() {
        body["errors"] = Value::Array(q.errors);
    }
    Answer { body, cost }
}

fn reset_at(state: &State) -> String {
    let at = if state.reset_at > 0 {
        state.reset_at
    } else {
        jiff::Timestamp::now().as_second() + 3600
    };
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The value of `field`'s argument `name`, variables resolved from `vars` (`null` when
/// absent).
pub(super) fn argument(field: &Field<'_, String>, name: &str, vars: &Value) -> Value {
    field
        .arguments
        .iter()
        .find(|(k, _)| k == name)
        .map_or(Value::Null, |(_, v)| value(v, vars))
}

fn value(v: &Gql<'_, String>, vars: &Value) -> Value {
    match v {
        Gql::Variable(name) => vars.get(name).cloned().unwrap_or(Value::Null),
        Gql::Int(n) => n.as_i64().map(Value::from).unwrap_or(Value::Null),
        Gql::Float(f) => json!(f),
        Gql::String(s) | Gql::Enum(s) => Value::String(s.clone()),
        Gql::Boolean(b) => Value::Bool(*b),
        Gql::Null => Value::Null,
        Gql::List(l) => Value::Array(l.iter().map(|x| value(x, vars)).collect()),
        Gql::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), value(x, vars))).collect())
        }
    }
}

/// The fields selected on an object of type `typename`, inline fragments on that type
/// flattened in. (Baton sends no named fragments; the fake does not resolve them.)
fn fields<'s, 'a>(set: &'s SelectionSet<'a, String>, typename: &str) -> Vec<&'s Field<'a, String>> {
    let mut out = Vec::new();
    for s in &set.items {
        match s {
            Selection::Field(f) => out.push(f),
            Selection::InlineFragment(frag) => {
                let applies = match &frag.type_condition {
                    None => true,
                    Some(graphql_parser::query::TypeCondition::On(t)) => t == typename,
                };
                if applies {
                    out.extend(fields(&frag.selection_set, typename));
                }
            }
            Selection::FragmentSpread(_) => {}
        }
    }
    out
}

struct Exec<'v> {
    vars: &'v Value,
    errors: Vec<Value>,
    connections: usize,
}

impl Exec<'_> {
    /// Connection fields requested (each costs one page; GitHub divides by 100).
    fn count_connections(&mut self, set: &SelectionSet<'_, String>) {
        for s in &set.items {
            match s {
                Selection::Field(f) => {
                    if f.arguments.iter().any(|(k, _)| k == "first" || k == "last") {
                        self.connections += 1;
                    }
                    self.count_connections(&f.selection_set);
                }
                Selection::InlineFragment(i) => self.count_connections(&i.selection_set),
                Selection::FragmentSpread(_) => {}
            }
        }
    }

    fn arg(&self, field: &Field<'_, String>, name: &str) -> Value {
        argument(field, name, self.vars)
    }

    fn gap(&mut self, field: &str, on: &str) -> Value {
        self.errors.push(json!({
            "message": format!("the fake GitHub does not serve field '{field}' on {on}"),
        }));
        Value::Null
    }

    fn not_found(&mut self, message: String, path: &[&str]) -> Value {
        self.errors
            .push(json!({ "type": "NOT_FOUND", "path": path, "message": message }));
        Value::Null
    }

    fn repository(&mut self, state: &State, field: &Field<'_, String>) -> Value {
        let owner = self.arg(field, "owner");
        let name = self.arg(field, "name");
        let full = format!(
            "{}/{}",
            owner.as_str().unwrap_or_default(),
            name.as_str().unwrap_or_default()
        );
        let key = field.alias.as_deref().unwrap_or("repository");
        let Some(repo) = state.repos.get(&full) else {
            return self.not_found(
                format!("Could not resolve to a Repository with the name '{full}'."),
                &[key],
            );
        };
        let mut out = Map::new();
        for f in fields(&field.selection_set, "Repository") {
            let alias = f.alias.clone().unwrap_or_else(|| f.name.clone());
            let value = match f.name.as_str() {
                "nameWithOwner" => Value::String(full.clone()),
                "__typename" => Value::String("Repository".into()),
                "pullRequest" => {
                    let number = self.arg(f, "number").as_u64().unwrap_or_default();
                    match repo.pulls.iter().find(|p| p.number == number) {
                        Some(p) => {
                            let object = pull(&full, repo, p);
                            self.project(&object, &f.selection_set, "PullRequest")
                        }
                        None => self.not_found(
                            format!(
                                "Could not resolve to a PullRequest with the number of {number}."
                            ),
                            &[key, &alias],
                        ),
                    }
                }
                "object" => {
                    let oid = self.arg(f, "oid");
                    match oid
                        .as_str()
                        .and_then(|o| repo.commits.get(o).map(|c| (o, c)))
                    {
                        Some((oid, c)) => {
                            let object = json!({ "__typename": "Commit", "oid": oid, "committedDate": c.date, "message": c.message });
                            self.project(&object, &f.selection_set, "Commit")
                        }
                        // GitHub answers null, without an error, for an unknown object.
                        None => Value::Null,
                    }
                }
                other => self.gap(other, "Repository"),
            };
            out.insert(alias, value);
        }
        Value::Object(out)
    }

    /// Keeps what `set` selects of a resolved object (lists element by element).
    fn project(&mut self, object: &Value, set: &SelectionSet<'_, String>, typename: &str) -> Value {
        if set.items.is_empty() {
            return object.clone();
        }
        match object {
            Value::Null => Value::Null,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| {
                        let t = i
                            .get("__typename")
                            .and_then(Value::as_str)
                            .unwrap_or(typename)
                            .to_owned();
                        self.project(i, set, &t)
                    })
                    .collect(),
            ),
            Value::Object(map) => {
                let mut out = Map::new();
                for f in fields(set, typename) {
                    let alias = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    let value = match map.get(&f.name) {
                        Some(v) => {
                            let t = child_type(v);
                            self.project(v, &f.selection_set, &t)
                        }
                        None => self.gap(&f.name, typename),
                    };
                    out.insert(alias, value);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}

fn child_type(v: &Value) -> String {
    let of = |x: &Value| {
        x.get("__typename")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match v {
        Value::Array(a) => a.first().and_then(of),
        other => of(other),
    }
    .unwrap_or_default()
}

/// A pull request as GraphQL shows it.
fn pull(full: &str, repo: &Repo, p: &Pull) -> Value {
    let state = match (p.merged, p.state.as_str()) {
        (true, _) => "MERGED",
        (false, "open") => "OPEN",
        _ => "CLOSED",
    };
    // The latest review of each reviewer that is not only a comment.
    let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
    for (user, review) in &p.reviews {
        if review != "COMMENTED" {
            latest.insert(user, review);
        }
    }
    let reviews: Vec<Value> = latest
        .iter()
        .map(|(user, review)| {
            json!({ "__typename": "PullRequestReview", "state": review,
                    "author": { "__typename": "User", "login": user } })
        })
        .collect();
    let head = repo.refs.get(&p.head);
    json!({
        "__typename": "PullRequest",
        "id": node_id(full, p.number),
        "number": p.number,
        "url": format!("https://github.com/{full}/pull/{}", p.number),
        "title": p.title,
        "body": p.body,
        "state": state,
        "merged": p.merged,
        "closed": p.state != "open",
        "mergeCommit": p.merge_commit_sha.as_ref().map(|oid| json!({ "__typename": "Commit", "oid": oid })),
        "headRefName": p.head,
        "headRefOid": head,
        "headRef": head.map(|_| json!({ "__typename": "Ref", "name": p.head })),
        "baseRefName": p.base,
        "autoMergeRequest": if p.auto_merge { json!({ "__typename": "AutoMergeRequest", "enabledAt": "2026-11-23T10:00:00Z", "mergeMethod": "SQUASH" }) } else { Value::Null },
        "latestOpinionatedReviews": { "__typename": "PullRequestReviewConnection", "nodes": reviews, "totalCount": latest.len() },
        "labels": { "__typename": "LabelConnection", "nodes": p.labels.iter().map(|l| json!({ "__typename": "Label", "name": l })).collect::<Vec<_>>() },
    })
}
