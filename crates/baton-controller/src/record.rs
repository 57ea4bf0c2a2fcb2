//! Every status write: write-ahead records before an external write, and the final
//! write of a reconcile. Writes carry the resourceVersion they were computed from, so
//! a status computed from a stale read is refused (409) instead of moving a Promotion
//! backwards or erasing a record; the reconcile then starts again from a fresh read.

use baton_api::promotion::{NotificationKind, NotificationRecord, Promotion, PromotionStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::error::Error;

/// Field manager for status writes.
pub const MANAGER: &str = "baton";

/// Writes one Promotion's status, each write preconditioned on the last one.
pub struct Writer {
    api: Api<Promotion>,
    name: String,
    resource_version: Option<String>,
    /// Refuses every write once the operator may no longer act (leadership lost).
    fence: crate::fence::Fence,
}

impl Writer {
    pub fn new(client: kube::Client, p: &Promotion, fence: crate::fence::Fence) -> Self {
        Writer {
            api: Api::namespaced(client, &p.namespace().unwrap_or_default()),
            name: p.name_any(),
            resource_version: p.metadata.resource_version.clone(),
            fence,
        }
    }

    /// The fence every external write checks first.
    pub fn fence(&self) -> &crate::fence::Fence {
        &self.fence
    }

    /// Server-side apply of `status` on the status subresource, preconditioned on the
    /// resourceVersion this reconcile read (or last wrote).
    pub async fn write(&mut self, status: &PromotionStatus) -> Result<(), Error> {
        self.fence.check()?;
        let mut metadata = json!({ "name": self.name });
        if let Some(rv) = &self.resource_version {
            metadata["resourceVersion"] = json!(rv);
        }
        let body = json!({
            "apiVersion": "baton.dev/v1alpha1",
            "kind": "Promotion",
            "metadata": metadata,
            "status": status,
        });
        let written = self
            .api
            .patch_status(
                &self.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
        self.resource_version = written.metadata.resource_version;
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

/// Records (write-ahead) that notifications for `services` are about to be attempted.
pub async fn begin(
    w: &mut Writer,
    status: &mut PromotionStatus,
    kind: NotificationKind,
    services: &[Option<&str>],
    now: &Time,
) -> Result<Attempt, Error> {
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
    if fresh || pending {
        w.write(status).await?;
    }
    Ok(match (fresh, pending) {
        (false, false) => Attempt::Done,
        (true, false) => Attempt::First,
        _ => Attempt::Again,
    })
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
