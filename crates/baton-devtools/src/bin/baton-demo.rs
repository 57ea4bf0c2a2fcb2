//! `make demo`: Baton's main job on a laptop. Starts a real etcd + kube-apiserver, the
//! fake GitHub and the operator (`baton run`), applies an Environment and a Promotion,
//! merges the pull request as a reviewer would, writes the Application status the way
//! Argo CD does, and prints every phase change up to Synced and the commit status
//! posted. Everything is stopped at the end; the exit code is non-zero unless Synced.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baton_api::{Phase, Promotion};
use baton_testkit::{ControlPlane, argocd_application_crd, fake_github, repo_root};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const GITOPS: &str = "camaradesuk/cluster-gitops";
const SOURCE: &str = "camaradesuk/syrf-test";
const FILE: &str = "syrf/environments/production/api/config.yaml";

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
        "starting etcd + kube-apiserver from {}",
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
    let (argocd, official) = argocd_application_crd();
    cp.apply_crds(&argocd)?;
    println!(
        "installed Baton's CRDs and the {} Argo CD Application CRD",
        if official { "official" } else { "minimal" }
    );
    let client = cp.client().await?;
    let ns = "syrf";
    cp.run_kubectl(["create", "namespace", ns])?;

    say("starting the fake GitHub with the GitOps and service repositories");
    let gh = fake_github::shared();
    gh.create_repo(GITOPS, "main", &[(FILE, "# api in production\nservice:\n  name: api\n  chartTag: api-v9.1.0   # set by promotion PRs\n")]);
    let source_sha = gh.create_repo(SOURCE, "main", &[("README.md", "SyRF")]);
    println!(
        "fake GitHub at {}; {GITOPS} and {SOURCE}@{}",
        gh.url(),
        &source_sha[..8]
    );

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
            "gitops": { "repository": GITOPS, "branch": "main", "target": { "file": "syrf/environments/{environment}/{service}/config.yaml", "yamlPath": "service.chartTag" } },
            "applications": { "namespace": ns, "name": "{service}-{environment}" },
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
    say("stopping the operator, the fake GitHub and the control plane");
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
                    say(&format!(
                        "Argo CD syncs api-production to {}",
                        &merge[..merge.len().min(8)]
                    ));
                    baton_testkit::argocd::sync(
                        client,
                        ns,
                        "api-production",
                        &format!("https://github.com/{GITOPS}"),
                        &merge,
                        "Healthy",
                    )
                    .await?;
                }
                Some(Phase::Synced) => {
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
        if Instant::now() > deadline {
            return Err("Synced not reached within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
