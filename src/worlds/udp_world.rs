//! The UDP world: every node a task on one thread, over a real UDP socket
//! on 127.0.0.1, in real time. Not deterministic: it shows the nodes are
//! real software over real sockets, and gives timing realism. The driver
//! injects the faults: loss, duplication and partitions at the sender,
//! pauses, and crashes (the task is dropped; a restarted node gets the same
//! address, without what was waiting for its predecessor). It is bounded:
//! the run ends at the scenario's fault phase plus its liveness bound.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use harness::host::Host;
use harness::net::Latency;
use harness::runner::RunOutput;
use harness::scenario::{Plan, Scenario};
use harness::{NodeId, SimTime};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::nemesis::{Actions, Nemesis};
use super::{conclude, Phases, Shared, SharedRef, Wire};

/// How often the driver looks at the clock for faults and progress.
const POLL: Duration = Duration::from_millis(5);

struct UdpWire {
    start: Instant,
    sockets: BTreeMap<NodeId, Rc<UdpSocket>>,
    addresses: BTreeMap<NodeId, SocketAddr>,
}

impl Wire for UdpWire {
    type Socket = Rc<UdpSocket>;

    /// The node's socket outlives its crashes (its address is its name);
    /// what waited in it for the crashed process is dropped.
    async fn bind(&self, me: NodeId) -> std::io::Result<Self::Socket> {
        let socket = self.sockets[&me].clone();
        let mut buf = [0u8; 64];
        while socket.try_recv(&mut buf).is_ok() {}
        Ok(socket)
    }
    async fn send(&self, socket: &Self::Socket, to: NodeId, bytes: &[u8]) {
        let _ = socket.send_to(bytes, self.addresses[&to]).await;
    }
    async fn recv(&self, socket: &Self::Socket, buf: &mut [u8]) -> std::io::Result<usize> {
        socket.recv(buf).await
    }
    fn now(&self) -> SimTime {
        SimTime::from_duration(self.start.elapsed())
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// The node tasks, by node.
struct Tasks {
    wire: Rc<UdpWire>,
    shared: SharedRef,
    running: RefCell<BTreeMap<NodeId, JoinHandle<std::io::Result<()>>>>,
}

impl Tasks {
    fn spawn(&self, node: NodeId) {
        let (wire, shared) = (self.wire.clone(), self.shared.clone());
        let task = tokio::task::spawn_local(async move {
            let result = super::node_task::run(wire.clone(), shared.clone(), node).await;
            if let Err(e) = &result {
                shared.borrow_mut().task_failed(node, wire.now(), e);
            }
            result
        });
        if let Some(old) = self.running.borrow_mut().insert(node, task) {
            old.abort();
        }
    }
}

impl Actions for &Tasks {
    /// Real sockets have no partitions: the driver's links cut.
    fn cut(&mut self, _from: NodeId, _to: NodeId) {}
    fn mend(&mut self, _from: NodeId, _to: NodeId) {}
    fn crash(&mut self, node: NodeId) {
        if let Some(task) = self.running.borrow_mut().remove(&node) {
            task.abort();
        }
    }
    fn restart(&mut self, node: NodeId) {
        self.spawn(node);
    }
    fn set_latency(&mut self, _latency: &Latency) {
        // Refused before the run (storms); the heal sets the scenario's own.
    }
}

pub fn run(host: Box<dyn Host>, scenario: &Scenario, plan: &Plan, seed: u64) -> RunOutput {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(host, scenario, plan, seed))
}

async fn drive(host: Box<dyn Host>, scenario: &Scenario, plan: &Plan, seed: u64) -> RunOutput {
    let ids = host.targets().nodes.clone();
    let targets = host.targets().clone();
    let mut host = host;
    host.add_triggers(plan.triggers.clone());
    let mut sockets = BTreeMap::new();
    let mut addresses = BTreeMap::new();
    for &id in &ids {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a UDP socket on 127.0.0.1");
        addresses.insert(id, socket.local_addr().expect("a bound socket has an address"));
        sockets.insert(id, Rc::new(socket));
    }
    let shared = Shared::new(host, scenario, seed);
    let wire = Rc::new(UdpWire { start: Instant::now(), sockets, addresses });
    let tasks = Tasks { wire: wire.clone(), shared: shared.clone(), running: RefCell::new(BTreeMap::new()) };
    for &id in &ids {
        tasks.spawn(id);
    }
    let mut nemesis = Nemesis::new(&plan.faults, targets, &scenario.network, seed);
    let mut phases = Phases::new(scenario);
    let outcome = loop {
        if let Some(outcome) = phases.look(wire.now(), &shared, &mut nemesis, &mut &tasks) {
            break outcome;
        }
        tokio::time::sleep(POLL).await;
    };
    let now = wire.now();
    for (_, task) in std::mem::take(&mut *tasks.running.borrow_mut()) {
        task.abort();
    }
    drop(tasks);
    // Let the aborted tasks drop what they hold (a local set runs a bounded
    // number of tasks per turn).
    while Rc::strong_count(&shared) > 1 {
        tokio::task::yield_now().await;
    }
    conclude(shared, "udp", now, outcome, nemesis)
}
