//! The determinism check: run one seed twice and compare trace hashes. On a
//! mismatch, run both again keeping full traces and name the first event
//! that differs.

use crate::outcome::Outcome;
use crate::trace::{TraceEntry, MAX_TRACE_ENTRIES, MAX_TRACE_TEXT_BYTES};

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
    // Both kept a prefix and agree on all of it: the difference lies later.
    let cut = |t: &[TraceEntry]| {
        t.len() >= MAX_TRACE_ENTRIES || t.iter().map(|e| e.text.len()).sum::<usize>() >= MAX_TRACE_TEXT_BYTES
    };
    let cut = cut(a) && cut(b);
    let describe = |trace: &[TraceEntry], e: Option<&TraceEntry>| match e {
        Some(e) => format!("at {}: {}", crate::time::SimTime(e.time), e.text),
        None if cut => format!("beyond the {} events kept (the most a trace keeps)", trace.len()),
        None => "the trace ended".to_owned(),
    };
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    Outcome::Nondeterminism { event: i as u64, first: describe(a, a.get(i)), second: describe(b, b.get(i)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{EventKind, Trace};

    fn kept(texts: impl Iterator<Item = String>) -> Vec<TraceEntry> {
        let mut trace = Trace::new(true);
        for (i, text) in texts.enumerate() {
            trace.record(i as u64, EventKind::Timer, 0, 0, 0);
            if trace.keeps_full() {
                trace.push_text(i as u64, text);
            }
        }
        trace.into_entries().expect("kept")
    }

    #[test]
    fn a_trace_keeps_a_bounded_prefix_and_a_diff_beyond_it_says_so() {
        let short = kept((0..MAX_TRACE_ENTRIES + 5).map(|i| format!("e{i}")));
        assert_eq!(short.len(), MAX_TRACE_ENTRIES);
        let long = kept((0..1_000).map(|_| "x".repeat(1 << 20)));
        assert_eq!(long.len(), MAX_TRACE_TEXT_BYTES >> 20, "a prefix of whole texts");
        let Outcome::Nondeterminism { event, first, .. } = first_difference(&long, &long) else { panic!("an outcome") };
        assert_eq!((event, first.as_str()), (128, "beyond the 128 events kept (the most a trace keeps)"));
        let Outcome::Nondeterminism { first, .. } = first_difference(&short[..3], &short[..2]) else {
            panic!("an outcome")
        };
        assert_eq!(first, "at 0.000000s: e2");
    }
}
