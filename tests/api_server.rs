//! Baton's API against a real kube-apiserver: CRD install, samples, validation
//! messages, spec immutability, and the Argo CD Application type.

use baton_api::{Environment, Phase, Promotion};
use baton_integration::install_baton_crds;
use baton_testkit::{repo_root, shared};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

#[tokio::test]
async fn crds_install_server_side_and_are_idempotent() {
    let cp = shared().await.expect("control plane starts");
    install_baton_crds(cp);
    install_baton_crds(cp);
    let out = cp
        .run_kubectl(["get", "crd", "promotions.baton.dev", "-o", "jsonpath={.spec.names.shortNames}{.spec.names.categories}{.spec.versions[0].subresources}"])
        .expect("kubectl");
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.stdout, r#"["promo"]["baton"]{"status":{}}"#);
}

#[tokio::test]
async fn every_sample_applies_with_kubectl_and_reads_back_typed() {
    let cp = shared().await.expect("control plane starts");
    install_baton_crds(cp);
    let client = cp.client().await.expect("client");
    let ns = cp.namespace(&client, "samples").await.expect("namespace");
    let samples = repo_root().join("config/samples");
    let out = cp
        .run_kubectl(["apply", "-n", &ns, "-f", &samples.to_string_lossy()])
        .expect("kubectl");
    assert!(out.success, "samples must apply: {}", out.stderr);
    let count = std::fs::read_dir(&samples).expect("samples dir").count();
    assert_eq!(
        out.stdout.lines().count(),
        count,
        "one object per sample: {}",
        out.stdout
    );

    let envs: Api<Environment> = Api::namespaced(client.clone(), &ns);
    let staging = envs.get("staging").await.expect("staging");
    // Defaults the API server fills in from the schema.
    assert_eq!(staging.spec.sync_timeout, "30m");
    assert_eq!(staging.spec.degraded_grace_period, "5m");
    assert_eq!(staging.spec.github.api_url, "https://api.github.com");
    let prd = envs.get("prd").await.expect("prd");
    assert_eq!(prd.spec.gitops.branch, "main");
    let image = prd
        .spec
        .gitops
        .target
        .kustomize_image
        .expect("kustomizeImage");
    assert_eq!(image.image, "ghcr.io/ybor/{service}");
    // Webhook defaults: the Secret keys `url` and `secret`, format Json.
    let production = envs.get("production").await.expect("production");
    let hooks = &production.spec.notifications.webhooks;
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert_eq!(
        hooks[0].url_secret_ref.as_ref().map(|r| r.key.as_str()),
        Some("url")
    );
    assert_eq!(hooks[1].format, baton_api::environment::WebhookFormat::Json);
    assert_eq!(
        hooks[1].secret_ref.as_ref().map(|r| r.key.as_str()),
        Some("secret")
    );

    let promos: Api<Promotion> = Api::namespaced(client, &ns);
    let three = promos
        .get("release-42-to-production")
        .await
        .expect("promotion");
    let names: Vec<_> = three
        .spec
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["api", "web", "docs"]);

    let listed = cp
        .run_kubectl(["get", "promotions", "-n", &ns])
        .expect("kubectl");
    let header = listed.stdout.lines().next().unwrap_or_default().to_owned();
    for column in ["NAME", "PHASE", "ENVIRONMENT", "SERVICES", "PR", "AGE"] {
        assert!(
            header.contains(column),
            "printer column {column} missing in {header:?}"
        );
    }
    let by_short = cp
        .run_kubectl(["get", "promo,env", "-n", &ns, "-o", "name"])
        .expect("kubectl");
    assert_eq!(
        by_short.stdout.lines().count(),
        count,
        "{}",
        by_short.stdout
    );
    let by_category = cp
        .run_kubectl(["get", "baton", "-n", &ns, "-o", "name"])
        .expect("kubectl");
    assert_eq!(
        by_category.stdout.lines().count(),
        count,
        "{}",
        by_category.stdout
    );
}

#[tokio::test]
async fn invalid_objects_are_refused_with_a_message_naming_the_problem() {
    let cp = shared().await.expect("control plane starts");
    install_baton_crds(cp);
    let client = cp.client().await.expect("client");
    let ns = cp.namespace(&client, "invalid").await.expect("namespace");
    let dir = repo_root().join("tests/fixtures/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the invalid fixtures, found {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("fixture");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no '# expect:' header", file.display()));
        let out = cp
            .run_kubectl(["apply", "-n", &ns, "-f", &file.to_string_lossy()])
            .expect("kubectl");
        if out.success || !out.stderr.contains(expected) {
            failures.push(format!(
                "{}: expected refusal containing {expected:?}, got success={} {}",
                file.display(),
                out.success,
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let left = cp
        .run_kubectl(["get", "baton", "-n", &ns, "-o", "name"])
        .expect("kubectl");
    assert_eq!(left.stdout.trim(), "", "refused objects must not exist");
}

#[tokio::test]
async fn spec_is_editable_while_pending_and_immutable_once_the_pr_is_open() {
    let cp = shared().await.expect("control plane starts");
    install_baton_crds(cp);
    let client = cp.client().await.expect("client");
    let ns = cp.namespace(&client, "immutable").await.expect("namespace");
    let out = cp
        .run_kubectl([
            "apply",
            "-n",
            &ns,
            "-f",
            &repo_root()
                .join("config/samples/promotion-api.yaml")
                .to_string_lossy(),
        ])
        .expect("kubectl");
    assert!(out.success, "{}", out.stderr);
    let promos: Api<Promotion> = Api::namespaced(client, &ns);
    let name = "api-v9-1-1-to-production";
    let bump = |v: &str| {
        Patch::Merge(json!({ "spec": { "services": [{ "name": "api", "version": v }] } }))
    };

    promos
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": Phase::Pending } })),
        )
        .await
        .expect("status subresource accepts Pending");
    promos
        .patch(name, &PatchParams::default(), &bump("api-v9.1.2"))
        .await
        .expect("Pending spec is editable");

    promos
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": Phase::PrOpened } })),
        )
        .await
        .expect("status subresource accepts PROpened");
    let err = promos
        .patch(name, &PatchParams::default(), &bump("api-v9.1.3"))
        .await
        .expect_err("spec must be immutable once the PR is open");
    assert!(
        err.to_string()
            .contains("spec is immutable once the pull request is opened"),
        "{err}"
    );
    let now = promos.get(name).await.expect("get");
    assert_eq!(now.spec.services[0].version.as_deref(), Some("api-v9.1.2"));
    // Status and metadata stay writable.
    promos
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "team": "syrf" } } })),
        )
        .await
        .expect("labels editable");
}

#[tokio::test]
async fn argocd_application_status_written_by_patch_reads_back() {
    let cp = shared().await.expect("control plane starts");
    let (crd, official) = baton_testkit::argocd_application_crd();
    eprintln!(
        "Application CRD under test: {} (official: {official})",
        crd.display()
    );
    baton_integration::application_status_round_trip(cp, &crd).await;
}
