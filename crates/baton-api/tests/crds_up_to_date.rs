//! `crds/` must be what `crdgen` writes from the current types: a schema change
//! without `make crds` fails here, before it reaches a cluster.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

#[test]
fn checked_in_crds_match_the_rust_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let crds = baton_api::crds();
    let mut expected_files: Vec<String> = Vec::new();
    for crd in &crds {
        let name = crd.metadata.name.clone().expect("CRD has a name");
        let file = format!("{name}.yaml");
        let on_disk = std::fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("crds/{file} missing ({e}); run `make crds`"));
        let generated = baton_api::render_crd_yaml(crd).expect("renders");
        assert!(
            on_disk == generated,
            "crds/{file} is stale; run `make crds` and commit the result"
        );
        expected_files.push(file);
    }
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml"))
        .expect("crds/kustomization.yaml; run `make crds`");
    assert_eq!(
        kustomization,
        baton_api::crds_kustomization(),
        "crds/kustomization.yaml is stale; run `make crds`"
    );
    expected_files.push("kustomization.yaml".to_owned());
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "crds/ holds files crdgen does not write"
    );
}
