//! Trust under real-world conditions (issue "no false Deployed, no stuck promotion, no
//! second writer"): each scenario runs `baton run` as a process against the real
//! control plane and the fake GitHub behind the contract gate. Application status is
//! written the way Argo CD writes it (simulated: these are states real Argo CD cannot
//! be made to produce on demand, such as a multi-source chart revision or a sync that
//! fails at one exact revision).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use baton_api::Phase;
use baton_api::conditions as c;
use baton_integration::{Operator, World, ready};
use baton_testkit::fake_github::{Fault, FaultKind};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn merge_of(p: &baton_api::Promotion) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pull_request.as_ref())
        .and_then(|pr| pr.merge_commit.clone())
        .expect("merge commit")
}

/// Writes an Application (spec and status) exactly as given.
async fn application(w: &World, name: &str, spec: serde_json::Value, status: serde_json::Value) {
    let apps: Api<baton_api::Application> = Api::namespaced(w.client.clone(), &w.ns);
    let app = json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                      "metadata": { "name": name }, "spec": spec });
    apps.patch(
        name,
        &PatchParams::apply("argocd-application-controller").force(),
        &Patch::Apply(&app),
    )
    .await
    .expect("Application");
    apps.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("Application status");
}

fn single_source(w: &World) -> serde_json::Value {
    json!({ "project": "default",
            "destination": { "server": "https://kubernetes.default.svc", "namespace": "syrf" },
            "source": { "repoURL": format!("https://github.com/{}", w.gitops), "path": "syrf", "targetRevision": "main" } })
}

#[tokio::test]
async fn a_recycled_promotion_name_never_adopts_the_old_pull_request() {
    let w = World::new("recycled", &["api"]).await;
    w.promote("api-to-prod", "production", &[("api", "api-v2.0.0")])
        .await;
    let merge = w.merge_when_open("api-to-prod").await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.wait_phase("api-to-prod", Phase::Synced, T).await;
    let old = w.pulls()[0].clone();
    assert_eq!(
        w.fake.branch_sha(&w.gitops, &old.head),
        None,
        "the branch is deleted once the promotion no longer needs it"
    );
    w.delete_and_wait("api-to-prod").await;

    // Same name, another version, and GitHub refuses the first PR creations.
    w.fake.inject(Fault {
        method: "POST".into(),
        path_prefix: format!("/repos/{}/pulls", w.gitops),
        kind: FaultKind::ServerError(502),
        times: 8,
    });
    w.promote("api-to-prod", "production", &[("api", "api-v3.0.0")])
        .await;
    let p = w.wait_phase("api-to-prod", Phase::PrOpened, T).await;
    let pulls = w.pulls();
    assert_eq!(
        pulls.len(),
        2,
        "a new PR, not the old merged one: {pulls:?}"
    );
    let new = pulls.iter().find(|p| p.number != old.number).unwrap();
    assert_eq!(
        p.status
            .as_ref()
            .unwrap()
            .pull_request
            .as_ref()
            .unwrap()
            .number,
        new.number
    );
    assert_ne!(new.head, old.head, "a branch of its own");
    assert!(
        w.fake
            .file(
                &w.gitops,
                &new.head,
                "syrf/environments/production/api/config.yaml"
            )
            .unwrap()
            .contains("api-v3.0.0")
    );
    let head = w.fake.branch_sha(&w.gitops, &new.head).unwrap();
    assert_eq!(
        w.fake.parents(&w.gitops, &head),
        vec![w.fake.branch_sha(&w.gitops, "main").unwrap()],
        "one commit on today's base"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = w.promotions().get("api-to-prod").await.unwrap();
    assert_eq!(p.status.unwrap().phase, Some(Phase::PrOpened));
    let statuses = w.statuses();
    assert_eq!(
        statuses.len(),
        1,
        "only the first promotion's status: {statuses:?}"
    );
    assert!(statuses[0].description.contains("api-v2.0.0"));
}

#[tokio::test]
async fn a_status_github_refuses_for_good_is_recorded_once_and_the_deployment_kept() {
    let w = World::new("refused", &["api"]).await;
    // A commit GitHub does not know: the status POST answers 422 for good.
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let p = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": "api-unknown" },
        "spec": { "environment": "production", "source": { "repository": w.source, "commit": unknown },
                  "services": [ { "name": "api", "version": "api-v9.9.0" } ] }
    });
    w.promotions()
        .patch(
            "api-unknown",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&p),
        )
        .await
        .unwrap();
    let merge = w.merge_when_open("api-unknown").await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    let p = w.wait_phase("api-unknown", Phase::Synced, T).await;
    let failed = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|x| x.r#type == c::TYPE_NOTIFICATION_FAILED)
        .cloned()
        .expect("NotificationFailed condition");
    assert!(
        failed.message.contains("commit status"),
        "{}",
        failed.message
    );
    assert!(failed.message.contains(&w.source), "{}", failed.message);
    assert!(
        failed.message.contains("spec.source.commit"),
        "names the fix: {}",
        failed.message
    );
    let events = w.wait_event("api-unknown", "NotificationFailed").await;
    assert!(
        events.iter().any(|e| e.starts_with("NotificationFailed")),
        "{events:?}"
    );
    // The operator requeues every second here; a refused status is not retried...
    let attempts = || {
        w.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains(&format!("/statuses/{unknown}")))
            .count()
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(attempts(), 1, "refused once, not retried");
    // ...until the credentials change (say, the App was installed on the repository).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(w.client.clone(), &w.ns);
    secrets
        .patch(
            "github-token",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "rotated": "yes" } } })),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while attempts() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "not tried again with new credentials"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        attempts(),
        2,
        "one more try with the new credentials, then quiet again"
    );
    let p = w.promotions().get("api-unknown").await.unwrap();
    assert_eq!(p.status.unwrap().phase, Some(Phase::Synced));
}

#[tokio::test]
async fn multi_source_application_is_judged_by_its_gitops_source_only() {
    let w = World::new("multisource", &["api"]).await;
    w.promote("api-multi", "production", &[("api", "api-v9.2.0")])
        .await;
    let merge = w.merge_when_open("api-multi").await;
    // (The request log is shared with the tests running beside this one: never cleared.)
    let at = k8s_openapi::jiff::Timestamp::now().to_string();
    // A Helm chart from a chart repository, then `$values` from the GitOps repository.
    let sources = json!([
        { "repoURL": "https://charts.example.com", "chart": "api", "targetRevision": "1.2.3" },
        { "repoURL": format!("https://github.com/{}.git", w.gitops), "targetRevision": "main", "ref": "values" }
    ]);
    application(
        &w,
        "api-production",
        json!({ "project": "default", "destination": { "server": "https://kubernetes.default.svc", "namespace": "syrf" }, "sources": sources }),
        json!({
            "sync": { "status": "Synced", "revisions": ["1.2.3", merge] },
            "health": { "status": "Healthy" },
            "operationState": { "phase": "Succeeded", "startedAt": at, "finishedAt": at,
                                "operation": { "sync": { "revisions": ["1.2.3", merge] }, "initiatedBy": { "automated": true } },
                                "syncResult": { "revision": "1.2.3", "revisions": ["1.2.3", merge] } }
        }),
    )
    .await;
    w.wait_phase("api-multi", Phase::Synced, T).await;
    assert!(
        !w.fake
            .requests()
            .iter()
            .any(|r| r.path.contains(&w.gitops) && r.path.contains("1.2.3")),
        "a chart version never reaches the compare API"
    );
    assert_eq!(w.statuses().len(), 1);
}

#[tokio::test]
async fn a_failed_sync_fails_the_promotion_at_once_with_argo_cds_message() {
    let w = World::new("syncfail", &["api"]).await;
    w.promote("api-bad", "production", &[("api", "api-v9.3.0")])
        .await;
    let merge = w.merge_when_open("api-bad").await;
    let at = k8s_openapi::jiff::Timestamp::now().to_string();
    let message = "one or more objects failed to apply, reason: Service \"api\" is invalid: spec.ports[0].port: Invalid value: 70000";
    // Retrying first: the condition says so.
    application(
        &w,
        "api-production",
        single_source(&w),
        json!({
            "sync": { "status": "OutOfSync", "revision": merge },
            "health": { "status": "Missing" },
            "operationState": { "phase": "Running", "startedAt": at, "retryCount": 1,
                                "operation": { "sync": { "revision": merge }, "initiatedBy": { "automated": true } },
                                "message": format!("{message}. Retrying attempt #1 at 12:06AM."),
                                "syncResult": { "revision": merge } }
        }),
    )
    .await;
    let p = w
        .wait_for(
            "api-bad",
            T,
            |p| {
                p.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|x| x.message.contains("Argo CD is syncing"))
                })
            },
            "a condition saying Argo CD is syncing",
        )
        .await;
    assert!(
        ready(&p).message.contains("attempt 2"),
        "{}",
        ready(&p).message
    );
    // Argo CD gives up: Failed at once (the sync timeout is ten minutes away).
    application(
        &w,
        "api-production",
        single_source(&w),
        json!({
            "operationState": { "phase": "Failed", "startedAt": at, "finishedAt": at, "retryCount": 1,
                                "operation": { "sync": { "revision": merge }, "initiatedBy": { "automated": true } },
                                "message": format!("{message} (retried 1 times)."),
                                "syncResult": { "revision": merge } }
        }),
    )
    .await;
    let p = w
        .wait_phase("api-bad", Phase::Failed, Duration::from_secs(20))
        .await;
    assert_eq!(ready(&p).reason, c::REASON_SYNC_FAILED);
    assert!(ready(&p).message.contains("70000"), "{}", ready(&p).message);
    let statuses = w.statuses();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].state, "failure");
    assert!(
        statuses[0]
            .description
            .contains("Argo CD could not sync api"),
        "{}",
        statuses[0].description
    );
}

#[tokio::test]
async fn a_service_the_merge_did_not_change_needs_no_new_sync_operation() {
    let w = World::new("unchanged", &["api", "web"]).await;
    // web already runs web-v1.0.0 in production: the PR changes api only.
    w.promote(
        "both",
        "production",
        &[("api", "api-v9.4.0"), ("web", "web-v1.0.0")],
    )
    .await;
    let p = w.wait_phase("both", Phase::PrOpened, T).await;
    let base = p.status.as_ref().unwrap().base_commit.clone().unwrap();
    assert_eq!(
        p.status.as_ref().unwrap().unchanged_services,
        vec!["web".to_owned()]
    );
    assert_eq!(w.pulls()[0].title, "Promote api:api-v9.4.0 to production");
    let merge = w.merge_when_open("both").await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    // Real Argo CD: web is Synced at the new head, its last operation at an older commit.
    let at = k8s_openapi::jiff::Timestamp::now().to_string();
    let older = w.fake.parents(&w.gitops, &base);
    let older = older.first().cloned().unwrap_or(base.clone());
    application(
        &w,
        "web-production",
        single_source(&w),
        json!({
            "sync": { "status": "Synced", "revision": merge },
            "health": { "status": "Healthy" },
            "operationState": { "phase": "Succeeded", "startedAt": at, "finishedAt": at,
                                "operation": { "sync": { "revision": older }, "initiatedBy": { "automated": true } },
                                "syncResult": { "revision": older } }
        }),
    )
    .await;
    w.wait_phase("both", Phase::Synced, Duration::from_secs(20))
        .await;
    let statuses = w.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].state, "success");
}

#[tokio::test]
async fn a_source_repository_the_environment_does_not_allow_is_refused_before_any_write() {
    let w = World::new("sources", &["api"]).await;
    w.environment(
        "production",
        json!({ "sourceRepositories": ["someone-else/*"] }),
    )
    .await;
    w.promote("api-elsewhere", "production", &[("api", "api-v9.5.0")])
        .await;
    let p = w
        .wait_reason("api-elsewhere", c::REASON_SOURCE_NOT_ALLOWED)
        .await;
    assert_eq!(p.status.as_ref().unwrap().phase, Some(Phase::Pending));
    assert!(
        ready(&p).message.contains(&w.source),
        "{}",
        ready(&p).message
    );
    assert!(w.pulls().is_empty(), "nothing written");
    // Allowing it lets the promotion go on by itself.
    w.environment(
        "production",
        json!({ "sourceRepositories": ["someone-else/*", "camaradesuk/*"] }),
    )
    .await;
    w.wait_phase("api-elsewhere", Phase::PrOpened, T).await;
}

#[tokio::test]
async fn webhooks_only_wake_and_replays_or_early_claims_change_nothing() {
    let w = World::new("webhookorder", &["api"]).await;
    w.promote("api-hooked", "production", &[("api", "api-v9.6.0")])
        .await;
    let p = w.wait_phase("api-hooked", Phase::PrOpened, T).await;
    let pr = p.status.unwrap().pull_request.unwrap();
    let http = w.operator.as_ref().unwrap().http.clone();
    // A delivery claiming the merge before GitHub says so (out of order, or forged
    // with a leaked secret): confirmed with a GET, so nothing moves.
    let claim = json!({
        "action": "closed", "number": pr.number, "repository": { "full_name": w.gitops },
        "pull_request": { "number": pr.number, "state": "closed", "merged": true,
                          "merge_commit_sha": "1111111111111111111111111111111111111111", "head": { "ref": pr.branch } }
    })
    .to_string();
    assert_eq!(deliver(&http, &claim, "delivery-1").await, 202);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = w.promotions().get("api-hooked").await.unwrap();
    assert_eq!(p.status.as_ref().unwrap().phase, Some(Phase::PrOpened));
    // The real merge, reported by a delivery, and the same delivery again.
    let merge = w.fake.merge(&w.gitops, pr.number).unwrap();
    let real = json!({
        "action": "closed", "number": pr.number, "repository": { "full_name": w.gitops },
        "pull_request": { "number": pr.number, "state": "closed", "merged": true,
                          "merge_commit_sha": merge, "head": { "ref": pr.branch } }
    })
    .to_string();
    assert_eq!(deliver(&http, &real, "delivery-2").await, 202);
    let p = w.wait_phase("api-hooked", Phase::Merged, T).await;
    assert_eq!(
        merge_of(&p),
        merge,
        "the merge commit GitHub reports, not the claim"
    );
    assert_eq!(deliver(&http, &real, "delivery-2").await, 202);
    let logs = w.operator.as_ref().unwrap().logs();
    assert!(
        logs.contains("webhook delivery replayed"),
        "replay recognised"
    );
}

#[tokio::test]
async fn applications_are_watched_in_argo_cds_namespace_by_a_namespaced_operator() {
    let mut w = World::without_operator("appns", &["api"]).await;
    let argo_ns =
        w.cp.namespace(&w.client, "appns-argocd")
            .await
            .expect("namespace");
    w.environment(
        "production",
        json!({ "applications": { "namespace": argo_ns } }),
    )
    .await;
    // Polls only every minute: a prompt Synced proves the watch.
    w.operator = Some(Operator::start_with(
        w.cp,
        &w.ns,
        &[
            ("BATON_APPLICATIONS_NAMESPACE", argo_ns.as_str()),
            ("BATON_MAX_REQUEUE", "60s"),
        ],
    ));
    w.promote("api-ns", "production", &[("api", "api-v9.7.0")])
        .await;
    let merge = w.merge_when_open("api-ns").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    baton_testkit::argocd::sync(
        &w.client,
        &argo_ns,
        "api-production",
        &format!("https://github.com/{}", w.gitops),
        &merge,
        "Healthy",
    )
    .await
    .unwrap();
    w.wait_phase("api-ns", Phase::Synced, Duration::from_secs(15))
        .await;
}

/// Posts a signed `pull_request` delivery with an `X-GitHub-Delivery` id.
async fn deliver(addr: &str, body: &str, id: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let signature = baton_github::webhook::sign(
        baton_integration::WEBHOOK_SECRET.as_bytes(),
        body.as_bytes(),
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_status_computed_from_a_stale_read_is_refused_not_written_backwards() {
    use baton_api::PromotionStatus;
    use baton_controller::fence::Fence;
    use baton_controller::record::Writer;
    let w = World::without_operator("stale", &["api"]).await;
    w.promote("api-stale", "production", &[("api", "api-v9.8.0")])
        .await;
    let read_once = w.promotions().get("api-stale").await.unwrap();
    // One writer (say, the current leader) moves the promotion on...
    let mut current = Writer::new(w.client.clone(), &read_once, Fence::open());
    let opened = PromotionStatus {
        phase: Some(Phase::PrOpened),
        ..PromotionStatus::default()
    };
    current.write(&opened).await.expect("first write");
    // ...and a status computed from the older read is refused, not applied.
    let mut stale = Writer::new(w.client.clone(), &read_once, Fence::open());
    let backwards = PromotionStatus {
        phase: Some(Phase::Pending),
        ..PromotionStatus::default()
    };
    match stale.write(&backwards).await {
        Err(baton_controller::error::Error::Kube(kube::Error::Api(e))) => assert_eq!(e.code, 409),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let now = w.promotions().get("api-stale").await.unwrap();
    assert_eq!(
        now.status.as_ref().and_then(|s| s.phase),
        Some(Phase::PrOpened)
    );
    // A writer that lost its Lease writes nothing at all.
    let fence = Fence::closed();
    let mut fenced = Writer::new(w.client.clone(), &now, fence);
    assert!(matches!(
        fenced.write(&opened).await,
        Err(baton_controller::error::Error::Fenced)
    ));
}

#[tokio::test]
async fn a_leader_paused_past_its_lease_writes_nothing_after_the_standby_took_over() {
    let mut w = World::new("fencing", &["api"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let standby = Operator::start(w.cp, &w.ns);
    w.promote("api-fenced", "production", &[("api", "api-v9.9.1")])
        .await;
    let p = w.wait_phase("api-fenced", Phase::PrOpened, T).await;
    let number = p.status.unwrap().pull_request.unwrap().number;
    // Pause the leader (a long GC pause, a frozen node) well past its 3 s Lease.
    let leader = w.operator.take().unwrap();
    leader.signal("STOP");
    let merge = w.fake.merge(&w.gitops, number).unwrap();
    w.operator = Some(standby);
    w.wait_phase("api-fenced", Phase::Merged, T).await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    w.wait_phase("api-fenced", Phase::Synced, T).await;
    // The old leader wakes up with its in-flight work: it must not write anything.
    leader.signal("CONT");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(w.pulls().len(), 1, "one PR");
    assert_eq!(w.statuses().len(), 1, "one status");
    let log = leader.logs();
    assert!(
        !log.contains("commit status posted"),
        "the old leader posted:\n{log}"
    );
    assert_eq!(log.matches("pull request opened").count(), 1, "{log}");
    let p = w.promotions().get("api-fenced").await.unwrap();
    assert_eq!(p.status.unwrap().phase, Some(Phase::Synced));
    leader.kill();
}

#[tokio::test]
async fn only_the_leaders_pod_is_behind_the_webhook_service() {
    use k8s_openapi::api::core::v1::Pod;
    let mut w = World::new("leaderlabel", &["api"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let standby = Operator::start(w.cp, &w.ns);
    let pods: Api<Pod> = Api::namespaced(w.client.clone(), &w.ns);
    // Pods as a Deployment would have them (objects only: no kubelet needed).
    let pod_of = |op: &Operator| format!("baton-{}", op.http.rsplit(':').next().unwrap());
    for name in [pod_of(w.operator.as_ref().unwrap()), pod_of(&standby)] {
        let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name, "labels": { "app.kubernetes.io/name": "baton" } },
                          "spec": { "containers": [ { "name": "baton", "image": "baton" } ] } });
        pods.patch(&name, &PatchParams::apply("e2e"), &Patch::Apply(&pod))
            .await
            .unwrap();
    }
    let leader_label = |name: String| {
        let pods = pods.clone();
        async move {
            pods.get(&name)
                .await
                .unwrap()
                .metadata
                .labels
                .unwrap_or_default()
                .get("baton.dev/leader")
                .cloned()
        }
    };
    let wait_label = |name: String, want: Option<&'static str>| {
        let label = leader_label;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let got = label(name.clone()).await;
                if got.as_deref() == want {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name}: label {got:?}, want {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    let (first, second) = (pod_of(w.operator.as_ref().unwrap()), pod_of(&standby));
    wait_label(first.clone(), Some("true")).await;
    assert_eq!(
        leader_label(second.clone()).await,
        None,
        "the standby is not behind the Service"
    );
    // Hand-over: the label moves with leadership.
    let leader = w.operator.take().unwrap();
    assert!(leader.terminate().success());
    w.operator = Some(standby);
    wait_label(second, Some("true")).await;
    wait_label(first, None).await;
}
