//! The turmoil world: every node a turmoil host (named `n1`, `c1`, ...)
//! running [`super::node_task`] over `turmoil::net::UdpSocket`; turmoil's
//! network carries the datagrams (its latency between the scenario's
//! bounds, its reordering), `crash`/`bounce` stop and restart hosts.
//! Partitions, loss, duplication, FIFO order and pauses are the driver's
//! ([`super::links`]): turmoil's own partitions would drop datagrams in
//! flight where the driver cannot count them. The driver steps the simulation one tick (1
//! ms) at a time, applying the plan's faults between steps. A seed
//! replays: turmoil's random stream is seeded from it and its epoch fixed.

use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use harness::host::Host;
use harness::net::Latency;
use harness::outcome::Outcome;
use harness::runner::RunOutput;
use harness::scenario::{Plan, Scenario};
use harness::{NodeId, SimTime};

use super::nemesis::{Actions, Nemesis};
use super::{conclude, Phases, Shared, Wire};

/// The port every node listens on (each host has its own address).
const PORT: u16 = 7000;
/// turmoil's step: timers and deliveries resolve to it.
const TICK: Duration = Duration::from_millis(1);

struct TurmoilWire;

impl Wire for TurmoilWire {
    type Socket = turmoil::net::UdpSocket;

    async fn bind(&self, _me: NodeId) -> std::io::Result<Self::Socket> {
        turmoil::net::UdpSocket::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await
    }
    async fn send(&self, socket: &Self::Socket, to: NodeId, bytes: &[u8]) {
        // A send to a crashed host is lost, as a datagram is.
        let _ = socket.send_to(bytes, (turmoil::lookup(to.to_string()), PORT)).await;
    }
    async fn recv(&self, socket: &Self::Socket, buf: &mut [u8]) -> std::io::Result<usize> {
        socket.recv_from(buf).await.map(|(n, _)| n)
    }
    fn now(&self) -> SimTime {
        SimTime::from_duration(turmoil::sim_elapsed().unwrap_or_default())
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

struct Hosts<'s, 'a> {
    sim: &'s mut turmoil::Sim<'a>,
    /// The scenario's lower latency bound.
    min: Duration,
}

impl Actions for Hosts<'_, '_> {
    /// The driver's links cut ([`super::links`]): turmoil's
    /// `partition_oneway` would also drop what is in flight, unseen by the
    /// driver, so the report could not count it as the built-in world does.
    fn cut(&mut self, _from: NodeId, _to: NodeId) {}
    fn mend(&mut self, _from: NodeId, _to: NodeId) {}
    fn crash(&mut self, node: NodeId) {
        self.sim.crash(node.to_string());
    }
    fn restart(&mut self, node: NodeId) {
        self.sim.bounce(node.to_string());
    }
    /// turmoil has no setter for the lower bound: a storm keeps the
    /// scenario's, and sets the upper bound and the curve for its mean.
    fn set_latency(&mut self, latency: &Latency) {
        let (_, max, rate) = latency_model(latency);
        self.sim.set_max_message_latency(max.max(self.min));
        self.sim.set_message_latency_curve(rate);
    }
}

/// turmoil's latency for the scenario's distribution: its bounds, and the
/// rate of turmoil's exponential curve between them (a delay is `min +
/// (max - min) * Exp(rate)`, cut at `max`) that gives the scenario's mean.
/// Same bounds and mean, not the same shape: a heavy tail's rare slow
/// messages become turmoil's exponential ones.
fn latency_model(latency: &Latency) -> (Duration, Duration, f64) {
    let (min, max, mean) = match *latency {
        Latency::Constant(d) => (d, d, d.as_secs_f64()),
        Latency::Uniform { min, max } => (min, max, (min + max).as_secs_f64() / 2.0),
        Latency::Exponential { mean, max } => (Duration::ZERO, max, mean.as_secs_f64()),
        Latency::HeavyTail { min, alpha, max } => {
            // Pareto's mean, finite for alpha > 1; a heavier tail is cut at max.
            let mean = if alpha > 1.0 { alpha * min.as_secs_f64() / (alpha - 1.0) } else { max.as_secs_f64() };
            (min, max, mean.min(max.as_secs_f64()))
        }
    };
    let range = (max.saturating_sub(min)).as_secs_f64();
    let above = (mean - min.as_secs_f64()).max(1e-6);
    let rate = if range > 0.0 { (range / above).clamp(1.0, 1e6) } else { 5.0 };
    (min, max, rate)
}

pub fn run(host: Box<dyn Host>, scenario: &Scenario, plan: &Plan, seed: u64) -> RunOutput {
    let ids = host.targets().nodes.clone();
    let targets = host.targets().clone();
    let mut host = host;
    host.add_triggers(plan.triggers.clone());
    let shared = Shared::new(host, scenario, seed);
    let (min, max, rate) = latency_model(&scenario.network.latency);
    let end = scenario.duration + scenario.liveness + Duration::from_secs(1);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .tick_duration(TICK)
        .simulation_duration(end + Duration::from_secs(1))
        .min_message_latency(min)
        .max_message_latency(max.max(min))
        .udp_capacity(1 << 16)
        .build();
    sim.set_message_latency_curve(rate);
    let wire = Rc::new(TurmoilWire);
    for &id in &ids {
        let (wire, shared) = (wire.clone(), shared.clone());
        sim.host(id.to_string(), move || {
            let (wire, shared) = (wire.clone(), shared.clone());
            async move {
                if let Err(e) = super::node_task::run(wire.clone(), shared.clone(), id).await {
                    shared.borrow_mut().task_failed(id, wire.now(), &e);
                }
                Ok(())
            }
        });
    }
    let mut nemesis = Nemesis::new(&plan.faults, targets, &scenario.network, seed);
    let mut phases = Phases::new(scenario);
    let outcome = loop {
        let now = SimTime::from_duration(sim.elapsed());
        if let Some(outcome) = phases.look(now, &shared, &mut nemesis, &mut Hosts { sim: &mut sim, min }) {
            break outcome;
        }
        if let Err(e) = sim.step() {
            break Outcome::Crash { node: None, time: now, event: 0, message: format!("turmoil: {e}") };
        }
    };
    let now = SimTime::from_duration(sim.elapsed());
    drop(sim); // the hosts, and their node tasks
    conclude(shared, "turmoil", now, outcome, nemesis)
}
