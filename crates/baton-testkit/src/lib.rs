//! Test kit: the real and fake outside world Baton's tests (and `baton-devtools`,
//! the demo and benchmark) run against.
//!
//! - [`controlplane`]: a real etcd + kube-apiserver (built from Go modules by
//!   `make controlplane`) on loopback ports, with kubectl-style helpers; the
//!   per-process [`shared`] instance; the Argo CD `Application` CRDs.
//! - [`argocd`]: playing Argo CD's application controller: writing `Application`
//!   sync and health status the way it does, for cases real Argo CD cannot be made
//!   to produce on demand.
//! - [`argocd_server`]: the real Argo CD (application-controller, repo-server and
//!   miniredis, built by `make argocd`) against the control plane, syncing from
//!   real Git repositories ([`git_repo`]).
//! - [`fake_github`]: a stateful fake of the GitHub REST API Baton uses, over real
//!   HTTP, with ETags, rate-limit headers, fault injection and a request log:
//!   - `fake_github/mod.rs`: [`FakeGitHub`], what tests call (set up repositories,
//!     act as the reviewer, inspect PRs, statuses and requests, inject faults);
//!   - `fake_github/state.rs`: the data model (repositories, commits, pulls, ...);
//!   - `fake_github/router.rs`: every request's path through the fake (faults,
//!     auth, the request log, rate-limit headers), then dispatch;
//!   - `fake_github/handlers/`: one file per GitHub capability (refs, pulls,
//!     statuses, releases, compare, graphql, auth), like the provider's operations.
//! - [`contract`]: the contract gate: GitHub's OpenAPI description (through Prism)
//!   checks every request the provider sends to the fake (`make contract-tools`).
//! - [`background`]: servers that outlive one test's runtime, for shared fixtures.

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
