//! The fake GitHub's repositories are real Git repositories: what it reports is what
//! `git` finds in the repository behind its `file://` URL.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

use baton_testkit::FakeGitHub;

fn git(url: &str, args: &[&str]) -> String {
    let dir = url.strip_prefix("file://").unwrap();
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn commits_trees_and_merges_are_real_git_objects() {
    let fake = FakeGitHub::start().await.unwrap();
    let repo = "acme/gitops";
    let first = fake.create_repo(
        repo,
        "main",
        &[
            ("envs/prod/api.yaml", "version: v1\n"),
            ("README.md", "hi\n"),
        ],
    );
    let url = fake.git_url(repo).unwrap();
    assert!(url.starts_with("file://") && url.ends_with("acme/gitops.git"));
    assert_eq!(git(&url, &["rev-parse", "refs/heads/main"]), first);
    assert_eq!(
        git(&url, &["show", "main:envs/prod/api.yaml"]),
        "version: v1"
    );

    // A branch, as Baton's PR head would be, and a commit to main after it.
    let c = fake.push(repo, "main", &[("README.md", "hello\n")], "readme");
    assert_eq!(fake.parents(repo, &c), vec![first.clone()]);
    assert_eq!(git(&url, &["rev-parse", &format!("{c}^")]), first);
    assert_eq!(fake.file(repo, "main", "README.md").unwrap(), "hello\n");
    assert_eq!(git(&url, &["cat-file", "-t", &c]), "commit");
    assert!(fake.git_url("acme/none").is_none());
    assert_eq!(fake.push(repo, "nope", &[("a", "b")], "m"), "");
    git(&url, &["fsck", "--strict"]);

    // What a write costs: a blob, one tree per folder on the path, a commit, a ref.
    let started = std::time::Instant::now();
    for i in 0..20 {
        let content = format!("version: v{i}\n");
        fake.push(repo, "main", &[("envs/prod/api.yaml", &content)], "bump");
    }
    let per_push = started.elapsed() / 20;
    eprintln!("fake GitHub on real Git: {per_push:?} per pushed commit");
    assert!(
        per_push < std::time::Duration::from_millis(500),
        "{per_push:?}"
    );
}
