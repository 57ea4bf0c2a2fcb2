//! Pipelines on the real control plane with `baton run` as a process: automatic
//! promotion from staging to production (SyRF, seeds/001), a three-stage digest chain
//! (Ybor, seeds/004), soak time, freeze windows, LatestWins, upstream cycles, and
//! restarts of the operator at every step of a chain.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use baton_api::conditions as c;
use baton_api::{Environment, Phase, Promotion};
use baton_integration::{World, ready};
use kube::api::{Api, Patch, PatchParams};
use kube::{ResourceExt, api::ListParams};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

/// Every Promotion to `env`, oldest first.
async fn promotions_to(w: &World, env: &str) -> Vec<Promotion> {
    let mut all: Vec<Promotion> = w
        .promotions()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|p| p.spec.environment == env)
        .collect();
    all.sort_by_key(|p| {
        (
            p.metadata.creation_timestamp.clone().map(|t| t.0),
            p.name_any(),
        )
    });
    all
}

/// Waits until `pred` holds for the Promotions to `env`.
async fn wait_promotions(
    w: &World,
    env: &str,
    what: &str,
    pred: impl Fn(&[Promotion]) -> bool,
) -> Vec<Promotion> {
    let deadline = Instant::now() + T;
    loop {
        let all = promotions_to(w, env).await;
        if pred(&all) {
            return all;
        }
        if Instant::now() > deadline {
            let log = w.operator.as_ref().map(|o| o.logs()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "{what}: not reached; promotions to {env}: {:#?}\n--- operator log (tail, newest first) ---\n{}",
                all.iter()
                    .map(|p| (
                        p.name_any(),
                        p.status.as_ref().and_then(|s| s.phase),
                        p.spec.services.clone()
                    ))
                    .collect::<Vec<_>>(),
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn phase(p: &Promotion) -> Phase {
    p.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

fn pr_number(p: &Promotion) -> u64 {
    p.status
        .as_ref()
        .and_then(|s| s.pull_request.as_ref())
        .map(|pr| pr.number)
        .unwrap_or_default()
}

/// Merges `name`'s PR, then syncs the Applications of `services` in `env` at the merge.
async fn merge_and_sync(w: &World, name: &str, env: &str, services: &[&str]) {
    let merge = w.merge_when_open(name).await;
    for s in services {
        w.argo_sync(&format!("{s}-{env}"), &merge, "Healthy").await;
    }
    w.wait_phase(name, Phase::Synced, T).await;
}

async fn environment_status(w: &World, name: &str) -> baton_api::EnvironmentStatus {
    let api: Api<Environment> = Api::namespaced(w.client.clone(), &w.ns);
    api.get(name)
        .await
        .expect("Environment")
        .status
        .unwrap_or_default()
}

/// SyRF (seeds/001): staging promotes api, then web; after each is Synced there, exactly
/// one open production Promotion carries every service staging runs that production
/// does not, with each service's own source commit. The first is superseded by the
/// second; the operator is restarted at every step and nothing is duplicated.
#[tokio::test]
async fn staging_results_open_one_production_promotion_and_supersede_the_older() {
    let mut w = World::new("syrf-chain", &["api", "web"]).await;
    w.environment(
        "production",
        json!({ "upstream": "staging", "autoPromote": true, "pullRequest": { "labels": ["requires-review"] } }),
    )
    .await;
    let api_sha = w.source_commit("api");
    let web_sha = w.source_commit("web");

    w.promote_from("api-staging", "staging", &[("api", "api-v9.1.1", &api_sha)])
        .await;
    w.restart_operator();
    merge_and_sync(&w, "api-staging", "staging", &["api"]).await;
    w.restart_operator();

    let first = wait_promotions(
        &w,
        "production",
        "an automatic production promotion of api",
        |ps| ps.len() == 1 && phase(&ps[0]) == Phase::PrOpened,
    )
    .await
    .remove(0);
    assert_eq!(
        first
            .labels()
            .get("baton.dev/promoted-from")
            .map(String::as_str),
        Some("staging")
    );
    assert_eq!(
        first
            .annotations()
            .get("baton.dev/upstream-promotions")
            .map(String::as_str),
        Some("api-staging")
    );
    assert_eq!(first.spec.services.len(), 1);
    assert_eq!(
        first.spec.services[0].version.as_deref(),
        Some("api-v9.1.1")
    );
    assert_eq!(
        first.spec.services[0]
            .source
            .as_ref()
            .map(|s| s.commit.as_str()),
        Some(api_sha.as_str())
    );
    let first_pr = w
        .pulls()
        .into_iter()
        .find(|p| p.number == pr_number(&first))
        .expect("first production PR");
    assert!(
        first_pr.labels.contains(&"requires-review".to_owned()),
        "{first_pr:?}"
    );
    assert!(
        first_pr.body.contains("Promoted automatically"),
        "{}",
        first_pr.body
    );
    assert!(first_pr.body.contains("api-staging"), "{}", first_pr.body);

    w.promote_from("web-staging", "staging", &[("web", "web-v5.0.1", &web_sha)])
        .await;
    merge_and_sync(&w, "web-staging", "staging", &["web"]).await;
    w.restart_operator();

    let all = wait_promotions(
        &w,
        "production",
        "the first superseded by one carrying both",
        |ps| {
            ps.len() == 2 && phase(&ps[0]) == Phase::Superseded && phase(&ps[1]) == Phase::PrOpened
        },
    )
    .await;
    let (old, new) = (&all[0], &all[1]);
    assert_eq!(old.name_any(), first.name_any());
    let carried: Vec<(&str, Option<&str>)> = new
        .spec
        .services
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.source.as_ref().map(|x| x.commit.as_str()),
            )
        })
        .collect();
    assert_eq!(
        carried,
        vec![
            ("api", Some(api_sha.as_str())),
            ("web", Some(web_sha.as_str()))
        ]
    );
    let new_pr_url = new
        .status
        .as_ref()
        .and_then(|s| s.pull_request.clone())
        .expect("new PR")
        .url;
    let by = old
        .status
        .as_ref()
        .and_then(|s| s.superseded_by.clone())
        .expect("supersededBy");
    assert_eq!(by.promotion, new.name_any());
    assert_eq!(by.pull_request_url.as_deref(), Some(new_pr_url.as_str()));
    assert_eq!(ready(old).reason, c::REASON_SUPERSEDED);

    let pulls = w.pulls();
    let old_pr = pulls
        .iter()
        .find(|p| p.number == pr_number(old))
        .expect("old PR");
    assert_eq!(old_pr.state, "closed");
    assert!(!old_pr.merged);
    let notes: Vec<&str> = old_pr.comments.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(
        notes.len(),
        1,
        "one comment, even across restarts: {notes:?}"
    );
    assert!(notes[0].contains(&new_pr_url), "{}", notes[0]);
    assert!(
        !w.fake.branches(&w.gitops).contains_key(&old_pr.head),
        "the superseded branch is deleted"
    );
    let open: Vec<_> = pulls.iter().filter(|p| p.state == "open").collect();
    assert_eq!(open.len(), 1, "exactly one open production PR: {open:?}");
    // api's commit is carried by the new promotion: no "superseded" status there.
    let api_statuses = w.fake.statuses(&w.source, &api_sha);
    assert!(
        api_statuses
            .iter()
            .all(|s| s.context != "argocd/deploy-production"),
        "{api_statuses:?}"
    );

    // The person merges the production PR; Argo CD syncs; each commit gets its status.
    w.restart_operator();
    merge_and_sync(&w, &new.name_any(), "production", &["api", "web"]).await;
    let deployed = |sha: &str, what: &str| {
        let statuses = w.fake.statuses(&w.source, sha);
        assert!(
            statuses
                .iter()
                .any(|s| s.context == "argocd/deploy-production"
                    && s.state == "success"
                    && s.description == format!("Deployed {what} to production")),
            "{statuses:?}"
        );
    };
    deployed(&api_sha, "api:api-v9.1.1");
    deployed(&web_sha, "web:web-v5.0.1");

    // Production now runs what staging runs: nothing more is created, whatever wakes it.
    w.restart_operator();
    let env = {
        let deadline = Instant::now() + T;
        loop {
            let s = environment_status(&w, "production").await;
            if s.services.len() == 2 || Instant::now() > deadline {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let running: Vec<(&str, &str)> = env
        .services
        .iter()
        .map(|r| (r.name.as_str(), r.version.as_str()))
        .collect();
    assert_eq!(running, vec![("api", "api-v9.1.1"), ("web", "web-v5.0.1")]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        promotions_to(&w, "production").await.len(),
        2,
        "no duplicate promotion"
    );
    let production_prs = w
        .pulls()
        .into_iter()
        .filter(|p| p.title.ends_with("to production"))
        .count();
    assert_eq!(production_prs, 2, "no duplicate PR");
}

/// Ybor (seeds/004): the same digest goes dev -> stg -> prd, each stage opened by Baton
/// once the one before is Synced.
#[tokio::test]
async fn a_digest_travels_a_three_stage_chain() {
    let w = World::new("ybor-chain", &["api"]).await;
    let overlay = |env: &str| {
        (
            format!("apps/api/overlays/{env}/kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n  - name: api\n    newName: ghcr.io/ybor/api\n    digest: sha256:{}\n",
                "0".repeat(64)
            ),
        )
    };
    let files: Vec<(String, String)> = ["dev", "stg", "prd"].iter().map(|e| overlay(e)).collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    w.fake.push(&w.gitops, "main", &refs, "overlays");
    let target = json!({ "target": { "kustomizeImage": { "file": "apps/{service}/overlays/{environment}/kustomization.yaml" }, "yamlPath": null, "file": null } });
    w.environment("dev", json!({ "gitops": target })).await;
    w.environment(
        "stg",
        json!({ "gitops": target, "upstream": "dev", "autoPromote": true }),
    )
    .await;
    w.environment(
        "prd",
        json!({ "gitops": target, "upstream": "stg", "autoPromote": true }),
    )
    .await;

    let digest = format!("sha256:{}", "ab".repeat(32));
    w.promote_from("api-dev", "dev", &[("api", &digest, &w.source_sha)])
        .await;
    merge_and_sync(&w, "api-dev", "dev", &["api"]).await;
    for env in ["stg", "prd"] {
        let p = wait_promotions(&w, env, "an automatic promotion", |ps| ps.len() == 1)
            .await
            .remove(0);
        assert_eq!(p.spec.services[0].digest.as_deref(), Some(digest.as_str()));
        merge_and_sync(&w, &p.name_any(), env, &["api"]).await;
        let file = w
            .fake
            .file(
                &w.gitops,
                "main",
                &format!("apps/api/overlays/{env}/kustomization.yaml"),
            )
            .expect("overlay");
        assert!(file.contains(&format!("digest: {digest}")), "{file}");
    }
    let prd = w
        .fake
        .file(
            &w.gitops,
            "main",
            "apps/api/overlays/prd/kustomization.yaml",
        )
        .unwrap();
    assert!(
        prd.contains("newName: ghcr.io/ybor/api"),
        "other fields kept: {prd}"
    );
}

/// Soak time: the upstream gate of a hand-written Promotion and automatic promotion
/// both wait until staging has run the version Synced and Healthy for `soakTime`; a
/// Degraded blip starts the clock again, and the remaining time is in the condition.
#[tokio::test]
async fn a_degraded_blip_restarts_the_soak_clock() {
    let w = World::new("soak", &["api"]).await;
    let soak = 8;
    w.fake.push(
        &w.gitops,
        "main",
        &[(
            "syrf/environments/canary/api/config.yaml",
            &baton_integration::config_yaml("api", "api-v1.0.0"),
        )],
        "canary",
    );
    w.environment(
        "production",
        json!({ "upstream": "staging", "soakTime": format!("{soak}s") }),
    )
    .await;
    w.environment(
        "canary",
        json!({ "upstream": "staging", "autoPromote": true, "soakTime": format!("{soak}s") }),
    )
    .await;
    w.promote_from(
        "api-staging",
        "staging",
        &[("api", "api-v2", &w.source_sha)],
    )
    .await;
    let merge = w.merge_when_open("api-staging").await;
    w.argo_sync("api-staging", &merge, "Healthy").await;
    w.wait_phase("api-staging", Phase::Synced, T).await;

    w.promote("api-production", "production", &[("api", "api-v2")])
        .await;
    let held = w.wait_reason("api-production", c::REASON_SOAKING).await;
    let msg = ready(&held).message;
    assert!(msg.contains("soakTime 8s") && msg.contains("left"), "{msg}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    w.argo_sync("api-staging", &merge, "Degraded").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.argo_sync("api-staging", &merge, "Healthy").await;
    let recovered = k8s_openapi::jiff::Timestamp::now();

    let opened = w.wait_phase("api-production", Phase::PrOpened, T).await;
    let opened_at = opened
        .status
        .as_ref()
        .and_then(|s| s.phase_times.pr_opened.clone())
        .expect("PROpened time")
        .0;
    let auto = wait_promotions(&w, "canary", "an automatic canary promotion", |ps| {
        ps.len() == 1
    })
    .await
    .remove(0);
    let created = auto
        .metadata
        .creation_timestamp
        .clone()
        .expect("creation time")
        .0;
    // Times have second precision: allow one second.
    for (what, at) in [
        ("the production PR", opened_at),
        ("the canary promotion", created),
    ] {
        let waited = at.duration_since(recovered).as_secs_f64();
        assert!(
            waited >= f64::from(soak) - 1.0,
            "{what} came {waited:.1}s after the recovery, before the {soak}s soak ended"
        );
    }
}

/// Freeze windows: a Deny window holds a Promotion with WindowClosed, the reason and
/// the time it opens; the break-glass annotation lets one through, recorded in status,
/// an Event and the PR body.
#[tokio::test]
async fn a_freeze_window_holds_until_broken_with_a_reason() {
    let w = World::new("freeze", &["api"]).await;
    // A freeze that began a minute ago (in London time) and lasts two hours.
    let begun = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(60))
        .unwrap()
        .in_tz("Europe/London")
        .unwrap();
    let schedule = format!("{} {} * * *", begun.minute(), begun.hour());
    w.environment(
        "production",
        json!({ "windows": [ { "kind": "Deny", "schedule": schedule, "duration": "2h", "timeZone": "Europe/London", "reason": "change freeze" } ] }),
    )
    .await;
    w.promote("api-production", "production", &[("api", "api-v2")])
        .await;
    let held = w
        .wait_reason("api-production", c::REASON_WINDOW_CLOSED)
        .await;
    let msg = ready(&held).message;
    assert!(
        msg.contains("change freeze") && msg.contains("opens at"),
        "{msg}"
    );
    assert_eq!(phase(&held), Phase::Pending);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(w.pulls().is_empty(), "no PR while the window is closed");

    let patch = json!({ "metadata": { "annotations": { "baton.dev/override-windows": "hotfix for incident 42" } } });
    w.promotions()
        .patch("api-production", &PatchParams::apply("oncall-alice"), &Patch::Apply(&json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion", "metadata": { "name": "api-production", "annotations": patch["metadata"]["annotations"] }
        })))
        .await
        .expect("annotated");
    let p = w.wait_phase("api-production", Phase::PrOpened, T).await;
    let ov = p
        .status
        .as_ref()
        .and_then(|s| s.window_override.clone())
        .expect("override recorded");
    assert_eq!(ov.reason, "hotfix for incident 42");
    assert_eq!(ov.by, "oncall-alice");
    assert!(ov.window.contains(&schedule), "{}", ov.window);
    let body = &w.pulls()[0].body;
    assert!(
        body.contains("Window override")
            && body.contains("hotfix for incident 42")
            && body.contains("oncall-alice"),
        "{body}"
    );
    let events = w.wait_event("api-production", "WindowOverridden").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("WindowOverridden") && e.contains("oncall-alice")),
        "{events:?}"
    );
}

/// LatestWins: a newer hand-written Promotion of the same service replaces an older
/// unmerged one: the older ends Superseded, its PR closed with a comment linking the
/// new one, its branch deleted, and its commit told so.
#[tokio::test]
async fn latest_wins_supersedes_an_older_hand_written_promotion() {
    let w = World::new("latest-wins", &["api"]).await;
    w.environment("production", json!({ "queue": "LatestWins" }))
        .await;
    let old_sha = w.source_commit("v2");
    let new_sha = w.source_commit("v3");
    w.promote_from("api-v2", "production", &[("api", "api-v2", &old_sha)])
        .await;
    w.wait_phase("api-v2", Phase::PrOpened, T).await;
    w.promote_from("api-v3", "production", &[("api", "api-v3", &new_sha)])
        .await;
    let new = w.wait_phase("api-v3", Phase::PrOpened, T).await;
    let old = w.wait_phase("api-v2", Phase::Superseded, T).await;
    let new_url = new
        .status
        .as_ref()
        .and_then(|s| s.pull_request.clone())
        .unwrap()
        .url;
    let pulls = w.pulls();
    let old_pr = pulls.iter().find(|p| p.number == pr_number(&old)).unwrap();
    assert_eq!(old_pr.state, "closed");
    assert!(
        old_pr.comments.iter().any(|c| c.body.contains(&new_url)),
        "{:?}",
        old_pr.comments
    );
    assert!(!w.fake.branches(&w.gitops).contains_key(&old_pr.head));
    let statuses = w.fake.statuses(&w.source, &old_sha);
    let s = statuses
        .iter()
        .find(|s| s.context == "argocd/deploy-production")
        .expect("a status on the superseded commit");
    assert_eq!(s.state, "error");
    assert!(
        s.description.starts_with("Superseded by api-v3"),
        "{}",
        s.description
    );
    assert_eq!(s.target_url.as_deref(), Some(new_url.as_str()));
    assert!(
        w.fake.statuses(&w.source, &new_sha).is_empty(),
        "the new commit is not touched"
    );
}

/// With the default Fifo queue, a newer hand-written Promotion waits its turn instead.
#[tokio::test]
async fn fifo_keeps_the_queue_for_hand_written_promotions() {
    let w = World::new("fifo", &["api"]).await;
    w.promote("api-v2", "production", &[("api", "api-v2")])
        .await;
    w.wait_phase("api-v2", Phase::PrOpened, T).await;
    w.promote("api-v3", "production", &[("api", "api-v3")])
        .await;
    w.wait_reason("api-v3", c::REASON_QUEUED).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old = w.promotions().get("api-v2").await.unwrap();
    assert_eq!(phase(&old), Phase::PrOpened, "not superseded under Fifo");
}

/// A cycle in `upstream` is refused with a condition on each Environment involved, and
/// Promotions to them are held with the same reason.
#[tokio::test]
async fn an_upstream_cycle_is_refused_on_every_environment_involved() {
    let w = World::new("cycle", &["api"]).await;
    w.environment("staging", json!({ "upstream": "production" }))
        .await;
    w.environment(
        "production",
        json!({ "upstream": "staging", "autoPromote": true }),
    )
    .await;
    let api: Api<Environment> = Api::namespaced(w.client.clone(), &w.ns);
    for name in ["staging", "production"] {
        let deadline = Instant::now() + T;
        loop {
            let env = api.get(name).await.unwrap();
            let cond = env.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.r#type == c::TYPE_READY)
                    .cloned()
            });
            if let Some(cond) = cond.filter(|c| c.reason == c::REASON_UPSTREAM_CYCLE) {
                assert!(
                    cond.message.contains("staging") && cond.message.contains("production"),
                    "{}",
                    cond.message
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no UpstreamCycle condition: {:?}",
                env.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    w.promote("api-production", "production", &[("api", "api-v2")])
        .await;
    let held = w
        .wait_reason("api-production", c::REASON_UPSTREAM_CYCLE)
        .await;
    assert_eq!(phase(&held), Phase::Pending);
    assert!(w.pulls().is_empty());
}

/// Pipeline settings the API server refuses by itself.
#[tokio::test]
async fn the_api_server_refuses_pipeline_settings_that_cannot_work() {
    let w = World::without_operator("pipeline-invalid", &["api"]).await;
    let api: Api<Environment> = Api::namespaced(w.client.clone(), &w.ns);
    let raw: Api<kube::core::DynamicObject> = Api::namespaced_with(
        w.client.clone(),
        &w.ns,
        &kube::core::ApiResource::erase::<Environment>(&()),
    );
    for (extra, expect) in [
        (
            json!({ "autoPromote": true }),
            "autoPromote needs spec.upstream",
        ),
        (json!({ "soakTime": "30m" }), "soakTime needs spec.upstream"),
        (
            json!({ "upstream": "staging", "soakTime": "half an hour" }),
            "soakTime",
        ),
        (
            json!({ "windows": [ { "kind": "Deny", "schedule": "every friday", "duration": "1h" } ] }),
            "schedule",
        ),
        (json!({ "queue": "Random" }), "queue"),
    ] {
        let mut env = serde_json::to_value(api.get("production").await.unwrap()).unwrap();
        env["metadata"] = json!({ "name": "broken" });
        env.as_object_mut().unwrap().remove("status");
        for (k, v) in extra.as_object().unwrap() {
            env["spec"][k] = v.clone();
        }
        let err = raw
            .create(&Default::default(), &serde_json::from_value(env).unwrap())
            .await
            .expect_err("refused");
        assert!(err.to_string().contains(expect), "{expect}: {err}");
    }
}

/// A window that closes while an auto-merge PR waits turns auto-merge off (GitHub
/// cannot merge during the freeze) and on again when it opens.
#[tokio::test]
async fn a_closed_window_holds_auto_merge_of_an_open_pull_request() {
    let w = World::new("hold-merge", &["api"]).await;
    w.environment(
        "production",
        json!({ "pullRequest": { "autoMerge": true } }),
    )
    .await;
    w.promote("api-production", "production", &[("api", "api-v2")])
        .await;
    w.wait_phase("api-production", Phase::PrOpened, T).await;
    let auto_merge = || w.pulls().first().map(|p| p.auto_merge);
    assert_eq!(
        auto_merge(),
        Some(true),
        "auto-merge enabled when the PR opened"
    );

    let begun = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(60))
        .unwrap()
        .in_tz("UTC")
        .unwrap();
    let schedule = format!("{} {} * * *", begun.minute(), begun.hour());
    w.environment(
        "production",
        json!({ "pullRequest": { "autoMerge": true }, "windows": [ { "kind": "Deny", "schedule": schedule, "duration": "2h", "reason": "release freeze" } ] }),
    )
    .await;
    let held = w
        .wait_for(
            "api-production",
            T,
            |p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.pull_request.as_ref())
                    .is_some_and(|pr| pr.auto_merge_held)
            },
            "auto-merge held",
        )
        .await;
    assert_eq!(ready(&held).reason, c::REASON_WINDOW_CLOSED);
    assert!(
        ready(&held).message.contains("auto-merge is off"),
        "{}",
        ready(&held).message
    );
    assert_eq!(auto_merge(), Some(false), "auto-merge turned off on GitHub");

    w.environment(
        "production",
        json!({ "pullRequest": { "autoMerge": true } }),
    )
    .await;
    let resumed = w
        .wait_for(
            "api-production",
            T,
            |p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.pull_request.as_ref())
                    .is_some_and(|pr| !pr.auto_merge_held)
            },
            "auto-merge resumed",
        )
        .await;
    assert_eq!(ready(&resumed).reason, c::REASON_WAITING_FOR_REVIEW);
    assert_eq!(auto_merge(), Some(true), "auto-merge on again");
}

/// A time zone the API server cannot check is named in the Environment's condition and
/// holds its Promotions with `InvalidSpec` instead of letting them through.
#[tokio::test]
async fn an_unknown_time_zone_is_named_and_holds_promotions() {
    let w = World::new("bad-zone", &["api"]).await;
    w.environment(
        "production",
        json!({ "windows": [ { "kind": "Deny", "schedule": "0 17 * * 5", "duration": "64h", "timeZone": "Europe/Lodnon" } ] }),
    )
    .await;
    w.promote("api-production", "production", &[("api", "api-v2")])
        .await;
    let held = w
        .wait_reason("api-production", c::REASON_INVALID_SPEC)
        .await;
    assert!(
        ready(&held).message.contains("Europe/Lodnon"),
        "{}",
        ready(&held).message
    );
    let api: Api<Environment> = Api::namespaced(w.client.clone(), &w.ns);
    let deadline = Instant::now() + T;
    loop {
        let env = api.get("production").await.unwrap();
        let cond = env.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.r#type == c::TYPE_READY)
                .cloned()
        });
        if let Some(cond) = cond.filter(|c| c.reason == c::REASON_INVALID_SPEC) {
            assert!(cond.message.contains("Europe/Lodnon"), "{}", cond.message);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no InvalidSpec condition: {:?}",
            env.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(w.pulls().is_empty());
}
