//! The HTML page of a run and of a checked history: byte-stable, one bar
//! per operation, the evidence highlighted, every value escaped, one page
//! per failing seed from a sweep. (`scripts/browser-check.sh` renders the
//! same pages in headless Chromium from `.ci/run`.)

mod common;
use common::{faultline, stdout};

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir.join(name)
}

fn run_page(seed: &str, out: &std::path::Path) -> String {
    let o = faultline(&["run", "scenarios/register/lost-update.toml", "--seed", seed, "--html", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "seed {seed} of lost-update fails as expected: {}", stdout(&o));
    assert!(stdout(&o).contains("violation of \"linearizable\""), "{}", stdout(&o));
    std::fs::read_to_string(out).expect("the page was written")
}

#[test]
fn a_runs_page_is_byte_stable_and_draws_every_operation_and_the_evidence() {
    let (a, b) = (temp("a.html"), temp("b.html"));
    let page = run_page("1", &a);
    assert_eq!(page, run_page("1", &b), "the same seed gives the same bytes");
    let (full, window) = page.split_once("<h2>Around the violation</h2>").expect("an evidence window");
    let invocations = full.matches("<g class=\"op ").count();
    assert!(invocations > 100, "{invocations} bars");
    assert_eq!(full.matches(" stuck\" data-op=").count(), 1, "one operation cannot be placed");
    assert!(window.contains(" stuck\" data-op="), "the window shows it too");
    assert!(page.contains("cannot be placed after it"));
    let messages = page.split_once("<h2>Messages</h2>").expect("a message sequence").1;
    assert_eq!(messages.matches("<g class=\"msg ").count(), 150, "the last 150 messages before the violation");
    assert!(!page.contains("<script"), "the page runs no script");
    assert!(!page.contains("src=") && !page.contains("href="), "nothing is loaded from elsewhere");
}

#[test]
fn a_hostile_history_value_is_shown_as_text() {
    let out = temp("hostile.html");
    let o =
        faultline(&["check", "tests/data/html/hostile.jsonl", "--model", "register", "--html", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let page = std::fs::read_to_string(&out).expect("the page was written");
    assert!(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"), "{page}");
    assert!(!page.contains("<script") && !page.contains("<img"), "no element from a value");
}

#[test]
fn a_sweep_writes_a_page_per_failing_seed() {
    let dir = temp("sweep");
    let o = faultline(&[
        "sweep",
        "scenarios/register/lost-update.toml",
        "--seeds",
        "4",
        "--html-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .expect("the folder")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    // Seeds 1 and 2 of lost-update fail, 0 and 3 pass.
    assert_eq!(pages, ["register__lost-update-seed1.html", "register__lost-update-seed2.html"]);
}

#[test]
fn a_runs_page_draws_the_leases_the_nodes_reported() {
    // The planted wall-clock TTL: c4 is granted the lock while c1's lease
    // still runs, and the page shows both.
    let out = temp("leases.html");
    let o =
        faultline(&["run", "scenarios/lock/ttl-on-wall-clock.toml", "--seed", "1", "--html", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let page = std::fs::read_to_string(&out).expect("the page was written");
    let (full, _) = page.split_once("<h2>Around the violation</h2>").expect("a zoom");
    assert!(
        full.contains("<g class=\"lease\"><title>c1 holds the lease on l1 (epoch 2) from 0.195731s, until 0.655543s")
    );
    assert!(full.contains("<g class=\"lease\"><title>c4 holds the lease on l1 (epoch 7) from 0.443155s"));
}

#[test]
fn a_wall_clock_lease_is_drawn_to_where_its_clock_really_reaches_the_deadline() {
    // Seed 2 bumps n1's wall clock back 2 s at 5 s: its lease then runs to
    // about 7.1 s, past n3's election at 5.208 s that the violation names.
    let out = temp("wall-lease.html");
    let o = faultline(&[
        "run",
        "scenarios/election/lease-on-wall-clock.toml",
        "--seed",
        "2",
        "--html",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("n3 was elected for epoch 2 at 5.208175s"), "{}", stdout(&o));
    let page = std::fs::read_to_string(&out).expect("the page was written");
    assert!(page.contains("n1 holds the lease on leadership (epoch 1) from 2.806156s, until 7.097083s"), "{page}");
}
