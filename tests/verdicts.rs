//! A verdict means what it says: `unknown` when the linearizability search
//! runs out of budget (never `pass`), `vacuous` for a check that had
//! nothing to judge, `not-run` for one the run never reached, and a
//! variant lists only the checks that apply to it.

mod common;
use common::{faultline, stdout};

use faultline::registry::SYSTEMS;
use faultline::sweep::run_seed;
use harness::check::CheckVerdict;
use harness::runner::RunOptions;
use harness::scenario::Scenario;

fn scenario(text: &str) -> Scenario {
    Scenario::parse("inline.toml", text, &SYSTEMS).expect("a valid scenario")
}

fn verdicts(text: &str, seed: u64) -> Vec<(String, CheckVerdict)> {
    let report = run_seed(&SYSTEMS, &scenario(text), seed, &RunOptions::default()).report;
    report.checks.into_iter().map(|c| (c.name, c.verdict)).collect()
}

#[test]
fn a_spent_search_budget_is_unknown_and_fails_the_run() {
    let o = faultline(&["run", "scenarios/replication/correct-3-storms.toml", "--seed", "1", "--max-states", "1"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("unknown: the linearizability search ran out of its budget"), "{text}");
    assert!(text.contains("check \"linearizable\": unknown"), "{text}");
    assert!(text.contains("NOT as expected"), "{text}");
    // The same seed with the default budget decides it.
    let o = faultline(&["run", "scenarios/replication/correct-3-storms.toml", "--seed", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // And a sweep counts it as unexpected.
    let o = faultline(&["sweep", "scenarios/replication/correct-3-storms.toml", "--seeds", "2", "--max-states", "1"]);
    assert_eq!(o.status.code(), Some(1));
}

const CALM_LEASES: &str = r#"title = "one leader, never challenged"
system = "election"
variant = "lease"
nodes = 3
duration = "5s"
"#;

#[test]
fn a_lease_never_contested_is_vacuous_and_the_sweep_says_so() {
    let v = verdicts(CALM_LEASES, 0);
    insta::assert_yaml_snapshot!("calm_leases_verdicts", v);
    assert!(v.contains(&("at most one valid lease holder at any instant".into(), CheckVerdict::Vacuous)));
    let path = std::env::temp_dir().join(format!("faultline-verdicts-{}.toml", std::process::id()));
    std::fs::write(&path, CALM_LEASES).expect("write");
    let o = faultline(&["sweep", path.to_str().expect("utf-8 path"), "--seeds", "3"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let note = text.lines().find(|l| l.contains("vacuous on every seed (nothing to judge): ")).unwrap_or_default();
    assert!(note.contains("\"at most one valid lease holder at any instant\""), "{text}");
}

#[test]
fn checks_after_an_online_violation_did_not_run() {
    // vote-not-persisted breaks "at most one leader per term" online; the
    // linearizability-free election has nothing else, so use replication's
    // commit-without-majority: its online violation stops the run before
    // the session checks and linearizability, which judge at the end.
    let text = std::fs::read_to_string("scenarios/replication/commit-without-majority.toml").expect("scenario");
    let s = Scenario::parse("scenarios/replication/commit-without-majority.toml", &text, &SYSTEMS).expect("valid");
    let failing = (0..20)
        .map(|seed| run_seed(&SYSTEMS, &s, seed, &RunOptions::default()).report)
        .find(|r| r.failed_check() == Some("committed entries are never lost or changed"))
        .expect("a seed breaks it");
    let v: Vec<(String, CheckVerdict)> = failing.checks.into_iter().map(|c| (c.name, c.verdict)).collect();
    insta::assert_yaml_snapshot!("online_violation_verdicts", v);
    for name in ["read your writes", "monotonic reads", "linearizable", "at most one leader per term"] {
        assert!(v.contains(&(name.into(), CheckVerdict::NotRun)), "{name}: {v:?}");
    }
}

#[test]
fn a_variant_lists_only_the_checks_that_apply_to_it() {
    let names = |text: &str| verdicts(text, 0).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    let election = |variant: &str| {
        format!("title = \"t\"\nsystem = \"election\"\nvariant = \"{variant}\"\nnodes = 3\nduration = \"2s\"\n")
    };
    assert!(!names(&election("correct")).iter().any(|n| n.contains("lease")), "no leases, no lease check");
    assert!(names(&election("lease")).iter().any(|n| n.contains("lease")));
    let replication = |variant: &str| {
        format!("title = \"t\"\nsystem = \"replication\"\nvariant = \"{variant}\"\nnodes = 3\nclients = 2\nduration = \"2s\"\n[workload]\nops = 20\n")
    };
    let failover = names(&replication("async-failover"));
    assert!(!failover.iter().any(|n| n == "committed entries are never lost or changed"), "{failover:?}");
    assert!(names(&replication("correct")).iter().any(|n| n == "committed entries are never lost or changed"));
}
