//! A node's durable storage. Writes land in a volatile layer (the page
//! cache) that reads see at once; `sync` makes them durable; a crash throws
//! the volatile layer away. The factory that rebuilds a node after a crash
//! sees only what was synced.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

/// The bytes of a typed disk record: postcard, a compact binary serde
/// format. Nodes reload their whole log on every restart, and JSON parsing
/// was a third of a restart-heavy replication run; postcard is several times
/// cheaper. It is not self-describing, so a record's type may not use
/// `#[serde(untagged)]` (`harness::Value` is untagged: store it as JSON
/// bytes with `write`), `flatten`, `skip_serializing_if` or other features
/// that need the reader to see the data's shape.
pub fn encode_record<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Sized up front: growing from empty reallocated several times a record.
    postcard::to_extend(value, Vec::with_capacity(64)).expect("disk records serialise")
}

/// Reads a record written by [`encode_record`]. A record that does not parse
/// is a bug in the node (it wrote another type under that key), so it panics.
pub fn decode_record<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> T {
    postcard::from_bytes(bytes).unwrap_or_else(|e| panic!("disk record {key:?} does not parse: {e}"))
}

/// A key-value disk; values are bytes, with serde helpers for typed records.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    durable: BTreeMap<String, Vec<u8>>,
    /// Unsynced writes: `None` is an unsynced delete.
    volatile: BTreeMap<String, Option<Vec<u8>>>,
    syncs: u64,
}

impl Disk {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write(&mut self, key: &str, value: Vec<u8>) {
        self.volatile.insert(key.to_owned(), Some(value));
    }

    pub fn remove(&mut self, key: &str) {
        self.volatile.insert(key.to_owned(), None);
    }

    /// A write (`Some`) or delete (`None`) of a key the caller already owns
    /// (a handler's recorded effect), without copying it again.
    pub fn apply_write(&mut self, key: String, value: Option<Vec<u8>>) {
        self.volatile.insert(key, value);
    }

    pub fn read(&self, key: &str) -> Option<&[u8]> {
        match self.volatile.get(key) {
            Some(v) => v.as_deref(),
            None => self.durable.get(key).map(Vec::as_slice),
        }
    }

    /// Serialises `value` under `key` (see [`encode_record`]).
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) {
        self.write(key, encode_record(value));
    }

    /// Reads a typed record. A record that does not parse is a bug in the
    /// node (it wrote another type under that key), so it panics.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.read(key).map(|bytes| decode_record(key, bytes))
    }

    /// Every key starting with `prefix`, in key order, as the node sees them.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut keys: BTreeMap<&str, bool> = self
            .durable
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| (k.as_str(), true))
            .collect();
        for (k, v) in self.volatile.range(prefix.to_owned()..) {
            if !k.starts_with(prefix) {
                break;
            }
            keys.insert(k.as_str(), v.is_some());
        }
        keys.into_iter().filter(|(_, live)| *live).map(|(k, _)| k.to_owned()).collect()
    }

    /// Makes every write so far durable.
    pub fn sync(&mut self) {
        self.syncs += 1;
        for (k, v) in std::mem::take(&mut self.volatile) {
            match v {
                Some(bytes) => {
                    self.durable.insert(k, bytes);
                }
                None => {
                    self.durable.remove(&k);
                }
            }
        }
    }

    /// Whether there are writes that a crash would lose.
    pub fn has_unsynced(&self) -> bool {
        !self.volatile.is_empty()
    }

    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// A crash: unsynced writes are lost.
    pub(crate) fn crash(&mut self) {
        self.volatile.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_loses_unsynced_and_keeps_synced() {
        let mut d = Disk::new();
        d.put("term", &3u64);
        d.sync();
        d.put("term", &4u64);
        d.put("vote", &"n2");
        assert_eq!(d.get::<u64>("term"), Some(4));
        d.crash();
        assert_eq!(d.get::<u64>("term"), Some(3));
        assert_eq!(d.get::<String>("vote"), None);
    }

    #[test]
    fn prefix_scan_sees_unsynced_writes_and_deletes() {
        let mut d = Disk::new();
        d.put("log/1", &1);
        d.put("log/2", &2);
        d.sync();
        d.remove("log/2");
        d.put("log/3", &3);
        d.put("other", &0);
        assert_eq!(d.keys_with_prefix("log/"), vec!["log/1", "log/3"]);
        d.crash();
        assert_eq!(d.keys_with_prefix("log/"), vec!["log/1", "log/2"]);
    }
}
