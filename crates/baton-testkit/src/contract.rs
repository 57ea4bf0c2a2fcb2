//! GitHub contract check: Stoplight Prism, loaded with GitHub's official OpenAPI
//! description (npm `@octokit/openapi`), validates every request on its way to the
//! fake. Prism reports violations in the `sl-violations` response header; a small
//! gate in front of it turns any *request* violation into a 422 answer naming it, so
//! the test that sent an invalid request fails. (Prism's own `--errors` mode also
//! fails on the fake's abbreviated response bodies, which is not what we check.)

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the folder where `make contract-tools` installed Prism.
pub const TOOLS_ENV: &str = "BATON_CONTRACT_TOOLS";

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(
        "{0} not found: run `make contract-tools` (npm install of @stoplight/prism-cli and @octokit/openapi)"
    )]
    Missing(PathBuf),
    #[error("cannot start prism: {0}")]
    Start(std::io::Error),
    #[error("prism did not listen within {0:?}; log: {1}")]
    NotReady(Duration, String),
}

/// A running validating proxy.
pub struct ContractProxy {
    child: Child,
    _watchdog: Option<(Child, ChildStdin)>,
    url: String,
    log: PathBuf,
}

impl ContractProxy {
    /// The folder holding `node_modules/` with Prism and the GitHub description.
    pub fn tools_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os(TOOLS_ENV) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        home.join(".cache/baton/contract")
    }

    /// The OpenAPI description used.
    pub fn spec() -> PathBuf {
        Self::tools_dir().join("node_modules/@octokit/openapi/generated/api.github.com.json")
    }

    /// Starts Prism proxying to `upstream` and waits until it accepts connections.
    pub fn start(upstream: &str) -> Result<Self, ContractError> {
        let prism = Self::tools_dir().join("node_modules/.bin/prism");
        for needed in [&prism, &Self::spec()] {
            if !needed.exists() {
                return Err(ContractError::Missing(needed.clone()));
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(ContractError::Start)?
            .port();
        let log = std::env::temp_dir().join(format!("baton-prism-{port}.log"));
        let out = std::fs::File::create(&log).map_err(ContractError::Start)?;
        let err = out.try_clone().map_err(ContractError::Start)?;
        let child = Command::new(&prism)
            .arg("proxy")
            .arg(Self::spec())
            .arg(upstream)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(ContractError::Start)?;
        // Prism is stopped with the test process, even without Drop (static instance).
        let mut watchdog = Command::new("sh")
            .args([
                "-c",
                r#"read _ ; kill "$1" 2>/dev/null"#,
                "baton-prism-watchdog",
            ])
            .arg(child.id().to_string())
            .stdin(Stdio::piped())
            .spawn()
            .map_err(ContractError::Start)?;
        let stdin = watchdog.stdin.take();
        let proxy = ContractProxy {
            child,
            _watchdog: stdin.map(|s| (watchdog, s)),
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let text = std::fs::read_to_string(&proxy.log).unwrap_or_default();
                return Err(ContractError::NotReady(Duration::from_secs(120), text));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(proxy)
    }

    /// The proxy's base URL, to use as the GitHub API URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Prism's log, with every validation verdict.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ContractProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((_, mut stdin)) = self._watchdog.take() {
            let _ = stdin.write_all(b"\n");
        }
    }
}

/// A request that broke GitHub's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub method: String,
    pub path: String,
    pub messages: Vec<String>,
}

/// The gate in front of Prism: where tests point their GitHub API URL.
pub struct ContractGate {
    proxy: ContractProxy,
    url: String,
    violations: std::sync::Arc<std::sync::Mutex<Vec<Violation>>>,
}

impl ContractGate {
    /// Base URL to use as the GitHub API URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request violation seen so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Prism's log.
    pub fn log(&self) -> String {
        self.proxy.log()
    }
}

/// Request violations in an `sl-violations` header value.
pub fn request_violations(header: &str) -> Vec<String> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(header)
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter(|v| {
            v.get("location")
                .and_then(|l| l.get(0))
                .and_then(|l| l.as_str())
                == Some("request")
        })
        .filter(|v| v.get("severity").and_then(|s| s.as_str()) == Some("Error"))
        .filter_map(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn gate(
    prism: String,
    fake: String,
    violations: std::sync::Arc<std::sync::Mutex<Vec<Violation>>>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<axum::body::Bytes>,
    >,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    // GraphQL is not part of the REST description: it goes straight to the fake, which
    // checks the one mutation Baton sends.
    let upstream = if uri.path() == "/graphql" {
        fake
    } else {
        prism
    };
    let target = format!(
        "{upstream}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = http::Request::builder().method(method.clone()).uri(&target);
    for (k, v) in &headers {
        if k != http::header::HOST {
            req = req.header(k, v);
        }
    }
    let Ok(req) = req.body(http_body_util::Full::new(body)) else {
        return (
            http::StatusCode::BAD_GATEWAY,
            "cannot build the forwarded request",
        )
            .into_response();
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            return (
                http::StatusCode::BAD_GATEWAY,
                format!("prism unreachable: {e}"),
            )
                .into_response();
        }
    };
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let found = parts
        .headers
        .get("sl-violations")
        .and_then(|v| v.to_str().ok())
        .map(request_violations)
        .unwrap_or_default();
    if !found.is_empty() {
        if let Ok(mut all) = violations.lock() {
            all.push(Violation {
                method: method.to_string(),
                path: uri.path().to_owned(),
                messages: found.clone(),
            });
        }
        let problem = serde_json::json!({ "message": format!("GitHub contract violation: {}", found.join("; ")) });
        return (http::StatusCode::UNPROCESSABLE_ENTITY, axum::Json(problem)).into_response();
    }
    let mut out = http::Response::builder().status(parts.status);
    for (k, v) in &parts.headers {
        // Prism re-encodes bodies; let the framework set the length.
        if k != http::header::CONTENT_LENGTH
            && k != http::header::TRANSFER_ENCODING
            && k != http::header::CONTENT_ENCODING
        {
            out = out.header(k, v);
        }
    }
    out.body(axum::body::Body::from(bytes))
        .unwrap_or_else(|_| http::StatusCode::BAD_GATEWAY.into_response())
}

static SHARED: std::sync::OnceLock<Result<ContractGate, String>> = std::sync::OnceLock::new();

/// One Prism and gate per test process, in front of the shared fake GitHub.
pub fn shared() -> Result<&'static ContractGate, String> {
    SHARED
        .get_or_init(|| {
            let fake = crate::fake_github::shared();
            let proxy = ContractProxy::start(&fake.url()).map_err(|e| e.to_string())?;
            let prism = proxy.url().to_owned();
            let fake_url = fake.url();
            let violations = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let recorded = violations.clone();
            let addr = crate::background::serve_forever(move || {
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http();
                axum::Router::new().fallback(
                    move |m: http::Method,
                          u: http::Uri,
                          h: http::HeaderMap,
                          b: axum::body::Bytes| {
                        gate(
                            prism.clone(),
                            fake_url.clone(),
                            recorded.clone(),
                            client.clone(),
                            m,
                            u,
                            h,
                            b,
                        )
                    },
                )
            })
            .map_err(|e| e.to_string())?;
            Ok(ContractGate {
                proxy,
                url: format!("http://{addr}"),
                violations,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_request_errors_count() {
        let header = r#"[{"location":["request","query","per_page"],"severity":"Error","code":"type","message":"Request query parameter per_page must be integer"},{"location":["response"],"severity":"Warning","message":"Unable to match the returned status code"},{"location":["response","body"],"severity":"Error","message":"Response body must have required property 'url'"}]"#;
        assert_eq!(
            request_violations(header),
            vec!["Request query parameter per_page must be integer".to_owned()]
        );
        assert!(request_violations("not json").is_empty());
    }
}
