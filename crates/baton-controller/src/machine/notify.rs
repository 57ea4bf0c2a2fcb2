//! What a transition tells people besides commit statuses: the GitHub Deployment of
//! each service follows the phase, and a merged PR gets one comment with each
//! Application's result. Pure.

use baton_api::Phase;
use baton_github::DeploymentState;

use super::{Action, Decision, Inputs};

/// The deployment state a phase shows (`None`: no deployment yet).
pub fn deployment_state(phase: Phase) -> Option<DeploymentState> {
    match phase {
        Phase::Pending => None,
        Phase::PrOpened => Some(DeploymentState::Queued),
        Phase::Merged => Some(DeploymentState::InProgress),
        Phase::Synced => Some(DeploymentState::Success),
        Phase::Failed => Some(DeploymentState::Failure),
        Phase::Rejected | Phase::Superseded => Some(DeploymentState::Error),
    }
}

/// The notification actions of decision `d`.
pub fn actions(input: &Inputs<'_>, d: &Decision) -> Vec<Action> {
    let mut out = Vec::new();
    let Some(policy) = &input.policy else {
        return out;
    };
    let before = input.status.phase.unwrap_or_default();
    // Terminal phases are looked at again without GitHub: act on the transition only.
    let moving = before != d.phase || !d.phase.is_terminal();
    if policy.deployments
        && moving
        && let Some(state) = deployment_state(d.phase)
    {
        let creates = matches!(
            state,
            DeploymentState::Queued | DeploymentState::InProgress | DeploymentState::Success
        );
        for service in &input.services {
            let record = input
                .status
                .deployments
                .iter()
                .find(|r| &r.service == service);
            let needed = match record {
                Some(r) => r.state != state.as_str(),
                // A promotion that ends before its deployment existed has none to end.
                None => creates,
            };
            if needed {
                out.push(Action::Deploy {
                    service: service.clone(),
                    state,
                });
            }
        }
    }
    if before == Phase::Merged
        && matches!(d.phase, Phase::Synced | Phase::Failed)
        && super::has_pr(input.status)
    {
        out.push(Action::CommentResult);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Policy;
    use baton_api::PromotionStatus;
    use baton_api::conditions::ConditionStatus;
    use baton_api::promotion::{DeploymentRecord, PullRequestStatus};
    use std::time::Duration;

    fn policy() -> Policy {
        Policy {
            sync_timeout: Duration::from_secs(60),
            degraded_grace: Duration::from_secs(60),
            release: false,
            commit_status: true,
            soak: Duration::ZERO,
            queue: Default::default(),
            deployments: true,
        }
    }

    fn decision(phase: Phase) -> Decision {
        Decision {
            phase,
            actions: vec![],
            ready: ConditionStatus::False,
            reason: "",
            message: String::new(),
            requeue_after: None,
            exact: false,
        }
    }

    fn inputs(status: &PromotionStatus) -> Inputs<'_> {
        Inputs {
            generation: 1,
            services: vec!["api".into(), "web".into()],
            rolled_back: vec![],
            status,
            now: k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            policy: Some(policy()),
            seen: crate::machine::Seen::Nothing,
        }
    }

    fn record(service: &str, state: &str) -> DeploymentRecord {
        DeploymentRecord {
            service: service.into(),
            repository: "o/src".into(),
            id: 7,
            state: state.into(),
        }
    }

    #[test]
    fn deployments_follow_the_phase_once_per_state() {
        let s = PromotionStatus {
            phase: Some(Phase::Pending),
            ..PromotionStatus::default()
        };
        let a = actions(&inputs(&s), &decision(Phase::PrOpened));
        assert_eq!(
            a,
            vec![
                Action::Deploy {
                    service: "api".into(),
                    state: DeploymentState::Queued
                },
                Action::Deploy {
                    service: "web".into(),
                    state: DeploymentState::Queued
                }
            ]
        );
        let s = PromotionStatus {
            phase: Some(Phase::PrOpened),
            deployments: vec![record("api", "queued"), record("web", "queued")],
            ..PromotionStatus::default()
        };
        assert!(
            actions(&inputs(&s), &decision(Phase::PrOpened)).is_empty(),
            "polls add nothing"
        );
        assert_eq!(actions(&inputs(&s), &decision(Phase::Merged)).len(), 2);
    }

    #[test]
    fn an_end_before_any_deployment_creates_none() {
        let s = PromotionStatus {
            phase: Some(Phase::Pending),
            ..PromotionStatus::default()
        };
        assert!(actions(&inputs(&s), &decision(Phase::Superseded)).is_empty());
        let s = PromotionStatus {
            phase: Some(Phase::PrOpened),
            deployments: vec![record("api", "queued")],
            ..PromotionStatus::default()
        };
        assert_eq!(
            actions(&inputs(&s), &decision(Phase::Rejected)),
            vec![Action::Deploy {
                service: "api".into(),
                state: DeploymentState::Error
            }]
        );
    }

    #[test]
    fn the_result_comment_follows_the_end_of_a_merged_promotion() {
        let mut s = PromotionStatus {
            phase: Some(Phase::Merged),
            pull_request: Some(PullRequestStatus {
                number: 3,
                ..PullRequestStatus::default()
            }),
            ..PromotionStatus::default()
        };
        let mut i = inputs(&s);
        i.policy = Some(Policy {
            deployments: false,
            ..policy()
        });
        assert_eq!(
            actions(&i, &decision(Phase::Synced)),
            vec![Action::CommentResult]
        );
        assert_eq!(
            actions(&i, &decision(Phase::Failed)),
            vec![Action::CommentResult]
        );
        assert!(actions(&i, &decision(Phase::Merged)).is_empty());
        s.phase = Some(Phase::Synced);
        let mut i = inputs(&s);
        i.policy = Some(Policy {
            deployments: false,
            ..policy()
        });
        assert!(actions(&i, &decision(Phase::Synced)).is_empty(), "once");
    }
}
