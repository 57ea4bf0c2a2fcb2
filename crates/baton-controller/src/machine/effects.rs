//! From a decision's actions to effects that carry every argument: the PR (branch,
//! commit, title, body, labels), each commit status (grouped per commit and context),
//! the release. Pure; `act` only performs them.

use baton_api::Environment;
use baton_api::promotion::{NotificationKind, Promotion, PromotionStatus};
use baton_api::template::expand;
use baton_github::pr_body::{self, PrText, SourceLine};
use baton_github::{
    BranchHead, CommitStatus, PromotionChange, PullRequest, ReleaseNote, RepoRef, StatusState,
    naming,
};
use kube::ResourceExt;

use super::{Action, Prepared, Successor, plan};

/// A side effect with everything it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Labels, reviewers and auto-merge on a PR an earlier attempt opened.
    CompletePullRequest {
        change: Box<PromotionChange>,
        pr: Box<PullRequest>,
    },
    /// Create the branch (one commit on `base`), the PR, labels, reviewers, auto-merge.
    OpenPullRequest {
        change: Box<PromotionChange>,
        base: BranchHead,
        /// Services whose file already held the version (left out of the PR).
        unchanged: Vec<String>,
    },
    ClosePullRequest {
        repo: RepoRef,
        number: u64,
        branch: String,
    },
    DeleteBranch {
        repo: RepoRef,
        branch: String,
    },
    /// One commit status for `services` (they share the commit and context).
    PostStatus {
        services: Vec<String>,
        kind: NotificationKind,
        repo: RepoRef,
        sha: String,
        status: CommitStatus,
    },
    CreateRelease {
        repo: RepoRef,
        note: ReleaseNote,
    },
    /// Auto-merge on or off on the open PR.
    SetAutoMerge {
        node_id: String,
        enabled: bool,
    },
    /// A comment on the PR carrying `marker`: posted once, or with `edit`, kept as one
    /// comment edited in place.
    CommentPullRequest {
        repo: RepoRef,
        number: u64,
        kind: NotificationKind,
        marker: String,
        body: String,
        edit: bool,
    },
    /// `service`'s GitHub Deployment moved to `update.state` (created when needed);
    /// with `retire`, the previous deployment of the service there goes inactive.
    Deployment {
        service: String,
        request: Box<baton_github::DeploymentRequest>,
        update: baton_github::DeploymentUpdate,
        retire: bool,
    },
}

impl Effect {
    /// Whether this effect reports an outcome (rather than changing the PR).
    fn is_report(&self) -> bool {
        matches!(
            self,
            Effect::CommentPullRequest { .. }
                | Effect::CreateRelease { .. }
                | Effect::Deployment { .. }
        )
    }

    /// The notification records this effect is tracked by (recorded ahead of it):
    /// its kind and services (`None`: one record for the whole Promotion).
    pub fn records(&self) -> Option<(NotificationKind, Vec<Option<&str>>)> {
        match self {
            Effect::PostStatus { services, kind, .. } => {
                Some((*kind, services.iter().map(|s| Some(s.as_str())).collect()))
            }
            Effect::CreateRelease { .. } => Some((NotificationKind::Release, vec![None])),
            Effect::CommentPullRequest { kind, .. } => Some((*kind, vec![None])),
            _ => None,
        }
    }

    /// A short name for logs and Events.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::OpenPullRequest { .. } => "open pull request",
            Effect::CompletePullRequest { .. } => "complete pull request",
            Effect::ClosePullRequest { .. } => "close pull request",
            Effect::DeleteBranch { .. } => "delete branch",
            Effect::PostStatus { .. } => "post commit status",
            Effect::CreateRelease { .. } => "create release",
            Effect::CommentPullRequest { .. } => "comment on pull request",
            Effect::SetAutoMerge { .. } => "set auto-merge",
            Effect::Deployment { .. } => "update deployment",
        }
    }
}

/// What the effects are built from.
pub struct Subject<'a> {
    pub promotion: &'a Promotion,
    pub env: &'a Environment,
    pub status: &'a PromotionStatus,
    /// The prepared change, when opening the PR.
    pub prepared: Option<&'a Prepared>,
    /// The PR an earlier attempt opened, when adopting it.
    pub adopted: Option<&'a PullRequest>,
    /// Why a failure status is posted.
    pub reason: &'a str,
    /// Paragraphs for the PR body (upstream Promotions, a window override).
    pub notes: &'a [String],
    /// The Promotion replacing this one, when superseded.
    pub successor: Option<&'a Successor>,
    /// The Applications as this reconcile saw them (for the result comment).
    pub applications: &'a [baton_api::promotion::ApplicationObservation],
}

/// Why effects could not be built (a spec the schema let through but that cannot work).
pub type PlanError = String;

/// The branch a Promotion's PR lives on.
pub fn branch(p: &Promotion) -> String {
    naming::promotion_branch(
        &p.namespace().unwrap_or_default(),
        &p.name_any(),
        p.metadata.uid.as_deref().unwrap_or_default(),
    )
}

/// Builds the effects of `actions`, in order.
pub fn build(actions: &[Action], s: &Subject<'_>) -> Result<Vec<Effect>, PlanError> {
    let repo = |r: &str| RepoRef::parse(r).map_err(|e| e.to_string());
    let gitops = repo(&s.env.spec.gitops.repository)?;
    let pr = s.status.pull_request.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut statuses: Vec<(String, NotificationKind)> = Vec::new();
    for action in actions {
        match action {
            Action::OpenPullRequest => out.push(open(s, gitops.clone())?),
            Action::CompletePullRequest => {
                if let Some(pr) = s.adopted {
                    out.push(Effect::CompletePullRequest {
                        change: Box::new(policy_only(s, gitops.clone())),
                        pr: Box::new(pr.clone()),
                    });
                }
            }
            Action::ClosePullRequest if pr.number > 0 => out.push(Effect::ClosePullRequest {
                repo: gitops.clone(),
                number: pr.number,
                branch: pr.branch.clone(),
            }),
            Action::ClosePullRequest => {}
            Action::DeleteBranch if !pr.branch.is_empty() => out.push(Effect::DeleteBranch {
                repo: gitops.clone(),
                branch: pr.branch.clone(),
            }),
            Action::DeleteBranch => {}
            Action::PostStatus { service, success } => statuses.push((
                service.clone(),
                if *success {
                    NotificationKind::SuccessStatus
                } else {
                    NotificationKind::FailureStatus
                },
            )),
            Action::PostSuperseded { service } => {
                if !carried_by_successor(s, service) {
                    statuses.push((service.clone(), NotificationKind::SupersededStatus));
                }
            }
            Action::CreateRelease => out.extend(release(s)?),
            Action::PostRolledBack { service } => out.extend(rolled_back_status(s, service)?),
            Action::CommentSuperseded if pr.number > 0 => {
                if let Some(next) = s.successor {
                    out.push(Effect::CommentPullRequest {
                        repo: gitops.clone(),
                        number: pr.number,
                        kind: NotificationKind::SupersededComment,
                        marker: superseded_marker(s.promotion),
                        body: superseded_comment(s.promotion, next),
                        edit: false,
                    });
                }
            }
            Action::CommentSuperseded => {}
            Action::CommentResult if pr.number > 0 => {
                let marker = format!(
                    "<!-- baton:result uid={} -->",
                    s.promotion.metadata.uid.as_deref().unwrap_or_default()
                );
                out.push(Effect::CommentPullRequest {
                    repo: gitops.clone(),
                    number: pr.number,
                    kind: NotificationKind::ResultComment,
                    body: plan::result_comment(
                        s.promotion,
                        s.env,
                        s.applications,
                        s.reason,
                        &marker,
                    ),
                    marker,
                    edit: true,
                });
            }
            Action::CommentResult => {}
            Action::Deploy { service, state } => out.extend(deployment(s, service, *state)?),
            Action::SetAutoMerge { node_id, enabled } => out.push(Effect::SetAutoMerge {
                node_id: node_id.clone(),
                enabled: *enabled,
            }),
        }
    }
    let mut posts = status_effects(s, &statuses)?;
    // Commit statuses first among the reports (comments, deployments, the release):
    // they are what people and merge checks wait on.
    let at = out.iter().position(Effect::is_report).unwrap_or(out.len());
    let tail = out.split_off(at);
    out.append(&mut posts);
    out.extend(tail);
    Ok(out)
}

/// Whether the Promotion replacing this one carries `service` from the same commit
/// (then the commit's status comes from it, and "superseded" would mislead).
fn carried_by_successor(s: &Subject<'_>, service: &str) -> bool {
    let (Some(next), Some(src)) = (s.successor, s.promotion.spec.source_of(service)) else {
        return false;
    };
    next.carries
        .iter()
        .any(|(svc, repo, sha)| svc == service && *repo == src.repository && *sha == src.commit)
}

/// The failure status on the commit of a version a rollback removed:
/// "Rolled back from production: <reason>".
fn rolled_back_status(s: &Subject<'_>, service: &str) -> Result<Option<Effect>, PlanError> {
    let p = s.promotion;
    let Some(rb) = &p.spec.rollback else {
        return Ok(None);
    };
    let Some(from) = rb.from.iter().find(|f| f.name == service) else {
        return Ok(None);
    };
    let Some(src) = &from.source else {
        return Ok(None);
    };
    let policy = &s.env.spec.notifications.commit_status;
    let repo = RepoRef::parse(&src.repository).map_err(|e| e.to_string())?;
    Ok(Some(Effect::PostStatus {
        services: vec![service.to_owned()],
        kind: NotificationKind::RolledBackStatus,
        repo,
        sha: src.commit.clone(),
        status: CommitStatus {
            state: StatusState::Failure,
            context: expand(&policy.context, service, &p.spec.environment),
            description: baton_github::naming::truncate(
                &format!("Rolled back from {}: {}", p.spec.environment, rb.reason),
                baton_github::naming::MAX_STATUS_DESCRIPTION,
            ),
            target_url: s
                .status
                .pull_request
                .as_ref()
                .map(|pr| pr.url.clone())
                .filter(|u| !u.is_empty()),
        },
    }))
}

/// A service's deployment moved to `state`, with what GitHub shows for it.
fn deployment(
    s: &Subject<'_>,
    service: &str,
    state: baton_github::DeploymentState,
) -> Result<Option<Effect>, PlanError> {
    use baton_github::{DeploymentRequest, DeploymentState as S, DeploymentUpdate};
    let p = s.promotion;
    let Some(src) = p.spec.source_of(service) else {
        return Ok(None);
    };
    let env = &s.env.spec;
    let value = p
        .spec
        .services
        .iter()
        .find(|v| v.name == service)
        .map(|v| plan::short_value(v.value()).to_owned())
        .unwrap_or_default();
    let what = format!("{service}:{value}");
    let environment = &p.spec.environment;
    let pr = s
        .status
        .pull_request
        .as_ref()
        .filter(|pr| pr.number > 0)
        .map(|pr| format!(" (PR #{})", pr.number))
        .unwrap_or_default();
    let description = match state {
        S::Queued => format!("{what} to {environment}: waiting for review{pr}"),
        S::InProgress => format!("{what} to {environment}: merged, Argo CD is syncing"),
        S::Success => format!("Deployed {what} to {environment}"),
        S::Failure => format!("Failed to deploy {what} to {environment}: {}", s.reason),
        S::Error | S::Inactive => format!("Not deployed to {environment}: {}", s.reason),
    };
    let app = plan::applications(&p.spec.services, environment, env)
        .into_iter()
        .find(|a| a.service == service);
    let log_url = match (&env.applications.url, &app) {
        (Some(base), Some(a)) => Some(format!(
            "{}/applications/{}/{}",
            base.trim_end_matches('/'),
            a.namespace,
            a.name
        )),
        _ => None,
    };
    let environment_url = env
        .notifications
        .commit_status
        .target_url
        .as_deref()
        .map(|u| expand(u, service, environment))
        .or_else(|| log_url.clone());
    Ok(Some(Effect::Deployment {
        service: service.to_owned(),
        request: Box::new(DeploymentRequest {
            repo: RepoRef::parse(&src.repository).map_err(|e| e.to_string())?,
            sha: src.commit.clone(),
            environment: environment.clone(),
            task: format!("deploy:{service}"),
            description: format!("{what} to {environment} (Promotion {})", p.name_any()),
            production: s.env.spec.production,
            marker: format!(
                "{}/{service}",
                p.metadata.uid.as_deref().unwrap_or_default()
            ),
        }),
        update: DeploymentUpdate {
            state,
            description,
            log_url,
            environment_url,
        },
        retire: state == S::Success,
    }))
}

/// Labels and auto-merge of the PR: a rollback adds the `rollback` label and follows
/// `spec.rollback.autoMerge`.
fn pr_policy(s: &Subject<'_>) -> (Vec<String>, bool) {
    let env = &s.env.spec;
    let mut labels = env.pull_request.labels.clone();
    if s.promotion.spec.rollback.is_some() {
        if !labels.iter().any(|l| l == baton_api::LABEL_ROLLBACK) {
            labels.push(baton_api::LABEL_ROLLBACK.to_owned());
        }
        return (labels, env.rollback.auto_merge);
    }
    (labels, env.pull_request.auto_merge)
}

fn superseded_marker(p: &Promotion) -> String {
    format!(
        "<!-- baton:superseded uid={} -->",
        p.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// "Superseded by #12 (Promotion `syrf/production-...`)": the PR is closed with this.
fn superseded_comment(p: &Promotion, next: &Successor) -> String {
    let ns = p.namespace().unwrap_or_default();
    let target = match &next.by.pull_request_url {
        Some(url) => format!("{url} (Promotion `{ns}/{}`)", next.by.promotion),
        None => format!("Promotion `{ns}/{}`", next.by.promotion),
    };
    format!(
        "Superseded by {target}, which carries newer versions for {}. Baton closed this pull request; review the new one instead.\n\n{}",
        p.spec.environment,
        superseded_marker(p)
    )
}

/// The PR policy of the Environment, for completing an adopted PR (no files, no text).
fn policy_only(s: &Subject<'_>, repo: RepoRef) -> PromotionChange {
    let env = &s.env.spec;
    let (labels, auto_merge) = pr_policy(s);
    PromotionChange {
        repo,
        base_branch: env.gitops.branch.clone(),
        head_branch: branch(s.promotion),
        commit_message: String::new(),
        files: vec![],
        title: String::new(),
        body: String::new(),
        labels,
        reviewers: env.pull_request.reviewers.clone(),
        team_reviewers: env.pull_request.team_reviewers.clone(),
        auto_merge,
        owner_uid: s.promotion.metadata.uid.clone().unwrap_or_default(),
    }
}

fn open(s: &Subject<'_>, repo: RepoRef) -> Result<Effect, PlanError> {
    let p = s.promotion;
    let prepared = s
        .prepared
        .ok_or_else(|| "no prepared change to open a pull request with".to_owned())?;
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let uid = p.metadata.uid.clone().unwrap_or_default();
    let env = &s.env.spec;
    let apps: Vec<String> = plan::applications(&p.spec.services, &p.spec.environment, env)
        .into_iter()
        .map(|a| a.name)
        .collect();
    let web = plan::web_url(&env.github.api_url);
    let changed: Vec<_> = prepared
        .services
        .iter()
        .filter(|c| c.from.as_deref() != Some(c.to.as_str()))
        .cloned()
        .collect();
    let unchanged = prepared
        .services
        .iter()
        .filter(|c| c.from.as_deref() == Some(c.to.as_str()))
        .map(|c| c.service.clone())
        .collect();
    let sources = source_lines(&p.spec);
    let text = PrText {
        environment: &p.spec.environment,
        namespace: &ns,
        promotion: &name,
        uid: &uid,
        sources: &sources,
        web_url: &web,
        notes: s.notes,
        services: if changed.is_empty() {
            &prepared.services
        } else {
            &changed
        },
        checklist: &env.pull_request.checklist,
        applications: &apps,
        rollback: p.spec.rollback.is_some(),
    };
    let (labels, auto_merge) = pr_policy(s);
    let change = PromotionChange {
        repo,
        base_branch: env.gitops.branch.clone(),
        head_branch: branch(p),
        commit_message: pr_body::commit_message(&text),
        files: prepared.files.clone(),
        title: pr_body::title(&text),
        body: pr_body::body(&text),
        labels,
        reviewers: env.pull_request.reviewers.clone(),
        team_reviewers: env.pull_request.team_reviewers.clone(),
        auto_merge,
        owner_uid: uid,
    };
    Ok(Effect::OpenPullRequest {
        change: Box::new(change),
        base: prepared.base.clone(),
        unchanged,
    })
}

/// One line per distinct source, naming the services built there.
pub fn source_lines(spec: &baton_api::PromotionSpec) -> Vec<SourceLine<'_>> {
    let mut out: Vec<SourceLine<'_>> = Vec::new();
    for svc in &spec.services {
        let Some(src) = spec.source_of(&svc.name) else {
            continue;
        };
        match out
            .iter_mut()
            .find(|l| l.repository == src.repository && l.commit == src.commit)
        {
            Some(line) => line.services.push(&svc.name),
            None => out.push(SourceLine {
                repository: &src.repository,
                commit: &src.commit,
                run_url: src.run_url.as_deref(),
                services: vec![&svc.name],
            }),
        }
    }
    out
}

/// One status per (commit, context, state): services sharing a commit share one
/// status whose description names each of them, so none overwrites another.
fn status_effects(
    s: &Subject<'_>,
    wanted: &[(String, NotificationKind)],
) -> Result<Vec<Effect>, PlanError> {
    let p = s.promotion;
    let policy = &s.env.spec.notifications.commit_status;
    let mut groups: Vec<(String, String, String, NotificationKind, Vec<String>)> = Vec::new();
    for (service, success) in wanted {
        let Some(src) = p.spec.source_of(service) else {
            continue;
        };
        let context = expand(&policy.context, service, &p.spec.environment);
        match groups.iter_mut().find(|(r, sha, c, ok, _)| {
            *r == src.repository && *sha == src.commit && *c == context && ok == success
        }) {
            Some((.., services)) => services.push(service.clone()),
            None => groups.push((
                src.repository.clone(),
                src.commit.clone(),
                context,
                *success,
                vec![service.clone()],
            )),
        }
    }
    groups
        .into_iter()
        .map(|(repo, sha, context, kind, services)| {
            let repo = RepoRef::parse(&repo).map_err(|e| e.to_string())?;
            let pairs: Vec<(&str, &str)> = services
                .iter()
                .map(|name| {
                    let value = p
                        .spec
                        .services
                        .iter()
                        .find(|v| &v.name == name)
                        .map(|v| v.value())
                        .unwrap_or_default();
                    (name.as_str(), value)
                })
                .collect();
            let first = services.first().cloned().unwrap_or_default();
            let successor_url = s.successor.and_then(|n| n.by.pull_request_url.clone());
            let (state, description, target_url) = match kind {
                NotificationKind::SupersededStatus => (
                    StatusState::Error,
                    plan::superseded_description(
                        &pairs,
                        &p.spec.environment,
                        s.successor
                            .map(|n| n.by.promotion.as_str())
                            .unwrap_or_default(),
                    ),
                    successor_url,
                ),
                _ => {
                    let success = kind == NotificationKind::SuccessStatus;
                    (
                        if success {
                            StatusState::Success
                        } else {
                            StatusState::Failure
                        },
                        plan::status_description(&pairs, &p.spec.environment, success, s.reason),
                        policy
                            .target_url
                            .as_deref()
                            .map(|u| expand(u, &first, &p.spec.environment)),
                    )
                }
            };
            Ok(Effect::PostStatus {
                kind,
                repo: repo.clone(),
                sha: sha.clone(),
                status: CommitStatus {
                    state,
                    context,
                    description,
                    target_url,
                },
                services,
            })
        })
        .collect()
}

/// One release per source repository, at the commit of its first service.
fn release(s: &Subject<'_>) -> Result<Vec<Effect>, PlanError> {
    let p = s.promotion;
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let pr_url = s
        .status
        .pull_request
        .as_ref()
        .map(|pr| pr.url.as_str())
        .filter(|u| !u.is_empty());
    let mut repos: Vec<(&str, &str)> = Vec::new();
    for src in p.spec.sources() {
        if !repos.iter().any(|(r, _)| *r == src.repository) {
            repos.push((&src.repository, &src.commit));
        }
    }
    repos
        .into_iter()
        .map(|(repo, commit)| {
            let note = ReleaseNote {
                tag: plan::release_tag(
                    &p.spec.environment,
                    &ns,
                    &name,
                    p.metadata.uid.as_deref().unwrap_or_default(),
                ),
                target_commitish: commit.to_owned(),
                name: format!(
                    "{} deployed to {}",
                    plan::summary(&p.spec),
                    p.spec.environment
                ),
                body: plan::release_body(&p.spec, &ns, &name, pr_url),
            };
            let repo = RepoRef::parse(repo).map_err(|e| e.to_string())?;
            Ok(Effect::CreateRelease { repo, note })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::promotion::PullRequestStatus;

    fn promotion() -> Promotion {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion",
            "metadata": { "name": "api-to-production", "namespace": "team", "uid": "u1" },
            "spec": { "environment": "production",
                      "source": { "repository": "acme/api", "commit": "0123456789abcdef0123456789abcdef01234567" },
                      "services": [{ "name": "api", "version": "v2" }] }
        }))
        .expect("a Promotion")
    }

    fn environment() -> Environment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Environment",
            "metadata": { "name": "production", "namespace": "team" },
            "spec": { "gitops": { "repository": "acme/gitops",
                                  "target": { "file": "envs/{environment}/{service}.yaml", "yamlPath": "image.tag" } },
                      "github": { "secretRef": { "name": "gh" } } }
        }))
        .expect("an Environment")
    }

    #[test]
    fn at_synced_the_commit_status_goes_first_and_every_report_is_recorded_ahead() {
        let (p, env) = (promotion(), environment());
        let status = PromotionStatus {
            pull_request: Some(PullRequestStatus {
                number: 7,
                ..Default::default()
            }),
            ..Default::default()
        };
        let subject = Subject {
            promotion: &p,
            env: &env,
            status: &status,
            prepared: None,
            adopted: None,
            reason: "every Application is Synced and Healthy at the merged revision",
            notes: &[],
            successor: None,
            applications: &[],
        };
        let actions = [
            Action::CommentResult,
            Action::PostStatus {
                service: "api".into(),
                success: true,
            },
            Action::CreateRelease,
        ];
        let effects = build(&actions, &subject).expect("effects");
        let names: Vec<&str> = effects.iter().map(Effect::name).collect();
        assert_eq!(
            names,
            [
                "post commit status",
                "comment on pull request",
                "create release"
            ]
        );
        let records: Vec<_> = effects.iter().map(Effect::records).collect();
        assert_eq!(
            records,
            [
                Some((NotificationKind::SuccessStatus, vec![Some("api")])),
                Some((NotificationKind::ResultComment, vec![None])),
                Some((NotificationKind::Release, vec![None])),
            ]
        );
    }
}
