//! End to end on the real control plane: `baton run` as a process, the fake GitHub
//! behind the contract gate, and Application statuses written the way Argo CD does.

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
    assert!(pulls[0].body.contains(&format!(
        "<!-- baton:promotion {}/api-v9-1-1-to-production -->",
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
    let events = w.events("api-v9-1-1-to-production").await;
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
