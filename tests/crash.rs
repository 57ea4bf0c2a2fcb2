//! The operator killed right after its k-th GitHub request, for every k of a
//! three-service promotion with labels, reviewers, auto-merge, a commit status, a
//! release and GitHub Deployments: after a restart there is one branch commit, one PR
//! with its labels, reviewers and auto-merge, one status per (commit, context), one
//! release, one deployment per service ending in success, one result comment, and the
//! promotion is Synced. The fake GitHub's tripwire refuses every request after the
//! k-th undone, so the process is killed exactly between two requests. (Its own test
//! binary: the tripwire counts GraphQL requests, which name no repository.)

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use baton_api::Phase;
use baton_integration::{Operator, World};
use serde_json::json;

const SERVICES: [&str; 3] = ["api", "web", "docs"];

/// Drives one promotion to Synced, killing the operator after its `k`-th request.
/// Returns how many requests the tripwire let through before it tripped (or `None`
/// when the whole flow needed fewer than `k`).
async fn run_with_crash_after(k: usize) -> Option<usize> {
    let mut w = World::without_operator(&format!("crash-{k}"), &SERVICES).await;
    w.environment(
        "production",
        json!({ "pullRequest": { "labels": ["requires-review", "baton"], "reviewers": ["octocat"], "autoMerge": true },
                "notifications": { "release": true, "deployments": true } }),
    )
    .await;
    let (gitops, source) = (w.gitops.clone(), w.source.clone());
    w.fake.set_tripwire(&[&gitops, &source], k);
    w.operator = Some(Operator::start(w.cp, &w.ns));
    w.promote(
        "release",
        "production",
        &[
            ("api", "api-v2.0.0"),
            ("web", "web-v2.0.0"),
            ("docs", "docs-v2.0.0"),
        ],
    )
    .await;
    let mut crashed = false;
    let mut merged_by_test = false;
    let mut synced_apps = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < deadline, "k={k}: not Synced in time");
        if !crashed && w.fake.tripped() {
            // Killed right after the k-th request; a fresh process takes over.
            w.operator.take().unwrap().kill();
            w.fake.clear_tripwire();
            w.operator = Some(Operator::start(w.cp, &w.ns));
            crashed = true;
        }
        let p = w.promotions().get("release").await.unwrap();
        let status = p.status.clone().unwrap_or_default();
        match status.phase {
            Some(Phase::PrOpened) if !merged_by_test => {
                let number = status.pull_request.as_ref().unwrap().number;
                // One commit on today's base, however often the branch was written.
                let branch = &status.pull_request.as_ref().unwrap().branch;
                let head = w.fake.branch_sha(&gitops, branch).unwrap();
                assert_eq!(
                    w.fake.parents(&gitops, &head),
                    vec![w.fake.branch_sha(&gitops, "main").unwrap()],
                    "k={k}: one commit on the base"
                );
                w.fake.merge(&gitops, number).unwrap();
                merged_by_test = true;
            }
            Some(Phase::Merged) if !synced_apps => {
                let merge = status
                    .pull_request
                    .as_ref()
                    .and_then(|pr| pr.merge_commit.clone())
                    .unwrap();
                for s in SERVICES {
                    w.argo_sync(&format!("{s}-production"), &merge, "Healthy")
                        .await;
                }
                synced_apps = true;
            }
            Some(Phase::Synced) => break,
            Some(Phase::Failed | Phase::Rejected) => panic!("k={k}: {status:#?}"),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the restarted operator settle, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.fake.clear_tripwire();
    let pulls = w.pulls();
    assert_eq!(pulls.len(), 1, "k={k}: one PR: {pulls:?}");
    let pr = &pulls[0];
    let mut labels = pr.labels.clone();
    labels.sort();
    assert_eq!(labels, ["baton", "requires-review"], "k={k}: labels");
    assert!(
        pr.reviewers.contains(&"octocat".to_owned())
            || pr.reviews.iter().any(|(who, _)| who == "octocat"),
        "k={k}: reviewer requested: {pr:?}"
    );
    assert!(pr.auto_merge, "k={k}: auto-merge enabled");
    let statuses = w.statuses();
    assert_eq!(
        statuses.len(),
        1,
        "k={k}: one status per commit and context: {statuses:?}"
    );
    assert_eq!(statuses[0].state, "success");
    assert_eq!(w.fake.releases(&source).len(), 1, "k={k}: one release");
    let deployments = w.fake.deployments(&source);
    let mut tasks: Vec<&str> = deployments.iter().map(|d| d.task.as_str()).collect();
    tasks.sort_unstable();
    assert_eq!(
        tasks,
        ["deploy:api", "deploy:docs", "deploy:web"],
        "k={k}: one deployment per service: {deployments:#?}"
    );
    for d in &deployments {
        assert_eq!(
            d.statuses.last().map(|s| s.state.as_str()),
            Some("success"),
            "k={k}: {d:#?}"
        );
    }
    assert_eq!(
        pr.comments.len(),
        1,
        "k={k}: one result comment: {:?}",
        pr.comments
    );
    assert!(
        w.fake.branches(&gitops).len() == 1,
        "k={k}: the promotion branch is gone: {:?}",
        w.fake.branches(&gitops)
    );
    crashed.then_some(k)
}

#[tokio::test]
async fn killed_after_any_github_request_the_promotion_completes_once() {
    // `BATON_CRASH_FROM=k` starts at the k-th request (to look at one failure).
    let first: usize = std::env::var("BATON_CRASH_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut k = first;
    loop {
        match run_with_crash_after(k).await {
            Some(_) => k += 1,
            // The flow finished before its k-th request: every gap was covered.
            None => break,
        }
        assert!(k < 60, "more requests than a promotion should need");
    }
    eprintln!(
        "killed after each of the first {} requests of the promotion",
        k - 1
    );
    assert!(
        k > 10 || first > 1,
        "the flow makes more than ten requests; covered {k}"
    );
}
