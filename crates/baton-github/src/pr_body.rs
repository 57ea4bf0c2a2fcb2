//! The promotion pull request's title and body, like the hand-made PRs of the seeds:
//! what changes (old -> new), where it came from, what to check, and a hidden marker
//! naming the Promotion so the PR can always be traced back.

use crate::naming::{MAX_PR_BODY, truncate};

/// One service line of the PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChange {
    pub service: String,
    /// Current value in the GitOps repository, if known.
    pub from: Option<String>,
    pub to: String,
    /// Files the change touches.
    pub files: Vec<String>,
}

/// Where some of the services were built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine<'a> {
    pub repository: &'a str,
    pub commit: &'a str,
    pub run_url: Option<&'a str>,
    /// The services built there.
    pub services: Vec<&'a str>,
}

/// Inputs of the PR text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrText<'a> {
    pub environment: &'a str,
    pub namespace: &'a str,
    pub promotion: &'a str,
    /// The Promotion object's UID: only a PR carrying it is ever adopted.
    pub uid: &'a str,
    /// One line per distinct source (repository + commit).
    pub sources: &'a [SourceLine<'a>],
    pub web_url: &'a str,
    /// Extra paragraphs: where an automatic promotion came from, a window override.
    pub notes: &'a [String],
    pub services: &'a [ServiceChange],
    pub checklist: &'a [String],
    pub applications: &'a [String],
    /// A rollback: titled "Roll back ...".
    pub rollback: bool,
}

/// The hidden marker Baton puts in every PR body: it names the Promotion and the UID of
/// the object, so a PR belongs to exactly one Promotion.
pub fn marker(namespace: &str, promotion: &str, uid: &str) -> String {
    format!("<!-- baton:promotion {namespace}/{promotion} uid={uid} -->")
}

/// The Promotion UID of a PR body's marker, if it has one.
pub fn marker_uid(body: &str) -> Option<&str> {
    let start = body.find("<!-- baton:promotion ")?;
    let rest = &body[start..];
    let end = rest.find("-->")?;
    let uid = rest[..end]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("uid="))?;
    (!uid.is_empty()).then_some(uid)
}

/// `Promote api:api-v9.1.1 to production` or `Promote 3 services to production`.
pub fn title(t: &PrText<'_>) -> String {
    if t.rollback {
        return match t.services {
            [one] => format!(
                "Roll back {} to {} in {}",
                one.service, one.to, t.environment
            ),
            many => format!("Roll back {} services in {}", many.len(), t.environment),
        };
    }
    match t.services {
        [one] => format!("Promote {}:{} to {}", one.service, one.to, t.environment),
        many => format!("Promote {} services to {}", many.len(), t.environment),
    }
}

/// The commit message of the promotion commit.
pub fn commit_message(t: &PrText<'_>) -> String {
    let lines: Vec<String> = t
        .services
        .iter()
        .map(|s| {
            format!(
                "- {}: {} -> {}",
                s.service,
                s.from.as_deref().unwrap_or("(unset)"),
                s.to
            )
        })
        .collect();
    let sources: Vec<String> = t
        .sources
        .iter()
        .map(|s| format!("Source: {}@{}", s.repository, s.commit))
        .collect();
    format!(
        "{}\n\n{}\n\nPromotion: {}/{}\n{}",
        title(t),
        lines.join("\n"),
        t.namespace,
        t.promotion,
        sources.join("\n")
    )
}

/// The PR body, never longer than GitHub accepts.
pub fn body(t: &PrText<'_>) -> String {
    let mut head = format!(
        "## {kind} {env} - review required\n\nThis PR {verb} {n} {prep} **{env}**. Baton opened it for the Promotion `{ns}/{name}` and will report the deployment on the source commit once Argo CD has synced it.\n\n",
        env = t.environment,
        n = if t.services.len() == 1 {
            "one service".to_owned()
        } else {
            format!("{} services", t.services.len())
        },
        ns = t.namespace,
        name = t.promotion,
        kind = if t.rollback {
            "Rollback in"
        } else {
            "Promotion to"
        },
        verb = if t.rollback { "rolls back" } else { "promotes" },
        prep = if t.rollback { "in" } else { "to" },
    );
    let web = t.web_url.trim_end_matches('/');
    let link = |s: &SourceLine<'_>| {
        let short = s.commit.get(..8).unwrap_or(s.commit);
        format!("[{short}]({web}/{}/commit/{})", s.repository, s.commit)
    };
    match t.sources {
        [one] => {
            head.push_str(&format!("**Source commit**: {}\n", link(one)));
            if let Some(run) = one.run_url {
                head.push_str(&format!("**Source run**: [{run}]({run})\n"));
            }
        }
        many => {
            head.push_str("**Source commits**:\n");
            for s in many {
                let run = s
                    .run_url
                    .map(|r| format!(" ([run]({r}))"))
                    .unwrap_or_default();
                head.push_str(&format!("- {}: {}{run}\n", s.services.join(", "), link(s)));
            }
        }
    }
    for note in t.notes {
        head.push_str(&format!("\n{note}\n"));
    }
    head.push_str("\n### Services updated\n\n| Service | From | To | Files |\n|---|---|---|---|\n");

    let mut tail = String::new();
    if !t.checklist.is_empty() {
        tail.push_str("\n### Review checklist\n\nBefore merging, please verify:\n\n");
        for item in t.checklist {
            tail.push_str(&format!("- [ ] {item}\n"));
        }
    }
    tail.push_str("\n### Deployment\n\n");
    if t.applications.is_empty() {
        tail.push_str("Once merged, Argo CD syncs the change.\n");
    } else {
        let apps: Vec<String> = t.applications.iter().map(|a| format!("`{a}`")).collect();
        tail.push_str(&format!("Once merged, Argo CD syncs {}; Baton waits until they are Synced and Healthy at the merge commit.\n", apps.join(", ")));
    }
    tail.push_str(&format!("\n{}\n", marker(t.namespace, t.promotion, t.uid)));

    // Rows are added while they fit, so the marker and checklist always survive.
    let budget = MAX_PR_BODY.saturating_sub(head.chars().count() + tail.chars().count() + 64);
    let mut rows = String::new();
    for (i, s) in t.services.iter().enumerate() {
        let row = format!(
            "| {} | `{}` | `{}` | {} |\n",
            s.service,
            truncate(s.from.as_deref().unwrap_or("(unset)"), 200),
            truncate(&s.to, 200),
            truncate(&s.files.join(", "), 500)
        );
        if rows.chars().count() + row.chars().count() > budget {
            rows.push_str(&format!("| … and {} more | | | |\n", t.services.len() - i));
            break;
        }
        rows.push_str(&row);
    }
    format!("{head}{rows}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, from: &str, to: &str) -> ServiceChange {
        ServiceChange {
            service: name.into(),
            from: Some(from.into()),
            to: to.into(),
            files: vec![format!("syrf/environments/production/{name}/config.yaml")],
        }
    }

    const SOURCES: &[SourceLine<'static>] = &[SourceLine {
        repository: "camaradesuk/syrf-test",
        commit: "6b47f42a0c3d8e9f1a2b3c4d5e6f708192a3b4c5",
        run_url: Some("https://github.com/camaradesuk/syrf-test/actions/runs/19340633801"),
        services: Vec::new(),
    }];

    fn text<'a>(
        services: &'a [ServiceChange],
        checklist: &'a [String],
        apps: &'a [String],
    ) -> PrText<'a> {
        PrText {
            environment: "production",
            namespace: "syrf",
            promotion: "api-v9-1-1-to-production",
            uid: "uid-1",
            sources: SOURCES,
            web_url: "https://github.com",
            notes: &[],
            rollback: false,
            services,
            checklist,
            applications: apps,
        }
    }

    #[test]
    fn reads_like_the_seed_pr() {
        let services = [svc("api", "api-v9.1.0", "api-v9.1.1")];
        let checklist = vec![
            "All services have been tested in staging".to_owned(),
            "No critical issues reported in staging".to_owned(),
        ];
        let apps = vec!["api-production".to_owned()];
        let t = text(&services, &checklist, &apps);
        assert_eq!(title(&t), "Promote api:api-v9.1.1 to production");
        let b = body(&t);
        assert!(b.contains("**Source commit**: [6b47f42a](https://github.com/camaradesuk/syrf-test/commit/6b47f42a0c3d8e9f1a2b3c4d5e6f708192a3b4c5)"), "{b}");
        assert!(b.contains(
            "**Source run**: [https://github.com/camaradesuk/syrf-test/actions/runs/19340633801]"
        ));
        assert!(b.contains(
            "| api | `api-v9.1.0` | `api-v9.1.1` | syrf/environments/production/api/config.yaml |"
        ));
        assert!(b.contains("- [ ] All services have been tested in staging\n- [ ] No critical issues reported in staging\n"));
        assert!(b.contains("`api-production`"));
        assert!(b.ends_with("<!-- baton:promotion syrf/api-v9-1-1-to-production uid=uid-1 -->\n"));
    }

    #[test]
    fn several_services_get_a_plural_title() {
        let services = [
            svc("api", "a", "b"),
            svc("web", "c", "d"),
            svc("docs", "e", "f"),
        ];
        assert_eq!(
            title(&text(&services, &[], &[])),
            "Promote 3 services to production"
        );
        let msg = commit_message(&text(&services, &[], &[]));
        assert!(msg.contains("- web: c -> d"));
    }

    #[test]
    fn huge_promotions_stay_under_github_limit_and_keep_the_marker() {
        let services: Vec<ServiceChange> = (0..2000)
            .map(|i| svc(&format!("service-{i}"), &"v".repeat(100), &"w".repeat(100)))
            .collect();
        let b = body(&text(&services, &["check".to_owned()], &[]));
        assert!(b.chars().count() <= MAX_PR_BODY, "{}", b.chars().count());
        assert!(b.contains("more |"));
        assert!(b.contains("- [ ] check"));
        assert!(b.contains(&marker("syrf", "api-v9-1-1-to-production", "uid-1")));
        assert_eq!(marker_uid(&b), Some("uid-1"));
    }
}
