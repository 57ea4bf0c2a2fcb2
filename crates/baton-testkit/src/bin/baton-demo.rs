//! `make demo`: starts a real control plane, installs Baton's CRDs and the Argo CD
//! Application CRD, applies the samples, shows them as a user would see them, and
//! stops everything. The promotion controller (issue #5) is not built yet, so the
//! demo stops at the API: it exits non-zero if any step fails.

use baton_testkit::{ControlPlane, argocd_application_crd, repo_root};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "starting etcd + kube-apiserver from {}",
        ControlPlane::bin_dir().display()
    );
    let cp = ControlPlane::start().await?;
    println!(
        "control plane ready at {} (kubeconfig {})",
        cp.server(),
        cp.kubeconfig().display()
    );
    cp.apply_crds(&repo_root().join("crds"))?;
    let (argocd, official) = argocd_application_crd();
    cp.apply_crds(&argocd)?;
    println!(
        "CRDs installed (Argo CD Application CRD: {})",
        if official { "official" } else { "minimal" }
    );
    let client = cp.client().await?;
    let ns = cp.namespace(&client, "demo").await?;
    let samples = repo_root().join("config/samples");
    for args in [
        vec!["apply", "-n", &ns, "-f", &samples.to_string_lossy()],
        vec!["get", "environments,promotions", "-n", &ns],
        vec![
            "apply",
            "-n",
            &ns,
            "-f",
            &repo_root()
                .join("tests/fixtures/invalid/promotion-duplicate-service.yaml")
                .to_string_lossy(),
        ],
    ] {
        println!("\n$ kubectl {}", args.join(" "));
        let out = cp.run_kubectl(&args)?;
        print!("{}{}", out.stdout, out.stderr);
    }
    println!("\nstopping the control plane");
    Ok(())
}
