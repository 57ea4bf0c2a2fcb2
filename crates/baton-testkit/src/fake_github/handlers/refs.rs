//! Git data: branches, refs, commits, trees and file contents. Trees are flat maps
//! from path to content (see [`super::super::state::Repo`]), written to the
//! repository's Git, so every id answered is a Git object id; writes check what GitHub
//! checks (the objects named exist, a file's `sha` matches before it is replaced).

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::super::git::GitError;
use super::super::reply::{Reply, error, not_found, reply, unprocessable};
use super::super::state::Repo;
use super::RepoRequest;

pub fn handle(repo: &mut Repo, req: &RepoRequest) -> Reply {
    match (req.method, req.rest) {
        ("GET", ["branches", branch @ ..]) => get_branch(repo, &branch.join("/")),
        ("GET", ["contents", path @ ..]) => get_contents(repo, req, &path.join("/")),
        ("PUT", ["contents", path @ ..]) => put_contents(repo, req, path.join("/")),
        ("POST", ["git", "trees"]) => create_tree(repo, req),
        ("POST", ["git", "commits"]) => create_commit(repo, req),
        ("GET", ["git", "commits", sha]) => get_commit(repo, sha),
        ("GET", ["git", "ref", "heads", branch @ ..]) => get_ref(repo, &branch.join("/")),
        ("POST", ["git", "refs"]) => create_ref(repo, req),
        ("DELETE", ["git", "refs", reference @ ..]) => delete_ref(repo, &reference.join("/")),
        ("PATCH", ["git", "refs", reference @ ..]) => update_ref(repo, req, &reference.join("/")),
        _ => not_found(),
    }
}

fn get_branch(repo: &Repo, branch: &str) -> Reply {
    match repo.refs.get(branch) {
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

fn get_contents(repo: &Repo, req: &RepoRequest, path: &str) -> Reply {
    let reference = req.param("ref").unwrap_or_else(|| "main".into());
    let Some(commit) = repo.resolve(&reference) else {
        return error(StatusCode::NOT_FOUND, "No commit found for the ref");
    };
    match repo.tree_of(&commit).and_then(|t| t.get(path)) {
        Some(content) => reply(
            StatusCode::OK,
            json!({
                "type": "file", "encoding": "base64", "path": path, "name": path.rsplit('/').next(),
                "sha": repo.blob_sha(content), "size": content.len(), "content": B64.encode(content)
            }),
        ),
        None => not_found(),
    }
}

/// Creates or replaces one file as a new commit on `branch`.
fn put_contents(repo: &mut Repo, req: &RepoRequest, path: String) -> Reply {
    let (Some(message), Some(content), Some(branch)) = (
        req.field("message"),
        req.field("content"),
        req.field("branch"),
    ) else {
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
    // Replacing a file needs its current blob SHA, so a stale write is refused.
    let current = tree.get(&path).map(|c| repo.blob_sha(c));
    if current.is_some() && current != req.field("sha") {
        return error(
            StatusCode::CONFLICT,
            &format!(
                "{path} does not match {}",
                req.field("sha").unwrap_or_default()
            ),
        );
    }
    tree.insert(path.clone(), content.clone());
    let written = repo.put_tree(tree).and_then(|tree_sha| {
        let sha = repo.put_commit(&tree_sha, vec![parent], &message)?;
        repo.set_ref(&branch, &sha)?;
        Ok(sha)
    });
    match written {
        Ok(sha) => reply(
            StatusCode::OK,
            json!({ "content": { "path": path, "sha": repo.blob_sha(&content) }, "commit": { "sha": sha } }),
        ),
        Err(e) => git_failed(&e),
    }
}

fn create_tree(repo: &mut Repo, req: &RepoRequest) -> Reply {
    let mut tree = match req.field("base_tree") {
        Some(b) => match repo.trees.get(&b) {
            Some(t) => t.clone(),
            None => return unprocessable("Invalid tree info", "base_tree not found"),
        },
        None => Default::default(),
    };
    let Some(entries) = req.body.get("tree").and_then(Value::as_array) else {
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
    let sha = match repo.put_tree(tree) {
        Ok(sha) => sha,
        Err(e) => return git_failed(&e),
    };
    reply(
        StatusCode::CREATED,
        json!({ "sha": sha, "truncated": false, "tree": [] }),
    )
}

fn create_commit(repo: &mut Repo, req: &RepoRequest) -> Reply {
    let (Some(message), Some(tree)) = (req.field("message"), req.field("tree")) else {
        return unprocessable("Invalid request.", "message and tree are required");
    };
    if !repo.trees.contains_key(&tree) {
        return unprocessable("Tree SHA does not exist", "tree");
    }
    let parents: Vec<String> = req
        .body
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
    let sha = match repo.put_commit(&tree, parents.clone(), &message) {
        Ok(sha) => sha,
        Err(e) => return git_failed(&e),
    };
    reply(
        StatusCode::CREATED,
        json!({ "sha": sha, "tree": { "sha": tree }, "message": message, "parents": parents.iter().map(|p| json!({ "sha": p })).collect::<Vec<_>>() }),
    )
}

fn get_commit(repo: &Repo, sha: &str) -> Reply {
    match repo.commits.get(sha) {
        Some(c) => reply(
            StatusCode::OK,
            json!({
                "sha": sha, "message": c.message, "tree": { "sha": c.tree },
                "parents": c.parents.iter().map(|p| json!({ "sha": p })).collect::<Vec<_>>(),
                "author": { "name": "dev", "email": "dev@example.com", "date": c.date },
                "committer": { "name": "dev", "email": "dev@example.com", "date": c.date }
            }),
        ),
        None => not_found(),
    }
}

fn get_ref(repo: &Repo, branch: &str) -> Reply {
    match repo.refs.get(branch) {
        Some(sha) => reply(
            StatusCode::OK,
            json!({ "ref": format!("refs/heads/{branch}"), "object": { "sha": sha, "type": "commit" } }),
        ),
        None => not_found(),
    }
}

fn create_ref(repo: &mut Repo, req: &RepoRequest) -> Reply {
    let (Some(reference), Some(sha)) = (req.field("ref"), req.field("sha")) else {
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
    if let Err(e) = repo.set_ref(branch, &sha) {
        return git_failed(&e);
    }
    reply(
        StatusCode::CREATED,
        json!({ "ref": reference, "object": { "sha": sha, "type": "commit" } }),
    )
}

/// `reference` is the path after `git/refs/`, e.g. `heads/main`.
fn delete_ref(repo: &mut Repo, reference: &str) -> Reply {
    let Some(branch) = reference.strip_prefix("heads/") else {
        return unprocessable("Reference does not exist", "ref");
    };
    match repo.delete_ref(branch) {
        Ok(true) => reply(StatusCode::NO_CONTENT, Value::Null),
        Ok(false) => unprocessable("Reference does not exist", "ref"),
        Err(e) => git_failed(&e),
    }
}

/// Moves a branch (any commit: the fake does not enforce fast-forward).
fn update_ref(repo: &mut Repo, req: &RepoRequest, reference: &str) -> Reply {
    let (Some(branch), Some(sha)) = (reference.strip_prefix("heads/"), req.field("sha")) else {
        return unprocessable("Invalid request.", "ref and sha are required");
    };
    if !repo.refs.contains_key(branch) {
        return unprocessable("Reference does not exist", "ref");
    }
    if !repo.commits.contains_key(&sha) {
        return unprocessable("Object does not exist", "sha");
    }
    if let Err(e) = repo.set_ref(branch, &sha) {
        return git_failed(&e);
    }
    reply(
        StatusCode::OK,
        json!({ "ref": format!("refs/{reference}"), "object": { "sha": sha, "type": "commit" } }),
    )
}

/// A write Git refused: GitHub's answer to a failure on its side.
fn git_failed(e: &GitError) -> Reply {
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}
