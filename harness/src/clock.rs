//! Per-node clocks. A node's monotonic clock runs at `1 + drift` times true
//! speed; its wall clock is the monotonic clock plus an offset (initial skew,
//! bumps, resets) plus a square-wave strobe while one is active.
//!
//! All arithmetic is integer (drift in parts per billion), so a clock reads
//! the same on every machine.

use std::time::Duration;

use crate::node::NodeId;
use crate::rng::{Rng, Stream};
use crate::time::{nanos, MonoTime, SimTime, WallTime};

/// Drift is bounded so that a clock always moves forward.
pub const MAX_DRIFT_PPM: f64 = 100_000.0;

#[derive(Clone, Debug)]
pub struct Clock {
    /// The monotonic clock is linear from (base_true, base_mono) with slope 1 + drift.
    base_true: u64,
    base_mono: u64,
    drift_ppb: i64,
    offset: i64,
    strobe: Option<Strobe>,
}

/// Each node's clock as a run's seed draws it: an offset within
/// +-`skew` and a drift within +-`drift_ppm`, node by node in order.
pub fn drawn(seed: u64, nodes: &[NodeId], skew: Duration, drift_ppm: f64) -> Vec<Clock> {
    let mut rng = Rng::new(seed, Stream::Clocks);
    let skew = nanos(skew).min(i64::MAX as u64 / 4) as i64;
    nodes
        .iter()
        .map(|_| {
            let offset = if skew > 0 { rng.between(0, 2 * skew as u64) as i64 - skew } else { 0 };
            let drift = if drift_ppm > 0.0 { (rng.unit() * 2.0 - 1.0) * drift_ppm } else { 0.0 };
            Clock::new(offset, drift)
        })
        .collect()
}

/// How far ahead a clock reading is projected to true time: a million
/// seconds, beyond any run.
pub const PROJECTION_HORIZON_NS: u64 = 1_000_000 * 1_000_000_000;

#[derive(Clone, Copy, Debug)]
struct Strobe {
    start: u64,
    end: u64,
    delta: i64,
    period: u64,
}

impl Clock {
    /// A clock whose wall reading starts `offset_ns` away from true time.
    pub fn new(offset_ns: i64, drift_ppm: f64) -> Self {
        let mut c = Clock { base_true: 0, base_mono: 0, drift_ppb: 0, offset: offset_ns, strobe: None };
        c.set_drift(SimTime::ZERO, drift_ppm);
        c
    }

    pub fn mono(&self, t: SimTime) -> MonoTime {
        debug_assert!(t.0 >= self.base_true, "clock read before its last rebase");
        let dt = t.0 - self.base_true;
        // The drift term in 64 bits when it fits (every realistic run),
        // else in 128: the same value either way, the first much cheaper.
        let drift = i64::try_from(dt).ok().and_then(|dt| dt.checked_mul(self.drift_ppb)).map_or_else(
            || (i128::from(dt) * i128::from(self.drift_ppb) / 1_000_000_000) as i64,
            |p| p / 1_000_000_000,
        );
        MonoTime((i128::from(self.base_mono) + i128::from(dt) + i128::from(drift)) as u64)
    }

    pub fn wall(&self, t: SimTime) -> WallTime {
        self.wall_from_mono(t, self.mono(t))
    }

    /// Both readings at `t`, computing the monotonic one once.
    pub fn readings(&self, t: SimTime) -> (MonoTime, WallTime) {
        let mono = self.mono(t);
        (mono, self.wall_from_mono(t, mono))
    }

    fn wall_from_mono(&self, t: SimTime, mono: MonoTime) -> WallTime {
        let mut w = mono.0 as i64 + self.offset;
        if let Some(s) = self.strobe {
            if t.0 >= s.start && t.0 < s.end && ((t.0 - s.start) / s.period) % 2 == 0 {
                w += s.delta;
            }
        }
        WallTime(w)
    }

    pub fn drift_ppm(&self) -> f64 {
        self.drift_ppb as f64 / 1000.0
    }

    /// Changes the drift from true time `t` on; the monotonic reading at `t` is kept.
    pub fn set_drift(&mut self, t: SimTime, ppm: f64) {
        assert!(ppm.abs() <= MAX_DRIFT_PPM, "drift of {ppm} ppm is beyond the supported {MAX_DRIFT_PPM}");
        let m = self.mono(t);
        self.base_true = t.0;
        self.base_mono = m.0;
        self.drift_ppb = (ppm * 1000.0).round() as i64;
    }

    /// Jumps the wall clock by `delta_ns` (either sign).
    pub fn bump(&mut self, delta_ns: i64) {
        self.offset = self.offset.saturating_add(delta_ns);
    }

    /// Sets the wall clock to true time (an NTP step) and stops any strobe.
    pub fn reset(&mut self, t: SimTime) {
        self.offset = t.0 as i64 - self.mono(t).0 as i64;
        self.strobe = None;
    }

    /// Oscillates the wall clock by `delta_ns` every `period_ns` for `duration_ns` from `t`.
    pub fn strobe(&mut self, t: SimTime, delta_ns: i64, period_ns: u64, duration_ns: u64) {
        assert!(period_ns > 0, "a strobe needs a positive period");
        self.strobe =
            Some(Strobe { start: t.0, end: t.0.saturating_add(duration_ns), delta: delta_ns, period: period_ns });
    }

    /// The true time at which the wall clock will read `w` if nothing but
    /// drift moves it from `now` on (no bump, reset or strobe); `None` if
    /// that is past [`PROJECTION_HORIZON_NS`].
    pub fn projected_wall(&self, now: SimTime, w: WallTime) -> Option<SimTime> {
        let mono = (i128::from(w.0) - i128::from(self.offset)).max(0);
        self.projected_mono(now, MonoTime(u64::try_from(mono).unwrap_or(u64::MAX)))
    }

    /// [`Clock::true_time_of`], or `None` if that is past
    /// [`PROJECTION_HORIZON_NS`] from `now`: a deadline a node computed
    /// from any value must not make the search overflow.
    pub fn projected_mono(&self, now: SimTime, m: MonoTime) -> Option<SimTime> {
        if m.0.saturating_sub(self.mono(now).0) > PROJECTION_HORIZON_NS {
            return None;
        }
        Some(self.true_time_of(now, m))
    }

    /// The earliest true time, not before `now`, at which the monotonic clock reads at least `m`.
    pub fn true_time_of(&self, now: SimTime, m: MonoTime) -> SimTime {
        if self.mono(now) >= m {
            return now;
        }
        let dm = i128::from(m.0 - self.base_mono);
        let rate = 1_000_000_000 + i128::from(self.drift_ppb);
        let dt = (dm * 1_000_000_000 + rate - 1) / rate;
        let mut t = SimTime(self.base_true.saturating_add(dt as u64));
        // Integer division in `mono` may round one nanosecond short.
        while self.mono(t) < m {
            t.0 += 1;
        }
        debug_assert!(t >= now);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_and_skew_move_readings_exactly() {
        let c = Clock::new(-250_000_000, 100.0);
        let t = SimTime(10_000_000_000); // 10 s
        assert_eq!(c.mono(t), MonoTime(10_001_000_000)); // +100 ppm of 10 s = 1 ms
        assert_eq!(c.wall(t), WallTime(10_001_000_000 - 250_000_000));
    }

    #[test]
    fn drift_change_keeps_mono_continuous_and_monotonic() {
        let mut c = Clock::new(0, 0.0);
        let t1 = SimTime(1_000_000_000);
        let before = c.mono(t1);
        c.set_drift(t1, -50_000.0);
        assert_eq!(c.mono(t1), before);
        assert_eq!(c.mono(SimTime(2_000_000_000)), MonoTime(1_950_000_000));
    }

    #[test]
    fn true_time_of_inverts_mono() {
        let mut c = Clock::new(0, 0.0);
        c.set_drift(SimTime(5), 333.0);
        for m in [6u64, 1_000, 999_999_999, 12_345_678_901] {
            let t = c.true_time_of(SimTime(5), MonoTime(m));
            assert!(c.mono(t) >= MonoTime(m));
            assert!(t.0 == 5 || c.mono(SimTime(t.0 - 1)) < MonoTime(m));
        }
    }

    #[test]
    fn bump_strobe_reset() {
        let mut c = Clock::new(0, 0.0);
        c.bump(-3_000_000_000);
        assert_eq!(c.wall(SimTime(4_000_000_000)), WallTime(1_000_000_000));
        c.strobe(SimTime(4_000_000_000), 500, 10, 40);
        assert_eq!(c.wall(SimTime(4_000_000_005)).0, 1_000_000_005 + 500);
        assert_eq!(c.wall(SimTime(4_000_000_015)).0, 1_000_000_015);
        assert_eq!(c.wall(SimTime(4_000_000_025)).0, 1_000_000_025 + 500);
        assert_eq!(c.wall(SimTime(4_000_000_045)).0, 1_000_000_045);
        c.reset(SimTime(5_000_000_000));
        assert_eq!(c.wall(SimTime(5_000_000_000)), WallTime(5_000_000_000));
    }
}
