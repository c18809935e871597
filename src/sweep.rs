//! `faultline run` and `faultline sweep`: scenarios over seeds.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use harness::check::CheckVerdict;
use harness::determinism::first_difference;
use harness::runner::{meets, Report, RunOptions, RunOutput};
use harness::scenario::{Expect, Scenario};
use harness::Outcome;

use crate::worlds::WorldKind;
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::{CliError, ReportPath};
use harness::system::Systems;

/// Loads and validates a scenario file against `systems`.
pub fn load(systems: &Systems, path: &Path) -> Result<Scenario, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::input(format!("{}: cannot read: {e}", path.display())))?;
    Scenario::parse(&path.display().to_string(), &text, systems).map_err(|e| CliError::input(e.to_string()))
}

/// Every `.toml` under the given paths (files as given, folders recursively), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out, &mut seen).map_err(|e| CliError::input(format!("{}: {e}", p.display())))?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(CliError::input(format!("{}: no such file or folder", p.display())));
        }
    }
    out.sort();
    // One run per file, however many paths (symbolic links) lead to it.
    let mut files = std::collections::BTreeSet::new();
    out.retain(|p| files.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

/// Scenario files under `dir`, entering each folder once: a symbolic link
/// back up the tree would otherwise lead round it until the path is too long.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut std::collections::BTreeSet<PathBuf>) -> std::io::Result<()> {
    if !seen.insert(std::fs::canonicalize(dir)?) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out, seen)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs one seed; a panic anywhere (a node, the runner, a checker) is a
/// `crash` for that seed, never the end of the sweep.
pub fn run_seed(systems: &Systems, scenario: &Scenario, seed: u64, options: &RunOptions) -> RunOutput {
    run_seed_on(WorldKind::Builtin, systems, scenario, seed, options).expect("the built-in world runs every scenario")
}

/// [`run_seed`] on `world`; `Err` names what that world cannot inject.
pub fn run_seed_on(
    world: WorldKind,
    systems: &Systems,
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
) -> Result<RunOutput, String> {
    let result = harness::panics::catch(|| {
        let plan = systems.plan(scenario, seed);
        crate::worlds::run(world, systems, scenario, &plan, seed, options)
    });
    result.unwrap_or_else(|panic| Ok(crashed(scenario, seed, harness::panics::message(panic.as_ref()))))
}

fn crashed(scenario: &Scenario, seed: u64, message: String) -> RunOutput {
    RunOutput {
        report: Report::crashed(scenario, seed, message),
        trace: None,
        history: Default::default(),
        reigns: Vec::new(),
        leases: Vec::new(),
        messages: Vec::new(),
    }
}

/// Runs a seed twice and compares trace hashes; on a mismatch runs both
/// again with full traces and names the first differing event.
pub fn run_seed_twice(systems: &Systems, scenario: &Scenario, seed: u64, options: &RunOptions) -> RunOutput {
    twice(WorldKind::Builtin, systems, scenario, seed, options).expect("the built-in world runs every scenario")
}

/// [`run_seed_twice`] on `world` (the UDP world is not deterministic, and
/// is run once).
fn twice(
    world: WorldKind,
    systems: &Systems,
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
) -> Result<RunOutput, String> {
    let first = run_seed_on(world, systems, scenario, seed, options)?;
    if world == WorldKind::Udp {
        return Ok(first);
    }
    let second = run_seed_on(world, systems, scenario, seed, options)?;
    if first.report.trace_hash == second.report.trace_hash {
        return Ok(first);
    }
    if world != WorldKind::Builtin {
        // No full trace in other worlds: the hashes are what differs.
        let mut out = first;
        out.report.outcome = Outcome::Nondeterminism {
            event: 0,
            first: format!("trace hash {} on {}", out.report.trace_hash, world.name()),
            second: format!("trace hash {}", second.report.trace_hash),
        };
        return Ok(out);
    }
    let traced = RunOptions { keep_trace: true, ..options.clone() };
    let a = run_seed(systems, scenario, seed, &traced).trace.unwrap_or_default();
    let b = run_seed(systems, scenario, seed, &traced).trace.unwrap_or_default();
    let mut out = first;
    out.report.outcome = first_difference(&a, &b);
    Ok(out)
}

/// The two commands that reproduce one seed of a scenario.
pub fn reproduce(systems: &Systems, scenario: &Scenario, seed: u64) -> String {
    reproduce_on(WorldKind::Builtin, systems, scenario, seed)
}

/// [`reproduce`] for a run on `world` (named in both commands unless it
/// is the built-in one).
pub fn reproduce_on(world: WorldKind, systems: &Systems, scenario: &Scenario, seed: u64) -> String {
    let (env, flag) = match world {
        WorldKind::Builtin => (String::new(), String::new()),
        other => (format!("FAULTLINE_WORLD={} ", other.name()), format!(" --world {}", other.name())),
    };
    format!(
        "  reproduce: {env}FAULTLINE_SEED={seed} cargo test --test scenarios -- {}\n         or: {} run {} --seed {seed}{flag}",
        quoted(&test_name(&scenario.path)),
        systems.command(),
        quoted(&scenario.path)
    )
}

/// `word` as a POSIX shell reads it back: as is when it is plain, else quoted.
fn quoted(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| format!("{word:?}"), |q| q.into_owned())
}

/// A scenario's test name: its path under `scenarios/` without `.toml`.
pub fn test_name(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.split_once("scenarios/").map_or(p.as_str(), |(_, rest)| rest);
    p.strip_suffix(".toml").unwrap_or(p).to_owned()
}

// ------------------------------------------------------------------ run

#[derive(Serialize)]
struct RunLine<'a> {
    scenario: &'a str,
    title: &'a str,
    seed: u64,
    outcome: &'a str,
    expected: String,
    check: Option<&'a str>,
    trace_hash: &'a str,
    events: u64,
    virtual_time_ns: u64,
}

pub struct RunArgs {
    pub file: PathBuf,
    pub seed: Option<u64>,
    pub trace: bool,
    pub report: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub json: bool,
    pub max_states: Option<u64>,
    pub world: WorldKind,
}

pub fn run_command(systems: &Systems, args: &RunArgs) -> Result<bool, CliError> {
    let scenario = load(systems, &args.file)?;
    let report_path = args.report.as_deref().map(ReportPath::parse).transpose()?;
    let seed = args.seed.or(scenario.seed).unwrap_or(0);
    let max_states = crate::cli::max_states(args.max_states)?;
    let options = RunOptions { keep_trace: args.trace, max_states, ..RunOptions::default() };
    let output = match args.html {
        Some(_) => run_for_page(args.world, systems, &scenario, seed, &options),
        None => run_seed_on(args.world, systems, &scenario, seed, &options),
    }
    .map_err(CliError::usage)?;
    let report = &output.report;
    if let Some(trace) = output.trace.as_ref().filter(|_| args.trace) {
        for e in trace {
            eprintln!("{:>8} {} {}", e.index, harness::SimTime(e.time), e.text);
        }
        if (trace.len() as u64) < report.events {
            eprintln!(
                "(the trace keeps the first {} of the run's {} events; the trace hash covers them all)",
                trace.len(),
                report.events
            );
        }
    }
    let met = meets(&scenario.expect, &report.outcome);
    if args.json {
        let line = RunLine {
            scenario: &report.scenario,
            title: &report.title,
            seed,
            outcome: report.outcome.class(),
            expected: scenario.expect.to_string(),
            check: report.failed_check(),
            trace_hash: &report.trace_hash,
            events: report.events,
            virtual_time_ns: report.virtual_time_ns,
        };
        println!("{}", serde_json::to_string(&line).expect("serialises"));
    } else {
        print!("{}", report.to_text());
        if !report.outcome.is_pass() {
            println!("{}", reproduce_on(args.world, systems, &scenario, seed));
        }
        println!("{}", if met { "as expected" } else { "NOT as expected" });
    }
    if let Some(path) = report_path {
        path.write(&report.to_yaml(), &report.to_json())?;
    }
    if let Some(path) = &args.html {
        write_html(path, &output)?;
    }
    Ok(met)
}

// ------------------------------------------------------------------ sweep

pub struct SweepArgs {
    pub paths: Vec<PathBuf>,
    pub seeds: Option<u64>,
    pub jobs: Option<usize>,
    pub shard: Option<(usize, usize)>,
    pub determinism: bool,
    pub json: bool,
    pub max_states: Option<u64>,
    pub world: WorldKind,
    /// Where to write an HTML page for each failing seed (the first
    /// [`SHOWN_UNEXPECTED`] per scenario), if anywhere.
    pub html_dir: Option<PathBuf>,
}

/// Per-scenario results of a sweep.
#[derive(Serialize)]
struct Summary {
    scenario: String,
    expect: String,
    seeds: u64,
    failures: u64,
    first_failing_seed: Option<u64>,
    outcomes: BTreeMap<&'static str, u64>,
    met_expectation: bool,
    /// Checks that had nothing to judge on every seed: a pass that proves nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vacuous_on_every_seed: Vec<String>,
}

/// Whether a whole scenario's seeds meet its expectation: a pass scenario
/// needs every seed to pass; a failure scenario needs at least one seed to
/// fail as named and no seed to fail any other way.
pub fn scenario_meets(expect: &Expect, outcomes: &[&Outcome]) -> bool {
    let failures = outcomes.iter().filter(|o| !o.is_pass()).count();
    let any_meets = outcomes.iter().any(|o| meets(expect, o));
    let unexpected = outcomes.iter().filter(|o| !o.is_pass() && !meets(expect, o)).count();
    seeds_meet(expect, failures as u64, any_meets, unexpected as u64)
}

/// The rule behind [`scenario_meets`], from counts a sweep keeps.
fn seeds_meet(expect: &Expect, failures: u64, any_meets: bool, unexpected: u64) -> bool {
    match expect {
        Expect::Pass => failures == 0,
        _ => any_meets && unexpected == 0,
    }
}

pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, like 2/4")?;
    let (i, n): (usize, usize) =
        (i.parse().map_err(|_| "I must be a number")?, n.parse().map_err(|_| "N must be a number")?);
    if n == 0 || i == 0 || i > n {
        return Err(format!("expected 1 <= I <= N, got {i}/{n}"));
    }
    Ok((i, n))
}

pub fn sweep_command(systems: &Systems, args: &SweepArgs) -> Result<bool, CliError> {
    use harness::scenario::limits::{MAX_JOBS, MAX_SEEDS};
    if let Some(n) = args.seeds.filter(|n| !(1..=MAX_SEEDS).contains(n)) {
        return Err(CliError::usage(format!("--seeds must be between 1 and {MAX_SEEDS}, not {n}")));
    }
    if let Some(n) = args.jobs.filter(|n| !(1..=MAX_JOBS).contains(n)) {
        return Err(CliError::usage(format!("--jobs must be between 1 and {MAX_JOBS}, not {n}")));
    }
    crate::cli::max_states(args.max_states)?;
    let files = discover(&args.paths)?;
    let mut scenarios = Vec::with_capacity(files.len());
    for f in &files {
        scenarios.push(load(systems, f)?);
    }
    if let Some((i, n)) = args.shard {
        scenarios = scenarios.into_iter().enumerate().filter(|(k, _)| k % n == i - 1).map(|(_, s)| s).collect();
    }
    let work: Vec<(usize, u64)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(k, s)| {
            let seeds: Vec<u64> = match (s.seed, args.seeds) {
                (Some(fixed), _) => vec![fixed],
                (None, Some(k)) => (0..k).collect(),
                (None, None) => (0..s.seeds).collect(),
            };
            seeds.into_iter().map(move |seed| (k, seed))
        })
        .collect();
    // Another world refuses what it cannot inject before anything runs (a
    // plan that panics is left to its run, which reports the crash).
    if args.world == WorldKind::Madsim {
        return Err(CliError::usage(crate::worlds::MADSIM_LANE));
    }
    for &(k, seed) in work.iter().filter(|_| args.world != WorldKind::Builtin) {
        let plan = harness::panics::catch(|| systems.plan(&scenarios[k], seed));
        if let Some(why) = plan.ok().and_then(|p| crate::worlds::unsupported(args.world, &scenarios[k], &p)) {
            return Err(CliError::usage(format!("{} (seed {seed}): {why}", scenarios[k].path)));
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .map_err(|e| CliError::usage(format!("--jobs: {e}")))?;
    let bar = progress_bar(work.len() as u64, args.json);
    let started = Instant::now();
    let options = RunOptions { max_states: args.max_states, ..RunOptions::default() };
    // Each run folds into its scenario's tally at once: a million seeds
    // hold a million counters, not a million reports.
    let tallies: BTreeMap<usize, Tally> = pool.install(|| {
        work.par_iter()
            .fold(BTreeMap::new, |mut tallies: BTreeMap<usize, Tally>, &(k, seed)| {
                let out = if args.determinism {
                    twice(args.world, systems, &scenarios[k], seed, &options)
                } else {
                    run_seed_on(args.world, systems, &scenarios[k], seed, &options)
                }
                .expect("refusals were checked before the sweep");
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                tallies.entry(k).or_default().add(&scenarios[k].expect, seed, out.report);
                tallies
            })
            .reduce(BTreeMap::new, |mut a, b| {
                for (k, t) in b {
                    a.entry(k).or_default().merge(t);
                }
                a
            })
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.html_dir {
        write_html_pages(systems, args, dir, &scenarios, &tallies, &options)?;
    }
    let mut all_met = true;
    let mut table = Vec::new();
    for (k, scenario) in scenarios.iter().enumerate() {
        let tally = tallies.get(&k).cloned().unwrap_or_default();
        let met = tally.met(&scenario.expect);
        all_met &= met;
        let summary = Summary {
            scenario: scenario.path.clone(),
            expect: scenario.expect.to_string(),
            seeds: tally.seeds,
            failures: tally.failures,
            first_failing_seed: tally.first_failing,
            outcomes: tally.counts.clone(),
            met_expectation: met,
            vacuous_on_every_seed: tally.vacuous_on_every_seed(),
        };
        if args.json {
            println!("{}", serde_json::to_string(&summary).expect("serialises"));
        } else {
            // Unexpected results, each with its seed and both reproduction commands.
            for (seed, outcome) in tally.unexpected.iter().filter(|_| !met) {
                println!(
                    "UNEXPECTED {} seed {seed}: {outcome}\n{}",
                    scenario.path,
                    reproduce_on(args.world, systems, scenario, *seed)
                );
            }
            if !met && tally.unexpected_count > tally.unexpected.len() as u64 {
                println!(
                    "UNEXPECTED {}: {} more seeds failed unexpectedly",
                    scenario.path,
                    tally.unexpected_count - tally.unexpected.len() as u64
                );
            }
            let failing_is_empty = tally.failures == 0;
            let mine_len = tally.seeds;
            if !met && scenario.expect != Expect::Pass && failing_is_empty {
                println!(
                    "UNEXPECTED {}: no seed of {} showed the expected {}",
                    scenario.path, mine_len, scenario.expect
                );
            }
        }
        table.push(summary);
    }
    if !args.json {
        print_table(&table, work.len(), elapsed);
    }
    Ok(all_met)
}

/// Runs each scenario's first failing seeds again (a seed replays) and
/// writes their pages: `DIR/<test name, / as __>-seed<N>.html`.
fn write_html_pages(
    systems: &Systems,
    args: &SweepArgs,
    dir: &Path,
    scenarios: &[Scenario],
    tallies: &BTreeMap<usize, Tally>,
    options: &RunOptions,
) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::input(format!("cannot create {}: {e}", dir.display())))?;
    for (k, tally) in tallies {
        let scenario = &scenarios[*k];
        for &seed in &tally.failing {
            let out = run_for_page(args.world, systems, scenario, seed, options).map_err(CliError::usage)?;
            let name = format!("{}-seed{seed}.html", test_name(&scenario.path).replace('/', "__"));
            write_html(&dir.join(name), &out)?;
        }
    }
    Ok(())
}

/// A run with what its page draws: the messages up to where the page
/// looks (the violation, or the end of a linearizability violation's
/// evidence). When that is before the end, the seed runs again, keeping
/// the messages up to there: the log keeps only the last ones.
fn run_for_page(
    world: WorldKind,
    systems: &Systems,
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
) -> Result<RunOutput, String> {
    let whole = RunOptions { messages: Some(harness::SimTime(u64::MAX)), ..options.clone() };
    let mut out = run_seed_on(world, systems, scenario, seed, &whole)?;
    let anchor = crate::html::message_anchor(&crate::html::Section::of_run(&out));
    // Other worlds log no messages: nothing to run again for.
    if let Some(anchor) = anchor.filter(|a| a.0 < out.report.virtual_time_ns && !out.messages.is_empty()) {
        let upto = RunOptions { messages: Some(anchor), ..options.clone() };
        out.messages = run_seed_on(world, systems, scenario, seed, &upto)?.messages;
    }
    Ok(out)
}

/// Writes a run's page (`--html`).
fn write_html(path: &Path, out: &RunOutput) -> Result<(), CliError> {
    let section = crate::html::Section::of_run(out);
    let page = crate::html::page(&format!("{} seed {}", out.report.scenario, out.report.seed), &[section]);
    std::fs::write(path, page).map_err(|e| CliError::input(format!("cannot write {}: {e}", path.display())))
}

/// Unexpected outcomes a sweep prints per scenario (the rest are counted).
const SHOWN_UNEXPECTED: usize = 20;

/// What a sweep keeps of one scenario's runs.
#[derive(Clone, Default)]
struct Tally {
    seeds: u64,
    failures: u64,
    first_failing: Option<u64>,
    counts: BTreeMap<&'static str, u64>,
    /// Some seed failed as expected.
    any_meets: bool,
    /// The first unexpected outcomes by seed, and how many there were.
    unexpected: Vec<(u64, Outcome)>,
    unexpected_count: u64,
    /// The lowest failing seeds, expected or not (for `--html-dir`).
    failing: Vec<u64>,
    /// Per check: seeds where it was vacuous, and where it judged.
    checks: BTreeMap<String, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, expect: &Expect, seed: u64, report: Report) {
        self.seeds += 1;
        *self.counts.entry(report.outcome.class()).or_default() += 1;
        for c in &report.checks {
            let (vacuous, judged) = self.checks.entry(c.name.clone()).or_default();
            match c.verdict {
                CheckVerdict::Vacuous => *vacuous += 1,
                CheckVerdict::NotRun => {}
                _ => *judged += 1,
            }
        }
        if report.outcome.is_pass() {
            return;
        }
        self.failures += 1;
        self.first_failing = Some(self.first_failing.map_or(seed, |f| f.min(seed)));
        self.failing.push(seed);
        self.keep_first_failing();
        if meets(expect, &report.outcome) {
            self.any_meets = true;
        } else {
            self.unexpected_count += 1;
            self.unexpected.push((seed, report.outcome));
            self.keep_first_unexpected();
        }
    }

    fn merge(&mut self, other: Tally) {
        self.seeds += other.seeds;
        self.failures += other.failures;
        self.first_failing = match (self.first_failing, other.first_failing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (class, n) in other.counts {
            *self.counts.entry(class).or_default() += n;
        }
        self.any_meets |= other.any_meets;
        self.unexpected.extend(other.unexpected);
        self.unexpected_count += other.unexpected_count;
        self.keep_first_unexpected();
        self.failing.extend(other.failing);
        self.keep_first_failing();
        for (name, (v, j)) in other.checks {
            let e = self.checks.entry(name).or_default();
            e.0 += v;
            e.1 += j;
        }
    }

    /// Keeps the lowest seeds, whatever order the workers finished in.
    fn keep_first_unexpected(&mut self) {
        self.unexpected.sort_by_key(|(seed, _)| *seed);
        self.unexpected.truncate(SHOWN_UNEXPECTED);
    }

    fn keep_first_failing(&mut self) {
        self.failing.sort_unstable();
        self.failing.truncate(SHOWN_UNEXPECTED);
    }

    fn met(&self, expect: &Expect) -> bool {
        seeds_meet(expect, self.failures, self.any_meets, self.unexpected_count)
    }

    /// The checks whose verdict was `vacuous` on every seed that judged
    /// them at all (and on at least one).
    fn vacuous_on_every_seed(&self) -> Vec<String> {
        self.checks.iter().filter(|(_, (v, j))| *v > 0 && *j == 0).map(|(name, _)| name.clone()).collect()
    }
}

fn progress_bar(len: u64, json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta}")
            .expect("a valid template"),
    );
    Some(bar)
}

fn print_table(table: &[Summary], runs: usize, elapsed: f64) {
    let width = table.iter().map(|s| s.scenario.len()).max().unwrap_or(8).max(8);
    println!("{:<width$}  {:>5}  {:>8}  {:<28}  result", "scenario", "seeds", "failures", "expected");
    for s in table {
        let verdict = if s.met_expectation { "ok" } else { "UNEXPECTED" };
        println!("{:<width$}  {:>5}  {:>8}  {:<28}  {verdict}", s.scenario, s.seeds, s.failures, s.expect);
    }
    for s in table.iter().filter(|s| !s.vacuous_on_every_seed.is_empty()) {
        let names: Vec<String> = s.vacuous_on_every_seed.iter().map(|n| format!("\"{n}\"")).collect();
        println!("note: {}: vacuous on every seed (nothing to judge): {}", s.scenario, names.join(", "));
    }
    let met = table.iter().filter(|s| s.met_expectation).count();
    println!(
        "{met} of {} scenarios as expected; {runs} runs in {elapsed:.2}s ({:.0} seeds/s)",
        table.len(),
        runs as f64 / elapsed.max(1e-9)
    );
}
