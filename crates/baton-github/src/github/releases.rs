//! Release notes, one per tag.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{decode_err, enc, str_at};
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;
use crate::provider::*;

impl Releases for GitHub {
    async fn ensure_release(
        &self,
        repo: &RepoRef,
        note: &ReleaseNote,
    ) -> Result<Outcome, GitHubError> {
        let path = repo.path();
        let existing = self
            .call(
                Operation::GetRelease,
                Method::GET,
                format!("/repos/{path}/releases/tags/{}", enc(&note.tag)),
                None,
            )
            .await?;
        let found = if existing.status == StatusCode::NOT_FOUND {
            let body = json!({ "tag_name": note.tag, "target_commitish": note.target_commitish, "name": note.name, "body": note.body });
            let created = self
                .call(
                    Operation::CreateRelease,
                    Method::POST,
                    format!("/repos/{path}/releases"),
                    Some(body),
                )
                .await?;
            if created.status != StatusCode::UNPROCESSABLE_ENTITY {
                created.ok(Operation::CreateRelease)?;
                return Ok(Outcome::Created);
            }
            // Created by an earlier attempt whose answer was lost: fetch it.
            self.call(
                Operation::GetRelease,
                Method::GET,
                format!("/repos/{path}/releases/tags/{}", enc(&note.tag)),
                None,
            )
            .await?
            .ok(Operation::GetRelease)?
        } else {
            existing.ok(Operation::GetRelease)?
        };
        if str_at(&found, &["body"]) == Some(note.body.as_str())
            && str_at(&found, &["name"]) == Some(note.name.as_str())
        {
            return Ok(Outcome::AlreadyPresent);
        }
        let id = found
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| decode_err(Operation::GetRelease, "id"))?;
        self.call(
            Operation::UpdateRelease,
            Method::PATCH,
            format!("/repos/{path}/releases/{id}"),
            Some(json!({ "name": note.name, "body": note.body })),
        )
        .await?
        .ok(Operation::UpdateRelease)?;
        Ok(Outcome::Updated)
    }
}
