//! Validating a scenario file: every check names file:line:column.

use std::time::Duration;

use toml::Spanned;

use super::limits::{MAX_KEYS, MAX_OPS, MAX_PLANNED_FAULTS};
use super::*;
use crate::fault::{Shape, Target};
use crate::history::Value;
use crate::net::{Latency, LinkConfig};
use crate::node::NodeId;

pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    pub(super) nodes: u32,
    pub(super) clients: u32,
    /// The scenario's `[network]`: a network fault changes only the keys it names.
    pub(super) network: LinkConfig,
    /// Whether the system's clients may crash or be cut off.
    pub(super) clients_crash: bool,
}

impl Ctx<'_> {
    pub(super) fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_col(self.text, span.start);
        ScenarioError { file: self.file.to_owned(), line, column, message: crate::history_io::shorten(message.into()) }
    }

    pub(super) fn node(&self, name: &Spanned<String>) -> Result<NodeId, ScenarioError> {
        self.node_named(name.get_ref(), name.span())
    }

    pub(super) fn node_named(&self, name: &str, span: std::ops::Range<usize>) -> Result<NodeId, ScenarioError> {
        let id = NodeId::parse(name).ok_or_else(|| {
            self.err(
                span.clone(),
                format!("\"{name}\" is not a node name; expected n1..n{} or c1..c{}", self.nodes, self.clients.max(1)),
            )
        })?;
        let exists = if id.is_client() { id.index() < self.clients } else { id.index() < self.nodes };
        if !exists {
            let role = if id.is_client() {
                format!("{} client{} (c1..c{})", self.clients, plural(self.clients), self.clients)
            } else {
                format!("{} server{} (n1..n{})", self.nodes, plural(self.nodes), self.nodes)
            };
            return Err(self.err(span, format!("node {name} does not exist: this scenario has {role}")));
        }
        Ok(id)
    }
}

pub(super) fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |i| before[i + 1..].chars().count()) + 1;
    (line, column)
}

pub(super) fn parse_expect(
    cx: &Ctx<'_>,
    expect: Option<&Spanned<toml::Value>>,
    checks: &[String],
) -> Result<Expect, ScenarioError> {
    let Some(e) = expect else { return Ok(Expect::Pass) };
    let what = "expected \"pass\", { violation = \"<check name>\" } (or a list of names) or { outcome = \"liveness\" }";
    let known = |name: &str| {
        if checks.iter().any(|c| c == name) {
            Ok(name.to_owned())
        } else {
            Err(cx.err(
                e.span(),
                format!("no check is named \"{name}\"; this variant's checks are: {}", checks.join(", ")),
            ))
        }
    };
    match e.get_ref() {
        toml::Value::String(s) if s == "pass" => Ok(Expect::Pass),
        toml::Value::String(s) if s == "liveness" => Ok(Expect::Liveness),
        toml::Value::Table(t) if t.len() == 1 => match t.iter().next() {
            Some((k, toml::Value::String(name))) if k == "violation" => Ok(Expect::Violation(vec![known(name)?])),
            Some((k, toml::Value::Array(names))) if k == "violation" && !names.is_empty() => {
                let names = names.iter().map(|n| n.as_str().ok_or_else(|| cx.err(e.span(), what)).and_then(known));
                Ok(Expect::Violation(names.collect::<Result<_, _>>()?))
            }
            Some((k, toml::Value::String(o))) if k == "outcome" && o == "liveness" => Ok(Expect::Liveness),
            Some((k, toml::Value::String(o))) if k == "outcome" && o == "pass" => Ok(Expect::Pass),
            _ => Err(cx.err(e.span(), what)),
        },
        _ => Err(cx.err(e.span(), what)),
    }
}

pub(super) fn probability(cx: &Ctx<'_>, p: &Option<Spanned<f64>>, name: &str) -> Result<f64, ScenarioError> {
    match p {
        None => Ok(0.0),
        Some(v) if (0.0..=1.0).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => {
            Err(cx
                .err(v.span(), format!("{name} is a probability: expected a number from 0 to 1, not {}", v.get_ref())))
        }
    }
}

pub(super) fn parse_latency(cx: &Ctx<'_>, spec: &Spanned<LatencySpec>) -> Result<Latency, ScenarioError> {
    let l = spec.get_ref();
    let need = |d: Option<Dur>, key: &str| {
        d.map(|d| d.0).ok_or_else(|| cx.err(spec.span(), format!("latency dist \"{}\" needs `{key}`", l.dist)))
    };
    // A key the chosen dist does not read would be silently ignored.
    let keys = [
        ("value", l.value.is_some()),
        ("min", l.min.is_some()),
        ("max", l.max.is_some()),
        ("mean", l.mean.is_some()),
        ("alpha", l.alpha.is_some()),
    ];
    let reads: &[&str] = match l.dist.as_str() {
        "constant" => &["value"],
        "uniform" => &["min", "max"],
        "exponential" => &["mean", "max"],
        "heavy-tail" => &["min", "alpha", "max"],
        _ => &["value", "min", "max", "mean", "alpha"],
    };
    if let Some((key, _)) = keys.iter().find(|(k, given)| *given && !reads.contains(k)) {
        return Err(cx.err(
            spec.span(),
            format!("latency dist \"{}\" does not use `{key}`; it takes {}", l.dist, reads.join(", ")),
        ));
    }
    let latency = match l.dist.as_str() {
        "constant" => Latency::Constant(need(l.value, "value")?),
        "uniform" => Latency::Uniform { min: need(l.min, "min")?, max: need(l.max, "max")? },
        "exponential" => Latency::Exponential { mean: need(l.mean, "mean")?, max: need(l.max, "max")? },
        "heavy-tail" => Latency::HeavyTail {
            min: need(l.min, "min")?,
            alpha: l.alpha.ok_or_else(|| cx.err(spec.span(), "latency dist \"heavy-tail\" needs `alpha`"))?,
            max: need(l.max, "max")?,
        },
        other => {
            return Err(cx.err(
                spec.span(),
                format!("unknown latency dist \"{other}\"; expected constant, uniform, exponential or heavy-tail"),
            ))
        }
    };
    latency.validate().map_err(|m| cx.err(spec.span(), m))?;
    Ok(latency)
}

pub(super) fn parse_network(cx: &Ctx<'_>, n: &NetworkSection) -> Result<LinkConfig, ScenarioError> {
    overlay_network(cx, LinkConfig::default(), n)
}

/// `base` with the keys `n` names replaced.
pub(super) fn overlay_network(cx: &Ctx<'_>, base: LinkConfig, n: &NetworkSection) -> Result<LinkConfig, ScenarioError> {
    let mut config = base;
    if let Some(l) = &n.latency {
        config.latency = parse_latency(cx, l)?;
    }
    if n.loss.is_some() {
        config.loss = probability(cx, &n.loss, "loss")?;
    }
    if n.duplicate.is_some() {
        config.duplicate = probability(cx, &n.duplicate, "duplicate")?;
    }
    if let Some(ordering) = n.ordering {
        config.ordering = ordering;
    }
    Ok(config)
}

/// Parses `random`, `leader`, `minority`, `majority` or a node name.
/// Clients drive the test and keep the session a checker follows: a
/// client that lost its memory would reuse request ids and forget its
/// session, and the checks would blame the system. Clients pause; they
/// never crash, unless the system's clients are workers that may.
pub(super) fn no_client_crashes(cx: &Ctx<'_>, e: &FaultEntry, target: &Target) -> Result<(), ScenarioError> {
    if cx.clients_crash {
        return Ok(());
    }
    let client = match target {
        Target::Node(n) => Some(*n).filter(|n| n.is_client()),
        Target::Nodes(ns) => ns.iter().copied().find(|n| n.is_client()),
        _ => None,
    };
    let Some(client) = client else { return Ok(()) };
    let span = e
        .node
        .as_ref()
        .map(|v| v.span())
        .or(e.nodes.as_ref().map(|v| v.span()))
        .or(e.target.as_ref().map(|v| v.span()));
    Err(cx.err(
        span.unwrap_or_else(|| e.kind.span()),
        format!("{client} is a client: clients never crash (they drive the test); pause it instead, or crash a server"),
    ))
}

pub(super) fn parse_target(cx: &Ctx<'_>, e: &FaultEntry) -> Result<Target, ScenarioError> {
    let given = [e.node.is_some(), e.target.is_some(), e.nodes.is_some()].iter().filter(|&&g| g).count();
    if given > 1 {
        return Err(cx.err(e.kind.span(), "give only one of `node`, `target` and `nodes`"));
    }
    if let Some(n) = &e.node {
        return Ok(Target::Node(cx.node(n)?));
    }
    if let Some(ns) = &e.nodes {
        let ids = ns.get_ref().iter().map(|n| cx.node_named(n, ns.span())).collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Err(cx.err(ns.span(), "`nodes` must name at least one node"));
        }
        return Ok(Target::Nodes(ids));
    }
    let Some(t) = &e.target else {
        return Err(cx.err(
            e.kind.span(),
            format!(
                "a {} fault needs `node` or `target` (random, leader, minority, majority, all, or a node name)",
                e.kind.get_ref()
            ),
        ));
    };
    Ok(match t.get_ref().as_str() {
        "random" => Target::Random,
        "leader" => Target::Leader,
        "minority" => Target::Minority,
        "majority" => Target::Majority,
        "all" => Target::All,
        _ => Target::Node(cx.node(t)?),
    })
}

pub(super) fn parse_fault(
    cx: &Ctx<'_>,
    entry: &Spanned<FaultEntry>,
    run: Duration,
) -> Result<TimedFault, ScenarioError> {
    let e = entry.get_ref();
    let at = e.at.get_ref().0;
    if at >= run {
        return Err(cx.err(
            e.at.span(),
            format!(
                "this fault is at {} but the run's fault phase ends at {}",
                format_duration(at),
                format_duration(run)
            ),
        ));
    }
    let name = e.kind.get_ref().as_str();
    let Some(kind) = fault_kind(name) else {
        let names: Vec<&str> = FAULT_TABLE.iter().map(|k| k.name).collect();
        return Err(
            cx.err(e.kind.span(), format!("unknown fault kind \"{name}\"; expected one of {}", names.join(", ")))
        );
    };
    // Keys that make no sense for this kind are errors, not silently ignored.
    let present: [(&str, Option<std::ops::Range<usize>>); 13] = [
        ("node", e.node.as_ref().map(|v| v.span())),
        ("target", e.target.as_ref().map(|v| v.span())),
        ("nodes", e.nodes.as_ref().map(|v| v.span())),
        ("shape", e.shape.as_ref().map(|v| v.span())),
        ("groups", e.groups.as_ref().map(|v| v.span())),
        ("delta", e.delta.as_ref().map(|v| v.span())),
        ("period", e.period.as_ref().map(|v| v.span())),
        ("ppm", e.ppm.as_ref().map(|v| v.span())),
        ("latency", e.latency.as_ref().map(|v| v.span())),
        ("loss", e.loss.as_ref().map(|v| v.span())),
        ("duplicate", e.duplicate.as_ref().map(|v| v.span())),
        ("for", e.for_.as_ref().map(|v| v.span())),
        ("effects", e.effects.as_ref().map(|v| v.span())),
    ];
    for (key, span) in present {
        let Some(span) = span else { continue };
        if kind.keys.contains(&key) {
            continue;
        }
        if key == "for" {
            return Err(cx.err(span, format!("a {name} fault has no `for`: nothing undoes it")));
        }
        let takes = if kind.keys.is_empty() { "no other keys".to_owned() } else { kind.keys.join(", ") };
        return Err(cx.err(span, format!("a {name} fault does not take `{key}`; it takes {takes}")));
    }
    if kind.downs_nodes {
        no_client_crashes(cx, e, &parse_target(cx, e)?)?;
    }
    let fault = (kind.parse)(cx, e, run - at)?;
    let duration = match &e.for_ {
        Some(f) if f.get_ref().0.is_zero() => return Err(cx.err(f.span(), "`for` must be positive")),
        _ if name == "clock-strobe" => None,
        Some(f) => Some(f.get_ref().0),
        None => None,
    };
    Ok(TimedFault { at, fault, duration })
}

pub(super) fn parse_shape(cx: &Ctx<'_>, e: &FaultEntry) -> Result<Shape, ScenarioError> {
    if let Some(groups) = &e.groups {
        if e.shape.is_some() {
            return Err(cx.err(groups.span(), "give either `shape` or `groups`, not both"));
        }
        let mut out: Vec<Vec<NodeId>> = Vec::new();
        for g in groups.get_ref() {
            if g.is_empty() {
                return Err(cx.err(groups.span(), "each of `groups` needs at least one node"));
            }
            let mut group = Vec::with_capacity(g.len());
            for n in g {
                let id = cx.node_named(n, groups.span())?;
                if group.contains(&id) || out.iter().any(|o| o.contains(&id)) {
                    return Err(
                        cx.err(groups.span(), format!("{id} is in `groups` twice; each node may be in one group"))
                    );
                }
                group.push(id);
            }
            out.push(group);
        }
        if out.len() < 2 {
            return Err(cx.err(groups.span(), "`groups` needs at least two groups"));
        }
        return Ok(Shape::Groups(out));
    }
    let Some(shape) = &e.shape else {
        return Err(cx.err(
            e.kind.span(),
            "a partition needs `shape` (isolate, halves, majority-ring, bridge, one-way) or `groups`",
        ));
    };
    let needs_target = matches!(shape.get_ref().as_str(), "isolate" | "isolate-from-peers" | "one-way");
    if !needs_target && (e.node.is_some() || e.target.is_some() || e.nodes.is_some()) {
        return Err(cx.err(
            shape.span(),
            format!("shape \"{}\" picks its own sides; it takes no `node` or `target`", shape.get_ref()),
        ));
    }
    Ok(match shape.get_ref().as_str() {
        "isolate" => Shape::Isolate(parse_target(cx, e)?),
        "isolate-from-peers" => Shape::IsolateFromPeers(parse_target(cx, e)?),
        "one-way" => Shape::OneWay(parse_target(cx, e)?),
        "halves" => Shape::Halves,
        "majority-ring" => Shape::MajorityRing,
        "bridge" => Shape::Bridge,
        other => {
            return Err(cx.err(
                shape.span(),
                format!("unknown shape \"{other}\"; expected isolate, isolate-from-peers, halves, majority-ring, bridge or one-way"),
            ))
        }
    })
}

pub(super) fn parse_nemesis(
    cx: &Ctx<'_>,
    n: &NemesisSection,
    drift_ppm: f64,
    network: LinkConfig,
    events: &[&str],
    duration: Duration,
) -> Result<Nemesis, ScenarioError> {
    let nemesis_kinds = nemesis_kinds();
    if n.kinds.get_ref().is_empty() {
        return Err(cx.err(n.kinds.span(), format!("kinds must list at least one of {}", nemesis_kinds.join(", "))));
    }
    for k in n.kinds.get_ref() {
        if !nemesis_kinds.contains(&k.as_str()) {
            return Err(cx.err(
                n.kinds.span(),
                format!("the nemesis has no kind \"{k}\"; expected some of {}", nemesis_kinds.join(", ")),
            ));
        }
    }
    if n.every.get_ref().0 < Duration::from_millis(1) {
        return Err(cx.err(n.every.span(), "every must be at least 1ms"));
    }
    // The busiest draw puts a fault every quarter of `every` on average.
    let busiest = (n.every.get_ref().0 / 4).as_nanos().max(1);
    if duration.as_nanos() / busiest > u128::from(MAX_PLANNED_FAULTS) {
        let least =
            format_duration(Duration::from_nanos((duration.as_nanos() * 4 / u128::from(MAX_PLANNED_FAULTS)) as u64));
        return Err(cx.err(
            n.every.span(),
            format!(
                "every {} over a duration of {} plans more than {MAX_PLANNED_FAULTS} faults; \
                 make every at least {least} or the duration shorter",
                format_duration(n.every.get_ref().0),
                format_duration(duration)
            ),
        ));
    }
    let max_drift_ppm = if drift_ppm > 0.0 { drift_ppm } else { 200.0 };
    let events = events.iter().map(|e| (*e).to_owned()).collect();
    Ok(Nemesis { kinds: n.kinds.get_ref().clone(), every: n.every.get_ref().0, max_drift_ppm, network, events })
}

pub(super) type Workload = (u32, u32, Option<Vec<Vec<ClientOp>>>);

pub(super) fn parse_workload(
    cx: &Ctx<'_>,
    w: &WorkloadSection,
    validate: &dyn Fn(&ClientOp) -> Result<(), String>,
) -> Result<Workload, ScenarioError> {
    let keys = match &w.keys {
        Some(k) if *k.get_ref() == 0 || *k.get_ref() > MAX_KEYS => {
            return Err(cx.err(k.span(), format!("keys must be between 1 and {MAX_KEYS}, not {}", k.get_ref())))
        }
        Some(k) => *k.get_ref(),
        None => 1,
    };
    if w.client.is_empty() {
        let ops = w.ops.as_ref().map_or(0, |o| *o.get_ref());
        if let Some(o) = w.ops.as_ref().filter(|_| ops > MAX_OPS) {
            return Err(cx.err(o.span(), format!("ops must be at most {MAX_OPS}, not {ops}")));
        }
        if ops > 0 && cx.clients == 0 {
            let span = w.ops.as_ref().map_or(0..0, |o| o.span());
            return Err(cx.err(span, "workload ops need clients: set `clients` to at least 1"));
        }
        return Ok((ops, keys, None));
    }
    if let Some(o) = &w.ops {
        return Err(cx.err(o.span(), "give either `ops` (generated) or [[workload.client]] scripts, not both"));
    }
    let mut scripts = vec![Vec::new(); cx.clients as usize];
    let mut named = Vec::new();
    let mut total = 0usize;
    for script in &w.client {
        let id = cx.node_named(&script.get_ref().name, script.span())?;
        if named.contains(&id) {
            return Err(cx.err(script.span(), format!("a second script for {id}; give each client one")));
        }
        named.push(id);
        total += script.get_ref().ops.len();
        if total > MAX_OPS as usize {
            return Err(cx.err(script.span(), format!("the scripts hold more than {MAX_OPS} ops")));
        }
        if !id.is_client() {
            return Err(cx.err(
                script.span(),
                format!("{} is a server; workload scripts belong to clients", script.get_ref().name),
            ));
        }
        let ops = script
            .get_ref()
            .ops
            .iter()
            .map(|op| {
                parse_client_op(op).and_then(|op| validate(&op).map(|()| op)).map_err(|m| cx.err(script.span(), m))
            })
            .collect::<Result<_, _>>()?;
        scripts[id.index() as usize] = ops;
    }
    let total = scripts.iter().map(Vec::len).sum::<usize>() as u32;
    Ok((total, keys, Some(scripts)))
}

pub(super) fn parse_client_op(op: &toml::Value) -> Result<ClientOp, String> {
    let what = || format!("each op is [f, key] or [f, key, value], like [\"write\", \"k1\", 3]; found {op}");
    let toml::Value::Array(parts) = op else { return Err(what()) };
    let f = parts.first().and_then(|v| v.as_str()).ok_or_else(what)?.to_owned();
    let key = match parts.get(1) {
        Some(toml::Value::String(k)) if k.is_empty() => None,
        Some(toml::Value::String(k)) => Some(k.clone()),
        _ => return Err(what()),
    };
    let value = match parts.get(2) {
        None => Value::Null,
        Some(v) => toml_to_value(v).ok_or_else(what)?,
    };
    if parts.len() > 3 {
        return Err(what());
    }
    Ok(ClientOp { f, key, value })
}

pub(super) fn toml_to_value(v: &toml::Value) -> Option<Value> {
    Some(match v {
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::String(s) => Value::Str(s.clone()),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(items) => Value::List(items.iter().map(toml_to_value).collect::<Option<_>>()?),
        _ => return None,
    })
}

pub(super) fn value_to_toml(v: &Value) -> toml::Value {
    match v {
        Value::Null => toml::Value::String(String::new()),
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Int(i) => toml::Value::Integer(*i),
        Value::Str(s) => toml::Value::String(s.clone()),
        Value::List(items) => toml::Value::Array(items.iter().map(value_to_toml).collect()),
    }
}

/// The most times one trigger may fire in a run.
const MAX_TRIGGER_LIMIT: u32 = 1000;

pub(super) fn parse_trigger(
    cx: &Ctx<'_>,
    e: &TriggerEntry,
    events: &[&str],
    system: &str,
    duration: Duration,
) -> Result<crate::trigger::Trigger, ScenarioError> {
    use crate::trigger::{Trigger, TriggerAction};
    let on = e.on.get_ref();
    if !events.contains(&on.as_str()) {
        let known = if events.is_empty() {
            format!("system \"{system}\" reports no events to trigger on")
        } else {
            format!("system \"{system}\" triggers on {}", events.join(", "))
        };
        return Err(cx.err(e.on.span(), format!("unknown event \"{on}\"; {known}")));
    }
    let action = TriggerAction::parse(e.kind.get_ref()).ok_or_else(|| {
        cx.err(
            e.kind.span(),
            format!("a trigger's kind is one of {}, not \"{}\"", TriggerAction::NAMES.join(", "), e.kind.get_ref()),
        )
    })?;
    let probability = match &e.probability {
        Some(p) if !(0.0..=1.0).contains(p.get_ref()) => {
            return Err(cx.err(p.span(), format!("probability must be between 0 and 1, not {}", p.get_ref())));
        }
        Some(p) => *p.get_ref(),
        None => 1.0,
    };
    let range = |spec: &Spanned<DurSpec>| -> Result<crate::trigger::DurationRange, ScenarioError> {
        let (min, max) = match spec.get_ref() {
            DurSpec::Fixed(d) => (d.0, d.0),
            DurSpec::Range { min, max } => (min.0, max.0),
        };
        if min > max {
            return Err(cx.err(spec.span(), "`min` must not be above `max`"));
        }
        if max > duration {
            return Err(cx.err(spec.span(), format!("at most the fault phase ({})", format_duration(duration))));
        }
        Ok(crate::trigger::DurationRange { min, max })
    };
    let after = match &e.after {
        Some(a) => range(a)?,
        None => crate::trigger::DurationRange::exactly(Duration::ZERO),
    };
    let for_ = e.for_.as_ref().map(&range).transpose()?;
    let target = match &e.target {
        None => None,
        Some(t) => Some(match t.get_ref().as_str() {
            "random" => Target::Random,
            "leader" => Target::Leader,
            "minority" => Target::Minority,
            "majority" => Target::Majority,
            "all" => Target::All,
            _ => {
                let id = cx.node(t)?;
                if id.is_client() && action != TriggerAction::Pause && !cx.clients_crash {
                    return Err(cx.err(
                        t.span(),
                        format!("{id} is a client: clients never crash or get cut off; pause it instead"),
                    ));
                }
                Target::Node(id)
            }
        }),
    };
    let limit = match &e.limit {
        Some(l) if *l.get_ref() == 0 || *l.get_ref() > MAX_TRIGGER_LIMIT => {
            return Err(
                cx.err(l.span(), format!("limit must be between 1 and {MAX_TRIGGER_LIMIT}, not {}", l.get_ref()))
            );
        }
        Some(l) => *l.get_ref(),
        None => 10,
    };
    Ok(Trigger { on: on.clone(), probability, after, action, target, duration: for_, limit })
}
