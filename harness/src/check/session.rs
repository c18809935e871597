//! Session guarantees over a client history: read-your-writes and
//! monotonic reads, per session (a history process: Jepsen gives a client a
//! fresh process after an indeterminate result, which starts a new session).
//!
//! Convention: every value carries a version that orders writes to its key
//! (for a replicated log, the index of the entry that wrote it).
//! - a completed `write` or `cas` returns its version: `ok` with `Int(v)`;
//! - a completed read returns `[value, version]` (version 0: never written).
//!
//! Read-your-writes: a read of a key returns a version at least that of the
//! session's last completed write to that key. Monotonic reads: the
//! versions a session reads of a key never go back.

use std::collections::BTreeMap;

use crate::history::{History, OpType, Value};

pub const READ_YOUR_WRITES: &str = "read your writes";
pub const MONOTONIC_READS: &str = "monotonic reads";

/// Which functions count as reads and which as writes.
#[derive(Clone, Debug)]
pub struct SessionFunctions {
    pub reads: Vec<String>,
    pub writes: Vec<String>,
}

/// A broken session guarantee: which, and the history events involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionViolation {
    pub guarantee: &'static str,
    pub explanation: String,
}

fn version_of_read(v: &Value) -> Option<i64> {
    v.as_pair().and_then(|(_, version)| version.as_int())
}

/// Checks both guarantees; the first broken one is returned.
pub fn check_sessions(history: &History, functions: &SessionFunctions) -> Result<(), SessionViolation> {
    check_guarantee(history, functions, None)
}

/// Checks one guarantee (`READ_YOUR_WRITES` or `MONOTONIC_READS`), or both with `None`.
pub fn check_guarantee(
    history: &History,
    functions: &SessionFunctions,
    only: Option<&str>,
) -> Result<(), SessionViolation> {
    let wanted = |g: &str| only.is_none_or(|o| o == g);
    // (process, key) -> (version, event) of the last write and the last read.
    let mut last_write: BTreeMap<(u64, Option<&str>), (i64, usize)> = BTreeMap::new();
    let mut last_read: BTreeMap<(u64, Option<&str>), (i64, usize)> = BTreeMap::new();
    let mut invoked: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        if op.kind == OpType::Invoke {
            invoked.insert(op.process, i);
            continue;
        }
        if op.kind != OpType::Ok {
            continue;
        }
        let key = (op.process, op.key.as_deref());
        let at = invoked.get(&op.process).copied().unwrap_or(i);
        if functions.writes.contains(&op.f) {
            if let Some(v) = op.value.as_int() {
                last_write.insert(key, (v, i));
            }
        } else if functions.reads.contains(&op.f) {
            let Some(v) = version_of_read(&op.value) else { continue };
            let on = op.key.as_deref().map(|k| format!(" of key {k:?}")).unwrap_or_default();
            if let Some(&(w, wi)) = last_write.get(&key).filter(|_| wanted(READ_YOUR_WRITES)) {
                if v < w {
                    return Err(SessionViolation {
                        guarantee: READ_YOUR_WRITES,
                        explanation: format!(
                            "process {}'s read{on} invoked at event {at} saw version {v}, older than its own write at event {wi} (version {w})",
                            op.process
                        ),
                    });
                }
            }
            if let Some(&(r, ri)) = last_read.get(&key).filter(|_| wanted(MONOTONIC_READS)) {
                if v < r {
                    return Err(SessionViolation {
                        guarantee: MONOTONIC_READS,
                        explanation: format!(
                            "process {}'s read{on} invoked at event {at} saw version {v} after its read completed at event {ri} saw version {r}",
                            op.process
                        ),
                    });
                }
            }
            last_read.insert(key, (v, i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn op(process: u64, kind: OpType, f: &str, value: Value) -> Op {
        Op { process, kind, f: f.into(), key: Some("k".into()), value, time: None }
    }
    fn read(v: i64, version: i64) -> Value {
        Value::pair(Value::Int(v), Value::Int(version))
    }
    fn functions() -> SessionFunctions {
        SessionFunctions { reads: vec!["read".into()], writes: vec!["write".into()] }
    }

    #[test]
    fn a_read_older_than_the_sessions_write_breaks_read_your_writes() {
        let mut h = History::new();
        h.push(op(1, OpType::Invoke, "write", Value::Int(7)));
        h.push(op(1, OpType::Ok, "write", Value::Int(5)));
        h.push(op(1, OpType::Invoke, "read", Value::Null));
        h.push(op(1, OpType::Ok, "read", read(3, 4)));
        let e = check_sessions(&h, &functions()).unwrap_err();
        assert_eq!(e.guarantee, READ_YOUR_WRITES);
        // Another process may read the old version.
        h.ops[2].process = 2;
        h.ops[3].process = 2;
        assert!(check_sessions(&h, &functions()).is_ok());
    }

    #[test]
    fn reads_going_back_break_monotonic_reads() {
        let mut h = History::new();
        for (v, version) in [(1, 4), (2, 6), (1, 4)] {
            h.push(op(1, OpType::Invoke, "read", Value::Null));
            h.push(op(1, OpType::Ok, "read", read(v, version)));
        }
        assert_eq!(check_sessions(&h, &functions()).unwrap_err().guarantee, MONOTONIC_READS);
        h.ops.truncate(4);
        assert!(check_sessions(&h, &functions()).is_ok());
    }
}
