//! The log: its entries from index 1, where they live on disk, and for
//! each entry the digest of the whole prefix it ends (its *chain*), so the
//! checkers can compare two nodes' logs up to an index from one number.
//! Every change to the log goes through [`Log::push`] and
//! [`Log::truncate_from`], which report it (`Stored`, `Truncated`): the
//! log matching and leader append-only checks judge those reports.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;

use harness::check::stable_hash;
use harness::node::Ctx;

use super::{Entry, LogIndex, RaftHost, RaftObs, Term};

/// `raft/log/` and the index zero-padded to 12 digits, so keys sort by
/// index. Built by hand: `format!` with padding was a visible share of a
/// run, since every appended entry writes one.
pub(super) fn entry_key(i: u64) -> String {
    const PREFIX: &str = "raft/log/";
    let mut digits = [b'0'; 20];
    let mut rest = i;
    let mut start = digits.len();
    while rest > 0 {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let start = start.min(digits.len() - 12);
    let mut key = String::with_capacity(PREFIX.len() + digits.len() - start);
    key.push_str(PREFIX);
    key.push_str(std::str::from_utf8(&digits[start..]).expect("ASCII digits"));
    key
}

/// The chain of the prefix ending in an entry whose own digest is
/// `digest`, after a prefix whose chain is `prev` (0 for the empty log).
/// Two logs whose chains agree at an index agree on every entry up to it.
pub fn chain_after(prev: u64, digest: u64) -> u64 {
    stable_hash(&(prev, digest))
}

pub(super) struct Log<C> {
    entries: Vec<Entry<C>>,
    /// `chains[i]` is the chain of the prefix ending at `entries[i]`.
    chains: Vec<u64>,
}

impl<C: Clone + Hash + Serialize + DeserializeOwned> Log<C> {
    /// The log as the disk holds it (a restart forgets unsynced entries).
    pub fn load(disk: &harness::Disk) -> Self {
        let keys = disk.keys_with_prefix("raft/log/");
        let mut log = Log { entries: Vec::with_capacity(keys.len()), chains: Vec::with_capacity(keys.len()) };
        for (i, key) in keys.iter().enumerate() {
            // The log on disk has no holes: entry i is at key i, from 1.
            assert_eq!(key, &entry_key(i as u64 + 1), "the log on disk has a hole before {key}");
            let entry: Entry<C> = disk.get(key).expect("listed key exists");
            let chain = chain_after(log.chains.last().copied().unwrap_or(0), stable_hash(&entry));
            log.entries.push(entry);
            log.chains.push(chain);
        }
        log
    }

    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    /// The term of the entry at `i` (term 0 before the log starts).
    pub fn term_at(&self, i: LogIndex) -> Term {
        match i.0 {
            0 => Term(0),
            _ => self.entries[i.0 as usize - 1].term,
        }
    }

    /// The entry at `i`, if the log reaches it.
    pub fn get(&self, i: LogIndex) -> Option<&Entry<C>> {
        (i.0 as usize).checked_sub(1).and_then(|k| self.entries.get(k))
    }

    /// At most `max` entries after `prev`.
    pub fn after(&self, prev: LogIndex, max: usize) -> Vec<Entry<C>> {
        let start = prev.0 as usize;
        debug_assert!(start <= self.entries.len(), "no entries after {prev}: the log ends at {}", self.last_index());
        let end = self.entries.len().min(start + max);
        self.entries[start..end].to_vec()
    }

    /// Appends an entry and writes it to disk (the caller syncs).
    pub fn push<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, entry: Entry<C>) -> LogIndex {
        let index = LogIndex(self.last_index().0 + 1);
        let digest = stable_hash(&entry);
        let chain = chain_after(self.chains.last().copied().unwrap_or(0), digest);
        ctx.disk().put(&entry_key(index.0), &entry);
        ctx.observe(RaftObs::Stored { index, term: entry.term, digest, chain }.into());
        self.entries.push(entry);
        self.chains.push(chain);
        debug_assert_eq!(self.entries.len(), self.chains.len());
        index
    }

    /// Discards the entries from `from` on, from memory and disk.
    pub fn truncate_from<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, from: LogIndex) {
        assert!(from.0 >= 1 && from <= self.last_index(), "nothing to truncate from {from}");
        ctx.observe(RaftObs::Truncated { from }.into());
        for i in from.0..=self.last_index().0 {
            ctx.disk().remove(&entry_key(i));
        }
        self.entries.truncate(from.0 as usize - 1);
        self.chains.truncate(from.0 as usize - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_are_zero_padded_so_they_sort_by_index() {
        for i in [0, 1, 9, 10, 999_999_999_999, 1_000_000_000_000, u64::MAX] {
            assert_eq!(entry_key(i), format!("raft/log/{i:012}"));
        }
    }

    #[test]
    fn a_chain_depends_on_every_entry_before_it() {
        let a = chain_after(chain_after(0, 1), 2);
        assert_ne!(a, chain_after(chain_after(0, 3), 2), "a different earlier entry");
        assert_ne!(a, chain_after(chain_after(0, 2), 1), "the same entries in another order");
        assert_eq!(a, chain_after(chain_after(0, 1), 2));
    }
}
