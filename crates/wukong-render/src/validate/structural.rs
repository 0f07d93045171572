//! OpenAPI checks of a decoded object against the CRD schema, as the API server makes them
//! before CEL (kube-openapi's validators, then apiextensions' list-type checks): every validator
//! that applies to a value's kind runs, so a type error does not hide an enum or a bound.
//! Messages use the API server's words, and its Go quoting of values.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use super::FieldError;
use super::gofmt::{bad_value, number, quote, sharp_v};

/// Errors the API server treats as blocking: CEL rules are not evaluated when one is present
/// (Required, Unsupported value, Too long, Too many, a type error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Blocking,
    NonBlocking,
}

pub(super) fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    if value.is_null() {
        // kube-openapi: a null passes the type check when nullable, and never matches an enum.
        if schema.get("nullable").and_then(Value::as_bool) != Some(true)
            && let Some(expected) = schema.get("type").and_then(Value::as_str)
        {
            out.push((Kind::Blocking, type_error(path, expected, "null")));
        }
        check_enum(schema, value, path, out);
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && let Some(e) = check_type(expected, value, path)
    {
        out.push((Kind::Blocking, e));
    }
    check_enum(schema, value, path, out);
    match value {
        Value::Object(map) => check_object(schema, map, path, out),
        Value::Array(items) => check_array(schema, items, path, out),
        Value::String(s) => check_string(schema, s, path, out),
        Value::Number(n) => check_number(schema, n, path, out),
        _ => {}
    }
}

fn type_error(path: &str, expected: &str, actual: &str) -> FieldError {
    FieldError::new(
        path,
        format!("Invalid value: {}: {path} in body must be of type {expected}: {}", quote(actual), quote(actual)),
    )
}

/// kube-openapi's type validator: the JSON type of the value (`integer` for an int64, `number`
/// for a float64, which passes as an integer when it is whole), checked against the schema's
/// type. (Formats such as int32 are not checked by the API server for custom resources.)
fn check_type(expected: &str, value: &Value, path: &str) -> Option<FieldError> {
    let actual = match value {
        Value::Bool(_) => "boolean",
        Value::String(_) => "string",
        Value::Number(n) if n.as_i64().is_some() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => return None,
    };
    let float_int = actual == "number" && value.as_f64().is_some_and(is_json_integer) && expected == "integer";
    let int_float = actual == "integer" && expected == "number";
    (!(expected == actual || float_int || int_float)).then(|| type_error(path, expected, actual))
}

/// `swag.IsFloat64AJSONInteger`: whole and within ±2^53.
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_992.0;
    f.is_finite() && (-MAX..=MAX).contains(&f) && f.fract() == 0.0
}

fn check_enum(schema: &Value, value: &Value, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    let Some(allowed) = schema.get("enum").and_then(Value::as_array) else { return };
    if !value.is_null() && allowed.contains(value) {
        return;
    }
    let values: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => quote(s),
            other => quote(&other.to_string()),
        })
        .collect();
    out.push((
        Kind::Blocking,
        FieldError::new(
            path,
            format!("Unsupported value: {}: supported values: {}", bad_value(value), values.join(", ")),
        ),
    ));
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
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (name, v) in map {
        if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue; // the envelope is checked by the API server itself, not by the CRD schema
        }
        match properties.and_then(|p| p.get(name)) {
            Some(s) => check(s, v, &child(path, name), out),
            None => {
                if let Some(s) = additional {
                    check(s, v, &child(path, name), out);
                }
            }
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
}

fn check_string(schema: &Value, s: &str, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && s.chars().count() as u64 > max
    {
        // kube-openapi's string validator stops at the first failure.
        out.push((Kind::Blocking, FieldError::new(path, format!("Too long: may not be more than {max} bytes"))));
        return;
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        let matches = Regex::new(pattern).map(|re| re.is_match(s)).unwrap_or(false);
        if !matches {
            out.push((
                Kind::NonBlocking,
                FieldError::new(path, format!("Invalid value: {}: {path} in body should match '{pattern}'", quote(s))),
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
            FieldError::new(
                path,
                format!("Invalid value: {}: {path} in body should be less than or equal to {max}", number(n)),
            ),
        ));
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && v < min
    {
        out.push((
            Kind::NonBlocking,
            FieldError::new(
                path,
                format!("Invalid value: {}: {path} in body should be greater than or equal to {min}", number(n)),
            ),
        ));
    }
}

/// apiextensions' `ValidateListSetsAndMaps`: the items of a list-map are objects (or null), and
/// each key is there once; a key given more often is reported once, at its second item.
pub(super) fn check_list_maps(schema: &Value, value: &Value, path: &str, out: &mut Vec<(Kind, FieldError)>) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(s) = additional {
                    check_list_maps(s, v, &format!("{path}[{k}]"), out);
                }
                if let Some(s) = properties.and_then(|p| p.get(k)) {
                    check_list_maps(s, v, &child(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            let is_map = schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
            if is_map {
                list_map(schema, items, path, out);
            }
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_list_maps(s, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn list_map(schema: &Value, items: &[Value], path: &str, out: &mut Vec<(Kind, FieldError)>) {
    if let Some((i, item)) = items.iter().enumerate().find(|(_, x)| !x.is_null() && !x.is_object()) {
        out.push((
            Kind::NonBlocking,
            FieldError::new(
                &format!("{path}[{i}]"),
                format!("Invalid value: {}: must be an object for an array of list-type map", bad_value(item)),
            ),
        ));
        return;
    }
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |k| k.iter().filter_map(Value::as_str).collect());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let key: serde_json::Map<String, Value> =
            keys.iter().filter_map(|k| Some(((*k).to_string(), item.get(*k)?.clone()))).collect();
        let identity = Value::Object(key.clone()).to_string();
        let times = seen.entry(identity).or_insert(0);
        *times += 1;
        if *times == 2 {
            out.push((
                Kind::NonBlocking,
                FieldError::new(&format!("{path}[{i}]"), format!("Duplicate value: {}", sharp_v(&Value::Object(key)))),
            ));
        }
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}
