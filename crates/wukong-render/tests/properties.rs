//! Properties of validation and rendering over generated Wukongs, valid and not.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use proptest::prelude::*;
use regex::Regex;
use serde_json::{Value, json};
use wukong_render::{CniVersion, RenderOptions, Rendered, render, validate_object};

fn dns_label() -> Regex {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap()
}

fn dns_subdomain_ok(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|part| part.len() <= 63 && dns_label().is_match(part))
}

fn opt<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 2 => s.prop_map(Some)].boxed()
}

fn ipv4() -> impl Strategy<Value = String> {
    (0u8..4, any::<u8>(), 0u8..=32).prop_map(|(c, d, p)| format!("10.{c}.0.{d}/{p}"))
}

fn address() -> BoxedStrategy<String> {
    prop_oneof![
        4 => ipv4(),
        2 => (any::<u16>(), 48u8..=128).prop_map(|(h, p)| format!("2001:db8::{h:x}/{p}")),
        1 => "[0-9a-z./:]{0,20}",
    ]
    .boxed()
}

fn gateway() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u8..4, any::<u8>()).prop_map(|(c, d)| format!("10.{c}.0.{d}")),
        2 => any::<u16>().prop_map(|h| format!("2001:db8::{h:x}")),
        1 => "[0-9a-z./:]{0,16}",
    ]
    .boxed()
}

fn ip_config() -> impl Strategy<Value = Value> {
    (prop_oneof![Just("static"), Just("dhcp")], opt(address()), opt(gateway()), prop::collection::vec(gateway(), 0..3))
        .prop_map(|(mode, address, gateway, dns)| {
            let mut v = json!({ "mode": mode });
            if let Some(a) = address {
                v["address"] = json!(a);
            }
            if let Some(g) = gateway {
                v["gateway"] = json!(g);
            }
            if !dns.is_empty() {
                v["dnsServers"] = json!(dns);
            }
            v
        })
}

fn network() -> impl Strategy<Value = Value> {
    (
        prop_oneof![8 => "[a-z][a-z0-9-]{0,14}", 1 => Just("default".to_string()), 1 => "[A-Za-z_]{1,5}"],
        opt(prop_oneof![Just("bridge"), Just("ovs"), Just("macvlan"), Just("sriov")]),
        opt(0i32..5000),
        opt("[a-z][a-z0-9-]{0,16}"),
        opt(prop_oneof![Just("eth1"), Just("bond0.100")]),
        opt(prop_oneof![Just("intel.com/sriov_vfio")]),
        opt(prop::array::uniform6(any::<u8>()).prop_map(|b| b.map(|x| format!("{x:02x}")).join(":"))),
        opt(prop_oneof![Just(1400), Just(9000), Just(10)]),
        opt(ip_config()),
        opt(prop_oneof![Just("existing"), Just("infra/lan")]),
    )
        .prop_map(|(name, ty, vlan, bridge, master, resource, mac, mtu, ip, nad)| {
            let mut v = json!({ "name": name });
            let fields = [
                ("type", ty.map(|t| json!(t))),
                ("vlanId", vlan.map(|x| json!(x))),
                ("bridgeName", bridge.map(|x| json!(x))),
                ("master", master.map(|x| json!(x))),
                ("resourceName", resource.map(|x| json!(x))),
                ("macAddress", mac.map(|x| json!(x))),
                ("mtu", mtu.map(|x| json!(x))),
                ("ipConfig", ip),
                ("nadName", nad.map(|x| json!(x))),
            ];
            for (k, value) in fields {
                if let Some(value) = value {
                    v[k] = value;
                }
            }
            v
        })
}

fn wukong() -> impl Strategy<Value = Value> {
    ("[a-z][a-z0-9-]{0,20}", 0i32..70, prop::collection::vec(network(), 0..5)).prop_map(|(name, cpu, networks)| {
        json!({
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "kind": "Wukong",
            "metadata": { "name": name, "namespace": "props" },
            "spec": { "cpu": cpu, "memory": "2Gi", "networks": networks,
                      "disks": [{ "name": "system", "boot": true, "image": "docker://quay.io/containerdisks/ubuntu:22.04" }] }
        })
    })
}

fn check_rendered(input: &Value, r: &Rendered) {
    let cni_name = Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$").unwrap();
    let vm_name = r.vm.metadata.name.as_deref().unwrap();
    assert!(vm_name.len() <= 63 && dns_label().is_match(vm_name), "VM name {vm_name}");
    for nad in &r.nads {
        let name = nad.metadata.name.as_deref().unwrap();
        assert!(dns_subdomain_ok(name), "NAD name {name}");
        let config: Value = serde_json::from_str(&nad.spec.config).expect("a NAD config is JSON");
        assert_eq!(config["name"], name, "CNI name is the NAD name");
        assert!(cni_name.is_match(name));
        assert!(config["cniVersion"] == "0.3.1" || config["cniVersion"] == "1.0.0");
        let plugin = config.get("plugins").map_or(&config, |p| &p[0]);
        assert!(plugin["type"].is_string());
        if let Some(bridge) = plugin.get("bridge") {
            assert!(bridge.as_str().unwrap().len() <= 15, "bridge name fits IFNAMSIZ");
        }
        if let Some(address) = plugin.pointer("/ipam/addresses/0/address") {
            let net = IpNet::from_str(address.as_str().unwrap()).expect("static address is a CIDR");
            if let Some(gw) = plugin.pointer("/ipam/routes/0/gw") {
                let gw = IpAddr::from_str(gw.as_str().unwrap()).unwrap();
                assert!(net.contains(&gw), "gateway {gw} inside {net}");
            }
        }
    }
    let vm = serde_json::to_value(&r.vm).unwrap();
    for iface in vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"].as_array().unwrap() {
        assert!(dns_label().is_match(iface["name"].as_str().unwrap()));
        if let Some(mac) = iface.get("macAddress").and_then(Value::as_str) {
            let first = u8::from_str_radix(&mac[..2], 16).unwrap();
            assert_eq!(first & 1, 0, "{mac} is unicast");
            let given = input["spec"]["networks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == iface["name"] && n.get("macAddress").is_some());
            if !given {
                assert_eq!(first & 2, 2, "derived {mac} is locally administered");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn valid_specs_render_to_valid_objects_and_invalid_ones_only_to_errors(input in wukong()) {
        match validate_object(&input) {
            Ok(valid) => {
                for version in [CniVersion::V0_3_1, CniVersion::V1_0_0] {
                    for multus in [true, false] {
                        let options = RenderOptions { cni_version: version, multus };
                        let first = render(&valid, &options);
                        check_rendered(&input, &first);
                        // Same input, same bytes, same MACs.
                        let again = render(&validate_object(&input).unwrap(), &options);
                        prop_assert_eq!(serde_json::to_string(&first.vm).unwrap(), serde_json::to_string(&again.vm).unwrap());
                        prop_assert_eq!(&first.nads, &again.nads);
                    }
                }
            }
            Err(invalid) => {
                prop_assert!(!invalid.errors.is_empty());
                prop_assert!(invalid.to_string().contains("Wukong props/"));
            }
        }
    }

    #[test]
    fn the_rules_hold_on_every_admitted_spec(input in wukong()) {
        if let Ok(valid) = validate_object(&input) {
            let spec = &valid.wukong().spec;
            prop_assert!((1..=64).contains(&spec.cpu));
            for n in &spec.networks {
                use wukong_api::NetworkType::*;
                if n.vlan_id.is_some() {
                    prop_assert!(matches!(n.type_, Some(Bridge | Ovs | Sriov)));
                }
                if n.type_ == Some(Macvlan) && n.nad_name.is_none() {
                    prop_assert!(n.master.is_some());
                }
                if n.name == "default" {
                    prop_assert!(n.type_.is_none() && n.ip_config.is_none());
                }
            }
        }
    }
}

#[test]
fn generated_inputs_reach_both_outcomes() {
    // Guard against a generator that only ever produces invalid (or only valid) specs.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..300 {
        let input = wukong().new_tree(&mut runner).unwrap().current();
        match validate_object(&input) {
            Ok(_) => valid += 1,
            Err(_) => invalid += 1,
        }
    }
    assert!(valid >= 30 && invalid >= 30, "valid {valid}, invalid {invalid}");
}
