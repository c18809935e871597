//! The madsim world: every node a madsim node (its own IP, 10.0.0.x for
//! servers, 10.0.1.x for clients) running faultline's node task over
//! `madsim::net::UdpSocket`; madsim's network carries the datagrams (its
//! latency, uniform in a range with the scenario's lower bound and mean),
//! `kill`/`restart` stop and restart nodes. Partitions, loss, duplication,
//! FIFO order, pauses and clocks are the driver's, as on turmoil. The driver is the runtime's main task: it looks at the phases
//! every millisecond of madsim's time (every 100
//! microseconds while triggers may fire). A seed replays: madsim's runtime is
//! built from it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use faultline::worlds::nemesis::{Actions, Nemesis};
use faultline::worlds::{conclude, Phases, Shared, SharedRef, Wire};
use harness::host::Host;
use harness::net::Latency;
use harness::runner::RunOutput;
use harness::scenario::{Plan, Scenario};
use harness::{NodeId, SimTime};
use madsim::net::{NetSim, UdpSocket};
use madsim::runtime::{Handle, Runtime};

const PORT: u16 = 7000;
/// How often the driver looks at the phases: every millisecond, and every
/// 100 microseconds in a fault phase with triggers, well under the least
/// latency, so a fault a trigger fires (a crash armed for the next
/// handler) lands before the message that event sent arrives.
const LOOK: Duration = Duration::from_millis(1);
const LOOK_FOR_TRIGGERS: Duration = Duration::from_micros(100);

thread_local! {
    /// The run's shared state: madsim wants node tasks built by `Send +
    /// Sync` closures, and runs them all on this thread, so they find it
    /// here rather than capture it.
    static SHARED: RefCell<Option<SharedRef>> = const { RefCell::new(None) };
}

fn ip(node: NodeId) -> IpAddr {
    let third = if node.is_client() { 1 } else { 0 };
    IpAddr::V4(Ipv4Addr::new(10, 0, third, node.index() as u8 + 1))
}

struct MadsimWire {
    start: madsim::time::Instant,
}

impl Wire for MadsimWire {
    type Socket = UdpSocket;

    async fn bind(&self, me: NodeId) -> std::io::Result<Self::Socket> {
        UdpSocket::bind(SocketAddr::new(ip(me), PORT)).await
    }
    async fn send(&self, socket: &Self::Socket, to: NodeId, bytes: &[u8]) {
        let _ = socket.send_to(SocketAddr::new(ip(to), PORT), bytes).await;
    }
    async fn recv(&self, socket: &Self::Socket, buf: &mut [u8]) -> std::io::Result<usize> {
        socket.recv_from(buf).await.map(|(n, _)| n)
    }
    fn now(&self) -> SimTime {
        SimTime::from_duration(self.start.elapsed())
    }
    async fn sleep(&self, d: Duration) {
        madsim::time::sleep(d).await;
    }
}

struct Nodes {
    handle: Handle,
    ids: BTreeMap<NodeId, madsim::task::NodeId>,
}

impl Actions for Nodes {
    /// The driver's links cut: madsim's `clog_link` would also drop, unseen
    /// by the driver, a datagram in its sender's last microseconds.
    fn cut(&mut self, _from: NodeId, _to: NodeId) {}
    fn mend(&mut self, _from: NodeId, _to: NodeId) {}
    fn crash(&mut self, node: NodeId) {
        self.handle.kill(self.ids[&node]);
    }
    /// A kill first: it closes the sockets of whatever task of the node
    /// still runs, so the new one can bind its address.
    fn restart(&mut self, node: NodeId) {
        self.handle.kill(self.ids[&node]);
        self.handle.restart(self.ids[&node]);
    }
    fn set_latency(&mut self, latency: &Latency) {
        let range = latency_range(latency);
        NetSim::current().update_config(|c| c.send_latency = range);
    }
}

/// madsim draws latency uniformly from a range: the scenario's lower bound,
/// and an upper one that gives the scenario's mean (capped at its maximum).
fn latency_range(latency: &Latency) -> std::ops::Range<Duration> {
    let (min, max, mean) = match *latency {
        Latency::Constant(d) => (d, d, d),
        Latency::Uniform { min, max } => (min, max, (min + max) / 2),
        Latency::Exponential { mean, max } => (Duration::ZERO, max, mean),
        Latency::HeavyTail { min, alpha, max } => {
            let mean = if alpha > 1.0 { min.mul_f64(alpha / (alpha - 1.0)) } else { max };
            (min, max, mean.min(max))
        }
    };
    let upper = (min + mean.saturating_sub(min) * 2).min(max);
    // An empty range is refused: a constant latency gets one nanosecond.
    min..upper.max(min + Duration::from_nanos(1))
}

pub fn run(host: Box<dyn Host>, scenario: &Scenario, plan: &Plan, seed: u64) -> RunOutput {
    let mut config = madsim::Config::default();
    config.net.send_latency = latency_range(&scenario.network.latency);
    let runtime = Runtime::with_seed_and_config(seed, config);
    let ids = host.targets().nodes.clone();
    let targets = host.targets().clone();
    let mut host = host;
    host.add_triggers(plan.triggers.clone());
    let shared = Shared::new(host, scenario, seed);
    SHARED.with(|s| *s.borrow_mut() = Some(shared.clone()));
    let start = runtime.block_on(async { madsim::time::Instant::now() });
    let mut madsim_ids = BTreeMap::new();
    for &id in &ids {
        let node = runtime
            .create_node()
            .name(id.to_string())
            .ip(ip(id))
            .init(move || async move {
                let shared = SHARED.with(|s| s.borrow().clone()).expect("the run's shared state");
                let wire = Rc::new(MadsimWire { start });
                // A node task ends when killed, after a crash in a handler,
                // when the run stops, or with its socket's error.
                if let Err(e) = faultline::worlds::node_task::run(wire.clone(), shared.clone(), id).await {
                    shared.borrow_mut().task_failed(id, wire.now(), &e);
                }
            })
            .build();
        madsim_ids.insert(id, node.id());
    }
    let handle = runtime.handle().clone();
    let nemesis = Nemesis::new(&plan.faults, targets, &scenario.network, seed);
    let triggers = !plan.triggers.is_empty();
    let (now, outcome, nemesis) = runtime.block_on(async move {
        let wire = MadsimWire { start };
        let mut nodes = Nodes { handle, ids: madsim_ids };
        let mut nemesis = nemesis;
        let mut phases = Phases::new(scenario);
        loop {
            let shared = SHARED.with(|s| s.borrow().clone()).expect("the run's shared state");
            if let Some(outcome) = phases.look(wire.now(), &shared, &mut nemesis, &mut nodes) {
                for &id in nodes.ids.values() {
                    nodes.handle.kill(id);
                }
                break (wire.now(), outcome, nemesis);
            }
            drop(shared);
            let triggered = triggers && wire.now() < SimTime::from_duration(scenario.duration);
            madsim::time::sleep(if triggered { LOOK_FOR_TRIGGERS } else { LOOK }).await;
        }
    });
    drop(runtime);
    SHARED.with(|s| s.borrow_mut().take());
    conclude(shared, "madsim", now, outcome, nemesis)
}
