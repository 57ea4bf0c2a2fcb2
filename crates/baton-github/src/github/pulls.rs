//! Promotion pull requests: create, adopt, observe (conditionally), review decision, close.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{decode_err, enc, str_at};
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;
use crate::provider::*;

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
        reviewers: names(v, "requested_reviewers", "login"),
        team_reviewers: names(v, "requested_teams", "slug"),
        auto_merge_enabled: v.get("auto_merge").is_some_and(|a| !a.is_null()),
        promotion_uid: str_at(v, &["body"])
            .and_then(crate::pr_body::marker_uid)
            .map(str::to_owned),
        node_id: str_at(v, &["node_id"]).map(str::to_owned),
        auto_merge_problem: None,
    })
}

fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v.get(list)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|x| str_at(x, &[field]).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
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
        let pr = if reply.status == StatusCode::UNPROCESSABLE_ENTITY
            && crate::client::message_of(&reply.body).contains("already exists")
        {
            self.find_by_head(&change.repo, &change.head_branch, &change.owner_uid)
                .await?
                .ok_or_else(|| GitHubError::Decode {
                    operation: "create_pull",
                    message: "GitHub reports the PR exists but it cannot be found".into(),
                })?
        } else {
            pull_request(&reply.ok(Operation::CreatePull)?)?
        };
        self.complete_promotion(change, pr).await
    }

    async fn complete_promotion(
        &self,
        change: &PromotionChange,
        pr: PullRequest,
    ) -> Result<PullRequest, GitHubError> {
        let repo = change.repo.path();
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
        let wants_reviewers = !change.reviewers.is_empty() || !change.team_reviewers.is_empty();
        let none_requested = pr.reviewers.is_empty() && pr.team_reviewers.is_empty();
        if wants_reviewers && none_requested {
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
        let wants_auto_merge = change.auto_merge && !pr.auto_merge_enabled;
        let auto_merge_problem = match (wants_auto_merge, pr.node_id.as_deref()) {
            (true, Some(id)) => self.enable_auto_merge(id).await?,
            (true, None) => Some("GitHub did not return the pull request's node id".into()),
            _ => None,
        };
        Ok(PullRequest {
            labels,
            auto_merge_enabled: pr.auto_merge_enabled
                || (wants_auto_merge && auto_merge_problem.is_none()),
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
        Ok(reviews::decide(
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| Some((str_at(r, &["user", "login"])?, str_at(r, &["state"])?))),
        ))
    }

    async fn pull_states(
        &self,
        repo: &RepoRef,
        numbers: &[u64],
    ) -> Result<std::collections::BTreeMap<u64, PrSnapshot>, GitHubError> {
        let mut all = std::collections::BTreeMap::new();
        for chunk in numbers.chunks(PULLS_PER_QUERY) {
            all.extend(self.query_pull_states(repo, chunk).await?);
        }
        Ok(all)
    }

    async fn find_by_head(
        &self,
        repo: &RepoRef,
        branch: &str,
        owner_uid: &str,
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
        prs.retain(|p| p.promotion_uid.as_deref() == Some(owner_uid));
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

    async fn add_comment(
        &self,
        repo: &RepoRef,
        number: u64,
        body: &str,
    ) -> Result<(), GitHubError> {
        self.call(
            Operation::CreateComment,
            Method::POST,
            format!("/repos/{}/issues/{number}/comments", repo.path()),
            Some(json!({ "body": body })),
        )
        .await?
        .ok(Operation::CreateComment)?;
        Ok(())
    }

    async fn upsert_comment(
        &self,
        repo: &RepoRef,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<(), GitHubError> {
        let Some(found) = self.find_comment(repo, number, marker).await? else {
            return self.add_comment(repo, number, body).await;
        };
        if found.get("body").and_then(Value::as_str) == Some(body) {
            return Ok(());
        }
        let id = found
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| super::decode_err(Operation::ListComments, "id"))?;
        self.call(
            Operation::UpdateComment,
            Method::PATCH,
            format!("/repos/{}/issues/comments/{id}", repo.path()),
            Some(json!({ "body": body })),
        )
        .await?
        .ok(Operation::UpdateComment)?;
        Ok(())
    }

    async fn set_auto_merge(
        &self,
        node_id: &str,
        enabled: bool,
    ) -> Result<Option<String>, GitHubError> {
        if enabled {
            self.enable_auto_merge(node_id).await
        } else {
            self.disable_auto_merge(node_id).await
        }
    }

    async fn comment_once(
        &self,
        repo: &RepoRef,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<(), GitHubError> {
        if self.find_comment(repo, number, marker).await?.is_some() {
            return Ok(());
        }
        self.add_comment(repo, number, body).await
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
        self.delete_branch(repo, branch).await
    }

    async fn delete_branch(&self, repo: &RepoRef, branch: &str) -> Result<(), GitHubError> {
        let del = self
            .call(
                Operation::DeleteRef,
                Method::DELETE,
                format!(
                    "/repos/{}/git/refs/{}",
                    repo.path(),
                    enc(&format!("heads/{branch}"))
                ),
                None,
            )
            .await?;
        match del.status.as_u16() {
            204 | 404 | 422 => Ok(()),
            _ => del.ok(Operation::DeleteRef).map(|_| ()),
        }
    }
}

impl GitHub {
    /// The PR's comment whose body carries `marker` (Baton's own), if any.
    async fn find_comment(
        &self,
        repo: &RepoRef,
        number: u64,
        marker: &str,
    ) -> Result<Option<Value>, GitHubError> {
        let existing = self
            .call(
                Operation::ListComments,
                Method::GET,
                format!(
                    "/repos/{}/issues/{number}/comments?per_page=100",
                    repo.path()
                ),
                None,
            )
            .await?
            .ok(Operation::ListComments)?;
        Ok(existing.as_array().and_then(|a| {
            a.iter()
                .find(|c| {
                    c.get("body")
                        .and_then(Value::as_str)
                        .is_some_and(|b| b.contains(marker))
                })
                .cloned()
        }))
    }
}
