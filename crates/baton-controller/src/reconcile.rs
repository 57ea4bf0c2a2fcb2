//! One reconcile: observe -> decide (pure) -> act -> one status write, with a
//! finalizer that closes an unmerged PR when its Promotion is deleted.

use std::sync::Arc;
use std::time::Duration;

use baton_api::conditions as c;
use baton_api::promotion::{Promotion, PullRequestStatus};
use baton_api::{Phase, PromotionStatus};
use baton_github::{PrState, PullRequests, RepoRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource, ResourceExt};

use crate::act::{self, Scene};
use crate::context::{ConnectError, Context};
use crate::decide::{self, Decision, Inputs};
use crate::error::Error;
use crate::observe;
use crate::plan;
use crate::status::{self, Learned};

/// Keeps a Promotion until its unmerged PR is closed.
pub const FINALIZER: &str = "baton.dev/pull-request-cleanup";

pub async fn reconcile(p: Arc<Promotion>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(p, &ctx).await;
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::category),
    );
    result
}

async fn reconcile_inner(p: Arc<Promotion>, ctx: &Context) -> Result<Requeue, Error> {
    let api: Api<Promotion> =
        Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, p, |event| async {
        match event {
            FinalizerEvent::Apply(p) => apply(&p, ctx).await,
            FinalizerEvent::Cleanup(p) => cleanup(&p, ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// Retry failed reconciles with backoff, not a fixed interval.
pub fn error_policy(p: Arc<Promotion>, err: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(promotion = %p.name_any(), namespace = %p.namespace().unwrap_or_default(), category = err.category(), error = %err, "reconcile failed");
    let wait = match err {
        Error::GitHub(baton_github::GitHubError::RateLimited(d)) => *d,
        Error::Blocked(_) => Duration::from_secs(30),
        _ => Duration::from_secs(5),
    };
    Requeue::requeue(wait)
}

async fn apply(p: &Promotion, ctx: &Context) -> Result<Requeue, Error> {
    let now = Timestamp::now();
    let stamp = Time(now);
    let obs = observe::observe(p, ctx, now).await?;
    let before = p.status.clone().unwrap_or_default();
    let generation = p.metadata.generation.unwrap_or_default();
    let views: Vec<decide::AppView> = obs.apps.iter().map(|(v, _)| v.clone()).collect();
    let degraded_since: Vec<(String, Timestamp)> = obs
        .apps
        .iter()
        .filter_map(|(_, o)| o.degraded_since.clone().map(|t| (o.service.clone(), t.0)))
        .collect();
    let inputs = Inputs {
        generation,
        services: p.spec.services.iter().map(|s| s.name.clone()).collect(),
        status: &before,
        now,
        policy: obs.policy.clone(),
        blocker: obs.blocker.clone(),
        pull_request: obs.pull_request.clone(),
        applications: views,
        degraded_since,
        pr_generation: before.pull_request.as_ref().and_then(|pr| pr.generation),
        already_applied: obs.already_applied.clone(),
        review: obs.review,
    };
    let d = decide::decide(&inputs);

    let mut status = before.clone();
    if let Some(found) = &obs.found_pr {
        status.pull_request = Some(PullRequestStatus {
            number: found.number,
            url: found.url.clone(),
            branch: found.head_branch.clone(),
            head_commit: found.head_sha.clone(),
            generation: before.pull_request.as_ref().and_then(|pr| pr.generation),
            ..PullRequestStatus::default()
        });
    }
    if let Some(env) = obs.env.as_ref() {
        let scene = Scene {
            ctx,
            promotion: p,
            env,
            obs: &obs,
            now: &stamp,
            reason: &d.message,
        };
        for action in &d.actions {
            if let Err(e) = act::act(&scene, action, &mut status).await {
                // Keep what did happen (PR number, delivered notifications) before retrying.
                if status != before {
                    act::persist(ctx, p, &status).await?;
                }
                return Err(e);
            }
        }
    }
    if let (Some(review), Some(pr)) = (obs.review, status.pull_request.as_mut()) {
        pr.review_decision = Some(review.as_str().to_owned());
    }
    let merge_commit = match &obs.pull_request {
        Some(PrState::Merged { merge_commit }) => Some(merge_commit.clone()),
        _ => obs.already_applied.clone(),
    };
    let learned = Learned {
        summary: plan::summary(&p.spec),
        applications: obs.apps.iter().map(|(_, o)| o.clone()).collect(),
        merge_commit,
    };
    status::finish(&mut status, &d, generation, &stamp, learned);
    if status != before {
        act::persist(ctx, p, &status).await?;
    }
    if before.phase != status.phase {
        record_metrics(ctx, p, &obs, &status, now).await;
    }
    publish_events(ctx, p, &before, &status, &d).await;
    Ok(match d.requeue_after {
        Some(after) => Requeue::requeue(after.min(ctx.config.max_requeue)),
        None => Requeue::await_change(),
    })
}

async fn record_metrics(
    ctx: &Context,
    p: &Promotion,
    obs: &observe::Observation,
    status: &PromotionStatus,
    now: Timestamp,
) {
    let Some(phase) = status.phase else { return };
    // Lead time starts at the source commit; one request, only when a promotion lands.
    let mut commit_time = None;
    let repo = RepoRef::parse(&p.spec.source.repository).ok();
    if let (Phase::Synced, Some(gh), Some(repo)) = (phase, obs.github.as_ref(), repo) {
        use baton_github::Ancestry;
        commit_time = match gh.commit_time(&repo, &p.spec.source.commit).await {
            Ok(t) => t.and_then(|t| t.parse::<Timestamp>().ok()),
            Err(e) => {
                tracing::debug!(error = %e, "no source commit time for the lead-time metric");
                None
            }
        };
    }
    let services: Vec<String> = p.spec.services.iter().map(|s| s.name.clone()).collect();
    ctx.metrics.phase_changed(
        &p.spec.environment,
        &services,
        phase,
        &status.phase_times,
        now,
        commit_time,
    );
}

/// An Event for every phase change, and a Warning when the reason a promotion is
/// held changes (so `kubectl describe` tells what to fix without repeating itself).
async fn publish_events(
    ctx: &Context,
    p: &Promotion,
    before: &PromotionStatus,
    after: &PromotionStatus,
    d: &Decision,
) {
    let reference = p.object_ref(&());
    let old_reason = before
        .conditions
        .iter()
        .find(|c| c.r#type == c::TYPE_READY)
        .map(|c| (c.reason.clone(), c.message.clone()));
    let mut events = Vec::new();
    if before.phase != after.phase {
        let warn = matches!(d.phase, Phase::Failed | Phase::Rejected);
        events.push(Event {
            type_: if warn {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: d.phase.as_str().to_owned(),
            note: Some(baton_github::naming::truncate(&d.message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        });
    }
    if old_reason != Some((d.reason.to_owned(), d.message.clone())) && is_problem(d.reason) {
        events.push(Event {
            type_: EventType::Warning,
            reason: d.reason.to_owned(),
            note: Some(baton_github::naming::truncate(&d.message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        });
    }
    for e in events {
        if let Err(err) = ctx.recorder.publish(&e, &reference).await {
            tracing::warn!(error = %err, "cannot publish event");
        }
    }
}

fn is_problem(reason: &str) -> bool {
    [
        c::REASON_ENVIRONMENT_NOT_FOUND,
        c::REASON_SECRET_NOT_FOUND,
        c::REASON_INVALID_SPEC,
        c::REASON_MANIFEST_ERROR,
        c::REASON_UPSTREAM_NOT_READY,
        c::REASON_QUEUED,
        c::REASON_APPLICATION_MISSING,
    ]
    .contains(&reason)
}

/// Deleting a Promotion before its PR merged closes the PR and deletes its branch;
/// after the merge, GitHub is left alone.
async fn cleanup(p: &Promotion, ctx: &Context) -> Result<Requeue, Error> {
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    let pr = status.pull_request.clone().unwrap_or_default();
    let actions = decide::on_delete(phase, !pr.branch.is_empty());
    if actions.is_empty() {
        return Ok(Requeue::await_change());
    }
    let ns = p.namespace().unwrap_or_default();
    let envs: Api<baton_api::Environment> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(env) = envs.get_opt(&p.spec.environment).await? else {
        tracing::warn!(promotion = %p.name_any(), "Environment gone: cannot close the pull request, leaving it open");
        return Ok(Requeue::await_change());
    };
    let gh = match ctx.github_for(&ns, &env).await {
        Ok(gh) => gh,
        Err(ConnectError::Blocked(b)) => {
            tracing::warn!(promotion = %p.name_any(), reason = b.message(), "cannot reach GitHub to close the pull request, leaving it open");
            return Ok(Requeue::await_change());
        }
        Err(ConnectError::Transient(e)) => return Err(e),
    };
    let repo = RepoRef::parse(&env.spec.gitops.repository)?;
    let number = if pr.number > 0 {
        Some(pr.number)
    } else {
        gh.find_by_head(&repo, &pr.branch)
            .await?
            .filter(|f| f.state == PrState::Open)
            .map(|f| f.number)
    };
    if let Some(number) = number {
        gh.close_and_delete_branch(&repo, number, &pr.branch)
            .await?;
        let event = Event {
            type_: EventType::Normal,
            reason: "PullRequestClosed".into(),
            note: Some(format!(
                "closed pull request #{number} and deleted branch {}",
                pr.branch
            )),
            action: "Delete".into(),
            secondary: None,
        };
        let _ = ctx.recorder.publish(&event, &p.object_ref(&())).await;
    }
    Ok(Requeue::await_change())
}
