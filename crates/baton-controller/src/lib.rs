//! Baton's promotion controller.
//!
//! A reconcile is a named pipeline: `observe` (I/O) -> [`decide::decide`] (pure) ->
//! `act` (I/O) -> one status write. Only the pure parts live here so far.

pub mod decide;
pub mod edit_cmd;
pub mod health;
