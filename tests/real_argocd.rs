//! Real Argo CD (application controller + repo server, built from Go modules by
//! `make argocd`) syncing real Git repositories (`file://`) into the real control plane,
//! with kube-controller-manager giving Deployments real status. Nothing here writes an
//! Application's status: every status asserted on is Argo CD's own.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use baton_testkit::GitRepo;
use baton_testkit::argocd_server::{self, ArgoCd};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

struct Fixture {
    argocd: &'static ArgoCd,
    client: kube::Client,
    /// Destination namespace, also the Application's name (unique per test).
    ns: String,
}

impl Fixture {
    async fn new(prefix: &str) -> Fixture {
        let argocd = argocd_server::shared().await.unwrap_or_else(|e| {
            panic!("real Argo CD must start (build it with `make argocd controlplane`): {e}")
        });
        let plane = baton_testkit::shared().await.expect("control plane");
        let client = plane.client().await.expect("client");
        let ns = plane.namespace(&client, prefix).await.expect("namespace");
        Fixture { argocd, client, ns }
    }

    fn apps(&self) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
        Api::namespaced_with(
            self.client.clone(),
            argocd_server::NAMESPACE,
            &ApiResource::from_gvk(&gvk),
        )
    }

    /// Creates Application `self.ns` with automated sync from `path` on `main` of `repo`.
    async fn create_application(&self, repo: &GitRepo, path: &str) {
        self.create_application_with(repo, path, json!({})).await;
    }

    /// Like [`Self::create_application`], with `sync_policy` merged into `spec.syncPolicy`.
    async fn create_application_with(&self, repo: &GitRepo, path: &str, sync_policy: Value) {
        let mut app = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": { "name": self.ns, "namespace": argocd_server::NAMESPACE },
            "spec": {
                "project": "default",
                "source": { "repoURL": repo.url(), "path": path, "targetRevision": "main" },
                "destination": { "server": "https://kubernetes.default.svc", "namespace": self.ns },
                "syncPolicy": { "automated": { "prune": true, "selfHeal": true } }
            }
        });
        if let (Some(policy), Value::Object(extra)) =
            (app.pointer_mut("/spec/syncPolicy"), sync_policy)
        {
            for (key, value) in extra {
                policy[key] = value;
            }
        }
        let app: DynamicObject = serde_json::from_value(app).expect("Application object");
        self.apps()
            .patch(
                &self.ns,
                &PatchParams::apply("baton-tests"),
                &Patch::Apply(&app),
            )
            .await
            .expect("Application created");
    }

    /// Deletes the Application (its resources stay), so Argo CD stops polling a
    /// repository that goes away with the test.
    async fn finish(self) {
        self.apps()
            .delete(&self.ns, &kube::api::DeleteParams::default())
            .await
            .expect("Application deleted");
    }

    /// The Application's `status` as Argo CD wrote it.
    async fn status(&self) -> Value {
        let app = self.apps().get(&self.ns).await.expect("Application reads");
        app.data.get("status").cloned().unwrap_or(Value::Null)
    }

    /// Polls the Application until `done(status)` holds; panics with the status and
    /// Argo CD's logs after [`TIMEOUT`]. Returns the status and every distinct
    /// (sync, health) pair seen on the way.
    async fn wait(&self, what: &str, done: impl Fn(&Value) -> bool) -> (Value, Vec<String>) {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let status = self.status().await;
            let pair = format!("{}/{}", sync_status(&status), health_status(&status));
            if seen.last() != Some(&pair) {
                seen.push(pair);
            }
            if done(&status) {
                return (status, seen);
            }
            assert!(
                Instant::now() < deadline,
                "Application {} not {what} after {TIMEOUT:?} (seen {seen:?}); status:\n{}\n{}",
                self.ns,
                serde_json::to_string_pretty(&status).unwrap_or_default(),
                self.argocd.diagnostics()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn sync_status(status: &Value) -> &str {
    str_at(status, "/sync/status")
}

fn health_status(status: &Value) -> &str {
    str_at(status, "/health/status")
}

/// Synced and Healthy, with a finished, successful sync operation of `sha`.
fn synced_healthy_at(status: &Value, sha: &str) -> bool {
    sync_status(status) == "Synced"
        && health_status(status) == "Healthy"
        && str_at(status, "/sync/revision") == sha
        && str_at(status, "/operationState/phase") == "Succeeded"
        && str_at(status, "/operationState/syncResult/revision") == sha
}

fn configmap(name: &str, version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  version: \"{version}\"\n"
    )
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: 10
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: {name}
        image: registry.invalid/baton/{name}:never
"
    )
}

#[tokio::test]
async fn configmap_service_syncs_to_head_and_follows_new_commits() {
    let started = Instant::now();
    let f = Fixture::new("real-argocd-cm").await;
    let ready = started.elapsed();
    let repo = GitRepo::init().expect("git repo");
    let first = repo
        .commit("api 1", &[("syrf/api/config.yaml", &configmap("api", "1"))])
        .expect("commit");

    let created = Instant::now();
    f.create_application(&repo, "syrf/api").await;
    let (status, seen) = f
        .wait("Synced+Healthy at the first commit", |s| {
            synced_healthy_at(s, &first)
        })
        .await;
    let first_sync = created.elapsed();
    assert_eq!(
        status.pointer("/operationState/operation/initiatedBy/automated"),
        Some(&json!(true)),
        "an automated sync: {status}"
    );

    // Argo CD applied the ConfigMap, marked with its tracking annotation (v3's default
    // tracking method: `<app>:<group>/<kind>:<namespace>/<name>`).
    let configmaps: Api<ConfigMap> = Api::namespaced(f.client.clone(), &f.ns);
    let cm = configmaps
        .get("api")
        .await
        .expect("Argo CD created the ConfigMap");
    assert_eq!(
        cm.data
            .as_ref()
            .and_then(|d| d.get("version"))
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        cm.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("argocd.argoproj.io/tracking-id"))
            .map(String::as_str),
        Some(format!("{}:/ConfigMap:{}/api", f.ns, f.ns).as_str()),
        "Argo CD's tracking annotation"
    );

    // Baton's own Application type reads what real Argo CD wrote.
    let typed: baton_api::application::ApplicationStatus =
        serde_json::from_value(status.clone()).expect("Baton reads Argo CD's status");
    assert_eq!(typed.synced_revisions(), vec![first.as_str()]);
    let op = typed.operation_state.expect("operationState");
    assert_eq!(op.phase, "Succeeded");
    assert!(op.finished_at.is_some(), "finishedAt set: {status}");

    // A new commit on main is picked up without anyone touching the Application.
    let second = repo
        .commit("api 2", &[("syrf/api/config.yaml", &configmap("api", "2"))])
        .expect("commit");
    let committed = Instant::now();
    f.wait("Synced+Healthy at the second commit", |s| {
        synced_healthy_at(s, &second)
    })
    .await;
    let second_sync = committed.elapsed();
    let cm = configmaps.get("api").await.expect("ConfigMap");
    assert_eq!(
        cm.data
            .as_ref()
            .and_then(|d| d.get("version"))
            .map(String::as_str),
        Some("2")
    );
    eprintln!(
        "real Argo CD: ready in {ready:?}; first sync {first_sync:?} after creation; \
         new commit synced {second_sync:?} after the commit; states seen {seen:?}"
    );
    f.finish().await;
}

#[tokio::test]
async fn deployment_with_zero_replicas_is_healthy() {
    let f = Fixture::new("real-argocd-zero").await;
    let repo = GitRepo::init().expect("git repo");
    let sha = repo
        .commit(
            "web at zero",
            &[
                ("web/deployment.yaml", &deployment("web", 0)),
                ("web/config.yaml", &configmap("web", "1")),
            ],
        )
        .expect("commit");
    f.create_application(&repo, "web").await;
    f.wait("Synced+Healthy", |s| synced_healthy_at(s, &sha))
        .await;
    f.finish().await;
}

#[tokio::test]
async fn deployment_that_never_becomes_available_goes_degraded() {
    let started = Instant::now();
    let f = Fixture::new("real-argocd-degraded").await;
    let repo = GitRepo::init().expect("git repo");
    // No scheduler and no kubelet: the pod never runs, so the Deployment never becomes
    // available and kube-controller-manager marks it ProgressDeadlineExceeded.
    let sha = repo
        .commit("web 1", &[("web/deployment.yaml", &deployment("web", 1))])
        .expect("commit");
    let created = Instant::now();
    f.create_application(&repo, "web").await;
    let (status, seen) = f
        .wait("Degraded", |s| {
            health_status(s) == "Degraded" && sync_status(s) == "Synced"
        })
        .await;
    let degraded_after = created.elapsed();
    assert_eq!(str_at(&status, "/sync/revision"), sha);
    assert!(
        seen.iter().any(|s| s.ends_with("/Progressing")),
        "Progressing before Degraded: {seen:?}"
    );
    // Argo CD v3 keeps resource health in its cache (resourceHealthSource: appTree), not
    // in the Application: neither the app's health nor `resources` carry a message.
    let health_message = str_at(&status, "/health/message").to_string();
    assert_eq!(str_at(&status, "/resourceHealthSource"), "appTree");
    assert_eq!(health_message, "", "no health message in v3: {status}");

    let deployments: Api<Deployment> = Api::namespaced(f.client.clone(), &f.ns);
    let deployment = deployments.get("web").await.expect("Deployment");
    let progressing = deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"))
        .cloned()
        .expect("kube-controller-manager wrote the Progressing condition");
    assert_eq!(progressing.status, "False");
    assert_eq!(
        progressing.reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );
    let deployment_message = progressing.message.clone().unwrap_or_default();
    eprintln!(
        "Degraded {degraded_after:?} after creation ({:?} with start-up); states seen {seen:?}; \
         app health.message {health_message:?}; resources {}; \
         Deployment Progressing: reason {:?}, message {deployment_message:?}",
        started.elapsed(),
        status.get("resources").cloned().unwrap_or(Value::Null),
        progressing.reason
    );
    f.finish().await;
}

#[tokio::test]
async fn invalid_manifest_fails_the_sync_with_argo_cds_message() {
    let f = Fixture::new("real-argocd-invalid").await;
    let repo = GitRepo::init().expect("git repo");
    let service = "apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {app: api}
  ports:
  - port: 70000
";
    let sha = repo
        .commit("an invalid Service", &[("api/service.yaml", service)])
        .expect("commit");
    // Automated syncs retry 5 times by default (5s, 10s, 20s, ... apart); one retry
    // after 5s shows both states (and is long enough for polling to see the first).
    f.create_application_with(
        &repo,
        "api",
        json!({ "retry": { "limit": 1, "backoff": { "duration": "5s", "factor": 1, "maxDuration": "5s" } } }),
    )
    .await;

    // Between attempts the operation is still Running, with finishedAt set and the
    // failure in its message.
    let (retrying, _) = f
        .wait("a failed attempt waiting to retry", |s| {
            str_at(s, "/operationState/phase") == "Running"
                && str_at(s, "/operationState/message").contains("Retrying attempt #1")
        })
        .await;
    let retry_message = str_at(&retrying, "/operationState/message").to_string();
    assert!(
        !str_at(&retrying, "/operationState/finishedAt").is_empty(),
        "finishedAt is set while waiting to retry: {retrying}"
    );

    let (status, _) = f
        .wait("a finished, failed sync", |s| {
            matches!(str_at(s, "/operationState/phase"), "Failed" | "Error")
        })
        .await;
    let phase = str_at(&status, "/operationState/phase");
    let message = str_at(&status, "/operationState/message");
    eprintln!(
        "failed sync: while retrying {retry_message:?}; finally phase {phase:?}, message {message:?}; sync {:?}, health {:?}",
        sync_status(&status),
        health_status(&status)
    );
    assert_eq!(phase, "Failed");
    assert!(
        message
            .starts_with("one or more objects failed to apply, reason: Service \"api\" is invalid")
            && message.contains("spec.ports[0].port: Invalid value: 70000")
            && message.ends_with("(retried 1 times)."),
        "Argo CD's message: {message:?}"
    );
    assert_eq!(sync_status(&status), "OutOfSync");
    assert_eq!(health_status(&status), "Missing");
    let condition = status
        .pointer("/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| str_at(c, "/type") == "SyncError"))
        .unwrap_or_else(|| panic!("a SyncError condition: {status}"));
    assert_eq!(
        str_at(condition, "/message"),
        format!("Failed last sync attempt to [{sha}]: {message}")
    );
    f.finish().await;
}

const HELPER_ENV: &str = "BATON_ARGOCD_PANIC_HELPER";

/// Run only as a child of the test below: starts the shared Argo CD, records its
/// process ids and folder, then panics.
#[tokio::test]
#[ignore = "helper process for argocd_processes_stop_when_a_test_panics"]
async fn helper_starts_argocd_and_panics() {
    let Some(out) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let argocd = argocd_server::shared().await.expect("Argo CD starts");
    let pids: Vec<String> = argocd.pids().iter().map(|(_, p)| p.to_string()).collect();
    std::fs::write(
        &out,
        format!("{}\n{}", argocd.dir().display(), pids.join(" ")),
    )
    .expect("write pids");
    panic!("deliberate panic with Argo CD running");
}

#[test]
fn argocd_processes_stop_and_files_go_when_a_test_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("pids");
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "helper_starts_argocd_and_panics"])
        .env(HELPER_ENV, &record)
        .output()
        .expect("helper runs");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the helper must fail by panicking: {log}"
    );
    let text = std::fs::read_to_string(&record)
        .unwrap_or_else(|e| panic!("helper recorded nothing ({e}): {log}"));
    let (folder, pids) = text.split_once('\n').expect("folder and pids");
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(
        pids.len(),
        4,
        "redis, repo server, controller, kube-controller-manager"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let alive: Vec<&str> = pids.iter().copied().filter(|p| is_running(p)).collect();
        if alive.is_empty() && !std::path::Path::new(folder).exists() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running {alive:?} or folder {folder} left behind"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A pid that exited but was not reaped is a zombie, not running.
fn is_running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}
