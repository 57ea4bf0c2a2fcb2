//! Reading an Argo CD Application: has it reached the promotion's merge commit?
//! No client required: ancestry answers come in as data.

use std::collections::BTreeMap;

use baton_api::application::ApplicationStatus;

/// Where one Application stands relative to the promotion's merge commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppState {
    /// The Application does not exist (yet): a waiting condition, not an error.
    Missing,
    /// Argo CD has not synced the merge commit (or a descendant) yet.
    NotAtTarget { detail: String },
    /// At the target revision, but the rollout is not Healthy yet.
    Progressing { health: String },
    /// At the target revision and Degraded.
    Degraded { message: String },
    /// Synced and Healthy at the merge commit or a descendant, after a finished sync.
    Ready { revision: String },
}

/// Answers to "is REVISION the merge commit or a descendant of it?", gathered by the
/// caller (GitHub compare API, cached). A revision missing from the map is unknown.
pub type Reaches = BTreeMap<String, bool>;

/// Interprets `status` for a promotion whose PR merged as `merge_commit`.
///
/// Ready needs all of: sync status `Synced`; every synced revision reaches the merge
/// commit; the last sync operation `Succeeded`, finished, and synced a revision that
/// reaches the merge commit (so an operation that finished before the merge counts for
/// nothing); health `Healthy`. An empty or unknown revision is never proof.
pub fn interpret(
    status: Option<&ApplicationStatus>,
    merge_commit: &str,
    reaches: &Reaches,
) -> AppState {
    let Some(status) = status else {
        return AppState::NotAtTarget {
            detail: "Argo CD has not reported a status yet".into(),
        };
    };
    let ok = |rev: &str| rev == merge_commit || reaches.get(rev).copied().unwrap_or(false);
    let sync = status
        .sync
        .as_ref()
        .map(|s| s.status.as_str())
        .unwrap_or("Unknown");
    let revisions = status.synced_revisions();
    if sync != "Synced" {
        return AppState::NotAtTarget {
            detail: format!("sync status is {sync}"),
        };
    }
    if revisions.is_empty() || !revisions.iter().all(|r| ok(r)) {
        return AppState::NotAtTarget {
            detail: format!(
                "synced revision {} does not contain the merge commit yet",
                revisions.join(",")
            ),
        };
    }
    let Some(op) = status.operation_state.as_ref() else {
        return AppState::NotAtTarget {
            detail: "no sync operation recorded since the merge".into(),
        };
    };
    let op_revisions: Vec<&str> = op
        .sync_result
        .as_ref()
        .map(|r| {
            let mut v: Vec<&str> = r.revisions.iter().map(String::as_str).collect();
            v.extend(r.revision.as_deref());
            v.retain(|r| !r.is_empty());
            v
        })
        .unwrap_or_default();
    if op_revisions.is_empty() || !op_revisions.iter().all(|r| ok(r)) {
        return AppState::NotAtTarget {
            detail: "the last sync operation predates the merge".into(),
        };
    }
    if op.phase != "Succeeded" || op.finished_at.as_deref().unwrap_or_default().is_empty() {
        return AppState::NotAtTarget {
            detail: format!(
                "sync operation is {}",
                if op.phase.is_empty() {
                    "Unknown"
                } else {
                    &op.phase
                }
            ),
        };
    }
    let health = status
        .health
        .as_ref()
        .map(|h| h.status.as_str())
        .unwrap_or("Unknown");
    match health {
        "Healthy" => AppState::Ready {
            revision: revisions
                .first()
                .map(|r| (*r).to_owned())
                .unwrap_or_default(),
        },
        "Degraded" => AppState::Degraded {
            message: status
                .health
                .as_ref()
                .and_then(|h| h.message.clone())
                .unwrap_or_default(),
        },
        other => AppState::Progressing {
            health: other.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::application::{HealthStatus, OperationState, SyncResult, SyncStatus};

    const MERGE: &str = "1111111111111111111111111111111111111111";
    const LATER: &str = "2222222222222222222222222222222222222222";
    const OLDER: &str = "0000000000000000000000000000000000000000";

    fn status(
        sync: &str,
        rev: &str,
        health: &str,
        op_phase: &str,
        op_rev: &str,
    ) -> ApplicationStatus {
        ApplicationStatus {
            sync: Some(SyncStatus {
                status: sync.into(),
                revision: Some(rev.into()),
                revisions: vec![],
            }),
            health: Some(HealthStatus {
                status: health.into(),
                message: Some("Deployment api exceeded its progress deadline".into()),
            }),
            operation_state: Some(OperationState {
                phase: op_phase.into(),
                message: None,
                started_at: Some("2026-11-23T10:00:01Z".into()),
                finished_at: if op_phase == "Running" {
                    None
                } else {
                    Some("2026-11-23T10:00:05Z".into())
                },
                sync_result: Some(SyncResult {
                    revision: Some(op_rev.into()),
                    revisions: vec![],
                }),
            }),
            reconciled_at: None,
        }
    }

    fn reaches() -> Reaches {
        Reaches::from([(LATER.to_owned(), true), (OLDER.to_owned(), false)])
    }

    #[test]
    fn ready_at_the_merge_commit() {
        let s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
        assert_eq!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::Ready {
                revision: MERGE.into()
            }
        );
    }

    #[test]
    fn ready_at_a_descendant_of_the_merge_commit() {
        let s = status("Synced", LATER, "Healthy", "Succeeded", LATER);
        assert_eq!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::Ready {
                revision: LATER.into()
            }
        );
    }

    #[test]
    fn synced_and_healthy_at_an_older_revision_is_not_ready() {
        let s = status("Synced", OLDER, "Healthy", "Succeeded", OLDER);
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::NotAtTarget { .. }
        ));
    }

    #[test]
    fn unknown_ancestry_is_not_proof() {
        let unknown = "3333333333333333333333333333333333333333";
        let s = status("Synced", unknown, "Healthy", "Succeeded", unknown);
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::NotAtTarget { .. }
        ));
    }

    #[test]
    fn empty_revision_is_never_ready() {
        let s = status("Synced", "", "Healthy", "Succeeded", "");
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::NotAtTarget { .. }
        ));
    }

    #[test]
    fn stale_operation_state_from_before_the_merge_counts_for_nothing() {
        // Sync status already points at the merge commit, but the last operation synced an older one.
        let s = status("Synced", MERGE, "Healthy", "Succeeded", OLDER);
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::NotAtTarget { .. }
        ));
    }

    #[test]
    fn running_operation_is_not_ready() {
        let s = status("Synced", MERGE, "Healthy", "Running", MERGE);
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::NotAtTarget { .. }
        ));
    }

    #[test]
    fn progressing_rollout_is_not_deployed() {
        let s = status("Synced", MERGE, "Progressing", "Succeeded", MERGE);
        assert_eq!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::Progressing {
                health: "Progressing".into()
            }
        );
    }

    #[test]
    fn degraded_at_target_is_reported() {
        let s = status("Synced", MERGE, "Degraded", "Succeeded", MERGE);
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::Degraded { .. }
        ));
    }

    #[test]
    fn out_of_sync_is_not_at_target() {
        let s = status("OutOfSync", MERGE, "Healthy", "Succeeded", MERGE);
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::NotAtTarget { .. }
        ));
    }

    #[test]
    fn multi_source_needs_every_revision_at_target() {
        let mut s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
        if let Some(sync) = s.sync.as_mut() {
            sync.revision = None;
            sync.revisions = vec![MERGE.into(), OLDER.into()];
        }
        assert!(matches!(
            interpret(Some(&s), MERGE, &reaches()),
            AppState::NotAtTarget { .. }
        ));
    }
}
