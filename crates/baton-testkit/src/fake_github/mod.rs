//! A stateful fake of the parts of GitHub's REST API Baton uses, served over real
//! HTTP on loopback. It keeps repositories (real Git repositories on disk, see `git`:
//! refs, trees, commits, contents, all under their Git ids), pull
//! requests, labels, reviewers, statuses and releases, answers like GitHub does
//! (422 for duplicates, 404 for unknown objects, ETag/304, rate-limit headers), and
//! can inject faults. Tests drive the reviewer's side (merge, close, push) directly.
//!
//! `router` takes every request (faults, auth, log, rate-limit headers) to a
//! handler in `handlers`, one module per capability; `state` is the data model;
//! `git` writes it to Git.

mod git;
mod handlers;
mod reply;
mod router;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use state::State;
pub use state::{
    Comment, Deployment, DeploymentStatus, Fault, FaultKind, LoggedRequest, Pull, Release, Status,
};

/// A running fake GitHub. Dropping it stops the server.
pub struct FakeGitHub {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    server: Option<tokio::task::JoinHandle<()>>,
}

static SHARED: std::sync::OnceLock<FakeGitHub> = std::sync::OnceLock::new();

/// One fake per test process, served from its own thread so it outlives any single
/// test's runtime. Tests isolate themselves by using their own repositories.
pub fn shared() -> &'static FakeGitHub {
    SHARED.get_or_init(|| {
        let state = match State::new() {
            Ok(s) => Arc::new(Mutex::new(s)),
            Err(e) => panic!("the shared fake GitHub cannot make its Git folder: {e}"),
        };
        let served = state.clone();
        match crate::background::serve_forever(move || router::router(served)) {
            Ok(addr) => FakeGitHub {
                state,
                addr,
                server: None,
            },
            Err(e) => panic!("the shared fake GitHub cannot start: {e}"),
        }
    })
}

/// The personal token the fake accepts by default.
pub const TOKEN: &str = "ghp_baton_fake_token_0123456789";

impl FakeGitHub {
    /// Starts the fake on a free loopback port in the current tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State::new()?));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeGitHub {
            state,
            addr,
            server: Some(server),
        })
    }

    /// Base URL to configure as the GitHub API URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates `owner/name` with one commit on `branch` holding `files`; returns its SHA.
    /// Panics if Git fails.
    pub fn create_repo(&self, repo: &str, branch: &str, files: &[(&str, &str)]) -> String {
        match self.lock().create_repo(repo, branch, files) {
            Ok(sha) => sha,
            Err(e) => panic!("fake GitHub: creating {repo}: {e}"),
        }
    }

    /// Commits `files` on top of `branch` (someone else pushing); returns the new SHA,
    /// or an empty string if there is no such repository or branch. Panics if Git fails.
    pub fn push(&self, repo: &str, branch: &str, files: &[(&str, &str)], message: &str) -> String {
        match self.lock().push(repo, branch, files, message) {
            Ok(sha) => sha.unwrap_or_default(),
            Err(e) => panic!("fake GitHub: pushing to {repo}: {e}"),
        }
    }

    /// The `file://` URL of `repo`'s bare Git repository, for Argo CD to sync from.
    pub fn git_url(&self, repo: &str) -> Option<String> {
        self.lock().repo(repo).map(|r| r.git.url())
    }

    /// A file's content at the head of `branch`.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        self.lock().file_at_branch(repo, branch, path)
    }

    /// The head SHA of `branch`.
    pub fn branch_sha(&self, repo: &str, branch: &str) -> Option<String> {
        self.lock().branch_sha(repo, branch)
    }

    /// Every branch of `repo`.
    pub fn branches(&self, repo: &str) -> BTreeMap<String, String> {
        self.lock()
            .repo(repo)
            .map(|r| r.refs.clone())
            .unwrap_or_default()
    }

    /// Parents of commit `sha`.
    pub fn parents(&self, repo: &str, sha: &str) -> Vec<String> {
        self.lock()
            .repo(repo)
            .and_then(|r| r.commits.get(sha).map(|c| c.parents.clone()))
            .unwrap_or_default()
    }

    /// Pull requests of `repo`, oldest first.
    pub fn pulls(&self, repo: &str) -> Vec<Pull> {
        self.lock()
            .repo(repo)
            .map(|r| r.pulls.clone())
            .unwrap_or_default()
    }

    /// Merges PR `number` as a reviewer would, with a merge commit whose parents are
    /// the base head and the PR head (in that order); returns it. `None` if the PR is
    /// not open or does not merge cleanly. Panics if Git fails.
    pub fn merge(&self, repo: &str, number: u64) -> Option<String> {
        match self.lock().merge(repo, number) {
            Ok(sha) => sha,
            Err(e) => panic!("fake GitHub: merging {repo}#{number}: {e}"),
        }
    }

    /// Submits a review (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) by `user`.
    pub fn review(&self, repo: &str, number: u64, user: &str, state: &str) {
        self.lock().review(repo, number, user, state);
    }

    /// Closes PR `number` without merging.
    pub fn close(&self, repo: &str, number: u64) {
        self.lock().close(repo, number);
    }

    /// Commit statuses posted on `sha`, oldest first.
    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<Status> {
        self.lock()
            .repo(repo)
            .and_then(|r| r.statuses.get(sha).cloned())
            .unwrap_or_default()
    }

    /// Commit statuses posted on any commit of `repo` after the first `from`, as
    /// `(sha, status)`, oldest first (cheap to poll).
    pub fn statuses_since(&self, repo: &str, from: usize) -> Vec<(String, Status)> {
        self.lock()
            .repo(repo)
            .map(|r| r.status_log.iter().skip(from).cloned().collect())
            .unwrap_or_default()
    }

    /// Releases of `repo`.
    pub fn releases(&self, repo: &str) -> Vec<Release> {
        self.lock()
            .repo(repo)
            .map(|r| r.releases.clone())
            .unwrap_or_default()
    }

    /// Sets the rate-limit window: `remaining` of `limit` requests until `reset_in`
    /// from now, when it refills to `limit` (as GitHub's hourly window does).
    pub fn set_budget(&self, limit: i64, remaining: i64, reset_in: Duration) {
        let mut s = self.lock();
        s.limit = limit;
        s.remaining = remaining;
        s.reset_at =
            jiff::Timestamp::now().as_second() + i64::try_from(reset_in.as_secs()).unwrap_or(3600);
    }

    /// Requests left in the current window.
    pub fn budget_remaining(&self) -> i64 {
        self.lock().remaining
    }

    /// The deployments of `repo`, oldest first.
    pub fn deployments(&self, repo: &str) -> Vec<Deployment> {
        self.lock()
            .repo(repo)
            .map(|r| r.deployments.clone())
            .unwrap_or_default()
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Forgets the request log.
    /// The most requests naming `repo` (`owner/name`) that were served at once.
    pub fn peak_in_flight(&self, repo: &str) -> usize {
        self.lock()
            .in_flight
            .get(repo)
            .map(|(_, peak)| *peak)
            .unwrap_or(0)
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Arms a [`state::Tripwire`]: after `after` requests about `repos`, every further
    /// one is refused undone, as if the client died right after its `after`-th request.
    pub fn set_tripwire(&self, repos: &[&str], after: usize) {
        self.lock().tripwire = Some(state::Tripwire {
            repos: repos.iter().map(|r| (*r).to_owned()).collect(),
            after,
            ..state::Tripwire::default()
        });
    }

    /// Whether the tripwire refused a request.
    pub fn tripped(&self) -> bool {
        self.lock().tripwire.as_ref().is_some_and(|t| t.tripped)
    }

    /// Disarms the tripwire.
    pub fn clear_tripwire(&self) {
        self.lock().tripwire = None;
    }

    /// Queues a fault for the next `times` requests whose method and path match.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Registers a GitHub App installation; its tokens live for `token_ttl`.
    pub fn install_app(&self, app_id: u64, installation_id: u64, repo: &str, token_ttl: Duration) {
        self.lock()
            .install_app(app_id, installation_id, repo, token_ttl);
    }

    /// How many installation tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens.len()
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}
