//! faultline's systems under test: protocol logic only, as sans-IO nodes
//! written against `harness::node`, reporting to `harness::history` and
//! `harness::check`. Each system ships a correct variant and planted bugs.

pub mod election;
pub mod raft;
pub mod register;
pub mod replication;

use harness::history::Value;

/// One client operation of a workload, as a system's client runs it:
/// function (`read`, `write`, `cas`, ...), key, and input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOp {
    pub f: String,
    pub key: String,
    pub value: Value,
}
