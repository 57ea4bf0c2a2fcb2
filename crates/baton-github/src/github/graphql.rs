//! GraphQL: the only way GitHub offers to enable auto-merge.

use http::Method;
use serde_json::{Value, json};

use super::str_at;
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;

impl GitHub {
    /// Enables auto-merge (GraphQL, the only way GitHub offers). A refusal (repository
    /// settings, branch protection) is returned as text: the PR stays valid without it.
    pub(crate) async fn enable_auto_merge(
        &self,
        node_id: &str,
    ) -> Result<Option<String>, GitHubError> {
        let body = json!({
            "query": "mutation($id: ID!) { enablePullRequestAutoMerge(input: { pullRequestId: $id, mergeMethod: SQUASH }) { pullRequest { number } } }",
            "variables": { "id": node_id }
        });
        let v = self
            .call(
                Operation::EnableAutoMerge,
                Method::POST,
                "/graphql".into(),
                Some(body),
            )
            .await?
            .ok(Operation::EnableAutoMerge)?;
        Ok(v.get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
            .map(|e| {
                str_at(e, &["message"])
                    .unwrap_or("auto-merge refused")
                    .to_owned()
            }))
    }

    /// Disables auto-merge (a window closed while the PR waits). A PR without it is
    /// fine; a refusal is returned as text.
    pub(crate) async fn disable_auto_merge(
        &self,
        node_id: &str,
    ) -> Result<Option<String>, GitHubError> {
        let body = json!({
            "query": "mutation($id: ID!) { disablePullRequestAutoMerge(input: { pullRequestId: $id }) { pullRequest { number } } }",
            "variables": { "id": node_id }
        });
        let v = self
            .call(
                Operation::DisableAutoMerge,
                Method::POST,
                "/graphql".into(),
                Some(body),
            )
            .await?
            .ok(Operation::DisableAutoMerge)?;
        Ok(v.get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
            .map(|e| {
                str_at(e, &["message"])
                    .unwrap_or("auto-merge could not be disabled")
                    .to_owned()
            }))
    }
}
