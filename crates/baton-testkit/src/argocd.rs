//! Playing Argo CD: Applications and their status written the way Argo CD's
//! application controller writes them (an ordinary patch: the CRD has no status
//! subresource).

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

/// `status` of an Application after a finished sync of `revision` from `repo_url`.
pub fn synced_status(repo_url: &str, revision: &str, health: &str, at: &str) -> Value {
    let source = json!({ "repoURL": repo_url, "path": "syrf", "targetRevision": "main" });
    json!({
        "sync": { "status": "Synced", "revision": revision,
                  "comparedTo": { "source": source, "destination": { "server": "https://kubernetes.default.svc", "namespace": "syrf" } } },
        "health": { "status": health },
        "reconciledAt": at,
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": at,
            "finishedAt": at,
            "operation": { "sync": { "revision": revision }, "initiatedBy": { "automated": true } },
            "syncResult": { "revision": revision, "source": source }
        }
    })
}

/// Writes the status of a finished sync of `revision` on existing Application `name`
/// whose health stays `health`: one patch and no read, as Argo CD's controller writes
/// from its cache. The health's transition time is left as it was (a merge patch keeps
/// the fields it does not name), as Argo CD leaves it when the health does not change.
pub async fn resync(
    client: &kube::Client,
    ns: &str,
    name: &str,
    repo_url: &str,
    revision: &str,
    health: &str,
) -> Result<(), kube::Error> {
    let apps: Api<baton_api::Application> = Api::namespaced(client.clone(), ns);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    write_status(&apps, name, synced_status(repo_url, revision, health, &now)).await
}

/// Writes `status` as Argo CD's controller does: an ordinary merge patch.
async fn write_status(
    apps: &Api<baton_api::Application>,
    name: &str,
    status: Value,
) -> Result<(), kube::Error> {
    apps.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Creates Application `name` (if needed) deploying from `repo_url`, then writes the
/// status of a finished sync of `revision` with `health`.
pub async fn sync(
    client: &kube::Client,
    ns: &str,
    name: &str,
    repo_url: &str,
    revision: &str,
    health: &str,
) -> Result<(), kube::Error> {
    let apps: Api<baton_api::Application> = Api::namespaced(client.clone(), ns);
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": { "name": name },
        "spec": { "project": "default", "destination": { "server": "https://kubernetes.default.svc", "namespace": "syrf" },
                  "source": { "repoURL": repo_url, "path": "syrf", "targetRevision": "main" } }
    });
    let before = apps.get_opt(name).await?;
    if before.is_none() {
        apps.patch(
            name,
            &PatchParams::apply("argocd-application-controller"),
            &Patch::Apply(&app),
        )
        .await?;
    }
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut status = synced_status(repo_url, revision, health, &now);
    // Like Argo CD's controller: the health transition time moves only when the health
    // status changes.
    let old = before
        .and_then(|a| a.status)
        .and_then(|s| s.health)
        .filter(|h| h.status == health)
        .and_then(|h| h.last_transition_time);
    status["health"]["lastTransitionTime"] = json!(old.unwrap_or(now));
    write_status(&apps, name, status).await
}
