use super::*;

use baton_api::environment::EnvironmentStatus;
use clap::Parser;
use serde_json::json;

const REV_NEW: &str = "25b6bba8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5";
const REV_OLD: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6";
const SHA: &str = "6b47f42a0c3d8e9f1a2b3c4d5e6f708192a3b4c5";

/// 2026-11-23T12:00:00Z, the board's "now".
fn now() -> Timestamp {
    "2026-11-23T12:00:00Z".parse().expect("time")
}

/// `now` minus `secs`, as the API writes it.
fn ago(secs: i64) -> String {
    super::super::promote::rfc3339(Timestamp::from_second(now().as_second() - secs).expect("time"))
}

/// An Environment with `upstream`, and `(service, version, promotion, seconds ago)` in
/// its status, as the operator writes it.
fn env(name: &str, upstream: Option<&str>, records: &[(&str, &str, &str, i64)]) -> Environment {
    let mut spec = json!({
        "gitops": { "repository": "camaradesuk/cluster-gitops", "branch": "main",
                    "target": { "file": "syrf/environments/{environment}/{service}/config.yaml", "yamlPath": "service.chartTag" } },
        "github": { "secretRef": { "name": "github-token" } }
    });
    if let Some(up) = upstream {
        spec["upstream"] = json!(up);
    }
    let mut e = Environment::new(name, serde_json::from_value(spec).expect("spec"));
    e.metadata.namespace = Some("syrf".into());
    let services: Vec<ServiceRecord> = records
        .iter()
        .map(|(service, version, promotion, secs)| {
            serde_json::from_value(json!({
                "name": service, "version": version, "promotion": promotion,
                "source": { "repository": "camaradesuk/syrf", "commit": SHA },
                "syncedAt": ago(*secs), "healthySince": ago(*secs)
            }))
            .expect("record")
        })
        .collect();
    e.status = Some(EnvironmentStatus {
        services,
        ..EnvironmentStatus::default()
    });
    e
}

/// A Promotion of `services` to `environment` in `phase`, with the Ready `reason`,
/// created `created` seconds ago.
fn promotion(
    name: &str,
    environment: &str,
    services: &[(&str, &str)],
    phase: Option<&str>,
    reason: Option<&str>,
    created: i64,
) -> Promotion {
    let list: Vec<serde_json::Value> = services
        .iter()
        .map(|(s, v)| json!({ "name": s, "version": v }))
        .collect();
    let mut p: Promotion = serde_json::from_value(json!({
        "apiVersion": "baton.dev/v1alpha1", "kind": "Promotion",
        "metadata": { "name": name, "namespace": "syrf", "creationTimestamp": ago(created) },
        "spec": { "environment": environment, "source": { "repository": "camaradesuk/syrf", "commit": SHA }, "services": list }
    }))
    .expect("promotion");
    if let Some(phase) = phase {
        let mut status = json!({ "phase": phase, "phaseTimes": {} });
        if let Some(reason) = reason {
            status["conditions"] = json!([{ "type": "Ready", "status": "False", "reason": reason,
                "message": "why", "lastTransitionTime": ago(created) }]);
        }
        if phase == "Synced" {
            status["phaseTimes"]["synced"] = json!(ago(created));
        }
        p.status = Some(serde_json::from_value(status).expect("status"));
    }
    p
}

fn with_pr(mut p: Promotion, number: u64) -> Promotion {
    if let Some(s) = p.status.as_mut() {
        s.pull_request = Some(baton_api::promotion::PullRequestStatus {
            number,
            url: format!("https://github.com/camaradesuk/cluster-gitops/pull/{number}"),
            branch: "baton/syrf/x".into(),
            ..Default::default()
        });
    }
    p
}

/// An Application in `argocd` deploying from the GitOps repository, with Argo CD's
/// `sync` and `health` at `revision`.
fn app(name: &str, sync: &str, health: &str, revision: &str) -> (AppKey, Application) {
    let a: Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": { "name": name, "namespace": "argocd" },
        "spec": { "source": { "repoURL": "https://github.com/camaradesuk/cluster-gitops", "path": "syrf", "targetRevision": "main" } },
        "status": { "sync": { "status": sync, "revision": revision }, "health": { "status": health } }
    }))
    .expect("application");
    (("argocd".into(), name.into()), a)
}

fn apps(list: Vec<(AppKey, Application)>) -> BTreeMap<AppKey, Application> {
    list.into_iter().collect()
}

fn board_of(
    envs: &[Environment],
    promotions: &[Promotion],
    applications: &BTreeMap<AppKey, Application>,
    git: Option<&BTreeMap<String, BTreeMap<String, GitRead>>>,
) -> Board {
    board(&Snapshot {
        namespace: "syrf",
        environments: envs,
        promotions,
        applications,
        git,
    })
}

fn cell<'b>(b: &'b Board, service: &str, environment: &str) -> &'b Cell {
    b.services
        .iter()
        .find(|r| r.name == service)
        .and_then(|r| r.cells.iter().find(|c| c.environment == environment))
        .unwrap_or_else(|| panic!("no cell {service}/{environment} in {b:#?}"))
}

fn kinds(c: &Cell) -> Vec<MarkKind> {
    c.marks.iter().map(|m| m.kind).collect()
}

// ---------------------------------------------------------------------------
// The golden example: staging -> production, two services, one cell drifting.

fn example() -> (
    Vec<Environment>,
    Vec<Promotion>,
    BTreeMap<AppKey, Application>,
) {
    let envs = vec![
        // Listed downstream first: the board orders by the pipeline, not the list.
        env(
            "production",
            Some("staging"),
            &[
                ("api", "api-v1.0.0", "production-api-v1-0-0", 3 * 86_400),
                (
                    "web",
                    "web-v2.0.0",
                    "production-from-staging-5d1c9a2e",
                    5 * 3600,
                ),
            ],
        ),
        env(
            "staging",
            None,
            &[
                ("api", "api-v1.1.0", "staging-api-v1-1-0", 2 * 3600),
                ("web", "web-v2.0.0", "staging-web-v2-0-0", 86_400),
            ],
        ),
    ];
    let promotions = vec![
        promotion(
            "staging-api-v1-0-0",
            "staging",
            &[("api", "api-v1.0.0")],
            Some("Synced"),
            Some("Synced"),
            4 * 86_400,
        ),
        promotion(
            "staging-api-v1-1-0",
            "staging",
            &[("api", "api-v1.1.0")],
            Some("Synced"),
            Some("Synced"),
            2 * 3600,
        ),
        promotion(
            "staging-web-v2-0-0",
            "staging",
            &[("web", "web-v2.0.0")],
            Some("Synced"),
            Some("Synced"),
            86_400,
        ),
        promotion(
            "production-api-v1-0-0",
            "production",
            &[("api", "api-v1.0.0")],
            Some("Synced"),
            Some("Synced"),
            3 * 86_400,
        ),
        promotion(
            "production-from-staging-5d1c9a2e",
            "production",
            &[("web", "web-v2.0.0")],
            Some("Synced"),
            Some("Synced"),
            5 * 3600,
        ),
        with_pr(
            promotion(
                "production-api-v1-1-0",
                "production",
                &[("api", "api-v1.1.0")],
                Some("PROpened"),
                Some("WaitingForReview"),
                3600,
            ),
            7,
        ),
    ];
    let applications = apps(vec![
        app("api-staging", "Synced", "Healthy", REV_NEW),
        app("web-staging", "Synced", "Healthy", REV_NEW),
        app("api-production", "Synced", "Healthy", REV_OLD),
        // Someone synced web in production by hand: Argo CD no longer runs what Baton recorded.
        app("web-production", "OutOfSync", "Healthy", REV_OLD),
    ]);
    (envs, promotions, applications)
}

fn golden(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/cli/testdata")
        .join(name);
    // BATON_BLESS=1 rewrites the file after an intended change; review the diff.
    if std::env::var_os("BATON_BLESS").is_some() {
        std::fs::write(&path, got).expect("write golden file");
    }
    let want = std::fs::read_to_string(&path).expect("golden file");
    assert!(
        got == want,
        "{name} differs:\n--- got ---\n{got}\n--- expected ---\n{want}"
    );
}

#[test]
fn golden_table_of_a_two_environment_pipeline_with_cluster_drift() {
    let (envs, promotions, applications) = example();
    let b = board_of(&envs, &promotions, &applications, None);
    golden("status-table.txt", &table(&b, now()));
    assert_eq!(b.marks, 1);
    assert_eq!(exit_code(&b, true), EXIT_DRIFT);
    assert_eq!(exit_code(&b, false), EXIT_OK);
}

#[test]
fn golden_json_keeps_its_documented_field_names() {
    let (envs, promotions, applications) = example();
    let b = board_of(&envs, &promotions, &applications, None);
    let text = render(&b, Format::Json, now()).expect("json");
    golden("status.json", &text);
    let back: Board = serde_json::from_str(&text).expect("JSON reads back");
    assert_eq!(back, b);
}

#[test]
fn yaml_is_the_same_board() {
    let (envs, promotions, applications) = example();
    let b = board_of(&envs, &promotions, &applications, None);
    let text = render(&b, Format::Yaml, now()).expect("yaml");
    assert!(text.starts_with("namespace: syrf\n"), "{text}");
    let back: Board = serde_saphyr::from_str(&text).expect("YAML reads back");
    assert_eq!(back, b);
}

#[test]
fn example_cells_say_what_runs_and_what_is_on_its_way() {
    let (envs, promotions, applications) = example();
    let b = board_of(&envs, &promotions, &applications, None);
    let names: Vec<&str> = b.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["staging", "production"]);
    assert_eq!(b.pipeline, "staging -> production");
    assert!(!b.git);
    let api = cell(&b, "api", "production");
    assert_eq!(
        api.recorded.as_ref().map(|r| r.version.as_str()),
        Some("api-v1.0.0")
    );
    assert!(api.application.synced_and_healthy);
    assert_eq!(api.application.revision.as_deref(), Some(REV_OLD));
    assert_eq!(
        api.promotions,
        [InFlight {
            promotion: "production-api-v1-1-0".into(),
            phase: "PROpened".into(),
            state: State::Open,
            version: "api-v1.1.0".into(),
            reason: Some("WaitingForReview".into()),
            pull_request: Some("https://github.com/camaradesuk/cluster-gitops/pull/7".into()),
        }]
    );
    assert!(api.marks.is_empty());
    let web = cell(&b, "web", "production");
    assert_eq!(kinds(web), [MarkKind::ClusterDrift]);
    assert_eq!(
        web.marks[0].message,
        "Application argocd/web-production is OutOfSync/Healthy @0f1e2d3, but web-v2.0.0 is recorded Synced (promotion production-from-staging-5d1c9a2e)"
    );
    assert!(cell(&b, "api", "staging").promotions.is_empty());
}

// ---------------------------------------------------------------------------
// Pipeline order.

#[test]
fn columns_follow_upstream_roots_first_then_downstreams_ties_by_name() {
    let envs = vec![
        env("prd", Some("stg"), &[]),
        env("qa", Some("dev"), &[]),
        env("stg", Some("dev"), &[]),
        env("dev", None, &[]),
        env("sandbox", None, &[]),
        env("hotfix", Some("prd"), &[]),
    ];
    let b = board_of(&envs, &[], &BTreeMap::new(), None);
    let names: Vec<&str> = b.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "sandbox", "qa", "stg", "prd", "hotfix"]);
    assert_eq!(
        b.pipeline,
        "sandbox, dev -> qa, dev -> stg -> prd -> hotfix"
    );
    assert!(b.environments.iter().all(|e| e.problem.is_none()));
}

#[test]
fn a_cycle_goes_last_and_a_missing_upstream_is_named() {
    let envs = vec![
        env("b", Some("a"), &[]),
        env("a", Some("b"), &[]),
        env("prd", Some("stagign"), &[]),
        env("stg", None, &[]),
    ];
    let b = board_of(&envs, &[], &BTreeMap::new(), None);
    let cols: Vec<(&str, Option<&str>)> = b
        .environments
        .iter()
        .map(|e| (e.name.as_str(), e.problem.as_deref()))
        .collect();
    assert_eq!(
        cols,
        [
            ("prd", Some("upstream Environment \"stagign\" not found")),
            ("stg", None),
            ("a", Some("spec.upstream links form a cycle")),
            ("b", Some("spec.upstream links form a cycle")),
        ]
    );
    assert_eq!(b.pipeline, "prd, stg, a (cycle), b (cycle)");
    let text = table(&b, now());
    assert!(
        text.contains("           prd: upstream Environment \"stagign\" not found\n"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Rows and what is read.

#[test]
fn rows_are_recorded_services_and_services_on_their_way() {
    let envs = vec![
        env("staging", None, &[("api", "api-v1", "p1", 60)]),
        env("production", Some("staging"), &[]),
    ];
    let promotions = vec![
        promotion(
            "p2",
            "production",
            &[("web", "web-v1")],
            Some("Pending"),
            Some("Queued"),
            60,
        ),
        // Ended, or to an Environment not on the board: no row of their own.
        promotion(
            "p3",
            "production",
            &[("old", "old-v1")],
            Some("Failed"),
            Some("SyncTimeout"),
            60,
        ),
        promotion(
            "p4",
            "elsewhere",
            &[("other", "other-v1")],
            Some("PROpened"),
            None,
            60,
        ),
        // Not seen by the operator yet: on its way all the same.
        promotion("p5", "staging", &[("docs", "docs-v1")], None, None, 60),
    ];
    assert_eq!(services(&envs, &promotions), ["api", "docs", "web"]);
    assert_eq!(
        applications_to_read(&envs, &promotions),
        [
            ("argocd".to_owned(), "api-production".to_owned()),
            ("argocd".to_owned(), "api-staging".to_owned()),
            ("argocd".to_owned(), "docs-production".to_owned()),
            ("argocd".to_owned(), "docs-staging".to_owned()),
            ("argocd".to_owned(), "web-production".to_owned()),
            ("argocd".to_owned(), "web-staging".to_owned()),
        ]
    );
    let b = board_of(&envs, &promotions, &BTreeMap::new(), None);
    let docs = cell(&b, "docs", "staging");
    assert_eq!(docs.promotions[0].state, State::Pending);
    assert_eq!(docs.promotions[0].phase, "Pending");
    assert!(
        docs.marks.is_empty(),
        "nothing recorded: nothing to drift from"
    );
}

#[test]
fn application_names_follow_the_environment_template() {
    let mut e = env("production", None, &[("api", "api-v1", "p1", 60)]);
    e.spec.applications.namespace = "argo".into();
    e.spec.applications.name = "syrf-{environment}-{service}".into();
    assert_eq!(
        applications_to_read(std::slice::from_ref(&e), &[]),
        [("argo".to_owned(), "syrf-production-api".to_owned())]
    );
    assert_eq!(
        recorded(&e)
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["api"]
    );
}

// ---------------------------------------------------------------------------
// Cluster drift.

#[test]
fn cluster_drift_is_any_recorded_version_not_synced_and_healthy_at_a_revision() {
    let envs = vec![env(
        "staging",
        None,
        &[
            ("ok", "ok-v1", "p", 60),
            ("gone", "gone-v1", "p", 60),
            ("degraded", "degraded-v1", "p", 60),
            ("outofsync", "outofsync-v1", "p", 60),
            ("norev", "norev-v1", "p", 60),
        ],
    )];
    let applications = apps(vec![
        app("ok-staging", "Synced", "Healthy", REV_NEW),
        app("degraded-staging", "Synced", "Degraded", REV_NEW),
        app("outofsync-staging", "OutOfSync", "Healthy", REV_NEW),
        app("norev-staging", "Synced", "Healthy", ""),
        // Nothing recorded for it here: its state marks nothing.
        app("extra-staging", "OutOfSync", "Missing", REV_NEW),
    ]);
    let b = board_of(&envs, &[], &applications, None);
    assert!(cell(&b, "ok", "staging").marks.is_empty());
    for service in ["gone", "degraded", "outofsync", "norev"] {
        assert_eq!(
            kinds(cell(&b, service, "staging")),
            [MarkKind::ClusterDrift],
            "{service}"
        );
    }
    assert_eq!(
        cell(&b, "gone", "staging").marks[0].message,
        "Application argocd/gone-staging not found, but gone-v1 is recorded Synced (promotion p)"
    );
    assert_eq!(
        cell(&b, "degraded", "staging").marks[0].message,
        format!(
            "Application argocd/degraded-staging is Synced/Degraded @{}, but degraded-v1 is recorded Synced (promotion p)",
            &REV_NEW[..7]
        )
    );
    let norev = &cell(&b, "norev", "staging").application;
    assert!(norev.found && norev.revision.is_none() && !norev.synced_and_healthy);
    assert_eq!(b.marks, 4);
    let text = table(&b, now());
    assert!(text.contains("no Application"), "{text}");
    assert!(text.contains("Synced/Degraded @25b6bba"), "{text}");
}

#[test]
fn a_multi_source_application_shows_the_revision_of_its_gitops_source() {
    let envs = vec![env("staging", None, &[("api", "api-v1", "p", 60)])];
    let a: Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": { "name": "api-staging", "namespace": "argocd" },
        "spec": { "sources": [
            { "repoURL": "https://charts.example.com", "targetRevision": "1.2.3" },
            { "repoURL": "https://github.com/camaradesuk/cluster-gitops.git", "targetRevision": "main" }
        ] },
        "status": { "sync": { "status": "Synced", "revisions": ["1.2.3", REV_NEW] }, "health": { "status": "Healthy" } }
    }))
    .expect("application");
    let applications = apps(vec![(("argocd".into(), "api-staging".into()), a.clone())]);
    let b = board_of(&envs, &[], &applications, None);
    let c = cell(&b, "api", "staging");
    assert_eq!(c.application.revision.as_deref(), Some(REV_NEW));
    assert!(c.marks.is_empty());

    // A chart version is no GitOps revision: without one, it is not proven.
    let mut chart_only = a;
    if let Some(s) = chart_only.spec.sources.get_mut(1) {
        s.repo_url = "https://github.com/someone/else".into();
    }
    let applications = apps(vec![(("argocd".into(), "api-staging".into()), chart_only)]);
    let b = board_of(&envs, &[], &applications, None);
    assert_eq!(kinds(cell(&b, "api", "staging")), [MarkKind::ClusterDrift]);
}

// ---------------------------------------------------------------------------
// Git drift.

fn git(entries: &[(&str, &str, GitRead)]) -> BTreeMap<String, BTreeMap<String, GitRead>> {
    let mut out: BTreeMap<String, BTreeMap<String, GitRead>> = BTreeMap::new();
    for (env, service, read) in entries {
        out.entry((*env).to_owned())
            .or_default()
            .insert((*service).to_owned(), read.clone());
    }
    out
}

#[test]
fn git_drift_is_a_gitops_value_other_than_the_recorded_version() {
    let envs = vec![env(
        "staging",
        None,
        &[
            ("same", "same-v2", "p", 60),
            ("other", "other-v2", "p", 60),
            ("unset", "unset-v2", "p", 60),
            ("broken", "broken-v2", "p", 60),
        ],
    )];
    let applications = apps(
        ["same", "other", "unset", "broken"]
            .iter()
            .map(|s| app(&format!("{s}-staging"), "Synced", "Healthy", REV_NEW))
            .collect(),
    );
    let reads = git(&[
        ("staging", "same", GitRead::Value(Some("same-v2".into()))),
        ("staging", "other", GitRead::Value(Some("other-v1".into()))),
        ("staging", "unset", GitRead::Value(None)),
        (
            "staging",
            "broken",
            GitRead::Problem(
                "syrf/environments/staging/broken/config.yaml: file not found in camaradesuk/cluster-gitops at main".into(),
            ),
        ),
    ]);
    let b = board_of(&envs, &[], &applications, Some(&reads));
    assert!(b.git);
    let same = cell(&b, "same", "staging");
    assert!(same.marks.is_empty());
    assert_eq!(
        same.git,
        Some(GitView {
            file: Some("syrf/environments/staging/same/config.yaml".into()),
            value: Some("same-v2".into()),
            problem: None,
        })
    );
    let messages = |s: &str| -> Vec<(MarkKind, String)> {
        cell(&b, s, "staging")
            .marks
            .iter()
            .map(|m| (m.kind, m.message.clone()))
            .collect()
    };
    assert_eq!(
        messages("other"),
        [(
            MarkKind::GitDrift,
            "syrf/environments/staging/other/config.yaml holds other-v1, but other-v2 is recorded Synced".to_owned()
        )]
    );
    assert_eq!(
        messages("unset"),
        [(
            MarkKind::GitDrift,
            "syrf/environments/staging/unset/config.yaml does not set it, but unset-v2 is recorded Synced".to_owned()
        )]
    );
    assert_eq!(
        messages("broken"),
        [(
            MarkKind::GitDrift,
            "cannot read it: syrf/environments/staging/broken/config.yaml: file not found in camaradesuk/cluster-gitops at main, but broken-v2 is recorded Synced".to_owned()
        )]
    );
    // Without --git nothing is compared with Git.
    let b = board_of(&envs, &[], &applications, None);
    assert!(
        b.services
            .iter()
            .flat_map(|r| &r.cells)
            .all(|c| c.git.is_none() && c.marks.is_empty())
    );
}

#[test]
fn a_kustomize_target_names_its_kustomization_file() {
    let mut e = env("production", None, &[("api", "api-v2", "p", 60)]);
    e.spec = serde_json::from_value(json!({
        "gitops": { "repository": "camaradesuk/cluster-gitops",
                    "target": { "kustomizeImage": { "file": "apps/{service}/overlays/{environment}/kustomization.yaml" } } },
        "github": { "secretRef": { "name": "github-token" } }
    }))
    .expect("spec");
    let reads = git(&[("production", "api", GitRead::Value(Some("api-v1".into())))]);
    let applications = apps(vec![app("api-production", "Synced", "Healthy", REV_NEW)]);
    let b = board_of(&[e], &[], &applications, Some(&reads));
    assert_eq!(
        cell(&b, "api", "production").marks[0].message,
        "apps/api/overlays/production/kustomization.yaml holds api-v1, but api-v2 is recorded Synced"
    );
}

// ---------------------------------------------------------------------------
// Not run upstream.

#[test]
fn a_version_that_ever_ran_synced_upstream_is_not_marked_even_if_replaced_since() {
    let envs = vec![
        env("staging", None, &[("api", "api-v3", "s3", 60)]),
        env(
            "production",
            Some("staging"),
            &[("api", "api-v2", "p2", 60), ("web", "web-v9", "p9", 60)],
        ),
    ];
    let promotions = vec![
        // api-v2 ran in staging before api-v3 replaced it.
        promotion(
            "s2",
            "staging",
            &[("api", "api-v2")],
            Some("Synced"),
            None,
            600,
        ),
        promotion(
            "s3",
            "staging",
            &[("api", "api-v3")],
            Some("Synced"),
            None,
            60,
        ),
        // web-v9 only ever reached staging in a Promotion that failed, or one still open.
        promotion(
            "s9",
            "staging",
            &[("web", "web-v9")],
            Some("Failed"),
            Some("SyncTimeout"),
            600,
        ),
        promotion(
            "s9b",
            "staging",
            &[("web", "web-v9")],
            Some("Merged"),
            None,
            60,
        ),
        // A Synced Promotion of web-v9 elsewhere proves nothing about staging.
        promotion("q9", "qa", &[("web", "web-v9")], Some("Synced"), None, 60),
    ];
    let applications = apps(vec![
        app("api-staging", "Synced", "Healthy", REV_NEW),
        app("api-production", "Synced", "Healthy", REV_NEW),
        app("web-production", "Synced", "Healthy", REV_NEW),
    ]);
    let b = board_of(&envs, &promotions, &applications, None);
    assert!(cell(&b, "api", "production").marks.is_empty());
    let web = cell(&b, "web", "production");
    assert_eq!(kinds(web), [MarkKind::NotRunUpstream]);
    assert_eq!(
        web.marks[0].message,
        "web-v9 runs in production, but no Synced Promotion to staging ever carried it"
    );
    // Roots have no upstream to have skipped.
    assert!(cell(&b, "api", "staging").marks.is_empty());
}

// ---------------------------------------------------------------------------
// Promotions on their way.

#[test]
fn pending_promotions_are_queued_held_or_blocked_by_their_ready_reason() {
    let envs = vec![env("production", None, &[])];
    let cases = [
        ("Queued", State::Queued),
        ("WindowClosed", State::Held),
        ("Soaking", State::Held),
        ("UpstreamNotReady", State::Blocked),
        ("SecretNotFound", State::Blocked),
        ("ManifestError", State::Blocked),
        ("EnvironmentNotFound", State::Blocked),
        // A reason this version does not know holds nothing it can name.
        ("SomethingNew", State::Pending),
    ];
    for (reason, want) in cases {
        let promotions = vec![promotion(
            "p",
            "production",
            &[("api", "api-v2")],
            Some("Pending"),
            Some(reason),
            60,
        )];
        let b = board_of(&envs, &promotions, &BTreeMap::new(), None);
        let c = cell(&b, "api", "production");
        assert_eq!(c.promotions[0].state, want, "{reason}");
        assert_eq!(c.promotions[0].reason.as_deref(), Some(reason));
    }
    let promotions = vec![promotion(
        "p",
        "production",
        &[("api", "api-v2")],
        Some("Merged"),
        Some("WaitingForSync"),
        60,
    )];
    let b = board_of(&envs, &promotions, &BTreeMap::new(), None);
    assert_eq!(
        cell(&b, "api", "production").promotions[0].state,
        State::Merged
    );
}

#[test]
fn promotions_on_their_way_are_listed_oldest_first_and_ended_ones_not_at_all() {
    let envs = vec![env("production", None, &[("api", "api-v1", "p1", 9000)])];
    let promotions = vec![
        promotion(
            "newer",
            "production",
            &[("api", "api-v3")],
            Some("Pending"),
            Some("Queued"),
            60,
        ),
        with_pr(
            promotion(
                "older",
                "production",
                &[("api", "api-v2"), ("web", "web-v2")],
                Some("PROpened"),
                Some("WaitingForReview"),
                600,
            ),
            12,
        ),
        promotion(
            "p1",
            "production",
            &[("api", "api-v1")],
            Some("Synced"),
            None,
            9000,
        ),
        promotion(
            "rejected",
            "production",
            &[("api", "api-v0")],
            Some("Rejected"),
            None,
            700,
        ),
        promotion(
            "superseded",
            "production",
            &[("api", "api-v0")],
            Some("Superseded"),
            None,
            800,
        ),
    ];
    let applications = apps(vec![app("api-production", "Synced", "Healthy", REV_NEW)]);
    let b = board_of(&envs, &promotions, &applications, None);
    let names: Vec<&str> = cell(&b, "api", "production")
        .promotions
        .iter()
        .map(|p| p.promotion.as_str())
        .collect();
    assert_eq!(names, ["older", "newer"]);
    let text = table(&b, now());
    assert!(text.contains("-> api-v2 PROpened #12\n"), "{text}");
    assert!(text.contains("-> api-v3 queued: Queued\n"), "{text}");
    assert!(text.contains("-> web-v2 PROpened #12\n"), "{text}");
}

// ---------------------------------------------------------------------------
// Table details.

#[test]
fn the_table_numbers_each_mark_and_explains_it_under_the_table() {
    let envs = vec![
        env("staging", None, &[("api", "api-v2", "s2", 60)]),
        env(
            "production",
            Some("staging"),
            &[("api", "api-v3", "p3", 60)],
        ),
    ];
    let reads = git(&[
        ("staging", "api", GitRead::Value(Some("api-v2".into()))),
        ("production", "api", GitRead::Value(Some("api-v2".into()))),
    ]);
    let b = board_of(&envs, &[], &BTreeMap::new(), Some(&reads));
    assert_eq!(b.marks, 4);
    let text = table(&b, now());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "NAMESPACE  syrf",
            "PIPELINE   staging -> production",
            "",
            "SERVICE   STAGING           PRODUCTION",
            "api       api-v2 (60s) !1   api-v3 (60s) !2 !3 !4",
            "          no Application    no Application",
            "",
            "!1  api in staging, drift: cluster: Application argocd/api-staging not found, but api-v2 is recorded Synced (promotion s2)",
            "!2  api in production, drift: cluster: Application argocd/api-production not found, but api-v3 is recorded Synced (promotion p3)",
            "!3  api in production, drift: git: syrf/environments/production/api/config.yaml holds api-v2, but api-v3 is recorded Synced",
            "!4  api in production, not run upstream: api-v3 runs in production, but no Synced Promotion to staging ever carried it",
        ]
    );
}

#[test]
fn digests_are_shortened_in_the_table_and_whole_in_json() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let envs = vec![env("staging", None, &[("api", &digest, "p", 60)])];
    let applications = apps(vec![app("api-staging", "Synced", "Healthy", REV_NEW)]);
    let b = board_of(&envs, &[], &applications, None);
    assert!(table(&b, now()).contains("sha256:abababababab (60s)"));
    assert_eq!(
        cell(&b, "api", "staging")
            .recorded
            .as_ref()
            .map(|r| r.version.as_str()),
        Some(digest.as_str())
    );
}

#[test]
fn an_empty_board_says_so() {
    let b = board_of(&[env("staging", None, &[])], &[], &BTreeMap::new(), None);
    assert_eq!(
        table(&b, now()),
        "NAMESPACE  syrf\nPIPELINE   staging\n\nSERVICE   STAGING\n(no service recorded or on its way in these Environments)\n"
    );
    assert_eq!(exit_code(&b, true), EXIT_OK);
}

#[test]
fn ages_read_like_kubectl() {
    let at = |secs: i64| Timestamp::from_second(now().as_second() - secs).expect("time");
    for (secs, want) in [
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (7199, "119m"),
        (7200, "2h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (400 * 86_400, "400d"),
        // A clock ahead of ours is no negative age.
        (-30, "0s"),
    ] {
        assert_eq!(age(at(secs), now()), want, "{secs}");
    }
}

// ---------------------------------------------------------------------------
// Arguments and exit codes.

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: StatusArgs,
}

fn parse(argv: &[&str]) -> Result<StatusArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("status").chain(argv.iter().copied())).map(|c| c.args)
}

#[test]
fn arguments_parse_as_documented() {
    let a = parse(&[]).expect("no arguments needed");
    assert_eq!(
        (a.namespace, a.output, a.git, a.check),
        (None, Format::Table, false, false)
    );
    let a = parse(&["-n", "syrf", "-o", "json", "--git", "--check"]).expect("parses");
    assert_eq!(
        (a.namespace.as_deref(), a.output, a.git, a.check),
        (Some("syrf"), Format::Json, true, true)
    );
    assert_eq!(
        parse(&["--output", "yaml"]).expect("parses").output,
        Format::Yaml
    );
    assert!(parse(&["-o", "wide"]).is_err());
    assert_eq!(check_namespace("syrf"), Ok(()));
    assert_eq!(
        check_namespace("Syrf"),
        Err(StatusError::Namespace("Syrf".into()))
    );
}

#[test]
fn exit_codes_are_distinct() {
    assert_eq!((EXIT_OK, EXIT_DRIFT, EXIT_ERROR), (0, 1, 2));
    let b = board_of(
        &[env("staging", None, &[("api", "v1", "p", 1)])],
        &[],
        &BTreeMap::new(),
        None,
    );
    assert_eq!(b.marks, 1);
    assert_eq!(exit_code(&b, true), EXIT_DRIFT);
    assert_eq!(exit_code(&b, false), EXIT_OK);
}

#[test]
fn cluster_drift_during_a_rollout_names_the_merged_promotion() {
    let envs = vec![env("production", None, &[("api", "api-v1", "p1", 600)])];
    let promotions = vec![promotion(
        "p2",
        "production",
        &[("api", "api-v2")],
        Some("Merged"),
        Some("WaitingForSync"),
        30,
    )];
    let applications = apps(vec![app("api-production", "OutOfSync", "Healthy", REV_OLD)]);
    let b = board_of(&envs, &promotions, &applications, None);
    let c = cell(&b, "api", "production");
    assert_eq!(kinds(c), [MarkKind::ClusterDrift]);
    assert!(
        c.marks[0]
            .message
            .ends_with("; promotion p2 is Merged and rolling out api-v2"),
        "{}",
        c.marks[0].message
    );
    assert!(table(&b, now()).contains("-> api-v2 Merged\n"));
}
