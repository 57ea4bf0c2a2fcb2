//! Golden files: real-looking GitOps files, one edit each, the exact expected bytes.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use baton_manifest::{Edit, KustomizeImage, apply};

const DIGEST: &str = "sha256:9b2a5e7c1d0f3e4a6b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

fn set(path: &str, value: &str) -> Edit {
    Edit::Set {
        path: path.into(),
        value: value.into(),
    }
}

fn image(name: &str, tag: Option<&str>, digest: Option<&str>, new_name: Option<&str>) -> Edit {
    Edit::KustomizeImage(KustomizeImage {
        name: name.into(),
        new_tag: tag.map(Into::into),
        digest: digest.map(Into::into),
        new_name: new_name.map(Into::into),
    })
}

fn golden(input: &str, output: &str, edits: &[Edit]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let text = std::fs::read_to_string(dir.join(input)).expect("input");
    let expected = std::fs::read_to_string(dir.join(output)).expect("expected output");
    let mut got = text;
    for e in edits {
        got = apply(input, &got, e).unwrap_or_else(|err| panic!("{input}: {err}"));
    }
    assert!(
        got == expected,
        "{input} -> {output} differs:\n--- got ---\n{got}\n--- expected ---\n{expected}"
    );
}

#[test]
fn syrf_chart_tag_keeps_comments_blank_lines_and_spacing() {
    golden(
        "syrf-config.in.yaml",
        "syrf-config.out.yaml",
        &[set("service.chartTag", "api-v9.1.1")],
    );
}

#[test]
fn overlay_tag_bump_keeps_double_quotes_and_comment() {
    golden(
        "overlay-prod.in.yaml",
        "overlay-prod-tag.out.yaml",
        &[image("cartservice", Some("v1.0.2"), None, None)],
    );
    golden(
        "overlay-prod.in.yaml",
        "overlay-prod-tag.out.yaml",
        &[set("images[name=cartservice].newTag", "v1.0.2")],
    );
}

#[test]
fn overlay_digest_replaces_the_conflicting_tag() {
    golden(
        "overlay-prod.in.yaml",
        "overlay-prod-digest.out.yaml",
        &[image("frontend", None, Some(DIGEST), None)],
    );
}

#[test]
fn overlay_tag_replaces_the_conflicting_digest() {
    golden(
        "overlay-prod.in.yaml",
        "overlay-prod-tag-replaces-digest.out.yaml",
        &[image("checkoutservice", Some("v1.1.0"), None, None)],
    );
}

#[test]
fn overlay_missing_image_is_added_in_the_file_style() {
    golden(
        "overlay-prod.in.yaml",
        "overlay-prod-add.out.yaml",
        &[image(
            "adservice",
            Some("v1.0.2"),
            None,
            Some("ghcr.io/boutique/adservice"),
        )],
    );
}

#[test]
fn helm_values_image_tag_is_quoted_when_it_would_read_as_a_number() {
    golden(
        "helm-values.in.yaml",
        "helm-values-quoted.out.yaml",
        &[set("image.tag", "1.10")],
    );
}

#[test]
fn helm_values_nested_block_keeps_double_quotes() {
    golden(
        "helm-values.in.yaml",
        "helm-values-sidecar.out.yaml",
        &[set("sidecar.image.tag", "2.5")],
    );
}

#[test]
fn flow_style_tag_digest_and_add() {
    golden(
        "flow.in.yaml",
        "flow-tag.out.yaml",
        &[image("web", Some("v2.1.0"), None, None)],
    );
    golden(
        "flow.in.yaml",
        "flow-digest.out.yaml",
        &[image("api", None, Some(DIGEST), None)],
    );
    golden(
        "flow.in.yaml",
        "flow-add.out.yaml",
        &[image("worker", Some("v0.1.0"), None, None)],
    );
}

#[test]
fn four_space_indents_are_kept_for_new_keys_and_items() {
    golden(
        "four-spaces.in.yaml",
        "four-spaces-newname.out.yaml",
        &[image(
            "api",
            Some("v3.2.2"),
            None,
            Some("registry.example.com/api"),
        )],
    );
    golden(
        "four-spaces.in.yaml",
        "four-spaces-add.out.yaml",
        &[image("scheduler", Some("v3.2.1"), None, None)],
    );
}

#[test]
fn crlf_line_endings_survive_set_and_add() {
    golden(
        "crlf.in.yaml",
        "crlf.out.yaml",
        &[set("service.chartTag", "web-v5.0.1")],
    );
    golden(
        "crlf-kustomize.in.yaml",
        "crlf-kustomize-add.out.yaml",
        &[image("web", Some("v2"), None, None)],
    );
}

#[test]
fn multi_document_file_with_comments_before_the_separator() {
    golden(
        "multi-doc.in.yaml",
        "multi-doc.out.yaml",
        &[set(
            "spec.template.spec.containers[0].image",
            "ghcr.io/acme/payments-api:v4.1.0",
        )],
    );
    golden(
        "multi-doc.in.yaml",
        "multi-doc.out.yaml",
        &[set(
            "spec.template.spec.containers[name=api].image",
            "ghcr.io/acme/payments-api:v4.1.0",
        )],
    );
}

#[test]
fn missing_final_newline_stays_missing() {
    golden(
        "no-newline.in.yaml",
        "no-newline-add.out.yaml",
        &[image("web", Some("v1.0.0"), None, None)],
    );
    golden(
        "no-newline.in.yaml",
        "no-newline-digest.out.yaml",
        &[image("api", None, Some(DIGEST), None)],
    );
}

#[test]
fn kustomization_without_images_gets_a_list_like_its_other_lists() {
    golden(
        "no-images.in.yaml",
        "no-images-add.out.yaml",
        &[image("api", Some("v1.2.3"), None, None)],
    );
}

#[test]
fn unchanged_value_is_a_no_op() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let text = std::fs::read_to_string(dir.join("syrf-config.in.yaml")).expect("input");
    assert_eq!(
        apply("c.yaml", &text, &set("service.chartTag", "api-v9.1.0")).expect("edit"),
        text
    );
}

#[test]
fn current_values_for_pull_request_tables() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let syrf = std::fs::read_to_string(dir.join("syrf-config.in.yaml")).expect("input");
    assert_eq!(
        baton_manifest::current_value("c", &syrf, &set("service.chartTag", "x"))
            .unwrap()
            .as_deref(),
        Some("api-v9.1.0")
    );
    let overlay = std::fs::read_to_string(dir.join("overlay-prod.in.yaml")).expect("input");
    let cv = |e: &Edit| baton_manifest::current_value("k", &overlay, e).unwrap();
    assert_eq!(
        cv(&image("cartservice", Some("v2"), None, None)).as_deref(),
        Some("v1.0.1")
    );
    assert_eq!(
        cv(&image("checkoutservice", None, Some(DIGEST), None)).as_deref(),
        Some("sha256:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000")
    );
    assert_eq!(cv(&image("adservice", Some("v1"), None, None)), None);
}
