//! The CNI network configuration of a generated NAD (`spec.config`).
//!
//! Rendered from typed structs so the key order is fixed (cniVersion, name, type, then the
//! plugin's fields, then ipam) and the output is the same byte for byte on every run.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Serialize;
use wukong_api::{IpConfig, IpMode, NetworkSpec, NetworkType};

use crate::names;

/// The CNI spec version written into generated configs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CniVersion {
    /// A single-plugin config, as the seed writes it; understood by every plugin release.
    #[default]
    V0_3_1,
    /// A spec 1.0 network configuration list (`plugins: [...]`).
    V1_0_0,
}

impl CniVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V1_0_0 => "1.0.0",
        }
    }
}

impl FromStr for CniVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0.3.1" => Ok(CniVersion::V0_3_1),
            "1.0.0" => Ok(CniVersion::V1_0_0),
            other => Err(format!("unsupported CNI version {other:?}: use 0.3.1 or 1.0.0")),
        }
    }
}

#[derive(Serialize)]
struct Plugin<'a> {
    #[serde(rename = "cniVersion", skip_serializing_if = "Option::is_none")]
    cni_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(rename = "type")]
    type_: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtu: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spoofchk: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipam: Option<Ipam<'a>>,
    /// Plugins such as bridge report the config's top-level `dns` in their result (and drop what
    /// the IPAM plugin returned), so the servers are written here as well as under `ipam`.
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<Dns<'a>>,
}

#[derive(Serialize)]
struct ConfList<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    name: &'a str,
    plugins: [Plugin<'a>; 1],
}

#[derive(Serialize)]
struct Ipam<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<Address<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<Dns<'a>>,
}

#[derive(Serialize)]
struct Address<'a> {
    address: &'a str,
}

#[derive(Serialize)]
struct Route<'a> {
    dst: &'static str,
    gw: &'a str,
}

#[derive(Serialize)]
struct Dns<'a> {
    nameservers: &'a [String],
}

/// The CNI config of a secondary network whose NAD is named `nad_name` (the CNI network
/// `name` must equal the NAD name). `network` must be validated and not the pod network.
pub fn config(network: &NetworkSpec, nad_name: &str, version: CniVersion) -> String {
    let mut plugin = plugin(network);
    // Sized for a typical config up front: this runs for every network on every reconcile.
    let mut out = Vec::with_capacity(512);
    let written = match version {
        CniVersion::V0_3_1 => {
            plugin.cni_version = Some(version.as_str());
            plugin.name = Some(nad_name);
            serde_json::to_writer_pretty(&mut out, &plugin)
        }
        CniVersion::V1_0_0 => serde_json::to_writer_pretty(
            &mut out,
            &ConfList { cni_version: version.as_str(), name: nad_name, plugins: [plugin] },
        ),
    };
    written.expect("a CNI config serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The plugin of a network's config without its name and CNI version, as compact JSON: what a
/// pod is attached with ([`crate::nad::attachment`] hashes it).
pub fn plugin_bytes(network: &NetworkSpec) -> Vec<u8> {
    serde_json::to_vec(&plugin(network)).expect("a CNI plugin serializes")
}

fn plugin(network: &NetworkSpec) -> Plugin<'_> {
    let network_type = network.type_.unwrap_or(NetworkType::Bridge);
    let ipam = network.ip_config.as_ref().and_then(|ip| ipam(network_type, ip));
    let dns = ipam.as_ref().and_then(|i| i.dns.as_ref()).map(|d| Dns { nameservers: d.nameservers });
    let bridge = || Some(network.bridge_name.clone().unwrap_or_else(|| names::default_bridge_name(&network.name)));
    let mut plugin = Plugin {
        cni_version: None,
        name: None,
        type_: "bridge",
        bridge: None,
        vlan: None,
        mtu: None,
        spoofchk: None,
        trust: None,
        ipam,
        dns,
    };
    match network_type {
        NetworkType::Bridge | NetworkType::Ovs => {
            plugin.type_ = if network_type == NetworkType::Bridge { "bridge" } else { "ovs" };
            plugin.bridge = bridge();
            plugin.vlan = network.vlan_id;
            plugin.mtu = network.mtu;
        }
        NetworkType::Sriov => {
            plugin.type_ = "sriov";
            // 0 explicitly: otherwise sriov-cni leaves a VLAN already on the VF in place.
            plugin.vlan = Some(network.vlan_id.unwrap_or(0));
            plugin.spoofchk = Some("on");
            plugin.trust = Some("off");
        }
        NetworkType::Macvlan => {
            // A macvlan interface cannot be bridged to a guest; KubeVirt's macvtap CNI puts the
            // VM on the host interface instead (the device plugin picks the lower device).
            plugin.type_ = "macvtap";
            plugin.mtu = network.mtu;
            plugin.ipam = None;
            plugin.dns = None;
        }
    }
    plugin
}

fn ipam(network_type: NetworkType, ip: &IpConfig) -> Option<Ipam<'_>> {
    match ip.mode {
        // A VF bound to vfio cannot run the DHCP IPAM plugin; the guest asks DHCP itself.
        IpMode::Dhcp if network_type == NetworkType::Sriov => None,
        IpMode::Dhcp => Some(Ipam { type_: "dhcp", addresses: vec![], routes: vec![], dns: None }),
        IpMode::Static => {
            let address = ip.address.as_deref()?;
            let v6 = IpNet::from_str(address).map(|n| n.addr().is_ipv6()).unwrap_or(false);
            let routes = ip
                .gateway
                .as_deref()
                .filter(|gw| IpAddr::from_str(gw).is_ok())
                .map(|gw| vec![Route { dst: if v6 { "::/0" } else { "0.0.0.0/0" }, gw }])
                .unwrap_or_default();
            let dns = (!ip.dns_servers.is_empty()).then_some(Dns { nameservers: &ip.dns_servers });
            Some(Ipam { type_: "static", addresses: vec![Address { address }], routes, dns })
        }
    }
}
