//! The nemesis: random faults every so often, drawn per seed (swarm testing).

use std::time::Duration;

use super::*;
use crate::fault::{Fault, Shape, Target};
use crate::net::LinkConfig;
use crate::rng::{Rng, Stream};
use crate::time::nanos;

impl Nemesis {
    /// The faults this nemesis applies in one seed's run. Swarm testing: the
    /// seed first decides which kinds are on and how often each comes up,
    /// so different seeds explore very different fault mixes.
    pub fn draw(&self, seed: u64, run: Duration) -> Vec<TimedFault> {
        let mut rng = Rng::new(seed, Stream::Nemesis);
        let mut weights: Vec<(String, u64)> =
            self.kinds.iter().map(|k| (k.clone(), if rng.chance(0.6) { rng.between(1, 4) } else { 0 })).collect();
        if weights.iter().all(|(_, w)| *w == 0) {
            let i = rng.below(weights.len() as u64) as usize;
            weights[i].1 = 1;
        }
        let total: u64 = weights.iter().map(|(_, w)| w).sum();
        let every = nanos(self.every);
        let mut out = Vec::new();
        let mut t = rng.between(every / 2, every + every / 2);
        while t < nanos(run) {
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
            let at = Duration::from_nanos(t);
            let max_len = nanos(run) - t;
            let len = Duration::from_nanos(rng.between(every / 4, every * 2).min(max_len).max(1));
            out.push(draw_fault(&mut rng, kind, at, len));
            t += rng.between(every / 2, every + every / 2).max(1);
        }
        out
    }
}

pub(super) fn draw_target(rng: &mut Rng) -> Target {
    match rng.below(4) {
        0 => Target::Leader,
        1 => Target::Minority,
        _ => Target::Random,
    }
}

pub(super) fn draw_fault(rng: &mut Rng, kind: &str, at: Duration, len: Duration) -> TimedFault {
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
            let delta_ns = rng.between(100_000_000, 5_000_000_000) as i64 * if rng.chance(0.5) { -1 } else { 1 };
            timed(Fault::ClockBump { target: draw_target(rng), delta_ns }, Some(len))
        }
        "clock-strobe" => {
            let delta_ns = rng.between(10_000_000, 2_000_000_000) as i64;
            let period = Duration::from_millis(rng.between(5, 500));
            timed(Fault::ClockStrobe { target: draw_target(rng), delta_ns, period, duration: len }, None)
        }
        "clock-drift" => {
            let ppm = rng.between(1, 200) as f64 * if rng.chance(0.5) { -1.0 } else { 1.0 };
            timed(Fault::ClockDrift { target: draw_target(rng), ppm }, Some(len))
        }
        "clock-reset" => timed(Fault::ClockReset(draw_target(rng)), None),
        "network" => {
            let config = LinkConfig { loss: rng.between(5, 50) as f64 / 100.0, ..LinkConfig::default() };
            timed(Fault::Network(config), Some(len))
        }
        other => unreachable!("the nemesis kinds are validated, and {other} is not one the nemesis draws"),
    }
}
