use super::*;
use baton_api::application::{
    ApplicationSource, HealthStatus, OperationState, ResourceStatus, SyncResult, SyncStatus,
};

const GITOPS: &str = "camaradesuk/cluster-gitops";

const MERGE: &str = "1111111111111111111111111111111111111111";
const LATER: &str = "2222222222222222222222222222222222222222";
const OLDER: &str = "0000000000000000000000000000000000000000";

fn status(sync: &str, rev: &str, health: &str, op_phase: &str, op_rev: &str) -> ApplicationStatus {
    ApplicationStatus {
        sync: Some(SyncStatus {
            status: sync.into(),
            revision: Some(rev.into()),
            revisions: vec![],
        }),
        health: Some(HealthStatus {
            status: health.into(),
            message: Some("Deployment api exceeded its progress deadline".into()),
            ..HealthStatus::default()
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
            retry_count: None,
        }),
        reconciled_at: None,
        resources: vec![],
    }
}

fn reaches() -> Reaches {
    Reaches::from([(LATER.to_owned(), true), (OLDER.to_owned(), false)])
}

#[test]
fn ready_at_the_merge_commit() {
    let s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
    assert_eq!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::Ready {
            revision: MERGE.into()
        }
    );
}

#[test]
fn ready_at_a_descendant_of_the_merge_commit() {
    let s = status("Synced", LATER, "Healthy", "Succeeded", LATER);
    assert_eq!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::Ready {
            revision: LATER.into()
        }
    );
}

#[test]
fn synced_and_healthy_at_an_older_revision_is_not_ready() {
    let s = status("Synced", OLDER, "Healthy", "Succeeded", OLDER);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn unknown_ancestry_is_not_proof() {
    let unknown = "3333333333333333333333333333333333333333";
    let s = status("Synced", unknown, "Healthy", "Succeeded", unknown);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn empty_revision_is_never_ready() {
    let s = status("Synced", "", "Healthy", "Succeeded", "");
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn stale_operation_state_from_before_the_merge_counts_for_nothing() {
    // Sync status already points at the merge commit, but the last operation synced an older one.
    let s = status("Synced", MERGE, "Healthy", "Succeeded", OLDER);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn running_operation_is_not_ready() {
    let s = status("Synced", MERGE, "Healthy", "Running", MERGE);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn progressing_rollout_is_not_deployed() {
    let s = status("Synced", MERGE, "Progressing", "Succeeded", MERGE);
    assert_eq!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::Progressing {
            health: "Progressing".into()
        }
    );
}

#[test]
fn degraded_at_target_is_reported() {
    let s = status("Synced", MERGE, "Degraded", "Succeeded", MERGE);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::Degraded { .. }
    ));
}

#[test]
fn out_of_sync_is_not_at_target() {
    let s = status("OutOfSync", MERGE, "Healthy", "Succeeded", MERGE);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

fn sources(urls: &[&str]) -> ApplicationSpec {
    ApplicationSpec {
        source: None,
        sources: urls
            .iter()
            .map(|u| ApplicationSource {
                repo_url: (*u).into(),
                ..ApplicationSource::default()
            })
            .collect(),
    }
}

fn multi(s: &mut ApplicationStatus, revs: &[&str]) {
    if let Some(sync) = s.sync.as_mut() {
        sync.revision = None;
        sync.revisions = revs.iter().map(|r| (*r).to_owned()).collect();
    }
    if let Some(r) = s
        .operation_state
        .as_mut()
        .and_then(|o| o.sync_result.as_mut())
    {
        r.revision = None;
        r.revisions = revs.iter().map(|r| (*r).to_owned()).collect();
    }
}

const REPO: &str = "https://github.com/camaradesuk/cluster-gitops.git";

#[test]
fn multi_source_needs_every_revision_at_target() {
    let mut s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
    multi(&mut s, &[MERGE, OLDER]);
    let spec = sources(&[REPO, "git@github.com:camaradesuk/cluster-gitops"]);
    assert!(matches!(
        interpret(
            Some(&spec),
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn multi_source_checks_only_the_gitops_source() {
    // A Helm chart from a chart repository plus $values from the GitOps repository.
    let mut s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
    multi(&mut s, &["1.2.3", MERGE]);
    let spec = sources(&["https://charts.example.com", REPO]);
    assert_eq!(
        interpret(
            Some(&spec),
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::Ready {
            revision: MERGE.into()
        }
    );
    // GitOps source first, the chart second.
    let mut s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
    multi(&mut s, &[MERGE, "1.2.3"]);
    let spec = sources(&[REPO, "https://charts.example.com"]);
    assert_eq!(
        interpret(
            Some(&spec),
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::Ready {
            revision: MERGE.into()
        }
    );
    // Another repository's SHA is never taken for the GitOps one.
    let mut s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
    multi(&mut s, &[MERGE, OLDER]);
    let spec = sources(&["https://github.com/other/repo", REPO]);
    assert!(matches!(
        interpret(
            Some(&spec),
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn no_source_at_the_gitops_repository_is_never_ready() {
    let s = status("Synced", MERGE, "Healthy", "Succeeded", MERGE);
    let spec = ApplicationSpec {
        source: Some(ApplicationSource {
            repo_url: "https://github.com/other/repo".into(),
            ..ApplicationSource::default()
        }),
        sources: vec![],
    };
    assert!(matches!(
        interpret(
            Some(&spec),
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn repository_urls_match_owner_and_name() {
    assert!(same_repo(
        "https://github.com/camaradesuk/cluster-gitops.git",
        GITOPS
    ));
    assert!(same_repo(
        "git@github.com:camaradesuk/cluster-gitops",
        GITOPS
    ));
    assert!(same_repo(
        "file:///tmp/repos/camaradesuk/cluster-gitops/",
        GITOPS
    ));
    assert!(!same_repo(
        "https://github.com/camaradesuk/cluster-gitops-2",
        GITOPS
    ));
    assert!(!same_repo(
        "https://github.com/other/cluster-gitops",
        GITOPS
    ));
}

#[test]
fn unchanged_service_needs_only_a_revision_containing_its_commit() {
    // Argo CD ran no operation for it: Synced at the new head, last operation older.
    let s = status("Synced", LATER, "Healthy", "Succeeded", OLDER);
    assert_eq!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Unchanged { commit: MERGE },
            &reaches()
        ),
        AppState::Ready {
            revision: LATER.into()
        }
    );
    // An older revision than the commit carrying the version is not enough.
    let s = status("Synced", OLDER, "Healthy", "Succeeded", OLDER);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Unchanged { commit: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
    // An operation in progress must finish first.
    let s = status("Synced", MERGE, "Healthy", "Running", OLDER);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Unchanged { commit: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn failed_sync_of_the_merge_is_a_failure_with_argo_cds_message() {
    let mut s = status("OutOfSync", OLDER, "Healthy", "Failed", MERGE);
    if let Some(op) = s.operation_state.as_mut() {
        op.message =
            Some("one or more objects failed to apply: Deployment.apps \"api\" is invalid".into());
    }
    assert_eq!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::SyncFailed {
            message: "one or more objects failed to apply: Deployment.apps \"api\" is invalid"
                .into()
        }
    );
    // A failure of an older revision is not this promotion's failure.
    let s = status("OutOfSync", OLDER, "Healthy", "Failed", OLDER);
    assert!(matches!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::NotAtTarget { .. }
    ));
}

#[test]
fn retrying_sync_says_so() {
    let mut s = status("OutOfSync", OLDER, "Healthy", "Running", MERGE);
    if let Some(op) = s.operation_state.as_mut() {
        op.message =
            Some("Retrying attempt #2 at 10:00:09. one or more objects failed to apply".into());
        op.retry_count = Some(2);
    }
    match interpret(
        None,
        Some(&s),
        GITOPS,
        Need::Changed { merge: MERGE },
        &reaches(),
    ) {
        AppState::NotAtTarget { detail } => {
            assert!(
                detail.starts_with("Argo CD is syncing 1111111, attempt 3"),
                "{detail}"
            );
            assert!(detail.contains("Retrying attempt #2"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn degraded_names_the_degraded_resource_when_argo_cd_leaves_the_message_empty() {
    let mut s = status("Synced", MERGE, "Degraded", "Succeeded", MERGE);
    s.health = Some(HealthStatus {
        status: "Degraded".into(),
        message: None,
        ..HealthStatus::default()
    });
    s.resources = vec![ResourceStatus {
        kind: "Deployment".into(),
        name: "api".into(),
        health: Some(HealthStatus {
            status: "Degraded".into(),
            message: Some("Deployment \"api\" exceeded its progress deadline".into()),
            ..HealthStatus::default()
        }),
        ..ResourceStatus::default()
    }];
    assert_eq!(
        interpret(
            None,
            Some(&s),
            GITOPS,
            Need::Changed { merge: MERGE },
            &reaches()
        ),
        AppState::Degraded {
            message: "Deployment api: Deployment \"api\" exceeded its progress deadline".into()
        }
    );
}
