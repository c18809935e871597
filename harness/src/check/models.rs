//! Sequential models for the linearizability checker. A model turns each
//! history operation into its own compact op once ([`Model::prepare`]), then
//! steps states ([`Model::step`]) in the checker's hot loop, where a
//! rejection is a cheap value that renders as a human-readable reason.
//!
//! Models are per-key: the checker partitions a history by key and checks
//! each key's operations against a fresh model state. To add a model,
//! implement [`Model`]; the checker needs nothing else.

use crate::trace::stable_hash;
use std::fmt::{self, Debug, Display};
use std::hash::Hash;
use std::rc::Rc;

use crate::history::Value;

/// One operation as the model sees it: the call, and its output when known.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub process: u64,
    pub f: &'a str,
    pub key: Option<&'a str>,
    pub input: &'a Value,
    /// `None` when the outcome is unknown (`info`, or never completed).
    pub output: Option<&'a Value>,
}

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Op: Clone + Debug;
    /// Why a step is impossible; displays as a sentence.
    type Reject: Display;

    fn name(&self) -> &'static str;
    fn init(&self) -> Self::State;
    /// Turns a history operation into the model's op. `Ok(None)` means it
    /// constrains nothing (a read with an unknown result) and is left out;
    /// `Err` says what was expected (an unknown function, a wrong value type).
    fn prepare(&self, call: &Call<'_>) -> Result<Option<Self::Op>, String>;
    /// The state after `op`, or why `op` cannot happen in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Result<Self::State, Self::Reject>;
    fn describe_state(&self, state: &Self::State) -> String;

    /// Facts about one partition's operations that make [`Model::doomed`]
    /// sound, computed once per partition (`()` for models that do not prune).
    type Facts: Default;
    fn facts(&self, _ops: &[&Self::Op]) -> Self::Facts {
        Self::Facts::default()
    }
    /// For pruning: `true` only if no sequence of the partition's operations
    /// can take `state` to one where `op` is accepted. The checker abandons
    /// a state in which a pending operation is doomed. Saying `false` is
    /// always safe; saying `true` wrongly makes the checker unsound.
    fn doomed(&self, _facts: &Self::Facts, _state: &Self::State, _op: &Self::Op) -> bool {
        false
    }

    /// For pruning: `true` only if the indeterminate `op` may be dropped,
    /// as if it never took effect, without losing any linearization: no
    /// other op of the partition (described by `facts`) could ever observe
    /// its effect. Saying `false` is always safe.
    fn invisible(&self, _facts: &Self::Facts, _op: &Self::Op) -> bool {
        false
    }

    /// `true` only for ops whose step never changes the state (reads). The
    /// checker linearizes an accepted read-only op at once, without trying
    /// other orders: that is never worse, since it only drops a deadline.
    fn read_only(&self, _op: &Self::Op) -> bool {
        false
    }

    /// The hash under which the search remembers `state`. Two states may
    /// share it only if they are interchangeable for the rest of the
    /// partition: every sequence of its operations is accepted from one
    /// exactly when it is accepted from the other. The search then explores
    /// one of them and skips the other. Hashing the state itself is always
    /// safe.
    fn memo_hash(&self, _facts: &Self::Facts, state: &Self::State) -> u64 {
        stable_hash(state)
    }
}

/// A register's contents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cell {
    Absent,
    Int(i64),
    Str(Rc<str>),
    /// A list of integers, built by appends (Elle's list-append).
    List(Items),
    Other(Rc<Value>),
}

/// A list of integers that shares its prefix with the list it extends: the
/// search keeps the state before every op on its stack, and a copy of the
/// whole list per level would make n appends cost O(n^2) memory.
#[derive(Clone, Debug, Default)]
pub struct Items(Option<Rc<ItemNode>>);

#[derive(Debug)]
pub struct ItemNode {
    last: i64,
    before: Items,
    len: usize,
    /// A digest of the whole list, so equal lists hash alike in O(1).
    digest: u64,
}

impl Items {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |n| n.len)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
    fn digest(&self) -> u64 {
        self.0.as_ref().map_or(0, |n| n.digest)
    }
    /// This list with `item` added at the end (this one is unchanged).
    pub fn push(&self, item: i64) -> Items {
        let digest = stable_hash(&(self.digest(), item));
        Items(Some(Rc::new(ItemNode { last: item, before: self.clone(), len: self.len() + 1, digest })))
    }
    /// The items, first to last.
    pub fn to_vec(&self) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.len());
        let mut at = self;
        while let Some(n) = &at.0 {
            out.push(n.last);
            at = &n.before;
        }
        out.reverse();
        out
    }
    fn from_ints(items: &[i64]) -> Items {
        items.iter().fold(Items::default(), |list, &i| list.push(i))
    }
}

/// Unlinks iteratively: dropping a long list node by node would recurse
/// once per item and overflow the stack.
impl Drop for ItemNode {
    fn drop(&mut self) {
        let mut next = self.before.0.take();
        while let Some(node) = next {
            match Rc::try_unwrap(node) {
                Ok(mut owned) => next = owned.before.0.take(),
                Err(_) => break, // shared: another list still holds the rest
            }
        }
    }
}

impl PartialEq for Items {
    fn eq(&self, other: &Items) -> bool {
        let (mut a, mut b) = (self, other);
        loop {
            match (&a.0, &b.0) {
                (None, None) => return true,
                (Some(x), Some(y)) if Rc::ptr_eq(x, y) => return true,
                (Some(x), Some(y)) if x.len == y.len && x.digest == y.digest && x.last == y.last => {
                    (a, b) = (&x.before, &y.before);
                }
                _ => return false,
            }
        }
    }
}

impl Eq for Items {}

impl Hash for Items {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.len(), self.digest()).hash(state);
    }
}

impl Cell {
    fn from_value(v: &Value) -> Cell {
        match v {
            Value::Null => Cell::Absent,
            Value::Int(i) => Cell::Int(*i),
            Value::Str(s) => Cell::Str(Rc::from(s.as_str())),
            Value::List(items) if !items.is_empty() && items.iter().all(|i| i.as_int().is_some()) => {
                let ints: Vec<i64> = items.iter().filter_map(Value::as_int).collect();
                Cell::List(Items::from_ints(&ints))
            }
            other => Cell::Other(Rc::new(other.clone())),
        }
    }

    /// The string a `get` returns: absent reads as the empty string.
    fn text(&self) -> Option<&str> {
        match self {
            Cell::Absent => Some(""),
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Absent => f.write_str("nil"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Str(s) => write!(f, "{s:?}"),
            Cell::List(items) => {
                let shown: Vec<String> = items.to_vec().iter().map(i64::to_string).collect();
                write!(f, "[{}]", shown.join(" "))
            }
            Cell::Other(v) => write!(f, "{v}"),
        }
    }
}

/// Whether a cas reported success, failure of its compare, or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    Succeeded,
    CompareFailed,
    Unknown,
}

/// Operations on one register / one key.
#[derive(Clone, Debug)]
pub enum CellOp {
    Read(Cell),
    Write(Cell),
    Cas {
        from: Cell,
        to: Cell,
        outcome: CasOutcome,
    },
    Get(Rc<str>),
    Put(Cell),
    Append(Rc<str>),
    /// Elle's list-append: adds an element to the list a key holds.
    AppendItem(i64),
    /// Adds `by` to the integer a key holds (absent counts as 0); `out`
    /// is the new value, when the client learnt it.
    Incr {
        by: i64,
        out: Option<i64>,
    },
}

/// Why a register operation is impossible.
#[derive(Clone, Debug)]
pub enum CellReject {
    Read { got: Cell, held: Cell },
    Get { got: Rc<str>, held: Cell },
    CasCompare { from: Cell, held: Cell, indeterminate: bool },
    CasShouldHaveSucceeded { from: Cell },
    NotText { held: Cell },
    NotList { held: Cell },
    NotCounter { held: Cell },
    Incr { by: i64, got: i64, held: i64 },
}

impl Display for CellReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellReject::Read { got, held } => {
                write!(f, "read returned {got} but the register held {held}")
            }
            CellReject::Get { got, held } => {
                write!(f, "get returned {got:?} but the key held {held}")
            }
            CellReject::CasCompare { from, held, indeterminate: false } => {
                write!(f, "cas succeeded expecting {from} but the register held {held}")
            }
            CellReject::CasCompare { from, held, indeterminate: true } => {
                write!(f, "an indeterminate cas takes effect only on {from}, but the register held {held}")
            }
            CellReject::CasShouldHaveSucceeded { from } => {
                write!(f, "cas reported its compare failed but the register held {from}")
            }
            CellReject::NotText { held } => {
                write!(f, "append or get on a key holding the non-string {held}")
            }
            CellReject::NotList { held } => {
                write!(f, "an element appended to a key holding the non-list {held}")
            }
            CellReject::NotCounter { held } => {
                write!(f, "incr on a key holding the non-integer {held}")
            }
            CellReject::Incr { by, got, held } => {
                write!(f, "incr by {by} returned {got} but the key held {held}")
            }
        }
    }
}

fn step_cell(state: &Cell, op: &CellOp) -> Result<Cell, CellReject> {
    match op {
        CellOp::Read(got) if got == state => Ok(state.clone()),
        CellOp::Read(got) => Err(CellReject::Read { got: got.clone(), held: state.clone() }),
        CellOp::Write(v) | CellOp::Put(v) => Ok(v.clone()),
        CellOp::Cas { from, to, outcome: outcome @ (CasOutcome::Succeeded | CasOutcome::Unknown) } => {
            if from == state {
                Ok(to.clone())
            } else {
                let indeterminate = *outcome == CasOutcome::Unknown;
                Err(CellReject::CasCompare { from: from.clone(), held: state.clone(), indeterminate })
            }
        }
        CellOp::Cas { from, outcome: CasOutcome::CompareFailed, .. } => {
            if from == state {
                Err(CellReject::CasShouldHaveSucceeded { from: from.clone() })
            } else {
                Ok(state.clone())
            }
        }
        CellOp::Get(got) => match state.text() {
            Some(held) if held == &**got => Ok(state.clone()),
            Some(_) => Err(CellReject::Get { got: got.clone(), held: state.clone() }),
            None => Err(CellReject::NotText { held: state.clone() }),
        },
        CellOp::Append(suffix) => match state.text() {
            Some(held) => {
                let mut joined = String::with_capacity(held.len() + suffix.len());
                joined.push_str(held);
                joined.push_str(suffix);
                Ok(Cell::Str(Rc::from(joined)))
            }
            None => Err(CellReject::NotText { held: state.clone() }),
        },
        CellOp::AppendItem(item) => match state {
            Cell::Absent => Ok(Cell::List(Items::default().push(*item))),
            Cell::List(items) => Ok(Cell::List(items.push(*item))),
            _ => Err(CellReject::NotList { held: state.clone() }),
        },
        CellOp::Incr { by, out } => {
            let held = match state {
                Cell::Absent => 0,
                Cell::Int(n) => *n,
                _ => return Err(CellReject::NotCounter { held: state.clone() }),
            };
            let now = held.wrapping_add(*by);
            match out {
                Some(got) if *got != now => Err(CellReject::Incr { by: *by, got: *got, held }),
                _ => Ok(Cell::Int(now)),
            }
        }
    }
}

/// What the operations of one register or key can do, for pruning.
#[derive(Default, Debug)]
pub struct CellFacts {
    /// Every value an op can set (write, put, a cas target).
    producible: Vec<Cell>,
    /// The hashes of `producible`, sorted: one lookup per question, so a
    /// partition of n writes costs O(n log n), not O(n^2). A collision
    /// only answers "producible", which prunes less.
    producible_hashes: Vec<u64>,
    appends: bool,
    replaces: bool,
    /// Whether an op computes its value from the one held (a list append,
    /// an increment): the value sets above no longer bound what is
    /// reachable, so nothing is pruned.
    derives: bool,
    /// Every list element an op observes (in a list read, or a cas's
    /// expected list), sorted.
    observed_items: Vec<i64>,
    /// Hashes of every value an op observes (a completed read's result, a
    /// cas's expected value), sorted: a collision only keeps an op.
    observed: Vec<u64>,
    /// Whether a cas reported a failed compare: it observes that the value
    /// was *not* its expected one, which any write can make true.
    compare_failed: bool,
    /// Every string an op compares the held value with (a get's result, a
    /// string read, a cas's expected string, whatever its outcome), sorted
    /// and deduplicated: see [`cell_memo_hash`].
    observed_texts: Vec<Rc<str>>,
}

fn cell_facts(ops: &[&CellOp]) -> CellFacts {
    let mut produced: Vec<(u64, &Cell)> = Vec::new();
    let mut facts = CellFacts::default();
    for op in ops {
        match op {
            CellOp::Write(v) | CellOp::Put(v) | CellOp::Cas { to: v, .. } => {
                facts.replaces = true;
                produced.push((stable_hash(v), v));
            }
            CellOp::Append(_) => facts.appends = true,
            CellOp::AppendItem(_) | CellOp::Incr { .. } => facts.derives = true,
            CellOp::Read(_) | CellOp::Get(_) => {}
        }
        match op {
            CellOp::Read(v) | CellOp::Cas { from: v, outcome: CasOutcome::Succeeded | CasOutcome::Unknown, .. } => {
                facts.observed.push(stable_hash(v))
            }
            CellOp::Cas { outcome: CasOutcome::CompareFailed, .. } => facts.compare_failed = true,
            CellOp::Get(text) => {
                facts.observed.push(stable_hash(&Cell::Str(text.clone())));
                if text.is_empty() {
                    facts.observed.push(stable_hash(&Cell::Absent)); // "" is what get reads of an absent key
                }
            }
            _ => {}
        }
    }
    for op in ops {
        if let CellOp::Read(Cell::List(items)) | CellOp::Cas { from: Cell::List(items), .. } = op {
            facts.observed_items.extend(items.to_vec());
        }
        if let CellOp::Get(text) | CellOp::Read(Cell::Str(text)) | CellOp::Cas { from: Cell::Str(text), .. } = op {
            facts.observed_texts.push(text.clone());
        }
    }
    facts.observed_texts.sort_unstable();
    facts.observed_texts.dedup();
    produced.sort_by_key(|(hash, _)| *hash);
    produced.dedup_by_key(|(hash, _)| *hash);
    facts.producible_hashes = produced.iter().map(|(hash, _)| *hash).collect();
    facts.producible = produced.into_iter().map(|(_, cell)| cell.clone()).collect();
    facts.observed.sort_unstable();
    facts.observed_items.sort_unstable();
    facts
}

/// An indeterminate write (or cas) of a value nobody observes is invisible:
/// in any linearization where it took effect, no op sits between it and
/// the next write (a read there would return its value, a succeeding cas
/// would expect it), so removing it leaves a linearization. Appends and
/// failed compares can observe a write without naming its value, so they
/// keep every write.
///
/// Likewise an indeterminate list append of an element no op observes: if
/// it took effect, every later read would show the element, so no read
/// comes after it, and only reads and compares observe a list. A failed
/// compare can observe an element's absence, so it keeps every append.
fn cell_invisible(facts: &CellFacts, op: &CellOp) -> bool {
    if let CellOp::AppendItem(item) = op {
        return !facts.compare_failed && facts.observed_items.binary_search(item).is_err();
    }
    let written = match op {
        CellOp::Write(v) | CellOp::Put(v) | CellOp::Cas { to: v, .. } => v,
        _ => return false,
    };
    !facts.appends
        && !facts.derives
        && !facts.compare_failed
        && facts.observed.binary_search(&stable_hash(written)).is_err()
}

/// Whether nothing can turn `held` into a value `op` accepts. Without
/// appends, the reachable values are `held` and the producible ones. With
/// appends, a value is reachable if it extends `held` or a producible value
/// (a later put or write, then appends).
fn cell_doomed(facts: &CellFacts, held: &Cell, op: &CellOp) -> bool {
    if facts.derives {
        return false;
    }
    let want = match op {
        CellOp::Get(text) => {
            if held.text() == Some(&**text) {
                return false;
            }
            if !facts.appends {
                // Absent reads as "" too.
                let as_text = |c: &Cell| facts.producible_hashes.binary_search(&stable_hash(c)).is_ok();
                return !(as_text(&Cell::Str(text.clone())) || text.is_empty() && as_text(&Cell::Absent));
            }
            return !reachable_by_appends(facts, held, text);
        }
        CellOp::Read(want) | CellOp::Cas { from: want, outcome: CasOutcome::Succeeded, .. } => want,
        _ => return false,
    };
    if want == held {
        return false;
    }
    match want {
        Cell::Str(w) if facts.appends => !reachable_by_appends(facts, held, w),
        _ => facts.producible_hashes.binary_search(&stable_hash(want)).is_err(),
    }
}

fn reachable_by_appends(facts: &CellFacts, held: &Cell, text: &str) -> bool {
    let extends = |c: &Cell| c.text().is_some_and(|base| text.starts_with(base));
    extends(held) || facts.producible.iter().any(extends)
}

/// What every string that no op can observe hashes to in the memo.
const UNOBSERVABLE_TEXT: u64 = 0x0B5E_55ED_u64 << 32 | 0xDEAD;

/// Strings that no op of the partition can ever observe are one state to
/// the search. Say the key holds the string `s` and no observed text (see
/// `CellFacts::observed_texts`) begins with `s`. Then from `s`:
/// - reads, gets and compare-and-sets that compare with a string reject
///   `s` and any extension of it, and a cas whose compare failed accepts;
/// - an append keeps the key holding such a string;
/// - a write, put or cas replaces it by a value that does not depend on it;
/// - every other op (list appends, increments) rejects a string.
///
/// So every such `s` accepts the same sequences of the partition's ops.
/// This is what decides Porcupine's `c50-bad`: appends that a concurrent
/// put overwrites give a distinct string for every order in which they
/// run before the put, and no get reads any of them.
fn cell_memo_hash(facts: &CellFacts, state: &Cell) -> u64 {
    if let Cell::Str(held) = state {
        let first_at_or_after = facts.observed_texts.partition_point(|t| **t < **held);
        let observable = facts.observed_texts.get(first_at_or_after).is_some_and(|t| t.starts_with(&**held));
        if !observable {
            return UNOBSERVABLE_TEXT;
        }
    }
    stable_hash(state)
}

fn cell_read_only(op: &CellOp) -> bool {
    matches!(op, CellOp::Read(_) | CellOp::Get(_) | CellOp::Cas { outcome: CasOutcome::CompareFailed, .. })
}

/// The part of `Model` that `register` and `kv` share: everything but
/// which functions they read (`prepare`) and their name.
macro_rules! cell_model_steps {
    () => {
        type State = Cell;
        type Op = CellOp;
        type Reject = CellReject;
        type Facts = CellFacts;

        fn init(&self) -> Cell {
            Cell::Absent
        }
        fn step(&self, state: &Cell, op: &CellOp) -> Result<Cell, CellReject> {
            step_cell(state, op)
        }
        fn describe_state(&self, state: &Cell) -> String {
            state.to_string()
        }
        fn facts(&self, ops: &[&CellOp]) -> CellFacts {
            cell_facts(ops)
        }
        fn doomed(&self, facts: &CellFacts, state: &Cell, op: &CellOp) -> bool {
            cell_doomed(facts, state, op)
        }
        fn read_only(&self, op: &CellOp) -> bool {
            cell_read_only(op)
        }
        fn invisible(&self, facts: &CellFacts, op: &CellOp) -> bool {
            cell_invisible(facts, op)
        }
        fn memo_hash(&self, facts: &CellFacts, state: &Cell) -> u64 {
            cell_memo_hash(facts, state)
        }
    };
}

/// read / write / cas, shared by `register` and `kv`.
fn prepare_register_op(call: &Call<'_>) -> Result<Option<CellOp>, String> {
    Ok(Some(match call.f {
        "read" => match call.output {
            None => return Ok(None),
            Some(out) => CellOp::Read(Cell::from_value(out)),
        },
        "write" => CellOp::Write(Cell::from_value(call.input)),
        "cas" => {
            let (from, to) = call
                .input
                .as_pair()
                .ok_or_else(|| format!("cas expects its input as a pair [from, to], not {}", call.input))?;
            let outcome = match call.output {
                None => CasOutcome::Unknown,
                Some(Value::Bool(false)) => CasOutcome::CompareFailed,
                Some(_) => CasOutcome::Succeeded,
            };
            CellOp::Cas { from: Cell::from_value(from), to: Cell::from_value(to), outcome }
        }
        other => return Err(format!("the register model has no function `{other}`; expected read, write or cas")),
    }))
}

/// A single compare-and-set register per key, initially absent:
/// `read` (output: the value, or null when absent), `write` (input: the
/// value), `cas` (input: `[from, to]`; output `false` when the compare
/// failed, anything else when it succeeded).
#[derive(Clone, Copy, Debug, Default)]
pub struct Register;

impl Model for Register {
    fn name(&self) -> &'static str {
        "register"
    }
    fn prepare(&self, call: &Call<'_>) -> Result<Option<CellOp>, String> {
        prepare_register_op(call)
    }
    cell_model_steps!();
}

/// A key-value store, checked per key: the register's read / write / cas,
/// plus `get` (output: the string, "" when absent), `put` and `append`
/// (input: a string, appended to the string held: Porcupine's kv), list
/// `append` (input: an integer, added to the list held, which `read`
/// returns: Elle's list-append) and `incr` (input: the amount; output: the
/// new value, or null). Appends and increments are not idempotent: one
/// applied twice shows in every later read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kv;

impl Model for Kv {
    fn name(&self) -> &'static str {
        "kv"
    }
    fn prepare(&self, call: &Call<'_>) -> Result<Option<CellOp>, String> {
        let text = |v: &Value, what: &str| -> Result<Rc<str>, String> {
            v.as_str().map(Rc::from).ok_or_else(|| format!("{what} expects a string, not {v}"))
        };
        Ok(Some(match call.f {
            "get" => match call.output {
                None => return Ok(None),
                Some(out) => CellOp::Get(text(out, "get's output")?),
            },
            "put" => CellOp::Put(Cell::Str(text(call.input, "put")?)),
            "append" => match call.input {
                &Value::Int(item) => CellOp::AppendItem(item),
                input => CellOp::Append(text(input, "append")?),
            },
            "incr" => {
                let by = call.input.as_int().ok_or_else(|| format!("incr expects an integer, not {}", call.input))?;
                let out = match call.output {
                    None | Some(Value::Null) => None,
                    Some(&Value::Int(n)) => Some(n),
                    Some(other) => return Err(format!("incr's output is the new integer or null, not {other}")),
                };
                CellOp::Incr { by, out }
            }
            "read" | "write" | "cas" => return prepare_register_op(call),
            other => {
                return Err(format!(
                    "the kv model has no function `{other}`; expected get, put, append, incr, read, write or cas"
                ))
            }
        }))
    }
    cell_model_steps!();
}

/// A mutex per key with fencing tokens: `acquire` (output: the fencing
/// token, an integer, or null), `release`. Tokens must increase.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lock;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct LockState {
    pub holder: Option<u64>,
    pub last_token: Option<i64>,
}

#[derive(Clone, Debug)]
pub enum LockOp {
    Acquire { process: u64, token: Option<i64> },
    Release { process: u64 },
}

#[derive(Clone, Debug)]
pub enum LockReject {
    Held { by: u64 },
    StaleToken { token: i64, last: i64 },
    NotHolder { process: u64, holder: Option<u64> },
}

impl Display for LockReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockReject::Held { by } => {
                write!(f, "acquire succeeded while process {by} held the lock")
            }
            LockReject::StaleToken { token, last } => {
                write!(f, "fencing token {token} is not above the last granted token {last}")
            }
            LockReject::NotHolder { process, holder: Some(h) } => {
                write!(f, "process {process} released a lock held by process {h}")
            }
            LockReject::NotHolder { process, holder: None } => write!(f, "process {process} released a free lock"),
        }
    }
}

impl Model for Lock {
    type State = LockState;
    type Op = LockOp;
    type Reject = LockReject;

    fn name(&self) -> &'static str {
        "lock"
    }
    fn init(&self) -> LockState {
        LockState::default()
    }
    fn prepare(&self, call: &Call<'_>) -> Result<Option<LockOp>, String> {
        Ok(Some(match call.f {
            "acquire" => {
                let token = match call.output {
                    None | Some(Value::Null) => None,
                    Some(Value::Int(t)) => Some(*t),
                    Some(other) => {
                        return Err(format!("acquire's output is its fencing token, an integer or null, not {other}"))
                    }
                };
                LockOp::Acquire { process: call.process, token }
            }
            "release" => LockOp::Release { process: call.process },
            other => return Err(format!("the lock model has no function `{other}`; expected acquire or release")),
        }))
    }
    fn step(&self, state: &LockState, op: &LockOp) -> Result<LockState, LockReject> {
        match *op {
            LockOp::Acquire { process, token } => {
                if let Some(by) = state.holder {
                    return Err(LockReject::Held { by });
                }
                if let (Some(t), Some(last)) = (token, state.last_token) {
                    if t <= last {
                        return Err(LockReject::StaleToken { token: t, last });
                    }
                }
                Ok(LockState { holder: Some(process), last_token: token.or(state.last_token) })
            }
            LockOp::Release { process } => {
                if state.holder != Some(process) {
                    return Err(LockReject::NotHolder { process, holder: state.holder });
                }
                Ok(LockState { holder: None, last_token: state.last_token })
            }
        }
    }
    type Facts = ();
    fn describe_state(&self, state: &LockState) -> String {
        let holder = state.holder.map_or("free".to_owned(), |p| format!("held by process {p}"));
        match state.last_token {
            Some(t) => format!("{holder}, last token {t}"),
            None => holder,
        }
    }
}

/// A FIFO queue per key: `enqueue` (input: the value), `dequeue` (output:
/// the value, or null when the queue was empty).
#[derive(Clone, Copy, Debug, Default)]
pub struct Queue;

#[derive(Clone, Debug)]
pub enum QueueOp {
    Enqueue(Value),
    /// `None`: the result is unknown, so it removed the head if there was one.
    Dequeue(Option<Value>),
}

#[derive(Clone, Debug)]
pub enum QueueReject {
    Empty { got: Value },
    Head { got: Value, head: Value },
    NotEmpty { head: Value },
}

impl Display for QueueReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueReject::Empty { got } => write!(f, "dequeue returned {got} from an empty queue"),
            QueueReject::Head { got, head } => {
                write!(f, "dequeue returned {got} but the head was {head}")
            }
            QueueReject::NotEmpty { head } => {
                write!(f, "dequeue found the queue empty but its head was {head}")
            }
        }
    }
}

impl Model for Queue {
    type State = Fifo;
    type Op = QueueOp;
    type Reject = QueueReject;

    fn name(&self) -> &'static str {
        "queue"
    }
    fn init(&self) -> Fifo {
        Fifo::default()
    }
    fn prepare(&self, call: &Call<'_>) -> Result<Option<QueueOp>, String> {
        Ok(Some(match call.f {
            "enqueue" => QueueOp::Enqueue(call.input.clone()),
            "dequeue" => QueueOp::Dequeue(call.output.cloned()),
            other => return Err(format!("the queue model has no function `{other}`; expected enqueue or dequeue")),
        }))
    }
    fn read_only(&self, op: &QueueOp) -> bool {
        matches!(op, QueueOp::Dequeue(Some(Value::Null)))
    }
    fn step(&self, state: &Fifo, op: &QueueOp) -> Result<Fifo, QueueReject> {
        match op {
            QueueOp::Enqueue(v) => Ok(state.push_back(v)),
            QueueOp::Dequeue(None) => Ok(state.pop_front().map_or_else(|| state.clone(), |(_, rest)| rest)),
            QueueOp::Dequeue(Some(Value::Null)) => match state.front() {
                Some(head) => Err(QueueReject::NotEmpty { head: head.clone() }),
                None => Ok(state.clone()),
            },
            QueueOp::Dequeue(Some(got)) => match state.pop_front() {
                None => Err(QueueReject::Empty { got: got.clone() }),
                Some((head, _)) if *head != *got => Err(QueueReject::Head { got: got.clone(), head: (*head).clone() }),
                Some((_, rest)) => Ok(rest),
            },
        }
    }
    type Facts = ();
    fn describe_state(&self, state: &Fifo) -> String {
        let items: Vec<String> = state.items.iter().map(|v| v.to_string()).collect();
        format!("[{}]", items.join(" "))
    }
}

/// A queue's contents that shares structure with the queue it came from:
/// the search keeps the state before every op on its stack, and a full copy
/// per level would make n enqueues cost O(n^2) time and memory. A rolling
/// digest of the contents makes hashing O(1); equality compares items only
/// when lengths and digests agree.
#[derive(Clone, Debug, Default)]
pub struct Fifo {
    items: imbl::Vector<Rc<Value>>,
    /// The sum of `stable_hash(item) * BASE^(items after it)`, wrapping.
    digest: u64,
    /// `BASE^len`, wrapping: what the head's hash was last multiplied by.
    weight_after_head: u64,
}

/// Odd, so it has an inverse modulo 2^64 and a removed head can be
/// subtracted out of the digest.
const BASE: u64 = 0x9e37_79b9_7f4a_7c15;
const BASE_INVERSE: u64 = inverse_mod_2_64(BASE);

/// The inverse of an odd `x` modulo 2^64, by Newton's iteration (each step
/// doubles the number of correct low bits: 3, 6, ..., 96).
const fn inverse_mod_2_64(x: u64) -> u64 {
    let mut y = x; // x * x == 1 mod 8 for odd x: 3 bits right
    let mut i = 0;
    while i < 5 {
        y = y.wrapping_mul(2u64.wrapping_sub(x.wrapping_mul(y)));
        i += 1;
    }
    y
}

impl Fifo {
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    fn front(&self) -> Option<&Value> {
        self.items.front().map(|v| &**v)
    }
    /// This queue with `item` added at the back (this one is unchanged).
    fn push_back(&self, item: &Value) -> Fifo {
        let mut next = self.clone();
        next.items.push_back(Rc::new(item.clone()));
        next.digest = self.digest.wrapping_mul(BASE).wrapping_add(stable_hash(item));
        next.weight_after_head = if self.is_empty() { 1 } else { self.weight_after_head.wrapping_mul(BASE) };
        next
    }
    /// The head, and this queue without it (this one is unchanged).
    fn pop_front(&self) -> Option<(Rc<Value>, Fifo)> {
        let mut rest = self.clone();
        let head = rest.items.pop_front()?;
        rest.digest = self.digest.wrapping_sub(stable_hash(&*head).wrapping_mul(self.weight_after_head));
        rest.weight_after_head = if rest.is_empty() { 0 } else { self.weight_after_head.wrapping_mul(BASE_INVERSE) };
        debug_assert!(!rest.is_empty() || rest.digest == 0, "an empty queue's digest is zero");
        Some((head, rest))
    }
}

impl PartialEq for Fifo {
    fn eq(&self, other: &Fifo) -> bool {
        self.len() == other.len() && self.digest == other.digest && self.items == other.items
    }
}

impl Eq for Fifo {}

impl Hash for Fifo {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.len(), self.digest).hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(f: &'a str, input: &'a Value, output: Option<&'a Value>) -> Call<'a> {
        Call { process: 1, f, key: None, input, output }
    }

    #[test]
    fn register_steps_and_rejections() {
        let m = Register;
        let w = m.prepare(&call("write", &Value::Int(4), Some(&Value::Int(4)))).unwrap().unwrap();
        let s = m.step(&m.init(), &w).unwrap();
        let r3 = m.prepare(&call("read", &Value::Null, Some(&Value::Int(3)))).unwrap().unwrap();
        assert_eq!(m.step(&s, &r3).unwrap_err().to_string(), "read returned 3 but the register held 4");
        let pair = Value::pair(Value::Int(4), Value::Int(7));
        let failed = m.prepare(&call("cas", &pair, Some(&Value::Bool(false)))).unwrap().unwrap();
        assert_eq!(
            m.step(&s, &failed).unwrap_err().to_string(),
            "cas reported its compare failed but the register held 4"
        );
        let ok = m.prepare(&call("cas", &pair, Some(&pair))).unwrap().unwrap();
        assert_eq!(m.step(&s, &ok).unwrap(), Cell::Int(7));
        assert!(m.prepare(&call("read", &Value::Null, None)).unwrap().is_none(), "unknown reads constrain nothing");
        assert!(m.prepare(&call("frob", &Value::Null, None)).unwrap_err().contains("expected read, write or cas"));
    }

    #[test]
    fn doomed_reads_are_those_no_op_can_satisfy() {
        let w5 = CellOp::Write(Cell::Int(5));
        let facts = cell_facts(&[&w5]);
        assert!(cell_doomed(&facts, &Cell::Int(5), &CellOp::Read(Cell::Int(3))), "3 is never written");
        assert!(!cell_doomed(&facts, &Cell::Int(1), &CellOp::Read(Cell::Int(5))), "5 can still be written");
        assert!(!cell_doomed(&facts, &Cell::Int(3), &CellOp::Read(Cell::Int(3))), "already holds it");
        let app = CellOp::Append(Rc::from("b"));
        let facts = cell_facts(&[&app]);
        let ab = Cell::Str(Rc::from("ab"));
        assert!(cell_doomed(&facts, &ab, &CellOp::Get(Rc::from("ba"))), "a growing value cannot lose its prefix");
        assert!(!cell_doomed(&facts, &ab, &CellOp::Get(Rc::from("abx"))));
        let put = CellOp::Put(Cell::Str(Rc::from("b")));
        let facts = cell_facts(&[&app, &put]);
        assert!(!cell_doomed(&facts, &ab, &CellOp::Get(Rc::from("ba"))), "a put of b, then appends");
        assert!(cell_doomed(&facts, &ab, &CellOp::Get(Rc::from("ca"))), "nothing yields a value starting with c");
    }

    #[test]
    fn kv_append_and_get() {
        let m = Kv;
        let a = m.prepare(&call("append", &Value::from("x1y"), Some(&Value::from("x1y")))).unwrap().unwrap();
        let s = m.step(&m.step(&m.init(), &a).unwrap(), &a).unwrap();
        let g = m.prepare(&call("get", &Value::Null, Some(&Value::from("x1yx1y")))).unwrap().unwrap();
        assert!(m.step(&s, &g).is_ok());
        let empty = m.prepare(&call("get", &Value::Null, Some(&Value::from("")))).unwrap().unwrap();
        assert!(m.step(&m.init(), &empty).is_ok(), "an absent key reads as the empty string");
        assert_eq!(m.step(&s, &empty).unwrap_err().to_string(), "get returned \"\" but the key held \"x1yx1y\"");
    }

    #[test]
    fn a_list_append_or_increment_applied_twice_shows_in_the_next_read() {
        let m = Kv;
        let list = |xs: &[i64]| Value::List(xs.iter().map(|&x| Value::Int(x)).collect());
        let a1 = m.prepare(&call("append", &Value::Int(1), Some(&Value::Int(9)))).unwrap().unwrap();
        let a2 = m.prepare(&call("append", &Value::Int(2), None)).unwrap().unwrap();
        let s = m.step(&m.step(&m.init(), &a1).unwrap(), &a2).unwrap();
        let read = |v: &Value| m.prepare(&call("read", &Value::Null, Some(v))).unwrap().unwrap();
        assert!(m.step(&s, &read(&list(&[1, 2]))).is_ok());
        let twice = m.step(&s, &a2).unwrap();
        assert_eq!(
            m.step(&twice, &read(&list(&[1, 2]))).unwrap_err().to_string(),
            "read returned [1 2] but the register held [1 2 2]"
        );
        let w = m.prepare(&call("write", &Value::Int(4), None)).unwrap().unwrap();
        let int = m.step(&m.init(), &w).unwrap();
        assert_eq!(m.step(&int, &a1).unwrap_err().to_string(), "an element appended to a key holding the non-list 4");

        let inc = |by: i64, out: Option<i64>| {
            let out = out.map(Value::Int);
            m.prepare(&call("incr", &Value::Int(by), out.as_ref())).unwrap().unwrap()
        };
        let s = m.step(&m.init(), &inc(3, Some(3))).unwrap();
        let s = m.step(&s, &inc(2, None)).unwrap();
        assert_eq!(s, Cell::Int(5));
        assert_eq!(m.step(&s, &inc(1, Some(6))).unwrap(), Cell::Int(6));
        assert_eq!(m.step(&s, &inc(1, Some(8))).unwrap_err().to_string(), "incr by 1 returned 8 but the key held 5");
        assert!(m.step(&twice, &inc(1, None)).unwrap_err().to_string().contains("non-integer [1 2 2]"));
        let facts = cell_facts(&[&a1, &w]);
        assert!(!cell_doomed(&facts, &int, &read(&list(&[7]))), "derived values are never pruned");
        assert!(!cell_invisible(&facts, &w), "an append observes the write it extends");
        let seen = read(&list(&[1]));
        let facts = cell_facts(&[&a1, &a2, &seen]);
        assert!(cell_invisible(&facts, &a2), "no read shows 2");
        assert!(!cell_invisible(&facts, &a1), "a read shows 1");
        assert!(m.prepare(&call("incr", &Value::from("x"), None)).unwrap_err().contains("integer"));
    }

    #[test]
    fn lists_share_their_prefix_compare_by_content_and_drop_without_recursion() {
        let a = Items::default().push(1).push(2);
        let b = Items::from_ints(&[1, 2]);
        assert_eq!(a, b, "built apart, equal");
        assert_eq!(stable_hash(&a), stable_hash(&b));
        assert_ne!(a, Items::from_ints(&[2, 1]));
        assert_ne!(a.push(3), b, "longer");
        assert_eq!(Cell::List(a.push(3)).to_string(), "[1 2 3]");
        assert_eq!(Cell::from_value(&Value::List(vec![Value::Int(1), Value::Int(2)])), Cell::List(b));
        let mut long = Items::default();
        for i in 0..1_000_000 {
            long = long.push(i);
        }
        assert_eq!(long.len(), 1_000_000);
        drop(long); // a recursive drop would overflow the stack here
    }

    #[test]
    fn lock_tokens_must_increase_and_only_the_holder_releases() {
        let m = Lock;
        let acq = |p, t: i64| LockOp::Acquire { process: p, token: Some(t) };
        let s = m.step(&m.init(), &acq(1, 5)).unwrap();
        assert_eq!(m.step(&s, &acq(2, 6)).unwrap_err().to_string(), "acquire succeeded while process 1 held the lock");
        assert!(m.step(&s, &LockOp::Release { process: 2 }).is_err());
        let s = m.step(&s, &LockOp::Release { process: 1 }).unwrap();
        assert_eq!(
            m.step(&s, &acq(2, 5)).unwrap_err().to_string(),
            "fencing token 5 is not above the last granted token 5"
        );
        assert_eq!(m.describe_state(&m.step(&s, &acq(2, 9)).unwrap()), "held by process 2, last token 9");
    }

    #[test]
    fn queue_is_fifo() {
        let m = Queue;
        let s = m.step(&m.init(), &QueueOp::Enqueue(Value::Int(1))).unwrap();
        let s = m.step(&s, &QueueOp::Enqueue(Value::Int(2))).unwrap();
        assert_eq!(
            m.step(&s, &QueueOp::Dequeue(Some(Value::Int(2)))).unwrap_err().to_string(),
            "dequeue returned 2 but the head was 1"
        );
        let s = m.step(&s, &QueueOp::Dequeue(Some(Value::Int(1)))).unwrap();
        assert!(m.step(&s, &QueueOp::Dequeue(Some(Value::Null))).is_err());
        assert_eq!(m.describe_state(&s), "[2]");
    }

    proptest::proptest! {
        /// The shared queue behaves as a plain `VecDeque`, and two queues
        /// are equal, and hash alike, exactly when their contents are.
        #[test]
        fn fifo_is_a_queue_with_a_content_digest(ops in proptest::collection::vec(proptest::option::of(0i64..4), 0..40)) {
            use std::collections::VecDeque;
            let (mut fifo, mut plain) = (Fifo::default(), VecDeque::new());
            let mut seen: Vec<(Fifo, VecDeque<i64>)> = vec![(fifo.clone(), plain.clone())];
            for op in ops {
                match op {
                    Some(v) => {
                        fifo = fifo.push_back(&Value::Int(v));
                        plain.push_back(v);
                    }
                    None => {
                        let popped = fifo.pop_front();
                        proptest::prop_assert_eq!(popped.as_ref().map(|(h, _)| (**h).clone()), plain.pop_front().map(Value::Int));
                        if let Some((_, rest)) = popped {
                            fifo = rest;
                        }
                    }
                }
                let items: Vec<Value> = fifo.items.iter().map(|v| (**v).clone()).collect();
                proptest::prop_assert_eq!(items, plain.iter().map(|&v| Value::Int(v)).collect::<Vec<_>>());
                for (other, other_plain) in &seen {
                    let same = *other_plain == plain;
                    proptest::prop_assert_eq!(*other == fifo, same);
                    if same {
                        proptest::prop_assert_eq!(stable_hash(other), stable_hash(&fifo));
                    }
                }
                seen.push((fifo.clone(), plain.clone()));
            }
        }
    }
}
