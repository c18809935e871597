//! Session guarantees, decided from what clients observed (Terry et al.,
//! "Session Guarantees for Weakly Consistent Replicated Data", 1994):
//! read-your-writes and monotonic reads.
//!
//! A session is a client, not a history process: Jepsen gives a client a
//! fresh process after an indeterminate result, but the client keeps its
//! session (its token), and the guarantee must hold across that boundary.
//!
//! Servers' version numbers are not trusted: a duplicate re-applied at a
//! higher log index looks "newer" while the client saw its own write
//! vanish. Instead, written values are unique, so each value a read
//! returns names the write that produced it (or the initial nil). Writes
//! are ordered only by what clients could see: `A` precedes `B` when `A`
//! completed before `B` was invoked, or when one session issued `A`
//! before `B`. The initial value precedes every write.
//!
//! - Read-your-writes: a session's read of a key never returns a value
//!   whose write precedes the session's own last completed write to it.
//! - Monotonic reads: a session's read of a key never returns a value whose
//!   write precedes the write of a value it read there before.
//!
//! A value written by two writes, or by none, names no write: such a read
//! is skipped (sound, never a false alarm).
//!
//! The precedence is stronger than the guarantees' bare definitions in two
//! ways, both sound for a store whose writes are linearizable (a Raft log):
//! real-time order between different clients' writes is taken as the
//! store's write order, and a session's writes are ordered as it issued
//! them (a timed-out write that lands after the session's next write is
//! flagged, which is monotonic writes). A store with weaker writes (last
//! writer wins, causal) needs a weaker order.

use std::collections::BTreeMap;

use super::{Invariant, RunEnd};
use crate::history::{History, OpType, Value};

pub const READ_YOUR_WRITES: &str = "read your writes";
pub const MONOTONIC_READS: &str = "monotonic reads";

/// Which functions count as reads and which as writes. A write's input is
/// the value it writes; a cas's input is `[expected, new]`.
#[derive(Clone, Debug)]
pub struct SessionFunctions {
    pub reads: Vec<String>,
    pub writes: Vec<String>,
    pub cas: Vec<String>,
}

/// A broken session guarantee: which, and the history events involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionViolation {
    pub guarantee: &'static str,
    pub explanation: String,
}

/// What one operation looked like to its client.
#[derive(Clone, Debug)]
struct Seen<'a> {
    session: u64,
    invoked: usize,
    /// The completion's index, or `None` if it never completed (info, open).
    completed: Option<usize>,
    ok: bool,
    f: &'a str,
    key: Option<&'a str>,
    input: &'a Value,
    output: &'a Value,
}

/// Where a value read came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Source {
    Initial,
    /// The operation index (into the list of `Seen`) of the write.
    Write(usize),
}

/// A session and a key.
type SessionKey<'a> = (u64, Option<&'a str>);

/// The result of a judgement: the verdict and how many reads were compared
/// with something earlier in their session (zero: nothing was judged).
pub struct SessionJudgement {
    pub result: Result<(), SessionViolation>,
    pub compared: usize,
}

/// Judges one guarantee (`READ_YOUR_WRITES` or `MONOTONIC_READS`) over a
/// history; `session_of` maps a history process to its session.
pub fn judge(
    history: &History,
    functions: &SessionFunctions,
    session_of: &dyn Fn(u64) -> u64,
    guarantee: &'static str,
) -> SessionJudgement {
    let ops = operations(history, session_of);
    let producers = producers(&ops, functions);
    let precedes = |a: usize, b: usize| {
        let (a, b) = (&ops[a], &ops[b]);
        a.completed.is_some_and(|c| c < b.invoked) || (a.session == b.session && a.invoked < b.invoked)
    };
    let source_precedes = |a: Source, b: Source| match (a, b) {
        (Source::Initial, Source::Write(_)) => true,
        (Source::Write(x), Source::Write(y)) => x != y && precedes(x, y),
        _ => false,
    };
    // (session, key) -> the last ok write; and the sources of the reads so
    // far that no later read's source superseded. Every one of them counts
    // for monotonic reads, not only the last: with A before C, and B
    // concurrent with both, reading A, B, C is fine pair by pair, but C
    // after A goes back.
    let mut last_write: BTreeMap<SessionKey<'_>, usize> = BTreeMap::new();
    let mut reads: BTreeMap<SessionKey<'_>, Vec<(Source, usize)>> = BTreeMap::new();
    let mut compared = 0;
    for (i, op) in ops.iter().enumerate() {
        if !op.ok {
            continue;
        }
        let at = (op.session, op.key);
        if written_value(op, functions).is_some() {
            last_write.insert(at, i);
            continue;
        }
        if !functions.reads.iter().any(|r| r == op.f) {
            continue;
        }
        let source = match op.output {
            Value::Null => Source::Initial,
            v => match producers.get(&(op.key, v)).map(Vec::as_slice) {
                Some(&[w]) => Source::Write(w),
                _ => continue, // no unique producer: nothing to decide
            },
        };
        let earlier: Vec<(Source, usize)> = if guarantee == READ_YOUR_WRITES {
            last_write.get(&at).map(|&w| (Source::Write(w), w)).into_iter().collect()
        } else {
            reads.get(&at).cloned().unwrap_or_default()
        };
        if !earlier.is_empty() {
            compared += 1;
        }
        if let Some(&(_, before_op)) = earlier.iter().find(|&&(before, _)| source_precedes(source, before)) {
            let explanation = explain(&ops, guarantee, i, source, before_op);
            return SessionJudgement { result: Err(SessionViolation { guarantee, explanation }), compared };
        }
        let seen = reads.entry(at).or_default();
        seen.retain(|&(s, _)| s != source && !source_precedes(s, source));
        seen.push((source, i));
    }
    SessionJudgement { result: Ok(()), compared }
}

fn explain(ops: &[Seen<'_>], guarantee: &'static str, read: usize, source: Source, before: usize) -> String {
    let r = &ops[read];
    let on = r.key.map(|k| format!(" of key {k:?}")).unwrap_or_default();
    let got = match source {
        Source::Initial => "the initial nil".to_owned(),
        Source::Write(w) => {
            format!("{}, written by the {} invoked at history event {}", r.output, ops[w].f, ops[w].invoked)
        }
    };
    let b = &ops[before];
    let what = if guarantee == READ_YOUR_WRITES {
        format!("its own {} of {} (history events {}-{})", b.f, b.input, b.invoked, b.completed.unwrap_or(b.invoked))
    } else {
        format!("its read at history event {} returned {}", b.invoked, b.output)
    };
    format!(
        "client session {}'s read{on} invoked at history event {} returned {got}, a value older than {what}",
        r.session, r.invoked
    )
}

/// Pairs the history into operations in invocation order.
fn operations<'a>(history: &'a History, session_of: &dyn Fn(u64) -> u64) -> Vec<Seen<'a>> {
    let mut ops: Vec<Seen<'a>> = Vec::new();
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        if op.kind == OpType::Invoke {
            open.insert(op.process, ops.len());
            ops.push(Seen {
                session: session_of(op.process),
                invoked: i,
                completed: None,
                ok: false,
                f: &op.f,
                key: op.key.as_deref(),
                input: &op.value,
                output: &Value::Null,
            });
            continue;
        }
        let Some(k) = open.remove(&op.process) else { continue };
        let seen = &mut ops[k];
        match op.kind {
            OpType::Ok => {
                seen.completed = Some(i);
                seen.ok = true;
                seen.output = &op.value;
            }
            // Failed operations did nothing; they can produce no value.
            OpType::Fail => seen.completed = Some(i),
            _ => {}
        }
    }
    ops
}

/// The value a write-like operation writes, if it is one.
fn written_value<'a>(op: &Seen<'a>, functions: &SessionFunctions) -> Option<&'a Value> {
    if functions.writes.iter().any(|w| w == op.f) {
        Some(op.input)
    } else if functions.cas.iter().any(|c| c == op.f) {
        op.input.as_pair().map(|(_, new)| new)
    } else {
        None
    }
}

/// (key, value) -> every write that may have produced it (ok, info or
/// open: anything that did not fail).
fn producers<'a>(ops: &[Seen<'a>], functions: &SessionFunctions) -> BTreeMap<(Option<&'a str>, &'a Value), Vec<usize>> {
    let mut out: BTreeMap<(Option<&'a str>, &'a Value), Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let failed = op.completed.is_some() && !op.ok;
        if let (false, Some(v)) = (failed, written_value(op, functions)) {
            out.entry((op.key, v)).or_default().push(i);
        }
    }
    out
}

/// A session guarantee as an end-of-run invariant over the client history.
pub struct SessionGuarantee {
    guarantee: &'static str,
    functions: SessionFunctions,
    compared: usize,
}

impl SessionGuarantee {
    pub fn new(guarantee: &'static str, functions: SessionFunctions) -> Self {
        assert!(guarantee == READ_YOUR_WRITES || guarantee == MONOTONIC_READS, "unknown guarantee {guarantee}");
        SessionGuarantee { guarantee, functions, compared: 0 }
    }
}

impl<O> Invariant<O> for SessionGuarantee {
    fn name(&self) -> &str {
        self.guarantee
    }
    fn at_end(&mut self, end: &RunEnd<'_, O>) -> Result<(), String> {
        let session_of = |process: u64| end.sessions.get(&process).copied().unwrap_or(process);
        let judgement = judge(end.history, &self.functions, &session_of, self.guarantee);
        self.compared = judgement.compared;
        judgement.result.map_err(|v| v.explanation)
    }
    fn vacuous(&self) -> bool {
        self.compared == 0
    }
    fn judges_at_end(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn op(process: u64, kind: OpType, f: &str, value: Value) -> Op {
        Op { process, kind, f: f.into(), key: Some("k".into()), value, time: None }
    }
    fn functions() -> SessionFunctions {
        SessionFunctions { reads: vec!["read".into()], writes: vec!["write".into()], cas: vec!["cas".into()] }
    }
    fn run(h: &History, guarantee: &'static str, session_of: &dyn Fn(u64) -> u64) -> Result<(), SessionViolation> {
        judge(h, &functions(), session_of, guarantee).result
    }
    fn same(p: u64) -> u64 {
        p
    }

    /// The re-applied duplicate: the client wrote 1, then 2; a duplicate of
    /// the first write was applied again at a higher index, so its read
    /// returns 1 with a version *newer* than its write of 2. The old
    /// version-based check said pass; the client saw its write vanish.
    #[test]
    fn a_reapplied_duplicate_breaks_read_your_writes_whatever_its_version() {
        let mut h = History::new();
        h.push(op(1, OpType::Invoke, "write", Value::Int(1)));
        h.push(op(1, OpType::Ok, "write", Value::Int(3))); // server says: version 3
        h.push(op(1, OpType::Invoke, "write", Value::Int(2)));
        h.push(op(1, OpType::Ok, "write", Value::Int(4))); // version 4
        h.push(op(1, OpType::Invoke, "read", Value::Null));
        h.push(op(1, OpType::Ok, "read", Value::Int(1))); // the duplicate, at version 5
        let e = run(&h, READ_YOUR_WRITES, &same).unwrap_err();
        assert!(e.explanation.contains("returned 1"), "{}", e.explanation);
        // Another client may read 1 at that point, as far as sessions go.
        h.ops[4].process = 2;
        h.ops[5].process = 2;
        assert!(run(&h, READ_YOUR_WRITES, &same).is_ok());
    }

    #[test]
    fn the_session_survives_an_indeterminate_result() {
        // Client c1 acts as process 1, then (after an info) as process 3.
        let mut h = History::new();
        h.push(op(1, OpType::Invoke, "write", Value::Int(5)));
        h.push(op(1, OpType::Ok, "write", Value::Null));
        h.push(op(1, OpType::Invoke, "write", Value::Int(6)));
        h.push(op(1, OpType::Info, "write", Value::Null));
        h.push(op(3, OpType::Invoke, "read", Value::Null));
        h.push(op(3, OpType::Ok, "read", Value::Null)); // its write of 5 is gone
        assert!(run(&h, READ_YOUR_WRITES, &same).is_ok(), "per process, nothing to compare");
        let client = |p: u64| if p == 3 { 1 } else { p };
        assert_eq!(run(&h, READ_YOUR_WRITES, &client).unwrap_err().guarantee, READ_YOUR_WRITES);
    }

    #[test]
    fn reads_going_back_to_an_older_write_break_monotonic_reads() {
        let mut h = History::new();
        // Process 2 writes 1, then 2, one after the other.
        for v in [1, 2] {
            h.push(op(2, OpType::Invoke, "write", Value::Int(v)));
            h.push(op(2, OpType::Ok, "write", Value::Null));
        }
        for v in [2, 1] {
            h.push(op(1, OpType::Invoke, "read", Value::Null));
            h.push(op(1, OpType::Ok, "read", Value::Int(v)));
        }
        assert_eq!(run(&h, MONOTONIC_READS, &same).unwrap_err().guarantee, MONOTONIC_READS);
        // Reading 1 then 2 is fine.
        h.ops.swap(5, 7);
        assert!(run(&h, MONOTONIC_READS, &same).is_ok());
    }

    /// A completes before C is invoked; B overlaps both. Reading A, then B,
    /// then C is fine pair by pair, but C after A goes back.
    #[test]
    fn monotonic_reads_compare_with_every_earlier_read_not_only_the_last() {
        let mut h = History::new();
        h.push(op(2, OpType::Invoke, "write", Value::Int(3))); // C
        h.push(op(3, OpType::Invoke, "write", Value::Int(2))); // B
        h.push(op(2, OpType::Ok, "write", Value::Null));
        h.push(op(2, OpType::Invoke, "write", Value::Int(1))); // A, after C
        h.push(op(2, OpType::Ok, "write", Value::Null));
        h.push(op(3, OpType::Ok, "write", Value::Null));
        for v in [1, 2, 3] {
            h.push(op(1, OpType::Invoke, "read", Value::Null));
            h.push(op(1, OpType::Ok, "read", Value::Int(v)));
        }
        let e = run(&h, MONOTONIC_READS, &same).unwrap_err();
        assert!(e.explanation.contains("returned 3") && e.explanation.contains("returned 1"), "{}", e.explanation);
    }

    #[test]
    fn concurrent_writes_may_be_read_in_either_order_and_ambiguous_values_are_skipped() {
        let mut h = History::new();
        h.push(op(2, OpType::Invoke, "write", Value::Int(1)));
        h.push(op(3, OpType::Invoke, "write", Value::Int(2)));
        h.push(op(2, OpType::Ok, "write", Value::Null));
        h.push(op(3, OpType::Ok, "write", Value::Null));
        for v in [2, 1] {
            h.push(op(1, OpType::Invoke, "read", Value::Null));
            h.push(op(1, OpType::Ok, "read", Value::Int(v)));
        }
        let j = judge(&h, &functions(), &same, MONOTONIC_READS);
        assert!(j.result.is_ok());
        assert_eq!(j.compared, 1);
        // A successful cas writes its new value; a failed one writes nothing.
        let mut h = History::new();
        h.push(op(1, OpType::Invoke, "cas", Value::pair(Value::Null, Value::Int(7))));
        h.push(op(1, OpType::Ok, "cas", Value::Null));
        h.push(op(1, OpType::Invoke, "read", Value::Null));
        h.push(op(1, OpType::Ok, "read", Value::Null));
        assert!(run(&h, READ_YOUR_WRITES, &same).is_err());
        h.ops[1].kind = OpType::Fail;
        let j = judge(&h, &functions(), &same, READ_YOUR_WRITES);
        assert!(j.result.is_ok() && j.compared == 0, "nothing written, nothing to compare");
    }
}
