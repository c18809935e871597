//! The root package: wires the systems to the harness (the registry),
//! and implements the `faultline` command's subcommands, so that
//! integration tests can drive them directly.

pub mod check_cmd;
pub mod cli;
pub mod command;
pub mod html;
pub mod registry;
pub mod shrink;
pub mod sweep;
pub mod testing;
pub mod worlds;

/// The harness, re-exported so a user's crate needs only `faultline`.
pub use harness;
