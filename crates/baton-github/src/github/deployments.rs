//! Deployments and their statuses.

use http::Method;
use serde_json::{Value, json};

use super::enc;
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;
use crate::provider::*;

impl Deployments for GitHub {
    async fn ensure_deployment(
        &self,
        req: &DeploymentRequest,
        look_first: bool,
    ) -> Result<u64, GitHubError> {
        let path = req.repo.path();
        if look_first {
            let list = self
                .call(
                    Operation::ListDeployments,
                    Method::GET,
                    format!(
                        "/repos/{path}/deployments?sha={}&task={}&environment={}&per_page=100",
                        enc(&req.sha),
                        enc(&req.task),
                        enc(&req.environment)
                    ),
                    None,
                )
                .await?
                .ok(Operation::ListDeployments)?;
            let found = list.as_array().and_then(|a| {
                a.iter().find(|d| {
                    d.get("payload")
                        .and_then(|p| p.get("baton"))
                        .and_then(Value::as_str)
                        == Some(req.marker.as_str())
                })
            });
            if let Some(id) = found.and_then(|d| d.get("id")).and_then(Value::as_u64) {
                return Ok(id);
            }
        }
        let body = json!({
            "ref": req.sha,
            "task": req.task,
            "auto_merge": false,
            "required_contexts": [],
            "payload": { "baton": req.marker },
            "environment": req.environment,
            "description": req.description,
            "transient_environment": false,
            "production_environment": req.production,
        });
        let created = self
            .call(
                Operation::CreateDeployment,
                Method::POST,
                format!("/repos/{path}/deployments"),
                Some(body),
            )
            .await?
            .ok(Operation::CreateDeployment)?;
        created
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| super::decode_err(Operation::CreateDeployment, "id"))
    }

    async fn deployment_status(
        &self,
        repo: &RepoRef,
        id: u64,
        update: &DeploymentUpdate,
    ) -> Result<(), GitHubError> {
        let mut body = json!({
            "state": update.state.as_str(),
            "description": crate::naming::truncate(&update.description, 140),
            // Retiring the predecessor is done per service (see `retire_previous`).
            "auto_inactive": false,
        });
        if let Some(u) = &update.log_url {
            body["log_url"] = json!(u);
        }
        if let Some(u) = &update.environment_url {
            body["environment_url"] = json!(u);
        }
        self.call(
            Operation::CreateDeploymentStatus,
            Method::POST,
            format!("/repos/{}/deployments/{id}/statuses", repo.path()),
            Some(body),
        )
        .await?
        .ok(Operation::CreateDeploymentStatus)?;
        Ok(())
    }

    async fn retire_previous(
        &self,
        repo: &RepoRef,
        environment: &str,
        task: &str,
        id: u64,
    ) -> Result<Option<u64>, GitHubError> {
        let list = self
            .call(
                Operation::ListDeployments,
                Method::GET,
                format!(
                    "/repos/{}/deployments?task={}&environment={}&per_page=100",
                    repo.path(),
                    enc(task),
                    enc(environment)
                ),
                None,
            )
            .await?
            .ok(Operation::ListDeployments)?;
        let previous = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("id").and_then(Value::as_u64))
            .filter(|d| *d < id)
            .max();
        let Some(previous) = previous else {
            return Ok(None);
        };
        let update = DeploymentUpdate {
            state: DeploymentState::Inactive,
            description: "superseded by a newer deployment".into(),
            log_url: None,
            environment_url: None,
        };
        self.deployment_status(repo, previous, &update).await?;
        Ok(Some(previous))
    }
}
