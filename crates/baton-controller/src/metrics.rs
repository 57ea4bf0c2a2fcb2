//! Prometheus metrics. Labels are typed and low-cardinality: environment and service
//! names (bounded by the Environments and services a team has), phases, stages,
//! results, GitHub operations and error categories; never free text.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use baton_api::Phase;
use baton_api::environment::ServiceRecord;
use k8s_openapi::jiff::Timestamp;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum PhaseLabel {
    Pending,
    PROpened,
    Merged,
    Synced,
    Failed,
    Rejected,
    Superseded,
}

impl From<Phase> for PhaseLabel {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Pending => PhaseLabel::Pending,
            Phase::PrOpened => PhaseLabel::PROpened,
            Phase::Merged => PhaseLabel::Merged,
            Phase::Synced => PhaseLabel::Synced,
            Phase::Failed => PhaseLabel::Failed,
            Phase::Rejected => PhaseLabel::Rejected,
            Phase::Superseded => PhaseLabel::Superseded,
        }
    }
}

/// The stages between phases users time.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Stage {
    /// Pending -> PROpened: preparing and opening the PR (including gates and queueing).
    Open,
    /// PROpened -> Merged: review time.
    Review,
    /// Merged -> Synced: rollout time.
    Rollout,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvLabels {
    pub environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub environment: String,
    pub phase: PhaseLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub environment: String,
    pub to: PhaseLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub environment: String,
    pub stage: Stage,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentLabels {
    pub environment: String,
    pub service: String,
    pub result: Outcome,
}

/// One service's version in one environment (`baton_service_version_info`). Bounded by
/// services x environments: a replaced version's series is removed, not left at 0.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub environment: String,
    pub service: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RollbackLabels {
    pub environment: String,
    pub service: String,
    pub result: RollbackResult,
}

/// Where a rollback Promotion stands, for the rollback counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum RollbackResult {
    InProgress,
    Synced,
    Failed,
}

/// The body format of a webhook target.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum FormatLabel {
    Json,
    Slack,
}

impl From<baton_api::environment::WebhookFormat> for FormatLabel {
    fn from(f: baton_api::environment::WebhookFormat) -> Self {
        match f {
            baton_api::environment::WebhookFormat::Json => FormatLabel::Json,
            baton_api::environment::WebhookFormat::Slack => FormatLabel::Slack,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub environment: String,
    pub format: FormatLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GitHubLabels {
    pub operation: &'static str,
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub category: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 1 s .. ~9 days: covers opening a PR (seconds), review (hours) and rollouts.
    Histogram::new(exponential_buckets(1.0, 3.0, 14))
}

/// Every metric Baton exports.
pub struct Metrics {
    registry: Registry,
    pub promotions: Family<PhaseLabels, Gauge>,
    pub transitions: Family<TransitionLabels, Counter>,
    pub stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram>,
    pub lead_time_seconds: Family<EnvLabels, Histogram, fn() -> Histogram>,
    pub deployments: Family<DeploymentLabels, Counter>,
    pub restore_seconds: Family<EnvLabels, Histogram, fn() -> Histogram>,
    pub rollbacks: Family<RollbackLabels, Gauge>,
    pub github_requests: Family<GitHubLabels, Counter>,
    pub github_remaining: Gauge,
    pub github_graphql_remaining: Gauge,
    pub github_budget_wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    pub github_budget_holds: Counter,
    pub reconcile_seconds: Histogram,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub service_versions: Family<VersionLabels, Gauge>,
    /// What `service_versions` holds, per (namespace, environment): service -> version.
    running: Mutex<BTreeMap<(String, String), BTreeMap<String, String>>>,
    pub notifications_delivered: Family<NotificationLabels, Counter>,
    pub notification_failures: Family<NotificationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("baton");
        let m = Metrics {
            promotions: Family::default(),
            transitions: Family::default(),
            stage_seconds: Family::new_with_constructor(seconds_histogram),
            lead_time_seconds: Family::new_with_constructor(seconds_histogram),
            deployments: Family::default(),
            restore_seconds: Family::new_with_constructor(seconds_histogram),
            rollbacks: Family::default(),
            github_requests: Family::default(),
            github_remaining: Gauge::default(),
            github_graphql_remaining: Gauge::default(),
            github_budget_wait_seconds: Counter::default(),
            github_budget_holds: Counter::default(),
            reconcile_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            reconcile_errors: Family::default(),
            service_versions: Family::default(),
            running: Mutex::new(BTreeMap::new()),
            notifications_delivered: Family::default(),
            notification_failures: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "promotions",
            "Promotions currently in each phase",
            m.promotions.clone(),
        );
        registry.register(
            "phase_transitions",
            "Phase changes, by target phase",
            m.transitions.clone(),
        );
        registry.register("stage_duration_seconds", "Time from one phase to the next: open (Pending->PROpened), review (PROpened->Merged), rollout (Merged->Synced)", m.stage_seconds.clone());
        registry.register(
            "lead_time_seconds",
            "From the source commit's time to Synced",
            m.lead_time_seconds.clone(),
        );
        registry.register(
            "deployments",
            "Finished promotions per service (DORA deployment frequency and change failure rate)",
            m.deployments.clone(),
        );
        registry.register("time_to_restore_seconds", "From a failure (the failed promotion, or the rollback's creation) to its rollback Synced (DORA time to restore); from object timestamps, so restarts lose nothing", m.restore_seconds.clone());
        registry.register(
            "rollbacks",
            "Rollback Promotions per environment, service and result (counted from the API objects)",
            m.rollbacks.clone(),
        );
        registry.register(
            "github_requests",
            "GitHub API requests by operation and status class (304s are free)",
            m.github_requests.clone(),
        );
        registry.register(
            "github_budget_wait_seconds",
            "Time GitHub requests were held back because Baton's share of the hourly budget was spent (per budget window)",
            m.github_budget_wait_seconds.clone(),
        );
        registry.register(
            "github_budget_holds",
            "Reconciles that waited for the GitHub budget (condition GitHubBudget)",
            m.github_budget_holds.clone(),
        );
        registry.register(
            "github_rate_limit_remaining",
            "x-ratelimit-remaining from the last GitHub response",
            m.github_remaining.clone(),
        );
        registry.register(
            "github_graphql_points_remaining",
            "GraphQL rate-limit points left this hour (GitHub counts them apart from REST requests)",
            m.github_graphql_remaining.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            m.reconcile_seconds.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by category",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "service_version_info",
            "1 for the version of each service running in each environment, as last proven Synced (the environment's status.services)",
            m.service_versions.clone(),
        );
        registry.register(
            "notifications_delivered",
            "Chat and webhook notifications the receiver accepted (2xx)",
            m.notifications_delivered.clone(),
        );
        registry.register(
            "notification_failures",
            "Chat and webhook notifications given up on (after retries, refused, or dropped from a full queue)",
            m.notification_failures.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Records a phase change of a promotion to `environment` entered at `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn phase_changed(
        &self,
        environment: &str,
        services: &[String],
        to: Phase,
        entered: &baton_api::promotion::PhaseTimes,
        at: Timestamp,
        source_commit_time: Option<Timestamp>,
    ) {
        let env = environment.to_owned();
        self.transitions
            .get_or_create(&TransitionLabels {
                environment: env.clone(),
                to: to.into(),
            })
            .inc();
        let secs = |from: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            from.map(|t| at.duration_since(t.0).as_secs_f64().max(0.0))
        };
        let stage = match to {
            Phase::PrOpened => Some((Stage::Open, secs(entered.pending.as_ref()))),
            Phase::Merged => Some((Stage::Review, secs(entered.pr_opened.as_ref()))),
            Phase::Synced => Some((Stage::Rollout, secs(entered.merged.as_ref()))),
            _ => None,
        };
        if let Some((stage, Some(s))) = stage {
            self.stage_seconds
                .get_or_create(&StageLabels {
                    environment: env.clone(),
                    stage,
                })
                .observe(s);
        }
        match to {
            Phase::Synced => {
                if let Some(t) = source_commit_time {
                    self.lead_time_seconds
                        .get_or_create(&EnvLabels {
                            environment: env.clone(),
                        })
                        .observe(at.duration_since(t).as_secs_f64().max(0.0));
                }
                for service in services {
                    self.deployments
                        .get_or_create(&DeploymentLabels {
                            environment: env.clone(),
                            service: service.clone(),
                            result: Outcome::Success,
                        })
                        .inc();
                }
            }
            Phase::Failed => {
                for service in services {
                    self.deployments
                        .get_or_create(&DeploymentLabels {
                            environment: env.clone(),
                            service: service.clone(),
                            result: Outcome::Failure,
                        })
                        .inc();
                }
            }
            _ => {}
        }
    }

    /// A rollback reached Synced `seconds` after the failure it answers.
    pub fn restored(&self, environment: &str, seconds: f64) {
        self.restore_seconds
            .get_or_create(&EnvLabels {
                environment: environment.to_owned(),
            })
            .observe(seconds.max(0.0));
    }

    /// Sets the rollback counts of `environment` from its rollback Promotions.
    pub fn set_rollbacks(
        &self,
        environment: &str,
        counts: &HashMap<(String, RollbackResult), i64>,
    ) {
        let services: std::collections::BTreeSet<&String> = counts.keys().map(|(s, _)| s).collect();
        for service in services {
            for result in [
                RollbackResult::InProgress,
                RollbackResult::Synced,
                RollbackResult::Failed,
            ] {
                let n = counts
                    .get(&(service.clone(), result.clone()))
                    .copied()
                    .unwrap_or(0);
                self.rollbacks
                    .get_or_create(&RollbackLabels {
                        environment: environment.to_owned(),
                        service: service.clone(),
                        result,
                    })
                    .set(n);
            }
        }
    }

    /// Replaces the per-phase gauge with current counts.
    pub fn set_phase_counts(&self, counts: &HashMap<(String, Phase), i64>) {
        self.promotions.clear();
        for ((env, phase), n) in counts {
            self.promotions
                .get_or_create(&PhaseLabels {
                    environment: env.clone(),
                    phase: (*phase).into(),
                })
                .set(*n);
        }
    }

    /// What runs in `environment` (of `namespace`) now: one `baton_service_version_info`
    /// series per record. The series of a version no longer recorded there is removed,
    /// so a dashboard never shows two versions of one service in one environment.
    pub fn set_running(&self, namespace: &str, environment: &str, records: &[ServiceRecord]) {
        let now: BTreeMap<String, String> = records
            .iter()
            .map(|r| (r.name.clone(), r.version.clone()))
            .collect();
        // Held while the family changes, so concurrent reconciles of two Environments
        // cannot interleave a removal with another's creation of the same series.
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let key = (namespace.to_owned(), environment.to_owned());
        let before = if now.is_empty() {
            running.remove(&key)
        } else {
            running.insert(key, now.clone())
        }
        .unwrap_or_default();
        let labels = |service: &str, version: &str| VersionLabels {
            environment: environment.to_owned(),
            service: service.to_owned(),
            version: version.to_owned(),
        };
        for (service, version) in &before {
            if now.get(service) == Some(version) {
                continue;
            }
            // Namespace is no label (like every other metric here): an Environment of
            // the same name in another namespace may still run this very version.
            let elsewhere = running.iter().any(|((_, env), services)| {
                env == environment && services.get(service) == Some(version)
            });
            if !elsewhere {
                self.service_versions.remove(&labels(service, version));
            }
        }
        for (service, version) in &now {
            self.service_versions
                .get_or_create(&labels(service, version))
                .set(1);
        }
    }

    /// A GitHub request finished.
    pub fn github_request(
        &self,
        operation: &'static str,
        class: &'static str,
        remaining: Option<i64>,
        graphql: bool,
    ) {
        self.github_requests
            .get_or_create(&GitHubLabels { operation, class })
            .inc();
        match (remaining, graphql) {
            (Some(r), false) => {
                self.github_remaining.set(r);
            }
            (Some(r), true) => {
                self.github_graphql_remaining.set(r);
            }
            (None, _) => {}
        }
    }

    /// The GitHub budget guard started holding requests for `wait`.
    pub fn budget_wait(&self, wait: Duration) {
        self.github_budget_wait_seconds.inc_by(wait.as_secs_f64());
    }

    /// A webhook delivery ended: accepted, or given up on.
    pub fn notification(
        &self,
        environment: &str,
        format: baton_api::environment::WebhookFormat,
        delivered: bool,
    ) {
        let labels = NotificationLabels {
            environment: environment.to_owned(),
            format: format.into(),
        };
        let family = if delivered {
            &self.notifications_delivered
        } else {
            &self.notification_failures
        };
        family.get_or_create(&labels).inc();
    }

    /// A reconcile finished.
    pub fn reconciled(&self, took: Duration, error: Option<&'static str>) {
        self.reconcile_seconds.observe(took.as_secs_f64());
        if let Some(category) = error {
            self.reconcile_errors
                .get_or_create(&ErrorLabels { category })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::promotion::PhaseTimes;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).expect("time")
    }

    fn record(service: &str, version: &str) -> ServiceRecord {
        ServiceRecord {
            name: service.into(),
            version: version.into(),
            promotion: format!("p-{service}-{version}"),
            ..ServiceRecord::default()
        }
    }

    /// The `baton_service_version_info` lines of a scrape, sorted.
    fn versions(m: &Metrics) -> Vec<String> {
        let mut lines: Vec<String> = m
            .encode()
            .lines()
            .filter(|l| l.starts_with("baton_service_version_info{"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn service_version_info_replaces_a_changed_version_instead_of_accumulating() {
        let m = Metrics::new();
        m.set_running(
            "syrf",
            "staging",
            &[record("api", "api-v1.0.0"), record("web", "web-v2.0.0")],
        );
        m.set_running("syrf", "production", &[record("api", "api-v0.9.0")]);
        assert_eq!(
            versions(&m),
            [
                r#"baton_service_version_info{environment="production",service="api",version="api-v0.9.0"} 1"#,
                r#"baton_service_version_info{environment="staging",service="api",version="api-v1.0.0"} 1"#,
                r#"baton_service_version_info{environment="staging",service="web",version="web-v2.0.0"} 1"#,
            ]
        );
        assert!(
            m.encode()
                .contains("# TYPE baton_service_version_info gauge"),
            "{}",
            m.encode()
        );

        // api moves on in staging: its old series goes (not 0), web's stays.
        m.set_running(
            "syrf",
            "staging",
            &[record("api", "api-v1.1.0"), record("web", "web-v2.0.0")],
        );
        // The same again changes nothing.
        m.set_running(
            "syrf",
            "staging",
            &[record("api", "api-v1.1.0"), record("web", "web-v2.0.0")],
        );
        assert_eq!(
            versions(&m),
            [
                r#"baton_service_version_info{environment="production",service="api",version="api-v0.9.0"} 1"#,
                r#"baton_service_version_info{environment="staging",service="api",version="api-v1.1.0"} 1"#,
                r#"baton_service_version_info{environment="staging",service="web",version="web-v2.0.0"} 1"#,
            ]
        );

        // Many versions later there is still one series per service and environment.
        for minor in 2..50 {
            m.set_running(
                "syrf",
                "staging",
                &[record("api", &format!("api-v1.{minor}.0"))],
            );
        }
        assert_eq!(
            versions(&m),
            [
                r#"baton_service_version_info{environment="production",service="api",version="api-v0.9.0"} 1"#,
                r#"baton_service_version_info{environment="staging",service="api",version="api-v1.49.0"} 1"#,
            ],
            "web is no longer recorded in staging: its series went too"
        );

        // Nothing recorded any more: the environment's series go.
        m.set_running("syrf", "production", &[]);
        assert_eq!(
            versions(&m),
            [
                r#"baton_service_version_info{environment="staging",service="api",version="api-v1.49.0"} 1"#
            ]
        );
    }

    #[test]
    fn service_version_info_keeps_a_series_another_namespace_still_holds() {
        let m = Metrics::new();
        m.set_running("team-a", "production", &[record("api", "api-v1.0.0")]);
        m.set_running("team-b", "production", &[record("api", "api-v1.0.0")]);
        m.set_running("team-a", "production", &[record("api", "api-v2.0.0")]);
        assert_eq!(
            versions(&m),
            [
                r#"baton_service_version_info{environment="production",service="api",version="api-v1.0.0"} 1"#,
                r#"baton_service_version_info{environment="production",service="api",version="api-v2.0.0"} 1"#,
            ],
            "team-b still runs api-v1.0.0 in its production"
        );
        m.set_running("team-b", "production", &[record("api", "api-v2.0.0")]);
        assert_eq!(
            versions(&m),
            [
                r#"baton_service_version_info{environment="production",service="api",version="api-v2.0.0"} 1"#
            ]
        );
    }

    #[test]
    fn stages_dora_and_restore_are_recorded() {
        let m = Metrics::new();
        let times = PhaseTimes {
            pending: Some(Time(at(0))),
            pr_opened: Some(Time(at(10))),
            merged: Some(Time(at(3610))),
            ..PhaseTimes::default()
        };
        let services = vec!["api".to_owned()];
        m.phase_changed(
            "production",
            &services,
            Phase::Failed,
            &times,
            at(4000),
            None,
        );
        m.phase_changed(
            "production",
            &services,
            Phase::Synced,
            &times,
            at(4600),
            Some(at(-600)),
        );
        // A rollback Synced 600 s after the failure it answers.
        m.restored("production", 600.0);
        let mut counts = HashMap::new();
        counts.insert(("api".to_owned(), RollbackResult::Synced), 1);
        m.set_rollbacks("production", &counts);
        let text = m.encode();
        assert!(
            text.contains(
                r#"baton_rollbacks{environment="production",service="api",result="Synced"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"baton_rollbacks{environment="production",service="api",result="Failed"} 0"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"baton_deployments_total{environment="production",service="api",result="Failure"} 1"#), "{text}");
        assert!(text.contains(
            r#"baton_deployments_total{environment="production",service="api",result="Success"} 1"#
        ));
        assert!(text.contains(r#"baton_stage_duration_seconds_sum{environment="production",stage="Rollout"} 990.0"#), "{text}");
        assert!(
            text.contains(r#"baton_time_to_restore_seconds_sum{environment="production"} 600.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"baton_lead_time_seconds_sum{environment="production"} 5200.0"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"baton_phase_transitions_total{environment="production",to="Synced"} 1"#
            )
        );
    }

    #[test]
    fn notifications_are_counted_by_environment_and_format() {
        use baton_api::environment::WebhookFormat;
        let m = Metrics::new();
        m.notification("production", WebhookFormat::Slack, true);
        m.notification("production", WebhookFormat::Json, false);
        m.notification("production", WebhookFormat::Json, false);
        let text = m.encode();
        assert!(
            text.contains(
                r#"baton_notifications_delivered_total{environment="production",format="Slack"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"baton_notification_failures_total{environment="production",format="Json"} 2"#
            ),
            "{text}"
        );
    }
}
