//! The promotion state machine. No client required, no clock read: everything it
//! needs arrives in [`Inputs`], and what should happen leaves as a [`Decision`].
//!
//! ```text
//!            ┌────────── blocked (env/secret/file/upstream/queue): stay, say why ─┐
//!  Pending ──┴─ open PR ─▶ PROpened ─ merged ─▶ Merged ─ all apps Ready ─▶ Synced
//!                            │                    ├─ Degraded > grace ──▶ Failed
//!                            └─ closed ─▶ Rejected└─ timeout ───────────▶ Failed
//! ```
//!
//! Spec edited after the PR opened: the API server refuses it (CEL rule on the CRD).
//! If it happens anyway (the rule bypassed), the PR no longer matches what was asked,
//! so the promotion fails closed with `SpecChangedAfterPullRequest` and its PR is
//! closed; a new Promotion carries the new request.

use std::time::Duration;

use baton_api::conditions::{self as c, ConditionStatus};
use baton_api::{Phase, PromotionStatus};
use k8s_openapi::jiff::Timestamp;

use crate::health::AppState;

/// A problem found while preparing the PR that the user must fix; Baton retries by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// The Environment named by the Promotion does not exist.
    EnvironmentNotFound(String),
    /// The GitHub Secret is missing or lacks a key.
    SecretNotFound(String),
    /// A file or YAML path is missing, or the YAML is malformed.
    Manifest(String),
    /// The spec passed the schema but cannot be carried out (e.g. a template expands badly).
    InvalidSpec(String),
    /// Another Promotion holds the environment and service; this one waits its turn.
    Queued(String),
    /// The upstream environment does not run these versions yet.
    UpstreamNotReady(String),
}

impl Blocker {
    /// What the user is told.
    pub fn message(&self) -> &str {
        match self {
            Blocker::EnvironmentNotFound(m)
            | Blocker::SecretNotFound(m)
            | Blocker::Manifest(m)
            | Blocker::InvalidSpec(m)
            | Blocker::Queued(m)
            | Blocker::UpstreamNotReady(m) => m,
        }
    }
}

/// The pull request as GitHub reports it.
pub use baton_github::PrState;

/// One Application of the promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    pub service: String,
    pub state: AppState,
}

/// Environment policy the state machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub sync_timeout: Duration,
    pub degraded_grace: Duration,
    pub release: bool,
    pub commit_status: bool,
}

/// Everything observed for one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs<'a> {
    pub generation: i64,
    /// Services of the spec, in order.
    pub services: Vec<String>,
    pub status: &'a PromotionStatus,
    pub now: Timestamp,
    pub policy: Option<Policy>,
    /// First problem in the way of opening the PR, if any (only consulted while Pending).
    pub blocker: Option<Blocker>,
    /// The promotion's PR if one exists (found by head branch, so a crash after creating
    /// it is recovered), with its state.
    pub pull_request: Option<PrState>,
    /// Applications, only needed once merged.
    pub applications: Vec<AppView>,
    /// When each Application was first seen Degraded at the target (from status).
    pub degraded_since: Vec<(String, Timestamp)>,
    /// The generation the PR was opened for, if recorded.
    pub pr_generation: Option<i64>,
    /// The base branch already holds every version (at this commit): no PR is needed.
    pub already_applied: Option<String>,
    /// Reviewers' decision on the open PR, when polled.
    pub review: Option<baton_github::ReviewDecision>,
}

/// Side effects to perform, in order. Each is idempotent on the provider side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    OpenPullRequest,
    ClosePullRequest,
    /// Commit status on the source commit for `service`.
    PostStatus {
        service: String,
        success: bool,
    },
    CreateRelease,
}

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Phase to record once every action succeeded.
    pub phase: Phase,
    pub actions: Vec<Action>,
    pub ready: ConditionStatus,
    pub reason: &'static str,
    pub message: String,
    /// When to look again without an event; `None` for terminal phases.
    pub requeue_after: Option<Duration>,
}

const BLOCKED_RETRY: Duration = Duration::from_secs(30);
const REVIEW_POLL: Duration = Duration::from_secs(60);
const SYNC_POLL: Duration = Duration::from_secs(30);

impl Decision {
    fn wait(phase: Phase, reason: &'static str, message: String, after: Duration) -> Self {
        Decision {
            phase,
            actions: vec![],
            ready: ConditionStatus::False,
            reason,
            message,
            requeue_after: Some(after),
        }
    }

    fn terminal(phase: Phase, reason: &'static str, message: String, actions: Vec<Action>) -> Self {
        let ready = if phase == Phase::Synced {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        Decision {
            phase,
            actions,
            ready,
            reason,
            message,
            requeue_after: None,
        }
    }
}

/// Decides the next step of a promotion.
pub fn decide(input: &Inputs<'_>) -> Decision {
    let phase = input.status.phase.unwrap_or_default();
    match phase {
        Phase::Synced | Phase::Failed | Phase::Rejected => terminal_again(input, phase),
        Phase::Pending => pending(input),
        Phase::PrOpened => pr_opened(input),
        Phase::Merged => merged(input),
    }
}

/// Terminal phases never move; the Ready condition is restated from status.
fn terminal_again(input: &Inputs<'_>, phase: Phase) -> Decision {
    let ready = input
        .status
        .conditions
        .iter()
        .find(|c| c.r#type == c::TYPE_READY);
    let reason = match phase {
        Phase::Synced => c::REASON_SYNCED,
        Phase::Rejected => c::REASON_PR_CLOSED,
        _ => ready
            .map(|r| reason_constant(&r.reason))
            .unwrap_or(c::REASON_SYNC_TIMEOUT),
    };
    let message = ready.map(|r| r.message.clone()).unwrap_or_default();
    Decision::terminal(phase, reason, message, vec![])
}

/// Maps a stored reason back to its constant, so decisions never carry free text as a reason.
fn reason_constant(stored: &str) -> &'static str {
    [
        c::REASON_SYNC_TIMEOUT,
        c::REASON_DEGRADED,
        c::REASON_SPEC_CHANGED,
    ]
    .into_iter()
    .find(|r| *r == stored)
    .unwrap_or(c::REASON_SYNC_TIMEOUT)
}

fn pending(input: &Inputs<'_>) -> Decision {
    // A PR that already exists (created before a crash) is adopted, never duplicated.
    if let Some(pr) = &input.pull_request {
        return match pr {
            PrState::Open => Decision::wait(
                Phase::PrOpened,
                c::REASON_WAITING_FOR_REVIEW,
                "pull request is open and waiting for review".into(),
                REVIEW_POLL,
            ),
            PrState::Merged { .. } | PrState::Closed => pr_opened(input),
        };
    }
    if let Some(blocker) = &input.blocker {
        let (reason, message) = match blocker {
            Blocker::EnvironmentNotFound(m) => (c::REASON_ENVIRONMENT_NOT_FOUND, m),
            Blocker::SecretNotFound(m) => (c::REASON_SECRET_NOT_FOUND, m),
            Blocker::Manifest(m) => (c::REASON_MANIFEST_ERROR, m),
            Blocker::InvalidSpec(m) => (c::REASON_INVALID_SPEC, m),
            Blocker::Queued(m) => (c::REASON_QUEUED, m),
            Blocker::UpstreamNotReady(m) => (c::REASON_UPSTREAM_NOT_READY, m),
        };
        return Decision::wait(Phase::Pending, reason, message.clone(), BLOCKED_RETRY);
    }
    if let Some(sha) = &input.already_applied {
        return Decision::wait(
            Phase::Merged,
            c::REASON_WAITING_FOR_SYNC,
            format!(
                "the GitOps repository already holds these versions at {}; no pull request needed, waiting for Argo CD",
                short(sha)
            ),
            Duration::ZERO,
        );
    }
    Decision {
        phase: Phase::PrOpened,
        actions: vec![Action::OpenPullRequest],
        ready: ConditionStatus::False,
        reason: c::REASON_WAITING_FOR_REVIEW,
        message: "pull request opened; waiting for a reviewer to merge it".into(),
        requeue_after: Some(REVIEW_POLL),
    }
}

fn pr_opened(input: &Inputs<'_>) -> Decision {
    if input.pr_generation.is_some_and(|g| g != input.generation) {
        return Decision::terminal(
            Phase::Failed,
            c::REASON_SPEC_CHANGED,
            "spec changed after the pull request was opened; the pull request was closed, create a new Promotion".into(),
            vec![Action::ClosePullRequest],
        );
    }
    match &input.pull_request {
        Some(PrState::Merged { merge_commit }) => Decision::wait(
            Phase::Merged,
            c::REASON_WAITING_FOR_SYNC,
            format!(
                "pull request merged as {}; waiting for Argo CD to sync",
                short(merge_commit)
            ),
            Duration::ZERO,
        ),
        Some(PrState::Closed) => Decision::terminal(
            Phase::Rejected,
            c::REASON_PR_CLOSED,
            "pull request was closed without merging".into(),
            vec![],
        ),
        Some(PrState::Open) => {
            let message = match input.review {
                Some(baton_github::ReviewDecision::Approved) => {
                    "pull request approved; waiting for a reviewer to merge it"
                }
                Some(baton_github::ReviewDecision::ChangesRequested) => {
                    "a reviewer requested changes on the pull request"
                }
                _ => "pull request is open and waiting for review",
            };
            Decision::wait(
                Phase::PrOpened,
                c::REASON_WAITING_FOR_REVIEW,
                message.into(),
                REVIEW_POLL,
            )
        }
        // Not found: it may be a transient read; look again rather than reopen.
        None => Decision::wait(
            Phase::PrOpened,
            c::REASON_WAITING_FOR_REVIEW,
            "pull request not found on GitHub; checking again".into(),
            BLOCKED_RETRY,
        ),
    }
}

fn merged(input: &Inputs<'_>) -> Decision {
    let Some(policy) = &input.policy else {
        return Decision::wait(
            Phase::Merged,
            c::REASON_ENVIRONMENT_NOT_FOUND,
            "the Environment was deleted after the merge; waiting for it to return".into(),
            BLOCKED_RETRY,
        );
    };
    let failure_statuses = |services: &[String]| -> Vec<Action> {
        if !policy.commit_status {
            return vec![];
        }
        services
            .iter()
            .map(|s| Action::PostStatus {
                service: s.clone(),
                success: false,
            })
            .collect()
    };
    let merged_at = input.status.phase_times.merged.as_ref().map(|t| t.0);
    let elapsed = merged_at
        .and_then(|at| Duration::try_from(input.now.duration_since(at)).ok())
        .unwrap_or(Duration::ZERO);

    for app in &input.applications {
        if let AppState::Degraded { message } = &app.state {
            let since = input
                .degraded_since
                .iter()
                .find(|(s, _)| s == &app.service)
                .map_or(input.now, |(_, t)| *t);
            let degraded_for =
                Duration::try_from(input.now.duration_since(since)).unwrap_or(Duration::ZERO);
            if degraded_for >= policy.degraded_grace {
                return Decision::terminal(
                    Phase::Failed,
                    c::REASON_DEGRADED,
                    format!(
                        "{} is Degraded after the rollout ({message}) for longer than {:?}",
                        app.service, policy.degraded_grace
                    ),
                    failure_statuses(&input.services),
                );
            }
        }
    }

    let ready = input.applications.len() == input.services.len()
        && input
            .applications
            .iter()
            .all(|a| matches!(a.state, AppState::Ready { .. }));
    if ready {
        let mut actions: Vec<Action> = if policy.commit_status {
            input
                .services
                .iter()
                .map(|s| Action::PostStatus {
                    service: s.clone(),
                    success: true,
                })
                .collect()
        } else {
            vec![]
        };
        if policy.release {
            actions.push(Action::CreateRelease);
        }
        return Decision::terminal(
            Phase::Synced,
            c::REASON_SYNCED,
            "every Application is Synced and Healthy at the merged revision".into(),
            actions,
        );
    }

    if elapsed >= policy.sync_timeout {
        return Decision::terminal(
            Phase::Failed,
            c::REASON_SYNC_TIMEOUT,
            format!(
                "not Synced and Healthy within {:?} of the merge: {}",
                policy.sync_timeout,
                waiting_on(input)
            ),
            failure_statuses(&input.services),
        );
    }
    let missing = input
        .applications
        .iter()
        .any(|a| a.state == AppState::Missing);
    let reason = if missing {
        c::REASON_APPLICATION_MISSING
    } else {
        c::REASON_WAITING_FOR_SYNC
    };
    Decision::wait(
        Phase::Merged,
        reason,
        waiting_on(input),
        SYNC_POLL.min(policy.sync_timeout.saturating_sub(elapsed)),
    )
}

/// "api: sync status is OutOfSync; web: Application not found" for messages.
fn waiting_on(input: &Inputs<'_>) -> String {
    let parts: Vec<String> = input
        .applications
        .iter()
        .filter_map(|a| match &a.state {
            AppState::Ready { .. } => None,
            AppState::Missing => Some(format!("{}: Application not found", a.service)),
            AppState::NotAtTarget { detail } => Some(format!("{}: {detail}", a.service)),
            AppState::Progressing { health } => Some(format!("{}: health is {health}", a.service)),
            AppState::Degraded { .. } => Some(format!("{}: Degraded", a.service)),
        })
        .collect();
    if parts.is_empty() {
        "waiting for Argo CD".into()
    } else {
        format!("waiting for {}", parts.join("; "))
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Cleanup when the Promotion is deleted: before the merge the PR (and its branch) is
/// closed; after it, GitHub is left alone.
pub fn on_delete(phase: Phase, has_pull_request: bool) -> Vec<Action> {
    match phase {
        Phase::Pending | Phase::PrOpened if has_pull_request => vec![Action::ClosePullRequest],
        _ => vec![],
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
