//! Every Event Baton publishes, built in one place so `kubectl describe` reads the same
//! wherever it comes from. Free text is bounded; reasons are constants.

use baton_api::conditions as c;
use baton_api::{Phase, Promotion, PromotionStatus};
use baton_github::naming::truncate;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::context::Context;
use crate::machine::Decision;

/// A chat or webhook notification was given up on.
pub const REASON_NOTIFICATION_DELIVERY_FAILED: &str = "NotificationDeliveryFailed";

/// What happened, as an Event.
pub enum Happened<'a> {
    /// The phase changed (Warning for Failed and Rejected).
    Phase(&'a Decision),
    /// A new problem holds the promotion (or its message changed).
    Problem(&'a Decision),
    AutoMergeUnavailable {
        url: &'a str,
        problem: &'a str,
    },
    PullRequestClosed {
        number: u64,
        branch: &'a str,
    },
    /// GitHub refused a status or release for good.
    NotificationFailed {
        message: &'a str,
    },
    /// The break-glass annotation let this Promotion through a closed window.
    WindowOverridden(&'a baton_api::promotion::WindowOverride),
    /// A chat or webhook notification failed for good. Names the host only: the
    /// URL itself may carry a token.
    NotificationDeliveryFailed {
        event: &'a str,
        format: &'a str,
        host: &'a str,
        attempts: u32,
        why: &'a str,
    },
    /// The Environment controller created a Promotion (`reason`: `AutoPromotionCreated`
    /// or `RollbackCreated`).
    PromotionCreated {
        reason: &'static str,
        promotion: &'a str,
        summary: &'a str,
    },
    /// A Promotion that failed after its merge is being rolled back.
    RollingBack {
        rollback: &'a str,
        summary: &'a str,
    },
    /// A rollback failed, or none could be made: `message` says which.
    RollbackFailed {
        message: &'a str,
    },
}

fn event(type_: EventType, reason: &str, note: &str, action: &str) -> Event {
    Event {
        type_,
        reason: reason.to_owned(),
        note: Some(truncate(note, 1000)),
        action: action.to_owned(),
        secondary: None,
    }
}

fn build(h: &Happened<'_>) -> Event {
    match h {
        Happened::Phase(d) => {
            let warn = matches!(d.phase, Phase::Failed | Phase::Rejected);
            let t = if warn {
                EventType::Warning
            } else {
                EventType::Normal
            };
            event(t, d.phase.as_str(), &d.message, "Reconcile")
        }
        Happened::Problem(d) => event(EventType::Warning, d.reason, &d.message, "Reconcile"),
        Happened::WindowOverridden(ov) => event(
            EventType::Warning,
            "WindowOverridden",
            &format!(
                "opened while the {} was closed: {:?} (set by {})",
                ov.window, ov.reason, ov.by
            ),
            "Reconcile",
        ),
        Happened::AutoMergeUnavailable { url, problem } => event(
            EventType::Warning,
            "AutoMergeUnavailable",
            &format!(
                "auto-merge could not be enabled on {url}: {problem}; the pull request needs a manual merge"
            ),
            "OpenPullRequest",
        ),
        Happened::PullRequestClosed { number, branch } => event(
            EventType::Normal,
            "PullRequestClosed",
            &format!("closed pull request #{number} and deleted branch {branch}"),
            "Delete",
        ),
        Happened::PromotionCreated {
            reason,
            promotion,
            summary,
        } => event(
            EventType::Normal,
            reason,
            &format!("created Promotion {promotion} carrying {summary}"),
            "AutoPromote",
        ),
        Happened::RollingBack { rollback, summary } => event(
            EventType::Warning,
            "RollingBack",
            &format!("failed after its merge: rolling back with Promotion {rollback} ({summary})"),
            "Rollback",
        ),
        Happened::RollbackFailed { message } => event(
            EventType::Warning,
            c::REASON_ROLLBACK_FAILED,
            message,
            "Rollback",
        ),
        Happened::NotificationDeliveryFailed {
            event: what,
            format,
            host,
            attempts,
            why,
        } => event(
            EventType::Warning,
            REASON_NOTIFICATION_DELIVERY_FAILED,
            &format!(
                "{format} notification {what} to {host} not delivered after {attempts} attempt(s): {why}"
            ),
            "Notify",
        ),
        Happened::NotificationFailed { message } => event(
            EventType::Warning,
            c::REASON_NOTIFICATION_FAILED,
            message,
            "Notify",
        ),
    }
}

/// How many Events may wait to be posted; beyond that new ones are dropped (logged).
pub const OUTBOX_CAPACITY: usize = 4096;

/// Events wait here for one background task to post them, in order: a reconcile
/// never holds its slot for an Event (a release of a thousand services gives a
/// thousand phase Events at once). Events not yet posted when the operator stops are
/// lost; the conditions in status still say what happened.
pub struct Outbox {
    queue: tokio::sync::mpsc::Sender<(Event, ObjectReference)>,
    /// Taken by [`Outbox::start`]; until then Events wait in the queue.
    inbox: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<(Event, ObjectReference)>>>,
}

impl Default for Outbox {
    fn default() -> Self {
        let (queue, inbox) = tokio::sync::mpsc::channel(OUTBOX_CAPACITY);
        Outbox {
            queue,
            inbox: std::sync::Mutex::new(Some(inbox)),
        }
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the task that posts queued Events (once; later calls do nothing).
    pub fn start(&self, recorder: Recorder) {
        let Some(mut inbox) = self.inbox.lock().ok().and_then(|mut i| i.take()) else {
            return;
        };
        tokio::spawn(async move {
            while let Some((event, regarding)) = inbox.recv().await {
                if let Err(err) = recorder.publish(&event, &regarding).await {
                    tracing::warn!(error = %err, reason = %event.reason, "cannot publish event");
                }
            }
        });
    }

    fn send(&self, event: Event, regarding: ObjectReference) {
        if let Err(e) = self.queue.try_send((event, regarding)) {
            tracing::warn!(error = %e, "event dropped: too many waiting to be posted");
        }
    }
}

/// Queues one Event about a Promotion; never waits, never fails.
pub fn publish(ctx: &Context, p: &Promotion, h: Happened<'_>) {
    ctx.events.send(build(&h), p.object_ref(&()));
}

/// Queues one Event about any object (an Environment, another Promotion).
pub fn publish_about(ctx: &Context, regarding: ObjectReference, h: Happened<'_>) {
    ctx.events.send(build(&h), regarding);
}

/// Publishes one Event about `regarding` at once, for work that outlives its reconcile.
pub async fn publish_to(recorder: &Recorder, regarding: &ObjectReference, h: Happened<'_>) {
    if let Err(err) = recorder.publish(&build(&h), regarding).await {
        tracing::warn!(error = %err, "cannot publish event");
    }
}

/// The Events of a reconcile: one per phase change, and a Warning when the reason a
/// promotion is held changes (so `kubectl describe` says what to fix, once).
pub fn of_reconcile<'d>(
    before: &PromotionStatus,
    after: &'d PromotionStatus,
    d: &'d Decision,
) -> Vec<Happened<'d>> {
    let old = before
        .conditions
        .iter()
        .find(|x| x.r#type == c::TYPE_READY)
        .map(|x| (x.reason.as_str(), x.message.as_str()));
    let mut out = Vec::new();
    if before.phase != after.phase {
        out.push(Happened::Phase(d));
    }
    if before.window_override.is_none()
        && let Some(ov) = &after.window_override
    {
        out.push(Happened::WindowOverridden(ov));
    }
    if old != Some((d.reason, d.message.as_str())) && c::PROBLEM_REASONS.contains(&d.reason) {
        out.push(Happened::Problem(d));
    }
    out
}
