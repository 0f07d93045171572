//! What the API server does to a custom resource while decoding it, before any validation:
//! - strict field validation (what kubectl asks for) refuses every field the schema does not
//!   declare, under `spec`, `status` and `metadata` alike, with a 400 and nothing else;
//! - a `null` in a field that is not nullable and has no default is dropped (so `networks: null`
//!   is as if `networks` were absent);
//! - on create, `status` is dropped (the status subresource owns it) and a `generateName` gets
//!   its name.

use serde_json::{Map, Value};

/// The fields of `object` the schema does not declare, as the API server names them
/// (`spec.networks[0].foo`, `metadata.bar`).
pub fn unknown_fields(schema: &Value, object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(metadata) = object.get("metadata") {
        unknown_metadata(metadata, &mut out);
    }
    if let Value::Object(map) = object {
        for (k, v) in map {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match schema.pointer(&format!("/properties/{}", k.replace('~', "~0").replace('/', "~1"))) {
                Some(s) => prune(Some(s), v, k, &mut out),
                None => out.push(k.clone()),
            }
        }
    }
    out
}

/// The structural pruning of apiextensions: every key no schema declares is unknown.
fn prune(schema: Option<&Value>, value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if schema.and_then(|s| s.get("x-kubernetes-preserve-unknown-fields")).and_then(Value::as_bool) == Some(true)
            {
                return;
            }
            let properties = schema.and_then(|s| s.get("properties")).and_then(Value::as_object);
            let additional = schema.and_then(|s| s.get("additionalProperties")).filter(|a| a.is_object());
            for (k, v) in map {
                match (properties.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) => prune(Some(s), v, &format!("{path}.{k}"), out),
                    // The API server names a map entry's fields `map.key.field`.
                    (None, Some(s)) => prune(Some(s), v, &format!("{path}.{k}"), out),
                    (None, None) => out.push(format!("{path}.{k}")),
                }
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.get("items"));
            for (i, item) in items.iter().enumerate() {
                prune(item_schema, item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The fields of `metav1.ObjectMeta` (and of its lists' items), as its JSON names them.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];
const OWNER_REFERENCE: &[&str] = &["apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"];
const MANAGED_FIELDS: &[&str] =
    &["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"];

fn unknown_metadata(metadata: &Value, out: &mut Vec<String>) {
    let Value::Object(map) = metadata else { return };
    for (k, v) in map {
        if !OBJECT_META.contains(&k.as_str()) {
            out.push(format!("metadata.{k}"));
            continue;
        }
        let item_fields = match k.as_str() {
            "ownerReferences" => OWNER_REFERENCE,
            "managedFields" => MANAGED_FIELDS,
            _ => continue,
        };
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            for key in item.as_object().into_iter().flat_map(Map::keys) {
                // fieldsV1 holds any JSON.
                if !item_fields.contains(&key.as_str()) {
                    out.push(format!("metadata.{k}[{i}].{key}"));
                }
            }
        }
    }
}

/// The first field of `metadata` whose JSON type does not fit `metav1.ObjectMeta`, in the words
/// of Go's JSON decoder (the API server refuses the object with them, before anything else):
/// `json: cannot unmarshal string into Go struct field ObjectMeta.labels of type map[string]string`.
/// Fields are visited in key order, as the JSON the API server receives from kubectl has them.
pub fn metadata_type_error(metadata: &Value) -> Option<String> {
    fn json_type(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    let error = |v: &Value, owner: &str, field: &str, ty: &str| {
        Some(format!("json: cannot unmarshal {} into Go struct field {owner}.{field} of type {ty}", json_type(v)))
    };
    let Value::Object(map) = metadata else {
        return (!metadata.is_null())
            .then(|| format!("json: cannot unmarshal {} into Go value of type v1.ObjectMeta", json_type(metadata)));
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        let v = &map[k];
        if v.is_null() {
            continue;
        }
        let found = match k.as_str() {
            "name" | "generateName" | "namespace" | "selfLink" | "uid" | "resourceVersion" | "creationTimestamp"
            | "deletionTimestamp" => (!v.is_string()).then(|| error(v, "ObjectMeta", k, "string")).flatten(),
            "generation" | "deletionGracePeriodSeconds" => {
                (!v.is_i64()).then(|| error(v, "ObjectMeta", k, "int64")).flatten()
            }
            "labels" | "annotations" => match v {
                Value::Object(entries) => {
                    let mut names: Vec<&String> = entries.keys().collect();
                    names.sort();
                    names
                        .into_iter()
                        .map(|n| &entries[n])
                        .find(|e| !e.is_string() && !e.is_null())
                        .and_then(|e| error(e, "ObjectMeta", k, "string"))
                }
                other => error(other, "ObjectMeta", k, "map[string]string"),
            },
            "finalizers" => match v {
                Value::Array(items) => items
                    .iter()
                    .find(|e| !e.is_string() && !e.is_null())
                    .and_then(|e| error(e, "ObjectMeta", k, "string")),
                other => error(other, "ObjectMeta", k, "[]string"),
            },
            "ownerReferences" => match v {
                Value::Array(items) => items.iter().find_map(|item| match item {
                    Value::Object(r) => {
                        let mut names: Vec<&String> = r.keys().collect();
                        names.sort();
                        names.into_iter().find_map(|n| {
                            let f = &r[n];
                            let ty = match n.as_str() {
                                "apiVersion" | "kind" | "name" | "uid" => "string",
                                "controller" | "blockOwnerDeletion" => "bool",
                                _ => return None,
                            };
                            let fits = f.is_null() || if ty == "bool" { f.is_boolean() } else { f.is_string() };
                            if fits { None } else { error(f, "OwnerReference", &format!("ownerReferences.{n}"), ty) }
                        })
                    }
                    Value::Null => None,
                    other => error(other, "ObjectMeta", k, "v1.OwnerReference"),
                }),
                other => error(other, "ObjectMeta", k, "[]v1.OwnerReference"),
            },
            "managedFields" => (!v.is_array()).then(|| error(v, "ObjectMeta", k, "[]v1.ManagedFieldsEntry")).flatten(),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Drops every `null` the schema does not allow (not nullable, no default), as the API server
/// does before validating.
pub fn prune_nulls(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            map.retain(|k, v| {
                let s = properties.and_then(|p| p.get(k)).or(additional);
                !(v.is_null()
                    && s.is_some_and(|s| {
                        s.get("nullable").and_then(Value::as_bool) != Some(true) && s.get("default").is_none()
                    }))
            });
            for (k, v) in map.iter_mut() {
                if let Some(s) = properties.and_then(|p| p.get(k)).or(additional) {
                    prune_nulls(s, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|i| prune_nulls(s, i));
            }
        }
        _ => {}
    }
}

/// `metadata.labels` and `metadata.annotations` are Go maps of strings: a `null` value is read
/// as the empty string.
pub fn metadata_strings(object: &mut Value) {
    for field in ["labels", "annotations"] {
        if let Some(Value::Object(map)) = object.pointer_mut(&format!("/metadata/{field}")) {
            for v in map.values_mut().filter(|v| v.is_null()) {
                *v = Value::String(String::new());
            }
        }
    }
}

/// What CEL sees: a nullable field set to `null` is treated as absent (in objects with
/// properties; maps keep their entries).
pub fn drop_nullable_nulls(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_some() {
                map.retain(|_, v| !v.is_null());
            }
            for (k, v) in map.iter_mut() {
                if let Some(s) = properties.and_then(|p| p.get(k)).or(additional) {
                    drop_nullable_nulls(s, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|i| drop_nullable_nulls(s, i));
            }
        }
        _ => {}
    }
}

/// The name the API server gives an object created with `generateName` and no name: the
/// prefix (cut to 58 characters) and 5 random characters. Offline the 5 are `xxxxx`.
pub fn generated_name(prefix: &str) -> String {
    let cut: String = prefix.chars().take(58).collect();
    format!("{cut}xxxxx")
}
