//! The message sequence, Maelstrom style: a column per node, time running
//! down, each message an arrow from its send to its fate (delivered, or a
//! cross where it was lost, cut by a partition, or reached a node that
//! was down). Drawn for the last messages before the violation (or the end
//! of the run): what a person reads to see what the nodes said to each
//! other just before it went wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use harness::node::NodeId;
use harness::sim::messages::{Fate, Message};
use harness::SimTime;

use super::{esc, fmt_ns};

/// The most messages drawn: a few screens tall.
pub const MAX_DRAWN_MESSAGES: usize = 150;

const LEFT: f64 = 100.0;
const TOP: f64 = 30.0;
const ROW: f64 = 14.0;
const MAX_COLUMN: f64 = 170.0;
const SPAN: f64 = 1000.0;

/// Writes the message sequence of `messages` (in the order their fates
/// were sealed), up to the violation's time when it has one.
pub fn write_messages(out: &mut String, messages: &[Message], violation: Option<SimTime>) {
    if messages.is_empty() {
        return;
    }
    let upto = violation.unwrap_or(SimTime(u64::MAX));
    let before: Vec<&Message> =
        messages.iter().filter(|m| m.sent <= upto && m.fate.at().is_none_or(|t| t <= upto)).collect();
    let drawn = &before[before.len().saturating_sub(MAX_DRAWN_MESSAGES)..];
    let _ = writeln!(
        out,
        "<h2>Messages</h2>\n<p class=\"note\">The last {} messages sent by {}, a row per instant: green \
         arrows were delivered, red crosses lost, cut by a partition or sent to a node that was down, grey dashes \
         still in flight.</p>",
        drawn.len(),
        if violation.is_some() { "the violation" } else { "the end of the run" },
    );
    let columns: BTreeSet<NodeId> = drawn.iter().flat_map(|m| [m.from, m.to]).collect();
    let column: BTreeMap<NodeId, usize> = columns.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let width = (SPAN / columns.len().max(1) as f64).min(MAX_COLUMN);
    let x = |n: NodeId| LEFT + width * (column[&n] as f64 + 0.5);
    // One row per distinct instant: sends at once share a row.
    let mut instants: BTreeSet<SimTime> = drawn.iter().map(|m| m.sent).collect();
    instants.extend(drawn.iter().filter_map(|m| m.fate.at()));
    instants.extend(violation.filter(|&t| instants.first().is_some_and(|&f| f <= t)));
    let row: BTreeMap<SimTime, usize> = instants.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let y = |t: SimTime| TOP + ROW * (row[&t] as f64 + 1.0);
    let height = TOP + ROW * (instants.len() as f64 + 2.0);
    let _ = writeln!(
        out,
        "<svg class=\"sequence\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" role=\"img\">\n\
         <defs><marker id=\"head\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" \
         orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 z\"/></marker></defs>",
        LEFT + width * columns.len() as f64 + 10.0
    );
    for &n in &columns {
        let _ = writeln!(
            out,
            "<text class=\"lane\" x=\"{:.1}\" y=\"16\" text-anchor=\"middle\">{n}</text>\
             <line class=\"lifeline\" x1=\"{0:.1}\" y1=\"{TOP}\" x2=\"{0:.1}\" y2=\"{:.1}\"/>",
            x(n),
            height - ROW
        );
    }
    for &t in &instants {
        let _ = writeln!(out, "<text class=\"tick\" x=\"4\" y=\"{:.1}\">{}</text>", y(t) + 3.0, fmt_ns(t.0));
    }
    if let Some(t) = violation.filter(|t| row.contains_key(t)) {
        let _ = writeln!(
            out,
            "<line class=\"violation\" x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\"/>",
            y(t),
            LEFT + width * columns.len() as f64
        );
    }
    for m in drawn {
        write_arrow(out, m, (x(m.from), y(m.sent)), x(m.to), &|t| y(t));
    }
    out.push_str("</svg>\n");
}

/// One message: a line from its send to where its fate was sealed.
fn write_arrow(out: &mut String, m: &Message, (x0, y0): (f64, f64), to_x: f64, y: &dyn Fn(SimTime) -> f64) {
    let (class, fate) = match m.fate {
        Fate::Delivered(t) => ("delivered", format!("delivered at {}", fmt_ns(t.0))),
        Fate::Lost => ("dropped", "lost by the network at the sender".to_owned()),
        Fate::CutAtSender => ("dropped", "dropped by a partition at the sender".to_owned()),
        Fate::Cut(t) => ("dropped", format!("dropped by a partition on arrival at {}", fmt_ns(t.0))),
        Fate::Down(t) => ("dropped", format!("arrived at {} while it was down", fmt_ns(t.0))),
        Fate::Discarded { arrived, crashed } => (
            "dropped",
            format!(
                "arrived at {} while it was paused, lost when it crashed at {}",
                fmt_ns(arrived.0),
                fmt_ns(crashed.0)
            ),
        ),
        Fate::InFlight => ("inflight", "still in flight when the picture ends".to_owned()),
    };
    let (x1, y1) = match (m.fate, m.fate.at()) {
        // A message to itself loops out to the right.
        (_, Some(t)) if m.from == m.to => (x0 + 24.0, y(t)),
        (_, Some(t)) => (to_x, y(t)),
        // Still in flight: it points at the receiver, half-way down a row.
        (Fate::InFlight, None) => (x0 + (to_x - x0) * 0.9, y0 + ROW / 2.0),
        // Dropped at the sender: a third of the way.
        _ => (x0 + (to_x - x0) / 3.0, y0 + 6.0),
    };
    let title = format!("{} -> {}: sent at {}, {fate}\n{}", m.from, m.to, fmt_ns(m.sent.0), m.text);
    let _ = write!(
        out,
        "<g class=\"msg {class}\"><title>{}</title><line x1=\"{x0:.1}\" y1=\"{y0:.1}\" x2=\"{x1:.1}\" y2=\"{y1:.1}\"{}/>",
        esc(&title),
        if class == "delivered" { " marker-end=\"url(#head)\"" } else { "" }
    );
    if class == "dropped" {
        let _ = write!(out, "<path class=\"cross\" d=\"M{:.1},{:.1} l8,8 m0,-8 l-8,8\"/>", x1 - 4.0, y1 - 4.0);
    }
    let name = short_name(&m.text);
    if !name.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0 - 2.0,
            esc(&name)
        );
    }
    out.push_str("</g>\n");
}

/// A message's kind as its text begins: `AppendEntries { .. }` is
/// `AppendEntries`, at most 18 characters.
fn short_name(text: &str) -> String {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
    text[..end].chars().take(18).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(from: NodeId, to: NodeId, sent: u64, fate: Fate, text: &str) -> Message {
        Message { from, to, sent: SimTime(sent), fate, text: text.to_owned() }
    }

    #[test]
    fn every_message_is_an_arrow_and_its_text_is_escaped() {
        let (a, b) = (NodeId::server(0), NodeId::client(0));
        let messages = [
            message(a, b, 10, Fate::Delivered(SimTime(20)), "Reply { v: \"<script>\" }"),
            message(b, a, 15, Fate::Lost, "Get"),
            message(b, a, 15, Fate::Cut(SimTime(30)), "Put(1)"),
            message(a, a, 40, Fate::Delivered(SimTime(41)), "Tick"),
            message(a, b, 90, Fate::Down(SimTime(95)), "Late"),
        ];
        let mut page = String::new();
        write_messages(&mut page, &messages, Some(SimTime(50)));
        assert_eq!(page.matches("<g class=\"msg ").count(), 4, "the one sent after the violation is left out");
        assert_eq!(page.matches("<g class=\"msg dropped\">").count(), 2);
        assert_eq!(page.matches("<path class=\"cross\"").count(), 2);
        assert!(page.contains("Reply { v: &quot;&lt;script&gt;&quot; }") && !page.contains("<script"));
        assert!(page.contains(">Reply</text>") && page.contains(">Tick</text>"));
        assert!(page.contains("<line class=\"violation\""));
        assert!(page.contains("The last 4 messages sent by the violation"));
    }

    #[test]
    fn nothing_is_drawn_without_messages() {
        let mut page = String::new();
        write_messages(&mut page, &[], None);
        assert!(page.is_empty());
    }
}
