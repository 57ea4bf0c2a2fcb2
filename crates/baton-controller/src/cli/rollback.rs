//! `baton rollback` and `baton unblock`: one command back to the last good version, and
//! the way to let a rolled-back version in again. The pure part (what the rollback
//! targets, which Promotions an unblock touches) is here and in
//! [`crate::machine::rollback`]; the Kubernetes calls are at the bottom.

use baton_api::environment::BlockedVersion;
use baton_api::{ANNOTATION_UNBLOCKED, Environment, Promotion};
use clap::Args;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

use super::promote::{self, PromoteError};
use super::promote_io::{self, PromoteCmdError};
use crate::machine::rollback;

/// Annotation recording who unblocked (the Kubernetes user, from a SelfSubjectReview).
pub const ANNOTATION_UNBLOCKED_BY: &str = "baton.dev/unblocked-by";

const FIELD_MANAGER: &str = "baton-cli";

/// `baton rollback`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Exit codes:
  0  the rollback Promotion was created (or exists already); with --wait: it is Synced
  1  nothing to roll back to, an unknown service, --to a version that never ran there,
     a refusal from the API server; with --wait: the rollback ended Failed, Rejected or
     Superseded
  2  with --wait: --timeout passed first

The rollback goes to each service's last good version: the one before the version
running now, or, when the newest promotion failed after its merge, the last version
proven Synced. The versions it removes are blocked in the Environment until
`baton unblock`.")]
pub struct RollbackArgs {
    /// Namespace of the Environment [default: the kubeconfig context's namespace].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The Environment to roll back.
    #[arg(long, value_name = "NAME")]
    pub environment: String,
    /// The services to roll back, in one pull request.
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Go back to this version instead of the previous good one (one service only).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Why: shown in the pull request, the statuses and the Events.
    #[arg(long, default_value = "rolled back with baton rollback")]
    pub reason: String,
    /// Print the rollback Promotion as YAML and exit without creating it.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the rollback ends, printing a line per phase change.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (e.g. 30m).
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub timeout: Option<String>,
}

/// `baton unblock`.
#[derive(Debug, Clone, Args)]
pub struct UnblockArgs {
    /// Namespace of the Environment [default: the kubeconfig context's namespace].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The Environment the version is blocked in.
    #[arg(long, value_name = "NAME")]
    pub environment: String,
    /// The service.
    pub service: String,
    /// The blocked version (or digest).
    pub version: String,
    /// Why it may come back (recorded on the rollback Promotion).
    #[arg(long)]
    pub reason: String,
}

/// Why a rollback or unblock did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RollbackCmdError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Cmd(#[from] PromoteCmdError),
}

impl From<PromoteError> for RollbackCmdError {
    fn from(e: PromoteError) -> Self {
        RollbackCmdError::Cmd(e.into())
    }
}

impl RollbackCmdError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RollbackCmdError::Refused(_) => promote::EXIT_FAILED,
            RollbackCmdError::Cmd(e) => e.exit_code(),
        }
    }
}

/// The rollback Promotion for `args`, from the Environment and the Promotions there.
pub fn plan(
    args: &RollbackArgs,
    namespace: &str,
    env: &Environment,
    promotions: &[&Promotion],
) -> Result<Promotion, String> {
    if args.to.is_some() && args.services.len() != 1 {
        return Err("--to names one version: roll back one service with it".into());
    }
    if args.reason.trim().is_empty() {
        return Err("--reason must say why".into());
    }
    let name = env.name_any();
    let records = env
        .status
        .as_ref()
        .map(|s| s.services.as_slice())
        .unwrap_or_default();
    let blocked = rollback::blocked(&name, promotions);
    let mut to = Vec::new();
    let mut from = Vec::new();
    let mut of = Vec::new();
    for (i, service) in args.services.iter().enumerate() {
        if args.services[..i].contains(service) {
            return Err(format!("service {service:?} is named twice"));
        }
        let t = rollback::target(
            &name,
            records,
            &blocked,
            promotions,
            service,
            args.to.as_deref(),
        )?;
        to.push(t.to);
        from.push(t.from);
        if !of.contains(&t.of) {
            of.push(t.of);
        }
    }
    Ok(rollback::promotion(
        namespace,
        &name,
        to,
        from,
        args.reason.trim(),
        (of.len() == 1).then(|| of.remove(0)),
    ))
}

/// The rollback Promotions that block `service:version` in `environment`.
pub fn blocking<'a>(
    environment: &str,
    service: &str,
    version: &str,
    promotions: &[&'a Promotion],
) -> Vec<&'a Promotion> {
    promotions
        .iter()
        .filter(|p| {
            rollback::blocked(environment, &[p])
                .iter()
                .any(|b| b.service == service && b.version == version)
        })
        .copied()
        .collect()
}

fn describe(blocked: &[BlockedVersion]) -> String {
    if blocked.is_empty() {
        return "none".into();
    }
    blocked
        .iter()
        .map(|b| format!("{}:{}", b.service, b.version))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- Kubernetes ----

async fn connect(namespace: Option<&str>) -> Result<(kube::Client, String), RollbackCmdError> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| PromoteCmdError::Config(e.to_string()))?;
    let ns = namespace
        .map(str::to_owned)
        .unwrap_or_else(|| config.default_namespace.clone());
    promote::check_namespace(&ns)?;
    let client = kube::Client::try_from(config).map_err(PromoteCmdError::Client)?;
    Ok((client, ns))
}

async fn read(
    client: &kube::Client,
    ns: &str,
    environment: &str,
) -> Result<(Environment, Vec<Promotion>), RollbackCmdError> {
    let envs: Api<Environment> = Api::namespaced(client.clone(), ns);
    let env = envs
        .get_opt(environment)
        .await
        .map_err(promote_io::from_kube)?;
    let env = env.ok_or_else(|| {
        RollbackCmdError::Refused(format!("Environment {ns}/{environment} not found"))
    })?;
    let api: Api<Promotion> = Api::namespaced(client.clone(), ns);
    let promotions = api
        .list(&ListParams::default())
        .await
        .map_err(promote_io::from_kube)?
        .items;
    Ok((env, promotions))
}

/// Runs `baton rollback`.
pub async fn run_rollback(args: &RollbackArgs) -> Result<(), RollbackCmdError> {
    let timeout = match &args.timeout {
        Some(t) => Some(
            baton_api::duration::parse(t)
                .map_err(|e| RollbackCmdError::Refused(format!("--timeout: {e}")))?,
        ),
        None => None,
    };
    let (client, ns) = connect(args.namespace.as_deref()).await?;
    let (env, promotions) = read(&client, &ns, &args.environment).await?;
    let refs: Vec<&Promotion> = promotions.iter().collect();
    let p = plan(args, &ns, &env, &refs).map_err(RollbackCmdError::Refused)?;
    if args.dry_run {
        promote_io::say(promote::to_yaml(&p)?.trim_end());
        return Ok(());
    }
    for (to, from) in p
        .spec
        .services
        .iter()
        .zip(p.spec.rollback.iter().flat_map(|r| r.from.iter()))
    {
        promote_io::say(&format!(
            "rolling back {} in {}: {} -> {}",
            to.name,
            args.environment,
            from.value(),
            to.value()
        ));
    }
    let api: Api<Promotion> = Api::namespaced(client.clone(), &ns);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let name = p.name_any();
    let uid = match api.create(&params, &p).await {
        Ok(created) => {
            promote_io::say(&format!("promotion.baton.dev/{name} created"));
            created.metadata.uid
        }
        Err(kube::Error::Api(s)) if s.is_already_exists() => {
            promote_io::say(&format!("promotion.baton.dev/{name} unchanged"));
            api.get(&name)
                .await
                .map_err(promote_io::from_kube)?
                .metadata
                .uid
        }
        Err(e) => return Err(promote_io::from_kube(e).into()),
    };
    if args.wait {
        let after = args.timeout.clone().unwrap_or_default();
        promote_io::wait(&api, &ns, &name, uid, timeout, &after).await?;
    }
    Ok(())
}

/// Runs `baton unblock`.
pub async fn run_unblock(args: &UnblockArgs) -> Result<(), RollbackCmdError> {
    if args.reason.trim().is_empty() {
        return Err(RollbackCmdError::Refused("--reason must say why".into()));
    }
    let (client, ns) = connect(args.namespace.as_deref()).await?;
    let (_, promotions) = read(&client, &ns, &args.environment).await?;
    let refs: Vec<&Promotion> = promotions.iter().collect();
    let hits = blocking(&args.environment, &args.service, &args.version, &refs);
    if hits.is_empty() {
        return Err(RollbackCmdError::Refused(format!(
            "{}:{} is not blocked in {} (blocked there: {})",
            args.service,
            args.version,
            args.environment,
            describe(&rollback::blocked(&args.environment, &refs))
        )));
    }
    let user = whoami(&client).await;
    let api: Api<Promotion> = Api::namespaced(client.clone(), &ns);
    for p in hits {
        let patch = serde_json::json!({ "metadata": { "annotations": {
            ANNOTATION_UNBLOCKED: args.reason.trim(),
            ANNOTATION_UNBLOCKED_BY: user,
        } } });
        api.patch(
            &p.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(promote_io::from_kube)?;
        promote_io::say(&format!(
            "unblocked {}:{} in {} (rollback promotion.baton.dev/{}; by {user}: {})",
            args.service,
            args.version,
            args.environment,
            p.name_any(),
            args.reason.trim()
        ));
    }
    Ok(())
}

/// The Kubernetes user running the command, as the API server sees it.
async fn whoami(client: &kube::Client) -> String {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = SelfSubjectReview::default();
    match api.create(&PostParams::default(), &review).await {
        Ok(r) => r
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_else(|| "unknown".into()),
        Err(_) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests;
