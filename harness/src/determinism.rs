//! The determinism check: run one seed twice and compare trace hashes. On a
//! mismatch, run both again keeping full traces and name the first event
//! that differs.

use crate::outcome::Outcome;
use crate::trace::TraceEntry;

/// What one run of a seed leaves for the comparison.
pub struct TracedRun {
    pub hash: u64,
    /// Present when the run was asked to keep its full trace.
    pub entries: Option<Vec<TraceEntry>>,
}

/// Runs `run(keep_trace)` twice; `Ok(hash)` if both agree, otherwise an
/// `Outcome::Nondeterminism` naming the first differing event.
pub fn check(mut run: impl FnMut(bool) -> TracedRun) -> Result<u64, Outcome> {
    let first = run(false);
    let second = run(false);
    if first.hash == second.hash {
        return Ok(first.hash);
    }
    let a = run(true).entries.unwrap_or_default();
    let b = run(true).entries.unwrap_or_default();
    Err(first_difference(&a, &b))
}

/// The first index at which two traces differ, as an outcome.
pub fn first_difference(a: &[TraceEntry], b: &[TraceEntry]) -> Outcome {
    let describe = |e: Option<&TraceEntry>| match e {
        Some(e) => format!("at {}: {}", crate::time::SimTime(e.time), e.text),
        None => "the trace ended".to_owned(),
    };
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    Outcome::Nondeterminism { event: i as u64, first: describe(a.get(i)), second: describe(b.get(i)) }
}
