//! The provider traits on GitHub's REST API.
//!
//! Request budget of one single-file promotion, Pending to Synced: branch head,
//! file read, create ref, update file, create PR, labels, (merge seen by webhook or
//! by one conditional poll that changed), commit status = 7 or 8 counted requests.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{GitHub, Operation, Reply};
use crate::error::GitHubError;
use crate::naming::{MAX_STATUS_DESCRIPTION, truncate};
use crate::provider::*;

/// Percent-encodes a value as one URL path segment or query value. Slashes are
/// encoded too: GitHub accepts `contents/a%2Fb.yaml` and `git/refs/heads%2Fx`, and
/// the OpenAPI description models each of these as a single parameter.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn decode_err(op: Operation, what: &str) -> GitHubError {
    GitHubError::Decode {
        operation: op.as_str(),
        message: format!("missing {what}"),
    }
}

fn pull_request(v: &Value) -> Result<PullRequest, GitHubError> {
    let op = Operation::GetPull;
    let number = v
        .get("number")
        .and_then(Value::as_u64)
        .ok_or_else(|| decode_err(op, "number"))?;
    let merged = v.get("merged").and_then(Value::as_bool).unwrap_or(false)
        || v.get("merged_at").is_some_and(|m| !m.is_null());
    let state = match (str_at(v, &["state"]), merged) {
        (_, true) => PrState::Merged {
            merge_commit: str_at(v, &["merge_commit_sha"])
                .ok_or_else(|| decode_err(op, "merge_commit_sha"))?
                .to_owned(),
        },
        (Some("open"), false) => PrState::Open,
        _ => PrState::Closed,
    };
    Ok(PullRequest {
        number,
        url: str_at(v, &["html_url"]).unwrap_or_default().to_owned(),
        head_branch: str_at(v, &["head", "ref"]).unwrap_or_default().to_owned(),
        head_sha: str_at(v, &["head", "sha"]).map(str::to_owned),
        state,
        labels: v
            .get("labels")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|x| str_at(x, &["name"]).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        node_id: str_at(v, &["node_id"]).map(str::to_owned),
        auto_merge_problem: None,
    })
}

impl GitHub {
    async fn call(
        &self,
        op: Operation,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Reply, GitHubError> {
        self.send(op, method, &path, body.as_ref()).await
    }

    /// Makes `change.head_branch` hold exactly one commit on `base` with every file change.
    async fn ensure_branch(
        &self,
        change: &PromotionChange,
        base: &BranchHead,
    ) -> Result<(), GitHubError> {
        let repo = change.repo.path();
        if let [file] = change.files.as_slice() {
            // One file: create the branch at base, then one contents-API commit (2 requests).
            let created = self
                .create_ref(&repo, &change.head_branch, &base.sha)
                .await?;
            let blob = if created {
                file.base_blob_sha.clone()
            } else {
                match self
                    .read_file(&change.repo, &change.head_branch, &file.path)
                    .await?
                {
                    Some(current) if current.content == file.content => return Ok(()),
                    Some(current) => current.blob_sha,
                    None => file.base_blob_sha.clone(),
                }
            };
            let body = json!({ "message": change.commit_message, "content": B64.encode(&file.content), "sha": blob, "branch": change.head_branch });
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
        // The branch exists from an earlier attempt: keep it if it already holds the change.
        let mut same = true;
        for f in &change.files {
            if self
                .read_file(&change.repo, &change.head_branch, &f.path)
                .await?
                .map(|c| c.content)
                != Some(f.content.clone())
            {
                same = false;
                break;
            }
        }
        if !same {
            self.call(
                Operation::UpdateRef,
                Method::PATCH,
                format!(
                    "/repos/{repo}/git/refs/{}",
                    enc(&format!("heads/{}", change.head_branch))
                ),
                Some(json!({ "sha": commit_sha, "force": true })),
            )
            .await?
            .ok(Operation::UpdateRef)?;
        }
        Ok(())
    }

    /// Enables auto-merge (GraphQL, the only way GitHub offers). A refusal (repository
    /// settings, branch protection) is returned as text: the PR stays valid without it.
    async fn enable_auto_merge(&self, node_id: &str) -> Result<Option<String>, GitHubError> {
        let body = json!({
            "query": "mutation($id: ID!) { enablePullRequestAutoMerge(input: { pullRequestId: $id, mergeMethod: SQUASH }) { pullRequest { number } } }",
            "variables": { "pullRequestId": node_id }
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

impl PullRequests for GitHub {
    async fn open_promotion(
        &self,
        change: &PromotionChange,
        base: &BranchHead,
    ) -> Result<PullRequest, GitHubError> {
        let repo = change.repo.path();
        self.ensure_branch(change, base).await?;
        let create = json!({ "title": change.title, "head": change.head_branch, "base": change.base_branch, "body": change.body, "maintainer_can_modify": false });
        let reply = self
            .call(
                Operation::CreatePull,
                Method::POST,
                format!("/repos/{repo}/pulls"),
                Some(create),
            )
            .await?;
        let (pr, fresh) = if reply.status == StatusCode::UNPROCESSABLE_ENTITY
            && crate::client::message_of(&reply.body).contains("already exists")
        {
            let found = self.find_by_head(&change.repo, &change.head_branch).await?;
            (
                found.ok_or_else(|| GitHubError::Decode {
                    operation: "create_pull",
                    message: "GitHub reports the PR exists but it cannot be found".into(),
                })?,
                false,
            )
        } else {
            (pull_request(&reply.ok(Operation::CreatePull)?)?, true)
        };
        let missing: Vec<&String> = change
            .labels
            .iter()
            .filter(|l| !pr.labels.contains(l))
            .collect();
        if !missing.is_empty() {
            self.call(
                Operation::AddLabels,
                Method::POST,
                format!("/repos/{repo}/issues/{}/labels", pr.number),
                Some(json!({ "labels": missing })),
            )
            .await?
            .ok(Operation::AddLabels)?;
        }
        if fresh && (!change.reviewers.is_empty() || !change.team_reviewers.is_empty()) {
            self.call(
                Operation::RequestReviewers,
                Method::POST,
                format!("/repos/{repo}/pulls/{}/requested_reviewers", pr.number),
                Some(json!({ "reviewers": change.reviewers, "team_reviewers": change.team_reviewers })),
            )
            .await?
            .ok(Operation::RequestReviewers)?;
        }
        let mut labels = pr.labels.clone();
        labels.extend(missing.into_iter().cloned());
        let auto_merge_problem = match (fresh && change.auto_merge, pr.node_id.as_deref()) {
            (true, Some(id)) => self.enable_auto_merge(id).await?,
            (true, None) => Some("GitHub did not return the pull request's node id".into()),
            _ => None,
        };
        Ok(PullRequest {
            labels,
            auto_merge_problem,
            ..pr
        })
    }

    async fn review_decision(
        &self,
        repo: &RepoRef,
        number: u64,
    ) -> Result<ReviewDecision, GitHubError> {
        let v = self
            .get_conditional(
                Operation::ListReviews,
                &format!("/repos/{}/pulls/{number}/reviews?per_page=100", repo.path()),
            )
            .await?
            .ok(Operation::ListReviews)?;
        // The latest decisive review of each reviewer counts; comments do not decide.
        let mut latest: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        for r in v.as_array().into_iter().flatten() {
            let (Some(user), Some(state)) = (str_at(r, &["user", "login"]), str_at(r, &["state"]))
            else {
                continue;
            };
            match state {
                "APPROVED" | "CHANGES_REQUESTED" => {
                    latest.insert(user.to_owned(), state.to_owned());
                }
                "DISMISSED" => {
                    latest.remove(user);
                }
                _ => {}
            }
        }
        Ok(if latest.values().any(|s| s == "CHANGES_REQUESTED") {
            ReviewDecision::ChangesRequested
        } else if latest.values().any(|s| s == "APPROVED") {
            ReviewDecision::Approved
        } else {
            ReviewDecision::ReviewRequired
        })
    }

    async fn find_by_head(
        &self,
        repo: &RepoRef,
        branch: &str,
    ) -> Result<Option<PullRequest>, GitHubError> {
        let head = format!("{}:{branch}", repo.owner);
        let v = self
            .call(
                Operation::ListPulls,
                Method::GET,
                format!(
                    "/repos/{}/pulls?state=all&head={}&per_page=100",
                    repo.path(),
                    enc(&head)
                ),
                None,
            )
            .await?
            .ok(Operation::ListPulls)?;
        let mut prs: Vec<PullRequest> = v
            .as_array()
            .map(|a| a.iter().filter_map(|p| pull_request(p).ok()).collect())
            .unwrap_or_default();
        prs.sort_by_key(|p| std::cmp::Reverse(p.number));
        // An open PR wins over older closed ones for the same branch.
        let open = prs.iter().position(|p| p.state == PrState::Open);
        Ok(match open {
            Some(i) => Some(prs.swap_remove(i)),
            None => prs.into_iter().next(),
        })
    }

    async fn observe(&self, repo: &RepoRef, number: u64) -> Result<PullRequest, GitHubError> {
        let v = self
            .get_conditional(
                Operation::GetPull,
                &format!("/repos/{}/pulls/{number}", repo.path()),
            )
            .await?
            .ok(Operation::GetPull)?;
        pull_request(&v)
    }

    async fn close_and_delete_branch(
        &self,
        repo: &RepoRef,
        number: u64,
        branch: &str,
    ) -> Result<(), GitHubError> {
        let path = repo.path();
        let reply = self
            .call(
                Operation::UpdatePull,
                Method::PATCH,
                format!("/repos/{path}/pulls/{number}"),
                Some(json!({ "state": "closed" })),
            )
            .await?;
        if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
            // Merged meanwhile: the branch belongs to history now, leave it.
            return Ok(());
        }
        if reply.status != StatusCode::NOT_FOUND {
            reply.ok(Operation::UpdatePull)?;
        }
        let del = self
            .call(
                Operation::DeleteRef,
                Method::DELETE,
                format!("/repos/{path}/git/refs/{}", enc(&format!("heads/{branch}"))),
                None,
            )
            .await?;
        match del.status.as_u16() {
            204 | 404 | 422 => Ok(()),
            _ => del.ok(Operation::DeleteRef).map(|_| ()),
        }
    }
}

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

impl Ancestry for GitHub {
    async fn contains(
        &self,
        repo: &RepoRef,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitHubError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let key = (repo.path(), ancestor.to_owned(), descendant.to_owned());
        if let Some(hit) = self.ancestry.lock().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(hit);
        }
        let v = self
            .call(
                Operation::Compare,
                Method::GET,
                format!("/repos/{}/compare/{ancestor}...{descendant}", repo.path()),
                None,
            )
            .await?
            .ok(Operation::Compare)?;
        let answer = matches!(str_at(&v, &["status"]), Some("ahead" | "identical"));
        if let Ok(mut m) = self.ancestry.lock() {
            m.insert(key, answer);
        }
        Ok(answer)
    }

    async fn commit_time(&self, repo: &RepoRef, sha: &str) -> Result<Option<String>, GitHubError> {
        let reply = self
            .call(
                Operation::GetCommit,
                Method::GET,
                format!("/repos/{}/git/commits/{sha}", repo.path()),
                None,
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v = reply.ok(Operation::GetCommit)?;
        Ok(str_at(&v, &["committer", "date"]).map(str::to_owned))
    }
}
