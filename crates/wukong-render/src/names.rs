//! Names, labels and the owner reference of everything wukong generates.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use sha2::{Digest, Sha256};
use wukong_api::{Wukong, labels};

/// The network name that means the pod network.
pub const POD_NETWORK: &str = "default";

/// Namespace assumed for a manifest that names none (as kubectl does).
pub const DEFAULT_NAMESPACE: &str = "default";

pub fn namespace_of(wukong: &Wukong) -> &str {
    wukong.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

pub fn name_of(wukong: &Wukong) -> &str {
    wukong.metadata.name.as_deref().unwrap_or_default()
}

/// The end of every generated NAD's name (`<wukong>-<network>-nad`).
pub const NAD_SUFFIX: &str = "-nad";
/// The end of the VM's name (`<wukong>-vm`).
pub const VM_SUFFIX: &str = "-vm";

/// `<wukong>-<network>-nad`, the NAD generated for a network (the seed's rule).
pub fn nad_name(wukong: &str, network: &str) -> String {
    format!("{wukong}-{network}{NAD_SUFFIX}")
}

/// `<wukong>-<network>-<attachment>-nad`: the NAD a network of a running VM gets when its
/// attachment changes while the instance still uses `<wukong>-<network>-nad` (see
/// [`crate::plan::place`]); `attachment` is the 8-hex hash of [`crate::nad::attachment`].
pub fn swapped_nad_name(wukong: &str, network: &str, attachment: &str) -> String {
    format!("{wukong}-{network}-{attachment}-nad")
}

/// `<wukong>-vm`, the VirtualMachine (the original operator's rule).
pub fn vm_name(wukong: &str) -> String {
    format!("{wukong}{VM_SUFFIX}")
}

/// `<wukong>-<disk>`, the DataVolume of a disk.
pub fn data_volume_name(wukong: &str, disk: &str) -> String {
    format!("{wukong}-{disk}")
}

/// `br-<network>`, the bridge of a bridge/ovs network without `bridgeName`.
pub fn default_bridge_name(network: &str) -> String {
    format!("br-{network}")
}

/// The name KubeVirt gives a secondary network's interface in the launcher pod:
/// `pod` + the first 11 hex digits of SHA-256(network name) (KubeVirt ≥ 1.0, 15 characters
/// with the `-nic` suffix it adds).
pub fn pod_interface_name(network: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(network.as_bytes());
    let mut name = String::with_capacity(14);
    name.push_str("pod");
    for nibble in digest.iter().take(6).flat_map(|b| [b >> 4, b & 0x0f]).take(11) {
        name.push(char::from(HEX[usize::from(nibble)]));
    }
    name
}

/// Labels on every child: managed-by, the owning Wukong and, for a NAD, its network.
pub fn child_labels(wukong: &str, network: Option<&str>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (labels::MANAGED_BY.to_string(), labels::MANAGED_BY_VALUE.to_string()),
        (labels::WUKONG.to_string(), wukong.to_string()),
    ]);
    if let Some(net) = network {
        l.insert(labels::NETWORK.to_string(), net.to_string());
    }
    l
}

/// The controller owner reference to the Wukong; `None` when the Wukong has no uid yet
/// (an offline manifest, also one that says `uid: ""`), since a reference without uid is
/// refused by the API server.
pub fn owner_reference(wukong: &Wukong) -> Option<OwnerReference> {
    if wukong.metadata.uid.as_deref().is_none_or(str::is_empty) {
        return None;
    }
    let mut owner = wukong.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(true);
    Some(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wukong(uid: Option<&str>) -> Wukong {
        let mut w: Wukong = serde_json::from_value(serde_json::json!({
            "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
            "metadata": { "name": "web", "namespace": "prod" },
            "spec": { "cpu": 1, "memory": "1Gi" }
        }))
        .expect("a Wukong");
        w.metadata.uid = uid.map(str::to_string);
        w
    }

    #[test]
    fn only_a_wukong_with_a_uid_owns_its_children() {
        // The API server refuses an owner reference with an empty uid (the fuzzer found a
        // manifest saying `uid: ""`).
        assert_eq!(owner_reference(&wukong(None)), None);
        assert_eq!(owner_reference(&wukong(Some(""))), None);
        let owner = owner_reference(&wukong(Some("0b5c"))).expect("an owner reference");
        assert_eq!(
            (owner.uid.as_str(), owner.controller, owner.block_owner_deletion),
            ("0b5c", Some(true), Some(true))
        );
    }
}
