//! Act: carry out a decision's side effects. Each one is recorded in status before it
//! starts (so a restart looks before repeating it) and after it succeeds.

use baton_api::Environment;
use baton_api::promotion::{
    NotificationKind, NotificationRecord, Promotion, PromotionStatus, PullRequestStatus,
};
use baton_api::template::expand;
use baton_github::pr_body::{self, PrText};
use baton_github::{
    CommitStatus, CommitStatuses, PromotionChange, PullRequests, ReleaseNote, Releases, RepoRef,
    StatusState, naming,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::context::Context;
use crate::decide::Action;
use crate::error::Error;
use crate::observe::Observation;
use crate::plan;

/// Field manager for status writes.
pub const MANAGER: &str = "baton";

/// Writes `status` (server-side apply on the status subresource).
pub async fn persist(ctx: &Context, p: &Promotion, status: &PromotionStatus) -> Result<(), Error> {
    let api: Api<Promotion> =
        Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
    let body = json!({ "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "status": status });
    api.patch_status(
        &p.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Everything an action needs.
pub struct Scene<'a> {
    pub ctx: &'a Context,
    pub promotion: &'a Promotion,
    pub env: &'a Environment,
    pub obs: &'a Observation,
    pub now: &'a Time,
    /// Why a failure status is posted.
    pub reason: &'a str,
}

pub async fn act(
    scene: &Scene<'_>,
    action: &Action,
    status: &mut PromotionStatus,
) -> Result<(), Error> {
    match action {
        Action::OpenPullRequest => open_pull_request(scene, status).await,
        Action::ClosePullRequest => close_pull_request(scene, status).await,
        Action::PostStatus { service, success } => {
            post_status(scene, status, service, *success).await
        }
        Action::CreateRelease => create_release(scene, status).await,
    }
}

fn gh<'a>(scene: &'a Scene<'_>) -> Result<&'a baton_github::GitHub, Error> {
    scene
        .obs
        .github
        .as_deref()
        .ok_or_else(|| Error::Internal("no GitHub connection for an action".into()))
}

async fn open_pull_request(scene: &Scene<'_>, status: &mut PromotionStatus) -> Result<(), Error> {
    let p = scene.promotion;
    let prepared = scene
        .obs
        .prepared
        .as_ref()
        .ok_or_else(|| Error::Internal("open pull request without a prepared change".into()))?;
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let branch = naming::promotion_branch(&ns, &name);
    let generation = p.metadata.generation;
    // Record the branch first: after a crash, the next reconcile finds the PR by it.
    if status.pull_request.as_ref().map(|pr| pr.branch.as_str()) != Some(branch.as_str()) {
        status.pull_request = Some(PullRequestStatus {
            number: 0,
            branch: branch.clone(),
            generation,
            ..PullRequestStatus::default()
        });
        persist(scene.ctx, p, status).await?;
    }
    let env = &scene.env.spec;
    let apps: Vec<String> = plan::applications(&p.spec.services, &p.spec.environment, env)
        .into_iter()
        .map(|a| a.name)
        .collect();
    let web = web_url(&env.github.api_url);
    let text = PrText {
        environment: &p.spec.environment,
        namespace: &ns,
        promotion: &name,
        source_repository: &p.spec.source.repository,
        source_commit: &p.spec.source.commit,
        run_url: p.spec.source.run_url.as_deref(),
        web_url: &web,
        services: &prepared.services,
        checklist: &env.pull_request.checklist,
        applications: &apps,
    };
    let change = PromotionChange {
        repo: RepoRef::parse(&env.gitops.repository)?,
        base_branch: env.gitops.branch.clone(),
        head_branch: branch.clone(),
        commit_message: pr_body::commit_message(&text),
        files: prepared.files.clone(),
        title: pr_body::title(&text),
        body: pr_body::body(&text),
        labels: env.pull_request.labels.clone(),
        reviewers: env.pull_request.reviewers.clone(),
        team_reviewers: env.pull_request.team_reviewers.clone(),
        auto_merge: env.pull_request.auto_merge,
    };
    let pr = gh(scene)?.open_promotion(&change, &prepared.base).await?;
    if let Some(problem) = &pr.auto_merge_problem {
        let event = kube::runtime::events::Event {
            type_: kube::runtime::events::EventType::Warning,
            reason: "AutoMergeUnavailable".into(),
            note: Some(naming::truncate(
                &format!(
                    "auto-merge could not be enabled on {}: {problem}; the pull request needs a manual merge",
                    pr.url
                ),
                1000,
            )),
            action: "OpenPullRequest".into(),
            secondary: None,
        };
        if let Err(e) = scene
            .ctx
            .recorder
            .publish(&event, &kube::Resource::object_ref(p, &()))
            .await
        {
            tracing::warn!(error = %e, "cannot publish event");
        }
    }
    status.pull_request = Some(PullRequestStatus {
        number: pr.number,
        url: pr.url,
        branch,
        head_commit: pr.head_sha,
        generation,
        ..PullRequestStatus::default()
    });
    Ok(())
}

/// `https://github.com` for `https://api.github.com`, `https://ghe.example.com` for
/// `https://ghe.example.com/api/v3`.
fn web_url(api: &str) -> String {
    let api = api.trim_end_matches('/');
    if let Some(rest) = api.strip_suffix("/api/v3") {
        return rest.to_owned();
    }
    api.replace("://api.github.com", "://github.com")
}

async fn close_pull_request(scene: &Scene<'_>, status: &PromotionStatus) -> Result<(), Error> {
    let Some(pr) = status.pull_request.as_ref().filter(|pr| pr.number > 0) else {
        return Ok(());
    };
    let repo = RepoRef::parse(&scene.env.spec.gitops.repository)?;
    gh(scene)?
        .close_and_delete_branch(&repo, pr.number, &pr.branch)
        .await?;
    Ok(())
}

fn record<'s>(
    status: &'s mut PromotionStatus,
    kind: NotificationKind,
    service: Option<&str>,
) -> Option<&'s mut NotificationRecord> {
    status
        .notifications
        .iter_mut()
        .find(|n| n.kind == kind && n.service.as_deref() == service)
}

/// Records an attempt; returns whether an earlier attempt may have reached GitHub.
async fn begin(
    scene: &Scene<'_>,
    status: &mut PromotionStatus,
    kind: NotificationKind,
    service: Option<&str>,
) -> Result<Option<bool>, Error> {
    match record(status, kind, service) {
        Some(r) if r.delivered_at.is_some() => Ok(None),
        Some(_) => Ok(Some(true)),
        None => {
            status.notifications.push(NotificationRecord {
                kind,
                service: service.map(str::to_owned),
                attempted_at: scene.now.clone(),
                delivered_at: None,
            });
            persist(scene.ctx, scene.promotion, status).await?;
            Ok(Some(false))
        }
    }
}

async fn post_status(
    scene: &Scene<'_>,
    status: &mut PromotionStatus,
    service: &str,
    success: bool,
) -> Result<(), Error> {
    let kind = if success {
        NotificationKind::SuccessStatus
    } else {
        NotificationKind::FailureStatus
    };
    let Some(tried_before) = begin(scene, status, kind, Some(service)).await? else {
        return Ok(());
    };
    let p = scene.promotion;
    let policy = &scene.env.spec.notifications.commit_status;
    let value = p
        .spec
        .services
        .iter()
        .find(|s| s.name == service)
        .map(|s| s.value().to_owned())
        .unwrap_or_default();
    let commit_status = CommitStatus {
        state: if success {
            StatusState::Success
        } else {
            StatusState::Failure
        },
        context: expand(&policy.context, service, &p.spec.environment),
        description: plan::status_description(
            service,
            &value,
            &p.spec.environment,
            success,
            scene.reason,
        ),
        target_url: policy
            .target_url
            .as_deref()
            .map(|u| expand(u, service, &p.spec.environment)),
    };
    let repo = RepoRef::parse(&p.spec.source.repository)?;
    gh(scene)?
        .ensure_status(&repo, &p.spec.source.commit, &commit_status, tried_before)
        .await?;
    if let Some(r) = record(status, kind, Some(service)) {
        r.delivered_at = Some(scene.now.clone());
    }
    Ok(())
}

async fn create_release(scene: &Scene<'_>, status: &mut PromotionStatus) -> Result<(), Error> {
    if begin(scene, status, NotificationKind::Release, None)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let p = scene.promotion;
    let lines: Vec<String> = p
        .spec
        .services
        .iter()
        .map(|s| format!("- {}: `{}`", s.name, s.value()))
        .collect();
    let pr = status
        .pull_request
        .as_ref()
        .map(|pr| pr.url.clone())
        .filter(|u| !u.is_empty());
    let body = format!(
        "Deployed to **{}** by Baton (Promotion `{}/{}`).\n\n{}\n{}",
        p.spec.environment,
        p.namespace().unwrap_or_default(),
        p.name_any(),
        lines.join("\n"),
        pr.map(|u| format!("\nPull request: {u}\n"))
            .unwrap_or_default()
    );
    let note = ReleaseNote {
        tag: format!("deploy/{}/{}", p.spec.environment, p.name_any()),
        target_commitish: p.spec.source.commit.clone(),
        name: format!(
            "{} deployed to {}",
            plan::summary(&p.spec),
            p.spec.environment
        ),
        body,
    };
    let repo = RepoRef::parse(&p.spec.source.repository)?;
    gh(scene)?.ensure_release(&repo, &note).await?;
    if let Some(r) = record(status, NotificationKind::Release, None) {
        r.delivered_at = Some(scene.now.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn web_urls_for_github_and_enterprise() {
        assert_eq!(
            super::web_url("https://api.github.com"),
            "https://github.com"
        );
        assert_eq!(
            super::web_url("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com"
        );
        assert_eq!(super::web_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }
}
