//! Durations as scenario files write them: `"250ms"`, `"-2s"`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::nanos;

/// A duration written like `"250ms"`, `"3s"`, `"1.5m"`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

/// A signed duration for clock jumps: `"-2s"`, `"+500ms"`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct SignedDur(pub i64);

pub(super) const UNITS: &[(&str, f64)] =
    &[("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)];

pub(super) fn parse_nanos(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("expected a duration with a unit like \"250ms\" or \"3s\", found \"{s}\""))?;
    let (num, unit) = s.split_at(split);
    let factor = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, f)| *f)
        .ok_or_else(|| format!("unknown unit \"{unit}\" in \"{s}\"; expected one of ns, us, ms, s, m, h"))?;
    let value: f64 = num.parse().map_err(|_| format!("expected a number before \"{unit}\", found \"{num}\""))?;
    if !value.is_finite() {
        return Err(format!("\"{s}\" is not a finite duration"));
    }
    Ok(value * factor)
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ns = parse_nanos(&s).map_err(serde::de::Error::custom)?;
        if ns < 0.0 || s.trim_start().starts_with('-') {
            return Err(serde::de::Error::custom(format!("expected a non-negative duration, found \"{s}\"")));
        }
        if ns > 1e18 {
            return Err(serde::de::Error::custom(format!("\"{s}\" is longer than this harness simulates")));
        }
        Ok(Dur(Duration::from_nanos(ns.round() as u64)))
    }
}

impl<'de> Deserialize<'de> for SignedDur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ns = parse_nanos(&s).map_err(serde::de::Error::custom)?;
        if ns.abs() > 1e18 {
            return Err(serde::de::Error::custom(format!("\"{s}\" is larger than this harness simulates")));
        }
        Ok(SignedDur(ns.round() as i64))
    }
}

/// Formats a duration the way files write it, exactly (`1500ms`, `3s`).
pub fn format_duration(d: Duration) -> String {
    let ns = nanos(d);
    for (unit, factor) in
        [("h", 3_600_000_000_000u64), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)]
    {
        if ns >= factor && ns % factor == 0 {
            return format!("{}{unit}", ns / factor);
        }
    }
    format!("{ns}ns")
}

pub(super) fn format_signed(ns: i64) -> String {
    let text = format_duration(Duration::from_nanos(ns.unsigned_abs()));
    if ns < 0 {
        format!("-{text}")
    } else {
        text
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}
impl Serialize for SignedDur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_signed(self.0))
    }
}
