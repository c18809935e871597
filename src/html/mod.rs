//! A run (or a checked history) as one self-contained HTML page: a
//! timeline per client process (each operation a bar from invocation to
//! completion, coloured by how it ended), the faults as bands over the
//! nodes they hit, each node's spells as leader (as it reported them),
//! and the evidence of a violation highlighted: for
//! linearizability the prefix that linearizes, the operation that cannot
//! be placed and the candidates with their rejections. Hovering a bar or a
//! band shows its details (SVG `<title>`: no script needed).
//!
//! The page is a pure function of its inputs: no clock, no randomness, no
//! hash-ordered iteration, so the same seed gives the same bytes. Every
//! value is escaped; the page loads nothing from the network and runs no
//! script.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use harness::check::linearizability::{LinearizabilityReport, Verdict};
use harness::history::{History, OpType};
use harness::outcome::Outcome;
use harness::runner::RunOutput;
use harness::sim::messages::Message;
use harness::sim::AppliedFault;
use harness::tap::{LeaseSpell, Reign};
use harness::SimTime;

mod sequence;

/// Plot width and the label column, in pixels.
const WIDTH: f64 = 1200.0;
const LABELS: f64 = 80.0;
const LANE: f64 = 22.0;
const AXIS: f64 = 28.0;
/// The most operation bars one page draws (the highlighted ones always):
/// a history may hold two million events, a page should open.
pub const MAX_BARS: usize = 20_000;
/// The most lease spells one timeline draws (the first ones).
const MAX_LEASES: usize = 5_000;
/// The most candidates, and concurrent operations, the page names per
/// violation (always drawn, listed in its table): the rest are counted.
const MAX_NAMED: usize = 500;

/// One timeline: a run, or one history file of `check`.
pub struct Section<'a> {
    pub heading: String,
    /// Lines of `name: value` above the timeline.
    pub facts: Vec<(String, String)>,
    pub outcome: Option<&'a Outcome>,
    pub history: &'a History,
    pub faults: &'a [AppliedFault],
    pub linearizability: Option<&'a LinearizabilityReport>,
    /// Each node's spells as leader, as it reported them.
    pub reigns: &'a [Reign],
    /// Every lease the nodes reported, as the world projects it.
    pub leases: &'a [LeaseSpell],
    /// The last messages the world logged, and their fates.
    pub messages: &'a [Message],
    /// Where the time axis ends (ns); 0 to end at the last event.
    pub end: u64,
}

impl<'a> Section<'a> {
    /// A run's report, history and reigns.
    pub fn of_run(out: &'a RunOutput) -> Self {
        let (report, history) = (&out.report, &out.history);
        let mut facts = vec![
            ("scenario".to_owned(), report.scenario.clone()),
            ("system".to_owned(), format!("{} ({})", report.system, report.variant)),
            ("seed".to_owned(), report.seed.to_string()),
            ("expected".to_owned(), report.expected.clone()),
            ("outcome".to_owned(), report.outcome.to_string()),
            ("trace hash".to_owned(), report.trace_hash.clone()),
        ];
        if let Some(world) = &report.world {
            facts.insert(3, ("world".to_owned(), world.clone()));
        }
        Section {
            heading: report.title.clone(),
            facts,
            outcome: Some(&report.outcome),
            history,
            faults: &report.faults,
            linearizability: report.linearizability.as_ref(),
            reigns: &out.reigns,
            leases: &out.leases,
            messages: &out.messages,
            end: report.virtual_time_ns,
        }
    }
}

/// One operation: its invocation's history index (its name in reports),
/// its process and call, when it started and ended, and how.
struct Bar {
    op: usize,
    process: u64,
    call: String,
    start: u64,
    end: u64,
    ended: &'static str,
}

/// The whole page.
pub fn page(title: &str, sections: &[Section<'_>]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(title));
    out.push_str(STYLE);
    out.push_str("</head>\n<body>\n");
    for (i, section) in sections.iter().enumerate() {
        write_section(&mut out, i, section);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn write_section(out: &mut String, index: usize, s: &Section<'_>) {
    let _ = writeln!(out, "<section id=\"run-{index}\">\n<h1>{}</h1>\n<dl>", esc(&s.heading));
    for (name, value) in &s.facts {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(name), esc(value));
    }
    out.push_str("</dl>\n");
    let marks = Marks::of(s.linearizability);
    let timed = s.history.ops.iter().all(|o| o.time.is_some());
    let bars = bars(s.history, timed);
    let end = bars.iter().map(|b| b.end).chain([s.end, 1]).max().unwrap_or(1);
    let drawn = choose(&bars, &marks);
    write_timeline(out, s, &bars, &drawn, &marks, (0, end), timed);
    if let Some((from, to, what)) = evidence_window(&bars, &marks, s.outcome) {
        let near: Vec<usize> = drawn.iter().copied().filter(|&i| bars[i].end >= from && bars[i].start <= to).collect();
        let _ = writeln!(
            out,
            "<h2>Around the violation</h2>\n<p class=\"note\">{} to {}: {what}.</p>",
            axis_label(from, timed),
            axis_label(to, timed)
        );
        write_timeline(out, s, &bars, &near, &marks, (from, to), timed);
    }
    if s.leases.len() > MAX_LEASES {
        let _ =
            writeln!(out, "<p class=\"note\">{MAX_LEASES} of {} leases drawn (the first ones).</p>", s.leases.len());
    }
    if drawn.len() < bars.len() {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} of {} operations drawn (the first ones, and every one the evidence names).</p>",
            drawn.len(),
            bars.len()
        );
    }
    write_evidence(out, s);
    sequence::write_messages(out, s.messages, message_anchor(s));
    write_faults(out, s.faults);
    out.push_str("</section>\n");
}

/// Where the message sequence ends: the violation's time, or the end of a
/// linearizability violation's evidence; `None`: the end of the run.
pub fn message_anchor(s: &Section<'_>) -> Option<SimTime> {
    if let Some(Outcome::Violation(v)) = s.outcome {
        if v.time.is_some() {
            return v.time;
        }
    }
    let timed = s.history.ops.iter().all(|o| o.time.is_some());
    let bars = bars(s.history, timed);
    let marks = Marks::of(s.linearizability);
    evidence_window(&bars, &marks, s.outcome).filter(|_| timed).map(|(_, to, _)| SimTime(to))
}

/// The operations the linearizability evidence names, by history index.
#[derive(Default)]
struct Marks {
    prefix: BTreeSet<usize>,
    stuck: BTreeSet<usize>,
    concurrent: BTreeSet<usize>,
    candidates: BTreeMap<usize, String>,
    /// The evidence window: results that alone cannot be linearized.
    window: BTreeSet<usize>,
}

impl Marks {
    fn of(report: Option<&LinearizabilityReport>) -> Marks {
        let mut marks = Marks::default();
        for p in report.into_iter().flat_map(|r| &r.partitions) {
            let Some(v) = &p.violation else { continue };
            marks.prefix.extend(v.prefix.iter().map(|s| s.op));
            marks.stuck.insert(v.stuck.op);
            marks.concurrent.extend(v.concurrent.iter().take(MAX_NAMED).map(|c| c.op));
            marks.candidates.extend(v.candidates.iter().take(MAX_NAMED).map(|c| (c.op, c.rejection.clone())));
            marks.window.extend(v.window.iter().flat_map(|w| w.ops.iter().map(|o| o.op)));
        }
        marks
    }

    /// The bar's classes beyond how it ended.
    fn classes(&self, op: usize) -> &'static str {
        if self.stuck.contains(&op) {
            " stuck"
        } else if self.window.contains(&op) {
            " window"
        } else if self.candidates.contains_key(&op) {
            " candidate"
        } else if self.concurrent.contains(&op) {
            " concurrent"
        } else if self.prefix.contains(&op) {
            " prefix"
        } else {
            ""
        }
    }

    fn names(&self, op: usize) -> bool {
        self.stuck.contains(&op)
            || self.window.contains(&op)
            || self.candidates.contains_key(&op)
            || self.concurrent.contains(&op)
            || self.prefix.contains(&op)
    }
}

/// Pairs each invocation with its process's next completion. A history
/// without times is drawn by event index.
fn bars(history: &History, timed: bool) -> Vec<Bar> {
    let at = |i: usize| if timed { history.ops[i].time.unwrap_or(0) } else { i as u64 };
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut bars: Vec<Bar> = Vec::new();
    let mut by_op: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        match op.kind {
            OpType::Invoke => {
                let key = op.key.as_deref().map(|k| format!(" {k}")).unwrap_or_default();
                let value =
                    if op.value == harness::history::Value::Null { String::new() } else { format!(" {}", op.value) };
                let call = format!("p{} {}{key}{value}", op.process, op.f);
                by_op.insert(i, bars.len());
                open.insert(op.process, i);
                bars.push(Bar { op: i, process: op.process, call, start: at(i), end: u64::MAX, ended: "pending" });
            }
            OpType::Ok | OpType::Fail | OpType::Info => {
                let Some(invoke) = open.remove(&op.process) else { continue };
                let bar = &mut bars[by_op[&invoke]];
                bar.end = at(i);
                bar.ended = match op.kind {
                    OpType::Ok => "ok",
                    OpType::Fail => "fail",
                    _ => "info",
                };
                if op.value != harness::history::Value::Null {
                    let _ = write!(bar.call, " -> {}", op.value);
                }
            }
        }
    }
    let last = bars.iter().map(|b| b.start).max().unwrap_or(0);
    for bar in &mut bars {
        if bar.end == u64::MAX {
            bar.end = last;
        }
        // A history file's times may run backwards: a bar never does.
        bar.end = bar.end.max(bar.start);
    }
    bars
}

/// The stretch of time a person reads first: from the earliest start to
/// the latest end of the operations the evidence names (the prefix's last
/// five steps among them), or the half second before an online
/// violation's time.
fn evidence_window(bars: &[Bar], marks: &Marks, outcome: Option<&Outcome>) -> Option<(u64, u64, &'static str)> {
    let tail: BTreeSet<usize> = marks.prefix.iter().rev().take(5).copied().collect();
    let named = |op: usize| {
        if marks.window.is_empty() {
            marks.stuck.contains(&op)
                || marks.candidates.contains_key(&op)
                || marks.concurrent.contains(&op)
                || tail.contains(&op)
        } else {
            marks.window.contains(&op)
        }
    };
    let what = if marks.window.is_empty() {
        "the operation that cannot be placed, the candidates, the operations concurrent with it and the prefix's last steps"
    } else {
        "the evidence window (purple outlines, the stuck operation red): results that alone cannot be linearized"
    };
    let mut spans = bars.iter().filter(|b| named(b.op)).map(|b| (b.start, b.end));
    if let Some(first) = spans.next() {
        let (from, to) = spans.fold(first, |(a, b), (c, d)| (a.min(c), b.max(d)));
        let pad = (to - from) / 20;
        return Some((from.saturating_sub(pad), to.saturating_add(pad).max(from.saturating_add(1)), what));
    }
    match outcome {
        Some(Outcome::Violation(v)) => v.time.map(|t| {
            (t.0.saturating_sub(500_000_000), t.0.saturating_add(50_000_000), "the half second before the violation")
        }),
        _ => None,
    }
}

/// Which bars to draw: all, or the first [`MAX_BARS`] and the named ones.
fn choose(bars: &[Bar], marks: &Marks) -> Vec<usize> {
    (0..bars.len()).filter(|&i| i < MAX_BARS || marks.names(bars[i].op)).collect()
}

fn write_timeline(
    out: &mut String,
    s: &Section<'_>,
    bars: &[Bar],
    drawn: &[usize],
    marks: &Marks,
    (from, to): (u64, u64),
    timed: bool,
) {
    // Lanes for what is drawn: a history of a hundred thousand processes
    // must not make a page of a hundred thousand empty lanes.
    let processes: BTreeSet<u64> = drawn.iter().map(|&i| bars[i].process).collect();
    let nodes: BTreeSet<String> = s
        .faults
        .iter()
        .flat_map(|f| f.nodes.iter().map(|n| n.to_string()))
        .chain(s.reigns.iter().map(|r| r.node.to_string()))
        .chain(s.leases.iter().map(|l| l.holder.to_string()))
        .collect();
    let lane_of: BTreeMap<u64, usize> = processes.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let node_lane: BTreeMap<&str, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.as_str(), processes.len() + i)).collect();
    let lanes = processes.len() + nodes.len();
    let height = AXIS + LANE * lanes.max(1) as f64 + 8.0;
    let to = to.max(from);
    let span = (to - from).max(1) as f64;
    let x = |t: u64| LABELS + WIDTH * ((t.clamp(from, to) - from) as f64 / span);
    let y = |lane: usize| AXIS + LANE * lane as f64;
    let _ = writeln!(
        out,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" role=\"img\">",
        LABELS + WIDTH + 10.0
    );
    write_axis(out, (from, to), timed, height);
    for (&p, &lane) in &lane_of {
        let _ = writeln!(out, "<text class=\"lane\" x=\"4\" y=\"{:.1}\">p{p}</text>", y(lane) + 15.0);
    }
    for (n, &lane) in &node_lane {
        let _ = writeln!(out, "<text class=\"lane node\" x=\"4\" y=\"{:.1}\">{}</text>", y(lane) + 15.0, esc(n));
    }
    for r in s.reigns {
        let Some(&lane) = node_lane.get(r.node.to_string().as_str()) else { continue };
        let stop = r.to.map_or(to, |t| t.0);
        if stop < from || r.from.0 > to {
            continue;
        }
        let (x0, x1) = (x(r.from.0), x(stop));
        let _ = writeln!(
            out,
            "<g class=\"leader\"><title>{}</title><rect x=\"{x0:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"5\"/></g>",
            esc(&format!(
                "{} leader from {} to {}",
                r.node,
                fmt_ns(r.from.0),
                r.to.map_or("the end".into(), |t| fmt_ns(t.0))
            )),
            y(lane) + LANE - 7.0,
            (x1 - x0).max(2.0)
        );
    }
    write_leases(out, s.leases, &node_lane, &x, &y, (from, to));
    write_fault_bands(out, s.faults, &node_lane, &x, &y, (from, to));
    for &i in drawn {
        let b = &bars[i];
        let (x0, x1) = (x(b.start), x(b.end));
        let w = (x1 - x0).max(2.0);
        let lane = lane_of[&b.process];
        let mut detail = format!("op {}: {} ({})", b.op, b.call, b.ended);
        if let Some(why) = marks.candidates.get(&b.op) {
            let _ = write!(detail, "\ncannot go next: {why}");
        }
        if marks.stuck.contains(&b.op) {
            detail.push_str("\ncannot be linearized after the prefix");
        }
        let _ = write!(
            out,
            "<g class=\"op {}{}\" data-op=\"{}\"><title>{}</title><rect x=\"{x0:.2}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{:.1}\"/>",
            b.ended,
            marks.classes(b.op),
            b.op,
            esc(&detail),
            y(lane) + 3.0,
            LANE - 6.0
        );
        // A label only where it fits (about 6 px a character).
        let fits = (w / 6.0) as usize;
        if fits >= 4 {
            // The lane names the process already.
            let call = b.call.split_once(' ').map_or(b.call.as_str(), |(_, rest)| rest);
            let label: String = call.chars().take(fits).collect();
            let _ = write!(out, "<text x=\"{:.2}\" y=\"{:.1}\">{}</text>", x0 + 2.0, y(lane) + 15.0, esc(&label));
        }
        out.push_str("</g>\n");
    }
    if let Some(Outcome::Violation(v)) = s.outcome {
        if let Some(t) = v.time.filter(|t| (from..=to).contains(&t.0)) {
            let at = x(t.0);
            let _ = writeln!(
                out,
                "<line class=\"violation\" x1=\"{at:.2}\" y1=\"{AXIS}\" x2=\"{at:.2}\" y2=\"{height:.1}\"><title>{}</title></line>",
                esc(&v.to_string())
            );
        }
        if let Some(lane) = v.node.and_then(|n| node_lane.get(n.to_string().as_str()).copied()) {
            let _ = writeln!(
                out,
                "<rect class=\"violation-node\" x=\"0\" y=\"{:.1}\" width=\"{LABELS}\" height=\"{LANE}\"/>",
                y(lane)
            );
        }
    }
    out.push_str("</svg>\n");
}

fn write_axis(out: &mut String, (from, to): (u64, u64), timed: bool, height: f64) {
    let step = nice_step((to - from).max(1) / 10);
    let mut t = from.div_ceil(step).saturating_mul(step);
    while t <= to {
        let at = LABELS + WIDTH * ((t - from) as f64 / (to - from).max(1) as f64);
        let _ = writeln!(
            out,
            "<line class=\"tick\" x1=\"{at:.2}\" y1=\"{:.1}\" x2=\"{at:.2}\" y2=\"{height:.1}\"/><text class=\"tick\" x=\"{at:.2}\" y=\"14\">{}</text>",
            AXIS - 4.0,
            axis_label(t, timed)
        );
        let Some(next) = t.checked_add(step) else { break };
        t = next;
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
fn nice_step(raw: u64) -> u64 {
    let mut power = 1u64;
    loop {
        for m in [1, 2, 5] {
            if power.saturating_mul(m) >= raw.max(1) {
                return power.saturating_mul(m);
            }
        }
        power = power.saturating_mul(10);
    }
}

fn axis_label(t: u64, timed: bool) -> String {
    if !timed {
        return format!("#{t}");
    }
    let s = format!("{:.6}", t as f64 / 1e9);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}s")
}

/// What a fault does to the nodes it names, read from its description as
/// both worlds write it.
enum Effect {
    Down,
    /// Down for good: the heal does not restart it.
    Killed,
    Up,
    Pause,
    Resume,
    /// The k-th partition (numbered from 1, as heals name them).
    Cut,
    Mend(u64),
    /// `heal partitions`: every partition ends.
    MendAll,
    /// The end of the fault phase: everything ends but kills.
    HealAll,
    Mark,
}

fn effect(f: &AppliedFault) -> Effect {
    let text = f.fault.as_str();
    if text == "heal" {
        Effect::HealAll
    } else if text == "heal partitions" {
        Effect::MendAll
    } else if let Some(k) = text.strip_prefix("heal partition #") {
        k.parse().map_or(Effect::Mark, Effect::Mend)
    } else if text.starts_with("partition") {
        Effect::Cut
    } else if text.starts_with("restart") {
        Effect::Up
    } else if text.ends_with("(armed)") {
        Effect::Mark
    } else if text.starts_with("kill") {
        Effect::Killed
    } else if text.starts_with("crash") {
        Effect::Down
    } else if text.starts_with("pause") {
        Effect::Pause
    } else if text.starts_with("resume") {
        Effect::Resume
    } else {
        Effect::Mark
    }
}

/// Each lease as a thin strip above its holder's leadership strip: from
/// the claim to its projected end (or when it was given up).
fn write_leases(
    out: &mut String,
    leases: &[LeaseSpell],
    node_lane: &BTreeMap<&str, usize>,
    x: &dyn Fn(u64) -> f64,
    y: &dyn Fn(usize) -> f64,
    (from, to): (u64, u64),
) {
    for l in leases.iter().take(MAX_LEASES) {
        let Some(&lane) = node_lane.get(l.holder.to_string().as_str()) else { continue };
        let stop = l.end().map_or(to, |t| t.0);
        if stop < from || l.from.0 > to {
            continue;
        }
        let (x0, x1) = (x(l.from.0), x(stop));
        let ends = match (l.given_up, l.until) {
            (Some(t), _) => format!("given up at {}", fmt_ns(t.0)),
            (None, Some(t)) => {
                format!(
                    "until {} (when {}'s clock reaches the deadline, as that clock runs)",
                    fmt_ns(t.0),
                    l.measured_by
                )
            }
            (None, None) => "past the end of the run".to_owned(),
        };
        let _ = writeln!(
            out,
            "<g class=\"lease\"><title>{}</title><rect x=\"{x0:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"3\"/></g>",
            esc(&format!(
                "{} holds the lease on {} (epoch {}) from {}, {ends}",
                l.holder,
                l.resource,
                l.epoch,
                fmt_ns(l.from.0)
            )),
            y(lane) + LANE - 11.0,
            (x1 - x0).max(2.0)
        );
    }
}

/// Bands for crashes, pauses and partitions over the nodes they hit, and
/// a tick for every other fault.
fn write_fault_bands(
    out: &mut String,
    faults: &[AppliedFault],
    node_lane: &BTreeMap<&str, usize>,
    x: &dyn Fn(u64) -> f64,
    y: &dyn Fn(usize) -> f64,
    (from, end): (u64, u64),
) {
    // Open bands: (kind, node) -> (start, description).
    let mut open: BTreeMap<(&str, String), (u64, String)> = BTreeMap::new();
    let mut partitions: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut cuts = 0u64;
    let mut bands: Vec<(&str, String, u64, u64, String)> = Vec::new();
    let mut close = |open: &mut BTreeMap<(&str, String), (u64, String)>, kind: &'static str, node: &str, t: u64| {
        if let Some((start, what)) = open.remove(&(kind, node.to_owned())) {
            bands.push((kind, node.to_owned(), start, t, what));
        }
    };
    for f in faults {
        let t = f.time.0;
        let nodes: Vec<String> = f.nodes.iter().map(|n| n.to_string()).collect();
        match effect(f) {
            // A crash ends a pause (the node restarts unpaused); a kill
            // turns a node that is down into one down for good.
            Effect::Down => nodes.iter().for_each(|n| {
                close(&mut open, "paused", n, t);
                open.entry(("down", n.clone())).or_insert((t, f.fault.clone()));
            }),
            Effect::Killed => nodes.iter().for_each(|n| {
                close(&mut open, "paused", n, t);
                close(&mut open, "down", n, t);
                open.entry(("killed", n.clone())).or_insert((t, f.fault.clone()));
            }),
            Effect::Pause => nodes.iter().for_each(|n| {
                open.entry(("paused", n.clone())).or_insert((t, f.fault.clone()));
            }),
            Effect::Cut => {
                cuts += 1;
                for n in &nodes {
                    // The built-in world's log names the number already.
                    let what = if f.fault.contains('#') { f.fault.clone() } else { format!("{} #{cuts}", f.fault) };
                    open.entry(("cut", format!("{n}#{cuts}"))).or_insert((t, what));
                }
                partitions.insert(cuts, nodes.clone());
            }
            Effect::Up => nodes.iter().for_each(|n| close(&mut open, "down", n, t)),
            Effect::Resume => nodes.iter().for_each(|n| close(&mut open, "paused", n, t)),
            Effect::Mend(k) => {
                for n in partitions.remove(&k).unwrap_or_default() {
                    close(&mut open, "cut", &format!("{n}#{k}"), t);
                }
            }
            Effect::HealAll | Effect::MendAll => {
                // The heal restarts crashed nodes (not killed ones) and ends the rest.
                let all = matches!(effect(f), Effect::HealAll);
                let keys: Vec<(&str, String)> = open
                    .keys()
                    .filter(|(kind, _)| if all { *kind != "killed" } else { *kind == "cut" })
                    .cloned()
                    .collect();
                for (kind, n) in keys {
                    close(&mut open, kind, &n, t);
                }
                partitions.clear();
            }
            Effect::Mark => {}
        }
        if matches!(effect(f), Effect::Mark) && (from..=end).contains(&t) {
            for n in &nodes {
                if let Some(&lane) = node_lane.get(n.as_str()) {
                    let at = x(t);
                    let _ = writeln!(
                        out,
                        "<g class=\"fault mark\"><title>{}</title><rect x=\"{:.2}\" y=\"{:.1}\" width=\"3\" height=\"{:.1}\"/></g>",
                        esc(&format!("{} at {}", f.fault, f.time)),
                        at - 1.0,
                        y(lane) + 2.0,
                        LANE - 4.0
                    );
                }
            }
        }
    }
    for ((kind, n), (start, what)) in std::mem::take(&mut open) {
        bands.push((kind, n, start, end, what));
    }
    for (kind, node, start, stop, what) in bands.into_iter().filter(|b| b.3 >= from && b.2 <= end) {
        let node = node.split('#').next().unwrap_or_default().to_owned();
        let Some(&lane) = node_lane.get(node.as_str()) else { continue };
        let (x0, x1) = (x(start), x(stop));
        let _ = writeln!(
            out,
            "<g class=\"fault {kind}\"><title>{}</title><rect x=\"{x0:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\"/></g>",
            esc(&format!("{node} {kind} from {} to {}: {what}", fmt_ns(start), fmt_ns(stop))),
            y(lane) + 2.0,
            (x1 - x0).max(2.0),
            LANE - 4.0
        );
    }
}

/// As reports print times (to the microsecond, cut, not rounded).
fn fmt_ns(t: u64) -> String {
    harness::time::format_nanos(i128::from(t))
}

/// The evidence in words: the violation, and for linearizability the
/// operation that cannot be placed and why each candidate cannot go next.
fn write_evidence(out: &mut String, s: &Section<'_>) {
    if let Some(Outcome::Violation(v)) = s.outcome {
        let _ = writeln!(
            out,
            "<div class=\"evidence\"><h2>Violation: {}</h2><p>{}</p></div>",
            esc(&v.invariant),
            esc(&v.explanation)
        );
    }
    let Some(report) = s.linearizability else { return };
    let _ = writeln!(
        out,
        "<p>linearizability ({}): {} over {} operations, {} states</p>",
        esc(&report.model),
        report.verdict.as_str(),
        report.operations,
        report.states_explored
    );
    for p in report.partitions.iter().filter(|p| p.verdict != Verdict::Linearizable) {
        let key = p.key.as_deref().unwrap_or("(no key)");
        let _ = writeln!(out, "<div class=\"partition\"><h3>key {}: {}</h3>", esc(key), p.verdict.as_str());
        if let Some(v) = &p.violation {
            let _ = writeln!(
                out,
                "<p>The longest linearizable prefix has {} operations; <span class=\"stuck-text\">op {}: {}</span> cannot be placed after it.</p>",
                v.prefix_length,
                v.stuck.op,
                esc(&v.stuck.call)
            );
            if let Some(w) = &v.window {
                let _ = writeln!(
                    out,
                    "<p class=\"window\">Read these first: these {} results alone cannot be linearized, whatever every other operation did{}.</p><ol class=\"window\">",
                    w.ops.len(),
                    if w.minimal { " (none of them can be left out)" } else { "" }
                );
                for o in &w.ops {
                    let _ = writeln!(out, "<li>op {}: {}</li>", o.op, esc(&o.call));
                }
                out.push_str("</ol>\n");
            }
            out.push_str("<table class=\"candidates\"><tr><th>candidate</th><th>why it cannot go next</th></tr>\n");
            for c in v.candidates.iter().take(MAX_NAMED) {
                let _ = writeln!(out, "<tr><td>op {}: {}</td><td>{}</td></tr>", c.op, esc(&c.call), esc(&c.rejection));
            }
            if v.candidates.len() > MAX_NAMED {
                let _ = writeln!(out, "<tr><td colspan=\"2\">and {} more</td></tr>", v.candidates.len() - MAX_NAMED);
            }
            out.push_str("</table>\n<details><summary>the prefix's last steps</summary><ol>\n");
            for step in &v.prefix {
                let _ = writeln!(out, "<li>op {}: {} &#8594; {}</li>", step.op, esc(&step.call), esc(&step.state));
            }
            out.push_str("</ol></details>\n");
        }
        out.push_str("</div>\n");
    }
}

fn write_faults(out: &mut String, faults: &[AppliedFault]) {
    if faults.is_empty() {
        return;
    }
    out.push_str("<details><summary>faults</summary><table class=\"faults\">\n");
    for f in faults {
        let nodes: Vec<String> = f.nodes.iter().map(|n| n.to_string()).collect();
        let _ =
            writeln!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", f.time, esc(&f.fault), esc(&nodes.join(",")));
    }
    out.push_str("</table></details>\n");
}

/// `text` as HTML text or attribute value.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { color: #666; } dd { margin: 0; }
svg.timeline { display: block; margin: 12px 0; background: #fcfcfc; border: 1px solid #ddd; }
svg text { font: 10px monospace; fill: #222; pointer-events: none; }
text.lane { font-weight: bold; } text.node { fill: #555; }
line.tick { stroke: #eee; } text.tick { fill: #888; }
g.op rect { stroke: #0000; stroke-width: 1; }
g.op.ok rect { fill: #9fd49f; } g.op.fail rect { fill: #f2a3a3; }
g.op.info rect, g.op.pending rect { fill: #f6d98b; }
g.op.prefix rect { stroke: #2a7a2a; }
g.op.concurrent rect { stroke: #d9822b; stroke-width: 2; }
g.op.candidate rect { stroke: #b03060; stroke-width: 2; stroke-dasharray: 3 2; }
g.op.stuck rect { stroke: #e0103a; stroke-width: 3; }
g.op.window rect { stroke: #7b3fb5; stroke-width: 3; }
g.op:hover rect { stroke: #000; stroke-width: 2; }
g.fault.down rect, g.fault.killed rect { fill: #55555555; } g.fault.paused rect { fill: #4a78c455; }
g.fault.cut rect { fill: #c44a4a44; } g.leader rect { fill: #2b6cb0; } g.lease rect { fill: #2f9e8f; } g.fault.mark rect { fill: #8a5ac2; }
line.violation { stroke: #d00; stroke-width: 2; stroke-dasharray: 4 3; }
svg.sequence { display: block; margin: 12px 0; background: #fcfcfc; border: 1px solid #ddd; }
line.lifeline { stroke: #ccc; } g.msg line { stroke-width: 1.2; } g.msg text { font-size: 9px; fill: #444; }
g.msg.delivered line { stroke: #2a7a2a; } marker path { fill: #2a7a2a; }
g.msg.dropped line { stroke: #c33; stroke-dasharray: 3 2; } g.msg.inflight line { stroke: #999; stroke-dasharray: 2 3; } path.cross { stroke: #c33; stroke-width: 2; }
g.msg:hover line { stroke-width: 3; }
rect.violation-node { fill: #d0000033; }
.evidence h2 { color: #b00; font-size: 15px; } .stuck-text { color: #d00; font-weight: bold; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
.note { color: #666; }
</style>
";

#[cfg(test)]
mod tests {
    use super::*;
    use harness::history::{Op, Value};

    fn op(process: u64, kind: OpType, f: &str, value: Value, time: u64) -> Op {
        Op { process, kind, f: f.into(), key: None, value, time: Some(time) }
    }

    #[test]
    fn every_value_is_escaped() {
        let hostile = "<script>document.title='pwned'</script>";
        let history = History {
            ops: vec![
                op(0, OpType::Invoke, "write", Value::Str(hostile.into()), 0),
                op(0, OpType::Ok, "write", Value::Null, 10),
            ],
        };
        let section = Section {
            heading: hostile.into(),
            facts: vec![("x".into(), "\"><img src=x onerror=alert(1)>".into())],
            outcome: None,
            history: &history,
            faults: &[],
            linearizability: None,
            reigns: &[],
            leases: &[],
            messages: &[],
            end: 0,
        };
        let html = page(hostile, &[section]);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn an_invocation_and_its_completion_make_one_bar() {
        let history = History {
            ops: vec![
                op(0, OpType::Invoke, "read", Value::Null, 0),
                op(1, OpType::Invoke, "write", Value::Int(3), 5),
                op(0, OpType::Ok, "read", Value::Int(3), 20),
                op(1, OpType::Info, "write", Value::Null, 30),
            ],
        };
        let bars = bars(&history, true);
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].start, bars[0].end, bars[0].ended), (0, 20, "ok"));
        assert_eq!(bars[0].call, "p0 read -> 3");
        assert_eq!((bars[1].op, bars[1].ended), (1, "info"));
    }
}
