//! Rollback on the real control plane with `baton run` as a process and `baton rollback`
//! / `baton unblock` run as a person would: back to the last good version in one PR,
//! automatic rollback after a Degraded rollout, blocked versions (refused, unblocked,
//! skipped by automatic promotion), restarts between steps, and the Environment's
//! history rebuilt after its status is lost.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;
use std::time::{Duration, Instant};

use baton_api::conditions as c;
use baton_api::{Environment, Phase, Promotion};
use baton_integration::{World, baton_bin, ready};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// Merges `name`'s PR and has Argo CD sync `services` in `env` with `health`.
async fn merge_and_sync(w: &World, name: &str, env: &str, services: &[&str], health: &str) {
    let merge = w.merge_when_open(name).await;
    for s in services {
        w.argo_sync(&format!("{s}-{env}"), &merge, health).await;
    }
}

/// `baton <args>` against the test's control plane; (exit code, stdout, stderr).
fn baton(w: &World, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(baton_bin())
        .args(args)
        .args(["-n", &w.ns])
        .env("KUBECONFIG", w.cp.kubeconfig())
        .output()
        .expect("baton runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn rollbacks(w: &World, env: &str) -> Vec<Promotion> {
    w.promotions()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.spec.environment == env && p.spec.rollback.is_some())
        .collect()
}

async fn wait_rollback(w: &World, env: &str) -> Promotion {
    let deadline = Instant::now() + T;
    loop {
        if let Some(p) = rollbacks(w, env).await.into_iter().next() {
            return p;
        }
        assert!(Instant::now() < deadline, "no rollback Promotion in {env}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn env_status(w: &World, name: &str) -> baton_api::EnvironmentStatus {
    let api: Api<Environment> = Api::namespaced(w.client.clone(), &w.ns);
    api.get(name).await.unwrap().status.unwrap_or_default()
}

/// Waits until the Environment's status satisfies `pred`.
async fn wait_env(
    w: &World,
    name: &str,
    what: &str,
    pred: impl Fn(&baton_api::EnvironmentStatus) -> bool,
) -> baton_api::EnvironmentStatus {
    let deadline = Instant::now() + T;
    loop {
        let s = env_status(w, name).await;
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what} not reached: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn history(s: &baton_api::EnvironmentStatus, service: &str) -> Vec<String> {
    s.services
        .iter()
        .find(|r| r.name == service)
        .map(|r| {
            std::iter::once(r.version.clone())
                .chain(r.history.iter().map(|h| h.version.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Production runs v2 then v3 of `services` (each version built at its own commit).
async fn two_releases(w: &mut World, services: &[&str]) -> (String, String) {
    let (old, new) = (w.source_commit("v2"), w.source_commit("v3"));
    for (name, version, sha) in [("release-2", "2", &old), ("release-3", "3", &new)] {
        let list: Vec<(String, String)> = services
            .iter()
            .map(|s| ((*s).to_owned(), format!("{s}-v{version}")))
            .collect();
        let refs: Vec<(&str, &str, &str)> = list
            .iter()
            .map(|(s, v)| (s.as_str(), v.as_str(), sha.as_str()))
            .collect();
        w.promote_from(name, "production", &refs).await;
        merge_and_sync(w, name, "production", services, "Healthy").await;
        w.wait_phase(name, Phase::Synced, T).await;
        w.restart_operator();
    }
    (old, new)
}

#[tokio::test]
async fn one_command_rolls_one_service_back_and_blocks_the_bad_version() {
    let mut w = World::new("rollback-one", &["api"]).await;
    let (old, new) = two_releases(&mut w, &["api"]).await;
    wait_env(&w, "production", "history", |s| {
        history(s, "api") == ["api-v3", "api-v2"]
    })
    .await;

    let (code, out, err) = baton(
        &w,
        &[
            "rollback",
            "--environment",
            "production",
            "api",
            "--reason",
            "500s after deploy",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rolling back api in production: api-v3 -> api-v2"),
        "{out}"
    );
    // Running it again (a retried command) creates nothing new.
    let (code, again, _) = baton(
        &w,
        &[
            "rollback",
            "--environment",
            "production",
            "api",
            "--reason",
            "500s after deploy",
        ],
    );
    assert_eq!(code, 0);
    assert!(again.contains("unchanged"), "{again}");
    w.restart_operator();

    let rb = wait_rollback(&w, "production").await;
    let name = rb.name_any();
    let p = w.wait_phase(&name, Phase::PrOpened, T).await;
    let pr = w
        .pulls()
        .into_iter()
        .find(|x| {
            Some(x.number)
                == p.status
                    .as_ref()
                    .and_then(|s| s.pull_request.as_ref())
                    .map(|pr| pr.number)
        })
        .expect("rollback PR");
    assert_eq!(pr.title, "Roll back api to api-v2 in production");
    assert!(
        pr.labels.contains(&"rollback".to_owned())
            && pr.labels.contains(&"requires-review".to_owned()),
        "{:?}",
        pr.labels
    );
    assert!(
        pr.body.contains("500s after deploy") && pr.body.contains("`api-v3` -> `api-v2`"),
        "{}",
        pr.body
    );
    assert!(pr.body.contains("skips the upstream gate"), "{}", pr.body);
    let file_on_branch = w
        .fake
        .file(
            &w.gitops,
            &pr.head,
            "syrf/environments/production/api/config.yaml",
        )
        .unwrap();
    let file_before = w
        .fake
        .file(
            &w.gitops,
            "main",
            "syrf/environments/production/api/config.yaml",
        )
        .unwrap();
    let changed: Vec<_> = file_before
        .lines()
        .zip(file_on_branch.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "one line back: {changed:?}");
    assert!(changed[0].1.contains("chartTag: api-v2"), "{changed:?}");

    w.restart_operator();
    merge_and_sync(&w, &name, "production", &["api"], "Healthy").await;
    w.wait_phase(&name, Phase::Synced, T).await;
    let deployed = w.fake.statuses(&w.source, &old);
    assert!(
        deployed
            .iter()
            .any(|s| s.context == "argocd/deploy-production"
                && s.state == "success"
                && s.description == "Deployed api:api-v2 to production"),
        "{deployed:?}"
    );
    let removed = w.fake.statuses(&w.source, &new);
    let latest = removed
        .iter()
        .filter(|s| s.context == "argocd/deploy-production")
        .max_by_key(|s| s.id)
        .expect("a status on the rolled-back commit");
    assert_eq!(latest.state, "failure");
    assert_eq!(
        latest.description,
        "Rolled back from production: 500s after deploy"
    );

    let s = wait_env(&w, "production", "api-v2 running and api-v3 blocked", |s| {
        history(s, "api").first().map(String::as_str) == Some("api-v2") && !s.blocked.is_empty()
    })
    .await;
    assert_eq!(
        (s.blocked[0].service.as_str(), s.blocked[0].version.as_str()),
        ("api", "api-v3")
    );
    assert_eq!(s.blocked[0].rollback, name);

    // A new Promotion of the blocked version waits, naming the rollback...
    w.promote_from("api-v3-again", "production", &[("api", "api-v3", &new)])
        .await;
    let held = w
        .wait_reason("api-v3-again", c::REASON_VERSION_BLOCKED)
        .await;
    assert!(
        ready(&held).message.contains(&name) && ready(&held).message.contains("baton unblock"),
        "{}",
        ready(&held).message
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.promotions()
            .get("api-v3-again")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Some(Phase::Pending)
    );
    // ...until a person unblocks it.
    let (code, out, err) = baton(
        &w,
        &[
            "unblock",
            "--environment",
            "production",
            "api",
            "api-v3",
            "--reason",
            "fixed the config, not the code",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("unblocked api:api-v3 in production"), "{out}");
    let unblocked = w.promotions().get(&name).await.unwrap();
    assert_eq!(
        unblocked
            .annotations()
            .get("baton.dev/unblocked")
            .map(String::as_str),
        Some("fixed the config, not the code")
    );
    assert!(
        unblocked
            .annotations()
            .contains_key("baton.dev/unblocked-by")
    );
    w.wait_phase("api-v3-again", Phase::PrOpened, T).await;
    let (code, _, err) = baton(
        &w,
        &[
            "unblock",
            "--environment",
            "production",
            "api",
            "api-v3",
            "--reason",
            "again",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("api:api-v3 is not blocked in production"),
        "{err}"
    );
    let rollback_prs = w
        .pulls()
        .into_iter()
        .filter(|p| p.title.starts_with("Roll back"))
        .count();
    assert_eq!(rollback_prs, 1, "no duplicate rollback PR across restarts");
}

#[tokio::test]
async fn three_services_roll_back_in_one_pull_request() {
    let mut w = World::new("rollback-three", &["api", "web", "worker"]).await;
    two_releases(&mut w, &["api", "web", "worker"]).await;
    wait_env(&w, "production", "history", |s| {
        ["api", "web", "worker"]
            .iter()
            .all(|svc| history(s, svc).len() == 2)
    })
    .await;
    let (code, out, err) = baton(
        &w,
        &[
            "rollback",
            "--environment",
            "production",
            "api",
            "web",
            "worker",
            "--reason",
            "bad release",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let rb = wait_rollback(&w, "production").await;
    let p = w.wait_phase(&rb.name_any(), Phase::PrOpened, T).await;
    let number = p.status.unwrap().pull_request.unwrap().number;
    let pr = w.pulls().into_iter().find(|x| x.number == number).unwrap();
    assert_eq!(pr.title, "Roll back 3 services in production");
    for svc in ["api", "web", "worker"] {
        let path = format!("syrf/environments/production/{svc}/config.yaml");
        let before = w.fake.file(&w.gitops, "main", &path).unwrap();
        let after = w.fake.file(&w.gitops, &pr.head, &path).unwrap();
        let changed: Vec<_> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{svc}: {changed:?}");
        assert!(
            changed[0].1.contains(&format!("chartTag: {svc}-v2")),
            "{changed:?}"
        );
    }
    assert_eq!(
        w.pulls()
            .into_iter()
            .filter(|p| p.title.starts_with("Roll back"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_degraded_rollout_is_rolled_back_automatically_once() {
    let mut w = World::new("rollback-auto", &["api"]).await;
    w.environment(
        "production",
        json!({ "rollback": { "automatic": true, "autoMerge": true }, "pullRequest": { "labels": ["requires-review"] } }),
    )
    .await;
    let good = w.source_commit("good");
    let bad = w.source_commit("bad");
    w.promote_from("api-good", "production", &[("api", "api-v2", &good)])
        .await;
    merge_and_sync(&w, "api-good", "production", &["api"], "Healthy").await;
    w.wait_phase("api-good", Phase::Synced, T).await;
    w.promote_from("api-bad", "production", &[("api", "api-v3", &bad)])
        .await;
    merge_and_sync(&w, "api-bad", "production", &["api"], "Degraded").await;
    let failed = w.wait_phase("api-bad", Phase::Failed, T).await;
    assert_eq!(ready(&failed).reason, c::REASON_DEGRADED);
    w.restart_operator();

    let rb = wait_rollback(&w, "production").await;
    let spec = rb.spec.rollback.clone().unwrap();
    assert_eq!(spec.of.as_deref(), Some("api-bad"));
    assert!(
        spec.reason.starts_with("automatic: Degraded"),
        "{}",
        spec.reason
    );
    assert_eq!(rb.spec.services[0].version.as_deref(), Some("api-v2"));
    let linked = w
        .wait_for(
            "api-bad",
            T,
            |p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.rolled_back_by.clone())
                    .is_some()
            },
            "rolledBackBy",
        )
        .await;
    assert_eq!(
        linked.status.unwrap().rolled_back_by.as_deref(),
        Some(rb.name_any().as_str())
    );
    let p = w.wait_phase(&rb.name_any(), Phase::PrOpened, T).await;
    let pr_number = p.status.unwrap().pull_request.unwrap().number;
    let pr = w
        .pulls()
        .into_iter()
        .find(|x| x.number == pr_number)
        .unwrap();
    assert!(pr.auto_merge, "rollback.autoMerge");
    assert!(pr.labels.contains(&"rollback".to_owned()));

    merge_and_sync(&w, &rb.name_any(), "production", &["api"], "Healthy").await;
    w.wait_phase(&rb.name_any(), Phase::Synced, T).await;
    // The operator exports the rollback and the time to restore, measured from the
    // failed Promotion's Failed time (this process started after the failure).
    // Both are exported just after the status write that records Synced: wait for each.
    let restore = w
        .metrics_with(r#"baton_time_to_restore_seconds_count{environment="production"} 1"#)
        .await;
    assert!(
        restore.contains("baton_time_to_restore_seconds_sum"),
        "{restore}"
    );
    w.metrics_with(r#"baton_rollbacks{environment="production",service="api",result="Synced"} 1"#)
        .await;
    w.restart_operator();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollbacks(&w, "production").await.len(),
        1,
        "rolled back once"
    );
    let statuses = w.fake.statuses(&w.source, &bad);
    let last = statuses
        .iter()
        .filter(|s| s.context == "argocd/deploy-production")
        .max_by_key(|s| s.id)
        .unwrap();
    assert_eq!(last.state, "failure");
    assert!(
        last.description
            .starts_with("Rolled back from production: automatic"),
        "{}",
        last.description
    );
}

#[tokio::test]
async fn automatic_promotion_skips_a_blocked_version_and_takes_the_next() {
    let mut w = World::new("rollback-skip", &["api"]).await;
    w.environment(
        "production",
        json!({ "upstream": "staging", "autoPromote": true }),
    )
    .await;
    let (v2, v3, v4) = (
        w.source_commit("v2"),
        w.source_commit("v3"),
        w.source_commit("v4"),
    );
    // v2 then v3 reach production through staging.
    for (version, sha) in [("api-v2", &v2), ("api-v3", &v3)] {
        let name = format!("{version}-staging");
        w.promote_from(&name, "staging", &[("api", version, sha)])
            .await;
        merge_and_sync(&w, &name, "staging", &["api"], "Healthy").await;
        w.wait_phase(&name, Phase::Synced, T).await;
        let deadline = Instant::now() + T;
        let prod = loop {
            let found = w
                .promotions()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|p| {
                    p.spec.environment == "production"
                        && p.spec.services[0].value() == version
                        && p.spec.rollback.is_none()
                });
            if let Some(p) = found {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "no automatic promotion of {version}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        merge_and_sync(&w, &prod.name_any(), "production", &["api"], "Healthy").await;
        w.wait_phase(&prod.name_any(), Phase::Synced, T).await;
    }
    // The Environment's status reports v3 in production (it is written a moment after
    // the Promotion's, its reconciles being debounced), as `baton status` would show it.
    let envs: Api<Environment> = Api::namespaced(w.client.clone(), &w.ns);
    let deadline = Instant::now() + T;
    while !envs
        .get("production")
        .await
        .ok()
        .and_then(|e| e.status)
        .is_some_and(|s| {
            s.services
                .iter()
                .any(|r| r.name == "api" && r.version == "api-v3")
        })
    {
        assert!(
            Instant::now() < deadline,
            "production never reported api-v3"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // v3 is rolled back in production: staging still runs v3, and production stays on v2.
    let (code, out, err) = baton(
        &w,
        &[
            "rollback",
            "--environment",
            "production",
            "api",
            "--reason",
            "v3 leaks memory",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let rb = wait_rollback(&w, "production").await;
    merge_and_sync(&w, &rb.name_any(), "production", &["api"], "Healthy").await;
    w.wait_phase(&rb.name_any(), Phase::Synced, T).await;
    w.restart_operator();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again: Vec<_> = w
        .promotions()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            p.spec.environment == "production"
                && p.spec.rollback.is_none()
                && p.spec.services[0].value() == "api-v3"
        })
        .collect();
    assert_eq!(
        again.len(),
        1,
        "automation does not re-promote the rolled-back version"
    );
    // v4 in staging is promoted as usual.
    w.promote_from("api-v4-staging", "staging", &[("api", "api-v4", &v4)])
        .await;
    merge_and_sync(&w, "api-v4-staging", "staging", &["api"], "Healthy").await;
    w.wait_phase("api-v4-staging", Phase::Synced, T).await;
    let deadline = Instant::now() + T;
    loop {
        let found = w
            .promotions()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|p| p.spec.environment == "production" && p.spec.services[0].value() == "api-v4");
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "api-v4 not promoted to production"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn history_is_rebuilt_after_the_environment_status_is_lost() {
    let mut w = World::new("rollback-history", &["api"]).await;
    two_releases(&mut w, &["api"]).await;
    wait_env(&w, "production", "history", |s| {
        history(s, "api") == ["api-v3", "api-v2"]
    })
    .await;
    // Someone (or a restore from backup) clears the status.
    let api: Api<Environment> = Api::namespaced(w.client.clone(), &w.ns);
    if let Some(o) = w.operator.take() {
        o.kill();
    }
    api.patch_status(
        "production",
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "status": { "services": null, "blocked": null, "conditions": null } }),
        ),
    )
    .await
    .expect("status cleared");
    assert!(history(&env_status(&w, "production").await, "api").is_empty());
    w.restart_operator();
    wait_env(&w, "production", "history rebuilt", |s| {
        history(s, "api") == ["api-v3", "api-v2"]
    })
    .await;
    // And `baton rollback` works from it.
    let (code, out, err) = baton(
        &w,
        &[
            "rollback",
            "--environment",
            "production",
            "api",
            "--dry-run",
            "--reason",
            "check",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("version: api-v2"), "{out}");
}

#[tokio::test]
async fn a_rollback_with_nothing_to_go_back_to_is_refused() {
    let w = World::new("rollback-refused", &["api"]).await;
    let (code, _, err) = baton(&w, &["rollback", "--environment", "production", "api"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("service \"api\" has never been Synced in production"),
        "{err}"
    );
    // A hand-written rollback to a version that never ran there gets a condition.
    let p = json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": "by-hand" },
        "spec": { "environment": "production", "source": { "repository": w.source, "commit": w.source_sha },
                  "services": [ { "name": "api", "version": "api-v0" } ],
                  "rollback": { "reason": "panic" } }
    });
    w.promotions()
        .patch("by-hand", &PatchParams::apply("e2e"), &Patch::Apply(&p))
        .await
        .unwrap();
    let held = w.wait_reason("by-hand", c::REASON_INVALID_SPEC).await;
    assert!(
        ready(&held).message.contains("api:api-v0 never did"),
        "{}",
        ready(&held).message
    );
    assert!(w.pulls().is_empty());
}
