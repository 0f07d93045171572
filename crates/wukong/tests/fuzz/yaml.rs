//! YAML text for the fuzzer's cases: a faithful writer (kubectl reads back exactly the JSON it
//! was given: every string that YAML 1.1 could read otherwise is double-quoted) and a quirky one
//! that writes what people write: plain `on`, `0144`, `64.0`, duplicate keys, anchors and
//! aliases, flow style, `kind: List`, several documents.

use std::fmt::Write;

use serde_json::{Value, json};

use super::generate::Rng;

/// The documents, separated by `---`.
pub fn faithful_stream(objects: &[Value]) -> String {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        block(&mut out, o, 0, &mut |_, s| quoted(s));
    }
    out
}

/// A string YAML 1.1 (go-yaml v2) reads back as this very string when written plain.
fn plain_safe(s: &str) -> bool {
    const SPECIAL: &[&str] =
        &["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "<<", "=", ".nan", ".inf"];
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
}

/// A double-quoted YAML scalar: ASCII only, everything else escaped.
pub fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => write!(out, "\\u{:04x}", c as u32).expect("a string"),
            c => write!(out, "\\U{:08x}", c as u32).expect("a string"),
        }
    }
    out.push('"');
    out
}

fn key_text(k: &str) -> String {
    if plain_safe(k) { k.to_string() } else { quoted(k) }
}

fn scalar_text(v: &Value, string: &mut dyn FnMut(bool, &str) -> String) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_safe(s) => s.clone(),
        Value::String(s) => string(false, s),
        _ => unreachable!("not a scalar"),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(m) if !m.is_empty()) && !matches!(v, Value::Array(a) if !a.is_empty())
}

fn inline(v: &Value, string: &mut dyn FnMut(bool, &str) -> String) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => scalar_text(other, string),
    }
}

/// Block style; `string` writes a string scalar that is not plain-safe.
fn block(out: &mut String, v: &Value, indent: usize, string: &mut dyn FnMut(bool, &str) -> String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if is_scalar(v) {
                    writeln!(out, "{pad}{}: {}", key_text(k), inline(v, string)).expect("a string");
                } else {
                    writeln!(out, "{pad}{}:", key_text(k)).expect("a string");
                    block(out, v, indent + 2, string);
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_scalar(item) {
                    writeln!(out, "{pad}- {}", inline(item, string)).expect("a string");
                } else if let Value::Object(_) = item {
                    let mut inner = String::new();
                    block(&mut inner, item, indent + 2, string);
                    let inner = inner.trim_start_matches(' ');
                    write!(out, "{pad}- {inner}").expect("a string");
                } else {
                    writeln!(out, "{pad}-").expect("a string");
                    block(out, item, indent + 2, string);
                }
            }
        }
        other => writeln!(out, "{pad}{}", inline(other, string)).expect("a string"),
    }
}

// ---- the quirky writer --------------------------------------------------------------------

/// Writes `doc` as a person might, with some YAML-level quirk; returns the text and a note.
pub fn quirky(rng: &mut Rng, doc: &Value) -> (String, String) {
    let mut doc = doc.clone();
    let mut notes = Vec::new();
    // Numbers in other notations, keys that YAML 1.1 reads as booleans.
    for _ in 0..1 + rng.below(3) {
        if !doc.get("spec").is_some_and(Value::is_object) {
            break; // a mutation made spec something else: nothing to write in another notation
        }
        match rng.below(9) {
            0 => {
                if let Some(v) = doc.pointer_mut("/spec/networks/0/vlanId") {
                    *v = json!(format!("\u{0}0{:o}", v.as_i64().unwrap_or(100)));
                    notes.push("octal vlanId");
                }
            }
            1 => {
                let cpu = doc["spec"]["cpu"].as_i64().unwrap_or(4);
                let text = rng.pick(&["{}.0", "{}e0", "0x{:x}", "+{}", "{}_0", "0{:o}"]).to_string();
                let text = match text.as_str() {
                    "{}.0" => format!("{cpu}.0"),
                    "{}e0" => format!("{cpu}e0"),
                    "0x{:x}" => format!("0x{cpu:x}"),
                    "+{}" => format!("+{cpu}"),
                    "{}_0" => format!("{cpu}_0"),
                    _ => format!("0{cpu:o}"),
                };
                doc["spec"]["cpu"] = json!(format!("\u{0}{text}"));
                notes.push("cpu notation");
            }
            2 => {
                let sel = json!({ "\u{0}on": "a", "\u{0}yes": "b", "\u{0}1": "c", "\u{0}~": "d", "\u{0}0x10": "e", "\u{0}1.50": "f" });
                let key = sel.as_object().expect("a map").keys().nth(rng.below(6)).cloned().expect("a key");
                let ha = doc["spec"].as_object_mut().expect("spec").entry("highAvailability").or_insert(json!({}));
                if !ha.is_object() {
                    *ha = json!({});
                }
                ha["nodeSelector"] = json!({ key: "x" });
                notes.push("nodeSelector key");
            }
            3 => {
                let v = *rng.pick(&["\u{0}1e1", "\u{0}64.0", "\u{0}1.0e+1", "\u{0}.5", "\u{0}1_024", "\u{0}0o17"]);
                let path = *rng.pick(&["/spec/cpu", "/spec/networks/0/mtu", "/spec/networks/0/vlanId"]);
                if let Some(slot) = doc.pointer_mut(path) {
                    *slot = json!(v);
                    notes.push("number notation");
                }
            }
            4 => {
                let v = *rng.pick(&[
                    "\u{0}yes",
                    "\u{0}off",
                    "\u{0}Y",
                    "\u{0}~",
                    "\u{0}null",
                    "\u{0}NULL",
                    "\u{0}2024-01-02",
                ]);
                let path = *rng.pick(&[
                    "/spec/startStrategy/autoStart",
                    "/spec/disks/0/boot",
                    "/spec/osImage",
                    "/spec/networks/0/name",
                    "/spec/memory",
                    "/spec/highAvailability/antiAffinity",
                ]);
                if let Some(slot) = doc.pointer_mut(path) {
                    *slot = json!(v);
                    notes.push("plain scalar");
                }
            }
            5 => {
                let v = *rng.pick(&[
                    "\u{0}!!str 0144",
                    "\u{0}!!int \"12\"",
                    "\u{0}!!float 8",
                    "\u{0}'64'",
                    "\u{0}!!str yes",
                ]);
                let path = *rng.pick(&["/spec/cpu", "/spec/memory", "/spec/networks/0/vlanId"]);
                if let Some(slot) = doc.pointer_mut(path) {
                    *slot = json!(v);
                    notes.push("tag");
                }
            }
            _ => {}
        }
    }
    let mut text = String::new();
    let mut string = |_: bool, s: &str| quoted(s);
    block(&mut text, &doc, 0, &mut string);
    // The \0 marks a raw (plain) scalar: written as is, without quotes.
    let text = unquote_raw(&text);
    let mut text = text;
    // Document-level quirks.
    match rng.below(8) {
        0 => {
            // A key given twice: the first value is junk, the last wins in kubectl.
            let junk = *rng.pick(&["cpu: 1000", "memory: 4K", "spec: 5", "kind: Nope"]);
            let (key, _) = junk.split_once(':').expect("a colon");
            if key == "spec" || key == "kind" {
                text = format!("{junk}\n{text}");
            } else if let Some(at) = text.find("spec:\n") {
                text.insert_str(at + "spec:\n".len(), &format!("  {junk}\n"));
            }
            notes.push("duplicate key");
        }
        1 => {
            // kind: List of this doc (and a copy under another name).
            let items: Vec<String> = (0..1 + rng.below(2))
                .map(|i| {
                    let t = if i == 0 { text.clone() } else { text.replacen("name: fz-", "name: fz2-", 1) };
                    indent_item(&t)
                })
                .collect();
            text = format!("apiVersion: v1\nkind: List\nitems:\n{}", items.concat());
            notes.push("kind: List");
        }
        2 => {
            // Several documents, empty and comment-only ones between.
            let second = text.replacen("name: fz-", "name: fz3-", 1);
            let sep = *rng.pick(&["---\n", "--- # next\n", "---\n---\n", "---\n# only a comment\n---\n", "...\n---\n"]);
            text = format!("{text}{sep}{second}");
            notes.push("documents");
        }
        3 => {
            // Anchors and aliases: the labels map, and many aliases of one anchor.
            if let Some(at) = text.find("spec:\n") {
                let n = 1 + rng.below(40);
                let mut anchors = String::from("  x-list: &v [a, b]\n");
                for i in 0..n {
                    writeln!(anchors, "  x-{i}: *v").expect("a string");
                }
                text.insert_str(at + "spec:\n".len(), &anchors);
                notes.push("aliases (unknown fields)");
            }
        }
        4 => {
            // An anchored map merged with `<<`.
            text = text.replacen("spec:\n", "spec:\n  <<: {cpu: 2}\n", 1);
            notes.push("merge key");
        }
        5 => {
            text = format!("# a comment\n%YAML 1.1\n---\n{text}");
            notes.push("directive");
        }
        6 => {
            text = text.replace('\n', "\r\n");
            notes.push("CRLF");
        }
        _ => {}
    }
    (text, notes.join(", "))
}

fn indent_item(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let prefix = if i == 0 { "- " } else { "  " };
        writeln!(out, "{prefix}{line}").expect("a string");
    }
    out
}

/// `"\u0000raw"` → `raw` (the marker of a scalar to write plain).
fn unquote_raw(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\"\\u0000") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "\"\\u0000".len()..];
        // the quoted string ends at the next unescaped quote
        let mut end = 0;
        let bytes = after.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            if bytes[end] == b'\\' {
                end += 1;
            }
            end += 1;
        }
        out.push_str(&after[..end].replace("\\\"", "\"").replace("\\\\", "\\"));
        rest = &after[(end + 1).min(after.len())..];
    }
    out.push_str(rest);
    out
}
