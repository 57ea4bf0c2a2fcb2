//! Why an edit was refused. Every message names the file, the path and the reason.

/// An edit that could not be made; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{file}: not valid YAML: {message} (line {line}, column {column})")]
    InvalidYaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("{file}: {path}: {missing} not found")]
    NotFound {
        file: String,
        path: String,
        missing: String,
    },
    #[error("{file}: {path}: {what} matches {count} entries, expected exactly one")]
    Ambiguous {
        file: String,
        path: String,
        what: String,
        count: usize,
    },
    #[error("{file}: {path}: the target is a {found}, not a scalar")]
    NotAScalar {
        file: String,
        path: String,
        found: &'static str,
    },
    #[error("{file}: {path}: {reason}")]
    Unsupported {
        file: String,
        path: String,
        reason: String,
    },
    #[error(
        "{file}: {path}: the edited file does not read back as intended ({detail}); nothing was written"
    )]
    VerifyFailed {
        file: String,
        path: String,
        detail: String,
    },
}
