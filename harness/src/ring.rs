//! A token ring: the smallest system that exercises the world, used by the
//! `ring` example, the world benchmark and the world's tests. Each node
//! forwards every token it receives to the next server in the ring.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::net::{Latency, LinkConfig};
use crate::node::{Ctx, NoObservation, Node, NodeId};
use crate::sim::{World, WorldConfig};

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub struct Token {
    pub id: u32,
    pub hops: u32,
}

pub struct RingNode {
    /// Tokens this node injects when it starts.
    initial: Vec<u32>,
    next: NodeId,
}

impl Node for RingNode {
    type Msg = Token;
    type Timer = ();
    type Obs = NoObservation;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        for &id in &self.initial {
            ctx.send(self.next, Token { id, hops: 0 });
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, _from: NodeId, msg: Token) {
        ctx.send(self.next, Token { id: msg.id, hops: msg.hops + 1 });
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, Self>, _timer: ()) {}
}

/// The ring workload's parameters.
#[derive(Clone, Debug)]
pub struct RingConfig {
    pub seed: u64,
    pub nodes: u32,
    pub tokens: u32,
    pub loss: f64,
    pub duplicate: f64,
    pub latency: Latency,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            seed: 0,
            nodes: 5,
            tokens: 1000,
            loss: 0.0,
            duplicate: 0.0,
            latency: Latency::Uniform { min: Duration::from_millis(1), max: Duration::from_millis(10) },
        }
    }
}

/// Builds a ring world; tokens are spread evenly over the nodes.
pub fn ring_world(cfg: &RingConfig) -> World<RingNode> {
    assert!(cfg.nodes > 0, "a ring needs at least one node");
    let world_config = WorldConfig {
        seed: cfg.seed,
        servers: cfg.nodes,
        network: LinkConfig {
            latency: cfg.latency.clone(),
            loss: cfg.loss,
            duplicate: cfg.duplicate,
            ..LinkConfig::default()
        },
        max_time: Duration::from_secs(365 * 24 * 3600),
        max_events: u64::MAX,
        ..WorldConfig::default()
    };
    let (nodes, tokens) = (cfg.nodes, cfg.tokens);
    World::new(
        world_config,
        Box::new(move |id, _disk| RingNode {
            initial: (0..tokens).filter(|t| t % nodes == id.index()).collect(),
            next: NodeId::server((id.index() + 1) % nodes),
        }),
    )
}

/// A mostly idle cluster: every server sends a heartbeat to every peer each
/// `period` (on its own monotonic clock), and nothing else happens.
pub struct HeartbeatNode {
    period: Duration,
}

impl Node for HeartbeatNode {
    type Msg = ();
    type Timer = ();
    type Obs = NoObservation;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(self.period, ());
    }
    fn on_message(&mut self, _ctx: &mut Ctx<'_, Self>, _from: NodeId, _msg: ()) {}
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _timer: ()) {
        for &peer in ctx.peers() {
            ctx.send(peer, ());
        }
        ctx.set_timer(self.period, ());
    }
}

/// `nodes` servers heartbeating every `period`.
pub fn heartbeat_world(nodes: u32, period: Duration) -> World<HeartbeatNode> {
    let config =
        WorldConfig { servers: nodes, max_time: Duration::MAX, max_events: u64::MAX, ..WorldConfig::default() };
    World::new(config, Box::new(move |_, _| HeartbeatNode { period }))
}
