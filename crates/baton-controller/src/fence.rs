//! Fencing: a replica may write (to GitHub or to a status) only while it knows it holds
//! the leader Lease. A local deadline, moved forward each time the Lease is seen held by
//! this replica, is checked before every write; a leader paused past its Lease (GC
//! pause, SIGSTOP, a partition) finds the deadline passed and stops before writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Shared by every reconcile of a replica.
#[derive(Clone, Debug)]
pub struct Fence {
    inner: Option<Arc<Deadline>>,
}

#[derive(Debug)]
struct Deadline {
    origin: Instant,
    /// Milliseconds after `origin` until which writes are allowed.
    until_ms: AtomicU64,
}

impl Fence {
    /// No leader election: always open.
    pub fn open() -> Self {
        Fence { inner: None }
    }

    /// Leader election: closed until [`Fence::extend`] is called.
    pub fn closed() -> Self {
        Fence {
            inner: Some(Arc::new(Deadline {
                origin: Instant::now(),
                until_ms: AtomicU64::new(0),
            })),
        }
    }

    /// The Lease was seen held by this replica, valid for `valid_for` from now.
    pub fn extend(&self, valid_for: Duration) {
        if let Some(d) = &self.inner {
            let until = d.origin.elapsed().saturating_add(valid_for);
            let ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
            d.until_ms.store(ms, Ordering::SeqCst);
        }
    }

    /// Leadership is gone: nothing more may be written.
    pub fn close(&self) {
        if let Some(d) = &self.inner {
            d.until_ms.store(0, Ordering::SeqCst);
        }
    }

    /// Whether writes are allowed now.
    pub fn is_open(&self) -> bool {
        match &self.inner {
            None => true,
            Some(d) => {
                let now = u64::try_from(d.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
                now < d.until_ms.load(Ordering::SeqCst)
            }
        }
    }

    /// Fails when this replica may no longer write.
    pub fn check(&self) -> Result<(), Error> {
        if self.is_open() {
            Ok(())
        } else {
            Err(Error::Fenced)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_opens_for_the_lease_and_closes_after_it() {
        assert!(Fence::open().check().is_ok());
        let f = Fence::closed();
        assert!(!f.is_open());
        f.extend(Duration::from_millis(200));
        assert!(f.is_open());
        std::thread::sleep(Duration::from_millis(250));
        assert!(!f.is_open(), "a paused leader finds its deadline passed");
        f.extend(Duration::from_secs(10));
        f.close();
        assert!(matches!(f.check(), Err(Error::Fenced)));
    }
}
