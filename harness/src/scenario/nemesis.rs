//! The nemesis: random faults every so often, drawn per seed over the whole
//! fault space (swarm testing, after Groce et al. and FoundationDB).
//!
//! Each seed first decides which kinds are on at all and how often each
//! comes up, and how busy the run is, so different seeds explore very
//! different fault mixes. Then every fault's length is log-uniform from 1 ms
//! to tens of seconds: crashes and pauses shorter than an election timeout
//! are as common as ones that outlast it, which is where restarts race the
//! protocol. Network faults draw loss storms, duplication up to 30% and
//! heavy latency tails; clock drift goes up to the scenario's bound.

use std::time::Duration;

use super::*;
use crate::fault::{Fault, Shape, Target};
use crate::net::{Latency, LinkConfig};
use crate::rng::{Rng, Stream};
use crate::time::nanos;
use crate::trigger::{DurationRange, Trigger, TriggerAction};

/// The longest fault the nemesis draws (the run's end cuts it shorter).
const LONGEST_FAULT: Duration = Duration::from_secs(30);
const MS: u64 = 1_000_000;

impl Nemesis {
    /// The faults this nemesis applies in one seed's run, and the triggers
    /// (reactive faults) it arms.
    pub fn draw(&self, seed: u64, run: Duration) -> (Vec<TimedFault>, Vec<Trigger>) {
        let mut rng = Rng::new(seed, Stream::Nemesis);
        let mut weights: Vec<(String, u64)> =
            self.kinds.iter().map(|k| (k.clone(), if rng.chance(0.6) { rng.between(1, 4) } else { 0 })).collect();
        if weights.iter().all(|(_, w)| *w == 0) {
            let i = rng.below(weights.len() as u64) as usize;
            weights[i].1 = 1;
        }
        let total: u64 = weights.iter().map(|(_, w)| w).sum();
        // How busy this seed is: the mean gap between faults, from a quarter
        // of `every` to twice it.
        let every = nanos(self.every);
        let gap = rng.log_uniform((every / 4).max(1), every.saturating_mul(2).max(1));
        let end = nanos(run);
        let mut out = Vec::new();
        let mut t = rng.between(gap / 2, gap + gap / 2);
        // Parsing bounds the count (`limits::MAX_PLANNED_FAULTS`); the
        // cap keeps a plan built in code bounded too.
        while t < end && out.len() < 2 * super::limits::MAX_PLANNED_FAULTS as usize {
            let mut pick = rng.below(total);
            let kind = weights.iter().find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            });
            let kind = kind.map_or("pause", |(k, _)| k.as_str());
            let longest = (end - t).min(nanos(LONGEST_FAULT)).max(1);
            let len = Duration::from_nanos(rng.log_uniform(MS.min(longest), longest));
            out.push(self.draw_fault(&mut rng, kind, Duration::from_nanos(t), len));
            t = t.saturating_add(rng.between(gap / 2, gap + gap / 2).max(1));
        }
        let triggers = self.draw_triggers(&mut rng, &weights);
        (out, triggers)
    }

    /// On three seeds in four, one to three triggers on events the system reports,
    /// with actions among this seed's enabled kinds: a crash, pause or
    /// isolation within milliseconds of an election or a vote.
    fn draw_triggers(&self, rng: &mut Rng, weights: &[(String, u64)]) -> Vec<Trigger> {
        let actions: Vec<TriggerAction> = TriggerAction::NAMES
            .iter()
            .filter(|name| weights.iter().any(|(k, w)| k == *name && *w > 0))
            .filter_map(|name| TriggerAction::parse(name))
            .collect();
        if self.events.is_empty() || actions.is_empty() || !rng.chance(0.75) {
            return Vec::new();
        }
        (0..rng.between(1, 3))
            .map(|_| {
                let on = self.events[rng.below(self.events.len() as u64) as usize].clone();
                let action = actions[rng.below(actions.len() as u64) as usize];
                Trigger {
                    on,
                    probability: rng.log_uniform(50, 1000) as f64 / 1000.0,
                    after: DurationRange {
                        min: Duration::ZERO,
                        max: Duration::from_nanos(rng.log_uniform(MS, 50 * MS)),
                    },
                    action,
                    target: if rng.chance(0.7) { None } else { Some(draw_target(rng)) },
                    duration: Some(DurationRange {
                        min: Duration::from_millis(1),
                        max: Duration::from_nanos(rng.log_uniform(10 * MS, 5_000 * MS)),
                    }),
                    limit: rng.between(1, 20) as u32,
                }
            })
            .collect()
    }

    fn draw_fault(&self, rng: &mut Rng, kind: &str, at: Duration, len: Duration) -> TimedFault {
        let timed = |fault, duration| TimedFault { at, fault, duration };
        match kind {
            "partition" => {
                let shape = match rng.below(7) {
                    0 => Shape::Isolate(Target::Leader),
                    1 => Shape::Isolate(Target::Random),
                    2 => Shape::Halves,
                    3 => Shape::MajorityRing,
                    4 => Shape::Bridge,
                    5 => Shape::IsolateFromPeers(Target::Leader),
                    _ => Shape::OneWay(Target::Random),
                };
                timed(Fault::Partition(shape), Some(len))
            }
            "crash" => timed(Fault::Crash(draw_target(rng)), Some(len)),
            "crash-in-handler" => timed(Fault::CrashInHandler { target: draw_target(rng), effects: None }, Some(len)),
            "kill" => timed(Fault::Kill(Target::Random), None),
            "pause" => timed(Fault::Pause(draw_target(rng)), Some(len)),
            "clock-bump" => {
                let delta_ns = rng.log_uniform(MS, 10_000 * MS) as i64 * if rng.chance(0.5) { -1 } else { 1 };
                timed(Fault::ClockBump { target: draw_target(rng), delta_ns }, Some(len))
            }
            "clock-strobe" => {
                let delta_ns = rng.log_uniform(MS, 2_000 * MS) as i64;
                let period = Duration::from_nanos(rng.log_uniform(MS, 500 * MS));
                timed(Fault::ClockStrobe { target: draw_target(rng), delta_ns, period, duration: len }, None)
            }
            "clock-drift" => {
                // Whole ppm, log-uniform up to the bound: mostly small, sometimes the most the system must survive.
                let bound = self.max_drift_ppm.max(1.0) as u64;
                let ppm = rng.log_uniform(1, bound) as f64 * if rng.chance(0.5) { -1.0 } else { 1.0 };
                timed(Fault::ClockDrift { target: draw_target(rng), ppm }, Some(len))
            }
            "clock-reset" => timed(Fault::ClockReset(draw_target(rng)), None),
            "network" => timed(Fault::Network(self.draw_network(rng)), Some(len)),
            other => unreachable!("the nemesis kinds are validated, and {other} is not one the nemesis draws"),
        }
    }

    /// A network storm: some of heavy loss, duplication, a heavy latency
    /// tail or uniformly slow links, over the scenario's own network.
    fn draw_network(&self, rng: &mut Rng) -> LinkConfig {
        let mut config = self.network.clone();
        let mut changed = false;
        while !changed {
            if rng.chance(0.5) {
                config.loss = rng.log_uniform(10, 600) as f64 / 1000.0;
                changed = true;
            }
            if rng.chance(0.4) {
                config.duplicate = rng.log_uniform(10, 300) as f64 / 1000.0;
                changed = true;
            }
            if rng.chance(0.5) {
                config.latency = if rng.chance(0.6) {
                    Latency::HeavyTail {
                        min: Duration::from_millis(1),
                        alpha: rng.between(11, 25) as f64 / 10.0,
                        max: Duration::from_nanos(rng.log_uniform(50 * MS, 3_000 * MS)),
                    }
                } else {
                    let max = rng.log_uniform(5 * MS, 500 * MS);
                    Latency::Uniform { min: Duration::from_millis(1), max: Duration::from_nanos(max) }
                };
                changed = true;
            }
        }
        config
    }
}

/// Mostly one node (the leader, or any); sometimes a minority; now and then
/// a majority at once (a rack losing power), which restarts them together.
pub(super) fn draw_target(rng: &mut Rng) -> Target {
    match rng.below(16) {
        0..=3 => Target::Leader,
        4..=7 => Target::Minority,
        8 | 9 => Target::Majority,
        // Rare, but the only way every node restarts (or freezes) at one
        // instant: what a protocol without randomized timers cannot survive.
        10 => Target::All,
        _ => Target::Random,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Ordering;

    #[test]
    fn draws_cover_the_fault_space_within_its_bounds() {
        let network = LinkConfig { ordering: Ordering::Fifo, ..LinkConfig::default() };
        let kinds = ["crash", "clock-drift", "network"].map(String::from).to_vec();
        let nemesis = Nemesis { kinds, every: Duration::from_secs(1), max_drift_ppm: 5_000.0, network, events: vec![] };
        let run = Duration::from_secs(60);
        let (mut short, mut long, mut no_crash_seeds, mut heavy_dup) = (0, 0, 0, 0);
        let mut largest_drift: f64 = 0.0;
        for seed in 0..200 {
            let (faults, triggers) = nemesis.draw(seed, run);
            assert!(triggers.is_empty(), "no events, no triggers");
            no_crash_seeds += usize::from(!faults.iter().any(|f| matches!(f.fault, Fault::Crash(_))));
            for f in &faults {
                let len = f.duration.expect("these kinds are undone");
                assert!(f.at + len <= run, "{f:?} outlasts the run");
                match &f.fault {
                    Fault::Crash(_) => {
                        short += usize::from(len < Duration::from_millis(10));
                        long += usize::from(len > Duration::from_secs(5));
                    }
                    Fault::ClockDrift { ppm, .. } => {
                        assert!(ppm.abs() <= 5_000.0, "{ppm}");
                        largest_drift = largest_drift.max(ppm.abs());
                    }
                    Fault::Network(c) => {
                        assert_eq!(c.ordering, Ordering::Fifo, "the scenario's ordering is kept");
                        assert!(c.duplicate <= 0.3 && c.loss <= 0.6, "{c:?}");
                        heavy_dup += usize::from(c.duplicate >= 0.2);
                    }
                    other => panic!("not a kind it was given: {other:?}"),
                }
            }
        }
        // Crashes shorter than any election timeout, and ones that outlast many.
        assert!(short > 50 && long > 50, "{short} short, {long} long crashes");
        // Swarm: some seeds leave a kind out entirely.
        assert!(no_crash_seeds > 20, "{no_crash_seeds} seeds without crashes");
        assert!(largest_drift > 2_500.0, "drift reaches toward its bound: {largest_drift}");
        assert!(heavy_dup > 10, "{heavy_dup} storms with 20-30% duplication");
    }
}
