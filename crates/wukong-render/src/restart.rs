//! Whether the running instance of a VM lags behind the VM wukong applies: KubeVirt applies a
//! changed template (networks, interfaces, disks, volumes, CPU, memory) when it starts a new
//! instance, not to the one that runs. The Wukong's status then says `RestartRequired`, as
//! KubeVirt's own `RestartRequired` condition on the VM does.

use serde_json::Value;
use wukong_api::kubevirt::VirtualMachine;

use crate::{disks, drift};

/// The parts of `desired`'s template that the running instance (its VMI `spec`, as JSON) does
/// not hold, in a fixed order: `networks`, `interfaces`, `disks`, `volumes`, `cpu`, `memory`.
/// KubeVirt adds defaults to an instance, so "holds" means holds every field wukong sets.
pub fn pending(desired: &VirtualMachine, vmi_spec: &Value) -> Vec<&'static str> {
    let template = &desired.spec.template.spec;
    let domain = &template.domain;
    let parts: [(&'static str, Value, &str); 5] = [
        ("networks", json(&template.networks), "/networks"),
        ("interfaces", json(&domain.devices.interfaces), "/domain/devices/interfaces"),
        ("disks", json(&domain.devices.disks), "/domain/devices/disks"),
        ("volumes", json(&template.volumes), "/volumes"),
        ("cpu", json(&domain.cpu), "/domain/cpu"),
    ];
    let mut out: Vec<&'static str> = parts
        .into_iter()
        .filter(|(_, want, at)| {
            let have = vmi_spec.pointer(at).unwrap_or(&Value::Null);
            let empty = want.is_null() || want.as_array().is_some_and(Vec::is_empty);
            if empty { have.as_array().is_some_and(|a| !a.is_empty()) } else { !drift::contains(have, want) }
        })
        .map(|(name, _, _)| name)
        .collect();
    // Quantities are compared by value: KubeVirt writes `4Gi` for a template's `4096Mi`.
    if let Some(memory) = &domain.memory {
        let have = vmi_spec.pointer("/domain/memory/guest").and_then(Value::as_str);
        if have.and_then(|h| disks::compare_quantities(h, &memory.guest)) != Some(std::cmp::Ordering::Equal) {
            out.push("memory");
        }
    }
    out
}

fn json<T: serde::Serialize>(part: &T) -> Value {
    serde_json::to_value(part).expect("a VM part serializes")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{plan, validate_object, vm};

    fn desired() -> VirtualMachine {
        let valid = validate_object(&json!({
            "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
            "metadata": { "name": "web", "namespace": "prod" },
            "spec": { "cpu": 2, "memory": "4096Mi",
                "disks": [{ "name": "system", "boot": true, "image": "https://example.com/os.img", "size": "20Gi", "storageClassName": "ssd" }],
                "networks": [{ "name": "mgmt", "type": "bridge", "macAddress": "02:00:00:00:00:01" }] }
        }))
        .unwrap();
        vm::virtual_machine(valid.wukong(), &plan::plan(valid.wukong(), true))
    }

    /// The VMI KubeVirt makes of `desired`: its template spec plus KubeVirt's defaults.
    fn instance_of(vm: &VirtualMachine) -> Value {
        let mut spec = serde_json::to_value(&vm.spec.template.spec).unwrap();
        spec["domain"]["cpu"]["sockets"] = json!(1);
        spec["domain"]["machine"] = json!({ "type": "q35" });
        spec["domain"]["memory"]["guest"] = json!("4Gi");
        spec["domain"]["devices"]["interfaces"][1]["model"] = json!("virtio");
        spec
    }

    #[test]
    fn an_instance_started_from_the_desired_vm_needs_no_restart() {
        let vm = desired();
        assert_eq!(pending(&vm, &instance_of(&vm)), Vec::<&str>::new());
    }

    #[test]
    fn what_the_instance_lacks_is_named() {
        let vm = desired();
        let mut vmi = instance_of(&vm);
        vmi["domain"]["devices"]["interfaces"][1].as_object_mut().unwrap().remove("macAddress");
        vmi["networks"][1]["name"] = json!("web-mgmt-nad");
        vmi["domain"]["memory"]["guest"] = json!("2Gi");
        assert_eq!(pending(&vm, &vmi), ["networks", "interfaces", "memory"]);
        vmi["volumes"] = json!([]);
        assert_eq!(pending(&vm, &vmi), ["networks", "interfaces", "volumes", "memory"]);
    }
}
