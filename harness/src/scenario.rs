//! Scenario files: TOML that says which system to run, how, under which
//! faults, and what to expect. Parsing checks every value; every error
//! names the file, line and column and says what was expected.
//!
//! A scenario plus a seed gives a [`Plan`]: the concrete list of timed
//! faults (the scenario's own and the nemesis's draws) and each client's
//! operations. Plans are what runs, what shrinking cuts down, and what a
//! shrunk scenario file writes out explicitly.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::fault::{Fault, Shape, Target};
use crate::history::Value;
use crate::net::{Latency, LinkConfig, Ordering};
use crate::node::NodeId;
use crate::rng::{Rng, Stream};
use crate::time::nanos;

/// A scenario file that cannot be used: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// What the runner knows about the systems, so scenario files can be
/// checked against them (names, variants, invariants, `[config]` keys).
pub trait Catalog {
    fn systems(&self) -> Vec<&'static str>;
    fn variants(&self, system: &str) -> Vec<&'static str>;
    /// The plain-English names of the checks a run of `variant` of
    /// `system` with this `[config]` judges.
    fn checks(&self, system: &str, variant: &str, config: &toml::Table) -> Vec<String>;
    /// Checks the `[config]` of the whole file `text`; the error carries
    /// the span of the offending key or value when there is one.
    fn check_config(&self, system: &str, text: &str) -> Result<(), (Option<std::ops::Range<usize>>, String)>;
    /// Checks one explicit client operation (`[[workload.client]]`).
    fn validate_op(&self, _system: &str, _op: &ClientOp) -> Result<(), String> {
        Ok(())
    }
    /// The fewest servers the system runs with.
    fn min_nodes(&self, _system: &str) -> u32 {
        1
    }
    /// Whether the system has client nodes at all.
    fn has_clients(&self, _system: &str) -> bool {
        true
    }
}

// ------------------------------------------------------------------ durations

/// A duration written like `"250ms"`, `"3s"`, `"1.5m"`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

/// A signed duration for clock jumps: `"-2s"`, `"+500ms"`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct SignedDur(pub i64);

const UNITS: &[(&str, f64)] = &[("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)];

fn parse_nanos(s: &str) -> Result<f64, String> {
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

fn format_signed(ns: i64) -> String {
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

// ------------------------------------------------------------------ the file

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<Spanned<NemesisSection>>,
    #[serde(default)]
    pub workload: WorkloadSection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Spanned<toml::Table>>,
}

fn default_variant() -> Spanned<String> {
    Spanned::new(0..0, "correct".to_owned())
}
fn default_nodes() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}
fn default_clients() -> Spanned<u32> {
    Spanned::new(0..0, 0)
}
fn default_seeds() -> Spanned<u64> {
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

// ------------------------------------------------------------------ validated

/// What a scenario expects of every seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Pass,
    /// A violation of one of these checks (a bug may show as any of them).
    Violation(Vec<String>),
    Liveness,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Pass => f.write_str("pass"),
            Expect::Violation(names) => {
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                write!(f, "violation of {}", quoted.join(" or "))
            }
            Expect::Liveness => f.write_str("liveness"),
        }
    }
}

/// A fault at a time, undone after `duration` when it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedFault {
    pub at: Duration,
    pub fault: Fault,
    pub duration: Option<Duration>,
}

/// One client operation before it runs: function, key, input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientOp {
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
}

/// The nemesis: random faults every so often, drawn per seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Nemesis {
    pub kinds: Vec<String>,
    pub every: Duration,
}

/// The fault kinds the nemesis can draw.
pub const NEMESIS_KINDS: &[&str] = &[
    "partition",
    "crash",
    "crash-in-handler",
    "kill",
    "pause",
    "clock-bump",
    "clock-strobe",
    "clock-drift",
    "clock-reset",
    "network",
];

/// The fault kinds a `[[fault]]` can name.
pub const FAULT_KINDS: &[&str] = &[
    "partition",
    "heal",
    "crash",
    "crash-in-handler",
    "restart",
    "kill",
    "pause",
    "resume",
    "clock-bump",
    "clock-strobe",
    "clock-reset",
    "clock-drift",
    "network",
];

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from, as given (reports and commands name it).
    pub path: String,
    pub title: String,
    pub system: String,
    pub variant: String,
    pub nodes: u32,
    pub clients: u32,
    pub duration: Duration,
    pub liveness: Duration,
    pub seeds: u64,
    pub seed: Option<u64>,
    pub expect: Expect,
    pub network: LinkConfig,
    pub skew: Duration,
    pub drift_ppm: f64,
    pub faults: Vec<TimedFault>,
    pub nemesis: Option<Nemesis>,
    pub ops: u32,
    pub keys: u32,
    pub think: Duration,
    /// Explicit per-client operations, when the file lists them.
    pub scripts: Option<Vec<Vec<ClientOp>>>,
    pub config: toml::Table,
    /// The file as parsed, for writing it back out (shrinking).
    pub file: ScenarioFile,
}

/// What one seed of a scenario runs: every fault and every client's operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub faults: Vec<TimedFault>,
    pub clients: Vec<Vec<ClientOp>>,
}

/// Draws one client operation of a system's workload.
/// Draws the next operation over `keys` keys for client number `client`
/// (from 0); it may remember what it drew for whom.
pub type OpGenerator<'a> = &'a mut dyn FnMut(&mut Rng, u32, u32) -> ClientOp;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    nodes: u32,
    clients: u32,
}

impl Ctx<'_> {
    fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_col(self.text, span.start);
        ScenarioError { file: self.file.to_owned(), line, column, message: message.into() }
    }

    fn node(&self, name: &Spanned<String>) -> Result<NodeId, ScenarioError> {
        self.node_named(name.get_ref(), name.span())
    }

    fn node_named(&self, name: &str, span: std::ops::Range<usize>) -> Result<NodeId, ScenarioError> {
        let id = NodeId::parse(name).ok_or_else(|| {
            self.err(
                span.clone(),
                format!("\"{name}\" is not a node name; expected n1..n{} or c1..c{}", self.nodes, self.clients.max(1)),
            )
        })?;
        let exists = if id.is_client() { id.index() < self.clients } else { id.index() < self.nodes };
        if !exists {
            let role = if id.is_client() {
                format!("{} client{} (c1..c{})", self.clients, plural(self.clients), self.clients)
            } else {
                format!("{} server{} (n1..n{})", self.nodes, plural(self.nodes), self.nodes)
            };
            return Err(self.err(span, format!("node {name} does not exist: this scenario has {role}")));
        }
        Ok(id)
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |i| before[i + 1..].chars().count()) + 1;
    (line, column)
}

impl Scenario {
    /// Parses and validates a scenario file.
    pub fn parse(file: &str, text: &str, catalog: &dyn Catalog) -> Result<Scenario, ScenarioError> {
        let raw: ScenarioFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ScenarioError { file: file.to_owned(), line, column, message: e.message().trim().to_owned() }
        })?;
        let cx = Ctx { file, text, nodes: *raw.nodes.get_ref(), clients: *raw.clients.get_ref() };
        let systems = catalog.systems();
        let system = raw.system.get_ref().clone();
        if !systems.contains(&system.as_str()) {
            return Err(cx.err(
                raw.system.span(),
                format!("unknown system \"{system}\"; the systems are: {}", systems.join(", ")),
            ));
        }
        let variants = catalog.variants(&system);
        let variant = raw.variant.get_ref().clone();
        if !variants.contains(&variant.as_str()) {
            return Err(cx.err(
                raw.variant.span(),
                format!("system \"{system}\" has no variant \"{variant}\"; its variants are: {}", variants.join(", ")),
            ));
        }
        let min = catalog.min_nodes(&system);
        if cx.nodes < min || cx.nodes > 99 {
            return Err(cx.err(
                raw.nodes.span(),
                format!("nodes must be between {min} and 99 for system \"{system}\", not {}", cx.nodes),
            ));
        }
        if cx.clients > 0 && !catalog.has_clients(&system) {
            return Err(cx.err(raw.clients.span(), format!("system \"{system}\" has no clients; leave `clients` out")));
        }
        if cx.clients > 99 {
            return Err(cx.err(raw.clients.span(), format!("clients must be at most 99, not {}", cx.clients)));
        }
        let duration = raw.duration.get_ref().0;
        if duration.is_zero() {
            return Err(cx.err(raw.duration.span(), "duration must be positive"));
        }
        if *raw.seeds.get_ref() == 0 {
            return Err(cx.err(raw.seeds.span(), "seeds must be at least 1"));
        }
        let config = raw.config.as_ref().map(|c| c.get_ref().clone()).unwrap_or_default();
        if let Err((span, message)) = catalog.check_config(&system, text) {
            let span = span.or_else(|| raw.config.as_ref().map(|c| c.span())).unwrap_or(0..0);
            return Err(cx.err(span, message));
        }
        let expect = parse_expect(&cx, raw.expect.as_ref(), &catalog.checks(&system, &variant, &config))?;
        let network = parse_network(&cx, &raw.network)?;
        let drift_ppm = match &raw.clocks.drift_ppm {
            Some(d) if !(0.0..=crate::clock::MAX_DRIFT_PPM).contains(d.get_ref()) => {
                return Err(cx.err(
                    d.span(),
                    format!("drift_ppm must be between 0 and {}, not {}", crate::clock::MAX_DRIFT_PPM, d.get_ref()),
                ));
            }
            Some(d) => *d.get_ref(),
            None => 0.0,
        };
        let mut faults = Vec::with_capacity(raw.fault.len());
        for entry in &raw.fault {
            faults.push(parse_fault(&cx, entry, duration)?);
        }
        faults.sort_by_key(|f| f.at);
        let nemesis = match &raw.nemesis {
            None => None,
            Some(n) => Some(parse_nemesis(&cx, n.get_ref())?),
        };
        let (ops, keys, scripts) = parse_workload(&cx, &raw.workload, &|op| catalog.validate_op(&system, op))?;
        Ok(Scenario {
            path: file.to_owned(),
            title: raw.title.clone(),
            system,
            variant,
            nodes: cx.nodes,
            clients: cx.clients,
            duration,
            liveness: raw.liveness.as_ref().map_or(Duration::from_secs(30), |l| l.get_ref().0),
            seeds: *raw.seeds.get_ref(),
            seed: raw.seed,
            expect,
            network,
            skew: raw.clocks.skew.map_or(Duration::ZERO, |d| d.0),
            drift_ppm,
            faults,
            nemesis,
            ops,
            keys,
            think: raw.workload.think.map_or(Duration::from_millis(10), |d| d.0),
            scripts,
            config,
            file: raw,
        })
    }

    /// The concrete plan for one seed: the file's faults, the nemesis's
    /// draws, and each client's operations.
    pub fn plan(&self, seed: u64, generate: OpGenerator<'_>) -> Plan {
        let mut faults = self.faults.clone();
        if let Some(n) = &self.nemesis {
            faults.extend(n.draw(seed, self.duration));
        }
        faults.sort_by_key(|f| f.at);
        let clients = match &self.scripts {
            Some(scripts) => scripts.clone(),
            None => {
                let mut rng = Rng::new(seed, Stream::Workload);
                let mut clients = vec![Vec::new(); self.clients as usize];
                for i in 0..self.ops {
                    let c = (i % self.clients.max(1)) as usize;
                    if let Some(list) = clients.get_mut(c) {
                        list.push(generate(&mut rng, self.keys, c as u32));
                    }
                }
                clients
            }
        };
        Plan { faults, clients }
    }
}

fn parse_expect(
    cx: &Ctx<'_>,
    expect: Option<&Spanned<toml::Value>>,
    checks: &[String],
) -> Result<Expect, ScenarioError> {
    let Some(e) = expect else { return Ok(Expect::Pass) };
    let what = "expected \"pass\", { violation = \"<check name>\" } (or a list of names) or { outcome = \"liveness\" }";
    let known = |name: &str| {
        if checks.iter().any(|c| c == name) {
            Ok(name.to_owned())
        } else {
            Err(cx.err(
                e.span(),
                format!("no check is named \"{name}\"; this variant's checks are: {}", checks.join(", ")),
            ))
        }
    };
    match e.get_ref() {
        toml::Value::String(s) if s == "pass" => Ok(Expect::Pass),
        toml::Value::String(s) if s == "liveness" => Ok(Expect::Liveness),
        toml::Value::Table(t) if t.len() == 1 => match t.iter().next() {
            Some((k, toml::Value::String(name))) if k == "violation" => Ok(Expect::Violation(vec![known(name)?])),
            Some((k, toml::Value::Array(names))) if k == "violation" && !names.is_empty() => {
                let names = names.iter().map(|n| n.as_str().ok_or_else(|| cx.err(e.span(), what)).and_then(known));
                Ok(Expect::Violation(names.collect::<Result<_, _>>()?))
            }
            Some((k, toml::Value::String(o))) if k == "outcome" && o == "liveness" => Ok(Expect::Liveness),
            Some((k, toml::Value::String(o))) if k == "outcome" && o == "pass" => Ok(Expect::Pass),
            _ => Err(cx.err(e.span(), what)),
        },
        _ => Err(cx.err(e.span(), what)),
    }
}

fn probability(cx: &Ctx<'_>, p: &Option<Spanned<f64>>, name: &str) -> Result<f64, ScenarioError> {
    match p {
        None => Ok(0.0),
        Some(v) if (0.0..=1.0).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => {
            Err(cx
                .err(v.span(), format!("{name} is a probability: expected a number from 0 to 1, not {}", v.get_ref())))
        }
    }
}

fn parse_latency(cx: &Ctx<'_>, spec: &Spanned<LatencySpec>) -> Result<Latency, ScenarioError> {
    let l = spec.get_ref();
    let need = |d: Option<Dur>, key: &str| {
        d.map(|d| d.0).ok_or_else(|| cx.err(spec.span(), format!("latency dist \"{}\" needs `{key}`", l.dist)))
    };
    let latency = match l.dist.as_str() {
        "constant" => Latency::Constant(need(l.value, "value")?),
        "uniform" => Latency::Uniform { min: need(l.min, "min")?, max: need(l.max, "max")? },
        "exponential" => Latency::Exponential { mean: need(l.mean, "mean")?, max: need(l.max, "max")? },
        "heavy-tail" => Latency::HeavyTail {
            min: need(l.min, "min")?,
            alpha: l.alpha.ok_or_else(|| cx.err(spec.span(), "latency dist \"heavy-tail\" needs `alpha`"))?,
            max: need(l.max, "max")?,
        },
        other => {
            return Err(cx.err(
                spec.span(),
                format!("unknown latency dist \"{other}\"; expected constant, uniform, exponential or heavy-tail"),
            ))
        }
    };
    latency.validate().map_err(|m| cx.err(spec.span(), m))?;
    Ok(latency)
}

fn parse_network(cx: &Ctx<'_>, n: &NetworkSection) -> Result<LinkConfig, ScenarioError> {
    let mut config = LinkConfig::default();
    if let Some(l) = &n.latency {
        config.latency = parse_latency(cx, l)?;
    }
    config.loss = probability(cx, &n.loss, "loss")?;
    config.duplicate = probability(cx, &n.duplicate, "duplicate")?;
    config.ordering = n.ordering.unwrap_or_default();
    Ok(config)
}

/// Parses `random`, `leader`, `minority`, `majority` or a node name.
/// Clients drive the test and keep the session a checker follows: a
/// client that lost its memory would reuse request ids and forget its
/// session, and the checks would blame the system. Clients pause; they
/// never crash.
fn no_client_crashes(cx: &Ctx<'_>, e: &FaultEntry, target: &Target) -> Result<(), ScenarioError> {
    let client = match target {
        Target::Node(n) => Some(*n).filter(|n| n.is_client()),
        Target::Nodes(ns) => ns.iter().copied().find(|n| n.is_client()),
        _ => None,
    };
    let Some(client) = client else { return Ok(()) };
    let span = e
        .node
        .as_ref()
        .map(|v| v.span())
        .or(e.nodes.as_ref().map(|v| v.span()))
        .or(e.target.as_ref().map(|v| v.span()));
    Err(cx.err(
        span.unwrap_or_else(|| e.kind.span()),
        format!("{client} is a client: clients never crash (they drive the test); pause it instead, or crash a server"),
    ))
}

fn parse_target(cx: &Ctx<'_>, e: &FaultEntry) -> Result<Target, ScenarioError> {
    let given = [e.node.is_some(), e.target.is_some(), e.nodes.is_some()].iter().filter(|&&g| g).count();
    if given > 1 {
        return Err(cx.err(e.kind.span(), "give only one of `node`, `target` and `nodes`"));
    }
    if let Some(n) = &e.node {
        return Ok(Target::Node(cx.node(n)?));
    }
    if let Some(ns) = &e.nodes {
        let ids = ns.get_ref().iter().map(|n| cx.node_named(n, ns.span())).collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Err(cx.err(ns.span(), "`nodes` must name at least one node"));
        }
        return Ok(Target::Nodes(ids));
    }
    let Some(t) = &e.target else {
        return Err(cx.err(
            e.kind.span(),
            format!(
                "a {} fault needs `node` or `target` (random, leader, minority, majority, or a node name)",
                e.kind.get_ref()
            ),
        ));
    };
    Ok(match t.get_ref().as_str() {
        "random" => Target::Random,
        "leader" => Target::Leader,
        "minority" => Target::Minority,
        "majority" => Target::Majority,
        _ => Target::Node(cx.node(t)?),
    })
}

fn parse_fault(cx: &Ctx<'_>, entry: &Spanned<FaultEntry>, run: Duration) -> Result<TimedFault, ScenarioError> {
    let e = entry.get_ref();
    let at = e.at.get_ref().0;
    if at >= run {
        return Err(cx.err(
            e.at.span(),
            format!(
                "this fault is at {} but the run's fault phase ends at {}",
                format_duration(at),
                format_duration(run)
            ),
        ));
    }
    let kind = e.kind.get_ref().as_str();
    if !FAULT_KINDS.contains(&kind) {
        return Err(
            cx.err(e.kind.span(), format!("unknown fault kind \"{kind}\"; expected one of {}", FAULT_KINDS.join(", ")))
        );
    }
    // Keys that make no sense for this kind are errors, not silently ignored.
    let allowed: &[&str] = match kind {
        "partition" => &["node", "target", "nodes", "shape", "groups", "for"],
        "heal" => &[],
        "crash" | "pause" | "kill" | "restart" | "resume" | "clock-reset" => &["node", "target", "nodes", "for"],
        "crash-in-handler" => &["node", "target", "nodes", "effects", "for"],
        "clock-bump" => &["node", "target", "nodes", "delta", "for"],
        "clock-strobe" => &["node", "target", "nodes", "delta", "period", "for"],
        "clock-drift" => &["node", "target", "nodes", "ppm", "for"],
        _ => &["latency", "loss", "duplicate", "for"],
    };
    let present: [(&str, Option<std::ops::Range<usize>>); 13] = [
        ("node", e.node.as_ref().map(|v| v.span())),
        ("target", e.target.as_ref().map(|v| v.span())),
        ("nodes", e.nodes.as_ref().map(|v| v.span())),
        ("shape", e.shape.as_ref().map(|v| v.span())),
        ("groups", e.groups.as_ref().map(|v| v.span())),
        ("delta", e.delta.as_ref().map(|v| v.span())),
        ("period", e.period.as_ref().map(|v| v.span())),
        ("ppm", e.ppm.as_ref().map(|v| v.span())),
        ("latency", e.latency.as_ref().map(|v| v.span())),
        ("loss", e.loss.as_ref().map(|v| v.span())),
        ("duplicate", e.duplicate.as_ref().map(|v| v.span())),
        ("for", e.for_.as_ref().map(|v| v.span())),
        ("effects", e.effects.as_ref().map(|v| v.span())),
    ];
    for (key, span) in present {
        if let Some(span) = span {
            if !allowed.contains(&key) {
                let takes = if allowed.is_empty() { "no other keys".to_owned() } else { allowed.join(", ") };
                return Err(cx.err(span, format!("a {kind} fault does not take `{key}`; it takes {takes}")));
            }
        }
    }
    if matches!(kind, "kill" | "restart" | "resume" | "clock-reset") {
        if let Some(f) = &e.for_ {
            return Err(cx.err(f.span(), format!("a {kind} fault has no `for`: nothing undoes it")));
        }
    }
    if matches!(kind, "crash" | "kill" | "crash-in-handler" | "restart") {
        no_client_crashes(cx, e, &parse_target(cx, e)?)?;
    }
    let fault = match kind {
        "partition" => Fault::Partition(parse_shape(cx, e)?),
        "heal" => Fault::HealPartitions,
        "crash" => Fault::Crash(parse_target(cx, e)?),
        "crash-in-handler" => {
            Fault::CrashInHandler { target: parse_target(cx, e)?, effects: e.effects.as_ref().map(|k| *k.get_ref()) }
        }
        "restart" => Fault::Restart(parse_target(cx, e)?),
        "kill" => Fault::Kill(parse_target(cx, e)?),
        "pause" => Fault::Pause(parse_target(cx, e)?),
        "resume" => Fault::Resume(parse_target(cx, e)?),
        "clock-reset" => Fault::ClockReset(parse_target(cx, e)?),
        "clock-bump" => Fault::ClockBump {
            target: parse_target(cx, e)?,
            delta_ns: e
                .delta
                .as_ref()
                .ok_or_else(|| cx.err(e.kind.span(), "a clock-bump needs `delta`, like \"-2s\""))?
                .get_ref()
                .0,
        },
        "clock-strobe" => {
            let delta = e
                .delta
                .as_ref()
                .ok_or_else(|| cx.err(e.kind.span(), "a clock-strobe needs `delta`, like \"500ms\""))?;
            let period = e
                .period
                .as_ref()
                .ok_or_else(|| cx.err(e.kind.span(), "a clock-strobe needs `period`, like \"100ms\""))?;
            if period.get_ref().0.is_zero() {
                return Err(cx.err(period.span(), "period must be positive"));
            }
            // `for` is how long the strobe lasts (default: to the end of the fault phase).
            let lasts = e.for_.as_ref().map_or(run - at, |f| f.get_ref().0);
            Fault::ClockStrobe {
                target: parse_target(cx, e)?,
                delta_ns: delta.get_ref().0,
                period: period.get_ref().0,
                duration: lasts,
            }
        }
        "clock-drift" => {
            let ppm = e.ppm.as_ref().ok_or_else(|| cx.err(e.kind.span(), "a clock-drift needs `ppm`"))?;
            if ppm.get_ref().abs() > crate::clock::MAX_DRIFT_PPM {
                return Err(cx.err(
                    ppm.span(),
                    format!("ppm must be within +-{}, not {}", crate::clock::MAX_DRIFT_PPM, ppm.get_ref()),
                ));
            }
            Fault::ClockDrift { target: parse_target(cx, e)?, ppm: *ppm.get_ref() }
        }
        _ => {
            let section = NetworkSection {
                latency: e.latency.clone(),
                loss: e.loss.clone(),
                duplicate: e.duplicate.clone(),
                ordering: None,
            };
            Fault::Network(parse_network(cx, &section)?)
        }
    };
    let duration = match &e.for_ {
        Some(f) if f.get_ref().0.is_zero() => return Err(cx.err(f.span(), "`for` must be positive")),
        _ if kind == "clock-strobe" => None,
        Some(f) => Some(f.get_ref().0),
        None => None,
    };
    Ok(TimedFault { at, fault, duration })
}

fn parse_shape(cx: &Ctx<'_>, e: &FaultEntry) -> Result<Shape, ScenarioError> {
    if let Some(groups) = &e.groups {
        if e.shape.is_some() {
            return Err(cx.err(groups.span(), "give either `shape` or `groups`, not both"));
        }
        let mut out = Vec::new();
        for g in groups.get_ref() {
            out.push(g.iter().map(|n| cx.node_named(n, groups.span())).collect::<Result<Vec<_>, _>>()?);
        }
        if out.len() < 2 {
            return Err(cx.err(groups.span(), "`groups` needs at least two groups"));
        }
        return Ok(Shape::Groups(out));
    }
    let Some(shape) = &e.shape else {
        return Err(cx.err(
            e.kind.span(),
            "a partition needs `shape` (isolate, halves, majority-ring, bridge, one-way) or `groups`",
        ));
    };
    let needs_target = matches!(shape.get_ref().as_str(), "isolate" | "isolate-from-peers" | "one-way");
    if !needs_target && (e.node.is_some() || e.target.is_some() || e.nodes.is_some()) {
        return Err(cx.err(
            shape.span(),
            format!("shape \"{}\" picks its own sides; it takes no `node` or `target`", shape.get_ref()),
        ));
    }
    Ok(match shape.get_ref().as_str() {
        "isolate" => Shape::Isolate(parse_target(cx, e)?),
        "isolate-from-peers" => Shape::IsolateFromPeers(parse_target(cx, e)?),
        "one-way" => Shape::OneWay(parse_target(cx, e)?),
        "halves" => Shape::Halves,
        "majority-ring" => Shape::MajorityRing,
        "bridge" => Shape::Bridge,
        other => {
            return Err(cx.err(
                shape.span(),
                format!("unknown shape \"{other}\"; expected isolate, isolate-from-peers, halves, majority-ring, bridge or one-way"),
            ))
        }
    })
}

fn parse_nemesis(cx: &Ctx<'_>, n: &NemesisSection) -> Result<Nemesis, ScenarioError> {
    if n.kinds.get_ref().is_empty() {
        return Err(cx.err(n.kinds.span(), format!("kinds must list at least one of {}", NEMESIS_KINDS.join(", "))));
    }
    for k in n.kinds.get_ref() {
        if !NEMESIS_KINDS.contains(&k.as_str()) {
            return Err(cx.err(
                n.kinds.span(),
                format!("the nemesis has no kind \"{k}\"; expected some of {}", NEMESIS_KINDS.join(", ")),
            ));
        }
    }
    if n.every.get_ref().0 < Duration::from_millis(1) {
        return Err(cx.err(n.every.span(), "every must be at least 1ms"));
    }
    Ok(Nemesis { kinds: n.kinds.get_ref().clone(), every: n.every.get_ref().0 })
}

type Workload = (u32, u32, Option<Vec<Vec<ClientOp>>>);

fn parse_workload(
    cx: &Ctx<'_>,
    w: &WorkloadSection,
    validate: &dyn Fn(&ClientOp) -> Result<(), String>,
) -> Result<Workload, ScenarioError> {
    let keys = match &w.keys {
        Some(k) if *k.get_ref() == 0 || *k.get_ref() > 1000 => {
            return Err(cx.err(k.span(), format!("keys must be between 1 and 1000, not {}", k.get_ref())))
        }
        Some(k) => *k.get_ref(),
        None => 1,
    };
    if w.client.is_empty() {
        let ops = w.ops.as_ref().map_or(0, |o| *o.get_ref());
        if ops > 0 && cx.clients == 0 {
            let span = w.ops.as_ref().map_or(0..0, |o| o.span());
            return Err(cx.err(span, "workload ops need clients: set `clients` to at least 1"));
        }
        return Ok((ops, keys, None));
    }
    if let Some(o) = &w.ops {
        return Err(cx.err(o.span(), "give either `ops` (generated) or [[workload.client]] scripts, not both"));
    }
    let mut scripts = vec![Vec::new(); cx.clients as usize];
    for script in &w.client {
        let id = cx.node_named(&script.get_ref().name, script.span())?;
        if !id.is_client() {
            return Err(cx.err(
                script.span(),
                format!("{} is a server; workload scripts belong to clients", script.get_ref().name),
            ));
        }
        let ops = script
            .get_ref()
            .ops
            .iter()
            .map(|op| {
                parse_client_op(op).and_then(|op| validate(&op).map(|()| op)).map_err(|m| cx.err(script.span(), m))
            })
            .collect::<Result<_, _>>()?;
        scripts[id.index() as usize] = ops;
    }
    let total = scripts.iter().map(Vec::len).sum::<usize>() as u32;
    Ok((total, keys, Some(scripts)))
}

fn parse_client_op(op: &toml::Value) -> Result<ClientOp, String> {
    let what = || format!("each op is [f, key] or [f, key, value], like [\"write\", \"k1\", 3]; found {op}");
    let toml::Value::Array(parts) = op else { return Err(what()) };
    let f = parts.first().and_then(|v| v.as_str()).ok_or_else(what)?.to_owned();
    let key = match parts.get(1) {
        Some(toml::Value::String(k)) if k.is_empty() => None,
        Some(toml::Value::String(k)) => Some(k.clone()),
        _ => return Err(what()),
    };
    let value = match parts.get(2) {
        None => Value::Null,
        Some(v) => toml_to_value(v).ok_or_else(what)?,
    };
    if parts.len() > 3 {
        return Err(what());
    }
    Ok(ClientOp { f, key, value })
}

fn toml_to_value(v: &toml::Value) -> Option<Value> {
    Some(match v {
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::String(s) => Value::Str(s.clone()),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(items) => Value::List(items.iter().map(toml_to_value).collect::<Option<_>>()?),
        _ => return None,
    })
}

fn value_to_toml(v: &Value) -> toml::Value {
    match v {
        Value::Null => toml::Value::String(String::new()),
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Int(i) => toml::Value::Integer(*i),
        Value::Str(s) => toml::Value::String(s.clone()),
        Value::List(items) => toml::Value::Array(items.iter().map(value_to_toml).collect()),
    }
}

// ------------------------------------------------------------------ the nemesis

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

fn draw_target(rng: &mut Rng) -> Target {
    match rng.below(4) {
        0 => Target::Leader,
        1 => Target::Minority,
        _ => Target::Random,
    }
}

fn draw_fault(rng: &mut Rng, kind: &str, at: Duration, len: Duration) -> TimedFault {
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
        _ => {
            let config = LinkConfig { loss: rng.between(5, 50) as f64 / 100.0, ..LinkConfig::default() };
            timed(Fault::Network(config), Some(len))
        }
    }
}

// ------------------------------------------------------------------ writing

/// Writes a scenario back out with an explicit plan: the given faults as
/// `[[fault]]` entries, the given client scripts, no nemesis, a fixed seed.
pub fn write_explicit(scenario: &Scenario, plan: &Plan, seed: u64, title: &str) -> String {
    let mut file = scenario.file.clone();
    file.title = title.to_owned();
    file.seed = Some(seed);
    file.seeds = Spanned::new(0..0, 1);
    file.nemesis = None;
    file.clients = Spanned::new(0..0, plan.clients.len() as u32);
    file.fault = plan.faults.iter().map(|f| Spanned::new(0..0, fault_entry(f))).collect();
    file.workload.ops = None;
    file.workload.client = plan
        .clients
        .iter()
        .enumerate()
        .filter(|(_, ops)| !ops.is_empty())
        .map(|(i, ops)| {
            let ops = ops
                .iter()
                .map(|op| {
                    let mut parts = vec![
                        toml::Value::String(op.f.clone()),
                        toml::Value::String(op.key.clone().unwrap_or_default()),
                    ];
                    if !op.value.is_null() {
                        parts.push(value_to_toml(&op.value));
                    }
                    toml::Value::Array(parts)
                })
                .collect();
            Spanned::new(0..0, ClientScript { name: NodeId::client(i as u32).to_string(), ops })
        })
        .collect();
    toml::to_string(&file).expect("scenario files serialise")
}

/// A value with no place in a file (one the program writes).
fn sp<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

fn target_keys(t: &Target, e: &mut FaultEntry) {
    let s = |v: String| Some(sp(v));
    match t {
        Target::Node(n) => e.node = s(n.to_string()),
        Target::Nodes(ns) => e.nodes = Some(Spanned::new(0..0, ns.iter().map(|n| n.to_string()).collect())),
        Target::Random => e.target = s("random".into()),
        Target::Leader => e.target = s("leader".into()),
        Target::Minority => e.target = s("minority".into()),
        Target::Majority => e.target = s("majority".into()),
    }
}

fn latency_spec(l: &Latency) -> LatencySpec {
    let mut spec = LatencySpec { dist: String::new(), value: None, min: None, max: None, mean: None, alpha: None };
    match *l {
        Latency::Constant(d) => (spec.dist, spec.value) = ("constant".into(), Some(Dur(d))),
        Latency::Uniform { min, max } => {
            (spec.dist, spec.min, spec.max) = ("uniform".into(), Some(Dur(min)), Some(Dur(max)))
        }
        Latency::Exponential { mean, max } => {
            (spec.dist, spec.mean, spec.max) = ("exponential".into(), Some(Dur(mean)), Some(Dur(max)))
        }
        Latency::HeavyTail { min, alpha, max } => {
            (spec.dist, spec.min, spec.alpha, spec.max) =
                ("heavy-tail".into(), Some(Dur(min)), Some(alpha), Some(Dur(max)))
        }
    }
    spec
}

/// The `[[fault]]` entry that parses back into `f`.
pub fn fault_entry(f: &TimedFault) -> FaultEntry {
    let mut e = FaultEntry {
        at: sp(Dur(f.at)),
        kind: sp(f.fault.kind().to_owned()),
        for_: f.duration.map(|d| sp(Dur(d))),
        node: None,
        target: None,
        nodes: None,
        shape: None,
        groups: None,
        delta: None,
        period: None,
        ppm: None,
        latency: None,
        loss: None,
        duplicate: None,
        effects: None,
    };
    match &f.fault {
        Fault::Partition(shape) => match shape {
            Shape::Isolate(t) | Shape::IsolateFromPeers(t) | Shape::OneWay(t) => {
                let name = match shape {
                    Shape::Isolate(_) => "isolate",
                    Shape::IsolateFromPeers(_) => "isolate-from-peers",
                    _ => "one-way",
                };
                e.shape = Some(sp(name.to_owned()));
                target_keys(t, &mut e);
            }
            Shape::Halves => e.shape = Some(sp("halves".into())),
            Shape::MajorityRing => e.shape = Some(sp("majority-ring".into())),
            Shape::Bridge => e.shape = Some(sp("bridge".into())),
            Shape::Groups(gs) => {
                e.groups =
                    Some(Spanned::new(0..0, gs.iter().map(|g| g.iter().map(|n| n.to_string()).collect()).collect()))
            }
        },
        Fault::HealPartitions => {}
        Fault::Crash(t)
        | Fault::Restart(t)
        | Fault::Kill(t)
        | Fault::Pause(t)
        | Fault::Resume(t)
        | Fault::ClockReset(t) => target_keys(t, &mut e),
        Fault::CrashInHandler { target, effects } => {
            target_keys(target, &mut e);
            e.effects = effects.map(|k| Spanned::new(0..0, k));
        }
        Fault::ClockBump { target, delta_ns } => {
            target_keys(target, &mut e);
            e.delta = Some(Spanned::new(0..0, SignedDur(*delta_ns)));
        }
        Fault::ClockStrobe { target, delta_ns, period, duration } => {
            target_keys(target, &mut e);
            e.for_ = Some(sp(Dur(*duration)));
            e.delta = Some(Spanned::new(0..0, SignedDur(*delta_ns)));
            e.period = Some(sp(Dur(*period)));
        }
        Fault::ClockDrift { target, ppm } => {
            target_keys(target, &mut e);
            e.ppm = Some(Spanned::new(0..0, *ppm));
        }
        Fault::Network(cfg) => {
            e.latency = Some(Spanned::new(0..0, latency_spec(&cfg.latency)));
            e.loss = Some(Spanned::new(0..0, cfg.loss));
            e.duplicate = Some(Spanned::new(0..0, cfg.duplicate));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        let d: Dur = toml::Value::String("250ms".into()).try_into().expect("parses");
        assert_eq!(d.0, Duration::from_millis(250));
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_signed(-2_000_000_000), "-2s");
        for bad in ["3", "3 parsecs", "-1s", "ms", "1e999s"] {
            assert!(toml::Value::String(bad.into()).try_into::<Dur>().is_err(), "{bad}");
        }
        let s: SignedDur = toml::Value::String("-1.5s".into()).try_into().expect("parses");
        assert_eq!(s.0, -1_500_000_000);
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
