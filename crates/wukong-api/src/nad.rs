//! Multus `NetworkAttachmentDefinition` (k8s.cni.cncf.io/v1): only `spec.config`, which is the
//! entire upstream schema.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[kube(
    group = "k8s.cni.cncf.io",
    version = "v1",
    kind = "NetworkAttachmentDefinition",
    // The upstream plural has dashes; the derive's default (no dashes) would 404.
    plural = "network-attachment-definitions",
    namespaced,
    schema = "disabled",
    derive = "PartialEq",
    derive = "Default"
)]
pub struct NetworkAttachmentDefinitionSpec {
    /// The CNI network configuration, as a JSON string.
    #[serde(default)]
    pub config: String,
}
