//! The I/O part of notifications: one task taking deliveries off the queue and
//! posting them, a few at once, each with retries (schedule in [`super::message`]).
//! Secrets (URL, signing key) are read at each attempt, so a fixed Secret is picked
//! up by the next retry; their values are never logged.

use std::sync::Arc;
use std::time::Duration;

use baton_api::environment::{
    NotificationEvent, SigningSecretRef, WebhookFormat, WebhookUrlSecretRef,
};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Api;
use kube::runtime::events::Recorder;
use tokio::sync::mpsc;

use super::NotifyError;
use super::message::{self, Verdict};
use crate::events::{self, Happened};
use crate::metrics::Metrics;

/// Deliveries in flight at once: a slow receiver does not hold up the others.
const IN_FLIGHT: usize = 8;
/// One attempt, connection to response headers.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an error response is read, and quoted (Slack says `invalid_payload`).
const ERROR_BODY_LIMIT: usize = 4096;
const ERROR_QUOTE_CHARS: usize = 200;

/// Where a target's URL comes from.
#[derive(Debug, Clone)]
pub enum UrlFrom {
    Spec(String),
    Secret(WebhookUrlSecretRef),
}

/// One notification to one target.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-Baton-Delivery`: `<promotion uid>.<event>.<target index>`.
    pub id: String,
    pub namespace: String,
    pub environment: String,
    /// Index in `spec.notifications.webhooks`, for logs.
    pub target: usize,
    pub event: NotificationEvent,
    pub format: WebhookFormat,
    pub url: UrlFrom,
    pub signing: Option<SigningSecretRef>,
    pub body: Bytes,
    /// The Promotion, for the Warning Event.
    pub regarding: ObjectReference,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// What posting needs: an HTTP(S) client, Secret access, Events and metrics.
pub struct Poster {
    http: Client<Https, Full<Bytes>>,
    client: kube::Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
}

/// Why one attempt failed. Messages name at most the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Retry(String, Option<Duration>),
    #[error("{0}")]
    GiveUp(String),
}

impl Poster {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
    ) -> Result<Self, NotifyError> {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // Mozilla's roots, as for GitHub: the operator image has no CA bundle.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| NotifyError::Tls(e.to_string()))?
            // http:// only reaches loopback addresses: `message::check_url` runs first.
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Poster {
            http: Client::builder(TokioExecutor::new()).build(https),
            client,
            recorder,
            metrics,
        })
    }

    /// One delivery, with its retries; the outcome is counted, a failure reported.
    async fn deliver(&self, d: Delivery) {
        let mut attempt = 0;
        let (why, host) = loop {
            attempt += 1;
            let (result, host) = self.attempt(&d).await;
            let wait = match result {
                Ok(()) => {
                    tracing::debug!(namespace = %d.namespace, environment = %d.environment, event = d.event.as_str(), target = d.target, host, attempt, "notification delivered");
                    self.metrics.notification(&d.environment, d.format, true);
                    return;
                }
                Err(Failure::GiveUp(why)) => break (why, host),
                Err(Failure::Retry(why, retry_after)) => {
                    match message::retry_wait(attempt, rand::random::<f64>(), retry_after) {
                        Some(wait) => {
                            tracing::debug!(event = d.event.as_str(), target = d.target, host, attempt, error = %why, retry_in = ?wait, "notification attempt failed");
                            wait
                        }
                        None => break (why, host),
                    }
                }
            };
            tokio::time::sleep(wait).await;
        };
        // Without a usable URL there is no host to name: name where the URL was to be.
        let host = host.unwrap_or_else(|| match &d.url {
            UrlFrom::Spec(_) => format!("webhooks[{}].url", d.target),
            UrlFrom::Secret(r) => format!("the URL in Secret {:?}", r.name),
        });
        tracing::warn!(namespace = %d.namespace, environment = %d.environment, promotion = d.regarding.name.as_deref().unwrap_or_default(), event = d.event.as_str(), target = d.target, host, attempts = attempt, error = %why, "notification not delivered");
        self.metrics.notification(&d.environment, d.format, false);
        let format = match d.format {
            WebhookFormat::Json => "Json",
            WebhookFormat::Slack => "Slack",
        };
        events::publish_to(
            &self.recorder,
            &d.regarding,
            Happened::NotificationDeliveryFailed {
                event: d.event.as_str(),
                format,
                host: &host,
                attempts: attempt,
                why: &why,
            },
        )
        .await;
    }

    /// One POST, and the URL's host once known.
    async fn attempt(&self, d: &Delivery) -> (Result<(), Failure>, Option<String>) {
        let raw = match self.url(d).await {
            Ok(u) => u,
            Err(f) => return (Err(f), None),
        };
        let url = match message::check_url(&raw) {
            Ok(u) => u,
            Err(e) => {
                let from = match &d.url {
                    UrlFrom::Spec(_) => "spec url".to_owned(),
                    UrlFrom::Secret(r) => format!("Secret {:?} key {:?}", r.name, r.key),
                };
                return (Err(Failure::GiveUp(format!("{from}: {e}"))), None);
            }
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let result = self.post(d, &url).await.map_err(|f| redact(f, &raw, &url));
        (result, Some(host))
    }

    async fn url(&self, d: &Delivery) -> Result<String, Failure> {
        match &d.url {
            UrlFrom::Spec(u) => Ok(u.clone()),
            UrlFrom::Secret(r) => self.secret_value(&d.namespace, &r.name, &r.key).await,
        }
    }

    /// A Secret's value, or why not. A missing Secret or key is for a person to fix,
    /// but is retried: it may be being created right now.
    async fn secret_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<String, Failure> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = secrets
            .get_opt(name)
            .await
            .map_err(|e| Failure::Retry(format!("cannot read Secret {name:?}: {e}"), None))?
            .ok_or_else(|| {
                Failure::Retry(
                    format!("Secret {name:?} not found in namespace {namespace}"),
                    None,
                )
            })?;
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| v.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|v| v.clone().into_bytes())
            })
            .ok_or_else(|| Failure::Retry(format!("Secret {name:?} has no key {key:?}"), None))?;
        String::from_utf8(value)
            .map_err(|_| Failure::GiveUp(format!("Secret {name:?} key {key:?} is not UTF-8")))
    }

    async fn post(&self, d: &Delivery, url: &url::Url) -> Result<(), Failure> {
        let mut req = http::Request::post(url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("baton/", env!("CARGO_PKG_VERSION")),
            )
            .header(message::EVENT_HEADER, d.event.as_str())
            .header(message::DELIVERY_HEADER, &d.id);
        if let Some(s) = &d.signing {
            let secret = self.secret_value(&d.namespace, &s.name, &s.key).await?;
            let sig = message::signature(secret.as_bytes(), &d.body)
                .ok_or_else(|| Failure::GiveUp("cannot sign the body".into()))?;
            req = req.header(message::SIGNATURE_HEADER, sig);
        }
        let req = req
            .body(Full::new(d.body.clone()))
            .map_err(|e| Failure::GiveUp(format!("cannot build the request: {e}")))?;
        let resp = match tokio::time::timeout(ATTEMPT_TIMEOUT, self.http.request(req)).await {
            Err(_) => {
                return Err(Failure::Retry(
                    format!("no response within {}s", ATTEMPT_TIMEOUT.as_secs()),
                    None,
                ));
            }
            Ok(Err(e)) => return Err(Failure::Retry(chain(&e), None)),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        let verdict = message::verdict(status.as_u16());
        if verdict == Verdict::Delivered {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let said = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            Limited::new(resp.into_body(), ERROR_BODY_LIMIT).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
        .unwrap_or_default();
        let mut why = format!("HTTP {}", status.as_u16());
        if !said.is_empty() {
            why.push_str(&format!(
                ": {}",
                baton_github::naming::truncate(&said, ERROR_QUOTE_CHARS)
            ));
        }
        Err(match verdict {
            Verdict::Retry => Failure::Retry(why, retry_after),
            _ => Failure::GiveUp(why),
        })
    }
}

/// An error and its causes, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Keeps the URL's path, query and credentials out of a message, should an error or
/// a receiver quote them: they may be the token.
fn redact(f: Failure, raw: &str, url: &url::Url) -> Failure {
    let clean = |m: String| {
        let mut m = m
            .replace(raw.trim(), "<url>")
            .replace(url.as_str(), "<url>");
        for secret in [
            url.path(),
            url.query().unwrap_or_default(),
            url.password().unwrap_or_default(),
        ] {
            if secret.len() > 1 {
                m = m.replace(secret, "<redacted>");
            }
        }
        m
    };
    match f {
        Failure::Retry(m, after) => Failure::Retry(clean(m), after),
        Failure::GiveUp(m) => Failure::GiveUp(clean(m)),
    }
}

/// Takes deliveries off the queue until it closes, [`IN_FLIGHT`] at a time.
pub async fn run(mut inbox: mpsc::Receiver<Delivery>, poster: Poster) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            next = inbox.recv(), if in_flight.len() < IN_FLIGHT => match next {
                Some(d) => in_flight.push(poster.deliver(d)),
                None => break,
            },
            else => break,
        }
    }
    while in_flight.next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A receiver: `/ok` accepts, anything else is gone (410); records paths and headers.
    async fn receiver() -> (String, Arc<Mutex<Vec<(String, http::HeaderMap)>>>) {
        let seen: Arc<Mutex<Vec<(String, http::HeaderMap)>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: http::Uri, headers: http::HeaderMap| {
            let log = log.clone();
            async move {
                log.lock()
                    .expect("lock")
                    .push((uri.path().to_owned(), headers));
                if uri.path() == "/ok" {
                    (http::StatusCode::OK, "ok")
                } else {
                    (http::StatusCode::GONE, "channel_is_archived")
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    fn poster(metrics: Arc<Metrics>) -> Poster {
        // Never reached for Secrets here; Events to it fail and are only logged.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let recorder = Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "baton".into(),
                instance: None,
            },
        );
        Poster::new(client, recorder, metrics).expect("poster")
    }

    fn delivery(url: String) -> Delivery {
        Delivery {
            id: "uid.Synced.0".into(),
            namespace: "syrf".into(),
            environment: "production".into(),
            target: 0,
            event: NotificationEvent::Synced,
            format: WebhookFormat::Slack,
            url: UrlFrom::Spec(url),
            signing: None,
            body: Bytes::from_static(br#"{"text":"hi"}"#),
            regarding: ObjectReference::default(),
        }
    }

    #[tokio::test]
    async fn accepted_once_and_refused_once_without_retries() {
        let metrics = Arc::new(Metrics::new());
        let p = poster(metrics.clone());
        let (base, seen) = receiver().await;
        p.deliver(delivery(format!("{base}/ok"))).await;
        // 410 (a deleted Slack webhook): retrying cannot help, so one attempt only.
        p.deliver(delivery(format!("{base}/gone"))).await;
        let seen = seen.lock().expect("lock").clone();
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["/ok", "/gone"]);
        let headers = &seen[0].1;
        assert_eq!(headers[message::EVENT_HEADER], "Synced");
        assert_eq!(headers[message::DELIVERY_HEADER], "uid.Synced.0");
        assert_eq!(headers[http::header::CONTENT_TYPE], "application/json");
        assert!(headers.get(message::SIGNATURE_HEADER).is_none());
        let text = metrics.encode();
        for line in [
            r#"baton_notifications_delivered_total{environment="production",format="Slack"} 1"#,
            r#"baton_notification_failures_total{environment="production",format="Slack"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
    }

    #[tokio::test]
    async fn a_url_outside_the_rule_is_never_contacted() {
        let metrics = Arc::new(Metrics::new());
        let p = poster(metrics.clone());
        let (result, host) = p
            .attempt(&delivery("http://hooks.example.com/T0/secret".into()))
            .await;
        assert_eq!(host, None);
        let err = result.expect_err("refused").to_string();
        assert!(err.contains("not an https:// URL"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn failures_never_quote_the_url_path_or_query() {
        let raw = "https://hooks.slack.com/services/T000/B000/XXXXSECRET?token=abc123";
        let url = message::check_url(raw).expect("url");
        let f = redact(
            Failure::GiveUp(format!(
                "HTTP 404: no_service for {raw} (path /services/T000/B000/XXXXSECRET)"
            )),
            raw,
            &url,
        );
        let text = f.to_string();
        assert!(!text.contains("XXXXSECRET"), "{text}");
        assert!(!text.contains("abc123"), "{text}");
        assert!(text.starts_with("HTTP 404: no_service for <url>"), "{text}");
    }
}
