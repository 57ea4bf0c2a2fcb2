//! `baton promote` as a user runs it: the real binary, as a process, against a real
//! kube-apiserver, through a kubeconfig this test writes. Status is written the way
//! the operator writes it (no operator runs here).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use baton_api::Promotion;
use baton_integration::{baton_bin, install_baton_crds};
use baton_testkit::controlplane::ADMIN_TOKEN;
use baton_testkit::{ControlPlane, repo_root};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const SHA: &str = "6b47f42a0c3d8e9f1a2b3c4d5e6f708192a3b4c5";

/// A namespace of the shared control plane and a kubeconfig whose context points at it.
struct Setup {
    cp: &'static ControlPlane,
    client: kube::Client,
    ns: String,
    dir: tempfile::TempDir,
}

impl Setup {
    /// With the sample `staging` Environment applied in the namespace.
    async fn new(prefix: &str) -> Setup {
        let cp = baton_testkit::shared().await.expect("control plane starts");
        install_baton_crds(cp);
        let client = cp.client().await.expect("client");
        let ns = cp.namespace(&client, prefix).await.expect("namespace");
        let sample = repo_root().join("config/samples/environment-staging.yaml");
        let out = cp
            .run_kubectl(["apply", "-n", &ns, "-f", &sample.to_string_lossy()])
            .expect("kubectl");
        assert!(out.success, "staging Environment applies: {}", out.stderr);
        let dir = tempfile::tempdir().expect("tempdir");
        let setup = Setup {
            cp,
            client,
            ns,
            dir,
        };
        std::fs::write(setup.kubeconfig(), kubeconfig(cp.server(), &setup.ns)).expect("write");
        setup
    }

    /// The kubeconfig the CLI uses: admin, context namespace = the test's namespace.
    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn promotions(&self) -> Api<Promotion> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// `baton ARGS` with this kubeconfig, to completion.
    fn baton(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("baton runs")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(baton_bin());
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    async fn names(&self) -> Vec<String> {
        self.promotions()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    }

    /// Writes status through the status subresource, as the operator does.
    async fn set_status(&self, name: &str, status: serde_json::Value) {
        self.promotions()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .expect("status written");
    }
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

fn source() -> String {
    format!("camaradesuk/syrf-test@{SHA}")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The name printed in `promotion.baton.dev/<name> created`.
fn created_name(out: &Output) -> String {
    let text = stdout(out);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("promotion.baton.dev/")?
                .strip_suffix(" created")
        })
        .unwrap_or_else(|| panic!("no 'created' line in {text:?} (stderr {})", stderr(out)))
        .to_owned()
}

/// The Ready condition and phase time the operator writes with `phase`.
fn status(phase: &str, reason: &str, message: &str, at: &str) -> serde_json::Value {
    let key = match phase {
        "PROpened" => "prOpened".to_owned(),
        other => other.to_lowercase(),
    };
    let mut times = serde_json::Map::new();
    times.insert("pending".into(), json!("2026-11-23T10:00:00Z"));
    times.insert(key, json!(at));
    json!({
        "phase": phase,
        "observedGeneration": 1,
        "summary": "api:api-v9.1.1",
        "conditions": [{
            "type": "Ready",
            "status": if phase == "Synced" { "True" } else { "False" },
            "reason": reason,
            "message": message,
            "observedGeneration": 1,
            "lastTransitionTime": at,
        }],
        "phaseTimes": times,
    })
}

/// A `baton promote --wait` process whose stdout is read line by line as it comes.
struct Waiting {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: PathBuf,
}

impl Waiting {
    fn start(setup: &Setup, args: &[&str]) -> Waiting {
        let stderr = setup.dir.path().join(format!("stderr-{}", args.len()));
        let mut child = setup
            .command(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("baton promote --wait starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Waiting {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Waits for a stdout line containing `text` and returns it.
    async fn line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
                return l.clone();
            }
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            if self.seen.iter().any(|l| l.contains(text)) {
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "no line with {text:?}; stdout so far {:?}, stderr {}",
                self.seen,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit; returns its exit code and every stdout line.
    async fn exit(mut self) -> (i32, Vec<String>, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "baton promote --wait did not exit; stdout {:?}, stderr {}",
                    self.seen,
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The reader thread ends at EOF: collect what is left.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        let stderr = self.stderr();
        (status.code().expect("exit code"), self.seen.clone(), stderr)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn dry_run_prints_yaml_the_api_server_accepts_without_contacting_it() {
    let setup = Setup::new("cli-dry-run").await;
    let digest = format!("sha256:{}", "ab".repeat(32));
    let args = [
        "promote",
        "-n",
        &setup.ns,
        "--environment",
        "staging",
        "api=api-v9.1.1",
        &format!("web={digest}"),
        "--source",
        &source(),
        "--run-url",
        "https://github.com/camaradesuk/syrf-test/actions/runs/42",
        "--dry-run",
    ];
    // No kubeconfig at all: --dry-run must not need the cluster.
    let out = Command::new(baton_bin())
        .args(args)
        .env("KUBECONFIG", setup.dir.path().join("missing"))
        .output()
        .expect("baton runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = stdout(&out);
    assert!(
        yaml.starts_with("apiVersion: baton.dev/v1alpha1\nkind: Promotion\n"),
        "{yaml}"
    );
    assert!(setup.names().await.is_empty(), "--dry-run creates nothing");

    // kubectl's server-side dry run takes it as it is...
    let mut kubectl = setup
        .cp
        .kubectl()
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    kubectl
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("yaml to kubectl");
    let applied = kubectl.wait_with_output().expect("kubectl runs");
    assert!(applied.status.success(), "{}", stderr(&applied));
    assert!(
        stdout(&applied).contains("created (server dry run)"),
        "{}",
        stdout(&applied)
    );

    // ...and so does a create of the parsed object, which reads back the same.
    let parsed: Promotion = serde_saphyr::from_str(&yaml).expect("YAML parses as a Promotion");
    let name = parsed.metadata.name.clone().expect("name");
    assert!(name.starts_with("staging-api-api-v9-1-1-"), "{name}");
    assert_eq!(
        parsed.metadata.namespace.as_deref(),
        Some(setup.ns.as_str())
    );
    let created = setup
        .promotions()
        .create(&PostParams::default(), &parsed)
        .await
        .expect("the API server accepts it");
    assert_eq!(created.spec, parsed.spec);
    let web = &created.spec.services[1];
    assert_eq!(
        (web.digest.as_deref(), web.version.as_deref()),
        (Some(digest.as_str()), None)
    );

    // The same command without --dry-run now finds that very object.
    let again = setup.baton(&args[..args.len() - 1]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stdout(&again),
        format!("promotion.baton.dev/{name} unchanged\n")
    );
}

#[tokio::test]
async fn promote_creates_the_promotion_and_a_rerun_changes_nothing() {
    let setup = Setup::new("cli-create").await;
    // No -n: the kubeconfig context's namespace.
    let args = [
        "promote",
        "--environment",
        "staging",
        "api=api-v9.1.1",
        "web=web-v5.0.1",
        "--source",
        &source(),
        "--run-url",
        "https://github.com/camaradesuk/syrf-test/actions/runs/42",
    ];
    let out = setup.baton(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let name = created_name(&out);
    assert_eq!(
        stdout(&out),
        format!("promotion.baton.dev/{name} created\n")
    );
    assert_eq!(stderr(&out), "", "the Environment exists: no warning");

    let p = setup.promotions().get(&name).await.expect("created");
    assert_eq!(p.spec.environment, "staging");
    let services: Vec<(&str, Option<&str>)> = p
        .spec
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.version.as_deref()))
        .collect();
    assert_eq!(
        services,
        [("api", Some("api-v9.1.1")), ("web", Some("web-v5.0.1"))]
    );
    let src = p.spec.source.as_ref().expect("source");
    assert_eq!(
        (
            src.repository.as_str(),
            src.commit.as_str(),
            src.run_url.as_deref()
        ),
        (
            "camaradesuk/syrf-test",
            SHA,
            Some("https://github.com/camaradesuk/syrf-test/actions/runs/42")
        )
    );
    let managers: Vec<_> = p
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["baton-cli"]);

    // A retried CI job: same request (another run URL, another attempt) -> same object.
    let again = setup.baton(&args);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        stdout(&again),
        format!("promotion.baton.dev/{name} unchanged\n")
    );
    let mut retried = args.to_vec();
    retried[args.len() - 1] = "https://github.com/camaradesuk/syrf-test/actions/runs/42/attempts/2";
    let out = setup.baton(&retried);
    assert_eq!(
        stdout(&out),
        format!("promotion.baton.dev/{name} unchanged\n")
    );
    assert_eq!(
        setup.names().await,
        std::slice::from_ref(&name),
        "no second Promotion"
    );

    // Another request under the same name is refused, naming what differs.
    let other = setup.baton(&[
        "promote",
        "--environment",
        "staging",
        "api=api-v9.1.2",
        "--source",
        &source(),
        "--name",
        &name,
    ]);
    assert_eq!(other.status.code(), Some(1));
    let err = stderr(&other);
    assert!(
        err.contains(&format!(
            "promotion.baton.dev/{name} already exists with a different request"
        )) && err.contains("services api=api-v9.1.1 web=web-v5.0.1 (asked: api=api-v9.1.2)"),
        "{err}"
    );
    assert_eq!(stdout(&other), "");

    // A different request gets its own name, and an unknown Environment is pointed out.
    let typo = setup.baton(&[
        "promote",
        "--environment",
        "stagign",
        "api=api-v9.1.1",
        "--source",
        &source(),
    ]);
    assert_eq!(typo.status.code(), Some(0), "{}", stderr(&typo));
    assert!(
        stderr(&typo).contains(&format!(
            "warning: Environment {}/stagign not found",
            setup.ns
        )),
        "{}",
        stderr(&typo)
    );
    assert_eq!(setup.names().await.len(), 2);
}

#[tokio::test]
async fn bad_input_exits_non_zero_with_a_message_naming_the_problem() {
    let setup = Setup::new("cli-bad").await;
    let src = source();
    let cases: [(Vec<&str>, &str); 6] = [
        (
            vec!["api=api v9.1.1", "--source", &src],
            r#"version "api v9.1.1" of api"#,
        ),
        (
            vec!["api=api-v9.1.1", "--source", "camaradesuk/syrf-test@main"],
            r#"--source commit "main": expected the full commit SHA"#,
        ),
        (
            vec!["api=api-v9.1.1", "--source", "syrf-test"],
            r#"--source "syrf-test": expected OWNER/NAME@SHA"#,
        ),
        (
            vec!["api=api-v9.1.1", "api=api-v9.1.2", "--source", &src],
            r#"service "api" is given twice"#,
        ),
        (
            vec![
                "api=api-v9.1.1",
                "--source",
                &src,
                "-n",
                "no-such-namespace",
            ],
            r#"Error from server (NotFound): namespaces "no-such-namespace" not found"#,
        ),
        (
            vec!["api=1", "--source", &src, "--run-url", "github.com/x"],
            r#"--run-url "github.com/x""#,
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["promote", "--environment", "staging"];
        args.extend(extra.iter().copied());
        let out = setup.baton(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(want),
            "{args:?}: stderr {:?} should name {want:?}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    // Usage errors exit 1 too: 2 means only "--timeout passed".
    let usage = setup.baton(&["promote", "--environment", "staging", "--source", &src]);
    assert_eq!(usage.status.code(), Some(1));
    assert!(
        stderr(&usage).contains("<SERVICE=VERSION>"),
        "{}",
        stderr(&usage)
    );
    assert!(setup.names().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn wait_prints_each_phase_and_exits_0_once_synced() {
    let setup = Setup::new("cli-wait-synced").await;
    let args = [
        "promote",
        "--environment",
        "staging",
        "api=api-v9.1.1",
        "--source",
        &source(),
        "--wait",
    ];
    let mut waiting = Waiting::start(&setup, &args);
    let created = waiting.line(" created").await;
    let name = created
        .strip_prefix("promotion.baton.dev/")
        .and_then(|l| l.strip_suffix(" created"))
        .expect("name")
        .to_owned();

    let url = "https://github.com/camaradesuk/cluster-gitops/pull/1";
    let mut opened = status(
        "PROpened",
        "WaitingForReview",
        "pull request is open and waiting for review",
        "2026-11-23T10:00:01Z",
    );
    opened["pullRequest"] = json!({ "number": 1, "generation": 1, "url": url, "branch": format!("baton/{}/{name}-0123abcd", setup.ns) });
    setup.set_status(&name, opened.clone()).await;
    let line = waiting.line("PROpened").await;
    assert_eq!(
        line,
        "2026-11-23T10:00:01Z  PROpened    pull request is open and waiting for review"
    );
    waiting.line("pull request https://").await;

    let mut synced = status(
        "Synced",
        "Synced",
        "every Application is Synced and Healthy at the merged revision",
        "2026-11-23T10:00:09Z",
    );
    synced["pullRequest"] = opened["pullRequest"].clone();
    synced["phaseTimes"]["prOpened"] = json!("2026-11-23T10:00:01Z");
    setup.set_status(&name, synced).await;
    let (code, lines, err) = waiting.exit().await;
    assert_eq!(code, 0, "stdout {lines:?}, stderr {err}");
    assert_eq!(
        lines,
        [
            format!("promotion.baton.dev/{name} created"),
            "2026-11-23T10:00:01Z  PROpened    pull request is open and waiting for review".to_owned(),
            format!("2026-11-23T10:00:01Z  pull request {url}"),
            "2026-11-23T10:00:09Z  Synced      every Application is Synced and Healthy at the merged revision".to_owned(),
        ]
    );
    assert_eq!(err, "");

    // The same command again: nothing new is created and it ends at once.
    let again = setup.baton(&args);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let text = stdout(&again);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!("promotion.baton.dev/{name} unchanged").as_str(),
            &format!("2026-11-23T10:00:01Z  pull request {url}"),
            "2026-11-23T10:00:09Z  Synced      every Application is Synced and Healthy at the merged revision",
        ]
    );
    assert_eq!(setup.names().await, [name]);
}

#[tokio::test]
async fn wait_exits_1_when_superseded_and_names_the_replacement() {
    let setup = Setup::new("cli-wait-superseded").await;
    let mut waiting = Waiting::start(
        &setup,
        &[
            "promote",
            "--environment",
            "staging",
            "api=api-v9.1.1",
            "--source",
            &source(),
            "--wait",
            "--timeout",
            "5m",
        ],
    );
    let created = waiting.line(" created").await;
    let name = created
        .strip_prefix("promotion.baton.dev/")
        .and_then(|l| l.strip_suffix(" created"))
        .expect("name")
        .to_owned();
    setup
        .set_status(
            &name,
            status(
                "Pending",
                "Queued",
                "waiting for staging-api-older to finish",
                "2026-11-23T10:00:00Z",
            ),
        )
        .await;
    waiting.line("Pending").await;
    let mut superseded = status(
        "Superseded",
        "Superseded",
        "replaced by promotion x before its merge",
        "2026-11-23T10:00:04Z",
    );
    superseded["supersededBy"] = json!({ "promotion": "x" });
    setup.set_status(&name, superseded).await;
    let (code, lines, err) = waiting.exit().await;
    assert_eq!(code, 1, "stdout {lines:?}, stderr {err}");
    assert_eq!(
        lines[1..],
        [
            "2026-11-23T10:00:00Z  Pending     waiting for staging-api-older to finish".to_owned(),
            "2026-11-23T10:00:04Z  Superseded  replaced by promotion x before its merge".to_owned(),
        ]
    );
    assert_eq!(
        err.trim_end(),
        format!(
            "baton promote: promotion {}/{name} ended Superseded: Superseded: replaced by promotion x before its merge; superseded by promotion x",
            setup.ns
        )
    );
}

#[tokio::test]
async fn wait_exits_2_when_the_timeout_passes() {
    let setup = Setup::new("cli-wait-timeout").await;
    let started = Instant::now();
    let out = setup.baton(&[
        "promote",
        "--environment",
        "staging",
        "api=api-v9.1.1",
        "--source",
        &source(),
        "--wait",
        "--timeout",
        "2s",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_secs(2));
    let name = created_name(&out);
    assert!(
        stderr(&out).contains(&format!(
            "timed out after 2s waiting for promotion {}/{name}: Baton has not picked it up yet",
            setup.ns
        )),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn kubectl_runs_it_as_the_baton_plugin() {
    let setup = Setup::new("cli-plugin").await;
    let bin = setup.dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    std::os::unix::fs::symlink(baton_bin(), bin.join("kubectl-baton")).expect("symlink");
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", setup.kubeconfig())
            .output()
            .expect("kubectl runs")
    };
    let help = kubectl(&["baton", "promote", "--help"]);
    assert!(help.status.success(), "{}", stderr(&help));
    assert!(
        stdout(&help).contains("Usage: kubectl baton promote [OPTIONS] --environment <NAME>"),
        "{}",
        stdout(&help)
    );
    assert!(stdout(&help).contains("Exit codes:"), "{}", stdout(&help));
    let out = kubectl(&[
        "baton",
        "promote",
        "--environment",
        "staging",
        "api=api-v9.1.1",
        "--source",
        &source(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let name = created_name(&out);
    assert!(
        setup
            .promotions()
            .get_opt(&name)
            .await
            .expect("get")
            .is_some()
    );
    assert!(Path::new(&bin.join("kubectl-baton")).exists());
}
