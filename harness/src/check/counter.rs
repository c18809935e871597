//! "a counter counts every acknowledged increment and no increment twice",
//! Jepsen's counter checker: each linearizable read of a counter lies
//! between the increments that certainly took effect before it and those
//! that possibly did.
//!
//! Why not the linearizability checker: an increment whose result is
//! unknown (a timeout) may or may not have taken effect, and increments
//! commute, so every subset of the unknown ones is a distinct state: the
//! search is exponential in them, where a bound per read is linear. The
//! bounds are exactly what a doubled or lost increment breaks:
//!
//! - *certainly* applied before a read: every increment acknowledged
//!   before the read was invoked;
//! - *possibly* applied: every increment invoked before the read completed
//!   that did not fail (acknowledged, unknown, or still open).
//!
//! A read must return at least the certain sum plus every possible
//! decrement, and at most the certain sum plus every possible increment.
//! An acknowledged increment that returns the new value is a read too,
//! with itself certain. Absent reads as 0.
//!
//! A key is a counter when it has an increment and nothing but increments
//! and reads; other keys are left to the linearizability checker.

use std::collections::{BTreeMap, BTreeSet};

use super::{Invariant, RunEnd};
use crate::history::{History, OpType, Value};

pub const COUNTS_EACH_INCREMENT_ONCE: &str = "a counter counts every acknowledged increment and no increment twice";

/// Which functions increment (input: the amount; output: the new value,
/// or null) and which read (output: the value, null when absent).
#[derive(Clone, Debug)]
pub struct CounterFunctions {
    pub incr: String,
    /// Linearizable reads: each is judged.
    pub reads: Vec<String>,
    /// Reads that promise less (any replica's state): not judged, and no
    /// reason to leave a key to the linearizability checker.
    pub weaker_reads: Vec<String>,
}

/// One operation on a counter key.
#[derive(Clone, Copy, Debug)]
struct CounterOp {
    invoked: usize,
    /// The completion's index, if it completed `ok`.
    acked: Option<usize>,
    failed: bool,
    /// The amount, for an increment.
    by: Option<i64>,
    /// What it read (or returned as the new value), if it did.
    read: Option<i64>,
}

/// The keys that are counters (see the module's doc), in key order.
pub fn counter_keys(history: &History, functions: &CounterFunctions) -> BTreeSet<String> {
    let mut incremented = BTreeSet::new();
    let mut other = BTreeSet::new();
    for op in history.ops.iter().filter(|op| op.kind == OpType::Invoke) {
        let Some(key) = &op.key else { continue };
        if op.f == functions.incr {
            incremented.insert(key.clone());
        } else if !functions.reads.contains(&op.f) && !functions.weaker_reads.contains(&op.f) {
            other.insert(key.clone());
        }
    }
    incremented.difference(&other).cloned().collect()
}

/// The operations on each counter key, or why the history is malformed.
fn counter_ops(
    history: &History,
    functions: &CounterFunctions,
    keys: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<CounterOp>>, String> {
    let pairs = history.pair_with(|i| format!("history event {i}")).map_err(|e| e.message)?;
    let mut out: BTreeMap<String, Vec<CounterOp>> = BTreeMap::new();
    for (inv, comp) in pairs {
        let invoke = &history.ops[inv];
        let Some(key) = invoke.key.as_ref().filter(|k| keys.contains(*k)) else { continue };
        if functions.weaker_reads.contains(&invoke.f) {
            continue;
        }
        let completion = comp.map(|c| &history.ops[c]);
        let acked = completion.filter(|c| c.kind == OpType::Ok).and(comp);
        let failed = completion.is_some_and(|c| c.kind == OpType::Fail);
        let int = |v: &Value, what: &str| match v {
            Value::Null => Ok(0),
            Value::Int(n) => Ok(*n),
            other => Err(format!("history event {inv}: {what} of counter {key:?} is {other}, not an integer")),
        };
        let is_incr = invoke.f == functions.incr;
        let by = if is_incr { Some(int(&invoke.value, "the amount")?) } else { None };
        // An increment acknowledged with null did not say the new value.
        let read = match completion.filter(|c| c.kind == OpType::Ok) {
            Some(c) if !(is_incr && c.value.is_null()) => Some(int(&c.value, "the value read")?),
            _ => None,
        };
        out.entry(key.clone()).or_default().push(CounterOp { invoked: inv, acked, failed, by, read });
    }
    Ok(out)
}

/// Increments sorted by one index, with running sums of their amounts:
/// all of them, the positive parts, and the negative parts.
struct Sums {
    at: Vec<usize>,
    /// `sums[k]` is over the first `k` increments: (amount, up, down).
    sums: Vec<(i128, i128, i128)>,
}

impl Sums {
    fn new(mut incrs: Vec<(usize, i64)>) -> Self {
        incrs.sort_unstable();
        let mut sums = Vec::with_capacity(incrs.len() + 1);
        let mut acc = (0i128, 0i128, 0i128);
        sums.push(acc);
        for &(_, by) in &incrs {
            let by = i128::from(by);
            acc = (acc.0 + by, acc.1 + by.max(0), acc.2 + by.min(0));
            sums.push(acc);
        }
        Sums { at: incrs.into_iter().map(|(at, _)| at).collect(), sums }
    }

    /// The sums over the increments whose index is below `index`.
    fn before(&self, index: usize) -> (i128, i128, i128) {
        self.sums[self.at.partition_point(|&at| at < index)]
    }
}

/// Judges one key; returns how many reads it judged.
fn judge_key(key: &str, ops: &[CounterOp]) -> Result<usize, String> {
    // Acknowledged increments by completion; possible ones by invocation.
    let acked = Sums::new(ops.iter().filter_map(|o| Some((o.acked?, o.by?))).collect());
    let possible = Sums::new(ops.iter().filter(|o| !o.failed).filter_map(|o| Some((o.invoked, o.by?))).collect());
    let mut judged = 0;
    for op in ops {
        let (Some(value), Some(done)) = (op.read, op.acked) else { continue };
        // Acknowledged before this read began: certainly applied before it.
        let (sure, sure_up, sure_down) = acked.before(op.invoked);
        // Invoked before it ended: possibly applied, the certain included.
        let (_, up, down) = possible.before(done);
        let own = i128::from(op.by.unwrap_or(0)); // an increment's own effect precedes its result
        let min = sure + own + (down - sure_down - own.min(0));
        let max = sure + own + (up - sure_up - own.max(0));
        judged += 1;
        let value = i128::from(value);
        if (min..=max).contains(&value) {
            continue;
        }
        let what = if op.by.is_some() { "an increment returned" } else { "a read returned" };
        let why = if value < min {
            "an acknowledged increment is missing"
        } else {
            "an increment was counted twice, or one nobody made"
        };
        return Err(format!(
            "{what} {value} for counter {key:?} (history events {}-{done}), outside {min}..={max}: {why}",
            op.invoked
        ));
    }
    Ok(judged)
}

/// The check; see the module's doc.
pub struct CountsEachIncrementOnce {
    functions: CounterFunctions,
    judged: usize,
}

impl CountsEachIncrementOnce {
    pub fn new(functions: CounterFunctions) -> Self {
        CountsEachIncrementOnce { functions, judged: 0 }
    }
}

impl<O> Invariant<O> for CountsEachIncrementOnce {
    fn name(&self) -> &str {
        COUNTS_EACH_INCREMENT_ONCE
    }
    fn at_end(&mut self, end: &RunEnd<'_, O>) -> Result<(), String> {
        let keys = counter_keys(end.history, &self.functions);
        for (key, ops) in counter_ops(end.history, &self.functions, &keys)? {
            self.judged += judge_key(&key, &ops)?;
        }
        Ok(())
    }
    fn vacuous(&self) -> bool {
        self.judged == 0
    }
    fn judges_at_end(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn functions() -> CounterFunctions {
        CounterFunctions { incr: "incr".into(), reads: vec!["read".into()], weaker_reads: vec!["stale-read".into()] }
    }

    /// Each step: (process, kind, f, key, value).
    fn history(steps: &[(u64, OpType, &str, &str, Value)]) -> History {
        let mut h = History::new();
        for (process, kind, f, key, value) in steps {
            let key = Some((*key).to_owned());
            h.push(Op { process: *process, kind: *kind, f: (*f).into(), key, value: value.clone(), time: None });
        }
        h
    }

    fn judge(h: &History) -> Result<usize, String> {
        let keys = counter_keys(h, &functions());
        let mut judged = 0;
        for (key, ops) in counter_ops(h, &functions(), &keys)? {
            judged += judge_key(&key, &ops)?;
        }
        Ok(judged)
    }

    use OpType::{Info, Invoke, Ok as Done};

    #[test]
    fn reads_between_the_certain_and_the_possible_increments_pass() {
        let h = history(&[
            (1, Invoke, "incr", "c", Value::Int(2)),
            (1, Done, "incr", "c", Value::Int(2)),
            (2, Invoke, "incr", "c", Value::Int(3)),
            (3, Invoke, "read", "c", Value::Null),
            (3, Done, "read", "c", Value::Int(5)), // the concurrent increment may be in
            (2, Info, "incr", "c", Value::Null),
            (4, Invoke, "read", "c", Value::Null),
            (4, Done, "read", "c", Value::Int(2)), // the unknown one may never apply
            (5, Invoke, "incr", "c", Value::Int(1)),
            (5, Done, "incr", "c", Value::Int(6)),
        ]);
        assert_eq!(judge(&h), Ok(4));
    }

    #[test]
    fn a_doubled_increment_is_caught() {
        let h = history(&[
            (1, Invoke, "incr", "c", Value::Int(2)),
            (1, Done, "incr", "c", Value::Null),
            (2, Invoke, "read", "c", Value::Null),
            (2, Done, "read", "c", Value::Int(4)),
        ]);
        let e = judge(&h).unwrap_err();
        assert!(e.contains("a read returned 4 for counter \"c\" (history events 2-3), outside 2..=2"), "{e}");
        assert!(e.contains("counted twice"), "{e}");
    }

    #[test]
    fn a_lost_acknowledged_increment_is_caught() {
        let h = history(&[
            (1, Invoke, "incr", "c", Value::Int(2)),
            (1, Done, "incr", "c", Value::Int(2)),
            (2, Invoke, "incr", "c", Value::Int(-1)),
            (3, Invoke, "incr", "c", Value::Int(5)),
            (3, Done, "incr", "c", Value::Int(4)),
        ]);
        let e = judge(&h).unwrap_err();
        assert!(e.contains("an increment returned 4"), "{e}");
        assert!(e.contains("outside 6..=7: an acknowledged increment is missing"), "{e}");
    }

    #[test]
    fn only_keys_with_nothing_but_increments_and_reads_are_counters() {
        let h = history(&[
            (1, Invoke, "incr", "c", Value::Int(1)),
            (1, Done, "incr", "c", Value::Null),
            (1, Invoke, "write", "w", Value::Int(7)),
            (1, Done, "write", "w", Value::Null),
            (1, Invoke, "incr", "w", Value::Int(1)),
            (1, Done, "incr", "w", Value::Int(8)),
            (1, Invoke, "read", "r", Value::Null),
            (1, Done, "read", "r", Value::Int(3)),
            (1, Invoke, "stale-read", "c", Value::Null),
            (1, Done, "stale-read", "c", Value::Int(-9)),
        ]);
        assert_eq!(counter_keys(&h, &functions()), BTreeSet::from(["c".to_owned()]));
        assert_eq!(judge(&h), Ok(0), "nothing read the counter");
        let bad = history(&[(1, Invoke, "incr", "c", Value::from("x"))]);
        assert!(judge(&bad).unwrap_err().contains("the amount of counter \"c\" is \"x\", not an integer"));
    }
}
