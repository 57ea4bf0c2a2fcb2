//! Pull requests and what hangs off them: labels (through the issues API), requested
//! reviewers and reviews. Reads carry ETags derived from the pull's `version`, so
//! any change (including a merge or review made by a test) invalidates them.
//! Merging is done by tests through `FakeGitHub::merge`, not over HTTP.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::super::reply::{Reply, cached, not_found, reply, unprocessable};
use super::super::state::{Comment, Pull, Repo, object_id};
use super::RepoRequest;

pub fn handle(repo: &mut Repo, req: &RepoRequest) -> Reply {
    match (req.method, req.rest) {
        ("GET", ["pulls"]) => list(repo, req),
        ("POST", ["pulls"]) => create(repo, req),
        ("GET", ["pulls", n]) => get(repo, req, n),
        ("PATCH", ["pulls", n]) => update(repo, req, n),
        ("GET", ["pulls", n, "reviews"]) => list_reviews(repo, req, n),
        ("POST", ["pulls", n, "requested_reviewers"]) => request_reviewers(repo, req, n),
        ("POST", ["issues", n, "labels"]) => add_labels(repo, req, n),
        ("GET", ["issues", n, "comments"]) => list_comments(repo, n),
        ("POST", ["issues", n, "comments"]) => add_comment(repo, req, n),
        ("PATCH", ["issues", "comments", id]) => edit_comment(repo, req, id),
        _ => not_found(),
    }
}

/// The GraphQL node id of pull `number` in `full` (`owner/name`).
pub fn node_id(full: &str, number: u64) -> String {
    format!("PR_{}_{}", full.replace('/', "_"), number)
}

fn list(repo: &Repo, req: &RepoRequest) -> Reply {
    let head = req.param("head");
    let state_filter = req.param("state").unwrap_or_else(|| "open".into());
    let owner = req.owner();
    let list: Vec<Value> = repo
        .pulls
        .iter()
        .filter(|p| {
            head.as_ref()
                .is_none_or(|h| *h == format!("{owner}:{}", p.head))
        })
        .filter(|p| state_filter == "all" || p.state == state_filter)
        .map(|p| pull_json(p, req, repo))
        .collect();
    reply(StatusCode::OK, Value::Array(list))
}

fn create(repo: &mut Repo, req: &RepoRequest) -> Reply {
    let (Some(title), Some(head), Some(base)) =
        (req.field("title"), req.field("head"), req.field("base"))
    else {
        return unprocessable("Validation Failed", "title, head and base are required");
    };
    let head = head.rsplit(':').next().unwrap_or_default().to_owned();
    if !repo.refs.contains_key(&head) || !repo.refs.contains_key(&base) {
        return unprocessable("Validation Failed", "head or base branch not found");
    }
    if repo
        .pulls
        .iter()
        .any(|p| p.head == head && p.state == "open")
    {
        return unprocessable(
            "Validation Failed",
            &format!("A pull request already exists for {}:{head}.", req.owner()),
        );
    }
    let body_text = req.field("body").unwrap_or_default();
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
        comments: vec![],
        version: 1,
    };
    let out = pull_json(&p, req, repo);
    repo.pulls.push(p);
    reply(StatusCode::CREATED, out)
}

fn get(repo: &Repo, req: &RepoRequest, n: &str) -> Reply {
    let Some(p) = find(repo, n) else {
        return not_found();
    };
    let etag = format!("\"{}\"", object_id(&["pull", n, &p.version.to_string()]));
    cached(req.headers, etag, || pull_json(p, req, repo))
}

/// Closes or reopens, retitles, rewrites the body.
fn update(repo: &mut Repo, req: &RepoRequest, n: &str) -> Reply {
    let Some(p) = find_mut(repo, n) else {
        return not_found();
    };
    if let Some(st) = req.body.get("state").and_then(Value::as_str) {
        if p.merged {
            return unprocessable(
                "Validation Failed",
                "Cannot change the state of a merged pull request",
            );
        }
        p.state = st.to_owned();
    }
    if let Some(t) = req.body.get("title").and_then(Value::as_str) {
        p.title = t.to_owned();
    }
    if let Some(b) = req.body.get("body").and_then(Value::as_str) {
        p.body = b.to_owned();
    }
    p.version += 1;
    let p = p.clone();
    reply(StatusCode::OK, pull_json(&p, req, repo))
}

fn list_reviews(repo: &Repo, req: &RepoRequest, n: &str) -> Reply {
    let Some(p) = find(repo, n) else {
        return not_found();
    };
    let etag = format!(
        "\"{}\"",
        object_id(&["reviews", n, &p.reviews.len().to_string()])
    );
    cached(req.headers, etag, || {
        let list: Vec<Value> = p.reviews.iter().enumerate().map(|(i, (user, state))| json!({ "id": i + 1, "user": { "login": user }, "state": state, "submitted_at": "2026-11-23T10:00:00Z", "body": "" })).collect();
        Value::Array(list)
    })
}

/// Adds users and teams, skipping any already requested.
fn request_reviewers(repo: &mut Repo, req: &RepoRequest, n: &str) -> Reply {
    let Some(p) = find_mut(repo, n) else {
        return not_found();
    };
    for (key, list) in [
        ("reviewers", &mut p.reviewers),
        ("team_reviewers", &mut p.team_reviewers),
    ] {
        for r in req
            .body
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
    reply(StatusCode::CREATED, pull_json(&p, req, repo))
}

/// `POST /issues/{n}/labels`: a pull request is an issue; labels are added, not replaced.
fn add_labels(repo: &mut Repo, req: &RepoRequest, n: &str) -> Reply {
    let Some(p) = find_mut(repo, n) else {
        return not_found();
    };
    let Some(labels) = req.body.get("labels").and_then(Value::as_array) else {
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

fn comment_json(c: &Comment, req: &RepoRequest) -> Value {
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "body": c.body,
        "html_url": format!("{}/pull#issuecomment-{}", req.web, c.id),
        "user": { "login": "baton[bot]", "id": 1, "type": "Bot" },
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
}

/// `GET /issues/{n}/comments`.
fn list_comments(repo: &Repo, n: &str) -> Reply {
    let Some(p) = find(repo, n) else {
        return not_found();
    };
    let out: Vec<Value> = p
        .comments
        .iter()
        .map(|c| json!({ "id": c.id, "body": c.body }))
        .collect();
    reply(StatusCode::OK, Value::Array(out))
}

/// `POST /issues/{n}/comments`.
fn add_comment(repo: &mut Repo, req: &RepoRequest, n: &str) -> Reply {
    let Some(body) = req
        .body
        .get("body")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return unprocessable("Invalid request.", "body is required");
    };
    let Some(p) = find_mut(repo, n) else {
        return not_found();
    };
    let c = Comment {
        id: req.id,
        body,
        edits: 0,
    };
    p.comments.push(c.clone());
    p.version += 1;
    reply(StatusCode::CREATED, comment_json(&c, req))
}

/// `PATCH /issues/comments/{id}`: edited in place.
fn edit_comment(repo: &mut Repo, req: &RepoRequest, id: &str) -> Reply {
    let Some(body) = req
        .body
        .get("body")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return unprocessable("Invalid request.", "body is required");
    };
    let Some(c) = repo
        .pulls
        .iter_mut()
        .flat_map(|p| p.comments.iter_mut())
        .find(|c| c.id.to_string() == id)
    else {
        return not_found();
    };
    c.body = body;
    c.edits += 1;
    let c = c.clone();
    reply(StatusCode::OK, comment_json(&c, req))
}

fn find<'a>(repo: &'a Repo, n: &str) -> Option<&'a Pull> {
    repo.pulls.iter().find(|p| p.number.to_string() == n)
}

fn find_mut<'a>(repo: &'a mut Repo, n: &str) -> Option<&'a mut Pull> {
    repo.pulls.iter_mut().find(|p| p.number.to_string() == n)
}

fn pull_json(p: &Pull, req: &RepoRequest, repo: &Repo) -> Value {
    let (full, web, owner) = (req.full, req.web, req.owner());
    json!({
        "number": p.number,
        "node_id": node_id(full, p.number),
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
