//! Authentication and GitHub App endpoints: which credential a request carries, an
//! App's installation for a repository, and installation tokens (which expire).

use std::time::Instant;

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::json;

use super::super::TOKEN;
use super::super::reply::{Reply, error, not_found, reply};
use super::super::state::State;

/// The credential a request carries.
pub enum Auth {
    /// The personal token, or an unexpired installation token.
    Token,
    /// Something shaped like a JWT (the fake does not check App signatures).
    Jwt,
    None,
}

pub fn authenticate(state: &mut State, headers: &HeaderMap) -> Auth {
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

fn jwt_required() -> Reply {
    error(
        StatusCode::UNAUTHORIZED,
        "A JSON web token could not be decoded",
    )
}

/// `POST /app/installations/{id}/access_tokens`.
pub fn create_installation_token(
    state: &mut State,
    method: &Method,
    auth: &Auth,
    id: &str,
) -> Reply {
    if method != Method::POST {
        return not_found();
    }
    if !matches!(auth, Auth::Jwt) {
        return jwt_required();
    }
    let Some(app) = state
        .apps
        .iter()
        .find(|a| a.installation_id.to_string() == id)
    else {
        return not_found();
    };
    let ttl = app.token_ttl;
    let n = state.tokens.len();
    let token = format!("ghs_installation_{id}_{n}");
    state.tokens.push((token.clone(), Instant::now() + ttl));
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::try_from(ttl).unwrap_or_default();
    reply(
        StatusCode::CREATED,
        json!({ "token": token, "expires_at": expires.to_string(), "permissions": { "contents": "write", "pull_requests": "write", "statuses": "write" } }),
    )
}

/// `GET /repos/{owner}/{name}/installation`: the App installed on `full`.
pub fn repo_installation(state: &State, auth: &Auth, full: &str) -> Reply {
    if !matches!(auth, Auth::Jwt) {
        return jwt_required();
    }
    match state.apps.iter().find(|a| a.repo == full) {
        Some(app) => reply(
            StatusCode::OK,
            json!({ "id": app.installation_id, "app_id": app.app_id }),
        ),
        None => not_found(),
    }
}
