//! The `faultline` command over any list of systems: faultline's own
//! binary runs it over [`crate::registry::SYSTEMS`]; a user's crate runs
//! it over its own systems with [`main`]. With no arguments it runs the
//! default sweep over `scenarios/` (the main job).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::system::Systems;

use crate::worlds::WorldKind;
use crate::{check_cmd, shrink, sweep};

#[derive(Parser)]
#[command(name = "faultline", version, about = "Deterministic fault-injection testing for distributed systems")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed of a scenario file.
    Run {
        file: PathBuf,
        /// The seed (default: the file's `seed`, else 0).
        #[arg(long)]
        seed: Option<u64>,
        /// Print every event of the run (to stderr).
        #[arg(long)]
        trace: bool,
        /// Write the canonical report (.yaml or .json).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the run as one self-contained HTML page (timeline, faults, evidence).
        #[arg(long)]
        html: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// States a linearizability partition may explore before it is `unknown`.
        #[arg(long)]
        max_states: Option<u64>,
        /// The world to run on: builtin, turmoil, or udp (real sockets, real time); madsim runs in its own lane.
        #[arg(long, value_enum, default_value_t)]
        world: WorldKind,
    },
    /// Run scenarios over many seeds, in parallel.
    Sweep {
        /// Scenario files or folders (default: scenarios/).
        paths: Vec<PathBuf>,
        /// Seeds per scenario (default: each file's `seeds`).
        #[arg(long)]
        seeds: Option<u64>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Only this machine's share, I of N (scenarios split deterministically).
        #[arg(long, value_parser = sweep::parse_shard)]
        shard: Option<(usize, usize)>,
        /// Run every seed twice and compare trace hashes.
        #[arg(long)]
        determinism: bool,
        /// One JSON object per scenario.
        #[arg(long)]
        json: bool,
        /// States a linearizability partition may explore before it is `unknown`.
        #[arg(long)]
        max_states: Option<u64>,
        /// The world to run on: builtin, turmoil, or udp (real sockets, real time); madsim runs in its own lane.
        #[arg(long, value_enum, default_value_t)]
        world: WorldKind,
        /// Write an HTML page (as `run --html`) for each seed that did not meet its file's expectation.
        #[arg(long)]
        html_dir: Option<PathBuf>,
    },
    /// Cut a failing run down to a minimal scenario file.
    Shrink {
        file: PathBuf,
        #[arg(long)]
        seed: u64,
        /// Where to write it (default: scenarios/regressions/<name>-seed<N>.toml).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check history files for linearizability.
    Check {
        /// History files (JSON lines, Jepsen etcd logs, or Porcupine EDN).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The sequential model: register, kv, lock or queue.
        #[arg(long)]
        model: String,
        /// jsonl, porcupine-etcd or porcupine-kv; inferred when absent.
        #[arg(long)]
        format: Option<String>,
        /// One JSON object per file.
        #[arg(long)]
        json: bool,
        /// Write the canonical report (.yaml or .json); one file only.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write one HTML page with a timeline of every file's history and its evidence.
        #[arg(long)]
        html: Option<PathBuf>,
        /// States a partition may explore before it is `unknown`.
        #[arg(long)]
        max_states: Option<u64>,
    },
}

fn default_sweep() -> sweep::SweepArgs {
    sweep::SweepArgs {
        paths: vec![PathBuf::from("scenarios")],
        seeds: None,
        jobs: None,
        shard: None,
        determinism: false,
        json: false,
        max_states: None,
        world: WorldKind::Builtin,
        html_dir: None,
    }
}

/// Parses the command line and runs the command over `systems`.
pub fn main(systems: &Systems) -> ExitCode {
    restore_sigpipe();
    quiet_panics();
    // Nothing observed after a panic is used again: the process ends.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| command(systems))) {
        Ok(code) => code,
        Err(payload) => {
            let message = harness::panics::message(payload.as_ref());
            if message.starts_with("failed printing to") {
                // A full disk or a closed terminal: nothing more can be shown there.
                eprintln!("faultline: cannot write the output: {message}");
            } else {
                eprintln!("faultline: internal error (a bug in faultline, please report it): {message}");
            }
            ExitCode::from(2)
        }
    }
}

/// Panics are caught where they happen: a node's becomes its run's
/// `crash` outcome, with its message in the report; anything else reaches
/// [`main`], which says what it was. Rust's default hook would also print
/// each one raw on stderr, so it is replaced by a silent one.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

fn command(systems: &Systems) -> ExitCode {
    // The world logs every event with its virtual time, one span per node:
    // `RUST_LOG=debug faultline run FILE` shows them. Off (and free) otherwise.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .without_time()
            .try_init();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        None => sweep::sweep_command(systems, &default_sweep()),
        Some(Command::Run { file, seed, trace, report, html, json, max_states, world }) => {
            sweep::run_command(systems, &sweep::RunArgs { file, seed, trace, report, html, json, max_states, world })
        }
        Some(Command::Sweep { paths, seeds, jobs, shard, determinism, json, max_states, world, html_dir }) => {
            let paths = if paths.is_empty() { default_sweep().paths } else { paths };
            sweep::sweep_command(
                systems,
                &sweep::SweepArgs { paths, seeds, jobs, shard, determinism, json, max_states, world, html_dir },
            )
        }
        Some(Command::Shrink { file, seed, out }) => {
            shrink::shrink_command(systems, &shrink::ShrinkArgs { file, seed, out })
        }
        Some(Command::Check { files, model, format, json, report, html, max_states }) => {
            check_cmd::run(&check_cmd::CheckArgs { files, model, format, json, report, html, max_states })
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("faultline: {}", e.message);
            ExitCode::from(2)
        }
    }
}

/// Rust ignores SIGPIPE, so `faultline sweep | head` would panic on the
/// closed pipe; like other Unix tools, let the pipe end the process quietly.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; it only
    // resets one signal's disposition to the system default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
