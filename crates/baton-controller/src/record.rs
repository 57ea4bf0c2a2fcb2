//! Every status write: write-ahead records before an external write, and the final
//! write of a reconcile. Writes carry the resourceVersion they were computed from, so
//! a status computed from a stale read is refused (409) instead of moving a Promotion
//! backwards or erasing a record; the reconcile then starts again from a fresh read.

use baton_api::promotion::{NotificationKind, NotificationRecord, Promotion, PromotionStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::PostParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::machine::effects::Effect;

/// Field manager for status writes.
pub const MANAGER: &str = "baton";

/// The resourceVersion of each Promotion's last status write, kept until the watch
/// cache has caught up with it. A reconcile that starts from an older cached copy
/// would redo what that write recorded (a second branch deletion, a PR lookup), only
/// to be refused with a 409 afterwards; it waits for the cache instead.
#[derive(Default, Clone)]
pub struct Written(Arc<Mutex<HashMap<ObjectRef<Promotion>, u64>>>);

impl Written {
    fn note(&self, key: ObjectRef<Promotion>, resource_version: Option<&str>) {
        if let (Some(rv), Ok(mut m)) = (version(resource_version), self.0.lock()) {
            m.insert(key, rv);
        }
    }

    /// Whether `p`, a cached copy, is older than this operator's last write of it.
    /// Resource versions are compared as numbers (etcd's); one that is not a number
    /// is never called stale.
    pub fn stale(&self, p: &Promotion) -> bool {
        let key = ObjectRef::from_obj(p);
        let Ok(mut m) = self.0.lock() else {
            return false;
        };
        let Some(&written) = m.get(&key) else {
            return false;
        };
        match version(p.metadata.resource_version.as_deref()) {
            Some(cached) if cached < written => true,
            _ => {
                m.remove(&key);
                false
            }
        }
    }

    pub fn forget(&self, key: &ObjectRef<Promotion>) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(key);
        }
    }

    /// How many writes the cache has not caught up with yet.
    pub fn pending(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }
}

fn version(rv: Option<&str>) -> Option<u64> {
    rv?.parse().ok()
}

/// Writes one Promotion's status, each write preconditioned on the last one.
pub struct Writer {
    api: Api<Promotion>,
    key: ObjectRef<Promotion>,
    /// What is sent: the Promotion's name, namespace and spec (the API server keeps the
    /// stored spec and metadata on a status write), the resourceVersion and the status.
    body: Promotion,
    /// Refuses every write once the operator may no longer act (leadership lost).
    fence: crate::fence::Fence,
    written: Written,
}

impl Writer {
    pub fn new(client: kube::Client, p: &Promotion, fence: crate::fence::Fence) -> Self {
        let mut body = Promotion::new(&p.name_any(), p.spec.clone());
        body.metadata.namespace = p.metadata.namespace.clone();
        body.metadata.resource_version = p.metadata.resource_version.clone();
        Writer {
            api: Api::namespaced(client, &p.namespace().unwrap_or_default()),
            key: ObjectRef::from_obj(p),
            body,
            fence,
            written: Written::default(),
        }
    }

    /// The operator's writer: its writes are noted in `written`, so reconciles wait
    /// for the cache to catch up with them.
    pub fn tracked(ctx: &crate::context::Context, p: &Promotion) -> Self {
        Writer {
            written: ctx.written.clone(),
            ..Writer::new(ctx.client.clone(), p, ctx.fence.clone())
        }
    }

    /// The fence every external write checks first.
    pub fn fence(&self) -> &crate::fence::Fence {
        &self.fence
    }

    /// Replaces the status (PUT on the status subresource), preconditioned on the
    /// resourceVersion this reconcile read (or last wrote). A replace, not a
    /// server-side apply: the status has one writer, and an apply costs the API server
    /// several times the CPU (YAML parsing, field merging), which at a thousand
    /// promotions is what limits how fast they all report.
    pub async fn write(&mut self, status: &PromotionStatus) -> Result<(), Error> {
        self.fence.check()?;
        self.body.status = Some(status.clone());
        let params = PostParams {
            field_manager: Some(MANAGER.to_owned()),
            ..PostParams::default()
        };
        let written = self
            .api
            .replace_status(&self.key.name, &params, &self.body)
            .await?;
        self.written.note(
            self.key.clone(),
            written.metadata.resource_version.as_deref(),
        );
        self.body.metadata.resource_version = written.metadata.resource_version;
        Ok(())
    }
}

/// The record of a notification (per kind and service).
pub fn find<'s>(
    status: &'s mut PromotionStatus,
    kind: NotificationKind,
    service: Option<&str>,
) -> Option<&'s mut NotificationRecord> {
    status
        .notifications
        .iter_mut()
        .find(|n| n.kind == kind && n.service.as_deref() == service)
}

/// Where a notification stands before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Delivered, or refused for good: nothing to do.
    Done,
    /// Never tried: no need to look on GitHub first.
    First,
    /// Tried before (maybe landed): look before posting again.
    Again,
}

/// Records (write-ahead, in one status write) that the notifications of `effects` are
/// about to be attempted; returns where each effect's notification stands (`None`
/// for an effect that is not a notification).
pub async fn begin(
    w: &mut Writer,
    status: &mut PromotionStatus,
    effects: &[Effect],
    now: &Time,
) -> Result<Vec<Option<Attempt>>, Error> {
    let attempts: Vec<Option<Attempt>> = effects
        .iter()
        .map(|e| {
            e.records()
                .map(|(kind, services)| mark(status, kind, &services, now))
        })
        .collect();
    if attempts
        .iter()
        .any(|a| matches!(a, Some(Attempt::First | Attempt::Again)))
    {
        w.write(status).await?;
    }
    Ok(attempts)
}

/// Marks notifications for `services` as being attempted now (to be written ahead).
pub fn mark(
    status: &mut PromotionStatus,
    kind: NotificationKind,
    services: &[Option<&str>],
    now: &Time,
) -> Attempt {
    let mut fresh = false;
    let mut pending = false;
    for service in services {
        match find(status, kind, *service) {
            Some(r) if r.delivered_at.is_some() || r.failed.is_some() => {}
            Some(r) => {
                // Recorded again before retrying: the write's resourceVersion precondition
                // fails if this reconcile read a stale copy (the attempt may have finished
                // meanwhile), so a stale read never posts a second time.
                r.attempted_at = now.clone();
                pending = true;
            }
            None => {
                status.notifications.push(NotificationRecord {
                    kind,
                    service: service.map(str::to_owned),
                    attempted_at: now.clone(),
                    delivered_at: None,
                    failed: None,
                    failed_with: None,
                });
                fresh = true;
            }
        }
    }
    match (fresh, pending) {
        (false, false) => Attempt::Done,
        (true, false) => Attempt::First,
        _ => Attempt::Again,
    }
}

/// Marks notifications delivered, or refused for good (`failed`: why, and the
/// credentials version it was refused with).
pub fn finish(
    status: &mut PromotionStatus,
    kind: NotificationKind,
    services: &[Option<&str>],
    now: &Time,
    failed: Option<(&str, &str)>,
) {
    for service in services {
        if let Some(r) = find(status, kind, *service) {
            match failed {
                Some((why, with)) => {
                    r.failed = Some(why.to_owned());
                    r.failed_with = Some(with.to_owned());
                }
                None => r.delivered_at = Some(now.clone()),
            }
        }
    }
}

/// Refused notifications whose credentials have changed since: worth another try.
pub fn retryable(status: &PromotionStatus, credentials: &str) -> Vec<NotificationRecord> {
    status
        .notifications
        .iter()
        .filter(|n| crate::machine::refused_with_other(n, credentials))
        .cloned()
        .collect()
}

/// Clears the refusal of `records` so the next attempt looks on GitHub first.
pub fn reopen(status: &mut PromotionStatus, records: &[NotificationRecord]) {
    for old in records {
        if let Some(r) = find(status, old.kind, old.service.as_deref()) {
            r.failed = None;
            r.failed_with = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cached(rv: &str) -> Promotion {
        serde_json::from_value(json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion",
            "metadata": { "name": "p", "namespace": "team", "resourceVersion": rv },
            "spec": { "environment": "production", "services": [] }
        }))
        .expect("a Promotion")
    }

    #[test]
    fn a_cached_copy_older_than_the_last_write_is_stale_until_the_cache_catches_up() {
        let written = Written::default();
        let key = ObjectRef::from_obj(&cached("1"));
        assert!(!written.stale(&cached("100")), "nothing written yet");
        written.note(key.clone(), Some("120"));
        assert!(written.stale(&cached("100")));
        assert!(written.stale(&cached("119")));
        assert!(!written.stale(&cached("120")));
        assert_eq!(written.pending(), 0, "caught up: forgotten");
        // A version that is not a number is never called stale.
        written.note(key, Some("130"));
        assert!(!written.stale(&cached("x7")));
        assert_eq!(written.pending(), 0);
    }
}
