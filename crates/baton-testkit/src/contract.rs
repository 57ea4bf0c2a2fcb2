//! GitHub contract check: Stoplight Prism, loaded with GitHub's official OpenAPI
//! description (npm `@octokit/openapi`), validates every REST request on its way to
//! the fake, and every GraphQL document is validated against GitHub's published schema
//! (npm `@octokit/graphql-schema`, with `graphql`'s `validate` and variable coercion,
//! by `contract/graphql-check.mjs`). Prism reports violations in the `sl-violations`
//! response header; a small gate in front of both turns any *request* violation into a
//! 422 answer naming it, so the test that sent an invalid request fails. (Prism's own
//! `--errors` mode also fails on the fake's abbreviated response bodies, which is not
//! what we check.)
//!
//! The gate serves both URL layouts: github.com's (`/repos/...`, `/graphql`) and GitHub
//! Enterprise Server's (`/api/v3/repos/...`, `/api/graphql`; `/api/v3/graphql` does not
//! exist there and is answered 404).

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

/// A helper process that is stopped with the test process, even without Drop (a
/// static instance): a watchdog shell kills it when the pipe from this process closes.
struct Guarded {
    child: Child,
    watchdog: Option<(Child, ChildStdin)>,
}

impl Guarded {
    fn spawn(cmd: &mut Command, name: &str) -> Result<Self, ContractError> {
        let child = cmd.spawn().map_err(ContractError::Start)?;
        let mut watchdog = Command::new("sh")
            .args(["-c", r#"read _ ; kill "$1" 2>/dev/null"#, name])
            .arg(child.id().to_string())
            .stdin(Stdio::piped())
            .spawn()
            .map_err(ContractError::Start)?;
        let stdin = watchdog.stdin.take();
        Ok(Guarded {
            child,
            watchdog: stdin.map(|s| (watchdog, s)),
        })
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((_, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"\n");
        }
    }
}

/// A free loopback port.
fn free_port() -> Result<u16, ContractError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(ContractError::Start)
}

/// Waits until something listens on `port`; `log` says why not.
fn wait_listening(
    port: u16,
    within: Duration,
    log: impl Fn() -> String,
) -> Result<(), ContractError> {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(ContractError::NotReady(within, log()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A running validating proxy.
pub struct ContractProxy {
    _process: Guarded,
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
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("baton-prism-{port}.log"));
        let out = std::fs::File::create(&log).map_err(ContractError::Start)?;
        let err = out.try_clone().map_err(ContractError::Start)?;
        let process = Guarded::spawn(
            Command::new(&prism)
                .arg("proxy")
                .arg(Self::spec())
                .arg(upstream)
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
            "baton-prism-watchdog",
        )?;
        let proxy = ContractProxy {
            _process: process,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        wait_listening(port, Duration::from_secs(120), || proxy.log())?;
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

/// A request that broke GitHub's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub method: String,
    pub path: String,
    pub messages: Vec<String>,
}

/// The GraphQL checker: a Node process validating documents against GitHub's schema.
pub struct GraphqlChecker {
    _process: Guarded,
    url: String,
}

impl GraphqlChecker {
    /// Starts `contract/graphql-check.mjs` in the contract tools folder.
    pub fn start() -> Result<Self, ContractError> {
        let tools = ContractProxy::tools_dir();
        let schema = tools.join("node_modules/@octokit/graphql-schema/schema.json");
        if !schema.exists() {
            return Err(ContractError::Missing(schema));
        }
        let script = crate::repo_root().join("crates/baton-testkit/contract/graphql-check.mjs");
        let port = free_port()?;
        let process = Guarded::spawn(
            Command::new("node")
                .arg(&script)
                .arg(port.to_string())
                .current_dir(&tools)
                .stdin(Stdio::null()),
            "baton-graphql-watchdog",
        )?;
        let checker = GraphqlChecker {
            _process: process,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_listening(port, Duration::from_secs(60), || {
            "graphql-check.mjs did not listen".into()
        })?;
        Ok(checker)
    }
}

/// The gate in front of Prism: where tests point their GitHub API URL.
pub struct ContractGate {
    proxy: ContractProxy,
    _graphql: GraphqlChecker,
    url: String,
    violations: std::sync::Arc<std::sync::Mutex<Vec<Violation>>>,
    graphql_paths: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
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

    /// The paths GraphQL documents were posted to (`/graphql` or `/api/graphql`).
    pub fn graphql_paths(&self) -> Vec<String> {
        self.graphql_paths
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

/// Where the gate sends what it checks.
#[derive(Clone)]
struct Upstreams {
    prism: String,
    fake: String,
    graphql: String,
    violations: std::sync::Arc<std::sync::Mutex<Vec<Violation>>>,
    graphql_paths: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<axum::body::Bytes>,
>;

/// Sends `body` to `url` and returns status and body.
async fn post(
    client: &HttpClient,
    url: &str,
    body: axum::body::Bytes,
) -> Result<(http::StatusCode, axum::body::Bytes), String> {
    use http_body_util::BodyExt;
    let req = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((status, bytes))
}

/// A GraphQL document checked against GitHub's schema: the errors, if any.
async fn graphql_errors(
    client: &HttpClient,
    up: &Upstreams,
    body: &axum::body::Bytes,
) -> Vec<String> {
    match post(client, &up.graphql, body.clone()).await {
        Ok((_, bytes)) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("errors").cloned())
            .and_then(|e| serde_json::from_value::<Vec<String>>(e).ok())
            .unwrap_or_else(|| vec!["the GraphQL checker answered nonsense".into()]),
        Err(e) => vec![format!("the GraphQL checker is unreachable: {e}")],
    }
}

fn refuse(
    up: &Upstreams,
    method: &http::Method,
    path: &str,
    found: Vec<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Ok(mut all) = up.violations.lock() {
        all.push(Violation {
            method: method.to_string(),
            path: path.to_owned(),
            messages: found.clone(),
        });
    }
    let problem = serde_json::json!({ "message": format!("GitHub contract violation: {}", found.join("; ")) });
    (http::StatusCode::UNPROCESSABLE_ENTITY, axum::Json(problem)).into_response()
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

async fn gate(
    up: Upstreams,
    client: HttpClient,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    let path = uri.path();
    if path == "/graphql" || path == "/api/graphql" {
        if let Ok(mut paths) = up.graphql_paths.lock() {
            paths.push(path.to_owned());
        }
        let found = graphql_errors(&client, &up, &body).await;
        if !found.is_empty() {
            return refuse(&up, &method, path, found);
        }
    } else if path == "/api/v3/graphql" {
        return (
            http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "message": "Not Found" })),
        )
            .into_response();
    }
    // GitHub Enterprise's REST prefix; the description's paths are root-relative.
    let rest_path = path.strip_prefix("/api/v3").unwrap_or(path);
    let (upstream, forward_path) = match path {
        "/graphql" | "/api/graphql" => (up.fake.as_str(), "/graphql"),
        _ => (up.prism.as_str(), rest_path),
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = format!("{upstream}{forward_path}{query}");
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
        return refuse(&up, &method, path, found);
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
            let checker = GraphqlChecker::start().map_err(|e| e.to_string())?;
            let up = Upstreams {
                prism: proxy.url().to_owned(),
                fake: fake.url(),
                graphql: checker.url.clone(),
                violations: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
                graphql_paths: std::sync::Arc::new(std::sync::Mutex::new(Vec::new())),
            };
            let (violations, graphql_paths) = (up.violations.clone(), up.graphql_paths.clone());
            let addr = crate::background::serve_forever(move || {
                let client: HttpClient = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http();
                let up = up.clone();
                axum::Router::new().fallback(
                    move |m: http::Method,
                          u: http::Uri,
                          h: http::HeaderMap,
                          b: axum::body::Bytes| {
                        gate(up.clone(), client.clone(), m, u, h, b)
                    },
                )
            })
            .map_err(|e| e.to_string())?;
            Ok(ContractGate {
                proxy,
                _graphql: checker,
                url: format!("http://{addr}"),
                violations,
                graphql_paths,
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
