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

use super::{Action, Prepared, plan};

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
}

impl Effect {
    /// A short name for logs and Events.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::OpenPullRequest { .. } => "open pull request",
            Effect::CompletePullRequest { .. } => "complete pull request",
            Effect::ClosePullRequest { .. } => "close pull request",
            Effect::DeleteBranch { .. } => "delete branch",
            Effect::PostStatus { .. } => "post commit status",
            Effect::CreateRelease { .. } => "create release",
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
    let mut statuses: Vec<(String, bool)> = Vec::new();
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
            Action::PostStatus { service, success } => statuses.push((service.clone(), *success)),
            Action::CreateRelease => out.extend(release(s)?),
        }
    }
    let mut posts = status_effects(s, &statuses)?;
    // Statuses before the release, as decided.
    let at = out
        .iter()
        .position(|e| matches!(e, Effect::CreateRelease { .. }))
        .unwrap_or(out.len());
    let tail = out.split_off(at);
    out.append(&mut posts);
    out.extend(tail);
    Ok(out)
}

/// The PR policy of the Environment, for completing an adopted PR (no files, no text).
fn policy_only(s: &Subject<'_>, repo: RepoRef) -> PromotionChange {
    let env = &s.env.spec;
    PromotionChange {
        repo,
        base_branch: env.gitops.branch.clone(),
        head_branch: branch(s.promotion),
        commit_message: String::new(),
        files: vec![],
        title: String::new(),
        body: String::new(),
        labels: env.pull_request.labels.clone(),
        reviewers: env.pull_request.reviewers.clone(),
        team_reviewers: env.pull_request.team_reviewers.clone(),
        auto_merge: env.pull_request.auto_merge,
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
    };
    let change = PromotionChange {
        repo,
        base_branch: env.gitops.branch.clone(),
        head_branch: branch(p),
        commit_message: pr_body::commit_message(&text),
        files: prepared.files.clone(),
        title: pr_body::title(&text),
        body: pr_body::body(&text),
        labels: env.pull_request.labels.clone(),
        reviewers: env.pull_request.reviewers.clone(),
        team_reviewers: env.pull_request.team_reviewers.clone(),
        auto_merge: env.pull_request.auto_merge,
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
fn status_effects(s: &Subject<'_>, wanted: &[(String, bool)]) -> Result<Vec<Effect>, PlanError> {
    let p = s.promotion;
    let policy = &s.env.spec.notifications.commit_status;
    let mut groups: Vec<(String, String, String, bool, Vec<String>)> = Vec::new();
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
        .map(|(repo, sha, context, success, services)| {
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
            Ok(Effect::PostStatus {
                kind: if success {
                    NotificationKind::SuccessStatus
                } else {
                    NotificationKind::FailureStatus
                },
                repo: repo.clone(),
                sha: sha.clone(),
                status: CommitStatus {
                    state: if success {
                        StatusState::Success
                    } else {
                        StatusState::Failure
                    },
                    context,
                    description: plan::status_description(
                        &pairs,
                        &p.spec.environment,
                        success,
                        s.reason,
                    ),
                    target_url: policy
                        .target_url
                        .as_deref()
                        .map(|u| expand(u, &first, &p.spec.environment)),
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
