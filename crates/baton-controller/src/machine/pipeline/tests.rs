use std::collections::BTreeMap;

use baton_api::environment::EnvironmentSpec;
use baton_api::promotion::{PromotionStatus, SourceRef};
use serde_json::json;

use super::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + secs).expect("valid")
}

fn env(name: &str, upstream: Option<&str>) -> Environment {
    let spec: EnvironmentSpec = serde_json::from_value(json!({
        "gitops": { "repository": "o/gitops", "target": { "file": "f/{service}.yaml", "yamlPath": "tag" } },
        "github": { "secretRef": { "name": "gh" } },
        "upstream": upstream,
        "autoPromote": upstream.is_some(),
    }))
    .expect("spec");
    let mut e = Environment::new(name, spec);
    e.metadata.namespace = Some("team".into());
    e
}

fn promotion(
    name: &str,
    env: &str,
    services: &[(&str, &str)],
    phase: Phase,
    synced: i64,
) -> Promotion {
    let spec: PromotionSpec = serde_json::from_value(json!({
        "environment": env,
        "source": { "repository": "o/src", "commit": "a".repeat(40) },
        "services": services.iter().map(|(s, v)| json!({ "name": s, "version": v })).collect::<Vec<_>>(),
    }))
    .expect("spec");
    let mut p = Promotion::new(name, spec);
    p.metadata.namespace = Some("team".into());
    p.metadata.creation_timestamp = Some(Time(at(synced - 100)));
    let mut status = PromotionStatus {
        phase: Some(phase),
        ..PromotionStatus::default()
    };
    if phase == Phase::Synced {
        status.phase_times.synced = Some(Time(at(synced)));
    }
    p.status = Some(status);
    p
}

fn healthy(service: &str, since: i64) -> (String, UpstreamApp) {
    (
        service.to_owned(),
        UpstreamApp {
            service: service.into(),
            name: format!("{service}-staging"),
            healthy: true,
            healthy_since: Some(at(since)),
        },
    )
}

#[test]
fn a_cycle_is_named_from_where_it_starts() {
    let chain = vec![
        env("production", Some("staging")),
        env("staging", Some("dev")),
        env("dev", Some("staging")),
        env("staging", None),
    ];
    assert_eq!(cycle(&chain).as_deref(), Some("staging -> dev -> staging"));
    assert_eq!(cycle(&chain[..3]), None);
    assert_eq!(cycle(&[]), None);
}

#[test]
fn records_keep_the_latest_synced_version_and_when_it_became_healthy() {
    let old = promotion("old", "staging", &[("api", "v1")], Phase::Synced, 10);
    let new = promotion(
        "new",
        "staging",
        &[("api", "v2"), ("web", "w1")],
        Phase::Synced,
        50,
    );
    let open = promotion("open", "staging", &[("api", "v3")], Phase::PrOpened, 60);
    let other = promotion("prod", "production", &[("api", "v0")], Phase::Synced, 70);
    let all = [&old, &new, &open, &other];
    // api Healthy since before the sync (the clock starts at the sync); web not healthy.
    let apps: BTreeMap<_, _> = [healthy("api", 5)].into();
    let r = records("staging", &all, &apps, &[], 10);
    assert_eq!(r.len(), 2);
    assert_eq!(
        (
            r[0].name.as_str(),
            r[0].version.as_str(),
            r[0].promotion.as_str()
        ),
        ("api", "v2", "new")
    );
    assert_eq!(r[0].healthy_since.as_ref().map(|t| t.0), Some(at(50)));
    assert_eq!(
        r[0].source.as_ref().map(|s| s.repository.as_str()),
        Some("o/src")
    );
    assert_eq!(
        (r[1].name.as_str(), r[1].healthy_since.clone()),
        ("web", None)
    );
}

#[test]
fn only_soaked_services_are_ready_and_the_next_soak_end_is_known() {
    let apps: BTreeMap<_, _> = [healthy("api", 100), healthy("web", 0)].into();
    let a = promotion("a", "staging", &[("api", "v2")], Phase::Synced, 0);
    let b = promotion("b", "staging", &[("web", "w2")], Phase::Synced, 0);
    let r = records("staging", &[&a, &b], &apps, &[], 10);
    let (ready, next) = soaked(&r, Duration::from_secs(300), at(350));
    let names: Vec<&str> = ready.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["web"]);
    assert_eq!(next, Some(Duration::from_secs(50)), "api soaks until 400");
    let (ready, next) = soaked(&r, Duration::ZERO, at(350));
    assert_eq!(ready.len(), 2);
    assert_eq!(next, None);
}

fn record(name: &str, version: &str, promotion: &str) -> ServiceRecord {
    ServiceRecord {
        name: name.into(),
        version: version.into(),
        source: Some(SourceRef {
            repository: "o/src".into(),
            commit: format!("{:0>40}", name.len()),
            run_url: None,
        }),
        promotion: promotion.into(),
        synced_at: Some(Time(at(0))),
        healthy_since: Some(Time(at(0))),
        history: vec![],
    }
}

#[test]
fn the_automatic_promotion_carries_every_differing_service_with_its_source() {
    let prod = env("production", Some("staging"));
    let api = record("api", "v2", "api-staging");
    let web = record("web", "w2", "web-staging");
    let db = record("db", "d1", "db-staging");
    let git: BTreeMap<String, Option<String>> = [
        ("api".to_owned(), Some("v1".to_owned())),
        ("web".to_owned(), Some("w1".to_owned())),
        ("db".to_owned(), Some("d1".to_owned())),
    ]
    .into();
    let Auto::Create(p) = plan(&prod, "staging", &[&web, &api, &db], &git, &[]) else {
        panic!("expected a promotion");
    };
    let carried: Vec<(&str, Option<&str>)> = p
        .spec
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.version.as_deref()))
        .collect();
    assert_eq!(
        carried,
        vec![("api", Some("v2")), ("web", Some("w2"))],
        "db already runs d1"
    );
    assert!(p.spec.services.iter().all(|s| s.source.is_some()));
    assert_eq!(
        p.labels().get(LABEL_PROMOTED_FROM).map(String::as_str),
        Some("staging")
    );
    assert_eq!(
        p.annotations()
            .get(ANNOTATION_UPSTREAM_PROMOTIONS)
            .map(String::as_str),
        Some("api-staging,web-staging")
    );
    assert!(p.name_any().starts_with("production-from-staging-"));
    assert_eq!(p.namespace().as_deref(), Some("team"));
    // Same content, same name: a second look finds it instead of creating another.
    let again = plan(&prod, "staging", &[&api, &web], &git, &[&p]);
    assert!(matches!(again, Auto::Exists(n) if n == p.name_any()));
}

#[test]
fn nothing_is_created_when_git_already_has_it_or_a_person_promotes_it() {
    let prod = env("production", Some("staging"));
    let api = record("api", "v2", "api-staging");
    let git: BTreeMap<String, Option<String>> = [("api".to_owned(), Some("v2".to_owned()))].into();
    assert!(matches!(
        plan(&prod, "staging", &[&api], &git, &[]),
        Auto::Nothing
    ));
    let git: BTreeMap<String, Option<String>> = [("api".to_owned(), Some("v1".to_owned()))].into();
    let by_hand = promotion("api-v2", "production", &[("api", "v2")], Phase::PrOpened, 0);
    assert!(matches!(
        plan(&prod, "staging", &[&api], &git, &[&by_hand]),
        Auto::Nothing
    ));
    let by_hand_done = promotion("api-v2", "production", &[("api", "v2")], Phase::Rejected, 0);
    assert!(matches!(
        plan(&prod, "staging", &[&api], &git, &[&by_hand_done]),
        Auto::Create(_)
    ));
}

#[test]
fn names_depend_on_content_only() {
    let a = record("api", "v2", "x");
    let b = record("api", "v2", "y");
    let c = record("api", "v3", "x");
    assert_eq!(auto_name("p", "s", &[&a]), auto_name("p", "s", &[&b]));
    assert_ne!(auto_name("p", "s", &[&a]), auto_name("p", "s", &[&c]));
}
