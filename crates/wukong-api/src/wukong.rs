//! The `Wukong` resource: one virtual machine and its secondary networks.
//!
//! JSON names follow the original Go operator so its manifests apply unchanged. Admission rules
//! (CEL) are not written here but in [`crate::rules`], and joined to this schema by [`crate::crd`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The original Go operator declared these optional strings `omitempty`, so an empty string in
/// its manifests means "not set"; wukong reads them the same way.
fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// A virtual machine on Kubernetes, attached to secondary networks through Multus.
// clippy reads the repeated `type_ = "string"` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "vm.novasphere.dev",
    version = "v1alpha1",
    kind = "Wukong",
    plural = "wukongs",
    shortname = "wk",
    namespaced,
    status = "WukongStatus",
    derive = "PartialEq",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "VM", type_ = "string", json_path = ".status.vmName"),
    printcolumn(name = "Networks", type_ = "string", json_path = ".status.networksAttached"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct WukongSpec {
    /// Number of virtual CPU cores (1..64).
    #[schemars(range(min = 1, max = 64))]
    pub cpu: i32,

    /// Guest memory as a Kubernetes quantity, e.g. `8Gi`.
    #[schemars(length(max = 32))]
    pub memory: String,

    /// Operating-system image used for the boot disk when no disk names an `image`.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub os_image: Option<String>,

    /// Name of a Secret in the Wukong's namespace whose values are SSH public keys.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub ssh_key_secret: Option<String>,

    /// The default user cloud-init creates in the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_init_user: Option<CloudInitUser>,

    /// Networks of the VM. The pod network (`default`) is always attached first; every other
    /// entry is a secondary network through Multus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub networks: Vec<NetworkSpec>,

    /// Disks of the VM; at most one has `boot: true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub disks: Vec<DiskSpec>,

    /// Scheduling and restart behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_availability: Option<HighAvailability>,

    /// Whether and how the VM runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_strategy: Option<StartStrategy>,
}

/// One network of the VM.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// DNS-1123 label, unique in the VM. `default` is the pod network.
    #[schemars(length(max = 63))]
    pub name: String,

    /// How the VM reaches this network. Required unless the network is `default`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<NetworkType>,

    /// An existing NetworkAttachmentDefinition, `name` or `namespace/name`. When set, wukong
    /// generates nothing for this network and never modifies that NAD.
    #[serde(default, deserialize_with = "empty_as_none", rename = "nadName", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 317))]
    pub nad_name: Option<String>,

    /// 802.1Q VLAN id (bridge, ovs, sriov).
    #[serde(default, rename = "vlanId", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4094))]
    pub vlan_id: Option<i32>,

    /// Host bridge (bridge, ovs); `br-<name>` when unset.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub bridge_name: Option<String>,

    /// Host interface the VM is put on (macvlan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub master: Option<String>,

    /// Device-plugin resource that provides the virtual functions (sriov).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub resource_name: Option<String>,

    /// MTU of the VM's interface on this network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 68, max = 65535))]
    pub mtu: Option<i32>,

    /// MAC address of the VM's interface; a stable one is derived when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub mac_address: Option<String>,

    /// Address configuration of the VM's interface.
    #[serde(default, rename = "ipConfig", skip_serializing_if = "Option::is_none")]
    pub ip_config: Option<IpConfig>,

    /// Link state of the VM's interface: `up` (the default) or `down`, as if the cable were
    /// pulled; changed on a running VM without a restart. Not on sriov networks (KubeVirt
    /// refuses it) nor on the pod network (a down primary interface fails the VM's probes).
    #[serde(default, rename = "linkState", skip_serializing_if = "Option::is_none")]
    pub link_state: Option<LinkState>,
}

/// The link state of a VM interface.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Up,
    Down,
}

impl LinkState {
    /// KubeVirt's interface `state` of this link state.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Down => "down",
        }
    }
}

/// How a VM interface reaches its network.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkType {
    /// A Linux bridge on the node (bridge CNI, KubeVirt bridge binding).
    Bridge,
    /// An Open vSwitch bridge on the node (ovs-cni, KubeVirt bridge binding).
    Ovs,
    /// A host interface shared through macvtap (macvtap CNI, KubeVirt macvtap binding).
    Macvlan,
    /// An SR-IOV virtual function passed through (sriov-cni, KubeVirt sriov binding).
    Sriov,
}

impl NetworkType {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkType::Bridge => "bridge",
            NetworkType::Ovs => "ovs",
            NetworkType::Macvlan => "macvlan",
            NetworkType::Sriov => "sriov",
        }
    }
}

/// Address configuration of one interface.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpConfig {
    /// `static` (address required) or `dhcp`.
    pub mode: IpMode,

    /// The interface address in CIDR form, e.g. `192.168.100.10/24` (static only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub address: Option<String>,

    /// Default gateway, an IP inside `address`'s subnet (static only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub gateway: Option<String>,

    /// DNS server IPs.
    #[serde(default, rename = "dnsServers", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(max = 64)))]
    pub dns_servers: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpMode {
    Static,
    Dhcp,
}

/// One disk of the VM.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskSpec {
    /// DNS-1123 label, unique in the VM.
    #[schemars(length(max = 63))]
    pub name: String,

    /// Size as a Kubernetes quantity, e.g. `20Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub size: Option<String>,

    /// StorageClass of the disk's volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,

    /// Whether the VM boots from this disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<bool>,

    /// Image the disk is created from: `docker://`, `containerdisk://`, `http://` or `https://`.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
}

/// The default user cloud-init creates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudInitUser {
    /// Login name.
    #[schemars(length(max = 32))]
    pub name: String,

    /// Refused: a plain password would be stored in etcd and in the VM. Use `passwordHash`.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub password: Option<String>,

    /// A crypt(3) hash, e.g. from `openssl passwd -6`.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub password_hash: Option<String>,

    /// sudoers rule, e.g. `ALL=(ALL) NOPASSWD:ALL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub sudo: Option<String>,

    /// Login shell, e.g. `/bin/bash`.
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub shell: Option<String>,

    /// Supplementary groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 32)))]
    pub groups: Vec<String>,

    /// Lock the password (SSH keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_passwd: Option<bool>,
}

/// Scheduling and restart behaviour.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HighAvailability {
    /// What KubeVirt does when the VM stops: `Always`, `OnFailure` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,

    /// Spread VMs of the same Wukong label across nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<bool>,

    /// Node labels the VM must be scheduled on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Taints the VM tolerates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tolerations: Vec<Toleration>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// Whether and how the VM runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartStrategy {
    /// KubeVirt run strategy; wins over `autoStart` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_strategy: Option<RunStrategy>,

    /// Start the VM (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_start: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunStrategy {
    Always,
    RerunOnFailure,
    Manual,
    Halted,
}

impl RunStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStrategy::Always => "Always",
            RunStrategy::RerunOnFailure => "RerunOnFailure",
            RunStrategy::Manual => "Manual",
            RunStrategy::Halted => "Halted",
        }
    }
}

/// What wukong observed and decided.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WukongStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_name: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Secondary networks attached through a NAD, of those the spec lists (`2/2`), or the
    /// reason they are not (`NADNotFound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks_attached: Option<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkStatus>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeStatus>,

    /// Changes of the spec that the running VM does not have yet, and how each reaches it
    /// (live, through a migration, at a restart); empty when the VM runs as the spec says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_changes: Vec<PendingChange>,
}

/// One change of the spec on its way to the running VM.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingChange {
    /// What changes: `network <name>`, `cpu`, `memory`, `disks`, `scheduling`, ...
    pub subject: String,
    /// The change, in words (`added`, `link down`, `NAD web-mgmt-nad -> web-mgmt-2c1f0b9a-nad`).
    pub change: String,
    /// How it reaches the running VM: `Live`, `Migration`, `Restart` (or `AtStart`, in a
    /// preview of a VM that does not run).
    pub applies: Applies,
    /// KubeVirt reports `RestartRequired` on the VM for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_flagged: bool,
    /// Why, in KubeVirt's terms.
    pub reason: String,
}

/// How a change reaches a running VM.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum Applies {
    /// KubeVirt applies it to the running VM, without a restart.
    #[default]
    Live,
    /// KubeVirt applies it through a live migration of the VM.
    Migration,
    /// It waits for a restart of the VM.
    Restart,
    /// The VM does not run: it starts with it.
    AtStart,
}

impl Applies {
    pub fn as_str(self) -> &'static str {
        match self {
            Applies::Live => "Live",
            Applies::Migration => "Migration",
            Applies::Restart => "Restart",
            Applies::AtStart => "AtStart",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    Pending,
    Creating,
    Running,
    Stopped,
    Error,
}

/// One network as the VM sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    pub name: String,
    /// The NAD in use, `namespace/name`; absent on the pod network and in the no-Multus fallback.
    #[serde(default, rename = "nadName", skip_serializing_if = "Option::is_none")]
    pub nad_name: Option<String>,
    /// Interface name inside the guest, when the guest agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, rename = "ipAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, rename = "macAddress", skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// The interface's link state as KubeVirt reports it (`up`, `down`).
    #[serde(default, rename = "linkState", skip_serializing_if = "Option::is_none")]
    pub link_state: Option<String>,
}

/// One disk's volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// The DataVolume's phase as CDI reports it (`WaitForFirstConsumer`, `ImportScheduled`,
    /// `ImportInProgress`, `Succeeded`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// CDI's import progress (`45.20%`), while it imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
}
