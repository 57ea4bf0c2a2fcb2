//! What a promotion changes, derived from the Promotion and its Environment. No
//! client required.

use baton_api::environment::EnvironmentSpec;
use baton_api::promotion::{PromotionSpec, ServiceVersion};
use baton_api::template::expand;
use baton_manifest::{Edit, KustomizeImage};

/// Edits to one file of the GitOps repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub path: String,
    /// `(service, edit)` in spec order.
    pub edits: Vec<(String, Edit)>,
}

/// An Argo CD Application a service is deployed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    pub service: String,
    pub namespace: String,
    pub name: String,
}

/// Every file edit of a promotion, grouped by file (one commit holds them all).
pub fn files(
    spec: &PromotionSpec,
    environment: &str,
    env: &EnvironmentSpec,
) -> Result<Vec<FilePlan>, String> {
    let mut out: Vec<FilePlan> = Vec::new();
    for svc in &spec.services {
        let (path, edit) = edit_for(svc, environment, env)?;
        match out.iter_mut().find(|f| f.path == path) {
            Some(f) => f.edits.push((svc.name.clone(), edit)),
            None => out.push(FilePlan {
                path,
                edits: vec![(svc.name.clone(), edit)],
            }),
        }
    }
    Ok(out)
}

fn edit_for(
    svc: &ServiceVersion,
    environment: &str,
    env: &EnvironmentSpec,
) -> Result<(String, Edit), String> {
    let x = |t: &str| expand(t, &svc.name, environment);
    let target = &env.gitops.target;
    match (&target.file, &target.yaml_path, &target.kustomize_image) {
        (Some(file), Some(path), None) => Ok((
            x(file),
            Edit::Set {
                path: x(path),
                value: svc.value().to_owned(),
            },
        )),
        (None, None, Some(k)) => Ok((
            x(&k.file),
            Edit::KustomizeImage(KustomizeImage {
                name: x(&k.image),
                new_tag: svc.version.clone(),
                digest: svc.digest.clone(),
                new_name: k.new_name.as_deref().map(x),
            }),
        )),
        _ => {
            Err("Environment spec.gitops.target must set file + yamlPath, or kustomizeImage".into())
        }
    }
}

/// The Applications of every service.
pub fn applications(
    services: &[ServiceVersion],
    environment: &str,
    env: &EnvironmentSpec,
) -> Vec<AppRef> {
    services
        .iter()
        .map(|s| AppRef {
            service: s.name.clone(),
            namespace: env.applications.namespace.clone(),
            name: expand(&env.applications.name, &s.name, environment),
        })
        .collect()
}

/// `api:api-v9.1.1, web:web-v5.0.1` (digests shortened), for `kubectl get`.
pub fn summary(spec: &PromotionSpec) -> String {
    let parts: Vec<String> = spec
        .services
        .iter()
        .map(|s| format!("{}:{}", s.name, short_value(s.value())))
        .collect();
    baton_github::naming::truncate(&parts.join(", "), 200)
}

/// A digest as `sha256:9b2a5e7c1d0f`, anything else unchanged.
pub fn short_value(value: &str) -> &str {
    match value.strip_prefix("sha256:") {
        Some(_) => value.get(..19).unwrap_or(value),
        None => value,
    }
}

/// The commit status description: "Deployed api:api-v9.1.1 to production", or for
/// several services on one commit "Deployed api:api-v9.1.1, web:web-v5.0.1 to production".
pub fn status_description(
    services: &[(&str, &str)],
    environment: &str,
    success: bool,
    reason: &str,
) -> String {
    let list: Vec<String> = services
        .iter()
        .map(|(s, v)| format!("{s}:{}", short_value(v)))
        .collect();
    let what = list.join(", ");
    let text = if success {
        format!("Deployed {what} to {environment}")
    } else {
        format!("Failed to deploy {what} to {environment}: {reason}")
    };
    baton_github::naming::truncate(&text, baton_github::naming::MAX_STATUS_DESCRIPTION)
}

/// "Superseded by production-from-staging-1a2b3c4d: api:api-v9.1.1 will not be deployed to production by this promotion".
pub fn superseded_description(services: &[(&str, &str)], environment: &str, by: &str) -> String {
    let list: Vec<String> = services
        .iter()
        .map(|(s, v)| format!("{s}:{}", short_value(v)))
        .collect();
    let text = format!(
        "Superseded by {by}: {} not deployed to {environment} by this promotion",
        list.join(", ")
    );
    baton_github::naming::truncate(&text, baton_github::naming::MAX_STATUS_DESCRIPTION)
}

/// FNV-1a over `parts`, in order: names derived from content must be stable across
/// builds and platforms (std's hasher is not).
pub fn content_hash<I, B>(parts: I) -> u64
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.as_ref() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The result comment on a merged PR: each Application Synced/Healthy at which revision,
/// or what failed and Argo CD's message.
pub fn result_comment(
    p: &baton_api::Promotion,
    env: &baton_api::Environment,
    apps: &[baton_api::promotion::ApplicationObservation],
    reason: &str,
    marker: &str,
) -> String {
    use kube::ResourceExt;
    let synced = apps.iter().all(|a| {
        a.at_target
            && a.sync_status.as_deref() == Some("Synced")
            && a.health_status.as_deref() == Some("Healthy")
    }) && !apps.is_empty();
    let outcome = if synced {
        "Synced and Healthy".to_owned()
    } else {
        format!("failed: {reason}")
    };
    let mut out = format!(
        "### Deployment to {}: {outcome}\n\n| Application | Sync | Health | Revision |\n|---|---|---|---|\n",
        p.spec.environment
    );
    let base = env
        .spec
        .applications
        .url
        .as_deref()
        .map(|u| u.trim_end_matches('/'));
    for a in apps {
        let name = match base {
            Some(b) => format!(
                "[{}/{}]({b}/applications/{}/{})",
                a.namespace, a.name, a.namespace, a.name
            ),
            None => format!("`{}/{}`", a.namespace, a.name),
        };
        let rev = a
            .revision
            .as_deref()
            .map(|r| r.get(..7).unwrap_or(r))
            .unwrap_or("-");
        out.push_str(&format!(
            "| {name} | {} | {} | `{rev}` |\n",
            a.sync_status.as_deref().unwrap_or("not found"),
            a.health_status.as_deref().unwrap_or("-"),
        ));
    }
    out.push_str(&format!(
        "\nPromotion `{}/{}`.\n\n{marker}\n",
        p.namespace().unwrap_or_default(),
        p.name_any()
    ));
    baton_github::naming::truncate(&out, baton_github::naming::MAX_PR_BODY)
}

/// `https://github.com` for `https://api.github.com`, `https://ghe.example.com` for
/// `https://ghe.example.com/api/v3`.
pub fn web_url(api: &str) -> String {
    let api = api.trim_end_matches('/');
    if let Some(rest) = api.strip_suffix("/api/v3") {
        return rest.to_owned();
    }
    api.replace("://api.github.com", "://github.com")
}

/// The release tag: namespaced, and unique to the Promotion object (a recycled name
/// never reuses an old release and its `target_commitish`).
pub fn release_tag(environment: &str, namespace: &str, promotion: &str, uid: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("deploy/{environment}/{namespace}/{promotion}-{uid}")
}

/// The release note's body.
pub fn release_body(
    spec: &PromotionSpec,
    namespace: &str,
    promotion: &str,
    pr_url: Option<&str>,
) -> String {
    let lines: Vec<String> = spec
        .services
        .iter()
        .map(|s| format!("- {}: `{}`", s.name, s.value()))
        .collect();
    format!(
        "Deployed to **{}** by Baton (Promotion `{namespace}/{promotion}`).\n\n{}\n{}",
        spec.environment,
        lines.join("\n"),
        pr_url
            .map(|u| format!("\nPull request: {u}\n"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_is_fnv_1a_over_the_parts_in_order() {
        // Known answers of 64-bit FNV-1a: names derived from it must never change.
        assert_eq!(content_hash([""; 0]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(content_hash(["a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(content_hash(["foo", "bar"]), content_hash(["foobar"]));
    }
    use baton_api::environment::{
        ApplicationsSpec, GitHubConnection, GitOpsSpec, KustomizeImageTarget, SecretRef,
        WriteTarget,
    };
    use baton_api::promotion::SourceRef;

    fn env(target: WriteTarget) -> EnvironmentSpec {
        EnvironmentSpec {
            gitops: GitOpsSpec {
                repository: "o/gitops".into(),
                branch: "main".into(),
                target,
            },
            applications: ApplicationsSpec::default(),
            upstream: None,
            auto_promote: false,
            soak_time: None,
            queue: Default::default(),
            windows: vec![],
            rollback: Default::default(),
            history_limit: 10,
            production: false,
            pull_request: Default::default(),
            notifications: Default::default(),
            source_repositories: vec![],
            github: GitHubConnection {
                api_url: "https://api.github.com".into(),
                secret_ref: SecretRef { name: "gh".into() },
            },
            sync_timeout: "30m".into(),
            degraded_grace_period: "5m".into(),
        }
    }

    fn spec(services: &[(&str, Option<&str>, Option<&str>)]) -> PromotionSpec {
        PromotionSpec {
            environment: "production".into(),
            source: Some(SourceRef {
                repository: "o/src".into(),
                commit: "a".repeat(40),
                run_url: None,
            }),
            services: services
                .iter()
                .map(|(n, v, d)| ServiceVersion {
                    name: (*n).into(),
                    version: v.map(Into::into),
                    digest: d.map(Into::into),
                    source: None,
                })
                .collect(),
            rollback: None,
        }
    }

    #[test]
    fn yaml_path_targets_expand_per_service() {
        let e = env(WriteTarget {
            file: Some("syrf/environments/{environment}/{service}/config.yaml".into()),
            yaml_path: Some("service.chartTag".into()),
            kustomize_image: None,
        });
        let f = files(
            &spec(&[
                ("api", Some("api-v9.1.1"), None),
                ("web", Some("web-v5.0.1"), None),
            ]),
            "production",
            &e,
        )
        .unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].path, "syrf/environments/production/api/config.yaml");
        assert_eq!(
            f[0].edits[0].1,
            Edit::Set {
                path: "service.chartTag".into(),
                value: "api-v9.1.1".into()
            }
        );
        let apps = applications(
            &spec(&[("api", Some("x"), None)]).services,
            "production",
            &e,
        );
        assert_eq!(
            apps[0],
            AppRef {
                service: "api".into(),
                namespace: "argocd".into(),
                name: "api-production".into()
            }
        );
    }

    #[test]
    fn shared_file_groups_edits_into_one_file_plan() {
        let e = env(WriteTarget {
            file: None,
            yaml_path: None,
            kustomize_image: Some(KustomizeImageTarget {
                file: "overlays/{environment}/kustomization.yaml".into(),
                image: "ghcr.io/acme/{service}".into(),
                new_name: None,
            }),
        });
        let digest = format!("sha256:{}", "b".repeat(64));
        let f = files(
            &spec(&[("api", None, Some(&digest)), ("web", Some("v2"), None)]),
            "prd",
            &e,
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].edits.len(), 2);
        assert!(
            matches!(&f[0].edits[0].1, Edit::KustomizeImage(k) if k.name == "ghcr.io/acme/api" && k.digest.as_deref() == Some(digest.as_str()) && k.new_tag.is_none())
        );
    }

    #[test]
    fn descriptions_fit_github_and_read_like_the_seeds() {
        assert_eq!(
            status_description(&[("api", "api-v9.1.1")], "production", true, ""),
            "Deployed api:api-v9.1.1 to production"
        );
        let digest = format!("sha256:{}", "c".repeat(64));
        let d = status_description(&[("api", &digest)], "production", false, &"x".repeat(300));
        assert!(d.starts_with("Failed to deploy api:sha256:cccccccccccc to production: "));
        assert_eq!(d.chars().count(), 140);
    }

    #[test]
    fn several_services_on_one_commit_share_one_description() {
        assert_eq!(
            status_description(
                &[("api", "api-v9.1.1"), ("web", "web-v5.0.1")],
                "production",
                true,
                ""
            ),
            "Deployed api:api-v9.1.1, web:web-v5.0.1 to production"
        );
    }

    #[test]
    fn web_urls_for_github_and_enterprise() {
        assert_eq!(web_url("https://api.github.com"), "https://github.com");
        assert_eq!(
            web_url("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com"
        );
        assert_eq!(web_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn release_tags_carry_namespace_and_object() {
        let a = release_tag("production", "team-a", "api", "5f0c1b2a-7e44");
        let b = release_tag("production", "team-b", "api", "5f0c1b2a-7e44");
        let c = release_tag("production", "team-a", "api", "0b6d2f8e-0000");
        assert_eq!(a, "deploy/production/team-a/api-5f0c1b2a");
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
