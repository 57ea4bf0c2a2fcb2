use super::*;

use baton_api::conditions::{Condition, ConditionStatus};
use baton_api::promotion::{PromotionStatus, PullRequestStatus, SupersededBy};
use clap::Parser;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;

const SHA: &str = "6b47f42a0c3d8e9f1a2b3c4d5e6f708192a3b4c5";

/// `baton promote`'s arguments on their own, as clap parses them.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: PromoteArgs,
}

fn parse(argv: &[&str]) -> Result<PromoteArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("promote").chain(argv.iter().copied())).map(|c| c.args)
}

fn args(argv: &[&str]) -> PromoteArgs {
    parse(argv).expect("arguments parse")
}

fn source_arg() -> String {
    format!("camaradesuk/syrf@{SHA}")
}

fn plan_of(argv: &[&str]) -> Result<Plan, PromoteError> {
    let source = source_arg();
    let mut all = vec!["--environment", "staging", "--source", &source];
    all.extend_from_slice(argv);
    plan(&args(&all))
}

fn spec_of(services: &[&str]) -> PromotionSpec {
    plan_of(services).expect("valid").spec
}

// ---------------------------------------------------------------------------
// Arguments

#[test]
fn arguments_parse_as_documented() {
    let a = args(&[
        "-n",
        "syrf",
        "--environment",
        "staging",
        "api=api-v9.1.1",
        "web=web-v5.0.1",
        "--source",
        &source_arg(),
        "--run-url",
        "https://github.com/camaradesuk/syrf/actions/runs/42",
        "--wait",
        "--timeout",
        "30m",
    ]);
    assert_eq!(a.namespace.as_deref(), Some("syrf"));
    assert_eq!(a.services, ["api=api-v9.1.1", "web=web-v5.0.1"]);
    let p = plan(&a).expect("valid");
    assert_eq!(p.namespace.as_deref(), Some("syrf"));
    assert!(p.wait && !p.dry_run);
    assert_eq!(p.timeout, Some(Duration::from_secs(1800)));
    assert_eq!(
        p.spec,
        PromotionSpec {
            environment: "staging".into(),
            source: Some(SourceRef {
                repository: "camaradesuk/syrf".into(),
                commit: SHA.into(),
                run_url: Some("https://github.com/camaradesuk/syrf/actions/runs/42".into()),
            }),
            services: vec![
                ServiceVersion {
                    name: "api".into(),
                    version: Some("api-v9.1.1".into()),
                    digest: None,
                    source: None,
                },
                ServiceVersion {
                    name: "web".into(),
                    version: Some("web-v5.0.1".into()),
                    digest: None,
                    source: None,
                },
            ],
            rollback: None,
        }
    );
    let long = args(&[
        "--namespace",
        "syrf",
        "--environment",
        "e",
        "a=1",
        "--source",
        &source_arg(),
    ]);
    assert_eq!(long.namespace.as_deref(), Some("syrf"));
    assert_eq!(
        plan(&long).expect("valid").namespace.as_deref(),
        Some("syrf")
    );
    let no_ns = args(&["--environment", "e", "a=1", "--source", &source_arg()]);
    assert_eq!(
        plan(&no_ns).expect("valid").namespace,
        None,
        "left to the kubeconfig"
    );
}

#[test]
fn clap_refuses_missing_and_conflicting_flags() {
    let src = source_arg();
    for (argv, why) in [
        (
            vec!["--environment", "e", "--source", &src],
            "no SERVICE=VERSION",
        ),
        (vec!["--environment", "e", "a=1"], "no --source"),
        (vec!["--source", &src, "a=1"], "no --environment"),
        (
            vec![
                "--environment",
                "e",
                "a=1",
                "--source",
                &src,
                "--timeout",
                "5m",
            ],
            "--timeout without --wait",
        ),
        (
            vec![
                "--environment",
                "e",
                "a=1",
                "--source",
                &src,
                "--wait",
                "--dry-run",
            ],
            "--dry-run with --wait",
        ),
    ] {
        assert!(parse(&argv).is_err(), "{why} must be refused");
    }
}

#[test]
fn services_parse_to_versions_and_digests() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    assert_eq!(
        parse_service("api=api-v9.1.1"),
        Ok(ServiceVersion {
            name: "api".into(),
            version: Some("api-v9.1.1".into()),
            digest: None,
            source: None
        })
    );
    assert_eq!(
        parse_service(&format!("web={digest}")),
        Ok(ServiceVersion {
            name: "web".into(),
            version: None,
            digest: Some(digest.clone()),
            source: None
        })
    );
    // Only the first `=` separates: a version may not hold one, and says so.
    assert!(matches!(
        parse_service("api=v=1"),
        Err(PromoteError::Version { .. })
    ));
    // Build metadata and underscores are versions too.
    for v in ["v1.2.3+build.7", "_latest", "1", "V1_2"] {
        assert!(parse_service(&format!("api={v}")).is_ok(), "{v}");
    }
}

#[test]
fn bad_input_is_refused_with_a_message_naming_it() {
    let digest_short = "web=sha256:abc";
    let long_version = format!("api={}", "v".repeat(129));
    let long_name = format!("{}=v1", "a".repeat(64));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["api"], r#""api": expected SERVICE=VERSION"#),
        (
            vec!["api=api v9"],
            r#"version "api v9" of api: use letters"#,
        ),
        (vec!["api="], r#"version "" of api"#),
        (vec!["api=-v1"], r#"version "-v1" of api"#),
        (vec![&long_version], "of api: use letters, digits"),
        (vec!["Api=v1"], r#"service name "Api": use lowercase"#),
        (vec!["=v1"], r#"service name "": use lowercase"#),
        (vec!["api-=v1"], r#"service name "api-""#),
        (vec![&long_name], "at most 63 characters"),
        (
            vec![digest_short],
            r#"digest "sha256:abc" of web: expected sha256:"#,
        ),
        (
            vec!["api=v1", "web=v2", "api=v3"],
            r#"service "api" is given twice"#,
        ),
        (
            vec!["api=v1", "--run-url", "ftp://ci/1"],
            r#"--run-url "ftp://ci/1": expected an http:// or https:// URL"#,
        ),
        (
            vec!["api=v1", "--name", "Not_A_Name"],
            r#"--name "Not_A_Name": use lowercase"#,
        ),
        (
            vec!["api=v1", "-n", "Team_A"],
            r#"--namespace "Team_A": use lowercase"#,
        ),
        (
            vec!["api=v1", "--wait", "--timeout", "30"],
            r#"--timeout: invalid duration "30""#,
        ),
    ];
    for (argv, want) in cases {
        let err = plan_of(&argv).expect_err(&format!("{argv:?} must be refused"));
        assert!(
            err.to_string().contains(want),
            "{argv:?}: {err} should contain {want}"
        );
    }
    let too_many: Vec<String> = (0..51).map(|i| format!("s{i}=v1")).collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    assert_eq!(plan_of(&refs), Err(PromoteError::TooManyServices(51)));
    // clap asks for at least one; the pure part does not rely on it.
    let mut none = args(&["--environment", "e", "a=1", "--source", &source_arg()]);
    none.services.clear();
    assert_eq!(plan(&none), Err(PromoteError::NoServices));
    let env = args(&["--environment", "Staging", "a=1", "--source", &source_arg()]);
    assert_eq!(
        plan(&env).map(|_| ()).map_err(|e| e.to_string()),
        Err(
            r#"--environment "Staging": use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"#
                .into()
        )
    );
}

#[test]
fn source_must_be_owner_name_at_a_full_sha() {
    let ok = parse_source(&format!("camaradesuk/syrf@{SHA}"), None).expect("valid");
    assert_eq!(
        (ok.repository.as_str(), ok.commit.as_str()),
        ("camaradesuk/syrf", SHA)
    );
    let sha256 = "ab".repeat(32);
    assert!(parse_source(&format!("o/r.js@{sha256}"), None).is_ok());
    for (arg, want) in [
        (
            "camaradesuk/syrf".to_owned(),
            "--source \"camaradesuk/syrf\": expected OWNER/NAME@SHA",
        ),
        (
            format!("camaradesuk@{SHA}"),
            "--source repository \"camaradesuk\": expected OWNER/NAME",
        ),
        (format!("a/b/c@{SHA}"), "--source repository \"a/b/c\""),
        (
            format!("https://github.com/a/b@{SHA}"),
            "--source repository",
        ),
        (
            "o/r@6b47f42".to_owned(),
            "--source commit \"6b47f42\": expected the full commit SHA",
        ),
        (format!("o/r@{}", SHA.to_uppercase()), "--source commit"),
        ("o/r@main".to_owned(), "--source commit \"main\""),
    ] {
        let err = parse_source(&arg, None).expect_err(&arg);
        assert!(err.to_string().contains(want), "{arg}: {err}");
    }
}

// ---------------------------------------------------------------------------
// The checks are the CRD's rules: compare them with the generated schema's patterns.

/// A string field's rules in the Promotion CRD, as the API server applies them.
struct FieldRule {
    pattern: regex::Regex,
    min: usize,
    max: usize,
}

impl FieldRule {
    fn accepts(&self, s: &str) -> bool {
        let n = s.chars().count();
        self.pattern.is_match(s) && n >= self.min && n <= self.max
    }
}

fn crd_rule(path: &[&str]) -> FieldRule {
    use kube::CustomResourceExt as _;
    let crd = serde_json::to_value(Promotion::crd()).expect("CRD serialises");
    let mut node = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for step in path {
        node = if *step == "[]" {
            &node["items"]
        } else {
            &node["properties"][*step]
        };
    }
    let pattern = node["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} has a pattern"));
    let num = |k: &str, d: usize| {
        node[k]
            .as_u64()
            .map_or(d, |n| usize::try_from(n).expect("fits"))
    };
    FieldRule {
        pattern: regex::Regex::new(pattern).expect("pattern compiles"),
        min: num("minLength", 0),
        max: num("maxLength", usize::MAX),
    }
}

type Check = fn(&str) -> bool;

/// Built once: serialising the CRD and compiling its patterns per proptest case is slow.
static CHECKS: std::sync::LazyLock<Vec<(&'static str, FieldRule, Check)>> =
    std::sync::LazyLock::new(checks);

fn checks() -> Vec<(&'static str, FieldRule, Check)> {
    vec![
        ("environment", crd_rule(&["environment"]), is_dns_label),
        (
            "service name",
            crd_rule(&["services", "[]", "name"]),
            is_dns_label,
        ),
        (
            "version",
            crd_rule(&["services", "[]", "version"]),
            is_version,
        ),
        ("digest", crd_rule(&["services", "[]", "digest"]), is_digest),
        (
            "repository",
            crd_rule(&["source", "repository"]),
            is_repository,
        ),
        ("commit", crd_rule(&["source", "commit"]), is_commit),
        ("run URL", crd_rule(&["source", "runUrl"]), is_run_url),
    ]
}

#[test]
fn checks_agree_with_the_crd_on_edge_cases() {
    let hex40 = "a".repeat(40);
    let hex64 = "0".repeat(64);
    let samples: Vec<String> = [
        "",
        "a",
        "-",
        "a-",
        "-a",
        "a-b",
        "a--b",
        "A",
        "a.b",
        "a_b",
        "_",
        "_a",
        ".a",
        "a+b",
        "1",
        "api-v9.1.1",
        "v1.2.3+build",
        "a/b",
        "/b",
        "a/",
        "a//b",
        "a/b/c",
        "o/r.js",
        "a b",
        "a\n",
        "\na",
        "é",
        "sha256:",
        "http://",
        "https://x",
        "http:/x",
        "HTTP://x",
        "ftp://x",
        "api\u{0}",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        "a".repeat(63),
        "a".repeat(64),
        "v".repeat(128),
        "v".repeat(129),
        hex40.clone(),
        hex40.to_uppercase(),
        "a".repeat(39),
        "a".repeat(41),
        hex64.clone(),
        "g".repeat(40),
        format!("sha256:{hex64}"),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{hex40}"),
        format!("sha512:{hex64}"),
        format!("{}/{}", "o".repeat(69), "r".repeat(70)),
        format!("{}/{}", "o".repeat(70), "r".repeat(70)),
        format!("https://{}", "x".repeat(2040)),
        format!("https://{}", "x".repeat(2041)),
    ])
    .collect();
    for (field, rule, check) in CHECKS.iter() {
        for s in &samples {
            assert_eq!(
                check(s),
                rule.accepts(s),
                "{field}: {s:?} (CRD pattern {})",
                rule.pattern
            );
        }
    }
}

fn near_miss() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.+:/@ -]{0,12}",
        "[a-z0-9-]{0,70}",
        "[a-fA-F0-9]{38,66}",
        "sha256:[a-g0-9]{62,66}",
        "[A-Za-z0-9_.-]{0,70}/[A-Za-z0-9_./-]{0,72}",
        "(https?|ftp)://[a-z./]{0,8}",
        "[A-Za-z0-9_][A-Za-z0-9_.+-]{120,130}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn checks_agree_with_the_crd_patterns(s in near_miss()) {
        for (field, rule, check) in CHECKS.iter() {
            prop_assert_eq!(check(&s), rule.accepts(&s), "{}: {:?}", field, s);
        }
    }
}

// ---------------------------------------------------------------------------
// The name

fn is_hash(s: &str) -> bool {
    s.len() == 8
        && s.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[test]
fn the_name_is_readable_and_the_same_for_the_same_request() {
    let spec = spec_of(&["api=api-v9.1.1", "web=web-v5.0.1"]);
    let name = derive_name(&spec);
    let (readable, hash) = name.rsplit_once('-').expect("hash suffix");
    assert_eq!(readable, "staging-api-api-v9-1-1");
    assert!(is_hash(hash), "{name}");
    assert_eq!(
        derive_name(&spec_of(&["api=api-v9.1.1", "web=web-v5.0.1"])),
        name
    );
    // A re-run of the job may link another run: same request, same name.
    let with_run = plan_of(&[
        "api=api-v9.1.1",
        "web=web-v5.0.1",
        "--run-url",
        "https://ci/runs/1/attempts/2",
    ])
    .expect("valid");
    assert_eq!(with_run.name, name);
    // Anything that changes the request changes the name.
    let other_sha = format!("camaradesuk/syrf@{}", "1".repeat(40));
    let others = [
        spec_of(&["api=api-v9.1.1"]),
        spec_of(&["api=api-v9.1.2", "web=web-v5.0.1"]),
        spec_of(&["api=api-v9.1.1", "web=web-v5.0.2"]),
        spec_of(&["api=api-v9.1.1", "docs=web-v5.0.1"]),
        spec_of(&["api=api-v9.1.1", "web=web-v5.0.1", "docs=d1"]),
        plan(&args(&[
            "--environment",
            "production",
            "--source",
            &source_arg(),
            "api=api-v9.1.1",
            "web=web-v5.0.1",
        ]))
        .expect("valid")
        .spec,
        plan(&args(&[
            "--environment",
            "staging",
            "--source",
            &other_sha,
            "api=api-v9.1.1",
            "web=web-v5.0.1",
        ]))
        .expect("valid")
        .spec,
        plan(&args(&[
            "--environment",
            "staging",
            "--source",
            &format!("camaradesuk/other@{SHA}"),
            "api=api-v9.1.1",
            "web=web-v5.0.1",
        ]))
        .expect("valid")
        .spec,
    ];
    for other in &others {
        assert_ne!(derive_name(other), name, "{other:?}");
    }
    // The same string as a version and as part of a name must not collide.
    assert_ne!(
        request_hash(&spec_of(&["api=v1"])),
        request_hash(&spec_of(&["api=v1", "b=c"]))
    );
}

#[test]
fn the_name_is_a_valid_object_name_for_the_longest_request() {
    let env = "e".repeat(63);
    let svc = format!("s{}", "-x".repeat(31));
    let version = format!("V_{}", "1.".repeat(63));
    let a = args(&[
        "--environment",
        &env,
        "--source",
        &source_arg(),
        &format!("{svc}={version}"),
    ]);
    let p = plan(&a).expect("valid");
    assert!(p.name.len() <= 253, "{}", p.name.len());
    assert!(is_dns_subdomain(&p.name), "{}", p.name);
    let subdomain =
        regex::Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
            .expect("regex");
    assert!(subdomain.is_match(&p.name));
    assert!(is_hash(&p.name[p.name.len() - 8..]), "{}", p.name);
    assert!(p.name.starts_with(&format!("{env}-{svc}-v-1-1-1")));
    assert!(!p.name.contains("--"), "{}", p.name);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn every_derived_name_is_a_valid_object_name(
        env in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
        svc in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
        version in "[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}",
    ) {
        let spec = PromotionSpec {
            environment: env,
            source: None,
            services: vec![parse_service(&format!("{svc}={version}")).expect("valid")],
            rollback: None,
        };
        let name = derive_name(&spec);
        prop_assert!(name.len() <= 253);
        prop_assert!(is_dns_subdomain(&name), "{}", name);
        prop_assert!(!name.contains("--") || spec.environment.contains("--") || svc.contains("--"), "{}", name);
        prop_assert!(is_hash(&name[name.len() - 8..]));
    }
}

#[test]
fn a_digest_is_abbreviated_in_the_name() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let name = derive_name(&spec_of(&[&format!("api={digest}")]));
    let (readable, hash) = name.rsplit_once('-').expect("hash");
    assert_eq!(readable, "staging-api-sha256-0123456789ab");
    assert!(is_hash(hash));
}

#[test]
fn name_can_be_given() {
    let p = plan_of(&["api=v1", "--name", "release-42.staging"]).expect("valid");
    assert_eq!(p.name, "release-42.staging");
    for bad in ["", "-a", "a-", "a..b", "A", "a_b", &"a".repeat(254)] {
        assert!(
            matches!(
                plan_of(&["api=v1", &format!("--name={bad}")]),
                Err(PromoteError::Name(_))
            ),
            "{bad:?}"
        );
    }
    assert!(plan_of(&["api=v1", "--name", &"a".repeat(253)]).is_ok());
}

// ---------------------------------------------------------------------------
// The object and --dry-run

#[test]
fn dry_run_yaml_is_the_promotion_as_kubectl_takes_it() {
    let p = plan_of(&[
        "api=api-v9.1.1",
        &format!("web=sha256:{}", "ab".repeat(32)),
        "--run-url",
        "https://github.com/camaradesuk/syrf/actions/runs/42",
    ])
    .expect("valid");
    let object = promotion("syrf", &p.name, p.spec.clone());
    let yaml = to_yaml(&object).expect("renders");
    let want = format!(
        "apiVersion: baton.dev/v1alpha1
kind: Promotion
metadata:
  name: {}
  namespace: syrf
spec:
  environment: staging
  source:
    repository: camaradesuk/syrf
    commit: {SHA}
    runUrl: https://github.com/camaradesuk/syrf/actions/runs/42
  services:
  - name: api
    version: api-v9.1.1
  - name: web
    digest: sha256:{}
",
        p.name,
        "ab".repeat(32)
    );
    assert_eq!(yaml, want);
    let back: Promotion = serde_saphyr::from_str(&yaml).expect("parses back");
    assert_eq!(back.spec, p.spec);
    assert_eq!(back.metadata.name.as_deref(), Some(p.name.as_str()));
    assert_eq!(back.metadata.namespace.as_deref(), Some("syrf"));
    assert!(back.status.is_none());
}

#[test]
fn a_version_that_looks_like_a_yaml_scalar_stays_a_string() {
    // `1.10` or `true` unquoted would read back as a number or a bool.
    for v in ["1.10", "true", "1e3", "0x10", "null", "1_000"] {
        let p = plan_of(&[&format!("api={v}")]).expect("valid");
        let yaml = to_yaml(&promotion("ns", &p.name, p.spec.clone())).expect("renders");
        let back: Promotion = serde_saphyr::from_str(&yaml).expect("parses back");
        assert_eq!(back.spec.services[0].version.as_deref(), Some(v), "{yaml}");
        let generic: serde_json::Value = serde_saphyr::from_str(&yaml).expect("parses");
        assert_eq!(
            generic["spec"]["services"][0]["version"],
            serde_json::json!(v),
            "{yaml}"
        );
    }
}

#[test]
fn differences_name_each_field_and_ignore_the_run_url() {
    let wanted = spec_of(&["api=v2"]);
    let mut same = wanted.clone();
    if let Some(s) = same.source.as_mut() {
        s.run_url = Some("https://ci/other".into());
    }
    assert!(differences(&wanted, &same).is_empty());
    let mut other = spec_of(&["api=v1", "web=v1"]);
    other.environment = "production".into();
    other.source = None;
    assert_eq!(
        differences(&wanted, &other),
        [
            "environment production (asked: staging)".to_owned(),
            "services api=v1 web=v1 (asked: api=v2)".to_owned(),
            format!("source none (asked: camaradesuk/syrf@{SHA})"),
        ]
    );
}

// ---------------------------------------------------------------------------
// --wait

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_795_000_000 + secs).expect("time")
}

fn with_status(phase: Phase, reason: &str, message: &str, pr: Option<&str>) -> Promotion {
    let p = plan_of(&["api=v1"]).expect("valid");
    let mut object = promotion("syrf", "staging-api-v1-0a1b2c3d", p.spec);
    let mut status = PromotionStatus {
        phase: Some(phase),
        conditions: vec![Condition {
            r#type: TYPE_READY.into(),
            status: if phase == Phase::Synced {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            reason: reason.into(),
            message: message.into(),
            observed_generation: Some(1),
            last_transition_time: Time(at(0)),
        }],
        pull_request: pr.map(|url| PullRequestStatus {
            number: 7,
            url: url.into(),
            branch: "baton/syrf/x".into(),
            ..PullRequestStatus::default()
        }),
        ..PromotionStatus::default()
    };
    // Times 0, 1, 2, 3 s for Pending, PROpened, Merged and the phase after.
    let order = [Phase::Pending, Phase::PrOpened, Phase::Merged];
    let reached = order.iter().position(|p| *p == phase);
    for (i, p) in (0u8..).zip(order) {
        if reached.is_none_or(|r| usize::from(i) <= r) {
            status.phase_times.enter(p, Time(at(i64::from(i))));
        }
    }
    if reached.is_none() {
        status.phase_times.enter(phase, Time(at(3)));
    }
    object.status = Some(status);
    object
}

#[test]
fn exit_code_per_phase() {
    assert_eq!(exit_code(Phase::Synced), Some(0));
    for phase in [Phase::Failed, Phase::Rejected, Phase::Superseded] {
        assert_eq!(exit_code(phase), Some(1), "{phase}");
    }
    for phase in [Phase::Pending, Phase::PrOpened, Phase::Merged] {
        assert_eq!(exit_code(phase), None, "{phase}");
    }
    assert_eq!((EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT), (0, 1, 2));
}

#[test]
fn progress_prints_each_phase_once_and_the_pull_request_when_it_appears() {
    let mut progress = Progress::default();
    let now = at(100);
    let mut fresh = with_status(Phase::Pending, "", "", None);
    fresh.status = None;
    assert_eq!(
        progress.observe(&fresh, now),
        Step::default(),
        "no status yet"
    );

    let pending = with_status(Phase::Pending, "Queued", "waiting for staging-api-v0", None);
    let step = progress.observe(&pending, now);
    assert_eq!(
        step.lines,
        ["2026-11-18T11:06:40Z  Pending     waiting for staging-api-v0"]
    );
    assert_eq!(step.end, None);
    assert_eq!(
        progress.observe(&pending, now),
        Step::default(),
        "nothing new"
    );

    let url = "https://github.com/camaradesuk/cluster-gitops/pull/7";
    let opened = with_status(
        Phase::PrOpened,
        "WaitingForReview",
        "pull request is open and waiting for review",
        Some(url),
    );
    assert_eq!(
        progress.observe(&opened, now).lines,
        [
            "2026-11-18T11:06:41Z  PROpened    pull request is open and waiting for review"
                .to_owned(),
            format!("2026-11-18T11:06:41Z  pull request {url}"),
        ]
    );
    assert_eq!(progress.observe(&opened, now), Step::default());

    let synced = with_status(
        Phase::Synced,
        "Synced",
        "every Application is Synced and Healthy at the merged revision",
        Some(url),
    );
    let step = progress.observe(&synced, now);
    assert_eq!(
        step.lines,
        [
            "2026-11-18T11:06:43Z  Synced      every Application is Synced and Healthy at the merged revision"
        ]
    );
    assert_eq!(step.end, Some(End::Synced));
    assert_eq!(progress.phase(), Some(Phase::Synced));
}

#[test]
fn a_first_look_at_a_finished_promotion_prints_in_time_order() {
    let url = "https://github.com/camaradesuk/cluster-gitops/pull/7";
    let synced = with_status(Phase::Synced, "Synced", "done", Some(url));
    let step = Progress::default().observe(&synced, at(100));
    assert_eq!(
        step.lines,
        [
            format!("2026-11-18T11:06:41Z  pull request {url}"),
            "2026-11-18T11:06:43Z  Synced      done".to_owned(),
        ]
    );
    assert_eq!(step.end, Some(End::Synced));
}

#[test]
fn a_phase_without_a_recorded_time_is_stamped_now_and_kept_on_one_line() {
    let mut p = with_status(Phase::Merged, "WaitingForSync", "waiting\nfor api", None);
    if let Some(s) = p.status.as_mut() {
        s.phase_times = Default::default();
    }
    let step = Progress::default().observe(&p, at(5));
    assert_eq!(
        step.lines,
        ["2026-11-18T11:06:45Z  Merged      waiting for api"]
    );
    assert_eq!(phase_line("T", Phase::Pending, ""), "T  Pending");
}

#[test]
fn an_unsuccessful_end_says_why() {
    let failed = with_status(
        Phase::Failed,
        "SyncTimeout",
        "api-staging not Synced within 30m",
        None,
    );
    let step = Progress::default().observe(&failed, at(0));
    assert_eq!(
        step.end,
        Some(End::Unsuccessful {
            phase: Phase::Failed,
            message: "promotion syrf/staging-api-v1-0a1b2c3d ended Failed: SyncTimeout: api-staging not Synced within 30m".into()
        })
    );
    let rejected = with_status(
        Phase::Rejected,
        "PullRequestClosed",
        "closed unmerged",
        None,
    );
    assert!(matches!(
        Progress::default().observe(&rejected, at(0)).end,
        Some(End::Unsuccessful {
            phase: Phase::Rejected,
            ..
        })
    ));
    let mut superseded = with_status(
        Phase::Superseded,
        "Superseded",
        "replaced by staging-api-v2",
        None,
    );
    if let Some(s) = superseded.status.as_mut() {
        s.superseded_by = Some(SupersededBy {
            promotion: "staging-api-v2".into(),
            pull_request_url: Some("https://github.com/o/g/pull/8".into()),
        });
    }
    let Some(End::Unsuccessful { message, .. }) =
        Progress::default().observe(&superseded, at(0)).end
    else {
        panic!("Superseded ends the wait unsuccessfully");
    };
    assert_eq!(
        message,
        "promotion syrf/staging-api-v1-0a1b2c3d ended Superseded: Superseded: replaced by staging-api-v2; superseded by promotion staging-api-v2 (https://github.com/o/g/pull/8)"
    );
}
