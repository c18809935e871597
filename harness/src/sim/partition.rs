//! Partitions: shapes resolved to blocked links, targets resolved to nodes.

use super::*;

impl<N: Node + ?Sized> Core<N> {
    /// Blocks the directed pairs, cutting what is in flight on them.
    pub(super) fn block(&mut self, pairs: Vec<(u32, u32)>) -> u64 {
        for &(a, b) in &pairs {
            let li = self.link_index(a as usize, b as usize);
            let link = &mut self.links[li];
            if link.blocked == 0 {
                link.epoch = link.epoch.wrapping_add(1) % ARRIVED;
            }
            link.blocked += 1;
        }
        self.next_partition += 1;
        self.partitions.insert(self.next_partition, pairs);
        self.next_partition
    }

    pub(super) fn unblock(&mut self, id: u64) {
        if let Some(pairs) = self.partitions.remove(&id) {
            for (a, b) in pairs {
                let li = self.link_index(a as usize, b as usize);
                self.links[li].blocked -= 1;
            }
        }
    }

    pub(super) fn heal_partitions(&mut self) {
        let ids: Vec<u64> = self.partitions.keys().copied().collect();
        for id in ids {
            self.unblock(id);
        }
    }

    /// Resolves a target to concrete nodes, in id order.
    pub(super) fn resolve(&mut self, target: &Target) -> Vec<NodeId> {
        self.targets.resolve(target, self.tap.leader(), &mut self.fault_rng)
    }

    /// The directed pairs (of slots) a partition shape blocks, and the nodes it singles out.
    pub(super) fn partition_pairs(&mut self, shape: &Shape) -> (Vec<(u32, u32)>, Vec<NodeId>) {
        let (cut, hit) = self.targets.cut(shape, self.tap.leader(), &mut self.fault_rng);
        let pairs = cut.into_iter().map(|(a, b)| (self.slot_of(a) as u32, self.slot_of(b) as u32)).collect();
        (pairs, hit)
    }
}
