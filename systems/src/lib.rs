//! faultline's systems under test: protocol logic only, as sans-IO nodes
//! written against `harness::node`, reporting to `harness::history` and
//! `harness::check`. Each system ships a correct variant and planted bugs.

pub mod client;
pub mod election;
pub mod lease;
pub mod lock;
pub mod queue;
pub mod quorum;
pub mod raft;
pub mod raft_checks;
pub mod register;
pub mod replication;
pub mod saga;

use harness::history::Value;

pub use election::system::Election;
pub use lock::system::Lock;
pub use queue::system::Queue;
pub use register::system::Register;
pub use replication::system::Replication;
pub use saga::system::Saga;

/// One client operation of a workload, as a system's client runs it:
/// function (`read`, `write`, `cas`, ...), key, and input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOp {
    pub f: String,
    pub key: String,
    pub value: Value,
}

/// A scenario's client operations as the systems' clients take them.
pub fn client_script(ops: &[harness::system::ClientOp]) -> Vec<ClientOp> {
    ops.iter()
        .map(|op| ClientOp { f: op.f.clone(), key: op.key.clone().unwrap_or_default(), value: op.value.clone() })
        .collect()
}

/// What a register-like client runs: `["read", key]`, `["write", key, n]`,
/// `["cas", key, [expected, new]]` with integers (`expected` may be nil);
/// `session_read` adds `["session-read", key]`.
pub fn validate_register_op(op: &harness::system::ClientOp, session_read: bool) -> Result<(), String> {
    let int = |v: &Value| matches!(v, Value::Int(_));
    let ok = match (op.f.as_str(), &op.value) {
        ("read", Value::Null) => true,
        ("session-read", Value::Null) => session_read,
        ("write", v) => int(v),
        ("cas", v) => v.as_pair().is_some_and(|(from, to)| (int(from) || from.is_null()) && int(to)),
        _ => false,
    };
    if ok && op.key.is_none() {
        return Err(format!("`{}` needs a key, like [\"{}\", \"k0\", ...]", op.f, op.f));
    }
    if ok {
        return Ok(());
    }
    let reads = if session_read { "[\"read\", key], [\"session-read\", key]" } else { "[\"read\", key]" };
    Err(format!(
        "cannot run {:?} with {}; expected {reads}, [\"write\", key, integer] or [\"cas\", key, [expected, new]] (integers)",
        op.f, op.value
    ))
}
