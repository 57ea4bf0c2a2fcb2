//! The types the promotion machine reads and returns. No client required.

use std::time::Duration;

use baton_api::conditions::{self as c, ConditionStatus};
use baton_api::promotion::ApplicationObservation;
use baton_api::{Phase, PromotionStatus};
use baton_github::pr_body::ServiceChange;
use baton_github::{BranchHead, FileChange, PrState, PullRequest, ReviewDecision};
use k8s_openapi::jiff::Timestamp;

use super::health::AppState;

/// A problem the user must fix (or a gate that holds the promotion); Baton retries by itself.
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
    /// The Promotion names a source repository its Environment does not allow.
    SourceNotAllowed(String),
    /// Another Promotion holds the environment and service; this one waits its turn.
    Queued(String),
    /// The upstream environment does not run these versions yet.
    UpstreamNotReady(String),
    /// The upstream runs them, but not yet for the Environment's `soakTime`: look again
    /// exactly when the soak ends.
    Soaking {
        message: String,
        remaining: Duration,
    },
    /// A window holds promotions here; look again when it opens.
    WindowClosed {
        message: String,
        opens_in: Option<Duration>,
    },
    /// The Environments' `upstream` links form a cycle.
    UpstreamCycle(String),
    /// A version rolled back from this Environment, not unblocked since.
    VersionBlocked(String),
}

impl Blocker {
    /// What the user is told.
    pub fn message(&self) -> &str {
        match self {
            Blocker::EnvironmentNotFound(m)
            | Blocker::SecretNotFound(m)
            | Blocker::Manifest(m)
            | Blocker::InvalidSpec(m)
            | Blocker::SourceNotAllowed(m)
            | Blocker::Queued(m)
            | Blocker::UpstreamNotReady(m)
            | Blocker::UpstreamCycle(m)
            | Blocker::VersionBlocked(m)
            | Blocker::Soaking { message: m, .. }
            | Blocker::WindowClosed { message: m, .. } => m,
        }
    }

    /// When to look again, for gates that open at a known time (not polled).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Blocker::Soaking { remaining, .. } => Some(*remaining),
            Blocker::WindowClosed { opens_in, .. } => *opens_in,
            _ => None,
        }
    }

    /// The condition reason it is shown with.
    pub fn reason(&self) -> &'static str {
        match self {
            Blocker::EnvironmentNotFound(_) => c::REASON_ENVIRONMENT_NOT_FOUND,
            Blocker::SecretNotFound(_) => c::REASON_SECRET_NOT_FOUND,
            Blocker::Manifest(_) => c::REASON_MANIFEST_ERROR,
            Blocker::InvalidSpec(_) => c::REASON_INVALID_SPEC,
            Blocker::SourceNotAllowed(_) => c::REASON_SOURCE_NOT_ALLOWED,
            Blocker::Queued(_) => c::REASON_QUEUED,
            Blocker::UpstreamNotReady(_) => c::REASON_UPSTREAM_NOT_READY,
            Blocker::Soaking { .. } => c::REASON_SOAKING,
            Blocker::WindowClosed { .. } => c::REASON_WINDOW_CLOSED,
            Blocker::UpstreamCycle(_) => c::REASON_UPSTREAM_CYCLE,
            Blocker::VersionBlocked(_) => c::REASON_VERSION_BLOCKED,
        }
    }
}

/// The newer Promotion that replaces this one, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    pub by: baton_api::promotion::SupersededBy,
    /// `(service, source repository, source commit)` of each of its services: a commit
    /// it carries too gets its status from it, not a "superseded" one.
    pub carries: Vec<(String, String, String)>,
}

/// Auto-merge of an open PR against the Environment's windows.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeWindow {
    /// The PR's GraphQL node id (auto-merge is switched through GraphQL).
    pub node_id: String,
    /// Auto-merge is on now.
    pub enabled: bool,
    /// A window holds merges now (`WindowClosed`), or `None`.
    pub hold: Option<Blocker>,
}

/// One Application of the promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    pub service: String,
    pub state: AppState,
}

/// An Application as seen, and the record the status keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSeen {
    pub view: AppView,
    pub record: ApplicationObservation,
}

/// Environment policy the state machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub sync_timeout: Duration,
    pub degraded_grace: Duration,
    pub release: bool,
    pub commit_status: bool,
    /// How long the upstream must have run a version (zero: no soak).
    pub soak: Duration,
    pub queue: baton_api::environment::QueuePolicy,
    /// GitHub Deployments on the source commits.
    pub deployments: bool,
}

/// A prepared change: the base commit and every file's new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub base: BranchHead,
    pub files: Vec<FileChange>,
    pub services: Vec<ServiceChange>,
}

/// What one reconcile saw, by phase. Observe only reads; this is all it returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Nothing was read (terminal phases).
    Nothing,
    /// Terminal, with notifications GitHub refused: the credentials version now (they
    /// are tried again when it differs from the one they were refused with).
    Retry { credentials: String },
    /// Something in the way the user must fix, or a gate that holds the promotion.
    Blocked(Blocker),
    /// Pending or PROpened: a newer Promotion replaces this one. `pr_open`: its pull
    /// request is still open (closed with a comment linking the new one).
    Superseded { successor: Successor, pr_open: bool },
    /// Pending: this Promotion's PR already exists (an earlier attempt opened it).
    Adopted(PullRequest),
    /// Pending: the change is ready to be proposed.
    Prepared(Prepared),
    /// Pending: the base branch already holds every version, at this commit.
    AlreadyApplied { commit: String },
    /// PROpened: the PR as GitHub reports it (`None`: not found), and the reviews.
    PullRequest {
        state: Option<PrState>,
        review: Option<ReviewDecision>,
        /// With the Environment's auto-merge: what the windows say now.
        merge_window: Option<MergeWindow>,
    },
    /// Merged: every Application of the promotion.
    Applications(Vec<AppSeen>),
}

/// Everything a decision is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs<'a> {
    pub generation: i64,
    /// Services of the spec, in order.
    pub services: Vec<String>,
    /// A rollback's services rolled back from (their old commits are told so once Synced).
    pub rolled_back: Vec<String>,
    pub status: &'a PromotionStatus,
    pub now: Timestamp,
    /// The Environment's policy (`None` when the Environment is gone).
    pub policy: Option<Policy>,
    pub seen: Seen,
}

/// Side effects to perform, in order. The plan turns each into an effect that carries
/// everything it needs; every one is idempotent on the provider side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    OpenPullRequest,
    /// A PR an earlier attempt opened is adopted: give it what a fresh one gets
    /// (labels, reviewers, auto-merge).
    CompletePullRequest,
    ClosePullRequest,
    /// The PR merged or was closed: its branch is no longer needed.
    DeleteBranch,
    /// Commit status on the source commit for `service`.
    PostStatus {
        service: String,
        success: bool,
    },
    CreateRelease,
    /// A comment on the open PR linking the Promotion that replaced this one.
    CommentSuperseded,
    /// Moves `service`'s GitHub Deployment to `state` (created first when needed).
    Deploy {
        service: String,
        state: baton_github::DeploymentState,
    },
    /// The comment on the merged PR with each Application's result (edited in place).
    CommentResult,
    /// Failure status on the commit of a version a rollback removed.
    PostRolledBack {
        service: String,
    },
    /// Auto-merge off while a window is closed, on again once it opens.
    SetAutoMerge {
        node_id: String,
        enabled: bool,
    },
    /// `error` commit status: replaced by a newer Promotion (not posted on a commit the
    /// newer one carries too).
    PostSuperseded {
        service: String,
    },
}

impl Action {
    /// The notification record this action posts under, if it is a notification.
    pub fn record(&self) -> Option<crate::record::Key> {
        use baton_api::promotion::NotificationKind as K;
        Some(match self {
            Action::PostStatus { service, success } => (
                if *success {
                    K::SuccessStatus
                } else {
                    K::FailureStatus
                },
                Some(service.clone()),
            ),
            Action::PostRolledBack { service } => (K::RolledBackStatus, Some(service.clone())),
            Action::PostSuperseded { service } => (K::SupersededStatus, Some(service.clone())),
            Action::CreateRelease => (K::Release, None),
            Action::CommentResult => (K::ResultComment, None),
            Action::CommentSuperseded => (K::SupersededComment, None),
            _ => return None,
        })
    }
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
    /// `requeue_after` is the exact time a gate opens (soak end, window opening): not
    /// shortened to the operator's polling cap.
    pub exact: bool,
}

impl Decision {
    pub(super) fn wait(
        phase: Phase,
        reason: &'static str,
        message: String,
        after: Duration,
    ) -> Self {
        Decision {
            phase,
            actions: vec![],
            ready: ConditionStatus::False,
            reason,
            message,
            requeue_after: Some(after),
            exact: false,
        }
    }

    pub(super) fn terminal(
        phase: Phase,
        reason: &'static str,
        message: String,
        actions: Vec<Action>,
    ) -> Self {
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
            exact: false,
        }
    }
}
