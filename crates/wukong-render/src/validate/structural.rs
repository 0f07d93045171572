//! OpenAPI checks of a raw object against the CRD schema, as the API server makes them before
//! CEL: types, required fields, enums, bounds, lengths, patterns, list-map keys, unknown fields.
//! Messages use the API server's words so a user sees the same text offline and at admission.

use std::collections::BTreeSet;
use std::fmt::Write;

use regex::Regex;
use serde_json::Value;

use super::FieldError;

/// Errors the API server treats as blocking: CEL rules are not evaluated when one is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Blocking,
    NonBlocking,
}

pub(super) fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let Some(expected) = schema.get("type").and_then(Value::as_str) else {
        return; // x-kubernetes-int-or-string / preserve-unknown: nothing we check
    };
    if !type_matches(expected, value) {
        out.push((
            Kind::Blocking,
            FieldError::new(
                path,
                format!(
                    "Invalid value: \"{}\": {} in body must be of type {}: \"{}\"",
                    json_type(value),
                    path,
                    expected,
                    json_type(value)
                ),
            ),
        ));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let mut detail = String::from("supported values: ");
        for (i, v) in allowed.iter().enumerate() {
            if i > 0 {
                detail.push_str(", ");
            }
            match v {
                Value::String(s) => write!(detail, "{s:?}").unwrap(),
                other => write!(detail, "\"{other}\"").unwrap(),
            }
        }
        out.push((
            Kind::Blocking,
            FieldError::new(path, format!("Unsupported value: {}: {detail}", display_value(value))),
        ));
    }
    match value {
        Value::Object(map) => check_object(schema, map, path, out),
        Value::Array(items) => check_array(schema, items, path, out),
        Value::String(s) => check_string(schema, s, path, out),
        Value::Number(n) => check_number(schema, n, path, out),
        _ => {}
    }
}

fn check_object(schema: &Value, map: &serde_json::Map<String, Value>, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                out.push((Kind::Blocking, FieldError::new(&child(path, name), "Required value".into())));
            }
        }
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (name, v) in map {
        if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue; // the envelope is checked by the API server itself, not by the CRD schema
        }
        match properties.and_then(|p| p.get(name)) {
            Some(s) => check(s, v, &child(path, name), out),
            None => match additional {
                Some(s) => check(s, v, &child(path, name), out),
                // The API server prunes unknown fields (or refuses them with strict field
                // validation, as kubectl asks); either way the user's intent is lost.
                None if !preserve => out.push((
                    Kind::Blocking,
                    FieldError::new(&child(path, name), format!("unknown field \"{}\"", child(path, name))),
                )),
                None => {}
            },
        }
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, out: &mut Vec<(Kind, FieldError)>) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        out.push((
            Kind::Blocking,
            FieldError::new(path, format!("Too many: {}: must have at most {max} items", items.len())),
        ));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), out);
        }
    }
    let is_map = schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
    if let (true, Some(keys)) = (is_map, schema.get("x-kubernetes-list-map-keys").and_then(Value::as_array)) {
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let key: Vec<String> =
                keys.iter().map(|k| item.get(*k).map(|v| v.to_string()).unwrap_or_default()).collect();
            if !seen.insert(key) {
                let shown: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k:?}:{}", item.get(*k).map(|v| v.to_string()).unwrap_or_default()))
                    .collect();
                out.push((
                    Kind::NonBlocking,
                    FieldError::new(
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: map[string]interface {{}}{{{}}}", shown.join(", ")),
                    ),
                ));
            }
        }
    }
}

fn check_string(schema: &Value, s: &str, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && s.chars().count() as u64 > max
    {
        out.push((Kind::Blocking, FieldError::new(path, format!("Too long: may not be more than {max} bytes"))));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        let matches = Regex::new(pattern).map(|re| re.is_match(s)).unwrap_or(false);
        if !matches {
            out.push((
                Kind::NonBlocking,
                FieldError::new(path, format!("Invalid value: {s:?}: {path} in body should match '{pattern}'")),
            ));
        }
    }
}

fn check_number(schema: &Value, n: &serde_json::Number, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    let Some(v) = n.as_f64() else { return };
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && v > max
    {
        out.push((
            Kind::NonBlocking,
            FieldError::new(path, format!("Invalid value: {n}: {path} in body should be less than or equal to {max}")),
        ));
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && v < min
    {
        out.push((
            Kind::NonBlocking,
            FieldError::new(
                path,
                format!("Invalid value: {n}: {path} in body should be greater than or equal to {min}"),
            ),
        ));
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        _ => true,
    }
}

/// The OpenAPI type name of a JSON value, as the API server reports it.
pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}
