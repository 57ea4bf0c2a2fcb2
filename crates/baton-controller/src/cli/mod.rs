//! Commands for people and CI jobs, as opposed to the operator (`baton run`).
//!
//! - [`promote`]: `baton promote`, the pure part (arguments, validation, the
//!   Promotion's name and spec, `--dry-run` YAML, progress lines, exit codes);
//! - [`promote_io`]: the same command's Kubernetes calls (create, compare, watch);
//! - [`rollback`]: `baton rollback` and `baton unblock`;
//! - [`status`]: `baton status`, the pure part (the board of what runs where, its
//!   marks, table/JSON/YAML, exit codes);
//! - [`status_io`]: its reads (Environments, Promotions, Applications, GitOps files).

pub mod promote;
pub mod promote_io;
pub mod rollback;
pub mod status;
pub mod status_io;

use std::ffi::OsStr;
use std::path::Path;

/// The name to show in usage and messages: `kubectl baton` when the binary runs as a
/// kubectl plugin (installed as `kubectl-baton`), else `baton`.
pub fn program_name(argv0: Option<&OsStr>) -> &'static str {
    let stem = argv0
        .map(Path::new)
        .and_then(Path::file_stem)
        .and_then(OsStr::to_str)
        .unwrap_or_default();
    if stem.ends_with("kubectl-baton") {
        "kubectl baton"
    } else {
        "baton"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_name_is_kubectl_baton_only_for_the_plugin_name() {
        for (argv0, want) in [
            (Some("kubectl-baton"), "kubectl baton"),
            (Some("/home/me/.local/bin/kubectl-baton"), "kubectl baton"),
            (Some("kubectl-baton.exe"), "kubectl baton"),
            (Some("/usr/bin/baton"), "baton"),
            (Some("target/debug/baton"), "baton"),
            (Some(""), "baton"),
            (None, "baton"),
        ] {
            assert_eq!(program_name(argv0.map(OsStr::new)), want, "{argv0:?}");
        }
    }
}
