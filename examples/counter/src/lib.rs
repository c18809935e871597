//! A durable counter that many clients increment, as plain sans-IO state:
//! the system under test of this example crate. It knows nothing of
//! faultline; `tests/system/` adapts it to faultline's node contract.
//!
//! Clients retry an increment they heard nothing about, with the same
//! request id, so the counter remembers each client's last id and applies
//! a request once. The planted bug `no-dedup` forgets that.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The counter and, per client, the last request id it applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    value: u64,
    last: BTreeMap<String, u64>,
}

/// What applying an increment did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The counter after it.
    pub value: u64,
    /// Whether it changed the counter (not a retry of an applied request).
    pub changed: bool,
}

impl Counter {
    pub fn value(&self) -> u64 {
        self.value
    }

    /// Applies `client`'s request `id` once; with `dedup` off (the planted
    /// bug), applies every copy and every retry again.
    pub fn increment(&mut self, client: &str, id: u64, dedup: bool) -> Applied {
        let seen = self.last.get(client).is_some_and(|&last| id <= last);
        if dedup && seen {
            return Applied { value: self.value, changed: false };
        }
        self.value += 1;
        let last = self.last.entry(client.to_owned()).or_default();
        *last = (*last).max(id);
        Applied { value: self.value, changed: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_counts_once_unless_dedup_is_off() {
        let mut c = Counter::default();
        assert_eq!(c.increment("c1", 1, true), Applied { value: 1, changed: true });
        assert_eq!(c.increment("c1", 1, true), Applied { value: 1, changed: false });
        assert_eq!(c.increment("c2", 1, true).value, 2);
        assert_eq!(c.increment("c2", 1, false).value, 3, "the planted bug counts the retry");
    }
}
