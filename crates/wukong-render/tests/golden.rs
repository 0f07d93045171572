//! The founding design note's examples are golden (seed §3.2 and §4).

use serde_json::{Value, json};
use wukong_render::{CniVersion, RenderOptions, render, validate_object};

/// The seed's web-server-01: `mgmt` on VLAN 100 with a static address, `data` with DHCP.
fn seed() -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "web-server-01", "namespace": "default" },
        "spec": {
            "cpu": 4,
            "memory": "8Gi",
            "networks": [
                { "name": "mgmt", "type": "bridge", "vlanId": 100,
                  "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
                { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } }
            ]
        }
    })
}

fn configs(options: RenderOptions) -> Vec<Value> {
    let rendered = render(&validate_object(&seed()).expect("the seed is valid"), &options);
    rendered.nads.iter().map(|n| serde_json::from_str(&n.spec.config).expect("config is JSON")).collect()
}

#[test]
fn seed_bridge_static_config_has_exactly_the_seed_keys_and_values() {
    let mgmt = &configs(RenderOptions::default())[0];
    assert_eq!(
        mgmt,
        &json!({
            "cniVersion": "0.3.1",
            "name": "web-server-01-mgmt-nad",
            "type": "bridge",
            "bridge": "br-mgmt",
            "vlan": 100,
            "ipam": {
                "type": "static",
                "addresses": [ {"address": "192.168.100.10/24"} ],
                "routes": [ {"dst": "0.0.0.0/0", "gw": "192.168.100.1"} ]
            }
        })
    );
}

#[test]
fn seed_bridge_dhcp_config_has_exactly_the_seed_keys_and_values() {
    let data = &configs(RenderOptions::default())[1];
    assert_eq!(
        data,
        &json!({
            "cniVersion": "0.3.1",
            "name": "web-server-01-data-nad",
            "type": "bridge",
            "bridge": "br-data",
            "ipam": { "type": "dhcp" }
        })
    );
}

#[test]
fn seed_config_keys_keep_the_seed_order() {
    let rendered = render(&validate_object(&seed()).unwrap(), &RenderOptions::default());
    let config = &rendered.nads[0].spec.config;
    let order: Vec<usize> = ["\"cniVersion\"", "\"name\"", "\"type\"", "\"bridge\"", "\"vlan\"", "\"ipam\""]
        .iter()
        .map(|k| config.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "keys out of order in {config}");
}

#[test]
fn cni_1_0_0_is_a_configuration_list_with_the_same_plugin() {
    let options = RenderOptions { cni_version: CniVersion::V1_0_0, ..RenderOptions::default() };
    let list = &configs(options)[0];
    assert_eq!(list["cniVersion"], "1.0.0");
    assert_eq!(list["name"], "web-server-01-mgmt-nad");
    // The plugin is the 0.3.1 config without what a list holds once for all its plugins.
    let mut plugin = configs(RenderOptions::default())[0].clone();
    plugin.as_object_mut().unwrap().retain(|k, _| k != "cniVersion" && k != "name");
    assert_eq!(list["plugins"], json!([plugin]));
}

#[test]
fn seed_network_list_is_the_pod_network_then_one_multus_network_per_nad() {
    let rendered = render(&validate_object(&seed()).unwrap(), &RenderOptions::default());
    let vm = serde_json::to_value(&rendered.vm).unwrap();
    assert_eq!(
        vm["spec"]["template"]["spec"]["networks"],
        json!([
            { "name": "default", "pod": {} },
            { "name": "mgmt", "multus": { "networkName": "web-server-01-mgmt-nad" } },
            { "name": "data", "multus": { "networkName": "web-server-01-data-nad" } }
        ])
    );
}

#[test]
fn seed_interface_list_is_masquerade_then_bridge() {
    let rendered = render(&validate_object(&seed()).unwrap(), &RenderOptions::default());
    let vm = serde_json::to_value(&rendered.vm).unwrap();
    let interfaces = vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"].as_array().unwrap().clone();
    let bindings: Vec<(String, Vec<String>)> = interfaces
        .iter()
        .map(|i| {
            let keys = i.as_object().unwrap().keys().filter(|k| *k != "name" && *k != "macAddress").cloned().collect();
            (i["name"].as_str().unwrap().to_string(), keys)
        })
        .collect();
    assert_eq!(
        bindings,
        vec![
            ("default".to_string(), vec!["masquerade".to_string()]),
            ("mgmt".to_string(), vec!["bridge".to_string()]),
            ("data".to_string(), vec!["bridge".to_string()]),
        ]
    );
    // Secondary interfaces carry the stable MAC. The seed's networks have an ipConfig, so the
    // guest gets cloud-init network data, which must match the pod interface too: the
    // masquerade interface then carries a stable MAC as well.
    assert_eq!(
        interfaces[0]["macAddress"].as_str(),
        Some(wukong_render::mac::derive("default", "web-server-01", "default").to_string().as_str())
    );
    assert!(interfaces[1]["macAddress"].as_str().unwrap().starts_with("02:"));
}

#[test]
fn without_multus_the_vm_keeps_only_the_pod_network_and_no_nad_is_rendered() {
    let options = RenderOptions { multus: false, ..RenderOptions::default() };
    let rendered = render(&validate_object(&seed()).unwrap(), &options);
    assert!(rendered.nads.is_empty());
    let vm = serde_json::to_value(&rendered.vm).unwrap();
    assert_eq!(vm["spec"]["template"]["spec"]["networks"], json!([{ "name": "default", "pod": {} }]));
    assert_eq!(
        vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"],
        json!([{ "name": "default", "masquerade": {} }])
    );
    assert_eq!(rendered.launcher_pod_networks, None);
}

#[test]
fn the_launcher_pod_annotation_is_in_kubevirts_form_and_not_on_the_vm() {
    let rendered = render(&validate_object(&seed()).unwrap(), &RenderOptions::default());
    let annotation: Value = serde_json::from_str(rendered.launcher_pod_networks.as_deref().unwrap()).unwrap();
    let mac = wukong_render::mac::derive("default", "web-server-01", "mgmt").to_string();
    assert_eq!(
        annotation[0],
        json!({ "name": "web-server-01-mgmt-nad", "namespace": "default", "mac": mac, "interface": "pod11b9592dcc8" })
    );
    let vm = serde_json::to_value(&rendered.vm).unwrap();
    assert!(!vm.to_string().contains("k8s.v1.cni.cncf.io/networks"), "the annotation must not be on the VM");
}

#[test]
fn pod_interface_names_follow_kubevirts_hash_rule() {
    // Vectors from KubeVirt's own tests of its naming scheme.
    assert_eq!(wukong_render::names::pod_interface_name("network1"), "poda7662f44d65");
    assert_eq!(wukong_render::names::pod_interface_name("blue"), "pod16477688c0e");
}

#[test]
fn rendering_is_deterministic_byte_for_byte() {
    let valid = validate_object(&seed()).unwrap();
    let a = serde_json::to_string(&render(&valid, &RenderOptions::default()).vm).unwrap();
    let b = serde_json::to_string(&render(&valid, &RenderOptions::default()).vm).unwrap();
    assert_eq!(a, b);
}
