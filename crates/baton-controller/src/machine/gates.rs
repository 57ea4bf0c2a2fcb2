//! Gates that hold a Pending promotion: the queue rule and the upstream gate. Pure:
//! they read lists of Promotions and Application facts gathered by `observe`.

use baton_api::environment::QueuePolicy;
use baton_api::promotion::SupersededBy;
use std::time::Duration;

use baton_api::promotion::ServiceVersion;
use baton_api::{LABEL_PROMOTED_FROM, Phase, Promotion};
use k8s_openapi::jiff::{self, Timestamp};
use kube::ResourceExt;

use super::plan;
use super::{Blocker, Successor};

/// Creation order: time, then name (two objects created in the same second).
fn key(q: &Promotion) -> (Option<Timestamp>, String) {
    (
        q.metadata.creation_timestamp.clone().map(|t| t.0),
        q.name_any(),
    )
}

/// Two Promotions never race on one environment and service: they queue in creation
/// order. The older one holds the lane until it reaches a terminal phase (or is deleted),
/// unless this one replaces it (see [`supersedes`]).
pub fn queue(p: &Promotion, all: &[&Promotion], policy: QueuePolicy) -> Option<Blocker> {
    let mine = key(p);
    let services: Vec<&str> = p.spec.services.iter().map(|s| s.name.as_str()).collect();
    let (q, service) = all
        .iter()
        .filter(|q| q.name_any() != p.name_any() && q.spec.environment == p.spec.environment)
        .filter(|q| q.metadata.deletion_timestamp.is_none())
        .filter(|q| !phase(q).is_terminal())
        .filter(|q| key(q) < mine)
        .filter(|q| !supersedes(p, q, policy))
        .find_map(|q| {
            q.spec
                .services
                .iter()
                .find(|s| services.contains(&s.name.as_str()))
                .map(|s| (q, s.name.clone()))
        })?;
    Some(Blocker::Queued(format!(
        "waiting for Promotion {:?} ({}), which also promotes {service} to {}; promotions to the same environment and service run one at a time, oldest first",
        q.name_any(),
        phase(q),
        p.spec.environment
    )))
}

fn phase(q: &Promotion) -> Phase {
    q.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

/// The upstream Environment an automatic Promotion came from.
pub fn promoted_from(p: &Promotion) -> Option<&str> {
    p.labels().get(LABEL_PROMOTED_FROM).map(String::as_str)
}

/// Whether `newer` replaces `older`: both unmerged-or-newer in the same Environment,
/// `newer` created later and still alive, and either both automatic from the same
/// upstream (the newer one carries every service that still differs), or the queue is
/// `LatestWins` and they share a service. A merged Promotion is never replaced: its
/// change is already in Git.
pub fn supersedes(newer: &Promotion, older: &Promotion, policy: QueuePolicy) -> bool {
    if newer.name_any() == older.name_any()
        || newer.namespace() != older.namespace()
        || newer.spec.environment != older.spec.environment
        || newer.metadata.deletion_timestamp.is_some()
        || key(newer) <= key(older)
        || !matches!(phase(older), Phase::Pending | Phase::PrOpened)
        || matches!(
            phase(newer),
            Phase::Failed | Phase::Rejected | Phase::Superseded
        )
    {
        return false;
    }
    let automatic = matches!(
        (promoted_from(newer), promoted_from(older)),
        (Some(a), Some(b)) if a == b
    );
    let shared = older
        .spec
        .services
        .iter()
        .any(|s| newer.spec.services.iter().any(|t| t.name == s.name));
    automatic || (policy == QueuePolicy::LatestWins && shared)
}

/// The newest Promotion that replaces `p`, once it can: at once while `p` has no pull
/// request; otherwise when the replacement has its own pull request (so the closed one
/// can link it) or no longer needs one.
pub fn superseded_by(p: &Promotion, all: &[&Promotion], policy: QueuePolicy) -> Option<Successor> {
    let has_pr = p
        .status
        .as_ref()
        .and_then(|s| s.pull_request.as_ref())
        .is_some_and(|pr| pr.number > 0 || !pr.branch.is_empty());
    let q = all
        .iter()
        .filter(|q| supersedes(q, p, policy))
        .filter(|q| {
            let pr_open = q
                .status
                .as_ref()
                .and_then(|s| s.pull_request.as_ref())
                .is_some_and(|pr| pr.number > 0);
            !has_pr || pr_open || matches!(phase(q), Phase::Merged | Phase::Synced)
        })
        .max_by_key(|q| key(q))?;
    let carries = q
        .spec
        .services
        .iter()
        .filter_map(|s| {
            let src = q.spec.source_of(&s.name)?;
            Some((s.name.clone(), src.repository.clone(), src.commit.clone()))
        })
        .collect();
    Some(Successor {
        by: SupersededBy {
            promotion: q.name_any(),
            pull_request_url: q
                .status
                .as_ref()
                .and_then(|s| s.pull_request.as_ref())
                .filter(|pr| pr.number > 0)
                .map(|pr| pr.url.clone()),
        },
        carries,
    })
}

/// The upstream Application of one service, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamApp {
    pub service: String,
    pub name: String,
    /// Synced and Healthy now.
    pub healthy: bool,
    /// Since when it has been Healthy (Argo CD's `status.health.lastTransitionTime`),
    /// when it is and Argo CD says.
    pub healthy_since: Option<Timestamp>,
}

/// The most recent Synced Promotion of `service` in `environment`, with when it
/// reached Synced and the version it carried.
pub fn latest_synced<'a>(
    promotions: &[&'a Promotion],
    environment: &str,
    service: &str,
) -> Option<(Option<Timestamp>, &'a Promotion, &'a ServiceVersion)> {
    promotions
        .iter()
        .filter(|q| q.spec.environment == environment && phase(q) == Phase::Synced)
        .filter_map(|q| {
            let s = q.spec.services.iter().find(|s| s.name == service)?;
            let at = q
                .status
                .as_ref()
                .and_then(|st| st.phase_times.synced.clone())
                .map(|t| t.0);
            Some((at, *q, s))
        })
        .max_by_key(|(at, q, _)| (*at, key(q)))
}

/// How much of `soak` is left for a version Synced at `synced_at` whose Application
/// has been Healthy since `healthy_since`: the clock starts at the later of the two, so
/// a Degraded blip (a new health transition) starts it again.
pub fn soak_remaining(
    synced_at: Option<Timestamp>,
    healthy_since: Option<Timestamp>,
    soak: Duration,
    now: Timestamp,
) -> Duration {
    let since = synced_at.max(healthy_since).unwrap_or(now);
    let elapsed = Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO);
    soak.saturating_sub(elapsed)
}

/// With `spec.upstream`, every version must already run, Synced and Healthy, in the
/// upstream environment: its most recent Synced Promotion of the service carried this
/// version, and the service's upstream Application is Synced and Healthy now; with a
/// `soakTime`, for at least that long.
pub fn upstream(
    p: &Promotion,
    upstream: &str,
    promotions: &[&Promotion],
    apps: &[UpstreamApp],
    soak: Duration,
    now: Timestamp,
) -> Option<Blocker> {
    let mut missing = Vec::new();
    let mut soaking: Vec<(String, Duration, Duration)> = Vec::new();
    for svc in &p.spec.services {
        let latest = latest_synced(promotions, upstream, &svc.name);
        let version_ok = latest.is_some_and(|(_, _, s)| s.value() == svc.value());
        let app = apps.iter().find(|a| a.service == svc.name);
        let healthy = app.is_some_and(|a| a.healthy);
        if version_ok && healthy {
            let since = app.and_then(|a| a.healthy_since);
            let left = soak_remaining(latest.and_then(|l| l.0), since, soak, now);
            if !left.is_zero() {
                soaking.push((
                    format!("{}:{}", svc.name, plan::short_value(svc.value())),
                    soak.saturating_sub(left),
                    left,
                ));
            }
            continue;
        }
        let why = match (&latest, version_ok) {
            (None, _) => format!("no Synced promotion of {} to {upstream} yet", svc.name),
            (Some((_, _, s)), false) => {
                format!(
                    "{upstream} runs {}:{}",
                    svc.name,
                    plan::short_value(s.value())
                )
            }
            _ => format!(
                "{} in {upstream} is not Synced and Healthy",
                app.map(|a| a.name.as_str()).unwrap_or_default()
            ),
        };
        missing.push(format!(
            "{}:{} ({why})",
            svc.name,
            plan::short_value(svc.value())
        ));
    }
    if !missing.is_empty() {
        return Some(Blocker::UpstreamNotReady(format!(
            "not yet Synced and Healthy in {upstream}: {}",
            missing.join(", ")
        )));
    }
    let remaining = soaking.iter().map(|(_, _, left)| *left).max()?;
    let parts: Vec<String> = soaking
        .iter()
        .map(|(what, ran, left)| {
            format!("{what} has run for {} ({} left)", human(*ran), human(*left))
        })
        .collect();
    let until = now
        .checked_add(jiff_span(remaining))
        .map(|t| format!(" (until {})", t.round(jiff::Unit::Second).unwrap_or(t)))
        .unwrap_or_default();
    Some(Blocker::Soaking {
        message: format!(
            "soaking in {upstream} for soakTime {}: {}; {} remain{until}",
            human(soak),
            parts.join(", "),
            human(remaining)
        ),
        remaining,
    })
}

fn jiff_span(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// `1h5m`, `25m50s`, `0s`: durations as the API writes them.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Whether `repository` (`owner/name`) is one the Environment allows statuses and
/// releases on: `owner/name` or `owner/*` entries; an empty list allows any.
pub fn source_allowed(allowed: &[String], repository: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| match a.strip_suffix("/*") {
            Some(owner) => repository
                .split_once('/')
                .is_some_and(|(o, _)| o.eq_ignore_ascii_case(owner)),
            None => a.eq_ignore_ascii_case(repository),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::promotion::{PromotionSpec, PromotionStatus, PullRequestStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + secs).expect("valid")
    }

    fn promo(name: &str, created: i64, services: &[&str], phase: Phase, pr: u64) -> Promotion {
        let spec: PromotionSpec = serde_json::from_value(json!({
            "environment": "production",
            "source": { "repository": "o/src", "commit": "a".repeat(40) },
            "services": services.iter().map(|s| json!({ "name": s, "version": "v" })).collect::<Vec<_>>(),
        }))
        .expect("spec");
        let mut p = Promotion::new(name, spec);
        p.metadata.namespace = Some("team".into());
        p.metadata.creation_timestamp = Some(Time(at(created)));
        p.status = Some(PromotionStatus {
            phase: Some(phase),
            pull_request: (pr > 0).then(|| PullRequestStatus {
                number: pr,
                url: format!("https://github.com/o/g/pull/{pr}"),
                branch: format!("baton/{name}"),
                ..PullRequestStatus::default()
            }),
            ..PromotionStatus::default()
        });
        p
    }

    fn auto(mut p: Promotion) -> Promotion {
        p.metadata.labels = Some([(LABEL_PROMOTED_FROM.to_owned(), "staging".to_owned())].into());
        p
    }

    #[test]
    fn automatic_promotions_replace_older_automatic_ones_under_any_queue() {
        let old = auto(promo("a1", 0, &["api"], Phase::PrOpened, 1));
        let new = auto(promo("a2", 10, &["api", "web"], Phase::PrOpened, 2));
        assert!(supersedes(&new, &old, QueuePolicy::Fifo));
        assert!(
            !supersedes(&old, &new, QueuePolicy::Fifo),
            "only newer replaces older"
        );
        let merged = auto(promo("a0", 0, &["api"], Phase::Merged, 1));
        assert!(
            !supersedes(&new, &merged, QueuePolicy::Fifo),
            "a merge is never undone"
        );
        let failed_new = auto(promo("a3", 20, &["api"], Phase::Failed, 0));
        assert!(!supersedes(&failed_new, &old, QueuePolicy::Fifo));
        let by_hand = promo("h", 0, &["api"], Phase::PrOpened, 3);
        assert!(
            !supersedes(&new, &by_hand, QueuePolicy::Fifo),
            "Fifo keeps hand-written ones"
        );
        assert!(supersedes(&new, &by_hand, QueuePolicy::LatestWins));
        let other_service = promo("h2", 0, &["db"], Phase::PrOpened, 4);
        assert!(!supersedes(&new, &other_service, QueuePolicy::LatestWins));
    }

    #[test]
    fn an_open_pull_request_is_replaced_once_the_new_one_has_its_own() {
        let old = promo("old", 0, &["api"], Phase::PrOpened, 1);
        let new_pending = promo("new", 10, &["api"], Phase::Pending, 0);
        assert_eq!(
            superseded_by(&old, &[&old, &new_pending], QueuePolicy::LatestWins),
            None
        );
        // The newer one does not queue behind the one it replaces.
        assert_eq!(
            queue(&new_pending, &[&old, &new_pending], QueuePolicy::LatestWins),
            None
        );
        assert!(queue(&new_pending, &[&old, &new_pending], QueuePolicy::Fifo).is_some());
        let new_open = promo("new", 10, &["api"], Phase::PrOpened, 2);
        let newest = promo("newest", 20, &["api"], Phase::PrOpened, 3);
        let s = superseded_by(&old, &[&old, &new_open, &newest], QueuePolicy::LatestWins)
            .expect("superseded");
        assert_eq!(s.by.promotion, "newest");
        assert_eq!(
            s.by.pull_request_url.as_deref(),
            Some("https://github.com/o/g/pull/3")
        );
        assert_eq!(
            s.carries,
            vec![("api".to_owned(), "o/src".to_owned(), "a".repeat(40))]
        );
        // Without a PR of its own, the older one is replaced at once.
        let old_pending = promo("old", 0, &["api"], Phase::Pending, 0);
        assert!(
            superseded_by(
                &old_pending,
                &[&old_pending, &new_pending],
                QueuePolicy::LatestWins
            )
            .is_some()
        );
    }

    #[test]
    fn the_soak_clock_starts_at_the_later_of_sync_and_last_health_transition() {
        let soak = Duration::from_secs(600);
        assert_eq!(
            soak_remaining(Some(at(0)), Some(at(-50)), soak, at(100)),
            Duration::from_secs(500)
        );
        assert_eq!(
            soak_remaining(Some(at(0)), Some(at(300)), soak, at(400)),
            Duration::from_secs(500),
            "a blip at 300 restarts it"
        );
        assert_eq!(
            soak_remaining(Some(at(0)), None, soak, at(700)),
            Duration::ZERO
        );
        assert_eq!(human(Duration::from_secs(3 * 3600 + 5)), "3h5s");
        assert_eq!(human(Duration::ZERO), "0s");
    }

    #[test]
    fn the_upstream_gate_says_how_long_the_soak_still_takes() {
        let mut up = promo("up", 0, &["api"], Phase::Synced, 1);
        up.spec.environment = "staging".into();
        if let Some(s) = up.status.as_mut() {
            s.phase_times.synced = Some(Time(at(0)));
        }
        let down = promo("down", 5, &["api"], Phase::Pending, 0);
        let app = UpstreamApp {
            service: "api".into(),
            name: "api-staging".into(),
            healthy: true,
            healthy_since: Some(at(0)),
        };
        let b = upstream(
            &down,
            "staging",
            &[&up],
            std::slice::from_ref(&app),
            Duration::from_secs(1800),
            at(600),
        )
        .expect("held");
        assert_eq!(b.retry_after(), Some(Duration::from_secs(1200)));
        assert!(
            b.message().contains("soakTime 30m") && b.message().contains("20m left"),
            "{}",
            b.message()
        );
        assert_eq!(
            upstream(
                &down,
                "staging",
                &[&up],
                std::slice::from_ref(&app),
                Duration::from_secs(1800),
                at(1800)
            ),
            None
        );
        let sick = UpstreamApp {
            healthy: false,
            ..app
        };
        let b = upstream(&down, "staging", &[&up], &[sick], Duration::ZERO, at(0)).expect("held");
        assert_eq!(b.reason(), c_reason_upstream());
    }

    fn c_reason_upstream() -> &'static str {
        baton_api::conditions::REASON_UPSTREAM_NOT_READY
    }

    #[test]
    fn source_repositories_allow_exact_names_and_owner_wildcards() {
        let allowed = vec!["camaradesuk/*".to_owned(), "other/one".to_owned()];
        assert!(source_allowed(&allowed, "camaradesuk/syrf-test"));
        assert!(source_allowed(&allowed, "other/one"));
        assert!(!source_allowed(&allowed, "other/two"));
        assert!(!source_allowed(&allowed, "camaradesuk-evil/x"));
        assert!(source_allowed(&[], "anyone/anything"));
    }
}
