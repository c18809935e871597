//! Client histories, Jepsen-shaped: each operation is an `invoke` followed by
//! at most one completion (`ok`, `fail` or `info`) from the same process.
//! Readers and writers for files live in [`crate::history_io`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a history event.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The operation starts.
    Invoke,
    /// It took effect between its invocation and this completion.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Indeterminate: it may take effect at any point after its invocation, or never.
    Info,
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        })
    }
}

/// Inputs and outputs: the JSON-like values histories carry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// A pair `[a, b]`, as cas inputs are written.
    pub fn as_pair(&self) -> Option<(&Value, &Value)> {
        match self {
            Value::List(items) if items.len() == 2 => Some((&items[0], &items[1])),
            _ => None,
        }
    }
    pub fn pair(a: Value, b: Value) -> Value {
        Value::List(vec![a, b])
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// One history event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Value,
    /// Virtual time in nanoseconds; absent in files where line order is time order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

/// A history: events in real-time order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Pairs each invocation with its completion: one entry per operation,
    /// in invocation order, `(invoke index, completion index)`; an
    /// invocation with no completion is open (indeterminate). A completion
    /// must follow an invocation of the same function and key by the same
    /// process. `at(i)` names event `i` in errors ("event 4", "line 12").
    pub fn pair_with(&self, at: impl Fn(usize) -> String) -> Result<Vec<(usize, Option<usize>)>, PairError> {
        let mut open: std::collections::BTreeMap<u64, usize> = Default::default();
        let mut pairs: Vec<(usize, Option<usize>)> = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            if op.kind == OpType::Invoke {
                if let Some(&prev) = open.get(&op.process) {
                    let message = format!(
                        "process {} invokes `{}` while its invocation at {} has no completion; expected a completion first",
                        op.process,
                        op.f,
                        at(pairs[prev].0)
                    );
                    return Err(PairError { event: i, message });
                }
                open.insert(op.process, pairs.len());
                pairs.push((i, None));
                continue;
            }
            let Some(slot) = open.remove(&op.process) else {
                let message = format!(
                    "a completion ({}) of process {} without an invocation; expected an earlier `invoke` by that process",
                    op.kind, op.process
                );
                return Err(PairError { event: i, message });
            };
            let invoked = &self.ops[pairs[slot].0];
            if invoked.f != op.f || invoked.key != op.key {
                let key = |k: &Option<String>| k.as_ref().map(|k| format!(" on key {k:?}")).unwrap_or_default();
                let message = format!(
                    "process {} completes `{}`{} but invoked `{}`{} at {}",
                    op.process,
                    op.f,
                    key(&op.key),
                    invoked.f,
                    key(&invoked.key),
                    at(pairs[slot].0)
                );
                return Err(PairError { event: i, message });
            }
            pairs[slot].1 = Some(i);
        }
        Ok(pairs)
    }
}

/// A history whose completions do not pair with invocations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairError {
    /// The index of the offending event.
    pub event: usize,
    pub message: String,
}
