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

/// One notification record: its kind and service.
pub type Key = (NotificationKind, Option<String>);

/// This operator process's armed records ([`arm`]): its id, and which of the records it
/// armed it has attempted since. An armed record not attempted by this process can be
/// posted without a write ahead of it; any other record cannot.
#[derive(Clone)]
pub struct Arming {
    /// Random per process start: a record armed by an earlier start may have been
    /// posted just before that process stopped.
    pub boot: String,
    tried: Arc<Mutex<HashMap<ObjectRef<Promotion>, Vec<Key>>>>,
}

impl Default for Arming {
    fn default() -> Self {
        Arming {
            boot: format!("{:016x}", rand::random::<u64>()),
            tried: Arc::default(),
        }
    }
}

impl Arming {
    /// Notes, before posting, that this process attempts armed record `key` (true), or
    /// says it already has (false).
    fn try_once(&self, p: &ObjectRef<Promotion>, key: Key) -> bool {
        let Ok(mut m) = self.tried.lock() else {
            return false;
        };
        let tried = m.entry(p.clone()).or_default();
        if tried.contains(&key) {
            return false;
        }
        tried.push(key);
        true
    }

    /// Forgets a Promotion that is done (terminal and written) or deleted.
    pub fn forget(&self, p: &ObjectRef<Promotion>) {
        if let Ok(mut m) = self.tried.lock() {
            m.remove(p);
        }
    }

    /// How many Promotions have armed records attempted and not yet forgotten.
    pub fn pending(&self) -> usize {
        self.tried.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Records ahead, with `armedBy` this process, the notifications `keys` that have no
/// record yet. Pure; true when it added one (then the status must be written).
pub fn arm(status: &mut PromotionStatus, keys: &[Key], boot: &str, now: &Time) -> bool {
    let mut added = false;
    for (kind, service) in keys {
        if find(status, *kind, service.as_deref()).is_none() {
            status.notifications.push(NotificationRecord {
                kind: *kind,
                service: service.clone(),
                attempted_at: now.clone(),
                armed_by: Some(boot.to_owned()),
                delivered_at: None,
                failed: None,
                failed_with: None,
            });
            added = true;
        }
    }
    added
}

/// Drops the records this process armed and never attempted (the promotion ended
/// another way). Records armed by another process stay: that one may have posted them.
pub fn disarm(status: &mut PromotionStatus, boot: &str) {
    status
        .notifications
        .retain(|n| n.armed_by.as_deref() != Some(boot));
}

/// Records (write-ahead, in one status write) that the notifications of `effects` are
/// about to be attempted; returns where each effect's notification stands (`None`
/// for an effect that is not a notification). Records this process armed need no
/// write: when every notification was armed, nothing is written before posting.
pub async fn begin(
    w: &mut Writer,
    status: &mut PromotionStatus,
    effects: &[Effect],
    now: &Time,
    arming: &Arming,
) -> Result<Vec<Option<Attempt>>, Error> {
    let key = w.key.clone();
    let mut write = false;
    let attempts: Vec<Option<Attempt>> = effects
        .iter()
        .map(|e| {
            e.records().map(|(kind, services)| {
                let marked = mark(status, kind, &services, now, &arming.boot, |service| {
                    arming.try_once(&key, (kind, service.map(str::to_owned)))
                });
                write |= marked.write;
                marked.attempt
            })
        })
        .collect();
    if write {
        w.write(status).await?;
    }
    Ok(attempts)
}

/// Where a notification stands once marked, and whether the mark must be written
/// before the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marked {
    pub attempt: Attempt,
    pub write: bool,
}

/// Marks notifications for `services` as being attempted now (to be written ahead).
/// A record armed by `boot` that `first_try` (called once per such record) says this
/// process has not attempted yet is attempted as a first, with no write.
pub fn mark(
    status: &mut PromotionStatus,
    kind: NotificationKind,
    services: &[Option<&str>],
    now: &Time,
    boot: &str,
    mut first_try: impl FnMut(Option<&str>) -> bool,
) -> Marked {
    let mut fresh = false;
    let mut pending = false;
    let mut armed = false;
    for service in services {
        match find(status, kind, *service) {
            Some(r) if r.delivered_at.is_some() || r.failed.is_some() => {}
            Some(r) if r.armed_by.as_deref() == Some(boot) && first_try(*service) => {
                // Written ahead with the Merged status; from now on it is attempted.
                r.armed_by = None;
                armed = true;
            }
            Some(r) => {
                // Recorded again before retrying: the write's resourceVersion precondition
                // fails if this reconcile read a stale copy (the attempt may have finished
                // meanwhile), so a stale read never posts a second time.
                r.attempted_at = now.clone();
                r.armed_by = None;
                pending = true;
            }
            None => {
                status.notifications.push(NotificationRecord {
                    kind,
                    service: service.map(str::to_owned),
                    attempted_at: now.clone(),
                    armed_by: None,
                    delivered_at: None,
                    failed: None,
                    failed_with: None,
                });
                fresh = true;
            }
        }
    }
    let attempt = match (fresh || armed, pending) {
        (false, false) => Attempt::Done,
        (true, false) => Attempt::First,
        _ => Attempt::Again,
    };
    Marked {
        attempt,
        write: fresh || pending,
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

    fn at(s: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + s).expect("a time"))
    }

    #[test]
    fn an_armed_record_is_posted_once_by_its_process_without_a_write_and_looked_up_by_any_other() {
        let mut status = PromotionStatus::default();
        let keys = vec![
            (NotificationKind::SuccessStatus, Some("api".to_owned())),
            (NotificationKind::ResultComment, None),
        ];
        assert!(arm(&mut status, &keys, "boot-a", &at(0)));
        assert!(!arm(&mut status, &keys, "boot-a", &at(1)), "armed once");
        assert!(
            status
                .notifications
                .iter()
                .all(|n| n.armed_by.as_deref() == Some("boot-a"))
        );

        // The process that armed it: a first attempt, nothing to write before it.
        let mut tried = Vec::new();
        let mut first_try = |s: Option<&str>| {
            let fresh = !tried.contains(&s.map(str::to_owned));
            tried.push(s.map(str::to_owned));
            fresh
        };
        let m = mark(
            &mut status,
            NotificationKind::SuccessStatus,
            &[Some("api")],
            &at(5),
            "boot-a",
            &mut first_try,
        );
        assert_eq!(
            m,
            Marked {
                attempt: Attempt::First,
                write: false
            }
        );
        let r = find(&mut status, NotificationKind::SuccessStatus, Some("api")).expect("recorded");
        assert_eq!(r.armed_by, None, "attempted now");
        assert_eq!(r.attempted_at, at(0), "recorded ahead when armed");

        // A restarted operator (another id) may not trust it: it looks first, and
        // records the attempt before it.
        let m = mark(
            &mut status,
            NotificationKind::ResultComment,
            &[None],
            &at(6),
            "boot-b",
            |_| true,
        );
        assert_eq!(
            m,
            Marked {
                attempt: Attempt::Again,
                write: true
            }
        );
        let r = find(&mut status, NotificationKind::ResultComment, None).expect("recorded");
        assert_eq!((r.armed_by.clone(), r.attempted_at.clone()), (None, at(6)));
    }

    #[test]
    fn an_armed_record_its_process_already_tried_is_looked_up_and_written_first() {
        let mut status = PromotionStatus::default();
        let keys = vec![(NotificationKind::SuccessStatus, Some("api".to_owned()))];
        arm(&mut status, &keys, "boot-a", &at(0));
        // Tried before, and the status write after it failed: the cached copy still
        // says armed.
        let m = mark(
            &mut status,
            NotificationKind::SuccessStatus,
            &[Some("api")],
            &at(5),
            "boot-a",
            |_| false,
        );
        assert_eq!(
            m,
            Marked {
                attempt: Attempt::Again,
                write: true
            }
        );
    }

    #[test]
    fn a_promotion_ending_another_way_drops_only_its_own_untried_armed_records() {
        let mut status = PromotionStatus::default();
        arm(
            &mut status,
            &[(NotificationKind::SuccessStatus, Some("api".to_owned()))],
            "boot-a",
            &at(0),
        );
        arm(
            &mut status,
            &[(NotificationKind::SuccessStatus, Some("web".to_owned()))],
            "boot-b",
            &at(0),
        );
        disarm(&mut status, "boot-b");
        let left: Vec<_> = status
            .notifications
            .iter()
            .map(|n| n.service.clone())
            .collect();
        assert_eq!(
            left,
            vec![Some("api".to_owned())],
            "another process may have posted it"
        );
    }

    #[test]
    fn the_arming_process_remembers_its_attempts_until_the_promotion_is_forgotten() {
        let arming = Arming::default();
        let p = ObjectRef::from_obj(&cached("1"));
        let key = (NotificationKind::SuccessStatus, Some("api".to_owned()));
        assert!(arming.try_once(&p, key.clone()));
        assert!(!arming.try_once(&p, key.clone()));
        assert_eq!(arming.pending(), 1);
        arming.forget(&p);
        assert_eq!(arming.pending(), 0);
        assert_ne!(Arming::default().boot, arming.boot, "an id per start");
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
