//! The original operator's rendering of a Wukong, written out object by object as its source
//! (kuihuar/vmoperator `pkg/network/multus.go`, `pkg/kubevirt/vm.go`, `pkg/storage/*.go`) creates
//! them: the fixture of the migration tests, which create exactly these objects, with the
//! original's field manager, in front of wukong.
//!
//! Objects are JSON, as the original wrote them through an unstructured or typed Go client; the
//! NAD's `spec.config` is byte for byte Go's `json.Marshal` of the original's struct (fields in
//! declaration order, the `ipam` map's keys sorted).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use wukong_api::{IpMode, NetworkType, Wukong};

use crate::names;

/// The field manager of the original's writes (controller-runtime names it after the binary).
pub const FIELD_MANAGER: &str = "manager";

/// The original's CNI config of a network, as the string it stored in the NAD.
pub fn cni_config(net: &wukong_api::NetworkSpec) -> String {
    #[derive(Serialize)]
    struct Config<'a> {
        #[serde(rename = "cniVersion")]
        cni_version: &'static str,
        #[serde(rename = "type")]
        type_: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        bridge: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        vlan: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ipam: Option<BTreeMap<&'static str, Value>>,
    }
    let bridged = matches!(net.type_, Some(NetworkType::Bridge | NetworkType::Ovs));
    let ipam = net.ip_config.as_ref().and_then(|ip| match (ip.mode, &ip.address) {
        (IpMode::Dhcp, _) => Some(BTreeMap::from([("type", json!("dhcp"))])),
        (IpMode::Static, Some(address)) => {
            let mut ipam = BTreeMap::from([("type", json!("static")), ("addresses", json!([{ "address": address }]))]);
            if let Some(gw) = &ip.gateway {
                ipam.insert("routes", json!([{ "dst": "0.0.0.0/0", "gw": gw }]));
            }
            Some(ipam)
        }
        (IpMode::Static, None) => None,
    });
    let config = Config {
        cni_version: "0.3.1",
        type_: net.type_.map_or("", NetworkType::as_str),
        bridge: bridged.then(|| net.bridge_name.clone().unwrap_or_else(|| names::default_bridge_name(&net.name))),
        vlan: if bridged { net.vlan_id } else { None },
        ipam,
    };
    serde_json::to_string(&config).expect("the config serializes")
}

/// The NAD the original created for every network without `nadName` (`default` included: for
/// the original it was a network like any other).
pub fn nads(wukong: &Wukong) -> Vec<Value> {
    let name = names::name_of(wukong);
    wukong
        .spec
        .networks
        .iter()
        .filter(|n| n.nad_name.is_none())
        .map(|n| {
            json!({
                "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                "metadata": { "name": names::nad_name(name, &n.name), "namespace": names::namespace_of(wukong) },
                "spec": { "config": cni_config(n) },
            })
        })
        .collect()
}

/// The NAD name the original used for each network, in spec order: the generated one, or
/// `nadName` as written.
fn nad_names(wukong: &Wukong) -> Vec<String> {
    let name = names::name_of(wukong);
    wukong.spec.networks.iter().map(|n| n.nad_name.clone().unwrap_or_else(|| names::nad_name(name, &n.name))).collect()
}

/// Per disk, what the original created for it: a DataVolume for a disk with an image (an
/// `http(s)://` image as an `http` source; any other as a `registry` source with `docker://`
/// stripped, which CDI's admission refuses), else a PVC; both named `<w>-<disk>`.
pub fn volumes(wukong: &Wukong) -> Vec<Value> {
    let name = names::name_of(wukong);
    let namespace = names::namespace_of(wukong);
    wukong
        .spec
        .disks
        .iter()
        .map(|d| {
            let claim = json!({
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": d.size.clone().unwrap_or_default() } },
                "storageClassName": d.storage_class_name.clone().unwrap_or_default(),
            });
            let metadata = json!({ "name": names::data_volume_name(name, &d.name), "namespace": namespace });
            match &d.image {
                Some(image) => {
                    let source = if image.starts_with("http://") || image.starts_with("https://") {
                        json!({ "http": { "url": image } })
                    } else {
                        json!({ "registry": { "url": image.trim_start_matches("docker://"), "pullMethod": "pod" } })
                    };
                    json!({
                        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": metadata,
                        "spec": { "source": source, "pvc": claim },
                    })
                }
                None => {
                    json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": claim })
                }
            }
        })
        .collect()
}

/// The VM `<w>-vm` the original created once every volume was bound.
pub fn vm(wukong: &Wukong) -> Value {
    let name = names::name_of(wukong);
    let spec = &wukong.spec;
    let nads = nad_names(wukong);
    let annotation: Vec<Value> =
        nads.iter().enumerate().map(|(i, nad)| json!({ "name": nad, "interface": format!("net{}", i + 1) })).collect();
    let annotations = if annotation.is_empty() {
        json!({})
    } else {
        json!({ "k8s.v1.cni.cncf.io/networks": serde_json::to_string(&annotation).expect("JSON") })
    };
    let mut networks = vec![json!({ "name": "default", "pod": {} })];
    let mut interfaces = vec![json!({ "name": "default", "masquerade": {} })];
    for nad in &nads {
        networks.push(json!({ "name": nad, "multus": { "networkName": nad } }));
        interfaces.push(json!({ "name": nad, "bridge": {} }));
    }
    let disks: Vec<Value> = spec.disks.iter().map(|d| json!({ "name": d.name, "disk": { "bus": "virtio" } })).collect();
    let mut volumes: Vec<Value> = spec
        .disks
        .iter()
        .map(|d| json!({ "name": d.name, "persistentVolumeClaim": { "claimName": names::data_volume_name(name, &d.name) } }))
        .collect();
    if spec.os_image.is_some() || spec.ssh_key_secret.is_some() || spec.cloud_init_user.is_some() {
        volumes.push(json!({ "name": "cloudinitdisk", "cloudInitNoCloud": { "userData": user_data(wukong) } }));
    }
    let running = spec.start_strategy.as_ref().is_none_or(|s| s.auto_start == Some(true));
    let mut template_spec = json!({
        "domain": {
            "cpu": { "cores": spec.cpu },
            "memory": { "guest": spec.memory },
            "devices": { "disks": disks, "interfaces": interfaces },
            "resources": {},
        },
        "networks": networks,
        "volumes": volumes,
    });
    if let Some(ha) = &spec.high_availability {
        if !ha.node_selector.is_empty() {
            template_spec["nodeSelector"] = json!(ha.node_selector);
        }
        if !ha.tolerations.is_empty() {
            let tolerations: Vec<Value> = ha
                .tolerations
                .iter()
                .map(|t| json!({ "key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect }))
                .collect();
            template_spec["tolerations"] = json!(tolerations);
        }
    }
    let mut metadata = json!({ "name": names::vm_name(name), "namespace": names::namespace_of(wukong) });
    if let Some(uid) = &wukong.metadata.uid {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "name": name, "uid": uid, "controller": true,
        }]);
    }
    if !annotation.is_empty() {
        metadata["annotations"] = annotations.clone();
    }
    json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": metadata,
        "spec": { "running": running, "template": { "metadata": { "annotations": annotations }, "spec": template_spec } },
    })
}

/// The original's user data: its user (with the defaults it gave), password SSH and root login
/// allowed, and a `network` section for static addresses keyed by network name.
fn user_data(wukong: &Wukong) -> String {
    let spec = &wukong.spec;
    let mut out = String::from("#cloud-config\n");
    if let Some(user) = &spec.cloud_init_user {
        out.push_str(&format!("users:\n  - name: {}\n", user.name));
        if let Some(hash) = user.password_hash.as_ref().or(user.password.as_ref()) {
            out.push_str(&format!("    passwd: {hash}\n"));
        }
        let sudo = user.sudo.as_deref().filter(|s| !s.is_empty()).unwrap_or("ALL=(ALL) NOPASSWD:ALL");
        out.push_str(&format!("    sudo: {sudo}\n    shell: {}\n", user.shell.as_deref().unwrap_or("/bin/bash")));
        if user.groups.is_empty() {
            out.push_str("    groups: sudo, adm, dialout, cdrom, floppy, audio, dip, video, plugdev, netdev\n");
        } else {
            out.push_str("    groups:\n");
            for g in &user.groups {
                out.push_str(&format!("      - {g}\n"));
            }
        }
        out.push_str(&format!(
            "    lock_passwd: {}\n\nssh_pwauth: true\ndisable_root: false\n",
            user.lock_passwd.unwrap_or(false)
        ));
    }
    let statics: Vec<_> = spec
        .networks
        .iter()
        .filter_map(|n| n.ip_config.as_ref().filter(|ip| ip.mode == IpMode::Static).map(|ip| (n, ip)))
        .filter(|(_, ip)| ip.address.is_some())
        .collect();
    if !statics.is_empty() {
        out.push_str("\nnetwork:\n  version: 2\n  ethernets:\n");
        for (n, ip) in statics {
            out.push_str(&format!(
                "    {}:\n      addresses:\n        - {}\n",
                n.name,
                ip.address.as_deref().unwrap_or_default()
            ));
            if let Some(gw) = &ip.gateway {
                out.push_str(&format!("      gateway4: {gw}\n"));
            }
        }
    }
    out
}

/// The finalizer the original added to every Wukong.
pub fn finalizers() -> Value {
    json!([super::ORIGINAL_FINALIZER])
}

/// The status the original wrote for a Wukong whose VM runs.
pub fn status(wukong: &Wukong) -> Value {
    let name = names::name_of(wukong);
    let now = "2025-11-01T00:00:00Z";
    let condition = |type_: &str, reason: &str, message: String| json!({ "type": type_, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now });
    let networks: Vec<Value> = wukong
        .spec
        .networks
        .iter()
        .zip(nad_names(wukong))
        .map(|(n, nad)| json!({ "name": n.name, "nadName": nad }))
        .collect();
    let volumes: Vec<Value> = wukong
        .spec
        .disks
        .iter()
        .map(|d| {
            json!({ "name": d.name, "pvcName": names::data_volume_name(name, &d.name), "bound": true, "size": d.size })
        })
        .collect();
    json!({
        "phase": "Running",
        "vmName": names::vm_name(name),
        "conditions": [
            condition("Ready", "VMRunning", "Virtual machine is running".into()),
            condition("NetworksConfigured", "NetworksReady", format!("{} networks configured", networks.len())),
            condition("VolumesBound", "VolumesReady", format!("{} volumes bound", volumes.len())),
        ],
        "networks": networks,
        "volumes": volumes,
    })
}
