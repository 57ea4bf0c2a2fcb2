//! The HTTP core: one place that sends requests to GitHub, retries what is safe to
//! retry, honours rate limits, answers unchanged GETs from an ETag cache, and counts
//! requests by operation for metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, Request, StatusCode};
use octocrab::Octocrab;
use serde_json::Value;

use crate::error::GitHubError;

/// What a request is for: a bounded set, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    GetBranch,
    GetContents,
    PutContents,
    CreateTree,
    CreateCommit,
    GetRef,
    CreateRef,
    UpdateRef,
    DeleteRef,
    ListPulls,
    CreatePull,
    GetPull,
    UpdatePull,
    AddLabels,
    RequestReviewers,
    EnableAutoMerge,
    DisableAutoMerge,
    ListStatuses,
    CreateStatus,
    GetRelease,
    CreateRelease,
    UpdateRelease,
    Compare,
    GetCommit,
    ListReviews,
    GetInstallation,
    ListComments,
    CreateComment,
    UpdateComment,
    ListDeployments,
    CreateDeployment,
    CreateDeploymentStatus,
    /// GraphQL: the state of many pull requests in one query.
    PullStates,
    /// GraphQL: the dates of many commits in one query.
    CommitDates,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::GetBranch => "get_branch",
            Operation::GetContents => "get_contents",
            Operation::PutContents => "put_contents",
            Operation::CreateTree => "create_tree",
            Operation::CreateCommit => "create_commit",
            Operation::GetRef => "get_ref",
            Operation::CreateRef => "create_ref",
            Operation::UpdateRef => "update_ref",
            Operation::DeleteRef => "delete_ref",
            Operation::ListPulls => "list_pulls",
            Operation::ListComments => "list_comments",
            Operation::CreateComment => "create_comment",
            Operation::UpdateComment => "update_comment",
            Operation::ListDeployments => "list_deployments",
            Operation::CreateDeployment => "create_deployment",
            Operation::CreateDeploymentStatus => "create_deployment_status",
            Operation::CreatePull => "create_pull",
            Operation::GetPull => "get_pull",
            Operation::UpdatePull => "update_pull",
            Operation::AddLabels => "add_labels",
            Operation::RequestReviewers => "request_reviewers",
            Operation::EnableAutoMerge => "enable_auto_merge",
            Operation::DisableAutoMerge => "disable_auto_merge",
            Operation::ListStatuses => "list_statuses",
            Operation::CreateStatus => "create_status",
            Operation::GetRelease => "get_release",
            Operation::CreateRelease => "create_release",
            Operation::UpdateRelease => "update_release",
            Operation::Compare => "compare",
            Operation::GetCommit => "get_commit",
            Operation::ListReviews => "list_reviews",
            Operation::GetInstallation => "get_installation",
            Operation::PullStates => "pull_states",
            Operation::CommitDates => "commit_dates",
        }
    }

    /// Sent to the GraphQL endpoint, and counted against GraphQL's own budget.
    pub fn is_graphql(self) -> bool {
        matches!(
            self,
            Operation::EnableAutoMerge
                | Operation::DisableAutoMerge
                | Operation::PullStates
                | Operation::CommitDates
        )
    }

    /// Whether repeating the request after a lost response cannot duplicate anything.
    /// Creating a commit status is the one call GitHub happily repeats, so it is
    /// retried only after looking first (see `ensure_status`).
    fn retry_is_safe(self) -> bool {
        self != Operation::CreateStatus
    }
}

/// Request counters, shared with `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// REST requests that count against the rate limit (everything but 304s).
    pub counted: AtomicU64,
    /// GraphQL requests (GitHub counts them in points, against a budget of their own).
    pub graphql: AtomicU64,
    /// Conditional requests answered 304 Not Modified (free).
    pub not_modified: AtomicU64,
    /// `x-ratelimit-remaining` from the last response, -1 before the first.
    pub remaining: AtomicI64,
    by_operation: Mutex<BTreeMap<(Operation, &'static str), u64>>,
}

impl Stats {
    /// Requests by operation and status class (`2xx`, `3xx`, `4xx`, `5xx`, `error`).
    pub fn by_operation(&self) -> BTreeMap<(Operation, &'static str), u64> {
        self.by_operation
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    fn record(&self, op: Operation, class: &'static str) {
        if let Ok(mut m) = self.by_operation.lock() {
            *m.entry((op, class)).or_default() += 1;
        }
    }
}

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A rate-limit wait longer than this is returned to the caller instead of slept.
    pub max_rate_limit_wait: Duration,
    pub request_timeout: Duration,
    /// The share of each hour's request budget Baton may spend (0 < share <= 1); the
    /// rest is kept for whatever else uses the same token or installation.
    pub budget_share: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            budget_share: 0.8,
        }
    }
}

/// A response body and status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

/// Called after every request with the operation, status class and remaining quota.
pub type Observer = std::sync::Arc<dyn Fn(Operation, &'static str, Option<i64>) + Send + Sync>;

/// Called once per budget window when the budget guard starts holding requests back,
/// with how long until the window resets.
pub type BudgetObserver = std::sync::Arc<dyn Fn(Duration) + Send + Sync>;

/// The request budget as GitHub last reported it (`x-ratelimit-*`).
#[derive(Debug, Default)]
struct Budget {
    limit: AtomicI64,
    remaining: AtomicI64,
    /// Epoch seconds.
    reset: AtomicU64,
    /// The window (its reset) the guard last reported holding requests in.
    held: AtomicU64,
}

impl Budget {
    fn unknown() -> Self {
        Budget {
            limit: AtomicI64::new(-1),
            remaining: AtomicI64::new(-1),
            ..Budget::default()
        }
    }
}

/// A GitHub connection.
pub struct GitHub {
    observer: Option<Observer>,
    budget_observer: Option<BudgetObserver>,
    /// REST's budget and GraphQL's: GitHub keeps them apart.
    budget: Budget,
    graphql_budget: Budget,
    pub(crate) crab: Octocrab,
    /// The client for GraphQL when its endpoint is not under the REST base: GitHub
    /// Enterprise serves REST at `<host>/api/v3` and GraphQL at `<host>/api/graphql`.
    graphql: Option<Octocrab>,
    api: String,
    retry: RetryPolicy,
    etags: Mutex<HashMap<String, (String, Value)>>,
    pub(crate) ancestry: Mutex<HashMap<(String, String, String), bool>>,
    /// Committer dates by (repository, sha): immutable, so kept.
    pub(crate) commit_dates: Mutex<HashMap<(String, String), String>>,
    stats: std::sync::Arc<Stats>,
    /// Requests in flight on this connection, at most [`MAX_IN_FLIGHT`].
    in_flight: tokio::sync::Semaphore,
}

/// Requests one connection has in flight at once. GitHub refuses more than 100
/// concurrent requests per client (a secondary rate limit) and asks for mutations to be
/// spread out; the operator reconciles many Promotions at once, so the bound is here.
pub const MAX_IN_FLIGHT: usize = 16;

impl GitHub {
    /// Wraps an authenticated octocrab client for the API at `api_url`.
    pub fn new(crab: Octocrab, api_url: &str, retry: RetryPolicy) -> Self {
        GitHub {
            observer: None,
            budget_observer: None,
            budget: Budget::unknown(),
            graphql_budget: Budget::unknown(),
            crab,
            graphql: None,
            api: api_url.trim_end_matches('/').to_owned(),
            retry,
            etags: Mutex::new(HashMap::new()),
            ancestry: Mutex::new(HashMap::new()),
            commit_dates: Mutex::new(HashMap::new()),
            stats: std::sync::Arc::new(Stats {
                remaining: AtomicI64::new(-1),
                ..Stats::default()
            }),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// Sends GraphQL requests through `crab` (based at [`graphql_base`]).
    pub fn with_graphql(mut self, crab: Octocrab) -> Self {
        self.graphql = Some(crab);
        self
    }

    /// Reports every request to `observer` (metrics).
    pub fn observed_by(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells `observer` when the budget guard starts holding requests back.
    pub fn budget_observed_by(mut self, observer: BudgetObserver) -> Self {
        self.budget_observer = Some(observer);
        self
    }

    /// Refuses to send when Baton's share of the hour's budget is spent (the rest is
    /// kept for other users of the same credentials), until the window resets.
    fn check_budget(&self, op: Operation) -> Result<(), GitHubError> {
        let budget = self.budget_of(op);
        let limit = budget.limit.load(Ordering::Relaxed);
        let remaining = budget.remaining.load(Ordering::Relaxed);
        let reset = budget.reset.load(Ordering::Relaxed);
        let now = now_secs();
        if limit <= 0 || remaining < 0 || reset <= now {
            return Ok(());
        }
        let share = self.retry.budget_share.clamp(0.0, 1.0);
        // Truncation is fine: the reserve is a whole number of requests.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let reserve = ((limit as f64) * (1.0 - share)).ceil() as i64;
        if remaining > reserve {
            return Ok(());
        }
        let reset_in = Duration::from_secs(reset - now);
        if budget.held.swap(reset, Ordering::Relaxed) != reset {
            tracing::warn!(
                remaining,
                limit,
                graphql = op.is_graphql(),
                reset_in_s = reset_in.as_secs(),
                "GitHub request budget share spent: holding requests until the window resets"
            );
            if let Some(o) = &self.budget_observer {
                o(reset_in);
            }
        }
        Err(GitHubError::BudgetExhausted {
            remaining,
            limit,
            reset_in,
        })
    }

    fn budget_of(&self, op: Operation) -> &Budget {
        if op.is_graphql() {
            &self.graphql_budget
        } else {
            &self.budget
        }
    }

    /// Request counters.
    pub fn stats(&self) -> std::sync::Arc<Stats> {
        self.stats.clone()
    }

    /// Sends a request, retrying transient failures. A 4xx other than rate limiting is
    /// returned as `Ok` with its status so callers can interpret 404 and 422.
    pub async fn send(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, GitHubError> {
        self.send_inner(op, method, path, body, false).await
    }

    /// A GET that sends `If-None-Match` and answers a 304 from the cache (free of rate limit).
    pub async fn get_conditional(&self, op: Operation, path: &str) -> Result<Reply, GitHubError> {
        self.send_inner(op, Method::GET, path, None, true).await
    }

    async fn send_inner(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&Value>,
        conditional: bool,
    ) -> Result<Reply, GitHubError> {
        // The cache key is absolute; the request URI stays relative so octocrab adds
        // the base URL (with GitHub Enterprise's /api/v3) and its credentials, which it
        // only attaches to relative URIs or api.github.com.
        let url = format!("{}{path}", self.api);
        self.check_budget(op)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let cached = if conditional {
                self.etags.lock().ok().and_then(|m| m.get(&url).cloned())
            } else {
                None
            };
            let outcome = self
                .once(
                    op,
                    &method,
                    path,
                    body,
                    cached.as_ref().map(|(e, _)| e.as_str()),
                )
                .await;
            let wait = match outcome {
                Ok(Raw { status, .. }) if status == StatusCode::NOT_MODIFIED => {
                    self.stats.not_modified.fetch_add(1, Ordering::Relaxed);
                    self.stats.record(op, "3xx");
                    self.notify(op, "3xx", None);
                    return match cached {
                        Some((_, body)) => Ok(Reply {
                            status: StatusCode::OK,
                            body,
                        }),
                        None => Err(GitHubError::Decode {
                            operation: op.as_str(),
                            message: "304 without a cached body".into(),
                        }),
                    };
                }
                Ok(raw) => {
                    let budget = self.budget_of(op);
                    if op.is_graphql() {
                        self.stats.graphql.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.stats.counted.fetch_add(1, Ordering::Relaxed);
                    }
                    self.stats.record(op, class(raw.status));
                    self.notify(op, class(raw.status), raw.remaining);
                    if let Some(r) = raw.remaining {
                        if !op.is_graphql() {
                            self.stats.remaining.store(r, Ordering::Relaxed);
                        }
                        budget.remaining.store(r, Ordering::Relaxed);
                    }
                    if let Some(l) = raw.limit {
                        budget.limit.store(l, Ordering::Relaxed);
                    }
                    if let Some(r) = raw.reset {
                        budget.reset.store(r, Ordering::Relaxed);
                    }
                    match self.classify(&raw) {
                        Verdict::Done => {
                            if let (true, Some(etag), Ok(mut m)) =
                                (conditional, raw.etag.clone(), self.etags.lock())
                            {
                                insert_bounded(
                                    &mut m,
                                    url.clone(),
                                    (etag, raw.body.clone()),
                                    MAX_ETAGS,
                                );
                            }
                            return Ok(Reply {
                                status: raw.status,
                                body: raw.body,
                            });
                        }
                        Verdict::RateLimited(wait) if wait > self.retry.max_rate_limit_wait => {
                            return Err(GitHubError::RateLimited(wait));
                        }
                        Verdict::RateLimited(wait) => wait,
                        Verdict::ServerError if !op.retry_is_safe() => {
                            return Err(http_error(op, &raw));
                        }
                        Verdict::ServerError => self.backoff(attempt),
                    }
                }
                Err(message) => {
                    self.stats.record(op, "error");
                    self.notify(op, "error", None);
                    if !op.retry_is_safe() {
                        return Err(GitHubError::Transport {
                            operation: op.as_str(),
                            message,
                        });
                    }
                    if attempt >= self.retry.max_attempts {
                        return Err(GitHubError::Transport {
                            operation: op.as_str(),
                            message,
                        });
                    }
                    self.backoff(attempt)
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(GitHubError::Transport {
                    operation: op.as_str(),
                    message: format!("gave up after {attempt} attempts"),
                });
            }
            tracing::debug!(
                operation = op.as_str(),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying GitHub request"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn notify(&self, op: Operation, class: &'static str, remaining: Option<i64>) {
        if let Some(o) = &self.observer {
            o(op, class, remaining);
        }
    }

    fn classify(&self, raw: &Raw) -> Verdict {
        let s = raw.status.as_u16();
        let exhausted = s == 403 && (raw.remaining == Some(0) || raw.retry_after.is_some());
        if s == 429 || exhausted {
            let wait = raw
                .retry_after
                .or_else(|| {
                    raw.reset
                        .map(|reset| Duration::from_secs(reset.saturating_sub(now_secs())))
                })
                .unwrap_or(Duration::from_secs(60));
            return Verdict::RateLimited(wait);
        }
        if s >= 500 {
            return Verdict::ServerError;
        }
        Verdict::Done
    }

    /// Exponential backoff with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.retry.max_delay);
        let jitter = rand::random_range(0.5..=1.0);
        exp.mul_f64(jitter)
    }

    async fn once(
        &self,
        op: Operation,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        etag: Option<&str>,
    ) -> Result<Raw, String> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "baton-operator");
        if let Some(etag) = etag {
            builder = builder.header("if-none-match", etag);
        }
        let crab = match (&self.graphql, op) {
            (Some(g), op) if op.is_graphql() => g,
            _ => &self.crab,
        };
        let request = crab
            .build_request(builder, body)
            .map_err(|e| e.to_string())?;
        // Never closed: an error here is impossible, and the request goes ahead anyway.
        let _permit = self.in_flight.acquire().await.ok();
        let call = crab.execute(request);
        let response = tokio::time::timeout(self.retry.request_timeout, call)
            .await
            .map_err(|_| {
                format!(
                    "{} timed out after {:?}",
                    op.as_str(),
                    self.retry.request_timeout
                )
            })?
            .map_err(|e| e.to_string())?;
        let headers = response.headers().clone();
        let status = response.status();
        let text = crab
            .body_to_string(response)
            .await
            .map_err(|e| e.to_string())?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(Raw {
            status,
            body,
            etag: headers
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            remaining: num("x-ratelimit-remaining"),
            limit: num("x-ratelimit-limit"),
            reset: num("x-ratelimit-reset").and_then(|v| u64::try_from(v).ok()),
            retry_after: num("retry-after")
                .and_then(|v| u64::try_from(v).ok())
                .map(Duration::from_secs),
        })
    }
}

/// How many conditional-GET answers (ETag and body) a connection keeps.
pub const MAX_ETAGS: usize = 4096;
/// How many ancestry answers a connection keeps.
pub const MAX_ANCESTRY: usize = 16_384;

/// Inserts into a cache that never grows past `cap`: when full, an arbitrary entry goes
/// (an evicted answer only costs one more request).
pub(crate) fn insert_bounded<K: std::hash::Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    cap: usize,
) {
    if map.len() >= cap
        && !map.contains_key(&key)
        && let Some(old) = map.keys().next().cloned()
    {
        map.remove(&old);
    }
    map.insert(key, value);
}

/// The base GraphQL's `/graphql` path is relative to, when it differs from the REST
/// base: `https://ghe.example.com/api` for `https://ghe.example.com/api/v3`.
pub fn graphql_base(api_url: &str) -> Option<String> {
    api_url
        .trim_end_matches('/')
        .strip_suffix("/v3")
        .filter(|base| base.ends_with("/api"))
        .map(str::to_owned)
}

struct Raw {
    status: StatusCode,
    body: Value,
    etag: Option<String>,
    remaining: Option<i64>,
    limit: Option<i64>,
    reset: Option<u64>,
    retry_after: Option<Duration>,
}

enum Verdict {
    Done,
    RateLimited(Duration),
    ServerError,
}

fn class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn http_error(op: Operation, raw: &Raw) -> GitHubError {
    GitHubError::Http {
        operation: op.as_str(),
        status: raw.status.as_u16(),
        message: message_of(&raw.body),
    }
}

/// GitHub's error message, with the first detail from `errors` when present.
pub fn message_of(body: &Value) -> String {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let detail = body
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .and_then(|e| e.get("message").or_else(|| e.get("code")))
        .and_then(Value::as_str);
    match detail {
        Some(d) => format!("{message}: {d}"),
        None => message.to_owned(),
    }
}

impl Reply {
    /// Turns a non-2xx reply into an error.
    pub fn ok(self, op: Operation) -> Result<Value, GitHubError> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(GitHubError::Http {
                operation: op.as_str(),
                status: self.status.as_u16(),
                message: message_of(&self.body),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_caches_never_grow_past_their_cap() {
        let mut m = HashMap::new();
        for i in 0..10_000 {
            insert_bounded(&mut m, i, i, 100);
        }
        assert_eq!(m.len(), 100);
        assert_eq!(m.get(&9_999), Some(&9_999), "the newest answer is kept");
    }
}
