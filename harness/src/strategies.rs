//! proptest strategies for fault plans, network and clock settings, and
//! workloads, so that a property over a system is a few lines:
//!
//! ```text
//! proptest! {
//!     #[test]
//!     fn the_correct_variant_passes(faults in fault_plan(&Menu::crash_and_pause(1, 2), secs(10), 6)) {
//!         // build a Plan with these faults, run it, assert the outcome is pass,
//!         // printing `faults_as_toml(&faults)` on failure
//!     }
//! }
//! ```
//!
//! proptest shrinks a failing plan towards fewer, earlier, shorter faults,
//! and [`faults_as_toml`] prints the minimal one as scenario-file entries.

use std::time::Duration;

use proptest::prelude::*;
use serde::Serialize;

use crate::fault::{Fault, Shape, Target};
use crate::history::Value;
use crate::net::{Latency, LinkConfig, Ordering};
use crate::node::NodeId;
use crate::scenario::{fault_entry, ClientOp, FaultEntry, TimedFault};

/// Which faults a plan may contain, over how many nodes.
#[derive(Clone, Debug)]
pub struct Menu {
    pub servers: u32,
    pub clients: u32,
    /// Fault kinds in scenario-file spelling (`crash`, `partition`, ...).
    pub kinds: Vec<&'static str>,
}

impl Menu {
    /// Every kind of fault except `kill` (which no system survives forever
    /// with a single server) and `network` storms.
    pub fn all_but_kill(servers: u32, clients: u32) -> Menu {
        Menu {
            servers,
            clients,
            kinds: vec!["partition", "crash", "pause", "clock-bump", "clock-strobe", "clock-drift", "clock-reset"],
        }
    }
}

/// A node target: a server by name, or one of the symbolic targets.
pub fn target(servers: u32) -> impl Strategy<Value = Target> {
    prop_oneof![
        (0..servers.max(1)).prop_map(|i| Target::Node(NodeId::server(i))),
        Just(Target::Random),
        Just(Target::Leader),
        Just(Target::Minority),
        Just(Target::All),
    ]
}

fn shape(servers: u32) -> impl Strategy<Value = Shape> {
    prop_oneof![
        target(servers).prop_map(Shape::Isolate),
        target(servers).prop_map(Shape::OneWay),
        target(servers).prop_map(Shape::IsolateFromPeers),
        Just(Shape::Halves),
        Just(Shape::MajorityRing),
        Just(Shape::Bridge),
    ]
}

/// One fault of the menu at some time within `run`, with a window when it has one.
pub fn timed_fault(menu: &Menu, run: Duration) -> impl Strategy<Value = TimedFault> {
    let run_ms = run.as_millis().max(2) as u64;
    let servers = menu.servers;
    let kinds = menu.kinds.clone();
    (
        prop::sample::select(kinds),
        0..run_ms - 1,
        1..run_ms,
        target(servers),
        shape(servers),
        -5_000i64..5_000,
        1u64..500,
        -200i64..200,
    )
        .prop_map(move |(kind, at, len, target, shape, delta_ms, period_ms, ppm)| {
            let at_d = Duration::from_millis(at);
            let length = Duration::from_millis(len.min(run_ms - at));
            let window = Some(length);
            let (fault, duration) = match kind {
                "partition" => (Fault::Partition(shape), window),
                "crash" => (Fault::Crash(target), window),
                "pause" => (Fault::Pause(target), window),
                "kill" => (Fault::Kill(target), None),
                "clock-bump" => (Fault::ClockBump { target, delta_ns: delta_ms * 1_000_000 }, window),
                "clock-strobe" => (
                    Fault::ClockStrobe {
                        target,
                        delta_ns: delta_ms.abs() * 1_000_000,
                        period: Duration::from_millis(period_ms),
                        duration: length,
                    },
                    None,
                ),
                "clock-drift" => (Fault::ClockDrift { target, ppm: ppm as f64 }, window),
                "clock-reset" => (Fault::ClockReset(target), None),
                _ => (Fault::Network(LinkConfig { loss: 0.3, ..LinkConfig::default() }), window),
            };
            TimedFault { at: at_d, fault, duration }
        })
}

/// Up to `max` faults from the menu, in time order.
pub fn fault_plan(menu: &Menu, run: Duration, max: usize) -> impl Strategy<Value = Vec<TimedFault>> {
    prop::collection::vec(timed_fault(menu, run), 0..=max).prop_map(|mut faults| {
        faults.sort_by_key(|f| f.at);
        faults
    })
}

/// Network settings: any latency distribution, loss up to 20%, duplication up to 10%.
pub fn link_config() -> impl Strategy<Value = LinkConfig> {
    let latency = prop_oneof![
        (1u64..20).prop_map(|ms| Latency::Constant(Duration::from_millis(ms))),
        (0u64..10, 10u64..50)
            .prop_map(|(a, b)| Latency::Uniform { min: Duration::from_millis(a), max: Duration::from_millis(b) }),
        (1u64..10)
            .prop_map(|m| Latency::Exponential { mean: Duration::from_millis(m), max: Duration::from_millis(200) }),
        (1u64..5, 11u32..30).prop_map(|(m, a)| Latency::HeavyTail {
            min: Duration::from_millis(m),
            alpha: f64::from(a) / 10.0,
            max: Duration::from_secs(1)
        }),
    ];
    let ordering = prop_oneof![Just(Ordering::Unordered), Just(Ordering::Fifo)];
    (latency, 0u32..=20, 0u32..=10, ordering).prop_map(|(latency, loss, dup, ordering)| LinkConfig {
        latency,
        loss: f64::from(loss) / 100.0,
        duplicate: f64::from(dup) / 100.0,
        ordering,
    })
}

/// Clock settings: the maximum initial skew and the maximum drift in ppm.
pub fn clock_settings() -> impl Strategy<Value = (Duration, f64)> {
    (0u64..2_000, 0u32..=500).prop_map(|(skew_ms, ppm)| (Duration::from_millis(skew_ms), f64::from(ppm)))
}

/// Per-client operation lists drawn from a system's operation strategy.
pub fn workload<S>(clients: usize, max_ops: usize, op: S) -> impl Strategy<Value = Vec<Vec<ClientOp>>>
where
    S: Strategy<Value = ClientOp> + Clone,
{
    prop::collection::vec(prop::collection::vec(op, 0..=max_ops), clients..=clients)
}

/// Register-style operations (read, write, cas on small integers) over `keys` keys.
pub fn register_op(keys: u32) -> impl Strategy<Value = ClientOp> + Clone {
    let key = (0..keys.max(1)).prop_map(|k| Some(format!("k{k}")));
    (key, 0u8..3, 0i64..4, 0i64..4).prop_map(|(key, f, a, b)| match f {
        0 => ClientOp { f: "read".into(), key, value: Value::Null },
        1 => ClientOp { f: "write".into(), key, value: Value::Int(a) },
        _ => ClientOp { f: "cas".into(), key, value: Value::pair(Value::Int(a), Value::Int(b)) },
    })
}

/// A fault plan as `[[fault]]` entries, ready to paste into a scenario file.
pub fn faults_as_toml(faults: &[TimedFault]) -> String {
    #[derive(Serialize)]
    struct Faults {
        fault: Vec<FaultEntry>,
    }
    toml::to_string(&Faults { fault: faults.iter().map(fault_entry).collect() }).expect("fault entries serialise")
}
