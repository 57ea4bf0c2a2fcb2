//! One reconcile, as a named pipeline:
//! `observe` (reads) -> `machine::decide` (pure) -> `machine::effects::build` (pure)
//! -> `act::perform` (writes, each recorded ahead) -> `machine::next_status::finish`
//! (pure) -> `record::Writer::write` (one status write, only when something changed)
//! -> `events`. A finalizer closes an unmerged PR when its Promotion is deleted.

use std::sync::Arc;
use std::time::Duration;

use baton_api::promotion::{Promotion, PullRequestStatus};
use baton_api::{Phase, PromotionStatus};
use baton_github::{Ancestry, PrState, RepoRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::act::{self, Scene};
use crate::context::{ConnectError, Context};
use crate::error::Error;
use crate::events;
use crate::machine::effects::{self, Subject};
use crate::machine::next_status::{self, Learned};
use crate::machine::{self, Inputs, Seen, plan};
use crate::observe::{self, Observation};
use crate::record::{self, Writer};

/// Keeps a Promotion until its unmerged PR is closed.
pub const FINALIZER: &str = "baton.dev/pull-request-cleanup";

/// When to look again at a Promotion whose cached copy is older than its last write.
const STALE_RETRY: Duration = Duration::from_secs(1);

/// Longest wait between retries of a failing reconcile.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub async fn reconcile(p: Arc<Promotion>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    if ctx.written.stale(&p) {
        // The watch event of this operator's own last write is on its way and wakes the
        // Promotion again; the requeue only covers a watch that restarted meanwhile.
        tracing::debug!(promotion = %p.name_any(), resource_version = ?p.metadata.resource_version, "cached copy older than the last status write: waiting for the watch");
        return Ok(Requeue::requeue(STALE_RETRY));
    }
    tracing::debug!(promotion = %p.name_any(), phase = ?p.status.as_ref().and_then(|s| s.phase), "reconcile");
    let started = std::time::Instant::now();
    let key = ObjectRef::from_obj(&*p);
    let result = reconcile_inner(p, &ctx).await;
    ctx.metrics.reconciled(
        started.elapsed(),
        result.as_ref().err().map(Error::category),
    );
    if result.is_ok() {
        ctx.succeeded(&key);
    }
    result
}

async fn reconcile_inner(p: Arc<Promotion>, ctx: &Context) -> Result<Requeue, Error> {
    let api: Api<Promotion> =
        Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, p, |event| async {
        match event {
            FinalizerEvent::Apply(p) => match apply(&p, ctx).await {
                Err(Error::GitHub(baton_github::GitHubError::BudgetExhausted {
                    remaining,
                    limit,
                    reset_in,
                })) => hold_for_budget(&p, ctx, remaining, limit, reset_in).await,
                other => other,
            },
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

/// Retries a failed reconcile with exponential backoff and jitter, capped; a rate
/// limit waits exactly until GitHub's reset.
pub fn error_policy(p: Arc<Promotion>, err: &Error, ctx: Arc<Context>) -> Requeue {
    let attempts = ctx.failed(&ObjectRef::from_obj(&*p));
    let wait = match err {
        Error::GitHub(baton_github::GitHubError::RateLimited(d)) => *d,
        _ => backoff(attempts, rand::random::<f64>()),
    };
    tracing::warn!(promotion = %p.name_any(), namespace = %p.namespace().unwrap_or_default(), category = err.category(), error = %err, attempts, retry_in = ?wait, "reconcile failed");
    Requeue::requeue(wait)
}

/// `2s * 2^(attempts-1)`, capped at [`MAX_BACKOFF`], scaled by a jitter in `[0.5, 1]`.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    let exp = 2u64.saturating_pow(attempts.saturating_sub(1).min(16));
    let base = Duration::from_secs(2).saturating_mul(u32::try_from(exp).unwrap_or(u32::MAX));
    base.min(MAX_BACKOFF)
        .mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

async fn apply(p: &Promotion, ctx: &Context) -> Result<Requeue, Error> {
    let now = Timestamp::now();
    let stamp = Time(now);
    let obs = observe::observe(p, ctx, now).await?;
    let before = p.status.clone().unwrap_or_default();
    let generation = p.metadata.generation.unwrap_or_default();
    let inputs = Inputs {
        generation,
        services: p.spec.services.iter().map(|s| s.name.clone()).collect(),
        rolled_back: p
            .spec
            .rollback
            .iter()
            .flat_map(|r| r.from.iter().map(|s| s.name.clone()))
            .collect(),
        status: &before,
        now,
        policy: obs.policy.clone(),
        seen: obs.seen.clone(),
    };
    let d = machine::decide(&inputs);

    let mut status = before.clone();
    learn_before_acting(p, &obs.seen, &mut status);
    let mut w = Writer::tracked(ctx, p);
    if let Err(e) = perform(p, ctx, &obs, &d, &mut status, &mut w, &stamp).await {
        // Keep what did happen (PR number, delivered notifications) before retrying.
        if status != before {
            w.write(&status).await?;
        }
        return Err(e);
    }
    let learned = Learned {
        summary: plan::summary(&p.spec),
        applications: match &obs.seen {
            Seen::Applications(apps) => apps.iter().map(|a| a.record.clone()).collect(),
            _ => vec![],
        },
        merge_commit: merge_commit(&obs.seen),
        superseded_by: match &obs.seen {
            Seen::Superseded { successor, .. } => Some(successor.by.clone()),
            _ => None,
        },
        window_override: obs.window_override.clone(),
    };
    next_status::finish(&mut status, &d, generation, &stamp, learned);
    // Recorded ahead with this write rather than in one of their own when they are due.
    record::arm(
        &mut status,
        &machine::armed(&inputs, &d),
        &ctx.arming.boot,
        &stamp,
    );
    if d.phase.is_terminal() {
        record::disarm(&mut status, &ctx.arming.boot);
    }
    if status != before {
        w.write(&status).await?;
    }
    if before.phase != status.phase {
        ctx.notifier.phase_changed(p, obs.env.as_ref(), &status);
        record_metrics(ctx, p, &obs, &status, now).await;
    }
    for h in events::of_reconcile(&before, &status, &d) {
        events::publish(ctx, p, h);
    }
    if d.phase.is_terminal() {
        ctx.forget(&ObjectRef::from_obj(p));
    }
    Ok(match d.requeue_after {
        Some(after) if d.exact => Requeue::requeue(after),
        Some(after) => Requeue::requeue(after.min(ctx.config.max_requeue)),
        None => Requeue::await_change(),
    })
}

/// Baton's share of the GitHub budget is spent: the Promotion keeps its phase and says
/// so (`GitHubBudget`, with when it resumes) instead of failing or retrying blindly, and
/// is looked at again when the budget window resets.
async fn hold_for_budget(
    p: &Promotion,
    ctx: &Context,
    remaining: i64,
    limit: i64,
    reset_in: Duration,
) -> Result<Requeue, Error> {
    use baton_api::conditions::{self as c, Condition, ConditionStatus, set_condition};
    ctx.metrics.github_budget_holds.inc();
    let now = Timestamp::now();
    let resumes = now
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(
            i64::try_from(reset_in.as_secs()).unwrap_or(i64::MAX / 2),
        ))
        .unwrap_or(now);
    let api: Api<Promotion> =
        Api::namespaced(ctx.client.clone(), &p.namespace().unwrap_or_default());
    // A write may have happened before the guard tripped: start from what is stored.
    let fresh = api.get(&p.name_any()).await?;
    let before = fresh.status.clone().unwrap_or_default();
    let mut status = before.clone();
    if status.phase.is_none() {
        status.phase = Some(Phase::Pending);
        status.phase_times.enter(Phase::Pending, Time(now));
    }
    set_condition(
        &mut status.conditions,
        Condition {
            r#type: c::TYPE_READY.into(),
            status: ConditionStatus::False,
            reason: c::REASON_GITHUB_BUDGET.into(),
            message: format!(
                "waiting for GitHub's request budget: {remaining} of {limit} requests left this hour, and Baton keeps the rest of its share for other users of these credentials; resumes at {}",
                resumes
                    .round(k8s_openapi::jiff::Unit::Second)
                    .unwrap_or(resumes)
            ),
            observed_generation: fresh.metadata.generation,
            last_transition_time: Time(now),
        },
    );
    if status != before {
        Writer::tracked(ctx, &fresh).write(&status).await?;
    }
    tracing::info!(promotion = %p.name_any(), namespace = %p.namespace().unwrap_or_default(), remaining, limit, resume_in_s = reset_in.as_secs(), "waiting for the GitHub request budget");
    Ok(Requeue::requeue(reset_in + Duration::from_secs(1)))
}

/// Facts observed that the status keeps whatever the actions do.
fn learn_before_acting(p: &Promotion, seen: &Seen, status: &mut PromotionStatus) {
    match seen {
        Seen::Adopted(found) => {
            status.pull_request = Some(PullRequestStatus {
                number: found.number,
                url: found.url.clone(),
                branch: found.head_branch.clone(),
                head_commit: found.head_sha.clone(),
                generation: status.pull_request.as_ref().and_then(|pr| pr.generation),
                ..PullRequestStatus::default()
            });
        }
        Seen::AlreadyApplied { commit } => {
            status.base_commit = Some(commit.clone());
            status.unchanged_services = p.spec.services.iter().map(|s| s.name.clone()).collect();
        }
        Seen::Retry { credentials } => {
            let again = record::retryable(status, credentials);
            record::reopen(status, &again);
        }
        Seen::PullRequest {
            review: Some(review),
            ..
        } => {
            if let Some(pr) = status.pull_request.as_mut() {
                pr.review_decision = Some(review.as_str().to_owned());
            }
        }
        _ => {}
    }
}

fn merge_commit(seen: &Seen) -> Option<String> {
    match seen {
        Seen::PullRequest {
            state: Some(PrState::Merged { merge_commit }),
            ..
        } => Some(merge_commit.clone()),
        Seen::Adopted(pr) => match &pr.state {
            PrState::Merged { merge_commit } => Some(merge_commit.clone()),
            _ => None,
        },
        Seen::AlreadyApplied { commit } => Some(commit.clone()),
        _ => None,
    }
}

/// Builds the decision's effects and performs them in order.
async fn perform(
    p: &Promotion,
    ctx: &Context,
    obs: &Observation,
    d: &machine::Decision,
    status: &mut PromotionStatus,
    w: &mut Writer,
    now: &Time,
) -> Result<(), Error> {
    if d.actions.is_empty() {
        return Ok(());
    }
    let (Some(env), Some(gh)) = (obs.env.as_ref(), obs.github.as_deref()) else {
        // Actions are only decided from what a connected observation saw.
        tracing::warn!(promotion = %p.name_any(), "actions decided without a GitHub connection; skipped");
        return Ok(());
    };
    let prepared = match &obs.seen {
        Seen::Prepared(prep) => Some(prep),
        _ => None,
    };
    let adopted = match &obs.seen {
        Seen::Adopted(pr) => Some(pr),
        _ => None,
    };
    let snapshot = status.clone();
    let applications: Vec<_> = match &obs.seen {
        Seen::Applications(apps) => apps.iter().map(|a| a.record.clone()).collect(),
        _ => vec![],
    };
    let subject = Subject {
        promotion: p,
        env,
        status: &snapshot,
        prepared,
        adopted,
        reason: &d.message,
        notes: &obs.notes,
        successor: match &obs.seen {
            Seen::Superseded { successor, .. } => Some(successor),
            _ => None,
        },
        applications: &applications,
    };
    let planned = effects::build(&d.actions, &subject).map_err(Error::Blocked)?;
    let scene = Scene {
        ctx,
        gh,
        credentials: obs.credentials.as_deref().unwrap_or_default(),
        promotion: p,
        now,
    };
    act::perform_all(&scene, w, &planned, status).await
}

async fn record_metrics(
    ctx: &Context,
    p: &Promotion,
    obs: &Observation,
    status: &PromotionStatus,
    now: Timestamp,
) {
    let Some(phase) = status.phase else { return };
    // Lead time starts at the source commit; one request, only when a promotion lands.
    let mut commit_time = None;
    let source = p.spec.sources().first().map(|s| (*s).clone());
    let repo = source
        .as_ref()
        .and_then(|s| RepoRef::parse(&s.repository).ok());
    if let (Phase::Synced, Some(gh), Some(repo), Some(source)) =
        (phase, obs.github.as_ref(), repo, &source)
    {
        commit_time = match gh.commit_time(&repo, &source.commit).await {
            Ok(t) => t.and_then(|t| t.parse::<Timestamp>().ok()),
            Err(e) => {
                tracing::debug!(error = %e, "no source commit time for the lead-time metric");
                None
            }
        };
    }
    if let (Phase::Synced, Some(rb)) = (phase, &p.spec.rollback) {
        // Time to restore, from object timestamps: the failure the rollback answers (the
        // failed Promotion's Failed time), else the rollback's own creation.
        let promotions = ctx
            .promotions(&p.namespace().unwrap_or_default())
            .await
            .unwrap_or_default();
        let failed_at = rb
            .of
            .as_deref()
            .and_then(|of| promotions.iter().find(|q| q.name_any() == of))
            .and_then(|q| q.status.as_ref()?.phase_times.failed.clone())
            .or_else(|| p.metadata.creation_timestamp.clone());
        if let Some(t) = failed_at {
            ctx.metrics
                .restored(&p.spec.environment, now.duration_since(t.0).as_secs_f64());
        }
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

/// Deleting a Promotion before its PR merged closes the PR and deletes its branch;
/// after the merge, GitHub is left alone.
async fn cleanup(p: &Promotion, ctx: &Context) -> Result<Requeue, Error> {
    ctx.forget(&ObjectRef::from_obj(p));
    // Ended ones keep theirs until the cache catches up; a deleted one needs none.
    ctx.written.forget(&ObjectRef::from_obj(p));
    let mut status = p.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    let pr = status.pull_request.clone().unwrap_or_default();
    let actions = machine::on_delete(phase, !pr.branch.is_empty());
    if actions.is_empty() {
        return Ok(Requeue::await_change());
    }
    let ns = p.namespace().unwrap_or_default();
    let Some(env) = ctx.environment(&ns, &p.spec.environment).await? else {
        tracing::warn!(promotion = %p.name_any(), "Environment gone: cannot close the pull request, leaving it open");
        return Ok(Requeue::await_change());
    };
    let (gh, credentials) = match ctx.github_for(&ns, &env).await {
        Ok(connection) => connection,
        Err(ConnectError::Blocked(b)) => {
            tracing::warn!(promotion = %p.name_any(), reason = b.message(), "cannot reach GitHub to close the pull request, leaving it open");
            return Ok(Requeue::await_change());
        }
        Err(ConnectError::Transient(e)) => return Err(e),
    };
    if pr.number == 0 {
        // The PR may have been opened by an attempt that crashed before recording it.
        let repo = RepoRef::parse(&env.spec.gitops.repository)?;
        let uid = p.metadata.uid.as_deref().unwrap_or_default();
        use baton_github::PullRequests;
        match gh.find_by_head(&repo, &pr.branch, uid).await? {
            Some(found) if found.state == PrState::Open => {
                if let Some(s) = status.pull_request.as_mut() {
                    s.number = found.number;
                }
            }
            _ => {
                ctx.fence.check()?;
                gh.delete_branch(&repo, &pr.branch).await?;
                return Ok(Requeue::await_change());
            }
        }
    }
    let snapshot = status.clone();
    let subject = Subject {
        promotion: p,
        env: &env,
        status: &snapshot,
        prepared: None,
        adopted: None,
        reason: "",
        notes: &[],
        successor: None,
        applications: &[],
    };
    let planned = effects::build(&actions, &subject).map_err(Error::Blocked)?;
    let now = Time(Timestamp::now());
    let scene = Scene {
        ctx,
        gh: &*gh,
        credentials: &credentials,
        promotion: p,
        now: &now,
    };
    let mut w = Writer::tracked(ctx, p);
    act::perform_all(&scene, &mut w, &planned, &mut status).await?;
    Ok(Requeue::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(32));
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(30, 1.0), MAX_BACKOFF);
        assert!(backoff(30, 0.0) >= MAX_BACKOFF / 2);
    }
}
