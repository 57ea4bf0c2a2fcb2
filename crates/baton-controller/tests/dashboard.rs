//! The Grafana dashboard in config/ only queries metrics Baton exports.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use baton_controller::metrics::Metrics;

/// Series names Baton exports, from the `# TYPE` lines of a scrape after some activity
/// (families without samples are not printed).
fn exported() -> BTreeSet<String> {
    let m = Metrics::new();
    let t = |s: i64| k8s_openapi::jiff::Timestamp::from_second(1_790_000_000 + s).unwrap();
    let times = baton_api::promotion::PhaseTimes {
        pending: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(0))),
        pr_opened: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(5))),
        merged: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(60))),
        ..Default::default()
    };
    let services = vec!["api".to_owned()];
    for phase in [
        baton_api::Phase::PrOpened,
        baton_api::Phase::Merged,
        baton_api::Phase::Failed,
        baton_api::Phase::Synced,
    ] {
        m.phase_changed("production", &services, phase, &times, t(120), Some(t(-60)));
    }
    m.set_phase_counts(
        &[(("production".to_owned(), baton_api::Phase::Synced), 1)]
            .into_iter()
            .collect(),
    );
    m.set_running(
        "syrf",
        "production",
        &[baton_api::environment::ServiceRecord {
            name: "api".into(),
            version: "api-v1.0.0".into(),
            promotion: "production-api".into(),
            ..Default::default()
        }],
    );
    m.restored("production", 60.0);
    m.set_rollbacks(
        "production",
        &[(
            (
                "api".to_owned(),
                baton_controller::metrics::RollbackResult::Synced,
            ),
            1,
        )]
        .into_iter()
        .collect(),
    );
    m.github_request("get_pull", "2xx", Some(4999), false);
    m.reconciled(std::time::Duration::from_millis(3), Some("kubernetes"));
    let mut names = BTreeSet::new();
    for line in m.encode().lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if (k == "expr" || k == "definition") && v.is_string() {
                    out.push(v.as_str().unwrap().to_owned());
                } else {
                    exprs(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| exprs(i, out)),
        _ => {}
    }
}

#[test]
fn every_dashboard_query_names_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/dashboards/baton.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 12, "{queries:?}");
    let exported = exported();
    let mut used = BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(i) = rest.find("baton_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            used.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "dashboard queries unknown metrics {unknown:?}; exported: {exported:?}"
    );
    // And the dashboard covers what users asked for.
    for needed in [
        "baton_promotions",
        "baton_stage_duration_seconds_bucket",
        "baton_lead_time_seconds_bucket",
        "baton_deployments_total",
        "baton_time_to_restore_seconds_sum",
        "baton_github_requests_total",
        "baton_github_rate_limit_remaining",
        "baton_reconcile_errors_total",
        "baton_service_version_info",
    ] {
        assert!(used.contains(needed), "dashboard does not plot {needed}");
    }
    assert!(
        queries.iter().any(|q| q.contains("$environment")),
        "queries are per environment"
    );
}
