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

use crate::fault::Fault;
use crate::history::Value;
use crate::net::LinkConfig;
use crate::rng::{Rng, Stream};

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
    /// Checks one `[config]` table (a file's, with its knobs set).
    fn check_config_table(&self, system: &str, config: &toml::Table) -> Result<(), String>;
    /// The events a `[[trigger]]` may name for this system.
    fn trigger_events(&self, _system: &str) -> Vec<&'static str> {
        Vec::new()
    }
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
    /// Whether its clients may crash or be cut off (see `System::clients_crash`).
    fn clients_crash(&self, _system: &str) -> bool {
        false
    }
}

mod duration;
mod file;
mod kinds;
mod knobs;
pub mod limits;
mod nemesis;
mod parse;
mod write;

pub use duration::{format_duration, Dur, SignedDur};
pub use file::*;
pub use kinds::{fault_kind, nemesis_kinds, FaultKind, FAULT_TABLE};
pub use knobs::{Knob, KnobRange};
use parse::*;
pub use write::{fault_entry, write_explicit};

pub use limits::{DEFAULT_MAX_EVENTS, MAX_EVENTS};
use limits::{MAX_DURATION, MAX_NODES, MAX_SEEDS};

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
    /// The largest clock drift it may set, in ppm: the scenario's
    /// `[clocks] drift_ppm`, or 200 (the systems' default allowance) when
    /// that is 0. Drift beyond what a system is configured to survive is not
    /// a legal fault.
    pub max_drift_ppm: f64,
    /// The scenario's network: a network fault changes its latency, loss
    /// and duplication, never its ordering (a system may rely on FIFO links).
    pub network: LinkConfig,
    /// The events the system reports that the nemesis may draw triggers on.
    pub events: Vec<String>,
}

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
    /// Whether faults and triggers may crash or cut off clients (the
    /// system's `clients_crash`).
    pub clients_crash: bool,
    pub duration: Duration,
    pub liveness: Duration,
    pub seeds: u64,
    /// The event budget of one run.
    pub max_events: u64,
    pub seed: Option<u64>,
    pub expect: Expect,
    pub network: LinkConfig,
    pub skew: Duration,
    pub drift_ppm: f64,
    pub faults: Vec<TimedFault>,
    pub triggers: Vec<crate::trigger::Trigger>,
    pub nemesis: Option<Nemesis>,
    pub ops: u32,
    pub keys: u32,
    pub think: Duration,
    /// Explicit per-client operations, when the file lists them.
    pub scripts: Option<Vec<Vec<ClientOp>>>,
    /// The file's `[config]`; a knob's entry is its range, drawn per seed
    /// by [`Scenario::config_for`].
    pub config: toml::Table,
    pub knobs: Vec<Knob>,
    /// The file as parsed, for writing it back out (shrinking).
    pub file: ScenarioFile,
}

/// What one seed of a scenario runs: every fault and every client's operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub faults: Vec<TimedFault>,
    pub clients: Vec<Vec<ClientOp>>,
    /// The `[config]` the system runs with, knobs drawn.
    pub config: toml::Table,
    /// Reactive faults: the file's and the nemesis's draws.
    pub triggers: Vec<crate::trigger::Trigger>,
}

/// Draws one client operation of a system's workload.
/// Draws the next operation over `keys` keys for client number `client`
/// (from 0); it may remember what it drew for whom.
pub type OpGenerator<'a> = &'a mut dyn FnMut(&mut Rng, u32, u32) -> ClientOp;

impl Scenario {
    /// Parses and validates a scenario file.
    pub fn parse(file: &str, text: &str, catalog: &dyn Catalog) -> Result<Scenario, ScenarioError> {
        let raw: ScenarioFile = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ScenarioError {
                file: file.to_owned(),
                line,
                column,
                message: crate::history_io::shorten(e.message().trim().to_owned()),
            }
        })?;
        let mut cx = Ctx {
            file,
            text,
            nodes: *raw.nodes.get_ref(),
            clients: *raw.clients.get_ref(),
            network: LinkConfig::default(),
            clients_crash: catalog.clients_crash(raw.system.get_ref()),
        };
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
        if cx.nodes < min || cx.nodes > MAX_NODES {
            return Err(cx.err(
                raw.nodes.span(),
                format!("nodes must be between {min} and {MAX_NODES} for system \"{system}\", not {}", cx.nodes),
            ));
        }
        if cx.clients > 0 && !catalog.has_clients(&system) {
            return Err(cx.err(raw.clients.span(), format!("system \"{system}\" has no clients; leave `clients` out")));
        }
        if cx.clients == 0 && catalog.has_clients(&system) {
            // Its clients drive the test: without one, no run can pass.
            return Err(
                cx.err(raw.clients.span(), format!("system \"{system}\" needs clients: set `clients` to at least 1"))
            );
        }
        if cx.clients > MAX_NODES {
            return Err(cx.err(raw.clients.span(), format!("clients must be at most {MAX_NODES}, not {}", cx.clients)));
        }
        let duration = raw.duration.get_ref().0;
        if duration.is_zero() || duration > MAX_DURATION {
            return Err(cx.err(
                raw.duration.span(),
                format!("duration must be positive and at most {}", format_duration(MAX_DURATION)),
            ));
        }
        let liveness = raw.liveness.as_ref().map_or(Duration::from_secs(30), |l| l.get_ref().0);
        if let Some(l) = raw.liveness.as_ref().filter(|_| liveness > MAX_DURATION) {
            return Err(cx.err(l.span(), format!("liveness must be at most {}", format_duration(MAX_DURATION))));
        }
        let max_events = match &raw.max_events {
            Some(m) if !(1..=MAX_EVENTS).contains(m.get_ref()) => {
                return Err(
                    cx.err(m.span(), format!("max_events must be between 1 and {MAX_EVENTS}, not {}", m.get_ref()))
                );
            }
            Some(m) => *m.get_ref(),
            None => DEFAULT_MAX_EVENTS,
        };
        if !(1..=MAX_SEEDS).contains(raw.seeds.get_ref()) {
            return Err(cx.err(raw.seeds.span(), format!("seeds must be between 1 and {MAX_SEEDS}")));
        }
        let config = raw.config.as_ref().map(|c| c.get_ref().clone()).unwrap_or_default();
        let knobs = knobs::find_knobs(&cx)?;
        let mut checks = Vec::new();
        if knobs.is_empty() {
            if let Err((span, message)) = catalog.check_config(&system, text) {
                let accepts = |t: &toml::Table| catalog.check_config_table(&system, t).is_ok();
                let span = span
                    .or_else(|| knobs::blame(text, &config, |_| true, accepts))
                    .or_else(|| raw.config.as_ref().map(|c| c.span()))
                    .unwrap_or(0..0);
                return Err(cx.err(span, message));
            }
            checks = catalog.checks(&system, &variant, &config);
        } else {
            // Every corner of the knobs' ranges must be a valid `[config]`;
            // the checks are those of any corner (a choice may add one).
            let plain: Vec<Knob> = knobs.iter().map(|(k, _)| k.clone()).collect();
            for (i, table) in knobs::corners(&config, &plain) {
                if let Err(message) = catalog.check_config_table(&system, &table) {
                    // A key that is wrong whatever the knobs draw is named
                    // at its own line, not at a knob's.
                    let is_knob = |key: &str| plain.iter().any(|k| k.key == key);
                    let accepts = |t: &toml::Table| catalog.check_config_table(&system, t).is_ok();
                    if let Some(span) = knobs::blame(text, &table, |key| !is_knob(key), accepts) {
                        return Err(cx.err(span, message));
                    }
                    let shown: Vec<String> = plain.iter().map(|k| format!("{} = {}", k.key, table[&k.key])).collect();
                    return Err(cx.err(knobs[i].1.clone(), format!("{message} (with {})", shown.join(", "))));
                }
                for name in catalog.checks(&system, &variant, &table) {
                    if !checks.contains(&name) {
                        checks.push(name);
                    }
                }
            }
        }
        let knobs: Vec<Knob> = knobs.into_iter().map(|(k, _)| k).collect();
        let expect = parse_expect(&cx, raw.expect.as_ref(), &checks)?;
        let network = parse_network(&cx, &raw.network)?;
        cx.network = network.clone();
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
        let events = catalog.trigger_events(&system);
        let mut triggers = Vec::with_capacity(raw.trigger.len());
        for entry in &raw.trigger {
            triggers.push(parse_trigger(&cx, entry.get_ref(), &events, &system, duration)?);
        }
        let nemesis = match &raw.nemesis {
            None => None,
            Some(n) => Some(parse_nemesis(&cx, n.get_ref(), drift_ppm, network.clone(), &events, duration)?),
        };
        let (ops, keys, scripts) = parse_workload(&cx, &raw.workload, &|op| catalog.validate_op(&system, op))?;
        Ok(Scenario {
            path: file.to_owned(),
            title: raw.title.clone(),
            system,
            variant,
            nodes: cx.nodes,
            clients: cx.clients,
            clients_crash: cx.clients_crash,
            duration,
            liveness,
            seeds: *raw.seeds.get_ref(),
            max_events,
            seed: raw.seed,
            expect,
            network,
            skew: raw.clocks.skew.map_or(Duration::ZERO, |d| d.0),
            drift_ppm,
            faults,
            triggers,
            nemesis,
            ops,
            keys,
            think: raw.workload.think.map_or(Duration::from_millis(10), |d| d.0),
            scripts,
            config,
            knobs,
            file: raw,
        })
    }

    /// The concrete plan for one seed: the file's faults, the nemesis's
    /// draws, each client's operations, and `config` (from
    /// [`Scenario::config_for`], which the workload generator also saw).
    pub fn plan(&self, seed: u64, config: toml::Table, generate: OpGenerator<'_>) -> Plan {
        let mut faults = self.faults.clone();
        let mut triggers = self.triggers.clone();
        if let Some(n) = &self.nemesis {
            let (drawn, drawn_triggers) = n.draw(seed, self.duration);
            faults.extend(drawn);
            triggers.extend(drawn_triggers);
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
        Plan { faults, clients, config, triggers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duration::format_signed;

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

    /// A catalog of one system, `s`, that triggers on `leader`.
    struct OneSystem;
    impl Catalog for OneSystem {
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
        fn trigger_events(&self, _: &str) -> Vec<&'static str> {
            vec!["leader"]
        }
        fn has_clients(&self, _: &str) -> bool {
            false
        }
    }

    #[test]
    fn a_network_fault_changes_only_the_keys_it_names() {
        let text = "title = \"t\"\nsystem = \"s\"\nnodes = 3\nduration = \"10s\"\n\
                    [network]\nlatency = { dist = \"constant\", value = \"5ms\" }\nduplicate = 0.02\nordering = \"fifo\"\n\
                    [[fault]]\nat = \"1s\"\nkind = \"network\"\nloss = 0.1\nfor = \"1s\"\n";
        let s = Scenario::parse("t.toml", text, &OneSystem).expect("parses");
        let Fault::Network(config) = &s.faults[0].fault else { panic!("a network fault: {:?}", s.faults) };
        assert_eq!(config.loss, 0.1);
        assert_eq!(config.latency, crate::net::Latency::Constant(Duration::from_millis(5)), "kept");
        assert_eq!(config.duplicate, 0.02, "kept");
        assert_eq!(config.ordering, crate::net::Ordering::Fifo, "kept");
        let extra = text.replace("loss = 0.1", "latency = { dist = \"constant\", value = \"1ms\", max = \"2ms\" }");
        let e = Scenario::parse("t.toml", &extra, &OneSystem).unwrap_err();
        assert!(e.message.contains("latency dist \"constant\" does not use `max`; it takes value"), "{e:?}");
    }

    #[test]
    fn triggers_and_drawn_knobs_are_written_out_and_read_back_the_same() {
        let text = "title = \"t\"\nsystem = \"s\"\nnodes = 3\nduration = \"10s\"\n\
                    [[trigger]]\non = \"leader\"\nprobability = 0.25\nkind = \"pause\"\ntarget = \"minority\"\n\
                    after = { min = \"0ms\", max = \"5ms\" }\nfor = \"1s\"\nlimit = 4\n\
                    [config]\ntimeout = { min = \"1ms\", max = \"1s\" }\nmode = { one_of = [\"a\", \"b\"] }\n";
        let s = Scenario::parse("t.toml", text, &OneSystem).expect("parses");
        assert_eq!(s.triggers.len(), 1);
        let plan = s.plan(7, s.config_for(7), &mut |_, _, _| unreachable!("no clients"));
        let written = write_explicit(&s, &plan, 7, "t");
        let back = Scenario::parse("w.toml", &written, &OneSystem).expect("reads back");
        assert_eq!(back.triggers, plan.triggers, "{written}");
        assert!(back.knobs.is_empty(), "drawn knobs are plain values: {written}");
        assert_eq!(back.config, plan.config);
        // The drawn duration reads back as exactly the duration drawn.
        let drawn: Dur = plan.config["timeout"].clone().try_into().expect("a duration");
        assert!(drawn.0 >= Duration::from_millis(1) && drawn.0 <= Duration::from_secs(1));
        let bad = text.replace("on = \"leader\"", "on = \"voted\"");
        let e = Scenario::parse("t.toml", &bad, &OneSystem).unwrap_err().to_string();
        assert!(
            e.contains("t.toml:6:6") && e.contains("unknown event \"voted\"; system \"s\" triggers on leader"),
            "{e}"
        );
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
