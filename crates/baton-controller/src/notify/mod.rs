//! Chat and webhook notifications (`spec.notifications.webhooks` of an Environment).
//!
//! A reconcile that changed a Promotion's phase calls [`Notifier::phase_changed`]
//! after its status write. That builds the bodies ([`message`], pure) and puts one
//! delivery per interested target on a bounded in-memory queue, never waiting: a full
//! queue drops the notification (logged and counted). One background task
//! ([`deliver`]) posts them, a few at a time, each with up to
//! [`message::MAX_ATTEMPTS`] attempts, 1 s, 2 s, 4 s, 8 s apart with jitter (a
//! receiver's `Retry-After` is honoured up to a minute). A delivery never holds,
//! fails or slows a promotion. One that fails for good is counted in
//! `baton_notification_failures_total{environment, format}` and reported as a Warning
//! Event `NotificationDeliveryFailed` on the Promotion, naming the receiver's host
//! only; accepted ones in `baton_notifications_delivered_total`.
//!
//! Each phase change is queued once, when the status write that made it succeeds; a
//! queued notification is retried until accepted (so a receiver may see a repeat,
//! with the same `X-Baton-Delivery`). The queue lives in memory: a notification whose
//! phase change was written but not yet delivered is lost if the operator stops (the
//! next leader sees no phase change to send). Deliveries start in phase order, but a
//! retried one may arrive after the next phase's; `at` says when each was entered.
//!
//! Each POST carries `Content-Type: application/json`, `X-Baton-Event: <event>`,
//! `X-Baton-Delivery: <id>` (the same on every retry, so receivers can drop repeats)
//! and, with `secretRef`, `X-Baton-Signature-256: sha256=<hex>`: the HMAC-SHA256 of
//! the raw body keyed with the Secret's value, as GitHub signs its webhooks.
//!
//! The `Json` body (fields in this order; `pullRequest` is `null` before the pull
//! request exists, `source` is `null` for a service without one, `rollback` is present
//! only on rollback Promotions):
//!
//! ```json
//! {
//!   "event": "Synced",                      // PullRequestOpened | Merged | Synced | Failed | Rejected | RolledBack | Superseded
//!   "namespace": "syrf",
//!   "promotion": "api-v9-1-1-to-production",
//!   "environment": "production",
//!   "phase": "Synced",                      // status.phase: PROpened | Merged | Synced | Failed | Rejected | Superseded
//!   "services": [
//!     { "name": "api", "version": "api-v9.1.1",   // the version, or the digest
//!       "source": { "repository": "camaradesuk/syrf-test", "commit": "6b47f42a..." } }
//!   ],
//!   "applications": [ { "namespace": "argocd", "name": "api-production" } ],
//!   "pullRequest": { "number": 42, "url": "https://github.com/camaradesuk/cluster-gitops/pull/42" },
//!   "rollback": { "reason": "500s after the deploy", "of": "api-v9-1-1-to-production" },
//!   "reason": "Synced",                     // the Ready condition's reason
//!   "message": "every Application is Synced and Healthy at the merged revision",
//!   "at": "2026-11-23T10:00:05Z"            // when the phase was entered (RFC 3339)
//! }
//! ```
//!
//! The `Slack` body is an incoming-webhook message: a `text` line (what
//! notifications and clients without blocks show) and `blocks` with the services and
//! versions, the Promotion, the pull request link, the Argo CD Applications, the
//! phase, a rollback's reason and the Ready message.
//!
//! URLs: `https://`, or `http://` to localhost, 127.0.0.1 or [::1] only (a sidecar
//! relay, a test receiver); the API server enforces it on `url`, and the same rule
//! is applied to URLs read from Secrets at each delivery. URLs (which may carry a
//! token, as Slack's do) are never logged nor put in Events.

pub mod deliver;
pub mod message;

use std::sync::{Arc, Mutex};

use baton_api::environment::{WebhookFormat, WebhookTarget};
use baton_api::{Environment, Promotion, PromotionStatus};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::events::Recorder;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use deliver::{Delivery, UrlFrom};

/// How many deliveries may wait; beyond that new ones are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 1024;

/// Why the delivery task could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("TLS configuration for webhook deliveries: {0}")]
    Tls(String),
    #[error("the notification task is already running")]
    AlreadyStarted,
}

/// The reconciles' side of notifications: enqueue only.
pub struct Notifier {
    queue: mpsc::Sender<Delivery>,
    /// Taken by [`Notifier::start`]; until then deliveries wait in the queue.
    inbox: Mutex<Option<mpsc::Receiver<Delivery>>>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE_CAPACITY);
        Notifier {
            queue,
            inbox: Mutex::new(Some(inbox)),
            metrics,
        }
    }

    /// Starts the background task that delivers what is queued.
    pub fn start(&self, client: kube::Client, recorder: Recorder) -> Result<(), NotifyError> {
        let inbox = self
            .inbox
            .lock()
            .ok()
            .and_then(|mut i| i.take())
            .ok_or(NotifyError::AlreadyStarted)?;
        let poster = deliver::Poster::new(client, recorder, self.metrics.clone())?;
        tokio::spawn(deliver::run(inbox, poster));
        Ok(())
    }

    /// `p` just entered `status.phase` (written): queues one delivery per webhook of
    /// `env` that wants this event. Never waits and never fails.
    pub fn phase_changed(
        &self,
        p: &Promotion,
        env: Option<&Environment>,
        status: &PromotionStatus,
    ) {
        let (Some(env), Some(phase)) = (env, status.phase) else {
            return;
        };
        let Some(event) = message::event_of(p, phase) else {
            return;
        };
        let targets: Vec<(usize, &WebhookTarget)> = env
            .spec
            .notifications
            .webhooks
            .iter()
            .enumerate()
            .filter(|(_, t)| message::wants(t, event))
            .collect();
        if targets.is_empty() {
            return;
        }
        let notice = message::notice(p, env, status, event, Timestamp::now());
        let namespace = p.metadata.namespace.clone().unwrap_or_default();
        let uid = p.metadata.uid.as_deref().unwrap_or_default();
        for (i, target) in targets {
            let body = match target.format {
                WebhookFormat::Json => message::json_body(&notice),
                WebhookFormat::Slack => message::slack_body(&notice),
            };
            let body = match body {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot build a notification body");
                    self.metrics
                        .notification(&p.spec.environment, target.format, false);
                    continue;
                }
            };
            let url = match (&target.url, &target.url_secret_ref) {
                (Some(u), _) => UrlFrom::Spec(u.clone()),
                (None, Some(r)) => UrlFrom::Secret(r.clone()),
                // The API server requires exactly one of them.
                (None, None) => continue,
            };
            let d = Delivery {
                id: format!("{uid}.{}.{i}", event.as_str()),
                namespace: namespace.clone(),
                environment: p.spec.environment.clone(),
                target: i,
                event,
                format: target.format,
                url,
                signing: target.secret_ref.clone(),
                body: body.into(),
                regarding: p.object_ref(&()),
            };
            if let Err(e) = self.queue.try_send(d) {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "delivery task stopped",
                };
                tracing::warn!(promotion = %notice.promotion, namespace = %namespace, event = event.as_str(), target = i, why, "notification dropped");
                self.metrics
                    .notification(&p.spec.environment, target.format, false);
            }
        }
    }

    /// Deliveries waiting to be taken by the task (for tests).
    pub fn queued(&self) -> usize {
        QUEUE_CAPACITY - self.queue.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::Phase;
    use serde_json::json;

    fn env(webhooks: serde_json::Value) -> Environment {
        serde_json::from_value(json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Environment",
            "metadata": { "name": "production", "namespace": "syrf" },
            "spec": {
                "gitops": { "repository": "camaradesuk/cluster-gitops", "target": { "file": "x.yaml", "yamlPath": "a" } },
                "github": { "secretRef": { "name": "github" } },
                "notifications": { "webhooks": webhooks }
            }
        }))
        .expect("environment")
    }

    fn promotion() -> Promotion {
        serde_json::from_value(json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion",
            "metadata": { "name": "p", "namespace": "syrf", "uid": "u-1" },
            "spec": { "environment": "production",
                      "source": { "repository": "camaradesuk/syrf-test", "commit": "6b47f42a0c3d8e9f1a2b3c4d5e6f708192a3b4c5" },
                      "services": [ { "name": "api", "version": "api-v9.1.1" } ] }
        }))
        .expect("promotion")
    }

    fn status(phase: Phase) -> PromotionStatus {
        PromotionStatus {
            phase: Some(phase),
            ..PromotionStatus::default()
        }
    }

    #[tokio::test]
    async fn only_interested_targets_are_queued_and_a_full_queue_drops() {
        let metrics = Arc::new(Metrics::new());
        let n = Notifier::new(metrics.clone());
        let e = env(json!([
            { "url": "https://hooks.example.com/all" },
            { "urlSecretRef": { "name": "slack" }, "format": "Slack", "events": ["Failed", "RolledBack"] }
        ]));
        let p = promotion();
        n.phase_changed(&p, Some(&e), &status(Phase::Pending));
        assert_eq!(n.queued(), 0, "creation notifies nobody");
        n.phase_changed(&p, None, &status(Phase::PrOpened));
        assert_eq!(n.queued(), 0, "no Environment, no targets");
        n.phase_changed(&p, Some(&e), &status(Phase::PrOpened));
        assert_eq!(n.queued(), 1, "only the target without a filter");
        n.phase_changed(&p, Some(&e), &status(Phase::Failed));
        assert_eq!(n.queued(), 3);
        // Nothing delivers (the task is not started): the queue fills, then drops.
        for _ in 0..QUEUE_CAPACITY {
            n.phase_changed(&p, Some(&e), &status(Phase::Merged));
        }
        assert_eq!(n.queued(), QUEUE_CAPACITY);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"baton_notification_failures_total{environment="production",format="Json"} 3"#
            ),
            "{text}"
        );
    }
}
