//! Reading an Argo CD Application: has it reached what the promotion needs?
//! No client required: ancestry answers come in as data.
//!
//! Rules (README "Behaviour"):
//! - a service whose file the PR changed needs sync status `Synced` and health
//!   `Healthy` at the merge commit or a descendant, and a finished, succeeded sync
//!   operation that synced such a revision (an operation from before the merge counts
//!   for nothing);
//! - a service the PR did not change (or a promotion with nothing to change) needs
//!   `Synced` + `Healthy` at a revision that contains the commit carrying its version,
//!   and no operation in progress: Argo CD runs no sync for manifests a merge did not
//!   change;
//! - only sources pointing at the GitOps repository are checked: a Helm chart version
//!   or another repository's SHA in a multi-source Application is never proof;
//! - a sync operation of the target that failed (Argo CD gave up) is a failure at
//!   once; one that is running or retrying says so.

use std::collections::BTreeMap;

use baton_api::application::{ApplicationSpec, ApplicationStatus, OperationState};

/// Where one Application stands relative to the promotion's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppState {
    /// The Application does not exist (yet): a waiting condition, not an error.
    Missing,
    /// Argo CD has not synced the target (or a descendant) yet.
    NotAtTarget { detail: String },
    /// At the target revision, but the rollout is not Healthy yet.
    Progressing { health: String },
    /// At the target revision and Degraded.
    Degraded { message: String },
    /// Argo CD's sync of the target failed and it stopped retrying.
    SyncFailed { message: String },
    /// Synced and Healthy at the target or a descendant.
    Ready { revision: String },
}

/// What an Application must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// The PR changed the service's file; `merge` is the merge commit.
    Changed { merge: &'a str },
    /// The PR did not change the service's file; `commit` already carries its version.
    Unchanged { commit: &'a str },
}

impl Need<'_> {
    /// The commit every accepted revision must contain.
    pub fn commit(&self) -> &str {
        match self {
            Need::Changed { merge } => merge,
            Need::Unchanged { commit } => commit,
        }
    }
}

/// Answers to "does REVISION contain the target commit?", gathered by the caller
/// (GitHub compare API, cached). A revision missing from the map is unknown.
pub type Reaches = BTreeMap<String, bool>;

/// The revisions of `revisions` that belong to sources pointing at `gitops_repo`
/// (`owner/name`). Single-source Applications report one revision; multi-source ones
/// one per `spec.sources` entry, in the same order.
pub fn gitops_revisions<'r>(
    spec: Option<&ApplicationSpec>,
    revisions: &'r [&'r str],
    gitops_repo: &str,
) -> Vec<&'r str> {
    let sources = spec.map(|s| s.sources.as_slice()).unwrap_or_default();
    if sources.is_empty() {
        let single = spec.and_then(|s| s.source.as_ref());
        return match single {
            Some(src) if !same_repo(&src.repo_url, gitops_repo) => vec![],
            _ => revisions.iter().take(1).copied().collect(),
        };
    }
    sources
        .iter()
        .zip(revisions.iter())
        .filter(|(src, _)| same_repo(&src.repo_url, gitops_repo))
        .map(|(_, rev)| *rev)
        .collect()
}

/// Whether a repoURL (`https://github.com/o/n.git`, `git@github.com:o/n`, `file:///x/o/n`)
/// names the repository `owner/name`.
pub fn same_repo(url: &str, repo: &str) -> bool {
    let url = url.trim_end_matches('/').trim_end_matches(".git");
    let tail: Vec<&str> = url.rsplit(['/', ':']).take(2).collect();
    match (tail.as_slice(), repo.split_once('/')) {
        ([name, owner], Some((o, n))) => {
            owner.eq_ignore_ascii_case(o) && name.eq_ignore_ascii_case(n)
        }
        _ => false,
    }
}

/// Only full SHAs can be compared; anything else (a Helm chart version) is no proof.
pub fn is_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit())
}

fn short(rev: &str) -> &str {
    rev.get(..7).unwrap_or(rev)
}

fn op_revisions(op: &OperationState) -> Vec<&str> {
    op.sync_result
        .as_ref()
        .map(|r| {
            let mut v: Vec<&str> = r.revisions.iter().map(String::as_str).collect();
            if v.is_empty() {
                v.extend(r.revision.as_deref());
            }
            v.retain(|r| !r.is_empty());
            v
        })
        .unwrap_or_default()
}

/// Interprets an Application (its spec and status) for a promotion that needs `need`.
pub fn interpret(
    spec: Option<&ApplicationSpec>,
    status: Option<&ApplicationStatus>,
    gitops_repo: &str,
    need: Need<'_>,
    reaches: &Reaches,
) -> AppState {
    let Some(status) = status else {
        return AppState::NotAtTarget {
            detail: "Argo CD has not reported a status yet".into(),
        };
    };
    let target = need.commit();
    let ok = |rev: &str| rev == target || reaches.get(rev).copied().unwrap_or(false);
    let all_ok = |revs: &[&str]| !revs.is_empty() && revs.iter().all(|r| ok(r));
    let synced = status.synced_revisions();
    let revisions = gitops_revisions(spec, &synced, gitops_repo);
    let op = status.operation_state.as_ref();
    let op_revs = op
        .map(|o| {
            let all = op_revisions(o);
            gitops_revisions(spec, &all, gitops_repo)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let op_revs: Vec<&str> = op_revs.iter().map(String::as_str).collect();

    // An operation on the target tells first: running (maybe retrying) or given up.
    if let Some(op) = op.filter(|_| all_ok(&op_revs)) {
        let message = op.message.clone().unwrap_or_default();
        match op.phase.as_str() {
            "Running" | "Terminating" | "" => {
                let attempt = op
                    .retry_count
                    .filter(|n| *n > 0)
                    .map(|n| format!(", attempt {}", n + 1))
                    .unwrap_or_default();
                let rev = op_revs.first().copied().unwrap_or_default();
                let tail = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                return AppState::NotAtTarget {
                    detail: format!("Argo CD is syncing {}{attempt}{tail}", short(rev)),
                };
            }
            "Failed" | "Error" if matches!(need, Need::Changed { .. }) => {
                return AppState::SyncFailed {
                    message: if message.is_empty() {
                        format!("sync operation {}", op.phase)
                    } else {
                        message
                    },
                };
            }
            _ => {}
        }
    }
    let sync = status
        .sync
        .as_ref()
        .map(|s| s.status.as_str())
        .unwrap_or("Unknown");
    if sync != "Synced" {
        return AppState::NotAtTarget {
            detail: format!("sync status is {sync}"),
        };
    }
    if revisions.is_empty() {
        return AppState::NotAtTarget {
            detail: format!(
                "no synced revision of a source pointing at the GitOps repository {gitops_repo}"
            ),
        };
    }
    if !all_ok(&revisions) {
        return AppState::NotAtTarget {
            detail: format!(
                "synced revision {} does not contain {} yet",
                revisions
                    .iter()
                    .map(|r| short(r))
                    .collect::<Vec<_>>()
                    .join(","),
                match need {
                    Need::Changed { .. } => "the merge commit",
                    Need::Unchanged { .. } => "the commit carrying this version",
                }
            ),
        };
    }
    match (need, op) {
        (Need::Unchanged { .. }, Some(op))
            if matches!(op.phase.as_str(), "Running" | "Terminating") =>
        {
            return AppState::NotAtTarget {
                detail: format!("a sync operation is {}", op.phase),
            };
        }
        (Need::Unchanged { .. }, _) => {}
        (Need::Changed { .. }, None) => {
            return AppState::NotAtTarget {
                detail: "no sync operation recorded since the merge".into(),
            };
        }
        (Need::Changed { .. }, Some(op)) => {
            if !all_ok(&op_revs) {
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
        }
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
            message: degraded_message(status),
        },
        other => AppState::Progressing {
            health: other.to_owned(),
        },
    }
}

/// Why an Application is Degraded: Argo CD v3 leaves `status.health.message` empty, so
/// the first Degraded resource's message is used when there is one. The caller may
/// still replace an empty answer with the resource's own condition.
pub fn degraded_message(status: &ApplicationStatus) -> String {
    if let Some(m) = status
        .health
        .as_ref()
        .and_then(|h| h.message.clone())
        .filter(|m| !m.is_empty())
    {
        return m;
    }
    status
        .resources
        .iter()
        .filter_map(|r| {
            let h = r.health.as_ref().filter(|h| h.status == "Degraded")?;
            let m = h.message.as_deref().filter(|m| !m.is_empty())?;
            Some(format!("{} {}: {m}", r.kind, r.name))
        })
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::application::{
        ApplicationSource, HealthStatus, OperationState, ResourceStatus, SyncResult, SyncStatus,
    };

    const GITOPS: &str = "camaradesuk/cluster-gitops";

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
            op.message = Some(
                "one or more objects failed to apply: Deployment.apps \"api\" is invalid".into(),
            );
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
        });
        s.resources = vec![ResourceStatus {
            kind: "Deployment".into(),
            name: "api".into(),
            health: Some(HealthStatus {
                status: "Degraded".into(),
                message: Some("Deployment \"api\" exceeded its progress deadline".into()),
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
}
