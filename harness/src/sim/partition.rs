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
        let n = self.servers.len();
        let mut nodes = match target {
            Target::Node(id) => vec![*id],
            Target::Nodes(ids) => ids.clone(),
            Target::Random => self.fault_rng.pick(&self.random_targets).copied().into_iter().collect(),
            Target::All => self.servers.clone(),
            Target::Leader => match self.leader {
                Some(l) => vec![l],
                None => self.fault_rng.pick(&self.servers).copied().into_iter().collect(),
            },
            Target::Minority | Target::Majority => {
                let size =
                    if matches!(target, Target::Minority) { ((n.saturating_sub(1)) / 2).max(1) } else { n / 2 + 1 };
                let mut all = self.servers.clone();
                self.fault_rng.shuffle(&mut all);
                all.truncate(size.min(n));
                all
            }
        };
        for id in &nodes {
            assert!(self.nodes.iter().any(|s| s.id == *id), "fault target {id} is not a node of this world");
        }
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The directed pairs a partition shape blocks, and the nodes it singles out.
    pub(super) fn partition_pairs(&mut self, shape: &Shape) -> (Vec<(u32, u32)>, Vec<NodeId>) {
        let all: Vec<u32> = (0..self.nodes.len() as u32).collect();
        let servers: Vec<u32> = (0..self.n_servers).collect();
        let mut pairs = Vec::new();
        let cut_between = |a: &[u32], b: &[u32], pairs: &mut Vec<(u32, u32)>| {
            for &x in a {
                for &y in b {
                    pairs.push((x, y));
                    pairs.push((y, x));
                }
            }
        };
        let hit = match shape {
            Shape::Isolate(target) => {
                let hit = self.resolve(target);
                let inside: Vec<u32> = hit.iter().map(|&id| self.slot_of(id) as u32).collect();
                let outside: Vec<u32> = all.iter().copied().filter(|s| !inside.contains(s)).collect();
                cut_between(&inside, &outside, &mut pairs);
                hit
            }
            Shape::IsolateFromPeers(target) => {
                let hit = self.resolve(target);
                let inside: Vec<u32> = hit.iter().map(|&id| self.slot_of(id) as u32).collect();
                let outside: Vec<u32> = servers.iter().copied().filter(|s| !inside.contains(s)).collect();
                cut_between(&inside, &outside, &mut pairs);
                hit
            }
            Shape::Halves => {
                let mut s = servers.clone();
                self.fault_rng.shuffle(&mut s);
                let (a, b) = s.split_at(s.len() / 2);
                cut_between(a, b, &mut pairs);
                let mut hit: Vec<NodeId> = a.iter().map(|&x| self.id_of(x as usize)).collect();
                hit.sort();
                hit
            }
            Shape::MajorityRing => {
                let mut ring = servers.clone();
                self.fault_rng.shuffle(&mut ring);
                let n = ring.len();
                // Neighbours on each side a node still sees: itself and 2*reach others make a majority.
                let reach = (n / 2).div_ceil(2);
                for i in 0..n {
                    for j in 0..n {
                        let d = (i + n - j) % n;
                        let dist = d.min(n - d);
                        if i != j && dist > reach {
                            pairs.push((ring[i], ring[j]));
                        }
                    }
                }
                ring.iter().map(|&x| self.id_of(x as usize)).collect()
            }
            Shape::Bridge => {
                let mut s = servers.clone();
                self.fault_rng.shuffle(&mut s);
                let half = s.len() / 2;
                let bridge = s[half.min(s.len() - 1)];
                let left = &s[..half];
                let right = &s[(half + 1).min(s.len())..];
                cut_between(left, right, &mut pairs);
                vec![self.id_of(bridge as usize)]
            }
            Shape::OneWay(target) => {
                let hit = self.resolve(target);
                for &id in &hit {
                    let x = self.slot_of(id) as u32;
                    for &y in &servers {
                        if !hit.iter().any(|&h| self.slot_of(h) as u32 == y) {
                            pairs.push((x, y));
                        }
                    }
                }
                hit
            }
            Shape::Groups(groups) => {
                let slots: Vec<Vec<u32>> =
                    groups.iter().map(|g| g.iter().map(|&id| self.slot_of(id) as u32).collect()).collect();
                for (i, a) in slots.iter().enumerate() {
                    for b in &slots[i + 1..] {
                        cut_between(a, b, &mut pairs);
                    }
                }
                groups.iter().flatten().copied().collect()
            }
        };
        pairs.sort_unstable();
        pairs.dedup();
        pairs.retain(|(a, b)| a != b);
        (pairs, hit)
    }
}
