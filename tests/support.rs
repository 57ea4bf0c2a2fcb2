//! Helpers shared by Baton's integration tests.

use std::path::Path;

use baton_api::Application;
use baton_testkit::ControlPlane;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Installs Baton's CRDs (from `crds/`) on `cp`.
pub fn install_baton_crds(cp: &ControlPlane) {
    cp.apply_crds(&baton_testkit::repo_root().join("crds"))
        .expect("Baton CRDs install with server-side apply");
}

/// The status Argo CD writes after syncing `revision` successfully.
pub fn argocd_synced_status(revision: &str, health: &str) -> serde_json::Value {
    baton_testkit::argocd::synced_status(
        "https://github.com/camaradesuk/cluster-gitops",
        revision,
        health,
        "2026-11-23T10:00:05Z",
    )
}

/// Installs the Application CRD at `crd`, creates an Application, writes its status
/// with an ordinary merge patch (as Argo CD does: the CRD has no status subresource)
/// and checks that Baton's `Application` type reads it back.
pub async fn application_status_round_trip(cp: &ControlPlane, crd: &Path) {
    cp.apply_crds(crd)
        .expect("Application CRD installs server-side");
    let client = cp.client().await.expect("client");
    let ns = cp.namespace(&client, "argocd").await.expect("namespace");
    let apps: Api<Application> = Api::namespaced(client, &ns);
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": { "name": "api-production" },
        "spec": {
            "project": "default",
            "destination": { "server": "https://kubernetes.default.svc", "namespace": "syrf-production" },
            "source": { "repoURL": "https://github.com/camaradesuk/cluster-gitops", "path": "syrf/api", "targetRevision": "main" }
        }
    });
    let pp = PatchParams::apply("baton-tests");
    apps.patch("api-production", &pp, &Patch::Apply(&app))
        .await
        .expect("Application created");
    let revision = "a3f1c2d4e5f60718293a4b5c6d7e8f9012345678";
    apps.patch(
        "api-production",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": argocd_synced_status(revision, "Healthy") })),
    )
    .await
    .expect("status written with a normal patch");

    let read = apps
        .get("api-production")
        .await
        .expect("Application reads back");
    let status = read.status.expect("status present");
    assert_eq!(
        status.sync.as_ref().map(|s| s.status.as_str()),
        Some("Synced")
    );
    assert_eq!(
        status.health.as_ref().map(|h| h.status.as_str()),
        Some("Healthy")
    );
    assert_eq!(status.synced_revisions(), vec![revision]);
    let op = status.operation_state.expect("operationState");
    assert_eq!(op.phase, "Succeeded");
    assert_eq!(op.finished_at.as_deref(), Some("2026-11-23T10:00:05Z"));
    assert_eq!(
        op.sync_result.and_then(|r| r.revision).as_deref(),
        Some(revision)
    );
    let source = read.spec.source.expect("spec.source");
    assert_eq!(source.target_revision.as_deref(), Some("main"));
}

// ---------------------------------------------------------------------------
// End-to-end world: control plane + fake GitHub (behind the contract gate) + operator.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baton_api::{Phase, Promotion};
use baton_testkit::FakeGitHub;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;

/// The webhook secret e2e operators use.
pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret";

/// One test's world. Each test has its own namespace, repositories and operator.
pub struct World {
    pub cp: &'static baton_testkit::ControlPlane,
    pub client: kube::Client,
    pub ns: String,
    pub fake: &'static FakeGitHub,
    pub api_url: String,
    pub gitops: String,
    pub source: String,
    pub source_sha: String,
    pub operator: Option<Operator>,
}

/// The `baton` binary built next to the running test binary.
pub fn baton_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BATON_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("baton");
    assert!(
        bin.is_file(),
        "{} not built: run `cargo build -p baton-controller` (make test does)",
        bin.display()
    );
    bin
}

/// A running operator process.
pub struct Operator {
    child: Child,
    pub http: String,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(cp: &baton_testkit::ControlPlane, ns: &str) -> Operator {
        Self::start_with(cp, ns, &[])
    }

    /// Starts `baton run` for namespace `ns` with extra environment variables.
    pub fn start_with(
        cp: &baton_testkit::ControlPlane,
        ns: &str,
        extra: &[(&str, &str)],
    ) -> Operator {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let log = std::env::temp_dir().join(format!("baton-operator-{ns}-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(baton_bin())
            .arg("run")
            .env("KUBECONFIG", cp.kubeconfig())
            .env("BATON_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("BATON_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("BATON_MAX_REQUEUE", "1s")
            .env("BATON_NAMESPACE", ns)
            .env("BATON_GITHUB_RETRY_BASE_MS", "20")
            .env("BATON_GITHUB_PLAIN_HTTP", "true")
            .env("RUST_LOG", "info,baton_controller=debug")
            // One Lease per test namespace; a new identity per process, like a new pod.
            .env("POD_NAMESPACE", ns)
            .env("POD_NAME", format!("baton-{port}"))
            .env("BATON_LEASE_SECONDS", "3")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("baton run starts");
        Operator {
            child,
            http: format!("127.0.0.1:{port}"),
            log,
        }
    }

    /// Asks the process to stop (SIGTERM), as Kubernetes does, and waits for it.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("operator exits")
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SyRF-style per-service config file.
pub fn config_yaml(service: &str, tag: &str) -> String {
    format!(
        "# {service} in this environment\nservice:\n  name: {service}\n  chartTag: {tag}   # set by promotion PRs\n  deploymentNotification:\n    enabled: true\n"
    )
}

impl World {
    /// Namespace, repositories with `services` at version `<svc>-v1.0.0` in staging and
    /// production, the GitHub Secret, the Environments, and a running operator.
    pub async fn new(test: &str, services: &[&str]) -> World {
        let mut w = Self::without_operator(test, services).await;
        w.operator = Some(Operator::start(w.cp, &w.ns));
        w
    }

    /// The same world, with no operator running yet.
    pub async fn without_operator(test: &str, services: &[&str]) -> World {
        let cp = baton_testkit::shared().await.expect("control plane starts");
        install_baton_crds(cp);
        let (crd, _) = baton_testkit::argocd_application_crd();
        cp.apply_crds(&crd).expect("Application CRD");
        let client = cp.client().await.expect("client");
        let ns = cp.namespace(&client, test).await.expect("namespace");
        let fake = baton_testkit::fake_github::shared();
        let api_url = baton_testkit::contract::shared()
            .expect("contract gate")
            .url()
            .to_owned();
        let gitops = format!("camaradesuk/gitops-{ns}");
        let source = format!("camaradesuk/source-{ns}");
        let mut files = Vec::new();
        for env in ["staging", "production"] {
            for s in services {
                files.push((
                    format!("syrf/environments/{env}/{s}/config.yaml"),
                    config_yaml(s, &format!("{s}-v1.0.0")),
                ));
            }
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        fake.create_repo(&gitops, "main", &refs);
        let source_sha = fake.create_repo(&source, "main", &[("README.md", "syrf")]);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "github-token" },
            "stringData": { "token": baton_testkit::fake_github::TOKEN }
        }))
        .expect("secret");
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret created");
        let world = World {
            cp,
            client,
            ns,
            fake,
            api_url,
            gitops,
            source,
            source_sha,
            operator: None,
        };
        world.environment("staging", json!({})).await;
        world.environment("production", json!({ "pullRequest": { "labels": ["requires-review"], "checklist": ["All services have been tested in staging"] } })).await;
        world
    }

    /// Applies an Environment named `name` with `extra` merged into its spec.
    pub async fn environment(&self, name: &str, extra: serde_json::Value) {
        let mut spec = json!({
            "gitops": { "repository": self.gitops, "branch": "main",
                        "target": { "file": "syrf/environments/{environment}/{service}/config.yaml", "yamlPath": "service.chartTag" } },
            "applications": { "namespace": self.ns, "name": "{service}-{environment}" },
            "notifications": { "commitStatus": { "context": "argocd/deploy-{environment}" }, "release": false },
            // Environments only take https:// URLs; the operator runs with
            // BATON_GITHUB_PLAIN_HTTP to reach the local gate.
            "github": { "apiUrl": self.api_url.replacen("http://", "https://", 1), "secretRef": { "name": "github-token" } },
            "syncTimeout": "10m",
            "degradedGracePeriod": "2s"
        });
        merge(&mut spec, extra);
        let env = json!({ "apiVersion": "baton.dev/v1alpha1", "kind": "Environment", "metadata": { "name": name }, "spec": spec });
        let api: Api<baton_api::Environment> = Api::namespaced(self.client.clone(), &self.ns);
        api.patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&env),
        )
        .await
        .expect("Environment applied");
    }

    /// Applies a Promotion of `services` (`(name, version)`) to `environment`.
    pub async fn promote(&self, name: &str, environment: &str, services: &[(&str, &str)]) {
        let list: Vec<serde_json::Value> = services
            .iter()
            .map(|(s, v)| json!({ "name": s, "version": v }))
            .collect();
        let p = json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": name },
            "spec": { "environment": environment, "source": { "repository": self.source, "commit": self.source_sha, "runUrl": "https://github.com/camaradesuk/syrf-test/actions/runs/42" }, "services": list }
        });
        let api: Api<Promotion> = Api::namespaced(self.client.clone(), &self.ns);
        api.patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&p))
            .await
            .expect("Promotion applied");
    }

    /// Applies a Promotion whose services each carry their own source commit
    /// (`(name, version or sha256: digest, commit)`).
    pub async fn promote_from(
        &self,
        name: &str,
        environment: &str,
        services: &[(&str, &str, &str)],
    ) {
        let list: Vec<serde_json::Value> = services
            .iter()
            .map(|(s, v, sha)| {
                let key = if v.starts_with("sha256:") {
                    "digest"
                } else {
                    "version"
                };
                json!({ "name": s, key: v, "source": { "repository": self.source, "commit": sha } })
            })
            .collect();
        let p = json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": name },
            "spec": { "environment": environment, "services": list }
        });
        self.promotions()
            .patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&p))
            .await
            .expect("Promotion applied");
    }

    /// A new commit on the source repository (a build of `what`), returned.
    pub fn source_commit(&self, what: &str) -> String {
        self.fake.push(
            &self.source,
            "main",
            &[(what, what)],
            &format!("build {what}"),
        )
    }

    /// The operator's `/metrics` once it contains `want` (plain HTTP/1.0 over TCP).
    pub async fn metrics_with(&self, want: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self
            .operator
            .as_ref()
            .map(|o| o.http.clone())
            .expect("operator running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut body = String::new();
            if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await {
                let _ = s
                    .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
                    .await;
                let _ = s.read_to_string(&mut body).await;
                if body.contains(want) {
                    return body;
                }
            }
            assert!(Instant::now() < deadline, "{want} not in /metrics:\n{body}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub fn promotions(&self) -> Api<Promotion> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Waits until `name` is in `phase`, failing with the operator log otherwise.
    pub async fn wait_phase(&self, name: &str, phase: Phase, timeout: Duration) -> Promotion {
        self.wait_for(
            name,
            timeout,
            |p| p.status.as_ref().and_then(|s| s.phase) == Some(phase),
            &format!("phase {phase}"),
        )
        .await
    }

    /// Deletes `name` and waits until it is gone (its finalizer has run).
    pub async fn delete_and_wait(&self, name: &str) {
        self.promotions()
            .delete(name, &Default::default())
            .await
            .expect("delete");
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .promotions()
            .get_opt(name)
            .await
            .expect("get")
            .is_some()
        {
            assert!(
                Instant::now() < deadline,
                "{name} not gone: finalizer stuck"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until a condition of `name` has `reason`.
    pub async fn wait_reason(&self, name: &str, reason: &str) -> Promotion {
        self.wait_for(
            name,
            Duration::from_secs(60),
            |p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.reason == reason))
            },
            reason,
        )
        .await
    }

    /// Waits until `pred` holds for `name`.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&Promotion) -> bool,
        what: &str,
    ) -> Promotion {
        let deadline = Instant::now() + timeout;
        loop {
            let p = self
                .promotions()
                .get_opt(name)
                .await
                .expect("get promotion");
            if let Some(p) = p.as_ref().filter(|p| pred(p)) {
                return p.clone();
            }
            if Instant::now() > deadline {
                let log = self
                    .operator
                    .as_ref()
                    .map(Operator::logs)
                    .unwrap_or_default();
                panic!(
                    "{name} did not reach {what} within {timeout:?}; status: {:#?}\n--- operator log (tail) ---\n{}",
                    p.and_then(|p| p.status),
                    tail(&log, 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for `name`'s PR, merges it as a reviewer would, waits for Merged, and
    /// returns the merge commit.
    pub async fn merge_when_open(&self, name: &str) -> String {
        let p = self
            .wait_phase(name, Phase::PrOpened, Duration::from_secs(60))
            .await;
        let number = p
            .status
            .and_then(|s| s.pull_request)
            .map(|pr| pr.number)
            .expect("PR recorded");
        let merge = self.fake.merge(&self.gitops, number).expect("PR merges");
        self.wait_phase(name, Phase::Merged, Duration::from_secs(60))
            .await;
        merge
    }

    /// Writes an Application's status the way Argo CD does after syncing `revision`.
    pub async fn argo_sync(&self, app: &str, revision: &str, health: &str) {
        baton_testkit::argocd::sync(
            &self.client,
            &self.ns,
            app,
            &format!("https://github.com/{}", self.gitops),
            revision,
            health,
        )
        .await
        .expect("Application status written");
    }

    /// The PR of promotion `name` as the fake sees it.
    pub fn pulls(&self) -> Vec<baton_testkit::fake_github::Pull> {
        self.fake.pulls(&self.gitops)
    }

    /// Commit statuses on the source commit.
    pub fn statuses(&self) -> Vec<baton_testkit::fake_github::Status> {
        self.fake.statuses(&self.source, &self.source_sha)
    }

    /// Events about `name`, as `reason: message` lines.
    pub async fn events(&self, name: &str) -> Vec<String> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.ns);
        let list = api.list(&Default::default()).await.expect("events");
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default()
                )
            })
            .collect()
    }

    /// Waits until an event about `name` starts with `prefix` (events are published
    /// just after the status write they describe).
    pub async fn wait_event(&self, name: &str, prefix: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events(name).await;
            if events.iter().any(|e| e.starts_with(prefix)) || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Restarts the operator (SIGKILL, then a fresh process).
    pub fn restart_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.kill();
        }
        self.operator = Some(Operator::start(self.cp, &self.ns));
    }
}

/// The Ready condition of `p`, which says why a promotion waits or ended.
pub fn ready(p: &Promotion) -> baton_api::conditions::Condition {
    p.status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.r#type == baton_api::conditions::TYPE_READY)
        })
        .cloned()
        .expect("Ready condition")
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
