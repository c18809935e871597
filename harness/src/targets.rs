//! Fault targets and partition shapes resolved to nodes and directed
//! links, from the fault stream, in any world: the built-in world and the
//! drivers of other worlds resolve `minority` or `bridge` alike.

use crate::fault::{Shape, Target};
use crate::node::NodeId;
use crate::rng::Rng;

/// The nodes faults choose from.
#[derive(Clone, Debug)]
pub struct Targets {
    /// Every node, servers first, then clients.
    pub nodes: Vec<NodeId>,
    pub servers: Vec<NodeId>,
    /// What `random` picks from: the servers, and the clients when they may crash.
    pub random: Vec<NodeId>,
}

impl Targets {
    pub fn new(servers: u32, clients: u32, clients_crash: bool) -> Self {
        let servers: Vec<NodeId> = (0..servers).map(NodeId::server).collect();
        let nodes: Vec<NodeId> = servers.iter().copied().chain((0..clients).map(NodeId::client)).collect();
        let random = if clients_crash { nodes.clone() } else { servers.clone() };
        Targets { nodes, servers, random }
    }

    /// Resolves a target to concrete nodes, in id order; `leader` is the
    /// server known to lead now, if any.
    pub fn resolve(&self, target: &Target, leader: Option<NodeId>, rng: &mut Rng) -> Vec<NodeId> {
        let n = self.servers.len();
        let mut nodes = match target {
            Target::Node(id) => vec![*id],
            Target::Nodes(ids) => ids.clone(),
            Target::Random => rng.pick(&self.random).copied().into_iter().collect(),
            Target::All => self.servers.clone(),
            Target::Leader => match leader {
                Some(l) => vec![l],
                None => rng.pick(&self.servers).copied().into_iter().collect(),
            },
            Target::Minority | Target::Majority => {
                let size =
                    if matches!(target, Target::Minority) { ((n.saturating_sub(1)) / 2).max(1) } else { n / 2 + 1 };
                let mut all = self.servers.clone();
                rng.shuffle(&mut all);
                all.truncate(size.min(n));
                all
            }
        };
        for id in &nodes {
            assert!(self.nodes.contains(id), "fault target {id} is not a node of this world");
        }
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The directed links a partition shape cuts, sorted, and the nodes it
    /// singles out.
    pub fn cut(&self, shape: &Shape, leader: Option<NodeId>, rng: &mut Rng) -> (Vec<(NodeId, NodeId)>, Vec<NodeId>) {
        let mut pairs = Vec::new();
        let cut_between = |a: &[NodeId], b: &[NodeId], pairs: &mut Vec<(NodeId, NodeId)>| {
            for &x in a {
                for &y in b {
                    pairs.push((x, y));
                    pairs.push((y, x));
                }
            }
        };
        let outside = |of: &[NodeId], inside: &[NodeId]| -> Vec<NodeId> {
            of.iter().copied().filter(|s| !inside.contains(s)).collect()
        };
        let hit = match shape {
            Shape::Isolate(target) => {
                let hit = self.resolve(target, leader, rng);
                cut_between(&hit, &outside(&self.nodes, &hit), &mut pairs);
                hit
            }
            Shape::IsolateFromPeers(target) => {
                let hit = self.resolve(target, leader, rng);
                cut_between(&hit, &outside(&self.servers, &hit), &mut pairs);
                hit
            }
            Shape::Halves => {
                let mut s = self.servers.clone();
                rng.shuffle(&mut s);
                let (a, b) = s.split_at(s.len() / 2);
                cut_between(a, b, &mut pairs);
                let mut hit = a.to_vec();
                hit.sort();
                hit
            }
            Shape::MajorityRing => {
                let mut ring = self.servers.clone();
                rng.shuffle(&mut ring);
                let n = ring.len();
                // Neighbours on each side a node still sees: itself and 2*reach others make a majority.
                let reach = (n / 2).div_ceil(2);
                for i in 0..n {
                    for j in 0..n {
                        let d = (i + n - j) % n;
                        if i != j && d.min(n - d) > reach {
                            pairs.push((ring[i], ring[j]));
                        }
                    }
                }
                ring
            }
            Shape::Bridge => {
                let mut s = self.servers.clone();
                rng.shuffle(&mut s);
                let half = s.len() / 2;
                let bridge = s[half.min(s.len() - 1)];
                cut_between(&s[..half], &s[(half + 1).min(s.len())..], &mut pairs);
                vec![bridge]
            }
            Shape::OneWay(target) => {
                let hit = self.resolve(target, leader, rng);
                for &x in &hit {
                    for y in outside(&self.servers, &hit) {
                        pairs.push((x, y));
                    }
                }
                hit
            }
            Shape::Groups(groups) => {
                for (i, a) in groups.iter().enumerate() {
                    for b in &groups[i + 1..] {
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
