//! The GitHub budget guard, on the real control plane with `baton run` as a process:
//! with a fake GitHub that reports a small hourly budget, Baton spends only its share
//! (80% by default), then holds the Promotion with condition `GitHubBudget` naming when
//! the budget resets, sends nothing meanwhile, and carries on once it has reset.
//! Its own test binary: the budget is the fake GitHub's, shared by the tests of a binary.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use baton_api::Phase;
use baton_api::conditions as c;
use baton_integration::{World, ready};

#[tokio::test]
async fn a_small_budget_holds_promotions_until_it_resets_instead_of_failing_them() {
    let w = World::new("budget", &["api"]).await;
    // 21 of 100 left: one request, then Baton's 80% share is spent.
    let reset_in = Duration::from_secs(15);
    w.fake.set_budget(100, 21, reset_in);
    let started = Instant::now();
    w.promote("api-v2", "production", &[("api", "api-v2")])
        .await;
    let held = w.wait_reason("api-v2", c::REASON_GITHUB_BUDGET).await;
    let msg = ready(&held).message;
    assert!(
        msg.contains("of 100 requests left") && msg.contains("resumes at"),
        "{msg}"
    );
    assert_eq!(
        held.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Pending)
    );
    // Nothing is sent while held.
    let sent = w.fake.requests().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        w.fake.requests().len(),
        sent,
        "requests sent while the budget is held"
    );
    assert!(
        w.fake.budget_remaining() >= 19,
        "the reserve is left for others"
    );

    // The window resets: the promotion carries on by itself.
    let p = w
        .wait_phase("api-v2", Phase::PrOpened, Duration::from_secs(60))
        .await;
    assert!(
        started.elapsed() >= reset_in - Duration::from_secs(2),
        "opened before the reset"
    );
    assert_ne!(ready(&p).reason, c::REASON_GITHUB_BUDGET);
    let metrics = w.metrics_with("baton_github_budget_holds_total").await;
    let waited: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("baton_github_budget_wait_seconds_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(waited > 0.0, "{metrics}");
    assert!(
        metrics.contains("baton_github_budget_holds_total"),
        "{metrics}"
    );
}
