//! The NetworkAttachmentDefinitions wukong generates.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};
use wukong_api::nad::{NetworkAttachmentDefinition, NetworkAttachmentDefinitionSpec};
use wukong_api::{NetworkType, Wukong, labels};

use crate::cni::{self, CniVersion};
use crate::names;
use crate::plan::{NadRef, PlannedNetwork};

/// The NAD of a generated network: CNI config, labels, controller owner reference and, for
/// device-backed types, the resource the pod must request.
pub fn nad(
    wukong: &Wukong,
    network: &PlannedNetwork<'_>,
    nad: &NadRef,
    version: CniVersion,
) -> NetworkAttachmentDefinition {
    let mut annotations = BTreeMap::from([(labels::ATTACHMENT.to_string(), attachment(network))]);
    if let Some(resource) = resource_name(network) {
        annotations.insert(labels::NAD_RESOURCE_NAME.to_string(), resource);
    }
    NetworkAttachmentDefinition {
        metadata: ObjectMeta {
            name: Some(nad.name.clone()),
            namespace: Some(nad.namespace.clone()),
            labels: Some(names::child_labels(names::name_of(wukong), Some(network.name()))),
            annotations: Some(annotations),
            owner_references: names::owner_reference(wukong).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: NetworkAttachmentDefinitionSpec { config: cni::config(network.spec, &nad.name, version) },
    }
}

/// The attachment of a generated network: 8 hex digits of SHA-256 over what its NAD gives a
/// pod, the CNI plugin config (without the NAD's name and the CNI version, so neither a new NAD
/// name nor the controller's `--cni-version` change it) and the device resource. Written on the
/// NAD ([`labels::ATTACHMENT`]): a NAD whose attachment differs from the spec's attaches a new
/// pod differently from the running one.
pub fn attachment(network: &PlannedNetwork<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(cni::plugin_bytes(network.spec));
    if let Some(resource) = resource_name(network) {
        hasher.update(b"\0");
        hasher.update(resource.as_bytes());
    }
    hasher.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The device-plugin resource a pod on this network must request (sriov, macvtap).
fn resource_name(network: &PlannedNetwork<'_>) -> Option<String> {
    match network.network_type {
        NetworkType::Sriov => network.spec.resource_name.clone(),
        NetworkType::Macvlan => network.spec.master.as_ref().map(|m| format!("macvtap.network.kubevirt.io/{m}")),
        NetworkType::Bridge | NetworkType::Ovs => None,
    }
}
