//! `faultline run`, `sweep` and `shrink` as a user runs them, and scenario
//! files with mistakes in them.

use std::path::{Path, PathBuf};
mod common;
use common::{faultline, stderr as err, stdout as out};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn write(name: &str, text: &str) -> String {
    let path = scratch(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

const GOOD: &str = r#"title = "t"
system = "register"
clients = 2
duration = "5s"
[workload]
ops = 20
"#;

#[test]
fn run_json_has_the_documented_fields_and_exit_status() {
    let o = faultline(&["run", "scenarios/register/lost-update.toml", "--seed", "1", "--json"]);
    assert_eq!(o.status.code(), Some(0), "a violation scenario that finds its violation meets its expectation");
    let line: serde_json::Value = serde_json::from_str(out(&o).trim()).expect("one JSON object");
    for key in ["scenario", "title", "seed", "outcome", "expected", "check", "trace_hash", "events", "virtual_time_ns"]
    {
        assert!(line.get(key).is_some(), "missing {key}: {line}");
    }
    assert_eq!(line["outcome"], "violation");
    assert_eq!(line["check"], "linearizable");
    assert_eq!(line["expected"], "violation of \"linearizable\"");
    // The same seed in a second process: the same trace.
    let again: serde_json::Value = serde_json::from_str(
        out(&faultline(&["run", "scenarios/register/lost-update.toml", "--seed", "1", "--json"])).trim(),
    )
    .expect("json");
    assert_eq!(line["trace_hash"], again["trace_hash"]);
}

#[test]
fn run_writes_a_report_and_prints_reproduction_commands() {
    let report = scratch("r.json");
    let o = faultline(&[
        "run",
        "scenarios/register/lost-update.toml",
        "--seed",
        "1",
        "--report",
        report.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("FAULTLINE_SEED=1 cargo test --test scenarios -- register/lost-update"), "{}", out(&o));
    assert!(out(&o).contains("cargo run --release -- run scenarios/register/lost-update.toml --seed 1"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).expect("written")).expect("json");
    assert_eq!(json["outcome"], "violation");
}

#[test]
fn sweep_json_reports_each_scenario_and_exit_1_when_one_misses() {
    let o = faultline(&["sweep", "scenarios/register", "--seeds", "4", "--json", "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let lines: Vec<serde_json::Value> = out(&o).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let files =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/register")).expect("dir").count();
    assert_eq!(lines.len(), files, "one line per scenario file");
    for key in ["scenario", "expect", "seeds", "failures", "first_failing_seed", "outcomes", "met_expectation"] {
        assert!(lines[0].get(key).is_some(), "missing {key}");
    }
    assert!(lines.iter().all(|l| l["seeds"] == 4 && l["met_expectation"] == true));
    // A buggy variant expected to pass: the sweep says so and exits 1.
    let path = write(
        "wrong.toml",
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/register/lost-update.toml"))
            .expect("read")
            .replace("expect = { violation = \"linearizable\" }", "expect = \"pass\""),
    );
    let o = faultline(&["sweep", &path, "--seeds", "3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("UNEXPECTED"), "{}", out(&o));
    assert!(out(&o).contains("--seed 1"), "{}", out(&o));
    // Shards split the scenarios between machines: together they cover all.
    let count = |shard: &str| {
        faultline(&["sweep", "scenarios/register", "--seeds", "1", "--json", "--shard", shard])
            .stdout
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    let (a, b) = (count("1/2"), count("2/2"));
    assert_eq!(a + b, files);
    assert!(a > 0 && b > 0, "both shards get work: {a} + {b}");
    assert_eq!(faultline(&["sweep", "--shard", "3/2"]).status.code(), Some(2));
}

#[test]
fn shrink_writes_a_file_that_fails_when_run() {
    let target = scratch("shrunk.toml");
    let o = faultline(&[
        "shrink",
        "scenarios/torture/register-ack-before-sync.toml",
        "--seed",
        "5",
        "--out",
        target.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains("removed"), "{}", out(&o));
    let text = std::fs::read_to_string(&target).expect("written");
    assert!(!text.contains("[nemesis]") && text.contains("seed = 5") && text.contains("[[fault]]"), "{text}");
    // The torture file's knobs are written out as the values seed 5 drew.
    assert!(
        text.contains("retries = ") && !text.contains("retries = {") && !text.contains("group_commit = {"),
        "{text}"
    );
    let run = faultline(&["run", target.to_str().expect("utf-8"), "--json"]);
    let line: serde_json::Value = serde_json::from_str(out(&run).trim()).expect("json");
    assert_eq!(line["outcome"], "violation", "{line}");
    assert_eq!(run.status.code(), Some(0));
    // Shrinking a passing seed is bad input.
    assert_eq!(faultline(&["shrink", "scenarios/register/correct-faults.toml", "--seed", "0"]).status.code(), Some(2));
}

#[test]
fn broken_scenario_files_name_file_line_and_column_and_exit_2() {
    let cases: &[(&str, &str, &str)] = &[
        ("syntax", "title = \"t\"\nsystem = \"register\nduration = \"5s\"\n", ":2:"),
        ("unknown-key", &format!("{GOOD}colour = \"red\"\n"), "unknown field `colour`"),
        ("bad-duration", &GOOD.replace("\"5s\"", "\"5 parsecs\""), ":4:12: unknown unit"),
        ("unknown-system", &GOOD.replace("\"register\"", "\"raft\""), ":2:10: unknown system \"raft\"; the systems are: register"),
        ("unknown-variant", &format!("variant = \"fast\"\n{GOOD}"), ":1:11: system \"register\" has no variant \"fast\"; its variants are: correct, lost-update, ack-before-sync"),
        ("late-fault", &format!("{GOOD}[[fault]]\nat = \"9s\"\nkind = \"crash\"\nnode = \"n1\"\n"), ":8:6: this fault is at 9s but the run's fault phase ends at 5s"),
        ("no-such-node", &format!("{GOOD}[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"n4\"\n"), ":10:8: node n4 does not exist: this scenario has 1 server (n1..n1)"),
        ("probability", &format!("{GOOD}[network]\nloss = 1.5\n"), ":8:8: loss is a probability"),
        ("bad-check", &format!("expect = {{ violation = \"fast\" }}\n{GOOD}"), "no check is named \"fast\"; this variant's checks are: linearizable"),
        ("nan-drift", &format!("{GOOD}[[fault]]\nat = \"1s\"\nkind = \"clock-drift\"\nnode = \"n1\"\nppm = nan\n"), ":11:7: ppm must be a number within +-100000, not NaN"),
        ("config-key", &format!("{GOOD}[config]\nspeed = 3\n"), ":8:1: [config]: unknown field `speed`, expected one of `request_timeout`, `retries`, `group_commit`"),
        ("config-range", &format!("{GOOD}[config]\nretries = 30\n"), ":8:11: [config]: expected an integer from 0 to 10, found 30"),
        ("config-zero", &format!("{GOOD}[config]\ngroup_commit = \"0s\"\n"), ":8:16: [config]: expected a positive duration"),
        ("client-op", "title = \"t\"\nsystem = \"register\"\nclients = 1\nduration = \"5s\"\n[[workload.client]]\nname = \"c1\"\nops = [[\"frobnicate\", \"k0\", 3]]\n", ":5:1: cannot run \"frobnicate\" with 3"),
        ("client-cas", "title = \"t\"\nsystem = \"register\"\nclients = 1\nduration = \"5s\"\n[[workload.client]]\nname = \"c1\"\nops = [[\"cas\", \"k0\", 3]]\n", "cannot run \"cas\" with 3"),
        ("fault-key", &format!("{GOOD}[[fault]]\nat = \"1s\"\nkind = \"pause\"\nnode = \"n1\"\nppm = 3\n"), "a pause fault does not take `ppm`"),
        ("trigger-event", &format!("{GOOD}[[trigger]]\non = \"leader\"\nkind = \"crash\"\n"), ":8:6: unknown event \"leader\"; system \"register\" reports no events to trigger on"),
        ("knob-backwards", &format!("{GOOD}[config]\nretries = {{ min = 5, max = 2 }}\n"), ":8:11: retries: `min` must not be above `max`"),
        ("knob-corner", &format!("{GOOD}[config]\nretries = {{ min = 1, max = 30 }}\n"), ":8:11: [config]: expected an integer from 0 to 10, found 30"),
        ("knob-beside-bad-key", &format!("{GOOD}[config]\nretries = {{ min = 1, max = 3 }}\ngroup_commit = \"0s\"\n"), ":9:16: [config]: expected a positive duration"),
        ("knob-beside-unknown-key", &format!("{GOOD}[config]\nretries = {{ min = 1, max = 3 }}\nspeed = 3\n"), ":9:9: [config]: unknown field `speed`"),
        ("events-budget", &format!("max_events = 0\n{GOOD}"), ":1:14: max_events must be between 1 and"),
        ("client-crash", &format!("{GOOD}[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"c1\"\n"), ":10:8: c1 is a client: clients never crash"),
    ];
    for (name, text, want) in cases {
        let path = write(&format!("{name}.toml"), text);
        let o = faultline(&["run", &path]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", err(&o));
        let e = err(&o);
        assert!(e.contains(&path), "{name}: the error names the file: {e}");
        assert!(e.contains(want), "{name}: wanted `{want}` in: {e}");
    }
}

const ELECTION: &str = r#"title = "t"
system = "election"
nodes = 3
duration = "5s"
seeds = 1
"#;

#[test]
fn a_trigger_crashes_each_new_leader_up_to_its_limit() {
    let crashes = |path: &str| -> usize {
        let report = scratch("trigger-report.json");
        let o = faultline(&["run", path, "--seed", "1", "--report", report.to_str().expect("utf-8")]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
        let faults = r["faults"].as_array().expect("faults").clone();
        faults.iter().filter(|f| f["fault"].as_str().is_some_and(|s| s.starts_with("crash"))).count()
    };
    assert_eq!(crashes(&write("quiet.toml", ELECTION)), 0, "no crashes without the trigger");
    let text = format!(
        "{ELECTION}[[trigger]]\non = \"leader\"\nkind = \"crash\"\nafter = {{ min = \"0ms\", max = \"5ms\" }}\nfor = \"50ms\"\nlimit = 3\n"
    );
    let triggered = write("triggered.toml", &text);
    assert_eq!(crashes(&triggered), 3, "the first three leaders crash, then the limit holds");
}

/// A system whose clients are workers (the queue's consumers) lets faults
/// crash them, and the run restarts them like any node.
#[test]
fn queue_clients_may_crash_and_restart() {
    let text = r#"title = "t"
system = "queue"
nodes = 2
clients = 2
duration = "5s"
seeds = 1
[workload]
ops = 40
[[fault]]
at = "1s"
kind = "crash"
node = "c2"
for = "1s"
"#;
    let path = write("queue-client-crash.toml", text);
    let o = faultline(&["run", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1.000000s crash c2"), "{out}");
}
