//! Rollback: what a rollback Promotion targets, which versions a rollback blocks, and
//! when a failed Promotion is rolled back by itself. Pure: the CLI and the Environment
//! controller call it with the objects they read.

use baton_api::conditions as c;
use baton_api::environment::{BlockedVersion, ServiceRecord};
use baton_api::promotion::{PromotionSpec, RollbackSpec, ServiceVersion, SourceRef};
use baton_api::{ANNOTATION_ALLOW_BLOCKED, ANNOTATION_UNBLOCKED, LABEL_ROLLBACK, Phase, Promotion};
use kube::ResourceExt;

use super::Blocker;

/// Versions rolled back in `environment` and not unblocked since: every rollback
/// Promotion there that is not Rejected or Superseded blocks the versions it rolls back
/// from, until annotated `baton.dev/unblocked`.
pub fn blocked(environment: &str, promotions: &[&Promotion]) -> Vec<BlockedVersion> {
    let mut out: Vec<BlockedVersion> = Vec::new();
    for p in promotions
        .iter()
        .filter(|p| p.spec.environment == environment)
        .filter(|p| !p.annotations().contains_key(ANNOTATION_UNBLOCKED))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase),
                Some(Phase::Rejected | Phase::Superseded)
            )
        })
    {
        let Some(rb) = &p.spec.rollback else { continue };
        for from in &rb.from {
            if !out
                .iter()
                .any(|b| b.service == from.name && b.version == from.value())
            {
                out.push(BlockedVersion {
                    service: from.name.clone(),
                    version: from.value().to_owned(),
                    rollback: p.name_any(),
                    reason: rb.reason.clone(),
                    since: p.metadata.creation_timestamp.clone(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.service, &a.version).cmp(&(&b.service, &b.version)));
    out
}

/// The `VersionBlocked` gate: a Promotion carrying a blocked version waits, unless it is
/// a rollback itself or carries `baton.dev/allow-blocked`.
pub fn gate(p: &Promotion, blocked: &[BlockedVersion]) -> Option<Blocker> {
    if p.spec.rollback.is_some() || p.annotations().contains_key(ANNOTATION_ALLOW_BLOCKED) {
        return None;
    }
    let hits: Vec<String> = p
        .spec
        .services
        .iter()
        .filter_map(|s| {
            let b = blocked
                .iter()
                .find(|b| b.service == s.name && b.version == s.value())?;
            Some(format!(
                "{}:{} was rolled back from {} by Promotion {} ({})",
                s.name,
                super::plan::short_value(&b.version),
                p.spec.environment,
                b.rollback,
                b.reason
            ))
        })
        .collect();
    (!hits.is_empty()).then(|| {
        let first = p
            .spec
            .services
            .iter()
            .find(|s| blocked.iter().any(|b| b.service == s.name && b.version == s.value()));
        let example = first
            .map(|s| format!("{} {}", s.name, s.value()))
            .unwrap_or_default();
        Blocker::VersionBlocked(format!(
            "{}; unblock it with `baton unblock --environment {} {example} --reason ...`, or annotate this Promotion {ANNOTATION_ALLOW_BLOCKED}=\"<reason>\"",
            hits.join("; "),
            p.spec.environment
        ))
    })
}

/// Why a rollback cannot be made.
pub type RollbackError = String;

/// What a rollback of one service does: the version it goes back to, the version it
/// removes, and the Promotion it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub to: ServiceVersion,
    pub from: ServiceVersion,
    pub of: String,
}

/// The rollback of `service` in an Environment whose status is `records`. When the
/// newest Promotion of the service failed after its merge, Git holds its version: the
/// rollback goes back to the last version proven Synced and answers that Promotion.
/// Otherwise it goes back from the version running now to the newest earlier Synced
/// version that is not blocked. `to` picks the version instead (it must have run there).
pub fn target(
    environment: &str,
    records: &[ServiceRecord],
    blocked: &[BlockedVersion],
    promotions: &[&Promotion],
    service: &str,
    to: Option<&str>,
) -> Result<Target, RollbackError> {
    let known: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    let record = records.iter().find(|r| r.name == service).ok_or_else(|| {
        format!(
            "service {service:?} has never been Synced in {environment} (known there: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    })?;
    let synced_at = record.synced_at.as_ref().map(|t| t.0);
    let failed = promotions
        .iter()
        .filter(|p| p.spec.environment == environment && p.spec.rollback.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed))
        .filter_map(|p| {
            let merged = p.status.as_ref()?.phase_times.merged.as_ref()?.0;
            let s = p.spec.services.iter().find(|s| s.name == service)?;
            (Some(merged) > synced_at && s.value() != record.version).then_some((merged, *p, s))
        })
        .max_by_key(|(merged, _, _)| *merged);
    let (from, of, candidates): (ServiceVersion, String, Vec<(&str, Option<SourceRef>)>) =
        match failed {
            Some((_, p, s)) => {
                let mut bad = s.clone();
                bad.source = p.spec.source_of(service).cloned();
                let mut options = vec![(record.version.as_str(), record.source.clone())];
                options.extend(
                    record
                        .history
                        .iter()
                        .map(|h| (h.version.as_str(), h.source.clone())),
                );
                (bad, p.name_any(), options)
            }
            None => (
                ServiceVersion::from_value(service, &record.version, record.source.clone()),
                record.promotion.clone(),
                record
                    .history
                    .iter()
                    .map(|h| (h.version.as_str(), h.source.clone()))
                    .collect(),
            ),
        };
    let is_blocked = |v: &str| {
        blocked
            .iter()
            .any(|b| b.service == service && b.version == v)
    };
    let chosen = match to {
        Some(to) => candidates.iter().find(|(v, _)| *v == to).ok_or_else(|| {
            if from.value() == to {
                format!("{service}:{to} is what {environment} runs now: nothing to roll back to")
            } else {
                format!(
                    "{service}:{to} never ran in {environment} (earlier versions there: {})",
                    earlier(record)
                )
            }
        })?,
        None => candidates
            .iter()
            .find(|(v, _)| *v != from.value() && !is_blocked(v))
            .ok_or_else(|| {
                format!(
                    "no earlier good version of {service} in {environment} to roll back to (it runs {} and has no earlier Synced version that is not blocked)",
                    from.value()
                )
            })?,
    };
    Ok(Target {
        to: ServiceVersion::from_value(service, chosen.0, chosen.1.clone()),
        from,
        of,
    })
}

fn earlier(r: &ServiceRecord) -> String {
    let v: Vec<&str> = r.history.iter().map(|h| h.version.as_str()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The rollback Promotion of `targets` (each with the version it replaces in `from`),
/// named from its content so a retried command or a second look creates nothing new.
pub fn promotion(
    namespace: &str,
    environment: &str,
    targets: Vec<ServiceVersion>,
    from: Vec<ServiceVersion>,
    reason: &str,
    of: Option<String>,
) -> Promotion {
    let h = super::plan::content_hash(
        targets
            .iter()
            .chain(from.iter())
            .map(|s| format!("{}={};", s.name, s.value()))
            .chain(of.iter().cloned()),
    );
    let first = targets
        .first()
        .map(|s| s.name.as_str())
        .unwrap_or("services");
    let name = format!(
        "{}-rollback-{}-{h:012x}",
        truncate(environment, 60),
        truncate(first, 60)
    );
    let mut p = Promotion::new(
        &name,
        PromotionSpec {
            environment: environment.to_owned(),
            source: None,
            services: targets,
            rollback: Some(RollbackSpec {
                reason: reason.to_owned(),
                of,
                from,
            }),
        },
    );
    p.metadata.namespace = Some(namespace.to_owned());
    p.metadata.labels = Some([(LABEL_ROLLBACK.to_owned(), "true".to_owned())].into());
    p
}

fn truncate(s: &str, n: usize) -> &str {
    s.get(..n.min(s.len())).unwrap_or(s).trim_end_matches('-')
}

/// Whether `p` failed after its merge, the way an automatic rollback answers: Degraded
/// past the grace period, not Synced in time, or the sync failed. Rollbacks are never
/// rolled back.
pub fn needs_rollback(p: &Promotion) -> bool {
    let Some(status) = &p.status else {
        return false;
    };
    let reason = status
        .conditions
        .iter()
        .find(|x| x.r#type == c::TYPE_READY)
        .map(|x| x.reason.as_str());
    p.spec.rollback.is_none()
        && status.phase == Some(Phase::Failed)
        && status.phase_times.merged.is_some()
        && status.rolled_back_by.is_none()
        && matches!(
            reason,
            Some(c::REASON_DEGRADED | c::REASON_SYNC_TIMEOUT | c::REASON_SYNC_FAILED)
        )
}

/// The automatic rollback of a failed Promotion: each of its services back to the
/// version last proven Synced in the Environment (what ran before it). `Err` when a
/// service has no such version (nothing to go back to).
pub fn automatic(
    failed: &Promotion,
    records: &[ServiceRecord],
) -> Result<Promotion, RollbackError> {
    let env = &failed.spec.environment;
    let mut targets = Vec::new();
    let mut from = Vec::new();
    for s in &failed.spec.services {
        let record = records.iter().find(|r| r.name == s.name).ok_or_else(|| {
            format!(
                "no earlier good version of {} in {env}: it was never Synced there",
                s.name
            )
        })?;
        if record.version == s.value() {
            continue;
        }
        targets.push(ServiceVersion::from_value(
            &s.name,
            &record.version,
            record.source.clone(),
        ));
        let mut bad = s.clone();
        bad.source = failed.spec.source_of(&s.name).cloned();
        from.push(bad);
    }
    if targets.is_empty() {
        return Err(format!(
            "{env} still runs every version of {} as last proven Synced: nothing to roll back",
            failed.name_any()
        ));
    }
    let reason = failed
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.r#type == c::TYPE_READY))
        .map(|x| format!("{}: {}", x.reason, x.message))
        .unwrap_or_else(|| "failed after the merge".into());
    Ok(promotion(
        &failed.namespace().unwrap_or_default(),
        env,
        targets,
        from,
        &baton_github::naming::truncate(&format!("automatic: {reason}"), 500),
        Some(failed.name_any()),
    ))
}

/// A hand-written rollback must go back to versions that ran in the Environment.
pub fn check_targets(p: &Promotion, records: &[ServiceRecord]) -> Option<Blocker> {
    p.spec.rollback.as_ref()?;
    let bad: Vec<String> = p
        .spec
        .services
        .iter()
        .filter(|s| {
            !records.iter().any(|r| {
                r.name == s.name
                    && (r.version == s.value() || r.history.iter().any(|h| h.version == s.value()))
            })
        })
        .map(|s| format!("{}:{}", s.name, s.value()))
        .collect();
    (!bad.is_empty()).then(|| {
        Blocker::InvalidSpec(format!(
            "a rollback goes back to versions that ran in {}; {} never did (see `kubectl describe environment {}`)",
            p.spec.environment,
            bad.join(", "),
            p.spec.environment
        ))
    })
}

#[cfg(test)]
mod tests;
