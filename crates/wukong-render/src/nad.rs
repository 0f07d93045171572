//! The NetworkAttachmentDefinitions wukong generates.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
    let mut annotations = BTreeMap::new();
    match network.network_type {
        NetworkType::Sriov => {
            if let Some(resource) = &network.spec.resource_name {
                annotations.insert(labels::NAD_RESOURCE_NAME.to_string(), resource.clone());
            }
        }
        NetworkType::Macvlan => {
            if let Some(master) = &network.spec.master {
                annotations
                    .insert(labels::NAD_RESOURCE_NAME.to_string(), format!("macvtap.network.kubevirt.io/{master}"));
            }
        }
        NetworkType::Bridge | NetworkType::Ovs => {}
    }
    NetworkAttachmentDefinition {
        metadata: ObjectMeta {
            name: Some(nad.name.clone()),
            namespace: Some(nad.namespace.clone()),
            labels: Some(names::child_labels(names::name_of(wukong), Some(network.name()))),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: names::owner_reference(wukong).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: NetworkAttachmentDefinitionSpec { config: cni::config(network.spec, &nad.name, version) },
    }
}
