//! GitHub `pull_request` webhooks: signature check and the event Baton cares about.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::provider::PrState;

/// Why a webhook delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    #[error("X-Hub-Signature-256 does not match the payload")]
    BadSignature,
    #[error("malformed payload: {0}")]
    Malformed(String),
}

impl WebhookError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::MissingSignature | WebhookError::BadSignature => 401,
            WebhookError::Malformed(_) => 400,
        }
    }
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` over the raw body, in constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(WebhookError::BadSignature)?;
    let expected = decode_hex(hex).ok_or(WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// `sha256=<hex>` for `body`, as GitHub would send it (used by tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A pull request change worth waking a Promotion for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    /// `owner/name` of the repository.
    pub repository: String,
    pub number: u64,
    pub head_branch: String,
    /// The state the delivery reports: a hint only. Baton confirms it with a GET before
    /// it changes a phase, so a replayed or out-of-order delivery cannot move anything.
    pub state: PrState,
    /// `X-GitHub-Delivery`: the same id on a redelivery, so replays are recognised.
    pub delivery: Option<String>,
}

/// Parses a verified `pull_request` delivery. `Ok(None)` for events Baton ignores.
pub fn parse_event(
    event: Option<&str>,
    body: &[u8],
) -> Result<Option<PullRequestEvent>, WebhookError> {
    match event {
        Some("pull_request") => {}
        Some("ping") | Some(_) => return Ok(None),
        None => {
            return Err(WebhookError::Malformed(
                "missing X-GitHub-Event header".into(),
            ));
        }
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let field = |path: &[&str]| path.iter().try_fold(&v, |v, k| v.get(k));
    let missing = |what: &str| WebhookError::Malformed(format!("missing {what}"));
    let repository = field(&["repository", "full_name"])
        .and_then(Value::as_str)
        .ok_or_else(|| missing("repository.full_name"))?;
    let number = field(&["pull_request", "number"])
        .and_then(Value::as_u64)
        .ok_or_else(|| missing("pull_request.number"))?;
    let head = field(&["pull_request", "head", "ref"])
        .and_then(Value::as_str)
        .ok_or_else(|| missing("pull_request.head.ref"))?;
    let merged = field(&["pull_request", "merged"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let open = field(&["pull_request", "state"]).and_then(Value::as_str) == Some("open");
    let state = if merged {
        let sha = field(&["pull_request", "merge_commit_sha"])
            .and_then(Value::as_str)
            .ok_or_else(|| missing("pull_request.merge_commit_sha"))?;
        PrState::Merged {
            merge_commit: sha.to_owned(),
        }
    } else if open {
        PrState::Open
    } else {
        PrState::Closed
    };
    Ok(Some(PullRequestEvent {
        repository: repository.to_owned(),
        number,
        head_branch: head.to_owned(),
        state,
        delivery: None,
    }))
}

/// An axum router answering `POST /webhooks/github`: 401 for a bad signature, 400 for a
/// malformed payload, 202 otherwise; each accepted event goes to `sink`.
pub fn router<F>(secret: Vec<u8>, sink: F) -> axum::Router
where
    F: Fn(PullRequestEvent) + Clone + Send + Sync + 'static,
{
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    axum::Router::new().route(
        "/webhooks/github",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let secret = secret.clone();
            let sink = sink.clone();
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let result = verify_signature(&secret, &body, header("x-hub-signature-256"))
                    .and_then(|()| parse_event(header("x-github-event"), &body));
                match result {
                    Ok(Some(mut event)) => {
                        event.delivery = header("x-github-delivery").map(str::to_owned);
                        sink(event);
                        (StatusCode::ACCEPTED, "accepted\n".to_owned())
                    }
                    Ok(None) => (StatusCode::ACCEPTED, "ignored\n".to_owned()),
                    Err(e) => (
                        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                        format!("{e}\n"),
                    ),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_tampering() {
        let body = br#"{"action":"closed"}"#;
        let sig = sign(b"s3cret", body);
        assert_eq!(verify_signature(b"s3cret", body, Some(&sig)), Ok(()));
        assert_eq!(
            verify_signature(b"other", body, Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(b"s3cret", b"{}", Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(b"s3cret", body, None),
            Err(WebhookError::MissingSignature)
        );
        assert_eq!(
            verify_signature(b"s3cret", body, Some("sha1=abc")),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(b"s3cret", body, Some("sha256=zz")),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn parses_merged_closed_and_ignores_other_events() {
        let merged = br#"{"action":"closed","repository":{"full_name":"o/r"},"pull_request":{"number":7,"state":"closed","merged":true,"merge_commit_sha":"abc","head":{"ref":"baton/ns/p"}}}"#;
        let e = parse_event(Some("pull_request"), merged).unwrap().unwrap();
        assert_eq!(
            e.state,
            PrState::Merged {
                merge_commit: "abc".into()
            }
        );
        assert_eq!(
            (e.repository.as_str(), e.number, e.head_branch.as_str()),
            ("o/r", 7, "baton/ns/p")
        );
        let closed = br#"{"repository":{"full_name":"o/r"},"pull_request":{"number":7,"state":"closed","merged":false,"head":{"ref":"b"}}}"#;
        assert_eq!(
            parse_event(Some("pull_request"), closed)
                .unwrap()
                .unwrap()
                .state,
            PrState::Closed
        );
        assert_eq!(parse_event(Some("ping"), b"{}").unwrap(), None);
        assert!(matches!(
            parse_event(Some("pull_request"), b"not json"),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            parse_event(Some("pull_request"), b"{}"),
            Err(WebhookError::Malformed(_))
        ));
    }
}
