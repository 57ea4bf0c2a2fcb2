//! Condition types and reasons Baton writes. They are constants so dashboards,
//! alerts and tests can rely on them; free text goes in `message` only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A condition in the standard Kubernetes shape (`metav1.Condition`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// One of the `TYPE_*` constants.
    #[schemars(length(min = 1, max = 316))]
    pub r#type: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// One of the `REASON_*` constants: CamelCase, machine readable.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// What happened and, for problems, what to fix.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
    /// `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    pub last_transition_time: Time,
}

/// Tri-state condition status.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// Summary condition: True once Synced, False with the blocking reason otherwise.
pub const TYPE_READY: &str = "Ready";
/// The pull request exists and matches the spec.
pub const TYPE_PR_OPENED: &str = "PullRequestOpened";
/// The pull request was merged.
pub const TYPE_MERGED: &str = "Merged";
/// Every Application is Synced and Healthy at the merged revision.
pub const TYPE_SYNCED: &str = "Synced";
/// A commit status or release GitHub refused for good (the deployment itself is recorded).
pub const TYPE_NOTIFICATION_FAILED: &str = "NotificationFailed";

pub const REASON_WAITING_FOR_REVIEW: &str = "WaitingForReview";
pub const REASON_PR_OPENED: &str = "PullRequestOpened";
pub const REASON_PR_MERGED: &str = "PullRequestMerged";
pub const REASON_PR_CLOSED: &str = "PullRequestClosed";
pub const REASON_WAITING_FOR_SYNC: &str = "WaitingForSync";
pub const REASON_APPLICATION_MISSING: &str = "ApplicationMissing";
pub const REASON_SYNCED: &str = "Synced";
pub const REASON_SYNC_TIMEOUT: &str = "SyncTimeout";
pub const REASON_DEGRADED: &str = "Degraded";
pub const REASON_UPSTREAM_NOT_READY: &str = "UpstreamNotReady";
pub const REASON_ENVIRONMENT_NOT_FOUND: &str = "EnvironmentNotFound";
pub const REASON_SECRET_NOT_FOUND: &str = "SecretNotFound";
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
pub const REASON_MANIFEST_ERROR: &str = "ManifestError";
pub const REASON_SPEC_CHANGED: &str = "SpecChangedAfterPullRequest";
pub const REASON_QUEUED: &str = "Queued";
pub const REASON_SOURCE_NOT_ALLOWED: &str = "SourceRepositoryNotAllowed";
pub const REASON_SYNC_FAILED: &str = "SyncFailed";
pub const REASON_NOTIFICATION_FAILED: &str = "NotificationFailed";
pub const REASON_SUPERSEDED: &str = "Superseded";
pub const REASON_SOAKING: &str = "Soaking";
pub const REASON_WINDOW_CLOSED: &str = "WindowClosed";
pub const REASON_UPSTREAM_CYCLE: &str = "UpstreamCycle";
/// Environment `Ready`: the pipeline definition is usable.
pub const REASON_PIPELINE_VALID: &str = "PipelineValid";
pub const REASON_VERSION_BLOCKED: &str = "VersionBlocked";
pub const REASON_ROLLBACK_FAILED: &str = "RollbackFailed";
pub const REASON_GITHUB_BUDGET: &str = "GitHubBudget";

/// Every reason Baton writes, so a reason read back from status maps to its constant.
pub const ALL_REASONS: &[&str] = &[
    REASON_WAITING_FOR_REVIEW,
    REASON_PR_OPENED,
    REASON_PR_MERGED,
    REASON_PR_CLOSED,
    REASON_WAITING_FOR_SYNC,
    REASON_APPLICATION_MISSING,
    REASON_SYNCED,
    REASON_SYNC_TIMEOUT,
    REASON_DEGRADED,
    REASON_UPSTREAM_NOT_READY,
    REASON_ENVIRONMENT_NOT_FOUND,
    REASON_SECRET_NOT_FOUND,
    REASON_INVALID_SPEC,
    REASON_MANIFEST_ERROR,
    REASON_SPEC_CHANGED,
    REASON_QUEUED,
    REASON_SOURCE_NOT_ALLOWED,
    REASON_SYNC_FAILED,
    REASON_NOTIFICATION_FAILED,
    REASON_SUPERSEDED,
    REASON_SOAKING,
    REASON_WINDOW_CLOSED,
    REASON_UPSTREAM_CYCLE,
    REASON_PIPELINE_VALID,
    REASON_VERSION_BLOCKED,
    REASON_ROLLBACK_FAILED,
    REASON_GITHUB_BUDGET,
];

/// Every reason that means "something is in the way": shown with a Warning Event when it
/// first appears (or its message changes).
pub const PROBLEM_REASONS: &[&str] = &[
    REASON_ENVIRONMENT_NOT_FOUND,
    REASON_SECRET_NOT_FOUND,
    REASON_INVALID_SPEC,
    REASON_MANIFEST_ERROR,
    REASON_SOURCE_NOT_ALLOWED,
    REASON_UPSTREAM_NOT_READY,
    REASON_QUEUED,
    REASON_APPLICATION_MISSING,
    REASON_UPSTREAM_CYCLE,
    REASON_VERSION_BLOCKED,
];

/// Sets `new` in `conditions`, keeping `last_transition_time` when the status did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.r#type == new.r#type) {
        Some(existing) => {
            let transition = if existing.status == new.status {
                existing.last_transition_time.clone()
            } else {
                new.last_transition_time.clone()
            };
            *existing = Condition {
                last_transition_time: transition,
                ..new
            };
        }
        None => conditions.push(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(status: ConditionStatus, secs: i64, reason: &str) -> Condition {
        Condition {
            r#type: TYPE_READY.into(),
            status,
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(
                k8s_openapi::jiff::Timestamp::from_second(secs).expect("valid time"),
            ),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut all = vec![cond(ConditionStatus::False, 10, REASON_WAITING_FOR_REVIEW)];
        set_condition(
            &mut all,
            cond(ConditionStatus::False, 20, REASON_WAITING_FOR_SYNC),
        );
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].reason, REASON_WAITING_FOR_SYNC);
        assert_eq!(all[0].last_transition_time.0.as_second(), 10);
        set_condition(&mut all, cond(ConditionStatus::True, 30, REASON_SYNCED));
        assert_eq!(all[0].last_transition_time.0.as_second(), 30);
    }
}
