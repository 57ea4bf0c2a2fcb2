//! The provider conformance suite: the GitHub provider against the stateful fake GitHub,
//! through the contract gate (every REST request checked against GitHub's OpenAPI
//! description, every GraphQL document against its schema). Idempotence under repeats,
//! lost responses, rate limits and 5xx bursts; polling with ETags; App tokens; GitHub
//! Enterprise URLs. A second provider (GitLab, Gitea) would pass the same checklist.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use baton_github::*;
use baton_testkit::FakeGitHub;
use baton_testkit::fake_github::{Fault, FaultKind, TOKEN};

const API_FILE: &str = "syrf/environments/production/api/config.yaml";
const WEB_FILE: &str = "syrf/environments/production/web/config.yaml";

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_rate_limit_wait: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        budget_share: 1.0,
    }
}

struct World {
    fake: &'static FakeGitHub,
    gh: GitHub,
    repo: RepoRef,
    full: String,
    source: String,
}

/// The API URL tests talk to: Prism validating against GitHub's description, in front of the fake.
fn api_url() -> String {
    baton_testkit::contract::shared()
        .unwrap_or_else(|e| panic!("contract proxy: {e}"))
        .url()
        .to_owned()
}

async fn setup(test: &str) -> World {
    let fake = baton_testkit::fake_github::shared();
    let full = format!("camaradesuk/gitops-{test}");
    let source = format!("camaradesuk/source-{test}");
    fake.create_repo(
        &full,
        "main",
        &[
            (API_FILE, "service:\n  chartTag: api-v9.1.0\n"),
            (WEB_FILE, "service:\n  chartTag: web-v5.0.0\n"),
        ],
    );
    let repo = RepoRef::parse(&full).unwrap();
    let gh = GitHub::connect(&api_url(), &Credentials::Token(TOKEN.into()), &repo, fast())
        .await
        .expect("connects");
    World {
        fake,
        gh,
        repo,
        full,
        source,
    }
}

async fn change(
    gh: &GitHub,
    repo: &RepoRef,
    files: &[(&str, &str, &str)],
) -> (PromotionChange, BranchHead) {
    let base = gh.branch_head(repo, "main").await.expect("base");
    let mut changes = Vec::new();
    for (path, from, to) in files {
        let current = gh
            .read_file(repo, "main", path)
            .await
            .expect("read")
            .expect("exists");
        changes.push(FileChange {
            path: (*path).into(),
            content: current.content.replace(from, to),
            base_blob_sha: current.blob_sha,
        });
    }
    let c = PromotionChange {
        repo: repo.clone(),
        base_branch: "main".into(),
        head_branch: "baton/syrf/api-to-production".into(),
        commit_message: "Promote api:api-v9.1.1 to production".into(),
        files: changes,
        title: "Promote api:api-v9.1.1 to production".into(),
        body: "body\n<!-- baton:promotion syrf/api-to-production uid=uid-1 -->".into(),
        labels: vec!["requires-review".into()],
        reviewers: vec!["octocat".into()],
        team_reviewers: vec!["platform".into()],
        auto_merge: false,
        owner_uid: "uid-1".into(),
    };
    (c, base)
}

#[tokio::test]
async fn one_file_promotion_opens_one_pr_with_one_commit_however_often_it_runs() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("one_file_promotion_o").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let (c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    let first = gh.open_promotion(&c, &base).await.expect("opens");
    let again = gh
        .open_promotion(&c, &base)
        .await
        .expect("reopens idempotently");
    assert_eq!(first.number, again.number);
    assert_eq!(first.state, PrState::Open);
    assert_eq!(first.labels, vec!["requires-review".to_owned()]);

    let pulls = fake.pulls(repo_name);
    assert_eq!(pulls.len(), 1, "exactly one PR");
    assert_eq!(pulls[0].labels, vec!["requires-review".to_owned()]);
    assert_eq!(pulls[0].reviewers, vec!["octocat".to_owned()]);
    assert_eq!(pulls[0].team_reviewers, vec!["platform".to_owned()]);
    assert_eq!(pulls[0].head, "baton/syrf/api-to-production");
    // The branch holds one commit on top of main with the change; main is untouched.
    let head = fake.branch_sha(repo_name, &c.head_branch).unwrap();
    assert_eq!(fake.parents(repo_name, &head), vec![base.sha.clone()]);
    assert_eq!(
        fake.file(repo_name, &c.head_branch, API_FILE).unwrap(),
        "service:\n  chartTag: api-v9.1.1\n"
    );
    assert_eq!(
        fake.file(repo_name, "main", API_FILE).unwrap(),
        "service:\n  chartTag: api-v9.1.0\n"
    );
}

#[tokio::test]
async fn several_files_go_in_one_commit() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("several_files_go_in").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let (c, base) = change(
        &gh,
        &repo,
        &[
            (API_FILE, "api-v9.1.0", "api-v9.1.1"),
            (WEB_FILE, "web-v5.0.0", "web-v5.0.1"),
        ],
    )
    .await;
    gh.open_promotion(&c, &base).await.expect("opens");
    gh.open_promotion(&c, &base).await.expect("idempotent");
    let head = fake.branch_sha(repo_name, &c.head_branch).unwrap();
    assert_eq!(fake.parents(repo_name, &head), vec![base.sha]);
    assert!(
        fake.file(repo_name, &c.head_branch, API_FILE)
            .unwrap()
            .contains("api-v9.1.1")
    );
    assert!(
        fake.file(repo_name, &c.head_branch, WEB_FILE)
            .unwrap()
            .contains("web-v5.0.1")
    );
    assert_eq!(fake.pulls(repo_name).len(), 1);
}

#[tokio::test]
async fn lost_responses_on_every_create_never_duplicate() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("lost_responses_on_ev").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let (c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    for (method, prefix) in [
        ("POST", "/repos/camaradesuk/cluster-gitops/git/refs"),
        ("PUT", "/repos/camaradesuk/cluster-gitops/contents"),
        ("POST", "/repos/camaradesuk/cluster-gitops/pulls"),
        ("POST", "/repos/camaradesuk/cluster-gitops/issues"),
    ] {
        fake.inject(Fault {
            method: method.into(),
            path_prefix: prefix.into(),
            kind: FaultKind::LostResponse,
            times: 1,
        });
    }
    // A crashed attempt is simply run again; each run may fail part way.
    let mut result = Err(GitHubError::Credentials("not run".into()));
    for _ in 0..3 {
        result = gh.open_promotion(&c, &base).await;
        if result.is_ok() {
            break;
        }
    }
    let pr = result.expect("eventually opens");
    assert_eq!(fake.pulls(repo_name).len(), 1);
    assert_eq!(
        fake.pulls(repo_name)[0].labels,
        vec!["requires-review".to_owned()]
    );
    let head = fake.branch_sha(repo_name, &c.head_branch).unwrap();
    assert_eq!(
        fake.parents(repo_name, &head),
        vec![base.sha],
        "one commit on the branch"
    );
    assert_eq!(pr.number, 1);
}

#[tokio::test]
async fn merge_and_close_are_seen_by_polling_and_unchanged_polls_are_free() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("merge_and_close_are").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let (c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    let pr = gh.open_promotion(&c, &base).await.unwrap();
    let stats = gh.stats();
    assert_eq!(
        gh.observe(&repo, pr.number).await.unwrap().state,
        PrState::Open
    );
    let counted = stats.counted.load(Ordering::Relaxed);
    for _ in 0..3 {
        assert_eq!(
            gh.observe(&repo, pr.number).await.unwrap().state,
            PrState::Open
        );
    }
    assert_eq!(
        stats.counted.load(Ordering::Relaxed),
        counted,
        "304s do not count"
    );
    assert_eq!(stats.not_modified.load(Ordering::Relaxed), 3);
    // The fake is shared by concurrent tests: count only this test's repository.
    let log = fake.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r.status == 304
                && r.conditional
                && r.path.starts_with(&format!("/repos/{repo_name}/")))
            .count(),
        3
    );

    let merge = fake.merge(repo_name, pr.number).unwrap();
    assert_eq!(
        gh.observe(&repo, pr.number).await.unwrap().state,
        PrState::Merged {
            merge_commit: merge.clone()
        }
    );
    assert_eq!(
        fake.file(repo_name, "main", API_FILE).unwrap(),
        "service:\n  chartTag: api-v9.1.1\n"
    );

    // A second promotion whose PR is closed unmerged.
    let (mut c2, base2) = change(&gh, &repo, &[(WEB_FILE, "web-v5.0.0", "web-v5.0.1")]).await;
    c2.head_branch = "baton/syrf/web".into();
    let pr2 = gh.open_promotion(&c2, &base2).await.unwrap();
    fake.close(repo_name, pr2.number);
    assert_eq!(
        gh.observe(&repo, pr2.number).await.unwrap().state,
        PrState::Closed
    );
}

#[tokio::test]
async fn closing_before_merge_removes_pr_and_branch_idempotently() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("closing_before_merge").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let (c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    let pr = gh.open_promotion(&c, &base).await.unwrap();
    gh.close_and_delete_branch(&repo, pr.number, &c.head_branch)
        .await
        .unwrap();
    gh.close_and_delete_branch(&repo, pr.number, &c.head_branch)
        .await
        .unwrap();
    assert_eq!(fake.pulls(repo_name)[0].state, "closed");
    assert!(fake.branch_sha(repo_name, &c.head_branch).is_none());
    assert_eq!(
        gh.find_by_head(&repo, &c.head_branch, "uid-1")
            .await
            .unwrap()
            .map(|p| p.state),
        Some(PrState::Closed)
    );
}

#[tokio::test]
async fn statuses_are_never_duplicated_even_after_a_lost_response() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("statuses_are_never_d").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let sha = fake.create_repo(source_name, "main", &[("README.md", "syrf")]);
    let source = RepoRef::parse(source_name).unwrap();
    let status = CommitStatus {
        state: StatusState::Success,
        context: "argocd/deploy-production".into(),
        description: "Deployed api:api-v9.1.1 to production".into(),
        target_url: Some("https://argocd.example.com/applications/api-production".into()),
    };
    fake.inject(Fault {
        method: "POST".into(),
        path_prefix: format!("/repos/{source_name}/statuses"),
        kind: FaultKind::LostResponse,
        times: 1,
    });
    assert_eq!(
        gh.ensure_status(&source, &sha, &status, false)
            .await
            .unwrap(),
        Outcome::AlreadyPresent
    );
    assert_eq!(
        gh.ensure_status(&source, &sha, &status, true)
            .await
            .unwrap(),
        Outcome::AlreadyPresent
    );
    let posted = fake.statuses(source_name, &sha);
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0].description,
        "Deployed api:api-v9.1.1 to production"
    );
    assert_eq!(posted[0].context, "argocd/deploy-production");
    // A different state is a new status.
    let failed = CommitStatus {
        state: StatusState::Failure,
        ..status.clone()
    };
    assert_eq!(
        gh.ensure_status(&source, &sha, &failed, true)
            .await
            .unwrap(),
        Outcome::Created
    );
    // Over-long descriptions are cut to GitHub's 140 characters instead of refused.
    let long = CommitStatus {
        description: "x".repeat(300),
        ..status
    };
    gh.ensure_status(&source, &sha, &long, true).await.unwrap();
    assert_eq!(
        fake.statuses(source_name, &sha)
            .last()
            .unwrap()
            .description
            .chars()
            .count(),
        140
    );
}

#[tokio::test]
async fn releases_are_created_once_and_updated_in_place() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("releases_are_created").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    fake.create_repo(source_name, "main", &[("README.md", "syrf")]);
    let source = RepoRef::parse(source_name).unwrap();
    let note = ReleaseNote {
        tag: "production/api-v9.1.1".into(),
        target_commitish: "main".into(),
        name: "api-v9.1.1 in production".into(),
        body: "Deployed".into(),
    };
    fake.inject(Fault {
        method: "POST".into(),
        path_prefix: format!("/repos/{source_name}/releases"),
        kind: FaultKind::LostResponse,
        times: 1,
    });
    let first = gh.ensure_release(&source, &note).await;
    let outcome = match first {
        Ok(o) => o,
        Err(_) => gh.ensure_release(&source, &note).await.unwrap(),
    };
    assert!(matches!(
        outcome,
        Outcome::Created | Outcome::AlreadyPresent
    ));
    assert_eq!(
        gh.ensure_release(&source, &note).await.unwrap(),
        Outcome::AlreadyPresent
    );
    let edited = ReleaseNote {
        body: "Deployed, with notes".into(),
        ..note
    };
    assert_eq!(
        gh.ensure_release(&source, &edited).await.unwrap(),
        Outcome::Updated
    );
    let all = fake.releases(source_name);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].body, "Deployed, with notes");
}

#[tokio::test]
async fn rate_limits_and_5xx_bursts_end_in_success_without_duplicates() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("rate_limits_and_5xx").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    fake.inject(Fault {
        method: "GET".into(),
        path_prefix: format!("/repos/{repo_name}/branches"),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: 1,
        },
        times: 2,
    });
    fake.inject(Fault {
        method: "GET".into(),
        path_prefix: format!("/repos/{repo_name}/contents"),
        kind: FaultKind::RateLimitExhausted { reset_in_secs: 1 },
        times: 1,
    });
    fake.inject(Fault {
        method: "POST".into(),
        path_prefix: format!("/repos/{repo_name}/git/refs"),
        kind: FaultKind::ServerError(502),
        times: 2,
    });
    fake.inject(Fault {
        method: "POST".into(),
        path_prefix: format!("/repos/{repo_name}/pulls"),
        kind: FaultKind::ServerError(503),
        times: 3,
    });
    let started = Instant::now();
    let (c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured"
    );
    gh.open_promotion(&c, &base)
        .await
        .expect("succeeds after the storm");
    assert_eq!(fake.pulls(repo_name).len(), 1);
    let log = fake.requests();
    let mine: Vec<_> = log
        .iter()
        .filter(|r| r.path.starts_with(&format!("/repos/{repo_name}/")))
        .collect();
    assert_eq!(mine.iter().filter(|r| r.status == 429).count(), 2);
    assert!(mine.iter().filter(|r| r.status >= 500).count() >= 5);

    // A wait longer than the policy allows is handed back to the caller to requeue.
    fake.inject(Fault {
        method: "GET".into(),
        path_prefix: format!("/repos/{repo_name}/branches"),
        kind: FaultKind::TooManyRequests {
            retry_after_secs: 3600,
        },
        times: 1,
    });
    let err = gh
        .branch_head(&repo, "main")
        .await
        .expect_err("long rate limit is returned");
    assert!(
        matches!(err, GitHubError::RateLimited(d) if d >= Duration::from_secs(3000)),
        "{err:?}"
    );
    assert!(gh.stats().remaining.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn slow_responses_time_out_and_are_retried() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("slow_responses_time").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let policy = RetryPolicy {
        request_timeout: Duration::from_millis(300),
        ..fast()
    };
    let gh = GitHub::connect(
        &fake.url(),
        &Credentials::Token(TOKEN.into()),
        &repo,
        policy,
    )
    .await
    .unwrap();
    fake.inject(Fault {
        method: "GET".into(),
        path_prefix: format!("/repos/{repo_name}/branches"),
        kind: FaultKind::Delay(Duration::from_secs(2)),
        times: 1,
    });
    gh.branch_head(&repo, "main")
        .await
        .expect("second attempt answers");
}

#[tokio::test]
async fn app_installation_tokens_are_found_and_refreshed_on_expiry() {
    let fake = baton_testkit::fake_github::shared();
    let repo_name = "camaradesuk/gitops-app-auth";
    fake.create_repo(
        repo_name,
        "main",
        &[(API_FILE, "service:\n  chartTag: api-v9.1.0\n")],
    );
    // Tokens live 31 s; octocrab renews them 30 s before expiry, so after 1 s.
    fake.install_app(123, 4567, repo_name, Duration::from_secs(31));
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    ))
    .unwrap();
    let data = [("app-id", "123"), ("private-key", key.as_str())]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
    let creds = Credentials::from_secret_data(&data).unwrap();
    assert!(
        !format!("{creds:?}").contains("PRIVATE KEY"),
        "Debug must not print the key"
    );
    let repo = RepoRef::parse(repo_name).unwrap();
    let gh = GitHub::connect(&api_url(), &creds, &repo, fast())
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", fake.requests()));
    gh.branch_head(&repo, "main").await.unwrap();
    gh.branch_head(&repo, "main").await.unwrap();
    assert_eq!(fake.tokens_issued(), 1, "a valid token is reused");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gh.branch_head(&repo, "main").await.unwrap();
    assert_eq!(fake.tokens_issued(), 2, "an expiring token is replaced");
    let log = fake.requests();
    assert!(
        log.iter()
            .any(|r| r.path == format!("/repos/{repo_name}/installation"))
    );
    assert!(
        log.iter()
            .filter(|r| r.path == format!("/repos/{repo_name}/branches/main"))
            .all(|r| r
                .authorization
                .as_deref()
                .is_some_and(|a| a.contains("ghs_installation_4567")))
    );
}

#[tokio::test]
async fn credentials_errors_name_the_problem() {
    let data = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    };
    assert!(
        Credentials::from_secret_data(&data(&[]))
            .unwrap_err()
            .to_string()
            .contains("neither `token` nor `appId` + `privateKey`")
    );
    assert!(
        Credentials::from_secret_data(&data(&[("appId", "1")]))
            .unwrap_err()
            .to_string()
            .contains("privateKey is missing")
    );
    assert!(
        Credentials::from_secret_data(&data(&[("appId", "x"), ("privateKey", "k")]))
            .unwrap_err()
            .to_string()
            .contains("appId is not a number")
    );
    assert!(matches!(
        Credentials::from_secret_data(&data(&[("token", "abc")])).unwrap(),
        Credentials::Token(_)
    ));
    let bad = GitHub::connect(
        &api_url(),
        &Credentials::App {
            app_id: 1,
            private_key: "not a key".into(),
            installation_id: Some(1),
        },
        &RepoRef::parse("camaradesuk/gitops-bad-key").unwrap(),
        fast(),
    )
    .await;
    assert!(
        bad.err()
            .unwrap()
            .to_string()
            .contains("privateKey is not an RSA PEM key")
    );
}

#[tokio::test]
async fn ancestry_answers_are_cached() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("ancestry_answers_are").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let first = fake.branch_sha(repo_name, "main").unwrap();
    let later = fake.push(
        repo_name,
        "main",
        &[("other.yaml", "x: 1\n")],
        "unrelated change",
    );
    assert!(gh.contains(&repo, &first, &later).await.unwrap());
    assert!(!gh.contains(&repo, &later, &first).await.unwrap());
    assert!(gh.contains(&repo, &first, &first).await.unwrap());
    // The fake is shared by concurrent tests: count only this repository's requests.
    let compares = || {
        fake.requests()
            .iter()
            .filter(|r| r.path.starts_with(&format!("/repos/{repo_name}/compare")))
            .count()
    };
    let before = compares();
    assert!(gh.contains(&repo, &first, &later).await.unwrap());
    assert_eq!(compares(), before, "cached");
}

#[tokio::test]
async fn single_service_promotion_costs_eight_counted_requests_when_polling() {
    let World {
        fake,
        gh,
        repo,
        full,
        source,
    } = setup("single_service_promo").await;
    let (repo_name, source_name) = (full.as_str(), source.as_str());
    let _ = (&fake, &gh, &repo, repo_name, source_name);
    let sha = fake.create_repo(source_name, "main", &[("README.md", "syrf")]);
    // The fake is shared by concurrent tests: only this test's repositories count.
    let seen_before = fake.requests().len();
    let stats = gh.stats();
    let start = stats.counted.load(Ordering::Relaxed);
    let (mut c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    // The seeds' production environment: a label, no individual reviewers.
    c.reviewers.clear();
    c.team_reviewers.clear();
    let pr = gh.open_promotion(&c, &base).await.unwrap();
    let graphql_start = stats.graphql.load(Ordering::Relaxed);
    // Merge detection by polling: the batched GraphQL read, once per interval (its own
    // budget, in points), with the source commit's date on the first round.
    let source_repo = RepoRef::parse(source_name).unwrap();
    gh.commit_dates(&[(source_repo.clone(), sha.clone())])
        .await
        .unwrap();
    for _ in 0..2 {
        let open = gh.pull_states(&repo, &[pr.number]).await.unwrap();
        assert_eq!(open[&pr.number].state, PrState::Open);
        assert_eq!(open[&pr.number].review, ReviewDecision::ReviewRequired);
    }
    let merge = fake.merge(repo_name, pr.number).unwrap();
    let seen = gh.pull_states(&repo, &[pr.number]).await.unwrap();
    assert_eq!(
        seen[&pr.number].state,
        PrState::Merged {
            merge_commit: merge.clone()
        }
    );
    gh.delete_branch(&repo, &c.head_branch).await.unwrap();
    // Argo CD reports the merge commit itself: no compare needed.
    assert!(gh.contains(&repo, &merge, &merge).await.unwrap());
    let status = CommitStatus {
        state: StatusState::Success,
        context: "argocd/deploy-production".into(),
        description: "Deployed api:api-v9.1.1 to production".into(),
        target_url: None,
    };
    gh.ensure_status(&source_repo, &sha, &status, false)
        .await
        .unwrap();
    // The lead-time metric's commit date comes from the batched read.
    assert!(gh.commit_time(&source_repo, &sha).await.unwrap().is_some());
    let counted = stats.counted.load(Ordering::Relaxed) - start;
    let graphql = stats.graphql.load(Ordering::Relaxed) - graphql_start;
    let mine = |p: &str| {
        p.starts_with(&format!("/repos/{repo_name}/"))
            || p.starts_with(&format!("/repos/{source_name}/"))
    };
    let by_op: Vec<String> = fake
        .requests()
        .iter()
        .skip(seen_before)
        .filter(|r| r.status != 304 && mine(&r.path))
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    println!(
        "single-service promotion, polling: {counted} counted REST requests, {graphql} GraphQL:\n{}",
        by_op.join("\n")
    );
    assert_eq!(counted as usize, by_op.len());
    assert!(
        !by_op
            .iter()
            .any(|r| r.contains("/pulls/") || r.contains("/git/commits/")),
        "no REST poll and no commit read: {by_op:?}"
    );
    assert_eq!(counted, 8, "polling path: {by_op:?}");
    assert_eq!(graphql, 4, "one commit-date read and three polls");
}

#[tokio::test]
async fn one_query_reads_many_pull_requests() {
    let World {
        fake,
        gh,
        repo,
        full,
        ..
    } = setup("pull_states_batch").await;
    let mut numbers = vec![];
    for (i, (from, to)) in [
        ("api-v9.1.0", "api-v9.1.1"),
        ("api-v9.1.0", "api-v9.1.2"),
        ("api-v9.1.0", "api-v9.1.3"),
    ]
    .iter()
    .enumerate()
    {
        let (mut c, base) = change(&gh, &repo, &[(API_FILE, from, to)]).await;
        c.head_branch = format!("{}-{i}", c.head_branch);
        c.owner_uid = format!("uid-batch-{i}");
        numbers.push(gh.open_promotion(&c, &base).await.unwrap().number);
    }
    fake.review(&full, numbers[0], "alice", "APPROVED");
    fake.review(&full, numbers[0], "bob", "CHANGES_REQUESTED");
    fake.review(&full, numbers[1], "alice", "APPROVED");
    let merge = fake.merge(&full, numbers[1]).unwrap();
    fake.close(&full, numbers[2]);
    let before = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/graphql")
        .count();
    let mut asked = numbers.clone();
    asked.push(99_999);
    let states = gh.pull_states(&repo, &asked).await.unwrap();
    let after = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/graphql")
        .count();
    assert!(after - before >= 1, "read by GraphQL");
    assert_eq!(states.len(), 3, "the unknown PR is left out: {states:?}");
    assert_eq!(states[&numbers[0]].state, PrState::Open);
    assert_eq!(states[&numbers[0]].review, ReviewDecision::ChangesRequested);
    assert_eq!(
        states[&numbers[1]].state,
        PrState::Merged {
            merge_commit: merge
        }
    );
    assert_eq!(states[&numbers[2]].state, PrState::Closed);
    assert!(states[&numbers[0]].node_id.is_some());
}

#[tokio::test]
async fn the_contract_gate_refuses_requests_github_would_refuse() {
    let World { gh, full, .. } = setup("contract_gate").await;
    let bad = serde_json::json!({ "state": "deployed", "context": "argocd/deploy-production" });
    let reply = gh
        .send(
            Operation::CreateStatus,
            http::Method::POST,
            &format!("/repos/{full}/statuses/0123456789abcdef0123456789abcdef01234567"),
            Some(&bad),
        )
        .await
        .expect("answered");
    assert_eq!(reply.status.as_u16(), 422);
    let message = reply.body["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("GitHub contract violation") && message.contains("state"),
        "{message}"
    );
    let gate = baton_testkit::contract::shared().unwrap();
    assert!(
        gate.violations()
            .iter()
            .any(|v| v.path.contains("contract_gate"))
    );
}

#[tokio::test]
async fn auto_merge_and_review_decisions() {
    let World {
        fake,
        gh,
        repo,
        full,
        ..
    } = setup("auto_merge_reviews").await;
    let (mut c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    c.auto_merge = true;
    let pr = gh.open_promotion(&c, &base).await.unwrap();
    assert_eq!(pr.auto_merge_problem, None);
    assert!(fake.pulls(&full)[0].auto_merge);
    assert_eq!(
        gh.review_decision(&repo, pr.number).await.unwrap(),
        ReviewDecision::ReviewRequired
    );
    fake.review(&full, pr.number, "alice", "COMMENTED");
    assert_eq!(
        gh.review_decision(&repo, pr.number).await.unwrap(),
        ReviewDecision::ReviewRequired
    );
    fake.review(&full, pr.number, "alice", "APPROVED");
    assert_eq!(
        gh.review_decision(&repo, pr.number).await.unwrap(),
        ReviewDecision::Approved
    );
    let stats = gh.stats();
    let before = stats.not_modified.load(Ordering::Relaxed);
    assert_eq!(
        gh.review_decision(&repo, pr.number).await.unwrap(),
        ReviewDecision::Approved
    );
    assert_eq!(
        stats.not_modified.load(Ordering::Relaxed),
        before + 1,
        "unchanged reviews are a free 304"
    );
    fake.review(&full, pr.number, "bob", "CHANGES_REQUESTED");
    assert_eq!(
        gh.review_decision(&repo, pr.number).await.unwrap(),
        ReviewDecision::ChangesRequested
    );
    fake.review(&full, pr.number, "bob", "APPROVED");
    assert_eq!(
        gh.review_decision(&repo, pr.number).await.unwrap(),
        ReviewDecision::Approved
    );
}

#[tokio::test]
async fn graphql_documents_are_checked_against_githubs_schema() {
    let World { gh, .. } = setup("graphql_contract").await;
    // The mutation Baton once sent: it declares `$id` but sends `pullRequestId`.
    let wrong = serde_json::json!({
        "query": "mutation($id: ID!) { enablePullRequestAutoMerge(input: { pullRequestId: $id, mergeMethod: SQUASH }) { pullRequest { number } } }",
        "variables": { "pullRequestId": "PR_x" }
    });
    let reply = gh
        .send(
            Operation::EnableAutoMerge,
            http::Method::POST,
            "/graphql",
            Some(&wrong),
        )
        .await
        .expect("answered");
    assert_eq!(reply.status.as_u16(), 422, "{:?}", reply.body);
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"$id\" of required type \"ID!\" was not provided"),
        "{message}"
    );
    // A field GitHub's schema does not have.
    let unknown = serde_json::json!({ "query": "query { viewer { favouriteColour } }" });
    let reply = gh
        .send(
            Operation::EnableAutoMerge,
            http::Method::POST,
            "/graphql",
            Some(&unknown),
        )
        .await
        .expect("answered");
    assert_eq!(reply.status.as_u16(), 422);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("favouriteColour")
    );
}

#[tokio::test]
async fn enterprise_rest_and_graphql_urls() {
    let fake = baton_testkit::fake_github::shared();
    let full = "camaradesuk/gitops-ghe".to_owned();
    fake.create_repo(
        &full,
        "main",
        &[(API_FILE, "service:\n  chartTag: api-v9.1.0\n")],
    );
    let repo = RepoRef::parse(&full).unwrap();
    // GitHub Enterprise Server: REST under /api/v3, GraphQL at /api/graphql.
    let ghe = format!("{}/api/v3", api_url());
    let gh = GitHub::connect(&ghe, &Credentials::Token(TOKEN.into()), &repo, fast())
        .await
        .expect("connects");
    let (mut c, base) = change(&gh, &repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    c.auto_merge = true;
    let pr = gh.open_promotion(&c, &base).await.unwrap();
    assert_eq!(pr.auto_merge_problem, None);
    assert!(
        fake.pulls(&full)[0].auto_merge,
        "auto-merge enabled on Enterprise"
    );
    let gate = baton_testkit::contract::shared().unwrap();
    assert!(
        gate.graphql_paths().iter().any(|p| p == "/api/graphql"),
        "{:?}",
        gate.graphql_paths()
    );
    assert!(!gate.graphql_paths().iter().any(|p| p == "/api/v3/graphql"));
    // github.com: GraphQL at /graphql, next to REST.
    assert_eq!(graphql_base("https://api.github.com"), None);
    assert_eq!(
        graphql_base("https://ghe.example.com/api/v3/").as_deref(),
        Some("https://ghe.example.com/api")
    );
}

#[tokio::test]
async fn deployments_are_created_once_and_retire_only_their_own_service() {
    let w = setup("deployments").await;
    let source_sha = w
        .fake
        .create_repo(&w.source, "main", &[("README.md", "src")]);
    let src = RepoRef::parse(&w.source).unwrap();
    let request = |task: &str, marker: &str| DeploymentRequest {
        repo: src.clone(),
        sha: source_sha.clone(),
        environment: "production".into(),
        task: task.into(),
        description: "api to production".into(),
        production: true,
        marker: marker.into(),
    };
    let update = |state| DeploymentUpdate {
        state,
        description: "step".into(),
        log_url: Some("https://argocd.example.com/applications/argocd/api-production".into()),
        environment_url: None,
    };
    let first =
        w.gh.ensure_deployment(&request("deploy:api", "uid-1/api"), false)
            .await
            .unwrap();
    // After a lost answer, the lookup finds it instead of creating another.
    let again =
        w.gh.ensure_deployment(&request("deploy:api", "uid-1/api"), true)
            .await
            .unwrap();
    assert_eq!(first, again);
    let web =
        w.gh.ensure_deployment(&request("deploy:web", "uid-1/web"), false)
            .await
            .unwrap();
    for id in [first, web] {
        w.gh.deployment_status(&src, id, &update(DeploymentState::Success))
            .await
            .unwrap();
    }
    let second =
        w.gh.ensure_deployment(&request("deploy:api", "uid-2/api"), false)
            .await
            .unwrap();
    w.gh.deployment_status(&src, second, &update(DeploymentState::Success))
        .await
        .unwrap();
    let retired =
        w.gh.retire_previous(&src, "production", "deploy:api", second)
            .await
            .unwrap();
    assert_eq!(retired, Some(first));
    let all = w.fake.deployments(&w.source);
    assert_eq!(all.len(), 3);
    let last = |id: u64| {
        all.iter()
            .find(|d| d.id == id)
            .and_then(|d| d.statuses.last())
            .map(|s| s.state.clone())
    };
    assert_eq!(last(first).as_deref(), Some("inactive"));
    assert_eq!(
        last(web).as_deref(),
        Some("success"),
        "another service's deployment is left alone"
    );
    assert_eq!(last(second).as_deref(), Some("success"));
}

#[tokio::test]
async fn a_result_comment_is_edited_in_place() {
    let w = setup("comments").await;
    let (c, base) = change(&w.gh, &w.repo, &[(API_FILE, "api-v9.1.0", "api-v9.1.1")]).await;
    let pr = w.gh.open_promotion(&c, &base).await.unwrap();
    let marker = "<!-- baton:result uid=uid-1 -->";
    w.gh.upsert_comment(&w.repo, pr.number, marker, &format!("Synced\n{marker}"))
        .await
        .unwrap();
    w.gh.upsert_comment(&w.repo, pr.number, marker, &format!("Synced\n{marker}"))
        .await
        .unwrap();
    w.gh.upsert_comment(&w.repo, pr.number, marker, &format!("Failed\n{marker}"))
        .await
        .unwrap();
    w.gh.comment_once(&w.repo, pr.number, "<!-- other -->", "other <!-- other -->")
        .await
        .unwrap();
    w.gh.comment_once(&w.repo, pr.number, "<!-- other -->", "other <!-- other -->")
        .await
        .unwrap();
    let pull = w
        .fake
        .pulls(&w.full)
        .into_iter()
        .find(|p| p.number == pr.number)
        .unwrap();
    assert_eq!(pull.comments.len(), 2, "{:?}", pull.comments);
    assert!(pull.comments[0].body.starts_with("Failed"));
    assert_eq!(pull.comments[0].edits, 1, "unchanged text is not rewritten");
}

/// GitHub refuses more than 100 concurrent requests from one client (a secondary rate
/// limit); the operator reconciles up to 128 Promotions at once, so one connection
/// keeps at most `MAX_IN_FLIGHT` requests in flight and queues the rest.
#[tokio::test]
async fn one_connection_keeps_a_bounded_number_of_requests_in_flight() {
    let World { fake, gh, .. } = setup("in_flight_bound").await;
    let source_name = "camaradesuk/source-in-flight";
    let sha = fake.create_repo(source_name, "main", &[("README.md", "syrf")]);
    let source = RepoRef::parse(source_name).unwrap();
    let calls = 60;
    fake.inject(Fault {
        method: "POST".into(),
        path_prefix: format!("/repos/{source_name}/statuses"),
        kind: FaultKind::Delay(Duration::from_millis(150)),
        times: calls,
    });
    let posts = (0..calls).map(|i| {
        let (gh, source, sha) = (&gh, &source, &sha);
        async move {
            let status = CommitStatus {
                state: StatusState::Success,
                context: format!("argocd/deploy-{i}"),
                description: format!("Deployed api:api-v{i} to production"),
                target_url: None,
            };
            gh.ensure_status(source, sha, &status, false).await
        }
    });
    let results = futures::future::join_all(posts).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(fake.statuses(source_name, &sha).len(), calls as usize);
    let peak = fake.peak_in_flight(source_name);
    assert!(
        (2..=client::MAX_IN_FLIGHT).contains(&peak),
        "at most {} at once, and more than one: {peak}",
        client::MAX_IN_FLIGHT
    );
}
