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
//! - [`links`]: the driver's share of the network (cuts, loss,
//!   duplication, FIFO order), the same in every world.
//! - [`nemesis`]: the plan's faults at their times, resolved like the
//!   built-in world's, applied through a world's [`nemesis::Actions`].
//! - [`turmoil_world`], [`udp_world`]: the two drivers.
//!
//! What a world cannot inject is refused before the run, by name
//! ([`unsupported`]).

pub mod links;
pub mod nemesis;
pub mod node_task;
pub mod turmoil_world;
pub mod udp_world;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use harness::fault::Fault;
use harness::host::{Ending, Host, Output};
use harness::outcome::Outcome;
use harness::runner::{RunOptions, RunOutput};
use harness::scenario::{Plan, Scenario};
use harness::sim::Stats;
use harness::system::Systems;
use harness::{NodeId, Rng, SimTime, Stream};

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
    /// madsim's runtime and network: only in its own lane (`lanes/madsim`),
    /// built with `--cfg madsim`.
    Madsim,
}

impl WorldKind {
    pub fn name(self) -> &'static str {
        match self {
            WorldKind::Builtin => "builtin",
            WorldKind::Turmoil => "turmoil",
            WorldKind::Udp => "udp",
            WorldKind::Madsim => "madsim",
        }
    }
}

/// Why `--world madsim` does not run here.
pub const MADSIM_LANE: &str = "madsim needs `--cfg madsim` on the whole build: run it from its lane, \
    RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/madsim \
    cargo run --release --manifest-path lanes/madsim/Cargo.toml -- FILE... (README, \"Worlds\")";

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
    if world == WorldKind::Madsim {
        return Err(MADSIM_LANE.into());
    }
    if let Some(why) = unsupported(world, scenario, plan) {
        return Err(why);
    }
    let host = systems.host(scenario, plan, seed, options);
    Ok(match world {
        WorldKind::Turmoil => turmoil_world::run(host, scenario, plan, seed),
        WorldKind::Udp => udp_world::run(host, scenario, plan, seed),
        WorldKind::Builtin | WorldKind::Madsim => unreachable!("handled above"),
    })
}

/// Why `world` cannot run this scenario (seed's plan), naming the fault or
/// setting, or `None` if it can. Every world keeps the scenario's own
/// settings (the udp world its latency only as real sockets have it), so
/// only the plan's faults are refused.
pub fn unsupported(world: WorldKind, _scenario: &Scenario, plan: &Plan) -> Option<String> {
    if world == WorldKind::Builtin {
        return None;
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
    /// timers fire late, as a paused process's do. Each with the number of
    /// its pause, so a pause's undo resumes only that pause.
    paused: BTreeMap<NodeId, u64>,
    pauses: u64,
    /// Nodes the driver restarted on the host whose task has not yet sent
    /// what their start handler did.
    started: BTreeMap<NodeId, Vec<Output>>,
    /// Per node, the incarnation (count of crashes) whose task has bound
    /// its socket: until then a restarted node is not listening, and the
    /// world would drop what is sent to it unseen.
    listening: BTreeMap<NodeId, u64>,
    /// Per node, what wakes its task when its clock's drift changes (its
    /// armed timers then fire at other true times).
    retime: BTreeMap<NodeId, Rc<tokio::sync::Notify>>,
    links: links::Links,
    pub stats: Stats,
}

pub type SharedRef = Rc<RefCell<Shared>>;

impl Shared {
    pub fn new(host: Box<dyn Host>, scenario: &Scenario, seed: u64) -> SharedRef {
        let links =
            links::Links::new(host.targets().nodes.clone(), scenario.network.clone(), Rng::new(seed, Stream::Network));
        Rc::new(RefCell::new(Shared {
            host,
            paused: BTreeMap::new(),
            pauses: 0,
            started: BTreeMap::new(),
            retime: BTreeMap::new(),
            listening: BTreeMap::new(),
            links,
            stats: Stats::default(),
        }))
    }

    pub fn is_paused(&self, node: NodeId) -> bool {
        self.paused.contains_key(&node)
    }

    /// Pauses `node`; the pause's number, for its undo.
    fn pause(&mut self, node: NodeId) -> u64 {
        self.pauses += 1;
        self.paused.insert(node, self.pauses);
        self.pauses
    }

    /// Starts `node` on the host now; its task sends what the start
    /// handler did once it runs (a fault right after the restart sees the
    /// node up, as in the built-in world).
    fn restart(&mut self, node: NodeId, now: SimTime) {
        let outputs = self.host.start(node, now);
        self.started.insert(node, outputs);
    }

    /// What `node`'s start handler did, if the driver started it; else the
    /// task starts it now.
    pub fn start(&mut self, node: NodeId, now: SimTime) -> Vec<Output> {
        match self.started.remove(&node) {
            Some(outputs) => outputs,
            None => self.host.start(node, now),
        }
    }

    /// A node's task ended with an error (its socket broke): the run stops
    /// as that node's crash rather than go on with the node silently gone.
    pub fn task_failed(&mut self, node: NodeId, now: SimTime, error: &std::io::Error) {
        self.host.fail(node, now, format!("{node}'s socket failed: {error}"));
    }

    /// What wakes `node`'s task when its clock changes speed.
    pub fn retime(&mut self, node: NodeId) -> Rc<tokio::sync::Notify> {
        self.retime.entry(node).or_default().clone()
    }

    /// `node`'s task has bound its socket: what is sent to it from now on
    /// reaches it.
    pub fn listening(&mut self, node: NodeId) {
        let downs = self.host.downs(node);
        self.listening.insert(node, downs);
    }

    /// The datagrams that go out for a send from `from` to `to` (none,
    /// one, or two), framed for the receiving driver. A node that is down,
    /// or restarted but not yet listening, gets nothing (`dropped_down`).
    /// `from` names the sender and the incarnation its task began in.
    pub fn outbound(&mut self, (from, incarnation): (NodeId, u64), to: NodeId, bytes: &[u8]) -> Vec<Vec<u8>> {
        let up =
            self.host.status(to) == harness::sim::Status::Up && self.listening.get(&to) == Some(&self.host.downs(to));
        let downs = (incarnation, self.host.downs(to));
        self.links.outbound((from, to), downs, up, bytes, &mut self.stats)
    }

    /// What `me` gets of a datagram that reached it, in order; a `fifo`
    /// link that stalls stops the run.
    pub fn inbound(&mut self, me: NodeId, datagram: &[u8], now: SimTime) -> Vec<Vec<u8>> {
        let downs = self.host.downs(me);
        match self.links.inbound(me, downs, datagram, now, &mut self.stats) {
            links::Inbound::Deliver(ready) => ready,
            links::Inbound::Stalled { from, missing, held } => {
                let why = format!(
                    "the driver's fifo link from {from} to {me} waits for its datagram {missing}, which never came \
                     ({held} held behind it): a defect of the driver or its world, not of the system"
                );
                self.host.fail(me, now, why);
                Vec::new()
            }
        }
    }
}

/// The phases of a run in another world, one look at a time: the fault
/// phase (the nemesis applies what is due), the heal, then the liveness
/// phase (the system's progress condition, within the scenario's bound).
pub struct Phases {
    fault_phase: SimTime,
    liveness: std::time::Duration,
    healed: Option<SimTime>,
}

impl Phases {
    pub fn new(scenario: &Scenario) -> Self {
        Phases { fault_phase: SimTime::from_duration(scenario.duration), liveness: scenario.liveness, healed: None }
    }

    /// Does what is due at `now`; `Some` when the run is over (a stop the
    /// host saw overrides the `Pass` given then).
    pub fn look(
        &mut self,
        now: SimTime,
        shared: &SharedRef,
        nemesis: &mut nemesis::Nemesis,
        world: &mut dyn nemesis::Actions,
    ) -> Option<Outcome> {
        if shared.borrow().host.stopped() {
            return Some(Outcome::Pass);
        }
        match self.healed {
            None if now >= self.fault_phase => {
                // What is due at the end of the fault phase happens first.
                nemesis.run_due(self.fault_phase, shared, world);
                nemesis.heal(now, shared, world);
                self.healed = Some(now);
            }
            None => nemesis.run_due(now, shared, world),
            Some(at) => {
                if shared.borrow_mut().host.progress(now, at) {
                    return Some(Outcome::Pass);
                }
                let deadline = at.saturating_add(self.liveness);
                if now >= deadline {
                    let reason = format!("no progress within {:?} after healing (until {deadline})", self.liveness);
                    return Some(Outcome::Liveness { reason });
                }
            }
        }
        None
    }
}

/// Judges a run whose node tasks are all gone, and writes its report.
pub fn conclude(
    shared: SharedRef,
    world: &str,
    now: SimTime,
    outcome: Outcome,
    nemesis: nemesis::Nemesis,
) -> RunOutput {
    let shared = Rc::try_unwrap(shared).ok().expect("the node tasks are gone").into_inner();
    let ending = Ending { world: world.into(), now, outcome, faults: nemesis.applied, stats: shared.stats };
    shared.host.conclude(ending)
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
    /// Waits `d` of this world's time (each world has its own timer wheel).
    async fn sleep(&self, d: std::time::Duration);
}
