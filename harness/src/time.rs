//! Virtual time. Three kinds of instant, never mixed up:
//! [`SimTime`] is true time (only the world sees it), [`WallTime`] and
//! [`MonoTime`] are what a node's clocks read (skewed, drifting, jumping).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// True (simulated) time in nanoseconds since the start of the run.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(pub u64);

/// A reading of a node's wall clock, in nanoseconds. It may be negative
/// and it may jump backwards (bumps, strobes, resets).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WallTime(pub i64);

/// A reading of a node's monotonic clock, in nanoseconds. Never goes back;
/// runs fast or slow with the node's drift.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MonoTime(pub u64);

/// Durations are plain `std::time::Duration`; this converts to nanoseconds,
/// saturating, so a huge duration is "never" rather than a panic.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub fn from_duration(d: Duration) -> Self {
        SimTime(nanos(d))
    }
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }
    pub fn saturating_add(self, d: Duration) -> Self {
        SimTime(self.0.saturating_add(nanos(d)))
    }
    pub fn saturating_sub(self, other: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(other.0))
    }
}

impl MonoTime {
    pub fn saturating_add(self, d: Duration) -> Self {
        MonoTime(self.0.saturating_add(nanos(d)))
    }
    pub fn saturating_sub(self, other: MonoTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(other.0))
    }
}

impl WallTime {
    pub fn saturating_add(self, d: Duration) -> Self {
        WallTime(self.0.saturating_add(i64::try_from(nanos(d)).unwrap_or(i64::MAX)))
    }
}

/// Formats nanoseconds as seconds with microsecond precision, e.g. `12.000345s`:
/// fixed width after the point so reports stay byte-stable.
pub fn format_nanos(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    format!("{sign}{}.{:06}s", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000)
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_nanos(self.0 as i128))
    }
}
impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_nanos(self.0 as i128))
    }
}
impl fmt::Display for MonoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_nanos(self.0 as i128))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width() {
        assert_eq!(SimTime(1_500_000).to_string(), "0.001500s");
        assert_eq!(WallTime(-2_000_000_001).to_string(), "-2.000000s");
        assert_eq!(format_nanos(12_000_345_000), "12.000345s");
    }
}
