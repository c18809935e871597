//! The linearizability checker: Wing-Gong/Lowe depth-first search with
//! memoisation on (set of linearized operations, model state), per-key
//! partitioning (P-compositionality), and a budget counted in explored
//! states so the verdict never depends on the machine.
//!
//! How the search runs, per partition:
//! - calls and returns sit in one doubly linked list in history order;
//! - walking the list, a call whose op the model accepts from the current
//!   state is linearized: its call and return are lifted out of the list and
//!   the search restarts from the head;
//! - reaching a return means the op that returns there was not linearized in
//!   time: backtrack (undo the last linearization, try the next call);
//! - `info` and never-completed ops have no return: they may be linearized
//!   anywhere after their call, or never;
//! - a (set, state) pair seen before is not explored again. The set is
//!   Zobrist-hashed (XOR of a 128-bit random word per op, updated in O(1)),
//!   combined with a hash of the state into a 128-bit fingerprint; only
//!   fingerprints are stored, so memory is bounded by 32 bytes a state;
//! - indeterminate ops are kept out of the fingerprint, in a bit mask: a
//!   configuration is skipped when one with the same definite ops and state
//!   and a subset of its indeterminate ops was explored (see [`Memo`]).
//!
//! Evidence for a violation is chosen canonically: the first prefix of
//! maximal length found in the (deterministic) search order.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::models::{Call, Model};
use crate::history::{History, OpType};
use crate::rng::splitmix64;

/// The largest budget a search may be given, per partition and in all:
/// about 15 s and 1 GB of memo on this project's 2-core machine (measured
/// on Porcupine's c50-bad, about 1.5 us and 90 bytes a state).
pub const MAX_STATES: u64 = 10_000_000;

/// Search limits.
#[derive(Clone, Debug)]
pub struct Options {
    /// States a partition may explore before it is `unknown`.
    pub max_states_per_partition: u64,
    /// States the whole history may explore: a partition starts with what
    /// is left, at most its own budget, so a history of a thousand hard
    /// keys costs seconds, not a thousand times one key's budget.
    pub max_states_total: u64,
    /// Steps of the longest linearizable prefix kept in a report (the last ones).
    pub max_prefix_in_report: usize,
    /// Work the evidence windows of one check may take, over all its
    /// partitions: each probe costs the states it explores (at most
    /// 20,000) and the operations it prepares; 0 computes no window.
    pub max_states_window: u64,
    /// Whether a violation's evidence (prefix, candidates, window) is
    /// rebuilt: off for a batch of one-line verdicts, where it is not shown.
    pub evidence: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_states_per_partition: 500_000,
            max_states_total: MAX_STATES,
            max_prefix_in_report: 100,
            max_states_window: 500_000,
            evidence: true,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "not_linearizable",
            Verdict::Unknown => "unknown",
        }
    }
}

/// The checker's verdict on a whole history. Canonical: no wall-clock
/// times, partitions sorted by key, operations named by history index (the
/// index of their invocation event, counted from 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinearizabilityReport {
    pub model: String,
    pub verdict: Verdict,
    /// Operations checked (failed operations are left out: they did not happen).
    pub operations: usize,
    pub states_explored: u64,
    pub partitions: Vec<PartitionReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    /// The key, or `None` for operations without one.
    pub key: Option<String>,
    pub verdict: Verdict,
    pub operations: usize,
    pub states_explored: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<Evidence>,
}

/// Why a partition is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// Length of the longest linearizable prefix.
    pub prefix_length: usize,
    /// Its last steps (at most `Options::max_prefix_in_report`), each with
    /// the model state after it.
    pub prefix: Vec<PrefixStep>,
    /// The operation whose return came before it could be linearized.
    pub stuck: OpRef,
    /// Operations not in the prefix that overlap the stuck one.
    pub concurrent: Vec<OpRef>,
    /// Every operation that could go next after the prefix, and why it cannot.
    pub candidates: Vec<Candidate>,
    /// Distinct model states at the deepest point the search reached (at most 10).
    pub surviving_states: Vec<String>,
    /// What a person reads first: the few operations whose results alone
    /// already cannot be linearized. `None` if the search could not show
    /// such a set within its budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// Operations whose results contradict each other whatever every other
/// operation did: with only these definite (their results as observed)
/// and every other operation of the partition treated as may-or-may-not
/// have taken effect, the history is still not linearizable. Such a subset
/// is evidence on its own: a linearization of the whole history would
/// linearize it too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// In history order (usually the stuck operation among them).
    pub ops: Vec<OpRef>,
    /// Checked: relaxing any one of them (but the stuck one, when it is
    /// among them) makes the history linearizable. `false` when the budget
    /// ran out first.
    pub minimal: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrefixStep {
    pub op: usize,
    pub call: String,
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpRef {
    pub op: usize,
    pub call: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub op: usize,
    pub call: String,
    pub rejection: String,
}

/// An operation the model cannot read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    /// The history event at fault.
    pub event: usize,
    pub message: String,
}

/// One operation ready for the search.
struct Prepared<O> {
    /// History index of the invocation (the operation's name in reports).
    invoke: usize,
    /// History index of the completion; `None` for indeterminate ops.
    ret: Option<usize>,
    op: O,
}

/// Checks `history` against `model`, partition by partition.
pub fn check<M: Model>(model: &M, history: &History, options: &Options) -> Result<LinearizabilityReport, CheckError> {
    let partitions = prepare(model, history)?;
    let mut reports = Vec::with_capacity(partitions.len());
    let mut left = options.max_states_total;
    // One budget for every partition's evidence window, as for the search.
    let mut window_left = options.max_states_window;
    for (key, ops) in partitions {
        let budget =
            Options { max_states_per_partition: options.max_states_per_partition.min(left), ..options.clone() };
        let report = check_partition(model, history, key, &ops, &budget, &mut window_left);
        left = left.saturating_sub(report.states_explored);
        reports.push(report);
    }
    let verdict = overall(reports.iter().map(|p| p.verdict));
    Ok(LinearizabilityReport {
        model: model.name().to_owned(),
        verdict,
        operations: reports.iter().map(|p| p.operations).sum(),
        states_explored: reports.iter().map(|p| p.states_explored).sum(),
        partitions: reports,
    })
}

fn overall(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    // Any violation decides; otherwise any unknown leaves the whole unknown.
    verdicts.fold(Verdict::Linearizable, |acc, v| match (acc, v) {
        (Verdict::NotLinearizable, _) | (_, Verdict::NotLinearizable) => Verdict::NotLinearizable,
        (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
        _ => Verdict::Linearizable,
    })
}

/// Each key's prepared operations, in key order.
type Partitions<O> = BTreeMap<Option<String>, Vec<Prepared<O>>>;

/// Pairs, prepares and partitions the operations by key.
fn prepare<M: Model>(model: &M, history: &History) -> Result<Partitions<M::Op>, CheckError> {
    let pairs =
        history.pair_with(|i| format!("event {i}")).map_err(|e| CheckError { event: e.event, message: e.message })?;
    let mut partitions: Partitions<M::Op> = BTreeMap::new();
    for (inv, comp) in pairs {
        let invoke = &history.ops[inv];
        let completion = comp.map(|c| &history.ops[c]);
        let (ret, output) = match completion {
            Some(c) if c.kind == OpType::Fail => continue,
            Some(c) if c.kind == OpType::Ok => (comp, Some(&c.value)),
            _ => (None, None),
        };
        let call =
            Call { process: invoke.process, f: &invoke.f, key: invoke.key.as_deref(), input: &invoke.value, output };
        let op = model
            .prepare(&call)
            .map_err(|message| CheckError { event: comp.filter(|_| output.is_some()).unwrap_or(inv), message })?;
        if let Some(op) = op {
            partitions.entry(invoke.key.clone()).or_default().push(Prepared { invoke: inv, ret, op });
        }
    }
    for ops in partitions.values_mut() {
        drop_invisible(model, ops);
    }
    Ok(partitions)
}

/// Drops the indeterminate ops whose effect no op could observe: "never
/// took effect" is always allowed for them, and loses no linearization
/// (see [`Model::invisible`]). Unobserved timed-out writes otherwise stay
/// concurrent with everything after them and blow up the search.
fn drop_invisible<M: Model>(model: &M, ops: &mut Vec<Prepared<M::Op>>) {
    let facts = model.facts(&ops.iter().map(|p| &p.op).collect::<Vec<_>>());
    ops.retain(|p| p.ret.is_some() || !model.invisible(&facts, &p.op));
}

/// The call a prepared op was made from. Descriptions and relaxed ops are
/// made from it only where evidence is reported, not for every op.
fn call_of<'h, O>(history: &'h History, p: &Prepared<O>) -> Call<'h> {
    let invoke = &history.ops[p.invoke];
    Call {
        process: invoke.process,
        f: &invoke.f,
        key: invoke.key.as_deref(),
        input: &invoke.value,
        output: p.ret.map(|r| &history.ops[r].value),
    }
}

/// The op as if its result were unknown, for the evidence window:
/// `Some(None)` if the model ignores it then (a read), `None` if the model
/// will not take it without its result (then it is never relaxed).
fn relaxed<M: Model>(model: &M, history: &History, p: &Prepared<M::Op>) -> Option<Option<M::Op>> {
    if p.ret.is_none() {
        return Some(Some(p.op.clone()));
    }
    model.prepare(&Call { output: None, ..call_of(history, p) }).ok()
}

/// `p3 cas [4 7] -> false`; `?` marks an unknown outcome.
fn describe<O>(history: &History, p: &Prepared<O>) -> String {
    let call = call_of(history, p);
    let mut s = format!("p{} {}", call.process, call.f);
    if !call.input.is_null() {
        let _ = write!(s, " {}", call.input);
    }
    match call.output {
        Some(out) => {
            let _ = write!(s, " -> {out}");
        }
        None => s.push_str(" -> ?"),
    }
    s
}

const NIL: u32 = u32::MAX;

/// The calls and returns of one partition as a doubly linked list with a
/// head sentinel at index 0; entry `2i+1` is op i's call, `2i+2` its return.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Entries {
    fn new<O>(ops: &[Prepared<O>]) -> Self {
        // Order entries by history index; returns of indeterminate ops are left out.
        let mut order: Vec<(usize, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke, 2 * i as u32 + 1));
            if let Some(r) = op.ret {
                order.push((r, 2 * i as u32 + 2));
            }
        }
        order.sort_unstable();
        let n = ops.len() * 2 + 1;
        let mut next = vec![NIL; n];
        let mut prev = vec![NIL; n];
        let mut last = 0u32;
        for &(_, e) in &order {
            next[last as usize] = e;
            prev[e as usize] = last;
            last = e;
        }
        next[last as usize] = NIL;
        Entries { next, prev }
    }

    #[inline]
    fn remove(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Undoes `remove(e)`; removals must be undone in reverse order.
    #[inline]
    fn restore(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }
}

/// The memo: explored configurations as (fingerprint of the definite ops
/// linearized and the state, mask of the indeterminate ops linearized), in
/// an open-addressing table.
///
/// Indeterminate (`info`) ops may be linearized or never, so a configuration
/// is dominated by an explored one with the same definite set and state and
/// a subset of its indeterminate ops: everything reachable from the larger
/// one is reachable from the smaller. Without `info` ops every mask is 0 and
/// this is a plain set of fingerprints.
enum Memo {
    /// No indeterminate ops: a plain set of fingerprints, 16 bytes a slot.
    Plain(FingerprintSet),
    Masked(MaskedMemo),
}

impl Memo {
    fn new(has_info_ops: bool) -> Self {
        if has_info_ops {
            Memo::Masked(MaskedMemo::new())
        } else {
            Memo::Plain(FingerprintSet { slots: vec![0; MEMO_FIRST_SLOTS], len: 0 })
        }
    }

    #[inline]
    fn insert(&mut self, fp: u128, mask: u128) -> bool {
        match self {
            Memo::Plain(set) => set.insert(fp),
            Memo::Masked(memo) => memo.insert(fp, mask),
        }
    }
}

/// A memo's first table: most partitions explore a few hundred states,
/// and a bigger table costs a page fault per page it touches.
const MEMO_FIRST_SLOTS: usize = 1 << 8;

/// An open-addressing set of fingerprints (zero marks an empty slot).
struct FingerprintSet {
    slots: Vec<u128>,
    len: usize,
}

impl FingerprintSet {
    #[inline]
    fn insert(&mut self, fp: u128) -> bool {
        let fp = fp | 1;
        if self.len * 2 >= self.slots.len() {
            let doubled = vec![0; self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, doubled);
            for f in old.into_iter().filter(|&f| f != 0) {
                let slot = self.free_slot(f);
                self.slots[slot] = f;
            }
        }
        let slot = self.free_slot(fp);
        if self.slots[slot] == fp {
            return false;
        }
        self.slots[slot] = fp;
        self.len += 1;
        true
    }

    /// The slot holding `fp`, or the empty slot where it belongs.
    #[inline]
    fn free_slot(&self, fp: u128) -> usize {
        let bits = self.slots.len() - 1;
        let mut i = (fp as usize) & bits;
        while self.slots[i] != 0 && self.slots[i] != fp {
            i = (i + 1) & bits;
        }
        i
    }
}

struct MaskedMemo {
    /// (fingerprint, head of its mask list); fingerprint 0 marks an empty slot.
    slots: Vec<(u128, u32)>,
    len: usize,
    /// Mask lists: (mask, next node). Each list is an antichain: no mask in
    /// it is a superset of another.
    nodes: Vec<(u128, u32)>,
}

impl MaskedMemo {
    fn new() -> Self {
        MaskedMemo { slots: vec![(0, NIL); MEMO_FIRST_SLOTS], len: 0, nodes: Vec::new() }
    }

    /// Records the configuration unless an explored one dominates it;
    /// returns whether it is new (to be explored).
    #[inline]
    fn insert(&mut self, fp: u128, mask: u128) -> bool {
        let fp = fp | 1; // zero marks an empty slot
        if self.len * 2 >= self.slots.len() {
            self.grow();
        }
        let bits = self.slots.len() - 1;
        let mut i = (fp as usize) & bits;
        loop {
            let (f, head) = self.slots[i];
            if f == 0 {
                self.slots[i] = (fp, self.push_node(mask, NIL));
                self.len += 1;
                return true;
            }
            if f == fp {
                return self.insert_mask(i, head, mask);
            }
            i = (i + 1) & bits;
        }
    }

    fn push_node(&mut self, mask: u128, next: u32) -> u32 {
        self.nodes.push((mask, next));
        u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 memo entries")
    }

    /// Adds `mask` to slot `i`'s list unless a subset of it is there; drops
    /// the supersets it makes redundant.
    fn insert_mask(&mut self, slot: usize, head: u32, mask: u128) -> bool {
        let mut node = head;
        while node != NIL {
            let (m, next) = self.nodes[node as usize];
            if m & !mask == 0 {
                return false;
            }
            node = next;
        }
        // Unlink supersets of the new mask, then push it at the front.
        let mut prev = NIL;
        let mut node = head;
        let mut first = head;
        while node != NIL {
            let (m, next) = self.nodes[node as usize];
            if mask & !m == 0 {
                if prev == NIL {
                    first = next;
                } else {
                    self.nodes[prev as usize].1 = next;
                }
            } else {
                prev = node;
            }
            node = next;
        }
        self.slots[slot].1 = self.push_node(mask, first);
        true
    }

    fn grow(&mut self) {
        let doubled = vec![(0, NIL); self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let bits = self.slots.len() - 1;
        for (fp, head) in old.into_iter().filter(|&(f, _)| f != 0) {
            let mut i = (fp as usize) & bits;
            while self.slots[i].0 != 0 {
                i = (i + 1) & bits;
            }
            self.slots[i] = (fp, head);
        }
    }
}

/// A random 128-bit word per op, fixed (not seeded by the run): reports
/// must not depend on anything but the history.
fn zobrist(n: usize) -> Vec<u128> {
    let mut s = 0x005E_ED0F_FA17_u64;
    (0..n).map(|_| (u128::from(splitmix64(&mut s)) << 64) | u128::from(splitmix64(&mut s))).collect()
}

#[inline]
fn fingerprint(set: u128, state_hash: u64) -> u128 {
    let mut s = state_hash;
    set ^ ((u128::from(splitmix64(&mut s)) << 64) | u128::from(state_hash))
}

enum SearchResult<S> {
    Linearizable,
    NotLinearizable { prefix: Vec<usize>, survivors: Vec<S> },
    Unknown,
}

fn check_partition<M: Model>(
    model: &M,
    history: &History,
    key: Option<String>,
    ops: &[Prepared<M::Op>],
    options: &Options,
    window_left: &mut u64,
) -> PartitionReport {
    let (result, states) = search(model, ops, options.max_states_per_partition);
    let (verdict, violation) = match result {
        SearchResult::Linearizable => (Verdict::Linearizable, None),
        SearchResult::Unknown => (Verdict::Unknown, None),
        SearchResult::NotLinearizable { prefix, survivors } => (
            Verdict::NotLinearizable,
            options.evidence.then(|| evidence(model, history, ops, &prefix, &survivors, options, window_left)),
        ),
    };
    PartitionReport { key, verdict, operations: ops.len(), states_explored: states, violation }
}

/// The search proper. Returns the result and the number of states explored.
fn search<M: Model>(model: &M, ops: &[Prepared<M::Op>], budget: u64) -> (SearchResult<M::State>, u64) {
    let mut s = Search::new(model, ops);
    let mut cur = s.entries.next[0];
    // Set after each push: the new configuration gets its forced moves first.
    let mut fresh = true;
    loop {
        if s.pending_returns == 0 {
            return (SearchResult::Linearizable, s.states);
        }
        if s.states > budget {
            return (SearchResult::Unknown, s.states);
        }
        if fresh {
            fresh = false;
            match s.forced_read() {
                Forced::None => {}
                Forced::Pushed => {
                    fresh = true;
                    cur = s.entries.next[0];
                    continue;
                }
                Forced::Dead => match s.backtrack() {
                    Some(next) => {
                        cur = next;
                        continue;
                    }
                    None => return s.not_linearizable(),
                },
            }
        }
        if cur != NIL && cur % 2 == 1 {
            let i = (cur as usize - 1) / 2;
            if let Ok(next) = model.step(&s.state, &ops[i].op) {
                if s.try_push(i, next, false) {
                    fresh = true;
                    cur = s.entries.next[0];
                    continue;
                }
            }
            cur = s.entries.next[cur as usize];
            continue;
        }
        // A return (or the end of the list): this configuration is dead.
        match s.backtrack() {
            Some(next) => cur = next,
            None => return s.not_linearizable(),
        }
    }
}

enum Forced {
    None,
    Pushed,
    /// The configuration plus its forced move was explored already, so the
    /// configuration itself is dead.
    Dead,
}

/// The search's mutable state for one partition.
struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [Prepared<M::Op>],
    entries: Entries,
    keys: Vec<u128>,
    /// The mask bit of each indeterminate op; 0 for definite ops. The first
    /// 128 indeterminate ops get a bit; any others are treated like definite
    /// ops in the fingerprint (sound, prunes less).
    info_bit: Vec<u128>,
    facts: M::Facts,
    seen: Memo,
    state: M::State,
    /// Zobrist hash of the linearized ops that have no mask bit, and the mask.
    set: u128,
    mask: u128,
    states: u64,
    /// Ops with a return must all be linearized; the others may be left out.
    pending_returns: usize,
    /// (op index, state before it, whether it was a forced move)
    stack: Vec<(usize, M::State, bool)>,
    deepest: Vec<usize>,
    /// How long a prefix `deepest` and the stack share: a new deepest
    /// path copies only what lies past it, so a sequential history of n
    /// ops costs O(n) here, not O(n^2).
    common: usize,
    survivors: Vec<M::State>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [Prepared<M::Op>]) -> Self {
        let mut info_bit = vec![0u128; ops.len()];
        let mut next_bit = 0u32;
        for (i, op) in ops.iter().enumerate() {
            if op.ret.is_none() && next_bit < 128 {
                info_bit[i] = 1u128 << next_bit;
                next_bit += 1;
            }
        }
        let all: Vec<&M::Op> = ops.iter().map(|o| &o.op).collect();
        let state = model.init();
        Search {
            model,
            ops,
            entries: Entries::new(ops),
            keys: zobrist(ops.len()),
            info_bit,
            facts: model.facts(&all),
            seen: Memo::new(next_bit > 0),
            survivors: vec![state.clone()],
            state,
            set: 0,
            mask: 0,
            states: 0,
            pending_returns: ops.iter().filter(|o| o.ret.is_some()).count(),
            stack: Vec::new(),
            deepest: Vec::new(),
            common: 0,
        }
    }

    /// Linearizes op `i` into state `next` unless that configuration was
    /// explored or is a dead end; returns whether it did.
    fn try_push(&mut self, i: usize, next: M::State, forced: bool) -> bool {
        let (set, mask) = if self.info_bit[i] == 0 {
            (self.set ^ self.keys[i], self.mask)
        } else {
            (self.set, self.mask | self.info_bit[i])
        };
        if !self.seen.insert(fingerprint(set, self.model.memo_hash(&self.facts, &next)), mask) {
            return false;
        }
        self.states += 1;
        let call = 2 * i as u32 + 1;
        if !forced && dooms_pending(self.model, &self.facts, &next, &self.entries, self.ops, call) {
            return false;
        }
        self.set = set;
        self.mask = mask;
        let before = std::mem::replace(&mut self.state, next);
        self.stack.push((i, before, forced));
        self.entries.remove(call);
        if self.ops[i].ret.is_some() {
            self.entries.remove(call + 1);
            self.pending_returns -= 1;
        }
        self.note_depth();
        true
    }

    /// Linearizes the first accepted read-only op in the window, if any.
    fn forced_read(&mut self) -> Forced {
        let mut e = self.entries.next[0];
        while e != NIL && e % 2 == 1 {
            let i = (e as usize - 1) / 2;
            let op = &self.ops[i].op;
            if self.ops[i].ret.is_some() && self.model.read_only(op) {
                if let Ok(next) = self.model.step(&self.state, op) {
                    return if self.try_push(i, next, true) { Forced::Pushed } else { Forced::Dead };
                }
            }
            e = self.entries.next[e as usize];
        }
        Forced::None
    }

    /// Undoes linearizations back to the last configuration with untried
    /// alternatives (forced moves have none); returns where to resume, or
    /// `None` when the whole search is exhausted.
    fn backtrack(&mut self) -> Option<u32> {
        loop {
            let (i, before, forced) = self.stack.pop()?;
            self.common = self.common.min(self.stack.len());
            let call = 2 * i as u32 + 1;
            if self.ops[i].ret.is_some() {
                self.entries.restore(call + 1);
                self.pending_returns += 1;
            }
            self.entries.restore(call);
            self.state = before;
            if self.info_bit[i] == 0 {
                self.set ^= self.keys[i];
            } else {
                self.mask &= !self.info_bit[i];
            }
            if !forced {
                return Some(self.entries.next[call as usize]);
            }
        }
    }

    /// Keeps the first deepest prefix and up to 10 distinct states seen at that depth.
    fn note_depth(&mut self) {
        let depth = self.stack.len();
        if depth > self.deepest.len() {
            debug_assert!(self.common <= self.deepest.len() && self.common <= depth);
            self.deepest.truncate(self.common);
            self.deepest.extend(self.stack[self.common..].iter().map(|(i, _, _)| *i));
            self.common = depth;
            self.survivors.clear();
            self.survivors.push(self.state.clone());
        } else if depth == self.deepest.len() && self.survivors.len() < 10 && !self.survivors.contains(&self.state) {
            self.survivors.push(self.state.clone());
        }
    }

    fn not_linearizable(self) -> (SearchResult<M::State>, u64) {
        (SearchResult::NotLinearizable { prefix: self.deepest, survivors: self.survivors }, self.states)
    }
}

/// Whether, after linearizing the call at `taken`, some definite op still
/// waiting in the window (calls before the first return) can never be
/// accepted from `state`: then the state is a dead end.
fn dooms_pending<M: Model>(
    model: &M,
    facts: &M::Facts,
    state: &M::State,
    entries: &Entries,
    ops: &[Prepared<M::Op>],
    taken: u32,
) -> bool {
    let mut e = entries.next[0];
    while e != NIL {
        if e % 2 == 0 {
            if e != taken + 1 {
                break; // the first return: the window ends
            }
        } else if e != taken {
            let i = (e as usize - 1) / 2;
            if ops[i].ret.is_some() && model.doomed(facts, state, &ops[i].op) {
                return true;
            }
        }
        e = entries.next[e as usize];
    }
    false
}

/// Rebuilds, from the deepest prefix, what a person needs to see.
fn evidence<M: Model>(
    model: &M,
    history: &History,
    ops: &[Prepared<M::Op>],
    prefix: &[usize],
    survivors: &[M::State],
    options: &Options,
    window_left: &mut u64,
) -> Evidence {
    let mut state = model.init();
    let mut steps = Vec::with_capacity(prefix.len());
    let mut linearized = vec![false; ops.len()];
    for &i in prefix {
        state =
            model.step(&state, &ops[i].op).unwrap_or_else(|_| panic!("the prefix replays: op {i} was accepted before"));
        linearized[i] = true;
        steps.push(PrefixStep {
            op: ops[i].invoke,
            call: describe(history, &ops[i]),
            state: model.describe_state(&state),
        });
    }
    let skip = steps.len().saturating_sub(options.max_prefix_in_report);
    let steps = steps.split_off(skip);
    // After the prefix, the first return of a pending op is where the search is stuck.
    let stuck = (0..ops.len())
        .filter(|&i| !linearized[i] && ops[i].ret.is_some())
        .min_by_key(|&i| ops[i].ret)
        .expect("a non-linearizable partition has a pending op with a return");
    let stuck_ret = ops[stuck].ret.unwrap_or(usize::MAX);
    let stuck_call = ops[stuck].invoke;
    let op_ref = |i: usize| OpRef { op: ops[i].invoke, call: describe(history, &ops[i]) };
    let mut candidates = Vec::new();
    let mut concurrent = Vec::new();
    for i in (0..ops.len()).filter(|&i| !linearized[i] && ops[i].invoke < stuck_ret) {
        let rejection = match model.step(&state, &ops[i].op) {
            Err(reason) => reason.to_string(),
            Ok(next) => format!(
                "accepted here (state becomes {}), but no order of the remaining operations continues from there",
                model.describe_state(&next)
            ),
        };
        candidates.push(Candidate { op: ops[i].invoke, call: describe(history, &ops[i]), rejection });
        if i != stuck && ops[i].ret.is_none_or(|r| r > stuck_call) {
            concurrent.push(op_ref(i));
        }
    }
    let window = window(model, history, ops, stuck, window_left)
        .map(|(kept, minimal)| Window { ops: kept.into_iter().map(op_ref).collect(), minimal });
    Evidence {
        prefix_length: prefix.len(),
        prefix: steps,
        stuck: op_ref(stuck),
        concurrent,
        candidates,
        surviving_states: survivors.iter().map(|s| model.describe_state(s)).collect(),
        window,
    }
}

/// States one probe of the window search may explore: a probe that needs
/// more is taken as inconclusive (the op stays), and the search goes on.
const WINDOW_PROBE_STATES: u64 = 20_000;

/// A small set of definite ops (indices into `ops`) that alone cannot be
/// linearized, and whether each was checked to be needed. See [`Window`].
///
/// Relaxing an op (its result forgotten: it may or may not have taken
/// effect) only allows more orders, so a relaxed history that is still not
/// linearizable is evidence against the whole; and relaxing only makes
/// more histories linearizable, so once a final pass has tried each kept op
/// alone, none of them can be relaxed alone.
///
/// It first looks around the stuck op `s`, which is cheaper: let L
/// linearize the whole history; the part of L before `s` holds only ops
/// invoked before `s` returned, and every op that returned before `s` was
/// invoked. So with `s` and those ops definite, the others invoked before
/// `s` returned relaxed and the later ones left out, a history that is not
/// linearizable shows the whole is not. When the violation needs ops that
/// overlap `s` to complete too (two concurrent compare-and-sets that both
/// succeeded), it starts from the whole partition instead.
fn window<M: Model>(
    model: &M,
    history: &History,
    ops: &[Prepared<M::Op>],
    stuck: usize,
    left: &mut u64,
) -> Option<(Vec<usize>, bool)> {
    if *left == 0 {
        return None;
    }
    let relaxed: Vec<Option<Option<M::Op>>> = ops.iter().map(|p| relaxed(model, history, p)).collect();
    let relaxable = Relaxable { ops, relaxed: &relaxed };
    let (called, returned) = (ops[stuck].invoke, ops[stuck].ret?);
    let before: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].invoke < returned).collect();
    let kept: Vec<usize> =
        before.iter().copied().filter(|&i| i == stuck || ops[i].ret.is_some_and(|r| r < called)).collect();
    if let Some(found) = reduce(model, &relaxable, &before, kept, Some(stuck), left) {
        return Some(found);
    }
    let all: Vec<usize> = (0..ops.len()).collect();
    let definite: Vec<usize> = all.iter().copied().filter(|&i| ops[i].ret.is_some()).collect();
    reduce(model, &relaxable, &all, definite, None, left)
}

/// A partition's ops, each with its relaxed form (see [`relaxed`]).
struct Relaxable<'a, O> {
    ops: &'a [Prepared<O>],
    relaxed: &'a [Option<Option<O>>],
}

/// Relaxes what it can of `kept` (all but `pinned`) among the ops
/// `within`, keeping the history not linearizable; `None` if it is not
/// shown not linearizable to begin with.
fn reduce<M: Model>(
    model: &M,
    ops: &Relaxable<'_, M::Op>,
    within: &[usize],
    mut kept: Vec<usize>,
    pinned: Option<usize>,
    left: &mut u64,
) -> Option<(Vec<usize>, bool)> {
    let per_probe = WINDOW_PROBE_STATES;
    // A probe costs its states and the ops it prepares: a long history's
    // probes spend the budget even when they explore little.
    let mut probe = |kept: &[usize]| -> Option<bool> {
        if *left < within.len() as u64 {
            *left = 0;
            return None;
        }
        *left -= within.len() as u64;
        let mut definite = vec![false; ops.ops.len()];
        for &k in kept {
            definite[k] = true;
        }
        // A relaxed op is prepared as if its result were unknown; a relaxed
        // read then is nothing (left in, its value would keep writes of that
        // value visible).
        let mut sub: Vec<Prepared<M::Op>> = within
            .iter()
            .filter_map(|&i| {
                let (full, relaxed) = (&ops.ops[i], &ops.relaxed[i]);
                let definite = definite[i] || relaxed.is_none();
                let op = if definite { full.op.clone() } else { relaxed.clone().flatten()? };
                if !definite && model.read_only(&op) {
                    return None;
                }
                let ret = if definite { full.ret } else { None };
                Some(Prepared { invoke: full.invoke, ret, op })
            })
            .collect();
        drop_invisible(model, &mut sub);
        let (result, states) = search(model, &sub, per_probe.min(*left));
        *left = left.saturating_sub(states);
        match result {
            SearchResult::NotLinearizable { .. } => Some(true),
            SearchResult::Linearizable => Some(false),
            SearchResult::Unknown => None,
        }
    };
    if probe(&kept) != Some(true) {
        return None;
    }
    // Relax chunks, newest first (what lies next to the stuck op is likelier
    // to matter), halving the chunk until single ops: a long history's many
    // irrelevant ops go a chunk at a time, and the last round tries each
    // op that is left alone.
    let mut chunk = kept.len().div_ceil(2).max(1);
    let minimal = loop {
        let mut decided = true;
        // An op the model will not take without its result is never relaxed.
        let order: Vec<usize> =
            kept.iter().rev().copied().filter(|&i| Some(i) != pinned && ops.relaxed[i].is_some()).collect();
        for group in order.chunks(chunk) {
            let without: Vec<usize> = kept.iter().copied().filter(|k| !group.contains(k)).collect();
            match probe(&without) {
                Some(true) => kept = without,
                Some(false) => {}
                None => decided = false,
            }
        }
        if chunk == 1 {
            break decided;
        }
        chunk = chunk.div_ceil(2);
    };
    kept.sort_by_key(|&i| ops.ops[i].invoke);
    Some((kept, minimal))
}

impl LinearizabilityReport {
    /// Canonical YAML (for snapshots and tools).
    pub fn to_yaml(&self) -> String {
        yaml_serde::to_string(self).expect("reports serialise")
    }

    /// Canonical JSON, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }

    /// A terminal rendering.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "verdict: {} ({} operations, {} partitions, {} states explored, model {})",
            self.verdict.as_str(),
            self.operations,
            self.partitions.len(),
            self.states_explored,
            self.model
        );
        for p in &self.partitions {
            let key = p.key.as_deref().map_or("(no key)".to_owned(), |k| format!("key {k:?}"));
            let _ = writeln!(
                s,
                "  {key}: {} ({} operations, {} states)",
                p.verdict.as_str(),
                p.operations,
                p.states_explored
            );
            if let Some(e) = &p.violation {
                e.render(&mut s);
            }
        }
        s
    }
}

impl Evidence {
    fn render(&self, s: &mut String) {
        let shown = self.prefix.len();
        let _ = writeln!(
            s,
            "    longest linearizable prefix: {} operations{}",
            self.prefix_length,
            if shown < self.prefix_length { format!(" (last {shown} shown)") } else { String::new() }
        );
        for step in &self.prefix {
            let _ = writeln!(s, "      op {:>5}  {:<40} state: {}", step.op, step.call, step.state);
        }
        let _ = writeln!(s, "    cannot linearize op {}: {}", self.stuck.op, self.stuck.call);
        if !self.concurrent.is_empty() {
            let _ = writeln!(s, "    concurrent with it:");
            for c in &self.concurrent {
                let _ = writeln!(s, "      op {:>5}  {}", c.op, c.call);
            }
        }
        let _ = writeln!(s, "    candidates after the prefix:");
        for c in &self.candidates {
            let _ = writeln!(s, "      op {:>5}  {:<40} {}", c.op, c.call, c.rejection);
        }
        let _ = writeln!(s, "    surviving states: {}", self.surviving_states.join(", "));
        if let Some(w) = &self.window {
            let _ = writeln!(
                s,
                "    window: these {} results alone cannot be linearized, whatever the other operations did{}:",
                w.ops.len(),
                if w.minimal { " (none of them can be left out)" } else { " (not shown minimal: the budget ran out)" }
            );
            for o in &w.ops {
                let _ = writeln!(s, "      op {:>5}  {}", o.op, o.call);
            }
        }
    }
}
