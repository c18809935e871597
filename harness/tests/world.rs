//! One test per fault: each asserts the fault's effect on a tiny probe system.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use harness::check::online;
use harness::determinism::{self, TracedRun};
use harness::ring::{ring_world, RingConfig};
use harness::{
    Ctx, Fault, Latency, LinkConfig, MonoTime, Node, NodeId, Observation, Ordering, Outcome, Shape, SimTime, Status,
    Target, WallTime, World, WorldConfig,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
struct Ping(u32);

#[derive(Clone, Debug, Hash, Serialize)]
enum Seen {
    Started { stored: Option<u64> },
    Got { from: NodeId, seq: u32 },
    Fired { tag: u32, mono: MonoTime, wall: WallTime },
}
impl Observation for Seen {}

type Script = Rc<dyn Fn(&mut Ctx<'_, Probe>)>;

/// Timers with tags from here on make the node send `Ping(tag)` to every peer.
const BROADCAST: u32 = 1000;

/// Runs its script at start and reports everything that happens to it.
struct Probe {
    script: Option<Script>,
}

impl Node for Probe {
    type Msg = Ping;
    type Timer = u32;
    type Obs = Seen;
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let stored = ctx.disk().get("value");
        ctx.observe(Seen::Started { stored });
        if let Some(s) = &self.script {
            s(ctx);
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Ping) {
        ctx.observe(Seen::Got { from, seq: msg.0 });
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, tag: u32) {
        let (mono, wall) = (ctx.mono_now(), ctx.wall_now());
        ctx.observe(Seen::Fired { tag, mono, wall });
        if tag >= BROADCAST {
            for peer in ctx.peers().to_vec() {
                ctx.send(peer, Ping(tag));
            }
        }
    }
}

const N1: NodeId = NodeId::server(0);
const N2: NodeId = NodeId::server(1);
const N3: NodeId = NodeId::server(2);

fn config(network: LinkConfig) -> WorldConfig {
    WorldConfig { seed: 42, servers: 3, network, ..WorldConfig::default() }
}

/// A world where every node runs `script` at every start.
fn probe_world(cfg: WorldConfig, script: impl Fn(&mut Ctx<'_, Probe>) + 'static) -> World<Probe> {
    let script: Script = Rc::new(script);
    World::new(cfg, Box::new(move |_, _| Probe { script: Some(script.clone()) }))
}

fn received(world: &World<Probe>, at: NodeId) -> Vec<(SimTime, u32)> {
    world
        .observations()
        .iter()
        .filter(|o| o.node == at)
        .filter_map(|o| match o.obs {
            Seen::Got { seq, .. } => Some((o.time, seq)),
            _ => None,
        })
        .collect()
}

fn fired(world: &World<Probe>, at: NodeId) -> Vec<(SimTime, u32, MonoTime, WallTime)> {
    world
        .observations()
        .iter()
        .filter(|o| o.node == at)
        .filter_map(|o| match o.obs {
            Seen::Fired { tag, mono, wall } => Some((o.time, tag, mono, wall)),
            _ => None,
        })
        .collect()
}

/// n1 sends `n` pings to n2 at start.
fn send_many(n: u32) -> impl Fn(&mut Ctx<'_, Probe>) {
    move |ctx| {
        if ctx.me() != N1 {
            return;
        }
        for i in 0..n {
            ctx.send(N2, Ping(i));
        }
    }
}

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

#[test]
fn loss_rate_is_within_a_statistical_bound_of_the_configured_rate() {
    let n = 20_000;
    let mut world = probe_world(config(LinkConfig { loss: 0.2, ..LinkConfig::default() }), send_many(n));
    world.run_for(Duration::from_secs(1));
    let got = received(&world, N2).len() as f64;
    // Binomial(20000, 0.8): sd = 57; allow 5 sd.
    assert!((got - 16_000.0).abs() < 285.0, "delivered {got} of {n} at 20% loss");
    assert_eq!(world.stats().dropped_loss + got as u64, u64::from(n));
}

#[test]
fn duplication_rate_is_within_a_statistical_bound_and_copies_arrive() {
    let n = 20_000;
    let mut world = probe_world(config(LinkConfig { duplicate: 0.1, ..LinkConfig::default() }), send_many(n));
    world.run_for(Duration::from_secs(1));
    let got = received(&world, N2).len() as f64;
    // Binomial(20000, 0.1) extra copies: sd = 42; allow 5 sd.
    assert!((got - 22_000.0).abs() < 212.0, "delivered {got} for {n} sends at 10% duplication");
    assert_eq!(world.stats().duplicated + u64::from(n), got as u64);
}

#[test]
fn fifo_never_reorders_and_unordered_does() {
    let order = |ordering| {
        let net =
            LinkConfig { ordering, latency: Latency::Uniform { min: ms(1), max: ms(50) }, ..LinkConfig::default() };
        let mut world = probe_world(config(net), send_many(500));
        world.run_for(Duration::from_secs(1));
        received(&world, N2).into_iter().map(|(_, s)| s).collect::<Vec<_>>()
    };
    let fifo = order(Ordering::Fifo);
    assert_eq!(fifo, (0..500).collect::<Vec<_>>());
    let unordered = order(Ordering::Unordered);
    assert_eq!(unordered.len(), 500);
    assert!(unordered.windows(2).any(|w| w[0] > w[1]), "uniform 1-50ms latency never reordered 500 messages");
}

#[test]
fn latency_distributions_stay_in_their_bounds() {
    for latency in [
        Latency::Constant(ms(7)),
        Latency::Uniform { min: ms(2), max: ms(9) },
        Latency::Exponential { mean: ms(4), max: ms(30) },
        Latency::HeavyTail { min: ms(1), alpha: 1.2, max: ms(500) },
    ] {
        let mut world =
            probe_world(config(LinkConfig { latency: latency.clone(), ..LinkConfig::default() }), send_many(2000));
        world.run_for(Duration::from_secs(2));
        let times: Vec<u64> = received(&world, N2).iter().map(|(t, _)| t.0).collect();
        let (min, max) = match latency {
            Latency::Constant(d) => (d, d),
            Latency::Uniform { min, max } => (min, max),
            Latency::Exponential { max, .. } => (Duration::ZERO, max),
            Latency::HeavyTail { min, max, .. } => (min, max),
        };
        assert_eq!(times.len(), 2000);
        assert!(times.iter().all(|&t| t >= min.as_nanos() as u64 && t <= max.as_nanos() as u64), "{latency:?}");
        let mean = times.iter().sum::<u64>() as f64 / times.len() as f64 / 1e6;
        if let Latency::Exponential { .. } = latency {
            assert!((mean - 4.0).abs() < 0.5, "exponential mean {mean}ms");
        }
        if let Latency::HeavyTail { .. } = latency {
            assert!(times.iter().filter(|&&t| t > 20_000_000).count() > 10, "heavy tail has no tail");
        }
    }
}

#[test]
fn a_partition_drops_messages_in_flight() {
    let net = LinkConfig { latency: Latency::Constant(ms(10)), ..LinkConfig::default() };
    let mut world = probe_world(config(net), send_many(5));
    world.schedule(SimTime::from_duration(ms(5)), Fault::Partition(Shape::Isolate(Target::Node(N2))));
    world.schedule(SimTime::from_duration(ms(6)), Fault::HealPartitions);
    world.run_for(ms(100));
    assert!(received(&world, N2).is_empty(), "messages sent before the cut arrived after it");
    assert_eq!(world.stats().dropped_partition, 5);
}

#[test]
fn one_way_blocks_one_direction_only() {
    // Every node broadcasts at 10ms, after n2 lost its ability to send.
    let mut world = probe_world(config(LinkConfig::default()), |ctx| {
        ctx.set_timer(ms(10), BROADCAST);
    });
    world.apply(Fault::Partition(Shape::OneWay(Target::Node(N2))));
    world.run_for(ms(50));
    let from = |to: NodeId| -> Vec<NodeId> {
        world
            .observations()
            .iter()
            .filter(|o| o.node == to)
            .filter_map(|o| match o.obs {
                Seen::Got { from, .. } => Some(from),
                _ => None,
            })
            .collect()
    };
    let mut into_n2 = from(N2);
    into_n2.sort();
    assert_eq!(into_n2, vec![N1, N3], "n2 must still hear n1 and n3");
    assert_eq!(from(N1), vec![N3], "n1 must not hear n2");
    assert_eq!(from(N3), vec![N1], "n3 must not hear n2");
}

#[test]
fn partition_shapes_block_the_expected_pairs() {
    // For each shape, count which of the 5 servers each server still reaches.
    let reach = |shape: Shape| {
        let cfg = WorldConfig { servers: 5, ..config(LinkConfig::default()) };
        let mut world = probe_world(cfg, |ctx| {
            ctx.set_timer(ms(10), BROADCAST);
        });
        world.apply(Fault::Partition(shape));
        world.run_for(ms(50));
        let mut heard = vec![0usize; 5];
        for o in world.observations() {
            if let Seen::Got { .. } = o.obs {
                heard[o.node.index() as usize] += 1;
            }
        }
        heard.sort();
        heard
    };
    // Halves of 5: sizes 2 and 3, so nodes hear 1 or 2 others.
    assert_eq!(reach(Shape::Halves), vec![1, 1, 2, 2, 2]);
    // Majority ring of 5: each hears its two ring neighbours (itself + 2 = a majority).
    assert_eq!(reach(Shape::MajorityRing), vec![2, 2, 2, 2, 2]);
    // Bridge of 5: {a,b} + bridge + {d,e}: the bridge hears all 4, the others 2.
    assert_eq!(reach(Shape::Bridge), vec![2, 2, 2, 2, 4]);
    // Explicit groups: n1,n2 | n3 ; n4 and n5 unaffected.
    let groups = Shape::Groups(vec![vec![N1, N2], vec![N3]]);
    let mut expected = vec![3, 3, 2, 4, 4];
    expected.sort();
    assert_eq!(reach(groups), expected);
    // Isolate: the target hears nobody, the others hear 3.
    assert_eq!(reach(Shape::Isolate(Target::Node(N3))), vec![0, 3, 3, 3, 3]);
}

#[test]
fn a_crash_loses_unsynced_writes_and_keeps_synced_ones() {
    let mut world = probe_world(config(LinkConfig::default()), |ctx| {
        if ctx.disk().get::<u64>("value").is_none() {
            ctx.disk().put("value", &1u64);
            ctx.disk().sync();
            ctx.disk().put("value", &2u64);
        }
    });
    world.schedule(SimTime::from_duration(ms(10)), Fault::Crash(Target::Node(N1)));
    world.schedule(SimTime::from_duration(ms(20)), Fault::Restart(Target::Node(N1)));
    world.run_for(ms(30));
    let starts: Vec<Option<u64>> = world
        .observations()
        .iter()
        .filter(|o| o.node == N1)
        .filter_map(|o| match o.obs {
            Seen::Started { stored } => Some(stored),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![None, Some(1)]);
    assert_eq!(world.status(N1), Status::Up);
}

#[test]
fn a_crashed_node_loses_its_timers_and_receives_nothing_until_restarted() {
    let mut world =
        probe_world(config(LinkConfig { latency: Latency::Constant(ms(1)), ..LinkConfig::default() }), |ctx| {
            ctx.set_timer(ms(20), 1);
            if ctx.me() == N2 {
                ctx.set_timer(ms(15), BROADCAST);
            }
        });
    world.schedule_for(SimTime::from_duration(ms(10)), Fault::Crash(Target::Node(N1)), ms(30));
    world.run_for(ms(100));
    // n1's first timer (20ms) died with it; after the restart at 40ms it armed a new one (60ms).
    let n1_timers: Vec<u64> = fired(&world, N1).iter().map(|f| f.0 .0 / 1_000_000).collect();
    assert_eq!(n1_timers, vec![60]);
    assert!(received(&world, N1).is_empty(), "a crashed node received n2's broadcast");
    assert_eq!(world.stats().dropped_down, 1);
}

#[test]
fn the_all_target_takes_every_server_down_and_back_at_one_instant() {
    let mut world = probe_world(config(LinkConfig::default()), |ctx| {
        ctx.set_timer(ms(20), 1);
    });
    world.schedule_for(SimTime::from_duration(ms(10)), Fault::Crash(Target::All), ms(30));
    world.run_for(ms(35));
    for n in [N1, N2, N3] {
        assert_eq!(world.status(n), Status::Crashed, "{n}");
    }
    world.run_for(ms(65));
    for n in [N1, N2, N3] {
        // Restarted together at 40ms, each armed its timer again: it fired at 60ms.
        let timers: Vec<u64> = fired(&world, n).iter().map(|f| f.0 .0 / 1_000_000).collect();
        assert_eq!(timers, vec![60], "{n}");
    }
}

#[test]
fn kill_is_not_undone_by_heal() {
    let mut world = probe_world(config(LinkConfig::default()), |_| {});
    world.apply(Fault::Kill(Target::Node(N3)));
    world.apply(Fault::Crash(Target::Node(N2)));
    world.heal();
    assert_eq!(world.status(N3), Status::Killed);
    assert_eq!(world.status(N2), Status::Up);
}

#[test]
fn a_paused_node_gets_its_messages_and_timers_late() {
    let net = LinkConfig { latency: Latency::Constant(ms(1)), ..LinkConfig::default() };
    let mut world = probe_world(config(net), |ctx| {
        if ctx.me() == N2 {
            ctx.set_timer(ms(5), 7);
        }
        if ctx.me() == N1 {
            ctx.set_timer(ms(4), BROADCAST);
        }
    });
    world.schedule_for(SimTime::from_duration(ms(2)), Fault::Pause(Target::Node(N2)), ms(98));
    world.run_for(ms(200));
    // The timer due at 5ms and the ping due at 5ms both wait for the resume at 100ms.
    assert_eq!(fired(&world, N2).iter().map(|f| (f.0 .0, f.1)).collect::<Vec<_>>(), vec![(100_000_000, 7)]);
    assert_eq!(received(&world, N2), vec![(SimTime(100_000_000), BROADCAST)]);
    // Its clocks kept running while paused.
    let (_, mono) = (0, fired(&world, N2)[0].2);
    assert_eq!(mono, MonoTime(100_000_000));
    // n3 was not paused and heard n1 on time.
    assert_eq!(received(&world, N3), vec![(SimTime(5_000_000), BROADCAST)]);
}

#[test]
fn skew_drift_and_bumps_move_clocks_and_timers_exactly() {
    let cfg = WorldConfig { skew: ms(250), drift_ppm: 200.0, ..config(LinkConfig::default()) };
    let mut world = probe_world(cfg, |ctx| {
        ctx.set_timer(Duration::from_secs(10), 1);
    });
    // Initial skew and drift are drawn within bounds.
    for id in [N1, N2, N3] {
        let (wall, mono) = world.clock_readings(id);
        assert_eq!(mono, MonoTime(0));
        assert!(wall.0.abs() <= 250_000_000, "{id} skew {wall}");
    }
    // Set exact drifts, then a bump and check every reading.
    world.apply(Fault::ClockDrift { target: Target::Node(N1), ppm: 1000.0 });
    world.apply(Fault::ClockDrift { target: Target::Node(N2), ppm: -1000.0 });
    world.apply(Fault::ClockReset(Target::Nodes(vec![N1, N2])));
    world.run_for(Duration::from_secs(20));
    // n1 runs 0.1% fast: its 10s timer fires at 10/1.001 s of true time.
    let f1 = fired(&world, N1)[0];
    assert_eq!(f1.0, SimTime(9_990_009_991));
    assert_eq!(f1.2, MonoTime(10_000_000_000));
    // n2 runs 0.1% slow: later.
    let f2 = fired(&world, N2)[0];
    assert_eq!(f2.0, SimTime(10_010_010_011));
    // After the reset at 0, wall == mono for both.
    assert_eq!(f1.3, WallTime(10_000_000_000));
    let before = world.clock_readings(N3);
    world.apply(Fault::ClockBump { target: Target::Node(N3), delta_ns: -5_000_000_000 });
    let after = world.clock_readings(N3);
    assert_eq!(after.0 .0, before.0 .0 - 5_000_000_000, "bump moves the wall clock");
    assert_eq!(after.1, before.1, "bump leaves the monotonic clock alone");
}

#[test]
fn a_drift_change_retimes_armed_timers() {
    let mut world = probe_world(config(LinkConfig::default()), |ctx| {
        ctx.set_timer(Duration::from_secs(10), 1);
    });
    world.run_until(SimTime::from_duration(Duration::from_secs(5)));
    world.apply(Fault::ClockDrift { target: Target::Node(N1), ppm: 100_000.0 });
    world.run_for(Duration::from_secs(10));
    // 5s at normal speed, then 5 more mono seconds at 1.1x: 5/1.1 s of true time.
    assert_eq!(fired(&world, N1)[0].0, SimTime(5_000_000_000 + 4_545_454_546));
    assert_eq!(fired(&world, N2)[0].0, SimTime(10_000_000_000));
}

#[test]
fn a_strobe_oscillates_the_wall_clock_then_stops() {
    let mut world = probe_world(config(LinkConfig::default()), |_| {});
    world.apply(Fault::ClockStrobe {
        target: Target::Node(N1),
        delta_ns: 1_000_000_000,
        period: ms(10),
        duration: ms(100),
    });
    let mut readings = Vec::new();
    for _ in 0..12 {
        readings.push(world.clock_readings(N1).0 .0 - world.now().0 as i64);
        world.run_for(ms(10));
    }
    assert_eq!(&readings[..4], &[1_000_000_000, 0, 1_000_000_000, 0]);
    assert_eq!(&readings[10..], &[0, 0]);
}

#[test]
fn the_same_seed_gives_the_same_trace_and_different_seeds_differ() {
    let run = |seed| {
        let mut w = ring_world(&RingConfig {
            seed,
            nodes: 5,
            tokens: 50,
            loss: 0.01,
            duplicate: 0.01,
            ..RingConfig::default()
        });
        w.run_for(Duration::from_secs(5));
        w.trace_hash()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

static HIDDEN: AtomicU64 = AtomicU64::new(0);

/// A node with hidden state shared across runs: the classic determinism leak.
struct Leaky;
impl Node for Leaky {
    type Msg = Ping;
    type Timer = u32;
    type Obs = Seen;
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(ms(1), 0);
    }
    fn on_message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: Ping) {}
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, n: u32) {
        if n < 20 {
            let extra = if n == 10 { HIDDEN.fetch_add(1, AtomicOrdering::SeqCst) } else { 0 };
            ctx.send(N2, Ping(n + extra as u32 * 100));
            ctx.set_timer(ms(1), n + 1);
        }
    }
}

#[test]
fn the_determinism_check_names_the_first_differing_event() {
    let run = |keep_trace: bool| {
        let cfg = WorldConfig {
            servers: 2,
            keep_trace,
            ..config(LinkConfig { latency: Latency::Constant(ms(1)), ..LinkConfig::default() })
        };
        let mut w = World::new(cfg, Box::new(|_, _| Leaky));
        w.run_for(ms(100));
        TracedRun { hash: w.trace_hash(), entries: w.trace().entries().map(<[_]>::to_vec) }
    };
    let Err(Outcome::Nondeterminism { event, first, second }) = determinism::check(run) else {
        panic!("a static counter went unnoticed");
    };
    assert!(first.contains("Ping(") && second.contains("Ping("), "{first} / {second}");
    assert_ne!(first, second);
    assert!(event > 0);
    // A deterministic system passes.
    let ring = |keep_trace: bool| {
        let mut w = ring_world(&RingConfig { tokens: 10, ..RingConfig::default() });
        w.run_for(ms(500));
        let _ = keep_trace;
        TracedRun { hash: w.trace_hash(), entries: None }
    };
    assert!(determinism::check(ring).is_ok());
}

#[test]
fn a_node_panic_is_a_crash_outcome_with_the_event() {
    struct Bomb;
    impl Node for Bomb {
        type Msg = Ping;
        type Timer = u32;
        type Obs = Seen;
        fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
            ctx.set_timer(ms(3), 0);
        }
        fn on_message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: Ping) {}
        fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: u32) {
            panic!("term went backwards");
        }
    }
    let mut w = World::new(config(LinkConfig::default()), Box::new(|_, _| Bomb));
    let outcome = w.run_phases(ms(10), ms(10), |_| true);
    let Outcome::Crash { node, time, message, .. } = outcome else { panic!("expected a crash, got {outcome}") };
    assert_eq!((node, time, message.as_str()), (Some(N1), SimTime(3_000_000), "term went backwards"));
}

#[test]
fn bounds_end_a_run_as_liveness_never_a_hang() {
    let mut w = ring_world(&RingConfig { tokens: 10, ..RingConfig::default() });
    // Progress never comes: the liveness phase gives up at its bound.
    let outcome = w.run_phases(ms(100), Duration::from_secs(1), |_| false);
    assert!(matches!(outcome, Outcome::Liveness { .. }), "{outcome}");
    // The event bound stops a run that would otherwise go on for an hour of virtual time.
    let mut bounded = ring_world(&RingConfig { tokens: 10, ..RingConfig::default() });
    bounded.set_max_events(500);
    let outcome = bounded.run_phases(Duration::from_secs(3600), ms(1), |_| true);
    assert_eq!(outcome, Outcome::Liveness { reason: "the event limit of 500 was reached".into() });
    assert_eq!(bounded.events(), 500);
    // So does the virtual-time bound.
    let mut bounded = ring_world(&RingConfig { tokens: 10, ..RingConfig::default() });
    bounded.set_max_time(Duration::from_secs(2));
    let outcome = bounded.run_phases(Duration::from_secs(3600), ms(1), |_| true);
    assert_eq!(outcome, Outcome::Liveness { reason: "the virtual-time limit of 2.000000s was reached".into() });
}

#[test]
fn an_online_invariant_stops_the_run_at_the_exact_event() {
    let mut world =
        probe_world(config(LinkConfig { latency: Latency::Constant(ms(3)), ..LinkConfig::default() }), send_many(10));
    world.add_invariant(Box::new(online("n2 hears at most 4 pings", {
        let mut count = 0;
        move |o: &harness::Observed<Seen>| {
            if let Seen::Got { .. } = o.obs {
                count += 1;
                if count > 4 {
                    return Err(format!("n2 heard ping number {count}"));
                }
            }
            Ok(())
        }
    })));
    let outcome = world.run_phases(ms(100), ms(10), |_| true);
    let Outcome::Violation(v) = outcome else { panic!("expected a violation, got {outcome}") };
    assert_eq!(v.invariant, "n2 hears at most 4 pings");
    assert_eq!(v.time, Some(SimTime(3_000_000)));
    assert_eq!(v.node, Some(N2));
    assert_eq!(received(&world, N2).len(), 5, "the run stopped at the violating event");
}

#[test]
fn the_leader_target_follows_observations() {
    #[derive(Clone, Debug, Hash, Serialize)]
    struct Elected;
    impl Observation for Elected {
        fn leadership(&self) -> Option<harness::Leadership> {
            Some(harness::Leadership::Elected)
        }
    }
    struct Claimant;
    impl Node for Claimant {
        type Msg = Ping;
        type Timer = u32;
        type Obs = Elected;
        fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
            if ctx.me() == N3 {
                ctx.observe(Elected);
            }
        }
        fn on_message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: Ping) {}
        fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: u32) {}
    }
    let mut world = World::new(config(LinkConfig::default()), Box::new(|_, _| Claimant));
    assert_eq!(world.view().leader(), Some(N3));
    world.apply(Fault::Pause(Target::Leader));
    assert!(world.is_paused(N3));
    assert_eq!(world.applied_faults()[0].nodes, vec![N3]);
}

/// The ring example is built beside the tests (`cargo test` builds examples):
/// two separate processes with one seed print one trace hash.
#[test]
fn the_ring_example_replays_a_seed_in_a_separate_process() {
    let exe = std::env::current_exe().expect("test binary path");
    let ring = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("examples").join("ring");
    let run = |seed: &str| {
        let out = std::process::Command::new(&ring)
            .args([
                "--seed",
                seed,
                "--nodes",
                "5",
                "--tokens",
                "100",
                "--duration-ms",
                "2000",
                "--loss",
                "0.01",
                "--duplicate",
                "0.01",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", ring.display()));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        let keys: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap_or("")).collect();
        assert_eq!(keys, ["trace-hash", "messages", "events", "messages-per-second"], "{text}");
        lines[0].to_owned()
    };
    assert_eq!(run("9"), run("9"));
    assert_ne!(run("9"), run("10"));
    let bad = std::process::Command::new(&ring).args(["--loss", "2"]).output().expect("runs");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn isolate_from_peers_cuts_servers_but_not_clients() {
    let cfg = WorldConfig { clients: 1, ..config(LinkConfig::default()) };
    let mut world = probe_world(cfg, |ctx| {
        ctx.set_timer(ms(10), BROADCAST);
    });
    world.apply(Fault::Partition(Shape::IsolateFromPeers(Target::Node(N1))));
    world.run_for(ms(50));
    let heard = |at: NodeId| -> Vec<NodeId> {
        let mut from: Vec<NodeId> = world
            .observations()
            .iter()
            .filter(|o| o.node == at)
            .filter_map(|o| match o.obs {
                Seen::Got { from, .. } => Some(from),
                _ => None,
            })
            .collect();
        from.sort();
        from
    };
    // Peers of a client are the servers: c1 still reaches n1, and n1 hears c1.
    assert_eq!(heard(N1), vec![NodeId::client(0)]);
    assert_eq!(heard(N2), vec![N3, NodeId::client(0)]);
}

#[test]
fn a_drift_undo_gives_each_node_its_own_earlier_drift() {
    let cfg = WorldConfig { drift_ppm: 200.0, ..config(LinkConfig::default()) };
    let mut world = probe_world(cfg, |_| {});
    let before: Vec<f64> = [N1, N2, N3].iter().map(|&n| world.drift_ppm(n)).collect();
    assert!(before[0] != before[1], "the seed draws different drifts");
    world.schedule_for(
        SimTime::from_duration(ms(10)),
        Fault::ClockDrift { target: Target::Nodes(vec![N1, N2, N3]), ppm: 5_000.0 },
        ms(50),
    );
    world.run_for(ms(20));
    assert!([N1, N2, N3].iter().all(|&n| world.drift_ppm(n) == 5_000.0));
    world.run_for(ms(100));
    let after: Vec<f64> = [N1, N2, N3].iter().map(|&n| world.drift_ppm(n)).collect();
    assert_eq!(after, before);
}

#[test]
fn a_crash_undo_restarts_only_what_its_own_crash_took_down() {
    let mut world = probe_world(config(LinkConfig::default()), |_| {});
    // A: n1 down from 10 to 30 ms. B: n1 and n2 from 20 to 100 ms; n1 is
    // already down, so B takes down only n2. Then C: n1 again from 40 to 200.
    world.schedule_for(SimTime::from_duration(ms(10)), Fault::Crash(Target::Node(N1)), ms(20));
    world.schedule_for(SimTime::from_duration(ms(20)), Fault::Crash(Target::Nodes(vec![N1, N2])), ms(80));
    world.schedule_for(SimTime::from_duration(ms(40)), Fault::Crash(Target::Node(N1)), ms(160));
    world.run_until(SimTime::from_duration(ms(35)));
    assert_eq!((world.status(N1), world.status(N2)), (Status::Up, Status::Crashed), "A ended n1's outage");
    world.run_until(SimTime::from_duration(ms(150)));
    assert_eq!(world.status(N2), Status::Up, "B restarted n2");
    assert_eq!(world.status(N1), Status::Crashed, "B did not cut C's window on n1 short");
    world.run_until(SimTime::from_duration(ms(250)));
    assert_eq!(world.status(N1), Status::Up);
}

#[test]
fn a_pause_undo_resumes_only_what_its_own_pause_stopped() {
    let mut world = probe_world(config(LinkConfig::default()), |_| {});
    world.schedule_for(SimTime::from_duration(ms(10)), Fault::Pause(Target::Node(N1)), ms(100));
    world.schedule_for(SimTime::from_duration(ms(20)), Fault::Pause(Target::Nodes(vec![N1, N2])), ms(10));
    world.run_until(SimTime::from_duration(ms(50)));
    assert!(world.is_paused(N1), "the short pause did not resume n1, which the long one paused");
    assert!(!world.is_paused(N2));
    world.run_until(SimTime::from_duration(ms(150)));
    assert!(!world.is_paused(N1));
}

#[test]
fn a_storm_undo_never_brings_back_an_earlier_storm() {
    let base = LinkConfig::default();
    let mut world = probe_world(config(base.clone()), |_| {});
    let a = LinkConfig { loss: 0.5, ..base.clone() };
    let b = LinkConfig { duplicate: 0.5, ..base.clone() };
    // A from 10 to 30 ms; B from 20 to 60 ms.
    world.schedule_for(SimTime::from_duration(ms(10)), Fault::Network(a), ms(20));
    world.schedule_for(SimTime::from_duration(ms(20)), Fault::Network(b.clone()), ms(40));
    world.run_until(SimTime::from_duration(ms(40)));
    assert_eq!(world.network(), &b, "A's end leaves B on");
    world.run_until(SimTime::from_duration(ms(70)));
    assert_eq!(world.network(), &base, "B's end goes back to the scenario's network, not to A");
}

#[test]
fn a_crash_in_a_handler_loses_writes_it_never_synced_but_sends_what_came_first() {
    // A node whose one handler writes, replies, then syncs: three effects.
    struct Eager;
    impl Node for Eager {
        type Msg = Ping;
        type Timer = u32;
        type Obs = Seen;
        fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
            let stored = ctx.disk().get("value");
            ctx.observe(Seen::Started { stored });
            if ctx.me() == N1 && stored.is_none() {
                ctx.set_timer(ms(5), 1);
            }
        }
        fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Ping) {
            ctx.observe(Seen::Got { from, seq: msg.0 });
        }
        fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: u32) {
            ctx.disk().put("value", &7u64);
            ctx.send(N2, Ping(7));
            ctx.disk().sync();
        }
    }
    let net = LinkConfig { latency: Latency::Constant(ms(1)), ..LinkConfig::default() };
    let outcome = |keep: u32| {
        let mut world = World::new(config(net.clone()), Box::new(|_, _| Eager));
        world.schedule_for(
            SimTime::from_duration(ms(1)),
            Fault::CrashInHandler { target: Target::Node(N1), effects: Some(keep) },
            ms(100),
        );
        world.run_for(ms(50));
        assert_eq!(world.status(N1), Status::Crashed, "down until 105 ms");
        let got = world.observations().iter().any(|o| matches!(o.obs, Seen::Got { seq: 7, .. }));
        (got, world.disk(N1).get::<u64>("value"))
    };
    assert_eq!(outcome(1), (false, None), "the write was volatile and is lost");
    assert_eq!(outcome(2), (true, None), "the reply went out, the sync never happened");
    assert_eq!(outcome(3), (true, Some(7)), "all three: durable");
}

#[test]
fn overlapping_drift_changes_end_in_any_order_without_leaving_one_behind() {
    let mut world = probe_world(config(LinkConfig::default()), |_| {});
    let base = world.drift_ppm(N1);
    let drift = |ppm| Fault::ClockDrift { target: Target::Node(N1), ppm };
    // A: +150 ppm from 10 to 50 ms; B: -150 ppm from 20 to 80 ms.
    world.schedule_for(SimTime::from_duration(ms(10)), drift(150.0), ms(40));
    world.schedule_for(SimTime::from_duration(ms(20)), drift(-150.0), ms(60));
    world.run_until(SimTime::from_duration(ms(60)));
    assert_eq!(world.drift_ppm(N1), -150.0, "A's end leaves B on");
    world.run_until(SimTime::from_duration(ms(90)));
    assert_eq!(world.drift_ppm(N1), base, "B's end goes back to the start, not to A");
}

#[test]
fn scenario_files_may_not_crash_clients() {
    let text = "title = \"t\"\nsystem = \"s\"\nclients = 1\nduration = \"5s\"\n[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"c1\"\nfor = \"1s\"\n";
    struct One;
    impl harness::scenario::Catalog for One {
        fn systems(&self) -> Vec<&'static str> {
            vec!["s"]
        }
        fn variants(&self, _: &str) -> Vec<&'static str> {
            vec!["correct"]
        }
        fn checks(&self, _: &str, _: &str, _: &toml::Table) -> Vec<String> {
            Vec::new()
        }
        fn check_config(&self, _: &str, _: &str) -> Result<(), (Option<std::ops::Range<usize>>, String)> {
            Ok(())
        }
        fn check_config_table(&self, _: &str, _: &toml::Table) -> Result<(), String> {
            Ok(())
        }
    }
    let e = harness::scenario::Scenario::parse("f.toml", text, &One).unwrap_err().to_string();
    assert!(e.contains("f.toml:8:8") && e.contains("c1 is a client"), "{e}");
    let paused = text.replace("kind = \"crash\"", "kind = \"pause\"");
    assert!(harness::scenario::Scenario::parse("f.toml", &paused, &One).is_ok());
}

#[test]
fn a_send_to_a_node_that_does_not_exist_is_that_nodes_crash() {
    // The send is an effect applied after the handler returns; its panic
    // is still this node's crash, with the time and event.
    let mut world = probe_world(config(LinkConfig::default()), |ctx| {
        if ctx.me() == N2 {
            ctx.send(NodeId::server(7), Ping(1));
        }
    });
    world.run_for(ms(10));
    match world.stop_outcome() {
        Some(Outcome::Crash { node: Some(n), message, .. }) => {
            assert_eq!(n, N2);
            assert!(message.contains("n8 is not a node of this world"), "{message}");
        }
        other => panic!("expected n2's crash, got {other:?}"),
    }
}
