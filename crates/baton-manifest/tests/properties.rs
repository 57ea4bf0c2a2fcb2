//! For any valid version: parse(edit(x)) == parse(x) with only that value changed,
//! and every byte outside the value is unchanged.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use baton_manifest::tree::{Value, parse, values};
use baton_manifest::{Edit, KustomizeImage, apply};
use proptest::prelude::*;

const FILE: &str = "# overlay\nimages:\n  - name: api   # the API\n    newTag: v1.0.0\n  - name: web\n    newTag: \"v2.0.0\"  # pinned\n\nservice:\n  chartTag: 'api-v1'   # note\n  flow: {tag: v1, other: x}\n";

fn version() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,4}-?v?[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-rc\\.[0-9])?",
        "[0-9]{1,2}\\.[0-9]{1,2}",
        "[A-Za-z0-9_][A-Za-z0-9_.+-]{0,20}",
        Just("yes".to_owned()),
        Just("1.10".to_owned()),
        Just("0x1F".to_owned()),
    ]
}

/// The file's meaning with the scalar at `steps` of document 0 replaced by `value`.
fn expected(text: &str, steps: &[usize], value: &str) -> Vec<Option<Value>> {
    let docs = parse(text).expect("parses");
    let mut v = values(&docs);
    *v[0].as_mut().expect("doc").at_mut(steps).expect("loc") = Value::string(value);
    v
}

fn check_set(path: &str, steps: &[usize], value: &str) -> Result<(), TestCaseError> {
    let out = apply(
        "f.yaml",
        FILE,
        &Edit::Set {
            path: path.into(),
            value: value.into(),
        },
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let got = values(&parse(&out).map_err(|e| TestCaseError::fail(e.message))?);
    prop_assert_eq!(got, expected(FILE, steps, value));
    // Every byte before and after the old scalar is unchanged.
    let docs = parse(FILE).expect("parses");
    let old = docs[0]
        .as_ref()
        .and_then(|d| d.at(steps))
        .expect("old scalar");
    prop_assert_eq!(&out[..old.start], &FILE[..old.start]);
    prop_assert!(out.ends_with(&FILE[old.end..]), "suffix changed: {}", out);
    Ok(())
}

proptest! {
    #[test]
    fn set_changes_exactly_one_value(v in version()) {
        check_set("images[name=api].newTag", &[0, 0, 1], &v)?;
        check_set("images[1].newTag", &[0, 1, 1], &v)?;
        check_set("service.chartTag", &[1, 0], &v)?;
        check_set("service.flow.tag", &[1, 1, 0], &v)?;
    }

    #[test]
    fn kustomize_tag_on_existing_entry_changes_only_that_value(v in version()) {
        let out = apply("k.yaml", FILE, &Edit::KustomizeImage(KustomizeImage { name: "web".into(), new_tag: Some(v.clone()), ..KustomizeImage::default() }))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(values(&parse(&out).expect("parses")), expected(FILE, &[0, 1, 1], &v));
        let before = FILE.find("web").expect("web");
        prop_assert_eq!(&out[..before], &FILE[..before]);
        let tail = FILE.find("\n\nservice:").expect("tail");
        prop_assert!(out.ends_with(&FILE[tail..]));
    }
}
