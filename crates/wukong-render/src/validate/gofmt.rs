//! Values written as the API server (Go) writes them in its messages: `%q` for strings
//! (`strconv.Quote`: `"\u00a0"`, not Rust's `"\u{a0}"`), `%v` for numbers and booleans, `%#v` for
//! lists and maps (`[]interface {}{"a"}`, `map[string]interface {}{"name":"x"}`).

use std::fmt::Write;

use serde_json::Value;

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(out, "\\x{:02x}", c as u32).expect("a string"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x10000 => write!(out, "\\u{:04x}", c as u32).expect("a string"),
            c => write!(out, "\\U{:08x}", c as u32).expect("a string"),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Without Unicode category tables in std, this refuses what is surely not printable (controls,
/// separators other than ' ', format characters, private use, noncharacters) and takes the rest
/// as printable; unassigned code points are the only ones Go would escape and this does not.
fn is_print(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(u,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f);
    let private = matches!(u, 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd);
    let nonchar = (0xfdd0..=0xfdef).contains(&u) || u & 0xfffe == 0xfffe;
    // Spacing characters Rust does not count as whitespace but Go does not print either.
    let space = matches!(u, 0x2028 | 0x2029 | 0x1680 | 0x3000);
    !(format || private || nonchar || space)
}

/// Go's `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)` (`1.5`, `123456`, `1e+20`).
pub fn float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    shortest_g(&format!("{f:e}"))
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`: the shortest digits of the float32.
pub fn float32(f: f32) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    shortest_g(&format!("{f:e}"))
}

/// Go's `%g` with the shortest precision, from Rust's shortest `{:e}` (`d.ddde±x`): an
/// exponent when it is below -4 or at least 6.
fn shortest_g(sci: &str) -> String {
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an exponent");
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    if exp < 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = (exp + 1) as usize;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

/// Go's `%v` of a JSON number as the API server holds it (int64, else float64).
pub fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() { i.to_string() } else { float(n.as_f64().unwrap_or_default()) }
}

/// Go's `%#v` of a value decoded from JSON into `interface{}`.
pub fn sharp_v(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(sharp_v).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys.iter().map(|k| format!("{}:{}", quote(k), sharp_v(&map[*k]))).collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// The bad value of a `field.Error` as its `ErrorBody` writes it: `%q` for a string, `%v` for
/// numbers and booleans, `"null"`, else `%#v`.
pub fn bad_value(value: &Value) -> String {
    match value {
        // ErrorBody writes a nil value as the string "null", quoted.
        Value::Null => "\"null\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        other => sharp_v(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_quoted_as_go_quotes_them() {
        assert_eq!(quote("a\u{a0}b"), r#""a\u00a0b""#);
        assert_eq!(quote("é😀"), "\"é😀\"");
        assert_eq!(quote("tab\there\n\"\\"), r#""tab\there\n\"\\""#);
        assert_eq!(quote("\u{7f}\u{1}"), r#""\x7f\x01""#);
        assert_eq!(quote("\u{200b}\u{feff}"), r#""\u200b\ufeff""#);
        assert_eq!(quote("\u{f0000}"), r#""\U000f0000""#);
    }

    #[test]
    fn floats_are_written_as_go_writes_them() {
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(1e20), "1e+20");
        assert_eq!(float(123456.0), "123456");
        assert_eq!(float(1234567.0), "1.234567e+06");
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(-2.5), "-2.5");
        assert_eq!(float(9007199254740993.0), "9.007199254740992e+15");
    }

    #[test]
    fn lists_and_maps_are_written_as_go_sharp_v() {
        assert_eq!(sharp_v(&json!([])), "[]interface {}{}");
        assert_eq!(sharp_v(&json!(["a", 1])), r#"[]interface {}{"a", 1}"#);
        assert_eq!(
            sharp_v(&json!({"b": null, "a": "x"})),
            r#"map[string]interface {}{"a":"x", "b":interface {}(nil)}"#
        );
        assert_eq!(bad_value(&json!("x")), r#""x""#);
        assert_eq!(bad_value(&json!(true)), "true");
    }
}
