//! The `faultline` command.

mod check_cmd;
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "faultline", version, about = "Deterministic fault-injection testing for distributed systems")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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
        /// States a partition may explore before it is `unknown`.
        #[arg(long)]
        max_states: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        None => {
            println!("faultline: no scenarios to sweep yet (scenarios/ is empty)");
            Ok(true)
        }
        Some(Command::Check { files, model, format, json, report, max_states }) => {
            check_cmd::run(&check_cmd::CheckArgs { files, model, format, json, report, max_states })
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
