//! `baton status`, the I/O part: list the Environments and Promotions, get the
//! Applications, and with `--git` read the GitOps files through GitHub with each
//! Environment's Secret. Everything is read; nothing is written.

use std::collections::BTreeMap;
use std::io::Write as _;

use baton_api::environment::ServiceRecord;
use baton_api::{Application, Environment, Promotion};
use baton_github::{Credentials, GitHub, RepoRef, RetryPolicy};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};

use super::status::{self, AppKey, GitRead, Snapshot, StatusArgs, StatusError};

/// Applications read at once: enough to hide latency, few enough to be gentle.
const CONCURRENT_READS: usize = 8;

/// Why `baton status` could not print the board; every one exits 2.
#[derive(Debug, thiserror::Error)]
pub enum StatusCmdError {
    #[error(transparent)]
    Invalid(#[from] StatusError),
    #[error("no kubeconfig or in-cluster config: {0}")]
    Config(String),
    /// The API server's own words, as kubectl prints them.
    #[error("Error from server ({reason}): {message}")]
    Server { reason: String, message: String },
    #[error("cannot reach the API server: {0}")]
    Client(#[source] kube::Error),
    #[error("namespace {0:?} not found")]
    NamespaceNotFound(String),
    #[error("no Environments in namespace {0:?}: pass -n with the namespace that holds them")]
    NoEnvironments(String),
    #[error("--git: Environment {environment}: {message}")]
    Git {
        environment: String,
        message: String,
    },
}

impl StatusCmdError {
    /// The process exit code (see `baton status --help`).
    pub fn exit_code(&self) -> u8 {
        status::EXIT_ERROR
    }
}

fn from_kube(e: kube::Error) -> StatusCmdError {
    match e {
        kube::Error::Api(status) => StatusCmdError::Server {
            reason: status.reason,
            message: status.message,
        },
        other => StatusCmdError::Client(other),
    }
}

/// Runs `baton status` and returns the exit code: 0, or 1 with `--check` and marks.
pub async fn run(args: &StatusArgs) -> Result<u8, StatusCmdError> {
    if let Some(ns) = &args.namespace {
        status::check_namespace(ns)?;
    }
    let config = kube::Config::infer()
        .await
        .map_err(|e| StatusCmdError::Config(e.to_string()))?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    status::check_namespace(&namespace)?;
    let client = kube::Client::try_from(config).map_err(StatusCmdError::Client)?;

    let envs: Api<Environment> = Api::namespaced(client.clone(), &namespace);
    let environments = envs
        .list(&ListParams::default())
        .await
        .map_err(from_kube)?
        .items;
    if environments.is_empty() {
        return Err(no_environments(&client, &namespace).await);
    }
    let promotions: Api<Promotion> = Api::namespaced(client.clone(), &namespace);
    let promotions = promotions
        .list(&ListParams::default())
        .await
        .map_err(from_kube)?
        .items;
    let applications = read_applications(
        &client,
        status::applications_to_read(&environments, &promotions),
    )
    .await?;
    let git = if args.git {
        Some(read_git(&client, &namespace, &environments, args.github_plain_http).await?)
    } else {
        None
    };
    let board = status::board(&Snapshot {
        namespace: &namespace,
        environments: &environments,
        promotions: &promotions,
        applications: &applications,
        git: git.as_ref(),
    });
    let text = status::render(&board, args.output, Timestamp::now())?;
    // A closed stdout (`| head`) is not a reason to change the exit code.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(status::exit_code(&board, args.check))
}

/// An empty list does not say whether the namespace exists: ask, when allowed.
async fn no_environments(client: &kube::Client, namespace: &str) -> StatusCmdError {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_opt(namespace).await {
        Ok(None) => StatusCmdError::NamespaceNotFound(namespace.to_owned()),
        // Found, or not allowed to look (namespaces are cluster-scoped).
        _ => StatusCmdError::NoEnvironments(namespace.to_owned()),
    }
}

/// The Applications that exist among `keys`; one missing is no error (the board
/// shows it), being refused access is.
async fn read_applications(
    client: &kube::Client,
    keys: Vec<AppKey>,
) -> Result<BTreeMap<AppKey, Application>, StatusCmdError> {
    let found: Vec<(AppKey, Option<Application>)> = futures::stream::iter(keys)
        .map(|key| {
            let api: Api<Application> = Api::namespaced(client.clone(), &key.0);
            async move {
                let app = api.get_opt(&key.1).await.map_err(from_kube)?;
                Ok::<_, StatusCmdError>((key, app))
            }
        })
        .buffer_unordered(CONCURRENT_READS)
        .try_collect()
        .await?;
    Ok(found
        .into_iter()
        .filter_map(|(key, app)| app.map(|a| (key, a)))
        .collect())
}

/// Per Environment, the GitOps value of each recorded service. Environments sharing a
/// Secret, API and repository share a connection.
async fn read_git(
    client: &kube::Client,
    namespace: &str,
    environments: &[Environment],
    plain_http: bool,
) -> Result<BTreeMap<String, BTreeMap<String, GitRead>>, StatusCmdError> {
    let mut connections: BTreeMap<(String, String, String), GitHub> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for env in environments {
        let records = status::recorded(env);
        if records.is_empty() {
            continue;
        }
        let name = env.name_any();
        let git_err = |message: String| StatusCmdError::Git {
            environment: name.clone(),
            message,
        };
        let key = (
            env.spec.github.secret_ref.name.clone(),
            env.spec.github.api_url.clone(),
            env.spec.gitops.repository.clone(),
        );
        if !connections.contains_key(&key) {
            let gh = connect(client, namespace, env, plain_http)
                .await
                .map_err(&git_err)?;
            connections.insert(key.clone(), gh);
        }
        let Some(gh) = connections.get(&key) else {
            continue;
        };
        out.insert(
            name.clone(),
            values(gh, env, &records).await.map_err(&git_err)?,
        );
    }
    Ok(out)
}

/// A client with the Environment's GitHub Secret, read with the user's kubeconfig.
async fn connect(
    client: &kube::Client,
    namespace: &str,
    env: &Environment,
    plain_http: bool,
) -> Result<GitHub, String> {
    let secret_name = &env.spec.github.secret_ref.name;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(secret_name)
        .await
        .map_err(|e| format!("reading Secret {secret_name:?}: {}", from_kube(e)))?
        .ok_or_else(|| {
            format!(
                "Secret {secret_name:?} (spec.github.secretRef) not found in namespace {namespace}"
            )
        })?;
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let creds =
        Credentials::from_secret_data(&data).map_err(|e| format!("Secret {secret_name:?}: {e}"))?;
    let repo = RepoRef::parse(&env.spec.gitops.repository).map_err(|e| e.to_string())?;
    let api_url = if plain_http {
        env.spec.github.api_url.replacen("https://", "http://", 1)
    } else {
        env.spec.github.api_url.clone()
    };
    // A person waits for the answer: give up sooner than the operator does.
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    GitHub::connect(&api_url, &creds, &repo, retry)
        .await
        .map_err(|e| e.to_string())
}

/// The values of `records` in `env`'s GitOps files, read the way automatic promotion
/// reads them ([`crate::pipeline::in_git`]). A file or path problem is that service's
/// (tried one by one to tell which); a GitHub failure is the whole command's.
async fn values(
    gh: &GitHub,
    env: &Environment,
    records: &[&ServiceRecord],
) -> Result<BTreeMap<String, GitRead>, String> {
    if let Ok(all) = read(gh, env, records).await? {
        return Ok(all
            .into_iter()
            .map(|(s, v)| (s, GitRead::Value(v)))
            .collect());
    }
    let mut out = BTreeMap::new();
    for r in records {
        let read = match read(gh, env, &[*r]).await? {
            Ok(mut one) => GitRead::Value(one.remove(&r.name).flatten()),
            Err(problem) => GitRead::Problem(problem),
        };
        out.insert(r.name.clone(), read);
    }
    Ok(out)
}

async fn read(
    gh: &GitHub,
    env: &Environment,
    records: &[&ServiceRecord],
) -> Result<Result<BTreeMap<String, Option<String>>, String>, String> {
    crate::pipeline::in_git(gh, env, records)
        .await
        .map_err(|e| e.to_string())
}
