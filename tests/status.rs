//! `baton status` as a user runs it: the real binary against a real kube-apiserver and
//! (with `--git`) the fake GitHub through the contract gate. No operator runs: the test
//! writes Environment and Promotion status through the status subresource as the
//! operator does, and Application status as Argo CD does.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use baton_api::Environment;
use baton_integration::{World, baton_bin};
use baton_testkit::controlplane::ADMIN_TOKEN;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The GitOps revision Argo CD reports (any SHA: the board does not compare it with Git).
const REV: &str = "25b6bba8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5";

/// A World without an operator, production downstream of staging, and a kubeconfig
/// whose context namespace is the test's.
struct Setup {
    w: World,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new(prefix: &str) -> Setup {
        let w = World::without_operator(prefix, &["api", "web"]).await;
        w.environment("production", json!({ "upstream": "staging" }))
            .await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("kubeconfig"),
            kubeconfig(w.cp.server(), &w.ns),
        )
        .expect("write kubeconfig");
        Setup { w, dir }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// `baton ARGS` with this kubeconfig, to completion.
    fn baton(&self, args: &[&str]) -> Output {
        Command::new(baton_bin())
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            // The fake GitHub speaks plain HTTP behind the Environments' https:// URL.
            .env("BATON_GITHUB_PLAIN_HTTP", "true")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("baton runs")
    }

    /// Writes `services` (`(service, version, promotion)`) into the Environment's
    /// status as the operator does, each Synced `age` ago.
    async fn record(&self, env: &str, services: &[(&str, &str, &str)], age: Duration) {
        let at = ago(age);
        let list: Vec<serde_json::Value> = services
            .iter()
            .map(|(s, v, p)| {
                json!({ "name": s, "version": v, "promotion": p,
                        "source": { "repository": self.w.source, "commit": self.w.source_sha },
                        "syncedAt": at, "healthySince": at })
            })
            .collect();
        let summary: Vec<String> = services
            .iter()
            .map(|(s, v, _)| format!("{s}:{v}"))
            .collect();
        let api: Api<Environment> = Api::namespaced(self.w.client.clone(), &self.w.ns);
        api.patch_status(
            env,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "summary": summary.join(", "), "services": list } })),
        )
        .await
        .expect("Environment status written");
    }

    /// A Promotion of `services` to `env` with `status` written as the operator does.
    async fn promotion(
        &self,
        name: &str,
        env: &str,
        services: &[(&str, &str)],
        status: serde_json::Value,
    ) {
        self.w.promote(name, env, services).await;
        self.w
            .promotions()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .expect("Promotion status written");
    }

    async fn synced(&self, name: &str, env: &str, service: &str, version: &str, age: Duration) {
        let at = ago(age);
        self.promotion(
            name,
            env,
            &[(service, version)],
            json!({ "phase": "Synced", "phaseTimes": { "pending": at, "synced": at },
                    "conditions": [ready("True", "Synced", &at)] }),
        )
        .await;
    }

    /// The normalised table: the namespace (random) reads `NS`.
    fn normalise(&self, text: &str) -> String {
        text.replace(&self.w.ns, "NS")
    }
}

fn ready(status: &str, reason: &str, at: &str) -> serde_json::Value {
    json!({ "type": "Ready", "status": status, "reason": reason, "message": reason, "lastTransitionTime": at })
}

/// Now minus `d`, as the API writes times. The CLI's ages are then whole hours or
/// days for the few seconds the test takes, so the table is stable.
fn ago(d: Duration) -> String {
    let t = Timestamp::now() - d;
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t).unwrap()
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600 + 1800)
}

fn kubeconfig(server: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: {ADMIN_TOKEN}
contexts:
- name: test
  context:
    cluster: test
    user: admin
    namespace: {namespace}
current-context: test
"
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn golden(name: &str, got: &str) {
    let path = baton_testkit::repo_root().join("tests/fixtures").join(name);
    // BATON_BLESS=1 rewrites the file after an intended change; review the diff.
    if std::env::var_os("BATON_BLESS").is_some() {
        std::fs::write(&path, got).expect("write golden file");
    }
    let want = std::fs::read_to_string(&path).expect("golden file");
    assert!(
        got == want,
        "{name} differs:\n--- got ---\n{got}\n--- expected ---\n{want}"
    );
}

/// staging runs api-v1.1.0 (its GitOps file still says api-v1.0.0) and web-v1.0.0;
/// production runs api-v1.0.0 and web-v1.0.0, with api-v1.1.0 on its way.
async fn pipeline(s: &Setup) {
    let w = &s.w;
    s.synced(
        "staging-api-v1-0-0",
        "staging",
        "api",
        "api-v1.0.0",
        hours(72),
    )
    .await;
    s.synced(
        "staging-api-v1-1-0",
        "staging",
        "api",
        "api-v1.1.0",
        hours(3),
    )
    .await;
    s.synced(
        "staging-web-v1-0-0",
        "staging",
        "web",
        "web-v1.0.0",
        hours(72),
    )
    .await;
    s.synced(
        "production-api-v1-0-0",
        "production",
        "api",
        "api-v1.0.0",
        hours(48),
    )
    .await;
    s.synced(
        "production-web-v1-0-0",
        "production",
        "web",
        "web-v1.0.0",
        hours(48),
    )
    .await;
    let at = ago(Duration::from_secs(600));
    s.promotion(
        "production-api-v1-1-0",
        "production",
        &[("api", "api-v1.1.0")],
        json!({ "phase": "PROpened", "phaseTimes": { "pending": at, "prOpened": at },
                "conditions": [ready("False", "WaitingForReview", &at)],
                "pullRequest": { "number": 2, "url": format!("https://github.com/{}/pull/2", w.gitops),
                                 "branch": format!("baton/{}/production-api-v1-1-0-0123abcd", w.ns) } }),
    )
    .await;
    s.record(
        "staging",
        &[
            ("api", "api-v1.1.0", "staging-api-v1-1-0"),
            ("web", "web-v1.0.0", "staging-web-v1-0-0"),
        ],
        hours(3),
    )
    .await;
    s.record(
        "production",
        &[
            ("api", "api-v1.0.0", "production-api-v1-0-0"),
            ("web", "web-v1.0.0", "production-web-v1-0-0"),
        ],
        hours(48),
    )
    .await;
    for app in [
        "api-staging",
        "web-staging",
        "api-production",
        "web-production",
    ] {
        w.argo_sync(app, REV, "Healthy").await;
    }
}

#[tokio::test]
async fn status_shows_what_runs_where_and_check_exits_1_on_drift() {
    let s = Setup::new("status-board").await;
    pipeline(&s).await;

    // The table, from the kubeconfig context's namespace.
    let out = s.baton(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    golden("status-table.txt", &s.normalise(&stdout(&out)));

    // Nothing drifts in the cluster, and without --git nothing is compared with Git.
    let out = s.baton(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // JSON: the same board, with documented field names.
    let out = s.baton(&["status", "-o", "json", "-n", &s.w.ns]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let board: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(board["namespace"], json!(s.w.ns));
    assert_eq!(board["pipeline"], json!("staging -> production"));
    assert_eq!(board["git"], json!(false));
    assert_eq!(board["marks"], json!(0));
    assert_eq!(
        board["environments"],
        json!([{ "name": "staging" }, { "name": "production", "upstream": "staging" }])
    );
    let api = &board["services"][0];
    assert_eq!(api["name"], json!("api"));
    let production = &api["cells"][1];
    assert_eq!(production["environment"], json!("production"));
    assert_eq!(production["recorded"]["version"], json!("api-v1.0.0"));
    assert_eq!(
        production["recorded"]["promotion"],
        json!("production-api-v1-0-0")
    );
    assert_eq!(
        production["recorded"]["source"],
        json!(format!("{}@{}", s.w.source, s.w.source_sha))
    );
    assert_eq!(
        production["application"],
        json!({ "namespace": s.w.ns, "name": "api-production", "found": true, "sync": "Synced",
                "health": "Healthy", "revision": REV, "syncedAndHealthy": true })
    );
    assert_eq!(
        production["promotions"],
        json!([{ "promotion": "production-api-v1-1-0", "phase": "PROpened", "state": "Open",
                 "version": "api-v1.1.0", "reason": "WaitingForReview",
                 "pullRequest": format!("https://github.com/{}/pull/2", s.w.gitops) }])
    );
    assert!(production.get("git").is_none() && production.get("marks").is_none());

    // --git reads the GitOps files: staging's api file still says api-v1.0.0.
    let out = s.baton(&["status", "--git", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    golden("status-table-git.txt", &s.normalise(&stdout(&out)));
    let out = s.baton(&["status", "--git", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without --check: {}",
        stderr(&out)
    );
    let board: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(board["git"], json!(true));
    assert_eq!(board["marks"], json!(1));
    assert_eq!(
        board["services"][1]["cells"][1]["git"],
        json!({ "file": "syrf/environments/production/web/config.yaml", "value": "web-v1.0.0" })
    );
    assert_eq!(
        board["services"][0]["cells"][0]["marks"][0]["kind"],
        json!("GitDrift")
    );

    // The file catches up (the PR was merged): no more git drift.
    s.w.fake.push(
        &s.w.gitops,
        "main",
        &[(
            "syrf/environments/staging/api/config.yaml",
            &baton_integration::config_yaml("api", "api-v1.1.0"),
        )],
        "api-v1.1.0 to staging",
    );
    let out = s.baton(&["status", "--git", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // Argo CD now runs web Degraded in production: cluster drift.
    s.w.argo_sync("web-production", REV, "Degraded").await;
    let out = s.baton(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = s.normalise(&stdout(&out));
    assert!(
        text.contains("!1  web in production, drift: cluster: Application NS/web-production is Synced/Degraded @25b6bba, but web-v1.0.0 is recorded Synced (promotion production-web-v1-0-0)"),
        "{text}"
    );

    // YAML is the same board.
    let out = s.baton(&["status", "-o", "yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let yaml: serde_json::Value = serde_saphyr::from_str(&stdout(&out)).expect("YAML");
    assert_eq!(yaml["marks"], json!(1));
    assert_eq!(
        yaml["services"][1]["cells"][1]["marks"][0]["kind"],
        json!("ClusterDrift")
    );
}

#[tokio::test]
async fn status_reports_a_version_production_runs_that_staging_never_ran() {
    let s = Setup::new("status-skipped").await;
    s.synced(
        "staging-api-v1-0-0",
        "staging",
        "api",
        "api-v1.0.0",
        hours(5),
    )
    .await;
    // Someone promoted api-v9.9.9 straight to production.
    s.synced(
        "production-api-v9-9-9",
        "production",
        "api",
        "api-v9.9.9",
        hours(1),
    )
    .await;
    s.record(
        "staging",
        &[("api", "api-v1.0.0", "staging-api-v1-0-0")],
        hours(5),
    )
    .await;
    s.record(
        "production",
        &[("api", "api-v9.9.9", "production-api-v9-9-9")],
        hours(1),
    )
    .await;
    for app in ["api-staging", "api-production"] {
        s.w.argo_sync(app, REV, "Healthy").await;
    }
    let out = s.baton(&["status", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("!1  api in production, not run upstream: api-v9.9.9 runs in production, but no Synced Promotion to staging ever carried it\n"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn status_errors_exit_2_with_a_message() {
    let s = Setup::new("status-errors").await;
    let cases: [(&[&str], &str); 3] = [
        (
            &["status", "-n", "no-such-namespace"],
            r#"baton status: namespace "no-such-namespace" not found"#,
        ),
        (
            &["status", "-n", "Bad_Namespace"],
            r#"--namespace "Bad_Namespace": use lowercase letters"#,
        ),
        (
            &["status", "-o", "wide"],
            "invalid value 'wide' for '--output",
        ),
    ];
    for (args, want) in cases {
        let out = s.baton(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    // A namespace without Environments: most likely the wrong -n.
    let empty =
        s.w.cp
            .namespace(&s.w.client, "status-empty")
            .await
            .expect("namespace");
    let out = s.baton(&["status", "-n", &empty, "--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("no Environments in namespace {empty:?}")),
        "{}",
        stderr(&out)
    );
    // No cluster to ask.
    let out = Command::new(baton_bin())
        .args(["status", "--check"])
        .env("KUBECONFIG", s.dir.path().join("missing"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("baton runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("baton status: "),
        "{}",
        stderr(&out)
    );
    // --git without access to the GitHub Secret's contents.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(s.w.client.clone(), &s.w.ns);
    s.record("staging", &[("api", "api-v1.0.0", "p")], hours(1))
        .await;
    secrets
        .delete("github-token", &Default::default())
        .await
        .expect("secret deleted");
    let out = s.baton(&["status", "--git"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "--git: Environment staging: Secret \"github-token\" (spec.github.secretRef) not found in namespace {}",
            s.w.ns
        )),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn kubectl_baton_status_help_names_the_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("kubectl-baton");
    std::os::unix::fs::symlink(baton_bin(), &plugin).expect("symlink");
    let out = Command::new(&plugin)
        .args(["status", "--help"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = stdout(&out);
    assert!(
        help.contains("Usage: kubectl baton status [OPTIONS]"),
        "{help}"
    );
    assert!(
        help.contains("Exit codes:") && help.contains("drift: git"),
        "{help}"
    );
}
