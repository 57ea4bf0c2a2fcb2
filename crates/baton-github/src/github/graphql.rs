//! GraphQL: auto-merge (the only way GitHub offers to enable it), and the batched reads
//! that keep polling cheap: the state of up to a hundred pull requests, or the dates of
//! up to a hundred commits, in one query. GraphQL has a budget of its own, in points;
//! each of these queries costs one.

use std::collections::BTreeMap;

use http::Method;
use serde_json::{Map, Value, json};

use super::str_at;
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;
use crate::provider::{PrSnapshot, PrState, RepoRef, reviews};

/// What is read of each pull request. `latestOpinionatedReviews` is the latest
/// approving or change-requesting review of each reviewer.
const PULL_FIELDS: &str = "number state mergeCommit { oid } autoMergeRequest { enabledAt } id headRef { name } latestOpinionatedReviews(first: 50) { nodes { state author { login } } }";

impl GitHub {
    /// Posts one GraphQL document; the whole answer, `errors` included (GitHub sends
    /// them with a 200).
    async fn post_graphql(
        &self,
        op: Operation,
        query: &str,
        variables: Value,
    ) -> Result<Value, GitHubError> {
        self.call(
            op,
            Method::POST,
            "/graphql".into(),
            Some(json!({ "query": query, "variables": variables })),
        )
        .await?
        .ok(op)
    }

    /// Sends one GraphQL query; `errors` of type NOT_FOUND are the caller's to
    /// interpret (a missing PR), any other error fails the call.
    async fn graphql(
        &self,
        op: Operation,
        query: String,
        variables: Value,
    ) -> Result<Value, GitHubError> {
        let v = self.post_graphql(op, &query, variables).await?;
        let fatal = v
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|e| str_at(e, &["type"]) != Some("NOT_FOUND"));
        if let Some(e) = fatal {
            return Err(GitHubError::Decode {
                operation: op.as_str(),
                message: str_at(e, &["message"])
                    .unwrap_or("GraphQL error")
                    .to_owned(),
            });
        }
        Ok(v.get("data").cloned().unwrap_or(Value::Null))
    }

    /// One query for up to [`crate::provider::PULLS_PER_QUERY`] pull requests.
    pub(crate) async fn query_pull_states(
        &self,
        repo: &RepoRef,
        numbers: &[u64],
    ) -> Result<BTreeMap<u64, PrSnapshot>, GitHubError> {
        let mut query = String::from(
            "query($owner: String!, $name: String!) { rateLimit { cost remaining } repository(owner: $owner, name: $name) {",
        );
        for n in numbers {
            query.push_str(&format!(
                " p{n}: pullRequest(number: {n}) {{ {PULL_FIELDS} }}"
            ));
        }
        query.push_str(" } }");
        let data = self
            .graphql(
                Operation::PullStates,
                query,
                json!({ "owner": repo.owner, "name": repo.name }),
            )
            .await?;
        let Some(found) = data.get("repository").and_then(Value::as_object) else {
            return Err(GitHubError::Decode {
                operation: Operation::PullStates.as_str(),
                message: format!(
                    "repository {repo} not found (or not visible to these credentials)"
                ),
            });
        };
        Ok(numbers
            .iter()
            .filter_map(|n| Some((*n, snapshot(found.get(&format!("p{n}"))?)?)))
            .collect())
    }

    /// One query for up to a hundred commits, in any repositories.
    pub(crate) async fn query_commit_dates(
        &self,
        commits: &[&(RepoRef, String)],
    ) -> Result<Vec<((String, String), String)>, GitHubError> {
        let mut query = String::from("query(");
        let mut vars = Map::new();
        let mut body = String::new();
        for (i, (repo, sha)) in commits.iter().enumerate() {
            query.push_str(&format!(
                "$o{i}: String!, $n{i}: String!, $s{i}: GitObjectID!, "
            ));
            vars.insert(format!("o{i}"), json!(repo.owner));
            vars.insert(format!("n{i}"), json!(repo.name));
            vars.insert(format!("s{i}"), json!(sha));
            body.push_str(&format!(
                " c{i}: repository(owner: $o{i}, name: $n{i}) {{ object(oid: $s{i}) {{ ... on Commit {{ committedDate }} }} }}"
            ));
        }
        query.push_str(") { rateLimit { cost remaining }");
        query.push_str(&body);
        query.push_str(" }");
        let data = self
            .graphql(Operation::CommitDates, query, Value::Object(vars))
            .await?;
        Ok(commits
            .iter()
            .enumerate()
            .filter_map(|(i, (repo, sha))| {
                let date = str_at(&data, &[&format!("c{i}"), "object", "committedDate"])?;
                Some(((repo.path(), sha.clone()), date.to_owned()))
            })
            .collect())
    }

    /// Enables auto-merge (GraphQL, the only way GitHub offers). A refusal (repository
    /// settings, branch protection) is returned as text: the PR stays valid without it.
    pub(crate) async fn enable_auto_merge(
        &self,
        node_id: &str,
    ) -> Result<Option<String>, GitHubError> {
        let v = self
            .post_graphql(
                Operation::EnableAutoMerge,
                "mutation($id: ID!) { enablePullRequestAutoMerge(input: { pullRequestId: $id, mergeMethod: SQUASH }) { pullRequest { number } } }",
                json!({ "id": node_id }),
            )
            .await?;
        Ok(refusal(&v, "auto-merge refused"))
    }

    /// Disables auto-merge (a window closed while the PR waits). A PR without it is
    /// fine; a refusal is returned as text.
    pub(crate) async fn disable_auto_merge(
        &self,
        node_id: &str,
    ) -> Result<Option<String>, GitHubError> {
        let v = self
            .post_graphql(
                Operation::DisableAutoMerge,
                "mutation($id: ID!) { disablePullRequestAutoMerge(input: { pullRequestId: $id }) { pullRequest { number } } }",
                json!({ "id": node_id }),
            )
            .await?;
        Ok(refusal(&v, "auto-merge could not be disabled"))
    }
}

/// The first GraphQL error's message, if the mutation was refused.
fn refusal(v: &Value, fallback: &str) -> Option<String> {
    v.get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .map(|e| str_at(e, &["message"]).unwrap_or(fallback).to_owned())
}

/// A pull request object of the batched query; `None` when GitHub answered null.
fn snapshot(pr: &Value) -> Option<PrSnapshot> {
    let state = match str_at(pr, &["state"])? {
        "MERGED" => PrState::Merged {
            merge_commit: str_at(pr, &["mergeCommit", "oid"])?.to_owned(),
        },
        "OPEN" => PrState::Open,
        _ => PrState::Closed,
    };
    let nodes = pr
        .get("latestOpinionatedReviews")
        .and_then(|r| r.get("nodes"))
        .and_then(Value::as_array);
    let review = reviews::decide(
        nodes
            .into_iter()
            .flatten()
            .filter_map(|r| Some((str_at(r, &["author", "login"])?, str_at(r, &["state"])?))),
    );
    Some(PrSnapshot {
        state,
        review,
        auto_merge_enabled: pr.get("autoMergeRequest").is_some_and(|a| !a.is_null()),
        node_id: str_at(pr, &["id"]).map(str::to_owned),
        head_exists: pr.get("headRef").is_some_and(|h| !h.is_null()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ReviewDecision;

    #[test]
    fn a_merged_pull_request_needs_its_merge_commit() {
        let merged = json!({ "state": "MERGED", "mergeCommit": { "oid": "abc" }, "headRef": null, "latestOpinionatedReviews": { "nodes": [] } });
        let s = snapshot(&merged).expect("decoded");
        assert_eq!(
            s.state,
            PrState::Merged {
                merge_commit: "abc".into()
            }
        );
        assert!(!s.head_exists);
        assert_eq!(
            snapshot(&json!({ "state": "MERGED", "mergeCommit": null })),
            None
        );
    }

    #[test]
    fn changes_requested_outweighs_an_approval() {
        let pr = json!({ "state": "OPEN", "headRef": { "name": "b" }, "latestOpinionatedReviews": { "nodes": [
            { "state": "APPROVED", "author": { "login": "a" } },
            { "state": "CHANGES_REQUESTED", "author": { "login": "b" } } ] } });
        let s = snapshot(&pr).expect("decoded");
        assert_eq!(s.review, ReviewDecision::ChangesRequested);
        assert_eq!(s.state, PrState::Open);
        assert!(s.head_exists);
    }
}
