//! Whether a live object already holds what wukong would apply, so a converged object is
//! never written again.
//!
//! Server-side apply is idempotent on the server, but each apply is still a write request.
//! wukong stamps every object it applies with a hash of the desired state: when the live object
//! carries the same stamp and still contains every field wukong sets, there is nothing to do.
//! A changed spec changes the hash (so fields wukong stopped setting are released by the next
//! apply); an edit by someone else to a field wukong sets breaks containment (drift is restored).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Annotation holding the hash of the state wukong last applied.
pub const APPLIED_HASH: &str = "vm.novasphere.dev/applied-hash";

/// Stamps `desired` (a Kubernetes object as JSON) with the hash of its content.
///
/// A VM's interfaces with `state: absent` (and their networks) are left out of the hash:
/// KubeVirt removes such an interface from the VM itself once it is unplugged, and wukong then
/// no longer asks for it ([`crate::liveupdate::carry_unplugs`]); the desired state without it
/// hashes as before, so the VM KubeVirt left is up to date and nothing is written back.
pub fn stamp(desired: &mut Value) {
    let hash = hash(&without_unplugging(desired));
    let metadata = desired
        .as_object_mut()
        .expect("an object")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let annotations = metadata
        .as_object_mut()
        .expect("metadata is an object")
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    annotations.as_object_mut().expect("annotations are an object").insert(APPLIED_HASH.into(), Value::String(hash));
}

/// `object` without the interfaces being unplugged and their networks.
fn without_unplugging(object: &Value) -> std::borrow::Cow<'_, Value> {
    let absent = |i: &Value| i.get("state").and_then(Value::as_str) == Some(wukong_api::kubevirt::INTERFACE_ABSENT);
    let interfaces = object.pointer("/spec/template/spec/domain/devices/interfaces").and_then(Value::as_array);
    let unplugging: Vec<Value> =
        interfaces.into_iter().flatten().filter(|i| absent(i)).filter_map(|i| i.get("name").cloned()).collect();
    if unplugging.is_empty() {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut copy = object.clone();
    if let Some(list) = copy.pointer_mut("/spec/template/spec/domain/devices/interfaces").and_then(Value::as_array_mut)
    {
        list.retain(|i| !absent(i));
    }
    if let Some(list) = copy.pointer_mut("/spec/template/spec/networks").and_then(Value::as_array_mut) {
        list.retain(|n| n.get("name").is_none_or(|name| !unplugging.contains(name)));
    }
    std::borrow::Cow::Owned(copy)
}

fn hash(object: &Value) -> String {
    let digest = Sha256::digest(serde_json::to_vec(object).expect("JSON serializes"));
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// True when `live` carries `desired`'s stamp and contains every field of `desired`.
pub fn up_to_date(live: &Value, desired: &Value) -> bool {
    let stamp_of = |v: &Value| v.pointer("/metadata/annotations").and_then(|a| a.get(APPLIED_HASH)).cloned();
    stamp_of(desired).is_some() && stamp_of(live) == stamp_of(desired) && contains(live, desired)
}

/// `live` holds every field of `desired` with the same value. Objects may have more fields
/// (defaults, other managers); lists must match item by item, except lists keyed by `uid`
/// (ownerReferences), where other items may exist.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d.iter().all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d)) if d.iter().all(|i| i.get("uid").is_some()) && !d.is_empty() => {
            d.iter().all(|di| l.iter().any(|li| li.get("uid") == di.get("uid") && contains(li, di)))
        }
        (Value::Array(l), Value::Array(d)) => l.len() == d.len() && l.iter().zip(d).all(|(li, di)| contains(li, di)),
        (l, d) => l == d,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn desired() -> Value {
        let mut d = json!({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": { "name": "n", "ownerReferences": [{ "uid": "u1", "kind": "Wukong", "name": "w" }] },
            "spec": { "config": "{}" }
        });
        stamp(&mut d);
        d
    }

    #[test]
    fn a_live_object_as_applied_plus_server_fields_is_up_to_date() {
        let mut live = desired();
        live["metadata"]["resourceVersion"] = json!("42");
        live["metadata"]["managedFields"] = json!([{ "manager": "wukong" }]);
        live["metadata"]["ownerReferences"].as_array_mut().unwrap().push(json!({ "uid": "other" }));
        assert!(up_to_date(&live, &desired()));
    }

    #[test]
    fn an_edited_field_is_drift() {
        let mut live = desired();
        live["spec"]["config"] = json!("{\"edited\":true}");
        assert!(!up_to_date(&live, &desired()));
    }

    #[test]
    fn a_changed_desired_state_changes_the_stamp() {
        let live = desired();
        let mut next = json!({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": { "name": "n", "ownerReferences": [{ "uid": "u1", "kind": "Wukong", "name": "w" }] },
            "spec": { "config": "{\"vlan\":5}" }
        });
        stamp(&mut next);
        assert!(!up_to_date(&live, &next));
        // A field removed from the desired state: everything left is still in the live object,
        // but the stamp differs, so the next apply releases the removed field.
        let fewer = json!({ "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "metadata": { "name": "n" } });
        assert!(contains(&live, &fewer));
        let mut fewer = fewer;
        stamp(&mut fewer);
        assert!(!up_to_date(&live, &fewer));
    }

    #[test]
    fn lists_match_item_by_item() {
        assert!(contains(&json!([{ "a": 1, "b": 2 }]), &json!([{ "a": 1 }])));
        assert!(!contains(&json!([{ "a": 1 }, { "a": 2 }]), &json!([{ "a": 1 }])));
        assert!(!contains(&json!([{ "a": 2 }]), &json!([{ "a": 1 }])));
    }

    #[test]
    fn an_interface_being_unplugged_does_not_count_in_the_stamp() {
        let vm = |interfaces: Value, networks: Value| {
            json!({ "kind": "VirtualMachine", "spec": { "template": { "spec": {
                "domain": { "devices": { "interfaces": interfaces } }, "networks": networks
            } } } })
        };
        let pod = (json!({ "name": "default", "masquerade": {} }), json!({ "name": "default", "pod": {} }));
        let data = (
            json!({ "name": "data", "bridge": {} }),
            json!({ "name": "data", "multus": { "networkName": "w-data-nad" } }),
        );
        let mut unplugging =
            vm(json!([pod.0, { "name": "data", "bridge": {}, "state": "absent" }]), json!([pod.1, data.1]));
        stamp(&mut unplugging);
        // KubeVirt removed the interface: the VM as it stands is what wukong now wants.
        let mut after = vm(json!([pod.0]), json!([pod.1]));
        stamp(&mut after);
        let mut live = after.clone();
        live["metadata"]["annotations"] = unplugging["metadata"]["annotations"].clone();
        assert!(up_to_date(&live, &after), "no write after KubeVirt removed the unplugged interface");
        // Marking an interface absent changes the stamp: it is written.
        let mut attached = vm(json!([pod.0, data.0]), json!([pod.1, data.1]));
        stamp(&mut attached);
        assert_ne!(attached["metadata"]["annotations"], unplugging["metadata"]["annotations"]);
    }

    #[test]
    fn an_unstamped_live_object_is_not_up_to_date() {
        let mut live = desired();
        live["metadata"]["annotations"] = json!({});
        assert!(!up_to_date(&live, &desired()));
    }
}
