//! faultline's systems under test: protocol logic only, as sans-IO nodes
//! written against `harness::node`, reporting to `harness::history` and
//! `harness::check`. Each system ships a correct variant and planted bugs.

pub mod election;
pub mod raft;
pub mod register;
pub mod replication;
