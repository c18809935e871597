//! Property tests of the linearizability checker and the history readers.

use proptest::prelude::*;

use harness::check::linearizability::{check, Options, Verdict};
use harness::check::models::{Call, Kv, Model, Register};
use harness::history_io::{read, Format};
use harness::{History, Op, OpType, Value};

/// One generated operation: who, what, and when it started and ended.
#[derive(Clone, Debug)]
struct GenOp {
    f: &'static str,
    input: Value,
    output: Value,
    invoke: u32,
    /// `None`: indeterminate (`info`).
    ret: Option<u32>,
}

/// Events in time order; each op gets its own process, so processes never overlap.
fn to_history(ops: &[GenOp]) -> History {
    let mut events: Vec<(u32, u8, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoke, 0, i));
        events.push((op.ret.unwrap_or(u32::MAX), 1, i));
    }
    events.sort();
    let mut h = History::new();
    for (_, kind, i) in events {
        let op = &ops[i];
        let (kind, value) = match (kind, op.ret) {
            (0, _) => (OpType::Invoke, op.input.clone()),
            (_, Some(_)) => (OpType::Ok, op.output.clone()),
            (_, None) => (OpType::Info, Value::Null),
        };
        h.push(Op { process: i as u64, kind, f: op.f.to_owned(), key: None, value, time: None });
    }
    h
}

/// An independent brute-force search over every order consistent with real time.
fn brute_force(ops: &[GenOp]) -> bool {
    brute_force_with(&Register, ops)
}

/// The same search with any model: it tries every order, remembering nothing.
fn brute_force_with<M: Model>(model: &M, ops: &[GenOp]) -> bool {
    fn go<M: Model>(model: &M, ops: &[GenOp], done: &mut Vec<bool>, state: &M::State) -> bool {
        if ops.iter().zip(done.iter()).all(|(o, &d)| d || o.ret.is_none()) {
            return true;
        }
        for x in 0..ops.len() {
            if done[x] {
                continue;
            }
            // x may go next unless a pending definite op returned before x was invoked.
            let blocked = (0..ops.len()).any(|y| !done[y] && y != x && ops[y].ret.is_some_and(|r| r < ops[x].invoke));
            if blocked {
                continue;
            }
            let output = ops[x].ret.map(|_| &ops[x].output);
            let call = Call { process: 0, f: ops[x].f, key: None, input: &ops[x].input, output };
            let next = match model.prepare(&call).expect("valid op") {
                None => Some(state.clone()),
                Some(op) => model.step(state, &op).ok(),
            };
            if let Some(next) = next {
                done[x] = true;
                let ok = go(model, ops, done, &next);
                done[x] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }
    go(model, ops, &mut vec![false; ops.len()], &model.init())
}

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), (0i64..3).prop_map(Value::Int)]
}

fn gen_op() -> impl Strategy<Value = GenOp> {
    let f = prop_oneof![Just("read"), Just("write"), Just("cas")];
    (f, small_value(), small_value(), small_value(), 0u32..40, 1u32..20, prop::bool::weighted(0.25), prop::bool::ANY)
        .prop_map(|(f, a, b, c, invoke, len, info, cas_ok)| {
            let (input, output) = match f {
                "read" => (Value::Null, a),
                "write" => (a.clone(), a),
                _ => {
                    let pair = Value::pair(a, b);
                    (pair.clone(), if cas_ok { pair } else { Value::Bool(false) })
                }
            };
            let _ = c;
            // Distinct times: 2x and 2x+1 keep invocations and returns apart.
            GenOp { f, input, output, invoke: invoke * 2, ret: (!info).then_some((invoke + len) * 2 + 1) }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_brute_force_on_small_histories(ops in prop::collection::vec(gen_op(), 1..=8)) {
        let history = to_history(&ops);
        let report = check(&Register, &history, &Options::default()).expect("valid history");
        let expected = if brute_force(&ops) { Verdict::Linearizable } else { Verdict::NotLinearizable };
        prop_assert_eq!(report.verdict, expected, "history: {:?}", history.ops);
    }
}

/// A short string of `a`s and `b`s: what Porcupine's kv histories hold,
/// in small. Gets read such strings, so some states are observed and most
/// orders of appends are not.
fn small_text() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["", "a", "b", "ab", "ba", "aa", "bb", "aab", "abb", "bab"]).prop_map(Value::from)
}

/// Porcupine's kv ops on one key (get, put, string append), with the
/// register's read, write and cas on strings mixed in.
fn gen_text_op() -> impl Strategy<Value = GenOp> {
    let f = prop_oneof![
        3 => Just("get"),
        2 => Just("put"),
        4 => Just("append"),
        1 => Just("read"),
        1 => Just("cas")
    ];
    let piece = prop::sample::select(vec!["a", "b"]).prop_map(Value::from);
    (f, small_text(), small_text(), piece, 0u32..30, 1u32..20, prop::bool::weighted(0.2), prop::bool::ANY).prop_map(
        |(f, a, b, piece, invoke, len, info, cas_ok)| {
            let (input, output) = match f {
                "get" | "read" => (Value::Null, a),
                "put" => (a.clone(), a),
                "append" => (piece.clone(), piece),
                _ => {
                    let pair = Value::pair(a, b);
                    (pair.clone(), if cas_ok { pair } else { Value::Bool(false) })
                }
            };
            GenOp { f, input, output, invoke: invoke * 2, ret: (!info).then_some((invoke + len) * 2 + 1) }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// The string pruning (a string no op can observe is one state to the
    /// memo, `Model::memo_hash`) loses no linearization and finds no false
    /// one.
    #[test]
    fn agrees_with_brute_force_on_small_string_histories(ops in prop::collection::vec(gen_text_op(), 1..=9)) {
        let history = to_history(&ops);
        let report = check(&Kv, &history, &Options::default()).expect("valid history");
        let expected = if brute_force_with(&Kv, &ops) { Verdict::Linearizable } else { Verdict::NotLinearizable };
        prop_assert_eq!(report.verdict, expected, "history: {:?}", history.ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The evidence window is evidence on its own (checked by brute force):
    /// with only its operations definite and every other one indeterminate,
    /// the history is still not linearizable; and when the report says it
    /// is minimal, relaxing any one of them (but the stuck op) makes it
    /// linearizable.
    #[test]
    fn the_evidence_window_is_not_linearizable_alone(ops in prop::collection::vec(gen_op(), 1..=8)) {
        let history = to_history(&ops);
        let report = check(&Register, &history, &Options::default()).expect("valid history");
        let Some(evidence) = report.partitions.first().and_then(|p| p.violation.as_ref()) else { return Ok(()) };
        // History index -> generated op (each op has its own process).
        let gen = |event: usize| history.ops[event].process as usize;
        let stuck = gen(evidence.stuck.op);
        let window = evidence.window.as_ref().expect("a window for a history this small");
        let kept: Vec<usize> = window.ops.iter().map(|o| gen(o.op)).collect();
        let relaxed = |kept: &[usize]| -> Vec<GenOp> {
            ops.iter()
                .enumerate()
                .map(|(i, o)| GenOp { ret: if kept.contains(&i) { o.ret } else { None }, ..o.clone() })
                .collect()
        };
        prop_assert!(!brute_force(&relaxed(&kept)), "the window alone is not linearizable: {:?}", window);
        // The stuck op is needed too when it was pinned (the search's prefix
        // linearizes everything else it must), so every op is checked.
        let _ = stuck;
        if window.minimal {
            for &w in &kept {
                let fewer: Vec<usize> = kept.iter().copied().filter(|&k| k != w).collect();
                prop_assert!(brute_force(&relaxed(&fewer)), "op {} of the window is needed: {:?}", w, window);
            }
        }
    }
}

/// Two concurrent compare-and-sets from nil that both succeeded: the
/// window is the two of them, whatever the read saw.
#[test]
fn a_window_of_two_concurrent_compare_and_sets() {
    let ops = vec![
        GenOp {
            f: "cas",
            input: Value::pair(Value::Null, Value::Int(1)),
            output: Value::pair(Value::Null, Value::Int(1)),
            invoke: 0,
            ret: Some(11),
        },
        GenOp {
            f: "cas",
            input: Value::pair(Value::Null, Value::Int(2)),
            output: Value::pair(Value::Null, Value::Int(2)),
            invoke: 2,
            ret: Some(13),
        },
        GenOp { f: "read", input: Value::Null, output: Value::Int(2), invoke: 4, ret: Some(15) },
    ];
    let history = to_history(&ops);
    let report = check(&Register, &history, &Options::default()).expect("valid history");
    let evidence = report.partitions[0].violation.as_ref().expect("not linearizable");
    let window = evidence.window.as_ref().expect("a window");
    let calls: Vec<&str> = window.ops.iter().map(|o| o.call.as_str()).collect();
    assert_eq!(calls, ["p0 cas [nil 1] -> [nil 1]", "p1 cas [nil 2] -> [nil 2]"], "{window:?}");
    assert!(window.minimal);
    assert!(!brute_force(&[GenOp { ret: None, ..ops[2].clone() }, ops[0].clone(), ops[1].clone()]));
}

/// A run of a real sequential kv store under concurrency: each op takes
/// effect at a random instant inside its interval; a crashed op may or may
/// not take effect and completes as `info`. List appends (`push`, read by
/// `lread`) and increments (`incr`, read by `cread`) use keys of their own.
#[derive(Clone, Debug)]
struct Planned {
    key: u8,
    f: &'static str,
    token: u32,
    invoke: u32,
    effect: u32,
    ret: u32,
    crashed: bool,
    crashed_applies: bool,
}

fn planned() -> impl Strategy<Value = Planned> {
    let f = prop_oneof![
        Just("get"),
        Just("put"),
        Just("append"),
        Just("read"),
        Just("write"),
        Just("cas"),
        Just("push"),
        Just("lread"),
        Just("incr"),
        Just("cread")
    ];
    (0u8..3, f, 0u32..1000, 0u32..200, 0u32..30, 0u32..30, prop::bool::weighted(0.15), prop::bool::ANY).prop_map(
        |(key, f, token, invoke, a, b, crashed, crashed_applies)| Planned {
            key,
            f,
            token,
            invoke: invoke * 3,
            effect: invoke * 3 + 1 + a.min(b) * 3,
            ret: invoke * 3 + 2 + a.max(b) * 3,
            crashed,
            crashed_applies,
        },
    )
}

fn run_sequential(plan: &[Planned]) -> History {
    // Apply effects in effect-time order to compute each op's output.
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by_key(|&i| (plan[i].effect, i));
    let mut store: std::collections::BTreeMap<u8, Value> = Default::default();
    let mut io: Vec<(Value, Value, bool)> = vec![(Value::Null, Value::Null, true); plan.len()];
    for i in order {
        let p = &plan[i];
        let applies = !p.crashed || p.crashed_applies;
        let key = key_of(p);
        let cur = store.get(&key).cloned().unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let tok = format!("<{}>", p.token);
        let (input, output, next) = match p.f {
            "get" => (Value::Null, Value::Str(text(&cur)), None),
            "read" => (Value::Null, cur.clone(), None),
            "put" => (Value::Str(tok.clone()), Value::Str(tok.clone()), Some(Value::Str(tok))),
            "write" => (Value::Str(tok.clone()), Value::Str(tok.clone()), Some(Value::Str(tok))),
            "append" => (Value::Str(tok.clone()), Value::Str(tok.clone()), Some(Value::Str(text(&cur) + &tok))),
            "lread" | "cread" => (Value::Null, cur.clone(), None),
            "push" => {
                let mut list = match &cur {
                    Value::List(items) => items.clone(),
                    _ => Vec::new(),
                };
                list.push(Value::Int(i64::from(p.token)));
                (Value::Int(i64::from(p.token)), Value::Int(0), Some(Value::List(list)))
            }
            "incr" => {
                let by = i64::from(p.token % 5) + 1;
                let now = cur.as_int().unwrap_or(0) + by;
                (Value::Int(by), Value::Int(now), Some(Value::Int(now)))
            }
            _ => {
                // cas from the current value half the time, from a stale one otherwise.
                let from = if p.token % 2 == 0 { cur.clone() } else { Value::Str("stale".into()) };
                let pair = Value::pair(from.clone(), Value::Str(tok.clone()));
                if from == cur {
                    (pair.clone(), pair, Some(Value::Str(tok)))
                } else {
                    (pair, Value::Bool(false), None)
                }
            }
        };
        if let (Some(v), true) = (next, applies) {
            store.insert(key, v);
        }
        io[i] = (input, output, applies);
    }
    let mut events: Vec<(u32, u8, usize)> = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        events.push((p.invoke, 0, i));
        events.push((p.ret, 1, i));
    }
    events.sort();
    let mut h = History::new();
    for (_, kind, i) in events {
        let p = &plan[i];
        let (kind, value) = match kind {
            0 => (OpType::Invoke, io[i].0.clone()),
            _ if p.crashed => (OpType::Info, Value::Null),
            _ => (OpType::Ok, io[i].1.clone()),
        };
        let f = match p.f {
            "push" => "append",
            "lread" | "cread" => "read",
            f => f,
        };
        h.push(Op { process: i as u64, kind, f: f.to_owned(), key: Some(key_of(p).to_string()), value, time: None });
    }
    h
}

/// List appends and increments keep to keys of their own.
fn key_of(p: &Planned) -> u8 {
    match p.f {
        "push" | "lread" => p.key + 10,
        "incr" | "cread" => p.key + 20,
        _ => p.key,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn runs_of_a_sequential_store_with_crashes_are_linearizable(plan in prop::collection::vec(planned(), 1..40)) {
        let history = run_sequential(&plan);
        let report = check(&Kv, &history, &Options::default()).expect("valid history");
        prop_assert_eq!(report.verdict, Verdict::Linearizable, "{}", report.to_text());
    }

    #[test]
    fn readers_never_panic_on_arbitrary_text(text in ".{0,400}") {
        for format in [Format::Jsonl, Format::PorcupineEtcd, Format::PorcupineKv] {
            let _ = read(format, &text);
        }
    }

    #[test]
    fn readers_never_panic_on_mangled_valid_lines(cut in 0usize..80, junk in "[ -~]{0,6}", which in 0usize..3) {
        let lines = [
            "{\"process\":3,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"x\",\"value\":[4,7],\"time\":12}",
            "INFO  jepsen.util - 2\t:invoke\t:cas\t[1 4]",
            "{:process 3, :type :invoke, :f :append, :key \"4\", :value \"x 3 1 y\"}",
        ];
        let line = lines[which];
        let cut = cut.min(line.len());
        let mangled = format!("{}{}{}", &line[..cut], junk, &line[cut..]);
        for format in [Format::Jsonl, Format::PorcupineEtcd, Format::PorcupineKv] {
            let _ = read(format, &mangled);
        }
    }
}

#[test]
fn a_budget_leaves_a_partition_unknown_and_the_others_decided() {
    // Key a: a simple violation. Key b: twelve concurrent writes, then a read of one of them.
    let mut h = History::new();
    let push = |h: &mut History, process: u64, kind, f: &str, key: &str, value| {
        h.push(Op { process, kind, f: f.into(), key: Some(key.into()), value, time: None });
    };
    push(&mut h, 0, OpType::Invoke, "write", "a", Value::Int(1));
    push(&mut h, 0, OpType::Ok, "write", "a", Value::Int(1));
    push(&mut h, 1, OpType::Invoke, "read", "a", Value::Null);
    push(&mut h, 1, OpType::Ok, "read", "a", Value::Int(2));
    for i in 0..12 {
        push(&mut h, 10 + i, OpType::Invoke, "write", "b", Value::Int(i as i64));
    }
    for i in 0..12 {
        push(&mut h, 10 + i, OpType::Ok, "write", "b", Value::Int(i as i64));
    }
    push(&mut h, 99, OpType::Invoke, "read", "b", Value::Null);
    push(&mut h, 99, OpType::Ok, "read", "b", Value::Int(5));
    let tight = Options { max_states_per_partition: 50, ..Options::default() };
    let report = check(&Register, &h, &tight).expect("valid");
    let verdicts: Vec<_> = report.partitions.iter().map(|p| (p.key.as_deref(), p.verdict)).collect();
    assert_eq!(verdicts, vec![(Some("a"), Verdict::NotLinearizable), (Some("b"), Verdict::Unknown)]);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    // With room to search, b is decided: write 5 can go last.
    let report = check(&Register, &h, &Options::default()).expect("valid");
    let verdicts: Vec<_> = report.partitions.iter().map(|p| p.verdict).collect();
    assert_eq!(verdicts, vec![Verdict::NotLinearizable, Verdict::Linearizable]);
    // The whole history's budget: what key a spends, key b cannot.
    let a_spent = report.partitions[0].states_explored;
    let shared = Options { max_states_total: a_spent + 10, ..Options::default() };
    let report = check(&Register, &h, &shared).expect("valid");
    let verdicts: Vec<_> = report.partitions.iter().map(|p| p.verdict).collect();
    assert_eq!(verdicts, vec![Verdict::NotLinearizable, Verdict::Unknown]);
    assert!(report.states_explored <= a_spent + 10 + 1, "{}", report.states_explored);
}

/// An indeterminate `write nil` is observed by a later `get` of "" (what
/// get reads of an absent key), so it must not be dropped as invisible.
#[test]
fn an_unknown_write_of_nil_seen_by_get_is_kept() {
    let op = |process, kind, f: &str, value: Value| Op {
        process,
        kind,
        f: f.into(),
        key: Some("k".into()),
        value,
        time: None,
    };
    let mut h = History::new();
    h.push(op(1, OpType::Invoke, "put", Value::from("a")));
    h.push(op(1, OpType::Ok, "put", Value::Null));
    h.push(op(2, OpType::Invoke, "write", Value::Null));
    h.push(op(2, OpType::Info, "write", Value::Null));
    h.push(op(3, OpType::Invoke, "get", Value::Null));
    h.push(op(3, OpType::Ok, "get", Value::from("")));
    let report = check(&Kv, &h, &Options::default()).expect("valid ops");
    assert_eq!(report.verdict, Verdict::Linearizable, "{}", report.to_text());
}
