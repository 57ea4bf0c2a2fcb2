//! Commit statuses on the source repository, posted at most once per state.

use http::Method;
use serde_json::json;

use super::str_at;
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;
use crate::naming::{MAX_STATUS_DESCRIPTION, truncate};
use crate::provider::*;

impl CommitStatuses for GitHub {
    async fn ensure_status(
        &self,
        repo: &RepoRef,
        sha: &str,
        status: &CommitStatus,
        look_first: bool,
    ) -> Result<Outcome, GitHubError> {
        let description = truncate(&status.description, MAX_STATUS_DESCRIPTION);
        let mut look = look_first;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if look && self.has_status(repo, sha, status, &description).await? {
                return Ok(Outcome::AlreadyPresent);
            }
            let body = json!({ "state": status.state.as_str(), "context": status.context, "description": description, "target_url": status.target_url });
            match self
                .call(
                    Operation::CreateStatus,
                    Method::POST,
                    format!("/repos/{}/statuses/{sha}", repo.path()),
                    Some(body),
                )
                .await
            {
                Ok(reply) => return reply.ok(Operation::CreateStatus).map(|_| Outcome::Created),
                // The POST may have landed before the failure: look before trying again.
                Err(e) if e.is_transient() && attempts < 5 => {
                    look = true;
                    if let GitHubError::RateLimited(wait) = e {
                        tokio::time::sleep(wait).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl GitHub {
    async fn has_status(
        &self,
        repo: &RepoRef,
        sha: &str,
        status: &CommitStatus,
        description: &str,
    ) -> Result<bool, GitHubError> {
        // Statuses come newest first; page until found or exhausted (GitHub keeps up to 1000 per context).
        for page in 1..=10 {
            let v = self
                .call(
                    Operation::ListStatuses,
                    Method::GET,
                    format!(
                        "/repos/{}/commits/{sha}/statuses?per_page=100&page={page}",
                        repo.path()
                    ),
                    None,
                )
                .await?
                .ok(Operation::ListStatuses)?;
            let list = v.as_array().cloned().unwrap_or_default();
            if let Some(latest) = list
                .iter()
                .find(|s| str_at(s, &["context"]) == Some(status.context.as_str()))
            {
                return Ok(str_at(latest, &["state"]) == Some(status.state.as_str())
                    && str_at(latest, &["description"]) == Some(description));
            }
            if list.len() < 100 {
                break;
            }
        }
        Ok(false)
    }
}
