//! Gates that hold a Pending promotion: the queue rule and the upstream gate. Pure:
//! they read lists of Promotions and Application facts gathered by `observe`.

use baton_api::{Phase, Promotion};
use kube::ResourceExt;

use super::Blocker;
use super::plan;

/// Two Promotions never race on one environment and service: they queue in creation
/// order. The older one holds the lane until it reaches a terminal phase (or is deleted).
pub fn queue(p: &Promotion, all: &[&Promotion]) -> Option<Blocker> {
    let key = |q: &Promotion| {
        (
            q.metadata.creation_timestamp.clone().map(|t| t.0),
            q.name_any(),
        )
    };
    let mine = key(p);
    let services: Vec<&str> = p.spec.services.iter().map(|s| s.name.as_str()).collect();
    let (q, service) = all
        .iter()
        .filter(|q| q.name_any() != p.name_any() && q.spec.environment == p.spec.environment)
        .filter(|q| q.metadata.deletion_timestamp.is_none())
        .filter(|q| !phase(q).is_terminal())
        .filter(|q| key(q) < mine)
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

/// The upstream Application of one service, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamApp {
    pub service: String,
    pub name: String,
    /// Synced and Healthy now.
    pub healthy: bool,
}

/// With `spec.upstream`, every version must already run, Synced and Healthy, in the
/// upstream environment: its most recent Synced Promotion of the service carried this
/// version, and the service's upstream Application is Synced and Healthy now.
pub fn upstream(
    p: &Promotion,
    upstream: &str,
    promotions: &[&Promotion],
    apps: &[UpstreamApp],
) -> Option<Blocker> {
    let mut missing = Vec::new();
    for svc in &p.spec.services {
        let latest = promotions
            .iter()
            .filter(|q| q.spec.environment == upstream && phase(q) == Phase::Synced)
            .filter_map(|q| {
                let s = q.spec.services.iter().find(|s| s.name == svc.name)?;
                let at = q
                    .status
                    .as_ref()
                    .and_then(|st| st.phase_times.synced.clone())
                    .map(|t| t.0);
                Some((at, s.value().to_owned()))
            })
            .max_by_key(|(at, _)| *at);
        let version_ok = latest.as_ref().is_some_and(|(_, v)| v == svc.value());
        let app = apps.iter().find(|a| a.service == svc.name);
        let healthy = app.is_some_and(|a| a.healthy);
        if !version_ok || !healthy {
            let why = match (&latest, version_ok) {
                (None, _) => format!("no Synced promotion of {} to {upstream} yet", svc.name),
                (Some((_, v)), false) => {
                    format!("{upstream} runs {}:{}", svc.name, plan::short_value(v))
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
    }
    (!missing.is_empty()).then(|| {
        Blocker::UpstreamNotReady(format!(
            "not yet Synced and Healthy in {upstream}: {}",
            missing.join(", ")
        ))
    })
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
