//! Freed heap goes back to the OS ([`baton_sys::trim_heap`]) soon after start, several
//! times while the initial lists come in (how long they take depends on the cluster),
//! then every [`EVERY`]: what a burst of reconciles freed does not stay resident while
//! the operator idles. Nothing here waits on a cache's readiness: kube wakes only one
//! of several such waiters.

use std::time::Duration;

/// How often freed memory is handed back once started (a trim takes well under a
/// millisecond).
pub const EVERY: Duration = Duration::from_secs(30);

/// The waits between trims: doubling from one second up to [`EVERY`].
pub fn schedule() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(Duration::from_secs(1)), |d| Some((*d * 2).min(EVERY)))
}

/// Trims on [`schedule`] until `stop` resolves.
pub async fn keep_trimmed(stop: impl std::future::Future<Output = ()>) {
    let run = async {
        for wait in schedule() {
            tokio::time::sleep(wait).await;
            baton_sys::trim_heap();
        }
    };
    tokio::select! {
        () = run => {}
        () = stop => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_early_and_often_at_first_then_every_half_minute() {
        let secs: Vec<u64> = schedule().take(8).map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
