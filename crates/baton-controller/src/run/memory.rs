//! Freed heap goes back to the OS ([`baton_sys::trim_heap`]) a few seconds after start
//! (the initial lists are done by then) and every [`EVERY`] after: what a burst of
//! reconciles freed does not stay resident while the operator idles. Nothing here waits
//! on a cache's readiness: kube wakes only one of several such waiters.

use std::time::Duration;

/// When the first trim runs.
pub const FIRST: Duration = Duration::from_secs(2);

/// How often freed memory is handed back after that (a trim takes well under a
/// millisecond).
pub const EVERY: Duration = Duration::from_secs(30);

/// Trims after [`FIRST`], then every [`EVERY`], until `stop` resolves.
pub async fn keep_trimmed(stop: impl std::future::Future<Output = ()>) {
    let run = async {
        tokio::time::sleep(FIRST).await;
        loop {
            baton_sys::trim_heap();
            tokio::time::sleep(EVERY).await;
        }
    };
    tokio::select! {
        () = run => {}
        () = stop => {}
    }
}
