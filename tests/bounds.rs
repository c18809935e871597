//! Bounded by construction: inputs that once aborted, panicked or ran
//! unbounded now end with exit 2 and the place of the bad value, or run
//! in bounded memory. Each case is one from the issue that found it.

mod common;

use common::{faultline, stderr, stdout};

/// Writes `text` to a scenario file of its own and runs `faultline` on it.
fn with_file(name: &str, text: &str, args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("faultline-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    let path = path.to_str().expect("utf-8 path").to_owned();
    let mut all: Vec<&str> = args.to_vec();
    all.push(&path);
    faultline(&all)
}

/// Exit 2, with `expected` in a `file:line:column: ` message and no panic text.
fn refused(o: &std::process::Output, at: &str, expected: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}{}", stdout(o));
    assert!(err.contains(at) && err.contains(expected), "wanted {at} and {expected:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

const HEAD: &str = "title = \"t\"\nsystem = \"register\"\nclients = 1\n";

#[test]
fn plans_too_large_to_build_are_refused_where_they_are_written() {
    let ops = format!("{HEAD}duration = \"1s\"\n[workload]\nops = 1000000000\n");
    refused(&with_file("ops.toml", &ops, &["run"]), "ops.toml:6:7:", "ops must be at most 500000");
    let long = format!("{HEAD}duration = \"100000h\"\n");
    refused(&with_file("long.toml", &long, &["run"]), "long.toml:4:12:", "at most 10000h");
    let busy = format!("{HEAD}duration = \"9000h\"\n[nemesis]\nkinds = [\"crash\"]\nevery = \"1ms\"\n");
    refused(&with_file("busy.toml", &busy, &["run"]), "busy.toml:7:9:", "plans more than 100000 faults");
    let seeds = format!("{HEAD}duration = \"1s\"\nseeds = 9223372036854775807\n");
    refused(&with_file("seeds.toml", &seeds, &["sweep"]), "seeds.toml:5:9:", "seeds must be between 1 and 1000000");
}

#[test]
fn seed_job_and_state_counts_out_of_range_are_usage_errors() {
    let file = "scenarios/register/lost-update.toml";
    for seeds in ["0", "1000001", "18446744073709551615"] {
        let o = faultline(&["sweep", file, "--seeds", seeds]);
        refused(&o, "--seeds", "between 1 and 1000000");
    }
    refused(&faultline(&["sweep", file, "--jobs", "100000"]), "--jobs", "between 1 and 256");
    for command in [
        &["sweep", file][..],
        &["run", file],
        &["check", "tests/data/porcupine/kv/c01-ok.txt", "--format", "porcupine-kv", "--model", "kv"],
    ] {
        for states in ["0", "10000001"] {
            let o = faultline(&[command, &["--max-states", states]].concat());
            refused(&o, "--max-states", "between 1 and 10000000");
        }
    }
}

#[test]
fn a_sweep_of_many_seeds_keeps_a_tally_not_a_report_per_seed() {
    // A register with no clients' work ends at once: the cost is the sweep's own.
    let text = "title = \"t\"\nsystem = \"register\"\nclients = 1\nduration = \"1ms\"\nseeds = 100000\n";
    let o = with_file("million.toml", text, &["sweep", "--json"]);
    assert!(o.status.code() == Some(0) || o.status.code() == Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"seeds\":100000,"), "{}", stdout(&o));
}

#[test]
fn ambiguous_or_degenerate_inputs_are_refused() {
    let twice = format!(
        "{HEAD}duration = \"1s\"\n[[workload.client]]\nname = \"c1\"\nops = [[\"write\", \"k0\", 1]]\n\
         [[workload.client]]\nname = \"c1\"\nops = [[\"write\", \"k0\", 2]]\n"
    );
    refused(&with_file("twice.toml", &twice, &["run"]), "twice.toml:8:1:", "a second script for c1");
    let groups = "title = \"t\"\nsystem = \"register\"\nclients = 1\nnodes = 1\nduration = \"2s\"\n\
                  [[fault]]\nat = \"1s\"\nkind = \"partition\"\ngroups = [[\"n1\", \"c1\"], [\"c1\"]]\n";
    refused(&with_file("groups.toml", groups, &["run"]), "groups.toml:9:10:", "c1 is in `groups` twice");
    let empty = groups.replace("[[\"n1\", \"c1\"], [\"c1\"]]", "[[\"n1\"], []]");
    refused(&with_file("empty.toml", &empty, &["run"]), "empty.toml:9:10:", "at least one node");
    let no_clients = "title = \"t\"\nsystem = \"replication\"\nnodes = 3\nduration = \"2s\"\n";
    refused(&with_file("none.toml", no_clients, &["run"]), "none.toml:1:1:", "needs clients");
}

#[test]
fn a_full_output_device_is_an_error_message_not_a_panic() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else { return };
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "scenarios/register/lost-update.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(full)
        .output()
        .expect("faultline runs");
    refused(&o, "cannot write the output", "No space left on device");
}

#[test]
fn a_message_storm_ends_at_the_pending_event_limit() {
    // A heartbeat of a nanosecond sends faster than messages arrive.
    let text = "title = \"t\"\nsystem = \"election\"\nvariant = \"lease\"\nnodes = 5\nduration = \"10s\"\n\
                [config]\nheartbeat = \"1ns\"\n";
    let o = with_file("storm.toml", text, &["run"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("liveness: the limit of 1000000 pending events"), "{}", stdout(&o));
}

#[test]
fn messages_quote_paths_for_a_shell_and_never_echo_a_huge_value() {
    let huge = format!("title = \"t\"\nsystem = \"{}\"\nduration = \"1s\"\n", "x".repeat(100_000));
    let o = with_file("huge.toml", &huge, &["run"]);
    refused(&o, "huge.toml:2:10:", "unknown system");
    assert!(stderr(&o).len() < 1_000, "{} bytes", stderr(&o).len());
    // A failing run's reproduction command reads back in a shell.
    let lossy = "title = \"t\"\nsystem = \"register\"\nclients = 1\nduration = \"2s\"\nliveness = \"1s\"\n\
                 [network]\nloss = 1.0\n[workload]\nops = 3\n";
    let o = with_file("it's lossy.toml", lossy, &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("lossy.toml\" --seed 0"), "{}", stdout(&o));
}

#[test]
fn a_history_file_may_start_with_a_byte_order_mark() {
    let dir = std::env::temp_dir().join(format!("faultline-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bom.jsonl");
    let text = "\u{feff}{\"process\": 0, \"type\": \"invoke\", \"f\": \"write\", \"key\": \"k\", \"value\": 1}\n\
                {\"process\": 0, \"type\": \"ok\", \"f\": \"write\", \"key\": \"k\", \"value\": 1}\n";
    std::fs::write(&path, text).expect("write history");
    let o = faultline(&["check", path.to_str().expect("utf-8"), "--model", "kv"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

/// A history of `ops` sequential operations of one process, as JSON lines.
fn sequential_history(ops: u32, op: impl Fn(u32) -> (&'static str, String, String)) -> String {
    let mut text = String::new();
    for i in 0..ops {
        let (f, input, output) = op(i);
        text +=
            &format!("{{\"process\": 0, \"type\": \"invoke\", \"f\": \"{f}\", \"key\": \"k\", \"value\": {input}}}\n");
        text += &format!("{{\"process\": 0, \"type\": \"ok\", \"f\": \"{f}\", \"key\": \"k\", \"value\": {output}}}\n");
    }
    text
}

#[test]
fn long_sequential_histories_are_checked_in_linear_time_and_memory() {
    let dir = std::env::temp_dir().join(format!("faultline-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // 100,000 writes and reads of one register; 20,000 list appends (each
    // state a list as long as its depth: copies would take gigabytes).
    let register = sequential_history(100_000, |i| {
        if i % 2 == 0 {
            ("write", i.to_string(), i.to_string())
        } else {
            ("read", "null".into(), (i - 1).to_string())
        }
    });
    let appends = sequential_history(20_000, |i| ("append", i.to_string(), "null".into()));
    // 20,000 enqueues, then as many dequeues: a queue state per level.
    let queue = sequential_history(40_000, |i| match i.checked_sub(20_000) {
        None => ("enqueue", i.to_string(), "null".into()),
        Some(head) => ("dequeue", "null".into(), head.to_string()),
    });
    for (name, text, model) in
        [("register.jsonl", register, "register"), ("appends.jsonl", appends, "kv"), ("queue.jsonl", queue, "queue")]
    {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write history");
        let o = faultline(&["check", path.to_str().expect("utf-8"), "--model", model]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("verdict: linearizable"), "{name}: {}", stdout(&o));
    }
}
