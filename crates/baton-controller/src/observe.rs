//! Observe: everything a decision needs, read from Kubernetes and GitHub, returned as
//! [`Seen`] (typed by phase). Only reads: gates and rules live in [`crate::machine`].
//! Problems the user must fix become [`Blocker`]s (shown as conditions); anything else
//! is an error that is retried.

use std::sync::Arc;

use baton_api::application::{ApplicationSpec, ApplicationStatus};
use baton_api::duration;
use baton_api::promotion::{
    ApplicationObservation, Phase, Promotion, PromotionStatus, WindowOverride,
};
use baton_api::{Application, Environment};
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
    let envs: Api<Environment> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(env) = envs.get_opt(&p.spec.environment).await? else {
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
        env: Some(env.clone()),
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
            pr_opened(&*gh, &repo, &status, successor, hold).await?
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
    let envs: Api<Environment> = Api::namespaced(ctx.client.clone(), ns);
    let Some(env) = envs.get_opt(&p.spec.environment).await? else {
        return Ok(Observation::seen(Seen::Nothing));
    };
    let Ok((gh, version)) = ctx.github_for(ns, &env).await else {
        return Ok(Observation::seen(Seen::Nothing));
    };
    Ok(Observation {
        env: Some(env),
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

/// Source repositories, an upstream cycle, a newer Promotion replacing this one, the
/// queue, the windows and the upstream gate (with its soak time), in that order.
async fn pending_gates(
    p: &Promotion,
    ctx: &Context,
    ns: &str,
    env: &Environment,
    pol: &Policy,
    now: Timestamp,
    o: &mut Observation,
) -> Result<Option<Seen>, Error> {
    let blocked = |b| Ok(Some(Seen::Blocked(b)));
    if let Some(src) = p
        .spec
        .sources()
        .into_iter()
        .find(|s| !gates::source_allowed(&env.spec.source_repositories, &s.repository))
    {
        return blocked(Blocker::SourceNotAllowed(format!(
            "source repository {} is not in Environment {:?} spec.sourceRepositories ({}): Baton will not post statuses or releases there; add it to the list or fix the Promotion's source",
            src.repository,
            p.spec.environment,
            env.spec.source_repositories.join(", ")
        )));
    }
    let envs: Api<Environment> = Api::namespaced(ctx.client.clone(), ns);
    let chain = upstream_chain(&envs, env).await?;
    if let Some(cycle) = pipeline::cycle(&chain) {
        return blocked(Blocker::UpstreamCycle(format!(
            "the Environments' spec.upstream links form a cycle ({cycle}): no promotion to {:?} can be gated; fix spec.upstream",
            p.spec.environment
        )));
    }
    let promotions = ctx.promotions(ns).await?;
    let all: Vec<&Promotion> = promotions.iter().map(AsRef::as_ref).collect();
    if let Some(successor) = gates::superseded_by(p, &all, pol.queue) {
        return Ok(Some(Seen::Superseded {
            successor,
            pr_open: false,
        }));
    }
    if let Some(b) = gates::queue(p, &all, pol.queue) {
        return blocked(b);
    }
    let records = env
        .status
        .as_ref()
        .map(|s| s.services.as_slice())
        .unwrap_or_default();
    if let Some(b) = rollback::check_targets(p, records) {
        return blocked(b);
    }
    let versions_blocked = rollback::blocked(&p.spec.environment, &all);
    if let Some(b) = rollback::gate(p, &versions_blocked) {
        return blocked(b);
    }
    if let Some(rb) = &p.spec.rollback {
        // A rollback is what you reach for when production breaks: no gate holds it.
        o.notes.push(rollback_note(p, rb));
        return Ok(None);
    }
    match windows::check(p, &env.spec.windows, now) {
        windows::Outcome::Open => {}
        windows::Outcome::Closed(b) => return blocked(b),
        windows::Outcome::Overridden(ov) => {
            o.notes.push(windows::note(&ov));
            o.window_override = Some(ov);
        }
    }
    o.notes.extend(upstream_note(p, &all));
    let Some(upstream) = env.spec.upstream.as_deref() else {
        return Ok(None);
    };
    let Some(up_env) = chain.get(1).filter(|e| e.name_any() == upstream) else {
        return blocked(Blocker::UpstreamNotReady(format!(
            "upstream Environment {upstream:?} not found in namespace {ns}"
        )));
    };
    let mut apps = Vec::new();
    for app in plan::applications(&p.spec.services, upstream, &up_env.spec) {
        ctx.watch_application(&app.namespace, &app.name, ObjectRef::from_obj(p));
        let api: Api<Application> = Api::namespaced(ctx.client.clone(), &app.namespace);
        let status = api.get_opt(&app.name).await?.and_then(|a| a.status);
        apps.push(upstream_app(app.service, app.name, status.as_ref()));
    }
    Ok(gates::upstream(p, upstream, &all, &apps, pol.soak, now).map(Seen::Blocked))
}

/// An upstream Application as the gates read it: Synced and Healthy now, and since when
/// Healthy (Argo CD records each health transition).
pub fn upstream_app(
    service: String,
    name: String,
    status: Option<&ApplicationStatus>,
) -> UpstreamApp {
    let healthy = status.is_some_and(|s| {
        s.sync.as_ref().is_some_and(|x| x.status == "Synced")
            && s.health.as_ref().is_some_and(|h| h.status == "Healthy")
    });
    let healthy_since = status
        .and_then(|s| s.health.as_ref())
        .filter(|_| healthy)
        .and_then(|h| h.last_transition_time.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok());
    UpstreamApp {
        service,
        name,
        healthy,
        healthy_since,
    }
}

/// `env`, its upstream, that one's upstream... as far as they exist, stopping at the
/// first repeat (so a cycle shows as a repeated name).
pub async fn upstream_chain(
    envs: &Api<Environment>,
    env: &Environment,
) -> Result<Vec<Environment>, Error> {
    let mut chain = vec![env.clone()];
    while let Some(next) = chain.last().and_then(|e| e.spec.upstream.clone()) {
        if chain.iter().any(|e| e.name_any() == next) || chain.len() > 64 {
            chain.push(Environment::new(&next, env.spec.clone()));
            break;
        }
        match envs.get_opt(&next).await? {
            Some(e) => chain.push(e),
            None => break,
        }
    }
    Ok(chain)
}

/// The PR paragraph of a rollback: what, why, before and after.
fn rollback_note(p: &Promotion, rb: &baton_api::promotion::RollbackSpec) -> String {
    let of = rb
        .of
        .as_deref()
        .map(|o| format!(" of Promotion `{o}`"))
        .unwrap_or_default();
    let lines: Vec<String> = p
        .spec
        .services
        .iter()
        .map(|s| {
            let before = rb
                .from
                .iter()
                .find(|f| f.name == s.name)
                .map(|f| f.value().to_owned())
                .unwrap_or_else(|| "(unknown)".into());
            format!("- {}: `{before}` -> `{}`", s.name, s.value())
        })
        .collect();
    format!(
        "**Rollback**{of} in **{}**: {}\n\n{}\n\nAs a rollback it skips the upstream gate, soak time and windows; the versions it removes stay blocked in {} until unblocked (`baton unblock`).",
        p.spec.environment,
        rb.reason,
        lines.join("\n"),
        p.spec.environment
    )
}

/// For an automatic Promotion: where it came from, with links to the upstream PRs.
fn upstream_note(p: &Promotion, all: &[&Promotion]) -> Option<String> {
    let from = gates::promoted_from(p)?;
    let names = p
        .annotations()
        .get(baton_api::ANNOTATION_UPSTREAM_PROMOTIONS)?;
    let ns = p.namespace().unwrap_or_default();
    let links: Vec<String> = names
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| {
            let pr = all
                .iter()
                .find(|q| q.name_any() == n)
                .and_then(|q| q.status.as_ref())
                .and_then(|s| s.pull_request.as_ref())
                .filter(|pr| pr.number > 0)
                .map(|pr| format!(" ([#{}]({}))", pr.number, pr.url))
                .unwrap_or_default();
            format!("`{ns}/{n}`{pr}")
        })
        .collect();
    Some(format!(
        "**Promoted automatically** from **{from}**: these versions are Synced and Healthy there (Promotion {}).",
        links.join(", ")
    ))
}

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

/// PROpened: the PR's state (a verified webhook's Merged/Closed is confirmed with a
/// conditional GET before it counts) and, while open, the reviews.
async fn pr_opened<G: Provider>(
    gh: &G,
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
    // Always a conditional GET (free when unchanged): a webhook only wakes the
    // reconcile, it never moves the phase by itself.
    let found = gh.observe(repo, pr.number).await?;
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
    let review = match state {
        // Reviews are polled conditionally too: unchanged, they cost nothing.
        PrState::Open => Some(gh.review_decision(repo, pr.number).await?),
        _ => None,
    };
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

/// Merged: every Application, against what its service needs.
async fn merged<G: Provider>(
    p: &Promotion,
    ctx: &Context,
    gh: &G,
    env: &Environment,
    status: &PromotionStatus,
    now: Timestamp,
) -> Result<Seen, Error> {
    let merge = status
        .pull_request
        .as_ref()
        .and_then(|pr| pr.merge_commit.clone())
        .unwrap_or_default();
    let base = status.base_commit.clone().unwrap_or_default();
    let repo = RepoRef::parse(&env.spec.gitops.repository)?;
    let mut apps = Vec::new();
    for app in plan::applications(&p.spec.services, &p.spec.environment, &env.spec) {
        ctx.watch_application(&app.namespace, &app.name, ObjectRef::from_obj(p));
        let need = if status.unchanged_services.contains(&app.service) && !base.is_empty() {
            Need::Unchanged { commit: &base }
        } else {
            Need::Changed { merge: &merge }
        };
        apps.push(observe_app(ctx, gh, &repo, &app, need, &status.applications, now).await?);
    }
    Ok(Seen::Applications(apps))
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

async fn observe_app<G: Provider>(
    ctx: &Context,
    gh: &G,
    repo: &RepoRef,
    app: &AppRef,
    need: Need<'_>,
    previous: &[ApplicationObservation],
    now: Timestamp,
) -> Result<AppSeen, Error> {
    let api: Api<Application> = Api::namespaced(ctx.client.clone(), &app.namespace);
    let found = api.get_opt(&app.name).await?;
    let before = previous.iter().find(|o| o.service == app.service);
    let mut record = ApplicationObservation {
        service: app.service.clone(),
        namespace: app.namespace.clone(),
        name: app.name.clone(),
        ..ApplicationObservation::default()
    };
    let view = |state| AppView {
        service: app.service.clone(),
        state,
    };
    let Some(found) = found else {
        record.observed_at = stamp(before, &record, now);
        return Ok(AppSeen {
            view: view(AppState::Missing),
            record,
        });
    };
    let status = found.status.clone().unwrap_or_default();
    let target = need.commit();
    let mut state = if target.is_empty() {
        AppState::NotAtTarget {
            detail: "merge commit unknown".into(),
        }
    } else {
        let reaches = reaches(gh, repo, target, &found.spec, &status).await?;
        health::interpret(
            Some(&found.spec),
            Some(&status),
            &repo.path(),
            need,
            &reaches,
        )
    };
    if let AppState::Degraded { message } = &mut state
        && message.is_empty()
    {
        *message = degraded_cause(ctx, &status).await;
    }
    record.sync_status = status.sync.as_ref().map(|s| s.status.clone());
    record.health_status = status.health.as_ref().map(|h| h.status.clone());
    record.revision = status.synced_revisions().first().map(|r| (*r).to_owned());
    record.generation = found.metadata.generation;
    record.at_target = matches!(
        state,
        AppState::Ready { .. } | AppState::Degraded { .. } | AppState::Progressing { .. }
    );
    if matches!(state, AppState::Degraded { .. }) {
        let since = before.and_then(|o| o.degraded_since.clone());
        record.degraded_since = Some(since.unwrap_or(Time(now)));
    }
    record.observed_at = stamp(before, &record, now);
    Ok(AppSeen {
        view: view(state),
        record,
    })
}

/// The observation time moves only when something else changed, so an unchanged
/// Application does not cost a status write on every look.
fn stamp(
    before: Option<&ApplicationObservation>,
    record: &ApplicationObservation,
    now: Timestamp,
) -> Option<Time> {
    match before {
        Some(b)
            if ApplicationObservation {
                observed_at: None,
                ..b.clone()
            } == *record =>
        {
            b.observed_at.clone()
        }
        _ => Some(Time(now)),
    }
}

/// Why an Application is Degraded when Argo CD does not say (v3 leaves
/// `status.health.message` empty): the `Progressing` or `Available` condition of a
/// Deployment it manages, e.g. `ReplicaSet "api-7758d486d8" has timed out progressing.`
async fn degraded_cause(ctx: &Context, status: &ApplicationStatus) -> String {
    for r in status
        .resources
        .iter()
        .filter(|r| r.kind == "Deployment" && r.group == "apps")
    {
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &r.namespace);
        let Ok(Some(d)) = api.get_opt(&r.name).await else {
            continue;
        };
        let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
        // Progressing says why (a timed-out ReplicaSet); Available only that it is not.
        let failed = |kind: &str| {
            conditions
                .iter()
                .find(|c| c.status == "False" && c.type_ == kind)
        };
        if let Some(c) = failed("Progressing").or_else(|| failed("Available")) {
            let message = c.message.clone().unwrap_or_default();
            return format!("Deployment {}: {message}", r.name);
        }
    }
    String::new()
}

/// Ancestry answers for every revision the Application reports.
async fn reaches<G: Provider>(
    gh: &G,
    repo: &RepoRef,
    target: &str,
    spec: &ApplicationSpec,
    status: &ApplicationStatus,
) -> Result<Reaches, Error> {
    let gitops = repo.path();
    let synced = status.synced_revisions();
    let mut revisions: Vec<String> = health::gitops_revisions(Some(spec), &synced, &gitops)
        .into_iter()
        .map(str::to_owned)
        .collect();
    // The same revisions the health rules judge: ancestry is asked only for those.
    revisions.extend(health::gitops_operation_revisions(
        Some(spec),
        status,
        &gitops,
    ));
    let mut out = Reaches::new();
    for rev in revisions {
        // Only full SHAs are compared; a chart version never reaches the compare API.
        if rev == target || !health::is_sha(&rev) || out.contains_key(&rev) {
            continue;
        }
        let answer = match gh.contains(repo, target, &rev).await {
            Ok(a) => a,
            Err(e) if e.status() == Some(404) => false,
            Err(e) => return Err(e.into()),
        };
        out.insert(rev, answer);
    }
    Ok(out)
}
