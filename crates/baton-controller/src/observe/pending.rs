//! The gates of a Pending promotion, in order, and the PR notes they add. Reads only;
//! the rules are in [`crate::machine`].

use super::*;

/// Source repositories, an upstream cycle, a newer Promotion replacing this one, the
/// queue, the windows and the upstream gate (with its soak time), in that order.
pub(super) async fn pending_gates(
    p: &Promotion,
    ctx: &Context,
    ns: &str,
    env: &Environment,
    pol: &Policy,
    now: Timestamp,
    o: &mut Observation,
) -> Result<Option<Seen>, Error> {
    let blocked = |b| Ok(Some(Seen::Blocked(b)));
    if let Some(src) = p
        .spec
        .sources()
        .into_iter()
        .find(|s| !gates::source_allowed(&env.spec.source_repositories, &s.repository))
    {
        return blocked(Blocker::SourceNotAllowed(format!(
            "source repository {} is not in Environment {:?} spec.sourceRepositories ({}): Baton will not post statuses or releases there; add it to the list or fix the Promotion's source",
            src.repository,
            p.spec.environment,
            env.spec.source_repositories.join(", ")
        )));
    }
    let chain = upstream_chain(ctx, ns, env).await?;
    if let Some(cycle) = pipeline::cycle(&chain) {
        return blocked(Blocker::UpstreamCycle(format!(
            "the Environments' spec.upstream links form a cycle ({cycle}): no promotion to {:?} can be gated; fix spec.upstream",
            p.spec.environment
        )));
    }
    let promotions = ctx.promotions(ns).await?;
    let all: Vec<&Promotion> = promotions.iter().map(AsRef::as_ref).collect();
    if let Some(successor) = gates::superseded_by(p, &all, pol.queue) {
        return Ok(Some(Seen::Superseded {
            successor,
            pr_open: false,
        }));
    }
    if let Some(b) = gates::queue(p, &all, pol.queue) {
        return blocked(b);
    }
    let records = env
        .status
        .as_ref()
        .map(|s| s.services.as_slice())
        .unwrap_or_default();
    if let Some(b) = rollback::check_targets(p, records) {
        return blocked(b);
    }
    let versions_blocked = rollback::blocked(&p.spec.environment, &all);
    if let Some(b) = rollback::gate(p, &versions_blocked) {
        return blocked(b);
    }
    if let Some(rb) = &p.spec.rollback {
        // A rollback is what you reach for when production breaks: no gate holds it.
        o.notes.push(rollback_note(p, rb));
        return Ok(None);
    }
    match windows::check(p, &env.spec.windows, now) {
        windows::Outcome::Open => {}
        windows::Outcome::Closed(b) => return blocked(b),
        windows::Outcome::Overridden(ov) => {
            o.notes.push(windows::note(&ov));
            o.window_override = Some(ov);
        }
    }
    o.notes.extend(upstream_note(p, &all));
    let Some(upstream) = env.spec.upstream.as_deref() else {
        return Ok(None);
    };
    let Some(up_env) = chain.get(1).filter(|e| e.name_any() == upstream) else {
        return blocked(Blocker::UpstreamNotReady(format!(
            "upstream Environment {upstream:?} not found in namespace {ns}"
        )));
    };
    let mut apps = Vec::new();
    for app in plan::applications(&p.spec.services, upstream, &up_env.spec) {
        ctx.watch_application(&app.namespace, &app.name, ObjectRef::from_obj(p));
        let found = ctx.application(&app.namespace, &app.name).await?;
        let status = found.as_ref().and_then(|a| a.status.as_ref());
        apps.push(upstream_app(app.service, app.name, status));
    }
    Ok(gates::upstream(p, upstream, &all, &apps, pol.soak, now).map(Seen::Blocked))
}

/// An upstream Application as the gates read it: Synced and Healthy now, and since when
/// Healthy (Argo CD records each health transition).
pub fn upstream_app(
    service: String,
    name: String,
    status: Option<&ApplicationStatus>,
) -> UpstreamApp {
    let healthy = status.is_some_and(|s| {
        s.sync.as_ref().is_some_and(|x| x.status == "Synced")
            && s.health.as_ref().is_some_and(|h| h.status == "Healthy")
    });
    let healthy_since = status
        .and_then(|s| s.health.as_ref())
        .filter(|_| healthy)
        .and_then(|h| h.last_transition_time.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok());
    UpstreamApp {
        service,
        name,
        healthy,
        healthy_since,
    }
}

/// `env`, its upstream, that one's upstream... as far as they exist, stopping at the
/// first repeat (so a cycle shows as a repeated name).
pub async fn upstream_chain(
    ctx: &Context,
    ns: &str,
    env: &Environment,
) -> Result<Vec<Environment>, Error> {
    let mut chain = vec![env.clone()];
    while let Some(next) = chain.last().and_then(|e| e.spec.upstream.clone()) {
        if chain.iter().any(|e| e.name_any() == next) || chain.len() > 64 {
            chain.push(Environment::new(&next, env.spec.clone()));
            break;
        }
        match ctx.environment(ns, &next).await? {
            Some(e) => chain.push((*e).clone()),
            None => break,
        }
    }
    Ok(chain)
}

/// The PR paragraph of a rollback: what, why, before and after.
pub(super) fn rollback_note(p: &Promotion, rb: &baton_api::promotion::RollbackSpec) -> String {
    let of = rb
        .of
        .as_deref()
        .map(|o| format!(" of Promotion `{o}`"))
        .unwrap_or_default();
    let lines: Vec<String> = p
        .spec
        .services
        .iter()
        .map(|s| {
            let before = rb
                .from
                .iter()
                .find(|f| f.name == s.name)
                .map(|f| f.value().to_owned())
                .unwrap_or_else(|| "(unknown)".into());
            format!("- {}: `{before}` -> `{}`", s.name, s.value())
        })
        .collect();
    format!(
        "**Rollback**{of} in **{}**: {}\n\n{}\n\nAs a rollback it skips the upstream gate, soak time and windows; the versions it removes stay blocked in {} until unblocked (`baton unblock`).",
        p.spec.environment,
        rb.reason,
        lines.join("\n"),
        p.spec.environment
    )
}

/// For an automatic Promotion: where it came from, with links to the upstream PRs.
pub(super) fn upstream_note(p: &Promotion, all: &[&Promotion]) -> Option<String> {
    let from = gates::promoted_from(p)?;
    let names = p
        .annotations()
        .get(baton_api::ANNOTATION_UPSTREAM_PROMOTIONS)?;
    let ns = p.namespace().unwrap_or_default();
    let links: Vec<String> = names
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| {
            let pr = all
                .iter()
                .find(|q| q.name_any() == n)
                .and_then(|q| q.status.as_ref())
                .and_then(|s| s.pull_request.as_ref())
                .filter(|pr| pr.number > 0)
                .map(|pr| format!(" ([#{}]({}))", pr.number, pr.url))
                .unwrap_or_default();
            format!("`{ns}/{n}`{pr}")
        })
        .collect();
    Some(format!(
        "**Promoted automatically** from **{from}**: these versions are Synced and Healthy there (Promotion {}).",
        links.join(", ")
    ))
}
