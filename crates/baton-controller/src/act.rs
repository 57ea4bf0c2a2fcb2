//! Act: perform the effects the machine planned. Each effect carries its arguments;
//! this module only talks to the provider and records, write-ahead, what it is about
//! to do (so a restart looks before repeating it). Every external write checks the
//! fence first: a replica that lost the Lease writes nothing more.

use baton_api::promotion::DeploymentRecord;
use baton_api::promotion::{Promotion, PromotionStatus, PullRequestStatus};
use baton_github::{
    BranchHead, CommitStatus, DeploymentRequest, DeploymentUpdate, GitHubError, PromotionChange,
    Provider, PullRequest, ReleaseNote, RepoRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::context::Context;
use crate::error::Error;
use crate::events::{self, Happened};
use crate::machine::effects::Effect;
use crate::record::{self, Attempt, Writer};

/// Everything an effect is performed with.
pub struct Scene<'a, G> {
    pub ctx: &'a Context,
    pub gh: &'a G,
    /// The credentials version in use (recorded with a refusal).
    pub credentials: &'a str,
    pub promotion: &'a Promotion,
    pub now: &'a Time,
}

/// Performs `effects` in order, their notifications recorded ahead in one write.
pub async fn perform_all<G: Provider>(
    s: &Scene<'_, G>,
    w: &mut Writer,
    effects: &[Effect],
    status: &mut PromotionStatus,
) -> Result<(), Error> {
    let attempts = record::begin(w, status, effects, s.now, &s.ctx.arming).await?;
    for (effect, attempt) in effects.iter().zip(attempts) {
        perform(s, w, effect, attempt, status).await?;
    }
    Ok(())
}

/// Performs one effect. `attempt`: where its notification stood when recorded ahead
/// ([`record::begin`]); for an effect that is not a notification, `None`.
async fn perform<G: Provider>(
    s: &Scene<'_, G>,
    w: &mut Writer,
    effect: &Effect,
    attempt: Option<Attempt>,
    status: &mut PromotionStatus,
) -> Result<(), Error> {
    // The same records `begin` wrote ahead are the ones marked delivered or refused.
    if let Some((kind, keys)) = effect.records() {
        // Every notification is recorded ahead; should one not be, look on GitHub
        // before posting rather than risk a duplicate.
        let attempt = attempt.unwrap_or(Attempt::Again);
        if attempt == Attempt::Done {
            return Ok(());
        }
        w.fence().check()?;
        let failed = notify(s, effect, attempt).await?;
        let refused = failed.as_deref().map(|why| (why, s.credentials));
        record::finish(status, kind, &keys, s.now, refused);
        return Ok(());
    }
    match effect {
        Effect::OpenPullRequest {
            change,
            base,
            unchanged,
        } => open_pull_request(s, w, change, base, unchanged, status).await,
        Effect::CompletePullRequest { change, pr } => {
            w.fence().check()?;
            let pr = s.gh.complete_promotion(change, (**pr).clone()).await?;
            s.ctx.prs.invalidate(&change.repo.path(), pr.number);
            tracing::info!(promotion = %name(s.promotion), pr = %pr.url, "adopted pull request completed");
            auto_merge_event(s, &pr).await;
            Ok(())
        }
        Effect::ClosePullRequest {
            repo,
            number,
            branch,
        } => {
            w.fence().check()?;
            s.gh.close_and_delete_branch(repo, *number, branch).await?;
            tracing::info!(promotion = %name(s.promotion), number, "pull request closed");
            events::publish(
                s.ctx,
                s.promotion,
                Happened::PullRequestClosed {
                    number: *number,
                    branch,
                },
            );
            Ok(())
        }
        Effect::DeleteBranch { repo, branch } => {
            w.fence().check()?;
            s.gh.delete_branch(repo, branch).await?;
            tracing::info!(promotion = %name(s.promotion), branch, "promotion branch deleted");
            Ok(())
        }
        // Notifications: performed above.
        Effect::PostStatus { .. }
        | Effect::CreateRelease { .. }
        | Effect::CommentPullRequest { .. } => Ok(()),
        Effect::Deployment {
            service,
            request,
            update,
            retire,
        } => deployment(s, w, service, request, update, *retire, status).await,
        Effect::SetAutoMerge { node_id, enabled } => {
            w.fence().check()?;
            let problem = s.gh.set_auto_merge(node_id, *enabled).await?;
            s.ctx.prs.invalidate_node(node_id);
            let url = status
                .pull_request
                .as_ref()
                .map(|pr| pr.url.clone())
                .unwrap_or_default();
            match problem {
                None => {
                    tracing::info!(promotion = %name(s.promotion), pr = %url, enabled, "auto-merge switched for the Environment's window");
                    if let Some(pr) = status.pull_request.as_mut() {
                        pr.auto_merge_held = !enabled;
                    }
                }
                Some(problem) => {
                    events::publish(
                        s.ctx,
                        s.promotion,
                        Happened::AutoMergeUnavailable {
                            url: &url,
                            problem: &problem,
                        },
                    );
                    // Not retried in a loop: the PR is still reviewed and merged by hand.
                    if let Some(pr) = status.pull_request.as_mut() {
                        pr.auto_merge_held = false;
                    }
                }
            }
            Ok(())
        }
    }
}

async fn open_pull_request<G: Provider>(
    s: &Scene<'_, G>,
    w: &mut Writer,
    change: &PromotionChange,
    base: &BranchHead,
    unchanged: &[String],
    status: &mut PromotionStatus,
) -> Result<(), Error> {
    // Record the branch first: after a crash, the next reconcile finds the PR by it.
    let generation = s.promotion.metadata.generation;
    if status.pull_request.as_ref().map(|pr| pr.branch.as_str())
        != Some(change.head_branch.as_str())
    {
        status.pull_request = Some(PullRequestStatus {
            branch: change.head_branch.clone(),
            generation,
            ..PullRequestStatus::default()
        });
        status.base_commit = Some(base.sha.clone());
        status.unchanged_services = unchanged.to_vec();
        w.write(status).await?;
    }
    w.fence().check()?;
    let pr = s.gh.open_promotion(change, base).await?;
    s.ctx.prs.seed(
        &change.repo,
        &pr,
        kube::runtime::reflector::ObjectRef::from_obj(s.promotion),
    );
    tracing::info!(promotion = %name(s.promotion), pr = %pr.url, "pull request opened");
    auto_merge_event(s, &pr).await;
    status.pull_request = Some(PullRequestStatus {
        number: pr.number,
        url: pr.url,
        branch: change.head_branch.clone(),
        head_commit: pr.head_sha,
        generation,
        ..PullRequestStatus::default()
    });
    Ok(())
}

/// A Warning when GitHub refused auto-merge (the PR itself is fine).
async fn auto_merge_event<G>(s: &Scene<'_, G>, pr: &PullRequest) {
    if let Some(problem) = &pr.auto_merge_problem {
        events::publish(
            s.ctx,
            s.promotion,
            Happened::AutoMergeUnavailable {
                url: &pr.url,
                problem,
            },
        );
    }
}

/// Posts a notification (commit status, release, PR comment) whose records were
/// written ahead; returns why GitHub refused it for good, if it did.
async fn notify<G: Provider>(
    s: &Scene<'_, G>,
    effect: &Effect,
    attempt: Attempt,
) -> Result<Option<String>, Error> {
    match effect {
        Effect::PostStatus {
            repo,
            sha,
            status: commit_status,
            ..
        } => post_status(s, attempt, repo, sha, commit_status).await,
        Effect::CreateRelease { repo, note } => create_release(s, repo, note).await,
        Effect::CommentPullRequest {
            repo,
            number,
            marker,
            body,
            edit,
            ..
        } => {
            match (attempt, edit) {
                // Recorded ahead just now: no earlier attempt, so no comment to find.
                (Attempt::First, _) => s.gh.add_comment(repo, *number, body).await?,
                (_, true) => s.gh.upsert_comment(repo, *number, marker, body).await?,
                (_, false) => s.gh.comment_once(repo, *number, marker, body).await?,
            }
            tracing::info!(promotion = %name(s.promotion), number, "pull request comment posted");
            Ok(None)
        }
        _ => Ok(None),
    }
}

async fn post_status<G: Provider>(
    s: &Scene<'_, G>,
    attempt: Attempt,
    repo: &RepoRef,
    sha: &str,
    commit_status: &CommitStatus,
) -> Result<Option<String>, Error> {
    let result =
        s.gh.ensure_status(repo, sha, commit_status, attempt == Attempt::Again)
            .await;
    let call = format!("commit status {:?}", commit_status.context);
    let failed = settle(s, result.map(|_| ()), &call, repo, sha).await?;
    if failed.is_none() {
        tracing::info!(promotion = %name(s.promotion), repository = %repo, commit = %sha, state = commit_status.state.as_str(), description = %commit_status.description, "commit status posted");
    }
    Ok(failed)
}

async fn create_release<G: Provider>(
    s: &Scene<'_, G>,
    repo: &RepoRef,
    note: &ReleaseNote,
) -> Result<Option<String>, Error> {
    let result = s.gh.ensure_release(repo, note).await;
    let call = format!("release {}", note.tag);
    let failed = settle(s, result.map(|_| ()), &call, repo, &note.target_commitish).await?;
    if failed.is_none() {
        tracing::info!(promotion = %name(s.promotion), repository = %repo, tag = %note.tag, "release created");
    }
    Ok(failed)
}

/// Moves one service's GitHub Deployment: created once (recorded ahead with id 0, so a
/// restart looks it up before creating another), then the status posted and recorded.
#[allow(clippy::too_many_arguments)]
async fn deployment<G: Provider>(
    s: &Scene<'_, G>,
    w: &mut Writer,
    service: &str,
    request: &DeploymentRequest,
    update: &DeploymentUpdate,
    retire: bool,
    status: &mut PromotionStatus,
) -> Result<(), Error> {
    let known = status
        .deployments
        .iter()
        .find(|d| d.service == service)
        .map(|d| d.id);
    let result = async {
        let id = match known {
            Some(id) if id > 0 => id,
            _ => {
                if known.is_none() {
                    status.deployments.push(DeploymentRecord {
                        service: service.to_owned(),
                        repository: request.repo.path(),
                        id: 0,
                        state: String::new(),
                    });
                    w.write(status).await?;
                }
                w.fence().check()?;
                let id = s.gh.ensure_deployment(request, known.is_some()).await?;
                if let Some(d) = status.deployments.iter_mut().find(|d| d.service == service) {
                    d.id = id;
                }
                id
            }
        };
        w.fence().check()?;
        s.gh.deployment_status(&request.repo, id, update).await?;
        if let Some(d) = status.deployments.iter_mut().find(|d| d.service == service) {
            d.state = update.state.as_str().to_owned();
        }
        tracing::info!(promotion = %name(s.promotion), repository = %request.repo, service, deployment = id, state = update.state.as_str(), "deployment status posted");
        if retire
            && let Some(old) =
                s.gh.retire_previous(&request.repo, &request.environment, &request.task, id)
                    .await?
        {
            tracing::info!(promotion = %name(s.promotion), repository = %request.repo, service, deployment = old, "previous deployment marked inactive");
        }
        Ok::<(), Error>(())
    }
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(Error::GitHub(e)) if e.is_permanent() => {
            // Refused for good (no access to the repository, unknown commit): said once,
            // and the deployment is left as it is rather than retried forever.
            let call = format!("deployment of {service}");
            settle(s, Err(e), &call, &request.repo, &request.sha).await?;
            if let Some(d) = status.deployments.iter_mut().find(|d| d.service == service) {
                d.state = update.state.as_str().to_owned();
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A notification's outcome: delivered (`None`), refused for good (`Some(why)`, with a
/// Warning Event naming the call, the repository and the fix), or an error to retry.
async fn settle<G>(
    s: &Scene<'_, G>,
    result: Result<(), GitHubError>,
    call: &str,
    repo: &RepoRef,
    sha: &str,
) -> Result<Option<String>, Error> {
    match result {
        Ok(()) => Ok(None),
        Err(e) if e.is_permanent() => {
            let message = format!(
                "GitHub refused the {call} on {repo}@{}: {e}. {}; Baton will not retry until the Promotion or the GitHub Secret changes",
                sha.get(..7).unwrap_or(sha),
                fix(&e, repo, sha)
            );
            tracing::warn!(promotion = %name(s.promotion), repository = %repo, error = %e, "notification refused for good");
            events::publish(
                s.ctx,
                s.promotion,
                Happened::NotificationFailed { message: &message },
            );
            Ok(Some(message))
        }
        Err(e) => Err(e.into()),
    }
}

/// What the user can do about a permanent refusal.
fn fix(e: &GitHubError, repo: &RepoRef, sha: &str) -> String {
    match e.status() {
        Some(404) => format!(
            "the credentials cannot see {repo} (install the GitHub App on it, or grant the token access) or it has no commit {sha}"
        ),
        Some(403) | Some(401) => format!(
            "the credentials lack permission on {repo} (commit statuses: write; contents: write for releases)"
        ),
        Some(422) => {
            format!("GitHub does not know commit {sha} in {repo}: check spec.source.commit")
        }
        _ => "check the Promotion's source repository and commit".to_owned(),
    }
}

fn name(p: &Promotion) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}
