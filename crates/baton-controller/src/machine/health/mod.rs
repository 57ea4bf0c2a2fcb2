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

/// The revisions of the GitOps sources the last (or running) sync operation synced.
pub fn gitops_operation_revisions(
    spec: Option<&ApplicationSpec>,
    status: &ApplicationStatus,
    gitops_repo: &str,
) -> Vec<String> {
    status
        .operation_state
        .as_ref()
        .map(|o| {
            let all = op_revisions(o);
            gitops_revisions(spec, &all, gitops_repo)
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// What is known of one Application against one target, for the steps of [`interpret`].
struct Facts<'a> {
    status: &'a ApplicationStatus,
    need: Need<'a>,
    gitops_repo: &'a str,
    /// Synced revisions of the GitOps sources.
    revisions: Vec<&'a str>,
    /// Revisions of the GitOps sources the last (or running) operation synced.
    op_revisions: Vec<String>,
    reaches: &'a Reaches,
}

impl Facts<'_> {
    fn ok(&self, rev: &str) -> bool {
        rev == self.need.commit() || self.reaches.get(rev).copied().unwrap_or(false)
    }

    fn all_ok<S: AsRef<str>>(&self, revs: &[S]) -> bool {
        !revs.is_empty() && revs.iter().all(|r| self.ok(r.as_ref()))
    }
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
    let synced = status.synced_revisions();
    let op_revisions = gitops_operation_revisions(spec, status, gitops_repo);
    let facts = Facts {
        status,
        need,
        gitops_repo,
        revisions: gitops_revisions(spec, &synced, gitops_repo),
        op_revisions,
        reaches,
    };
    operation_on_target(&facts)
        .or_else(|| not_synced_to_target(&facts))
        .or_else(|| operation_not_done(&facts))
        .unwrap_or_else(|| rollout(&facts))
}

/// An operation on the target tells first: running (maybe retrying) or given up.
fn operation_on_target(f: &Facts<'_>) -> Option<AppState> {
    let op = f
        .status
        .operation_state
        .as_ref()
        .filter(|_| f.all_ok(&f.op_revisions))?;
    let message = op.message.clone().unwrap_or_default();
    match op.phase.as_str() {
        "Running" | "Terminating" | "" => {
            let attempt = op
                .retry_count
                .filter(|n| *n > 0)
                .map(|n| format!(", attempt {}", n + 1))
                .unwrap_or_default();
            let rev = f
                .op_revisions
                .first()
                .map(String::as_str)
                .unwrap_or_default();
            let tail = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            Some(AppState::NotAtTarget {
                detail: format!("Argo CD is syncing {}{attempt}{tail}", short(rev)),
            })
        }
        "Failed" | "Error" if matches!(f.need, Need::Changed { .. }) => {
            Some(AppState::SyncFailed {
                message: if message.is_empty() {
                    format!("sync operation {}", op.phase)
                } else {
                    message
                },
            })
        }
        _ => None,
    }
}

/// Synced, at revisions of the GitOps sources that contain the target.
fn not_synced_to_target(f: &Facts<'_>) -> Option<AppState> {
    let sync = f
        .status
        .sync
        .as_ref()
        .map(|s| s.status.as_str())
        .unwrap_or("Unknown");
    if sync != "Synced" {
        return Some(AppState::NotAtTarget {
            detail: format!("sync status is {sync}"),
        });
    }
    if f.revisions.is_empty() {
        return Some(AppState::NotAtTarget {
            detail: format!(
                "no synced revision of a source pointing at the GitOps repository {}",
                f.gitops_repo
            ),
        });
    }
    if f.all_ok(&f.revisions) {
        return None;
    }
    Some(AppState::NotAtTarget {
        detail: format!(
            "synced revision {} does not contain {} yet",
            f.revisions
                .iter()
                .map(|r| short(r))
                .collect::<Vec<_>>()
                .join(","),
            match f.need {
                Need::Changed { .. } => "the merge commit",
                Need::Unchanged { .. } => "the commit carrying this version",
            }
        ),
    })
}

/// A changed service needs a finished, succeeded operation of the target; an
/// unchanged one only that no operation is running.
fn operation_not_done(f: &Facts<'_>) -> Option<AppState> {
    let op = f.status.operation_state.as_ref();
    let detail = match (f.need, op) {
        (Need::Unchanged { .. }, Some(op))
            if matches!(op.phase.as_str(), "Running" | "Terminating") =>
        {
            format!("a sync operation is {}", op.phase)
        }
        (Need::Unchanged { .. }, _) => return None,
        (Need::Changed { .. }, None) => "no sync operation recorded since the merge".into(),
        (Need::Changed { .. }, Some(_)) if !f.all_ok(&f.op_revisions) => {
            "the last sync operation predates the merge".into()
        }
        (Need::Changed { .. }, Some(op))
            if op.phase != "Succeeded"
                || op.finished_at.as_deref().unwrap_or_default().is_empty() =>
        {
            format!(
                "sync operation is {}",
                if op.phase.is_empty() {
                    "Unknown"
                } else {
                    &op.phase
                }
            )
        }
        (Need::Changed { .. }, Some(_)) => return None,
    };
    Some(AppState::NotAtTarget { detail })
}

/// At the target: what the rollout's health says.
fn rollout(f: &Facts<'_>) -> AppState {
    let health = f
        .status
        .health
        .as_ref()
        .map(|h| h.status.as_str())
        .unwrap_or("Unknown");
    match health {
        "Healthy" => AppState::Ready {
            revision: f
                .revisions
                .first()
                .map(|r| (*r).to_owned())
                .unwrap_or_default(),
        },
        "Degraded" => AppState::Degraded {
            message: degraded_message(f.status),
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
mod tests;
