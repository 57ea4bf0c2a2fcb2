//! Baton end to end with the real Argo CD: the operator (`baton run`, a process), the
//! fake GitHub behind the contract gate, backed by real Git, and real Argo CD
//! (application-controller + repo-server, with kube-controller-manager) syncing the
//! GitOps repository through its `file://` URL into the real control plane. Nothing here
//! writes an Application's status: Synced, Healthy, Degraded and failed operations are
//! all Argo CD's own.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use baton_api::Phase;
use baton_integration::{Operator, World, ready};
use baton_testkit::argocd_server::{self, ArgoCd};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// Long enough for Argo CD's polling (5 s) and a sync, with room on a busy machine.
const T: Duration = Duration::from_secs(120);

/// A World whose Environment points at Applications in Argo CD's namespace, named
/// `{service}-{environment}`, deploying `apps/{service}` of the GitOps repository.
struct Rig {
    w: World,
    argocd: &'static ArgoCd,
    /// The Environment (unique per test, so Application names are too).
    env: String,
    services: Vec<String>,
}

fn applications(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    Api::namespaced_with(
        client.clone(),
        argocd_server::NAMESPACE,
        &ApiResource::from_gvk(&gvk),
    )
}

fn configmap(service: &str, version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {service}\n  labels:\n    version: {version}\ndata:\n  version: {version}\n"
    )
}

/// One replica that never becomes available (the control plane has no nodes), which
/// Kubernetes declares failed after 10 s; `version` goes in the pod template.
fn deployment(service: &str, version: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {service}
spec:
  replicas: 1
  progressDeadlineSeconds: 10
  selector:
    matchLabels: {{app: {service}}}
  template:
    metadata:
      labels: {{app: {service}}}
      annotations:
        version: {version}
    spec:
      containers:
      - name: {service}
        image: registry.invalid/baton/{service}:never
"
    )
}

impl Rig {
    /// `files(service)`: the files of `apps/{service}/`; `target`: the Environment's
    /// `gitops.target`; `sync_policy`: merged into each Application's `syncPolicy`.
    async fn new(
        test: &str,
        services: &[&str],
        files: impl Fn(&str) -> Vec<(String, String)>,
        target: Value,
        sync_policy: Value,
    ) -> Rig {
        let argocd = argocd_server::shared().await.unwrap_or_else(|e| {
            panic!("real Argo CD must start (build it with `make argocd controlplane`): {e}")
        });
        let w = World::without_operator(test, services).await;
        let env = w.ns.clone();
        let mut all = Vec::new();
        for s in services {
            for (name, content) in files(s) {
                all.push((format!("apps/{s}/{name}"), content));
            }
        }
        let refs: Vec<(&str, &str)> = all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let head = w
            .fake
            .push(&w.gitops, "main", &refs, "the services' manifests");
        w.environment(
            &env,
            json!({
                "gitops": { "target": target },
                "applications": { "namespace": argocd_server::NAMESPACE },
                "notifications": { "commitStatus": { "context": "argocd/deploy-{environment}" } },
                "syncTimeout": "5m",
                "degradedGracePeriod": "5s"
            }),
        )
        .await;
        let rig = Rig {
            w,
            argocd,
            env,
            services: services.iter().map(|s| (*s).to_owned()).collect(),
        };
        let url = rig
            .w
            .fake
            .git_url(&rig.w.gitops)
            .expect("GitOps repository");
        for s in services {
            rig.create_application(s, &url, sync_policy.clone()).await;
        }
        for s in services {
            rig.wait_app(s, "Synced at the manifests' commit", |st| {
                str_at(st, "/sync/status") == "Synced" && str_at(st, "/sync/revision") == head
            })
            .await;
        }
        rig
    }

    fn app_name(&self, service: &str) -> String {
        format!("{service}-{}", self.env)
    }

    async fn create_application(&self, service: &str, url: &str, sync_policy: Value) {
        let mut policy = json!({ "automated": { "prune": true, "selfHeal": true } });
        if let Value::Object(extra) = sync_policy {
            for (k, v) in extra {
                policy[k] = v;
            }
        }
        let app: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": { "name": self.app_name(service), "namespace": argocd_server::NAMESPACE },
            "spec": {
                "project": "default",
                "source": { "repoURL": url, "path": format!("apps/{service}"), "targetRevision": "main" },
                "destination": { "server": "https://kubernetes.default.svc", "namespace": self.w.ns },
                "syncPolicy": policy
            }
        }))
        .expect("Application object");
        applications(&self.w.client)
            .patch(
                &self.app_name(service),
                &PatchParams::apply("baton-tests"),
                &Patch::Apply(&app),
            )
            .await
            .expect("Application created");
    }

    fn start_operator(&mut self) {
        self.w.operator = Some(Operator::start(self.w.cp, &self.w.ns));
    }

    /// The Application's `status`, as Argo CD wrote it.
    async fn app_status(&self, service: &str) -> Value {
        applications(&self.w.client)
            .get(&self.app_name(service))
            .await
            .expect("Application reads")
            .data
            .get("status")
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn wait_app(&self, service: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + T;
        loop {
            let status = self.app_status(service).await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "Application {} not {what} after {T:?}; status:\n{}\n{}",
                self.app_name(service),
                serde_json::to_string_pretty(&status).unwrap_or_default(),
                self.argocd.diagnostics()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The PR number once `name` is PROpened.
    async fn pr_number(&self, name: &str) -> u64 {
        let p = self.w.wait_phase(name, Phase::PrOpened, T).await;
        p.status.and_then(|s| s.pull_request).expect("PR").number
    }

    /// Deletes the Applications (their resources stay) so Argo CD stops polling.
    async fn finish(self) {
        for s in &self.services {
            let _ = applications(&self.w.client)
                .delete(&self.app_name(s), &DeleteParams::default())
                .await;
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn configmap_target() -> Value {
    json!({ "file": "apps/{service}/configmap.yaml", "yamlPath": "data.version" })
}

fn configmap_files(service: &str) -> Vec<(String, String)> {
    vec![(
        "configmap.yaml".to_owned(),
        configmap(service, &format!("{service}-v1.0.0")),
    )]
}

async fn deployed_version(w: &World, service: &str) -> Option<String> {
    let cms: Api<ConfigMap> = Api::namespaced(w.client.clone(), &w.ns);
    cms.get(service)
        .await
        .ok()
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("version").cloned())
}

#[tokio::test]
async fn one_service_reaches_synced_with_argo_cds_own_status_and_posts_success() {
    let started = Instant::now();
    let mut r = Rig::new(
        "rab-one",
        &["api"],
        configmap_files,
        configmap_target(),
        json!({}),
    )
    .await;
    r.start_operator();
    let ready_at = started.elapsed();
    let applied = Instant::now();
    r.w.promote("api-to-prod", &r.env, &[("api", "api-v2.0.0")])
        .await;
    let number = r.pr_number("api-to-prod").await;
    let merge = r.w.fake.merge(&r.w.gitops, number).expect("PR merges");
    let parents = r.w.fake.parents(&r.w.gitops, &merge);
    assert_eq!(parents.len(), 2, "a real merge commit: {parents:?}");
    let merged = Instant::now();
    let p = r.w.wait_phase("api-to-prod", Phase::Synced, T).await;
    let synced_after_merge = merged.elapsed();

    // What Baton judged is what Argo CD wrote.
    let status = r.app_status("api").await;
    assert_eq!(str_at(&status, "/sync/status"), "Synced");
    assert_eq!(str_at(&status, "/health/status"), "Healthy");
    assert_eq!(str_at(&status, "/sync/revision"), merge);
    assert_eq!(
        str_at(&status, "/operationState/syncResult/revision"),
        merge
    );
    let seen = &p.status.as_ref().unwrap().applications;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].revision.as_deref(), Some(merge.as_str()));
    assert!(seen[0].at_target);
    assert_eq!(
        deployed_version(&r.w, "api").await.as_deref(),
        Some("api-v2.0.0")
    );
    let statuses = r.w.statuses();
    assert!(
        statuses
            .iter()
            .any(|s| s.state == "success" && s.context == format!("argocd/deploy-{}", r.env)),
        "{statuses:?}"
    );
    eprintln!(
        "real Argo CD + Baton: world ready in {ready_at:?}; apply -> Synced {:?}; merge -> Synced {synced_after_merge:?}",
        applied.elapsed()
    );
    r.finish().await;
}

#[tokio::test]
async fn three_services_in_one_pr_all_synced_by_argo_cd() {
    let services = ["api", "web", "worker"];
    let mut r = Rig::new(
        "rab-three",
        &services,
        configmap_files,
        configmap_target(),
        json!({}),
    )
    .await;
    r.start_operator();
    r.w.promote(
        "three",
        &r.env,
        &[
            ("api", "api-v2.0.0"),
            ("web", "web-v2.0.0"),
            ("worker", "worker-v2.0.0"),
        ],
    )
    .await;
    let number = r.pr_number("three").await;
    assert_eq!(r.w.pulls().len(), 1, "one PR");
    let merge = r.w.fake.merge(&r.w.gitops, number).expect("PR merges");
    let p = r.w.wait_phase("three", Phase::Synced, T).await;
    let seen = &p.status.as_ref().unwrap().applications;
    assert_eq!(seen.len(), 3, "{seen:?}");
    for s in services {
        let status = r.app_status(s).await;
        assert_eq!(str_at(&status, "/sync/revision"), merge, "{s}");
        assert_eq!(str_at(&status, "/health/status"), "Healthy", "{s}");
        assert_eq!(deployed_version(&r.w, s).await, Some(format!("{s}-v2.0.0")));
    }
    assert!(r.w.statuses().iter().any(|s| s.state == "success"));
    r.finish().await;
}

#[tokio::test]
async fn a_commit_after_the_merge_still_counts_as_deployed() {
    let mut r = Rig::new(
        "rab-later",
        &["api"],
        configmap_files,
        configmap_target(),
        json!({}),
    )
    .await;
    r.start_operator();
    r.w.promote("api-later", &r.env, &[("api", "api-v2.0.0")])
        .await;
    let number = r.pr_number("api-later").await;
    // Merged, and someone pushes to main right away: Argo CD (polling every few
    // seconds) syncs the later commit, never the merge commit itself.
    let merge = r.w.fake.merge(&r.w.gitops, number).expect("PR merges");
    let later = r.w.fake.push(
        &r.w.gitops,
        "main",
        &[("apps/api/notes.yaml", &configmap("notes", "n-1"))],
        "an unrelated change",
    );
    assert_eq!(r.w.fake.parents(&r.w.gitops, &later), vec![merge.clone()]);
    let p = r.w.wait_phase("api-later", Phase::Synced, T).await;
    let seen = &p.status.as_ref().unwrap().applications;
    assert_eq!(
        seen[0].revision.as_deref(),
        Some(later.as_str()),
        "Argo CD synced the descendant: {seen:?}"
    );
    assert!(seen[0].at_target);
    assert_eq!(str_at(&r.app_status("api").await, "/sync/revision"), later);
    assert_eq!(
        deployed_version(&r.w, "api").await.as_deref(),
        Some("api-v2.0.0")
    );
    assert!(r.w.statuses().iter().any(|s| s.state == "success"));
    r.finish().await;
}

#[tokio::test]
async fn a_deployment_that_never_becomes_available_fails_with_its_progressing_message() {
    let started = Instant::now();
    let mut r = Rig::new(
        "rab-degraded",
        &["web"],
        |s| {
            vec![(
                "deployment.yaml".to_owned(),
                deployment(s, &format!("{s}-v1.0.0")),
            )]
        },
        json!({ "file": "apps/{service}/deployment.yaml", "yamlPath": "spec.template.metadata.annotations.version" }),
        json!({}),
    )
    .await;
    r.start_operator();
    r.w.promote("web-bad", &r.env, &[("web", "web-v2.0.0")])
        .await;
    let number = r.pr_number("web-bad").await;
    let merge = r.w.fake.merge(&r.w.gitops, number).expect("PR merges");
    let merged = Instant::now();
    let p = r.w.wait_phase("web-bad", Phase::Failed, T).await;
    let failed_after = merged.elapsed();
    let status = r.app_status("web").await;
    assert_eq!(str_at(&status, "/sync/revision"), merge);
    assert_eq!(str_at(&status, "/health/status"), "Degraded");
    let cond = ready(&p);
    let deployments: Api<Deployment> = Api::namespaced(r.w.client.clone(), &r.w.ns);
    let conditions: Vec<String> = deployments
        .get("web")
        .await
        .expect("Deployment")
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .map(|c| format!("{} {} {}", c.type_, c.status, c.message.unwrap_or_default()))
        .collect();
    eprintln!(
        "Failed {:?} after the merge; Deployment conditions then, in order: {conditions:?}",
        merged.elapsed()
    );
    assert!(
        cond.message.contains("has timed out progressing"),
        "the Deployment's Progressing message: {cond:?}"
    );
    assert!(
        r.w.statuses().iter().any(|s| s.state == "failure"),
        "{:?}",
        r.w.statuses()
    );
    eprintln!(
        "Degraded -> Failed {failed_after:?} after the merge ({:?} in all): {}: {}",
        started.elapsed(),
        cond.reason,
        cond.message
    );
    r.finish().await;
}

#[tokio::test]
async fn an_invalid_manifest_fails_with_argo_cds_message() {
    let mut r = Rig::new(
        "rab-invalid",
        &["api"],
        configmap_files,
        // A label value may not hold `+`: the version makes the ConfigMap invalid.
        json!({ "file": "apps/{service}/configmap.yaml", "yamlPath": "metadata.labels.version" }),
        json!({ "retry": { "limit": 1, "backoff": { "duration": "2s", "factor": 1, "maxDuration": "2s" } } }),
    )
    .await;
    r.start_operator();
    r.w.promote("api-invalid", &r.env, &[("api", "api-v2.0.0+bad")])
        .await;
    let number = r.pr_number("api-invalid").await;
    let merged = Instant::now();
    r.w.fake.merge(&r.w.gitops, number).expect("PR merges");
    let p = r.w.wait_phase("api-invalid", Phase::Failed, T).await;
    let status = r.app_status("api").await;
    let argo_message = str_at(&status, "/operationState/message").to_owned();
    assert_eq!(str_at(&status, "/operationState/phase"), "Failed");
    let cond = ready(&p);
    assert!(
        argo_message.contains("is invalid") && cond.message.contains("is invalid"),
        "Argo CD's message {argo_message:?} in the condition: {cond:?}"
    );
    eprintln!(
        "invalid manifest -> Failed {:?} after the merge: {}: {}",
        merged.elapsed(),
        cond.reason,
        cond.message
    );
    r.finish().await;
}

#[tokio::test]
async fn the_application_controller_restarted_during_the_sync_still_ends_synced_once() {
    let mut r = Rig::new(
        "rab-restart",
        &["api"],
        configmap_files,
        configmap_target(),
        json!({}),
    )
    .await;
    r.start_operator();
    r.w.promote("api-restart", &r.env, &[("api", "api-v2.0.0")])
        .await;
    let number = r.pr_number("api-restart").await;
    let merge = r.w.fake.merge(&r.w.gitops, number).expect("PR merges");
    // Killed (SIGKILL) and started again right after the merge, and again as soon as
    // an operation for the merge shows up (running or just finished).
    r.argocd
        .restart_application_controller()
        .await
        .expect("controller restarts");
    r.wait_app("api", "an operation for the merge", |s| {
        s.pointer("/operationState/operation/sync/revision")
            .and_then(Value::as_str)
            == Some(merge.as_str())
    })
    .await;
    r.argocd
        .restart_application_controller()
        .await
        .expect("controller restarts again");
    let p = r.w.wait_phase("api-restart", Phase::Synced, T).await;
    let status = r.app_status("api").await;
    assert_eq!(str_at(&status, "/sync/revision"), merge);
    assert_eq!(str_at(&status, "/operationState/phase"), "Succeeded");
    assert_eq!(
        p.status.unwrap().applications[0].revision.as_deref(),
        Some(merge.as_str())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let statuses: Vec<_> =
        r.w.statuses()
            .into_iter()
            .filter(|s| s.context == format!("argocd/deploy-{}", r.env))
            .collect();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].state, "success");
    r.finish().await;
}
