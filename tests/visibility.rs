//! What people see on GitHub, on the real control plane with `baton run` as a process:
//! GitHub Deployments on the source commits following each promotion (queued, in
//! progress, success with Argo CD links, failure, the predecessor inactive), and one
//! result comment on the merged PR, edited in place, never duplicated across restarts.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use baton_api::Phase;
use baton_integration::World;
use baton_testkit::fake_github::Deployment;
use serde_json::json;

const T: Duration = Duration::from_secs(60);

async fn deployments_env(w: &World) {
    w.environment(
        "production",
        json!({ "production": true,
                "applications": { "url": "https://argocd.example.com" },
                "notifications": { "deployments": true, "commitStatus": { "context": "argocd/deploy-{environment}" } },
                "pullRequest": { "labels": ["requires-review"] } }),
    )
    .await;
}

fn states(d: &Deployment) -> Vec<&str> {
    d.statuses.iter().map(|s| s.state.as_str()).collect()
}

/// Waits until the source repository's deployments satisfy `pred`.
async fn wait_deployments(
    w: &World,
    what: &str,
    pred: impl Fn(&[Deployment]) -> bool,
) -> Vec<Deployment> {
    let deadline = Instant::now() + T;
    loop {
        let all = w.fake.deployments(&w.source);
        if pred(&all) {
            return all;
        }
        assert!(Instant::now() < deadline, "{what}: {all:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_deployment_follows_the_promotion_and_retires_its_predecessor() {
    let mut w = World::new("deployments", &["api"]).await;
    deployments_env(&w).await;

    w.promote("api-v2", "production", &[("api", "api-v2")])
        .await;
    w.wait_phase("api-v2", Phase::PrOpened, T).await;
    let d = wait_deployments(&w, "queued", |d| {
        d.len() == 1 && states(&d[0]) == ["queued"]
    })
    .await;
    assert_eq!(d[0].sha, w.source_sha);
    assert_eq!(d[0].environment, "production");
    assert_eq!(d[0].task, "deploy:api");
    assert!(d[0].production);
    w.restart_operator();
    let merge = w.merge_when_open("api-v2").await;
    wait_deployments(&w, "in progress", |d| {
        states(&d[0]) == ["queued", "in_progress"]
    })
    .await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.wait_phase("api-v2", Phase::Synced, T).await;
    let d = wait_deployments(&w, "success", |d| states(&d[0]).last() == Some(&"success")).await;
    let last = d[0].statuses.last().unwrap();
    assert_eq!(last.description, "Deployed api:api-v2 to production");
    let argo = format!(
        "https://argocd.example.com/applications/{}/api-production",
        w.ns
    );
    assert_eq!(last.log_url.as_deref(), Some(argo.as_str()));
    assert_eq!(last.environment_url.as_deref(), Some(argo.as_str()));

    // The result comment on the merged PR.
    let pr = w
        .pulls()
        .into_iter()
        .find(|p| p.title.contains("api-v2"))
        .unwrap();
    assert_eq!(pr.comments.len(), 1, "{:?}", pr.comments);
    let body = &pr.comments[0].body;
    assert!(
        body.contains("### Deployment to production: Synced and Healthy"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "| [{}/api-production]({argo}) | Synced | Healthy | `{}` |",
            w.ns,
            &merge[..7]
        )),
        "{body}"
    );

    // The next promotion of api retires this deployment.
    w.restart_operator();
    w.promote("api-v3", "production", &[("api", "api-v3")])
        .await;
    let merge = w.merge_when_open("api-v3").await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.wait_phase("api-v3", Phase::Synced, T).await;
    let d = wait_deployments(&w, "predecessor inactive", |d| {
        d.len() == 2
            && states(&d[0]).last() == Some(&"inactive")
            && states(&d[1]).last() == Some(&"success")
    })
    .await;
    assert_eq!(
        states(&d[1]),
        ["queued", "in_progress", "success"],
        "one status per step across restarts"
    );
    w.restart_operator();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        w.fake.deployments(&w.source).len(),
        2,
        "one deployment per promotion and service"
    );
    for pr in w.pulls() {
        assert_eq!(
            pr.comments.len(),
            1,
            "one result comment per PR: {:?}",
            pr.comments
        );
    }
}

#[tokio::test]
async fn three_services_fail_together_and_the_comment_says_why() {
    let w = World::new("deployments-fail", &["api", "web", "worker"]).await;
    deployments_env(&w).await;
    w.promote(
        "release",
        "production",
        &[
            ("api", "api-v2"),
            ("web", "web-v2"),
            ("worker", "worker-v2"),
        ],
    )
    .await;
    let merge = w.merge_when_open("release").await;
    wait_deployments(&w, "three in progress", |d| {
        d.len() == 3 && d.iter().all(|x| states(x).last() == Some(&"in_progress"))
    })
    .await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.argo_sync("web-production", &merge, "Healthy").await;
    w.argo_sync("worker-production", &merge, "Degraded").await;
    w.wait_phase("release", Phase::Failed, T).await;
    let d = wait_deployments(&w, "three failed", |d| {
        d.iter().all(|x| states(x).last() == Some(&"failure"))
    })
    .await;
    let tasks: Vec<&str> = d.iter().map(|x| x.task.as_str()).collect();
    assert_eq!(tasks, ["deploy:api", "deploy:web", "deploy:worker"]);
    assert!(
        d[2].statuses
            .last()
            .unwrap()
            .description
            .contains("worker is Degraded"),
        "{:?}",
        d[2].statuses
    );
    let pr = w.pulls().into_iter().next().unwrap();
    assert_eq!(pr.comments.len(), 1);
    let body = &pr.comments[0].body;
    assert!(
        body.contains("### Deployment to production: failed: worker is Degraded"),
        "{body}"
    );
    assert!(body.contains("| Synced | Degraded |"), "{body}");
}
