//! `make bench-operator`: the operator under load on a real control plane.
//!
//! N promotions (one service each) go from apply to Synced: the release operator runs
//! as a process against etcd + kube-apiserver and the fake GitHub. Reported: idle and
//! peak RSS and CPU time of the operator, time for all N to open, merge and sync, the
//! reaction time from an Application turning Synced+Healthy to the commit status
//! existing on GitHub (every Application flips at once, 16 writes at a time, so each
//! reaction is timed while the others are in flight), and the GitHub and Kubernetes
//! requests the operator makes per promotion. The figures are printed as a table,
//! then, as the last line, one JSON object. The run fails (exit status 1, `"ok":
//! false`) unless every Promotion ends Synced with exactly one pull request and exactly
//! one success commit status.
//!
//! Settings, from the environment:
//! - `BATON_BENCH_N`: promotions (default 50);
//! - `BATON_BENCH_WEBHOOK=1`: report each merge with a signed `pull_request` webhook,
//!   as GitHub would, instead of leaving it to the operator's poll;
//! - `BATON_BENCH_POLL`: the operator's poll interval, `BATON_MAX_REQUEUE` (default `10s`);
//! - `BATON_BENCH_GITHUB_LATENCY_MS`: a delay before every fake GitHub answer (default 0);
//! - `BATON_BENCH_GITHUB_BUDGET`: the fake's hourly REST budget (default 15000);
//! - `BATON_BIN`: the operator binary (default `target/release/baton`);
//! - `BATON_BENCH_OPERATOR_LOG`: a file for the operator's log (info level, or `RUST_LOG`).
//!
//! Kubernetes requests are the operator's own: it runs as a ServiceAccount of its own,
//! and a FlowSchema for that ServiceAccount makes the API server count exactly its
//! requests (`apiserver_flowcontrol_dispatched_requests_total`), apart from the
//! bench's own (an exempt admin) and the API server's internal ones. The total of
//! `apiserver_request_total` over the run, every client included, is reported too.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use baton_api::{Phase, Promotion};
use baton_testkit::{ControlPlane, argocd_application_crd, fake_github, repo_root};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const NS: &str = "bench";
const GITOPS: &str = "bench/gitops";
const SOURCE: &str = "bench/source";
/// The operator's ServiceAccount, and the FlowSchema that counts its requests.
const IDENTITY: &str = "baton-bench";
const FLOW_SCHEMA: &str = "baton-bench-operator";
const WEBHOOK_SECRET: &str = "baton-bench-webhook-secret";

struct Settings {
    n: usize,
    webhook: bool,
    poll: String,
    latency_ms: u64,
    /// The fake's hourly REST budget (`x-ratelimit-limit`).
    budget: i64,
    baton: PathBuf,
}

impl Settings {
    fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Settings {
            n: var("BATON_BENCH_N")
                .and_then(|v| v.parse().ok())
                .unwrap_or(50),
            webhook: var("BATON_BENCH_WEBHOOK").is_some_and(|v| v == "1" || v == "true"),
            poll: var("BATON_BENCH_POLL").unwrap_or_else(|| "10s".to_owned()),
            latency_ms: var("BATON_BENCH_GITHUB_LATENCY_MS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            // An installation of an Enterprise Cloud organisation gets 15,000 requests an
            // hour; 1,000 promotions at 8 requests each do not fit in 5,000 (80% of it),
            // and the budget guard then holds them, as it should.
            budget: var("BATON_BENCH_GITHUB_BUDGET")
                .and_then(|v| v.parse().ok())
                .unwrap_or(15_000),
            baton: std::env::var_os("BATON_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target/release/baton")),
        }
    }
}

/// Everything measured, and what went wrong.
#[derive(Default)]
struct Report {
    idle_rss_kib: u64,
    /// Of the idle RSS: heap and stacks, and the binary's mapped pages.
    idle_anon_kib: u64,
    idle_file_kib: u64,
    peak_rss_kib: u64,
    cpu_seconds: f64,
    cpu_seconds_total: f64,
    to_open: Duration,
    to_merged: Duration,
    to_synced: Duration,
    /// From each Application's Synced status being acknowledged by the API server (the
    /// moment a watcher can first see it) to its commit status on GitHub.
    reactions: Vec<Duration>,
    /// The same, counted from when the bench started writing the flip (its own
    /// write of the Application, queued in the busy API server, included).
    reactions_from_request: Vec<Duration>,
    github_counted: usize,
    github_304: usize,
    graphql: usize,
    graphql_points: usize,
    /// Counted REST requests by method and path shape.
    github_by_kind: std::collections::BTreeMap<String, usize>,
    /// From the last merge to every merge seen, and from the last Application flip to
    /// every Promotion Synced.
    merged_after_last_merge: Duration,
    synced_after_last_flip: Duration,
    last_flip: Option<Instant>,
    /// RSS once every Promotion is Synced and the operator is quiet again.
    settled_rss_kib: u64,
    /// `None` when the API server did not report the FlowSchema's count.
    kube_operator: Option<f64>,
    kube_all: f64,
    /// What the API server served from the first flip until every Promotion was Synced
    /// (every client), by verb and resource: how many, and the seconds they took.
    flip_requests: Vec<(String, f64, f64)>,
    webhooks: usize,
    failures: Vec<String>,
}

/// The operator process; killed when dropped, whatever ends the run.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let s = Settings::from_env();
    match run(&s).await {
        Ok(report) => {
            print_table(&s, &report);
            println!("{}", to_json(&s, &report));
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("bench failed: {e}");
            println!(
                "{}",
                json!({ "ok": false, "promotions": s.n, "error": e.to_string() })
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(s: &Settings) -> Res<Report> {
    let n = s.n;
    let mut report = Report::default();
    let cp = ControlPlane::start().await?;
    cp.apply_crds(&repo_root().join("crds"))?;
    cp.apply_crds(&argocd_application_crd().0)?;
    let client = cp.client().await?;
    kubectl(&cp, &["create", "namespace", NS])?;
    let operator_kubeconfig = operator_identity(&cp)?;

    let gh = fake_github::shared();
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("envs/production/svc-{i}.yaml"),
                format!("image:\n  tag: v1.0.0 # svc-{i}\n"),
            )
        })
        .collect();
    let initial = gh.create_repo(
        GITOPS,
        "main",
        &files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect::<Vec<_>>(),
    );
    // Each service's change is a commit of its own, as in a repository per service.
    gh.create_repo(SOURCE, "main", &[("README.md", "x")]);
    let source_shas: Vec<String> = (0..n)
        .map(|i| {
            gh.push(
                SOURCE,
                "main",
                &[(&format!("svc-{i}.txt"), "v2.0.0")],
                &format!("svc-{i} v2.0.0"),
            )
        })
        .collect();
    gh.set_budget(s.budget, s.budget, Duration::from_secs(3600));
    if s.latency_ms > 0 {
        gh.inject(fake_github::Fault {
            method: "*".into(),
            path_prefix: "/".into(),
            kind: fake_github::FaultKind::Delay(Duration::from_millis(s.latency_ms)),
            times: u32::MAX,
        });
    }
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &serde_json::from_value(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "gh" }, "stringData": { "token": fake_github::TOKEN } }))?)
        .await?;
    let env = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Environment", "metadata": { "name": "production" },
        "spec": { "gitops": { "repository": GITOPS, "target": { "file": "envs/{environment}/{service}.yaml", "yamlPath": "image.tag" } },
                  "applications": { "namespace": NS }, "github": { "apiUrl": gh.url().replacen("http://", "https://", 1), "secretRef": { "name": "gh" } } }
    });
    Api::<baton_api::Environment>::namespaced(client.clone(), NS)
        .patch(
            "production",
            &PatchParams::apply("bench"),
            &Patch::Apply(&env),
        )
        .await?;

    // The Applications exist from the start, running the old version (Argo CD's view).
    flip_all(
        &client,
        (0..n)
            .map(|i| (format!("svc-{i}"), initial.clone()))
            .collect(),
        false,
    )
    .await?;

    let http_addr = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    );
    let mut command = Command::new(&s.baton);
    command
        .arg("run")
        .env("KUBECONFIG", &operator_kubeconfig)
        .env("BATON_HTTP_ADDR", &http_addr)
        .env("BATON_NAMESPACE", NS)
        .env("BATON_GITHUB_PLAIN_HTTP", "true")
        .env("POD_NAMESPACE", NS)
        // Argo CD changes arrive by watch; merges by this poll, or by webhook.
        .env("BATON_MAX_REQUEUE", &s.poll)
        .stdout(Stdio::null());
    // The operator's log, for finding where time goes: `BATON_BENCH_OPERATOR_LOG=<file>`
    // (at info level unless RUST_LOG says otherwise).
    match std::env::var_os("BATON_BENCH_OPERATOR_LOG") {
        Some(path) => {
            command
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .stderr(std::fs::File::create(path)?);
        }
        None => {
            command.env("RUST_LOG", "warn").stderr(Stdio::null());
        }
    }
    if s.webhook {
        command.env("BATON_WEBHOOK_SECRET", WEBHOOK_SECRET);
    }
    let op = Operator(command.spawn()?);
    let pid = op.0.id();
    let ticks = clock_ticks();
    tokio::time::sleep(Duration::from_secs(3)).await;
    report.idle_rss_kib = rss_kib(pid, "VmRSS:");
    report.idle_anon_kib = rss_kib(pid, "RssAnon:");
    report.idle_file_kib = rss_kib(pid, "RssFile:");

    let api: Api<Promotion> = Api::namespaced(client.clone(), NS);
    let metrics_before = scrape(&client).await?;
    let cpu_before = cpu_seconds(pid, ticks);
    gh.clear_requests();
    let started = Instant::now();
    for (i, sha) in source_shas.iter().enumerate() {
        let p = json!({ "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": format!("svc-{i}") },
            "spec": { "environment": "production", "source": { "repository": SOURCE, "commit": sha }, "services": [{ "name": format!("svc-{i}"), "version": "v2.0.0" }] } });
        api.patch(
            &format!("svc-{i}"),
            &PatchParams::apply("bench"),
            &Patch::Apply(&p),
        )
        .await?;
    }
    let opened = wait_all(&api, n, Phase::PrOpened).await?;
    report.to_open = started.elapsed();
    let mut last_merge = Instant::now();
    for p in &opened {
        let Some(pr) = p.status.as_ref().and_then(|s| s.pull_request.as_ref()) else {
            return Err(format!("{} is PrOpened without a pull request", name(p)).into());
        };
        let Some(merge) = gh.merge(GITOPS, pr.number) else {
            return Err(format!("pull request #{} does not merge", pr.number).into());
        };
        last_merge = Instant::now();
        if s.webhook {
            deliver_merge(&http_addr, pr.number, &pr.branch, &merge, report.webhooks).await?;
            report.webhooks += 1;
        }
    }
    let merged = wait_all(&api, n, Phase::Merged).await?;
    report.to_merged = started.elapsed();
    report.merged_after_last_merge = last_merge.elapsed();

    // Every Application flips to Synced+Healthy at its merge commit, as fast as the API
    // server takes it (16 at a time), while a watcher notes when each status lands.
    let flips: Vec<(String, String)> = merged
        .iter()
        .map(|p| {
            let merge = p
                .status
                .as_ref()
                .and_then(|s| s.pull_request.as_ref())
                .and_then(|pr| pr.merge_commit.clone())
                .unwrap_or_default();
            (name(p), merge)
        })
        .collect();
    let watcher = tokio::spawn(watch_statuses(n));
    let flip_metrics = scrape(&client).await?;
    let flipped_at = flip_all(&client, flips, true).await?;
    report.last_flip = flipped_at.values().map(|f| f.acknowledged).max();
    let landed = watcher.await?;
    for (name, flip) in &flipped_at {
        let description = format!("Deployed {name}:v2.0.0 to production");
        match landed.get(&description) {
            Some(seen) => {
                report
                    .reactions
                    .push(seen.saturating_duration_since(flip.acknowledged));
                report
                    .reactions_from_request
                    .push(seen.saturating_duration_since(flip.sent));
            }
            None => report.failures.push(format!("no status for {name}")),
        }
    }
    let synced = wait_all(&api, n, Phase::Synced).await?;
    report.to_synced = started.elapsed();
    report.flip_requests = requests_by_kind(&flip_metrics, &scrape(&client).await?);
    report.synced_after_last_flip = report.last_flip.map(|t| t.elapsed()).unwrap_or_default();
    report.cpu_seconds = cpu_seconds(pid, ticks) - cpu_before;
    report.cpu_seconds_total = cpu_seconds(pid, ticks);
    report.peak_rss_kib = rss_kib(pid, "VmHWM:");
    tokio::time::sleep(Duration::from_secs(3)).await;
    report.settled_rss_kib = rss_kib(pid, "VmRSS:");
    let metrics_after = scrape(&client).await?;
    drop(op);

    let operator_requests = |m: &str| {
        metric_sum(
            m,
            "apiserver_flowcontrol_dispatched_requests_total",
            Some(("flow_schema", FLOW_SCHEMA)),
        )
    };
    let (before, after) = (
        operator_requests(&metrics_before),
        operator_requests(&metrics_after),
    );
    report.kube_operator = (after > 0.0).then_some(after - before);
    report.kube_all = metric_sum(&metrics_after, "apiserver_request_total", None)
        - metric_sum(&metrics_before, "apiserver_request_total", None);

    let requests = gh.requests();
    report.github_counted = requests
        .iter()
        .filter(|r| r.status != 304 && r.path.starts_with("/repos/bench/"))
        .count();
    report.github_304 = requests.iter().filter(|r| r.status == 304).count();
    for r in requests
        .iter()
        .filter(|r| r.status != 304 && r.path.starts_with("/repos/bench/"))
    {
        *report
            .github_by_kind
            .entry(format!("{} {}", r.method, template(&r.path)))
            .or_default() += 1;
    }
    report.graphql = requests.iter().filter(|r| r.path == "/graphql").count();
    report.graphql_points = requests.iter().map(|r| r.graphql_cost).sum::<i64>() as usize;
    report.reactions.sort();
    report.reactions_from_request.sort();
    report.failures = check(
        &synced,
        &gh.pulls(GITOPS),
        &gh.statuses_since(SOURCE, 0)
            .into_iter()
            .map(|(_, st)| st)
            .collect::<Vec<_>>(),
    );
    Ok(report)
}

/// What must hold at the end: every Promotion Synced, exactly one pull request each,
/// exactly one success commit status each.
fn check(
    promotions: &[Promotion],
    pulls: &[fake_github::Pull],
    statuses: &[fake_github::Status],
) -> Vec<String> {
    let mut failures = Vec::new();
    if pulls.len() != promotions.len() {
        failures.push(format!(
            "{} pull requests for {} promotions",
            pulls.len(),
            promotions.len()
        ));
    }
    let numbers: HashSet<u64> = promotions
        .iter()
        .filter_map(|p| p.status.as_ref()?.pull_request.as_ref().map(|pr| pr.number))
        .collect();
    if numbers.len() != promotions.len() {
        failures.push(format!(
            "{} distinct pull requests for {} promotions",
            numbers.len(),
            promotions.len()
        ));
    }
    for p in promotions {
        let name = name(p);
        let status = p.status.as_ref();
        if status.and_then(|s| s.phase) != Some(Phase::Synced) {
            failures.push(format!("{name} is not Synced"));
        }
        match status.and_then(|s| s.pull_request.as_ref()) {
            None => failures.push(format!("{name} has no pull request")),
            Some(pr) => {
                let theirs = pulls.iter().filter(|q| q.head == pr.branch).count();
                if theirs != 1 || !pulls.iter().any(|q| q.number == pr.number) {
                    failures.push(format!("{name}: {theirs} pull requests from {}", pr.branch));
                }
            }
        }
        let description = format!("Deployed {name}:v2.0.0 to production");
        let successes = statuses
            .iter()
            .filter(|s| s.state == "success" && s.description == description)
            .count();
        if successes != 1 {
            failures.push(format!("{name}: {successes} success statuses"));
        }
    }
    failures
}

fn name(p: &Promotion) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// Waits until all `n` Promotions are in `phase` (10 minutes at most).
async fn wait_all(api: &Api<Promotion>, n: usize, phase: Phase) -> Res<Vec<Promotion>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        // The API server may drop a connection under this load: look again.
        if let Ok(list) = api.list(&Default::default()).await
            && list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase) == Some(phase))
                .count()
                == n
        {
            return Ok(list.items);
        }
        if Instant::now() > deadline {
            return Err(format!("not all {n} promotions reached {phase}").into());
        }
        // Listing every Promotion loads the API server the operator shares: not too often.
        tokio::time::sleep(Duration::from_millis(if n > 100 { 1000 } else { 100 })).await;
    }
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Res<String> {
    let out = cp.run_kubectl(args)?;
    if !out.success {
        return Err(format!("kubectl {}: {}", args.join(" "), out.stderr).into());
    }
    Ok(out.stdout)
}

/// A ServiceAccount for the operator (cluster-admin: the bench measures load, not
/// permissions), a FlowSchema that counts its requests apart, and a kubeconfig.
fn operator_identity(cp: &ControlPlane) -> Res<PathBuf> {
    kubectl(cp, &["create", "serviceaccount", IDENTITY, "-n", NS])?;
    kubectl(
        cp,
        &[
            "create",
            "clusterrolebinding",
            IDENTITY,
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount={NS}:{IDENTITY}"),
        ],
    )?;
    let flow = json!({ "apiVersion": "v1", "kind": "List", "items": [
        { "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration", "metadata": { "name": IDENTITY },
          "spec": { "type": "Limited", "limited": { "nominalConcurrencyShares": 100,
              "limitResponse": { "type": "Queue", "queuing": { "queues": 64, "handSize": 6, "queueLengthLimit": 50 } } } } },
        { "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": { "name": FLOW_SCHEMA },
          "spec": { "priorityLevelConfiguration": { "name": IDENTITY }, "matchingPrecedence": 500,
              "distinguisherMethod": { "type": "ByUser" },
              "rules": [{ "subjects": [{ "kind": "ServiceAccount", "serviceAccount": { "name": IDENTITY, "namespace": NS } }],
                  "resourceRules": [{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"] }],
                  "nonResourceRules": [{ "verbs": ["*"], "nonResourceURLs": ["*"] }] }] } }
    ]});
    let flow_file = cp.dir().join("bench-flowschema.json");
    std::fs::write(&flow_file, flow.to_string())?;
    kubectl(cp, &["apply", "-f", &flow_file.to_string_lossy()])?;
    let token = kubectl(
        cp,
        &["create", "token", IDENTITY, "-n", NS, "--duration=6h"],
    )?;
    let kubeconfig = cp.dir().join("bench-operator.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: {IDENTITY}\n  user:\n    token: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: {IDENTITY}\ncurrent-context: c\n",
            cp.server(),
            token.trim()
        ),
    )?;
    Ok(kubeconfig)
}

/// The API server's own `/metrics`, in Prometheus text format.
async fn scrape(client: &kube::Client) -> Res<String> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    Ok(client.request_text(req).await?)
}

/// Requests the API server served between two scrapes, by verb, resource and
/// subresource: (kind, count, seconds spent serving them), the costliest first.
fn requests_by_kind(before: &str, after: &str) -> Vec<(String, f64, f64)> {
    let tally = |text: &str| {
        let mut out: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
        for (series, value) in samples(text) {
            let name = series.split('{').next().unwrap_or_default();
            let count = name == "apiserver_request_total";
            if !count && name != "apiserver_request_duration_seconds_sum" {
                continue;
            }
            let label = |k: &str| {
                series
                    .split(&format!("{k}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_default()
                    .to_owned()
            };
            let sub = label("subresource");
            let kind = format!(
                "{} {}{}",
                label("verb"),
                label("resource"),
                if sub.is_empty() {
                    String::new()
                } else {
                    format!("/{sub}")
                }
            );
            let e = out.entry(kind).or_default();
            if count {
                e.0 += value;
            } else {
                e.1 += value;
            }
        }
        out
    };
    let (b, a) = (tally(before), tally(after));
    let mut out: Vec<(String, f64, f64)> = a
        .into_iter()
        .map(|(k, (n, t))| {
            let (n0, t0) = b.get(&k).copied().unwrap_or_default();
            (k, n - n0, t - t0)
        })
        .filter(|(_, n, _)| *n >= 1.0)
        .collect();
    out.sort_by(|x, y| y.2.total_cmp(&x.2));
    out
}

/// Each sample of a Prometheus text exposition: its series (name and labels) and value.
fn samples(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = match l.rfind('}') {
                Some(close) => (&l[..=close], &l[close + 1..]),
                None => l.split_once(' ')?,
            };
            Some((series, value.split_whitespace().next()?.parse().ok()?))
        })
}

/// The sum of every series of `metric`, or of those with the label `label`.
fn metric_sum(text: &str, metric: &str, label: Option<(&str, &str)>) -> f64 {
    let wanted = label.map(|(k, v)| format!("{k}=\"{v}\""));
    samples(text)
        .filter(|(series, _)| {
            let labelled = wanted.as_ref().is_none_or(|w| series.contains(w.as_str()));
            series.split('{').next() == Some(metric) && labelled
        })
        .map(|(_, value)| value)
        .sum()
}

/// Posts a signed `pull_request` delivery reporting the merge, as GitHub does.
async fn deliver_merge(addr: &str, number: u64, branch: &str, merge: &str, id: usize) -> Res<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = json!({
        "action": "closed", "number": number,
        "repository": { "full_name": GITOPS },
        "pull_request": { "number": number, "state": "closed", "merged": true, "merge_commit_sha": merge, "head": { "ref": branch } }
    })
    .to_string();
    let signature = baton_github::webhook::sign(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: bench-{id}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    match answer.split_whitespace().nth(1) {
        Some("202") => Ok(()),
        other => Err(format!("webhook for #{number} answered {other:?}").into()),
    }
}

/// Flips every `(promotion, merge commit)`'s Application to Synced+Healthy at the
/// merge commit, 16 at a time; returns when each flip was started.
/// When one Application's flip was sent, and when the API server acknowledged it.
#[derive(Clone, Copy)]
struct Flip {
    sent: Instant,
    acknowledged: Instant,
}

async fn flip_all(
    client: &kube::Client,
    flips: Vec<(String, String)>,
    existing: bool,
) -> Res<std::collections::HashMap<String, Flip>> {
    use futures::StreamExt;
    let results: Vec<Result<(String, Flip), kube::Error>> = futures::stream::iter(flips)
        .map(|(name, merge)| {
            let client = client.clone();
            async move {
                let sent = Instant::now();
                let app = format!("{name}-production");
                let repo = "https://github.com/bench/gitops";
                // A flip is one patch, as Argo CD writes it from its cache; the first
                // write creates the Application.
                if existing {
                    baton_testkit::argocd::resync(&client, NS, &app, repo, &merge, "Healthy")
                        .await?;
                } else {
                    baton_testkit::argocd::sync(&client, NS, &app, repo, &merge, "Healthy").await?;
                }
                let acknowledged = Instant::now();
                Ok((name, Flip { sent, acknowledged }))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut out = std::collections::HashMap::new();
    for r in results {
        let (name, flip) = r?;
        out.insert(name, flip);
    }
    Ok(out)
}

/// Notes when each commit status description first appears, until `n` have
/// (two minutes, or a tenth of a second per promotion when that is longer).
async fn watch_statuses(n: usize) -> std::collections::HashMap<String, Instant> {
    let gh = fake_github::shared();
    let mut seen = std::collections::HashMap::new();
    let mut count = gh.statuses_since(SOURCE, 0).len();
    // Two minutes, or longer for a large run (its flips queue behind each other).
    let deadline = Instant::now() + Duration::from_secs(120.max(n as u64 / 10));
    while seen.len() < n && Instant::now() < deadline {
        let new = gh.statuses_since(SOURCE, count);
        let now = Instant::now();
        count += new.len();
        for (_, st) in new {
            seen.entry(st.description).or_insert(now);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    seen
}

/// A request path with its ids (numbers, commit ids, file and branch names) replaced,
/// so requests of one kind group together.
fn template(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let after = i.checked_sub(1).and_then(|j| segments.get(j)).copied();
        let id = seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty()
            || (seg.len() >= 7 && seg.chars().all(|c| c.is_ascii_hexdigit()))
            || matches!(after, Some("contents" | "refs" | "branches" | "heads"));
        out.push(if seg.contains("...") {
            "{}...{}"
        } else if id {
            "{}"
        } else {
            seg
        });
    }
    out.join("/")
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// User plus system CPU time of `pid` so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields are counted after its closing `)`,
    // where field 3 (state) is the first; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(14) + field(15)) / ticks_per_second
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux in practice).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t: &f64| *t > 0.0)
        .unwrap_or(100.0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn per(count: f64, n: usize) -> f64 {
    (count / n.max(1) as f64 * 100.0).round() / 100.0
}

fn to_json(s: &Settings, r: &Report) -> Value {
    json!({
        "ok": r.failures.is_empty(),
        "promotions": s.n,
        "merge_detection": if s.webhook { "webhook" } else { "poll" },
        "poll": s.poll,
        "github_latency_ms": s.latency_ms,
        "github_budget_per_hour": s.budget,
        "all_open_s": secs(r.to_open),
        "all_merged_seen_s": secs(r.to_merged),
        "all_synced_s": secs(r.to_synced),
        "merges_seen_after_last_merge_s": secs(r.merged_after_last_merge),
        "synced_after_last_flip_s": secs(r.synced_after_last_flip),
        "status_p50_ms": ms(pct(&r.reactions, 0.5)),
        "status_p99_ms": ms(pct(&r.reactions, 0.99)),
        "status_max_ms": ms(r.reactions.last().copied().unwrap_or_default()),
        "status_p50_from_request_ms": ms(pct(&r.reactions_from_request, 0.5)),
        "status_p99_from_request_ms": ms(pct(&r.reactions_from_request, 0.99)),
        "idle_rss_mib": mib(r.idle_rss_kib),
        "idle_rss_anon_mib": mib(r.idle_anon_kib),
        "idle_rss_file_mib": mib(r.idle_file_kib),
        "peak_rss_mib": mib(r.peak_rss_kib),
        "settled_rss_mib": mib(r.settled_rss_kib),
        "cpu_seconds": (r.cpu_seconds * 100.0).round() / 100.0,
        "cpu_seconds_since_start": (r.cpu_seconds_total * 100.0).round() / 100.0,
        "github_requests_per_promotion": per(r.github_counted as f64, s.n),
        "github_304_per_promotion": per(r.github_304 as f64, s.n),
        "graphql_requests_per_promotion": per(r.graphql as f64, s.n),
        "graphql_points_per_promotion": per(r.graphql_points as f64, s.n),
        "kube_requests_per_promotion": r.kube_operator.map(|k| per(k, s.n)),
        "github_requests_by_kind": r.github_by_kind.iter().map(|(k, v)| (k.clone(), json!(per(*v as f64, s.n)))).collect::<serde_json::Map<_, _>>(),
        "kube_requests_all_clients_per_promotion": per(r.kube_all, s.n),
        "webhooks_delivered": r.webhooks,
        "flip_requests": r.flip_requests.iter().map(|(k, n, t)| json!({ "kind": k, "count": n, "seconds": (t * 100.0).round() / 100.0 })).collect::<Vec<_>>(),
        "failures": r.failures,
    })
}

fn print_table(s: &Settings, r: &Report) {
    let detection = if s.webhook {
        "merges reported by webhook"
    } else {
        "merges found by polling"
    };
    let rows: Vec<(String, String)> = vec![
        ("operator".into(), s.baton.display().to_string()),
        (
            "promotions".into(),
            format!(
                "{} (one service each; {detection}; poll {}; GitHub latency {} ms; GitHub budget {}/h)",
                s.n, s.poll, s.latency_ms, s.budget
            ),
        ),
        (
            "all PRs open / merges seen / Synced".into(),
            format!(
                "{:.2} s / {:.2} s / {:.2} s",
                secs(r.to_open),
                secs(r.to_merged),
                secs(r.to_synced)
            ),
        ),
        (
            "after the last merge: all merges seen / after the last flip: all Synced".into(),
            format!(
                "{:.2} s / {:.2} s",
                secs(r.merged_after_last_merge),
                secs(r.synced_after_last_flip)
            ),
        ),
        (
            "Synced+Healthy acknowledged -> commit status (all Applications flipped at once; from the flip request sent)".into(),
            format!(
                "p50 {} ms, p99 {} ms, max {} ms (p50 {} ms, p99 {} ms)",
                ms(pct(&r.reactions, 0.5)),
                ms(pct(&r.reactions, 0.99)),
                ms(r.reactions.last().copied().unwrap_or_default()),
                ms(pct(&r.reactions_from_request, 0.5)),
                ms(pct(&r.reactions_from_request, 0.99)),
            ),
        ),
        (
            "operator RSS idle (heap + binary pages) / peak / settled after the run".into(),
            format!(
                "{} MiB ({} + {}) / {} MiB / {} MiB",
                mib(r.idle_rss_kib),
                mib(r.idle_anon_kib),
                mib(r.idle_file_kib),
                mib(r.peak_rss_kib),
                mib(r.settled_rss_kib)
            ),
        ),
        (
            "operator CPU during the run (since start)".into(),
            format!("{:.2} s ({:.2} s)", r.cpu_seconds, r.cpu_seconds_total),
        ),
        (
            "GitHub requests per promotion".into(),
            format!(
                "{} counted REST (304s excluded), {} answered 304; GraphQL {} requests, {} points",
                per(r.github_counted as f64, s.n),
                per(r.github_304 as f64, s.n),
                per(r.graphql as f64, s.n),
                per(r.graphql_points as f64, s.n)
            ),
        ),
        (
            "counted REST requests per promotion, by kind".into(),
            r.github_by_kind
                .iter()
                .map(|(k, v)| format!("{k}: {}", per(*v as f64, s.n)))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (
            "Kubernetes requests per promotion".into(),
            format!(
                "{} by the operator; {} by every client (bench and API server included)",
                r.kube_operator
                    .map_or_else(|| "not reported".to_owned(), |k| per(k, s.n).to_string()),
                per(r.kube_all, s.n)
            ),
        ),
        (
            "API server from the first flip to all Synced, costliest first (every client)".into(),
            r.flip_requests
                .iter()
                .take(8)
                .map(|(k, n, t)| format!("{k}: {n} in {t:.1} s"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (
            "checks".into(),
            if r.failures.is_empty() {
                format!("passed: {} Synced, one PR and one success status each", s.n)
            } else {
                format!("FAILED: {}", r.failures.join("; "))
            },
        ),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("| {:width$} | figure", "what");
    println!("|-{}-|-------", "-".repeat(width));
    for (k, v) in rows {
        println!("| {k:width$} | {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_by_kind_between_scrapes() {
        let before = "apiserver_request_total{code=\"200\",resource=\"promotions\",subresource=\"status\",verb=\"PUT\"} 2\n";
        let after = "apiserver_request_total{code=\"200\",resource=\"promotions\",subresource=\"status\",verb=\"PUT\"} 5\n\
            apiserver_request_total{code=\"409\",resource=\"promotions\",subresource=\"status\",verb=\"PUT\"} 1\n\
            apiserver_request_duration_seconds_sum{resource=\"promotions\",subresource=\"status\",verb=\"PUT\"} 0.5\n\
            apiserver_request_total{resource=\"events\",subresource=\"\",verb=\"POST\"} 1\n";
        assert_eq!(
            requests_by_kind(before, after),
            vec![
                ("PUT promotions/status".to_owned(), 4.0, 0.5),
                ("POST events".to_owned(), 1.0, 0.0)
            ]
        );
    }

    #[test]
    fn sums_series_by_label() {
        let text = "# HELP x\nx_total{a=\"1\",flow_schema=\"f\"} 3\nx_total{flow_schema=\"g\"} 4\nx_total 5\ny_total 9\n";
        assert_eq!(metric_sum(text, "x_total", None), 12.0);
        assert_eq!(metric_sum(text, "x_total", Some(("flow_schema", "f"))), 3.0);
    }

    fn promotion(i: u64, phase: &str, number: u64) -> Promotion {
        serde_json::from_value(json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": format!("svc-{i}") },
            "spec": { "environment": "production", "source": { "repository": SOURCE, "commit": "abc" },
                      "services": [{ "name": format!("svc-{i}"), "version": "v2.0.0" }] },
            "status": { "phase": phase, "pullRequest": { "number": number, "url": "u", "branch": format!("baton/svc-{number}") } }
        }))
        .expect("promotion")
    }

    fn pull(number: u64) -> fake_github::Pull {
        fake_github::Pull {
            number,
            title: String::new(),
            body: String::new(),
            head: format!("baton/svc-{number}"),
            base: "main".into(),
            state: "closed".into(),
            merged: true,
            merge_commit_sha: None,
            labels: vec![],
            reviewers: vec![],
            team_reviewers: vec![],
            auto_merge: false,
            reviews: vec![],
            comments: vec![],
            version: 0,
        }
    }

    fn success(i: u64) -> fake_github::Status {
        fake_github::Status {
            id: i,
            state: "success".into(),
            context: "baton/production".into(),
            description: format!("Deployed svc-{i}:v2.0.0 to production"),
            target_url: None,
        }
    }

    #[test]
    fn checks_one_pr_and_one_success_status_per_synced_promotion() {
        let good = [promotion(0, "Synced", 1), promotion(1, "Synced", 2)];
        let pulls = [pull(1), pull(2)];
        let statuses = [success(0), success(1)];
        assert!(check(&good, &pulls, &statuses).is_empty());

        let twice = [success(0), success(1), success(1)];
        assert_eq!(check(&good, &pulls, &twice), ["svc-1: 2 success statuses"]);
        let extra = [pull(1), pull(2), pull(3)];
        assert_eq!(
            check(&good, &extra, &statuses),
            ["3 pull requests for 2 promotions"]
        );
        let shared = [promotion(0, "Synced", 1), promotion(1, "Merged", 1)];
        let failures = check(&shared, &[pull(1), pull(1)], &statuses);
        assert!(
            failures.contains(&"1 distinct pull requests for 2 promotions".to_owned()),
            "{failures:?}"
        );
        assert!(
            failures.contains(&"svc-1 is not Synced".to_owned()),
            "{failures:?}"
        );
    }

    #[test]
    fn reads_cpu_time_after_the_command_name() {
        assert!(cpu_seconds(std::process::id(), 100.0) >= 0.0);
    }
}
