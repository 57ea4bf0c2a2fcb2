//! Fail closed: every refusal names the file, the path and the reason.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use baton_manifest::{Edit, EditError, KustomizeImage, apply};

fn set(path: &str, value: &str) -> Edit {
    Edit::Set {
        path: path.into(),
        value: value.into(),
    }
}

fn err(text: &str, edit: &Edit) -> EditError {
    match apply("envs/prod/api.yaml", text, edit) {
        Ok(out) => panic!("expected an error, got:\n{out}"),
        Err(e) => e,
    }
}

#[test]
fn missing_key_names_the_key_and_its_parent() {
    let e = err("service:\n  name: api\n", &set("service.chartTag", "v1"));
    assert!(matches!(e, EditError::NotFound { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "envs/prod/api.yaml: service.chartTag: key `chartTag` under key `service` not found"
    );
}

#[test]
fn missing_top_level_key() {
    let e = err("a: 1\n", &set("service.chartTag", "v1"));
    assert_eq!(
        e.to_string(),
        "envs/prod/api.yaml: service.chartTag: key `service` under the document root not found"
    );
}

#[test]
fn index_out_of_range() {
    let e = err("list: [a, b]\n", &set("list[2]", "c"));
    assert!(
        e.to_string()
            .contains("index [2] under key `list` (it has 2 items) not found"),
        "{e}"
    );
}

#[test]
fn selector_matching_nothing_or_several() {
    let text = "images:\n- name: api\n  newTag: v1\n- name: api\n  newTag: v2\n- name: web\n  newTag: v3\n";
    let none = err(text, &set("images[name=worker].newTag", "v9"));
    assert!(matches!(none, EditError::NotFound { .. }), "{none:?}");
    let many = err(text, &set("images[name=api].newTag", "v9"));
    assert!(
        matches!(many, EditError::Ambiguous { count: 2, .. }),
        "{many:?}"
    );
    let k = Edit::KustomizeImage(KustomizeImage {
        name: "api".into(),
        new_tag: Some("v9".into()),
        ..KustomizeImage::default()
    });
    assert!(matches!(
        err(text, &k),
        EditError::Ambiguous { count: 2, .. }
    ));
}

#[test]
fn invalid_yaml_reports_the_position() {
    let e = err(
        "service:\n  chartTag: [unclosed\n",
        &set("service.chartTag", "v1"),
    );
    match &e {
        EditError::InvalidYaml { file, line, .. } => {
            assert_eq!(file, "envs/prod/api.yaml");
            assert!(*line >= 2, "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        err("a: b: c\n", &set("a", "x")),
        EditError::InvalidYaml { .. }
    ));
    assert!(matches!(
        err("a:\n  - b\n  c: d\n", &set("c", "x")),
        EditError::InvalidYaml { .. }
    ));
}

#[test]
fn target_that_is_not_a_scalar() {
    let e = err("image:\n  repository: x\n  tag: v1\n", &set("image", "v2"));
    assert_eq!(
        e.to_string(),
        "envs/prod/api.yaml: image: the target is a mapping, not a scalar"
    );
    let e = err("tags: [a]\n", &set("tags", "v2"));
    assert!(matches!(
        e,
        EditError::NotAScalar {
            found: "sequence",
            ..
        }
    ));
}

#[test]
fn stepping_into_a_scalar_is_refused() {
    let e = err("image: nginx\n", &set("image.tag", "v2"));
    assert!(
        e.to_string()
            .contains("key `tag` cannot be applied: key `image` is a scalar"),
        "{e}"
    );
}

#[test]
fn block_scalar_target_is_refused() {
    let e = err("notes: |\n  v1\n", &set("notes", "v2"));
    assert!(matches!(e, EditError::Unsupported { .. }), "{e:?}");
}

#[test]
fn path_present_in_several_documents_is_ambiguous() {
    let e = err(
        "image:\n  tag: v1\n---\nimage:\n  tag: v1\n",
        &set("image.tag", "v2"),
    );
    assert!(matches!(e, EditError::Ambiguous { count: 2, .. }), "{e:?}");
}

#[test]
fn malformed_paths_and_edits_are_refused() {
    assert!(matches!(
        err("a: 1\n", &set("a..b", "x")),
        EditError::InvalidPath { .. }
    ));
    let none = Edit::KustomizeImage(KustomizeImage {
        name: "api".into(),
        ..KustomizeImage::default()
    });
    assert!(matches!(
        err("images: []\n", &none),
        EditError::Unsupported { .. }
    ));
    let bad_digest = Edit::KustomizeImage(KustomizeImage {
        name: "api".into(),
        digest: Some("sha256:xyz".into()),
        ..KustomizeImage::default()
    });
    let e = err("images: []\n", &bad_digest);
    assert!(e.to_string().contains("invalid digest"), "{e}");
}

#[test]
fn images_that_is_not_a_sequence_is_refused() {
    let k = Edit::KustomizeImage(KustomizeImage {
        name: "api".into(),
        new_tag: Some("v1".into()),
        ..KustomizeImage::default()
    });
    let e = err("images:\n  api: v1\n", &k);
    assert!(
        e.to_string()
            .contains("`images` is a mapping, expected a sequence"),
        "{e}"
    );
}

#[test]
fn values_that_yaml_would_not_read_as_strings_are_quoted() {
    for (value, written) in [
        ("1.10", "'1.10'"),
        ("yes", "'yes'"),
        ("on", "'on'"),
        ("null", "'null'"),
        ("~", "'~'"),
        ("0x1F", "'0x1F'"),
        ("a: b", "'a: b'"),
        ("a #b", "'a #b'"),
        ("v1.2.3", "v1.2.3"),
    ] {
        let out = apply("f.yaml", "tag: v0 # keep\n", &set("tag", value)).expect("edit");
        assert_eq!(out, format!("tag: {written} # keep\n"));
    }
}
