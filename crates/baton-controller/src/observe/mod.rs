//! Observe: everything a decision needs, read from Kubernetes and GitHub, returned as
//! [`Seen`] (typed by phase). Only reads: gates and rules live in [`crate::machine`].
//! Problems the user must fix become [`Blocker`]s (shown as conditions); anything else
//! is an error that is retried.
//!
//! - [`pending`]: the gates of a Pending promotion (source, cycle, superseded, queue,
//!   rollback blocks, windows, upstream and soak) and the PR notes they add;
//! - [`apps`]: a Merged promotion's Applications, against what each service needs.

use std::sync::Arc;

use baton_api::Environment;
use baton_api::application::{ApplicationSpec, ApplicationStatus};
use baton_api::duration;
use baton_api::promotion::{
    ApplicationObservation, Phase, Promotion, PromotionStatus, WindowOverride,
};
use baton_github::pr_body::ServiceChange;
use baton_github::{FileChange, GitHub, GitHubError, PrState, Provider, RepoRef};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::context::{ConnectError, Context};
use crate::error::Error;
use crate::machine::gates::{self, UpstreamApp};
use crate::machine::health::{self, AppState, Need, Reaches};
use crate::machine::plan::{self, AppRef};
use crate::machine::{
    AppSeen, AppView, Blocker, MergeWindow, Policy, Prepared, Seen, Successor, pipeline, rollback,
    windows,
};

/// What one reconcile saw.
pub struct Observation {
    pub env: Option<Environment>,
    pub policy: Option<Policy>,
    /// The GitHub connection, when one was needed and made.
    pub github: Option<Arc<GitHub>>,
    /// The version of the credentials it was made with.
    pub credentials: Option<String>,
    pub seen: Seen,
    /// Paragraphs for the PR body (where an automatic promotion came from, a window override).
    pub notes: Vec<String>,
    /// A break-glass override of a closed window, used by this reconcile.
    pub window_override: Option<WindowOverride>,
}

impl Observation {
    fn seen(seen: Seen) -> Self {
        Observation {
            env: None,
            policy: None,
            github: None,
            credentials: None,
            seen,
            notes: vec![],
            window_override: None,
        }
    }
}

/// The Environment's policy, or why it is unusable.
pub fn policy(env: &Environment) -> Result<Policy, String> {
    let parse = |field: &str, v: &str| {
        duration::parse(v).map_err(|e| format!("Environment spec.{field}: {e}"))
    };
    crate::machine::windows::validate(env).map_err(|e| format!("Environment {e}"))?;
    Ok(Policy {
        sync_timeout: parse("syncTimeout", &env.spec.sync_timeout)?,
        degraded_grace: parse("degradedGracePeriod", &env.spec.degraded_grace_period)?,
        release: env.spec.notifications.release,
        commit_status: env.spec.notifications.commit_status.enabled,
        soak: match &env.spec.soak_time {
            Some(t) => parse("soakTime", t)?,
            None => std::time::Duration::ZERO,
        },
        queue: env.spec.queue,
        deployments: env.spec.notifications.deployments,
    })
}

pub async fn observe(p: &Promotion, ctx: &Context, now: Timestamp) -> Result<Observation, Error> {
    let ns = p.namespace().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    if phase.is_terminal() {
        return terminal(p, ctx, &ns, &status).await;
    }
    let Some(env) = ctx.environment(&ns, &p.spec.environment).await? else {
        return Ok(Observation::seen(Seen::Blocked(
            Blocker::EnvironmentNotFound(format!(
                "Environment {:?} not found in namespace {ns}: create it or fix spec.environment",
                p.spec.environment
            )),
        )));
    };
    let pol = match policy(&env) {
        Ok(pol) => pol,
        Err(m) => return Ok(Observation::seen(Seen::Blocked(Blocker::InvalidSpec(m)))),
    };
    let mut o = Observation {
        env: Some((*env).clone()),
        policy: Some(pol.clone()),
        github: None,
        credentials: None,
        seen: Seen::Nothing,
        notes: vec![],
        window_override: None,
    };
    if phase == Phase::Pending
        && let Some(seen) = pending_gates(p, ctx, &ns, &env, &pol, now, &mut o).await?
    {
        o.seen = seen;
        return Ok(o);
    }
    let gh = match ctx.github_for(&ns, &env).await {
        Ok((gh, version)) => {
            o.credentials = Some(version);
            gh
        }
        Err(ConnectError::Blocked(b)) => {
            o.seen = Seen::Blocked(b);
            return Ok(o);
        }
        Err(ConnectError::Transient(e)) => return Err(e),
    };
    o.github = Some(gh.clone());
    let repo = RepoRef::parse(&env.spec.gitops.repository)?;
    o.seen = match phase {
        Phase::Pending => pending(p, &*gh, &repo, &env, &status).await?,
        Phase::PrOpened => {
            let promotions = ctx.promotions(&ns).await?;
            let all: Vec<&Promotion> = promotions.iter().map(AsRef::as_ref).collect();
            let successor = gates::superseded_by(p, &all, pol.queue);
            // A rollback skips windows, and its auto-merge is spec.rollback.autoMerge.
            let auto_merge = env.spec.pull_request.auto_merge && p.spec.rollback.is_none();
            let hold = auto_merge.then(|| match windows::check(p, &env.spec.windows, now) {
                windows::Outcome::Closed(b) => Some(b),
                _ => None,
            });
            pr_opened(p, ctx, &gh, &repo, &status, successor, hold).await?
        }
        Phase::Merged => merged(p, ctx, &*gh, &env, &status, now).await?,
        _ => Seen::Nothing,
    };
    Ok(o)
}

/// A terminal promotion reads nothing, unless GitHub refused one of its notifications:
/// then the credentials are looked at, since new ones deserve another try.
async fn terminal(
    p: &Promotion,
    ctx: &Context,
    ns: &str,
    status: &PromotionStatus,
) -> Result<Observation, Error> {
    if !status.notifications.iter().any(|n| n.failed.is_some()) {
        return Ok(Observation::seen(Seen::Nothing));
    }
    let Some(env) = ctx.environment(ns, &p.spec.environment).await? else {
        return Ok(Observation::seen(Seen::Nothing));
    };
    let Ok((gh, version)) = ctx.github_for(ns, &env).await else {
        return Ok(Observation::seen(Seen::Nothing));
    };
    Ok(Observation {
        env: Some(Arc::unwrap_or_clone(env)),
        policy: None,
        github: Some(gh),
        credentials: Some(version.clone()),
        seen: Seen::Retry {
            credentials: version,
        },
        notes: vec![],
        window_override: None,
    })
}

mod apps;
mod pending;

use apps::merged;
use pending::pending_gates;
pub use pending::{upstream_app, upstream_chain};

/// Pending: this Promotion's PR if an earlier attempt opened it, else the prepared change.
async fn pending<G: Provider>(
    p: &Promotion,
    gh: &G,
    repo: &RepoRef,
    env: &Environment,
    status: &PromotionStatus,
) -> Result<Seen, Error> {
    // A PR number of 0 means an earlier attempt may have opened it: look it up, and
    // adopt it only if its marker names this very object.
    if let Some(pr) = status
        .pull_request
        .as_ref()
        .filter(|pr| !pr.branch.is_empty())
    {
        let uid = p.metadata.uid.as_deref().unwrap_or_default();
        if let Some(found) = gh.find_by_head(repo, &pr.branch, uid).await? {
            return Ok(Seen::Adopted(found));
        }
    }
    let files = match plan::files(&p.spec, &p.spec.environment, &env.spec) {
        Ok(f) => f,
        Err(m) => return Ok(Seen::Blocked(Blocker::InvalidSpec(m))),
    };
    Ok(
        match prepare(gh, repo, &env.spec.gitops.branch, &files, p).await {
            Ok(prep) if prep.files.is_empty() => Seen::AlreadyApplied {
                commit: prep.base.sha,
            },
            Ok(prep) => Seen::Prepared(prep),
            Err(PrepareError::Blocked(m)) => Seen::Blocked(Blocker::Manifest(m)),
            Err(PrepareError::GitHub(e)) => return Err(e.into()),
        },
    )
}

/// PROpened: the PR's state and reviews, from the batched poll ([`crate::prwatch`]);
/// read from GitHub when older than one poll interval (a webhook makes it older).
async fn pr_opened(
    p: &Promotion,
    ctx: &Context,
    gh: &Arc<GitHub>,
    repo: &RepoRef,
    status: &PromotionStatus,
    successor: Option<Successor>,
    hold: Option<Option<Blocker>>,
) -> Result<Seen, Error> {
    let Some(pr) = status.pull_request.as_ref().filter(|pr| pr.number > 0) else {
        return Ok(Seen::PullRequest {
            state: None,
            review: None,
            merge_window: None,
        });
    };
    let sources = p
        .spec
        .sources()
        .into_iter()
        .filter_map(|s| Some((RepoRef::parse(&s.repository).ok()?, s.commit.clone())))
        .collect();
    let found = ctx
        .prs
        .state(
            gh,
            repo,
            pr.number,
            ObjectRef::from_obj(p),
            sources,
            // The poller reads every PR once per interval; a reconcile reads only PRs
            // it missed (new, or marked stale by a webhook).
            ctx.config.max_requeue * 2,
        )
        .await?;
    let Some(found) = found else {
        return Ok(Seen::PullRequest {
            state: None,
            review: None,
            merge_window: None,
        });
    };
    let state = found.state.clone();
    // A merged PR is never superseded: its change is in Git already.
    if let Some(successor) = successor
        && !matches!(state, PrState::Merged { .. })
    {
        return Ok(Seen::Superseded {
            successor,
            pr_open: state == PrState::Open,
        });
    }
    let review = (state == PrState::Open).then_some(found.review);
    let merge_window = match (hold, found.node_id) {
        (Some(hold), Some(node_id)) => Some(MergeWindow {
            node_id,
            enabled: found.auto_merge_enabled,
            hold,
        }),
        _ => None,
    };
    Ok(Seen::PullRequest {
        state: Some(state),
        review,
        merge_window,
    })
}

enum PrepareError {
    Blocked(String),
    GitHub(GitHubError),
}

impl From<GitHubError> for PrepareError {
    fn from(e: GitHubError) -> Self {
        PrepareError::GitHub(e)
    }
}

/// Reads the files at the head of the base branch and applies every edit. Files
/// already holding the new versions are left out.
async fn prepare<G: Provider>(
    gh: &G,
    repo: &RepoRef,
    branch: &str,
    files: &[plan::FilePlan],
    p: &Promotion,
) -> Result<Prepared, PrepareError> {
    let base = match gh.branch_head(repo, branch).await {
        Ok(b) => b,
        Err(e) if e.status() == Some(404) => {
            return Err(PrepareError::Blocked(format!(
                "branch {branch:?} not found in {repo}: fix the Environment's spec.gitops.branch"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut changes = Vec::new();
    let mut services = Vec::new();
    for f in files {
        let Some(current) = gh.read_file(repo, &base.sha, &f.path).await? else {
            return Err(PrepareError::Blocked(format!(
                "{}: file not found in {repo} at {branch} ({}): fix the Environment's target file template",
                f.path,
                &base.sha[..base.sha.len().min(7)]
            )));
        };
        let mut text = current.content.clone();
        for (service, edit) in &f.edits {
            let from = baton_manifest::current_value(&f.path, &text, edit)
                .map_err(|e| PrepareError::Blocked(e.to_string()))?;
            text = baton_manifest::apply(&f.path, &text, edit)
                .map_err(|e| PrepareError::Blocked(e.to_string()))?;
            let to = p
                .spec
                .services
                .iter()
                .find(|s| &s.name == service)
                .map(|s| s.value().to_owned())
                .unwrap_or_default();
            services.push(ServiceChange {
                service: service.clone(),
                from,
                to,
                files: vec![f.path.clone()],
            });
        }
        if text != current.content {
            changes.push(FileChange {
                path: f.path.clone(),
                content: text,
                base_blob_sha: current.blob_sha,
            });
        }
    }
    Ok(Prepared {
        base,
        files: changes,
        services,
    })
}
