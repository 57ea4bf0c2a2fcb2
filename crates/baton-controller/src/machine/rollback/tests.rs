use baton_api::conditions::{Condition, ConditionStatus};
use baton_api::environment::ServiceRecord;
use baton_api::promotion::{PromotionStatus, SourceRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;

fn at(s: i64) -> Time {
    Time(Timestamp::from_second(1_790_000_000 + s).expect("time"))
}

fn promotion(name: &str, services: &[(&str, &str)], phase: Phase) -> Promotion {
    let spec: PromotionSpec = serde_json::from_value(json!({
        "environment": "production",
        "source": { "repository": "o/src", "commit": "b".repeat(40) },
        "services": services.iter().map(|(s, v)| json!({ "name": s, "version": v })).collect::<Vec<_>>(),
    }))
    .expect("spec");
    let mut p = Promotion::new(name, spec);
    p.metadata.namespace = Some("team".into());
    p.status = Some(PromotionStatus {
        phase: Some(phase),
        ..PromotionStatus::default()
    });
    p
}

fn failed_after_merge(name: &str, reason: &str) -> Promotion {
    let mut p = promotion(name, &[("api", "v3")], Phase::Failed);
    if let Some(s) = p.status.as_mut() {
        s.phase_times.merged = Some(at(10));
        s.conditions.push(Condition {
            r#type: c::TYPE_READY.into(),
            status: ConditionStatus::False,
            reason: reason.into(),
            message: "api is Degraded".into(),
            observed_generation: None,
            last_transition_time: at(20),
        });
    }
    p
}

fn record(version: &str) -> ServiceRecord {
    ServiceRecord {
        name: "api".into(),
        version: version.into(),
        source: Some(SourceRef {
            repository: "o/src".into(),
            commit: "a".repeat(40),
            run_url: None,
        }),
        promotion: "good".into(),
        ..ServiceRecord::default()
    }
}

fn rollback_of(version: &str, phase: Phase) -> Promotion {
    let mut from = promotion("x", &[("api", version)], phase).spec.services;
    from[0].source = None;
    let mut p = super::promotion(
        "team",
        "production",
        promotion("x", &[("api", "v2")], phase).spec.services,
        from,
        "500s",
        Some("bad".into()),
    );
    p.status = Some(PromotionStatus {
        phase: Some(phase),
        ..PromotionStatus::default()
    });
    p
}

#[test]
fn a_rollback_blocks_what_it_rolled_back_until_unblocked() {
    let rb = rollback_of("v3", Phase::PrOpened);
    let blocked = blocked("production", &[&rb]);
    assert_eq!(blocked.len(), 1);
    assert_eq!(
        (blocked[0].service.as_str(), blocked[0].version.as_str()),
        ("api", "v3")
    );
    assert_eq!(blocked[0].rollback, rb.name_any());
    assert!(
        super::blocked("staging", &[&rb]).is_empty(),
        "per Environment"
    );
    for phase in [Phase::Rejected, Phase::Superseded] {
        assert!(
            super::blocked("production", &[&rollback_of("v3", phase)]).is_empty(),
            "{phase}"
        );
    }
    let mut unblocked = rb.clone();
    unblocked.metadata.annotations =
        Some([(ANNOTATION_UNBLOCKED.to_owned(), "fixed".to_owned())].into());
    assert!(super::blocked("production", &[&unblocked]).is_empty());
}

#[test]
fn the_gate_holds_blocked_versions_except_for_rollbacks_and_overrides() {
    let rb = rollback_of("v3", Phase::Synced);
    let blocked = blocked("production", &[&rb]);
    let again = promotion("again", &[("api", "v3")], Phase::Pending);
    let b = gate(&again, &blocked).expect("held");
    assert_eq!(b.reason(), c::REASON_VERSION_BLOCKED);
    assert!(
        b.message()
            .contains("baton unblock --environment production api v3"),
        "{}",
        b.message()
    );
    assert!(b.message().contains(&rb.name_any()), "{}", b.message());
    let newer = promotion("newer", &[("api", "v4")], Phase::Pending);
    assert_eq!(gate(&newer, &blocked), None);
    let mut forced = again.clone();
    forced.metadata.annotations =
        Some([(ANNOTATION_ALLOW_BLOCKED.to_owned(), "hotfix".to_owned())].into());
    assert_eq!(gate(&forced, &blocked), None);
    assert_eq!(
        gate(&rb, &blocked),
        None,
        "a rollback is never held by a block"
    );
}

#[test]
fn only_failures_after_a_merge_are_rolled_back_automatically_and_never_a_rollback() {
    assert!(needs_rollback(&failed_after_merge(
        "bad",
        c::REASON_DEGRADED
    )));
    assert!(needs_rollback(&failed_after_merge(
        "bad",
        c::REASON_SYNC_TIMEOUT
    )));
    assert!(needs_rollback(&failed_after_merge(
        "bad",
        c::REASON_SYNC_FAILED
    )));
    assert!(!needs_rollback(&failed_after_merge(
        "bad",
        c::REASON_SPEC_CHANGED
    )));
    let mut before_merge = failed_after_merge("bad", c::REASON_DEGRADED);
    if let Some(s) = before_merge.status.as_mut() {
        s.phase_times.merged = None;
    }
    assert!(!needs_rollback(&before_merge));
    let mut answered = failed_after_merge("bad", c::REASON_DEGRADED);
    if let Some(s) = answered.status.as_mut() {
        s.rolled_back_by = Some("rb".into());
    }
    assert!(!needs_rollback(&answered), "once");
    let mut failed_rollback = rollback_of("v3", Phase::Failed);
    if let Some(s) = failed_rollback.status.as_mut() {
        s.phase_times.merged = Some(at(10));
    }
    assert!(
        !needs_rollback(&failed_rollback),
        "never a rollback of a rollback"
    );
}

#[test]
fn the_automatic_rollback_goes_back_to_the_last_good_version() {
    let failed = failed_after_merge("bad", c::REASON_DEGRADED);
    let rb = automatic(&failed, &[record("v2")]).expect("rollback");
    assert_eq!(rb.spec.services[0].version.as_deref(), Some("v2"));
    assert_eq!(
        rb.spec.services[0]
            .source
            .as_ref()
            .map(|s| s.commit.clone()),
        Some("a".repeat(40))
    );
    let spec = rb.spec.rollback.clone().expect("rollback spec");
    assert_eq!(spec.of.as_deref(), Some("bad"));
    assert_eq!(spec.from[0].version.as_deref(), Some("v3"));
    assert_eq!(
        spec.from[0].source.as_ref().map(|s| s.commit.clone()),
        Some("b".repeat(40))
    );
    assert!(
        spec.reason
            .starts_with("automatic: Degraded: api is Degraded"),
        "{}",
        spec.reason
    );
    assert_eq!(
        automatic(&failed, &[record("v2")])
            .expect("again")
            .name_any(),
        rb.name_any(),
        "same name"
    );
    let none = automatic(&failed, &[]).expect_err("nothing to go back to");
    assert!(
        none.contains("no earlier good version of api in production"),
        "{none}"
    );
}

#[test]
fn a_hand_written_rollback_must_target_a_version_that_ran() {
    let mut by_hand = promotion("by-hand", &[("api", "v0")], Phase::Pending);
    by_hand.spec.rollback = Some(RollbackSpec {
        reason: "panic".into(),
        of: None,
        from: vec![],
    });
    let b = check_targets(&by_hand, &[record("v2")]).expect("refused");
    assert!(b.message().contains("api:v0 never did"), "{}", b.message());
    by_hand.spec.services[0].version = Some("v2".into());
    assert_eq!(check_targets(&by_hand, &[record("v2")]), None);
    let plain = promotion("plain", &[("api", "v9")], Phase::Pending);
    assert_eq!(
        check_targets(&plain, &[]),
        None,
        "only rollbacks are checked"
    );
}
