//! The admission rules of the Wukong API, as CEL, in one table.
//!
//! This table is the single source of truth: [`crate::crd::crd`] writes every rule into the CRD
//! (`x-kubernetes-validations`), so the API server enforces it at admission, and the offline
//! validator evaluates the very same CRD schema with kube's client-side CEL. Each rule's message
//! names the field and says how to fix it.
//!
//! Rules are guarded (`!has(..) || ..`, `isCIDR(..) && ..`) so a rule only speaks about its own
//! concern and never errors at evaluation time on input another rule already refuses.

/// One CEL rule and where in the schema it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CelRule {
    /// Stable identifier, used by tests and docs.
    pub id: &'static str,
    /// Schema node the rule is attached to: `` (the object), `spec`, `spec.networks[]`,
    /// `spec.networks[].ipConfig`, ... (`[]` steps into list items).
    pub at: &'static str,
    /// The CEL expression; `self` is the value at `at`.
    pub rule: &'static str,
    /// Message when the rule fails (also the fallback of `message_expression`).
    pub message: &'static str,
    /// A CEL string expression that gives a more specific message (names the network, ...).
    pub message_expression: Option<&'static str>,
    /// Field the error points at, relative to `at` (e.g. `.type`).
    pub field_path: Option<&'static str>,
}

const fn rule(id: &'static str, at: &'static str, rule: &'static str, message: &'static str) -> CelRule {
    CelRule { id, at, rule, message, message_expression: None, field_path: None }
}

impl CelRule {
    const fn msg_expr(mut self, expr: &'static str) -> Self {
        self.message_expression = Some(expr);
        self
    }
    const fn field(mut self, path: &'static str) -> Self {
        self.field_path = Some(path);
        self
    }
}

/// The shape of a quantity, as a CEL regex literal: sign, at most 12 digits and 6 decimals, then
/// a binary suffix (Ki..Ei), a decimal one (n, u, m, k, M, G, T, P, E) or a one-digit exponent.
/// Every string of this shape that Go's `resource.ParseQuantity` accepts, kube's client-side
/// CEL accepts too (its quantities are 128-bit), so `render` and the API server agree.
macro_rules! quantity_shape {
    () => {
        r"^[+-]?([0-9]{1,12}(\\.[0-9]{0,6})?|\\.[0-9]{1,6})([eE][+-]?[0-9]|[KMGTPE]i|[numkMGTPE])?$"
    };
}

/// Every admission rule of `vm.novasphere.dev/v1alpha1` `Wukong`.
pub const RULES: &[CelRule] = &[
    // ---- the object --------------------------------------------------------------------
    rule(
        "wukong.name",
        "",
        "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
        "metadata.name must be a DNS-1123 subdomain of at most 60 characters, because the VM is named <name>-vm: use lowercase letters, digits, '-' and '.'",
    ),
    // ---- spec --------------------------------------------------------------------------
    rule(
        "spec.memory",
        "spec.memory",
        // isQuantity is the API server's own parser; the shape keeps to what every quantity
        // parser agrees on (kube's client-side CEL included): a number of bounded size, no
        // spaces, and one suffix. `4K` is no quantity (`4k` and `4Ki` are).
        concat!("isQuantity(self) && self.matches('", quantity_shape!(), "')"),
        "memory must be a Kubernetes quantity such as 8Gi or 512Mi (suffixes Ki, Mi, Gi, Ti or k, M, G, T; 4K is not a quantity, 4k and 4Ki are)",
    ),
    rule(
        "spec.memory-positive",
        "spec.memory",
        concat!("!isQuantity(self) || !self.matches('", quantity_shape!(), "') || quantity(self).isGreaterThan(quantity('0'))"),
        "memory must be more than 0, e.g. 8Gi",
    ),
    rule(
        "spec.ssh-key-secret",
        "spec.sshKeySecret",
        "self == '' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
        "sshKeySecret must be the name of a Secret in the Wukong's namespace (a DNS-1123 subdomain such as vm-ssh-keys)",
    ),
    rule(
        "networks.unique-names",
        "spec",
        "!has(self.networks) || self.networks.all(a, self.networks.exists_one(b, b.name == a.name))",
        "networks[].name must be unique: give every network its own name",
    ),
    rule(
        "networks.unique-macs",
        "spec",
        "!has(self.networks) || self.networks.all(a, !has(a.macAddress) || self.networks.exists_one(b, has(b.macAddress) && b.macAddress.lowerAscii() == a.macAddress.lowerAscii()))",
        "networks[].macAddress must be unique: two interfaces of one VM cannot share a MAC address",
    ),
    rule(
        "networks.shared-bridge-vlan",
        "spec",
        "!has(self.networks) || self.networks.all(a, self.networks.all(b, a.name == b.name || !has(a.bridgeName) || !has(b.bridgeName) || a.bridgeName == '' || a.bridgeName != b.bridgeName || (has(a.vlanId) ? a.vlanId : 0) == (has(b.vlanId) ? b.vlanId : 0)))",
        "networks that share a bridgeName must use the same vlanId (or none): the bridge CNI turns VLAN filtering on per bridge, so a mix leaves one network untagged; give each VLAN its own bridgeName",
    ),
    rule(
        "networks.shared-bridge-type",
        "spec",
        "!has(self.networks) || self.networks.all(a, self.networks.all(b, a.name == b.name || !has(a.bridgeName) || !has(b.bridgeName) || a.bridgeName == '' || a.bridgeName != b.bridgeName || !has(a.type) || !has(b.type) || a.type == b.type))",
        "networks that share a bridgeName must have the same type: a Linux bridge (bridge) and an Open vSwitch bridge (ovs) cannot have the same name on a node; give each its own bridgeName",
    )
    .field(".networks"),
    rule(
        "networks.unique-addresses",
        "spec",
        // IPs are compared through containsIP on a host prefix (see ip.address-host).
        "!has(self.networks) || self.networks.all(a, !has(a.ipConfig) || !has(a.ipConfig.address) || !isCIDR(a.ipConfig.address) || self.networks.filter(b, has(b.ipConfig) && has(b.ipConfig.address) && isCIDR(b.ipConfig.address) && cidr(b.ipConfig.address).ip().family() == cidr(a.ipConfig.address).ip().family() && cidr(a.ipConfig.address.split('/')[0] + (cidr(a.ipConfig.address).ip().family() == 4 ? '/32' : '/128')).containsIP(cidr(b.ipConfig.address).ip())).size() == 1)",
        "networks[].ipConfig.address must be unique: two interfaces of one VM cannot have the same IP address; give each network its own address",
    )
    .field(".networks"),
    // No transition rule keeps the networks of a running VM (issue 15): a network added to a
    // running VM is hot-plugged, a removed bridge network hot-unplugged (interface state
    // absent), and every other change (a removed SR-IOV or macvtap interface, a new binding or
    // MAC, a new NAD without KubeVirt's LiveUpdateNADRef) waits for a restart, which the status
    // and `wukong render --diff` say in advance. The generated NAD of a network stays while the
    // running instance lists it, so nothing the guest uses is orphaned.
    rule(
        "disks.unique-names",
        "spec",
        "!has(self.disks) || self.disks.all(a, self.disks.exists_one(b, b.name == a.name))",
        "disks[].name must be unique: give every disk its own name",
    ),
    rule(
        "disks.one-boot",
        "spec",
        "!has(self.disks) || self.disks.filter(d, has(d.boot) && d.boot).size() <= 1",
        "at most one disk may have boot: true",
    ),
    rule(
        "disks.size-required",
        "spec",
        "!has(self.disks) || self.disks.all(d, has(d.size) || (has(d.image) && d.image != '' ? d.image : (has(d.boot) && d.boot && has(self.osImage) ? self.osImage : '')).startsWith('containerdisk://') || (((has(d.image) && d.image != '' ? d.image : (has(d.boot) && d.boot && has(self.osImage) ? self.osImage : '')).startsWith('docker://') || ((has(d.image) && d.image != '' ? d.image : (has(d.boot) && d.boot && has(self.osImage) ? self.osImage : '')) != '' && !(has(d.image) && d.image != '' ? d.image : (has(d.boot) && d.boot && has(self.osImage) ? self.osImage : '')).contains('://'))) && !has(d.storageClassName)))",
        "disks[].size is required for a disk backed by a DataVolume (a disk without image, an http(s) image, or a registry image (docker:// or no scheme) with storageClassName): set size, e.g. 20Gi",
    ),
    rule(
        "spec.os-image-without-disks",
        "spec",
        "has(self.disks) || !has(self.osImage) || self.osImage == '' || self.osImage.startsWith('docker://') || self.osImage.startsWith('containerdisk://') || !self.osImage.contains('://')",
        "an http(s) osImage needs a disk to import into: list the boot disk in disks[] with image, size and storageClassName",
    )
    .field(".osImage"),
    rule(
        "spec.os-image-scheme",
        "spec.osImage",
        "self == '' || self.matches('^(docker|containerdisk|http|https)://[^ ]+$') || (!self.contains('://') && self.matches('^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$'))",
        "osImage must be a registry image such as quay.io/containerdisks/ubuntu:22.04 or a URL starting with docker://, containerdisk://, http:// or https:// (e.g. docker://quay.io/containerdisks/ubuntu:22.04)",
    ),
    // ---- networks[] --------------------------------------------------------------------
    rule(
        "network.name",
        "spec.networks[].name",
        "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "networks[].name must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. mgmt)",
    ),
    rule(
        "network.type-required",
        "spec.networks[]",
        "self.name == 'default' || has(self.type)",
        "type is required on a secondary network: set it to bridge, ovs, macvlan or sriov",
    )
    .msg_expr("'network \"' + self.name + '\": type is required on a secondary network: set it to bridge, ovs, macvlan or sriov'")
    .field(".type"),
    rule(
        "network.default-is-pod-network",
        "spec.networks[]",
        "self.name != 'default' || (!(has(self.nadName) && self.nadName != '') && !has(self.vlanId) && !(has(self.bridgeName) && self.bridgeName != '') && !has(self.master) && !has(self.resourceName) && !has(self.mtu) && !has(self.macAddress))",
        "network \"default\" is the pod network (masquerade): it takes no nadName, vlanId, bridgeName, master, resourceName, mtu or macAddress (its type and ipConfig are ignored); to attach a NAD, a bridge or a VLAN, give the network another name, e.g. lan",
    ),
    rule(
        "network.vlan-type",
        "spec.networks[]",
        "!has(self.vlanId) || !has(self.type) || (has(self.nadName) && self.nadName != '') || self.type in ['bridge', 'ovs', 'sriov']",
        "vlanId is only supported on bridge, ovs and sriov networks: a macvlan network cannot tag; remove vlanId and use a VLAN interface of the host as master",
    )
    .msg_expr("'network \"' + self.name + '\": vlanId is only supported on bridge, ovs and sriov networks: a macvlan network cannot tag; remove vlanId and use a VLAN interface of the host as master'")
    .field(".vlanId"),
    rule(
        "network.bridge-name-type",
        "spec.networks[]",
        "!has(self.bridgeName) || self.bridgeName == '' || !has(self.type) || (has(self.nadName) && self.nadName != '') || self.type in ['bridge', 'ovs']",
        "bridgeName is only used by bridge and ovs networks: remove it",
    )
    .msg_expr("'network \"' + self.name + '\": bridgeName is only used by bridge and ovs networks: remove it'")
    .field(".bridgeName"),
    rule(
        "network.default-bridge-name-length",
        "spec.networks[]",
        "!has(self.type) || !(self.type in ['bridge', 'ovs']) || (has(self.bridgeName) && self.bridgeName != '') || (has(self.nadName) && self.nadName != '') || size(self.name) <= 12",
        "the default bridge name br-<network name> would exceed 15 characters (Linux IFNAMSIZ): set bridgeName, or use a network name of at most 12 characters",
    )
    .msg_expr("'network \"' + self.name + '\": the default bridge name br-' + self.name + ' would exceed 15 characters (Linux IFNAMSIZ): set bridgeName, or use a network name of at most 12 characters'"),
    rule(
        "network.macvlan-master",
        "spec.networks[]",
        "!has(self.type) || self.type != 'macvlan' || (has(self.nadName) && self.nadName != '') || has(self.master)",
        "a macvlan network needs master: set master to the host interface the VM is put on (e.g. eth1)",
    )
    .msg_expr("'network \"' + self.name + '\": a macvlan network needs master: set master to the host interface the VM is put on (e.g. eth1)'")
    .field(".master"),
    rule(
        "network.master-type",
        "spec.networks[]",
        "!has(self.master) || !has(self.type) || self.type == 'macvlan'",
        "master is only used by macvlan networks: remove it",
    )
    .msg_expr("'network \"' + self.name + '\": master is only used by macvlan networks: remove it'")
    .field(".master"),
    rule(
        "network.sriov-resource-name",
        "spec.networks[]",
        "!has(self.type) || self.type != 'sriov' || (has(self.nadName) && self.nadName != '') || has(self.resourceName)",
        "an sriov network needs resourceName: set it to the device-plugin resource of the virtual functions (e.g. intel.com/sriov_vfio)",
    )
    .msg_expr("'network \"' + self.name + '\": an sriov network needs resourceName: set it to the device-plugin resource of the virtual functions (e.g. intel.com/sriov_vfio)'")
    .field(".resourceName"),
    rule(
        "network.resource-name-type",
        "spec.networks[]",
        "!has(self.resourceName) || !has(self.type) || self.type == 'sriov'",
        "resourceName is only used by sriov networks: remove it",
    )
    .msg_expr("'network \"' + self.name + '\": resourceName is only used by sriov networks: remove it'")
    .field(".resourceName"),
    rule(
        "network.mtu-type",
        "spec.networks[]",
        "!has(self.mtu) || !has(self.type) || self.type != 'sriov'",
        "mtu is not set per virtual function: set the MTU on the SR-IOV physical function and remove mtu",
    )
    .msg_expr("'network \"' + self.name + '\": mtu is not set per virtual function: set the MTU on the SR-IOV physical function and remove mtu'")
    .field(".mtu"),
    rule(
        "network.mtu-ipv6",
        "spec.networks[]",
        "!has(self.mtu) || !has(self.ipConfig) || !has(self.ipConfig.address) || !isCIDR(self.ipConfig.address) || cidr(self.ipConfig.address).ip().family() != 6 || self.mtu >= 1280",
        "mtu must be at least 1280 on a network with an IPv6 address (the minimum MTU of IPv6, RFC 8200): raise mtu to 1280 or more, or remove it",
    )
    .msg_expr("'network \"' + self.name + '\": mtu must be at least 1280 on a network with an IPv6 address (the minimum MTU of IPv6, RFC 8200): raise mtu to 1280 or more, or remove it'")
    .field(".mtu"),
    rule(
        "network.link-state-sriov",
        "spec.networks[]",
        "!has(self.linkState) || !has(self.type) || self.type != 'sriov'",
        "linkState is not supported on sriov networks: KubeVirt cannot set the link of a passed-through virtual function; remove linkState",
    )
    .msg_expr("'network \"' + self.name + '\": linkState is not supported on sriov networks: KubeVirt cannot set the link of a passed-through virtual function; remove linkState'")
    .field(".linkState"),
    rule(
        "network.link-state-pod-network",
        "spec.networks[]",
        "self.name != 'default' || !has(self.linkState)",
        "linkState cannot be set on the pod network (default): a down primary interface fails the VM's health probes and its masquerade traffic; remove linkState",
    )
    .field(".linkState"),
    rule(
        "network.nad-name-excludes-generation",
        "spec.networks[]",
        "!(has(self.nadName) && self.nadName != '') || (!has(self.master) && !has(self.resourceName) && !has(self.mtu))",
        "nadName uses an existing NetworkAttachmentDefinition as it is, so master, resourceName and mtu would be ignored: remove them, or remove nadName to let wukong generate the NAD",
    )
    .msg_expr("'network \"' + self.name + '\": nadName uses an existing NetworkAttachmentDefinition as it is, so master, resourceName and mtu would be ignored: remove them, or remove nadName to let wukong generate the NAD'")
    .field(".nadName"),
    rule(
        "network.nad-name-format",
        "spec.networks[].nadName",
        "self == '' || self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$') && size(self) - (self.contains('/') ? self.indexOf('/') + 1 : 0) <= 253",
        "nadName must be <name> or <namespace>/<name> of a NetworkAttachmentDefinition (DNS-1123 names, e.g. vlan100 or infra/vlan100)",
    ),
    rule(
        "network.bridge-name-length",
        "spec.networks[].bridgeName",
        "size(self) <= 15",
        "bridgeName must be at most 15 characters (Linux IFNAMSIZ): use a shorter name such as br-mgmt",
    ),
    rule(
        "network.bridge-name-format",
        "spec.networks[].bridgeName",
        "self == '' || self.matches('^[A-Za-z0-9][A-Za-z0-9_.-]*$')",
        "bridgeName must be a Linux interface name: letters, digits, '_', '.' and '-', starting with a letter or digit",
    ),
    rule(
        "network.master-length",
        "spec.networks[].master",
        "size(self) <= 15",
        "master must be at most 15 characters (Linux IFNAMSIZ): name the host interface, e.g. eth1 or bond0.100",
    ),
    rule(
        "network.master-format",
        "spec.networks[].master",
        "self.matches('^[A-Za-z0-9][A-Za-z0-9_.-]*$')",
        "master must be a Linux interface name: letters, digits, '_', '.' and '-', starting with a letter or digit",
    ),
    rule(
        "network.resource-name-format",
        "spec.networks[].resourceName",
        "self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')",
        "resourceName must be an extended resource name such as intel.com/sriov_vfio",
    ),
    rule(
        "network.mac-format",
        "spec.networks[].macAddress",
        "self.matches('^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$')",
        "macAddress must be six colon-separated hex bytes, e.g. 02:00:00:00:00:01",
    ),
    rule(
        "network.mac-unicast",
        "spec.networks[].macAddress",
        "!self.matches('^[0-9a-fA-F][13579bdfBDF]')",
        "macAddress is a multicast address (the lowest bit of the first byte is set): use a unicast address, e.g. 02:00:00:00:00:01",
    ),
    rule(
        "network.mac-nonzero",
        "spec.networks[].macAddress",
        "self != '00:00:00:00:00:00'",
        "macAddress 00:00:00:00:00:00 is not a usable address: use a unicast address, e.g. 02:00:00:00:00:01",
    ),
    rule(
        "network.mac-kubevirt-reserved",
        "spec.networks[].macAddress",
        "self != '02:00:00:00:00:00'",
        "macAddress 02:00:00:00:00:00 is reserved by KubeVirt for the pod network's masquerade interface: use another unicast address, e.g. 02:00:00:00:00:01",
    ),
    // ---- networks[].ipConfig -----------------------------------------------------------
    rule(
        "ip.static-needs-address",
        "spec.networks[].ipConfig",
        "self.mode != 'static' || has(self.address)",
        "ipConfig.address is required when mode is static: set it in CIDR form, e.g. 192.168.100.10/24",
    )
    .field(".address"),
    rule(
        "ip.address-cidr",
        "spec.networks[].ipConfig.address",
        "isCIDR(self)",
        "ipConfig.address must be an IP address with a prefix length (CIDR), e.g. 192.168.100.10/24 or 2001:db8::10/64",
    ),
    rule(
        "ip.address-host",
        "spec.networks[].ipConfig.address",
        // IP values are compared through containsIP on a host prefix: comparing IP objects
        // with == has an unbounded estimated cost and the API server refuses the CRD.
        "!isCIDR(self) || cidr(self).prefixLength() >= (cidr(self).ip().family() == 4 ? 31 : 127) || !cidr(self.split('/')[0] + (cidr(self).ip().family() == 4 ? '/32' : '/128')).containsIP(cidr(self).masked().ip())",
        "ipConfig.address is the subnet's network address, not a host address: use a host address such as 192.168.100.10/24",
    ),
    rule(
        "ip.gateway-ip",
        "spec.networks[].ipConfig.gateway",
        "isIP(self)",
        "ipConfig.gateway must be an IP address without prefix length, e.g. 192.168.100.1",
    ),
    rule(
        "ip.gateway-family",
        "spec.networks[].ipConfig",
        "!has(self.gateway) || !has(self.address) || !isIP(self.gateway) || !isCIDR(self.address) || ip(self.gateway).family() == cidr(self.address).ip().family()",
        "ipConfig.gateway and ipConfig.address must be of the same IP family: use an IPv4 gateway with an IPv4 address, an IPv6 gateway with an IPv6 address",
    )
    .field(".gateway"),
    rule(
        "ip.gateway-in-subnet",
        "spec.networks[].ipConfig",
        "!has(self.gateway) || !has(self.address) || !isIP(self.gateway) || !isCIDR(self.address) || ip(self.gateway).family() != cidr(self.address).ip().family() || cidr(self.address).containsIP(self.gateway)",
        "ipConfig.gateway must be inside the subnet of ipConfig.address (e.g. 192.168.100.1 for 192.168.100.10/24)",
    )
    .msg_expr("'ipConfig.gateway ' + self.gateway + ' is not inside the subnet of ipConfig.address ' + self.address + ': use a gateway in that subnet'")
    .field(".gateway"),
    rule(
        "ip.gateway-not-address",
        "spec.networks[].ipConfig",
        "!has(self.gateway) || !has(self.address) || !isIP(self.gateway) || !isCIDR(self.address) || ip(self.gateway).family() != cidr(self.address).ip().family() || !cidr(self.address.split('/')[0] + (ip(self.gateway).family() == 4 ? '/32' : '/128')).containsIP(self.gateway)",
        "ipConfig.gateway is the interface's own address: set the router's address as gateway",
    )
    .field(".gateway"),
    rule(
        "ip.dns-servers-ip",
        "spec.networks[].ipConfig.dnsServers",
        "self.all(s, isIP(s))",
        "ipConfig.dnsServers must be IP addresses, e.g. 192.168.100.2 or 2001:db8::53",
    ),
    rule(
        "ip.dns-servers-unique",
        "spec.networks[].ipConfig.dnsServers",
        // IPs are compared through containsIP on a host prefix (see ip.address-host).
        "self.all(a, !isIP(a) || self.filter(b, isIP(b) && ip(b).family() == ip(a).family() && cidr(a + (ip(a).family() == 4 ? '/32' : '/128')).containsIP(b)).size() == 1)",
        "ipConfig.dnsServers must not list a server twice: remove the duplicate",
    ),
    // ---- disks[] -----------------------------------------------------------------------
    rule(
        "disk.name",
        "spec.disks[].name",
        "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "disks[].name must be a DNS-1123 label: lowercase letters, digits and '-' (e.g. system)",
    ),
    rule(
        "disk.size",
        "spec.disks[].size",
        concat!("isQuantity(self) && self.matches('", quantity_shape!(), "')"),
        "disks[].size must be a Kubernetes quantity such as 20Gi (suffixes Ki, Mi, Gi, Ti or k, M, G, T; 20K is not a quantity, 20k and 20Ki are)",
    ),
    rule(
        "disk.size-positive",
        "spec.disks[].size",
        concat!("!isQuantity(self) || !self.matches('", quantity_shape!(), "') || quantity(self).isGreaterThan(quantity('0'))"),
        "disks[].size must be more than 0, e.g. 20Gi",
    ),
    rule(
        "disk.image-scheme",
        "spec.disks[].image",
        "self == '' || self.matches('^(docker|containerdisk|http|https)://[^ ]+$') || (!self.contains('://') && self.matches('^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$'))",
        "disks[].image must be a registry image such as quay.io/containerdisks/ubuntu:22.04 or a URL starting with docker://, containerdisk://, http:// or https:// (e.g. docker://quay.io/containerdisks/ubuntu:22.04)",
    ),
    // ---- cloudInitUser -----------------------------------------------------------------
    rule(
        "user.no-plain-password",
        "spec.cloudInitUser",
        "!has(self.password) || self.password == ''",
        "cloudInitUser.password is refused: a plain password would be stored in etcd and in the VM; set cloudInitUser.passwordHash (e.g. the output of openssl passwd -6) instead",
    )
    .field(".password"),
    rule(
        "user.name",
        "spec.cloudInitUser.name",
        "self.matches('^[a-z_][a-z0-9_-]*$')",
        "cloudInitUser.name must be a Linux user name: lowercase letters, digits, '_' and '-', not starting with a digit (e.g. ubuntu)",
    ),
    // ---- highAvailability.tolerations[] (issue 14: KubeVirt's admission refuses others) ----
    rule(
        "toleration.operator",
        "spec.highAvailability.tolerations[]",
        "!has(self.operator) || self.operator in ['Equal', 'Exists']",
        "tolerations[].operator must be Equal or Exists (or absent: Equal)",
    )
    .field(".operator"),
    rule(
        "toleration.effect",
        "spec.highAvailability.tolerations[]",
        "!has(self.effect) || self.effect in ['NoSchedule', 'PreferNoSchedule', 'NoExecute']",
        "tolerations[].effect must be NoSchedule, PreferNoSchedule or NoExecute (or absent: every effect)",
    )
    .field(".effect"),
    // ---- issue 7: disks and cloud-init ----
    rule(
        "disk.name-reserved",
        "spec.disks[].name",
        "self != 'cloudinit'",
        "disks[].name cloudinit is reserved for the cloud-init disk wukong adds to the VM: give the disk another name",
    ),
    // A transition rule on `spec`, not on `spec.disks[]`: the API server correlates list-map
    // items with oldSelf by key, but kube's client-side CEL only by index, so the rule pairs the
    // disks by name itself. Sizes that are no quantity are another rule's concern.
    rule(
        "disks.size-no-shrink",
        "spec",
        "!has(self.disks) || !has(oldSelf.disks) || self.disks.all(d, !has(d.size) || !isQuantity(d.size) || oldSelf.disks.all(o, o.name != d.name || !has(o.size) || !isQuantity(o.size) || quantity(d.size).compareTo(quantity(o.size)) >= 0))",
        "disks[].size cannot shrink: a volume cannot be made smaller; keep the disk's previous size or more",
    )
    // The first shrunk disk, found by index: an element taken from `filter()` loses the schema's
    // maxLength and the API server then estimates the message's cost as unbounded.
    .msg_expr("'disks[].size cannot shrink: a volume cannot be made smaller; disk \"' + oldSelf.disks[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].filter(i, i < size(oldSelf.disks) && has(oldSelf.disks[i].size) && isQuantity(oldSelf.disks[i].size) && self.disks.exists(d, d.name == oldSelf.disks[i].name && has(d.size) && isQuantity(d.size) && quantity(d.size).compareTo(quantity(oldSelf.disks[i].size)) < 0))[0]].name + '\": keep ' + oldSelf.disks[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].filter(i, i < size(oldSelf.disks) && has(oldSelf.disks[i].size) && isQuantity(oldSelf.disks[i].size) && self.disks.exists(d, d.name == oldSelf.disks[i].name && has(d.size) && isQuantity(d.size) && quantity(d.size).compareTo(quantity(oldSelf.disks[i].size)) < 0))[0]].size + ' or more'")
    .field(".disks"),
];
