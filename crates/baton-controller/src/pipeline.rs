//! The Environment controller: each Environment's status (what runs there, whether
//! its pipeline definition is usable) and automatic promotion into it. Decisions are
//! in [`crate::machine::pipeline`]; this module reads and writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use baton_api::conditions::{self as c, Condition, ConditionStatus, set_condition};
use baton_api::environment::{BlockedVersion, EnvironmentStatus, ServiceRecord};
use baton_api::promotion::{PromotionSpec, ServiceVersion};
use baton_api::{Environment, Promotion};
use baton_github::{Provider, RepoRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::context::{ConnectError, Context};
use crate::error::Error;
use crate::events::{self, Happened};
use crate::machine::gates::UpstreamApp;
use crate::machine::pipeline::{self, Auto};
use crate::machine::plan;
use crate::machine::rollback;
use crate::metrics::RollbackResult;
use crate::observe::{self, upstream_app, upstream_chain};
use crate::record::MANAGER;

/// Condition type on Environments: what automatic promotion last did.
pub const TYPE_AUTO_PROMOTION: &str = "AutoPromotion";
/// Reasons of the `AutoPromotion` condition.
pub const REASON_PROMOTION_CREATED: &str = "PromotionCreated";
pub const REASON_UP_TO_DATE: &str = "UpToDate";
pub const REASON_WAITING_FOR_SOAK: &str = "WaitingForSoak";
/// Condition type on Environments: whether a rollback failed here.
pub const TYPE_ROLLBACK: &str = "Rollback";
pub const REASON_NO_FAILED_ROLLBACK: &str = "NoFailedRollback";

/// How often an Environment is looked at without an event (a missed watch event
/// costs at most this long).
const RESYNC: Duration = Duration::from_secs(300);

pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let now = Timestamp::now();
    let ns = env.namespace().unwrap_or_default();
    let name = env.name_any();
    let chain = upstream_chain(&ctx, &ns, &env).await?;
    let promotions = ctx.promotions(&ns).await?;
    let all: Vec<&Promotion> = promotions.iter().map(AsRef::as_ref).collect();

    let own = records(&ctx, &env, &name, &env, &all).await?;
    // Versions rolled back here: shown in status, and skipped by automatic promotion.
    let blocked = rollback::blocked(&name, &all);
    ctx.metrics.set_running(&ns, &name, &own);
    let mut status = env.status.clone().unwrap_or_default();
    let before = status.clone();
    let stamp = Time(now);
    let generation = env.metadata.generation;
    let problem = pipeline::cycle(&chain)
        .map(|cycle| {
            (
                c::REASON_UPSTREAM_CYCLE,
                format!("spec.upstream links form a cycle ({cycle}): promotions here are held; fix spec.upstream"),
            )
        })
        .or_else(|| {
            observe::policy(&env)
                .err()
                .map(|m| (c::REASON_INVALID_SPEC, m))
        });
    let ready = match &problem {
        Some((reason, message)) => condition(
            c::TYPE_READY,
            false,
            reason,
            message.clone(),
            generation,
            &stamp,
        ),
        None => condition(
            c::TYPE_READY,
            true,
            c::REASON_PIPELINE_VALID,
            chain_text(&chain),
            generation,
            &stamp,
        ),
    };
    set_condition(&mut status.conditions, ready);

    let mut requeue = Some(RESYNC);
    if env.spec.auto_promote && problem.is_none() {
        let (auto, next) = auto_promote(&ctx, &env, &chain, &own, &all, &blocked, now).await?;
        set_condition(
            &mut status.conditions,
            condition(
                TYPE_AUTO_PROMOTION,
                auto.0,
                auto.1,
                auto.2,
                generation,
                &stamp,
            ),
        );
        if let Some(next) = next {
            requeue = Some(next.min(RESYNC));
        }
    }
    if env.spec.rollback.automatic && problem.is_none() {
        roll_back_failed(&ctx, &env, &own, &all, now).await?;
    }
    let rollbacks = rollback_condition(&name, &all, generation, &stamp);
    let was = before
        .conditions
        .iter()
        .find(|x| x.r#type == TYPE_ROLLBACK)
        .map(|x| (x.status, x.message.clone()));
    if rollbacks.status == ConditionStatus::False
        && was != Some((rollbacks.status, rollbacks.message.clone()))
    {
        events::publish_about(
            &ctx,
            env.object_ref(&()),
            Happened::RollbackFailed {
                message: &rollbacks.message,
            },
        );
    }
    set_condition(&mut status.conditions, rollbacks);
    status.observed_generation = generation;
    status.summary = Some(summary(&own));
    status.blocked = blocked;
    ctx.metrics
        .set_rollbacks(&name, &rollback_counts(&name, &all));
    status.services = own;
    if status != before {
        write_status(&ctx, &env, &status).await?;
    }
    Ok(requeue.map_or_else(Requeue::await_change, Requeue::requeue))
}

/// Rollback Promotions of `environment` per service and result.
fn rollback_counts(
    environment: &str,
    all: &[&Promotion],
) -> std::collections::HashMap<(String, RollbackResult), i64> {
    let mut out = std::collections::HashMap::new();
    for p in all
        .iter()
        .filter(|p| p.spec.environment == environment && p.spec.rollback.is_some())
    {
        let result = match p.status.as_ref().and_then(|s| s.phase) {
            Some(baton_api::Phase::Synced) => RollbackResult::Synced,
            Some(baton_api::Phase::Failed) => RollbackResult::Failed,
            Some(baton_api::Phase::Rejected | baton_api::Phase::Superseded) => continue,
            _ => RollbackResult::InProgress,
        };
        for s in &p.spec.services {
            *out.entry((s.name.clone(), result.clone())).or_insert(0) += 1;
        }
    }
    out
}

/// Failed rollbacks are never rolled back: the `Rollback` condition says so (and a
/// Warning Event follows when it changes).
fn rollback_condition(
    environment: &str,
    all: &[&Promotion],
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let failed: Vec<String> = all
        .iter()
        .filter(|p| p.spec.environment == environment && p.spec.rollback.is_some())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase) == Some(baton_api::Phase::Failed))
        .map(|p| p.name_any())
        .collect();
    if failed.is_empty() {
        condition(
            TYPE_ROLLBACK,
            true,
            REASON_NO_FAILED_ROLLBACK,
            "no rollback has failed here".into(),
            generation,
            now,
        )
    } else {
        condition(
            TYPE_ROLLBACK,
            false,
            c::REASON_ROLLBACK_FAILED,
            format!(
                "rollback Promotion(s) {} failed; Baton does not roll back a rollback: fix forward or roll back by hand",
                failed.join(", ")
            ),
            generation,
            now,
        )
    }
}

/// Rolls back, at once, every Promotion here that failed after its merge (once each:
/// the rollback is named from its content, and the failed one's status links it).
async fn roll_back_failed(
    ctx: &Context,
    env: &Environment,
    own: &[ServiceRecord],
    all: &[&Promotion],
    now: Timestamp,
) -> Result<(), Error> {
    let name = env.name_any();
    for failed in all
        .iter()
        .filter(|p| p.spec.environment == name && rollback::needs_rollback(p))
    {
        // Only recent failures: turning automatic rollback on does not replay history.
        let recent = failed
            .status
            .as_ref()
            .and_then(|s| s.phase_times.failed.as_ref())
            .is_some_and(|t| now.duration_since(t.0).as_secs() < 3600);
        if !recent {
            continue;
        }
        match rollback::automatic(failed, own) {
            Ok(rb) => {
                create(ctx, env, &rb, "RollbackCreated").await?;
                link_rollback(ctx, failed, &rb.name_any()).await?;
                tracing::info!(environment = %name, failed = %failed.name_any(), rollback = %rb.name_any(), "automatic rollback created");
                events::publish_about(
                    ctx,
                    failed.object_ref(&()),
                    Happened::RollingBack {
                        rollback: &rb.name_any(),
                        summary: &plan::summary(&rb.spec),
                    },
                );
            }
            Err(why) => {
                tracing::warn!(environment = %name, failed = %failed.name_any(), reason = %why, "no automatic rollback possible");
                link_rollback(ctx, failed, "").await?;
                events::publish_about(
                    ctx,
                    failed.object_ref(&()),
                    Happened::RollbackFailed {
                        message: &format!("cannot roll back automatically: {why}"),
                    },
                );
            }
        }
    }
    Ok(())
}

/// Records on the failed Promotion which rollback answered it (empty: none could).
async fn link_rollback(ctx: &Context, failed: &Promotion, rollback: &str) -> Result<(), Error> {
    ctx.fence.check()?;
    let api: Api<Promotion> =
        Api::namespaced(ctx.client.clone(), &failed.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": "baton.dev/v1alpha1",
        "kind": "Promotion",
        "metadata": { "name": failed.name_any() },
        "status": { "rolledBackBy": rollback },
    });
    api.patch_status(
        &failed.name_any(),
        &PatchParams::apply("baton-rollback").force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// What runs in `env` per service (from its Synced Promotions and its Applications).
async fn records(
    ctx: &Context,
    watcher: &Environment,
    environment: &str,
    env: &Environment,
    all: &[&Promotion],
) -> Result<Vec<ServiceRecord>, Error> {
    let mut names: Vec<&str> = all
        .iter()
        .filter(|p| p.spec.environment == environment)
        .flat_map(|p| p.spec.services.iter().map(|s| s.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let services: Vec<ServiceVersion> = names
        .iter()
        .map(|n| ServiceVersion {
            name: (*n).to_owned(),
            version: None,
            digest: None,
            source: None,
        })
        .collect();
    let mut apps: BTreeMap<String, UpstreamApp> = BTreeMap::new();
    for app in plan::applications(&services, environment, &env.spec) {
        ctx.environment_waits_on(&app.namespace, &app.name, ObjectRef::from_obj(watcher));
        let found = ctx.application(&app.namespace, &app.name).await?;
        let status = found.as_ref().and_then(|a| a.status.as_ref());
        apps.insert(
            app.service.clone(),
            upstream_app(app.service, app.name, status),
        );
    }
    let previous = env
        .status
        .as_ref()
        .map(|s| s.services.as_slice())
        .unwrap_or_default();
    let limit = usize::try_from(env.spec.history_limit).unwrap_or(10);
    Ok(pipeline::records(environment, all, &apps, previous, limit))
}

/// `(ok, reason, message)` of the AutoPromotion condition, and when to look again.
type AutoOutcome = ((bool, &'static str, String), Option<Duration>);

async fn auto_promote(
    ctx: &Context,
    env: &Environment,
    chain: &[Environment],
    own: &[ServiceRecord],
    all: &[&Promotion],
    blocked: &[BlockedVersion],
    now: Timestamp,
) -> Result<AutoOutcome, Error> {
    let Some(up) = chain.get(1) else {
        let missing = env.spec.upstream.clone().unwrap_or_default();
        return Ok((
            (
                false,
                c::REASON_UPSTREAM_NOT_READY,
                format!("upstream Environment {missing:?} not found"),
            ),
            None,
        ));
    };
    let upstream = up.name_any();
    let soak = env
        .spec
        .soak_time
        .as_deref()
        .and_then(|t| baton_api::duration::parse(t).ok())
        .unwrap_or(Duration::ZERO);
    let up_records = records(ctx, env, &upstream, up, all).await?;
    let (ready, next) = pipeline::soaked(&up_records, soak, now);
    // A version rolled back here stays out until unblocked; newer ones still go.
    let mut candidates = pipeline::differing(&ready, own);
    candidates.retain(|r| {
        !blocked
            .iter()
            .any(|b| b.service == r.name && b.version == r.version)
    });
    let waiting = || match next {
        Some(left) => (
            true,
            REASON_WAITING_FOR_SOAK,
            format!(
                "a version in {upstream} is soaking: the next soak ends in {}",
                crate::machine::gates::human(left)
            ),
        ),
        None => (
            true,
            REASON_UP_TO_DATE,
            format!("every soaked version of {upstream} is here or on its way"),
        ),
    };
    if candidates.is_empty() {
        return Ok((waiting(), next));
    }
    let ns = env.namespace().unwrap_or_default();
    let gh = match ctx.github_for(&ns, env).await {
        Ok((gh, _)) => gh,
        Err(ConnectError::Blocked(b)) => {
            return Ok(((false, b.reason(), b.message().to_owned()), next));
        }
        Err(ConnectError::Transient(e)) => return Err(e),
    };
    let in_git = match in_git(&*gh, env, &candidates).await? {
        Ok(v) => v,
        Err(m) => return Ok(((false, c::REASON_MANIFEST_ERROR, m), next)),
    };
    let outcome = match pipeline::plan(env, &upstream, &candidates, &in_git, all) {
        Auto::Nothing => waiting(),
        Auto::Exists(name) => (
            true,
            REASON_PROMOTION_CREATED,
            format!("Promotion {name} carries what {upstream} runs"),
        ),
        Auto::Create(p) => {
            let name = p.name_any();
            create(ctx, env, &p, "AutoPromotionCreated").await?;
            (
                true,
                REASON_PROMOTION_CREATED,
                format!(
                    "created Promotion {name} carrying {} from {upstream}",
                    plan::summary(&p.spec)
                ),
            )
        }
    };
    Ok((outcome, next))
}

/// The downstream's current value of each candidate service, read from its GitOps
/// files at the head of the base branch (`Err`: a file or path the user must fix).
pub async fn in_git<G: Provider>(
    gh: &G,
    env: &Environment,
    candidates: &[&ServiceRecord],
) -> Result<Result<BTreeMap<String, Option<String>>, String>, Error> {
    let spec = PromotionSpec {
        environment: env.name_any(),
        source: None,
        services: candidates
            .iter()
            .map(|r| ServiceVersion {
                name: r.name.clone(),
                version: Some("probe".into()),
                digest: None,
                source: None,
            })
            .collect(),
        rollback: None,
    };
    let files = match plan::files(&spec, &spec.environment, &env.spec) {
        Ok(f) => f,
        Err(m) => return Ok(Err(m)),
    };
    let repo = RepoRef::parse(&env.spec.gitops.repository)?;
    let head = gh.branch_head(&repo, &env.spec.gitops.branch).await?;
    let mut out = BTreeMap::new();
    for f in files {
        let Some(file) = gh.read_file(&repo, &head.sha, &f.path).await? else {
            return Ok(Err(format!(
                "{}: file not found in {repo} at {}",
                f.path, env.spec.gitops.branch
            )));
        };
        for (service, edit) in &f.edits {
            match baton_manifest::current_value(&f.path, &file.content, edit) {
                Ok(v) => out.insert(service.clone(), v),
                Err(e) => return Ok(Err(e.to_string())),
            };
        }
    }
    Ok(Ok(out))
}

/// Creates the automatic Promotion; one that exists already (another look, another
/// replica) is fine.
async fn create(
    ctx: &Context,
    env: &Environment,
    p: &Promotion,
    reason: &'static str,
) -> Result<(), Error> {
    ctx.fence.check()?;
    let ns = env.namespace().unwrap_or_default();
    let api: Api<Promotion> = Api::namespaced(ctx.client.clone(), &ns);
    match api.create(&PostParams::default(), p).await {
        Ok(_) => {
            tracing::info!(environment = %env.name_any(), namespace = %ns, promotion = %p.name_any(), services = %plan::summary(&p.spec), reason, "promotion created");
            events::publish_about(
                ctx,
                env.object_ref(&()),
                Happened::PromotionCreated {
                    reason,
                    promotion: &p.name_any(),
                    summary: &plan::summary(&p.spec),
                },
            );
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn write_status(
    ctx: &Context,
    env: &Environment,
    status: &EnvironmentStatus,
) -> Result<(), Error> {
    ctx.fence.check()?;
    let api: Api<Environment> =
        Api::namespaced(ctx.client.clone(), &env.namespace().unwrap_or_default());
    // A replace preconditioned on the version this status was computed from (it keeps
    // history from the status before): a stale cache gets a 409 and a fresh try. Not
    // an apply: with a record per service, this object is large, and an apply of it
    // every second of a release would be the API server's biggest cost.
    let mut body = Environment::new(&env.name_any(), env.spec.clone());
    body.metadata.namespace = env.metadata.namespace.clone();
    body.metadata.resource_version = env.metadata.resource_version.clone();
    body.status = Some(status.clone());
    let params = kube::api::PostParams {
        field_manager: Some(MANAGER.to_owned()),
        ..Default::default()
    };
    api.replace_status(&env.name_any(), &params, &body).await?;
    Ok(())
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        r#type: type_.to_owned(),
        status: if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// `dev -> staging -> production` (upstream first).
fn chain_text(chain: &[Environment]) -> String {
    let names: Vec<String> = chain.iter().rev().map(ResourceExt::name_any).collect();
    match names.as_slice() {
        [one] => format!("{one} has no upstream"),
        _ => format!("pipeline {}", names.join(" -> ")),
    }
}

fn summary(records: &[ServiceRecord]) -> String {
    let parts: Vec<String> = records
        .iter()
        .map(|r| format!("{}:{}", r.name, plan::short_value(&r.version)))
        .collect();
    baton_github::naming::truncate(&parts.join(", "), 200)
}

/// Failed reconciles of an Environment are retried after a while (their Promotions
/// carry on regardless).
pub fn error_policy(env: Arc<Environment>, err: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(environment = %env.name_any(), namespace = %env.namespace().unwrap_or_default(), category = err.category(), error = %err, "environment reconcile failed");
    Requeue::requeue(Duration::from_secs(15))
}
