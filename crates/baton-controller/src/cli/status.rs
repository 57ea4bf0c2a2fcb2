//! `baton status`, the pure part: which Applications and GitOps values to read, the
//! board built from the objects (pipeline order, cells, marks), its table, JSON and
//! YAML renderings, and the exit code. No client, no clock read: [`super::status_io`]
//! does the I/O.
//!
//! A cell is one service in one Environment: the version the operator last proved
//! Synced there (`status.services`), what Argo CD runs now, the Promotions of it on
//! their way, and (with `--git`) the value in the GitOps files. Marks say where these
//! disagree.

use std::collections::{BTreeMap, BTreeSet};

use baton_api::conditions::{self as c, TYPE_READY};
use baton_api::environment::ServiceRecord;
use baton_api::template::expand;
use baton_api::{Application, Environment, Phase, Promotion};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};

use crate::machine::health;
use crate::machine::plan::{self, short_value};

/// Exit code: the board was printed; with `--check`, nothing is marked.
pub const EXIT_OK: u8 = 0;
/// Exit code: with `--check`, at least one cell is marked.
pub const EXIT_DRIFT: u8 = 1;
/// Exit code: the board could not be built (no cluster, no namespace, no access).
pub const EXIT_ERROR: u8 = 2;

/// Shown after `baton status --help`.
pub const AFTER_HELP: &str = "\
Each cell is one service in one Environment (columns in pipeline order, upstream first):
  api-v1.2.0 (3d)          the version last proven Synced there by a Promotion, and since when
  Synced/Healthy @1a2b3c4  what Argo CD runs now: sync/health and the synced GitOps revision
  -> api-v1.3.0 PROpened   a Promotion of it on its way (PROpened, Merged, or Pending as
                           pending, queued, held or blocked, with its reason)

Marks (!N, explained under the table):
  drift: cluster     a version is recorded but its Application is not Synced and Healthy
                     at a revision
  drift: git         with --git: the GitOps file holds another value (or cannot be read)
  not run upstream   the upstream never ran this version (its history, or any Synced Promotion there)
                     Environment

Exit codes:
  0  printed; with --check: no cell is marked
  1  with --check: at least one cell is marked
  2  the board could not be built (no kubeconfig, unreachable API server, namespace
     not found or without Environments, access denied, GitHub unreadable with --git)

Reads Environments, Promotions and Argo CD Applications; with --git also each
Environment's GitHub Secret (with your kubeconfig) and its GitOps files through GitHub.";

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One table: services x Environments, marks explained under it.
    #[default]
    Table,
    /// The board as JSON (field names documented in the README).
    Json,
    /// The same as YAML.
    Yaml,
}

/// Arguments of `baton status`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct StatusArgs {
    /// Namespace of the Environments [default: the kubeconfig context's namespace, else
    /// "default"]
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Also read each Environment's GitOps files through GitHub (with its GitHub
    /// Secret) and mark values that differ from the recorded version.
    #[arg(long)]
    pub git: bool,
    /// Exit 1 when any cell is marked (drift), 0 otherwise.
    #[arg(long)]
    pub check: bool,
    /// Speak plain HTTP to the Environments' `https://` GitHub API URLs. For tests
    /// against a local fake GitHub only.
    #[arg(long, env = "BATON_GITHUB_PLAIN_HTTP", default_value_t = false, action = clap::ArgAction::Set, hide = true)]
    pub github_plain_http: bool,
}

// ---------------------------------------------------------------------------
// The board: what `-o json` and `-o yaml` print. Field names are part of the
// interface (README "`baton status`"); absent optional fields mean "none".

/// Every Environment of a namespace and every service seen in them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    pub namespace: String,
    /// `staging -> production`: each path from a root Environment to a last one.
    pub pipeline: String,
    /// Whether the GitOps files were read (`--git`).
    pub git: bool,
    /// Columns, in pipeline order: roots first, then their downstreams; ties by name.
    pub environments: Vec<EnvironmentColumn>,
    /// Rows, by name.
    pub services: Vec<ServiceRow>,
    /// How many marks the cells carry; `--check` exits 1 when this is not 0.
    pub marks: usize,
}

/// One Environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentColumn {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// What is wrong with its place in the pipeline (upstream missing, a cycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One service across the Environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRow {
    pub name: String,
    /// One per Environment, in the order of [`Board::environments`].
    pub cells: Vec<Cell>,
}

/// One service in one Environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub environment: String,
    /// The version last proven Synced there (the Environment's `status.services`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Recorded>,
    /// The service's Argo CD Application there, as it is now.
    pub application: ApplicationView,
    /// Promotions of the service to the Environment that have not ended, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<InFlight>,
    /// With `--git`, for a recorded version: the value in the GitOps file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<Mark>,
}

/// A version as the operator recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    /// Version or digest.
    pub version: String,
    /// The Promotion that proved it Synced.
    pub promotion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
    /// Since when its Application has been Synced and Healthy, as the operator last saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<String>,
    /// `owner/name@sha` it was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An Argo CD Application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationView {
    pub namespace: String,
    pub name: String,
    pub found: bool,
    /// `status.sync.status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// `status.health.status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The synced revision of its GitOps source (the first, for several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Synced and Healthy at a revision.
    pub synced_and_healthy: bool,
}

/// Where a Promotion on its way stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Pending, nothing holds it (yet).
    Pending,
    /// Pending behind an older Promotion of the same service (`Queued`).
    Queued,
    /// Pending until a time: a closed window or a soak (`WindowClosed`, `Soaking`).
    Held,
    /// Pending on something to fix or to happen first (`UpstreamNotReady`, a missing
    /// Secret or file, an invalid spec...).
    Blocked,
    /// PROpened: the pull request waits for a reviewer.
    Open,
    /// Merged: Argo CD is rolling it out.
    Merged,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Queued => "queued",
            State::Held => "held",
            State::Blocked => "blocked",
            State::Open => "PROpened",
            State::Merged => "Merged",
        }
    }
}

/// A Promotion of the service to the Environment that has not ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    pub promotion: String,
    /// `Pending`, `PROpened` or `Merged`.
    pub phase: String,
    pub state: State,
    /// The version it carries for this service.
    pub version: String,
    /// Its `Ready` condition's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
}

/// The value in the GitOps file, read at the head of the Environment's branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `None` when the path is not set in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why the value could not be read (file not found, malformed YAML...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Kinds of disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarkKind {
    /// A version is recorded, but its Application is not Synced and Healthy at a revision.
    ClusterDrift,
    /// The GitOps file holds another value than the recorded version (or cannot be read).
    GitDrift,
    /// The version never ran (Synced) in the upstream Environment.
    NotRunUpstream,
}

impl MarkKind {
    /// How the table names it.
    pub fn label(self) -> &'static str {
        match self {
            MarkKind::ClusterDrift => "drift: cluster",
            MarkKind::GitDrift => "drift: git",
            MarkKind::NotRunUpstream => "not run upstream",
        }
    }
}

/// A disagreement in one cell, and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    pub kind: MarkKind,
    pub message: String,
}

// ---------------------------------------------------------------------------
// Inputs.

/// An Application to read: (namespace, name).
pub type AppKey = (String, String);

/// What was read of one service's GitOps value in one Environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRead {
    /// The value at the path (`None`: the path is not set).
    Value(Option<String>),
    /// The file or path the Environment names cannot be read (what to fix).
    Problem(String),
}

/// Everything the board is built from.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub namespace: &'a str,
    pub environments: &'a [Environment],
    pub promotions: &'a [Promotion],
    /// The Applications that exist, by (namespace, name).
    pub applications: &'a BTreeMap<AppKey, Application>,
    /// With `--git`: per Environment, per recorded service, the GitOps value.
    pub git: Option<&'a BTreeMap<String, BTreeMap<String, GitRead>>>,
}

/// Why the board cannot be printed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatusError {
    #[error(
        "--namespace {0:?}: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
    )]
    Namespace(String),
    #[error("cannot render the board as {format}: {message}")]
    Render {
        format: &'static str,
        message: String,
    },
}

/// A namespace from `-n` or the kubeconfig must be a DNS label.
pub fn check_namespace(ns: &str) -> Result<(), StatusError> {
    if super::promote::is_dns_label(ns) {
        Ok(())
    } else {
        Err(StatusError::Namespace(ns.to_owned()))
    }
}

fn phase(p: &Promotion) -> Phase {
    p.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

/// Promotions to `environment` that have not ended.
fn in_flight<'a>(
    promotions: &'a [Promotion],
    environment: &'a str,
) -> impl Iterator<Item = &'a Promotion> {
    promotions
        .iter()
        .filter(move |p| p.spec.environment == environment && !phase(p).is_terminal())
}

/// The rows: every service recorded in an Environment or on its way to one, by name.
pub fn services(environments: &[Environment], promotions: &[Promotion]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for env in environments {
        let name = env.name_any();
        for r in env.status.iter().flat_map(|s| &s.services) {
            out.insert(r.name.clone());
        }
        for p in in_flight(promotions, &name) {
            out.extend(p.spec.services.iter().map(|s| s.name.clone()));
        }
    }
    out.into_iter().collect()
}

/// Where `service`'s Application in `env` is, from `spec.applications`.
pub fn application_of(env: &Environment, service: &str) -> AppKey {
    (
        env.spec.applications.namespace.clone(),
        expand(&env.spec.applications.name, service, &env.name_any()),
    )
}

/// Every Application a board of these objects shows, once each.
pub fn applications_to_read(environments: &[Environment], promotions: &[Promotion]) -> Vec<AppKey> {
    let services = services(environments, promotions);
    let mut out = BTreeSet::new();
    for env in environments {
        for s in &services {
            out.insert(application_of(env, s));
        }
    }
    out.into_iter().collect()
}

/// The services whose GitOps value `--git` reads in `env`: those with a recorded
/// version (without one there is nothing to compare, and a service not deployed there
/// may well have no file).
pub fn recorded(env: &Environment) -> Vec<&ServiceRecord> {
    env.status.iter().flat_map(|s| &s.services).collect()
}

/// Environment indexes in pipeline order, each with its depth (`None` in a cycle).
fn pipeline_order(environments: &[Environment]) -> Vec<(usize, Option<usize>)> {
    let names: Vec<String> = environments.iter().map(ResourceExt::name_any).collect();
    let index = |name: &str| names.iter().position(|n| n == name);
    let depth = |start: usize| {
        let mut seen = vec![start];
        let mut at = start;
        while let Some(up) = environments[at].spec.upstream.as_deref().and_then(index) {
            if seen.contains(&up) {
                return None;
            }
            seen.push(up);
            at = up;
        }
        Some(seen.len() - 1)
    };
    let mut order: Vec<(usize, Option<usize>)> =
        (0..environments.len()).map(|i| (i, depth(i))).collect();
    // Cycles last: they have no root to start from.
    order.sort_by(|(a, da), (b, db)| {
        (da.is_none(), da, &names[*a]).cmp(&(db.is_none(), db, &names[*b]))
    });
    order
}

/// `dev -> staging -> production, staging -> qa`: each path from a root to an
/// Environment nothing is downstream of.
fn pipeline_text(columns: &[EnvironmentColumn]) -> String {
    let is_upstream = |name: &str| columns.iter().any(|c| c.upstream.as_deref() == Some(name));
    let mut paths = Vec::new();
    for last in columns.iter().filter(|c| !is_upstream(&c.name)) {
        let mut path = vec![last.name.as_str()];
        let mut at = last;
        while let Some(up) = at
            .upstream
            .as_deref()
            .and_then(|u| columns.iter().find(|c| c.name == u))
        {
            if path.contains(&up.name.as_str()) {
                break;
            }
            path.push(&up.name);
            at = up;
        }
        path.reverse();
        paths.push(path.join(" -> "));
    }
    // Environments in a cycle are all upstream of another: name them too.
    for c in columns {
        if !paths.iter().any(|p| p.split(" -> ").any(|n| n == c.name)) {
            paths.push(format!("{} (cycle)", c.name));
        }
    }
    paths.join(", ")
}

/// `2026-11-23T10:00:05Z`.
fn time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> String {
    super::promote::rfc3339(t.0)
}

fn application_view(key: &AppKey, app: Option<&Application>, gitops_repo: &str) -> ApplicationView {
    let status = app.and_then(|a| a.status.as_ref());
    let sync = status
        .and_then(|s| s.sync.as_ref())
        .map(|s| s.status.clone())
        .filter(|s| !s.is_empty());
    let health = status
        .and_then(|s| s.health.as_ref())
        .map(|h| h.status.clone())
        .filter(|s| !s.is_empty());
    let revisions = status.map(|s| s.synced_revisions()).unwrap_or_default();
    // The GitOps source's revision: a chart version of a multi-source Application is
    // not what Baton promotes.
    let revision = health::gitops_revisions(app.map(|a| &a.spec), &revisions, gitops_repo)
        .first()
        .map(|r| (*r).to_owned());
    let synced_and_healthy = sync.as_deref() == Some("Synced")
        && health.as_deref() == Some("Healthy")
        && revision.is_some();
    ApplicationView {
        namespace: key.0.clone(),
        name: key.1.clone(),
        found: app.is_some(),
        sync,
        health,
        revision,
        synced_and_healthy,
    }
}

fn in_flight_view(p: &Promotion, service: &str) -> Option<InFlight> {
    let svc = p.spec.services.iter().find(|s| s.name == service)?;
    let status = p.status.as_ref();
    let reason = status
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == TYPE_READY))
        .map(|c| c.reason.clone())
        .filter(|r| !r.is_empty());
    let phase = phase(p);
    let state = match phase {
        Phase::PrOpened => State::Open,
        Phase::Merged => State::Merged,
        _ => match reason.as_deref() {
            Some(c::REASON_QUEUED) => State::Queued,
            Some(c::REASON_WINDOW_CLOSED | c::REASON_SOAKING) => State::Held,
            // A gate or a problem to fix (UpstreamNotReady, SecretNotFound, ...).
            Some(r) if c::PROBLEM_REASONS.contains(&r) => State::Blocked,
            _ => State::Pending,
        },
    };
    Some(InFlight {
        promotion: p.name_any(),
        phase: phase.as_str().to_owned(),
        state,
        version: svc.value().to_owned(),
        reason,
        pull_request: status
            .and_then(|s| s.pull_request.as_ref())
            .map(|pr| pr.url.clone())
            .filter(|u| !u.is_empty()),
    })
}

/// Whether any Synced Promotion to `upstream` carried `version` of `service` (not only
/// the latest: a version may have run there before a newer one replaced it).
fn ran_in(promotions: &[Promotion], upstream: &str, service: &str, version: &str) -> bool {
    promotions.iter().any(|p| {
        p.spec.environment == upstream
            && phase(p) == Phase::Synced
            && p.spec
                .services
                .iter()
                .any(|s| s.name == service && s.value() == version)
    })
}

/// `Synced/Healthy @1a2b3c4`, `OutOfSync/Progressing`, `no Application`.
fn app_text(app: &ApplicationView) -> String {
    if !app.found {
        return "no Application".to_owned();
    }
    let mut text = format!(
        "{}/{}",
        app.sync.as_deref().unwrap_or("Unknown"),
        app.health.as_deref().unwrap_or("Unknown")
    );
    if let Some(rev) = &app.revision {
        text.push_str(" @");
        text.push_str(short_rev(rev));
    }
    text
}

fn short_rev(rev: &str) -> &str {
    rev.get(..7).unwrap_or(rev)
}

/// What the upstream Environment ran: its Synced Promotions and its recorded history.
#[derive(Clone, Copy)]
struct UpstreamRuns<'a> {
    promotions: &'a [Promotion],
    records: &'a [baton_api::environment::ServiceRecord],
}

fn marks(
    env: &Environment,
    service: &str,
    recorded: Option<&Recorded>,
    app: &ApplicationView,
    git: Option<&GitView>,
    on_the_way: &[InFlight],
    upstream: UpstreamRuns<'_>,
) -> Vec<Mark> {
    let Some(rec) = recorded else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let environment = env.name_any();
    let version = short_value(&rec.version);
    if !app.synced_and_healthy {
        let state = if app.found {
            format!(
                "Application {}/{} is {}",
                app.namespace,
                app.name,
                app_text(app)
            )
        } else {
            format!("Application {}/{} not found", app.namespace, app.name)
        };
        let mut message = format!(
            "{state}, but {version} is recorded Synced (promotion {})",
            rec.promotion
        );
        // Expected for a while after a merge; still a mark, since a rollout that
        // never ends looks the same.
        if let Some(p) = on_the_way.iter().find(|p| p.state == State::Merged) {
            message.push_str(&format!(
                "; promotion {} is Merged and rolling out {}",
                p.promotion,
                short_value(&p.version)
            ));
        }
        out.push(Mark {
            kind: MarkKind::ClusterDrift,
            message,
        });
    }
    if let Some(g) = git {
        let differs = match (&g.problem, &g.value) {
            (Some(problem), _) => Some(format!("cannot read it: {problem}")),
            (None, Some(v)) if *v == rec.version => None,
            (None, Some(v)) => Some(format!("{} holds {}", file_of(g), short_value(v))),
            (None, None) => Some(format!("{} does not set it", file_of(g))),
        };
        if let Some(what) = differs {
            out.push(Mark {
                kind: MarkKind::GitDrift,
                message: format!("{what}, but {version} is recorded Synced"),
            });
        }
    }
    // The upstream's own history (kept in its status) counts too, so deleting old
    // Promotions there does not make production look like it skipped a stage.
    let in_history = upstream.records.iter().any(|r| {
        r.name == service
            && (r.version == rec.version || r.history.iter().any(|h| h.version == rec.version))
    });
    if let Some(up) = env.spec.upstream.as_deref()
        && !in_history
        && !ran_in(upstream.promotions, up, service, &rec.version)
    {
        out.push(Mark {
            kind: MarkKind::NotRunUpstream,
            message: format!(
                "{version} runs in {environment}, but no Synced Promotion to {up} ever carried it"
            ),
        });
    }
    out
}

fn file_of(g: &GitView) -> &str {
    g.file.as_deref().unwrap_or("the GitOps file")
}

/// The GitOps file a service's version is written to in `env`.
fn git_file(env: &Environment, service: &str) -> Option<String> {
    let spec = baton_api::PromotionSpec {
        environment: env.name_any(),
        source: None,
        services: vec![baton_api::promotion::ServiceVersion {
            name: service.to_owned(),
            version: Some("probe".into()),
            digest: None,
            source: None,
        }],
        rollback: None,
    };
    plan::files(&spec, &spec.environment, &env.spec)
        .ok()?
        .into_iter()
        .next()
        .map(|f| f.path)
}

/// The board of one namespace.
pub fn board(s: &Snapshot<'_>) -> Board {
    let order = pipeline_order(s.environments);
    let envs: Vec<&Environment> = order.iter().map(|(i, _)| &s.environments[*i]).collect();
    let names: Vec<String> = envs.iter().map(|e| e.name_any()).collect();
    let environments: Vec<EnvironmentColumn> = order
        .iter()
        .map(|(i, depth)| {
            let env = &s.environments[*i];
            let upstream = env.spec.upstream.clone();
            let problem = match (&upstream, depth) {
                (Some(_), None) => Some("spec.upstream links form a cycle".to_owned()),
                (Some(up), _) if !names.contains(up) => {
                    Some(format!("upstream Environment {up:?} not found"))
                }
                _ => None,
            };
            EnvironmentColumn {
                name: env.name_any(),
                upstream,
                problem,
            }
        })
        .collect();
    let mut rows = Vec::new();
    for service in services(s.environments, s.promotions) {
        let mut cells = Vec::new();
        for env in &envs {
            let environment = env.name_any();
            let recorded = env
                .status
                .iter()
                .flat_map(|st| &st.services)
                .find(|r| r.name == service)
                .map(|r| Recorded {
                    version: r.version.clone(),
                    promotion: r.promotion.clone(),
                    synced_at: r.synced_at.as_ref().map(time),
                    healthy_since: r.healthy_since.as_ref().map(time),
                    source: r
                        .source
                        .as_ref()
                        .map(|src| format!("{}@{}", src.repository, src.commit)),
                });
            let key = application_of(env, &service);
            let application =
                application_view(&key, s.applications.get(&key), &env.spec.gitops.repository);
            let mut promotions: Vec<&Promotion> = in_flight(s.promotions, &environment).collect();
            promotions.sort_by_key(|p| {
                (
                    p.metadata.creation_timestamp.clone().map(|t| t.0),
                    p.name_any(),
                )
            });
            let promotions: Vec<InFlight> = promotions
                .into_iter()
                .filter_map(|p| in_flight_view(p, &service))
                .collect();
            let git = recorded.as_ref().and_then(|_| {
                let read = s.git?.get(&environment)?.get(&service)?;
                let (value, problem) = match read {
                    GitRead::Value(v) => (v.clone(), None),
                    GitRead::Problem(m) => (None, Some(m.clone())),
                };
                Some(GitView {
                    file: git_file(env, &service),
                    value,
                    problem,
                })
            });
            let marks = marks(
                env,
                &service,
                recorded.as_ref(),
                &application,
                git.as_ref(),
                &promotions,
                UpstreamRuns {
                    promotions: s.promotions,
                    records: env
                        .spec
                        .upstream
                        .as_deref()
                        .and_then(|u| s.environments.iter().find(|e| e.name_any() == u))
                        .and_then(|e| e.status.as_ref())
                        .map(|st| st.services.as_slice())
                        .unwrap_or_default(),
                },
            );
            cells.push(Cell {
                environment,
                recorded,
                application,
                promotions,
                git,
                marks,
            });
        }
        rows.push(ServiceRow {
            name: service,
            cells,
        });
    }
    let marks = rows
        .iter()
        .flat_map(|r| &r.cells)
        .map(|c| c.marks.len())
        .sum();
    Board {
        namespace: s.namespace.to_owned(),
        pipeline: pipeline_text(&environments),
        git: s.git.is_some(),
        environments,
        services: rows,
        marks,
    }
}

/// The process exit code for `board`.
pub fn exit_code(board: &Board, check: bool) -> u8 {
    if check && board.marks > 0 {
        EXIT_DRIFT
    } else {
        EXIT_OK
    }
}

/// `45s`, `12m`, `5h`, `3d`, like `kubectl get`'s AGE.
pub fn age(from: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(from).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The lines of one cell in the table; marks are numbered from `next`.
fn cell_lines(
    cell: &Cell,
    now: Timestamp,
    next: &mut usize,
    notes: &mut Vec<String>,
    service: &str,
) -> Vec<String> {
    let mut first = match &cell.recorded {
        Some(r) => {
            let mut t = short_value(&r.version).to_owned();
            if let Some(at) = r
                .synced_at
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
            {
                t.push_str(&format!(" ({})", age(at, now)));
            }
            t
        }
        None => "-".to_owned(),
    };
    for m in &cell.marks {
        first.push_str(&format!(" !{next}"));
        notes.push(format!(
            "!{next}  {service} in {}, {}: {}",
            cell.environment,
            m.kind.label(),
            m.message
        ));
        *next += 1;
    }
    let mut lines = vec![first];
    // An Application nobody recorded a version for and that does not exist says nothing.
    if cell.application.found || cell.recorded.is_some() {
        lines.push(app_text(&cell.application));
    }
    for p in &cell.promotions {
        let mut t = format!("-> {} {}", short_value(&p.version), p.state.as_str());
        if let (State::Queued | State::Held | State::Blocked, Some(reason)) = (p.state, &p.reason) {
            t.push_str(&format!(": {reason}"));
        }
        if let Some(n) = p.pull_request.as_deref().and_then(|u| u.rsplit('/').next()) {
            t.push_str(&format!(" #{n}"));
        }
        lines.push(t);
    }
    lines
}

/// The table: a header, one block of lines per service, then one line per mark.
pub fn table(board: &Board, now: Timestamp) -> String {
    let mut header = vec!["SERVICE".to_owned()];
    header.extend(board.environments.iter().map(|e| e.name.to_uppercase()));
    let mut rows: Vec<Vec<Vec<String>>> = Vec::new();
    let mut next = 1;
    let mut notes = Vec::new();
    for row in &board.services {
        let mut cells = vec![vec![row.name.clone()]];
        for cell in &row.cells {
            cells.push(cell_lines(cell, now, &mut next, &mut notes, &row.name));
        }
        rows.push(cells);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .flatten()
                .chain(header.get(i))
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |parts: &[&str]| {
        let mut out = String::new();
        for (i, p) in parts.iter().enumerate() {
            out.push_str(p);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(p.chars().count());
            out.push_str(&" ".repeat(pad + 3));
        }
        out.trim_end().to_owned()
    };
    let mut out = Vec::new();
    out.push(format!("NAMESPACE  {}", board.namespace));
    out.push(format!("PIPELINE   {}", board.pipeline));
    for e in &board.environments {
        if let Some(p) = &e.problem {
            out.push(format!("           {}: {p}", e.name));
        }
    }
    out.push(String::new());
    let head: Vec<&str> = header.iter().map(String::as_str).collect();
    out.push(line(&head));
    for cells in &rows {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let parts: Vec<&str> = cells
                .iter()
                .map(|c| c.get(k).map_or("", String::as_str))
                .collect();
            out.push(line(&parts));
        }
    }
    if board.services.is_empty() {
        out.push("(no service recorded or on its way in these Environments)".to_owned());
    }
    if !notes.is_empty() {
        out.push(String::new());
        out.extend(notes);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The board in the format asked for.
pub fn render(board: &Board, format: Format, now: Timestamp) -> Result<String, StatusError> {
    match format {
        Format::Table => Ok(table(board, now)),
        Format::Json => serde_json::to_string_pretty(board)
            .map(|mut t| {
                t.push('\n');
                t
            })
            .map_err(|e| StatusError::Render {
                format: "JSON",
                message: e.to_string(),
            }),
        Format::Yaml => serde_saphyr::to_string(board).map_err(|e| StatusError::Render {
            format: "YAML",
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
