//! Chat and webhook notifications on the real control plane: `baton run` as a process
//! posts to local receivers (plain `http://127.0.0.1`, which the API allows for the
//! loopback address only) as one Promotion goes PROpened -> Merged -> Synced.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use baton_api::Phase;
use baton_integration::World;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sha2::Sha256;

const T: Duration = Duration::from_secs(60);
const SIGNING_SECRET: &str = "notify-signing-secret";
/// In the failing target's path: must never reach an Event or the log.
const PATH_TOKEN: &str = "T0KEN-in-the-path";

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_default()
    }
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A local HTTP receiver answering every POST with `status`; returns its base URL.
async fn receiver(status: u16) -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let seen = inbox.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect(),
                body: body.to_vec(),
            });
            (StatusCode::from_u16(status).unwrap(), "boom")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), inbox)
}

fn on(inbox: &Inbox, path: &str) -> Vec<Received> {
    inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == path)
        .cloned()
        .collect()
}

async fn wait_until(what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn secret(w: &World, name: &str, data: serde_json::Value) {
    let s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name }, "stringData": data
    }))
    .unwrap();
    Api::<Secret>::namespaced(w.client.clone(), &w.ns)
        .create(&PostParams::default(), &s)
        .await
        .expect("secret created");
}

async fn metrics(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test]
async fn slack_and_signed_json_for_each_phase_and_a_failing_receiver_is_reported() {
    let (ok, ok_inbox) = receiver(200).await;
    let (broken, broken_inbox) = receiver(500).await;
    let w = World::new("notify", &["api"]).await;
    // The Slack URL comes from a Secret (as a real Slack webhook URL, a token, would).
    secret(&w, "slack-webhook", json!({ "url": format!("{ok}/slack") })).await;
    secret(&w, "webhook-signing", json!({ "secret": SIGNING_SECRET })).await;
    w.environment(
        "production",
        json!({ "notifications": { "webhooks": [
            { "urlSecretRef": { "name": "slack-webhook" }, "format": "Slack" },
            { "url": format!("{ok}/json"), "secretRef": { "name": "webhook-signing" },
              "events": ["PullRequestOpened", "Merged", "Synced"] },
            { "url": format!("{broken}/hook/{PATH_TOKEN}"), "events": ["Synced"] }
        ] } }),
    )
    .await;
    let name = "api-notify";
    w.promote(name, "production", &[("api", "api-v9.7.0")])
        .await;
    let merge = w.merge_when_open(name).await;
    w.argo_sync("api-production", &merge, "Healthy").await;
    // The receiver failing does not hold the promotion.
    let p = w.wait_phase(name, Phase::Synced, T).await;
    let pr = p.status.as_ref().unwrap().pull_request.clone().unwrap();

    wait_until("three Slack and three JSON deliveries", T, || {
        on(&ok_inbox, "/slack").len() >= 3 && on(&ok_inbox, "/json").len() >= 3
    })
    .await;

    // JSON: one per phase change, in order, signed with the Secret's value.
    let json_events = on(&ok_inbox, "/json");
    let events: Vec<String> = json_events
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["PullRequestOpened", "Merged", "Synced"]);
    for r in &json_events {
        assert_eq!(
            r.header("X-Baton-Signature-256"),
            sign(&r.body),
            "signature over the raw body"
        );
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.header("X-Baton-Event"),
            r.json()["event"].as_str().unwrap()
        );
        assert!(!r.header("X-Baton-Delivery").is_empty());
    }
    let synced = json_events[2].json();
    assert_eq!(synced["namespace"], w.ns.as_str());
    assert_eq!(synced["promotion"], name);
    assert_eq!(synced["environment"], "production");
    assert_eq!(synced["phase"], "Synced");
    assert_eq!(synced["reason"], "Synced");
    assert_eq!(
        synced["services"],
        json!([{ "name": "api", "version": "api-v9.7.0",
                 "source": { "repository": w.source, "commit": w.source_sha } }])
    );
    assert_eq!(
        synced["applications"],
        json!([{ "namespace": w.ns, "name": "api-production" }])
    );
    assert_eq!(
        synced["pullRequest"],
        json!({ "number": pr.number, "url": pr.url })
    );
    assert_eq!(
        synced["at"],
        p.status
            .as_ref()
            .unwrap()
            .phase_times
            .synced
            .as_ref()
            .unwrap()
            .0
            .to_string()
    );
    assert_eq!(json_events[0].json()["phase"], "PROpened");

    // Slack: a text line and blocks with the PR link and the Application.
    let slack = on(&ok_inbox, "/slack");
    let texts: Vec<String> = slack
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(texts[0].contains("waiting for review"), "{texts:?}");
    assert!(texts[1].contains("merged"), "{texts:?}");
    assert!(
        texts[2].starts_with(":white_check_mark: Deployed to production: api:api-v9.7.0"),
        "{texts:?}"
    );
    let blocks = slack[2].json()["blocks"].to_string();
    assert!(
        blocks.contains(&format!("<{}|#{}>", pr.url, pr.number)),
        "{blocks}"
    );
    assert!(blocks.contains("api-production"), "{blocks}");
    assert!(
        slack[2].header("X-Baton-Signature-256").is_empty(),
        "unsigned without secretRef"
    );

    // The broken receiver: every attempt of its one event, the same delivery id, then
    // a Warning Event that names the host and nothing of the path.
    let deadline = Instant::now() + T;
    let failed = loop {
        let events = w.events(name).await;
        if let Some(e) = events
            .iter()
            .find(|e| e.starts_with("NotificationDeliveryFailed"))
        {
            break e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no NotificationDeliveryFailed in {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(failed.contains("127.0.0.1"), "{failed}");
    assert!(failed.contains("HTTP 500: boom"), "{failed}");
    assert!(failed.contains("5 attempt"), "{failed}");
    assert!(!failed.contains(PATH_TOKEN), "{failed}");
    let attempts = broken_inbox.lock().unwrap().clone();
    assert_eq!(attempts.len(), 5, "{attempts:?}");
    assert!(attempts.iter().all(|a| a.json()["event"] == "Synced"));
    assert!(
        attempts
            .iter()
            .all(|a| a.header("X-Baton-Delivery") == attempts[0].header("X-Baton-Delivery"))
    );

    let http = w.operator.as_ref().unwrap().http.clone();
    let needles = [
        r#"baton_notification_failures_total{environment="production",format="Json"} 1"#,
        r#"baton_notifications_delivered_total{environment="production",format="Json"} 3"#,
        r#"baton_notifications_delivered_total{environment="production",format="Slack"} 3"#,
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = metrics(&http).await;
        if needles.iter().all(|n| body.contains(n)) || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for n in needles {
        assert!(body.contains(n), "{n} missing in:\n{body}");
    }

    // Reconciles go on (every second while the promotion was open); nothing repeats.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(on(&ok_inbox, "/slack").len(), 3);
    assert_eq!(on(&ok_inbox, "/json").len(), 3);
    assert_eq!(broken_inbox.lock().unwrap().len(), 5);
    let log = w.operator.as_ref().unwrap().logs();
    assert!(!log.contains(PATH_TOKEN), "the URL leaked into the log");
    assert!(
        !log.contains(&format!("{ok}/slack")),
        "the Secret's URL leaked into the log"
    );
    assert!(
        !log.contains(SIGNING_SECRET),
        "the signing secret leaked into the log"
    );
}
