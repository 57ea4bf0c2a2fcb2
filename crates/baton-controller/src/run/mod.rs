//! `baton run`: [`leader`] election (with the write fence), the controller and its
//! [`watches`], and one [`http`] server for `/metrics`, `/healthz`, `/readyz` and
//! GitHub webhooks.

mod http;
pub mod leader;
mod memory;
mod watches;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use baton_api::Promotion;
use futures::TryStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};

use crate::context::{Config, Context};
use crate::fence::Fence;
use crate::metrics::Metrics;
use http::Health;

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
    /// Watch only this namespace (Promotions, Environments); all when unset.
    #[arg(long, env = "BATON_NAMESPACE")]
    pub namespace: Option<String>,
    /// Namespace of the Argo CD Applications when `--namespace` is set (the Environments'
    /// `spec.applications.namespace`); Applications in `--namespace` itself are watched
    /// too. Without `--namespace` Applications are watched in every namespace.
    #[arg(long, env = "BATON_APPLICATIONS_NAMESPACE", default_value = "argocd")]
    pub applications_namespace: String,
    /// Speak plain HTTP to the Environments' `https://` GitHub API URLs. For tests
    /// against a local fake GitHub only: never in a cluster.
    #[arg(long, env = "BATON_GITHUB_PLAIN_HTTP", default_value_t = false, action = clap::ArgAction::Set, hide = true)]
    pub github_plain_http: bool,
    /// First retry delay after a GitHub 5xx or timeout, in milliseconds.
    #[arg(long, env = "BATON_GITHUB_RETRY_BASE_MS", default_value_t = 500)]
    pub github_retry_base_ms: u64,
    /// Share of each GitHub token's or installation's hourly request budget Baton may
    /// spend (the rest is kept for everything else that uses it); past it, Promotions
    /// wait with condition `GitHubBudget` until the budget resets.
    #[arg(long, env = "BATON_GITHUB_BUDGET_SHARE", default_value_t = 0.8)]
    pub github_budget_share: f64,
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
    /// How many promotions are reconciled at once (bounds memory and API load). Most of
    /// a reconcile is waiting on the API server: at 1,000 Applications turning Synced at
    /// once, 16 left commit statuses 10 s behind, 128 kept them within about 0.5 s, for
    /// about 10 MiB more (GitHub requests are bounded apart, 16 per connection).
    #[arg(long, env = "BATON_CONCURRENCY", default_value_t = 128)]
    pub concurrency: u16,
    /// Lease duration in seconds: how long a crashed leader blocks a takeover. The
    /// leader renews it every third of that.
    #[arg(long, env = "BATON_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..))]
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

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let max_requeue = baton_api::duration::parse(&args.max_requeue)
        .map_err(|e| RunError::Config(format!("--max-requeue: {e}")))?;
    if !(args.github_budget_share > 0.0 && args.github_budget_share <= 1.0) {
        return Err(RunError::Config(format!(
            "--github-budget-share must be in (0, 1], got {}",
            args.github_budget_share
        )));
    }
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
        budget_share: args.github_budget_share,
        ..Default::default()
    };
    let fence = if args.leader_election {
        Fence::closed()
    } else {
        Fence::open()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        recorder.clone(),
        Config {
            max_requeue,
            retry,
            github_plain_http: args.github_plain_http,
        },
        metrics.clone(),
        fence.clone(),
    ));
    ctx.events.start(recorder.clone());
    ctx.notifier
        .start(client.clone(), recorder)
        .map_err(|e| RunError::Config(e.to_string()))?;
    let apis = watches::Apis::new(&client, &args);
    // The Promotion cache keeps only the managed fields that say who set a Baton
    // annotation (the window override names them): at a thousand Promotions the rest
    // are a large share of the memory, and nothing reads them.
    let (store, writer) = kube::runtime::reflector::store();
    // The Environment controller is woken from this same watch (no second one).
    let (env_wake, env_woken) = futures::channel::mpsc::unbounded();
    let fan_ctx = ctx.clone();
    let fan_wake = env_wake.clone();
    let promotions = watcher::watcher(apis.promotions.clone(), watcher::Config::default())
        .default_backoff()
        .modify(watches::slim_promotion)
        .reflect(writer)
        .inspect_ok(move |event| {
            if let Some(p) = watches::objects(event) {
                for env in fan_ctx.environments_for(p) {
                    let _ = fan_wake.unbounded_send(env);
                }
            }
        })
        .applied_objects();
    let controller = Controller::for_stream(promotions, store.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency));
    ctx.use_store(store.clone());
    let (wake, woken) = futures::channel::mpsc::unbounded::<ObjectRef<Promotion>>();
    let poll_wake = wake.clone();
    http::serve(&args, ctx.clone(), store.clone(), health.clone(), wake).await?;

    // Standby replicas wait here; the leader runs the controller until it loses the
    // Lease or is told to stop, then hands the Lease over at once.
    let mut lease = None;
    if args.leader_election {
        let standby = health.clone();
        match leader::acquire(&args, &client, &fence, move || {
            standby.ready.store(true, Ordering::Relaxed)
        })
        .await?
        {
            Some(l) => lease = Some(l),
            None => return Ok(()),
        }
        health.ready.store(false, Ordering::Relaxed);
    }
    watches::report_ready(&apis, health.clone());
    let stop = {
        let mut leader = lease.as_ref().map(|l| l.leader.clone());
        let fence = fence.clone();
        async move {
            let lost = async {
                match leader.as_mut() {
                    Some(rx) => while rx.changed().await.is_ok() && *rx.borrow() {},
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = lost => {
                    // In-flight reconciles stop at their next write instead of draining.
                    fence.close();
                    tracing::warn!("leadership lost: stopping");
                }
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
                _ = terminated() => tracing::info!("terminated: stopping"),
            }
        }
    };
    watches::run(
        controller,
        apis,
        store,
        ctx,
        (poll_wake, woken),
        (env_wake, env_woken),
        stop,
    )
    .await;
    if let Some(l) = lease {
        l.release(&fence).await;
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
