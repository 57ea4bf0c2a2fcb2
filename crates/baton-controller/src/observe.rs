//! Observe: everything a decision needs, read from Kubernetes and GitHub. Problems
//! the user must fix become [`Blocker`]s (shown as conditions), anything else is an
//! error that is retried.

use std::sync::Arc;

use baton_api::application::ApplicationStatus;
use baton_api::duration;
use baton_api::promotion::{ApplicationObservation, Phase, Promotion};
use baton_api::{Application, Environment};
use baton_github::pr_body::ServiceChange;
use baton_github::{
    Ancestry, BranchHead, FileChange, Files, GitHub, GitHubError, PrState, PullRequest,
    PullRequests, RepoRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::context::{ConnectError, Context};
use crate::decide::{AppView, Blocker, Policy};
use crate::error::Error;
use crate::health::{self, AppState, Reaches};
use crate::plan::{self, AppRef};

/// A prepared change: the base commit and every file's new content.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub base: BranchHead,
    pub files: Vec<FileChange>,
    pub services: Vec<ServiceChange>,
}

/// What one reconcile saw.
#[derive(Default)]
pub struct Observation {
    pub env: Option<Environment>,
    pub policy: Option<Policy>,
    pub blocker: Option<Blocker>,
    pub pull_request: Option<PrState>,
    /// A PR found by its head branch (adopted after a restart).
    pub found_pr: Option<PullRequest>,
    pub prepared: Option<Prepared>,
    pub already_applied: Option<String>,
    pub review: Option<baton_github::ReviewDecision>,
    pub apps: Vec<(AppView, ApplicationObservation)>,
    pub github: Option<Arc<GitHub>>,
}

/// The Environment's policy, or why it is unusable.
fn policy(env: &Environment) -> Result<Policy, String> {
    let parse = |field: &str, v: &str| {
        duration::parse(v).map_err(|e| format!("Environment spec.{field}: {e}"))
    };
    Ok(Policy {
        sync_timeout: parse("syncTimeout", &env.spec.sync_timeout)?,
        degraded_grace: parse("degradedGracePeriod", &env.spec.degraded_grace_period)?,
        release: env.spec.notifications.release,
        commit_status: env.spec.notifications.commit_status.enabled,
    })
}

pub async fn observe(p: &Promotion, ctx: &Context, now: Timestamp) -> Result<Observation, Error> {
    let ns = p.namespace().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_default();
    let mut o = Observation::default();
    if phase.is_terminal() {
        return Ok(o);
    }
    let envs: Api<Environment> = Api::namespaced(ctx.client.clone(), &ns);
    o.env = envs.get_opt(&p.spec.environment).await?;
    let Some(env) = o.env.clone() else {
        o.blocker = Some(Blocker::EnvironmentNotFound(format!(
            "Environment {:?} not found in namespace {ns}: create it or fix spec.environment",
            p.spec.environment
        )));
        return Ok(o);
    };
    match policy(&env) {
        Ok(pol) => o.policy = Some(pol),
        Err(m) => {
            o.blocker = Some(Blocker::InvalidSpec(m));
            return Ok(o);
        }
    }
    let repo = RepoRef::parse(&env.spec.gitops.repository)?;

    if phase == Phase::Pending {
        if let Some(b) = queue_blocker(p, ctx, &ns).await? {
            o.blocker = Some(b);
            return Ok(o);
        }
        if let Some(b) = upstream_blocker(p, ctx, &ns, &env).await? {
            o.blocker = Some(b);
            return Ok(o);
        }
    }
    let gh = match ctx.github_for(&ns, &env).await {
        Ok(gh) => gh,
        Err(ConnectError::Blocked(b)) if phase == Phase::Pending => {
            o.blocker = Some(b);
            return Ok(o);
        }
        Err(ConnectError::Blocked(b)) => return Err(Error::Blocked(b.message().to_owned())),
        Err(ConnectError::Transient(e)) => return Err(e),
    };
    o.github = Some(gh.clone());

    match phase {
        Phase::Pending => {
            // A PR number of 0 means an earlier attempt may have opened it: look it up.
            let branch = status.pull_request.as_ref().map(|pr| pr.branch.clone());
            let found = match branch {
                Some(b) => gh.find_by_head(&repo, &b).await?,
                None => None,
            };
            if let Some(found) = found {
                o.pull_request = Some(found.state.clone());
                o.found_pr = Some(found);
                return Ok(o);
            }
            let files = match plan::files(&p.spec, &p.spec.environment, &env.spec) {
                Ok(f) => f,
                Err(m) => {
                    o.blocker = Some(Blocker::InvalidSpec(m));
                    return Ok(o);
                }
            };
            match prepare(&gh, &repo, &env.spec.gitops.branch, &files, p).await {
                Ok(prep) if prep.files.is_empty() => o.already_applied = Some(prep.base.sha),
                Ok(prep) => o.prepared = Some(prep),
                Err(PrepareError::Blocked(m)) => o.blocker = Some(Blocker::Manifest(m)),
                Err(PrepareError::GitHub(e)) => return Err(e.into()),
            }
        }
        Phase::PrOpened => {
            if let Some(pr) = status.pull_request.as_ref().filter(|pr| pr.number > 0) {
                o.pull_request = match ctx.webhook_state(&repo.path(), pr.number) {
                    Some(state @ (PrState::Merged { .. } | PrState::Closed)) => Some(state),
                    _ => Some(gh.observe(&repo, pr.number).await?.state),
                };
                // Reviews are polled conditionally too: unchanged, they cost nothing.
                if o.pull_request == Some(PrState::Open) {
                    o.review = Some(gh.review_decision(&repo, pr.number).await?);
                }
            }
        }
        Phase::Merged => {
            let merge = status
                .pull_request
                .as_ref()
                .and_then(|pr| pr.merge_commit.clone())
                .unwrap_or_default();
            let refs = plan::applications(&p.spec.services, &p.spec.environment, &env.spec);
            for app in refs {
                ctx.watch_application(&app.namespace, &app.name, ObjectRef::from_obj(p));
                o.apps.push(
                    observe_app(ctx, &gh, &repo, &app, &merge, &status.applications, now).await?,
                );
            }
        }
        _ => {}
    }
    Ok(o)
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
async fn prepare(
    gh: &GitHub,
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

async fn observe_app(
    ctx: &Context,
    gh: &GitHub,
    repo: &RepoRef,
    app: &AppRef,
    merge: &str,
    previous: &[ApplicationObservation],
    now: Timestamp,
) -> Result<(AppView, ApplicationObservation), Error> {
    let api: Api<Application> = Api::namespaced(ctx.client.clone(), &app.namespace);
    let found = api.get_opt(&app.name).await?;
    let mut obs = ApplicationObservation {
        service: app.service.clone(),
        namespace: app.namespace.clone(),
        name: app.name.clone(),
        observed_at: Some(Time(now)),
        ..ApplicationObservation::default()
    };
    let Some(found) = found else {
        return Ok((
            AppView {
                service: app.service.clone(),
                state: AppState::Missing,
            },
            obs,
        ));
    };
    let status = found.status.clone().unwrap_or_default();
    let reaches = reaches(gh, repo, merge, &status).await?;
    let state = if merge.is_empty() {
        AppState::NotAtTarget {
            detail: "merge commit unknown".into(),
        }
    } else {
        health::interpret(Some(&status), merge, &reaches)
    };
    obs.sync_status = status.sync.as_ref().map(|s| s.status.clone());
    obs.health_status = status.health.as_ref().map(|h| h.status.clone());
    obs.revision = status.synced_revisions().first().map(|r| (*r).to_owned());
    obs.generation = found.metadata.generation;
    obs.at_target = matches!(
        state,
        AppState::Ready { .. } | AppState::Degraded { .. } | AppState::Progressing { .. }
    );
    if matches!(state, AppState::Degraded { .. }) {
        let since = previous
            .iter()
            .find(|o| o.service == app.service)
            .and_then(|o| o.degraded_since.clone());
        obs.degraded_since = Some(since.unwrap_or(Time(now)));
    }
    Ok((
        AppView {
            service: app.service.clone(),
            state,
        },
        obs,
    ))
}

/// Ancestry answers for every revision the Application reports.
async fn reaches(
    gh: &GitHub,
    repo: &RepoRef,
    merge: &str,
    status: &ApplicationStatus,
) -> Result<Reaches, Error> {
    let mut revisions: Vec<String> = status
        .synced_revisions()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(r) = status
        .operation_state
        .as_ref()
        .and_then(|o| o.sync_result.as_ref())
    {
        revisions.extend(r.revision.iter().cloned());
        revisions.extend(r.revisions.iter().cloned());
    }
    let mut out = Reaches::new();
    for rev in revisions {
        // Only full SHAs can be compared; anything else (a Helm chart version) is no proof.
        if merge.is_empty()
            || rev == merge
            || rev.len() != 40
            || !rev.chars().all(|c| c.is_ascii_hexdigit())
            || out.contains_key(&rev)
        {
            continue;
        }
        let answer = match gh.contains(repo, merge, &rev).await {
            Ok(a) => a,
            Err(e) if e.status() == Some(404) => false,
            Err(e) => return Err(e.into()),
        };
        out.insert(rev, answer);
    }
    Ok(out)
}

/// Two Promotions never race on one environment and service: they queue in creation
/// order. The older one holds the lane until it reaches a terminal phase (or is deleted).
async fn queue_blocker(p: &Promotion, ctx: &Context, ns: &str) -> Result<Option<Blocker>, Error> {
    let api: Api<Promotion> = Api::namespaced(ctx.client.clone(), ns);
    let all = api.list(&Default::default()).await?;
    let key = |q: &Promotion| {
        (
            q.metadata.creation_timestamp.clone().map(|t| t.0),
            q.name_any(),
        )
    };
    let mine = key(p);
    let services: Vec<&str> = p.spec.services.iter().map(|s| s.name.as_str()).collect();
    let ahead = all
        .items
        .iter()
        .filter(|q| q.name_any() != p.name_any() && q.spec.environment == p.spec.environment)
        .filter(|q| q.metadata.deletion_timestamp.is_none())
        .filter(|q| {
            !q.status
                .as_ref()
                .and_then(|s| s.phase)
                .unwrap_or_default()
                .is_terminal()
        })
        .filter(|q| key(q) < mine)
        .find_map(|q| {
            q.spec
                .services
                .iter()
                .find(|s| services.contains(&s.name.as_str()))
                .map(|s| (q, s.name.clone()))
        });
    Ok(ahead.map(|(q, service)| {
        Blocker::Queued(format!(
            "waiting for Promotion {:?} ({}), which also promotes {service} to {}; promotions to the same environment and service run one at a time, oldest first",
            q.name_any(),
            q.status.as_ref().and_then(|s| s.phase).unwrap_or_default(),
            p.spec.environment
        ))
    }))
}

/// With `spec.upstream`, every version must already run, Synced and Healthy, in the
/// upstream environment: its most recent Synced Promotion of the service carried this
/// version, and the service's upstream Application is Synced and Healthy now.
async fn upstream_blocker(
    p: &Promotion,
    ctx: &Context,
    ns: &str,
    env: &Environment,
) -> Result<Option<Blocker>, Error> {
    let Some(upstream) = env.spec.upstream.as_deref() else {
        return Ok(None);
    };
    let envs: Api<Environment> = Api::namespaced(ctx.client.clone(), ns);
    let Some(up_env) = envs.get_opt(upstream).await? else {
        return Ok(Some(Blocker::UpstreamNotReady(format!(
            "upstream Environment {upstream:?} not found in namespace {ns}"
        ))));
    };
    let promos: Api<Promotion> = Api::namespaced(ctx.client.clone(), ns);
    let all = promos.list(&Default::default()).await?;
    let mut missing = Vec::new();
    for svc in &p.spec.services {
        let latest = all
            .items
            .iter()
            .filter(|q| {
                q.spec.environment == upstream
                    && q.status.as_ref().and_then(|s| s.phase) == Some(Phase::Synced)
            })
            .filter_map(|q| {
                q.spec
                    .services
                    .iter()
                    .find(|s| s.name == svc.name)
                    .map(|s| {
                        (
                            q.status
                                .as_ref()
                                .and_then(|st| st.phase_times.synced.clone())
                                .map(|t| t.0),
                            s.value().to_owned(),
                        )
                    })
            })
            .max_by_key(|(at, _)| *at);
        let version_ok = latest.as_ref().is_some_and(|(_, v)| v == svc.value());
        let app = plan::applications(std::slice::from_ref(svc), upstream, &up_env.spec).remove(0);
        ctx.watch_application(&app.namespace, &app.name, ObjectRef::from_obj(p));
        let apps: Api<Application> = Api::namespaced(ctx.client.clone(), &app.namespace);
        let healthy = apps
            .get_opt(&app.name)
            .await?
            .and_then(|a| a.status)
            .is_some_and(|s| {
                s.sync.as_ref().is_some_and(|x| x.status == "Synced")
                    && s.health.as_ref().is_some_and(|h| h.status == "Healthy")
            });
        if !version_ok || !healthy {
            let why = match (&latest, version_ok) {
                (None, _) => format!("no Synced promotion of {} to {upstream} yet", svc.name),
                (Some((_, v)), false) => {
                    format!("{upstream} runs {}:{}", svc.name, plan::short_value(v))
                }
                _ => format!("{} in {upstream} is not Synced and Healthy", app.name),
            };
            missing.push(format!(
                "{}:{} ({why})",
                svc.name,
                plan::short_value(svc.value())
            ));
        }
    }
    Ok((!missing.is_empty()).then(|| {
        Blocker::UpstreamNotReady(format!(
            "not yet Synced and Healthy in {upstream}: {}",
            missing.join(", ")
        ))
    }))
}
