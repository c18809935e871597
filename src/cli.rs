//! Command-line plumbing shared by the subcommands: errors with exit
//! statuses, and report paths.

use std::path::{Path, PathBuf};

/// A failure to report: bad input or usage (exit 2).
#[derive(Debug)]
pub struct CliError {
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError { message: message.into() }
    }
    pub fn input(message: impl Into<String>) -> Self {
        CliError { message: message.into() }
    }
}

/// `--max-states`, checked against the checker's bound.
pub fn max_states(given: Option<u64>) -> Result<Option<u64>, CliError> {
    use harness::check::linearizability::MAX_STATES;
    match given {
        Some(n) if !(1..=MAX_STATES).contains(&n) => {
            Err(CliError::usage(format!("--max-states must be between 1 and {MAX_STATES}, not {n}")))
        }
        _ => Ok(given),
    }
}

/// Where to write a report, in the format its extension names.
pub enum ReportPath {
    Yaml(PathBuf),
    Json(PathBuf),
}

impl ReportPath {
    pub fn parse(path: &Path) -> Result<ReportPath, CliError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Ok(ReportPath::Yaml(path.to_owned())),
            Some("json") => Ok(ReportPath::Json(path.to_owned())),
            _ => Err(CliError::usage(format!("--report {}: expected a file ending in .yaml or .json", path.display()))),
        }
    }

    pub fn write(&self, yaml: &str, json: &str) -> Result<(), CliError> {
        let (path, text) = match self {
            ReportPath::Yaml(p) => (p, yaml),
            ReportPath::Json(p) => (p, json),
        };
        std::fs::write(path, text).map_err(|e| CliError::input(format!("cannot write {}: {e}", path.display())))
    }
}
