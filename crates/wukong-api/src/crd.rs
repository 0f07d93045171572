//! The `wukongs.vm.novasphere.dev` CRD: the derived schema joined with the rules of
//! [`crate::rules`].

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

use crate::Wukong;
use crate::rules::{CelRule, RULES};

/// Longest Wukong name: the VM `<name>-vm` must fit a 63-character DNS label.
pub const MAX_NAME_LENGTH: usize = 60;

/// The CRD, exactly as `wukong crd` prints it and `deploy/crd.yaml` holds it.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = Wukong::crd();
    let version = &mut crd.spec.versions[0];
    let schema = version
        .schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
        .expect("the derived CRD has an openAPIV3Schema");
    let mut value = serde_json::to_value(&*schema).expect("schema serializes");
    // The VM is `<name>-vm` and must stay a 63-character label. Bounding metadata.name (the only
    // metadata field a CRD may constrain) also bounds the cost of the rule that checks it.
    value["properties"]["metadata"] = json!({
        "type": "object",
        "properties": { "name": { "type": "string", "maxLength": MAX_NAME_LENGTH } }
    });
    attach_rules(&mut value, RULES);
    *schema = serde_json::from_value(value).expect("schema with rules deserializes");
    crd
}

/// The openAPIV3Schema of the CRD, as JSON: what the API server validates a Wukong against.
pub fn openapi_schema() -> Value {
    let crd = crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the derived CRD has an openAPIV3Schema");
    serde_json::to_value(schema).expect("schema serializes")
}

fn attach_rules(schema: &mut Value, rules: &[CelRule]) {
    for r in rules {
        let node = schema_node(schema, r.at)
            .unwrap_or_else(|| panic!("rule {} is attached to {:?}, which is not in the schema", r.id, r.at));
        let mut entry = Map::new();
        entry.insert("rule".into(), json!(r.rule));
        entry.insert("message".into(), json!(r.message));
        if let Some(expr) = r.message_expression {
            entry.insert("messageExpression".into(), json!(expr));
        }
        if let Some(path) = r.field_path {
            entry.insert("fieldPath".into(), json!(path));
        }
        let list = node
            .as_object_mut()
            .expect("schema node is an object")
            .entry("x-kubernetes-validations")
            .or_insert_with(|| json!([]));
        list.as_array_mut().expect("validations are a list").push(Value::Object(entry));
    }
}

/// The schema node at a dotted path such as `spec.networks[].ipConfig` (empty: the root).
pub fn schema_node<'a>(schema: &'a mut Value, at: &str) -> Option<&'a mut Value> {
    let mut node = schema;
    for step in at.split('.').filter(|s| !s.is_empty()) {
        let (name, into_items) = match step.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (step, false),
        };
        node = node.get_mut("properties")?.get_mut(name)?;
        if into_items {
            node = node.get_mut("items")?;
        }
    }
    Some(node)
}
