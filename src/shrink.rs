//! `faultline shrink`: cut a failing run down to a minimal scenario file.
//!
//! The seed's plan (the file's faults, the nemesis's draws, each client's
//! operations) is made explicit, then delta debugging removes faults,
//! shortens fault windows, removes operations and clients, keeping each
//! cut only while the run still fails the same way with the same seed.
//! The result is written as a scenario file with explicit faults, no
//! nemesis and a fixed seed, and is run once more to prove it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::runner::{Report, RunOptions};
use harness::scenario::{write_explicit, ClientOp, Plan, Scenario, TimedFault};
use harness::Outcome;

use crate::cli::CliError;
use crate::sweep::{load, test_name};
use harness::system::Systems;

pub struct ShrinkArgs {
    pub file: PathBuf,
    pub seed: u64,
    pub out: Option<PathBuf>,
}

/// How a run failed: the outcome class and, for violations, the check.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Failure {
    class: &'static str,
    check: Option<String>,
}

fn failure_of(report: &Report) -> Option<Failure> {
    match &report.outcome {
        Outcome::Pass => None,
        o => Some(Failure { class: o.class(), check: report.failed_check().map(str::to_owned) }),
    }
}

struct Shrinker<'a> {
    systems: &'a Systems,
    scenario: &'a Scenario,
    seed: u64,
    target: Failure,
    runs: u64,
}

impl Shrinker<'_> {
    /// Whether `plan` still fails the same way, and can be written as a
    /// scenario file that reads back (a cut that leaves, say, no clients
    /// for a system that needs them is no use, however it fails).
    fn fails(&mut self, plan: &Plan) -> bool {
        let text = write_explicit(self.scenario, plan, self.seed, &self.scenario.title);
        if Scenario::parse(&self.scenario.path, &text, self.systems).is_err() {
            return false;
        }
        self.runs += 1;
        let result =
            harness::panics::catch(|| self.systems.run(self.scenario, plan, self.seed, &RunOptions::default()).report);
        result.ok().and_then(|r| failure_of(&r)).is_some_and(|f| f == self.target)
    }
}

/// Delta debugging (complements only): the smallest sublist found for which `fails` holds.
fn ddmin<T: Clone>(mut items: Vec<T>, mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut n = 2usize;
    while !items.is_empty() {
        let chunk = items.len().div_ceil(n);
        let mut reduced = false;
        for start in (0..items.len()).step_by(chunk.max(1)) {
            let complement: Vec<T> =
                items[..start].iter().chain(items[(start + chunk).min(items.len())..].iter()).cloned().collect();
            if fails(&complement) {
                items = complement;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= items.len() {
                break;
            }
            n = (2 * n).min(items.len());
        }
    }
    items
}

pub fn shrink_command(systems: &Systems, args: &ShrinkArgs) -> Result<bool, CliError> {
    let scenario = load(systems, &args.file)?;
    let original = systems.plan(&scenario, args.seed);
    let first = systems.run(&scenario, &original, args.seed, &RunOptions::default()).report;
    let Some(target) = failure_of(&first) else {
        return Err(CliError::input(format!(
            "{} passes with seed {}: there is no failure to shrink",
            scenario.path, args.seed
        )));
    };
    println!("shrinking {} seed {}: {}", scenario.path, args.seed, first.outcome);
    let mut s = Shrinker { systems, scenario: &scenario, seed: args.seed, target, runs: 1 };
    let plan = minimise(&mut s, original.clone());
    report_removed(&original, &plan);
    let out = args.out.clone().unwrap_or_else(|| default_out(&scenario, args.seed));
    let title = format!("{} (shrunk from seed {})", scenario.title, args.seed);
    let mut text = format!(
        "# Shrunk by `faultline shrink {} --seed {}` from {} faults and {} operations.\n# Reproduce: {} run {}\n",
        scenario.path,
        args.seed,
        original.faults.len(),
        original.clients.iter().map(Vec::len).sum::<usize>(),
        systems.command(),
        out.display()
    );
    text.push_str(&write_explicit(&scenario, &plan, args.seed, &title));
    // Checked before writing: a file that does not read back is never left behind.
    let written = Scenario::parse(&out.display().to_string(), &text, systems)
        .map_err(|e| CliError::input(format!("the shrunk file does not parse (a bug in shrink): {e}")))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| CliError::input(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&out, &text).map_err(|e| CliError::input(format!("cannot write {}: {e}", out.display())))?;
    // The written file must fail on its own, the same way.
    let check = systems.run(&written, &systems.plan(&written, args.seed), args.seed, &RunOptions::default()).report;
    let verified = failure_of(&check) == Some(s.target.clone());
    println!(
        "wrote {} after {} runs: {} faults, {} clients, {} operations; it {}",
        out.display(),
        s.runs,
        plan.faults.len(),
        plan.clients.len(),
        plan.clients.iter().map(Vec::len).sum::<usize>(),
        if verified { "fails the same way when run" } else { "DOES NOT fail the same way when run" }
    );
    Ok(verified)
}

fn default_out(scenario: &Scenario, seed: u64) -> PathBuf {
    let name = test_name(&scenario.path).replace('/', "-");
    Path::new("scenarios/regressions").join(format!("{name}-seed{seed}.toml"))
}

/// A trial plan: these faults and clients, with `base`'s knobs and triggers
/// (shrinking keeps both as they are).
fn with(base: &Plan, faults: Vec<TimedFault>, clients: Vec<Vec<ClientOp>>) -> Plan {
    Plan { faults, clients, config: base.config.clone(), triggers: base.triggers.clone() }
}

fn minimise(s: &mut Shrinker<'_>, plan: Plan) -> Plan {
    // Faults first: each removed one makes every later run cheaper to read.
    let clients = plan.clients.clone();
    let faults = ddmin(plan.faults.clone(), |f| s.fails(&with(&plan, f.to_vec(), clients.clone())));
    let faults = shorten_windows(s, faults, &clients, &plan);
    // Whole clients, from the last, then each client's operations.
    let mut clients = clients;
    let mut i = clients.len();
    while i > 0 {
        i -= 1;
        let mut fewer = clients.clone();
        fewer.remove(i);
        if s.fails(&with(&plan, faults.clone(), fewer.clone())) {
            clients = fewer;
        }
    }
    for c in 0..clients.len() {
        let ops = clients[c].clone();
        let kept = ddmin(ops, |o| {
            let mut trial = clients.clone();
            trial[c] = o.to_vec();
            s.fails(&with(&plan, faults.clone(), trial))
        });
        clients[c] = kept;
    }
    with(&plan, faults, clients)
}

/// Halves each fault's window while the run still fails.
fn shorten_windows(
    s: &mut Shrinker<'_>,
    mut faults: Vec<TimedFault>,
    clients: &[Vec<ClientOp>],
    base: &Plan,
) -> Vec<TimedFault> {
    for i in 0..faults.len() {
        while let Some(d) = faults[i].duration {
            let half = d / 2;
            if half < Duration::from_millis(1) {
                break;
            }
            let mut trial = faults.clone();
            trial[i].duration = Some(half);
            if !s.fails(&with(base, trial.clone(), clients.to_vec())) {
                break;
            }
            faults = trial;
        }
    }
    faults
}

fn report_removed(before: &Plan, after: &Plan) {
    let kept: Vec<String> = after.faults.iter().map(|f| format!("{:?} {}", f.at, f.fault)).collect();
    println!(
        "removed {} of {} faults (kept: {})",
        before.faults.len() - after.faults.len(),
        before.faults.len(),
        if kept.is_empty() { "none".to_owned() } else { kept.join("; ") }
    );
    let ops_before: usize = before.clients.iter().map(Vec::len).sum();
    let ops_after: usize = after.clients.iter().map(Vec::len).sum();
    println!(
        "removed {} of {} clients and {} of {} operations",
        before.clients.len() - after.clients.len(),
        before.clients.len(),
        ops_before - ops_after,
        ops_before
    );
}
