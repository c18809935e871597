//! The network model: per directed link a latency distribution, loss,
//! duplication and ordering; partitions as directed blocked pairs.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::rng::Rng;
use crate::time::nanos;

/// How long a message spends on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Latency {
    Constant(Duration),
    Uniform {
        min: Duration,
        max: Duration,
    },
    /// Exponential with the given mean, cut at `max`.
    Exponential {
        mean: Duration,
        max: Duration,
    },
    /// Pareto with scale `min` and shape `alpha` (smaller is heavier), cut at
    /// `max`: most messages are quick, a few are very slow.
    HeavyTail {
        min: Duration,
        alpha: f64,
        max: Duration,
    },
}

impl Latency {
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match *self {
            Latency::Constant(d) => nanos(d),
            Latency::Uniform { min, max } => rng.between(nanos(min), nanos(max).max(nanos(min))),
            Latency::Exponential { mean, max } => {
                // Inverse transform; libm keeps the float result the same on
                // every platform, unlike the system libm behind f64::ln.
                let u = 1.0 - rng.unit(); // in (0, 1]
                let x = -libm::log(u) * nanos(mean) as f64;
                (x as u64).min(nanos(max))
            }
            Latency::HeavyTail { min, alpha, max } => {
                let u = 1.0 - rng.unit();
                let x = nanos(min) as f64 / libm::pow(u, 1.0 / alpha);
                (x.min(u64::MAX as f64) as u64).clamp(nanos(min), nanos(max).max(nanos(min)))
            }
        }
    }

    /// Checks the parameters; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Latency::Constant(_) => Ok(()),
            Latency::Uniform { min, max } if min > max => {
                Err(format!("uniform latency: min {min:?} is above max {max:?}"))
            }
            Latency::Exponential { mean, .. } if mean.is_zero() => {
                Err("exponential latency: mean must be positive".into())
            }
            Latency::HeavyTail { alpha, .. } if !(alpha > 0.0 && alpha.is_finite()) => {
                Err(format!("heavy-tail latency: alpha must be a positive number, not {alpha}"))
            }
            Latency::HeavyTail { min, max, .. } if min > max => {
                Err(format!("heavy-tail latency: min {min:?} is above max {max:?}"))
            }
            _ => Ok(()),
        }
    }
}

/// Whether a link may reorder.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// Each message gets its own latency, so later ones may overtake.
    #[default]
    Unordered,
    /// Per-link first-in first-out, as over one TCP connection.
    Fifo,
}

/// The behaviour of one directed link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkConfig {
    pub latency: Latency,
    /// Probability that a message is lost, independently per message.
    pub loss: f64,
    /// Probability that a message is delivered twice; the copy gets its own latency.
    pub duplicate: f64,
    pub ordering: Ordering,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Latency::Uniform { min: Duration::from_millis(1), max: Duration::from_millis(10) },
            loss: 0.0,
            duplicate: 0.0,
            ordering: Ordering::Unordered,
        }
    }
}

impl LinkConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.latency.validate()?;
        for (name, p) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability between 0 and 1, not {p}"));
            }
        }
        Ok(())
    }
}

/// Per directed link state, dense in a `from * n + to` array: the world
/// looks it up on every send, so it is kept small.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Link {
    /// Index into the world's distinct link configurations (a nemesis may
    /// draw more than 65,536 of them).
    pub config: u32,
    /// How many active partitions block this link (partitions may overlap,
    /// more than 65,536 of them).
    pub blocked: u32,
    /// Bumped whenever the link is cut: in-flight messages carry the epoch
    /// they were sent in and are dropped if it changed.
    pub epoch: u32,
    /// The latest delivery time scheduled on this link (for `fifo`).
    pub last_delivery: u64,
}

/// In a scenario file's own words (`exponential mean 3ms max 100ms`).
impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Duration's own form reads as a person writes one: 4ms, 38.142169ms.
        let d = |v: Duration| format!("{v:?}");
        match *self {
            Latency::Constant(v) => write!(f, "constant {}", d(v)),
            Latency::Uniform { min, max } => write!(f, "uniform min {} max {}", d(min), d(max)),
            Latency::Exponential { mean, max } => write!(f, "exponential mean {} max {}", d(mean), d(max)),
            Latency::HeavyTail { min, alpha, max } => {
                write!(f, "heavy-tail min {} alpha {alpha} max {}", d(min), d(max))
            }
        }
    }
}

/// In a scenario file's own words (`latency ..., loss 0.1, duplicate 0, fifo`).
impl std::fmt::Display for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ordering = match self.ordering {
            Ordering::Unordered => "unordered",
            Ordering::Fifo => "fifo",
        };
        write!(f, "latency {}, loss {}, duplicate {}, {ordering}", self.latency, self.loss, self.duplicate)
    }
}
