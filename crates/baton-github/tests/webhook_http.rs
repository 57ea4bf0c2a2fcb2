//! The webhook endpoint as GitHub calls it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use baton_github::PrState;
use baton_github::webhook::{PullRequestEvent, router, sign};
use tower::ServiceExt as _;

const SECRET: &[u8] = b"webhook-secret";
const MERGED: &str = r#"{"action":"closed","number":3,"repository":{"full_name":"camaradesuk/cluster-gitops"},"pull_request":{"number":3,"state":"closed","merged":true,"merge_commit_sha":"0123456789abcdef0123456789abcdef01234567","head":{"ref":"baton/syrf/api-v9-1-1-to-production"}}}"#;

async fn post(
    events: &Arc<Mutex<Vec<PullRequestEvent>>>,
    event: &str,
    body: &str,
    signature: Option<String>,
) -> (StatusCode, String) {
    let sink = events.clone();
    let app = router(SECRET.to_vec(), move |e| sink.lock().unwrap().push(e));
    let mut req = Request::post("/webhooks/github")
        .header("x-github-event", event)
        .header("content-type", "application/json");
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let resp = app
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn valid_merge_event_is_accepted_and_delivered() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (status, _) = post(
        &events,
        "pull_request",
        MERGED,
        Some(sign(SECRET, MERGED.as_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = events.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].head_branch, "baton/syrf/api-v9-1-1-to-production");
    assert_eq!(
        got[0].state,
        PrState::Merged {
            merge_commit: "0123456789abcdef0123456789abcdef01234567".into()
        }
    );
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_and_nothing_is_delivered() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (status, body) = post(
        &events,
        "pull_request",
        MERGED,
        Some(sign(b"wrong", MERGED.as_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("does not match"), "{body}");
    let (status, body) = post(&events, "pull_request", MERGED, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("missing X-Hub-Signature-256"), "{body}");
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_payload_is_400_with_the_reason() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let body = r#"{"repository":{"full_name":"o/r"}}"#;
    let (status, text) = post(
        &events,
        "pull_request",
        body,
        Some(sign(SECRET, body.as_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("missing pull_request.number"), "{text}");
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn other_events_are_acknowledged_and_ignored() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (status, _) = post(&events, "ping", "{}", Some(sign(SECRET, b"{}"))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(events.lock().unwrap().is_empty());
}
