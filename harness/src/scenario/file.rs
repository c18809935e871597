//! The scenario file as TOML, with spans for every value (the schema).

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::*;
use crate::net::Ordering;

/// The file as written. Cross-field checks happen in [`Scenario::parse`].
#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub title: String,
    pub system: Spanned<String>,
    #[serde(default = "default_variant")]
    pub variant: Spanned<String>,
    #[serde(default = "default_nodes")]
    pub nodes: Spanned<u32>,
    #[serde(default = "default_clients")]
    pub clients: Spanned<u32>,
    pub duration: Spanned<Dur>,
    /// How long the liveness phase may wait for progress after healing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Spanned<Dur>>,
    #[serde(default = "default_seeds")]
    pub seeds: Spanned<u64>,
    /// The most events one run may take before it stops as a liveness
    /// failure (default 20 million): a message storm is a bug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<Spanned<u64>>,
    /// Runs exactly this seed (shrunk regressions carry one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Spanned<toml::Value>>,
    #[serde(default, skip_serializing_if = "NetworkSection::is_empty")]
    pub network: NetworkSection,
    #[serde(default, skip_serializing_if = "ClocksSection::is_empty")]
    pub clocks: ClocksSection,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault: Vec<Spanned<FaultEntry>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trigger: Vec<Spanned<TriggerEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<Spanned<NemesisSection>>,
    #[serde(default)]
    pub workload: WorkloadSection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Spanned<toml::Table>>,
}

pub(super) fn default_variant() -> Spanned<String> {
    Spanned::new(0..0, "correct".to_owned())
}
pub(super) fn default_nodes() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}
pub(super) fn default_clients() -> Spanned<u32> {
    Spanned::new(0..0, 0)
}
pub(super) fn default_seeds() -> Spanned<u64> {
    Spanned::new(0..0, 20)
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Spanned<LatencySpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Ordering>,
}

impl NetworkSection {
    fn is_empty(&self) -> bool {
        self.latency.is_none() && self.loss.is_none() && self.duplicate.is_none() && self.ordering.is_none()
    }
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// constant, uniform, exponential or heavy-tail
    pub dist: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ClocksSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<Spanned<f64>>,
}

impl ClocksSection {
    fn is_empty(&self) -> bool {
        self.skew.is_none() && self.drift_ppm.is_none()
    }
}

/// One `[[trigger]]`: a fault that fires when a node reports an event.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriggerEntry {
    /// The event, as the system names it (`leader`, `voted`, ...).
    pub on: Spanned<String>,
    /// The chance one report fires it (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<Spanned<f64>>,
    /// Delay after the report: `"2ms"` or `{ min = "0ms", max = "5ms" }` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Spanned<DurSpec>>,
    /// `crash`, `crash-in-handler`, `pause` or `partition` (isolate).
    pub kind: Spanned<String>,
    /// Whom it hits: `random`, `leader`, `minority`, `majority`, a node
    /// name; by default the node that reported the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Spanned<String>>,
    /// How long until it is undone, fixed or a range (default: until the heal).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Spanned<DurSpec>>,
    /// The most times it fires in one run (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Spanned<u32>>,
}

/// A duration, or a range of them to draw from.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum DurSpec {
    Fixed(Dur),
    Range { min: Dur, max: Dur },
}

/// One `[[fault]]`: the kind decides which other keys it takes.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultEntry {
    pub at: Spanned<Dur>,
    pub kind: Spanned<String>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Spanned<Dur>>,
    /// A node by name (`n2`, `c1`); the same as `target = "n2"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Spanned<String>>,
    /// `random`, `leader`, `minority`, `majority`, or a node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Spanned<String>>,
    /// Several nodes by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Spanned<Vec<String>>>,
    /// Partitions: isolate, halves, majority-ring, bridge, one-way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Spanned<String>>,
    /// Partitions: explicit groups of node names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Spanned<Vec<Vec<String>>>>,
    /// Clock bumps and strobes: how far the wall clock jumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Spanned<SignedDur>>,
    /// Clock strobes: how often the wall clock flips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Spanned<Dur>>,
    /// Clock drift faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppm: Option<Spanned<f64>>,
    /// Network faults: the whole network's new settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Spanned<LatencySpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Spanned<f64>>,
    /// Crashes in a handler: how many of the handler's effects apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effects: Option<Spanned<u32>>,
}

#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct NemesisSection {
    pub kinds: Spanned<Vec<String>>,
    pub every: Spanned<Dur>,
}

#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSection {
    /// Operations over all clients, generated from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Spanned<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Spanned<u32>>,
    /// Pause between one client's operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Dur>,
    /// Explicit operations per client (instead of `ops`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client: Vec<Spanned<ClientScript>>,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientScript {
    pub name: String,
    /// `[f, key]` or `[f, key, value]`, e.g. `["cas", "k1", [1, 2]]`.
    pub ops: Vec<toml::Value>,
}
