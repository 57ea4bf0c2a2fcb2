//! The controller's watches: Promotions (the reconciled kind), Environments (wake the
//! Promotions that use one), Argo CD Applications (wake the Promotions waiting on one),
//! and webhook wake-ups.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use baton_api::promotion::Phase;
use baton_api::{Application, Environment, Promotion};
use futures::{StreamExt, TryStreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::RunArgs;
use super::http::Health;
use crate::context::Context;
use crate::reconcile::{error_policy, reconcile};

/// The APIs watched, namespaced with `--namespace`. Applications are watched both in
/// Argo CD's namespace (`--applications-namespace`) and in the Promotions' own (Argo CD's
/// "apps in any namespace"), so a namespaced install sees them at once either way.
#[derive(Clone)]
pub struct Apis {
    pub promotions: Api<Promotion>,
    pub environments: Api<Environment>,
    /// With the namespace each watches (`None`: all).
    pub applications: Vec<(Option<String>, Api<Application>)>,
}

impl Apis {
    pub fn new(client: &kube::Client, args: &RunArgs) -> Self {
        match &args.namespace {
            Some(ns) => {
                let mut applications = vec![(
                    Some(args.applications_namespace.clone()),
                    Api::namespaced(client.clone(), &args.applications_namespace),
                )];
                if *ns != args.applications_namespace {
                    applications.push((Some(ns.clone()), Api::namespaced(client.clone(), ns)));
                }
                Apis {
                    promotions: Api::namespaced(client.clone(), ns),
                    environments: Api::namespaced(client.clone(), ns),
                    applications,
                }
            }
            None => Apis {
                promotions: Api::all(client.clone()),
                environments: Api::all(client.clone()),
                applications: vec![(None, Api::all(client.clone()))],
            },
        }
    }
}

/// Ready once the resources the controller watches can be listed (CRDs installed, RBAC
/// granted): the same calls the watches start with.
pub fn report_ready(apis: &Apis, health: Arc<Health>) {
    let (p, e) = (apis.promotions.clone(), apis.environments.clone());
    tokio::spawn(async move {
        let probe = kube::api::ListParams::default().limit(1);
        loop {
            match (p.list_metadata(&probe).await, e.list_metadata(&probe).await) {
                (Ok(_), Ok(_)) => {
                    tracing::info!("watches established: ready");
                    health.ready.store(true, Ordering::Relaxed);
                    return;
                }
                (Err(err), _) | (_, Err(err)) => {
                    tracing::warn!(error = %err, "not ready: cannot list Promotions/Environments")
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

/// Runs the controller until `stop` resolves.
pub async fn run(
    controller: Controller<Promotion>,
    apis: Apis,
    store: Store<Promotion>,
    ctx: Arc<Context>,
    (wake, woken): (
        futures::channel::mpsc::UnboundedSender<ObjectRef<Promotion>>,
        futures::channel::mpsc::UnboundedReceiver<ObjectRef<Promotion>>,
    ),
    (env_wake, env_woken): (
        futures::channel::mpsc::UnboundedSender<ObjectRef<Environment>>,
        futures::channel::mpsc::UnboundedReceiver<ObjectRef<Environment>>,
    ),
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    use futures::FutureExt;
    let stop = stop.shared();
    // One watch per Applications API, cached (both controllers read Applications from
    // here, never by GET), waking the Promotions and the Environments that wait on each.
    let mut stores = Vec::new();
    let mut controller = controller;
    for (ns, api) in apis.applications.clone() {
        let (reader, writer) = reflector::store();
        stores.push((ns, reader));
        let fan_ctx = ctx.clone();
        let env_wake = env_wake.clone();
        let stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(slim)
            .reflect(writer)
            .touched_objects()
            .inspect_ok(move |app| {
                let ns = app.namespace().unwrap_or_default();
                for env in fan_ctx.environments_on(&ns, &app.name_any()) {
                    let _ = env_wake.unbounded_send(env);
                }
            });
        let app_ctx = ctx.clone();
        controller = controller.watches_stream(stream, move |app| {
            app_ctx.waiting_on(&app.namespace().unwrap_or_default(), &app.name_any())
        });
    }
    // Freed memory goes back to the OS: often while the initial lists come in, then
    // every 30 s.
    let trimmer = super::memory::keep_trimmed(stop.clone());
    ctx.use_application_stores(stores);
    let environments = environments(
        apis.clone(),
        ctx.clone(),
        (store.clone(), wake.clone()),
        env_woken,
        stop.clone(),
    );
    let pulls = poll_pulls(ctx.clone(), store, wake, stop.clone());
    let promotions = controller
        .reconcile_on(woken)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        });
    futures::join!(promotions, environments, pulls, trimmer);
}

/// What of a Promotion's managed fields is kept in the cache: the entries owning a
/// `baton.dev/` annotation (who broke glass on a window is read from them).
pub fn slim_promotion(p: &mut Promotion) {
    if let Some(fields) = p.metadata.managed_fields.as_mut() {
        fields.retain(|m| {
            m.fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:metadata")?.get("f:annotations")?.as_object())
                .is_some_and(|a| a.keys().any(|k| k.starts_with("f:baton.dev/")))
        });
    }
}

/// What of an Application is kept in the cache: managed fields and the last-applied
/// annotation can be larger than everything Baton reads.
fn slim(app: &mut Application) {
    app.metadata.managed_fields = None;
    if let Some(a) = app.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Reads every open promotion PR once per `--max-requeue` (batched per repository, see
/// [`crate::prwatch`]) and wakes the Promotions whose PR changed. Only the leader polls.
async fn poll_pulls(
    ctx: Arc<Context>,
    store: Store<Promotion>,
    wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Promotion>>,
    stop: impl std::future::Future<Output = ()> + Clone,
) {
    let every = ctx.config.max_requeue;
    loop {
        tokio::select! {
            () = stop.clone() => return,
            () = tokio::time::sleep(every) => {}
        }
        // A PR is watched while its Promotion waits on it (or was just opened).
        let live = |who: &ObjectRef<Promotion>, number: u64| {
            store.get(who).is_some_and(|p| {
                let status = p.status.as_ref();
                let phase = status.and_then(|s| s.phase).unwrap_or_default();
                let pr = status.and_then(|s| s.pull_request.as_ref());
                match phase {
                    Phase::PrOpened => pr.is_some_and(|pr| pr.number == number),
                    Phase::Pending => true,
                    _ => false,
                }
            })
        };
        for p in ctx.prs.poll(live, every / 2).await {
            let _ = wake.unbounded_send(p);
        }
    }
}

/// The objects a watch event carries (none for the markers of a relist).
pub fn objects<K>(event: &watcher::Event<K>) -> Option<&K> {
    match event {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o) => {
            Some(o)
        }
        watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

/// Which of an Environment's Promotions its change concerns: all of them when its
/// spec changed or it is gone; only those still Pending when only its status changed
/// (their gates read the versions it records). The status of a thousand-service
/// Environment changes every second during a release: waking every Promotion for it
/// would crowd out the ones with work to do.
fn concerned(p: &Promotion, spec_changed: bool) -> bool {
    spec_changed
        || p.status
            .as_ref()
            .and_then(|s| s.phase)
            .is_none_or(|phase| phase == Phase::Pending)
}

/// The Environment controller: woken by its own changes, by Promotions to it or to its
/// upstream (a Synced upstream promotion may start an automatic one), and by the
/// Applications its status reports on. Its watch also wakes the Promotions an
/// Environment change concerns.
fn environments(
    apis: Apis,
    ctx: Arc<Context>,
    (promotions, wake): (
        Store<Promotion>,
        futures::channel::mpsc::UnboundedSender<ObjectRef<Promotion>>,
    ),
    woken: futures::channel::mpsc::UnboundedReceiver<ObjectRef<Environment>>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> {
    // Changes to an Environment's Promotions and Applications come in bursts (a release
    // of many services); one reconcile a second covers a burst, since each reads
    // everything afresh and writes the whole status.
    let (store, writer) = reflector::store();
    let mut generations = std::collections::HashMap::new();
    let envs = watcher::watcher(apis.environments.clone(), watcher::Config::default())
        .default_backoff()
        .modify(|e: &mut Environment| e.metadata.managed_fields = None)
        .reflect(writer)
        .inspect_ok(move |event| {
            let Some(env) = objects(event) else { return };
            let key = ObjectRef::from_obj(env);
            let spec_changed = match event {
                watcher::Event::Delete(_) => {
                    generations.remove(&key);
                    true
                }
                _ => {
                    generations.insert(key, env.metadata.generation)
                        != Some(env.metadata.generation)
                }
            };
            let ns = env.metadata.namespace.as_deref();
            for p in promotions.state() {
                if p.metadata.namespace.as_deref() == ns
                    && env.metadata.name.as_deref() == Some(p.spec.environment.as_str())
                    && concerned(&p, spec_changed)
                {
                    let _ = wake.unbounded_send(ObjectRef::from_obj(&*p));
                }
            }
        })
        .applied_objects();
    ctx.use_environment_store(store.clone());
    let controller = Controller::for_stream(envs, store).with_config(
        kube::runtime::controller::Config::default().debounce(std::time::Duration::from_secs(1)),
    );
    controller
        .reconcile_on(woken)
        .graceful_shutdown_on(stop)
        .run(
            crate::pipeline::reconcile,
            crate::pipeline::error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "environment controller event");
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_who_set_a_baton_annotation_and_drops_the_rest() {
        let mut p: Promotion = serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion",
            "metadata": { "name": "p", "managedFields": [
                { "manager": "bench", "operation": "Apply", "fieldsType": "FieldsV1",
                  "fieldsV1": { "f:spec": { "f:environment": {} } } },
                { "manager": "oncall-alice", "operation": "Apply", "fieldsType": "FieldsV1",
                  "fieldsV1": { "f:metadata": { "f:annotations": { "f:baton.dev/override-windows": {} } } } }
            ] },
            "spec": { "environment": "production", "services": [] }
        }))
        .expect("a Promotion");
        slim_promotion(&mut p);
        let kept: Vec<_> = p
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter_map(|m| m.manager.clone())
            .collect();
        assert_eq!(kept, vec!["oncall-alice".to_owned()]);
    }
}
