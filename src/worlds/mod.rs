//! Worlds besides the built-in one. The same nodes and checks
//! ([`harness::host`]) run on turmoil (deterministic: a seed replays) or
//! over real UDP sockets on 127.0.0.1 (real time: for smoke tests and
//! timing realism, not replay). A verdict that differs between worlds is a
//! bug in one of them.
//!
//! - [`node_task`]: one node as an async task over a world's datagram
//!   socket ([`Wire`]): datagrams and timers in, handlers called on the
//!   host, sends and timers out; the driver's share of the network faults
//!   (loss, duplication: sound to apply at the sender) and pauses.
//! - [`nemesis`]: the plan's faults at their times, resolved like the
//!   built-in world's, applied through a world's [`nemesis::Actions`].
//! - [`turmoil_world`], [`udp_world`]: the two drivers.
//!
//! What a world cannot inject is refused before the run, by name
//! ([`unsupported`]).

pub mod nemesis;
pub mod node_task;
pub mod turmoil_world;
pub mod udp_world;

use std::cell::RefCell;
use std::rc::Rc;

use harness::fault::Fault;
use harness::host::Host;
use harness::net::{LinkConfig, Ordering};
use harness::runner::{RunOptions, RunOutput};
use harness::scenario::{Plan, Scenario};
use harness::sim::Stats;
use harness::system::Systems;
use harness::{NodeId, Rng, Stream};

/// Where a run happens.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WorldKind {
    /// faultline's own simulated world: every fault, fastest.
    #[default]
    Builtin,
    /// turmoil's simulated network and hosts, deterministic per seed.
    Turmoil,
    /// Real UDP sockets on 127.0.0.1 and real time (not replayable).
    Udp,
}

impl WorldKind {
    pub fn name(self) -> &'static str {
        match self {
            WorldKind::Builtin => "builtin",
            WorldKind::Turmoil => "turmoil",
            WorldKind::Udp => "udp",
        }
    }
}

/// Runs one seed of a scenario on `world`; `Err` names what that world
/// cannot inject.
pub fn run(
    world: WorldKind,
    systems: &Systems,
    scenario: &Scenario,
    plan: &Plan,
    seed: u64,
    options: &RunOptions,
) -> Result<RunOutput, String> {
    if world == WorldKind::Builtin {
        return Ok(systems.run(scenario, plan, seed, options));
    }
    if let Some(why) = unsupported(world, scenario, plan) {
        return Err(why);
    }
    let host = systems.host(scenario, plan, seed, options);
    Ok(match world {
        WorldKind::Turmoil => turmoil_world::run(host, scenario, plan, seed),
        WorldKind::Udp => udp_world::run(host, scenario, plan, seed),
        WorldKind::Builtin => unreachable!("handled above"),
    })
}

/// Why `world` cannot run this scenario (seed's plan), naming the fault or
/// setting, or `None` if it can.
pub fn unsupported(world: WorldKind, scenario: &Scenario, plan: &Plan) -> Option<String> {
    let name = world.name();
    if world == WorldKind::Builtin {
        return None;
    }
    if scenario.network.ordering == Ordering::Fifo {
        return Some(format!("the {name} world cannot keep links first-in first-out (`ordering = \"fifo\"`)"));
    }
    if world == WorldKind::Udp {
        // Real sockets on loopback take what latency they take.
        if let Some(f) = plan.faults.iter().find(|f| matches!(f.fault, Fault::Network(_))) {
            return Some(format!("the udp world cannot change real latency (a network storm at {:?})", f.at));
        }
    }
    None
}

/// What the node tasks of one run share with their driver (one thread:
/// turmoil runs every host on it, and the UDP world runs a local task set).
pub struct Shared {
    pub host: Box<dyn Host>,
    /// Paused nodes handle nothing: datagrams wait in their sockets and
    /// timers fire late, as a paused process's do.
    paused: Vec<NodeId>,
    /// Loss and duplication (the scenario's, or a storm's), drawn at the
    /// sender from the run's network stream.
    link: LinkConfig,
    net_rng: Rng,
    /// Directed links the driver cuts itself (the UDP world's partitions).
    cut: Vec<(NodeId, NodeId)>,
    pub stats: Stats,
}

pub type SharedRef = Rc<RefCell<Shared>>;

impl Shared {
    pub fn new(host: Box<dyn Host>, scenario: &Scenario, seed: u64) -> SharedRef {
        Rc::new(RefCell::new(Shared {
            host,
            paused: Vec::new(),
            link: scenario.network.clone(),
            net_rng: Rng::new(seed, Stream::Network),
            cut: Vec::new(),
            stats: Stats::default(),
        }))
    }

    pub fn is_paused(&self, node: NodeId) -> bool {
        self.paused.contains(&node)
    }

    /// How many copies of a datagram from `from` to `to` go out: 0 (lost
    /// or cut), 1, or 2 (duplicated).
    fn copies(&mut self, from: NodeId, to: NodeId) -> usize {
        self.stats.sent += 1;
        if self.cut.contains(&(from, to)) {
            self.stats.dropped_partition += 1;
            return 0;
        }
        if self.link.loss > 0.0 && self.net_rng.chance(self.link.loss) {
            self.stats.dropped_loss += 1;
            return 0;
        }
        if self.link.duplicate > 0.0 && self.net_rng.chance(self.link.duplicate) {
            self.stats.duplicated += 1;
            return 2;
        }
        1
    }
}

/// One world's datagram socket, bound per node. Both worlds run every
/// node on one thread, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Wire: 'static {
    type Socket;
    async fn bind(&self, me: NodeId) -> std::io::Result<Self::Socket>;
    async fn send(&self, socket: &Self::Socket, to: NodeId, bytes: &[u8]);
    async fn recv(&self, socket: &Self::Socket, buf: &mut [u8]) -> std::io::Result<usize>;
    /// True time of the run now.
    fn now(&self) -> harness::SimTime;
}
