//! `make bench-operator`: the operator under load on a real control plane.
//!
//! N promotions (one service each) go from apply to Synced. Reported: idle and peak
//! RSS of the operator, time for all N to open and merge, the reaction time from an
//! Application turning Synced+Healthy to the commit status existing on GitHub
//! (sequential, one Application at a time), and GitHub requests per promotion.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baton_api::{Phase, Promotion};
use baton_testkit::{ControlPlane, argocd_application_crd, fake_github, repo_root};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

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

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> Res<()> {
    let n: usize = std::env::var("BATON_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let baton = std::env::var_os("BATON_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/baton"));
    let cp = ControlPlane::start().await?;
    cp.apply_crds(&repo_root().join("crds"))?;
    cp.apply_crds(&argocd_application_crd().0)?;
    let client = cp.client().await?;
    let ns = "bench";
    cp.run_kubectl(["create", "namespace", ns])?;
    let gh = fake_github::shared();
    let gitops = "bench/gitops";
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("envs/production/svc-{i}.yaml"),
                format!("image:\n  tag: v1.0.0 # svc-{i}\n"),
            )
        })
        .collect();
    gh.create_repo(
        gitops,
        "main",
        &files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect::<Vec<_>>(),
    );
    let source_sha = gh.create_repo("bench/source", "main", &[("README.md", "x")]);
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "gh" }, "stringData": { "token": fake_github::TOKEN } }))?)
        .await?;
    let env = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Environment", "metadata": { "name": "production" },
        "spec": { "gitops": { "repository": gitops, "target": { "file": "envs/{environment}/{service}.yaml", "yamlPath": "image.tag" } },
                  "applications": { "namespace": ns }, "github": { "apiUrl": gh.url().replacen("http://", "https://", 1), "secretRef": { "name": "gh" } } }
    });
    Api::<baton_api::Environment>::namespaced(client.clone(), ns)
        .patch(
            "production",
            &PatchParams::apply("bench"),
            &Patch::Apply(&env),
        )
        .await?;

    let mut op = Command::new(&baton)
        .arg("run")
        .env("KUBECONFIG", cp.kubeconfig())
        .env("BATON_HTTP_ADDR", "127.0.0.1:0")
        .env("BATON_NAMESPACE", ns)
        .env("BATON_GITHUB_PLAIN_HTTP", "true")
        .env("POD_NAMESPACE", ns)
        // Merges are found by polling (no webhook here); Argo CD changes arrive by watch.
        .env("BATON_MAX_REQUEUE", "10s")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = op.id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_kib(pid, "VmRSS:");

    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    for i in 0..n {
        let p = json!({ "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": format!("svc-{i}") },
            "spec": { "environment": "production", "source": { "repository": "bench/source", "commit": source_sha }, "services": [{ "name": format!("svc-{i}"), "version": "v2.0.0" }] } });
        api.patch(
            &format!("svc-{i}"),
            &PatchParams::apply("bench"),
            &Patch::Apply(&p),
        )
        .await?;
    }
    let phase_of = |p: &Promotion| p.status.as_ref().and_then(|s| s.phase);
    let wait_all = |phase: Phase| {
        let api = api.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                // The API server may drop a connection under this load: look again.
                if let Ok(list) = api.list(&Default::default()).await
                    && list
                        .items
                        .iter()
                        .filter(|p| phase_of(p) == Some(phase))
                        .count()
                        == n
                {
                    return Ok::<_, Box<dyn std::error::Error>>(list.items);
                }
                if Instant::now() > deadline {
                    return Err(format!("not all {n} promotions reached {phase}").into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let opened = wait_all(Phase::PrOpened).await?;
    let to_open = started.elapsed();
    for p in &opened {
        let number = p
            .status
            .as_ref()
            .and_then(|s| s.pull_request.as_ref())
            .map(|pr| pr.number)
            .unwrap_or_default();
        gh.merge(gitops, number);
    }
    let merged = wait_all(Phase::Merged).await?;
    let to_merged = started.elapsed();

    let mut reactions = Vec::new();
    for p in &merged {
        let name = p.metadata.name.clone().unwrap_or_default();
        let merge = p
            .status
            .as_ref()
            .and_then(|s| s.pull_request.as_ref())
            .and_then(|pr| pr.merge_commit.clone())
            .unwrap_or_default();
        let description = format!("Deployed {name}:v2.0.0 to production");
        let t0 = Instant::now();
        baton_testkit::argocd::sync(
            &client,
            ns,
            &format!("{name}-production"),
            "https://github.com/bench/gitops",
            &merge,
            "Healthy",
        )
        .await?;
        loop {
            if gh
                .statuses("bench/source", &source_sha)
                .iter()
                .any(|s| s.description == description)
            {
                reactions.push(t0.elapsed());
                break;
            }
            if t0.elapsed() > Duration::from_secs(120) {
                return Err(format!("no status for {name}").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    wait_all(Phase::Synced).await?;
    let total = started.elapsed();
    let peak = rss_kib(pid, "VmHWM:");
    let counted = gh
        .requests()
        .iter()
        .filter(|r| r.status != 304 && r.path.starts_with("/repos/bench/"))
        .count();
    let _ = op.kill();
    let _ = op.wait();
    reactions.sort();
    println!("operator: {}", baton.display());
    println!("promotions: {n} (one service each, polling merge detection, no webhook)");
    println!(
        "idle RSS: {:.1} MiB; peak RSS: {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!(
        "all PRs open: {to_open:.1?}; all merged seen: {to_merged:.1?}; all Synced: {total:.1?}"
    );
    println!(
        "reaction Synced+Healthy -> commit status: p50 {:.0?} p99 {:.0?} max {:.0?}",
        pct(&reactions, 0.5),
        pct(&reactions, 0.99),
        reactions.last().copied().unwrap_or_default()
    );
    println!(
        "GitHub requests per promotion (304s excluded): {:.1}",
        counted as f64 / n as f64
    );
    Ok(())
}
