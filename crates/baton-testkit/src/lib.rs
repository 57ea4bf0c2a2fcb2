//! Test kit: a real control plane (etcd + kube-apiserver built from Go modules by
//! `make controlplane`) and a real Argo CD (`make argocd`) for Baton's tests and
//! `make demo`.

pub mod argocd;
pub mod argocd_server;
pub mod background;
pub mod contract;
pub mod controlplane;
pub mod fake_github;
pub mod git_repo;

pub use argocd_server::ArgoCd;
pub use controlplane::{
    ControlPlane, ControlPlaneError, KubectlOutput, argocd_application_crd,
    minimal_application_crd, repo_root, shared,
};
pub use fake_github::FakeGitHub;
pub use git_repo::GitRepo;
