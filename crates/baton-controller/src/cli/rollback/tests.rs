use baton_api::Phase;
use baton_api::environment::{EnvironmentSpec, EnvironmentStatus, HistoryEntry, ServiceRecord};
use baton_api::promotion::{PromotionSpec, PromotionStatus, SourceRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;

fn at(s: i64) -> Time {
    Time(Timestamp::from_second(1_790_000_000 + s).expect("time"))
}

fn src(c: char) -> Option<SourceRef> {
    Some(SourceRef {
        repository: "o/src".into(),
        commit: c.to_string().repeat(40),
        run_url: None,
    })
}

fn entry(version: &str, promotion: &str, t: i64, c: char) -> HistoryEntry {
    HistoryEntry {
        version: version.into(),
        source: src(c),
        promotion: promotion.into(),
        synced_at: Some(at(t)),
    }
}

fn env() -> Environment {
    let spec: EnvironmentSpec = serde_json::from_value(json!({
        "gitops": { "repository": "o/gitops", "target": { "file": "f/{service}.yaml", "yamlPath": "tag" } },
        "github": { "secretRef": { "name": "gh" } },
    }))
    .expect("spec");
    let mut e = Environment::new("production", spec);
    e.status = Some(EnvironmentStatus {
        services: vec![
            ServiceRecord {
                name: "api".into(),
                version: "v3".into(),
                source: src('c'),
                promotion: "p3".into(),
                synced_at: Some(at(300)),
                history: vec![entry("v2", "p2", 200, 'b'), entry("v1", "p1", 100, 'a')],
                ..ServiceRecord::default()
            },
            ServiceRecord {
                name: "web".into(),
                version: "w1".into(),
                promotion: "pw".into(),
                synced_at: Some(at(50)),
                ..ServiceRecord::default()
            },
        ],
        ..EnvironmentStatus::default()
    });
    e
}

fn args(services: &[&str], to: Option<&str>) -> RollbackArgs {
    RollbackArgs {
        namespace: None,
        environment: "production".into(),
        services: services.iter().map(|s| (*s).to_owned()).collect(),
        to: to.map(Into::into),
        reason: "500s after deploy".into(),
        dry_run: false,
        wait: false,
        timeout: None,
    }
}

fn failed(name: &str, version: &str, merged: i64) -> Promotion {
    let spec: PromotionSpec = serde_json::from_value(json!({
        "environment": "production",
        "source": { "repository": "o/src", "commit": "d".repeat(40) },
        "services": [ { "name": "api", "version": version } ],
    }))
    .expect("spec");
    let mut p = Promotion::new(name, spec);
    let mut status = PromotionStatus {
        phase: Some(Phase::Failed),
        ..PromotionStatus::default()
    };
    status.phase_times.merged = Some(at(merged));
    p.status = Some(status);
    p
}

#[test]
fn a_rollback_goes_back_one_version_and_blocks_the_current_one() {
    let p = plan(&args(&["api"], None), "team", &env(), &[]).expect("plan");
    assert_eq!(p.spec.services[0].version.as_deref(), Some("v2"));
    assert_eq!(
        p.spec.services[0].source,
        src('b'),
        "the restored version's commit"
    );
    let rb = p.spec.rollback.clone().expect("rollback");
    assert_eq!(rb.from[0].version.as_deref(), Some("v3"));
    assert_eq!(rb.from[0].source, src('c'));
    assert_eq!(rb.of.as_deref(), Some("p3"));
    assert_eq!(rb.reason, "500s after deploy");
    assert_eq!(p.labels().get("rollback").map(String::as_str), Some("true"));
    // The same request gives the same name (a retried command creates nothing new).
    let again = plan(&args(&["api"], None), "team", &env(), &[]).expect("plan");
    assert_eq!(again.name_any(), p.name_any());
    // Blocked: the rollback Promotion blocks v3 in production.
    let blocked = rollback::blocked("production", &[&p]);
    assert_eq!(describe(&blocked), "api:v3");
    assert_eq!(blocking("production", "api", "v3", &[&p]).len(), 1);
}

#[test]
fn after_a_failed_merge_the_rollback_returns_to_the_last_synced_version() {
    let bad = failed("p4", "v4", 400);
    let p = plan(&args(&["api"], None), "team", &env(), &[&bad]).expect("plan");
    assert_eq!(p.spec.services[0].version.as_deref(), Some("v3"));
    let rb = p.spec.rollback.expect("rollback");
    assert_eq!(rb.from[0].version.as_deref(), Some("v4"));
    assert_eq!(rb.of.as_deref(), Some("p4"));
}

#[test]
fn several_services_roll_back_in_one_promotion() {
    let mut e = env();
    if let Some(s) = e.status.as_mut() {
        s.services[1].history = vec![entry("w0", "pw0", 10, 'e')];
    }
    let p = plan(&args(&["api", "web"], None), "team", &e, &[]).expect("plan");
    let to: Vec<_> = p
        .spec
        .services
        .iter()
        .map(|s| s.value().to_owned())
        .collect();
    assert_eq!(to, vec!["v2", "w0"]);
    assert_eq!(
        p.spec.rollback.expect("rollback").of,
        None,
        "two Promotions are rolled back"
    );
}

#[test]
fn bad_requests_are_refused_with_a_message_naming_them() {
    let e = env();
    for (a, want) in [
        (
            args(&["db"], None),
            "service \"db\" has never been Synced in production (known there: api, web)",
        ),
        (
            args(&["web"], None),
            "no earlier good version of web in production",
        ),
        (
            args(&["api"], Some("v0")),
            "api:v0 never ran in production (earlier versions there: v2, v1)",
        ),
        (
            args(&["api"], Some("v3")),
            "api:v3 is what production runs now",
        ),
        (args(&["api", "web"], Some("v1")), "--to names one version"),
        (args(&["api", "api"], None), "named twice"),
    ] {
        let err = plan(&a, "team", &e, &[]).expect_err(want);
        assert!(err.contains(want), "{err}");
    }
    let p = plan(&args(&["api"], Some("v1")), "team", &e, &[]).expect("--to an older version");
    assert_eq!(p.spec.services[0].version.as_deref(), Some("v1"));
}

#[test]
fn a_blocked_version_is_skipped_as_a_target() {
    let first = plan(&args(&["api"], None), "team", &env(), &[]).expect("plan");
    // Suppose v2 was itself rolled back earlier: the next rollback skips it.
    let mut older = first.clone();
    older.metadata.name = Some("older".into());
    if let Some(rb) = older.spec.rollback.as_mut() {
        rb.from[0].version = Some("v2".into());
    }
    let p = plan(&args(&["api"], None), "team", &env(), &[&older]).expect("plan");
    assert_eq!(p.spec.services[0].version.as_deref(), Some("v1"));
}
