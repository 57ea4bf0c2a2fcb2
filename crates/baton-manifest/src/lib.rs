//! Format-preserving edits of GitOps YAML files.
//!
//! A promotion must change only the version a person would change by hand. Every
//! function here is pure: `(file text, edit) -> new text` or an [`EditError`] that
//! names the file, the path and the reason. Bytes outside the edited value are never
//! touched (comments, key order, indentation, quoting, blank lines, CRLF, documents,
//! the final newline), and every result is parsed back and compared with the intended
//! meaning before it is returned: fail closed.
//!
//! # How an edit flows
//!
//! ```text
//!  file text ──tree::parse──▶ documents: nodes with byte spans (start..end)
//!  Edit ───────path::parse──▶ steps
//!                    │
//!                    ▼
//!  edit::plan  (+ edit::resolve,         the edit as tree operations at locations:
//!               edit::kustomize)         replace, insert, remove, append
//!                    │
//!                    ▼
//!  edit::splice (+ edit::layout,         one byte range and its replacement, in the
//!                scalar)                 file's own indentation, quoting and line ends
//!                    │
//!                    ▼
//!  edit::verify                          re-parse; the meaning must be exactly the old
//!                    │                   one with the operation applied
//!                    ▼
//!  new text, or EditError (nothing written)
//! ```
//!
//! A kustomize image edit may be several operations; each is spliced and verified
//! before the next is planned, on the text the previous one produced.
//!
//! A `Set` on a large file (64 KiB or more) takes the same steps on the one root
//! entry its path starts in, when a line scan (`outline`) can delimit the root
//! entries: only that entry is parsed, and verifying checks that the edited entry is
//! still exactly one root entry with the same key (so every other entry, unchanged,
//! still parses as before) and means the old entry with the value changed. Otherwise
//! the whole file is parsed and verified.
//!
//! ```
//! use baton_manifest::{apply, Edit};
//! let text = "service:\n  name: api\n  chartTag: api-v9.1.0 # bumped by Baton\n";
//! let out = apply("config.yaml", text, &Edit::Set { path: "service.chartTag".into(), value: "api-v9.1.1".into() }).unwrap();
//! assert_eq!(out, "service:\n  name: api\n  chartTag: api-v9.1.1 # bumped by Baton\n");
//! ```

mod edit;
mod error;
mod outline;
pub mod path;
pub mod scalar;
pub mod tree;

pub use edit::{Edit, KustomizeImage, apply, apply_all, current_value};
pub use error::EditError;
