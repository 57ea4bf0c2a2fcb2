//! Leader election on a Lease, and the fence that stops writes when the Lease is lost.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::sync::watch;

use super::{RunArgs, RunError};
use crate::fence::Fence;

/// Held while leading; dropping the receiver releases the Lease for a quick hand-over.
pub struct Leadership {
    pub leader: watch::Receiver<bool>,
    pub task: tokio::task::JoinHandle<
        Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
    >,
    /// Keeps the fence; it holds a receiver too, so it is stopped before a release.
    pub keeper: tokio::task::JoinHandle<()>,
    /// This replica's Pod, unlabelled when leadership ends.
    pub pods: Api<Pod>,
    pub identity: String,
}

impl Leadership {
    /// Closes the fence and releases the Lease for a quick hand-over (the manager
    /// releases it once every receiver is gone).
    pub async fn release(self, fence: &Fence) {
        fence.close();
        self.keeper.abort();
        let _ = self.keeper.await;
        label_leader(&self.pods, &self.identity, false).await;
        drop(self.leader);
        let _ = self.task.await;
    }
}

/// Waits until this replica leads. `None` when interrupted while waiting.
pub async fn acquire(
    args: &RunArgs,
    client: &kube::Client,
    fence: &Fence,
    on_standby: impl FnOnce(),
) -> Result<Option<Leadership>, RunError> {
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&args.identity)
        .with_duration(args.lease_seconds)
        .with_grace(renew_grace(args.lease_seconds))
        .build()
        .await
        .map_err(|e| RunError::Lease(e.to_string()))?;
    let (mut leader, task) = manager.watch().await;
    // A restarted container keeps its Pod: drop a label left by an earlier leader run.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &args.lease_namespace);
    label_leader(&pods, &args.identity, false).await;
    on_standby();
    tracing::info!(identity = %args.identity, lease = %args.lease_name, "waiting for leadership");
    loop {
        if *leader.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leader.changed() => changed.map_err(|e| RunError::Lease(e.to_string()))?,
            _ = tokio::signal::ctrl_c() => return Ok(None),
            _ = super::terminated() => return Ok(None),
        }
    }
    tracing::info!(identity = %args.identity, "leading");
    let keeper = spawn_fence_keeper(args, client.clone(), fence.clone(), leader.clone());
    Ok(Some(Leadership {
        leader,
        task,
        keeper,
        pods: Api::namespaced(client.clone(), &args.lease_namespace),
        identity: args.identity.clone(),
    }))
}

/// Keeps the fence's deadline at the Lease's expiry as long as the Lease names this
/// replica; closes it the moment it does not (or leadership is reported lost).
fn spawn_fence_keeper(
    args: &RunArgs,
    client: kube::Client,
    fence: Fence,
    mut leader: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
    let pods: Api<Pod> = Api::namespaced(client, &args.lease_namespace);
    let (name, identity) = (args.lease_name.clone(), args.identity.clone());
    let mut labelled = false;
    let mut tick: u32 = 0;
    let duration = Duration::from_secs(args.lease_seconds);
    let fence = Arc::new(fence);
    tokio::spawn(async move {
        loop {
            if !*leader.borrow() {
                fence.close();
                return;
            }
            match leases.get_opt(&name).await {
                Ok(Some(lease)) => match valid_for(&lease, &identity, duration, Timestamp::now()) {
                    Some(left) => {
                        fence.extend(left);
                        // Out of a cluster there is no Pod: look again now and then.
                        if !labelled && tick.is_multiple_of(5) {
                            labelled = label_leader(&pods, &identity, true).await;
                        }
                    }
                    None => fence.close(),
                },
                Ok(None) => fence.close(),
                // Unknown: the deadline set earlier runs out by itself.
                Err(e) => tracing::warn!(error = %e, "cannot read the leader Lease"),
            }
            tick = tick.wrapping_add(1);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                changed = leader.changed() => if changed.is_err() { fence.close(); return; },
            }
        }
    })
}

/// The label the leader's Pod carries, which the webhook Service selects.
pub const LEADER_LABEL: &str = "baton.dev/leader";

/// Sets (or removes) the leader label on this replica's Pod; false when there is no
/// such Pod (out of a cluster) or it cannot be patched.
pub async fn label_leader(pods: &Api<Pod>, pod: &str, leading: bool) -> bool {
    let value = if leading {
        serde_json::json!("true")
    } else {
        serde_json::Value::Null
    };
    let patch = serde_json::json!({ "metadata": { "labels": { LEADER_LABEL: value } } });
    match pods
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(pod, leading, "leader label set on the Pod");
            true
        }
        Err(e) => {
            tracing::debug!(pod, error = %e, "cannot label the Pod (not in a cluster?)");
            false
        }
    }
}

/// How long before the Lease expires its holder renews it: a third of the way into the
/// duration, as client-go's leader election does (15 s Lease, renewed every 5 s). The
/// write fence closes when the Lease is about to expire, so a renewal left to the last
/// two seconds fenced the leader whenever the API server was slow: at 1,000 Applications
/// turning Synced at once, 21 reconciles failed as "not the leader any more".
pub fn renew_grace(lease_seconds: u64) -> u64 {
    let every = (lease_seconds / 3).max(1);
    lease_seconds.saturating_sub(every).max(1)
}

/// How long the Lease still protects `identity`, if it names it: from its last
/// renewal plus its duration, minus a safety margin for clock skew.
pub fn valid_for(
    lease: &Lease,
    identity: &str,
    duration: Duration,
    now: Timestamp,
) -> Option<Duration> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let held = i64::try_from(
        spec.lease_duration_seconds
            .map(|s| u64::try_from(s).unwrap_or(0))
            .unwrap_or(duration.as_secs()),
    )
    .unwrap_or(0);
    let left = renewed.as_second() + held - now.as_second() - 1;
    u64::try_from(left)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_renewed_a_third_of_the_way_in() {
        assert_eq!(renew_grace(15), 10);
        assert_eq!(renew_grace(30), 20);
        // The shortest Lease (the tests' 3 s) renews every second.
        assert_eq!(renew_grace(3), 2);
        assert_eq!(renew_grace(2), 1);
        for seconds in 2..100 {
            let grace = renew_grace(seconds);
            assert!(grace > 0 && grace < seconds, "{seconds}: {grace}");
        }
    }
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: i64) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed).expect("t"))),
                lease_duration_seconds: Some(15),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn the_lease_protects_its_holder_until_it_expires() {
        let d = Duration::from_secs(15);
        let now = Timestamp::from_second(1_000).expect("t");
        assert_eq!(
            valid_for(&lease("a", 995), "a", d, now),
            Some(Duration::from_secs(9))
        );
        assert_eq!(valid_for(&lease("b", 995), "a", d, now), None);
        assert_eq!(valid_for(&lease("a", 900), "a", d, now), None, "expired");
    }
}
