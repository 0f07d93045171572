//! Every admission rule has a failing and a passing case, with the message asserted.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wukong_api::rules::RULES;

use super::*;

/// A valid Wukong every case starts from: one bridge network with a static address.
fn base() -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "vm1", "namespace": "ns1" },
        "spec": {
            "cpu": 2,
            "memory": "4Gi",
            "networks": [
                { "name": "mgmt", "type": "bridge", "vlanId": 100,
                  "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } }
            ],
            "disks": [ { "name": "system", "boot": true, "image": "docker://quay.io/containerdisks/ubuntu:22.04" } ]
        }
    })
}

/// `base()` with each JSON pointer set to its value (`null` removes the field).
fn with(edits: &[(&str, Value)]) -> Value {
    let mut v = base();
    for (pointer, value) in edits {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
        let parent = v.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent} in base"));
        match (parent, value) {
            (Value::Object(map), Value::Null) => {
                map.remove(key);
            }
            (Value::Object(map), value) => {
                map.insert(key.to_string(), value.clone());
            }
            (Value::Array(list), value) => {
                let i: usize = key.parse().expect("index");
                if i == list.len() { list.push(value.clone()) } else { list[i] = value.clone() }
            }
            _ => panic!("cannot edit {pointer}"),
        }
    }
    v
}

struct Case {
    rule: &'static str,
    bad: Vec<(&'static str, Value)>,
    good: Vec<(&'static str, Value)>,
    message: &'static str,
    field: &'static str,
    /// For a transition rule: the edits of `base()` that give the old object; `bad` and `good`
    /// are then updates from it.
    old: Option<Vec<(&'static str, Value)>>,
}

fn case(
    rule: &'static str,
    field: &'static str,
    message: &'static str,
    bad: Vec<(&'static str, Value)>,
    good: Vec<(&'static str, Value)>,
) -> Case {
    Case { rule, bad, good, message, field, old: None }
}

impl Case {
    /// Makes the case an update from `base()` with `old` edits (for transition rules).
    fn updating(mut self, old: Vec<(&'static str, Value)>) -> Self {
        self.old = Some(old);
        self
    }

    fn validate(&self, edits: &[(&'static str, Value)]) -> Result<Wukong, Invalid> {
        match &self.old {
            Some(old) => validate_object_update(&with(edits), Some(&with(old))),
            None => validate_object(&with(edits)),
        }
    }
}

fn net(v: Value) -> Vec<(&'static str, Value)> {
    vec![("/spec/networks/0", v)]
}

fn ip(v: Value) -> Vec<(&'static str, Value)> {
    vec![("/spec/networks/0/ipConfig", v)]
}

fn disk(v: Value) -> Vec<(&'static str, Value)> {
    vec![("/spec/disks/0", v)]
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "wukong.name",
            "",
            "metadata.name must be a DNS-1123 subdomain of at most 60 characters",
            vec![("/metadata/name", json!("Web_Server"))],
            // A dotted name, which the original operator's CRD admitted, works for KubeVirt.
            vec![("/metadata/name", json!("web.example"))],
        ),
        case(
            "spec.memory",
            "spec.memory",
            "memory must be a Kubernetes quantity such as 8Gi",
            vec![("/spec/memory", json!("4K"))],
            vec![("/spec/memory", json!("4k"))],
        ),
        case(
            "spec.memory-positive",
            "spec.memory",
            "memory must be more than 0",
            vec![("/spec/memory", json!("-1Gi"))],
            vec![("/spec/memory", json!("1.5Gi"))],
        ),
        case(
            "spec.ssh-key-secret",
            "spec.sshKeySecret",
            "sshKeySecret must be the name of a Secret",
            vec![("/spec/sshKeySecret", json!("My Keys"))],
            vec![("/spec/sshKeySecret", json!("vm-ssh-keys"))],
        ),
        case(
            "networks.unique-names",
            "spec",
            "networks[].name must be unique",
            vec![("/spec/networks/1", json!({"name": "mgmt", "type": "bridge", "bridgeName": "br1"}))],
            vec![("/spec/networks/1", json!({"name": "data", "type": "bridge", "bridgeName": "br1"}))],
        ),
        case(
            "networks.unique-macs",
            "spec",
            "networks[].macAddress must be unique",
            vec![
                ("/spec/networks/0/macAddress", json!("02:00:00:00:00:01")),
                ("/spec/networks/1", json!({"name": "data", "type": "bridge", "macAddress": "02:00:00:00:00:01"})),
            ],
            vec![
                ("/spec/networks/0/macAddress", json!("02:00:00:00:00:01")),
                ("/spec/networks/1", json!({"name": "data", "type": "bridge", "macAddress": "02:00:00:00:00:02"})),
            ],
        ),
        case(
            "networks.shared-bridge-vlan",
            "spec",
            "networks that share a bridgeName must use the same vlanId",
            vec![
                ("/spec/networks/0/bridgeName", json!("br0")),
                ("/spec/networks/1", json!({"name": "data", "type": "bridge", "bridgeName": "br0"})),
            ],
            vec![
                ("/spec/networks/0/bridgeName", json!("br0")),
                ("/spec/networks/1", json!({"name": "data", "type": "bridge", "bridgeName": "br0", "vlanId": 100})),
            ],
        ),
        case(
            "networks.shared-bridge-type",
            "spec.networks",
            "networks that share a bridgeName must have the same type",
            vec![
                ("/spec/networks/0/bridgeName", json!("br0")),
                ("/spec/networks/1", json!({"name": "data", "type": "ovs", "bridgeName": "br0", "vlanId": 100})),
            ],
            vec![
                ("/spec/networks/0/bridgeName", json!("br0")),
                ("/spec/networks/1", json!({"name": "data", "type": "ovs", "bridgeName": "br1", "vlanId": 100})),
            ],
        ),
        case(
            "networks.unique-addresses",
            "spec.networks",
            "networks[].ipConfig.address must be unique",
            vec![(
                "/spec/networks/1",
                json!({"name": "data", "type": "bridge", "ipConfig": {"mode": "static", "address": "192.168.100.10/16"}}),
            )],
            vec![(
                "/spec/networks/1",
                json!({"name": "data", "type": "bridge", "ipConfig": {"mode": "static", "address": "192.168.100.11/24"}}),
            )],
        ),
        case(
            "networks.unique-addresses",
            "spec.networks",
            "networks[].ipConfig.address must be unique",
            vec![
                ("/spec/networks/0/ipConfig", json!({"mode": "static", "address": "2001:db8::10/64"})),
                (
                    "/spec/networks/1",
                    json!({"name": "data", "type": "bridge", "ipConfig": {"mode": "static", "address": "2001:DB8:0::10/64"}}),
                ),
            ],
            vec![
                ("/spec/networks/0/ipConfig", json!({"mode": "static", "address": "2001:db8::10/64"})),
                (
                    "/spec/networks/1",
                    json!({"name": "data", "type": "bridge", "ipConfig": {"mode": "static", "address": "192.168.100.10/24"}}),
                ),
            ],
        ),
        case(
            "network.link-state-sriov",
            "spec.networks[1].linkState",
            "network \"data\": linkState is not supported on sriov networks",
            vec![(
                "/spec/networks/1",
                json!({"name": "data", "type": "sriov", "resourceName": "intel.com/vf", "linkState": "down"}),
            )],
            vec![
                ("/spec/networks/0/linkState", json!("down")),
                ("/spec/networks/1", json!({"name": "data", "type": "sriov", "resourceName": "intel.com/vf"})),
            ],
        ),
        case(
            "network.link-state-pod-network",
            "spec.networks[1].linkState",
            "linkState cannot be set on the pod network (default)",
            vec![("/spec/networks/1", json!({"name": "default", "linkState": "down"}))],
            vec![("/spec/networks/1", json!({"name": "default"}))],
        ),
        case(
            "disks.unique-names",
            "spec",
            "disks[].name must be unique",
            vec![("/spec/disks/1", json!({"name": "system", "size": "1Gi"}))],
            vec![("/spec/disks/1", json!({"name": "data", "size": "1Gi"}))],
        ),
        case(
            "disks.one-boot",
            "spec",
            "at most one disk may have boot: true",
            vec![("/spec/disks/1", json!({"name": "data", "size": "1Gi", "boot": true}))],
            vec![("/spec/disks/1", json!({"name": "data", "size": "1Gi", "boot": false}))],
        ),
        case(
            "disks.size-required",
            "spec",
            "disks[].size is required for a disk backed by a DataVolume",
            vec![("/spec/disks/1", json!({"name": "data", "storageClassName": "fast"}))],
            vec![("/spec/disks/1", json!({"name": "data", "storageClassName": "fast", "size": "10Gi"}))],
        ),
        case(
            "disks.size-required",
            "spec",
            "disks[].size is required for a disk backed by a DataVolume",
            disk(json!({"name": "system", "boot": true, "image": "https://images.example/ubuntu.qcow2"})),
            disk(
                json!({"name": "system", "boot": true, "image": "containerdisk://quay.io/containerdisks/ubuntu:22.04"}),
            ),
        ),
        case(
            "spec.os-image-without-disks",
            "spec.osImage",
            "an http(s) osImage needs a disk to import into",
            vec![("/spec/disks", Value::Null), ("/spec/osImage", json!("https://images.example/ubuntu.qcow2"))],
            vec![
                ("/spec/disks", Value::Null),
                ("/spec/osImage", json!("docker://quay.io/containerdisks/ubuntu:22.04")),
            ],
        ),
        case(
            "spec.os-image-scheme",
            "spec.osImage",
            "osImage must be a registry image such as quay.io/containerdisks/ubuntu:22.04 or a URL starting with docker://",
            vec![("/spec/osImage", json!("ftp://images.example/ubuntu.img"))],
            // A registry image without scheme, as the original operator took it.
            vec![("/spec/osImage", json!("registry.example.com/centos-stream:8"))],
        ),
        case(
            "network.name",
            "spec.networks[0].name",
            "networks[].name must be a DNS-1123 label",
            net(json!({"name": "Mgmt_1", "type": "bridge", "bridgeName": "br1"})),
            net(json!({"name": "mgmt-1", "type": "bridge"})),
        ),
        case(
            "network.type-required",
            "spec.networks[0].type",
            "network \"mgmt\": type is required on a secondary network",
            vec![("/spec/networks/0/type", Value::Null)],
            vec![],
        ),
        case(
            "network.default-is-pod-network",
            "spec.networks[0]",
            "network \"default\" is the pod network (masquerade): it takes no nadName",
            net(json!({"name": "default", "type": "bridge", "vlanId": 100})),
            // The original operator required a type on every network: accepted, and ignored.
            net(json!({"name": "default", "type": "bridge", "ipConfig": {"mode": "dhcp"}, "nadName": ""})),
        ),
        case(
            "network.vlan-type",
            "spec.networks[0].vlanId",
            "vlanId is only supported on bridge, ovs and sriov networks",
            net(json!({"name": "up", "type": "macvlan", "master": "eth1", "vlanId": 5})),
            // With nadName the NAD decides the VLAN: vlanId is ignored (a warning), as it was.
            net(json!({"name": "up", "type": "macvlan", "nadName": "up", "vlanId": 5})),
        ),
        case(
            "network.bridge-name-type",
            "spec.networks[0].bridgeName",
            "bridgeName is only used by bridge and ovs networks",
            net(json!({"name": "up", "type": "sriov", "resourceName": "intel.com/vf", "bridgeName": "br0"})),
            net(json!({"name": "up", "type": "sriov", "nadName": "up-sriov", "bridgeName": "br0"})),
        ),
        case(
            "network.default-bridge-name-length",
            "spec.networks[0]",
            "the default bridge name br-thirteenchars would exceed 15 characters",
            net(json!({"name": "thirteenchars", "type": "bridge"})),
            net(json!({"name": "twelve-chars", "type": "bridge"})),
        ),
        case(
            "network.macvlan-master",
            "spec.networks[0].master",
            "a macvlan network needs master",
            net(json!({"name": "up", "type": "macvlan"})),
            net(json!({"name": "up", "type": "macvlan", "master": "eth1"})),
        ),
        case(
            "network.master-type",
            "spec.networks[0].master",
            "master is only used by macvlan networks",
            vec![("/spec/networks/0/master", json!("eth1"))],
            vec![],
        ),
        case(
            "network.sriov-resource-name",
            "spec.networks[0].resourceName",
            "an sriov network needs resourceName",
            net(json!({"name": "fast", "type": "sriov"})),
            net(json!({"name": "fast", "type": "sriov", "nadName": "sriov-net"})),
        ),
        case(
            "network.resource-name-type",
            "spec.networks[0].resourceName",
            "resourceName is only used by sriov networks",
            vec![("/spec/networks/0/resourceName", json!("intel.com/vf"))],
            vec![],
        ),
        case(
            "network.mtu-type",
            "spec.networks[0].mtu",
            "mtu is not set per virtual function",
            net(json!({"name": "fast", "type": "sriov", "resourceName": "intel.com/vf", "mtu": 9000})),
            net(json!({"name": "fast", "type": "bridge", "mtu": 9000})),
        ),
        case(
            "network.mtu-ipv6",
            "spec.networks[0].mtu",
            "network \"mgmt\": mtu must be at least 1280 on a network with an IPv6 address",
            vec![
                ("/spec/networks/0/mtu", json!(1279)),
                ("/spec/networks/0/ipConfig", json!({"mode": "static", "address": "2001:db8::10/64"})),
            ],
            vec![
                ("/spec/networks/0/mtu", json!(1280)),
                ("/spec/networks/0/ipConfig", json!({"mode": "static", "address": "2001:db8::10/64"})),
            ],
        ),
        case(
            "network.mtu-ipv6",
            "spec.networks[0].mtu",
            "mtu must be at least 1280 on a network with an IPv6 address",
            vec![
                ("/spec/networks/0/mtu", json!(576)),
                ("/spec/networks/0/ipConfig", json!({"mode": "static", "address": "2001:db8::10/64"})),
            ],
            vec![("/spec/networks/0/mtu", json!(576))],
        ),
        case(
            "network.nad-name-excludes-generation",
            "spec.networks[0].nadName",
            "nadName uses an existing NetworkAttachmentDefinition as it is, so master, resourceName and mtu would be ignored",
            net(json!({"name": "lan", "type": "bridge", "nadName": "lan", "mtu": 9000})),
            // The original operator's fields are ignored with a warning; an empty nadName is none.
            net(json!({"name": "lan", "type": "bridge", "nadName": "lan", "vlanId": 10, "bridgeName": "br-lan"})),
        ),
        case(
            "network.nad-name-excludes-generation",
            "spec.networks[0].nadName",
            "nadName uses an existing NetworkAttachmentDefinition as it is",
            net(json!({"name": "lan", "type": "sriov", "nadName": "lan", "resourceName": "intel.com/vf"})),
            net(json!({"name": "lan", "type": "bridge", "nadName": "", "mtu": 9000})),
        ),
        case(
            "network.nad-name-format",
            "spec.networks[0].nadName",
            "nadName must be <name> or <namespace>/<name>",
            net(json!({"name": "lan", "type": "bridge", "nadName": "a/b/c"})),
            net(json!({"name": "lan", "type": "bridge", "nadName": "infra/lan.v1"})),
        ),
        case(
            "network.nad-name-format",
            "spec.networks[0].nadName",
            "nadName must be <name> or <namespace>/<name>",
            net(json!({"name": "lan", "type": "bridge", "nadName": format!("{}/lan", "n".repeat(64))})),
            net(json!({"name": "lan", "type": "bridge", "nadName": format!("{}/lan", "n".repeat(63))})),
        ),
        case(
            "network.bridge-name-length",
            "spec.networks[0].bridgeName",
            "bridgeName must be at most 15 characters",
            vec![("/spec/networks/0/bridgeName", json!("br-0123456789abc"))],
            vec![("/spec/networks/0/bridgeName", json!("br-0123456789ab"))],
        ),
        case(
            "network.bridge-name-format",
            "spec.networks[0].bridgeName",
            "bridgeName must be a Linux interface name",
            vec![("/spec/networks/0/bridgeName", json!("br/0"))],
            vec![("/spec/networks/0/bridgeName", json!("br_0.1-a"))],
        ),
        case(
            "network.master-length",
            "spec.networks[0].master",
            "master must be at most 15 characters",
            net(json!({"name": "up", "type": "macvlan", "master": "enp0s31f6-uplink"})),
            net(json!({"name": "up", "type": "macvlan", "master": "enp0s31f6.100"})),
        ),
        case(
            "network.master-format",
            "spec.networks[0].master",
            "master must be a Linux interface name",
            net(json!({"name": "up", "type": "macvlan", "master": "eth 1"})),
            net(json!({"name": "up", "type": "macvlan", "master": "bond0"})),
        ),
        case(
            "network.resource-name-format",
            "spec.networks[0].resourceName",
            "resourceName must be an extended resource name",
            net(json!({"name": "fast", "type": "sriov", "resourceName": "intel.com/sriov vfio"})),
            net(json!({"name": "fast", "type": "sriov", "resourceName": "intel.com/sriov_vfio"})),
        ),
        case(
            "network.mac-format",
            "spec.networks[0].macAddress",
            "macAddress must be six colon-separated hex bytes",
            vec![("/spec/networks/0/macAddress", json!("02-00-00-00-00-01"))],
            vec![("/spec/networks/0/macAddress", json!("02:AB:00:00:00:01"))],
        ),
        case(
            "network.mac-unicast",
            "spec.networks[0].macAddress",
            "macAddress is a multicast address",
            vec![("/spec/networks/0/macAddress", json!("03:00:00:00:00:01"))],
            vec![("/spec/networks/0/macAddress", json!("02:00:00:00:00:01"))],
        ),
        case(
            "network.mac-nonzero",
            "spec.networks[0].macAddress",
            "macAddress 00:00:00:00:00:00 is not a usable address",
            vec![("/spec/networks/0/macAddress", json!("00:00:00:00:00:00"))],
            vec![("/spec/networks/0/macAddress", json!("00:00:00:00:00:01"))],
        ),
        case(
            "network.mac-kubevirt-reserved",
            "spec.networks[0].macAddress",
            "macAddress 02:00:00:00:00:00 is reserved by KubeVirt",
            vec![("/spec/networks/0/macAddress", json!("02:00:00:00:00:00"))],
            vec![("/spec/networks/0/macAddress", json!("02:00:00:00:00:10"))],
        ),
        case(
            "ip.static-needs-address",
            "spec.networks[0].ipConfig.address",
            "ipConfig.address is required when mode is static",
            ip(json!({"mode": "static"})),
            ip(json!({"mode": "static", "address": "10.0.0.2/24"})),
        ),
        case(
            "ip.address-cidr",
            "spec.networks[0].ipConfig.address",
            "ipConfig.address must be an IP address with a prefix length",
            ip(json!({"mode": "static", "address": "192.168.100.10"})),
            ip(json!({"mode": "static", "address": "2001:db8::10/64"})),
        ),
        case(
            "ip.address-cidr",
            "spec.networks[0].ipConfig.address",
            "ipConfig.address must be an IP address with a prefix length",
            ip(json!({"mode": "static", "address": "192.168.100.300/24"})),
            ip(json!({"mode": "static", "address": "192.168.100.255/23"})),
        ),
        case(
            "ip.address-host",
            "spec.networks[0].ipConfig.address",
            "ipConfig.address is the subnet's network address",
            ip(json!({"mode": "static", "address": "192.168.100.0/24"})),
            ip(json!({"mode": "static", "address": "192.168.100.0/31"})),
        ),
        case(
            "ip.gateway-ip",
            "spec.networks[0].ipConfig.gateway",
            "ipConfig.gateway must be an IP address without prefix length",
            vec![("/spec/networks/0/ipConfig/gateway", json!("192.168.100.1/24"))],
            vec![],
        ),
        case(
            "ip.gateway-family",
            "spec.networks[0].ipConfig.gateway",
            "ipConfig.gateway and ipConfig.address must be of the same IP family",
            ip(json!({"mode": "static", "address": "2001:db8::10/64", "gateway": "192.168.100.1"})),
            ip(json!({"mode": "static", "address": "2001:db8::10/64", "gateway": "2001:db8::1"})),
        ),
        case(
            "ip.gateway-in-subnet",
            "spec.networks[0].ipConfig.gateway",
            "ipConfig.gateway 192.168.101.1 is not inside the subnet of ipConfig.address 192.168.100.10/24",
            vec![("/spec/networks/0/ipConfig/gateway", json!("192.168.101.1"))],
            vec![("/spec/networks/0/ipConfig/gateway", json!("192.168.100.254"))],
        ),
        case(
            "ip.gateway-not-address",
            "spec.networks[0].ipConfig.gateway",
            "ipConfig.gateway is the interface's own address",
            vec![("/spec/networks/0/ipConfig/gateway", json!("192.168.100.10"))],
            vec![],
        ),
        case(
            "ip.dns-servers-ip",
            "spec.networks[0].ipConfig.dnsServers",
            "ipConfig.dnsServers must be IP addresses",
            vec![("/spec/networks/0/ipConfig/dnsServers", json!(["8.8.8.8", "dns.google"]))],
            vec![("/spec/networks/0/ipConfig/dnsServers", json!(["8.8.8.8", "2001:4860:4860::8888"]))],
        ),
        case(
            "ip.dns-servers-unique",
            "spec.networks[0].ipConfig.dnsServers",
            "ipConfig.dnsServers must not list a server twice",
            vec![("/spec/networks/0/ipConfig/dnsServers", json!(["192.168.100.2", "8.8.8.8", "192.168.100.2"]))],
            vec![("/spec/networks/0/ipConfig/dnsServers", json!(["192.168.100.2", "192.168.100.3"]))],
        ),
        case(
            "ip.dns-servers-unique",
            "spec.networks[0].ipConfig.dnsServers",
            "ipConfig.dnsServers must not list a server twice",
            vec![("/spec/networks/0/ipConfig/dnsServers", json!(["2001:db8::53", "2001:DB8:0:0::53"]))],
            vec![("/spec/networks/0/ipConfig/dnsServers", json!(["2001:db8::53", "2001:db8::54"]))],
        ),
        case(
            "disk.name",
            "spec.disks[0].name",
            "disks[].name must be a DNS-1123 label",
            vec![("/spec/disks/0/name", json!("System"))],
            vec![],
        ),
        case(
            "disk.size",
            "spec.disks[0].size",
            "disks[].size must be a Kubernetes quantity",
            vec![("/spec/disks/0/size", json!("2048K"))],
            vec![("/spec/disks/0/size", json!("2048k"))],
        ),
        case(
            "disk.size-positive",
            "spec.disks[0].size",
            "disks[].size must be more than 0",
            vec![("/spec/disks/0/size", json!("0"))],
            vec![("/spec/disks/0/size", json!("20Gi"))],
        ),
        case(
            "disk.image-scheme",
            "spec.disks[0].image",
            "disks[].image must be a registry image such as quay.io/containerdisks/ubuntu:22.04 or a URL starting with docker://",
            vec![("/spec/disks/0/image", json!("quay.io/containerdisks/ubuntu 22.04"))],
            vec![("/spec/disks/0/image", json!("quay.io/containerdisks/ubuntu:22.04"))],
        ),
        case(
            "user.no-plain-password",
            "spec.cloudInitUser.password",
            "cloudInitUser.password is refused",
            vec![("/spec/cloudInitUser", json!({"name": "ubuntu", "password": "ubuntu123"}))],
            vec![("/spec/cloudInitUser", json!({"name": "ubuntu", "passwordHash": "$6$salt$hash"}))],
        ),
        case(
            "user.name",
            "spec.cloudInitUser.name",
            "cloudInitUser.name must be a Linux user name",
            vec![("/spec/cloudInitUser", json!({"name": "1root"}))],
            vec![("/spec/cloudInitUser", json!({"name": "_svc-1"}))],
        ),
        case(
            "toleration.operator",
            "spec.highAvailability.tolerations[0].operator",
            "tolerations[].operator must be Equal or Exists",
            vec![("/spec/highAvailability", json!({"tolerations": [{"key": "k", "operator": "In"}]}))],
            vec![("/spec/highAvailability", json!({"tolerations": [{"key": "k", "operator": "Exists"}]}))],
        ),
        case(
            "toleration.effect",
            "spec.highAvailability.tolerations[0].effect",
            "tolerations[].effect must be NoSchedule, PreferNoSchedule or NoExecute",
            vec![("/spec/highAvailability", json!({"tolerations": [{"key": "k", "effect": "NoRun"}]}))],
            vec![("/spec/highAvailability", json!({"tolerations": [{"key": "k", "effect": "NoExecute"}]}))],
        ),
        // ---- issue 7: disks and cloud-init ----
        case(
            "disk.name-reserved",
            "spec.disks[0].name",
            "disks[].name cloudinit is reserved for the cloud-init disk",
            vec![("/spec/disks/0/name", json!("cloudinit"))],
            vec![("/spec/disks/0/name", json!("cloud-init"))],
        ),
        case(
            "disks.size-no-shrink",
            "spec.disks",
            "disks[].size cannot shrink: a volume cannot be made smaller; disk \"data\": keep 20Gi or more",
            vec![("/spec/disks/1", json!({"name": "data", "size": "19Gi"}))],
            vec![("/spec/disks/1", json!({"name": "data", "size": "20480Mi"}))],
        )
        .updating(vec![("/spec/disks/1", json!({"name": "data", "size": "20Gi"}))]),
        // Disks are paired by name, not by position.
        case(
            "disks.size-no-shrink",
            "spec.disks",
            "disk \"data\": keep 1Ti or more",
            vec![
                ("/spec/disks/0", json!({"name": "data", "size": "1000Gi"})),
                (
                    "/spec/disks/1",
                    json!({"name": "system", "boot": true, "image": "docker://quay.io/containerdisks/ubuntu:22.04"}),
                ),
            ],
            vec![
                ("/spec/disks/0", json!({"name": "data", "size": "2Ti"})),
                (
                    "/spec/disks/1",
                    json!({"name": "system", "boot": true, "image": "docker://quay.io/containerdisks/ubuntu:22.04"}),
                ),
            ],
        )
        .updating(vec![("/spec/disks/1", json!({"name": "data", "size": "1Ti"}))]),
    ]
}

fn messages(result: Result<Wukong, Invalid>) -> Vec<FieldError> {
    match result {
        Ok(_) => vec![],
        Err(invalid) => invalid.errors,
    }
}

#[test]
fn the_base_manifest_is_valid() {
    assert_eq!(messages(validate_object(&base())), vec![]);
}

#[test]
fn every_rule_refuses_its_failing_case_and_admits_its_passing_case() {
    for c in cases() {
        let bad = messages(c.validate(&c.bad));
        assert!(
            bad.iter().any(|e| e.field == c.field && e.detail.contains(c.message)),
            "rule {}: expected {:?} at {:?}, got {bad:#?}",
            c.rule,
            c.message,
            c.field
        );
        let good = messages(c.validate(&c.good));
        assert_eq!(good, vec![], "rule {}: the passing case was refused", c.rule);
    }
}

#[test]
fn every_rule_of_the_crd_has_a_case() {
    let covered: BTreeSet<&str> = cases().iter().map(|c| c.rule).collect();
    let missing: Vec<&str> = RULES.iter().map(|r| r.id).filter(|id| !covered.contains(id)).collect();
    assert_eq!(missing, Vec::<&str>::new(), "rules without a failing and a passing case");
}

#[test]
fn rule_ids_are_unique() {
    let mut seen = BTreeSet::new();
    for r in RULES {
        assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
    }
}

#[test]
fn cel_errors_name_the_field_in_the_api_servers_words() {
    let errors = messages(validate_object(&with(&ip(json!({"mode": "static"})))));
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            "spec.networks[0].ipConfig.address: Invalid value: \"object\": ipConfig.address is required when mode is static: set it in CIDR form, e.g. 192.168.100.10/24"
        ]
    );
}

#[test]
fn openapi_bounds_are_checked_before_cel() {
    let errors = messages(validate_object(&with(&[("/spec/cpu", json!(65))])));
    assert_eq!(
        errors,
        vec![FieldError::new(
            "spec.cpu",
            "Invalid value: 65: spec.cpu in body should be less than or equal to 64".into()
        )]
    );
    let errors = messages(validate_object(&with(&[("/spec/cpu", json!(0))])));
    assert_eq!(
        errors,
        vec![FieldError::new(
            "spec.cpu",
            "Invalid value: 0: spec.cpu in body should be greater than or equal to 1".into()
        )]
    );
    let errors = messages(validate_object(&with(&[("/spec/networks/0/vlanId", json!(4095))])));
    assert_eq!(
        errors,
        vec![FieldError::new(
            "spec.networks[0].vlanId",
            "Invalid value: 4095: spec.networks[0].vlanId in body should be less than or equal to 4094".into()
        )]
    );
}

#[test]
fn blocking_schema_errors_stop_cel_as_the_api_server_does() {
    // A missing required field and an unknown enum value block CEL; the (also broken) static
    // address rule is then not reported.
    let errors = messages(validate_object(&with(&[
        ("/spec/cpu", Value::Null),
        ("/spec/networks/0/type", json!("vxlan")),
        ("/spec/networks/0/ipConfig/address", Value::Null),
    ])));
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        vec![
            "spec.cpu: Required value".to_string(),
            "spec.networks[0].type: Unsupported value: \"vxlan\": supported values: \"bridge\", \"ovs\", \"macvlan\", \"sriov\"".to_string(),
            BLOCKED.to_string(),
        ]
    );
}

#[test]
fn wrong_types_are_refused_and_unknown_fields_alone() {
    let errors = messages(validate_object(&with(&[("/spec/cpu", json!("two"))])));
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        vec![
            "spec.cpu: Invalid value: \"string\": spec.cpu in body must be of type integer: \"string\"".to_string(),
            BLOCKED.to_string(),
        ]
    );
    // Strict decoding refuses an unknown field before any validation: it is all that is said.
    let errors =
        messages(validate_object(&with(&[("/spec/cpu", json!("two")), ("/spec/networks/0/vlan", json!(100))])));
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text, vec!["unknown field \"spec.networks[0].vlan\"".to_string()]);
}

#[test]
fn too_long_strings_and_too_many_items_are_refused() {
    let many: Vec<Value> = (0..17).map(|i| json!({"name": format!("n{i}"), "type": "bridge"})).collect();
    let errors = messages(validate_object(&with(&[("/spec/networks", json!(many))])));
    assert!(
        errors.iter().any(|e| e.to_string() == "spec.networks: Too many: 17: must have at most 16 items"),
        "{errors:#?}"
    );
    let errors = messages(validate_object(&with(&[("/spec/networks/0/name", json!("n".repeat(64)))])));
    assert!(
        errors.iter().any(|e| e.to_string() == "spec.networks[0].name: Too long: may not be more than 63 bytes"),
        "{errors:#?}"
    );
}

#[test]
fn derived_macs_never_collide_with_a_given_one() {
    // The MAC wukong would derive for "data" is given to "mgmt" by hand.
    let derived = crate::mac::derive("ns1", "vm1", "data").to_string();
    let errors = messages(validate_object(&with(&[
        ("/spec/networks/0/macAddress", json!(derived)),
        ("/spec/networks/1", json!({"name": "data", "type": "bridge"})),
    ])));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, "spec.networks[1].macAddress");
    assert!(errors[0].detail.contains("networks \"mgmt\" and \"data\" would share MAC"), "{errors:#?}");
}

#[test]
fn names_longer_than_60_are_refused_because_the_vm_adds_a_suffix() {
    // As at the API server: the schema's maxLength blocks the CEL rules.
    let errors = messages(validate_object(&with(&[("/metadata/name", json!("a".repeat(61)))])));
    assert_eq!(
        errors,
        vec![
            FieldError::new("metadata.name", "Too long: may not be more than 60 bytes".into()),
            FieldError::new("", BLOCKED.into())
        ]
    );
    assert_eq!(messages(validate_object(&with(&[("/metadata/name", json!("a".repeat(60)))]))), vec![]);
}

#[test]
fn a_name_that_is_no_dns_subdomain_gets_the_api_servers_own_line_too() {
    let errors = messages(validate_object(&with(&[("/metadata/name", json!("Web_Server"))])));
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        vec![
            r#"metadata.name: Invalid value: "Web_Server": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
            "Invalid value: \"object\": metadata.name must be a DNS-1123 subdomain of at most 60 characters, because the VM is named <name>-vm: use lowercase letters, digits, '-' and '.'",
        ]
    );
}

#[test]
fn transition_rules_apply_to_updates_only() {
    let old = with(&[("/spec/disks/1", json!({"name": "data", "size": "20Gi"}))]);
    let shrunk = with(&[("/spec/disks/1", json!({"name": "data", "size": "10Gi"}))]);
    assert_eq!(messages(validate_object(&shrunk)), vec![], "a create has no old size to keep");
    let errors = messages(validate_object_update(&shrunk, Some(&old)));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, "spec.disks");
    assert!(errors[0].detail.starts_with("Invalid value: \"object\": disks[].size cannot shrink"), "{errors:#?}");
    // An unchanged spec is always a valid update.
    assert_eq!(messages(validate_object_update(&old, Some(&old))), vec![]);
}

#[test]
fn the_networks_of_a_running_vm_may_be_removed_renamed_and_retyped() {
    // KubeVirt hot-unplugs a removed bridge interface and applies every other change at a
    // restart, which status and `wukong render --diff` announce: admission refuses none.
    let old = with(&[("/spec/networks/1", json!({"name": "data", "type": "bridge"}))]);
    for new in [
        with(&[("/spec/networks/1", json!({"name": "data2", "type": "bridge"}))]),
        with(&[("/spec/networks/1", json!({"name": "data", "type": "sriov", "resourceName": "intel.com/vf"}))]),
        with(&[("/spec/networks", json!([]))]),
    ] {
        assert_eq!(messages(validate_object_update(&new, Some(&old))), vec![], "{new}");
    }
}

#[test]
fn an_update_is_not_refused_for_what_it_leaves_unchanged_as_the_api_server_ratchets() {
    // Stored under older, looser rules: a static network without address, a too-long bridge name.
    let old = with(&[
        ("/spec/networks/0/ipConfig/address", Value::Null),
        ("/spec/networks/1", json!({"name": "data", "type": "bridge", "bridgeName": "br-0123456789abc"})),
    ]);
    assert_eq!(messages(validate_object(&old)).len(), 2);
    let mut new = old.clone();
    new["spec"]["cpu"] = json!(4);
    assert_eq!(messages(validate_object_update(&new, Some(&old))), vec![], "only cpu changed");
    // The network list reordered: items are paired by name, not by index.
    new["spec"]["networks"].as_array_mut().unwrap().reverse();
    assert_eq!(messages(validate_object_update(&new, Some(&old))), vec![]);
    // Ratcheting is per node: a change beside the ipConfig leaves its rules ratcheted ...
    new["spec"]["networks"][1]["vlanId"] = json!(101);
    assert_eq!(messages(validate_object_update(&new, Some(&old))), vec![]);
    // ... a change inside checks it again, while the untouched bridge name still is not.
    new["spec"]["networks"][1]["ipConfig"]["dnsServers"] = json!(["192.168.100.2"]);
    let errors = messages(validate_object_update(&new, Some(&old)));
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.networks[1].ipConfig.address"], "{errors:#?}");
}

#[test]
fn a_given_mac_may_not_be_the_one_derived_for_the_pod_interface() {
    let pod = crate::mac::derive("ns1", "vm1", "default").to_string();
    let errors = messages(validate_object(&with(&[("/spec/networks/0/macAddress", json!(pod))])));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].detail.contains("networks \"default\" and \"mgmt\" would share MAC"), "{errors:#?}");
}

#[test]
fn the_pod_interfaces_derived_mac_is_free_when_no_network_data_is_written() {
    // Without ipConfig anywhere, cloud-init writes no network data and the pod interface keeps
    // KubeVirt's MAC: the derived one is not used, so a network may carry it.
    let pod = crate::mac::derive("ns1", "vm1", "default").to_string();
    let valid = validate_object(&with(&[
        ("/spec/networks/0/macAddress", json!(pod)),
        ("/spec/networks/0/ipConfig", Value::Null),
    ]));
    assert!(valid.is_ok(), "{valid:?}");
}

#[test]
fn the_envelope_must_be_a_wukong() {
    let mut v = base();
    v["kind"] = json!("VirtualMachine");
    let errors = messages(validate_object(&v));
    assert_eq!(errors[0].to_string(), "kind: Invalid value: \"VirtualMachine\": must be Wukong", "{errors:#?}");
}

#[test]
fn the_error_names_the_wukong() {
    let err = validate_object(&with(&ip(json!({"mode": "static"})))).unwrap_err();
    assert!(err.to_string().starts_with("Wukong ns1/vm1 is invalid:"), "{err}");
}

#[test]
fn empty_strings_of_the_original_operators_optional_fields_mean_not_set() {
    // Its Go types wrote these fields `omitempty`: an empty string was no value.
    let w = validate_object(&with(&[
        ("/spec/osImage", json!("")),
        ("/spec/sshKeySecret", json!("")),
        ("/spec/networks/0/nadName", json!("")),
        ("/spec/networks/0/bridgeName", json!("")),
        ("/spec/disks/0", json!({"name": "system", "boot": true, "image": "", "size": "20Gi"})),
        ("/spec/cloudInitUser", json!({"name": "ubuntu", "password": "", "passwordHash": "", "shell": ""})),
    ]))
    .expect("accepted");
    let (spec, net) = (&w.spec, &w.spec.networks[0]);
    assert_eq!((&spec.os_image, &spec.ssh_key_secret, &spec.disks[0].image), (&None, &None, &None));
    assert_eq!((&net.nad_name, &net.bridge_name), (&None, &None));
    let user = spec.cloud_init_user.as_ref().unwrap();
    // An empty hash is no hash: never a password-less login.
    assert_eq!((&user.password, &user.password_hash, &user.shell), (&None, &None, &None));
    let user_data = crate::cloudinit::user_data(&w);
    assert!(!user_data.contains(" passwd:") && user_data.contains("lock_passwd: true"), "{user_data}");
    assert!(user_data.contains("\"/bin/bash\""), "{user_data}");
}

#[test]
fn metadata_of_the_wrong_type_is_refused_in_the_api_servers_words_before_anything_else() {
    let mut v = with(&[("/spec/cpu", json!("two"))]);
    v["metadata"]["labels"] = json!({ "app": "db", "tier": 5 });
    let errors = messages(validate_object(&v));
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text, ["json: cannot unmarshal number into Go struct field ObjectMeta.labels of type string"]);
    v["metadata"]["finalizers"] = json!("x");
    let errors = messages(validate_object(&v));
    assert_eq!(
        errors[0].detail,
        "json: cannot unmarshal string into Go struct field ObjectMeta.finalizers of type []string"
    );
}
