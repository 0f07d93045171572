//! Reading a manifest file exactly as `kubectl create -f` reads it, so `wukong render` validates
//! what the API server would receive.
//!
//! kubectl (cli-runtime's stream visitor over apimachinery's `YAMLOrJSONDecoder`):
//! - a stream whose first non-blank character is `{` is a stream of JSON values;
//! - else it is cut into documents at every line that starts with `---` (anything but a comment
//!   after the `---` is an error), and each document is read by go-yaml v2, which is YAML 1.1:
//!   `0144` is the octal integer 100, `0x10` 16, `1_000` 1000, `64.0` and `1e1` floats, `on`,
//!   `yes`, `y` are true, `off`, `no`, `n` false, `~` null; a key given twice keeps its last value,
//!   `<<` merges maps, aliases are expanded, only the first YAML document of a piece counts;
//! - sigs.k8s.io/yaml turns that into JSON: keys that are not strings become strings (`on` →
//!   `"true"`, `0144` → `"100"`), NaN and infinities are errors; the JSON then holds whole floats
//!   as integers (`64.0` → `64`), as apimachinery's JSON reader does;
//! - empty and `null` documents are skipped, and a `List` (kind ending in `List` with `items`)
//!   is replaced by its items.
//!
//! Pure: text in, JSON objects out.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Number, Value};

/// Why a manifest cannot be read; kubectl would refuse it before sending anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// The objects of a manifest file, in order, `List`s flattened.
pub fn read(text: &str) -> Result<Vec<Value>, ReadError> {
    let documents = if text.trim_start().starts_with('{') {
        match json_stream(text) {
            Ok(docs) => docs,
            // One JSON value at most and then not JSON: kubectl reads the stream as YAML.
            Err(_) => yaml_stream(text)?,
        }
    } else {
        yaml_stream(text)?
    };
    let mut objects = Vec::new();
    for doc in documents {
        flatten(doc, &mut objects)?;
    }
    Ok(objects)
}

fn flatten(doc: Value, out: &mut Vec<Value>) -> Result<(), ReadError> {
    match doc {
        Value::Null => Ok(()),
        Value::Object(map) => {
            let is_list = map.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
                && map.get("items").is_some_and(Value::is_array);
            if is_list {
                for item in map.get("items").and_then(Value::as_array).into_iter().flatten() {
                    if !item.is_object() {
                        return Err(ReadError(format!("a List item is not an object: {item}")));
                    }
                    flatten(item.clone(), out)?;
                }
            } else {
                out.push(Value::Object(map));
            }
            Ok(())
        }
        other => Err(ReadError(format!("a document is not an object: {other}"))),
    }
}

fn json_stream(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        out.push(integers(value?));
    }
    Ok(out)
}

/// The documents of a YAML stream, cut at `---` lines as apimachinery's `YAMLReader` cuts them.
fn yaml_stream(text: &str) -> Result<Vec<Value>, ReadError> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(ReadError(format!("invalid Yaml document separator: {rest}")));
            }
            if !current.is_empty() {
                docs.push(document(&current)?);
                current.clear();
            }
            continue;
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        docs.push(document(&current)?);
    }
    Ok(docs)
}

// ---- one document, as go-yaml v2 reads it ------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Scalar { value: String, plain: bool, tag: Option<String> },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Alias(usize),
}

/// A decoded YAML value before JSON: keys may be any scalar.
#[derive(Debug, Clone)]
enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(Yaml, Yaml)>),
}

fn document(text: &str) -> Result<Value, ReadError> {
    let err = |e: String| ReadError(format!("error converting YAML to JSON: yaml: {e}"));
    // A directive is always followed by `---`, which the cutting above took away: go-yaml then
    // finds no document start.
    let first =
        text.lines().map(str::trim_end).find(|l| !l.trim_start().is_empty() && !l.trim_start().starts_with('#'));
    if first.is_some_and(|l| l.starts_with('%')) {
        return Err(err("did not find expected <document start>".into()));
    }
    let mut parser = Parser::new_from_str(text);
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    // (node under construction, anchor id, pending map key)
    let mut stack: Vec<(Node, usize)> = Vec::new();
    let mut root: Option<Node> = None;
    let mut in_document = false;
    while let Some(event) = parser.next_event() {
        let (event, _) = event.map_err(|e| err(e.to_string()))?;
        let (node, anchor) = match event {
            Event::StreamStart => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                if root.is_some() {
                    break; // only the first document of a piece counts
                }
                in_document = true;
                continue;
            }
            Event::DocumentEnd => {
                if root.is_some() || in_document {
                    break;
                }
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => (
                Node::Scalar {
                    value: value.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    tag: tag.map(|t| format!("{}{}", t.handle(), t.suffix())),
                },
                anchor,
            ),
            Event::Alias(id) => (Node::Alias(id), 0),
            Event::SequenceStart(_, anchor, _) => {
                stack.push((Node::Seq(Vec::new()), anchor));
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push((Node::Map(Vec::new()), anchor));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = stack.pop().ok_or_else(|| err("unbalanced events".into()))?;
                (node, anchor)
            }
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some((Node::Seq(items), _)) => items.push(node),
            Some((Node::Map(entries), _)) => {
                let waiting = entries.last().is_some_and(|(_, v)| is_pending(v));
                match entries.last_mut() {
                    Some((_, value)) if waiting => *value = node,
                    _ => entries.push((node, pending())),
                }
            }
            Some(_) => return Err(err("unexpected node".into())),
        }
    }
    let Some(root) = root else { return Ok(Value::Null) };
    let mut decoder = Decoder { anchors: &anchors, depth: 0, aliases: 0, decodes: 0 };
    let yaml = decoder.node(&root).map_err(err)?;
    json(yaml).map_err(|e| ReadError(format!("error converting YAML to JSON: {e}")))
}

const PENDING: &str = "\u{0}pending";

fn is_pending(node: &Node) -> bool {
    matches!(node, Node::Scalar { tag: Some(t), .. } if t == PENDING)
}

fn pending() -> Node {
    Node::Scalar { value: String::new(), plain: false, tag: Some(PENDING.into()) }
}

struct Decoder<'a> {
    anchors: &'a HashMap<usize, Node>,
    depth: usize,
    aliases: usize,
    decodes: usize,
}

const YAML_PREFIX: &str = "tag:yaml.org,2002:";

impl Decoder<'_> {
    fn node(&mut self, node: &Node) -> Result<Yaml, String> {
        self.decodes += 1;
        if self.depth > 0 {
            self.aliases += 1;
        }
        // go-yaml v2's billion-laughs guard.
        if self.aliases > 100
            && self.decodes > 1000
            && self.aliases as f64 / self.decodes as f64 > allowed_alias_ratio(self.decodes)
        {
            return Err("document contains excessive aliasing".into());
        }
        match node {
            Node::Scalar { value, plain, tag } => scalar(value, *plain, tag.as_deref()),
            Node::Seq(items) => items.iter().map(|i| self.node(i)).collect::<Result<_, _>>().map(Yaml::Seq),
            Node::Map(entries) => {
                let mut out: Vec<(Yaml, Yaml)> = Vec::new();
                for (k, v) in entries {
                    if is_merge(k) {
                        self.merge(v, &mut out)?;
                        continue;
                    }
                    let key = self.node(k)?;
                    if matches!(key, Yaml::Seq(_) | Yaml::Map(_)) {
                        return Err("invalid map key".into());
                    }
                    let value = self.node(v)?;
                    set(&mut out, key, value);
                }
                Ok(Yaml::Map(out))
            }
            Node::Alias(id) => {
                let target = self.anchors.get(id).ok_or_else(|| "unknown anchor referenced".to_string())?;
                self.depth += 1;
                let v = self.node(target);
                self.depth -= 1;
                v
            }
        }
    }

    fn merge(&mut self, node: &Node, out: &mut Vec<(Yaml, Yaml)>) -> Result<(), String> {
        let want_map = || "map merge requires map or sequence of maps as the value".to_string();
        let resolved = |n: &Node| match n {
            Node::Alias(id) => self.anchors.get(id).cloned(),
            other => Some(other.clone()),
        };
        match node {
            Node::Seq(items) => {
                for item in items.iter().rev() {
                    if !matches!(resolved(item), Some(Node::Map(_))) {
                        return Err(want_map());
                    }
                    self.merge_one(item, out)?;
                }
                Ok(())
            }
            other if matches!(resolved(other), Some(Node::Map(_))) => self.merge_one(other, out),
            _ => Err(want_map()),
        }
    }

    fn merge_one(&mut self, node: &Node, out: &mut Vec<(Yaml, Yaml)>) -> Result<(), String> {
        if let Yaml::Map(entries) = self.node(node)? {
            for (k, v) in entries {
                set(out, k, v);
            }
        }
        Ok(())
    }
}

fn allowed_alias_ratio(decodes: usize) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let d = decodes as f64;
    if d <= LOW {
        0.99
    } else if d >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((d - LOW) / (HIGH - LOW))
    }
}

fn is_merge(node: &Node) -> bool {
    matches!(node, Node::Scalar { value, plain, tag } if value == "<<" && (*plain && tag.is_none() || tag.as_deref() == Some(&format!("{YAML_PREFIX}merge"))))
}

/// A key given again replaces the value in place (last wins, as a Go map does).
fn set(out: &mut Vec<(Yaml, Yaml)>, key: Yaml, value: Yaml) {
    let same = |a: &Yaml, b: &Yaml| match (a, b) {
        (Yaml::Null, Yaml::Null) => true,
        (Yaml::Bool(x), Yaml::Bool(y)) => x == y,
        (Yaml::Int(x), Yaml::Int(y)) => x == y,
        (Yaml::Uint(x), Yaml::Uint(y)) => x == y,
        (Yaml::Float(x), Yaml::Float(y)) => x == y,
        (Yaml::Str(x), Yaml::Str(y)) => x == y,
        _ => false,
    };
    match out.iter_mut().find(|(k, _)| same(k, &key)) {
        Some((_, v)) => *v = value,
        None => out.push((key, value)),
    }
}

/// go-yaml v2's `resolve` of a scalar with its tag (quoted scalars without a tag are strings).
fn scalar(value: &str, plain: bool, tag: Option<&str>) -> Result<Yaml, String> {
    let short = tag.map(|t| t.strip_prefix(YAML_PREFIX).map_or(t.to_string(), |s| format!("!!{s}")));
    let tag = short.as_deref().unwrap_or("");
    if tag.is_empty() && !plain {
        return Ok(Yaml::Str(value.to_string()));
    }
    if !matches!(
        tag,
        "" | "!!str" | "!!bool" | "!!int" | "!!float" | "!!null" | "!!timestamp" | "!!binary" | "!!merge" | "!"
    ) {
        return Ok(Yaml::Str(value.to_string()));
    }
    if tag == "!" {
        return Ok(Yaml::Str(value.to_string()));
    }
    if tag == "!!binary" {
        return decode_base64(value).map(Yaml::Str);
    }
    let resolved = if tag == "!!str" { Yaml::Str(value.to_string()) } else { resolve(value, tag) };
    let fail = |got: &str| Err(format!("cannot decode {got} `{value}` as a {tag}"));
    match (tag, &resolved) {
        ("" | "!!str" | "!!timestamp", _) => Ok(resolved),
        ("!!bool", Yaml::Bool(_)) | ("!!null", Yaml::Null) | ("!!float", Yaml::Float(_)) => Ok(resolved),
        ("!!int", Yaml::Int(_) | Yaml::Uint(_)) => Ok(resolved),
        ("!!float", Yaml::Int(i)) => Ok(Yaml::Float(*i as f64)),
        ("!!merge", Yaml::Str(s)) if s == "<<" => Ok(resolved),
        (_, r) => fail(match r {
            Yaml::Null => "!!null",
            Yaml::Bool(_) => "!!bool",
            Yaml::Int(_) | Yaml::Uint(_) => "!!int",
            Yaml::Float(_) => "!!float",
            _ => "!!str",
        }),
    }
}

fn resolve(value: &str, tag: &str) -> Yaml {
    match value {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Yaml::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Yaml::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Yaml::Null,
        ".nan" | ".NaN" | ".NAN" => return Yaml::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Yaml::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Yaml::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = value.as_bytes()[0];
    if first == b'.' {
        if let Some(f) = go_parse_float(value) {
            return Yaml::Float(f);
        }
    } else if first.is_ascii_digit() || first == b'+' || first == b'-' {
        if (tag.is_empty() || tag == "!!timestamp") && is_timestamp(value) {
            return Yaml::Str(value.to_string()); // kept as the string it is written as
        }
        let plain = value.replace('_', "");
        if let Some(i) = go_parse_int(&plain) {
            return i;
        }
        if yaml_style_float(&plain)
            && let Some(f) = go_parse_float(&plain)
        {
            return Yaml::Float(f);
        }
        if let Some(bits) = plain.strip_prefix("0b") {
            if let Ok(i) = i64::from_str_radix(bits, 2) {
                return Yaml::Int(i);
            }
            if let Ok(u) = u64::from_str_radix(bits, 2) {
                return Yaml::Uint(u);
            }
        } else if let Some(bits) = plain.strip_prefix("-0b")
            && let Ok(i) = i64::from_str_radix(&format!("-{bits}"), 2)
        {
            return Yaml::Int(i);
        }
    }
    Yaml::Str(value.to_string())
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`: a sign, then `0x`, `0o`,
/// `0b` or a leading `0` (octal) choose the base. (Underscores are already removed.)
fn go_parse_int(s: &str) -> Option<Yaml> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(&digits, radix).ok()?;
    if negative {
        (magnitude <= 1u128 << 63).then(|| Yaml::Int((magnitude as i128).wrapping_neg() as i64))
    } else if magnitude <= i64::MAX as u128 {
        Some(Yaml::Int(magnitude as i64))
    } else if magnitude <= u64::MAX as u128 {
        Some(Yaml::Uint(magnitude as u64))
    } else {
        None
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms YAML lets through (and `.5`).
fn go_parse_float(s: &str) -> Option<f64> {
    let ok = s.chars().all(|c| c.is_ascii_digit() || ".eE+-".contains(c)) && s.chars().any(|c| c.is_ascii_digit());
    if !ok {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// go-yaml v2's timestamp shapes: `YYYY-M-D`, with a time after `T`, `t` or a space.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let mut parts = date.split('-');
    let (Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next()) else { return false };
    let num = |x: &str, max: u32| (1..=2).contains(&x.len()) && x.parse::<u32>().is_ok_and(|v| (1..=max).contains(&v));
    if !num(m, 12) || !num(d, 31) {
        return false;
    }
    match time {
        None => true,
        Some(t) => {
            // 15:4:5 with optional fraction and zone (Z or ±hh:mm) when not space-separated.
            let t = t.trim_end_matches('Z');
            let clock = t.split(['+', '-']).next().unwrap_or_default();
            let mut hms = clock.split(':');
            let (Some(h), Some(mi), Some(sec)) = (hms.next(), hms.next(), hms.next()) else { return false };
            let sec = sec.split('.').next().unwrap_or_default();
            let small = |x: &str, max: u32| (1..=2).contains(&x.len()) && x.parse::<u32>().is_ok_and(|v| v <= max);
            small(h, 23) && small(mi, 59) && small(sec, 59)
        }
    }
}

fn decode_base64(s: &str) -> Result<String, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bad = || "!!binary value contains invalid base64 data".to_string();
    if !clean.len().is_multiple_of(4) {
        return Err(bad());
    }
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        let mut pad = 0;
        for &c in chunk {
            let v = if c == b'=' {
                pad += 1;
                0
            } else {
                ALPHABET.iter().position(|&a| a == c).ok_or_else(bad)? as u32
            };
            n = n << 6 | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    String::from_utf8(out).map_err(|_| bad())
}

// ---- to JSON, as sigs.k8s.io/yaml and apimachinery's JSON reader make it ------------------

fn json(yaml: Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Int(i) => Value::from(i),
        Yaml::Uint(u) => number_from_f64(u as f64),
        Yaml::Float(f) if !f.is_finite() => return Err(format!("json: unsupported value: {}", go_float_name(f))),
        Yaml::Float(f) => number_from_f64(f),
        Yaml::Str(s) => Value::String(s),
        Yaml::Seq(items) => Value::Array(items.into_iter().map(json).collect::<Result<_, _>>()?),
        Yaml::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Yaml::Str(s) => s,
                    Yaml::Int(i) => i.to_string(),
                    Yaml::Float(f) => key_float(f),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported map key of type: {}", go_key_type(&other))),
                };
                // A key given twice as different spellings ("1" and 1) ends as one JSON key:
                // the last one wins, as in the Go map.
                map.insert(key, json(v)?);
            }
            Value::Object(map)
        }
    })
}

/// A float as apimachinery's JSON reader leaves it after Go's JSON writer: whole values below
/// 1e21 are written as integers and read back as int64 when they fit.
fn number_from_f64(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e21 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        return Value::from(f as i64);
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `strconv.FormatFloat(f, 'g', -1, 32)` for a float map key (sigs.k8s.io/yaml's choice).
fn key_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    crate::validate::gofmt::float32(f as f32)
}

fn go_float_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

fn go_key_type(y: &Yaml) -> &'static str {
    match y {
        Yaml::Null => "%!s(<nil>)",
        Yaml::Uint(_) => "uint64",
        _ => "interface {}",
    }
}

/// JSON numbers as apimachinery reads them: int64 when they fit, else float64.
fn integers(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => number_from_f64(n.as_f64().unwrap_or_default()),
        Value::Array(items) => Value::Array(items.into_iter().map(integers).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, integers(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let mut docs = read(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(docs.len(), 1, "{docs:?}");
        docs.remove(0)
    }

    #[test]
    fn scalars_are_read_as_yaml_1_1() {
        let v = one(
            "a: 0144\nb: on\nc: 64.0\nd: 1e1\ne: 0x10\nf: 1_000\ng: ~\nh: 'on'\ni: 08\nj: .5\nk: yes\nl: 2024-01-02\nm: +12\no: 0o17\n",
        );
        assert_eq!(
            v,
            json!({"a": 100, "b": true, "c": 64, "d": 10, "e": 16, "f": 1000, "g": null, "h": "on", "i": 8,
                   "j": 0.5, "k": true, "l": "2024-01-02", "m": 12, "o": 15})
        );
    }

    #[test]
    fn keys_that_are_not_strings_become_strings() {
        assert_eq!(one("on: a\n1: b\nno: c\n1.5: d\n"), json!({"true": "a", "1": "b", "false": "c", "1.5": "d"}));
        assert!(read("~: a\n").is_err());
    }

    #[test]
    fn a_key_given_twice_keeps_its_last_value() {
        assert_eq!(one("a: 1\nb: 2\na: 3\n"), json!({"a": 3, "b": 2}));
    }

    #[test]
    fn aliases_and_merge_keys_are_expanded() {
        assert_eq!(one("x: &v [a, b]\ny: *v\nz: *v\n"), json!({"x": ["a", "b"], "true": ["a", "b"], "z": ["a", "b"]}));
        assert_eq!(
            one("base: &b {cpu: 2, memory: 1Gi}\nspec:\n  <<: *b\n  cpu: 4\n"),
            json!({"base": {"cpu": 2, "memory": "1Gi"}, "spec": {"cpu": 4, "memory": "1Gi"}})
        );
    }

    #[test]
    fn tags_decide_the_type() {
        assert_eq!(one("a: !!str 0144\nb: !!int \"12\"\nc: !!float 8\n"), json!({"a": "0144", "b": 12, "c": 8}));
        assert!(read("a: !!int abc\n").is_err());
    }

    #[test]
    fn documents_lists_and_separators_are_read_as_kubectl_reads_them() {
        let docs = read("a: 1\n---\n# only a comment\n--- # next\nb: 2\n...\nc: 3\n").expect("readable");
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
        let docs = read("apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n").expect("readable");
        assert_eq!(docs, vec![json!({"kind": "A"}), json!({"kind": "B"})]);
        assert!(read("a: 1\n--- b\n").is_err());
        assert!(read("- a\n").is_err());
        assert!(read("a: .nan\n").is_err());
        assert_eq!(
            read("{\"a\": 4.0}\n{\"b\": 18446744073709551615}").expect("JSON"),
            vec![json!({"a": 4.0}), json!({"b": 18446744073709551615.0})]
        );
    }
}
