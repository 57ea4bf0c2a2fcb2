//! One HTTP server: `/metrics`, `/healthz`, `/readyz` and GitHub webhooks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use baton_api::{Phase, Promotion};
use kube::runtime::reflector::{ObjectRef, Store};

use super::{RunArgs, RunError};
use crate::context::Context;

/// Readiness: the watches are synced (leader) or the Lease is being followed (standby).
#[derive(Default)]
pub struct Health {
    pub ready: AtomicBool,
}

/// Where webhook wake-ups go.
pub type Wake = futures::channel::mpsc::UnboundedSender<ObjectRef<Promotion>>;

pub async fn serve(
    args: &RunArgs,
    ctx: Arc<Context>,
    store: Store<Promotion>,
    health: Arc<Health>,
    wake: Wake,
) -> Result<(), RunError> {
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
        .route("/metrics", get(metrics(ctx.clone(), store.clone())));
    if let Some(secret) = args.webhook_secret.clone() {
        app = app.merge(baton_github::webhook::router(
            secret.into_bytes(),
            move |event| wake_for(&ctx, &store, &wake, &event),
        ));
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

fn metrics(
    ctx: Arc<Context>,
    store: Store<Promotion>,
) -> impl Fn() -> std::future::Ready<([(&'static str, &'static str); 1], String)> + Clone {
    move || {
        let mut counts: HashMap<(String, Phase), i64> = HashMap::new();
        for p in store.state() {
            let phase = p.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
            *counts
                .entry((p.spec.environment.clone(), phase))
                .or_default() += 1;
        }
        ctx.metrics.set_phase_counts(&counts);
        std::future::ready((
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            ctx.metrics.encode(),
        ))
    }
}

/// A verified delivery only wakes the Promotions whose PR it names; the reconcile
/// confirms the PR's state with a GET before anything changes. Replays are dropped.
fn wake_for(
    ctx: &Context,
    store: &Store<Promotion>,
    wake: &Wake,
    event: &baton_github::webhook::PullRequestEvent,
) {
    if let Some(id) = &event.delivery
        && !ctx.first_delivery(id)
    {
        tracing::info!(delivery = %id, repository = %event.repository, number = event.number, "webhook delivery replayed: ignored");
        return;
    }
    tracing::info!(repository = %event.repository, number = event.number, state = ?event.state, "pull request webhook");
    ctx.prs.invalidate(&event.repository, event.number);
    for p in store.state() {
        let pr = p.status.as_ref().and_then(|s| s.pull_request.as_ref());
        if pr.is_some_and(|pr| pr.branch == event.head_branch) {
            let _ = wake.unbounded_send(ObjectRef::from_obj(&*p));
        }
    }
}
