//! Baton's promotion controller.
//!
//! A reconcile is a named pipeline: [`observe`] (I/O) -> [`decide::decide`] (pure) ->
//! [`act`] (I/O) -> one status write ([`status::finish`], pure). [`run`] wires the
//! watches (Promotions, Environments, Argo CD Applications), webhooks and HTTP.

pub mod act;
pub mod context;
pub mod decide;
pub mod edit_cmd;
pub mod error;
pub mod health;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod run;
pub mod status;
