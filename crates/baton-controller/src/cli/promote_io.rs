//! `baton promote`, the Kubernetes part: create the Promotion (or find the one an
//! earlier run of the same request created), then, with `--wait`, watch it to its end.

use std::io::Write as _;
use std::pin::pin;
use std::time::Duration;

use baton_api::{Environment, Promotion};
use futures::StreamExt as _;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};

use super::promote::{
    self, EXIT_FAILED, EXIT_TIMEOUT, End, Plan, Progress, PromoteArgs, PromoteError,
};

/// The field manager of objects the CLI creates, so `managedFields` says who made them.
const FIELD_MANAGER: &str = "baton-cli";

/// Why `baton promote` did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PromoteCmdError {
    #[error(transparent)]
    Invalid(#[from] PromoteError),
    #[error("no kubeconfig or in-cluster config: {0}")]
    Config(String),
    /// The API server's own words, as kubectl prints them.
    #[error("Error from server ({reason}): {message}")]
    Server { reason: String, message: String },
    #[error("cannot reach the API server: {0}")]
    Client(#[source] kube::Error),
    #[error(
        "promotion.baton.dev/{name} already exists with a different request: {differences}; pass --name to create another Promotion"
    )]
    Exists { name: String, differences: String },
    #[error("promotion.baton.dev/{0} is being deleted; run again once it is gone, or pass --name")]
    BeingDeleted(String),
    /// Failed, Rejected or Superseded, with why.
    #[error("{0}")]
    Ended(String),
    #[error("promotion {0} was deleted while waiting")]
    Deleted(String),
    #[error("watching promotion {name}: {source}")]
    Watch {
        name: String,
        #[source]
        source: watcher::Error,
    },
    #[error("timed out after {after} waiting for promotion {name}: {state}")]
    Timeout {
        name: String,
        after: String,
        state: String,
    },
}

impl PromoteCmdError {
    /// The process exit code (see `baton promote --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            PromoteCmdError::Timeout { .. } => EXIT_TIMEOUT,
            _ => EXIT_FAILED,
        }
    }
}

pub fn from_kube(e: kube::Error) -> PromoteCmdError {
    match e {
        kube::Error::Api(status) => PromoteCmdError::Server {
            reason: status.reason,
            message: status.message,
        },
        other => PromoteCmdError::Client(other),
    }
}

/// One line to stdout, flushed so a CI log shows it at once. A closed stdout is not a
/// reason to fail the promotion, so write errors are ignored.
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Runs `baton promote`: everything is checked before the first request.
pub async fn run(args: &PromoteArgs) -> Result<(), PromoteCmdError> {
    let plan = promote::plan(args)?;
    let config = kube::Config::infer().await;
    let namespace = match (&plan.namespace, &config) {
        (Some(ns), _) => ns.clone(),
        (None, Ok(config)) => config.default_namespace.clone(),
        // --dry-run contacts no cluster, so it needs no kubeconfig either.
        (None, Err(_)) if plan.dry_run => "default".to_owned(),
        (None, Err(e)) => return Err(PromoteCmdError::Config(e.to_string())),
    };
    promote::check_namespace(&namespace)?;
    let object = promote::promotion(&namespace, &plan.name, plan.spec.clone());
    if plan.dry_run {
        let yaml = promote::to_yaml(&object)?;
        say(yaml.trim_end());
        return Ok(());
    }
    let config = config.map_err(|e| PromoteCmdError::Config(e.to_string()))?;
    let client = kube::Client::try_from(config).map_err(PromoteCmdError::Client)?;
    let api: Api<Promotion> = Api::namespaced(client.clone(), &namespace);
    let uid = create_or_find(&api, &object, &plan).await?;
    warn_if_no_environment(&client, &namespace, &plan.spec.environment).await;
    if plan.wait {
        let after = args.timeout.clone().unwrap_or_default();
        wait(&api, &namespace, &plan.name, uid, plan.timeout, &after).await?;
    }
    Ok(())
}

/// Creates the Promotion; when one of that name exists with the same request (a
/// retried job), uses it. Returns its uid.
async fn create_or_find(
    api: &Api<Promotion>,
    object: &Promotion,
    plan: &Plan,
) -> Result<Option<String>, PromoteCmdError> {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let err = match api.create(&params, object).await {
        Ok(created) => {
            say(&format!("promotion.baton.dev/{} created", plan.name));
            return Ok(created.metadata.uid);
        }
        Err(e) => e,
    };
    // Create first and look second: a get-then-create would race with a parallel run.
    let kube::Error::Api(status) = &err else {
        return Err(from_kube(err));
    };
    if !status.is_already_exists() {
        return Err(from_kube(err));
    }
    let existing = api.get(&plan.name).await.map_err(from_kube)?;
    if existing.metadata.deletion_timestamp.is_some() {
        return Err(PromoteCmdError::BeingDeleted(plan.name.clone()));
    }
    let differences = promote::differences(&plan.spec, &existing.spec);
    if !differences.is_empty() {
        return Err(PromoteCmdError::Exists {
            name: plan.name.clone(),
            differences: differences.join("; "),
        });
    }
    say(&format!("promotion.baton.dev/{} unchanged", plan.name));
    Ok(existing.metadata.uid)
}

/// A Promotion for an Environment that does not exist waits quietly (EnvironmentNotFound);
/// a typo should be seen now, not after a CI timeout. Only a definite "not found"
/// counts: a CI account may not be allowed to read Environments.
async fn warn_if_no_environment(client: &kube::Client, namespace: &str, environment: &str) {
    let api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    if let Err(kube::Error::Api(status)) = api.get(environment).await
        && status.is_not_found()
    {
        eprintln!(
            "warning: Environment {namespace}/{environment} not found: the Promotion waits (EnvironmentNotFound) until it exists"
        );
    }
}

/// Watches the Promotion until it ends, printing each phase change once.
pub async fn wait(
    api: &Api<Promotion>,
    namespace: &str,
    name: &str,
    uid: Option<String>,
    timeout: Option<Duration>,
    after: &str,
) -> Result<(), PromoteCmdError> {
    let full_name = format!("{namespace}/{name}");
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    // The watcher relists and resumes by resourceVersion by itself; backoff paces retries.
    let mut events = pin!(watcher(api.clone(), config).default_backoff());
    let mut deadline = pin!(async {
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    });
    let mut progress = Progress::default();
    let mut listed = false;
    loop {
        let event = tokio::select! {
            () = &mut deadline => {
                let state = match progress.phase() {
                    Some(phase) => format!("it is {phase}"),
                    None => "Baton has not picked it up yet (is the operator running?)".to_owned(),
                };
                return Err(PromoteCmdError::Timeout { name: full_name, after: after.to_owned(), state });
            }
            event = events.next() => event,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(e)) if is_permanent(&e) => {
                return Err(PromoteCmdError::Watch {
                    name: full_name,
                    source: e,
                });
            }
            Some(Err(e)) => {
                eprintln!("warning: watching promotion {full_name}: {e}; retrying");
                continue;
            }
            // The watcher's stream does not end; if it does, there is nothing more to see.
            None => return Err(PromoteCmdError::Deleted(full_name)),
        };
        let promotion = match event {
            watcher::Event::Init => {
                listed = false;
                continue;
            }
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => p,
            // A relist without it: it went while the watch was down.
            watcher::Event::InitDone if !listed => {
                return Err(PromoteCmdError::Deleted(full_name));
            }
            watcher::Event::InitDone => continue,
            watcher::Event::Delete(_) => return Err(PromoteCmdError::Deleted(full_name)),
        };
        listed = true;
        // Same name, another object: the one we created was deleted and replaced.
        if uid.is_some() && promotion.metadata.uid != uid {
            return Err(PromoteCmdError::Deleted(full_name));
        }
        let step = progress.observe(&promotion, Timestamp::now());
        for line in &step.lines {
            say(line);
        }
        match step.end {
            Some(End::Synced) => return Ok(()),
            Some(End::Unsuccessful { message, .. }) => return Err(PromoteCmdError::Ended(message)),
            None => {}
        }
    }
}

/// Errors that retrying will not fix: no permission to list or watch, or the resource
/// (or namespace) is gone.
fn is_permanent(e: &watcher::Error) -> bool {
    let code = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return false,
    };
    matches!(code, 401 | 403 | 404)
}
