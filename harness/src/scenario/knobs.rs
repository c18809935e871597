//! System knobs drawn per seed (FoundationDB's knob randomisation): a
//! `[config]` value may be a range, `{ min = .., max = .. }` (integers,
//! numbers, or durations like "50ms"), or a choice, `{ one_of = [..] }`.
//! Each seed draws every knob from its own stream; the plan carries the
//! drawn `[config]`, and `shrink` writes it out explicitly. Short timeouts,
//! small batches and long heartbeats reach states that defaults never do.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::*;
use crate::time::nanos;

/// One `[config]` key whose value each seed draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Knob {
    pub key: String,
    pub range: KnobRange,
}

#[derive(Clone, Debug, PartialEq)]
pub enum KnobRange {
    Integer {
        min: i64,
        max: i64,
    },
    Number {
        min: f64,
        max: f64,
    },
    /// Drawn log-uniformly when `min` is positive: 1-10 ms as likely as 100 ms-1 s.
    Duration {
        min: Duration,
        max: Duration,
    },
    OneOf(Vec<toml::Value>),
}

impl Knob {
    /// The value at one end of the range, or the `i`th choice (clamped).
    fn value_at(&self, end: End) -> toml::Value {
        match (&self.range, end) {
            (KnobRange::Integer { min, .. }, End::Low) => toml::Value::Integer(*min),
            (KnobRange::Integer { max, .. }, End::High) => toml::Value::Integer(*max),
            (KnobRange::Number { min, .. }, End::Low) => toml::Value::Float(*min),
            (KnobRange::Number { max, .. }, End::High) => toml::Value::Float(*max),
            (KnobRange::Duration { min, .. }, End::Low) => duration_value(*min),
            (KnobRange::Duration { max, .. }, End::High) => duration_value(*max),
            (KnobRange::OneOf(values), End::Low) => values[0].clone(),
            (KnobRange::OneOf(values), End::High) => values[values.len() - 1].clone(),
            (KnobRange::OneOf(values), End::Choice(i)) => values[i.min(values.len() - 1)].clone(),
            (_, End::Choice(_)) => self.value_at(End::Low),
        }
    }

    fn draw(&self, rng: &mut Rng) -> toml::Value {
        match &self.range {
            KnobRange::Integer { min, max } => {
                let span = max.abs_diff(*min);
                let offset = if span == u64::MAX { rng.next_u64() } else { rng.below(span + 1) };
                toml::Value::Integer(min.wrapping_add_unsigned(offset))
            }
            KnobRange::Number { min, max } => {
                // Weighted, not `min + u * (max - min)`, which overflows for
                // ranges wider than f64::MAX.
                let u = rng.unit();
                toml::Value::Float((min * (1.0 - u) + max * u).clamp(*min, *max))
            }
            KnobRange::Duration { min, max } => {
                let (lo, hi) = (nanos(*min), nanos(*max));
                let drawn = if lo > 0 { rng.log_uniform(lo, hi) } else { rng.between(lo, hi) };
                // Whole microseconds: the value is written out by `shrink` and
                // must read back as the same duration.
                let drawn = (drawn / 1_000 * 1_000).clamp(lo, hi);
                duration_value(Duration::from_nanos(drawn))
            }
            KnobRange::OneOf(values) => values[rng.below(values.len() as u64) as usize].clone(),
        }
    }
}

#[derive(Clone, Copy)]
enum End {
    Low,
    High,
    Choice(usize),
}

fn duration_value(d: Duration) -> toml::Value {
    toml::Value::String(format_duration(d))
}

/// The `[config]` table of a file, with spans.
#[derive(Deserialize)]
struct ConfigSpans {
    #[serde(default)]
    config: BTreeMap<String, Spanned<toml::Value>>,
}

/// The keys of a file's `[config]` with the spans of their values, in file order.
fn config_spans(text: &str) -> Vec<(String, Range<usize>)> {
    let Ok(spans) = toml::from_str::<ConfigSpans>(text) else { return Vec::new() };
    let mut keys: Vec<(String, Range<usize>)> = spans.config.into_iter().map(|(k, v)| (k, v.span())).collect();
    keys.sort_by_key(|(_, span)| span.start);
    keys
}

/// The span of the first `[config]` key (of those `considered`) that a
/// system rejects on its own, with its value from `table`: where a message
/// about a whole table belongs. `None` when each key alone is acceptable (a
/// rule across keys).
pub(super) fn blame(
    text: &str,
    table: &toml::Table,
    considered: impl Fn(&str) -> bool,
    accepts: impl Fn(&toml::Table) -> bool,
) -> Option<Range<usize>> {
    config_spans(text).into_iter().filter(|(key, _)| considered(key)).find_map(|(key, span)| {
        let alone: toml::Table = table.get(&key).map(|v| (key.clone(), v.clone())).into_iter().collect();
        (!accepts(&alone)).then_some(span)
    })
}

/// The knobs of a file's `[config]`, each with the span of its value.
pub(super) fn find_knobs(cx: &Ctx<'_>) -> Result<Vec<(Knob, Range<usize>)>, ScenarioError> {
    let Ok(spans) = toml::from_str::<ConfigSpans>(cx.text) else {
        return Ok(Vec::new()); // not a table: the config check reports it
    };
    let mut knobs = Vec::new();
    for (key, value) in spans.config {
        let span = value.span();
        let toml::Value::Table(table) = value.into_inner() else { continue };
        // Sorted: toml keeps insertion order when its `preserve_order` is on.
        let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let range = match keys.as_slice() {
            ["max", "min"] => parse_range(cx, &key, &table["min"], &table["max"], &span)?,
            ["one_of"] => match &table["one_of"] {
                toml::Value::Array(values) if !values.is_empty() => KnobRange::OneOf(values.clone()),
                _ => return Err(cx.err(span, format!("{key}: `one_of` must be a non-empty list of values"))),
            },
            _ => continue, // a table value the system itself may take
        };
        knobs.push((Knob { key, range }, span));
    }
    Ok(knobs)
}

fn parse_range(
    cx: &Ctx<'_>,
    key: &str,
    min: &toml::Value,
    max: &toml::Value,
    span: &Range<usize>,
) -> Result<KnobRange, ScenarioError> {
    let bad = |what: &str| cx.err(span.clone(), format!("{key}: {what}"));
    let range = match (min, max) {
        (toml::Value::Integer(a), toml::Value::Integer(b)) => KnobRange::Integer { min: *a, max: *b },
        (toml::Value::Float(a), toml::Value::Float(b)) if a.is_finite() && b.is_finite() => {
            KnobRange::Number { min: *a, max: *b }
        }
        (toml::Value::String(a), toml::Value::String(b)) => {
            let parse = |s: &String| -> Result<Duration, ScenarioError> {
                toml::Value::String(s.clone())
                    .try_into::<Dur>()
                    .map(|d| d.0)
                    .map_err(|e| bad(&format!("`min` and `max` must be durations like \"50ms\": {}", e.message())))
            };
            KnobRange::Duration { min: parse(a)?, max: parse(b)? }
        }
        _ => return Err(bad("`min` and `max` must both be integers, both numbers, or both durations like \"50ms\"")),
    };
    let ordered = match &range {
        KnobRange::Integer { min, max } => min <= max,
        KnobRange::Number { min, max } => min <= max,
        KnobRange::Duration { min, max } => min <= max,
        KnobRange::OneOf(_) => true,
    };
    if !ordered {
        return Err(bad("`min` must not be above `max`"));
    }
    Ok(range)
}

/// `config` with every knob set by `pick`.
fn substituted(config: &toml::Table, knobs: &[Knob], mut pick: impl FnMut(usize, &Knob) -> toml::Value) -> toml::Table {
    let mut table = config.clone();
    for (i, knob) in knobs.iter().enumerate() {
        table.insert(knob.key.clone(), pick(i, knob));
    }
    table
}

/// The configurations a file's knobs can produce that parsing checks: each
/// knob at each end of its range (and each of its choices) with the others
/// low. Each comes with the index of the knob it varies, for error spans.
/// Values between the ends, and combinations of ends, are trusted: a system
/// that rejects one has a `[config]` rule no range can show, and the run
/// reports it as a crash.
pub(super) fn corners(config: &toml::Table, knobs: &[Knob]) -> Vec<(usize, toml::Table)> {
    let mut out = Vec::new();
    for (i, knob) in knobs.iter().enumerate() {
        let ends: Vec<End> = match &knob.range {
            KnobRange::OneOf(values) => (0..values.len()).map(End::Choice).collect(),
            _ => vec![End::Low, End::High],
        };
        for end in ends {
            out.push((i, substituted(config, knobs, |j, k| k.value_at(if j == i { end } else { End::Low }))));
        }
    }
    out
}

impl Scenario {
    /// The `[config]` one seed runs with: every knob drawn from the seed.
    pub fn config_for(&self, seed: u64) -> toml::Table {
        if self.knobs.is_empty() {
            return self.config.clone();
        }
        let mut rng = Rng::new(seed, Stream::Knobs);
        substituted(&self.config, &self.knobs, |_, k| k.draw(&mut rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knob(range: KnobRange) -> Knob {
        Knob { key: "k".into(), range }
    }

    #[test]
    fn draws_stay_in_range_and_reach_both_ends_of_the_scale() {
        let ms = Duration::from_millis;
        let d = knob(KnobRange::Duration { min: ms(1), max: ms(1000) });
        let i = knob(KnobRange::Integer { min: -3, max: 3 });
        let mut rng = Rng::new(7, Stream::Knobs);
        let (mut short, mut long) = (0, 0);
        let mut ints = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let drawn: Dur = d.draw(&mut rng).try_into().expect("a duration string");
            assert!(drawn.0 >= ms(1) && drawn.0 <= ms(1000), "{drawn:?}");
            short += usize::from(drawn.0 < ms(10));
            long += usize::from(drawn.0 >= ms(100));
            ints.insert(i.draw(&mut rng).as_integer().expect("an integer"));
        }
        // Log-uniform: each decade gets about a third of the draws.
        assert!(short > 500 && long > 500, "{short} {long}");
        assert_eq!(ints.into_iter().collect::<Vec<_>>(), vec![-3, -2, -1, 0, 1, 2, 3]);
        let extreme = knob(KnobRange::Integer { min: i64::MIN, max: i64::MAX });
        assert!(extreme.draw(&mut rng).as_integer().is_some());
    }
}
