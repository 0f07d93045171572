//! Validation: the admission rules of the CRD, run offline, plus what CEL cannot check.
//!
//! The rules come from one place, the CRD schema built by [`wukong_api::crd`]: its OpenAPI
//! constraints are checked by [`structural`] and its CEL rules by kube's client-side CEL, in the
//! order and with the words of the API server. Then [`semantic`] checks what CEL cannot express.

mod decode;
mod dialect;
pub mod gofmt;
mod metadata;
mod semantic;
mod structural;

use std::fmt;

use kube::core::cel::{CompiledSchema, Validator, compile_schema};
use serde_json::Value;
use wukong_api::Wukong;

/// One refused field: `field` is the path (`spec.networks[0].ipConfig.address`), `detail` the
/// API server's words (`Invalid value: "object": ipConfig.address is required ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub detail: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, detail: String) -> Self {
        Self { field: field.to_string(), detail }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.detail) } else { write!(f, "{}: {}", self.field, self.detail) }
    }
}

/// A Wukong that breaks the API's rules, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// `namespace/name` of the Wukong (namespace omitted when the manifest has none).
    pub wukong: String,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wukong {} is invalid:", self.wukong)?;
        for e in &self.errors {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl Invalid {
    /// All reasons on one line, for a condition message or an event.
    pub fn summary(&self) -> String {
        self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}

const BLOCKED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

thread_local! {
    // Compiling the schema's CEL rules takes a while; do it once per thread.
    // The rules are compiled in their strict form (see `dialect`); errors name them as written.
    static CEL: (Validator, CompiledSchema, Value) = {
        let schema = wukong_api::crd::openapi_schema();
        let (strict, _) = dialect::strict_schema(schema.clone());
        (Validator::new(), compile_schema(&strict), schema)
    };
    static RENAMED: std::collections::HashMap<String, String> =
        dialect::strict_schema(wukong_api::crd::openapi_schema()).1.into_iter().collect();
}

/// Validates a Wukong manifest as the API server would admit it, then what CEL cannot check.
/// On success returns the typed Wukong.
pub fn validate_object(object: &Value) -> Result<Wukong, Invalid> {
    validate_object_update(object, None)
}

/// As [`validate_object`], for an update from `old`: transition rules apply, and as at the API
/// server (CRD validation ratcheting, Kubernetes ≥ 1.30) an error in a part of the object the
/// update leaves unchanged is not reported, so a Wukong stored under older, looser rules can
/// still be edited elsewhere.
///
/// The steps are the API server's: strict decoding (unknown fields refuse the object with
/// nothing else said), nulls the schema does not allow dropped, `status` dropped and a
/// `generateName` turned into a name on create; then the type meta, the object meta, the
/// schema, the list-map invariants, and CEL unless an error blocks it.
pub fn validate_object_update(object: &Value, old: Option<&Value>) -> Result<Wukong, Invalid> {
    let original = object;
    let invalid = |errors| Invalid { wukong: identity(object), errors };
    if !object.is_object() {
        return Err(invalid(vec![FieldError::new("", "the document is not an object".into())]));
    }
    let (object, errors) = CEL.with(|(validator, compiled, schema)| {
        // The API server decodes metadata into its Go type first: a wrong type refuses the
        // object with Go's words and nothing else.
        if let Some(e) = object.get("metadata").and_then(decode::metadata_type_error) {
            return (Value::Null, vec![FieldError::new("", e)]);
        }
        let unknown = decode::unknown_fields(schema, object);
        if !unknown.is_empty() {
            let errors =
                unknown.iter().map(|f| FieldError::new("", format!("unknown field {}", gofmt::quote(f)))).collect();
            return (Value::Null, errors);
        }
        let mut object = object.clone();
        decode::prune_nulls(schema, &mut object);
        decode::metadata_strings(&mut object);
        let map = object.as_object_mut().expect("an object");
        map.remove("status");
        let generate =
            map.get("metadata").and_then(|m| m.get("generateName")).and_then(Value::as_str).map(str::to_string);
        let named =
            map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).is_some_and(|n| !n.is_empty());
        if old.is_none()
            && !named
            && let Some(prefix) = generate.filter(|g| !g.is_empty())
            && let Some(Value::Object(meta)) = map.get_mut("metadata")
        {
            meta.insert("name".into(), Value::String(decode::generated_name(&prefix)));
        }
        let type_meta = type_meta(&object);
        if !type_meta.is_empty() {
            return (Value::Null, type_meta);
        }
        let name = object.pointer("/metadata/name").and_then(Value::as_str);
        let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);
        let mut found = metadata::check(&metadata, name);
        if old.is_some() {
            // The name of an update is the stored one: its checks were made at creation.
            found.retain(|(_, e)| e.field != "metadata.name");
        }
        let admitted = admitted_part(&object, schema);
        let admitted_old = old.map(|o| {
            let mut o = o.clone();
            decode::prune_nulls(schema, &mut o);
            admitted_part(&o, schema)
        });
        structural::check(schema, &object, "", &mut found);
        if old.is_none()
            && let Some(e) = name.and_then(metadata::schema_name_length)
        {
            found.push(e);
        }
        structural::check_list_maps(schema, &object, "", &mut found);
        if let Some(old) = &admitted_old {
            // Unknown fields and duplicate keys are refused whatever the old object held.
            found.retain(|(_, e)| {
                e.detail.starts_with("Duplicate value")
                    || e.field.starts_with("metadata")
                    || !unchanged(schema, &admitted, old, &e.field)
            });
        }
        let blocking = found.iter().any(|(k, _)| *k == structural::Kind::Blocking);
        let mut errors: Vec<FieldError> = found.into_iter().map(|(_, e)| e).collect();
        if blocking {
            errors.push(FieldError::new("", BLOCKED.into()));
        } else if let Err(failed) = validator.validate_compiled(compiled, &admitted, admitted_old.as_ref()) {
            for e in failed.iter() {
                let rule = RENAMED.with(|r| r.get(&e.rule).cloned()).unwrap_or_else(|| e.rule.clone());
                let at = rule_node(&rule, &e.field_path);
                if let Some(old) = &admitted_old
                    && !rule.contains("oldSelf")
                    && unchanged(schema, &admitted, old, &node_path(at, &e.field_path))
                {
                    continue;
                }
                // The API server reports the type of the node the rule is written on, even when
                // fieldPath points the error at a child.
                let node = node_type(schema, at);
                errors.push(FieldError::new(&e.field_path, format!("Invalid value: \"{node}\": {}", e.message)));
            }
        }
        (object, errors)
    });
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    // The typed Wukong keeps the status it came with (the controller reads it), unless that
    // status is unreadable: on create the API server drops it anyway.
    let with_status = |status: Option<&Value>| {
        let mut typed = object.clone();
        if let (Some(status), Some(map)) = (status, typed.as_object_mut()) {
            map.insert("status".into(), status.clone());
        }
        CEL.with(|(_, _, schema)| decode::drop_nullable_nulls(schema, &mut typed));
        whole_numbers(&mut typed);
        serde_json::from_value::<Wukong>(typed)
    };
    let wukong = with_status(original.get("status"))
        .or_else(|_| with_status(None))
        .map_err(|e| invalid(vec![FieldError::new("", format!("cannot be read: {e}"))]))?;
    semantic::check(&wukong).map_err(invalid)?;
    Ok(wukong)
}

/// Validates a typed Wukong (read from the API server) against the same rules.
pub fn validate(wukong: &Wukong) -> Result<(), Invalid> {
    let object = serde_json::to_value(wukong).expect("a Wukong serializes");
    validate_object(&object).map(|_| ())
}

/// The API server's `ValidateTypeMeta` of a Wukong: reported alone when it fails.
fn type_meta(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    if kind != "Wukong" {
        errors.push(FieldError::new("kind", format!("Invalid value: {}: must be Wukong", gofmt::quote(kind))));
    }
    if api_version != "vm.novasphere.dev/v1alpha1" {
        errors.push(FieldError::new(
            "apiVersion",
            format!("Invalid value: {}: must be vm.novasphere.dev/v1alpha1", gofmt::quote(api_version)),
        ));
    }
    errors
}

/// Whole floats (`4.0`, what a JSON file may hold) as integers, as the API server stores them.
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Where (`spec.networks[].ipConfig`) the rule of a CEL error is written: rules that share an
/// expression are told apart by the error's path, list indices dropped.
fn rule_node(rule: &str, field_path: &str) -> &'static str {
    let path = without_indices(field_path);
    let candidates = || wukong_api::rules::RULES.iter().filter(|r| r.rule == rule);
    candidates()
        .find(|r| format!("{}{}", r.at, r.field_path.unwrap_or("")).trim_start_matches('.') == path)
        .or_else(|| candidates().next())
        .map_or("", |r| r.at)
}

/// `spec.networks[0].ipConfig.address` → `spec.networks[].ipConfig.address`.
fn without_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// The path of the node a rule written at `at` was evaluated on, from the error's path (which
/// `fieldPath` may extend): as many steps of `field_path` as `at` has.
fn node_path(at: &str, field_path: &str) -> String {
    let steps = at.split('.').filter(|s| !s.is_empty()).count();
    field_path.split('.').take(steps).collect::<Vec<_>>().join(".")
}

/// Whether the node at `path` (`spec.networks[1].ipConfig`) is the same in `new` and `old`, list
/// items of a list-map paired by key as the API server pairs them; items of other lists cannot
/// be paired, so they never count as unchanged.
fn unchanged(schema: &Value, new: &Value, old: &Value, path: &str) -> bool {
    let mut at = (schema, new, old);
    for step in path.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match step.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (step, None),
        };
        let (Some(s), Some(n), Some(o)) =
            (at.0.pointer(&format!("/properties/{name}")), at.1.get(name), at.2.get(name))
        else {
            return false;
        };
        at = (s, n, o);
        if let Some(i) = index {
            if at.0.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
                return false;
            }
            let keys: Vec<&str> =
                at.0.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map_or_else(Vec::new, |k| k.iter().filter_map(Value::as_str).collect());
            let (Some(items), Some(item), Some(old_items)) = (at.0.get("items"), at.1.get(i), at.2.as_array()) else {
                return false;
            };
            let Some(old_item) = old_items.iter().find(|o| keys.iter().all(|k| o.get(*k) == item.get(*k))) else {
                return false;
            };
            at = (items, item, old_item);
        }
    }
    at.1 == at.2
}

/// What CEL sees: the decoded object, `metadata` reduced to its name (all a rule may read), and
/// nullable fields set to `null` treated as absent.
fn admitted_part(object: &Value, schema: &Value) -> Value {
    let mut admitted = object.clone();
    if let Some(map) = admitted.as_object_mut() {
        map.remove("status");
        let name = object.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
        map.insert("metadata".into(), serde_json::json!({ "name": name }));
    }
    decode::drop_nullable_nulls(schema, &mut admitted);
    admitted
}

fn identity(object: &Value) -> String {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("<unnamed>");
    match object.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// The schema type of a rule's node (`spec.networks[].ipConfig`).
fn node_type(schema: &Value, at: &str) -> &'static str {
    let mut schema = schema.clone();
    let node = wukong_api::crd::schema_node(&mut schema, at).map(|n| n.take()).unwrap_or_default();
    match node.get("type").and_then(Value::as_str) {
        Some("string") => "string",
        Some("array") => "array",
        Some("integer") => "integer",
        Some("boolean") => "boolean",
        _ => "object",
    }
}

#[cfg(test)]
mod tests;
