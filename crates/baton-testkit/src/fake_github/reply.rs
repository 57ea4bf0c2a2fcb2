//! What a handler answers: a status, a JSON body and the few headers the fake sets
//! per response. The router adds the headers every response carries.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub etag: Option<String>,
    /// `Retry-After` seconds (secondary rate limit).
    pub retry_after: Option<u64>,
    /// The primary rate limit is spent and resets in this many seconds.
    pub exhausted_reset: Option<u64>,
    /// A GraphQL answer: its cost in points, counted against the GraphQL budget.
    pub graphql_cost: Option<i64>,
}

pub fn reply(status: StatusCode, body: Value) -> Reply {
    Reply {
        status,
        body,
        etag: None,
        retry_after: None,
        exhausted_reset: None,
        graphql_cost: None,
    }
}

pub fn error(status: StatusCode, message: &str) -> Reply {
    reply(
        status,
        json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }),
    )
}

pub fn not_found() -> Reply {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// A 422 with one custom error, the shape GitHub uses for failed validation.
pub fn unprocessable(message: &str, detail: &str) -> Reply {
    reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "message": message, "errors": [{ "message": detail, "code": "custom" }], "documentation_url": "https://docs.github.com/rest" }),
    )
}

/// A conditional GET: 304 when the request's `If-None-Match` is `etag`, else 200 with
/// `body()`. Both carry the ETag, as GitHub's do.
pub fn cached(headers: &HeaderMap, etag: String, body: impl FnOnce() -> Value) -> Reply {
    let fresh = headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    let mut r = if fresh {
        reply(StatusCode::NOT_MODIFIED, Value::Null)
    } else {
        reply(StatusCode::OK, body())
    };
    r.etag = Some(etag);
    r
}
