//! Baton's promotion controller.
//!
//! ```text
//! watch event ─▶ reconcile ─▶ observe ──────────▶ machine::decide ─▶ machine::effects
//!  (run/)         (pipeline)   (reads K8s+GitHub,   (pure: the          (pure: every
//!                              returns Seen)        transition table)   argument built)
//!                                   ┌───────────────────────────────────────┘
//!                                   ▼
//!                              act::perform ─▶ machine::next_status ─▶ record::Writer
//!                              (writes, each   (pure)                  (one status write,
//!                              recorded ahead,                          precondition on
//!                              fenced)                                  resourceVersion)
//! ```
//!
//! - [`machine`]: the pure promotion machine (decide, gates, health, plan, effects, next
//!   status). No client, no clock read, no I/O.
//! - [`observe`] only reads; [`act`] only performs effects through the provider traits
//!   of `baton_github` (generic, so any provider passing the conformance suite fits);
//!   [`record`] owns every status write; [`events`] builds every Event; [`notify`]
//!   queues a chat or webhook notification per phase change and delivers it in the
//!   background.
//! - [`context`] holds what reconciles share, and is the one place the concrete GitHub
//!   provider is constructed; [`fence`] stops writes once leadership is lost.
//! - [`pipeline`] is the second controller, on Environments: their status (what runs
//!   there) and automatic promotion into them; decisions in [`machine::pipeline`].
//! - [`prwatch`] polls every open promotion PR of a repository with one GraphQL query
//!   per hundred and wakes the Promotions whose PR changed.
//! - [`run`] wires leader election, watches and the HTTP server.
//! - [`cli`] holds the commands for people and CI jobs (`baton promote`).

pub mod act;
pub mod cli;
pub mod context;
pub mod edit_cmd;
pub mod error;
pub mod events;
pub mod fence;
pub mod machine;
pub mod metrics;
pub mod notify;
pub mod observe;
pub mod pipeline;
pub mod prwatch;
pub mod reconcile;
pub mod record;
pub mod run;
