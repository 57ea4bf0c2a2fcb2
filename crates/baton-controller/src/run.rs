//! `baton run`: leader election, the controller and its watches, and one HTTP server
//! for `/metrics`, `/healthz`, `/readyz` and GitHub webhooks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use baton_api::{Application, Environment, Phase, Promotion};
use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use crate::context::{Config, Context};
use crate::metrics::Metrics;
use crate::reconcile::{error_policy, reconcile};

/// Arguments of `baton run`. Every flag also reads an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Address of the HTTP server (metrics, health, readiness, webhooks).
    #[arg(long, env = "BATON_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Secret GitHub signs webhook deliveries with; without it `/webhooks/github` is off.
    #[arg(long, env = "BATON_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Longest wait between two looks at a promotion without an event (`60s`, `5m`).
    #[arg(long, env = "BATON_MAX_REQUEUE", default_value = "60s")]
    pub max_requeue: String,
    /// Watch only this namespace (Promotions, Environments, Applications); all when unset.
    #[arg(long, env = "BATON_NAMESPACE")]
    pub namespace: Option<String>,
    /// First retry delay after a GitHub 5xx or timeout, in milliseconds.
    #[arg(long, env = "BATON_GITHUB_RETRY_BASE_MS", default_value_t = 500)]
    pub github_retry_base_ms: u64,
    /// Run only while holding the leader Lease, so several replicas never both reconcile.
    #[arg(long, env = "BATON_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader Lease (usually the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, env = "BATON_LEASE_NAME", default_value = "baton-leader")]
    pub lease_name: String,
    /// This replica's identity in the Lease (the pod name in a cluster).
    #[arg(long, env = "POD_NAME", default_value = "baton")]
    pub identity: String,
    /// How many promotions are reconciled at once (bounds memory and API load).
    #[arg(long, env = "BATON_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Lease duration in seconds: how long a crashed leader blocks a takeover.
    #[arg(long, env = "BATON_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
}

/// Why `baton run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Config(String),
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
    #[error("leader election: {0}")]
    Lease(String),
}

/// Readiness: the watches are synced (leader) or the Lease is being followed (standby).
#[derive(Default)]
struct Health {
    ready: AtomicBool,
}

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let max_requeue = baton_api::duration::parse(&args.max_requeue)
        .map_err(|e| RunError::Config(format!("--max-requeue: {e}")))?;
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "baton".into(),
            instance: Some(args.identity.clone()),
        },
    );
    let retry = baton_github::RetryPolicy {
        base_delay: std::time::Duration::from_millis(args.github_retry_base_ms),
        ..Default::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        recorder,
        Config { max_requeue, retry },
        metrics.clone(),
    ));

    let (promotions, environments, applications) = match &args.namespace {
        Some(ns) => (
            Api::<Promotion>::namespaced(client.clone(), ns),
            Api::<Environment>::namespaced(client.clone(), ns),
            Api::<Application>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let (promotions_probe, environments_probe) = (promotions.clone(), environments.clone());
    let controller = Controller::new(promotions, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency));
    let store = controller.store();
    let (wake, woken) = futures::channel::mpsc::unbounded::<ObjectRef<Promotion>>();
    serve_http(&args, ctx.clone(), store.clone(), health.clone(), wake).await?;

    // Standby replicas wait here; the leader runs the controller until it loses the
    // Lease or is told to stop, then hands the Lease over at once.
    let mut lease = None;
    if args.leader_election {
        let manager =
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&args.lease_namespace)
                .with_identity(&args.identity)
                .with_duration(args.lease_seconds)
                .with_grace(2)
                .build()
                .await
                .map_err(|e| RunError::Lease(e.to_string()))?;
        let (mut leader, task) = manager.watch().await;
        health.ready.store(true, Ordering::Relaxed);
        tracing::info!(identity = %args.identity, lease = %args.lease_name, "waiting for leadership");
        loop {
            if *leader.borrow_and_update() {
                break;
            }
            tokio::select! {
                changed = leader.changed() => changed.map_err(|e| RunError::Lease(e.to_string()))?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = terminated() => return Ok(()),
            }
        }
        tracing::info!(identity = %args.identity, "leading");
        health.ready.store(false, Ordering::Relaxed);
        lease = Some((leader, task));
    }
    {
        // Ready once the resources the controller watches can be listed (CRDs installed,
        // RBAC granted): the same calls the watches start with.
        let health = health.clone();
        let (p, e) = (promotions_probe.clone(), environments_probe.clone());
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
    let stop = {
        let mut leader = lease.as_ref().map(|(rx, _)| rx.clone());
        async move {
            let lost = async {
                match leader.as_mut() {
                    Some(rx) => while rx.changed().await.is_ok() && *rx.borrow() {},
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = lost => tracing::warn!("leadership lost: stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
                _ = terminated() => tracing::info!("terminated: stopping"),
            }
        }
    };
    let env_store = store.clone();
    let app_ctx = ctx.clone();
    controller
        .watches(environments, watcher::Config::default(), move |env| {
            let ns = env.namespace().unwrap_or_default();
            let name = env.name_any();
            env_store
                .state()
                .into_iter()
                .filter(|p| {
                    p.namespace().as_deref() == Some(ns.as_str()) && p.spec.environment == name
                })
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
        .watches(applications, watcher::Config::default(), move |app| {
            app_ctx.waiting_on(&app.namespace().unwrap_or_default(), &app.name_any())
        })
        .reconcile_on(woken)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    if let Some((leader, task)) = lease {
        // Dropping the receiver makes the manager release the Lease for a quick hand-over.
        drop(leader);
        let _ = task.await;
        tracing::info!("lease released");
    }
    tracing::info!("controller stopped");
    Ok(())
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

async fn serve_http(
    args: &RunArgs,
    ctx: Arc<Context>,
    store: Store<Promotion>,
    health: Arc<Health>,
    wake: futures::channel::mpsc::UnboundedSender<ObjectRef<Promotion>>,
) -> Result<(), RunError> {
    let metrics_store = store.clone();
    let metrics = ctx.metrics.clone();
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || async move {
                if health.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: watches not synced\n",
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                let mut counts: HashMap<(String, Phase), i64> = HashMap::new();
                for p in metrics_store.state() {
                    let phase = p.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
                    *counts
                        .entry((p.spec.environment.clone(), phase))
                        .or_default() += 1;
                }
                metrics.set_phase_counts(&counts);
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }),
        );
    if let Some(secret) = args.webhook_secret.clone() {
        app = app.merge(baton_github::webhook::router(secret.into_bytes(), move |event| {
            tracing::info!(repository = %event.repository, number = event.number, state = ?event.state, "pull request webhook");
            if let Ok(mut m) = ctx.webhook_prs.lock() {
                m.insert((event.repository.clone(), event.number), event.state.clone());
            }
            for p in store.state() {
                let branch = p.status.as_ref().and_then(|s| s.pull_request.as_ref()).map(|pr| pr.branch.as_str());
                if branch == Some(event.head_branch.as_str()) {
                    let _ = wake.unbounded_send(ObjectRef::from_obj(&*p));
                }
            }
        }));
    }
    let listener = tokio::net::TcpListener::bind(args.http_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, webhooks = args.webhook_secret.is_some(), "HTTP server listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok(())
}
