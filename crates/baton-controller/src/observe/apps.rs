//! A Merged promotion's Applications: each read, judged against what its service needs
//! (the merge commit, or the base commit for a service the PR did not change), with why
//! it is Degraded when Argo CD does not say.

use super::*;

/// Merged: every Application, against what its service needs.
pub(super) async fn merged<G: Provider>(
    p: &Promotion,
    ctx: &Context,
    gh: &G,
    env: &Environment,
    status: &PromotionStatus,
    now: Timestamp,
) -> Result<Seen, Error> {
    let merge = status
        .pull_request
        .as_ref()
        .and_then(|pr| pr.merge_commit.clone())
        .unwrap_or_default();
    let base = status.base_commit.clone().unwrap_or_default();
    let repo = RepoRef::parse(&env.spec.gitops.repository)?;
    let mut apps = Vec::new();
    for app in plan::applications(&p.spec.services, &p.spec.environment, &env.spec) {
        ctx.watch_application(&app.namespace, &app.name, ObjectRef::from_obj(p));
        let need = if status.unchanged_services.contains(&app.service) && !base.is_empty() {
            Need::Unchanged { commit: &base }
        } else {
            Need::Changed { merge: &merge }
        };
        let seen = observe_app(ctx, gh, &repo, &app, need, &base, &status.applications, now);
        apps.push(seen.await?);
    }
    Ok(Seen::Applications(apps))
}

#[allow(clippy::too_many_arguments)]
async fn observe_app<G: Provider>(
    ctx: &Context,
    gh: &G,
    repo: &RepoRef,
    app: &AppRef,
    need: Need<'_>,
    base: &str,
    previous: &[ApplicationObservation],
    now: Timestamp,
) -> Result<AppSeen, Error> {
    let found = ctx.application(&app.namespace, &app.name).await?;
    let before = previous.iter().find(|o| o.service == app.service);
    let mut record = ApplicationObservation {
        service: app.service.clone(),
        namespace: app.namespace.clone(),
        name: app.name.clone(),
        ..ApplicationObservation::default()
    };
    let view = |state| AppView {
        service: app.service.clone(),
        state,
    };
    let Some(found) = found else {
        record.observed_at = stamp(before, &record, now);
        return Ok(AppSeen {
            view: view(AppState::Missing),
            record,
        });
    };
    let status = found.status.clone().unwrap_or_default();
    let target = need.commit();
    let mut state = if target.is_empty() {
        AppState::NotAtTarget {
            detail: "merge commit unknown".into(),
        }
    } else {
        let reaches = reaches(gh, repo, target, base, &found.spec, &status).await?;
        health::interpret(
            Some(&found.spec),
            Some(&status),
            &repo.path(),
            need,
            &reaches,
        )
    };
    if let AppState::Degraded { message } = &mut state
        && message.is_empty()
    {
        *message = degraded_cause(ctx, &status).await;
    }
    record.sync_status = status.sync.as_ref().map(|s| s.status.clone());
    record.health_status = status.health.as_ref().map(|h| h.status.clone());
    record.revision = status.synced_revisions().first().map(|r| (*r).to_owned());
    record.generation = found.metadata.generation;
    record.at_target = matches!(
        state,
        AppState::Ready { .. } | AppState::Degraded { .. } | AppState::Progressing { .. }
    );
    if matches!(state, AppState::Degraded { .. }) {
        let since = before.and_then(|o| o.degraded_since.clone());
        record.degraded_since = Some(since.unwrap_or(Time(now)));
    }
    record.observed_at = stamp(before, &record, now);
    Ok(AppSeen {
        view: view(state),
        record,
    })
}

/// The observation time moves only when something else changed, so an unchanged
/// Application does not cost a status write on every look.
fn stamp(
    before: Option<&ApplicationObservation>,
    record: &ApplicationObservation,
    now: Timestamp,
) -> Option<Time> {
    match before {
        Some(b)
            if ApplicationObservation {
                observed_at: None,
                ..b.clone()
            } == *record =>
        {
            b.observed_at.clone()
        }
        _ => Some(Time(now)),
    }
}

/// Why an Application is Degraded when Argo CD does not say (v3 leaves
/// `status.health.message` empty): the `Progressing` or `Available` condition of a
/// Deployment it manages, e.g. `ReplicaSet "api-7758d486d8" has timed out progressing.`
async fn degraded_cause(ctx: &Context, status: &ApplicationStatus) -> String {
    for r in status
        .resources
        .iter()
        .filter(|r| r.kind == "Deployment" && r.group == "apps")
    {
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &r.namespace);
        let Ok(Some(d)) = api.get_opt(&r.name).await else {
            continue;
        };
        let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
        // Progressing says why (a timed-out ReplicaSet); Available only that it is not.
        let failed = |kind: &str| {
            conditions
                .iter()
                .find(|c| c.status == "False" && c.type_ == kind)
        };
        if let Some(c) = failed("Progressing").or_else(|| failed("Available")) {
            let message = c.message.clone().unwrap_or_default();
            return format!("Deployment {}: {message}", r.name);
        }
    }
    String::new()
}

/// Ancestry answers for every revision the Application reports. The PR's `base`
/// commit never contains what was merged on top of it: answered without a request
/// (Argo CD often still reports it until it syncs the merge).
async fn reaches<G: Provider>(
    gh: &G,
    repo: &RepoRef,
    target: &str,
    base: &str,
    spec: &ApplicationSpec,
    status: &ApplicationStatus,
) -> Result<Reaches, Error> {
    let gitops = repo.path();
    let synced = status.synced_revisions();
    let mut revisions: Vec<String> = health::gitops_revisions(Some(spec), &synced, &gitops)
        .into_iter()
        .map(str::to_owned)
        .collect();
    // The same revisions the health rules judge: ancestry is asked only for those.
    revisions.extend(health::gitops_operation_revisions(
        Some(spec),
        status,
        &gitops,
    ));
    let mut out = Reaches::new();
    for rev in revisions {
        // Only full SHAs are compared; a chart version never reaches the compare API.
        if rev == target || !health::is_sha(&rev) || out.contains_key(&rev) {
            continue;
        }
        if rev == base {
            out.insert(rev, false);
            continue;
        }
        let answer = match gh.contains(repo, target, &rev).await {
            Ok(a) => a,
            Err(e) if e.status() == Some(404) => false,
            Err(e) => return Err(e.into()),
        };
        out.insert(rev, answer);
    }
    Ok(out)
}
