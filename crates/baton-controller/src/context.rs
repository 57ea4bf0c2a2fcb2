//! What every reconcile shares: clients, configuration, GitHub connections, and
//! pull request states reported by webhooks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_api::{Environment, Promotion};
use baton_github::{Credentials, GitHub, PrState, RepoRef, RetryPolicy};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;

use crate::decide::Blocker;
use crate::error::Error;

/// Operator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upper bound on any requeue interval (polling GitHub, waiting for Argo CD).
    pub max_requeue: Duration,
    pub retry: RetryPolicy,
}

/// Application `(namespace, name)` -> the Promotions waiting on it.
pub type AppIndex = HashMap<(String, String), HashSet<ObjectRef<Promotion>>>;

/// Shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub recorder: Recorder,
    pub config: Config,
    github: tokio::sync::Mutex<HashMap<String, Arc<GitHub>>>,
    /// `(owner/name, number)` -> state, from verified webhooks; saves a poll.
    pub webhook_prs: Mutex<HashMap<(String, u64), PrState>>,
    /// Application `(namespace, name)` -> Promotions waiting on it, so an Argo CD
    /// status change wakes exactly those.
    pub app_index: Mutex<AppIndex>,
}

/// Why a GitHub connection could not be made.
pub enum ConnectError {
    /// The user must fix something (Secret missing, bad key).
    Blocked(Blocker),
    /// Worth retrying.
    Transient(Error),
}

impl Context {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        config: Config,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Context {
            client,
            metrics,
            recorder,
            config,
            github: tokio::sync::Mutex::new(HashMap::new()),
            webhook_prs: Mutex::new(HashMap::new()),
            app_index: Mutex::new(HashMap::new()),
        }
    }

    /// The GitHub connection for `env`, cached per Secret version.
    pub async fn github_for(
        &self,
        namespace: &str,
        env: &Environment,
    ) -> Result<Arc<GitHub>, ConnectError> {
        let secret_name = &env.spec.github.secret_ref.name;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = secrets
            .get_opt(secret_name)
            .await
            .map_err(|e| ConnectError::Transient(e.into()))?;
        let Some(secret) = secret else {
            return Err(ConnectError::Blocked(Blocker::SecretNotFound(format!(
                "Secret {secret_name:?} (Environment {:?} spec.github.secretRef) not found in namespace {namespace}: create it with `token`, or `appId` and `privateKey`",
                env.metadata.name.as_deref().unwrap_or_default()
            ))));
        };
        let key = format!(
            "{namespace}/{secret_name}@{}|{}|{}",
            secret
                .metadata
                .resource_version
                .as_deref()
                .unwrap_or_default(),
            env.spec.github.api_url,
            env.spec.gitops.repository
        );
        if let Some(gh) = self.github.lock().await.get(&key) {
            return Ok(gh.clone());
        }
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let creds = Credentials::from_secret_data(&data).map_err(|e| {
            ConnectError::Blocked(Blocker::SecretNotFound(format!(
                "Secret {secret_name:?}: {e}"
            )))
        })?;
        let repo = RepoRef::parse(&env.spec.gitops.repository)
            .map_err(|e| ConnectError::Blocked(Blocker::InvalidSpec(e.to_string())))?;
        let gh = GitHub::connect(
            &env.spec.github.api_url,
            &creds,
            &repo,
            self.config.retry.clone(),
        )
        .await
        .map_err(|e| match e {
            baton_github::GitHubError::Credentials(m) => ConnectError::Blocked(
                Blocker::SecretNotFound(format!("Secret {secret_name:?}: {m}")),
            ),
            other => ConnectError::Transient(other.into()),
        })?;
        let metrics = self.metrics.clone();
        let gh = Arc::new(gh.observed_by(Arc::new(move |op, class, remaining| {
            metrics.github_request(op.as_str(), class, remaining)
        })));
        self.github.lock().await.insert(key, gh.clone());
        Ok(gh)
    }

    /// A state reported by webhook for this PR, if any.
    pub fn webhook_state(&self, repo: &str, number: u64) -> Option<PrState> {
        self.webhook_prs
            .lock()
            .ok()
            .and_then(|m| m.get(&(repo.to_owned(), number)).cloned())
    }

    /// Notes that `promotion` waits on the Application `namespace/name`.
    pub fn watch_application(&self, namespace: &str, name: &str, promotion: ObjectRef<Promotion>) {
        if let Ok(mut m) = self.app_index.lock() {
            m.entry((namespace.to_owned(), name.to_owned()))
                .or_default()
                .insert(promotion);
        }
    }

    /// The Promotions waiting on an Application.
    pub fn waiting_on(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Promotion>> {
        self.app_index
            .lock()
            .ok()
            .and_then(|m| {
                m.get(&(namespace.to_owned(), name.to_owned()))
                    .map(|s| s.iter().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// Every GitHub connection made so far (for metrics).
    pub async fn connections(&self) -> Vec<Arc<GitHub>> {
        self.github.lock().await.values().cloned().collect()
    }
}
