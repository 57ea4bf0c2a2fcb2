//! The promotion machine: pure. No client, no clock read, no I/O: everything it
//! needs arrives in [`Inputs`] (what `observe` saw, typed by phase in [`Seen`]), what
//! should happen leaves as a [`Decision`], [`effects`] turns its actions into effects
//! that carry every argument, and [`next_status`] computes the status to write.
//!
//! - [`gates`]: the queue rule and the upstream gate, over lists of Promotions;
//! - [`health`]: reading an Argo CD Application against the promotion's target;
//! - [`plan`]: what a promotion changes (files, Applications) and every text it posts.
//!
//! ```text
//!            ┌──── blocked (env/secret/file/source/upstream/queue): stay, say why ─┐
//!  Pending ──┴─ open PR ─▶ PROpened ─ merged ─▶ Merged ─ all apps Ready ─▶ Synced
//!                            │                    ├─ sync failed ───────▶ Failed
//!                            │                    ├─ Degraded > grace ──▶ Failed
//!                            └─ closed ─▶ Rejected└─ timeout ───────────▶ Failed
//! ```
//!
//! Spec edited after the PR opened: the API server refuses it (CEL rule on the CRD).
//! If it happens anyway (the rule bypassed), the PR no longer matches what was asked,
//! so the promotion fails closed with `SpecChangedAfterPullRequest` and its PR is
//! closed; a new Promotion carries the new request.

pub mod effects;
pub mod gates;
pub mod health;
pub mod next_status;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod rollback;
mod types;
pub mod windows;

pub use types::*;

use std::time::Duration;

use baton_api::Phase;
use baton_api::conditions::{self as c, ConditionStatus};
use baton_api::promotion::NotificationKind;
use baton_github::{PrState, ReviewDecision};

use health::AppState;

const BLOCKED_RETRY: Duration = Duration::from_secs(30);
const REVIEW_POLL: Duration = Duration::from_secs(60);
const SYNC_POLL: Duration = Duration::from_secs(30);
/// How often a promotion with a refused notification looks for new credentials.
const REFUSED_RECHECK: Duration = Duration::from_secs(300);

/// Decides the next step of a promotion: the transition table, then what the
/// transition tells people (GitHub Deployments, the result comment on the PR).
pub fn decide(input: &Inputs<'_>) -> Decision {
    let mut d = transition(input);
    let more = notify::actions(input, &d);
    d.actions.extend(more);
    d
}

/// The transition table.
fn transition(input: &Inputs<'_>) -> Decision {
    let phase = input.status.phase.unwrap_or_default();
    match (phase, &input.seen) {
        (Phase::Synced | Phase::Failed | Phase::Rejected | Phase::Superseded, _) => {
            terminal_again(input, phase)
        }
        (Phase::Pending | Phase::PrOpened, Seen::Superseded { successor, pr_open }) => {
            superseded(input, successor, *pr_open)
        }
        (Phase::Pending, Seen::Adopted(pr)) => adopted(input, &pr.state),
        (Phase::Pending, Seen::Blocked(b)) => blocked(Phase::Pending, b),
        (Phase::Pending, Seen::AlreadyApplied { commit }) => already_applied(commit),
        (Phase::Pending, _) => open_pull_request(),
        (
            Phase::PrOpened,
            Seen::PullRequest {
                state: Some(PrState::Open),
                merge_window: Some(w),
                ..
            },
        ) if w.hold.is_some()
            || input
                .status
                .pull_request
                .as_ref()
                .is_some_and(|p| p.auto_merge_held) =>
        {
            merge_window(input, w)
        }
        (Phase::PrOpened, Seen::PullRequest { state, review, .. }) => {
            pr_opened(input, state.as_ref(), *review)
        }
        (Phase::PrOpened, Seen::Blocked(b)) | (Phase::Merged, Seen::Blocked(b)) => {
            blocked(phase, b)
        }
        (Phase::PrOpened, _) => pr_opened(input, None, None),
        (Phase::Merged, Seen::Applications(apps)) => merged(input, apps),
        (Phase::Merged, _) => merged(input, &[]),
    }
}

/// Held by a blocker: look again when its gate opens, else soon.
fn blocked(phase: Phase, b: &Blocker) -> Decision {
    let at = b.retry_after();
    Decision {
        exact: at.is_some(),
        ..Decision::wait(
            phase,
            b.reason(),
            b.message().to_owned(),
            at.unwrap_or(BLOCKED_RETRY),
        )
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
        Phase::Superseded => c::REASON_SUPERSEDED,
        _ => ready
            .map(|r| reason_constant(&r.reason))
            .unwrap_or(c::REASON_SYNC_TIMEOUT),
    };
    let message = ready.map(|r| r.message.clone()).unwrap_or_default();
    let actions = match &input.seen {
        Seen::Retry { credentials } => retry_refused(input.status, credentials),
        _ => vec![],
    };
    let refused = input
        .status
        .notifications
        .iter()
        .any(|n| n.failed.is_some());
    Decision {
        // The Secret is not watched: look at it now and then (no GitHub request).
        requeue_after: refused.then_some(REFUSED_RECHECK),
        ..Decision::terminal(phase, reason, message, actions)
    }
}

/// Refused by GitHub with credentials other than `credentials` (worth another try).
pub fn refused_with_other(n: &baton_api::promotion::NotificationRecord, credentials: &str) -> bool {
    n.failed.is_some() && n.failed_with.as_deref() != Some(credentials)
}

/// Notifications GitHub refused with other credentials than today's, tried again.
fn retry_refused(status: &baton_api::PromotionStatus, credentials: &str) -> Vec<Action> {
    status
        .notifications
        .iter()
        .filter(|n| refused_with_other(n, credentials))
        .filter_map(|n| match (n.kind, n.service.clone()) {
            (NotificationKind::Release, _) => Some(Action::CreateRelease),
            (NotificationKind::SuccessStatus, Some(service)) => Some(Action::PostStatus {
                service,
                success: true,
            }),
            (NotificationKind::FailureStatus, Some(service)) => Some(Action::PostStatus {
                service,
                success: false,
            }),
            _ => None,
        })
        .collect()
}

/// Maps a stored reason back to its constant, so decisions never carry free text as a reason.
fn reason_constant(stored: &str) -> &'static str {
    c::ALL_REASONS
        .iter()
        .copied()
        .find(|r| *r == stored)
        .unwrap_or(c::REASON_SYNC_TIMEOUT)
}

/// A window holds merges: auto-merge goes off while it is closed (so GitHub cannot
/// merge during a freeze) and on again when it opens.
fn merge_window(input: &Inputs<'_>, w: &MergeWindow) -> Decision {
    let set = |enabled| Action::SetAutoMerge {
        node_id: w.node_id.clone(),
        enabled,
    };
    match &w.hold {
        Some(b) => Decision {
            actions: if w.enabled { vec![set(false)] } else { vec![] },
            ..blocked(
                Phase::PrOpened,
                &Blocker::WindowClosed {
                    message: format!(
                        "pull request open; auto-merge is off until the window opens: {}",
                        b.message()
                    ),
                    opens_in: b.retry_after(),
                },
            )
        },
        None => Decision {
            actions: vec![set(true)],
            ..pr_opened(input, Some(&PrState::Open), None)
        },
    }
}

/// A newer Promotion replaces this unmerged one: its PR is closed with a comment
/// linking the new one, its branch deleted, and its commits told so nobody waits.
fn superseded(input: &Inputs<'_>, s: &Successor, pr_open: bool) -> Decision {
    let mut actions = if pr_open {
        vec![Action::CommentSuperseded, Action::ClosePullRequest]
    } else {
        vec![Action::DeleteBranch]
    };
    if input.policy.as_ref().is_some_and(|p| p.commit_status) {
        actions.extend(input.services.iter().map(|service| Action::PostSuperseded {
            service: service.clone(),
        }));
    }
    let link =
        s.by.pull_request_url
            .as_deref()
            .map(|u| format!(" ({u})"))
            .unwrap_or_default();
    Decision::terminal(
        Phase::Superseded,
        c::REASON_SUPERSEDED,
        format!(
            "superseded by Promotion {}{link}, which carries newer versions",
            s.by.promotion
        ),
        actions,
    )
}

/// A PR that already exists (created before a crash) is adopted, never duplicated.
fn adopted(input: &Inputs<'_>, state: &PrState) -> Decision {
    match state {
        PrState::Open => Decision {
            actions: vec![Action::CompletePullRequest],
            ..Decision::wait(
                Phase::PrOpened,
                c::REASON_WAITING_FOR_REVIEW,
                "pull request is open and waiting for review".into(),
                REVIEW_POLL,
            )
        },
        PrState::Merged { .. } | PrState::Closed => pr_opened(input, Some(state), None),
    }
}

fn already_applied(sha: &str) -> Decision {
    Decision::wait(
        Phase::Merged,
        c::REASON_WAITING_FOR_SYNC,
        format!(
            "the GitOps repository already holds these versions at {}; no pull request needed, waiting for Argo CD",
            short(sha)
        ),
        Duration::ZERO,
    )
}

fn open_pull_request() -> Decision {
    Decision {
        phase: Phase::PrOpened,
        actions: vec![Action::OpenPullRequest],
        ready: ConditionStatus::False,
        reason: c::REASON_WAITING_FOR_REVIEW,
        message: "pull request opened; waiting for a reviewer to merge it".into(),
        requeue_after: Some(REVIEW_POLL),
        exact: false,
    }
}

fn pr_opened(
    input: &Inputs<'_>,
    state: Option<&PrState>,
    review: Option<ReviewDecision>,
) -> Decision {
    let pr_generation = input
        .status
        .pull_request
        .as_ref()
        .and_then(|pr| pr.generation);
    if pr_generation.is_some_and(|g| g != input.generation) {
        return Decision::terminal(
            Phase::Failed,
            c::REASON_SPEC_CHANGED,
            "spec changed after the pull request was opened; the pull request was closed, create a new Promotion".into(),
            vec![Action::ClosePullRequest],
        );
    }
    match state {
        Some(PrState::Merged { merge_commit }) => Decision {
            actions: vec![Action::DeleteBranch],
            ..Decision::wait(
                Phase::Merged,
                c::REASON_WAITING_FOR_SYNC,
                format!(
                    "pull request merged as {}; waiting for Argo CD to sync",
                    short(merge_commit)
                ),
                Duration::ZERO,
            )
        },
        Some(PrState::Closed) => Decision::terminal(
            Phase::Rejected,
            c::REASON_PR_CLOSED,
            "pull request was closed without merging".into(),
            vec![Action::DeleteBranch],
        ),
        Some(PrState::Open) => {
            let message = match review {
                Some(ReviewDecision::Approved) => {
                    "pull request approved; waiting for a reviewer to merge it"
                }
                Some(ReviewDecision::ChangesRequested) => {
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

fn merged(input: &Inputs<'_>, apps: &[AppSeen]) -> Decision {
    let Some(policy) = &input.policy else {
        return Decision::wait(
            Phase::Merged,
            c::REASON_ENVIRONMENT_NOT_FOUND,
            "the Environment was deleted after the merge; waiting for it to return".into(),
            BLOCKED_RETRY,
        );
    };
    if let Some(failed) = rollout_failed(input, policy, apps) {
        return failed;
    }
    let ready = apps.len() == input.services.len()
        && apps
            .iter()
            .all(|a| matches!(a.view.state, AppState::Ready { .. }));
    if ready {
        return Decision::terminal(
            Phase::Synced,
            c::REASON_SYNCED,
            "every Application is Synced and Healthy at the merged revision".into(),
            synced_actions(input, policy),
        );
    }
    let merged_at = input.status.phase_times.merged.as_ref().map(|t| t.0);
    let elapsed = merged_at
        .and_then(|at| Duration::try_from(input.now.duration_since(at)).ok())
        .unwrap_or(Duration::ZERO);
    if elapsed >= policy.sync_timeout {
        return Decision::terminal(
            Phase::Failed,
            c::REASON_SYNC_TIMEOUT,
            format!(
                "not Synced and Healthy within {:?} of the merge: {}",
                policy.sync_timeout,
                waiting_on(apps)
            ),
            statuses(input, policy, false),
        );
    }
    let missing = apps.iter().any(|a| a.view.state == AppState::Missing);
    let reason = if missing {
        c::REASON_APPLICATION_MISSING
    } else {
        c::REASON_WAITING_FOR_SYNC
    };
    Decision::wait(
        Phase::Merged,
        reason,
        waiting_on(apps),
        SYNC_POLL.min(policy.sync_timeout.saturating_sub(elapsed)),
    )
}

/// What reaching `Synced` posts (besides what [`notify::actions`] adds).
fn synced_actions(input: &Inputs<'_>, policy: &Policy) -> Vec<Action> {
    let mut actions = statuses(input, policy, true);
    if policy.commit_status {
        actions.extend(
            input
                .rolled_back
                .iter()
                .map(|service| Action::PostRolledBack {
                    service: service.clone(),
                }),
        );
    }
    if policy.release {
        actions.push(Action::CreateRelease);
    }
    actions
}

/// The notification records to arm (record ahead) with decision `d`: while a merged
/// promotion waits for its Applications, those reaching `Synced` will use, so the
/// commit status is posted the moment they are ready, with no status write first.
pub fn armed(input: &Inputs<'_>, d: &Decision) -> Vec<crate::record::Key> {
    let (Phase::Merged, Some(policy)) = (d.phase, &input.policy) else {
        return vec![];
    };
    let mut actions = synced_actions(input, policy);
    if has_pr(input.status) {
        actions.push(Action::CommentResult);
    }
    actions.iter().filter_map(Action::record).collect()
}

/// Whether the promotion's PR is known by number (it can be commented on).
fn has_pr(status: &baton_api::PromotionStatus) -> bool {
    status.pull_request.as_ref().is_some_and(|pr| pr.number > 0)
}

/// A commit status per service (grouped per commit later), when the Environment wants them.
fn statuses(input: &Inputs<'_>, policy: &Policy, success: bool) -> Vec<Action> {
    if !policy.commit_status {
        return vec![];
    }
    input
        .services
        .iter()
        .map(|s| Action::PostStatus {
            service: s.clone(),
            success,
        })
        .collect()
}

/// Failed at once when Argo CD gave up on the sync, or when an Application stayed
/// Degraded past the grace period.
fn rollout_failed(input: &Inputs<'_>, policy: &Policy, apps: &[AppSeen]) -> Option<Decision> {
    for seen in apps {
        let app = &seen.view;
        if let AppState::SyncFailed { message } = &app.state {
            return Some(Decision::terminal(
                Phase::Failed,
                c::REASON_SYNC_FAILED,
                format!("Argo CD could not sync {}: {message}", app.service),
                statuses(input, policy, false),
            ));
        }
        let AppState::Degraded { message } = &app.state else {
            continue;
        };
        let since = seen
            .record
            .degraded_since
            .as_ref()
            .map_or(input.now, |t| t.0);
        let degraded_for =
            Duration::try_from(input.now.duration_since(since)).unwrap_or(Duration::ZERO);
        if degraded_for < policy.degraded_grace {
            continue;
        }
        let cause = if message.is_empty() {
            String::new()
        } else {
            format!(" ({message})")
        };
        return Some(Decision::terminal(
            Phase::Failed,
            c::REASON_DEGRADED,
            format!(
                "{} is Degraded after the rollout{cause} for longer than {:?}",
                app.service, policy.degraded_grace
            ),
            statuses(input, policy, false),
        ));
    }
    None
}

/// "api: sync status is OutOfSync; web: Application not found" for messages.
fn waiting_on(apps: &[AppSeen]) -> String {
    let parts: Vec<String> = apps
        .iter()
        .map(|a| &a.view)
        .filter_map(|a| match &a.state {
            AppState::Ready { .. } => None,
            AppState::Missing => Some(format!("{}: Application not found", a.service)),
            AppState::NotAtTarget { detail } => Some(format!("{}: {detail}", a.service)),
            AppState::Progressing { health } => Some(format!("{}: health is {health}", a.service)),
            AppState::Degraded { .. } => Some(format!("{}: Degraded", a.service)),
            AppState::SyncFailed { message } => {
                Some(format!("{}: sync failed: {message}", a.service))
            }
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
mod tests;
