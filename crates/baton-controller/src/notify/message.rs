//! The pure part of notifications: which event a phase change is, which targets want
//! it, the JSON and Slack bodies, the signature, the URL rule and the retry schedule.
//! No I/O and no clock read: the caller passes `now`.

use std::time::Duration;

use baton_api::environment::{NotificationEvent, WebhookTarget};
use baton_api::{Environment, Phase, Promotion, PromotionStatus};
use baton_github::naming::truncate;
use hmac::{Hmac, Mac};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

/// The header carrying the body's HMAC-SHA256: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Baton-Signature-256";
/// The header naming the event (`Synced`).
pub const EVENT_HEADER: &str = "X-Baton-Event";
/// The header with a delivery id, the same on every retry, for receivers to drop repeats.
pub const DELIVERY_HEADER: &str = "X-Baton-Delivery";

/// Attempts per delivery, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait after the first failed attempt; each further one doubles it.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest a receiver's `Retry-After` is honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The event a Promotion entering `phase` is; `Pending` (creation) is none.
pub fn event_of(p: &Promotion, phase: Phase) -> Option<NotificationEvent> {
    Some(match phase {
        Phase::Pending => return None,
        Phase::PrOpened => NotificationEvent::PullRequestOpened,
        Phase::Merged => NotificationEvent::Merged,
        // A rollback's Synced is what people need to hear about as a rollback.
        Phase::Synced if p.spec.rollback.is_some() => NotificationEvent::RolledBack,
        Phase::Synced => NotificationEvent::Synced,
        Phase::Failed => NotificationEvent::Failed,
        Phase::Rejected => NotificationEvent::Rejected,
        Phase::Superseded => NotificationEvent::Superseded,
    })
}

/// Whether `target` subscribes to `event` (no list: every event).
pub fn wants(target: &WebhookTarget, event: NotificationEvent) -> bool {
    target.events.is_empty() || target.events.contains(&event)
}

/// The JSON document (format `Json`), field order as documented in [`super`].
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub event: NotificationEvent,
    pub namespace: String,
    pub promotion: String,
    pub environment: String,
    pub phase: Phase,
    pub services: Vec<ServiceNotice>,
    pub applications: Vec<ApplicationNotice>,
    pub pull_request: Option<PullRequestNotice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackNotice>,
    pub reason: String,
    pub message: String,
    pub at: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ServiceNotice {
    pub name: String,
    /// The version, or the digest.
    pub version: String,
    pub source: Option<SourceNotice>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SourceNotice {
    pub repository: String,
    pub commit: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ApplicationNotice {
    pub namespace: String,
    pub name: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct PullRequestNotice {
    pub number: u64,
    pub url: String,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct RollbackNotice {
    pub reason: String,
    pub of: Option<String>,
}

/// What a notification says about `p`, which just entered `status.phase`.
pub fn notice(
    p: &Promotion,
    env: &Environment,
    status: &PromotionStatus,
    event: NotificationEvent,
    now: Timestamp,
) -> Notice {
    let phase = status.phase.unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.r#type == baton_api::conditions::TYPE_READY);
    let environment = p.spec.environment.clone();
    let apps = &env.spec.applications;
    Notice {
        event,
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        promotion: p.metadata.name.clone().unwrap_or_default(),
        environment: environment.clone(),
        phase,
        services: p
            .spec
            .services
            .iter()
            .map(|s| ServiceNotice {
                name: s.name.clone(),
                version: s.value().to_owned(),
                source: p.spec.source_of(&s.name).map(|src| SourceNotice {
                    repository: src.repository.clone(),
                    commit: src.commit.clone(),
                }),
            })
            .collect(),
        applications: p
            .spec
            .services
            .iter()
            .map(|s| ApplicationNotice {
                namespace: apps.namespace.clone(),
                name: baton_api::template::expand(&apps.name, &s.name, &environment),
            })
            .collect(),
        pull_request: status
            .pull_request
            .as_ref()
            .filter(|pr| pr.number > 0)
            .map(|pr| PullRequestNotice {
                number: pr.number,
                url: pr.url.clone(),
            }),
        rollback: p.spec.rollback.as_ref().map(|r| RollbackNotice {
            reason: r.reason.clone(),
            of: r.of.clone(),
        }),
        reason: ready
            .map(|c| c.reason.clone())
            .unwrap_or_else(|| phase.as_str().to_owned()),
        message: ready.map(|c| c.message.clone()).unwrap_or_default(),
        at: seconds(status.phase_times.get(phase).map(|t| t.0).unwrap_or(now)),
    }
}

/// RFC 3339 to the second, as the API server keeps `status.phaseTimes`: the time in a
/// notification is the one `kubectl get -o yaml` shows.
fn seconds(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// The `Json` body.
pub fn json_body(n: &Notice) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(n)
}

fn emoji(event: NotificationEvent) -> &'static str {
    match event {
        NotificationEvent::PullRequestOpened => ":eyes:",
        NotificationEvent::Merged => ":twisted_rightwards_arrows:",
        NotificationEvent::Synced => ":white_check_mark:",
        NotificationEvent::Failed => ":x:",
        NotificationEvent::Rejected => ":no_entry_sign:",
        NotificationEvent::RolledBack => ":rewind:",
        NotificationEvent::Superseded => ":fast_forward:",
    }
}

fn headline(event: NotificationEvent, environment: &str) -> String {
    match event {
        NotificationEvent::PullRequestOpened => {
            format!("Promotion to {environment} is waiting for review")
        }
        NotificationEvent::Merged => {
            format!("Promotion to {environment} merged, waiting for Argo CD")
        }
        NotificationEvent::Synced => format!("Deployed to {environment}"),
        NotificationEvent::Failed => format!("Promotion to {environment} failed"),
        NotificationEvent::Rejected => {
            format!("Promotion to {environment} rejected: pull request closed unmerged")
        }
        NotificationEvent::RolledBack => format!("Rolled back {environment}"),
        NotificationEvent::Superseded => {
            format!("Promotion to {environment} superseded by a newer one")
        }
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup; everything else is literal enough.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// Slack's limits: 3000 characters per section text, 2000 per field, 10 fields.
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

/// The `Slack` body: an incoming-webhook message with `blocks` and a plain `text`
/// (what notifications and clients without blocks show).
pub fn slack_body(n: &Notice) -> Result<Vec<u8>, serde_json::Error> {
    let head = headline(n.event, &n.environment);
    let versions: Vec<String> = n
        .services
        .iter()
        .map(|s| format!("{}:{}", s.name, s.version))
        .collect();
    let mut text = format!(
        "{} {}: {} ({}/{})",
        emoji(n.event),
        head,
        versions.join(", "),
        n.namespace,
        n.promotion
    );
    if let Some(pr) = &n.pull_request {
        text.push_str(&format!(" - pull request #{} {}", pr.number, pr.url));
    }
    let services: Vec<String> = n
        .services
        .iter()
        .map(|s| format!("• `{}` {}", esc(&s.name), esc(&s.version)))
        .collect();
    let mut fields = vec![
        json!({ "type": "mrkdwn", "text": truncate(&format!("*Promotion*\n{}/{}", esc(&n.namespace), esc(&n.promotion)), FIELD_MAX) }),
    ];
    if let Some(pr) = &n.pull_request {
        fields.push(json!({ "type": "mrkdwn", "text": format!("*Pull request*\n<{}|#{}>", esc(&pr.url), pr.number) }));
    }
    let apps: Vec<String> = n
        .applications
        .iter()
        .map(|a| format!("{}/{}", esc(&a.namespace), esc(&a.name)))
        .collect();
    fields.push(json!({ "type": "mrkdwn", "text": truncate(&format!("*Argo CD*\n{}", apps.join(", ")), FIELD_MAX) }));
    fields.push(json!({ "type": "mrkdwn", "text": format!("*Phase*\n{}", n.phase.as_str()) }));
    if let Some(rb) = &n.rollback {
        fields.push(json!({ "type": "mrkdwn", "text": truncate(&format!("*Rollback*\n{}", esc(&rb.reason)), FIELD_MAX) }));
    }
    let mut blocks = vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(&format!("{} *{}*\n{}", emoji(n.event), esc(&head), services.join("\n")), SECTION_MAX) } }),
        json!({ "type": "section", "fields": fields }),
    ];
    if !n.message.is_empty() {
        blocks.push(json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": truncate(&esc(&n.message), SECTION_MAX) } ] }));
    }
    serde_json::to_vec(&json!({ "text": esc(&text), "blocks": blocks }))
}

/// `sha256=<hex>`: HMAC-SHA256 of the raw body with `secret`, as GitHub signs webhooks.
pub fn signature(secret: &[u8], body: &[u8]) -> Option<String> {
    // HMAC takes a key of any length; the error case cannot happen.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    Some(out)
}

/// Why a URL is not delivered to (never quoting the URL: it may carry a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL")]
    NotAUrl,
    #[error("not an https:// URL (plain http:// only to localhost, 127.0.0.1 or [::1])")]
    NotHttps,
}

/// A URL Baton posts to: `https://`, or `http://` to the loopback address (the rule the
/// API server applies to `url`, applied here to URLs read from Secrets too).
pub fn check_url(raw: &str) -> Result<url::Url, UrlError> {
    let u = url::Url::parse(raw.trim()).map_err(|_| UrlError::NotAUrl)?;
    let host = u.host_str().unwrap_or_default();
    match u.scheme() {
        _ if host.is_empty() => Err(UrlError::NotAUrl),
        "https" => Ok(u),
        "http" if matches!(host, "localhost" | "127.0.0.1" | "[::1]") => Ok(u),
        "http" => Err(UrlError::NotHttps),
        _ => Err(UrlError::NotAUrl),
    }
}

/// What one attempt's HTTP status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt (5xx, 408, 429).
    Retry,
    /// The receiver refused the request itself (other 4xx, redirects): retrying the
    /// same body to the same URL cannot help.
    GiveUp,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::GiveUp,
    }
}

/// The wait after failed attempt `attempt` (1-based) before the next: 1 s, 2 s, 4 s,
/// 8 s, scaled by `jitter` in [0, 1] to 75-125 % so receivers that failed together are
/// not hit together again; at least the receiver's `Retry-After` (capped at
/// [`MAX_RETRY_AFTER`]). `None` once [`MAX_ATTEMPTS`] were made.
pub fn retry_wait(attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Option<Duration> {
    if attempt == 0 || attempt >= MAX_ATTEMPTS {
        return None;
    }
    let base = FIRST_RETRY.saturating_mul(1 << (attempt - 1).min(16));
    let wait = base.mul_f64(0.75 + jitter.clamp(0.0, 1.0) / 2.0);
    Some(wait.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::conditions::{Condition, ConditionStatus};
    use baton_api::environment::{WebhookFormat, WebhookUrlSecretRef};
    use baton_api::promotion::PullRequestStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn promotion(rollback: bool) -> Promotion {
        let mut spec = json!({
            "environment": "production",
            "source": { "repository": "camaradesuk/syrf-test", "commit": "6b47f42a0c3d8e9f1a2b3c4d5e6f708192a3b4c5" },
            "services": [
                { "name": "api", "version": "api-v9.1.1" },
                { "name": "web", "digest": "sha256:9b2a5e7c1d0f3e4a6b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c",
                  "source": { "repository": "camaradesuk/syrf-web", "commit": "0123456789abcdef0123456789abcdef01234567" } }
            ]
        });
        if rollback {
            spec["rollback"] =
                json!({ "reason": "500s after <deploy> & more", "of": "api-v9-1-1" });
        }
        serde_json::from_value(json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion",
            "metadata": { "name": "api-v9-1-1-to-production", "namespace": "syrf", "uid": "5f0c1b2a-7e44-4d3c-9a51-0b6d2f8e9c10" },
            "spec": spec
        }))
        .expect("promotion")
    }

    fn environment() -> Environment {
        serde_json::from_value(json!({
            "apiVersion": "baton.dev/v1alpha1", "kind": "Environment",
            "metadata": { "name": "production", "namespace": "syrf" },
            "spec": {
                "gitops": { "repository": "camaradesuk/cluster-gitops", "target": { "file": "x.yaml", "yamlPath": "a" } },
                "github": { "secretRef": { "name": "github" } }
            }
        }))
        .expect("environment")
    }

    fn synced_status() -> PromotionStatus {
        let mut s = PromotionStatus {
            phase: Some(Phase::Synced),
            pull_request: Some(PullRequestStatus {
                number: 42,
                url: "https://github.com/camaradesuk/cluster-gitops/pull/42".into(),
                ..PullRequestStatus::default()
            }),
            conditions: vec![Condition {
                r#type: baton_api::conditions::TYPE_READY.into(),
                status: ConditionStatus::True,
                reason: "Synced".into(),
                message: "every Application is Synced and Healthy at the merged revision".into(),
                observed_generation: None,
                last_transition_time: Time("2026-11-23T10:00:05Z".parse().expect("time")),
            }],
            ..PromotionStatus::default()
        };
        s.phase_times.enter(
            Phase::Synced,
            Time("2026-11-23T10:00:05Z".parse().expect("time")),
        );
        s
    }

    fn now() -> Timestamp {
        // Sub-second parts are dropped, as the API server drops them.
        "2026-11-23T11:00:00.123456789Z".parse().expect("time")
    }

    fn pretty(body: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(body).expect("body is JSON");
        serde_json::to_string_pretty(&v).expect("pretty") + "\n"
    }

    fn golden(name: &str, got: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/notify/golden")
            .join(name);
        if std::env::var_os("BATON_BLESS").is_some() {
            std::fs::write(&path, got).expect("bless");
        }
        let want = std::fs::read_to_string(&path).expect("golden file");
        assert!(
            got == want,
            "{name} differs (BATON_BLESS=1 rewrites it):\n--- got ---\n{got}\n--- golden ---\n{want}"
        );
    }

    #[test]
    fn json_body_matches_the_golden_file() {
        let p = promotion(false);
        let n = notice(
            &p,
            &environment(),
            &synced_status(),
            NotificationEvent::Synced,
            now(),
        );
        let body = json_body(&n).expect("json");
        // The raw body keeps the documented field order (what the signature covers).
        let raw = String::from_utf8(body.clone()).expect("utf-8");
        assert!(
            raw.starts_with(r#"{"event":"Synced","namespace":"syrf","promotion":"api-v9-1-1-to-production","environment":"production","phase":"Synced","services":["#),
            "{raw}"
        );
        // The golden file is the same document, indented in the same field order.
        let indented = serde_json::to_string_pretty(&n).expect("pretty") + "\n";
        assert_eq!(pretty(&body), pretty(indented.as_bytes()));
        golden("json-synced.json", &indented);
    }

    #[test]
    fn slack_body_matches_the_golden_file_and_escapes_markup() {
        let p = promotion(true);
        let n = notice(
            &p,
            &environment(),
            &synced_status(),
            NotificationEvent::RolledBack,
            now(),
        );
        let body = slack_body(&n).expect("slack");
        let got = pretty(&body);
        assert!(
            got.contains("500s after &lt;deploy&gt; &amp; more"),
            "{got}"
        );
        golden("slack-rolled-back.json", &got);
    }

    #[test]
    fn slack_without_a_pull_request_or_message_leaves_them_out() {
        let p = promotion(false);
        let mut status = synced_status();
        status.phase = Some(Phase::Superseded);
        status.pull_request = None;
        status.conditions.clear();
        let n = notice(
            &p,
            &environment(),
            &status,
            NotificationEvent::Superseded,
            now(),
        );
        // No phase time recorded for Superseded: the time of the call.
        assert_eq!(n.at, "2026-11-23T11:00:00Z");
        assert_eq!(n.reason, "Superseded");
        let v: serde_json::Value =
            serde_json::from_slice(&slack_body(&n).expect("slack")).expect("json");
        let blocks = v["blocks"].as_array().expect("blocks");
        assert_eq!(blocks.len(), 2, "no context block without a message: {v}");
        assert!(!v.to_string().contains("Pull request"), "{v}");
        assert_eq!(
            v["text"],
            ":fast_forward: Promotion to production superseded by a newer one: api:api-v9.1.1, web:sha256:9b2a5e7c1d0f3e4a6b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c (syrf/api-v9-1-1-to-production)"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&json_body(&n).expect("json")).expect("json");
        assert!(json["pullRequest"].is_null(), "{json}");
        assert!(json.get("rollback").is_none(), "{json}");
    }

    #[test]
    fn signature_known_answers() {
        // GitHub's documented example for X-Hub-Signature-256.
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!").as_deref(),
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        );
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?").as_deref(),
            Some("sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn events_follow_phases_and_filters() {
        let p = promotion(false);
        let rb = promotion(true);
        assert_eq!(event_of(&p, Phase::Pending), None);
        assert_eq!(
            event_of(&p, Phase::PrOpened),
            Some(NotificationEvent::PullRequestOpened)
        );
        assert_eq!(event_of(&p, Phase::Merged), Some(NotificationEvent::Merged));
        assert_eq!(event_of(&p, Phase::Synced), Some(NotificationEvent::Synced));
        assert_eq!(
            event_of(&rb, Phase::Synced),
            Some(NotificationEvent::RolledBack)
        );
        assert_eq!(
            event_of(&rb, Phase::Merged),
            Some(NotificationEvent::Merged)
        );
        assert_eq!(event_of(&p, Phase::Failed), Some(NotificationEvent::Failed));
        assert_eq!(
            event_of(&p, Phase::Rejected),
            Some(NotificationEvent::Rejected)
        );
        assert_eq!(
            event_of(&p, Phase::Superseded),
            Some(NotificationEvent::Superseded)
        );

        let mut t = WebhookTarget {
            url: None,
            url_secret_ref: Some(WebhookUrlSecretRef {
                name: "hook".into(),
                key: "url".into(),
            }),
            format: WebhookFormat::Slack,
            events: vec![],
            secret_ref: None,
        };
        assert!(wants(&t, NotificationEvent::Merged), "empty means all");
        t.events = vec![NotificationEvent::Failed, NotificationEvent::RolledBack];
        assert!(wants(&t, NotificationEvent::Failed));
        assert!(wants(&t, NotificationEvent::RolledBack));
        assert!(!wants(&t, NotificationEvent::Synced));
        assert!(!wants(&t, NotificationEvent::PullRequestOpened));
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_stop() {
        let s = Duration::from_secs;
        let schedule: Vec<_> = (1..=MAX_ATTEMPTS)
            .map(|a| retry_wait(a, 0.5, None))
            .collect();
        assert_eq!(
            schedule,
            vec![Some(s(1)), Some(s(2)), Some(s(4)), Some(s(8)), None]
        );
        assert_eq!(retry_wait(1, 0.0, None), Some(Duration::from_millis(750)));
        assert_eq!(
            retry_wait(4, 1.0, None),
            Some(Duration::from_millis(10_000))
        );
        // The whole schedule stays well inside two minutes.
        let worst: Duration = (1..MAX_ATTEMPTS)
            .filter_map(|a| retry_wait(a, 1.0, None))
            .sum();
        assert_eq!(worst, Duration::from_millis(18_750));
        // A receiver's Retry-After is honoured, up to a cap.
        assert_eq!(retry_wait(1, 0.5, Some(s(30))), Some(s(30)));
        assert_eq!(retry_wait(1, 0.5, Some(s(3600))), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_wait(MAX_ATTEMPTS, 0.5, Some(s(1))), None);
    }

    #[test]
    fn statuses_decide_retries() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert_eq!(verdict(s), Verdict::Retry, "{s}");
        }
        for s in [301, 400, 403, 404, 410] {
            assert_eq!(verdict(s), Verdict::GiveUp, "{s}");
        }
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(check_url("https://hooks.slack.com/services/T0/B0/xyz").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://[::1]:9/hook").is_ok());
        assert!(
            check_url(" https://example.com/hook\n").is_ok(),
            "a Secret's trailing newline"
        );
        assert_eq!(
            check_url("http://hooks.example.com/x"),
            Err(UrlError::NotHttps)
        );
        assert_eq!(check_url("hooks.slack.com/x"), Err(UrlError::NotAUrl));
        assert_eq!(check_url("ftp://example.com/x"), Err(UrlError::NotAUrl));
        assert_eq!(check_url("https://"), Err(UrlError::NotAUrl));
        // The error never repeats the URL.
        let err = check_url("http://hooks.example.com/T0/secret-token")
            .expect_err("refused")
            .to_string();
        assert!(!err.contains("secret-token"), "{err}");
    }
}
