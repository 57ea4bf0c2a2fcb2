//! `baton edit` as a person or script runs it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

fn baton(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .output()
        .expect("baton runs")
}

fn fixture(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kustomization.yaml");
    std::fs::write(&path, text).expect("write");
    (dir, path.to_string_lossy().into_owned())
}

const OVERLAY: &str = "images:\n  - name: api # main API\n    newTag: v1.0.0\n";

#[test]
fn preview_goes_to_stdout_and_leaves_the_file() {
    let (_d, path) = fixture(OVERLAY);
    let out = baton(&["edit", &path, "--set", "images[name=api].newTag=v1.2.3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "images:\n  - name: api # main API\n    newTag: v1.2.3\n"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), OVERLAY);
}

#[test]
fn in_place_kustomize_digest() {
    let (_d, path) = fixture(OVERLAY);
    let digest = "sha256:9b2a5e7c1d0f3e4a6b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";
    let out = baton(&[
        "edit",
        &path,
        "--kustomize-image",
        "api",
        "--digest",
        digest,
        "--in-place",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        format!("images:\n  - name: api # main API\n    digest: {digest}\n")
    );
}

#[test]
fn failure_exits_non_zero_with_the_reason_and_writes_nothing() {
    let (_d, path) = fixture(OVERLAY);
    let out = baton(&[
        "edit",
        &path,
        "--set",
        "images[name=web].newTag=v2",
        "--in-place",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("images[name=web].newTag: entry [name=web] under key `images` not found"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), OVERLAY);
    let bad = baton(&["edit", &path, "--set", "no-equals-sign"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected PATH=VALUE"));
}
