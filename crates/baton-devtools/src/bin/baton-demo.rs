//! `make demo`: Baton's main job on a laptop, as a pipeline. Starts a real etcd +
//! kube-apiserver (with kube-controller-manager), real Argo CD (application-controller
//! and repo-server), the fake GitHub, whose repositories are real Git repositories, and
//! the operator (`baton run`); creates Argo CD Applications for staging and production
//! that sync the GitOps repository through its `file://` URL, and two Environments:
//! staging, and production with `upstream: staging, autoPromote: true`. A Promotion to
//! staging is applied; once Argo CD has it Synced there, Baton opens the production
//! Promotion and its PR by itself. Each PR is merged as a reviewer would, and every
//! phase change, what Argo CD reports (sync status, revision, health) and the commit
//! statuses are printed. Everything is stopped at the end; the exit code is non-zero
//! unless production is Synced.

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
const ENVIRONMENTS: [&str; 2] = ["staging", "production"];

fn file(env: &str) -> String {
    format!("apps/{env}/api/configmap.yaml")
}

fn app_name(env: &str) -> String {
    format!("api-{env}")
}

fn configmap(version: &str) -> String {
    format!(
        "# api; Argo CD deploys this folder\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\ndata:\n  version: {version}   # set by promotion PRs\n"
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
async fn argo_report(client: &kube::Client, app: &str) -> Res<String> {
    let app = applications(client).get(app).await?;
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
    let files: Vec<(String, String)> = ENVIRONMENTS
        .iter()
        .map(|e| (file(e), configmap("api-v9.1.0")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    gh.create_repo(GITOPS, "main", &refs);
    let source_sha = gh.create_repo(SOURCE, "main", &[("README.md", "SyRF")]);
    let url = gh.git_url(GITOPS).ok_or("GitOps repository missing")?;
    println!(
        "fake GitHub at {}; {GITOPS} and {SOURCE}@{}\n{GITOPS} is the Git repository {url}",
        gh.url(),
        &source_sha[..8]
    );

    for env in ENVIRONMENTS {
        let app = app_name(env);
        let target = format!("{ns}-{env}");
        cp.run_kubectl(["create", "namespace", &target])?;
        say(&format!(
            "an Argo CD Application {app} deploys apps/{env}/api of {GITOPS} into {target}"
        ));
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": { "name": app, "namespace": argocd_server::NAMESPACE },
            "spec": {
                "project": "default",
                "source": { "repoURL": url, "path": format!("apps/{env}/api"), "targetRevision": "main" },
                "destination": { "server": "https://kubernetes.default.svc", "namespace": target },
                "syncPolicy": { "automated": { "prune": true, "selfHeal": true } }
            }
        }))?;
        applications(&client)
            .patch(&app, &PatchParams::apply("demo"), &Patch::Apply(&object))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let report = argo_report(&client, &app).await?;
            if report.starts_with("sync Synced")
                && report.ends_with("health Healthy, last operation Succeeded")
            {
                println!("Argo CD: {report}");
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{app} not Synced within 90 s: {report}").into());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "github-app-credentials" },
            "stringData": { "token": fake_github::TOKEN }
        }))?)
        .await?;
    say("two Environments: staging, and production (upstream: staging, autoPromote: true)");
    for (name, extra) in [
        ("staging", json!({})),
        (
            "production",
            json!({
                "upstream": "staging", "autoPromote": true,
                "pullRequest": { "labels": ["requires-review"], "checklist": ["All services have been tested in staging", "No critical issues reported in staging"] }
            }),
        ),
    ] {
        let mut spec = json!({
            "gitops": { "repository": GITOPS, "branch": "main", "target": { "file": "apps/{environment}/{service}/configmap.yaml", "yamlPath": "data.version" } },
            "applications": { "namespace": argocd_server::NAMESPACE, "name": "{service}-{environment}" },
            "notifications": { "commitStatus": { "context": "argocd/deploy-{environment}" } },
            "github": { "apiUrl": gh.url().replacen("http://", "https://", 1), "secretRef": { "name": "github-app-credentials" } }
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let env = json!({ "apiVersion": "baton.dev/v1alpha1", "kind": "Environment", "metadata": { "name": name }, "spec": spec });
        Api::<baton_api::Environment>::namespaced(client.clone(), ns)
            .patch(name, &PatchParams::apply("demo"), &Patch::Apply(&env))
            .await?;
    }

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
    say("kubectl apply -f promotion.yaml (to staging)");
    let promotion = format!(
        "apiVersion: baton.dev/v1alpha1\nkind: Promotion\nmetadata:\n  name: api-v9-1-1-to-staging\n  namespace: {ns}\nspec:\n  environment: staging\n  source:\n    repository: {SOURCE}\n    commit: {source_sha}\n  services:\n    - name: api\n      version: api-v9.1.1\n"
    );
    print!("{promotion}");
    let path = cp.dir().join("promotion.yaml");
    std::fs::write(&path, &promotion)?;
    let out = cp.run_kubectl(["apply", "-f", &path.to_string_lossy()])?;
    print!("{}{}", out.stdout, out.stderr);
    follow(client, ns, "api-v9-1-1-to-staging", "staging", source_sha).await?;

    say("staging is Synced: Baton opens the production Promotion by itself");
    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    let auto = loop {
        let list = api.list(&Default::default()).await?;
        if let Some(p) = list
            .items
            .into_iter()
            .find(|p| p.spec.environment == "production")
        {
            break p;
        }
        if Instant::now() > deadline {
            return Err("no automatic production Promotion within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let name = auto.metadata.name.clone().unwrap_or_default();
    println!(
        "Promotion {name}, labels {:?}, carrying {}",
        auto.metadata.labels.clone().unwrap_or_default(),
        auto.spec
            .services
            .iter()
            .map(|s| format!("{}:{}", s.name, s.value()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    follow(client, ns, &name, "production", source_sha).await?;
    say("kubectl get environments,promotions");
    print!(
        "{}",
        cp.run_kubectl(["get", "environments,promotions", "-n", ns])?
            .stdout
    );
    Ok(())
}

/// Follows Promotion `name` to `env` until Synced, merging its PR as a reviewer would,
/// and prints what Baton, Argo CD and GitHub show along the way.
async fn follow(
    client: &kube::Client,
    ns: &str,
    name: &str,
    env: &str,
    source_sha: &str,
) -> Res<()> {
    let gh = fake_github::shared();
    let app = app_name(env);
    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    let limit = Duration::from_secs(120);
    let mut seen: Option<Phase> = None;
    let mut argo_seen = String::new();
    loop {
        let p = api.get(name).await?;
        let status = p.status.clone().unwrap_or_default();
        let t = started.elapsed().as_secs_f64();
        if status.phase != seen {
            seen = status.phase;
            let ready = status
                .conditions
                .iter()
                .find(|c| c.r#type == "Ready")
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_default();
            println!(
                "[{t:>5.1}s] {env}: phase {:<9} {ready}",
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
                    let text = gh.file(GITOPS, &pull.head, &file(env)).unwrap_or_default();
                    println!(
                        "          {} on the PR branch:\n{}",
                        file(env),
                        text.lines()
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
                    say(&format!(
                        "merge commit {}; Argo CD polls {GITOPS} and syncs {app}",
                        &merge[..merge.len().min(8)],
                    ));
                }
                Some(Phase::Synced) => {
                    println!("          Argo CD: {}", argo_report(client, &app).await?);
                    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> =
                        Api::namespaced(client.clone(), &format!("{ns}-{env}"));
                    let version = cm
                        .get("api")
                        .await?
                        .data
                        .and_then(|d| d.get("version").cloned())
                        .unwrap_or_default();
                    println!(
                        "          ConfigMap {ns}-{env}/api in the cluster: version {version}"
                    );
                    for s in gh.statuses(SOURCE, source_sha) {
                        println!(
                            "          commit status on {SOURCE}@{}: {} {} \"{}\"",
                            &source_sha[..8],
                            s.state,
                            s.context,
                            s.description
                        );
                    }
                    return Ok(());
                }
                Some(Phase::Failed | Phase::Rejected | Phase::Superseded) => {
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
            let report = argo_report(client, &app).await?;
            if report != argo_seen {
                println!("[{t:>5.1}s] Argo CD: {report}");
                argo_seen = report;
            }
        }
        if started.elapsed() > limit {
            return Err(format!("{env}: Synced not reached within 120 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
