//! A system under test as one unit (stateright's model): its nodes, its
//! variants, its `[config]`, its workload, and the properties every run of
//! it must keep. A system implements [`System`]; the blanket
//! [`AnySystem`] lets a list of systems of different node types serve the
//! scenario parser (as a [`Catalog`]) and the runner.
//!
//! Everything a scenario file may say about a system is checked here, at
//! parse time: the variant, the `[config]` keys and values (deserialised
//! into the system's own `Config`, unknown keys rejected, errors at
//! file:line:column), explicit client operations, and the names of the
//! checks an `expect` may name, which come from the invariants a run of
//! that variant builds, never from a second list.

use std::fmt::Debug;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use crate::runner::{ok_after_heal, HistoryCheck, Progress};
pub use crate::scenario::ClientOp;
pub use crate::sim::{Status, View};

use crate::check::Invariant;
use crate::host::{Host, Hosted};
use crate::node::{Factory, Node};
use crate::rng::Rng;
use crate::runner::{run, RunOptions, RunOutput, Spec, LINEARIZABLE};
use crate::scenario::{Catalog, Plan, Scenario};

/// The variants of a system: the correct one and its planted bugs, by the
/// names scenario files use.
pub trait VariantNames: Copy + Debug + Send + Sync + 'static {
    const NAMES: &'static [&'static str];
    fn parse(name: &str) -> Option<Self>;
}

/// A whole number from 0 to `MAX` in a `[config]`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Count<const MAX: u32>(pub u32);

impl<'de, const MAX: u32> Deserialize<'de> for Count<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= MAX)
            .map(Count)
            .ok_or_else(|| serde::de::Error::custom(format!("expected an integer from 0 to {MAX}, found {n}")))
    }
}

/// A clock drift bound in parts per million, from 0 to the world's maximum.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Ppm(pub f64);

impl<'de> Deserialize<'de> for Ppm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = f64::deserialize(d)?;
        let max = crate::clock::MAX_DRIFT_PPM;
        if (0.0..=max).contains(&x) {
            Ok(Ppm(x))
        } else {
            Err(serde::de::Error::custom(format!("expected parts per million from 0 to {max}, found {x}")))
        }
    }
}

/// A share from 0 to 1 in a `[config]`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Share(pub f64);

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&x) {
            Ok(Share(x))
        } else {
            Err(serde::de::Error::custom(format!("expected a share from 0 to 1, found {x}")))
        }
    }
}

/// A positive duration in a `[config]`, written like `"200ms"`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Positive(pub std::time::Duration);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let crate::scenario::Dur(v) = crate::scenario::Dur::deserialize(d)?;
        if v.is_zero() {
            return Err(serde::de::Error::custom("expected a positive duration like \"200ms\", found zero"));
        }
        Ok(Positive(v))
    }
}

/// A workload generator for one plan: each call draws the next operation
/// over `keys` keys for client number `client` (from 0).
pub type Workload = Box<dyn FnMut(&mut Rng, u32, u32) -> ClientOp>;

/// What building one run of a system starts from.
pub struct Setup<'a, S: System + ?Sized> {
    pub variant: S::Variant,
    pub config: &'a S::Config,
    pub scenario: &'a Scenario,
    pub plan: &'a Plan,
}

impl<S: System + ?Sized> Setup<'_, S> {
    /// Client number `index`'s scripted operations.
    pub fn script(&self, index: u32) -> Vec<ClientOp> {
        self.plan.clients.get(index as usize).cloned().unwrap_or_default()
    }
}

/// A system under test.
pub trait System: Sync + 'static {
    type Node: Node;
    /// The scenario's `[config]`: `#[serde(deny_unknown_fields, default)]`,
    /// so a misspelt key is an error and a missing one takes its default.
    type Config: DeserializeOwned + Default + Clone + Debug + 'static;
    type Variant: VariantNames;

    fn name(&self) -> &'static str;
    /// Whether the system has client nodes at all.
    fn has_clients(&self) -> bool {
        true
    }
    /// Whether its clients are workers whose crash is a fault under test
    /// (a queue's consumers), not only drivers of the test. Then faults
    /// and triggers may crash or cut off clients, and `random` picks among
    /// clients too. Otherwise clients only pause: a client that lost its
    /// memory would reuse request ids and forget its session, and the
    /// checks would blame the system.
    fn clients_crash(&self) -> bool {
        false
    }
    /// The fewest servers it runs with.
    fn min_nodes(&self) -> u32 {
        1
    }
    /// The events its observations name (`Observation::trigger`), which
    /// `[[trigger]]` entries and the nemesis may fire faults on.
    fn trigger_events(&self) -> &'static [&'static str] {
        &[]
    }
    /// A fresh workload generator for one plan.
    fn workload(&self, variant: Self::Variant, config: &Self::Config) -> Workload;
    /// Checks an explicit client operation of a scenario file, so a typo
    /// is a parse error with its line, not a crash in the middle of a run.
    fn validate_op(&self, op: &ClientOp) -> Result<(), String>;
    /// The properties a run of `variant` checks, online or at its end. A
    /// variant builds only the ones that apply to it.
    fn invariants(
        &self,
        variant: Self::Variant,
        config: &Self::Config,
    ) -> Vec<Box<dyn Invariant<<Self::Node as Node>::Obs>>>;
    /// The linearizability check of the client history, if the system has one.
    fn linearizability(&self, _variant: Self::Variant, _config: &Self::Config) -> Option<HistoryCheck> {
        None
    }
    /// What the liveness phase waits for after the heal.
    fn progress(&self, variant: Self::Variant, config: &Self::Config) -> Progress<Self::Node>;
    /// Builds servers and clients (from their disks, after a crash).
    fn factory(&self, setup: &Setup<'_, Self>) -> Factory<Self::Node>;
}

/// A system as the runner and the parser see it, whatever its node type.
pub trait AnySystem: Sync {
    fn name(&self) -> &'static str;
    fn variants(&self) -> &'static [&'static str];
    fn has_clients(&self) -> bool;
    fn clients_crash(&self) -> bool;
    fn min_nodes(&self) -> u32;
    /// Deserialises the `[config]` of a whole scenario file's text; the
    /// error carries the span of the offending key or value.
    fn check_config(&self, text: &str) -> Result<(), (Option<Range<usize>>, String)>;
    fn validate_op(&self, op: &ClientOp) -> Result<(), String>;
    /// The names of the checks a run of `variant` with this `[config]` judges.
    fn checks(&self, variant: &str, config: &toml::Table) -> Vec<String>;
    /// The workload generator for a seed's drawn `[config]`.
    fn workload(&self, scenario: &Scenario, config: &toml::Table) -> Workload;
    fn check_config_table(&self, config: &toml::Table) -> Result<(), String>;
    fn trigger_events(&self) -> &'static [&'static str];
    fn run(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput;
    /// The run's nodes and checks, for a driver of another world.
    fn host(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> Box<dyn Host>;
}

/// Only the `[config]` table of a scenario file (every other key ignored).
#[derive(Deserialize)]
#[allow(dead_code)] // deserialised only to be validated
struct ConfigOnly<C> {
    #[serde(default)]
    config: C,
}

impl<S: System> AnySystem for S {
    fn name(&self) -> &'static str {
        System::name(self)
    }
    fn variants(&self) -> &'static [&'static str] {
        S::Variant::NAMES
    }
    fn has_clients(&self) -> bool {
        System::has_clients(self)
    }
    fn clients_crash(&self) -> bool {
        System::clients_crash(self)
    }
    fn min_nodes(&self) -> u32 {
        System::min_nodes(self)
    }
    fn check_config(&self, text: &str) -> Result<(), (Option<Range<usize>>, String)> {
        // Read from the file's text first, for spans; then exactly as a run
        // will read it, so that nothing that passes here fails there.
        toml::from_str::<ConfigOnly<S::Config>>(text)
            .map_err(|e| (e.span(), format!("[config]: {}", e.message().trim())))?;
        let file: toml::Table = toml::from_str(text).map_err(|e| (e.span(), e.message().trim().to_owned()))?;
        let table = match file.get("config") {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        typed_config::<S>(&table).map(|_| ()).map_err(|e| (None, format!("[config]: {}", e.message().trim())))
    }
    fn validate_op(&self, op: &ClientOp) -> Result<(), String> {
        System::validate_op(self, op)
    }
    fn checks(&self, variant: &str, config: &toml::Table) -> Vec<String> {
        let (Some(variant), Ok(config)) = (S::Variant::parse(variant), typed_config::<S>(config)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = self.invariants(variant, &config).iter().map(|i| i.name().to_owned()).collect();
        if self.linearizability(variant, &config).is_some() {
            names.push(LINEARIZABLE.to_owned());
        }
        names
    }
    fn workload(&self, scenario: &Scenario, config: &toml::Table) -> Workload {
        let (variant, config) = parsed::<S>(scenario, config);
        System::workload(self, variant, &config)
    }
    fn trigger_events(&self) -> &'static [&'static str] {
        System::trigger_events(self)
    }
    fn check_config_table(&self, config: &toml::Table) -> Result<(), String> {
        typed_config::<S>(config).map(|_| ()).map_err(|e| format!("[config]: {}", e.message().trim()))
    }
    fn run(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput {
        run(scenario, plan, seed, spec(self, scenario, plan), options)
    }
    fn host(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> Box<dyn Host> {
        Box::new(Hosted::new(scenario, plan, seed, spec(self, scenario, plan), options))
    }
}

/// What system `S` contributes to a run of this plan.
fn spec<S: System>(system: &S, scenario: &Scenario, plan: &Plan) -> Spec<S::Node> {
    let (variant, config) = parsed::<S>(scenario, &plan.config);
    let setup = Setup::<S> { variant, config: &config, scenario, plan };
    Spec {
        factory: system.factory(&setup),
        invariants: system.invariants(variant, &config),
        linearizability: system.linearizability(variant, &config),
        progress: system.progress(variant, &config),
    }
}

fn typed_config<S: System>(config: &toml::Table) -> Result<S::Config, toml::de::Error> {
    toml::Value::Table(config.clone()).try_into()
}

/// The variant of a scenario and a `[config]` of it (knobs drawn), typed.
fn parsed<S: System>(scenario: &Scenario, config: &toml::Table) -> (S::Variant, S::Config) {
    let variant = S::Variant::parse(&scenario.variant).expect("scenarios are validated against their system");
    // A drawn knob lies within a range whose ends were validated; a value
    // inside that the system still rejects is the system's own bug.
    let config = typed_config::<S>(config).unwrap_or_else(|e| panic!("[config] with knobs drawn: {e}"));
    (variant, config)
}

/// A list of systems: the catalog scenario files are checked against, and
/// what runs them. The root package lists faultline's own; a user's crate
/// lists theirs, and names the command that runs the faultline command
/// over them, for the reproduction commands failures print.
pub struct Systems {
    list: &'static [&'static dyn AnySystem],
    command: &'static str,
}

impl Systems {
    /// These systems, run by `cargo run --release --` (faultline's own binary).
    pub const fn new(list: &'static [&'static dyn AnySystem]) -> Self {
        Systems { list, command: "cargo run --release --" }
    }

    /// The command that runs the faultline command over these systems in
    /// their crate, such as `cargo run --example faultline --`.
    pub const fn with_command(self, command: &'static str) -> Self {
        Systems { command, ..self }
    }

    /// The command that runs the faultline command over these systems.
    pub fn command(&self) -> &'static str {
        self.command
    }

    pub fn find(&self, name: &str) -> Option<&'static dyn AnySystem> {
        self.list.iter().copied().find(|s| s.name() == name)
    }

    fn get(&self, name: &str) -> &'static dyn AnySystem {
        self.find(name).expect("scenarios are validated against the catalog")
    }

    /// The plan of a scenario for a seed, with the system's workload and
    /// the seed's knobs.
    pub fn plan(&self, scenario: &Scenario, seed: u64) -> Plan {
        let config = scenario.config_for(seed);
        let mut workload = self.get(&scenario.system).workload(scenario, &config);
        scenario.plan(seed, config, &mut *workload)
    }

    /// Runs one seed of a scenario with a given plan.
    pub fn run(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput {
        self.get(&scenario.system).run(scenario, plan, seed, options)
    }

    /// The scenario's nodes and checks, for a driver of another world.
    pub fn host(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> Box<dyn Host> {
        self.get(&scenario.system).host(scenario, plan, seed, options)
    }
}

impl Catalog for Systems {
    fn systems(&self) -> Vec<&'static str> {
        self.list.iter().map(|s| s.name()).collect()
    }
    fn variants(&self, system: &str) -> Vec<&'static str> {
        self.find(system).map(|s| s.variants().to_vec()).unwrap_or_default()
    }
    fn checks(&self, system: &str, variant: &str, config: &toml::Table) -> Vec<String> {
        self.find(system).map(|s| s.checks(variant, config)).unwrap_or_default()
    }
    fn check_config(&self, system: &str, text: &str) -> Result<(), (Option<Range<usize>>, String)> {
        self.find(system).map_or(Ok(()), |s| s.check_config(text))
    }
    fn check_config_table(&self, system: &str, config: &toml::Table) -> Result<(), String> {
        self.find(system).map_or(Ok(()), |s| s.check_config_table(config))
    }
    fn trigger_events(&self, system: &str) -> Vec<&'static str> {
        self.find(system).map(|s| s.trigger_events().to_vec()).unwrap_or_default()
    }
    fn validate_op(&self, system: &str, op: &ClientOp) -> Result<(), String> {
        self.find(system).map_or(Ok(()), |s| s.validate_op(op))
    }
    fn min_nodes(&self, system: &str) -> u32 {
        self.find(system).map_or(1, |s| s.min_nodes())
    }
    fn has_clients(&self, system: &str) -> bool {
        self.find(system).is_some_and(|s| s.has_clients())
    }
    fn clients_crash(&self, system: &str) -> bool {
        self.find(system).is_some_and(|s| s.clients_crash())
    }
}
