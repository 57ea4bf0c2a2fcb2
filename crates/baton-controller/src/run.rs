//! `baton run`: the controller, its watches, and the HTTP server (health, readiness,
//! GitHub webhooks).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use baton_api::{Application, Environment, Promotion};
use futures::StreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use crate::context::{Config, Context};
use crate::reconcile::{error_policy, reconcile};

/// Arguments of `baton run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Address of the HTTP server (health, readiness, webhooks).
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
}

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let max_requeue = baton_api::duration::parse(&args.max_requeue)
        .map_err(|e| RunError::Config(format!("--max-requeue: {e}")))?;
    let client = kube::Client::try_default().await?;
    let instance = std::env::var("POD_NAME").unwrap_or_else(|_| "baton".into());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "baton".into(),
            instance: Some(instance),
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
    ));

    let scope = args.namespace.clone();
    let api = |c: &kube::Client| match &scope {
        Some(ns) => (
            Api::<Promotion>::namespaced(c.clone(), ns),
            Api::<Environment>::namespaced(c.clone(), ns),
            Api::<Application>::namespaced(c.clone(), ns),
        ),
        None => (
            Api::all(c.clone()),
            Api::all(c.clone()),
            Api::all(c.clone()),
        ),
    };
    let (promotions, environments, applications) = api(&client);
    let controller = Controller::new(promotions, watcher::Config::default());
    let store = controller.store();
    let (wake, woken) = futures::channel::mpsc::unbounded::<ObjectRef<Promotion>>();

    // HTTP: health, readiness (watches synced), webhooks.
    let ready = Arc::new(AtomicBool::new(false));
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get({
                let ready = ready.clone();
                move || async move {
                    if ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "watches not synced\n")
                    }
                }
            }),
        );
    if let Some(secret) = args.webhook_secret.clone() {
        let ctx = ctx.clone();
        let store = store.clone();
        let wake = wake.clone();
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
    tracing::info!(addr = %args.http_addr, webhooks = args.webhook_secret.is_some(), "HTTP server listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    {
        let store = store.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            if store.wait_until_ready().await.is_ok() {
                ready.store(true, Ordering::Relaxed);
            }
        });
    }

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
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(promotion = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
    tracing::info!("controller stopped");
    Ok(())
}
