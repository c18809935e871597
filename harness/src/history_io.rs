//! Reading and writing history files.
//!
//! Three formats:
//! - `jsonl`: faultline's own, one JSON object per line (DESIGN.md);
//! - `porcupine-etcd`: Jepsen etcd log lines, as in Porcupine's test data;
//! - `porcupine-kv`: one EDN map per line, Porcupine's key-value histories.
//!
//! Every reader checks that completions pair with invocations, and every
//! error names the line (and column where there is one) and says what was
//! expected. No input makes a reader panic (a property test feeds them
//! arbitrary text).

use std::borrow::Cow;
use std::fmt;

use crate::history::{History, Op, OpType, Value};

/// The formats a history file can be in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    PorcupineEtcd,
    PorcupineKv,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &["jsonl", "porcupine-etcd", "porcupine-kv"];

    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "jsonl" => Some(Format::Jsonl),
            "porcupine-etcd" => Some(Format::PorcupineEtcd),
            "porcupine-kv" => Some(Format::PorcupineKv),
            _ => None,
        }
    }

    /// Guesses the format from the first non-blank line, then the file name.
    pub fn infer(file_name: &str, text: &str) -> Format {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        if first.starts_with("{:") {
            Format::PorcupineKv
        } else if first.starts_with('{') {
            Format::Jsonl
        } else if first.contains("jepsen.util") || file_name.ends_with(".log") {
            Format::PorcupineEtcd
        } else if file_name.ends_with(".txt") || file_name.ends_with(".edn") {
            Format::PorcupineKv
        } else {
            Format::Jsonl
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "jsonl",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
        })
    }
}

/// A malformed history: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub line: usize,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {}: {}", self.line, c, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// A history with the file line of each event (1-based), for error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedHistory {
    pub history: History,
    pub lines: Vec<usize>,
}

impl ParsedHistory {
    /// The file line of event `i`.
    pub fn line_of(&self, event: usize) -> usize {
        self.lines.get(event).copied().unwrap_or(0)
    }
}

pub fn read(format: Format, text: &str) -> Result<ParsedHistory, ReadError> {
    // A byte-order mark some editors write is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = match format {
        Format::Jsonl => read_jsonl(text)?,
        Format::PorcupineEtcd => read_porcupine_etcd(text)?,
        Format::PorcupineKv => read_porcupine_kv(text)?,
    };
    check_pairing(&parsed)?;
    Ok(parsed)
}

fn err(line: usize, column: Option<usize>, message: impl Into<String>) -> ReadError {
    ReadError { line, column, message: shorten(message.into()) }
}

/// The longest error message shown: one that quotes an input value must
/// not echo all of a 100 KB value back.
const LONGEST_MESSAGE: usize = 500;

/// `message`, cut to [`LONGEST_MESSAGE`] characters with a mark where it was cut.
pub fn shorten(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(LONGEST_MESSAGE) {
        message.truncate(cut);
        message.push_str("... (cut)");
    }
    message
}

/// Completions must follow an invocation of the same function by the same process.
fn check_pairing(parsed: &ParsedHistory) -> Result<(), ReadError> {
    parsed
        .history
        .pair_with(|i| format!("line {}", parsed.line_of(i)))
        .map(|_| ())
        .map_err(|e| err(parsed.line_of(e.event), None, e.message))
}

/// Parses every non-blank line with `parse_line` (given the 1-based line
/// number), keeping each event's line for later error messages.
fn read_lines(text: &str, parse_line: fn(usize, &str) -> Result<Op, ReadError>) -> Result<ParsedHistory, ReadError> {
    let mut out = ParsedHistory::default();
    // One op a line: growing the vectors as they fill would copy them and
    // touch twice the pages. No op line is shorter than 16 bytes, and a
    // file of blank lines must not reserve an op for each.
    let lines = (text.bytes().filter(|&b| b == b'\n').count() + 1).min(text.len() / 16 + 1);
    out.history.ops.reserve(lines);
    out.lines.reserve(lines);
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        out.history.push(parse_line(i + 1, raw)?);
        out.lines.push(i + 1);
    }
    Ok(out)
}

// ---------------------------------------------------------------- jsonl

const JSONL_FIELDS: &[&str] = &["process", "type", "f", "key", "value", "time"];

pub fn read_jsonl(text: &str) -> Result<ParsedHistory, ReadError> {
    read_lines(text, parse_jsonl_line)
}

fn parse_jsonl_line(line: usize, raw: &str) -> Result<Op, ReadError> {
    let json: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
        // serde_json counts bytes; a person counts characters.
        let bytes = e.column().saturating_sub(1).min(raw.len());
        let column = raw.char_indices().take_while(|&(at, _)| at < bytes).count() + 1;
        err(line, Some(column), format!("expected a JSON object: {}", strip_position(&e.to_string())))
    })?;
    let serde_json::Value::Object(map) = json else {
        return Err(err(
            line,
            Some(1),
            "expected a JSON object like {\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}",
        ));
    };
    if let Some(unknown) = map.keys().find(|k| !JSONL_FIELDS.contains(&k.as_str())) {
        return Err(err(line, None, format!("unknown field `{unknown}`; expected one of {}", JSONL_FIELDS.join(", "))));
    }
    let process = match map.get("process") {
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        Some(other) => return Err(err(line, None, format!("`process` must be a non-negative integer, not {other}"))),
        None => return Err(err(line, None, "missing field `process` (a non-negative integer)")),
    };
    let kind = match map.get("type").and_then(|v| v.as_str()) {
        Some("invoke") => OpType::Invoke,
        Some("ok") => OpType::Ok,
        Some("fail") => OpType::Fail,
        Some("info") => OpType::Info,
        Some(other) => return Err(err(line, None, format!("`type` must be invoke, ok, fail or info, not {other:?}"))),
        None => return Err(err(line, None, "missing or non-string field `type` (invoke, ok, fail or info)")),
    };
    let f = match map.get("f") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            return Err(err(line, None, format!("`f` must be a non-empty string naming the function, not {other}")))
        }
        None => return Err(err(line, None, "missing field `f` (the function, e.g. \"read\")")),
    };
    let key = match map.get("key") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) if n.as_i64().is_some() => Some(n.to_string()),
        Some(other) => return Err(err(line, None, format!("`key` must be a string or an integer, not {other}"))),
    };
    let value = match map.get("value") {
        None => Value::Null,
        Some(v) => json_to_value(v).map_err(|m| err(line, None, format!("`value`: {m}")))?,
    };
    let time = match map.get("time") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            return Err(err(line, None, format!("`time` must be a non-negative integer (nanoseconds), not {other}")))
        }
    };
    Ok(Op { process, kind, f, key, value, time })
}

/// serde_json appends " at line 1 column 5"; the caller reports its own position.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn json_to_value(v: &serde_json::Value) -> Result<Value, String> {
    Ok(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            Value::Int(n.as_i64().ok_or_else(|| format!("expected an integer that fits 64 bits, not {n}"))?)
        }
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(json_to_value).collect::<Result<_, _>>()?),
        serde_json::Value::Object(_) => {
            return Err("expected null, a boolean, an integer, a string or a list, not an object".into())
        }
    })
}

/// Writes a history as JSON lines (the inverse of [`read_jsonl`]).
pub fn write_jsonl(history: &History) -> String {
    let mut out = String::new();
    for op in &history.ops {
        out.push_str(&serde_json::to_string(op).expect("ops serialise"));
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------- porcupine etcd

/// Jepsen etcd log lines: `INFO  jepsen.util - <process> <type> <f> <value>`.
/// A `:fail :cas` means the cas ran and found another value; it is mapped to
/// an `ok` cas whose output is `false` (the register model's "compare
/// failed"), which is Porcupine's reading of these files.
pub fn read_porcupine_etcd(text: &str) -> Result<ParsedHistory, ReadError> {
    read_lines(text, parse_porcupine_etcd_line)
}

fn parse_porcupine_etcd_line(line: usize, raw: &str) -> Result<Op, ReadError> {
    const MARK: &str = "jepsen.util - ";
    // Every line of a Jepsen log starts `INFO  jepsen.util - `: look for the
    // mark anywhere only when it does not.
    let pos = if raw.starts_with("INFO  jepsen.util - ") {
        "INFO  ".len()
    } else {
        raw.find(MARK).ok_or_else(|| {
            err(line, Some(1), "expected a Jepsen log line `INFO  jepsen.util - <process> <type> <f> <value>`")
        })?
    };
    let rest = &raw[pos + MARK.len()..];
    // Columns count characters, as an editor shows them, not bytes; worked
    // out only for an error. Every field is a slice of the line.
    let col_at = |at: usize| Some(raw[..at].chars().count() + 1);
    let col = |field: &str| col_at(field.as_ptr() as usize - raw.as_ptr() as usize);
    // Any Unicode whitespace separates fields; the ASCII splitter gives the
    // same fields for a line of ASCII without a vertical tab (the one ASCII
    // space it does not split on), and costs a third of the other.
    let (mut ascii_fields, mut unicode_fields);
    let fields: &mut dyn Iterator<Item = &str> = if rest.bytes().all(|b| b.is_ascii() && b != 0x0B) {
        ascii_fields = rest.split_ascii_whitespace();
        &mut ascii_fields
    } else {
        unicode_fields = rest.split_whitespace();
        &mut unicode_fields
    };
    let (Some(process), Some(kind), Some(f), Some(first_value)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(err(line, col_at(pos), "expected four fields after `jepsen.util -`: process, type, f, value"));
    };
    let process: u64 =
        process.parse().map_err(|_| err(line, col(process), format!("expected a process number, not `{process}`")))?;
    let kind = match kind {
        ":invoke" => OpType::Invoke,
        ":ok" => OpType::Ok,
        ":fail" => OpType::Fail,
        ":info" => OpType::Info,
        other => return Err(err(line, col(other), format!("expected :invoke, :ok, :fail or :info, not `{other}`"))),
    };
    let f = match f {
        ":read" => "read",
        ":write" => "write",
        ":cas" => "cas",
        other => {
            return Err(err(line, col(other), format!("expected the function :read, :write or :cas, not `{other}`")))
        }
    };
    // The value is the rest of the line: `[from to]` holds a space.
    let value_at = first_value.as_ptr() as usize - raw.as_ptr() as usize;
    let value_text = raw[value_at..].trim_end();
    let value = parse_etcd_value(value_text).ok_or_else(|| {
        let shown = value_text.split_whitespace().collect::<Vec<_>>().join(" ");
        err(line, col(first_value), format!("expected nil, an integer, `[from to]` or :timed-out, not `{shown}`"))
    })?;
    let (kind, value) = match (kind, f) {
        (OpType::Fail, "cas") if value.as_pair().is_some() => (OpType::Ok, Value::Bool(false)),
        _ => (kind, value),
    };
    Ok(Op { process, kind, f: f.to_owned(), key: None, value, time: None })
}

fn parse_etcd_value(s: &str) -> Option<Value> {
    match s {
        "nil" => Some(Value::Null),
        ":timed-out" => Some(Value::Null),
        _ if s.starts_with('[') && s.ends_with(']') => {
            let inner: Vec<&str> = s[1..s.len() - 1].split_whitespace().collect();
            if inner.len() != 2 {
                return None;
            }
            let a = parse_etcd_value(inner[0])?;
            let b = parse_etcd_value(inner[1])?;
            Some(Value::pair(a, b))
        }
        _ => s.parse::<i64>().ok().map(Value::Int),
    }
}

// ---------------------------------------------------------------- porcupine kv (EDN)

/// One EDN map per line: `{:process 3, :type :invoke, :f :append, :key "4", :value "x 3 1 y"}`.
pub fn read_porcupine_kv(text: &str) -> Result<ParsedHistory, ReadError> {
    read_lines(text, parse_porcupine_kv_line)
}

fn parse_porcupine_kv_line(line: usize, raw: &str) -> Result<Op, ReadError> {
    let map = EdnLine::new(raw).map().map_err(|(c, m)| err(line, Some(c), m))?;
    let get = |k: &str| map.iter().find(|(key, _)| *key == k).map(|(_, v)| v);
    let missing = |k: &str| err(line, None, format!("missing key :{k}; expected :process, :type, :f, :key and :value"));
    if let Some((k, _)) = map.iter().find(|(k, _)| !["process", "type", "f", "key", "value"].contains(k)) {
        return Err(err(line, None, format!("unknown key :{k}; expected :process, :type, :f, :key and :value")));
    }
    let process = match get("process").ok_or_else(|| missing("process"))? {
        Edn::Int(n) if *n >= 0 => *n as u64,
        other => return Err(err(line, None, format!(":process must be a non-negative integer, not {other}"))),
    };
    let kind = match get("type").ok_or_else(|| missing("type"))? {
        Edn::Keyword("invoke") => OpType::Invoke,
        Edn::Keyword("ok") => OpType::Ok,
        Edn::Keyword("fail") => OpType::Fail,
        Edn::Keyword("info") => OpType::Info,
        other => return Err(err(line, None, format!(":type must be :invoke, :ok, :fail or :info, not {other}"))),
    };
    let f = match get("f").ok_or_else(|| missing("f"))? {
        Edn::Keyword(k) if ["get", "put", "append"].contains(k) => (*k).to_owned(),
        other => return Err(err(line, None, format!(":f must be :get, :put or :append, not {other}"))),
    };
    let key = match get("key").ok_or_else(|| missing("key"))? {
        Edn::Str(s) => s.to_string(),
        Edn::Int(n) => n.to_string(),
        other => return Err(err(line, None, format!(":key must be a string, not {other}"))),
    };
    let value = match get("value").ok_or_else(|| missing("value"))? {
        Edn::Nil => Value::Null,
        Edn::Str(s) => Value::Str(s.to_string()),
        other => return Err(err(line, None, format!(":value must be a string or nil, not {other}"))),
    };
    Ok(Op { process, kind, f, key: Some(key), value, time: None })
}

/// The few EDN values these files use, borrowed from the line where they
/// can be: a 2,000-line history is parsed without a string per word.
#[derive(Clone, Debug, PartialEq)]
enum Edn<'a> {
    Nil,
    Int(i64),
    Str(Cow<'a, str>),
    Keyword(&'a str),
}

impl fmt::Display for Edn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Int(n) => write!(f, "{n}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
        }
    }
}

/// A cursor over one line of EDN; errors carry a 1-based column, counted
/// in characters (worked out only for an error).
struct EdnLine<'a> {
    text: &'a str,
    /// A byte offset, always on a character boundary.
    pos: usize,
}

type EdnResult<T> = Result<T, (usize, String)>;

impl<'a> EdnLine<'a> {
    fn new(text: &'a str) -> Self {
        EdnLine { text, pos: 0 }
    }

    fn column(&self) -> usize {
        self.column_at(self.pos)
    }

    fn column_at(&self, pos: usize) -> usize {
        self.text[..pos].chars().count() + 1
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek().filter(|&c| c.is_whitespace() || c == ',') {
            self.bump(c);
        }
    }

    fn expect(&mut self, want: char, what: &str) -> EdnResult<()> {
        self.skip_space();
        match self.peek() {
            Some(c) if c == want => {
                self.bump(c);
                Ok(())
            }
            Some(c) => Err((self.column(), format!("expected {what}, found `{c}`"))),
            None => Err((self.column(), format!("expected {what}, found the end of the line"))),
        }
    }

    fn map(mut self) -> EdnResult<Vec<(&'a str, Edn<'a>)>> {
        self.expect('{', "`{` opening an EDN map")?;
        let mut entries = Vec::with_capacity(5);
        loop {
            self.skip_space();
            if self.peek() == Some('}') {
                self.pos += 1;
                break;
            }
            let key = match self.value()? {
                Edn::Keyword(k) => k,
                other => return Err((self.column(), format!("expected a keyword key like :process, found {other}"))),
            };
            if entries.iter().any(|(k, _)| *k == key) {
                return Err((self.column(), format!("the key :{key} appears twice")));
            }
            self.skip_space();
            if matches!(self.peek(), None | Some('}')) {
                return Err((self.column(), format!("expected a value for :{key}")));
            }
            let value = self.value()?;
            entries.push((key, value));
        }
        self.skip_space();
        if let Some(c) = self.peek() {
            return Err((self.column(), format!("expected the end of the line after the map, found `{c}`")));
        }
        Ok(entries)
    }

    fn value(&mut self) -> EdnResult<Edn<'a>> {
        self.skip_space();
        let start = self.pos;
        match self.peek() {
            Some('"') => self.string(),
            Some(':') => {
                self.pos += 1;
                let word = self.word();
                if word.is_empty() {
                    return Err((self.column_at(start), "expected a keyword name after `:`".into()));
                }
                Ok(Edn::Keyword(word))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let word = self.word();
                word.parse()
                    .map(Edn::Int)
                    .map_err(|_| (self.column_at(start), format!("expected an integer, found `{word}`")))
            }
            Some(_) => {
                let word = self.word();
                if word == "nil" {
                    Ok(Edn::Nil)
                } else {
                    Err((self.column_at(start), format!("expected a string, keyword, integer or nil, found `{word}`")))
                }
            }
            None => Err((self.column_at(start), "expected a value, found the end of the line".into())),
        }
    }

    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ',' || c == '}' || c == '{' || c == '"' {
                break;
            }
            self.bump(c);
        }
        if self.pos == start {
            // Always consume something, so a stray character cannot loop.
            if let Some(c) = self.peek() {
                self.bump(c);
            }
        }
        &self.text[start..self.pos]
    }

    fn string(&mut self) -> EdnResult<Edn<'a>> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let body = &self.text[self.pos..];
        // Most strings hold no escape: borrow them.
        if let Some(end) = body.find(['"', '\\']).filter(|&end| body.as_bytes()[end] == b'"') {
            self.pos += end + 1;
            return Ok(Edn::Str(Cow::Borrowed(&body[..end])));
        }
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err((self.column_at(start), "a string is not closed; expected `\"`".into())),
                Some('"') => {
                    self.pos += 1;
                    return Ok(Edn::Str(Cow::Owned(s)));
                }
                Some('\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some(c) => return Err((self.column(), format!("unknown escape `\\{c}` in a string"))),
                        None => return Err((self.column_at(start), "a string is not closed; expected `\"`".into())),
                    };
                    s.push(escaped);
                    self.pos += 1;
                }
                Some(c) => {
                    s.push(c);
                    self.bump(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_round_trips() {
        let text = "{\"process\":3,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"x\",\"value\":4,\"time\":1200}\n\
                    {\"process\":3,\"type\":\"ok\",\"f\":\"write\",\"key\":\"x\",\"value\":4,\"time\":1450}\n\
                    {\"process\":5,\"type\":\"invoke\",\"f\":\"cas\",\"value\":[4,7]}\n";
        let parsed = read(Format::Jsonl, text).expect("valid");
        assert_eq!(parsed.history.len(), 3);
        assert_eq!(parsed.history.ops[2].value, Value::pair(Value::Int(4), Value::Int(7)));
        let again = read(Format::Jsonl, &write_jsonl(&parsed.history)).expect("round trip");
        assert_eq!(again.history, parsed.history);
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let cases = [
            (
                "{\"process\":1,\"type\":\"ok\",\"f\":\"read\"}",
                "line 1: a completion (ok) of process 1 without an invocation",
            ),
            (
                "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":1,\"type\":\"done\",\"f\":\"read\"}",
                "line 2: `type` must be",
            ),
            (
                "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":1.5}",
                "line 1: `value`: expected an integer",
            ),
            ("{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"colour\":1}", "line 1: unknown field `colour`"),
            ("\n\n{\"process\":1,", "line 3, column"),
            (
                "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":1,\"type\":\"ok\",\"f\":\"write\"}",
                "line 2: process 1 completes `write` but invoked `read` at line 1",
            ),
        ];
        for (text, want) in cases {
            let e = read(Format::Jsonl, text).expect_err(text).to_string();
            assert!(e.starts_with(want), "{e}\n  wanted: {want}");
        }
        let e =
            read(Format::PorcupineEtcd, "INFO  jepsen.util - 1\t:invoke\t:frob\tnil").expect_err("bad f").to_string();
        assert_eq!(e, "line 1, column 31: expected the function :read, :write or :cas, not `:frob`");
        let e = read(Format::PorcupineKv, "{:process 1, :type :invoke, :f :get, :key \"1\", :value nil")
            .expect_err("open map")
            .to_string();
        assert!(e.starts_with("line 1, column 58: expected"), "{e}");
    }

    #[test]
    fn etcd_failed_cas_is_a_completed_compare_that_failed() {
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[1 4]\nINFO  jepsen.util - 2\t:fail\t:cas\t[1 4]\n\
                    INFO  jepsen.util - 3\t:invoke\t:read\tnil\nINFO  jepsen.util - 3\t:fail\t:read\t:timed-out\n";
        let h = read(Format::PorcupineEtcd, text).expect("valid").history;
        assert_eq!((h.ops[1].kind, &h.ops[1].value), (OpType::Ok, &Value::Bool(false)));
        assert_eq!(h.ops[3].kind, OpType::Fail);
    }

    #[test]
    fn etcd_fields_split_on_any_whitespace_and_columns_count_characters() {
        // A vertical tab, a no-break space and an em space separate fields
        // as a tab does.
        let text =
            "INFO  jepsen.util - 0\u{b}:invoke\t:cas\t[1\u{2003}2]\nINFO  jepsen.util - 0\t:ok\t:cas\u{a0}[1 2]\n";
        let h = read(Format::PorcupineEtcd, text).expect("valid").history;
        assert_eq!(h.ops[1].value, Value::pair(Value::Int(1), Value::Int(2)));
        // The bad value `il` is named where it is, not inside `util`; the
        // column counts the two-byte `é` as one character.
        let e = read(Format::PorcupineEtcd, "é INFO  jepsen.util - 1\t:invoke\t:read\til").expect_err("il").to_string();
        assert_eq!(e, "line 1, column 39: expected nil, an integer, `[from to]` or :timed-out, not `il`");
        let e = read(Format::PorcupineEtcd, "é INFO  jepsen.util - 1").expect_err("short").to_string();
        assert!(e.starts_with("line 1, column 9: expected four fields"), "{e}");
    }

    #[test]
    fn blank_lines_cost_nothing() {
        // A million blank lines around one op: what is reserved follows the
        // file's size, not its count of lines.
        let text = format!(
            "{}INFO  jepsen.util - 0\t:invoke\t:read\tnil\n{}INFO  jepsen.util - 0\t:ok\t:read\tnil\n",
            "\n".repeat(1_000_000),
            "\n".repeat(1_000_000)
        );
        let parsed = read(Format::PorcupineEtcd, &text).expect("valid");
        assert_eq!(parsed.history.len(), 2);
        assert!(parsed.history.ops.capacity() <= text.len() / 16 + 1);
        assert_eq!(parsed.line_of(1), 2_000_002);
    }

    #[test]
    fn kv_lines_parse() {
        let text = "{:process 3, :type :invoke, :f :append, :key \"4\", :value \"x 3 1 y\"}\n\
                    {:process 3, :type :ok, :f :append, :key \"4\", :value \"x 3 1 y\"}";
        let h = read(Format::PorcupineKv, text).expect("valid").history;
        assert_eq!(h.ops[0].key.as_deref(), Some("4"));
        assert_eq!(h.ops[1].value, Value::Str("x 3 1 y".into()));
    }

    #[test]
    fn format_inference() {
        assert_eq!(Format::infer("a.log", "INFO  jepsen.util - 0\t:invoke\t:read\tnil"), Format::PorcupineEtcd);
        assert_eq!(Format::infer("a.txt", "{:process 0}"), Format::PorcupineKv);
        assert_eq!(Format::infer("a.jsonl", "{\"process\":0}"), Format::Jsonl);
        assert_eq!(Format::infer("empty.log", ""), Format::PorcupineEtcd);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = read(Format::Jsonl, "{\"process\": \"é€é€\", x}").unwrap_err();
        assert_eq!(e.column, Some(21), "{e}");
        let e = read(Format::PorcupineEtcd, "INFO  jepsen.util - é€ :invoke :write 3").unwrap_err();
        assert_eq!(e.column, Some(21), "{e}");
    }
}
