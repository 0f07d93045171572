//! The CNI configs wukong renders, run through the REAL plugins (Debian's
//! containernetworking-plugins in /usr/lib/cni) inside network namespaces made per test.
//!
//! Every config comes from `wukong_render::render` on a Wukong manifest. What this kernel can
//! run (bridge without VLAN, static IPv4/IPv6, DHCP) runs for real: ADD, CHECK, DEL, ping
//! between the node and pod namespaces. What it cannot (bridge VLAN filtering, OVS, SR-IOV,
//! KubeVirt's macvtap CNI, which is not packaged) is checked field by field against what each
//! plugin reads, and, for the bridge with a VLAN, by the exact kernel error the real plugin gives
//! (shared/reference/real-test-infra.md A.2, A.5).
//!
//! Needs root, network namespaces and `hack/install-deps.sh`; a missing piece fails the test with
//! one line saying what is missing (nothing is skipped).

mod netns;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use netns::{CniError, NetConf, NetnsPair, Ns};
use serde_json::{Value, json};
use wukong_api::nad::NetworkAttachmentDefinition;
use wukong_render::{CniVersion, RenderOptions};

const DHCP_TIMEOUT: Duration = Duration::from_secs(20);
const RESOURCE_NAME: &str = "k8s.v1.cni.cncf.io/resourceName";

// ---- rendering helpers ------------------------------------------------------------------------

fn wukong(name: &str, networks: Value) -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": name, "namespace": "cni-test" },
        "spec": { "cpu": 2, "memory": "4Gi", "networks": networks }
    })
}

/// The NADs the renderer yields for `manifest`, keyed by name.
fn render(manifest: &Value, version: CniVersion) -> BTreeMap<String, NetworkAttachmentDefinition> {
    let valid = wukong_render::validate_object(manifest).unwrap_or_else(|e| panic!("invalid test Wukong: {e:?}"));
    let rendered = wukong_render::render(&valid, &RenderOptions { cni_version: version, multus: true });
    rendered.nads.into_iter().map(|nad| (nad.metadata.name.clone().expect("a NAD has a name"), nad)).collect()
}

/// The one NAD named `name` among those rendered.
fn nad(manifest: &Value, version: CniVersion, name: &str) -> NetworkAttachmentDefinition {
    let mut nads = render(manifest, version);
    let names: Vec<_> = nads.keys().cloned().collect();
    nads.remove(name).unwrap_or_else(|| panic!("no NAD {name} rendered; got {names:?}"))
}

/// Checks the envelope of a NAD's config for `version` (single config for 0.3.1, a one-plugin
/// conflist for 1.0.0), that the CNI `name` is the NAD name and passes libcni's name rule, and
/// returns the plugin's own fields (without `cniVersion` and `name`).
fn plugin_fields(nad: &NetworkAttachmentDefinition, version: CniVersion) -> Value {
    let nad_name = nad.metadata.name.as_deref().expect("a NAD has a name");
    let config: Value = serde_json::from_str(&nad.spec.config).expect("spec.config is JSON");
    assert_eq!(config["cniVersion"], version.as_str(), "cniVersion of {nad_name}: {config}");
    assert_eq!(config["name"], nad_name, "the CNI network name must be the NAD name: {config}");
    assert!(is_valid_cni_name(nad_name), "CNI name {nad_name:?} fails libcni's ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$");
    let mut plugin = match version {
        CniVersion::V0_3_1 => {
            assert!(config.get("plugins").is_none(), "0.3.1 must be a single-plugin config: {config}");
            config
        }
        CniVersion::V1_0_0 => {
            let keys: Vec<&str> = config.as_object().expect("an object").keys().map(String::as_str).collect();
            assert_eq!(keys.len(), 3, "a 1.0.0 conflist has exactly cniVersion, name, plugins: {config}");
            let plugins = config["plugins"].as_array().expect("plugins is a list");
            assert_eq!(plugins.len(), 1, "one plugin per network: {config}");
            let plugin = plugins[0].clone();
            assert!(
                plugin.get("cniVersion").is_none() && plugin.get("name").is_none(),
                "the runtime injects cniVersion and name into list plugins: {plugin}"
            );
            plugin
        }
    };
    let map = plugin.as_object_mut().expect("the plugin config is an object");
    map.remove("cniVersion");
    map.remove("name");
    plugin
}

/// libcni's network name rule (`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`).
fn is_valid_cni_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The NAD's annotations for Multus (wukong's own attachment hash, which every generated NAD
/// carries, left out).
fn annotations(nad: &NetworkAttachmentDefinition) -> BTreeMap<String, String> {
    let mut all = nad.metadata.annotations.clone().unwrap_or_default();
    assert!(all.remove(wukong_api::labels::ATTACHMENT).is_some(), "a generated NAD carries its attachment");
    all
}

fn both_versions() -> [CniVersion; 2] {
    [CniVersion::V0_3_1, CniVersion::V1_0_0]
}

// ---- result helpers ---------------------------------------------------------------------------

/// The result's interface named `ifname` (must be in the pod netns).
fn result_interface<'a>(result: &'a Value, pair: &NetnsPair, ifname: &str) -> (usize, &'a Value) {
    let interfaces = result["interfaces"].as_array().unwrap_or_else(|| panic!("result without interfaces: {result}"));
    let (index, iface) = interfaces
        .iter()
        .enumerate()
        .find(|(_, i)| i["name"] == ifname)
        .unwrap_or_else(|| panic!("result has no interface {ifname}: {result}"));
    assert_eq!(iface["sandbox"], pair.pod_netns_path(), "{ifname} must be in the pod netns: {result}");
    (index, iface)
}

/// The bridge plugin reports the network config's top-level `dns` and drops what the IPAM
/// plugin returned (plugins 1.1.1 bridge.go cmdAdd: `result.DNS = n.DNS`), so the renderer writes
/// dnsServers at the top level as well as under `ipam`: the nameservers must arrive in the result
/// (and so in Multus' network-status).
fn assert_result_dns(result: &Value, plugin: &Value, dns_servers: &[&str]) {
    assert_eq!(plugin["dns"]["nameservers"], json!(dns_servers), "renderer's top-level dns: {plugin}");
    assert_eq!(plugin["ipam"]["dns"]["nameservers"], json!(dns_servers), "renderer's ipam.dns: {plugin}");
    assert_eq!(result["dns"]["nameservers"], json!(dns_servers), "result dns: {result}");
}

fn has_route(routes: &[Value], dst: &str, gateway: &str, dev: &str) -> bool {
    routes.iter().any(|r| r["dst"] == dst && r["gateway"] == gateway && r["dev"] == dev)
}

fn assert_cni_error(err: Result<impl std::fmt::Debug, CniError>, code: u64, msg: &str) -> CniError {
    let err = err.expect_err("the plugin must refuse");
    assert_eq!((err.code, err.msg.as_str()), (code, msg), "plugin error: {err:?}");
    assert_eq!(err.exit_code, Some(1), "CNI errors exit with status 1: {err:?}");
    err
}

// ---- bridge, static IPv4 ----------------------------------------------------------------------

fn bridge_static_ipv4(version: CniVersion, mtu: Option<u64>) {
    let mut network = json!({
        "name": "mgmt", "type": "bridge", "bridgeName": "br-t1",
        "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1",
                      "dnsServers": ["192.168.100.53"] }
    });
    if let Some(mtu) = mtu {
        network["mtu"] = json!(mtu);
    }
    let nad = nad(&wukong("web4", json!([network])), version, "web4-mgmt-nad");
    let plugin = plugin_fields(&nad, version);
    let mut expected = json!({
        "type": "bridge", "bridge": "br-t1",
        "ipam": { "type": "static", "addresses": [{ "address": "192.168.100.10/24" }],
                  "routes": [{ "dst": "0.0.0.0/0", "gw": "192.168.100.1" }],
                  "dns": { "nameservers": ["192.168.100.53"] } },
        "dns": { "nameservers": ["192.168.100.53"] }
    });
    if let Some(mtu) = mtu {
        expected["mtu"] = json!(mtu);
    }
    assert_eq!(plugin, expected, "rendered bridge config");
    assert!(annotations(&nad).is_empty(), "a bridge NAD has no annotations");

    let pair = NetnsPair::new();
    let net = NetConf::parse(&nad.spec.config);
    let result = pair.add(&net, "net1").unwrap_or_else(|e| panic!("bridge ADD failed: {e:?}"));

    // The result.
    assert_eq!(result["cniVersion"], version.as_str(), "{result}");
    let (index, iface) = result_interface(&result, &pair, "net1");
    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 1, "{result}");
    assert_eq!(ips[0]["address"], "192.168.100.10/24");
    assert_eq!(ips[0]["interface"], index);
    assert_eq!(result["routes"], json!([{ "dst": "0.0.0.0/0", "gw": "192.168.100.1" }]));
    assert_result_dns(&result, &plugin, &["192.168.100.53"]);

    // The pod netns.
    assert_eq!(pair.global_addresses(Ns::Pod, "net1"), ["192.168.100.10/24"]);
    assert!(
        has_route(&pair.routes_v4(Ns::Pod), "default", "192.168.100.1", "net1"),
        "no default route via the gateway: {:?}",
        pair.routes_v4(Ns::Pod)
    );
    let want_mtu = mtu.unwrap_or(1500);
    assert_eq!(pair.mtu(Ns::Pod, "net1"), want_mtu, "pod interface MTU");
    assert_eq!(pair.mtu(Ns::Node, "br-t1"), want_mtu, "bridge MTU");
    assert_eq!(pair.mac(Ns::Pod, "net1"), iface["mac"].as_str().expect("mac"), "result MAC is the pod's");

    // CHECK.
    match version {
        CniVersion::V0_3_1 => {
            // CHECK arrived in spec 0.4.0; libcni refuses it for 0.3.1 itself, and so does the
            // plugin when asked directly.
            assert_cni_error(pair.check(&net, "net1", &result), 1, "config version does not allow CHECK");
        }
        CniVersion::V1_0_0 => {
            pair.check(&net, "net1", &result).unwrap_or_else(|e| panic!("CHECK with the exact prevResult: {e:?}"));
            let mut tampered = result.clone();
            tampered["ips"][0]["address"] = json!("192.168.100.11/24");
            assert_cni_error(
                pair.check(&net, "net1", &tampered),
                999,
                "Failed to match addr 192.168.100.11/24 on interface net1",
            );
        }
    }

    // L2 across the bridge, between the two namespaces only: the node side gets the gateway.
    pair.exec_ok(Ns::Node, &["ip", "addr", "add", "192.168.100.1/24", "dev", "br-t1"]);
    let out = pair.ping(Ns::Node, "192.168.100.10");
    assert!(out.success(), "node -> pod ping failed: {}{}", out.stdout, out.stderr);
    let out = pair.ping(Ns::Pod, "192.168.100.1");
    assert!(out.success(), "pod -> gateway ping failed: {}{}", out.stdout, out.stderr);

    // DEL, twice.
    pair.del(&net, "net1", Some(&result)).unwrap_or_else(|e| panic!("DEL: {e:?}"));
    assert!(pair.link(Ns::Pod, "net1").is_none(), "net1 left in the pod netns");
    assert_eq!(pair.link_names(Ns::Pod), ["lo"]);
    assert_eq!(pair.link_names(Ns::Node), ["lo", "br-t1"], "the host veth must be gone (the bridge stays)");
    pair.del(&net, "net1", Some(&result)).unwrap_or_else(|e| panic!("second DEL must succeed too: {e:?}"));
}

#[test]
fn bridge_static_ipv4_cni_0_3_1() {
    bridge_static_ipv4(CniVersion::V0_3_1, None);
}

#[test]
fn bridge_static_ipv4_mtu_1400_cni_1_0_0() {
    bridge_static_ipv4(CniVersion::V1_0_0, Some(1400));
}

#[test]
fn bridge_static_ipv4_mtu_1400_cni_0_3_1() {
    bridge_static_ipv4(CniVersion::V0_3_1, Some(1400));
}

#[test]
fn bridge_static_ipv4_cni_1_0_0() {
    bridge_static_ipv4(CniVersion::V1_0_0, None);
}

// ---- bridge, static IPv6 ----------------------------------------------------------------------

fn bridge_static_ipv6(version: CniVersion) {
    // examples/ipv6-static.yaml: the pod network plus an IPv6-only bridge network.
    let manifest = wukong(
        "v6-web",
        json!([
            { "name": "default" },
            { "name": "public6", "type": "bridge", "bridgeName": "br-public",
              "ipConfig": { "mode": "static", "address": "2001:db8:100::20/64", "gateway": "2001:db8:100::1",
                            "dnsServers": ["2001:db8:100::53", "2001:4860:4860::8888"] } }
        ]),
    );
    let nads = render(&manifest, version);
    assert_eq!(nads.keys().collect::<Vec<_>>(), ["v6-web-public6-nad"], "the pod network has no NAD");
    let nad = &nads["v6-web-public6-nad"];
    let plugin = plugin_fields(nad, version);
    assert_eq!(
        plugin,
        json!({
            "type": "bridge", "bridge": "br-public",
            "ipam": { "type": "static", "addresses": [{ "address": "2001:db8:100::20/64" }],
                      "routes": [{ "dst": "::/0", "gw": "2001:db8:100::1" }],
                      "dns": { "nameservers": ["2001:db8:100::53", "2001:4860:4860::8888"] } },
            "dns": { "nameservers": ["2001:db8:100::53", "2001:4860:4860::8888"] }
        })
    );

    let pair = NetnsPair::new();
    // No duplicate address detection inside the test namespaces: the addresses are usable at
    // once (new interfaces take `default`, and the kernel also consults `all`).
    for ns in [Ns::Pod, Ns::Node] {
        pair.sysctl(ns, "net.ipv6.conf.all.accept_dad", "0");
        pair.sysctl(ns, "net.ipv6.conf.default.accept_dad", "0");
    }
    let net = NetConf::parse(&nad.spec.config);
    let result = pair.add(&net, "net1").unwrap_or_else(|e| panic!("bridge ADD (IPv6) failed: {e:?}"));
    let (index, _) = result_interface(&result, &pair, "net1");
    assert_eq!(result["ips"][0]["address"], "2001:db8:100::20/64", "{result}");
    assert_eq!(result["ips"][0]["interface"], index);
    assert_eq!(result["routes"], json!([{ "dst": "::/0", "gw": "2001:db8:100::1" }]));
    assert_result_dns(&result, &plugin, &["2001:db8:100::53", "2001:4860:4860::8888"]);

    let info = pair.addr_info(Ns::Pod, "net1");
    let addr = info
        .iter()
        .find(|a| a["family"] == "inet6" && a["local"] == "2001:db8:100::20")
        .unwrap_or_else(|| panic!("2001:db8:100::20 not on net1: {info:?}"));
    assert_eq!(addr["prefixlen"], 64);
    assert!(addr.get("tentative").is_none(), "address still tentative: {addr}");
    let routes = pair.routes_v6(Ns::Pod);
    assert!(has_route(&routes, "default", "2001:db8:100::1", "net1"), "no ::/0 via the gateway: {routes:?}");

    if version == CniVersion::V1_0_0 {
        pair.check(&net, "net1", &result).unwrap_or_else(|e| panic!("CHECK (IPv6): {e:?}"));
    }

    pair.exec_ok(Ns::Node, &["ip", "addr", "add", "2001:db8:100::1/64", "dev", "br-public", "nodad"]);
    let out = pair.ping(Ns::Node, "2001:db8:100::20");
    assert!(out.success(), "node -> pod ping (IPv6) failed: {}{}", out.stdout, out.stderr);

    pair.del(&net, "net1", Some(&result)).unwrap_or_else(|e| panic!("DEL: {e:?}"));
    assert!(pair.link(Ns::Pod, "net1").is_none(), "net1 left in the pod netns");
    pair.del(&net, "net1", Some(&result)).unwrap_or_else(|e| panic!("second DEL: {e:?}"));
}

#[test]
fn bridge_static_ipv6_cni_1_0_0() {
    bridge_static_ipv6(CniVersion::V1_0_0);
}

#[test]
fn bridge_static_ipv6_cni_0_3_1() {
    bridge_static_ipv6(CniVersion::V0_3_1);
}

// ---- bridge, DHCP -----------------------------------------------------------------------------

fn bridge_dhcp(version: CniVersion) {
    let manifest = wukong("dhcp-vm", json!([{ "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } }]));
    let nad = nad(&manifest, version, "dhcp-vm-data-nad");
    let plugin = plugin_fields(&nad, version);
    assert_eq!(plugin, json!({ "type": "bridge", "bridge": "br-data", "ipam": { "type": "dhcp" } }));

    let pair = NetnsPair::new();
    // The DHCP server side: the bridge exists in the node netns beforehand with the router's
    // address, and busybox udhcpd serves it. Nothing leaves the two namespaces.
    pair.exec_ok(Ns::Node, &["ip", "link", "add", "br-data", "type", "bridge"]);
    pair.exec_ok(Ns::Node, &["ip", "addr", "add", "10.50.0.1/24", "dev", "br-data"]);
    pair.exec_ok(Ns::Node, &["ip", "link", "set", "br-data", "up"]);
    let dir = pair.dir();
    let udhcpd_conf = dir.join("udhcpd.conf");
    std::fs::write(
        &udhcpd_conf,
        format!(
            "start 10.50.0.100\nend 10.50.0.150\ninterface br-data\nlease_file {leases}\npidfile {pid}\n\
             option subnet 255.255.255.0\noption router 10.50.0.1\noption lease 600\n",
            leases = dir.join("udhcpd.leases").display(),
            pid = dir.join("udhcpd.pid").display(),
        ),
    )
    .expect("write udhcpd.conf");
    std::fs::write(dir.join("udhcpd.leases"), b"").expect("create the lease file");
    pair.spawn(Ns::Node, "udhcpd", &["busybox", "udhcpd", "-f", udhcpd_conf.to_str().expect("utf-8 path")]);

    // The CNI dhcp daemon (the node's side of the dhcp IPAM plugin), on a private socket. It is
    // run inside the node netns too; it does its DHCP inside CNI_NETNS.
    let socket = dir.join("dhcp.sock");
    let socket = socket.to_str().expect("utf-8 path");
    pair.spawn(Ns::Node, "dhcp-daemon", &["/usr/lib/cni/dhcp", "daemon", "-socketpath", socket]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::path::Path::new(socket).exists() {
        pair.assert_running("dhcp-daemon");
        assert!(Instant::now() < deadline, "dhcp daemon made no socket: {}", pair.log("dhcp-daemon"));
        std::thread::sleep(Duration::from_millis(20));
    }
    pair.assert_running("udhcpd");

    // HARNESS-ONLY: the renderer writes `"ipam": {"type": "dhcp"}`, which on a node dials the
    // daemon's default socket /run/cni/dhcp.sock. To keep parallel tests apart, each test runs
    // its own daemon and points the dhcp IPAM plugin at it with `daemonSocketPath` (read by
    // plugins >= 0.9). Nothing else in the rendered config is changed.
    let mut config: Value = serde_json::from_str(&nad.spec.config).expect("JSON");
    let ipam = match version {
        CniVersion::V0_3_1 => &mut config["ipam"],
        CniVersion::V1_0_0 => &mut config["plugins"][0]["ipam"],
    };
    assert_eq!(*ipam, json!({ "type": "dhcp" }));
    ipam["daemonSocketPath"] = json!(socket);
    let net = NetConf::from_value(config);

    let result =
        pair.add_with_timeout(&net, "net1", DHCP_TIMEOUT).unwrap_or_else(|e| panic!("bridge+dhcp ADD failed: {e:?}"));
    let (index, _) = result_interface(&result, &pair, "net1");
    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 1, "{result}");
    let address = ips[0]["address"].as_str().expect("address").to_string();
    let (ip, prefix) = address.split_once('/').expect("CIDR");
    let last: u8 = ip.strip_prefix("10.50.0.").and_then(|x| x.parse().ok()).unwrap_or(0);
    assert!((100..=150).contains(&last) && prefix == "24", "{address} is not from the pool 10.50.0.100-150/24");
    assert_eq!(ips[0]["gateway"], "10.50.0.1", "gateway from the DHCP router option: {result}");
    assert_eq!(ips[0]["interface"], index);
    assert_eq!(result["routes"], json!([{ "dst": "0.0.0.0/0", "gw": "10.50.0.1" }]));
    assert_eq!(pair.global_addresses(Ns::Pod, "net1"), std::slice::from_ref(&address));
    assert!(
        has_route(&pair.routes_v4(Ns::Pod), "default", "10.50.0.1", "net1"),
        "no default route from the DHCP router option: {:?}",
        pair.routes_v4(Ns::Pod)
    );
    assert!(pair.log("udhcpd").contains(&format!("sending ACK to {ip}")), "udhcpd log: {}", pair.log("udhcpd"));
    let out = pair.ping(Ns::Node, ip);
    assert!(out.success(), "node -> pod ping failed: {}{}", out.stdout, out.stderr);

    // DEL: the daemon stops renewing and releases the lease (this Debian build logs "releasing
    // lease", then may log "failed to release DHCP lease: no such device" because the bridge
    // plugin deletes the pod link before the daemon's asynchronous release runs).
    pair.del_with_timeout(&net, "net1", Some(&result), DHCP_TIMEOUT).unwrap_or_else(|e| panic!("DEL: {e:?}"));
    assert!(pair.link(Ns::Pod, "net1").is_none(), "net1 left in the pod netns");
    let releasing = format!("{}/dhcp-vm-data-nad/net1: releasing lease", pair.container_id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pair.log("dhcp-daemon").contains(&releasing) {
        assert!(Instant::now() < deadline, "the dhcp daemon did not release: {}", pair.log("dhcp-daemon"));
        std::thread::sleep(Duration::from_millis(50));
    }
    pair.del_with_timeout(&net, "net1", Some(&result), DHCP_TIMEOUT).unwrap_or_else(|e| panic!("second DEL: {e:?}"));
}

#[test]
fn bridge_dhcp_cni_0_3_1() {
    bridge_dhcp(CniVersion::V0_3_1);
}

#[test]
fn bridge_dhcp_cni_1_0_0() {
    bridge_dhcp(CniVersion::V1_0_0);
}

// ---- bridge with a VLAN: the config, then the kernel's refusal --------------------------------

/// examples/web-server-01.yaml (the seed's example): mgmt on VLAN 100, static.
fn web_server_01() -> Value {
    wukong(
        "web-server-01",
        json!([
            { "name": "mgmt", "type": "bridge", "vlanId": 100,
              "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
            { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } }
        ]),
    )
}

fn bridge_vlan(version: CniVersion) {
    let nad = nad(&web_server_01(), version, "web-server-01-mgmt-nad");
    let plugin = plugin_fields(&nad, version);
    assert_eq!(plugin["type"], "bridge");
    assert_eq!(plugin["bridge"], "br-mgmt");
    assert_eq!(plugin["vlan"], 100);
    assert_eq!(
        plugin["ipam"],
        json!({ "type": "static", "addresses": [{ "address": "192.168.100.10/24" }],
                "routes": [{ "dst": "0.0.0.0/0", "gw": "192.168.100.1" }] })
    );
    assert_eq!(plugin.as_object().expect("object").len(), 4, "no other fields: {plugin}");

    // This kernel has no bridge VLAN filtering (reference A.2/A.5): the real plugin accepts every
    // field (a field error would come first, see bridge_out_of_range_vlan_is_a_field_error) and
    // fails only when the kernel refuses the VLAN-filtering bridge.
    let pair = NetnsPair::new();
    let net = NetConf::parse(&nad.spec.config);
    assert_cni_error(
        pair.add(&net, "net1"),
        999,
        r#"failed to create bridge "br-mgmt": could not add "br-mgmt": operation not supported"#,
    );
    // A runtime DELs after a failed ADD; that must succeed and leave nothing behind.
    pair.del(&net, "net1", None).unwrap_or_else(|e| panic!("DEL after the failed ADD: {e:?}"));
    assert_eq!(pair.link_names(Ns::Pod), ["lo"]);
    assert_eq!(pair.link_names(Ns::Node), ["lo"]);
}

#[test]
fn bridge_vlan_fails_only_for_the_kernel_cni_0_3_1() {
    bridge_vlan(CniVersion::V0_3_1);
}

#[test]
fn bridge_vlan_fails_only_for_the_kernel_cni_1_0_0() {
    bridge_vlan(CniVersion::V1_0_0);
}

/// The control for the VLAN test: a field the plugin rejects gives the plugin's field error, not
/// the kernel's, so the test above would catch a bad field.
#[test]
fn bridge_out_of_range_vlan_is_a_field_error() {
    for version in both_versions() {
        let nad = nad(&web_server_01(), version, "web-server-01-mgmt-nad");
        let mut config: Value = serde_json::from_str(&nad.spec.config).expect("JSON");
        let plugin = match version {
            CniVersion::V0_3_1 => &mut config,
            CniVersion::V1_0_0 => &mut config["plugins"][0],
        };
        assert_eq!(plugin["vlan"], 100);
        plugin["vlan"] = json!(5000); // hand-edited copy; the renderer refuses vlanId > 4094
        let pair = NetnsPair::new();
        let net = NetConf::from_value(config);
        assert_cni_error(pair.add(&net, "net1"), 999, "invalid VLAN ID 5000 (must be between 0 and 4094)");
        assert_eq!(pair.link_names(Ns::Node), ["lo"], "nothing created before the field check");
        assert_eq!(pair.link_names(Ns::Pod), ["lo"]);
    }
}

// ---- config level only: OVS, SR-IOV, macvtap --------------------------------------------------

/// OVS: ovs-cni's NetConf reads `bridge`, `vlan`, `mtu` and the IPAM (not packaged for Debian,
/// and this kernel has no openvswitch datapath).
#[test]
fn ovs_config_matches_ovs_cni() {
    // examples/ovs-vlan.yaml
    let manifest = wukong(
        "storage-node-01",
        json!([{ "name": "storage", "type": "ovs", "bridgeName": "br-storage", "vlanId": 200, "mtu": 9000,
                 "ipConfig": { "mode": "static", "address": "10.20.0.15/24" } }]),
    );
    for version in both_versions() {
        let nad = nad(&manifest, version, "storage-node-01-storage-nad");
        assert_eq!(
            plugin_fields(&nad, version),
            json!({ "type": "ovs", "bridge": "br-storage", "vlan": 200, "mtu": 9000,
                    "ipam": { "type": "static", "addresses": [{ "address": "10.20.0.15/24" }] } }),
            "{version:?}"
        );
        assert!(annotations(&nad).is_empty(), "an OVS NAD has no annotations");
    }
}

/// SR-IOV: sriov-cni reads `vlan` (*int; 0 clears a VLAN left on the VF), `spoofchk` and `trust`
/// as "on"/"off" strings, and gets the VF (`deviceID`) from Multus through the device plugin's
/// resource, which the NAD names in k8s.v1.cni.cncf.io/resourceName.
#[test]
fn sriov_config_matches_sriov_cni() {
    // examples/sriov.yaml: VLAN 300, DHCP (the guest asks DHCP itself: no IPAM on a vfio VF).
    let tagged = wukong(
        "dpdk-router",
        json!([{ "name": "fast", "type": "sriov", "resourceName": "intel.com/sriov_vfio", "vlanId": 300,
                 "ipConfig": { "mode": "dhcp" } }]),
    );
    // No vlanId, a static address.
    let untagged = wukong(
        "sriov-static",
        json!([{ "name": "fast", "type": "sriov", "resourceName": "intel.com/sriov_netdevice",
                 "ipConfig": { "mode": "static", "address": "10.30.0.5/24", "gateway": "10.30.0.1" } }]),
    );
    for version in both_versions() {
        let nad1 = nad(&tagged, version, "dpdk-router-fast-nad");
        assert_eq!(
            plugin_fields(&nad1, version),
            json!({ "type": "sriov", "vlan": 300, "spoofchk": "on", "trust": "off" }),
            "{version:?}"
        );
        assert_eq!(annotations(&nad1), BTreeMap::from([(RESOURCE_NAME.to_string(), "intel.com/sriov_vfio".into())]));

        let nad2 = nad(&untagged, version, "sriov-static-fast-nad");
        assert_eq!(
            plugin_fields(&nad2, version),
            json!({ "type": "sriov", "vlan": 0, "spoofchk": "on", "trust": "off",
                    "ipam": { "type": "static", "addresses": [{ "address": "10.30.0.5/24" }],
                              "routes": [{ "dst": "0.0.0.0/0", "gw": "10.30.0.1" }] } }),
            "{version:?}"
        );
        assert_eq!(
            annotations(&nad2),
            BTreeMap::from([(RESOURCE_NAME.to_string(), "intel.com/sriov_netdevice".into())])
        );
    }
}

/// Wukong's `macvlan` type renders KubeVirt's macvtap CNI (kubevirt/macvtap-cni, not packaged
/// here): its NetConf reads `deviceID` (from the device plugin, via the resourceName annotation),
/// `mtu`, `promiscMode`, `owner`, `group` — no `master`, and it does no IPAM (the guest
/// configures its address). There is no renderer output for the macvlan CNI plugin.
#[test]
fn macvlan_type_renders_a_macvtap_config() {
    let manifest = |mtu: Option<u32>| {
        let mut network = json!({ "name": "uplink", "type": "macvlan", "master": "eth1",
            "ipConfig": { "mode": "static", "address": "203.0.113.20/24", "gateway": "203.0.113.1",
                          "dnsServers": ["203.0.113.53"] } });
        if let Some(mtu) = mtu {
            network["mtu"] = json!(mtu);
        }
        wukong("edge-gateway", json!([network]))
    };
    for version in both_versions() {
        for (mtu, expected) in
            [(None, json!({ "type": "macvtap" })), (Some(1450), json!({ "type": "macvtap", "mtu": 1450 }))]
        {
            let nad = nad(&manifest(mtu), version, "edge-gateway-uplink-nad");
            let plugin = plugin_fields(&nad, version);
            assert_eq!(plugin, expected, "{version:?} mtu {mtu:?}");
            assert!(plugin.get("ipam").is_none() && plugin.get("master").is_none());
            assert_eq!(
                annotations(&nad),
                BTreeMap::from([(RESOURCE_NAME.to_string(), "macvtap.network.kubevirt.io/eth1".into())])
            );
        }
    }
}

// ---- versions ---------------------------------------------------------------------------------

/// The plugins must support every cniVersion wukong writes (they stop at 1.0.0; 1.1.0 would be
/// refused, reference A.4).
#[test]
fn bridge_plugin_supports_the_cni_versions_we_write() {
    let pair = NetnsPair::new();
    for version in both_versions() {
        let nad = nad(&web_server_01(), version, "web-server-01-data-nad");
        let written = NetConf::parse(&nad.spec.config).cni_version;
        assert_eq!(written, version.as_str());
        for plugin in ["bridge", "static", "dhcp"] {
            let info = pair.version_info(plugin, &written);
            let supported = info["supportedVersions"].as_array().unwrap_or_else(|| panic!("{plugin}: {info}"));
            assert!(supported.contains(&json!(written)), "{plugin} does not support {written}: {info}");
        }
    }
}
