//! `baton promote`, the pure part: arguments, validation, the Promotion's name and
//! spec, the `--dry-run` YAML, `--wait` progress lines and exit codes. No client, no
//! clock read: [`super::promote_io`] does the I/O.
//!
//! Input is checked here with the CRD's own rules (hand-written: the crate has no
//! regex engine, and the unit tests compare these checks with the CRD's patterns), so
//! a CI job learns what is wrong before anything reaches the cluster.

use std::time::Duration;

use baton_api::conditions::TYPE_READY;
use baton_api::duration::InvalidDuration;
use baton_api::promotion::{ServiceVersion, SourceRef};
use baton_api::{Phase, Promotion, PromotionSpec};
use k8s_openapi::jiff::Timestamp;
use sha2::{Digest as _, Sha256};

/// Exit code: done (created, unchanged, printed; with `--wait`, Synced).
pub const EXIT_OK: u8 = 0;
/// Exit code: refused or failed (bad input, the API server said no, the promotion
/// ended Failed, Rejected or Superseded, or was deleted).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: `--timeout` passed while waiting.
pub const EXIT_TIMEOUT: u8 = 2;

/// Shown after `baton promote --help`: what scripts need to know.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  created, unchanged, or printed (--dry-run); with --wait: the promotion is Synced
  1  invalid arguments; the API server refused the Promotion; one of that name exists
     with a different request; with --wait: it ended Failed, Rejected or Superseded,
     or it was deleted
  2  with --wait: --timeout passed first

The name is derived from the request, so a retried CI job finds the Promotion it
created instead of creating a second one.

Example (GitHub Actions):
  baton promote -n syrf --environment staging api=api-v9.1.1 web=web-v5.0.1 \\
    --source \"$GITHUB_REPOSITORY@$GITHUB_SHA\" \\
    --run-url \"$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID\" \\
    --wait --timeout 30m";

/// Arguments of `baton promote`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct PromoteArgs {
    /// Namespace of the Promotion and its Environment [default: the kubeconfig
    /// context's namespace, else "default"]
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The Environment to promote to (same namespace).
    #[arg(long, value_name = "NAME")]
    pub environment: String,
    /// Services and the versions to deploy, in one pull request; a value starting
    /// with `sha256:` pins an image digest instead of a version.
    #[arg(value_name = "SERVICE=VERSION", required = true)]
    pub services: Vec<String>,
    /// The repository and full commit SHA the versions were built from; deploy
    /// statuses are posted there.
    #[arg(long, value_name = "OWNER/NAME@SHA")]
    pub source: String,
    /// Link to the CI run that asked for the promotion, shown in the pull request.
    #[arg(long, value_name = "URL")]
    pub run_url: Option<String>,
    /// Name of the Promotion [default: <environment>-<service>-<version>-<hash of the
    /// request>]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Print the Promotion as YAML and exit, without contacting the cluster.
    #[arg(long, conflicts_with = "wait")]
    pub dry_run: bool,
    /// Wait until the promotion ends, printing a line per phase change and the pull
    /// request's URL.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (e.g. 30m, 1h30m) [default: wait forever]
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub timeout: Option<String>,
}

/// Why the arguments were refused; each message names the argument and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromoteError {
    #[error("{0:?}: expected SERVICE=VERSION (e.g. api=api-v9.1.1) or SERVICE=sha256:<64 hex>")]
    ServiceArg(String),
    #[error("service name {0:?}: {LABEL_RULE}")]
    ServiceName(String),
    #[error(
        "version {version:?} of {service}: use letters, digits, '_', '.', '+' and '-', starting with a letter, digit or '_', at most 128 characters"
    )]
    Version { service: String, version: String },
    #[error(
        "digest {digest:?} of {service}: expected sha256: followed by 64 lowercase hex characters"
    )]
    Digest { service: String, digest: String },
    #[error("service {0:?} is given twice: give each service once")]
    DuplicateService(String),
    #[error("no SERVICE=VERSION given: name at least one service")]
    NoServices,
    #[error("{0} services given: a Promotion takes at most {MAX_SERVICES}")]
    TooManyServices(usize),
    #[error("--environment {0:?}: {LABEL_RULE}")]
    Environment(String),
    #[error("--namespace {0:?}: {LABEL_RULE}")]
    Namespace(String),
    #[error(
        "--name {0:?}: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
    )]
    Name(String),
    #[error("--source {0:?}: expected OWNER/NAME@SHA, e.g. camaradesuk/syrf@<full commit SHA>")]
    SourceFormat(String),
    #[error(
        "--source repository {0:?}: expected OWNER/NAME of letters, digits, '_', '.' and '-', at most 140 characters"
    )]
    Repository(String),
    #[error(
        "--source commit {0:?}: expected the full commit SHA, 40 (or 64) lowercase hex characters"
    )]
    Commit(String),
    #[error("--run-url {0:?}: expected an http:// or https:// URL of at most 2048 characters")]
    RunUrl(String),
    #[error("--timeout: {0}")]
    Timeout(InvalidDuration),
    #[error("cannot render the Promotion as YAML: {0}")]
    Yaml(String),
}

const LABEL_RULE: &str = "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
const MAX_SERVICES: usize = 50;
const MAX_NAME: usize = 253;

/// What `baton promote` will do, once the arguments are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The namespace given with `-n`; `None` means the kubeconfig's.
    pub namespace: Option<String>,
    pub name: String,
    pub spec: PromotionSpec,
    pub dry_run: bool,
    pub wait: bool,
    pub timeout: Option<Duration>,
}

/// Checks every argument and works out the Promotion; nothing is contacted.
pub fn plan(args: &PromoteArgs) -> Result<Plan, PromoteError> {
    if let Some(ns) = &args.namespace {
        check_namespace(ns)?;
    }
    let spec = spec(args)?;
    let name = match &args.name {
        Some(name) if is_dns_subdomain(name) => name.clone(),
        Some(name) => return Err(PromoteError::Name(name.clone())),
        None => derive_name(&spec),
    };
    let timeout = args
        .timeout
        .as_deref()
        .map(baton_api::duration::parse)
        .transpose()
        .map_err(PromoteError::Timeout)?;
    Ok(Plan {
        namespace: args.namespace.clone(),
        name,
        spec,
        dry_run: args.dry_run,
        wait: args.wait,
        timeout,
    })
}

/// A namespace from `-n` or the kubeconfig must be a DNS label.
pub fn check_namespace(ns: &str) -> Result<(), PromoteError> {
    if is_dns_label(ns) {
        Ok(())
    } else {
        Err(PromoteError::Namespace(ns.to_owned()))
    }
}

/// The spec the arguments ask for.
pub fn spec(args: &PromoteArgs) -> Result<PromotionSpec, PromoteError> {
    if !is_dns_label(&args.environment) {
        return Err(PromoteError::Environment(args.environment.clone()));
    }
    let mut services: Vec<ServiceVersion> = Vec::with_capacity(args.services.len());
    for arg in &args.services {
        let service = parse_service(arg)?;
        if services.iter().any(|s| s.name == service.name) {
            return Err(PromoteError::DuplicateService(service.name));
        }
        services.push(service);
    }
    if services.is_empty() {
        return Err(PromoteError::NoServices);
    }
    if services.len() > MAX_SERVICES {
        return Err(PromoteError::TooManyServices(services.len()));
    }
    let source = parse_source(&args.source, args.run_url.as_deref())?;
    Ok(PromotionSpec {
        environment: args.environment.clone(),
        source: Some(source),
        services,
        rollback: None,
    })
}

/// `api=api-v9.1.1` or `api=sha256:<64 hex>`.
pub fn parse_service(arg: &str) -> Result<ServiceVersion, PromoteError> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err(PromoteError::ServiceArg(arg.to_owned()));
    };
    if !is_dns_label(name) {
        return Err(PromoteError::ServiceName(name.to_owned()));
    }
    let (version, digest) = if value.starts_with("sha256:") {
        if !is_digest(value) {
            return Err(PromoteError::Digest {
                service: name.to_owned(),
                digest: value.to_owned(),
            });
        }
        (None, Some(value.to_owned()))
    } else {
        if !is_version(value) {
            return Err(PromoteError::Version {
                service: name.to_owned(),
                version: value.to_owned(),
            });
        }
        (Some(value.to_owned()), None)
    };
    Ok(ServiceVersion {
        name: name.to_owned(),
        version,
        digest,
        source: None,
    })
}

/// `owner/name@<sha>`, split at the last `@` (repository names have none).
pub fn parse_source(arg: &str, run_url: Option<&str>) -> Result<SourceRef, PromoteError> {
    let Some((repository, commit)) = arg.rsplit_once('@') else {
        return Err(PromoteError::SourceFormat(arg.to_owned()));
    };
    if !is_repository(repository) {
        return Err(PromoteError::Repository(repository.to_owned()));
    }
    if !is_commit(commit) {
        return Err(PromoteError::Commit(commit.to_owned()));
    }
    if let Some(url) = run_url
        && !is_run_url(url)
    {
        return Err(PromoteError::RunUrl(url.to_owned()));
    }
    Ok(SourceRef {
        repository: repository.to_owned(),
        commit: commit.to_owned(),
        run_url: run_url.map(str::to_owned),
    })
}

// The CRD's rules, by hand. Every allowed character is ASCII, so byte lengths are the
// character lengths the schema counts.

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_label_shape(s)
}

fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.first().is_some_and(inner)
        && b.last().is_some_and(inner)
        && b.iter().all(|c| inner(c) || *c == b'-')
}

/// A Kubernetes object name (DNS-1123 subdomain): dot-separated labels, at most 253.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= MAX_NAME && s.split('.').all(is_label_shape)
}

/// `^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`, 1 to 128 characters.
pub fn is_version(s: &str) -> bool {
    let b = s.as_bytes();
    let first = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    b.len() <= 128
        && b.first().is_some_and(first)
        && b.iter()
            .all(|c| first(c) || matches!(c, b'.' | b'+' | b'-'))
}

/// `^sha256:[a-f0-9]{64}$`.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && is_lower_hex(hex))
}

/// `baton_api::REPOSITORY_PATTERN` (`owner/name`), 3 to 140 characters.
pub fn is_repository(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    };
    (3..=140).contains(&s.len()) && s.split_once('/').is_some_and(|(o, n)| part(o) && part(n))
}

/// `^([0-9a-f]{40}|[0-9a-f]{64})$`.
pub fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && is_lower_hex(s)
}

/// `^https?://`, at most 2048 characters.
pub fn is_run_url(s: &str) -> bool {
    s.chars().count() <= 2048 && (s.starts_with("http://") || s.starts_with("https://"))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// `<environment>-<first service>-<its version>-<8 hex>`: readable in `kubectl get`,
/// and the same for the same request, so a retried CI job finds the Promotion it
/// created instead of making a second one. The hash covers everything that defines
/// the request (not the run URL: a re-run of a job may carry another one).
pub fn derive_name(spec: &PromotionSpec) -> String {
    let mut readable = spec.environment.clone();
    if let Some(first) = spec.services.first() {
        for part in [first.name.clone(), name_part(first)] {
            if !part.is_empty() {
                readable.push('-');
                readable.push_str(&part);
            }
        }
    }
    let hash = request_hash(spec);
    // Truncate the readable part, never the hash: the hash is what makes it unique.
    readable.truncate(MAX_NAME - hash.len() - 1);
    let readable = readable.trim_end_matches('-');
    format!("{readable}-{hash}")
}

/// A version as a name part; a digest as `sha256-` and its first 12 hex characters,
/// as image tools abbreviate it (the hash covers the whole digest).
fn name_part(service: &ServiceVersion) -> String {
    match (&service.version, &service.digest) {
        (Some(version), _) => sanitise(version),
        (None, Some(digest)) => sanitise(digest.get(..19).unwrap_or(digest)),
        (None, None) => String::new(),
    }
}

/// Lowercase; runs of anything but `[a-z0-9]` become one `-`; no `-` at either end.
fn sanitise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-').len();
    out.truncate(trimmed);
    out
}

/// The first 8 hex characters of SHA-256 over the request, written one field per line
/// (no validated value holds a newline, so the encoding is unambiguous).
pub fn request_hash(spec: &PromotionSpec) -> String {
    let mut text = format!("environment={}\n", spec.environment);
    for s in &spec.services {
        text.push_str(&format!("service={}\n", s.name));
        if let Some(v) = &s.version {
            text.push_str(&format!("version={v}\n"));
        }
        if let Some(d) = &s.digest {
            text.push_str(&format!("digest={d}\n"));
        }
        if let Some(src) = &s.source {
            text.push_str(&format!(
                "service-source={}@{}\n",
                src.repository, src.commit
            ));
        }
    }
    if let Some(src) = &spec.source {
        text.push_str(&format!("source={}@{}\n", src.repository, src.commit));
    }
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// How an existing Promotion's request differs from the one asked for, one entry per
/// field; empty when it is the same request. Run URLs are ignored, like in the name.
pub fn differences(wanted: &PromotionSpec, existing: &PromotionSpec) -> Vec<String> {
    let mut out = Vec::new();
    if wanted.environment != existing.environment {
        out.push(format!(
            "environment {} (asked: {})",
            existing.environment, wanted.environment
        ));
    }
    // What identifies a service's request: name, value, and its own source's commit.
    type ServiceKey<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);
    fn services(spec: &PromotionSpec) -> Vec<ServiceKey<'_>> {
        spec.services
            .iter()
            .map(|s| {
                let src = s
                    .source
                    .as_ref()
                    .map(|r| (r.repository.as_str(), r.commit.as_str()));
                (s.name.as_str(), s.value(), src)
            })
            .collect()
    }
    if services(wanted) != services(existing) {
        out.push(format!(
            "services {} (asked: {})",
            describe_services(existing),
            describe_services(wanted)
        ));
    }
    let source = |spec: &PromotionSpec| {
        spec.source
            .as_ref()
            .map(|s| format!("{}@{}", s.repository, s.commit))
    };
    if source(wanted) != source(existing) {
        let show = |s: Option<String>| s.unwrap_or_else(|| "none".to_owned());
        out.push(format!(
            "source {} (asked: {})",
            show(source(existing)),
            show(source(wanted))
        ));
    }
    out
}

/// `api=api-v9.1.1 web=sha256:…`, as on the command line.
fn describe_services(spec: &PromotionSpec) -> String {
    spec.services
        .iter()
        .map(|s| match &s.source {
            Some(src) => format!(
                "{}={} (from {}@{})",
                s.name,
                s.value(),
                src.repository,
                src.commit
            ),
            None => format!("{}={}", s.name, s.value()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Promotion object to create.
pub fn promotion(namespace: &str, name: &str, spec: PromotionSpec) -> Promotion {
    let mut p = Promotion::new(name, spec);
    p.metadata.namespace = Some(namespace.to_owned());
    p
}

/// `--dry-run` output: the object as `kubectl apply -f` takes it.
pub fn to_yaml(p: &Promotion) -> Result<String, PromoteError> {
    serde_saphyr::to_string(p).map_err(|e| PromoteError::Yaml(e.to_string()))
}

/// The `--wait` exit code of a Promotion in `phase`; `None` while it is under way.
/// Exhaustive on purpose: a new phase must be given a meaning here.
pub fn exit_code(phase: Phase) -> Option<u8> {
    match phase {
        Phase::Synced => Some(EXIT_OK),
        Phase::Failed | Phase::Rejected | Phase::Superseded => Some(EXIT_FAILED),
        Phase::Pending | Phase::PrOpened | Phase::Merged => None,
    }
}

/// `2026-11-23T10:00:05Z`, as the API writes times.
pub fn rfc3339(at: Timestamp) -> String {
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", at)
        .unwrap_or_else(|_| at.to_string())
}

/// `<time>  <Phase>  <Ready message>`, on one line.
pub fn phase_line(at: &str, phase: Phase, message: &str) -> String {
    let message = message.replace(['\r', '\n'], " ");
    format!("{at}  {:<10}  {message}", phase.as_str())
        .trim_end()
        .to_owned()
}

/// The `Ready` condition's reason and message, empty when there is none yet.
fn ready(p: &Promotion) -> (String, String) {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.r#type == TYPE_READY))
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// Synced: exit 0.
    Synced,
    /// Failed, Rejected or Superseded: exit 1, with why.
    Unsuccessful { phase: Phase, message: String },
}

/// What one look at the Promotion produced: lines to print, and whether it ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    pub lines: Vec<String>,
    pub end: Option<End>,
}

/// What `--wait` has already printed, so each phase and the PR URL appear once.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    phase: Option<Phase>,
    pull_request: Option<String>,
}

impl Progress {
    /// The phase last printed.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// Lines for what changed since the last look at `p`; `now` stands in for a phase
    /// time the status does not carry.
    pub fn observe(&mut self, p: &Promotion, now: Timestamp) -> Step {
        let mut step = Step::default();
        let Some(status) = p.status.as_ref() else {
            return step;
        };
        let Some(phase) = status.phase else {
            return step;
        };
        // Each line carries the time it is about; they are printed in that order, so a
        // first look at a finished Promotion ends with its final phase.
        let mut lines: Vec<(Timestamp, String)> = Vec::new();
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            let at = status.phase_times.get(phase).map_or(now, |t| t.0);
            lines.push((at, phase_line(&rfc3339(at), phase, &ready(p).1)));
        }
        if let Some(pr) = status.pull_request.as_ref().filter(|pr| !pr.url.is_empty())
            && self.pull_request.as_deref() != Some(pr.url.as_str())
        {
            self.pull_request = Some(pr.url.clone());
            let at = status.phase_times.pr_opened.as_ref().map_or(now, |t| t.0);
            lines.push((at, format!("{}  pull request {}", rfc3339(at), pr.url)));
        }
        // Stable: at the same second the phase comes before the URL.
        lines.sort_by_key(|(at, _)| *at);
        step.lines = lines.into_iter().map(|(_, line)| line).collect();
        step.end = match exit_code(phase) {
            Some(EXIT_OK) => Some(End::Synced),
            Some(_) => Some(End::Unsuccessful {
                phase,
                message: end_message(p, phase),
            }),
            None => None,
        };
        step
    }
}

/// Why a Promotion ended without deploying: the phase, the Ready reason and message,
/// and what replaced it.
fn end_message(p: &Promotion, phase: Phase) -> String {
    let (reason, message) = ready(p);
    let mut out = format!(
        "promotion {}/{} ended {phase}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    );
    for part in [reason, message] {
        if !part.is_empty() {
            out.push_str(": ");
            out.push_str(&part);
        }
    }
    if let Some(by) = p.status.as_ref().and_then(|s| s.superseded_by.as_ref()) {
        out.push_str(&format!("; superseded by promotion {}", by.promotion));
        if let Some(url) = &by.pull_request_url {
            out.push_str(&format!(" ({url})"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
