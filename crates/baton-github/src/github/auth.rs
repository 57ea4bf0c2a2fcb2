//! Credentials from a Kubernetes Secret's data, and the octocrab client built from them.
//!
//! Accepted keys: `token`; or a GitHub App as `appId`/`app-id`, `privateKey`/
//! `private-key` and optionally `installationId`/`installation-id` (looked up from the
//! repository when absent, as the seeds' `github-app-credentials` Secret allows).

use std::collections::BTreeMap;

use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};

use crate::client::{GitHub, Operation, RetryPolicy};
use crate::error::GitHubError;
use crate::provider::RepoRef;

/// How Baton authenticates to GitHub. `Debug` never prints secrets.
#[derive(Clone)]
pub enum Credentials {
    Token(String),
    App {
        app_id: u64,
        private_key: String,
        installation_id: Option<u64>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Credentials::Token(<redacted>)"),
            Credentials::App {
                app_id,
                installation_id,
                ..
            } => {
                write!(
                    f,
                    "Credentials::App {{ app_id: {app_id}, installation_id: {installation_id:?}, private_key: <redacted> }}"
                )
            }
        }
    }
}

fn get<'a>(data: &'a BTreeMap<String, Vec<u8>>, keys: &[&str]) -> Option<&'a [u8]> {
    keys.iter().find_map(|k| data.get(*k)).map(Vec::as_slice)
}

impl Credentials {
    /// Reads credentials from Secret data; the error names the missing or bad key.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, GitHubError> {
        let text = |b: &[u8], key: &str| {
            String::from_utf8(b.to_vec())
                .map(|s| s.trim().to_owned())
                .map_err(|_| GitHubError::Credentials(format!("{key} is not UTF-8")))
        };
        if let Some(token) = get(data, &["token", "GITHUB_TOKEN"]) {
            let token = text(token, "token")?;
            if token.is_empty() {
                return Err(GitHubError::Credentials("token is empty".into()));
            }
            return Ok(Credentials::Token(token));
        }
        let app_id = get(data, &["appId", "app-id", "app_id"]);
        let key = get(data, &["privateKey", "private-key", "private_key"]);
        match (app_id, key) {
            (Some(id), Some(key)) => {
                let app_id = text(id, "appId")?
                    .parse()
                    .map_err(|_| GitHubError::Credentials("appId is not a number".into()))?;
                let installation_id = match get(
                    data,
                    &["installationId", "installation-id", "installation_id"],
                ) {
                    Some(i) => Some(text(i, "installationId")?.parse().map_err(|_| {
                        GitHubError::Credentials("installationId is not a number".into())
                    })?),
                    None => None,
                };
                Ok(Credentials::App {
                    app_id,
                    private_key: text(key, "privateKey")?,
                    installation_id,
                })
            }
            (Some(_), None) => Err(GitHubError::Credentials(
                "appId is set but privateKey is missing".into(),
            )),
            _ => Err(GitHubError::Credentials(
                "the Secret has neither `token` nor `appId` + `privateKey`".into(),
            )),
        }
    }
}

impl GitHub {
    /// Connects to the API at `api_url`. For an App without an installation id, the
    /// installation of `repo` is looked up first.
    pub async fn connect(
        api_url: &str,
        credentials: &Credentials,
        repo: &RepoRef,
        retry: RetryPolicy,
    ) -> Result<GitHub, GitHubError> {
        let rest = Self::authenticated(api_url, api_url, credentials, repo, &retry).await?;
        Ok(match crate::client::graphql_base(api_url) {
            Some(base) => {
                let graphql = Self::authenticated(&base, api_url, credentials, repo, &retry)
                    .await?
                    .crab;
                rest.with_graphql(graphql)
            }
            None => rest,
        })
    }

    /// An authenticated client based at `base` (REST lookups go to `api_url`).
    async fn authenticated(
        base: &str,
        api_url: &str,
        credentials: &Credentials,
        repo: &RepoRef,
        retry: &RetryPolicy,
    ) -> Result<GitHub, GitHubError> {
        let retry = retry.clone();
        let builder_at = |base: &str| {
            Octocrab::builder()
                .base_uri(base)
                .map_err(|e| GitHubError::Credentials(format!("invalid API URL {base:?}: {e}")))
        };
        let builder = || builder_at(base);
        match credentials {
            Credentials::Token(token) => {
                let crab = builder()?
                    .personal_token(token.clone())
                    .build()
                    .map_err(|e| GitHubError::Credentials(e.to_string()))?;
                Ok(GitHub::new(crab, api_url, retry))
            }
            Credentials::App {
                app_id,
                private_key,
                installation_id,
            } => {
                let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(private_key.as_bytes())
                    .map_err(|e| {
                        GitHubError::Credentials(format!("privateKey is not an RSA PEM key: {e}"))
                    })?;
                let app = builder()?
                    .app(AppId(*app_id), key.clone())
                    .build()
                    .map_err(|e| GitHubError::Credentials(e.to_string()))?;
                let id = match installation_id {
                    Some(id) => *id,
                    None => {
                        // The installation is looked up on the REST API, whatever `base` is.
                        let rest_app = builder_at(api_url)?
                            .app(AppId(*app_id), key.clone())
                            .build()
                            .map_err(|e| GitHubError::Credentials(e.to_string()))?;
                        let finder = GitHub::new(rest_app, api_url, retry.clone());
                        let body = finder
                            .send(
                                Operation::GetInstallation,
                                http::Method::GET,
                                &format!("/repos/{}/installation", repo.path()),
                                None,
                            )
                            .await?
                            .ok(Operation::GetInstallation)?;
                        body.get("id")
                            .and_then(serde_json::Value::as_u64)
                            .ok_or_else(|| {
                                GitHubError::Credentials(format!(
                                    "no App installation found for {repo}"
                                ))
                            })?
                    }
                };
                let crab = app
                    .installation(InstallationId(id))
                    .map_err(|e| GitHubError::Credentials(e.to_string()))?;
                Ok(GitHub::new(crab, api_url, retry))
            }
        }
    }
}
