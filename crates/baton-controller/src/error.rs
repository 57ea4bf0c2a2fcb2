//! Reconcile errors, each with a low-cardinality category for metrics and events.

/// Why a reconcile did not finish; the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    GitHub(#[from] baton_github::GitHubError),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("{0}")]
    Blocked(String),
    #[error("not the leader any more (or the Lease could not be renewed): write refused")]
    Fenced,
}

impl Error {
    /// A metric label / event reason.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kubernetes",
            Error::GitHub(e) => e.category(),
            Error::Finalizer(_) => "finalizer",
            Error::Blocked(_) => "blocked",
            Error::Fenced => "fenced",
        }
    }
}
