//! End to end on the real control plane: `baton run` as a process, the fake GitHub
//! behind the contract gate, and Application statuses written the way Argo CD does.
//!
//! Why simulated here (real Argo CD runs in `tests/real_argocd_baton.rs`): these tests
//! need Argo CD states at an exact moment and in an exact order (Synced for one of three
//! services while another waits, Progressing then Degraded on cue, a later commit synced
//! before the merge commit, an Application that does not exist yet, restarts of the
//! operator in each phase), and many of them at once; real Argo CD decides its own
//! timing (a Git poll every few seconds) and would make them slow and racy. The
//! behaviour that depends on how Argo CD really writes status is covered with the real
//! thing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use baton_api::Phase;
use baton_api::conditions as c;
use baton_integration::World;

const T: Duration = Duration::from_secs(60);

fn merge_of(p: &baton_api::Promotion) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pull_request.as_ref())
        .and_then(|pr| pr.merge_commit.clone())
        .expect("merge commit recorded")
}

#[tokio::test]
async fn one_service_from_apply_to_deployed_status() {
    let w = World::new("happy", &["api"]).await;
    w.environment(
        "production",
        serde_json::json!({ "pullRequest": { "labels": ["requires-review"], "checklist": ["All services have been tested in staging"], "autoMerge": true } }),
    )
    .await;
    w.promote(
        "api-v9-1-1-to-production",
        "production",
        &[("api", "api-v9.1.1")],
    )
    .await;
    let p = w
        .wait_phase("api-v9-1-1-to-production", Phase::PrOpened, T)
        .await;
    let pr = p
        .status
        .as_ref()
        .and_then(|s| s.pull_request.clone())
        .expect("PR recorded");
    assert!(
        pr.number > 0 && pr.url.ends_with(&format!("/pull/{}", pr.number)),
        "{pr:?}"
    );
    assert!(
        w.pulls()[0].auto_merge,
        "auto-merge enabled as the Environment asks"
    );
    // A reviewer approves: the promotion says so while it waits for the merge.
    w.fake.review(&w.gitops, pr.number, "octocat", "APPROVED");
    let approved = w
        .wait_for(
            "api-v9-1-1-to-production",
            T,
            |p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.pull_request.as_ref())
                    .and_then(|pr| pr.review_decision.as_deref())
                    == Some("Approved")
            },
            "review Approved",
        )
        .await;
    let ready = baton_integration::ready(&approved);
    assert!(ready.message.contains("approved"), "{}", ready.message);

    let pulls = w.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].title, "Promote api:api-v9.1.1 to production");
    assert_eq!(pulls[0].labels, vec!["requires-review".to_owned()]);
    assert!(
        pulls[0]
            .body
            .contains("| api | `api-v1.0.0` | `api-v9.1.1` |"),
        "{}",
        pulls[0].body
    );
    assert!(
        pulls[0]
            .body
            .contains("- [ ] All services have been tested in staging")
    );
    // The marker names the object (its UID): only this Promotion may adopt the PR.
    let uid = w
        .promotions()
        .get("api-v9-1-1-to-production")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    assert!(pulls[0].body.contains(&format!(
        "<!-- baton:promotion {}/api-v9-1-1-to-production uid={uid} -->",
        w.ns
    )));
    let changed = w
        .fake
        .file(
            &w.gitops,
            &pulls[0].head,
            "syrf/environments/production/api/config.yaml",
        )
        .unwrap();
    assert_eq!(
        changed,
        baton_integration::config_yaml("api", "api-v9.1.1"),
        "only the chart tag changed, comments kept"
    );

    let merge = w.fake.merge(&w.gitops, pr.number).unwrap();
    let p = w
        .wait_phase("api-v9-1-1-to-production", Phase::Merged, T)
        .await;
    assert_eq!(merge_of(&p), merge);
    assert!(
        w.statuses().is_empty(),
        "nothing is reported before Argo CD syncs"
    );

    // Argo CD still reports the old revision: not deployed.
    let old = w.fake.parents(&w.gitops, &merge).remove(0);
    w.argo_sync("api-production", &old, "Healthy").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.promotions()
            .get("api-v9-1-1-to-production")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Some(Phase::Merged)
    );
    // Synced at the merge commit but still Progressing: not deployed either.
    w.argo_sync("api-production", &merge, "Progressing").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        w.statuses().is_empty(),
        "no status while the rollout is Progressing"
    );

    w.argo_sync("api-production", &merge, "Healthy").await;
    let p = w
        .wait_phase("api-v9-1-1-to-production", Phase::Synced, T)
        .await;
    let statuses = w.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].state, "success");
    assert_eq!(statuses[0].context, "argocd/deploy-production");
    assert_eq!(
        statuses[0].description,
        "Deployed api:api-v9.1.1 to production"
    );
    let s = p.status.unwrap();
    for phase in [
        Phase::Pending,
        Phase::PrOpened,
        Phase::Merged,
        Phase::Synced,
    ] {
        assert!(
            s.phase_times.get(phase).is_some(),
            "time of {phase} recorded"
        );
    }
    let ready = s
        .conditions
        .iter()
        .find(|c| c.r#type == c::TYPE_READY)
        .unwrap();
    assert_eq!(ready.reason, c::REASON_SYNCED);
    let events = w.wait_event("api-v9-1-1-to-production", "Synced").await;
    for reason in ["PROpened", "Merged", "Synced"] {
        assert!(
            events.iter().any(|e| e.starts_with(reason)),
            "event {reason} missing in {events:?}"
        );
    }
    let row =
        w.cp.run_kubectl(["get", "promotions", "-n", &w.ns, "--no-headers"])
            .unwrap()
            .stdout;
    assert!(
        row.contains("Synced")
            && row.contains("production")
            && row.contains("api:api-v9.1.1")
            && row.contains("/pull/"),
        "{row}"
    );
}

#[tokio::test]
async fn three_services_in_one_pr_and_one_commit() {
    let w = World::new("three", &["api", "web", "docs"]).await;
    w.promote(
        "release-42",
        "production",
        &[
            ("api", "api-v8.21.0"),
            ("web", "web-v5.0.1"),
            ("docs", "docs-v1.2.3"),
        ],
    )
    .await;
    let p = w.wait_phase("release-42", Phase::PrOpened, T).await;
    let pulls = w.pulls();
    assert_eq!(pulls.len(), 1, "one PR for the whole promotion");
    assert_eq!(pulls[0].title, "Promote 3 services to production");
    let head = w.fake.branch_sha(&w.gitops, &pulls[0].head).unwrap();
    let base = w.fake.parents(&w.gitops, &head);
    assert_eq!(base.len(), 1);
    assert_eq!(
        w.fake.branch_sha(&w.gitops, "main").unwrap(),
        base[0],
        "one commit on top of main"
    );
    for (svc, v) in [
        ("api", "api-v8.21.0"),
        ("web", "web-v5.0.1"),
        ("docs", "docs-v1.2.3"),
    ] {
        let text = w
            .fake
            .file(
                &w.gitops,
                &pulls[0].head,
                &format!("syrf/environments/production/{svc}/config.yaml"),
            )
            .unwrap();
        assert_eq!(text, baton_integration::config_yaml(svc, v));
    }
    let number = p.status.unwrap().pull_request.unwrap().number;
    let merge = w.fake.merge(&w.gitops, number).unwrap();
    w.wait_phase("release-42", Phase::Merged, T).await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.argo_sync("web-production", &merge, "Healthy").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.promotions()
            .get("release-42")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Some(Phase::Merged),
        "docs not synced yet"
    );
    // A later commit on main before Argo CD syncs docs: a descendant counts.
    let later = w.fake.push(
        &w.gitops,
        "main",
        &[("README.md", "unrelated")],
        "unrelated change",
    );
    w.argo_sync("docs-production", &later, "Healthy").await;
    w.wait_phase("release-42", Phase::Synced, T).await;
    // One status per (commit, context): the three services share the source commit and
    // the context, so one status names all three (three would overwrite each other).
    let descriptions: Vec<String> = w.statuses().into_iter().map(|s| s.description).collect();
    assert_eq!(
        descriptions,
        ["Deployed api:api-v8.21.0, web:web-v5.0.1, docs:docs-v1.2.3 to production"]
    );
}

#[tokio::test]
async fn closed_pr_is_rejected_and_degraded_rollout_fails_with_a_failure_status() {
    let w = World::new("reject-fail", &["api", "web"]).await;
    w.promote("api-rejected", "production", &[("api", "api-v9.9.9")])
        .await;
    let p = w.wait_phase("api-rejected", Phase::PrOpened, T).await;
    w.fake
        .close(&w.gitops, p.status.unwrap().pull_request.unwrap().number);
    let p = w.wait_phase("api-rejected", Phase::Rejected, T).await;
    let ready = baton_integration::ready(&p);
    assert_eq!(ready.reason, c::REASON_PR_CLOSED);
    assert!(
        w.events("api-rejected")
            .await
            .iter()
            .any(|e| e.starts_with("Rejected"))
    );

    w.promote("web-degraded", "production", &[("web", "web-v6.0.0")])
        .await;
    let merge = w.merge_when_open("web-degraded").await;
    w.argo_sync("web-production", &merge, "Degraded").await;
    let p = w.wait_phase("web-degraded", Phase::Failed, T).await;
    let ready = baton_integration::ready(&p);
    assert_eq!(ready.reason, c::REASON_DEGRADED);
    let statuses = w.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].state, "failure");
    assert!(
        statuses[0]
            .description
            .starts_with("Failed to deploy web:web-v6.0.0 to production"),
        "{}",
        statuses[0].description
    );
}

#[tokio::test]
async fn upstream_gate_holds_production_until_staging_runs_the_version() {
    let w = World::new("upstream", &["api"]).await;
    w.environment("production", serde_json::json!({ "upstream": "staging" }))
        .await;
    w.promote("api-to-production", "production", &[("api", "api-v9.1.1")])
        .await;
    let p = w
        .wait_reason("api-to-production", c::REASON_UPSTREAM_NOT_READY)
        .await;
    assert_eq!(p.status.unwrap().phase, Some(Phase::Pending));
    assert!(w.pulls().is_empty(), "no PR while the gate holds");

    w.promote("api-to-staging", "staging", &[("api", "api-v9.1.1")])
        .await;
    let merge = w.merge_when_open("api-to-staging").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        w.promotions()
            .get("api-to-production")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Some(Phase::Pending)
    );
    w.argo_sync("api-staging", &merge, "Healthy").await;
    w.wait_phase("api-to-staging", Phase::Synced, T).await;
    w.wait_phase("api-to-production", Phase::PrOpened, T).await;
    assert_eq!(w.pulls().len(), 2);
}

#[tokio::test]
async fn operator_killed_in_every_phase_never_duplicates_anything() {
    let mut w = World::new("restart", &["api"]).await;
    w.environment(
        "production",
        serde_json::json!({ "notifications": { "release": true } }),
    )
    .await;
    w.promote("api-restart", "production", &[("api", "api-v9.2.0")])
        .await;
    let p = w.wait_phase("api-restart", Phase::PrOpened, T).await;
    w.restart_operator();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.pulls().len(), 1);
    let number = p.status.unwrap().pull_request.unwrap().number;
    let merge = w.fake.merge(&w.gitops, number).unwrap();
    w.wait_phase("api-restart", Phase::Merged, T).await;
    w.restart_operator();
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.wait_phase("api-restart", Phase::Synced, T).await;
    w.restart_operator();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(w.pulls().len(), 1, "same PR");
    assert_eq!(w.statuses().len(), 1, "one status");
    let releases = w.fake.releases(&w.source);
    assert_eq!(releases.len(), 1, "one release");
    // Namespaced and unique to the object, so a recycled name never reuses it.
    let uid = w
        .promotions()
        .get("api-restart")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    assert_eq!(
        releases[0].tag_name,
        format!("deploy/production/{}/api-restart-{}", w.ns, &uid[..8])
    );
    let branches = w.fake.branches(&w.gitops);
    assert_eq!(
        branches.len(),
        1,
        "main only: the merged promotion's branch is deleted: {branches:?}"
    );
}

#[tokio::test]
async fn missing_file_is_a_clear_condition_and_the_promotion_recovers_when_fixed() {
    let w = World::new("missing-file", &["api"]).await;
    w.promote(
        "worker-to-production",
        "production",
        &[("worker", "worker-v1.0.0")],
    )
    .await;
    let p = w
        .wait_reason("worker-to-production", c::REASON_MANIFEST_ERROR)
        .await;
    let ready = baton_integration::ready(&p);
    assert!(
        ready
            .message
            .contains("syrf/environments/production/worker/config.yaml: file not found"),
        "{}",
        ready.message
    );
    assert!(w.pulls().is_empty(), "no partial PR");
    assert!(w.fake.branches(&w.gitops).len() == 1, "no branch either");
    let events = w.wait_event("worker-to-production", "ManifestError").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("ManifestError") && e.contains("file not found")),
        "{events:?}"
    );

    // Malformed YAML is named too.
    w.fake.push(
        &w.gitops,
        "main",
        &[(
            "syrf/environments/production/worker/config.yaml",
            "service:\n  chartTag: [unclosed\n",
        )],
        "broken",
    );
    w.wait_for(
        "worker-to-production",
        T,
        |p| {
            p.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.message.contains("not valid YAML"))
            })
        },
        "invalid YAML condition",
    )
    .await;
    assert!(w.pulls().is_empty());

    w.fake.push(
        &w.gitops,
        "main",
        &[(
            "syrf/environments/production/worker/config.yaml",
            &baton_integration::config_yaml("worker", "worker-v0.9.0"),
        )],
        "fix",
    );
    w.wait_phase("worker-to-production", Phase::PrOpened, T)
        .await;
    assert_eq!(w.pulls().len(), 1);
}

#[tokio::test]
async fn deleting_before_merge_closes_the_pr_and_its_branch() {
    let w = World::new("delete", &["api", "web"]).await;
    w.promote("api-delete", "production", &[("api", "api-v9.3.0")])
        .await;
    w.wait_phase("api-delete", Phase::PrOpened, T).await;
    let branch = w.pulls()[0].head.clone();
    w.delete_and_wait("api-delete").await;
    assert_eq!(w.pulls()[0].state, "closed");
    assert!(
        w.fake.branch_sha(&w.gitops, &branch).is_none(),
        "branch deleted"
    );

    // After the merge, deletion leaves GitHub alone.
    w.promote("web-delete", "production", &[("web", "web-v7.0.0")])
        .await;
    let p = w.wait_phase("web-delete", Phase::PrOpened, T).await;
    w.fake
        .merge(&w.gitops, p.status.unwrap().pull_request.unwrap().number)
        .unwrap();
    w.wait_phase("web-delete", Phase::Merged, T).await;
    let before = w.fake.requests().len();
    w.delete_and_wait("web-delete").await;
    let after: Vec<_> = w
        .fake
        .requests()
        .into_iter()
        .skip(before)
        .filter(|r| r.path.contains(&w.gitops) && r.method != "GET")
        .collect();
    assert!(
        after.is_empty(),
        "no writes to GitHub after a merged promotion is deleted: {after:?}"
    );
}

#[tokio::test]
async fn two_promotions_of_one_service_queue_instead_of_racing() {
    let w = World::new("queue", &["api"]).await;
    w.promote("api-first", "production", &[("api", "api-v10.0.0")])
        .await;
    w.wait_phase("api-first", Phase::PrOpened, T).await;
    w.promote("api-second", "production", &[("api", "api-v10.0.1")])
        .await;
    let p = w
        .wait_for(
            "api-second",
            T,
            |p| {
                p.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.reason == c::REASON_QUEUED))
            },
            "Queued",
        )
        .await;
    let msg = baton_integration::ready(&p).message;
    assert!(msg.contains("api-first"), "{msg}");
    assert_eq!(w.pulls().len(), 1, "no competing PR");
    let number = w.pulls()[0].number;
    w.fake.close(&w.gitops, number);
    w.wait_phase("api-first", Phase::Rejected, T).await;
    w.wait_phase("api-second", Phase::PrOpened, T).await;
    assert_eq!(w.pulls().iter().filter(|p| p.state == "open").count(), 1);
}

#[tokio::test]
async fn signed_webhook_reports_the_merge_and_bad_signatures_are_refused() {
    let w = World::new("webhook", &["api"]).await;
    w.promote("api-hook", "production", &[("api", "api-v9.4.0")])
        .await;
    let p = w.wait_phase("api-hook", Phase::PrOpened, T).await;
    let pr = p.status.unwrap().pull_request.unwrap();
    let merge = w.fake.merge(&w.gitops, pr.number).unwrap();
    let body = serde_json::json!({
        "action": "closed", "number": pr.number,
        "repository": { "full_name": w.gitops },
        "pull_request": { "number": pr.number, "state": "closed", "merged": true, "merge_commit_sha": merge, "head": { "ref": pr.branch } }
    })
    .to_string();
    let http = w.operator.as_ref().unwrap().http.clone();
    let (code, _) = post(&http, &body, "sha256=0000").await;
    assert_eq!(code, 401);
    let (code, _) = post(
        &http,
        "{not json",
        &baton_github::webhook::sign(baton_integration::WEBHOOK_SECRET.as_bytes(), b"{not json"),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = post(
        &http,
        &body,
        &baton_github::webhook::sign(
            baton_integration::WEBHOOK_SECRET.as_bytes(),
            body.as_bytes(),
        ),
    )
    .await;
    assert_eq!(code, 202);
    let p = w
        .wait_phase("api-hook", Phase::Merged, Duration::from_secs(10))
        .await;
    assert_eq!(merge_of(&p), merge);
}

/// A minimal HTTP/1.1 POST of a GitHub delivery.
async fn post(addr: &str, body: &str, signature: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: pull_request\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

#[tokio::test]
async fn two_replicas_one_leader_and_a_quick_handover() {
    use baton_integration::Operator;
    let mut w = World::new("leader", &["api"]).await;
    // The world's operator leads; a second replica waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let standby = Operator::start_with(w.cp, &w.ns, &[("BATON_LOG_FORMAT", "json")]);
    w.promote("api-leader", "production", &[("api", "api-v9.5.0")])
        .await;
    let p = w.wait_phase("api-leader", Phase::PrOpened, T).await;
    assert_eq!(w.pulls().len(), 1);
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(w.client.clone(), &w.ns);
    let holder = leases
        .get("baton-leader")
        .await
        .expect("lease")
        .spec
        .and_then(|s| s.holder_identity)
        .expect("holder");
    let leader_http = w.operator.as_ref().unwrap().http.clone();
    assert!(
        leader_http.ends_with(holder.trim_start_matches("baton-")),
        "leader is the first replica: {holder} vs {leader_http}"
    );
    let standby_log = standby.logs();
    assert!(
        standby_log.contains("waiting for leadership") && !standby_log.contains("\"leading\""),
        "{standby_log}"
    );
    for line in standby_log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("JSON log line expected ({e}): {line}"));
    }

    // Graceful stop of the leader releases the Lease: the standby takes over at once.
    let stopped = std::time::Instant::now();
    let leader = w.operator.take().unwrap();
    let leader_log_path = leader.log.clone();
    assert!(leader.terminate().success(), "clean exit on SIGTERM");
    let leader_log = std::fs::read_to_string(leader_log_path).unwrap();
    assert!(leader_log.contains("lease released"), "{leader_log}");
    w.operator = Some(standby);
    let merge = w
        .fake
        .merge(&w.gitops, p.status.unwrap().pull_request.unwrap().number)
        .unwrap();
    let p = w
        .wait_phase("api-leader", Phase::Merged, Duration::from_secs(20))
        .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "handover took {:?}",
        stopped.elapsed()
    );
    assert_eq!(
        p.status
            .unwrap()
            .pull_request
            .unwrap()
            .merge_commit
            .as_deref(),
        Some(merge.as_str())
    );
    assert!(w.operator.as_ref().unwrap().logs().contains("leading"));
}

#[tokio::test]
async fn metrics_health_and_no_secrets_in_logs_or_events() {
    let w = World::new("metrics", &["api"]).await;
    w.promote("api-metrics", "production", &[("api", "api-v9.6.0")])
        .await;
    let merge = w.merge_when_open("api-metrics").await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.wait_phase("api-metrics", Phase::Synced, T).await;
    let http = w.operator.as_ref().unwrap().http.clone();
    // Counted right after the status write that the test saw: give it a moment.
    let needles = [
        r#"baton_promotions{environment="production",phase="Synced"} 1"#,
        r#"baton_phase_transitions_total{environment="production",to="Synced"} 1"#,
        r#"baton_deployments_total{environment="production",service="api",result="Success"} 1"#,
        r#"baton_stage_duration_seconds_count{environment="production",stage="Review"} 1"#,
        r#"baton_lead_time_seconds_count{environment="production"} 1"#,
        r#"baton_github_requests_total{operation="create_pull",class="2xx"} 1"#,
        "baton_github_rate_limit_remaining ",
        "baton_reconcile_duration_seconds_count ",
        // From the Environment controller, once it records the Synced version.
        r#"baton_service_version_info{environment="production",service="api",version="api-v9.6.0"} 1"#,
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (code, body) = get(&http, "/metrics").await;
        assert_eq!(code, 200);
        if needles.iter().all(|n| body.contains(n)) || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for needle in needles {
        assert!(body.contains(needle), "{needle} missing in:\n{body}");
    }
    assert_eq!(get(&http, "/healthz").await.0, 200);
    assert_eq!(get(&http, "/readyz").await.0, 200);
    let log = w.operator.as_ref().unwrap().logs();
    assert!(
        log.contains("HTTP server listening"),
        "the log is the real one"
    );
    for secret in [
        baton_testkit::fake_github::TOKEN,
        baton_integration::WEBHOOK_SECRET,
    ] {
        assert!(!log.contains(secret), "secret leaked into the operator log");
        for e in w.events("api-metrics").await {
            assert!(!e.contains(secret), "secret leaked into an Event");
        }
    }
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// `kubectl kustomize config/`, as JSON documents.
fn rendered_config(w: &World) -> Vec<serde_json::Value> {
    let dir = baton_testkit::repo_root().join("config");
    let out =
        w.cp.run_kubectl(["kustomize", &dir.to_string_lossy()])
            .unwrap();
    assert!(out.success, "config/ renders: {}", out.stderr);
    out.stdout
        .split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str::<serde_json::Value>(d).expect("rendered YAML parses"))
        .collect()
}

#[tokio::test]
async fn shipped_config_is_hardened_and_its_least_rbac_runs_the_whole_flow() {
    let mut w = World::without_operator("rbac", &["api"]).await;
    let docs = rendered_config(&w);
    let of = |kind: &str| {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let deploy = of("Deployment").remove(0);
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        c["resources"]["limits"]["memory"].is_string()
            && c["resources"]["requests"]["cpu"].is_string()
    );
    assert_eq!(of("CustomResourceDefinition").len(), 2);
    assert_eq!(of("ServiceMonitor").len(), 1);
    assert_eq!(
        of("ConfigMap")[0]["metadata"]["labels"]["grafana_dashboard"],
        "1"
    );
    for role in of("ClusterRole").iter().chain(of("Role").iter()) {
        for rule in role["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs"] {
                assert!(
                    !rule[field].as_array().unwrap().iter().any(|v| v == "*"),
                    "wildcard in {rule}"
                );
            }
        }
    }

    // Install exactly the shipped RBAC and run the operator as its ServiceAccount.
    let wanted = [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let items: Vec<serde_json::Value> = docs
        .into_iter()
        .filter(|d| wanted.contains(&d["kind"].as_str().unwrap_or_default()))
        .collect();
    let list = std::env::temp_dir().join(format!("baton-rbac-{}.json", w.ns));
    std::fs::write(
        &list,
        serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items }).to_string(),
    )
    .unwrap();
    let applied =
        w.cp.run_kubectl([
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &list.to_string_lossy(),
        ])
        .unwrap();
    assert!(applied.success, "{}", applied.stderr);
    let token =
        w.cp.run_kubectl([
            "create",
            "token",
            "baton",
            "-n",
            "baton-system",
            "--duration=1h",
        ])
        .unwrap();
    assert!(token.success, "{}", token.stderr);
    let kubeconfig = std::env::temp_dir().join(format!("baton-sa-{}.kubeconfig", w.ns));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: baton\n  user:\n    token: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: baton\ncurrent-context: c\n",
            w.cp.server(),
            token.stdout.trim()
        ),
    )
    .unwrap();
    let denied =
        w.cp.run_kubectl([
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "auth",
            "can-i",
            "list",
            "secrets",
            "-n",
            &w.ns,
        ])
        .unwrap();
    assert_eq!(
        denied.stdout.trim(),
        "no",
        "the operator cannot list Secrets"
    );
    // Secrets are read only where a team binds the credentials role.
    let can_get = |ns: &str| {
        w.cp.run_kubectl([
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "auth",
            "can-i",
            "get",
            "secrets",
            "-n",
            ns,
        ])
        .unwrap()
        .stdout
        .trim()
        .to_owned()
    };
    assert_eq!(
        can_get(&w.ns),
        "no",
        "no Secret access before the team grants it"
    );
    let team = baton_testkit::repo_root().join("config/team/rolebinding.yaml");
    let bound =
        w.cp.run_kubectl(["apply", "-n", &w.ns, "-f", &team.to_string_lossy()])
            .unwrap();
    assert!(bound.success, "{}", bound.stderr);
    assert_eq!(can_get(&w.ns), "yes");
    assert_eq!(can_get("kube-system"), "no", "no cluster-wide Secret reads");
    let lease_name = format!("baton-leader-{}", w.ns);
    w.operator = Some(baton_integration::Operator::start_with(
        w.cp,
        &w.ns,
        &[
            ("KUBECONFIG", &kubeconfig.to_string_lossy()),
            ("POD_NAMESPACE", "baton-system"),
            ("BATON_LEASE_NAME", &lease_name),
        ],
    ));

    w.promote("api-rbac", "production", &[("api", "api-v9.7.0")])
        .await;
    let merge = w.merge_when_open("api-rbac").await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.wait_phase("api-rbac", Phase::Synced, T).await;
    assert_eq!(w.statuses().len(), 1);
    let events = w.wait_event("api-rbac", "Synced").await;
    assert!(
        events.iter().any(|e| e.starts_with("Synced")),
        "events are allowed too: {events:?}"
    );
    let log = w.operator.as_ref().unwrap().logs();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "RBAC denied something:\n{log}"
    );
    // Deleting before merge needs the finalizer update rights as well.
    w.promote("api-rbac-delete", "production", &[("api", "api-v9.8.0")])
        .await;
    w.wait_phase("api-rbac-delete", Phase::PrOpened, T).await;
    w.delete_and_wait("api-rbac-delete").await;
}

#[tokio::test]
async fn missing_secret_and_unknown_environment_are_named_and_recover() {
    let w = World::new("secret", &["api"]).await;
    w.promote("api-nowhere", "qa", &[("api", "api-v9.9.0")])
        .await;
    let p = w
        .wait_reason("api-nowhere", c::REASON_ENVIRONMENT_NOT_FOUND)
        .await;
    let msg = baton_integration::ready(&p).message;
    assert!(msg.contains("Environment \"qa\" not found"), "{msg}");
    w.environment(
        "qa",
        serde_json::json!({ "github": { "secretRef": { "name": "qa-token" } } }),
    )
    .await;
    let p = w
        .wait_reason("api-nowhere", c::REASON_SECRET_NOT_FOUND)
        .await;
    let msg = baton_integration::ready(&p).message;
    assert!(
        msg.contains("Secret \"qa-token\"") && msg.contains("not found"),
        "{msg}"
    );
    assert!(
        w.wait_event("api-nowhere", "SecretNotFound")
            .await
            .iter()
            .any(|e| e.starts_with("SecretNotFound"))
    );
    assert!(w.pulls().is_empty());
    w.fake.push(
        &w.gitops,
        "main",
        &[(
            "syrf/environments/qa/api/config.yaml",
            &baton_integration::config_yaml("api", "api-v1.0.0"),
        )],
        "qa env",
    );
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "qa-token" },
        "stringData": { "token": baton_testkit::fake_github::TOKEN }
    }))
    .unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(w.client.clone(), &w.ns)
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    w.wait_phase("api-nowhere", Phase::PrOpened, T).await;
}
