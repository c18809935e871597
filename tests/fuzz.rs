//! Fuzzing scenario files: texts built from the file's own keys with
//! careless and hostile values (zero, huge, negative, NaN, the wrong type,
//! unknown names). Whatever the text, parsing returns a scenario or an
//! error with a line and column, never a panic; a scenario that parses
//! plans and runs (a bounded number of events) without a `crash`, which
//! would mean a value got past validation that the world or a system
//! cannot take.

use faultline::harness::runner::RunOptions;
use faultline::harness::scenario::Scenario;
use faultline::registry::SYSTEMS;
use faultline::sweep::run_seed;
use proptest::prelude::*;

fn pick(values: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(values)
}

/// Mostly a usable value, now and then a hostile one: a text with one bad
/// value must be refused, and one with none must run.
fn mostly(usable: &'static [&'static str], hostile: &'static [&'static str]) -> BoxedStrategy<&'static str> {
    prop_oneof![12 => pick(usable), 1 => pick(hostile)].boxed()
}

const COUNTS: &[&str] = &["1", "3", "5", "2", "4"];
const BAD_COUNTS: &[&str] = &["0", "99", "100", "-1", "4294967296", "18446744073709551615", "1.5", "\"3\""];
const DURATIONS: &[&str] = &["\"5s\"", "\"10s\"", "\"3s\"", "\"20s\""];
const MOMENTS: &[&str] = &["\"1ns\"", "\"1ms\"", "\"250ms\"", "\"1s\"", "\"2s\""];
const BAD_DURATIONS: &[&str] = &["\"0s\"", "\"10000h\"", "\"10001h\"", "\"-1s\"", "\"soon\"", "5"];
const PROBABILITIES: &[&str] = &["0", "0.05", "0.3", "1.0"];
const BAD_PROBABILITIES: &[&str] = &["1.5", "-0.1", "nan", "inf", "\"high\""];
const NODES: &[&str] = &["\"n1\"", "\"n2\"", "\"n9\"", "\"c1\"", "\"c2\"", "\"x\"", "\"\""];
const TARGETS: &[&str] = &["\"leader\"", "\"random\"", "\"minority\"", "\"majority\"", "\"all\"", "\"n1\""];
const BAD_TARGETS: &[&str] = &["\"c1\"", "\"nobody\"", "\"n9\""];
const KINDS: &[&str] = &[
    "\"crash\"",
    "\"crash-in-handler\"",
    "\"restart\"",
    "\"kill\"",
    "\"pause\"",
    "\"resume\"",
    "\"partition\"",
    "\"heal\"",
    "\"clock-bump\"",
    "\"clock-strobe\"",
    "\"clock-reset\"",
    "\"clock-drift\"",
    "\"network\"",
    "\"meteor\"",
];
const LATENCIES: &[&str] = &[
    "{ dist = \"constant\", value = \"2ms\" }",
    "{ dist = \"uniform\", min = \"1ms\", max = \"5ms\" }",
    "{ dist = \"exponential\", mean = \"3ms\", max = \"100ms\" }",
    "{ dist = \"heavy-tail\", min = \"1ms\", alpha = 1.5, max = \"3s\" }",
    "{ dist = \"constant\", value = \"10000h\" }",
];
const BAD_LATENCIES: &[&str] = &[
    "{ dist = \"uniform\", min = \"5ms\", max = \"1ms\" }",
    "{ dist = \"heavy-tail\", min = \"1ms\", alpha = 0, max = \"3s\" }",
    "{ dist = \"constant\" }",
    "{ dist = \"gamma\", value = \"1ms\" }",
    "{ dist = \"constant\", value = \"1ms\", max = \"2ms\" }",
];
const CONFIG: &[&str] = &[
    "request_timeout = \"1ms\"",
    "request_timeout = \"0s\"",
    "retries = 1000000",
    "election_timeout = { min = \"1ms\", max = \"10ms\" }",
    "heartbeat = \"1ns\"",
    "heartbeat = { min = \"10ms\", max = \"1ms\" }",
    "tries = 0",
    "leader_reads = { one_of = [\"lease\", \"read-index\"] }",
    "operations = \"mixed\"",
    "max_drift_ppm = 1e9",
    "group_commit = \"-1s\"",
    "nonsense = 1",
    "max_receives = 0",
    "max_receives = { min = 1, max = 100 }",
    "visibility_timeout = \"1ns\"",
    "poison = 1.0",
    "redrive = { min = 0.0, max = 2.0 }",
    "broker = \"single\"",
    "broker = \"zookeeper\"",
    "step_tries = 0",
    "fail = 1.5",
    "retry = \"1ns\"",
];
const OPS: &[&str] = &[
    "[\"write\", \"k0\", 1]",
    "[\"read\", \"k0\"]",
    "[\"cas\", \"k0\", [1, 2]]",
    "[\"cas\", \"k0\", 3]",
    "[\"append\", \"l0\", 7]",
    "[\"incr\", \"c0\", 9223372036854775807]",
    "[\"session-read\", \"k0\"]",
    "[\"write\", \"k0\", \"text\"]",
    "[\"frobnicate\", \"k0\", 3]",
    "[\"write\"]",
    "[]",
    "[\"publish\", \"a0\", 5]",
    "[\"publish\", \"a0\", \"poison\"]",
    "[\"publish\", \"a0\", \"antidote\"]",
    "[\"consume\", \"queue\"]",
    "[\"redrive\", \"dlq\"]",
    "[\"book\", \"trip\", 5]",
    "[\"book\", \"trip\", [5, 1]]",
    "[\"book\", \"trip\", [5, -1]]",
];

/// One `[[fault]]`: a kind with the keys it takes, mostly; now and then a
/// key of another kind or a hostile value.
fn fault() -> impl Strategy<Value = String> {
    let d = || mostly(MOMENTS, BAD_DURATIONS);
    let kinds: &'static [&'static str] = &[
        "crash",
        "crash-in-handler",
        "restart",
        "kill",
        "pause",
        "resume",
        "partition",
        "heal",
        "clock-bump",
        "clock-strobe",
        "clock-reset",
        "clock-drift",
        "network",
    ];
    (d(), mostly(kinds, &["meteor"]), mostly(TARGETS, BAD_TARGETS), d(), any::<u8>()).prop_map(
        |(at, kind, target, for_, extra)| {
            let mut f = format!("\n[[fault]]\nat = {at}\nkind = \"{kind}\"\n");
            let keys = match kind {
                "partition" => [
                    "shape = \"halves\"\n",
                    "shape = \"isolate\"\ntarget = \"leader\"\n",
                    "groups = [[\"n1\"], [\"n2\", \"n3\"]]\n",
                    "groups = [[\"n1\"], [\"n2\", \"n1\"]]\n",
                ][usize::from(extra % 4)]
                .to_owned(),
                "clock-bump" => format!(
                    "target = {target}\ndelta = {}\n",
                    ["\"-2s\"", "\"500ms\"", "\"10000h\""][usize::from(extra % 3)]
                ),
                "clock-strobe" => format!(
                    "target = {target}\ndelta = \"1s\"\nperiod = {}\n",
                    ["\"100ms\"", "\"1ns\"", "\"0s\""][usize::from(extra % 3)]
                ),
                "clock-drift" => {
                    format!("target = {target}\nppm = {}\n", ["200", "-5000", "nan", "1e12"][usize::from(extra % 4)])
                }
                "network" => [
                    "loss = 0.5\n",
                    "duplicate = 0.3\n",
                    "latency = { dist = \"constant\", value = \"1s\" }\n",
                    "loss = nan\n",
                ][usize::from(extra % 4)]
                .to_owned(),
                "crash-in-handler" => {
                    format!("target = {target}\neffects = {}\n", ["0", "3", "1000000"][usize::from(extra % 3)])
                }
                "heal" => String::new(),
                _ => format!("target = {target}\n"),
            };
            f += &keys;
            if extra & 64 == 64 {
                f += &format!("for = {for_}\n");
            }
            f
        },
    )
}

/// A whole scenario file: a system with a variant of it, mostly right,
/// then optional sections.
fn scenario_text() -> impl Strategy<Value = String> {
    let systems: &'static [&'static str] = &[
        "system = \"register\"\nvariant = \"correct\"\nclients = 2\nnodes = 1\n",
        "system = \"register\"\nvariant = \"lost-update\"\nclients = 3\nnodes = 1\n",
        "system = \"election\"\nvariant = \"correct\"\nnodes = 3\n",
        "system = \"election\"\nvariant = \"lease\"\nnodes = 5\n",
        "system = \"replication\"\nvariant = \"correct\"\nclients = 2\nnodes = 3\n",
        "system = \"replication\"\nvariant = \"prev-term-unchecked\"\nclients = 4\nnodes = 5\n",
        "system = \"replication\"\nvariant = \"async-failover\"\nclients = 1\nnodes = 3\n",
        "system = \"lock\"\nvariant = \"correct\"\nclients = 3\nnodes = 4\n",
        "system = \"lock\"\nvariant = \"redlock\"\nclients = 2\nnodes = 6\n",
        "system = \"lock\"\nvariant = \"token-not-persisted\"\nclients = 2\nnodes = 2\n",
        "system = \"queue\"\nvariant = \"correct\"\nclients = 4\nnodes = 4\n",
        "system = \"queue\"\nvariant = \"attempts-not-persisted\"\nclients = 3\nnodes = 2\n",
        "system = \"queue\"\nvariant = \"no-dedup\"\nclients = 2\nnodes = 3\n",
        "system = \"saga\"\nvariant = \"orchestrated\"\nclients = 3\nnodes = 4\n",
        "system = \"saga\"\nvariant = \"log-not-synced\"\nclients = 2\nnodes = 2\n",
        "system = \"saga\"\nvariant = \"two-phase-commit\"\nclients = 2\nnodes = 3\n",
        "system = \"saga\"\nvariant = \"choreographed\"\nclients = 3\nnodes = 2\n",
    ];
    let wrong: &'static [&'static str] = &[
        "system = \"ring\"\n",
        "system = \"election\"\nclients = 2\nnodes = 3\n",
        "system = \"register\"\nvariant = \"lease\"\nclients = 1\n",
        "system = \"replication\"\nclients = 0\nnodes = 3\n",
        "system = \"replication\"\nclients = 100\nnodes = 3\n",
        "system = \"election\"\nnodes = 0\n",
        "system = \"lock\"\nclients = 2\nnodes = 1\n",
        "system = \"queue\"\nclients = 2\nnodes = 1\n",
        "system = \"saga\"\nclients = 2\nnodes = 1\n",
    ];
    let head = (mostly(systems, wrong), mostly(DURATIONS, BAD_DURATIONS), mostly(COUNTS, BAD_COUNTS), any::<u8>());
    let body = (
        (
            mostly(LATENCIES, BAD_LATENCIES),
            mostly(PROBABILITIES, BAD_PROBABILITIES),
            mostly(PROBABILITIES, BAD_PROBABILITIES),
        ),
        prop::collection::vec(fault(), 0..3),
        (prop::collection::vec(pick(KINDS), 1..4), mostly(MOMENTS, BAD_DURATIONS)),
        (mostly(COUNTS, BAD_COUNTS), mostly(COUNTS, BAD_COUNTS), mostly(MOMENTS, BAD_DURATIONS)),
        prop::collection::vec(pick(CONFIG), 1..3),
        prop::collection::vec(pick(OPS), 0..4),
        any::<u8>(),
    );
    (head, body).prop_map(|((system, duration, seeds, flags), body)| {
        let ((latency, loss, duplicate), faults, (kinds, every), (ops, keys, think), config, script, more) = body;
        let mut t = format!("title = \"fuzz\"\n{system}duration = {duration}\n");
        if flags & 2 == 2 {
            t += &format!("seeds = {seeds}\nliveness = {duration}\n");
        }
        if flags & 4 == 4 {
            t += &format!("[network]\nlatency = {latency}\nloss = {loss}\nduplicate = {duplicate}\n");
        }
        for f in &faults {
            t += f;
        }
        if flags & 8 == 8 {
            let kinds: Vec<&str> =
                kinds.into_iter().filter(|k| !["\"restart\"", "\"resume\"", "\"heal\""].contains(k)).collect();
            t += &format!("\n[nemesis]\nkinds = [{}]\nevery = {every}\n", kinds.join(", "));
        }
        if flags & 16 == 16 && !system.contains("register") {
            let action =
                ["\"crash\"", "\"pause\"", "\"partition\"", "\"crash-in-handler\"", "\"kill\""][usize::from(more) % 5];
            t += &format!("\n[[trigger]]\non = \"leader\"\nkind = {action}\nprobability = {loss}\n");
        }
        if flags & 32 == 32 {
            t += &format!("\n[workload]\nops = {ops}\nkeys = {keys}\nthink = {think}\n");
        } else if flags & 64 == 64 {
            let name = NODES[usize::from(more) % NODES.len()];
            t += &format!("\n[[workload.client]]\nname = {name}\nops = [{}]\n", script.join(", "));
        }
        if flags & 128 == 128 && more % 4 == 0 {
            t += &format!("\n[config]\n{}\n", config.join("\n"));
        }
        t
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn any_scenario_text_parses_or_says_where_and_runs_without_a_crash(text in scenario_text()) {
        let scenario = match Scenario::parse("fuzz.toml", &text, &SYSTEMS) {
            Ok(s) => s,
            Err(e) => {
                prop_assert!(e.line >= 1 && e.column >= 1, "{e:?}");
                return Ok(());
            }
        };
        let options = RunOptions { max_events: Some(20_000), max_states: Some(10_000), ..RunOptions::default() };
        let out = run_seed(&SYSTEMS, &scenario, 0, &options);
        prop_assert!(out.report.outcome.class() != "crash", "{}\n---\n{}", out.report.outcome, text);
    }
}

/// One JSON-lines history event, mostly well formed.
fn history_line() -> impl Strategy<Value = String> {
    let f = mostly(
        &["read", "write", "cas", "append", "incr", "get", "put", "enqueue", "dequeue", "acquire", "release"],
        &["frobnicate", ""],
    );
    let kind = mostly(&["invoke", "ok", "fail", "info"], &["done", "OK"]);
    let value = mostly(
        &["null", "1", "2", "[1, 2]", "[1, 3]", "\"x\"", "[7]", "true", "false"],
        &["1e400", "-9223372036854775809", "[[[[[]]]]]", "{\"a\": 1}"],
    );
    (0u64..4, kind, f, mostly(&["\"k\"", "\"j\"", "null"], &["3"]), value).prop_map(|(process, kind, f, key, value)| {
        format!("{{\"process\": {process}, \"type\": \"{kind}\", \"f\": \"{f}\", \"key\": {key}, \"value\": {value}}}")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn any_history_reads_or_says_where_and_checks_within_its_budget(lines in prop::collection::vec(history_line(), 0..30)) {
        use faultline::harness::check::linearizability::{check, Options};
        use faultline::harness::check::models::{Kv, Lock, Queue, Register};
        use faultline::harness::history_io::{read, Format};
        let text = lines.join("\n");
        let Ok(parsed) = read(Format::Jsonl, &text) else { return Ok(()) };
        let options = Options { max_states_per_partition: 2_000, ..Options::default() };
        // Malformed pairs and values a model cannot read are errors, not panics.
        let _ = check(&Kv, &parsed.history, &options);
        let _ = check(&Register, &parsed.history, &options);
        let _ = check(&Lock, &parsed.history, &options);
        let _ = check(&Queue, &parsed.history, &options);
    }
}
