//! Reading the GitOps repository and writing the promotion branch: refs, trees,
//! commits and contents.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{decode_err, enc, str_at};
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;
use crate::provider::*;

impl GitHub {
    /// Makes `change.head_branch` hold exactly one commit on `base` with every file change.
    pub(crate) async fn ensure_branch(
        &self,
        change: &PromotionChange,
        base: &BranchHead,
    ) -> Result<(), GitHubError> {
        let repo = change.repo.path();
        if let [file] = change.files.as_slice() {
            // One file: the branch at base, then one contents-API commit (2 requests).
            // A branch left by an earlier attempt is moved back to today's base first,
            // so the PR never stacks on an old commit.
            if !self
                .create_ref(&repo, &change.head_branch, &base.sha)
                .await?
            {
                self.force_ref(&repo, &change.head_branch, &base.sha)
                    .await?;
            }
            let body = json!({ "message": change.commit_message, "content": B64.encode(&file.content), "sha": file.base_blob_sha, "branch": change.head_branch });
            let put = self
                .call(
                    Operation::PutContents,
                    Method::PUT,
                    format!("/repos/{repo}/contents/{}", enc(&file.path)),
                    Some(body),
                )
                .await?;
            if put.status == StatusCode::CONFLICT {
                // A retried PUT whose first attempt landed: the file already holds the change.
                let now = self
                    .read_file(&change.repo, &change.head_branch, &file.path)
                    .await?;
                if now.is_some_and(|f| f.content == file.content) {
                    return Ok(());
                }
            }
            put.ok(Operation::PutContents)?;
            return Ok(());
        }
        // Several files: one tree and one commit through the Git Data API.
        let entries: Vec<Value> = change.files.iter().map(|f| json!({ "path": f.path, "mode": "100644", "type": "blob", "content": f.content })).collect();
        let tree = self
            .call(
                Operation::CreateTree,
                Method::POST,
                format!("/repos/{repo}/git/trees"),
                Some(json!({ "base_tree": base.tree, "tree": entries })),
            )
            .await?
            .ok(Operation::CreateTree)?;
        let tree_sha =
            str_at(&tree, &["sha"]).ok_or_else(|| decode_err(Operation::CreateTree, "sha"))?;
        let commit = self
            .call(Operation::CreateCommit, Method::POST, format!("/repos/{repo}/git/commits"), Some(json!({ "message": change.commit_message, "tree": tree_sha, "parents": [base.sha] })))
            .await?
            .ok(Operation::CreateCommit)?;
        let commit_sha = str_at(&commit, &["sha"])
            .ok_or_else(|| decode_err(Operation::CreateCommit, "sha"))?
            .to_owned();
        if self
            .create_ref(&repo, &change.head_branch, &commit_sha)
            .await?
        {
            return Ok(());
        }
        // The branch exists from an earlier attempt: point it at the new commit, which
        // sits on today's base.
        self.force_ref(&repo, &change.head_branch, &commit_sha)
            .await
    }

    /// Moves `refs/heads/branch` to `sha`, whatever it pointed at.
    async fn force_ref(&self, repo: &str, branch: &str, sha: &str) -> Result<(), GitHubError> {
        self.call(
            Operation::UpdateRef,
            Method::PATCH,
            format!("/repos/{repo}/git/refs/{}", enc(&format!("heads/{branch}"))),
            Some(json!({ "sha": sha, "force": true })),
        )
        .await?
        .ok(Operation::UpdateRef)?;
        Ok(())
    }

    /// Creates `refs/heads/branch` at `sha`; `false` when it already existed.
    async fn create_ref(&self, repo: &str, branch: &str, sha: &str) -> Result<bool, GitHubError> {
        let reply = self
            .call(
                Operation::CreateRef,
                Method::POST,
                format!("/repos/{repo}/git/refs"),
                Some(json!({ "ref": format!("refs/heads/{branch}"), "sha": sha })),
            )
            .await?;
        if reply.status == StatusCode::UNPROCESSABLE_ENTITY
            && crate::client::message_of(&reply.body).contains("already exists")
        {
            return Ok(false);
        }
        reply.ok(Operation::CreateRef).map(|_| true)
    }
}

impl Files for GitHub {
    async fn branch_head(&self, repo: &RepoRef, branch: &str) -> Result<BranchHead, GitHubError> {
        let v = self
            .call(
                Operation::GetBranch,
                Method::GET,
                format!("/repos/{}/branches/{}", repo.path(), enc(branch)),
                None,
            )
            .await?
            .ok(Operation::GetBranch)?;
        Ok(BranchHead {
            sha: str_at(&v, &["commit", "sha"])
                .ok_or_else(|| decode_err(Operation::GetBranch, "commit.sha"))?
                .to_owned(),
            tree: str_at(&v, &["commit", "commit", "tree", "sha"])
                .ok_or_else(|| decode_err(Operation::GetBranch, "commit.commit.tree.sha"))?
                .to_owned(),
        })
    }

    async fn read_file(
        &self,
        repo: &RepoRef,
        reference: &str,
        path: &str,
    ) -> Result<Option<RepoFile>, GitHubError> {
        let reply = self
            .call(
                Operation::GetContents,
                Method::GET,
                format!(
                    "/repos/{}/contents/{}?ref={}",
                    repo.path(),
                    enc(path),
                    enc(reference)
                ),
                None,
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v = reply.ok(Operation::GetContents)?;
        if str_at(&v, &["type"]) != Some("file") {
            return Err(GitHubError::Decode {
                operation: "get_contents",
                message: format!("{path} is not a file"),
            });
        }
        let encoded = str_at(&v, &["content"])
            .ok_or_else(|| decode_err(Operation::GetContents, "content"))?
            .replace(['\n', '\r'], "");
        let bytes = B64.decode(encoded).map_err(|e| GitHubError::Decode {
            operation: "get_contents",
            message: e.to_string(),
        })?;
        let content = String::from_utf8(bytes).map_err(|_| GitHubError::Decode {
            operation: "get_contents",
            message: format!("{path} is not UTF-8 text"),
        })?;
        Ok(Some(RepoFile {
            content,
            blob_sha: str_at(&v, &["sha"]).unwrap_or_default().to_owned(),
        }))
    }
}
