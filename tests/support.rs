//! Helpers shared by Baton's integration tests.

use std::path::Path;

use baton_api::Application;
use baton_testkit::ControlPlane;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Installs Baton's CRDs (from `crds/`) on `cp`.
pub fn install_baton_crds(cp: &ControlPlane) {
    cp.apply_crds(&baton_testkit::repo_root().join("crds"))
        .expect("Baton CRDs install with server-side apply");
}

/// The status Argo CD writes after syncing `revision` successfully.
pub fn argocd_synced_status(revision: &str, health: &str) -> serde_json::Value {
    json!({
        "sync": { "status": "Synced", "revision": revision,
                  "comparedTo": {
                      "source": { "repoURL": "https://github.com/camaradesuk/cluster-gitops", "path": "syrf/api", "targetRevision": "main" },
                      "destination": { "server": "https://kubernetes.default.svc", "namespace": "syrf-production" } } },
        "health": { "status": health },
        "reconciledAt": "2026-11-23T10:00:07Z",
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": "2026-11-23T10:00:01Z",
            "finishedAt": "2026-11-23T10:00:05Z",
            "operation": { "sync": { "revision": revision }, "initiatedBy": { "automated": true } },
            "syncResult": { "revision": revision, "source": { "repoURL": "https://github.com/camaradesuk/cluster-gitops", "targetRevision": "main" } }
        }
    })
}

/// Installs the Application CRD at `crd`, creates an Application, writes its status
/// with an ordinary merge patch (as Argo CD does: the CRD has no status subresource)
/// and checks that Baton's `Application` type reads it back.
pub async fn application_status_round_trip(cp: &ControlPlane, crd: &Path) {
    cp.apply_crds(crd)
        .expect("Application CRD installs server-side");
    let client = cp.client().await.expect("client");
    let ns = cp.namespace(&client, "argocd").await.expect("namespace");
    let apps: Api<Application> = Api::namespaced(client, &ns);
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": { "name": "api-production" },
        "spec": {
            "project": "default",
            "destination": { "server": "https://kubernetes.default.svc", "namespace": "syrf-production" },
            "source": { "repoURL": "https://github.com/camaradesuk/cluster-gitops", "path": "syrf/api", "targetRevision": "main" }
        }
    });
    let pp = PatchParams::apply("baton-tests");
    apps.patch("api-production", &pp, &Patch::Apply(&app))
        .await
        .expect("Application created");
    let revision = "a3f1c2d4e5f60718293a4b5c6d7e8f9012345678";
    apps.patch(
        "api-production",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": argocd_synced_status(revision, "Healthy") })),
    )
    .await
    .expect("status written with a normal patch");

    let read = apps
        .get("api-production")
        .await
        .expect("Application reads back");
    let status = read.status.expect("status present");
    assert_eq!(
        status.sync.as_ref().map(|s| s.status.as_str()),
        Some("Synced")
    );
    assert_eq!(
        status.health.as_ref().map(|h| h.status.as_str()),
        Some("Healthy")
    );
    assert_eq!(status.synced_revisions(), vec![revision]);
    let op = status.operation_state.expect("operationState");
    assert_eq!(op.phase, "Succeeded");
    assert_eq!(op.finished_at.as_deref(), Some("2026-11-23T10:00:05Z"));
    assert_eq!(
        op.sync_result.and_then(|r| r.revision).as_deref(),
        Some(revision)
    );
    let source = read.spec.source.expect("spec.source");
    assert_eq!(source.target_revision.as_deref(), Some("main"));
}
