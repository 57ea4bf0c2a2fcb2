//! The window gate of a Pending promotion, and its break glass. Pure: the schedule
//! arithmetic is `baton_api::windows`; this decides what a Promotion sees.

use std::time::Duration;

use baton_api::environment::{Window, WindowKind};
use baton_api::promotion::{Promotion, WindowOverride};
use baton_api::windows::{self as w, Gate};
use baton_api::{ANNOTATION_OVERRIDE_WINDOWS, Environment};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::Blocker;

/// What the windows say about one Promotion now.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Open,
    /// Held, with the blocker to show (`WindowClosed`, or `InvalidSpec` for a window
    /// Baton cannot evaluate: held rather than let through).
    Closed(Blocker),
    /// Closed, but the Promotion carries the break-glass annotation.
    Overridden(WindowOverride),
}

/// `Deny 0 17 * * 5 for 64h (Europe/London)`.
pub fn describe(window: &Window) -> String {
    let kind = match window.kind {
        WindowKind::Allow => "Allow",
        WindowKind::Deny => "Deny",
    };
    format!(
        "{kind} window `{}` for {} ({})",
        window.schedule, window.duration, window.time_zone
    )
}

/// The window gate for `p`.
pub fn check(p: &Promotion, windows: &[Window], now: Timestamp) -> Outcome {
    if windows.is_empty() {
        return Outcome::Open;
    }
    let (index, reason, opens_at) = match w::gate(windows, now) {
        Ok(Gate::Open) => return Outcome::Open,
        Ok(Gate::Closed {
            window,
            reason,
            opens_at,
        }) => (window, reason, opens_at),
        Err(e) => {
            return Outcome::Closed(Blocker::InvalidSpec(format!(
                "Environment {:?} spec.windows: {e}; promotions are held until it is fixed",
                p.spec.environment
            )));
        }
    };
    let which = windows.get(index).map(describe).unwrap_or_default();
    if let Some(ov) = override_of(p, &which) {
        return Outcome::Overridden(ov);
    }
    let opens = match opens_at {
        Some(t) => format!(
            "opens at {}",
            t.round(k8s_openapi::jiff::Unit::Second).unwrap_or(t)
        ),
        None => "does not open within a year".to_owned(),
    };
    Outcome::Closed(Blocker::WindowClosed {
        message: format!(
            "held by the {which}: {reason}; {opens}. To let this one Promotion through, annotate it {ANNOTATION_OVERRIDE_WINDOWS}=\"<reason>\""
        ),
        opens_in: opens_at.map(|t| {
            Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
                + Duration::from_secs(1)
        }),
    })
}

/// The break glass: the annotation's reason, who set it and when (the field manager
/// and time of the `metadata.managedFields` entry that owns it).
fn override_of(p: &Promotion, window: &str) -> Option<WindowOverride> {
    let reason = p.annotations().get(ANNOTATION_OVERRIDE_WINDOWS)?.trim();
    if reason.is_empty() {
        return None;
    }
    let key = format!("f:{ANNOTATION_OVERRIDE_WINDOWS}");
    let owner = p
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1.as_ref().is_some_and(|f| {
                f.0.get("f:metadata")
                    .and_then(|m| m.get("f:annotations"))
                    .and_then(|a| a.get(&key))
                    .is_some()
            })
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0));
    Some(WindowOverride {
        reason: reason.to_owned(),
        by: owner
            .and_then(|m| m.manager.clone())
            .unwrap_or_else(|| "unknown".to_owned()),
        at: owner.and_then(|m| m.time.clone()).map(|t| Time(t.0)),
        window: window.to_owned(),
    })
}

/// The PR body paragraph of a window override.
pub fn note(ov: &WindowOverride) -> String {
    let at = ov
        .at
        .as_ref()
        .map(|t| format!(" at {}", t.0))
        .unwrap_or_default();
    format!(
        "**Window override**: opened while the {} was closed: \"{}\" (annotation {ANNOTATION_OVERRIDE_WINDOWS}, set by `{}`{at}).",
        ov.window, ov.reason, ov.by
    )
}

/// Whether the Environment's windows can be evaluated (for its `Ready` condition).
pub fn validate(env: &Environment) -> Result<(), String> {
    w::validate(&env.spec.windows).map_err(|e| format!("spec.windows: {e}"))
}
