use super::*;
use baton_api::PromotionStatus;
use baton_api::conditions::Condition;
use baton_api::promotion::{ApplicationObservation, PullRequestStatus};
use baton_github::PullRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

const MERGE: &str = "1111111111111111111111111111111111111111";

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + secs).expect("valid")
}

fn policy() -> Policy {
    Policy {
        sync_timeout: Duration::from_secs(1800),
        degraded_grace: Duration::from_secs(300),
        release: false,
        commit_status: true,
        soak: Duration::ZERO,
        queue: Default::default(),
        deployments: false,
    }
}

fn status(phase: Option<Phase>) -> PromotionStatus {
    let mut s = PromotionStatus {
        phase,
        pull_request: Some(PullRequestStatus {
            generation: Some(1),
            ..PullRequestStatus::default()
        }),
        ..PromotionStatus::default()
    };
    if phase == Some(Phase::Merged) {
        s.phase_times.merged = Some(Time(at(0)));
    }
    s
}

fn inputs(status: &PromotionStatus) -> Inputs<'_> {
    Inputs {
        generation: 1,
        services: vec!["api".into()],
        rolled_back: vec![],
        status,
        now: at(60),
        policy: Some(policy()),
        seen: Seen::Nothing,
    }
}

fn app(service: &str, state: AppState) -> AppSeen {
    AppSeen {
        view: AppView {
            service: service.into(),
            state,
        },
        record: ApplicationObservation {
            service: service.into(),
            ..ApplicationObservation::default()
        },
    }
}

/// A PR found on GitHub (adopted while Pending).
fn found(state: PrState) -> Seen {
    Seen::Adopted(PullRequest {
        number: 7,
        url: String::new(),
        head_branch: "baton/syrf/p-uid".into(),
        head_sha: None,
        state,
        labels: vec![],
        reviewers: vec![],
        team_reviewers: vec![],
        auto_merge_enabled: false,
        promotion_uid: Some("uid".into()),
        node_id: None,
        auto_merge_problem: None,
    })
}

fn pr(state: PrState) -> Seen {
    Seen::PullRequest {
        state: Some(state),
        review: None,
        merge_window: None,
    }
}

fn degraded_since(i: &mut Inputs<'_>, service: &str, t: Timestamp) {
    if let Seen::Applications(apps) = &mut i.seen {
        for a in apps.iter_mut().filter(|a| a.view.service == service) {
            a.record.degraded_since = Some(Time(t));
        }
    }
}

fn ready() -> AppState {
    AppState::Ready {
        revision: MERGE.into(),
    }
}

// ---- Pending ----

#[test]
fn new_promotion_opens_the_pull_request() {
    for phase in [None, Some(Phase::Pending)] {
        let s = status(phase);
        let d = decide(&inputs(&s));
        assert_eq!(d.phase, Phase::PrOpened);
        assert_eq!(d.actions, vec![Action::OpenPullRequest]);
        assert_eq!(d.reason, c::REASON_WAITING_FOR_REVIEW);
    }
}

#[test]
fn every_blocker_keeps_pending_without_a_pr_and_names_the_reason() {
    let cases = [
        (
            Blocker::EnvironmentNotFound("Environment production not found".into()),
            c::REASON_ENVIRONMENT_NOT_FOUND,
        ),
        (
            Blocker::SecretNotFound("Secret github-app-credentials not found".into()),
            c::REASON_SECRET_NOT_FOUND,
        ),
        (
            Blocker::Manifest("syrf/x.yaml: path service.chartTag not found".into()),
            c::REASON_MANIFEST_ERROR,
        ),
        (Blocker::InvalidSpec("bad".into()), c::REASON_INVALID_SPEC),
        (
            Blocker::Queued("waiting for api-v9-1-0".into()),
            c::REASON_QUEUED,
        ),
        (
            Blocker::UpstreamNotReady("api:api-v9.1.1 not Synced in staging".into()),
            c::REASON_UPSTREAM_NOT_READY,
        ),
    ];
    for (blocker, reason) in cases {
        let s = status(Some(Phase::Pending));
        let mut i = inputs(&s);
        let message = format!("{blocker:?}");
        i.seen = Seen::Blocked(blocker);
        let d = decide(&i);
        assert_eq!(d.phase, Phase::Pending, "{message}");
        assert!(d.actions.is_empty(), "no PR while blocked: {message}");
        assert_eq!(d.reason, reason);
        assert_eq!(d.ready, ConditionStatus::False);
        assert!(
            d.requeue_after.is_some(),
            "blocked promotions retry by themselves"
        );
    }
}

#[test]
fn blocker_fixed_then_the_pr_opens() {
    let s = status(Some(Phase::Pending));
    let mut i = inputs(&s);
    i.seen = Seen::Blocked(Blocker::Manifest("missing file".into()));
    assert!(decide(&i).actions.is_empty());
    i.seen = Seen::Nothing;
    assert_eq!(decide(&i).actions, vec![Action::OpenPullRequest]);
}

#[test]
fn existing_open_pr_is_adopted_not_duplicated_after_a_crash() {
    let s = status(Some(Phase::Pending));
    let mut i = inputs(&s);
    i.seen = found(PrState::Open);
    let d = decide(&i);
    assert_eq!(d.phase, Phase::PrOpened);
    // No second PR: the adopted one gets what a fresh one has (labels, reviewers, ...).
    assert_eq!(d.actions, vec![Action::CompletePullRequest]);
}

#[test]
fn existing_pr_merged_while_the_operator_was_down_moves_to_merged() {
    let s = status(Some(Phase::Pending));
    let mut i = inputs(&s);
    i.seen = found(PrState::Merged {
        merge_commit: MERGE.into(),
    });
    assert_eq!(decide(&i).phase, Phase::Merged);
}

#[test]
fn versions_already_in_the_repo_skip_the_pr_and_wait_for_argo() {
    let s = status(Some(Phase::Pending));
    let mut i = inputs(&s);
    i.seen = Seen::AlreadyApplied {
        commit: MERGE.into(),
    };
    let d = decide(&i);
    assert_eq!(d.phase, Phase::Merged);
    assert!(d.actions.is_empty());
    assert!(
        d.message.contains("no pull request needed"),
        "{}",
        d.message
    );
}

// ---- PROpened ----

#[test]
fn open_pr_waits_for_review() {
    let s = status(Some(Phase::PrOpened));
    let mut i = inputs(&s);
    i.seen = pr(PrState::Open);
    let d = decide(&i);
    assert_eq!(
        (d.phase, d.reason),
        (Phase::PrOpened, c::REASON_WAITING_FOR_REVIEW)
    );
    assert!(d.actions.is_empty());
}

#[test]
fn review_decision_is_told_while_waiting() {
    let s = status(Some(Phase::PrOpened));
    let mut i = inputs(&s);
    i.seen = Seen::PullRequest {
        state: Some(PrState::Open),
        review: Some(ReviewDecision::ChangesRequested),
        merge_window: None,
    };
    assert!(decide(&i).message.contains("requested changes"));
    i.seen = Seen::PullRequest {
        state: Some(PrState::Open),
        review: Some(ReviewDecision::Approved),
        merge_window: None,
    };
    let d = decide(&i);
    assert_eq!(d.phase, Phase::PrOpened);
    assert!(d.message.contains("approved"));
}

#[test]
fn merged_pr_moves_to_merged_and_looks_at_argo_at_once() {
    let s = status(Some(Phase::PrOpened));
    let mut i = inputs(&s);
    i.seen = pr(PrState::Merged {
        merge_commit: MERGE.into(),
    });
    let d = decide(&i);
    assert_eq!(d.phase, Phase::Merged);
    assert!(d.message.contains("1111111"));
    assert_eq!(d.requeue_after, Some(Duration::ZERO));
}

#[test]
fn pr_closed_unmerged_is_rejected() {
    let s = status(Some(Phase::PrOpened));
    let mut i = inputs(&s);
    i.seen = pr(PrState::Closed);
    let d = decide(&i);
    assert_eq!((d.phase, d.reason), (Phase::Rejected, c::REASON_PR_CLOSED));
    assert_eq!(d.requeue_after, None);
}

#[test]
fn pr_missing_on_github_is_rechecked_not_reopened() {
    let s = status(Some(Phase::PrOpened));
    let d = decide(&inputs(&s));
    assert_eq!(d.phase, Phase::PrOpened);
    assert!(d.actions.is_empty());
}

#[test]
fn spec_changed_after_the_pr_opened_fails_closed_and_closes_the_pr() {
    let s = status(Some(Phase::PrOpened));
    let mut i = inputs(&s);
    i.generation = 2;
    i.seen = pr(PrState::Open);
    let d = decide(&i);
    assert_eq!((d.phase, d.reason), (Phase::Failed, c::REASON_SPEC_CHANGED));
    assert_eq!(d.actions, vec![Action::ClosePullRequest]);
}

// ---- Merged ----

#[test]
fn all_applications_ready_posts_success_statuses_and_is_synced() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.services = vec!["api".into(), "web".into()];
    i.seen = Seen::Applications(vec![app("api", ready()), app("web", ready())]);
    let d = decide(&i);
    assert_eq!((d.phase, d.ready), (Phase::Synced, ConditionStatus::True));
    assert_eq!(
        d.actions,
        vec![
            Action::PostStatus {
                service: "api".into(),
                success: true
            },
            Action::PostStatus {
                service: "web".into(),
                success: true
            }
        ]
    );
}

#[test]
fn waiting_for_the_applications_arms_exactly_the_notifications_of_reaching_synced() {
    use baton_api::promotion::NotificationKind as K;
    let mut s = status(Some(Phase::Merged));
    if let Some(pr) = s.pull_request.as_mut() {
        pr.number = 7;
    }
    let mut i = inputs(&s);
    i.services = vec!["api".into(), "web".into()];
    i.policy = Some(Policy {
        release: true,
        ..policy()
    });
    i.seen = Seen::Applications(vec![app("api", ready()), app("web", AppState::Missing)]);
    let waiting = decide(&i);
    assert_eq!(waiting.phase, Phase::Merged);
    let armed = armed(&i, &waiting);
    assert_eq!(
        armed,
        vec![
            (K::SuccessStatus, Some("api".into())),
            (K::SuccessStatus, Some("web".into())),
            (K::Release, None),
            (K::ResultComment, None),
        ]
    );
    i.seen = Seen::Applications(vec![app("api", ready()), app("web", ready())]);
    let synced = decide(&i);
    assert_eq!(synced.phase, Phase::Synced);
    let used: Vec<_> = synced.actions.iter().filter_map(Action::record).collect();
    assert_eq!(used.len(), armed.len());
    assert!(used.iter().all(|k| armed.contains(k)), "{used:?}");
    assert!(
        super::armed(&i, &synced).is_empty(),
        "nothing armed once terminal"
    );
}

#[test]
fn release_note_only_when_enabled() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.seen = Seen::Applications(vec![app("api", ready())]);
    let mut p = policy();
    p.release = true;
    p.commit_status = false;
    i.policy = Some(p);
    assert_eq!(decide(&i).actions, vec![Action::CreateRelease]);
}

#[test]
fn one_application_not_ready_keeps_waiting() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.services = vec!["api".into(), "web".into()];
    i.seen = Seen::Applications(vec![
        app("api", ready()),
        app(
            "web",
            AppState::Progressing {
                health: "Progressing".into(),
            },
        ),
    ]);
    let d = decide(&i);
    assert_eq!(
        (d.phase, d.reason),
        (Phase::Merged, c::REASON_WAITING_FOR_SYNC)
    );
    assert!(d.actions.is_empty());
    assert!(
        d.message.contains("web: health is Progressing"),
        "{}",
        d.message
    );
}

#[test]
fn missing_application_is_a_waiting_condition() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.seen = Seen::Applications(vec![app("api", AppState::Missing)]);
    let d = decide(&i);
    assert_eq!(
        (d.phase, d.reason),
        (Phase::Merged, c::REASON_APPLICATION_MISSING)
    );
}

#[test]
fn degraded_within_the_grace_period_waits() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.seen = Seen::Applications(vec![app(
        "api",
        AppState::Degraded {
            message: "crash loop".into(),
        },
    )]);
    degraded_since(&mut i, "api", at(0));
    assert_eq!(decide(&i).phase, Phase::Merged);
}

#[test]
fn degraded_beyond_the_grace_period_fails_with_a_failure_status() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.now = at(400);
    i.seen = Seen::Applications(vec![app(
        "api",
        AppState::Degraded {
            message: "crash loop".into(),
        },
    )]);
    degraded_since(&mut i, "api", at(50));
    let d = decide(&i);
    assert_eq!((d.phase, d.reason), (Phase::Failed, c::REASON_DEGRADED));
    assert_eq!(
        d.actions,
        vec![Action::PostStatus {
            service: "api".into(),
            success: false
        }]
    );
    assert!(d.message.contains("crash loop"));
}

#[test]
fn sync_timeout_fails_with_a_failure_status() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.now = at(1800);
    i.seen = Seen::Applications(vec![app(
        "api",
        AppState::NotAtTarget {
            detail: "sync status is OutOfSync".into(),
        },
    )]);
    let d = decide(&i);
    assert_eq!((d.phase, d.reason), (Phase::Failed, c::REASON_SYNC_TIMEOUT));
    assert_eq!(
        d.actions,
        vec![Action::PostStatus {
            service: "api".into(),
            success: false
        }]
    );
    assert!(d.message.contains("OutOfSync"), "{}", d.message);
}

#[test]
fn requeue_never_overshoots_the_timeout() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.now = at(1790);
    i.seen = Seen::Applications(vec![app(
        "api",
        AppState::Progressing {
            health: "Progressing".into(),
        },
    )]);
    assert_eq!(decide(&i).requeue_after, Some(Duration::from_secs(10)));
}

#[test]
fn environment_deleted_after_merge_waits() {
    let s = status(Some(Phase::Merged));
    let mut i = inputs(&s);
    i.policy = None;
    let d = decide(&i);
    assert_eq!(
        (d.phase, d.reason),
        (Phase::Merged, c::REASON_ENVIRONMENT_NOT_FOUND)
    );
}

// ---- Terminal ----

#[test]
fn terminal_phases_never_move_or_act_again() {
    for phase in [Phase::Synced, Phase::Failed, Phase::Rejected] {
        let mut s = status(Some(phase));
        s.conditions.push(Condition {
            r#type: c::TYPE_READY.into(),
            status: ConditionStatus::False,
            reason: c::REASON_DEGRADED.into(),
            message: "api is Degraded".into(),
            observed_generation: Some(1),
            last_transition_time: Time(at(0)),
        });
        let mut i = inputs(&s);
        // Even with fresh observations that would otherwise trigger work.
        i.seen = pr(PrState::Closed);
        i.seen = Seen::Applications(vec![app("api", ready())]);
        let d = decide(&i);
        assert_eq!(d.phase, phase);
        assert!(d.actions.is_empty());
        assert_eq!(d.requeue_after, None);
    }
    let mut s = status(Some(Phase::Failed));
    s.conditions.push(Condition {
        r#type: c::TYPE_READY.into(),
        status: ConditionStatus::False,
        reason: c::REASON_DEGRADED.into(),
        message: String::new(),
        observed_generation: None,
        last_transition_time: Time(at(0)),
    });
    assert_eq!(decide(&inputs(&s)).reason, c::REASON_DEGRADED);
}

// ---- Deletion ----

#[test]
fn deleting_before_the_merge_closes_the_pr_and_after_leaves_github_alone() {
    assert_eq!(
        on_delete(Phase::PrOpened, true),
        vec![Action::ClosePullRequest]
    );
    assert_eq!(
        on_delete(Phase::Pending, true),
        vec![Action::ClosePullRequest]
    );
    assert!(on_delete(Phase::Pending, false).is_empty());
    for phase in [Phase::Merged, Phase::Synced, Phase::Failed, Phase::Rejected] {
        assert!(on_delete(phase, true).is_empty(), "{phase}");
    }
}

#[test]
fn a_refused_notification_is_tried_again_only_with_new_credentials() {
    use baton_api::promotion::{NotificationKind, NotificationRecord};
    let mut s = status(Some(Phase::Synced));
    s.notifications.push(NotificationRecord {
        kind: NotificationKind::SuccessStatus,
        service: Some("api".into()),
        attempted_at: Time(at(0)),
        armed_by: None,
        delivered_at: None,
        failed: Some("GitHub refused the commit status".into()),
        failed_with: Some("v1".into()),
    });
    let mut i = inputs(&s);
    i.seen = Seen::Retry {
        credentials: "v1".into(),
    };
    let d = decide(&i);
    assert!(d.actions.is_empty(), "same credentials: no new attempt");
    assert!(
        d.requeue_after.is_some(),
        "looks at the credentials again later"
    );
    i.seen = Seen::Retry {
        credentials: "v2".into(),
    };
    let d = decide(&i);
    assert_eq!(d.phase, Phase::Synced);
    assert_eq!(
        d.actions,
        vec![Action::PostStatus {
            service: "api".into(),
            success: true
        }]
    );
}

// ---- Superseded, soak, windows ----

fn successor(url: Option<&str>) -> Successor {
    Successor {
        by: baton_api::promotion::SupersededBy {
            promotion: "production-from-staging-1".into(),
            pull_request_url: url.map(Into::into),
        },
        carries: vec![],
    }
}

#[test]
fn an_open_pull_request_is_closed_with_a_comment_when_superseded() {
    let s = status(Some(Phase::PrOpened));
    let mut i = inputs(&s);
    i.seen = Seen::Superseded {
        successor: successor(Some("https://github.com/o/g/pull/9")),
        pr_open: true,
    };
    let d = decide(&i);
    assert_eq!(d.phase, Phase::Superseded);
    assert_eq!(d.reason, c::REASON_SUPERSEDED);
    assert!(
        d.message.contains("https://github.com/o/g/pull/9"),
        "{}",
        d.message
    );
    assert_eq!(
        d.actions,
        vec![
            Action::CommentSuperseded,
            Action::ClosePullRequest,
            Action::PostSuperseded {
                service: "api".into()
            }
        ]
    );
    assert_eq!(d.requeue_after, None, "terminal");
}

#[test]
fn a_pending_or_already_closed_promotion_only_drops_its_branch_when_superseded() {
    for phase in [Phase::Pending, Phase::PrOpened] {
        let s = status(Some(phase));
        let mut i = inputs(&s);
        i.policy = Some(Policy {
            commit_status: false,
            ..policy()
        });
        i.seen = Seen::Superseded {
            successor: successor(None),
            pr_open: false,
        };
        let d = decide(&i);
        assert_eq!(d.phase, Phase::Superseded);
        assert_eq!(d.actions, vec![Action::DeleteBranch], "{phase}");
    }
}

#[test]
fn superseded_is_terminal() {
    let s = status(Some(Phase::Superseded));
    let d = decide(&inputs(&s));
    assert_eq!(d.phase, Phase::Superseded);
    assert!(d.actions.is_empty());
    assert_eq!(d.reason, c::REASON_SUPERSEDED);
}

#[test]
fn soaking_and_closed_windows_requeue_exactly_when_they_open() {
    let s = status(Some(Phase::Pending));
    let mut i = inputs(&s);
    i.seen = Seen::Blocked(Blocker::Soaking {
        message: "soaking".into(),
        remaining: Duration::from_secs(1234),
    });
    let d = decide(&i);
    assert_eq!(d.reason, c::REASON_SOAKING);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(1234)));
    assert!(d.exact, "not shortened to the polling cap");
    i.seen = Seen::Blocked(Blocker::WindowClosed {
        message: "freeze".into(),
        opens_in: Some(Duration::from_secs(64 * 3600)),
    });
    let d = decide(&i);
    assert_eq!(d.reason, c::REASON_WINDOW_CLOSED);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(64 * 3600)));
    assert!(d.exact);
    assert!(d.actions.is_empty(), "no PR while held");
    i.seen = Seen::Blocked(Blocker::Queued("queued".into()));
    assert!(!decide(&i).exact, "other blockers are polled");
}

#[test]
fn a_closed_window_turns_auto_merge_off_and_an_open_one_back_on() {
    let s = status(Some(Phase::PrOpened));
    let mut i = inputs(&s);
    let hold = Blocker::WindowClosed {
        message: "freeze".into(),
        opens_in: Some(Duration::from_secs(600)),
    };
    i.seen = Seen::PullRequest {
        state: Some(PrState::Open),
        review: None,
        merge_window: Some(MergeWindow {
            node_id: "PR_1".into(),
            enabled: true,
            hold: Some(hold.clone()),
        }),
    };
    let d = decide(&i);
    assert_eq!(d.phase, Phase::PrOpened);
    assert_eq!(d.reason, c::REASON_WINDOW_CLOSED);
    assert_eq!(
        d.actions,
        vec![Action::SetAutoMerge {
            node_id: "PR_1".into(),
            enabled: false
        }]
    );
    assert_eq!(d.requeue_after, Some(Duration::from_secs(600)));
    // Already off: nothing to do but wait.
    if let Seen::PullRequest {
        merge_window: Some(w),
        ..
    } = &mut i.seen
    {
        w.enabled = false;
    }
    assert!(decide(&i).actions.is_empty());
    // The window opened: on again, only if Baton turned it off.
    if let Seen::PullRequest {
        merge_window: Some(w),
        ..
    } = &mut i.seen
    {
        w.hold = None;
    }
    assert!(decide(&i).actions.is_empty(), "never held: left alone");
    let mut held = status(Some(Phase::PrOpened));
    if let Some(pr) = held.pull_request.as_mut() {
        pr.auto_merge_held = true;
    }
    let mut j = inputs(&held);
    j.seen = i.seen.clone();
    let d = decide(&j);
    assert_eq!(
        d.actions,
        vec![Action::SetAutoMerge {
            node_id: "PR_1".into(),
            enabled: true
        }]
    );
    assert_eq!(d.reason, c::REASON_WAITING_FOR_REVIEW);
}
