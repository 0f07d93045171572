//! Labels and annotations wukong puts on the objects it owns, and the ones it reads.

/// `app.kubernetes.io/managed-by: wukong` on every child.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "wukong";
/// The owning Wukong's name.
pub const WUKONG: &str = "vm.novasphere.dev/wukong";
/// The Wukong network a NAD was generated for.
pub const NETWORK: &str = "vm.novasphere.dev/network";
/// On a generated NAD: a hash of the network fields its CNI config comes from (type, VLAN,
/// bridge, master, resource, MTU, addresses). A running VM whose NAD's attachment no longer
/// matches the spec gets a new NAD instead of an edit under its feet.
pub const ATTACHMENT: &str = "vm.novasphere.dev/attachment";

/// Multus: device-plugin resource a NAD needs (sriov, macvtap).
pub const NAD_RESOURCE_NAME: &str = "k8s.v1.cni.cncf.io/resourceName";
/// Multus: the networks of a pod. KubeVirt writes it on the launcher pod; wukong never sets it.
pub const POD_NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
/// Multus: the networks a pod got, written by Multus.
pub const POD_NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";
