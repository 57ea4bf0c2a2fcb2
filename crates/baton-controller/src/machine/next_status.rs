//! The next status from a decision. No client required.

use baton_api::Phase;
use baton_api::conditions::{self as c, Condition, ConditionStatus, set_condition};
use baton_api::promotion::{ApplicationObservation, PromotionStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Decision;

/// Facts a reconcile learned that the status should carry.
#[derive(Debug, Default)]
pub struct Learned {
    pub summary: String,
    pub applications: Vec<ApplicationObservation>,
    pub merge_commit: Option<String>,
    pub superseded_by: Option<baton_api::promotion::SupersededBy>,
    pub window_override: Option<baton_api::promotion::WindowOverride>,
}

/// Writes the outcome of `d` into `status`: phase (and when it was entered),
/// conditions, observed generation, and what was learned.
pub fn finish(
    status: &mut PromotionStatus,
    d: &Decision,
    generation: i64,
    now: &Time,
    learned: Learned,
) {
    status.phase_times.enter(Phase::Pending, now.clone());
    status.phase_times.enter(d.phase, now.clone());
    status.phase = Some(d.phase);
    status.observed_generation = Some(generation);
    status.summary = Some(learned.summary);
    if !learned.applications.is_empty() {
        status.applications = learned.applications;
    }
    if let Some(sha) = learned.merge_commit {
        let pr = status.pull_request.get_or_insert_with(Default::default);
        if pr.merge_commit.as_deref() != Some(sha.as_str()) {
            pr.merge_commit = Some(sha);
            pr.observed_at = Some(now.clone());
        }
    }
    if learned.superseded_by.is_some() {
        status.superseded_by = learned.superseded_by;
    }
    if learned.window_override.is_some() && status.window_override.is_none() {
        status.window_override = learned.window_override;
    }
    conditions(status, d, generation, now);
}

/// The conditions that follow the phase: Ready, and one per milestone reached.
fn conditions(status: &mut PromotionStatus, d: &Decision, generation: i64, now: &Time) {
    let cond = |t: &str, s: ConditionStatus, reason: &str, message: String| Condition {
        r#type: t.to_owned(),
        status: s,
        reason: reason.to_owned(),
        message,
        observed_generation: Some(generation),
        last_transition_time: now.clone(),
    };
    set_condition(
        &mut status.conditions,
        cond(c::TYPE_READY, d.ready, d.reason, d.message.clone()),
    );
    let has_pr = status.pull_request.as_ref().is_some_and(|p| p.number > 0);
    if has_pr {
        let url = status
            .pull_request
            .as_ref()
            .map(|p| p.url.clone())
            .unwrap_or_default();
        set_condition(
            &mut status.conditions,
            cond(
                c::TYPE_PR_OPENED,
                ConditionStatus::True,
                c::REASON_PR_OPENED,
                format!("pull request {url}"),
            ),
        );
    }
    let reached = |phase: Phase| status.phase_times.get(phase).is_some();
    if reached(Phase::Merged) {
        let sha = status
            .pull_request
            .as_ref()
            .and_then(|p| p.merge_commit.clone())
            .unwrap_or_default();
        set_condition(
            &mut status.conditions,
            cond(
                c::TYPE_MERGED,
                ConditionStatus::True,
                c::REASON_PR_MERGED,
                format!("merged as {sha}"),
            ),
        );
    }
    let failed: Vec<String> = status
        .notifications
        .iter()
        .filter_map(|n| n.failed.clone())
        .collect();
    if !failed.is_empty() {
        set_condition(
            &mut status.conditions,
            cond(
                c::TYPE_NOTIFICATION_FAILED,
                ConditionStatus::True,
                c::REASON_NOTIFICATION_FAILED,
                failed.join("; "),
            ),
        );
    }
    if d.phase == Phase::Synced {
        set_condition(
            &mut status.conditions,
            cond(
                c::TYPE_SYNCED,
                ConditionStatus::True,
                c::REASON_SYNCED,
                d.message.clone(),
            ),
        );
    } else if d.phase == Phase::Merged || (d.phase == Phase::Failed && reached(Phase::Merged)) {
        set_condition(
            &mut status.conditions,
            cond(
                c::TYPE_SYNCED,
                ConditionStatus::False,
                d.reason,
                d.message.clone(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(1_790_000_000 + s).expect("time"))
    }

    fn decision(phase: Phase, ready: ConditionStatus, reason: &'static str) -> Decision {
        Decision {
            phase,
            actions: vec![],
            ready,
            reason,
            message: format!("{reason} message"),
            requeue_after: None,
            exact: false,
        }
    }

    #[test]
    fn phase_entry_times_are_kept_and_conditions_follow() {
        let mut s = PromotionStatus::default();
        finish(
            &mut s,
            &decision(
                Phase::PrOpened,
                ConditionStatus::False,
                c::REASON_WAITING_FOR_REVIEW,
            ),
            1,
            &t(0),
            Learned::default(),
        );
        finish(
            &mut s,
            &decision(
                Phase::PrOpened,
                ConditionStatus::False,
                c::REASON_WAITING_FOR_REVIEW,
            ),
            1,
            &t(10),
            Learned::default(),
        );
        assert_eq!(s.phase_times.pr_opened, Some(t(0)));
        assert_eq!(s.phase_times.pending, Some(t(0)));
        finish(
            &mut s,
            &decision(
                Phase::Merged,
                ConditionStatus::False,
                c::REASON_WAITING_FOR_SYNC,
            ),
            1,
            &t(20),
            Learned {
                merge_commit: Some("abc".into()),
                ..Learned::default()
            },
        );
        assert_eq!(s.phase_times.merged, Some(t(20)));
        assert_eq!(
            s.pull_request
                .as_ref()
                .and_then(|p| p.merge_commit.as_deref()),
            Some("abc")
        );
        finish(
            &mut s,
            &decision(Phase::Synced, ConditionStatus::True, c::REASON_SYNCED),
            1,
            &t(30),
            Learned::default(),
        );
        let ready = s
            .conditions
            .iter()
            .find(|c| c.r#type == c::TYPE_READY)
            .expect("ready");
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::True, c::REASON_SYNCED)
        );
        assert_eq!(ready.last_transition_time, t(30));
        let synced = s
            .conditions
            .iter()
            .find(|c| c.r#type == c::TYPE_SYNCED)
            .expect("synced");
        assert_eq!(synced.status, ConditionStatus::True);
        assert!(
            s.conditions
                .iter()
                .any(|c| c.r#type == c::TYPE_MERGED && c.status == ConditionStatus::True)
        );
    }
}
