//! `make demo`: Baton's main job on a laptop. Starts a real etcd + kube-apiserver (with
//! kube-controller-manager), real Argo CD (application-controller + repo-server), the
//! fake GitHub, whose repositories are real Git repositories, and the operator
//! (`baton run`); creates an Argo CD Application that syncs the GitOps repository
//! through its `file://` URL, applies an Environment and a Promotion, merges the pull
//! request as a reviewer would, and prints every phase change, what Argo CD reports
//! (sync status, revision, health) up to Synced, and the commit status posted.
//! Everything is stopped at the end; the exit code is non-zero unless Synced.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baton_api::{Phase, Promotion};
use baton_testkit::argocd_server::{self, ArgoCd};
use baton_testkit::{ControlPlane, fake_github, repo_root};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const GITOPS: &str = "camaradesuk/cluster-gitops";
const SOURCE: &str = "camaradesuk/syrf-test";
const FILE: &str = "apps/production/api/configmap.yaml";
const APP: &str = "api-production";

fn configmap(version: &str) -> String {
    format!(
        "# api in production; Argo CD deploys this folder\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\ndata:\n  version: {version}   # set by promotion PRs\n"
    )
}

fn applications(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    Api::namespaced_with(
        client.clone(),
        argocd_server::NAMESPACE,
        &ApiResource::from_gvk(&gvk),
    )
}

/// `sync status @ revision, health` as Argo CD last wrote them on the Application.
async fn argo_report(client: &kube::Client) -> Res<String> {
    let app = applications(client).get(APP).await?;
    let at = |p: &str| {
        app.data
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let revision = at("/status/sync/revision");
    Ok(format!(
        "sync {} @ {}, health {}, last operation {}",
        at("/status/sync/status"),
        &revision[..revision.len().min(8)],
        at("/status/health/status"),
        at("/status/operationState/phase")
    ))
}

fn say(step: &str) {
    println!("\n==> {step}");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match demo().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn demo() -> Res<()> {
    let baton = std::env::var_os("BATON_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/baton"));
    if !baton.is_file() {
        return Err(format!(
            "{} not found: run `make demo` (it builds it)",
            baton.display()
        )
        .into());
    }
    say(&format!(
        "starting etcd + kube-apiserver + kube-controller-manager from {}",
        ControlPlane::bin_dir().display()
    ));
    let started = Instant::now();
    let cp = ControlPlane::start().await?;
    println!(
        "control plane ready at {} in {:.1?}",
        cp.server(),
        started.elapsed()
    );
    cp.apply_crds(&repo_root().join("crds"))?;
    println!("installed Baton's CRDs");
    say(&format!(
        "starting Argo CD {} (application-controller, repo-server) from {}",
        argocd_server::VERSION,
        ArgoCd::bin_dir().display()
    ));
    let started = Instant::now();
    let argocd = ArgoCd::start(&cp).await?;
    println!(
        "Argo CD ready in {:.1?}, with its official CRDs, reconciling every {}",
        started.elapsed(),
        argocd_server::RECONCILIATION_TIMEOUT
    );
    let client = cp.client().await?;
    let ns = "syrf";
    cp.run_kubectl(["create", "namespace", ns])?;

    say("starting the fake GitHub (real Git behind it) with the GitOps and service repositories");
    let gh = fake_github::shared();
    gh.create_repo(GITOPS, "main", &[(FILE, &configmap("api-v9.1.0"))]);
    let source_sha = gh.create_repo(SOURCE, "main", &[("README.md", "SyRF")]);
    let url = gh.git_url(GITOPS).ok_or("GitOps repository missing")?;
    println!(
        "fake GitHub at {}; {GITOPS} and {SOURCE}@{}\n{GITOPS} is the Git repository {url}",
        gh.url(),
        &source_sha[..8]
    );

    say(&format!(
        "an Argo CD Application {APP} deploys apps/production/api of {GITOPS} into {ns}"
    ));
    let app: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": { "name": APP, "namespace": argocd_server::NAMESPACE },
        "spec": {
            "project": "default",
            "source": { "repoURL": url, "path": "apps/production/api", "targetRevision": "main" },
            "destination": { "server": "https://kubernetes.default.svc", "namespace": ns },
            "syncPolicy": { "automated": { "prune": true, "selfHeal": true } }
        }
    }))?;
    applications(&client)
        .patch(APP, &PatchParams::apply("demo"), &Patch::Apply(&app))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let report = argo_report(&client).await?;
        if report.starts_with("sync Synced")
            && report.ends_with("health Healthy, last operation Succeeded")
        {
            println!("Argo CD: {report}");
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{APP} not Synced within 90 s: {report}").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "github-app-credentials" },
            "stringData": { "token": fake_github::TOKEN }
        }))?)
        .await?;
    let env = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Environment", "metadata": { "name": "production" },
        "spec": {
            "gitops": { "repository": GITOPS, "branch": "main", "target": { "file": "apps/{environment}/{service}/configmap.yaml", "yamlPath": "data.version" } },
            "applications": { "namespace": argocd_server::NAMESPACE, "name": "{service}-{environment}" },
            "pullRequest": { "labels": ["requires-review"], "checklist": ["All services have been tested in staging", "No critical issues reported in staging"] },
            "notifications": { "commitStatus": { "context": "argocd/deploy-{environment}" } },
            "github": { "apiUrl": gh.url().replacen("http://", "https://", 1), "secretRef": { "name": "github-app-credentials" } }
        }
    });
    Api::<baton_api::Environment>::namespaced(client.clone(), ns)
        .patch(
            "production",
            &PatchParams::apply("demo"),
            &Patch::Apply(&env),
        )
        .await?;

    say("starting the operator: baton run");
    let log_path = cp.dir().join("baton.log");
    let mut operator = Command::new(&baton)
        .arg("run")
        .env("KUBECONFIG", cp.kubeconfig())
        .env("BATON_HTTP_ADDR", "127.0.0.1:0")
        .env("BATON_MAX_REQUEUE", "2s")
        .env("BATON_NAMESPACE", ns)
        .env("BATON_GITHUB_PLAIN_HTTP", "true")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let result = drive(&cp, &client, ns, &source_sha).await;
    let _ = operator.kill();
    let _ = operator.wait();
    if result.is_err() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        eprintln!(
            "--- operator log (tail) ---\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        );
    }
    say("stopping the operator, Argo CD, the fake GitHub and the control plane");
    drop(argocd);
    result
}

async fn drive(cp: &ControlPlane, client: &kube::Client, ns: &str, source_sha: &str) -> Res<()> {
    let gh = fake_github::shared();
    say("kubectl apply -f promotion.yaml");
    let promotion = format!(
        "apiVersion: baton.dev/v1alpha1\nkind: Promotion\nmetadata:\n  name: api-v9-1-1-to-production\n  namespace: {ns}\nspec:\n  environment: production\n  source:\n    repository: {SOURCE}\n    commit: {source_sha}\n  services:\n    - name: api\n      version: api-v9.1.1\n"
    );
    print!("{promotion}");
    let file = cp.dir().join("promotion.yaml");
    std::fs::write(&file, &promotion)?;
    let out = cp.run_kubectl(["apply", "-f", &file.to_string_lossy()])?;
    print!("{}{}", out.stdout, out.stderr);

    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);
    let name = "api-v9-1-1-to-production";
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen: Option<Phase> = None;
    let mut argo_seen = String::new();
    loop {
        let p = api.get(name).await?;
        let status = p.status.clone().unwrap_or_default();
        if status.phase != seen {
            seen = status.phase;
            let ready = status
                .conditions
                .iter()
                .find(|c| c.r#type == "Ready")
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_default();
            println!(
                "[{:>5.1}s] phase {:<9} {ready}",
                120.0
                    - deadline
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64(),
                seen.map(|p| p.as_str()).unwrap_or("-")
            );
            match seen {
                Some(Phase::PrOpened) => {
                    let pr = status.pull_request.clone().unwrap_or_default();
                    let pull = gh
                        .pulls(GITOPS)
                        .into_iter()
                        .find(|x| x.number == pr.number)
                        .ok_or("PR missing in fake GitHub")?;
                    println!(
                        "          PR #{} {:?} labels {:?}\n          {}",
                        pull.number, pull.title, pull.labels, pr.url
                    );
                    let diff = gh.file(GITOPS, &pull.head, FILE).unwrap_or_default();
                    println!(
                        "          {FILE} on the PR branch:\n{}",
                        diff.lines()
                            .map(|l| format!("            {l}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                    say("a reviewer merges the pull request");
                    gh.merge(GITOPS, pull.number).ok_or("merge failed")?;
                }
                Some(Phase::Merged) => {
                    let merge = status
                        .pull_request
                        .as_ref()
                        .and_then(|pr| pr.merge_commit.clone())
                        .unwrap_or_default();
                    let parents = gh.parents(GITOPS, &merge);
                    say(&format!(
                        "merge commit {} (parents {}); Argo CD polls {GITOPS} and syncs {APP}",
                        &merge[..merge.len().min(8)],
                        parents
                            .iter()
                            .map(|p| &p[..p.len().min(8)])
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                Some(Phase::Synced) => {
                    println!("          Argo CD: {}", argo_report(client).await?);
                    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> =
                        Api::namespaced(client.clone(), ns);
                    let version = cm
                        .get("api")
                        .await?
                        .data
                        .and_then(|d| d.get("version").cloned())
                        .unwrap_or_default();
                    println!("          ConfigMap {ns}/api in the cluster: version {version}");
                    for s in gh.statuses(SOURCE, source_sha) {
                        println!(
                            "          commit status on {SOURCE}@{}: {} {} \"{}\"",
                            &source_sha[..8],
                            s.state,
                            s.context,
                            s.description
                        );
                    }
                    say("kubectl get promotions");
                    print!(
                        "{}",
                        cp.run_kubectl(["get", "promotions", "-n", ns])?.stdout
                    );
                    return Ok(());
                }
                Some(Phase::Failed | Phase::Rejected) => {
                    return Err(format!(
                        "promotion ended {}",
                        seen.map(|p| p.as_str()).unwrap_or_default()
                    )
                    .into());
                }
                _ => {}
            }
        }
        if seen == Some(Phase::Merged) {
            let report = argo_report(client).await?;
            if report != argo_seen {
                println!(
                    "[{:>5.1}s] Argo CD: {report}",
                    120.0
                        - deadline
                            .saturating_duration_since(Instant::now())
                            .as_secs_f64()
                );
                argo_seen = report;
            }
        }
        if Instant::now() > deadline {
            return Err("Synced not reached within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
