//! The running trace hash over every processed event, and the full trace
//! (kept only on request) that the determinism check compares.

use serde::Serialize;
use std::hash::{Hash, Hasher};

use crate::rng::splitmix64;

/// A fast, fixed (unseeded, version-independent) hasher for message
/// contents. Not for adversarial input; it only has to tell runs apart.
#[derive(Clone, Copy)]
pub struct StableHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl StableHasher {
    pub fn new() -> Self {
        StableHasher(0x243F_6A88_85A3_08D3)
    }
    #[inline]
    fn mix(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(K);
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let mut s = self.0;
        splitmix64(&mut s)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
}

/// Hashes any `Hash` value with [`StableHasher`].
pub fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = StableHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// What a traced event was. The values are part of the trace hash: never
/// renumber them (a changed hash would look like nondeterminism).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// A message delivered (node: the receiver, other: the sender).
    Delivery = 1,
    /// A timer fired.
    Timer = 2,
    /// A node (re)started.
    Start = 3,
    /// A fault applied or undone.
    Fault = 4,
}

/// The most events a full trace keeps, and the most text: a run may take
/// 25 million events, some of them messages of kilobytes, and `--trace` or
/// a determinism diff must not take gigabytes. A trace keeps a prefix of
/// the run whole; the hash covers every event whatever is kept.
pub const MAX_TRACE_ENTRIES: usize = 1_000_000;
pub const MAX_TRACE_TEXT_BYTES: usize = 128 << 20;

/// One processed event, as kept in a full trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceEntry {
    pub index: u64,
    pub time: u64,
    pub text: String,
}

/// The running hash, and the full trace when asked for.
#[derive(Clone, Debug)]
pub struct Trace {
    hash: u64,
    events: u64,
    full: Option<Vec<TraceEntry>>,
    /// The bytes of text in `full`.
    text_bytes: usize,
}

impl Trace {
    pub fn new(keep_full: bool) -> Self {
        Trace { hash: 0x6A09_E667_F3BC_C908, events: 0, full: keep_full.then(Vec::new), text_bytes: 0 }
    }

    /// Folds one event (its time, kind, node, peer and payload hash) into the hash.
    #[inline]
    pub fn record(&mut self, time: u64, kind: EventKind, node: u32, other: u32, payload: u64) {
        let mut h = StableHasher(self.hash);
        h.write_u64(time);
        h.write_u64((u64::from(kind as u8) << 56) ^ (u64::from(node) << 24) ^ u64::from(other));
        h.write_u64(payload);
        self.hash = h.finish();
        self.events += 1;
    }

    /// Whether the next event's text is kept: a full trace was asked for
    /// and is within its limits (so callers format text only when it is).
    pub fn keeps_full(&self) -> bool {
        self.full.as_ref().is_some_and(|f| f.len() < MAX_TRACE_ENTRIES && self.text_bytes < MAX_TRACE_TEXT_BYTES)
    }

    /// Appends the text of the event just recorded (only when keeping the
    /// full trace, and only within its limits).
    pub fn push_text(&mut self, time: u64, text: String) {
        if !self.keeps_full() {
            return;
        }
        self.text_bytes += text.len();
        if let Some(full) = &mut self.full {
            full.push(TraceEntry { index: self.events - 1, time, text });
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn entries(&self) -> Option<&[TraceEntry]> {
        self.full.as_deref()
    }
    pub fn into_entries(self) -> Option<Vec<TraceEntry>> {
        self.full
    }
}
