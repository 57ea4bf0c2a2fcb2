//! Writes the CRD manifests generated from the Rust types into a directory
//! (default `crds/`), one file per CRD, so `git diff` shows schema changes.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "crds".to_owned()));
    std::fs::create_dir_all(&dir)?;
    for crd in baton_api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let body = baton_api::render_crd_yaml(&crd)?;
        std::fs::write(dir.join(format!("{name}.yaml")), body)?;
    }
    std::fs::write(
        dir.join("kustomization.yaml"),
        baton_api::crds_kustomization(),
    )?;
    Ok(())
}
