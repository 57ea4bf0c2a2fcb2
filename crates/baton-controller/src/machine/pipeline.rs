//! The pipeline between Environments: upstream cycles, what runs where (the
//! Environment's status), and what an automatic Promotion carries. Pure.
//!
//! ```text
//!  staging Promotion Synced ──▶ staging runs api:v2 (Healthy since T)
//!        │  soakTime after T
//!        ▼
//!  production autoPromote: every service whose staging version differs from
//!  production's GitOps files ──▶ one Promotion `production-from-staging-<hash>`
//!        │  upstream changes again before the merge
//!        ▼
//!  a newer automatic Promotion (all differing services) ──▶ the older one Superseded
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use baton_api::environment::{HistoryEntry, ServiceRecord};
use baton_api::promotion::{PromotionSpec, ServiceVersion};
use baton_api::{
    ANNOTATION_UPSTREAM_PROMOTIONS, Environment, LABEL_PROMOTED_FROM, Phase, Promotion,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::gates::{self, UpstreamApp};

/// `staging -> production -> staging` when the chain `env, upstream, ...` ends in a
/// name it already holds.
pub fn cycle(chain: &[Environment]) -> Option<String> {
    let (last, before) = chain.split_last()?;
    let name = last.name_any();
    let start = before.iter().position(|e| e.name_any() == name)?;
    let names: Vec<String> = chain[start..].iter().map(ResourceExt::name_any).collect();
    Some(names.join(" -> "))
}

/// What runs in `environment` per service, as last proven Synced by a Promotion, with
/// since when its Application has been Healthy (`apps` by service) and the earlier
/// Synced versions (newest first, at most `limit`). Derived from the Promotions and
/// merged with `previous` (the status as written before), so deleting old Promotions
/// loses nothing and a lost status is rebuilt from the Promotions still there.
pub fn records(
    environment: &str,
    promotions: &[&Promotion],
    apps: &BTreeMap<String, UpstreamApp>,
    previous: &[ServiceRecord],
    limit: usize,
) -> Vec<ServiceRecord> {
    let mut services: Vec<&str> = promotions
        .iter()
        .filter(|p| p.spec.environment == environment)
        .filter(|p| p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Synced))
        .flat_map(|p| p.spec.services.iter().map(|s| s.name.as_str()))
        .chain(previous.iter().map(|r| r.name.as_str()))
        .collect();
    services.sort_unstable();
    services.dedup();
    services
        .into_iter()
        .filter_map(|service| {
            let mut synced = synced_entries(promotions, environment, service);
            if let Some(old) = previous.iter().find(|r| r.name == service) {
                synced.push(entry_of(old));
                synced.extend(old.history.iter().cloned());
            }
            // Newest first; one entry per Promotion.
            synced.sort_by(|a, b| {
                b.synced_at
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&a.synced_at.as_ref().map(|t| t.0))
            });
            let mut seen = std::collections::HashSet::new();
            synced.retain(|e| seen.insert(e.promotion.clone()));
            let mut entries = synced.into_iter();
            let current = entries.next()?;
            let synced_at = current.synced_at.as_ref().map(|t| t.0);
            let healthy_since = apps.get(service).filter(|a| a.healthy).map(|a| {
                synced_at
                    .max(a.healthy_since)
                    .unwrap_or(Timestamp::UNIX_EPOCH)
            });
            Some(ServiceRecord {
                name: service.to_owned(),
                version: current.version,
                source: current.source,
                promotion: current.promotion,
                synced_at: current.synced_at,
                healthy_since: healthy_since.map(Time),
                history: entries.take(limit).collect(),
            })
        })
        .collect()
}

/// Every Synced Promotion of `service` in `environment`, as history entries.
fn synced_entries(
    promotions: &[&Promotion],
    environment: &str,
    service: &str,
) -> Vec<HistoryEntry> {
    promotions
        .iter()
        .filter(|p| p.spec.environment == environment)
        .filter(|p| p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Synced))
        .filter_map(|p| {
            let svc = p.spec.services.iter().find(|s| s.name == service)?;
            Some(HistoryEntry {
                version: svc.value().to_owned(),
                source: p.spec.source_of(service).cloned(),
                promotion: p.name_any(),
                synced_at: p.status.as_ref().and_then(|s| s.phase_times.synced.clone()),
            })
        })
        .collect()
}

fn entry_of(r: &ServiceRecord) -> HistoryEntry {
    HistoryEntry {
        version: r.version.clone(),
        source: r.source.clone(),
        promotion: r.promotion.clone(),
        synced_at: r.synced_at.clone(),
    }
}

/// The upstream services whose soak is over, and how long until the next one's ends.
pub fn soaked(
    upstream: &[ServiceRecord],
    soak: Duration,
    now: Timestamp,
) -> (Vec<&ServiceRecord>, Option<Duration>) {
    let mut ready = Vec::new();
    let mut next: Option<Duration> = None;
    for r in upstream {
        let Some(since) = r.healthy_since.as_ref().map(|t| t.0) else {
            continue;
        };
        let left = gates::soak_remaining(r.synced_at.as_ref().map(|t| t.0), Some(since), soak, now);
        if left.is_zero() {
            ready.push(r);
        } else {
            next = Some(next.map_or(left, |n| n.min(left)));
        }
    }
    (ready, next)
}

/// Upstream services that may need promoting: their version differs from the one the
/// downstream last proved Synced. Only these are looked up in Git (so a quiet pipeline
/// costs no GitHub request).
pub fn differing<'a>(
    ready: &[&'a ServiceRecord],
    downstream: &[ServiceRecord],
) -> Vec<&'a ServiceRecord> {
    ready
        .iter()
        .filter(|r| {
            downstream
                .iter()
                .find(|d| d.name == r.name)
                .is_none_or(|d| d.version != r.version)
        })
        .copied()
        .collect()
}

/// What automatic promotion does for one downstream Environment.
#[derive(Debug, Clone)]
pub enum Auto {
    /// Nothing differs (or what differs is already on its way).
    Nothing,
    /// This Promotion exists already (created by an earlier reconcile or replica).
    Exists(String),
    /// Create it.
    Create(Box<Promotion>),
}

/// The automatic Promotion `env` needs: every `candidates` service whose version
/// differs from the GitOps files (`in_git`, by service), except those a hand-written
/// Promotion in flight already carries at that version. Named from its content, so a
/// restart or a second look creates nothing new.
pub fn plan(
    env: &Environment,
    upstream: &str,
    candidates: &[&ServiceRecord],
    in_git: &BTreeMap<String, Option<String>>,
    promotions: &[&Promotion],
) -> Auto {
    let name = env.name_any();
    let in_flight_by_hand = |r: &ServiceRecord| {
        promotions.iter().any(|p| {
            p.spec.environment == name
                && gates::promoted_from(p).is_none()
                && !p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or_default()
                    .is_terminal()
                && p.spec
                    .services
                    .iter()
                    .any(|s| s.name == r.name && s.value() == r.version)
        })
    };
    let mut carry: Vec<&ServiceRecord> = candidates
        .iter()
        .filter(|r| r.source.is_some())
        .filter(|r| in_git.get(&r.name).and_then(|v| v.as_deref()) != Some(r.version.as_str()))
        .filter(|r| !in_flight_by_hand(r))
        .copied()
        .collect();
    if carry.is_empty() {
        return Auto::Nothing;
    }
    carry.sort_by(|a, b| a.name.cmp(&b.name));
    let promotion_name = auto_name(&name, upstream, &carry);
    if promotions.iter().any(|p| p.name_any() == promotion_name) {
        return Auto::Exists(promotion_name);
    }
    let services = carry
        .iter()
        .map(|r| ServiceVersion::from_value(&r.name, &r.version, r.source.clone()))
        .collect();
    let mut from: Vec<&str> = carry.iter().map(|r| r.promotion.as_str()).collect();
    from.sort_unstable();
    from.dedup();
    let mut p = Promotion::new(
        &promotion_name,
        PromotionSpec {
            environment: name,
            source: None,
            services,
            rollback: None,
        },
    );
    p.metadata.namespace = env.namespace();
    p.metadata.labels = Some([(LABEL_PROMOTED_FROM.to_owned(), upstream.to_owned())].into());
    p.metadata.annotations =
        Some([(ANNOTATION_UPSTREAM_PROMOTIONS.to_owned(), from.join(","))].into());
    Auto::Create(Box::new(p))
}

/// `production-from-staging-<16 hex>`: a hash of what it carries (service, version,
/// source commit), so the same content always gets the same name.
pub fn auto_name(environment: &str, upstream: &str, carry: &[&ServiceRecord]) -> String {
    let h = super::plan::content_hash(carry.iter().map(|r| {
        let commit = r
            .source
            .as_ref()
            .map(|s| s.commit.as_str())
            .unwrap_or_default();
        format!("{}={}@{commit};", r.name, r.version)
    }));
    format!("{environment}-from-{upstream}-{h:016x}")
}

#[cfg(test)]
mod tests;
