//! HTTP dispatch for the fake. One fallback handler serves every path, so faults,
//! auth, rate-limit headers and the request log apply to every endpoint alike; it
//! then routes on path segments to one handler module per capability (see
//! [`super::handlers`]).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::handlers::{self, Auth, RepoRequest, auth, graphql};
use super::reply::{Reply, error};
use super::state::{FaultKind, LoggedRequest, State};

type Shared = Arc<Mutex<State>>;

pub fn router(state: Shared) -> Router {
    Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { handle(state, method, uri, headers, body).await }
        },
    )
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn handle(
    state: Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let conditional = headers.contains_key("if-none-match");
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    if tripped(&state, &path) {
        return respond(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "tripwire: the client is gone",
            ),
            0,
            5000,
            0,
        );
    }
    let _serving = Serving::start(&state, &path);
    let fault = take_fault(&state, &method, &path);
    if let Some(FaultKind::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let mut out = match fault.as_ref().and_then(fault_reply) {
        Some(r) => r,
        None => {
            let query = uri.query().unwrap_or_default().to_owned();
            route(&mut lock(&state), &method, &path, &query, &headers, &body)
        }
    };
    if matches!(fault, Some(FaultKind::LostResponse)) {
        out = error(StatusCode::BAD_GATEWAY, "Bad Gateway");
    }

    let (remaining, limit, reset_at) = {
        let mut guard = lock(&state);
        let now = jiff::Timestamp::now().as_second();
        if guard.reset_at > 0 && now >= guard.reset_at {
            // A new window: the budgets refill.
            guard.remaining = guard.limit;
            guard.graphql_remaining = guard.graphql_limit;
            guard.reset_at = now + 3600;
        }
        let (remaining, limit) = match out.graphql_cost {
            // GraphQL spends points from its own budget.
            Some(cost) => {
                guard.graphql_remaining -= cost;
                (guard.graphql_remaining.max(0), guard.graphql_limit)
            }
            None => {
                // Like GitHub, a 304 does not count against the rate limit.
                if out.status != StatusCode::NOT_MODIFIED {
                    guard.remaining -= 1;
                }
                (guard.remaining.max(0), guard.limit)
            }
        };
        let remaining = if out.exhausted_reset.is_some() {
            0
        } else {
            remaining
        };
        guard.log.push(LoggedRequest {
            method: method.to_string(),
            path,
            status: out.status.as_u16(),
            conditional,
            authorization,
            graphql_cost: out.graphql_cost.unwrap_or(0),
        });
        (remaining, limit, guard.reset_at)
    };
    respond(out, remaining, limit, reset_at)
}

/// A request being served, counted per repository while it lasts.
struct Serving {
    state: Shared,
    repo: Option<String>,
}

impl Serving {
    fn start(state: &Shared, path: &str) -> Self {
        let repo = path.strip_prefix("/repos/").and_then(|rest| {
            let mut parts = rest.splitn(3, '/');
            Some(format!("{}/{}", parts.next()?, parts.next()?))
        });
        if let Some(repo) = &repo {
            let mut s = lock(state);
            let (now, peak) = s.in_flight.entry(repo.clone()).or_default();
            *now += 1;
            *peak = (*peak).max(*now);
        }
        Serving {
            state: state.clone(),
            repo,
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(repo) = &self.repo
            && let Some((now, _)) = lock(&self.state).in_flight.get_mut(repo)
        {
            *now = now.saturating_sub(1);
        }
    }
}

/// Counts a request against the tripwire; true once it is past it.
fn tripped(state: &Shared, path: &str) -> bool {
    let mut s = lock(state);
    let Some(t) = s.tripwire.as_mut() else {
        return false;
    };
    if path != "/graphql" && !t.repos.iter().any(|r| path.contains(&format!("/{r}/"))) {
        return false;
    }
    if t.seen >= t.after {
        t.tripped = true;
        return true;
    }
    t.seen += 1;
    false
}

/// Takes one use of the first queued fault matching this request.
fn take_fault(state: &Shared, method: &Method, path: &str) -> Option<FaultKind> {
    let mut s = lock(state);
    let f = s.faults.iter_mut().find(|f| {
        f.times > 0
            && (f.method == "*" || f.method == method.as_str())
            && path.starts_with(&f.path_prefix)
    })?;
    f.times -= 1;
    Some(f.kind.clone())
}

/// The answer a fault gives instead of doing the work, if it is that kind of fault.
fn fault_reply(fault: &FaultKind) -> Option<Reply> {
    match fault {
        FaultKind::ServerError(code) => Some(error(
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Server Error",
        )),
        FaultKind::TooManyRequests { retry_after_secs } => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit.",
            );
            r.retry_after = Some(*retry_after_secs);
            Some(r)
        }
        FaultKind::RateLimitExhausted { reset_in_secs } => {
            let mut r = error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for installation.",
            );
            r.exhausted_reset = Some(*reset_in_secs);
            Some(r)
        }
        FaultKind::LostResponse | FaultKind::Delay(_) => None,
    }
}

/// The HTTP response for `out`, with the rate-limit headers every GitHub answer has.
fn respond(out: Reply, remaining: i64, limit: i64, reset_at: i64) -> Response {
    let now = jiff::Timestamp::now().as_second();
    let reset = match (out.exhausted_reset, reset_at) {
        (Some(secs), _) => now + i64::try_from(secs).unwrap_or(3600),
        (None, 0) => now + 3600,
        (None, at) => at,
    };
    let mut resp = if out.status == StatusCode::NOT_MODIFIED || out.status == StatusCode::NO_CONTENT
    {
        out.status.into_response()
    } else {
        (out.status, axum::Json(out.body)).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&limit.to_string()) {
        h.insert("x-ratelimit-limit", v);
    }
    let resource = if out.graphql_cost.is_some() {
        "graphql"
    } else {
        "core"
    };
    h.insert("x-ratelimit-resource", HeaderValue::from_static(resource));
    if let Ok(v) = HeaderValue::from_str(&remaining.to_string()) {
        h.insert("x-ratelimit-remaining", v);
    }
    if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
        h.insert("x-ratelimit-reset", v);
    }
    if let Some(secs) = out
        .retry_after
        .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
    {
        h.insert("retry-after", secs);
    }
    if let Some(etag) = out.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        h.insert("etag", etag);
    }
    resp
}

/// Parses the body, authenticates, and picks the handler. App endpoints take the
/// App's JWT; everything else an installation or personal token.
fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(handlers::decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        }
    };
    let auth = auth::authenticate(state, headers);

    if let ["app", "installations", id, "access_tokens"] = segs.as_slice() {
        return auth::create_installation_token(state, method, &auth, id);
    }
    if let ["graphql"] = segs.as_slice() {
        if !matches!(auth, Auth::Token) {
            return error(StatusCode::UNAUTHORIZED, "Bad credentials");
        }
        return graphql::handle(state, &json_body);
    }
    let ["repos", owner, name, rest @ ..] = segs.as_slice() else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let full = format!("{owner}/{name}");
    if let ["installation"] = rest {
        return auth::repo_installation(state, &auth, &full);
    }
    if !matches!(auth, Auth::Token) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    // Allocated for every repository request, whether or not the handler uses it.
    let id = state.id();
    let Some(repo) = state.repos.get_mut(&full) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let web = format!("https://github.com/{full}");
    let req = RepoRequest {
        full: &full,
        web: &web,
        id,
        method: method.as_str(),
        rest,
        query,
        headers,
        body: &json_body,
    };
    handlers::repo(repo, &req)
}
