//! `faultline check`: linearizability verdicts on history files.

use std::path::{Path, PathBuf};

use harness::check::linearizability::{check, LinearizabilityReport, Options, Verdict};
use harness::check::models::{Kv, Lock, Queue, Register};
use harness::history_io::{read, Format, ParsedHistory};
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::{CliError, ReportPath};

/// The models `--model` accepts.
pub const MODELS: &[&str] = &["register", "kv", "lock", "queue"];

pub struct CheckArgs {
    pub files: Vec<PathBuf>,
    pub model: String,
    pub format: Option<String>,
    pub json: bool,
    pub report: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub max_states: Option<u64>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    file: String,
    verdict: &'a str,
    ops: usize,
    partitions: usize,
    states: u64,
}

/// Checks every file; returns whether all were linearizable.
pub fn run(args: &CheckArgs) -> Result<bool, CliError> {
    if !MODELS.contains(&args.model.as_str()) {
        return Err(CliError::usage(format!("unknown model `{}`; expected one of {}", args.model, MODELS.join(", "))));
    }
    let format = match &args.format {
        None => None,
        Some(f) => Some(Format::parse(f).ok_or_else(|| {
            CliError::usage(format!("unknown format `{f}`; expected one of {}", Format::NAMES.join(", ")))
        })?),
    };
    if args.report.is_some() && args.files.len() != 1 {
        return Err(CliError::usage("--report takes exactly one history file"));
    }
    let report_path = args.report.as_deref().map(ReportPath::parse).transpose()?;
    let mut options = Options::default();
    if let Some(max) = crate::cli::max_states(args.max_states)? {
        options.max_states_per_partition = max;
    }
    // The evidence window costs probes of its own: only where evidence is
    // shown (one file's text report, `--report`, `--html`), not for a
    // batch of one-line verdicts.
    let evidence_shown = (!args.json && args.files.len() == 1) || args.report.is_some() || args.html.is_some();
    if !evidence_shown {
        options.evidence = false;
        options.max_states_window = 0;
    }
    // Files are independent: read and check them on every core, then
    // report in the order given. Every file is read and parsed first: bad
    // input anywhere is exit 2 before any verdict.
    // Errors are collected in order too, so the one reported is always the
    // first file's.
    let parsed: Vec<Result<ParsedHistory, CliError>> = args.files.par_iter().map(|file| load(file, format)).collect();
    let parsed: Vec<ParsedHistory> = parsed.into_iter().collect::<Result<_, _>>()?;
    let checked: Vec<Result<LinearizabilityReport, CliError>> = args
        .files
        .par_iter()
        .zip(&parsed)
        .map(|(file, history)| {
            check_with(&args.model, history, &options).map_err(|(event, message)| {
                CliError::input(format!("{}:{}: {message}", file.display(), history.line_of(event)))
            })
        })
        .collect();
    let checked: Vec<LinearizabilityReport> = checked.into_iter().collect::<Result<_, _>>()?;
    let mut all_linearizable = true;
    let mut reports = Vec::with_capacity(parsed.len());
    for (file, report) in args.files.iter().zip(checked) {
        all_linearizable &= report.verdict == Verdict::Linearizable;
        if args.json {
            let line = JsonLine {
                file: file.display().to_string(),
                verdict: report.verdict.as_str(),
                ops: report.operations,
                partitions: report.partitions.len(),
                states: report.states_explored,
            };
            println!("{}", serde_json::to_string(&line).expect("serialises"));
        } else if args.files.len() == 1 {
            print!("{}: {}", file.display(), report.to_text());
        } else {
            println!(
                "{}: {} ({} operations, {} partitions, {} states)",
                file.display(),
                report.verdict.as_str(),
                report.operations,
                report.partitions.len(),
                report.states_explored
            );
        }
        if let Some(path) = &report_path {
            path.write(&report.to_yaml(), &report.to_json())?;
        }
        reports.push(report);
    }
    if let Some(path) = &args.html {
        write_html(path, &args.files, &parsed, &reports)?;
    }
    Ok(all_linearizable)
}

/// One page, a section per history file: its timeline and evidence.
fn write_html(
    path: &Path,
    files: &[PathBuf],
    parsed: &[ParsedHistory],
    reports: &[LinearizabilityReport],
) -> Result<(), CliError> {
    let sections: Vec<crate::html::Section<'_>> = files
        .iter()
        .zip(parsed)
        .zip(reports)
        .map(|((file, history), report)| crate::html::Section {
            heading: file.display().to_string(),
            facts: vec![
                ("model".to_owned(), report.model.clone()),
                ("verdict".to_owned(), report.verdict.as_str().to_owned()),
                ("operations".to_owned(), report.operations.to_string()),
            ],
            outcome: None,
            history: &history.history,
            faults: &[],
            linearizability: Some(report),
            reigns: &[],
            leases: &[],
            messages: &[],
            end: 0,
        })
        .collect();
    let title = if files.len() == 1 { files[0].display().to_string() } else { format!("{} histories", files.len()) };
    let page = crate::html::page(&title, &sections);
    std::fs::write(path, page).map_err(|e| CliError::input(format!("cannot write {}: {e}", path.display())))
}

fn load(file: &Path, format: Option<Format>) -> Result<ParsedHistory, CliError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| CliError::input(format!("{}: cannot read: {e}", file.display())))?;
    let format = format.unwrap_or_else(|| Format::infer(&file.display().to_string(), &text));
    read(format, &text).map_err(|e| {
        let column = e.column.map(|c| format!(":{c}")).unwrap_or_default();
        CliError::input(format!("{}:{}{column}: {} (read as {format})", file.display(), e.line, e.message))
    })
}

pub fn check_with(
    model: &str,
    parsed: &ParsedHistory,
    options: &Options,
) -> Result<LinearizabilityReport, (usize, String)> {
    let h = &parsed.history;
    let result = match model {
        "register" => check(&Register, h, options),
        "kv" => check(&Kv, h, options),
        "lock" => check(&Lock, h, options),
        "queue" => check(&Queue, h, options),
        other => unreachable!("model {other} was validated"),
    };
    result.map_err(|e| (e.event, e.message))
}
