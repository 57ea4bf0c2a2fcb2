//! HTTP dispatch for the fake. One handler routes on method and path segments, so
//! faults, auth, rate-limit headers and the request log apply to every endpoint alike.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::TOKEN;
use super::state::{
    Commit, FaultKind, LoggedRequest, Pull, Release, Repo, State, Status, object_id,
};

type Shared = Arc<Mutex<State>>;

pub fn router(state: Shared) -> Router {
    Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { handle(state, method, uri, headers, body).await }
        },
    )
}

struct Reply {
    status: StatusCode,
    body: Value,
    etag: Option<String>,
    retry_after: Option<u64>,
    exhausted_reset: Option<u64>,
}

fn reply(status: StatusCode, body: Value) -> Reply {
    Reply {
        status,
        body,
        etag: None,
        retry_after: None,
        exhausted_reset: None,
    }
}

fn error(status: StatusCode, message: &str) -> Reply {
    reply(
        status,
        json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }),
    )
}

fn unprocessable(message: &str, detail: &str) -> Reply {
    reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "message": message, "errors": [{ "message": detail, "code": "custom" }], "documentation_url": "https://docs.github.com/rest" }),
    )
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

    let fault = take_fault(&state, &method, &path);
    if let Some(FaultKind::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let early = match &fault {
        Some(FaultKind::ServerError(code)) => Some(error(
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Server Error",
        )),
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit.",
            );
            r.retry_after = Some(*retry_after_secs);
            Some(r)
        }
        Some(FaultKind::RateLimitExhausted { reset_in_secs }) => {
            let mut r = error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for installation.",
            );
            r.exhausted_reset = Some(*reset_in_secs);
            Some(r)
        }
        _ => None,
    };
    let mut out = match early {
        Some(r) => r,
        None => {
            let mut guard = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let query = uri.query().unwrap_or_default().to_owned();
            let result = route(&mut guard, &method, &path, &query, &headers, &body);
            drop(guard);
            result
        }
    };
    if matches!(fault, Some(FaultKind::LostResponse)) {
        out = error(StatusCode::BAD_GATEWAY, "Bad Gateway");
    }

    let mut guard = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if out.status != StatusCode::NOT_MODIFIED {
        guard.remaining -= 1;
    }
    let remaining = if out.exhausted_reset.is_some() {
        0
    } else {
        guard.remaining.max(0)
    };
    guard.log.push(LoggedRequest {
        method: method.to_string(),
        path,
        status: out.status.as_u16(),
        conditional,
        authorization,
    });
    drop(guard);

    let now = jiff::Timestamp::now().as_second();
    let reset = now + i64::try_from(out.exhausted_reset.unwrap_or(3600)).unwrap_or(3600);
    let mut resp = if out.status == StatusCode::NOT_MODIFIED || out.status == StatusCode::NO_CONTENT
    {
        out.status.into_response()
    } else {
        (out.status, axum::Json(out.body)).into_response()
    };
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
    h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
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

fn take_fault(state: &Shared, method: &Method, path: &str) -> Option<FaultKind> {
    let mut s = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let f = s.faults.iter_mut().find(|f| {
        f.times > 0
            && (f.method == "*" || f.method == method.as_str())
            && path.starts_with(&f.path_prefix)
    })?;
    f.times -= 1;
    Some(f.kind.clone())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%').then(|| s.get(i + 1..i + 3)).flatten();
        if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}

enum Auth {
    Token,
    Jwt,
    None,
}

fn authenticate(state: &mut State, headers: &HeaderMap) -> Auth {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Auth::None;
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))
        .unwrap_or_default();
    if token == TOKEN {
        return Auth::Token;
    }
    let now = Instant::now();
    if state.tokens.iter().any(|(t, exp)| t == token && *exp > now) {
        return Auth::Token;
    }
    if token.split('.').count() == 3 && token.starts_with("ey") {
        return Auth::Jwt;
    }
    Auth::None
}

fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        }
    };
    let auth = authenticate(state, headers);

    if let ["app", "installations", id, "access_tokens"] = segs.as_slice() {
        if method != Method::POST {
            return error(StatusCode::NOT_FOUND, "Not Found");
        }
        if !matches!(auth, Auth::Jwt) {
            return error(
                StatusCode::UNAUTHORIZED,
                "A JSON web token could not be decoded",
            );
        }
        let Some(app) = state
            .apps
            .iter()
            .find(|a| a.installation_id.to_string() == *id)
        else {
            return error(StatusCode::NOT_FOUND, "Not Found");
        };
        let ttl = app.token_ttl;
        let n = state.tokens.len();
        let token = format!("ghs_installation_{id}_{n}");
        state.tokens.push((token.clone(), Instant::now() + ttl));
        let expires =
            jiff::Timestamp::now() + jiff::SignedDuration::try_from(ttl).unwrap_or_default();
        return reply(
            StatusCode::CREATED,
            json!({ "token": token, "expires_at": expires.to_string(), "permissions": { "contents": "write", "pull_requests": "write", "statuses": "write" } }),
        );
    }

    if let ["graphql"] = segs.as_slice() {
        if !matches!(auth, Auth::Token) {
            return error(StatusCode::UNAUTHORIZED, "Bad credentials");
        }
        return graphql(state, &json_body);
    }
    let ["repos", owner, name, rest @ ..] = segs.as_slice() else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let full = format!("{owner}/{name}");
    if let ["installation"] = rest {
        if !matches!(auth, Auth::Jwt) {
            return error(
                StatusCode::UNAUTHORIZED,
                "A JSON web token could not be decoded",
            );
        }
        return match state.apps.iter().find(|a| a.repo == full) {
            Some(app) => reply(
                StatusCode::OK,
                json!({ "id": app.installation_id, "app_id": app.app_id }),
            ),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        };
    }
    if !matches!(auth, Auth::Token) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let id = state.id();
    let Some(repo) = state.repos.get_mut(&full) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let base = format!("https://github.com/{full}");
    repo_route(
        repo, &full, &base, id, method, rest, query, headers, &json_body,
    )
}

#[allow(clippy::too_many_arguments)]
fn repo_route(
    repo: &mut Repo,
    full: &str,
    web: &str,
    id: u64,
    method: &Method,
    rest: &[&str],
    query: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Reply {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    match (method.as_str(), rest) {
        ("GET", ["branches", branch @ ..]) => {
            let branch = branch.join("/");
            match repo.refs.get(&branch) {
                Some(sha) => {
                    let tree = repo
                        .commits
                        .get(sha)
                        .map(|c| c.tree.clone())
                        .unwrap_or_default();
                    reply(
                        StatusCode::OK,
                        json!({ "name": branch, "commit": { "sha": sha, "commit": { "tree": { "sha": tree }, "message": "" } }, "protected": false }),
                    )
                }
                None => error(StatusCode::NOT_FOUND, "Branch not found"),
            }
        }
        ("GET", ["contents", path @ ..]) => {
            let path = path.join("/");
            let reference = query_param(query, "ref").unwrap_or_else(|| "main".into());
            let Some(commit) = repo.resolve(&reference) else {
                return error(StatusCode::NOT_FOUND, "No commit found for the ref");
            };
            match repo.tree_of(&commit).and_then(|t| t.get(&path)) {
                Some(content) => reply(
                    StatusCode::OK,
                    json!({
                        "type": "file", "encoding": "base64", "path": path, "name": path.rsplit('/').next(),
                        "sha": object_id(&["blob", content]), "size": content.len(), "content": B64.encode(content)
                    }),
                ),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("PUT", ["contents", path @ ..]) => {
            let path = path.join("/");
            let (Some(message), Some(content), Some(branch)) =
                (s("message"), s("content"), s("branch"))
            else {
                return unprocessable(
                    "Invalid request.",
                    "message, content and branch are required",
                );
            };
            let Ok(bytes) = B64.decode(content.replace('\n', "")) else {
                return unprocessable("Invalid request.", "content is not valid Base64");
            };
            let content = String::from_utf8_lossy(&bytes).into_owned();
            let Some(parent) = repo.refs.get(&branch).cloned() else {
                return error(StatusCode::NOT_FOUND, "Branch not found");
            };
            let mut tree = repo.tree_of(&parent).cloned().unwrap_or_default();
            let current = tree.get(&path).map(|c| object_id(&["blob", c]));
            if current.is_some() && current != s("sha") {
                return error(
                    StatusCode::CONFLICT,
                    &format!("{path} does not match {}", s("sha").unwrap_or_default()),
                );
            }
            tree.insert(path.clone(), content.clone());
            let tree_sha = repo.put_tree(tree);
            let sha = repo.put_commit(Commit {
                tree: tree_sha,
                parents: vec![parent],
                message,
                date: String::new(),
            });
            repo.refs.insert(branch, sha.clone());
            reply(
                StatusCode::OK,
                json!({ "content": { "path": path, "sha": object_id(&["blob", &content]) }, "commit": { "sha": sha } }),
            )
        }
        ("POST", ["git", "trees"]) => {
            let mut tree = match s("base_tree") {
                Some(b) => match repo.trees.get(&b) {
                    Some(t) => t.clone(),
                    None => return unprocessable("Invalid tree info", "base_tree not found"),
                },
                None => Default::default(),
            };
            let Some(entries) = body.get("tree").and_then(Value::as_array) else {
                return unprocessable("Invalid request.", "tree is required");
            };
            for e in entries {
                let (Some(path), Some(content)) = (
                    e.get("path").and_then(Value::as_str),
                    e.get("content").and_then(Value::as_str),
                ) else {
                    return unprocessable("Invalid tree info", "each entry needs path and content");
                };
                tree.insert(path.to_owned(), content.to_owned());
            }
            let sha = repo.put_tree(tree);
            reply(
                StatusCode::CREATED,
                json!({ "sha": sha, "truncated": false, "tree": [] }),
            )
        }
        ("POST", ["git", "commits"]) => {
            let (Some(message), Some(tree)) = (s("message"), s("tree")) else {
                return unprocessable("Invalid request.", "message and tree are required");
            };
            if !repo.trees.contains_key(&tree) {
                return unprocessable("Tree SHA does not exist", "tree");
            }
            let parents: Vec<String> = body
                .get("parents")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if parents.iter().any(|p| !repo.commits.contains_key(p)) {
                return unprocessable(
                    "Parent SHA does not exist or is not a commit object",
                    "parents",
                );
            }
            let sha = repo.put_commit(Commit {
                tree: tree.clone(),
                parents: parents.clone(),
                message: message.clone(),
                date: String::new(),
            });
            reply(
                StatusCode::CREATED,
                json!({ "sha": sha, "tree": { "sha": tree }, "message": message, "parents": parents.iter().map(|p| json!({ "sha": p })).collect::<Vec<_>>() }),
            )
        }
        ("GET", ["git", "commits", sha]) => match repo.commits.get(*sha) {
            Some(c) => reply(
                StatusCode::OK,
                json!({
                    "sha": sha, "message": c.message, "tree": { "sha": c.tree },
                    "parents": c.parents.iter().map(|p| json!({ "sha": p })).collect::<Vec<_>>(),
                    "author": { "name": "dev", "email": "dev@example.com", "date": c.date },
                    "committer": { "name": "dev", "email": "dev@example.com", "date": c.date }
                }),
            ),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
        ("GET", ["git", "ref", "heads", branch @ ..]) => {
            let branch = branch.join("/");
            match repo.refs.get(&branch) {
                Some(sha) => reply(
                    StatusCode::OK,
                    json!({ "ref": format!("refs/heads/{branch}"), "object": { "sha": sha, "type": "commit" } }),
                ),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("POST", ["git", "refs"]) => {
            let (Some(reference), Some(sha)) = (s("ref"), s("sha")) else {
                return unprocessable("Invalid request.", "ref and sha are required");
            };
            let Some(branch) = reference.strip_prefix("refs/heads/") else {
                return unprocessable("Reference name is invalid", "ref");
            };
            if branch.len() > 244 {
                return unprocessable("Reference name is invalid", "ref is too long");
            }
            if repo.refs.contains_key(branch) {
                return unprocessable("Reference already exists", "ref");
            }
            if !repo.commits.contains_key(&sha) {
                return unprocessable("Object does not exist", "sha");
            }
            repo.refs.insert(branch.to_owned(), sha.clone());
            reply(
                StatusCode::CREATED,
                json!({ "ref": reference, "object": { "sha": sha, "type": "commit" } }),
            )
        }
        ("DELETE", ["git", "refs", reference @ ..]) => {
            let reference = reference.join("/");
            let Some(branch) = reference.strip_prefix("heads/").map(str::to_owned) else {
                return unprocessable("Reference does not exist", "ref");
            };
            match repo.refs.remove(&branch) {
                Some(_) => reply(StatusCode::NO_CONTENT, Value::Null),
                None => unprocessable("Reference does not exist", "ref"),
            }
        }
        ("PATCH", ["git", "refs", reference @ ..]) => {
            let reference = reference.join("/");
            let (Some(branch), Some(sha)) = (reference.strip_prefix("heads/"), s("sha")) else {
                return unprocessable("Invalid request.", "ref and sha are required");
            };
            if !repo.refs.contains_key(branch) {
                return unprocessable("Reference does not exist", "ref");
            }
            if !repo.commits.contains_key(&sha) {
                return unprocessable("Object does not exist", "sha");
            }
            repo.refs.insert(branch.to_owned(), sha.clone());
            reply(
                StatusCode::OK,
                json!({ "ref": format!("refs/{reference}"), "object": { "sha": sha, "type": "commit" } }),
            )
        }
        ("GET", ["pulls"]) => {
            let head = query_param(query, "head");
            let state_filter = query_param(query, "state").unwrap_or_else(|| "open".into());
            let owner = full.split('/').next().unwrap_or_default();
            let list: Vec<Value> = repo
                .pulls
                .iter()
                .filter(|p| {
                    head.as_ref()
                        .is_none_or(|h| *h == format!("{owner}:{}", p.head))
                })
                .filter(|p| state_filter == "all" || p.state == state_filter)
                .map(|p| pull_json(p, full, web, repo))
                .collect();
            reply(StatusCode::OK, Value::Array(list))
        }
        ("POST", ["pulls"]) => {
            let (Some(title), Some(head), Some(base)) = (s("title"), s("head"), s("base")) else {
                return unprocessable("Validation Failed", "title, head and base are required");
            };
            let head = head.rsplit(':').next().unwrap_or_default().to_owned();
            if !repo.refs.contains_key(&head) || !repo.refs.contains_key(&base) {
                return unprocessable("Validation Failed", "head or base branch not found");
            }
            let owner = full.split('/').next().unwrap_or_default();
            if repo
                .pulls
                .iter()
                .any(|p| p.head == head && p.state == "open")
            {
                return unprocessable(
                    "Validation Failed",
                    &format!("A pull request already exists for {owner}:{head}."),
                );
            }
            let body_text = s("body").unwrap_or_default();
            if body_text.chars().count() > 65536 {
                return unprocessable(
                    "Validation Failed",
                    "body is too long (maximum is 65536 characters)",
                );
            }
            let number = repo.pulls.len() as u64 + 1;
            let p = Pull {
                number,
                title,
                body: body_text,
                head,
                base,
                state: "open".into(),
                merged: false,
                merge_commit_sha: None,
                labels: vec![],
                reviewers: vec![],
                team_reviewers: vec![],
                auto_merge: false,
                reviews: vec![],
                version: 1,
            };
            let out = pull_json(&p, full, web, repo);
            repo.pulls.push(p);
            reply(StatusCode::CREATED, out)
        }
        ("GET", ["pulls", n]) => {
            let Some(p) = find_pull(repo, n).cloned() else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let etag = format!("\"{}\"", object_id(&["pull", n, &p.version.to_string()]));
            if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                let mut r = reply(StatusCode::NOT_MODIFIED, Value::Null);
                r.etag = Some(etag);
                return r;
            }
            let mut r = reply(StatusCode::OK, pull_json(&p, full, web, repo));
            r.etag = Some(etag);
            r
        }
        ("PATCH", ["pulls", n]) => {
            let Some(p) = find_pull_mut(repo, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            if let Some(st) = body.get("state").and_then(Value::as_str) {
                if p.merged {
                    return unprocessable(
                        "Validation Failed",
                        "Cannot change the state of a merged pull request",
                    );
                }
                p.state = st.to_owned();
            }
            if let Some(t) = body.get("title").and_then(Value::as_str) {
                p.title = t.to_owned();
            }
            if let Some(b) = body.get("body").and_then(Value::as_str) {
                p.body = b.to_owned();
            }
            p.version += 1;
            let p = p.clone();
            reply(StatusCode::OK, pull_json(&p, full, web, repo))
        }
        ("GET", ["pulls", n, "reviews"]) => {
            let Some(p) = find_pull(repo, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let etag = format!(
                "\"{}\"",
                object_id(&["reviews", n, &p.reviews.len().to_string()])
            );
            if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
                let mut r = reply(StatusCode::NOT_MODIFIED, Value::Null);
                r.etag = Some(etag);
                return r;
            }
            let list: Vec<Value> = p.reviews.iter().enumerate().map(|(i, (user, state))| json!({ "id": i + 1, "user": { "login": user }, "state": state, "submitted_at": "2026-11-23T10:00:00Z", "body": "" })).collect();
            let mut r = reply(StatusCode::OK, Value::Array(list));
            r.etag = Some(etag);
            r
        }
        ("POST", ["pulls", n, "requested_reviewers"]) => {
            let Some(p) = find_pull_mut(repo, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            for (key, list) in [
                ("reviewers", &mut p.reviewers),
                ("team_reviewers", &mut p.team_reviewers),
            ] {
                for r in body
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !list.iter().any(|x| x == r) {
                        list.push(r.to_owned());
                    }
                }
            }
            p.version += 1;
            let p = p.clone();
            reply(StatusCode::CREATED, pull_json(&p, full, web, repo))
        }
        ("POST", ["issues", n, "labels"]) => {
            let Some(p) = find_pull_mut(repo, n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let Some(labels) = body.get("labels").and_then(Value::as_array) else {
                return unprocessable("Invalid request.", "labels is required");
            };
            for l in labels.iter().filter_map(Value::as_str) {
                if !p.labels.iter().any(|x| x == l) {
                    p.labels.push(l.to_owned());
                }
            }
            p.version += 1;
            let out: Vec<Value> = p.labels.iter().map(|l| json!({ "name": l })).collect();
            reply(StatusCode::OK, Value::Array(out))
        }
        ("GET", ["commits", reference, "statuses"]) => {
            let sha = repo
                .resolve(reference)
                .unwrap_or_else(|| (*reference).to_owned());
            let per_page: usize = query_param(query, "per_page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30)
                .min(100);
            let page: usize = query_param(query, "page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
                .max(1);
            // Newest first, like GitHub.
            let all: Vec<Value> = repo
                .statuses
                .get(&sha)
                .map(|v| v.iter().rev().map(status_json).collect())
                .unwrap_or_default();
            let out: Vec<Value> = all
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            reply(StatusCode::OK, Value::Array(out))
        }
        ("POST", ["statuses", sha]) => {
            let Some(state) = s("state") else {
                return unprocessable("Validation Failed", "state is required");
            };
            if !["error", "failure", "pending", "success"].contains(&state.as_str()) {
                return unprocessable("Validation Failed", "state is not included in the list");
            }
            let description = s("description").unwrap_or_default();
            if description.chars().count() > 140 {
                return unprocessable(
                    "Validation Failed",
                    "description is too long (maximum is 140 characters)",
                );
            }
            let context = s("context").unwrap_or_else(|| "default".into());
            if !repo.commits.contains_key(*sha) {
                return unprocessable("No commit found for SHA", sha);
            }
            let list = repo.statuses.entry((*sha).to_owned()).or_default();
            if list.iter().filter(|st| st.context == context).count() >= 1000 {
                return unprocessable(
                    "Validation Failed",
                    "This SHA and context has reached the maximum number of statuses.",
                );
            }
            let st = Status {
                id,
                state,
                context,
                description,
                target_url: s("target_url"),
            };
            list.push(st.clone());
            reply(StatusCode::CREATED, status_json(&st))
        }
        ("GET", ["releases", "tags", tag @ ..]) => {
            let tag = tag.join("/");
            match repo.releases.iter().find(|r| r.tag_name == tag) {
                Some(r) => reply(StatusCode::OK, release_json(r, web)),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("POST", ["releases"]) => {
            let Some(tag) = s("tag_name") else {
                return unprocessable("Validation Failed", "tag_name is required");
            };
            if repo.releases.iter().any(|r| r.tag_name == tag) {
                return reply(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "message": "Validation Failed", "errors": [{ "resource": "Release", "code": "already_exists", "field": "tag_name" }] }),
                );
            }
            let r = Release {
                id,
                tag_name: tag.clone(),
                name: s("name").unwrap_or(tag),
                body: s("body").unwrap_or_default(),
                target_commitish: s("target_commitish").unwrap_or_else(|| "main".into()),
            };
            repo.releases.push(r.clone());
            reply(StatusCode::CREATED, release_json(&r, web))
        }
        ("PATCH", ["releases", rid]) => {
            let Some(r) = repo.releases.iter_mut().find(|r| r.id.to_string() == *rid) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            if let Some(n) = s("name") {
                r.name = n;
            }
            if let Some(b) = s("body") {
                r.body = b;
            }
            let r = r.clone();
            reply(StatusCode::OK, release_json(&r, web))
        }
        ("GET", ["compare", spec]) => {
            let Some((b, h)) = spec.split_once("...") else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let (Some(b), Some(h)) = (repo.resolve(b), repo.resolve(h)) else {
                return error(StatusCode::NOT_FOUND, "No common ancestor");
            };
            let status = if b == h {
                "identical"
            } else if repo.is_ancestor(&b, &h) {
                "ahead"
            } else if repo.is_ancestor(&h, &b) {
                "behind"
            } else {
                "diverged"
            };
            reply(
                StatusCode::OK,
                json!({ "status": status, "ahead_by": u8::from(status == "ahead"), "behind_by": u8::from(status == "behind"), "total_commits": 0, "commits": [], "files": [] }),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn find_pull<'a>(repo: &'a Repo, n: &str) -> Option<&'a Pull> {
    repo.pulls.iter().find(|p| p.number.to_string() == n)
}

fn find_pull_mut<'a>(repo: &'a mut Repo, n: &str) -> Option<&'a mut Pull> {
    repo.pulls.iter_mut().find(|p| p.number.to_string() == n)
}

fn pull_json(p: &Pull, full: &str, web: &str, repo: &Repo) -> Value {
    let owner = full.split('/').next().unwrap_or_default();
    json!({
        "number": p.number,
        "node_id": format!("PR_{}_{}", full.replace('/', "_"), p.number),
        "url": format!("https://api.github.com/repos/{full}/pulls/{}", p.number),
        "html_url": format!("{web}/pull/{}", p.number),
        "state": p.state,
        "title": p.title,
        "body": p.body,
        "merged": p.merged,
        "merged_at": if p.merged { json!("2026-11-23T10:00:00Z") } else { Value::Null },
        "merge_commit_sha": p.merge_commit_sha,
        "head": { "ref": p.head, "label": format!("{owner}:{}", p.head), "sha": repo.refs.get(&p.head) },
        "base": { "ref": p.base, "label": format!("{owner}:{}", p.base), "sha": repo.refs.get(&p.base) },
        "labels": p.labels.iter().map(|l| json!({ "name": l })).collect::<Vec<_>>(),
        "requested_reviewers": p.reviewers.iter().map(|r| json!({ "login": r })).collect::<Vec<_>>(),
        "requested_teams": p.team_reviewers.iter().map(|t| json!({ "slug": t })).collect::<Vec<_>>(),
        "auto_merge": if p.auto_merge { json!({ "merge_method": "squash" }) } else { Value::Null },
    })
}

fn status_json(s: &Status) -> Value {
    json!({ "id": s.id, "state": s.state, "context": s.context, "description": s.description, "target_url": s.target_url, "created_at": "2026-11-23T10:00:00Z" })
}

fn release_json(r: &Release, web: &str) -> Value {
    json!({ "id": r.id, "tag_name": r.tag_name, "name": r.name, "body": r.body, "target_commitish": r.target_commitish, "html_url": format!("{web}/releases/tag/{}", r.tag_name), "draft": false, "prerelease": false })
}

/// The one GraphQL mutation Baton sends: enabling auto-merge on a pull request.
fn graphql(state: &mut State, body: &Value) -> Reply {
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !query.contains("enablePullRequestAutoMerge") {
        return reply(
            StatusCode::OK,
            json!({ "errors": [{ "message": "the fake GitHub only knows enablePullRequestAutoMerge" }] }),
        );
    }
    let id = body
        .pointer("/variables/pullRequestId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for (full, repo) in state.repos.iter_mut() {
        if let Some(p) = repo
            .pulls
            .iter_mut()
            .find(|p| format!("PR_{}_{}", full.replace('/', "_"), p.number) == id)
        {
            if p.state != "open" {
                return reply(
                    StatusCode::OK,
                    json!({ "errors": [{ "message": "Pull request is not open", "type": "UNPROCESSABLE" }] }),
                );
            }
            p.auto_merge = true;
            p.version += 1;
            return reply(
                StatusCode::OK,
                json!({ "data": { "enablePullRequestAutoMerge": { "pullRequest": { "number": p.number } } } }),
            );
        }
    }
    reply(
        StatusCode::OK,
        json!({ "errors": [{ "message": format!("Could not resolve to a node with the global id of '{id}'"), "type": "NOT_FOUND" }] }),
    )
}
