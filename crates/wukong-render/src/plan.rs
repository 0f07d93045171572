//! The network plan: for every network of a Wukong, how the VM attaches to it.

use std::collections::BTreeMap;
use std::fmt;

use wukong_api::{NetworkSpec, NetworkType, Wukong};

use crate::{mac, nad, names};

/// A NetworkAttachmentDefinition, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NadRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for NadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl NadRef {
    /// Parses `name` or `namespace/name`; a bare name lives in `default_namespace`.
    pub fn parse(value: &str, default_namespace: &str) -> Self {
        match value.split_once('/') {
            Some((ns, name)) => NadRef { namespace: ns.to_string(), name: name.to_string() },
            None => NadRef { namespace: default_namespace.to_string(), name: value.to_string() },
        }
    }
}

/// How the VM reaches one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// A NAD wukong generates and owns.
    Generated(NadRef),
    /// A NAD the user names with `nadName`; used, never modified.
    Existing(NadRef),
    /// Multus is not installed: the network is not attached; the VM keeps only the pod network.
    Fallback,
}

/// The KubeVirt interface binding of a secondary network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// `bridge: {}` (bridge, ovs).
    Bridge,
    /// `sriov: {}`.
    Sriov,
    /// `binding: {name: macvtap}`, the macvtap network binding plugin.
    Macvtap,
}

/// One secondary network, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNetwork<'a> {
    pub spec: &'a NetworkSpec,
    pub network_type: NetworkType,
    pub attachment: Attachment,
    pub binding: Binding,
    /// The interface's MAC: `macAddress`, else derived (lower case).
    pub mac: String,
}

impl PlannedNetwork<'_> {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn nad(&self) -> Option<&NadRef> {
        match &self.attachment {
            Attachment::Generated(nad) | Attachment::Existing(nad) => Some(nad),
            Attachment::Fallback => None,
        }
    }
}

/// The plan of all secondary networks, in spec order. The pod network is always attached and
/// is not part of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan<'a> {
    pub networks: Vec<PlannedNetwork<'a>>,
    /// The MAC the pod network's interface gets when cloud-init configures it (derived like the
    /// others, for the network name `default`).
    pub pod_mac: String,
}

impl<'a> NetworkPlan<'a> {
    pub fn generated(&self) -> impl Iterator<Item = (&PlannedNetwork<'a>, &NadRef)> {
        self.networks.iter().filter_map(|n| match &n.attachment {
            Attachment::Generated(nad) => Some((n, nad)),
            _ => None,
        })
    }

    pub fn existing(&self) -> impl Iterator<Item = (&PlannedNetwork<'a>, &NadRef)> {
        self.networks.iter().filter_map(|n| match &n.attachment {
            Attachment::Existing(nad) => Some((n, nad)),
            _ => None,
        })
    }

    pub fn attached(&self) -> impl Iterator<Item = &PlannedNetwork<'a>> {
        self.networks.iter().filter(|n| n.attachment != Attachment::Fallback)
    }
}

/// Plans the secondary networks of a validated Wukong. `multus` says whether the NAD kind is
/// installed; without it every secondary network falls back to the pod network (the seed §5.1).
pub fn plan(wukong: &Wukong, multus: bool) -> NetworkPlan<'_> {
    let namespace = names::namespace_of(wukong);
    let name = names::name_of(wukong);
    let networks = wukong
        .spec
        .networks
        .iter()
        .filter(|n| n.name != names::POD_NETWORK)
        .map(|spec| {
            // Validation guarantees a type on every secondary network.
            let network_type = spec.type_.unwrap_or(NetworkType::Bridge);
            let attachment = match (&spec.nad_name, multus) {
                (_, false) => Attachment::Fallback,
                (Some(existing), true) => Attachment::Existing(NadRef::parse(existing, namespace)),
                (None, true) => Attachment::Generated(NadRef {
                    namespace: namespace.to_string(),
                    name: names::nad_name(name, &spec.name),
                }),
            };
            let binding = match network_type {
                NetworkType::Bridge | NetworkType::Ovs => Binding::Bridge,
                NetworkType::Sriov => Binding::Sriov,
                NetworkType::Macvlan => Binding::Macvtap,
            };
            let mac = match &spec.mac_address {
                Some(m) => m.to_ascii_lowercase(),
                None => mac::derive(namespace, name, &spec.name).to_string(),
            };
            PlannedNetwork { spec, network_type, attachment, binding, mac }
        })
        .collect();
    let pod_mac = mac::derive(namespace, name, names::POD_NETWORK).to_string();
    NetworkPlan { networks, pod_mac }
}

/// The names a generated network's NAD may have: `<wukong>-<network>-nad`, and the name it gets
/// when a running instance still uses that one with another attachment
/// ([`names::swapped_nad_name`]).
pub fn nad_names(wukong: &Wukong, net: &PlannedNetwork<'_>) -> [String; 2] {
    let name = names::name_of(wukong);
    [names::nad_name(name, net.name()), names::swapped_nad_name(name, net.name(), &nad::attachment(net))]
}

/// Places the generated NADs of a VM whose instance runs. A NAD under the feet of a running
/// instance is never rewritten with another attachment (a new VLAN, bridge, MTU, addresses,
/// device): the pod keeps what it was attached with, and the next pod (a migration target, a
/// restart) would silently get something else. Such a network gets a NAD of its own instead,
/// and the VM's network names it (KubeVirt then moves the instance to it live, with its
/// `LiveUpdateNADRef` gate, or at a restart).
///
/// `running` maps a network to the NAD its running instance uses; `owned` maps every NAD this
/// Wukong owns to its attachment annotation (`None`: written by an older wukong, taken as the
/// current attachment). For each generated network the NAD is:
/// - the one the instance uses, when it is ours and has the spec's attachment;
/// - else, when the instance uses `<wukong>-<network>-nad`, the swapped name;
/// - else `<wukong>-<network>-nad` (nothing running uses it: it can be rewritten).
pub fn place(
    plan: &mut NetworkPlan<'_>,
    wukong: &Wukong,
    running: &BTreeMap<String, NadRef>,
    owned: &BTreeMap<String, Option<String>>,
) {
    let namespace = names::namespace_of(wukong);
    for net in &mut plan.networks {
        let Attachment::Generated(nad) = &net.attachment else { continue };
        let Some(current) = running.get(net.name()).filter(|c| c.namespace == namespace) else { continue };
        let Some(recorded) = owned.get(&current.name) else { continue };
        let attachment = nad::attachment(net);
        let [base, swapped] = nad_names(wukong, net);
        let name = if recorded.as_deref().is_none_or(|r| r == attachment) {
            current.name.clone()
        } else if current.name == base {
            swapped
        } else {
            base
        };
        if name != nad.name {
            net.attachment = Attachment::Generated(NadRef { namespace: namespace.to_string(), name });
        }
    }
}
