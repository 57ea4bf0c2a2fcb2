//! What every reconcile shares: clients, configuration, GitHub connections (the only
//! place the concrete GitHub provider is made), the Promotion cache, and the index of
//! Applications to the Promotions waiting on them. Every cache here is bounded or
//! pruned when its Promotion ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_api::{Application, Environment, Promotion};
use baton_github::{Credentials, GitHub, RepoRef, RetryPolicy};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::error::Error;
use crate::machine::Blocker;

/// Operator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upper bound on any requeue interval (polling GitHub, waiting for Argo CD).
    pub max_requeue: Duration,
    pub retry: RetryPolicy,
    /// Tests only: reach `https://` API URLs over plain HTTP (a local fake GitHub).
    pub github_plain_http: bool,
}

/// Application `(namespace, name)` -> the objects (Promotions, Environments) waiting on it.
pub type AppIndex<K = Promotion> = HashMap<(String, String), HashSet<ObjectRef<K>>>;

/// Shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    /// Checked before every write: closed once this replica may no longer lead.
    pub fence: crate::fence::Fence,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub recorder: Recorder,
    pub config: Config,
    /// Chat and webhook notifications: reconciles only enqueue.
    pub notifier: crate::notify::Notifier,
    /// `namespace/secret` -> (Secret resourceVersion + API URL + repository, connection):
    /// one connection per Secret, replaced when the Secret changes.
    github: tokio::sync::Mutex<HashMap<String, Connection>>,
    /// Webhook deliveries already handled (`X-GitHub-Delivery`), oldest first, bounded.
    deliveries: Mutex<(HashSet<String>, VecDeque<String>)>,
    /// Application `(namespace, name)` -> Promotions waiting on it, so an Argo CD
    /// status change wakes exactly those. Pruned when a Promotion ends.
    pub app_index: Mutex<AppIndex>,
    /// Application `(namespace, name)` -> Environments whose status or automatic
    /// promotion depends on it. Bounded by Applications x Environments.
    env_app_index: Mutex<AppIndex<Environment>>,
    /// Consecutive failed reconciles per Promotion, for exponential backoff; an entry
    /// goes on the next success.
    failures: Mutex<HashMap<ObjectRef<Promotion>, u32>>,
    /// Open promotion PRs, polled in batches.
    pub prs: crate::prwatch::PrWatch,
    /// The controller's Promotion cache (reads without API calls), once running.
    store: std::sync::OnceLock<Store<Promotion>>,
    /// The Environment controller's cache, once running.
    environments: std::sync::OnceLock<Store<Environment>>,
    /// Each Promotion's last status write, until the cache has it.
    pub written: crate::record::Written,
    /// This process's id in armed notification records, and which it attempted.
    pub arming: crate::record::Arming,
    /// Events waiting to be posted by the background task (a reconcile never waits on one).
    pub events: crate::events::Outbox,
    /// The Applications' caches (one per watched namespace, or one for all), once running.
    /// Each with the namespace it watches (`None`: all).
    apps: std::sync::OnceLock<Vec<(Option<String>, Store<Application>)>>,
}

/// A GitHub connection and the credentials it was made with.
struct Connection {
    /// Secret resourceVersion and repository.
    version: String,
    gh: Arc<GitHub>,
    /// When the Secret was last read: it is read again after [`SECRET_RECHECK`] (or
    /// `--max-requeue`, if shorter), not on every reconcile.
    checked: std::time::Instant,
}

/// How long a Secret read is trusted before the next reconcile reads it again.
const SECRET_RECHECK: Duration = Duration::from_secs(30);

/// How many webhook delivery ids are remembered to drop replays.
pub const MAX_DELIVERIES: usize = 4096;

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
        fence: crate::fence::Fence,
    ) -> Self {
        Context {
            client,
            fence,
            notifier: crate::notify::Notifier::new(metrics.clone()),
            metrics,
            recorder,
            config,
            github: tokio::sync::Mutex::new(HashMap::new()),
            deliveries: Mutex::new((HashSet::new(), VecDeque::new())),
            app_index: Mutex::new(HashMap::new()),
            env_app_index: Mutex::new(HashMap::new()),
            prs: crate::prwatch::PrWatch::default(),
            store: std::sync::OnceLock::new(),
            environments: std::sync::OnceLock::new(),
            events: crate::events::Outbox::new(),
            written: crate::record::Written::default(),
            arming: crate::record::Arming::default(),
            apps: std::sync::OnceLock::new(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a failed reconcile; returns how many in a row.
    pub fn failed(&self, p: &ObjectRef<Promotion>) -> u32 {
        let Ok(mut m) = self.failures.lock() else {
            return 1;
        };
        let n = m.entry(p.clone()).or_default();
        *n = n.saturating_add(1);
        *n
    }

    /// A reconcile succeeded: the backoff starts over.
    pub fn succeeded(&self, p: &ObjectRef<Promotion>) {
        if let Ok(mut m) = self.failures.lock() {
            m.remove(p);
        }
    }

    /// Serves Promotion reads from the controller's cache from now on.
    pub fn use_store(&self, store: Store<Promotion>) {
        let _ = self.store.set(store);
    }

    /// Serves Environment reads from the Environment controller's cache from now on.
    pub fn use_environment_store(&self, store: Store<Environment>) {
        let _ = self.environments.set(store);
    }

    /// The Environment `namespace/name`: from the cache when it holds it, else by GET
    /// (just created and not yet seen by the watch, or no cache running).
    pub async fn environment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Environment>>, Error> {
        if let Some(env) = self
            .environments
            .get()
            .and_then(|store| store.get(&ObjectRef::new(name).within(namespace)))
        {
            return Ok(Some(env));
        }
        self.get_direct(namespace, name).await
    }

    /// `namespace/name` read from the API server, for what a cache does not hold.
    async fn get_direct<K>(&self, namespace: &str, name: &str) -> Result<Option<Arc<K>>, Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?.map(Arc::new))
    }

    /// The Environments a change to `p` concerns: its own, and those downstream of it
    /// (an automatic promotion may start there).
    pub fn environments_for(&self, p: &Promotion) -> Vec<ObjectRef<Environment>> {
        let Some(store) = self.environments.get() else {
            return vec![];
        };
        let ns = p.metadata.namespace.as_deref();
        store
            .state()
            .into_iter()
            .filter(|e| e.metadata.namespace.as_deref() == ns)
            .filter(|e| {
                e.metadata.name.as_deref() == Some(p.spec.environment.as_str())
                    || e.spec.upstream.as_deref() == Some(p.spec.environment.as_str())
            })
            .map(|e| ObjectRef::from_obj(&*e))
            .collect()
    }

    /// Serves Application reads from the watches' caches from now on.
    pub fn use_application_stores(&self, stores: Vec<(Option<String>, Store<Application>)>) {
        let _ = self.apps.set(stores);
    }

    /// The Application `namespace/name`: from the watches' cache once it has listed
    /// everything, else (not listed yet, or outside the watched namespaces) by GET.
    ///
    /// Readiness is looked at, never waited for: kube's `Store::wait_until_ready`
    /// wakes only the last of several concurrent waiters, and the others would wait
    /// forever (seen here as a restarted operator that never finished a promotion).
    pub async fn application(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Application>>, Error> {
        if let Some(stores) = self.apps.get() {
            let key = ObjectRef::new(name).within(namespace);
            // A store watching this namespace (or all) holds every Application there:
            // once it has listed them, a miss means there is none.
            if let Some((_, store)) = stores
                .iter()
                .find(|(ns, _)| ns.as_deref().is_none_or(|ns| ns == namespace))
                && ready(store)
            {
                return Ok(store.get(&key));
            }
        }
        self.get_direct(namespace, name).await
    }

    /// Every Promotion in `namespace`, from the cache when there is one.
    pub async fn promotions(&self, namespace: &str) -> Result<Vec<Arc<Promotion>>, Error> {
        if let Some(store) = self.store.get() {
            return Ok(store
                .state()
                .into_iter()
                .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
                .collect());
        }
        let api: Api<Promotion> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .map(Arc::new)
            .collect())
    }

    /// Whether a webhook delivery is new; replays (same `X-GitHub-Delivery`) are not.
    pub fn first_delivery(&self, id: &str) -> bool {
        let Ok(mut seen) = self.deliveries.lock() else {
            return true;
        };
        let (set, order) = &mut *seen;
        if !set.insert(id.to_owned()) {
            return false;
        }
        order.push_back(id.to_owned());
        while order.len() > MAX_DELIVERIES {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    /// Forgets everything kept for a Promotion that ended or was deleted.
    pub fn forget(&self, promotion: &ObjectRef<Promotion>) {
        if let Ok(mut m) = self.app_index.lock() {
            m.retain(|_, waiting| {
                waiting.remove(promotion);
                !waiting.is_empty()
            });
        }
        self.succeeded(promotion);
        self.arming.forget(promotion);
    }

    /// Sizes of the caches, for the boundedness test and metrics.
    pub async fn cache_sizes(&self) -> CacheSizes {
        CacheSizes {
            connections: self.github.lock().await.len(),
            deliveries: self.deliveries.lock().map(|d| d.1.len()).unwrap_or(0),
            app_index: self.app_index.lock().map(|m| m.len()).unwrap_or(0),
            failures: self.failures.lock().map(|m| m.len()).unwrap_or(0),
            watched_pulls: self.prs.len(),
            written: self.written.pending(),
            armed: self.arming.pending(),
        }
    }

    /// The GitHub connection for `env`, cached per Secret version, and that version
    /// (a notification GitHub refused is tried again only with other credentials).
    pub async fn github_for(
        &self,
        namespace: &str,
        env: &Environment,
    ) -> Result<(Arc<GitHub>, String), ConnectError> {
        let secret_name = &env.spec.github.secret_ref.name;
        let slot = format!("{namespace}/{secret_name}|{}", env.spec.github.api_url);
        let recheck = SECRET_RECHECK.min(self.config.max_requeue);
        if let Some(c) = self.github.lock().await.get(&slot).filter(|c| {
            c.checked.elapsed() < recheck
                && c.version
                    .ends_with(&format!("|{}", env.spec.gitops.repository))
        }) {
            return Ok((c.gh.clone(), c.version.clone()));
        }
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
        let version = format!(
            "{}|{}",
            secret
                .metadata
                .resource_version
                .as_deref()
                .unwrap_or_default(),
            env.spec.gitops.repository
        );
        if let Some(c) = self
            .github
            .lock()
            .await
            .get_mut(&slot)
            .filter(|c| c.version == version)
        {
            c.checked = std::time::Instant::now();
            return Ok((c.gh.clone(), version));
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
        let api_url = if self.config.github_plain_http {
            env.spec.github.api_url.replacen("https://", "http://", 1)
        } else {
            env.spec.github.api_url.clone()
        };
        let gh = GitHub::connect(&api_url, &creds, &repo, self.config.retry.clone())
            .await
            .map_err(|e| match e {
                baton_github::GitHubError::Credentials(m) => ConnectError::Blocked(
                    Blocker::SecretNotFound(format!("Secret {secret_name:?}: {m}")),
                ),
                other => ConnectError::Transient(other.into()),
            })?;
        let metrics = self.metrics.clone();
        let waits = self.metrics.clone();
        let gh = Arc::new(
            gh.observed_by(Arc::new(move |op, class, remaining| {
                metrics.github_request(op.as_str(), class, remaining, op.is_graphql())
            }))
            .budget_observed_by(Arc::new(move |wait| waits.budget_wait(wait))),
        );
        // The old connection (an older Secret version) is dropped with its caches.
        self.github.lock().await.insert(
            slot,
            Connection {
                version: version.clone(),
                gh: gh.clone(),
                checked: std::time::Instant::now(),
            },
        );
        Ok((gh, version))
    }

    /// Notes that `promotion` waits on the Application `namespace/name`.
    pub fn watch_application(&self, namespace: &str, name: &str, promotion: ObjectRef<Promotion>) {
        note(&self.app_index, namespace, name, promotion);
    }

    /// The Promotions waiting on an Application.
    pub fn waiting_on(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Promotion>> {
        lookup(&self.app_index, namespace, name)
    }

    /// Notes that `env` depends on the Application `namespace/name`.
    pub fn environment_waits_on(&self, namespace: &str, name: &str, env: ObjectRef<Environment>) {
        note(&self.env_app_index, namespace, name, env);
    }

    /// The Environments depending on an Application.
    pub fn environments_on(&self, namespace: &str, name: &str) -> Vec<ObjectRef<Environment>> {
        lookup(&self.env_app_index, namespace, name)
    }
}

/// Whether `store` has listed everything, without waiting (see [`Context::application`]).
fn ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    use futures::FutureExt;
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

fn note<K: kube::Resource>(
    index: &Mutex<AppIndex<K>>,
    namespace: &str,
    name: &str,
    who: ObjectRef<K>,
) where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    if let Ok(mut m) = index.lock() {
        m.entry((namespace.to_owned(), name.to_owned()))
            .or_default()
            .insert(who);
    }
}

fn lookup<K: kube::Resource>(
    index: &Mutex<AppIndex<K>>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<K>>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    index
        .lock()
        .ok()
        .and_then(|m| {
            m.get(&(namespace.to_owned(), name.to_owned()))
                .map(|s| s.iter().cloned().collect())
        })
        .unwrap_or_default()
}

/// How much each cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    pub connections: usize,
    pub deliveries: usize,
    pub app_index: usize,
    pub failures: usize,
    pub watched_pulls: usize,
    pub written: usize,
    /// Promotions with armed notification records this process attempted.
    pub armed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::events::Reporter;

    fn context() -> Context {
        // Never contacted: the caches are exercised without an API server.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "baton".into(),
                instance: None,
            },
        );
        Context::new(
            client,
            recorder,
            Config {
                max_requeue: Duration::from_secs(60),
                retry: RetryPolicy::default(),
                github_plain_http: false,
            },
            Arc::new(crate::metrics::Metrics::new()),
            crate::fence::Fence::open(),
        )
    }

    #[tokio::test]
    async fn ten_thousand_promotion_lifecycles_leave_the_caches_bounded() {
        let ctx = context();
        for i in 0..10_000 {
            let p = ObjectRef::<Promotion>::new(&format!("p-{i}")).within("team");
            // A promotion waits on its Applications, fails a few times, gets webhooks...
            ctx.watch_application("argocd", &format!("svc-{}-production", i % 300), p.clone());
            ctx.watch_application("argocd", &format!("svc-{}-staging", i % 300), p.clone());
            ctx.failed(&p);
            ctx.failed(&p);
            assert!(ctx.first_delivery(&format!("delivery-{i}")));
            // ...and ends.
            ctx.forget(&p);
        }
        let sizes = ctx.cache_sizes().await;
        assert_eq!(sizes.app_index, 0, "{sizes:?}");
        assert_eq!(sizes.failures, 0, "{sizes:?}");
        assert_eq!(sizes.deliveries, MAX_DELIVERIES, "{sizes:?}");
        assert_eq!(sizes.connections, 0);
        // A replay of a remembered delivery is still recognised.
        assert!(!ctx.first_delivery("delivery-9999"));
    }
}
