//! DESIGN §4's behaviour table, row by row, on the pure decision.

use serde_json::json;

use super::*;
use crate::validate_object;

fn valid(networks: serde_json::Value) -> Validated {
    validate_object(&json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10", "generation": 3 },
        "spec": { "cpu": 2, "memory": "4Gi", "networks": networks }
    }))
    .expect("valid")
}

fn seed() -> Validated {
    valid(json!([
        { "name": "mgmt", "type": "bridge", "vlanId": 100,
          "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
        { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } }
    ]))
}

fn all_kinds() -> Kinds {
    Kinds { nad: true, vm: true, vmi: true, data_volume: true, kubevirt_config: true }
}

fn facts(valid: &Validated) -> Facts {
    let (generated, named) = wanted_nads(valid, &Policy::default());
    Facts {
        kinds: all_kinds(),
        generated_nads: generated.into_iter().map(|n| (n, Presence::Absent)).collect(),
        named_nads: named.into_iter().map(|n| (n, true)).collect(),
        owned_nads: BTreeSet::new(),
        vm: Presence::Absent,
        ssh_keys: SshKeys::NotNamed,
        cloud_init_secret: Presence::Absent,
        kubevirt: None,
        live_vm: None,
    }
}

fn nad_names(d: &Decision) -> Vec<&str> {
    d.apply_nads.iter().map(|n| n.metadata.name.as_deref().unwrap()).collect()
}

fn vm_networks(d: &Decision) -> Vec<String> {
    match &d.vm {
        VmAction::Apply(vm) => vm.spec.template.spec.networks.iter().map(|n| n.name.clone()).collect(),
        VmAction::Hold(v) => panic!("VM held: {v:?}"),
    }
}

fn held(d: &Decision) -> &Verdict {
    match &d.vm {
        VmAction::Hold(v) => v,
        VmAction::Apply(_) => panic!("the VM is applied"),
    }
}

#[test]
fn generated_nad_missing_is_created_owned_by_the_wukong_then_the_vm() {
    let v = seed();
    let d = decide(&v, &facts(&v), &Policy::default());
    assert_eq!(nad_names(&d), ["web-mgmt-nad", "web-data-nad"]);
    let owner = &d.apply_nads[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Wukong", "web", Some(true)));
    assert_eq!(vm_networks(&d), ["default", "mgmt", "data"]);
    assert!(d.networks.ready);
    assert_eq!(d.networks.reason, Reason::NetworksAttached);
    assert!(d.delete_nads.is_empty());
}

#[test]
fn generated_nad_that_is_ours_is_applied_again_so_drift_is_restored() {
    let v = seed();
    let mut f = facts(&v);
    f.generated_nads.values_mut().for_each(|p| *p = Presence::Ours);
    f.owned_nads = ["web-mgmt-nad".to_string(), "web-data-nad".to_string()].into();
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(nad_names(&d), ["web-mgmt-nad", "web-data-nad"]);
    assert!(d.delete_nads.is_empty());
}

#[test]
fn foreign_nad_with_the_generated_name_is_never_touched_and_holds_the_vm() {
    let v = seed();
    let mut f = facts(&v);
    f.generated_nads.insert("web-mgmt-nad".into(), Presence::Foreign);
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(nad_names(&d), ["web-data-nad"], "only our own NAD is applied");
    assert_eq!(d.networks.reason, Reason::NadConflict);
    assert!(!d.networks.ready);
    assert!(d.networks.message.contains("prod/web-mgmt-nad exists and is not controlled by this Wukong"));
    assert_eq!(held(&d).reason, Reason::WaitingForNetworks);
    assert!(d.delete_nads.is_empty(), "a foreign NAD is never deleted either");
}

#[test]
fn existing_nad_named_by_nad_name_is_used_and_never_modified() {
    let v = valid(json!([{ "name": "lan", "type": "bridge", "nadName": "office-lan" }]));
    let d = decide(&v, &facts(&v), &Policy::default());
    assert!(d.apply_nads.is_empty(), "nothing is generated for nadName");
    match &d.vm {
        VmAction::Apply(vm) => {
            assert_eq!(vm.spec.template.spec.networks[1].multus.as_ref().unwrap().network_name, "office-lan")
        }
        VmAction::Hold(h) => panic!("{h:?}"),
    }
    assert_eq!(d.networks.reason, Reason::NetworksAttached);
}

#[test]
fn missing_nad_named_by_nad_name_holds_the_vm_back() {
    let v = valid(json!([{ "name": "lan", "type": "bridge", "nadName": "office-lan" }]));
    let mut f = facts(&v);
    f.named_nads.values_mut().for_each(|e| *e = false);
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(d.networks.reason, Reason::NadNotFound);
    assert!(d.networks.message.contains("prod/office-lan, which does not exist"));
    assert_eq!(held(&d).reason, Reason::WaitingForNetworks);
}

#[test]
fn nad_in_another_namespace_needs_the_allow_list() {
    let v = valid(json!([{ "name": "infra", "type": "bridge", "nadName": "infra/vlan42" }]));
    let (_, named) = wanted_nads(&v, &Policy::default());
    assert!(named.is_empty(), "a forbidden namespace is not even looked up");
    let d = decide(&v, &facts(&v), &Policy::default());
    assert_eq!(d.networks.reason, Reason::NadNamespaceForbidden);
    assert!(d.networks.message.contains("--nad-namespaces"));
    assert_eq!(held(&d).reason, Reason::WaitingForNetworks);

    let policy = Policy { nad_namespaces: ["infra".to_string()].into(), ..Policy::default() };
    let (_, named) = wanted_nads(&v, &policy);
    let mut f = facts(&v);
    f.named_nads = named.into_iter().map(|n| (n, true)).collect();
    let d = decide(&v, &f, &policy);
    assert_eq!(d.networks.reason, Reason::NetworksAttached);
    assert_eq!(vm_networks(&d), ["default", "infra"]);
}

#[test]
fn network_removed_or_switched_to_nad_name_deletes_the_nad_we_generated() {
    let v = valid(json!([
        { "name": "mgmt", "type": "bridge" },
        { "name": "data", "type": "bridge", "nadName": "shared-data" }
    ]));
    let mut f = facts(&v);
    f.owned_nads = ["web-mgmt-nad", "web-data-nad", "web-old-nad"].map(String::from).into();
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(d.delete_nads, ["web-data-nad", "web-old-nad"]);
    assert_eq!(nad_names(&d), ["web-mgmt-nad"]);
}

#[test]
fn multus_absent_falls_back_to_the_pod_network() {
    let v = seed();
    let mut f = facts(&v);
    f.kinds.nad = false;
    f.owned_nads.clear();
    let d = decide(&v, &f, &Policy::default());
    assert!(d.apply_nads.is_empty());
    assert!(d.delete_nads.is_empty());
    assert_eq!(vm_networks(&d), ["default"], "the VM gets the pod network only");
    assert_eq!(d.networks.reason, Reason::MultusNotInstalled);
    assert!(d.networks.message.contains("networks mgmt, data fell back to the pod network"));
}

fn live_vm(nads: &[&str], secrets: &[&str]) -> Option<LiveVm> {
    Some(LiveVm {
        nads: nads.iter().map(|n| NadRef::parse(n, "prod")).collect(),
        secrets: secrets.iter().map(|s| s.to_string()).collect(),
    })
}

#[test]
fn multus_gone_holds_an_existing_vm_with_secondary_networks_instead_of_stripping_them() {
    let v = seed();
    let mut f = facts(&v);
    f.kinds.nad = false;
    f.vm = Presence::Ours;
    f.live_vm = live_vm(&["web-mgmt-nad", "web-data-nad"], &[]);
    f.owned_nads = ["web-mgmt-nad".to_string()].into();
    let d = decide(&v, &f, &Policy::default());
    let verdict = held(&d);
    assert_eq!(verdict.reason, Reason::MultusNotInstalled);
    assert!(
        verdict.message.contains("keeps its secondary networks (prod/web-data-nad, prod/web-mgmt-nad)"),
        "{}",
        verdict.message
    );
    assert!(d.delete_nads.is_empty() && d.apply_nads.is_empty());
    assert_eq!(d.apply_secret, None);
    // A VM that only has the pod network has nothing to lose: the fallback applies.
    f.live_vm = live_vm(&[], &[]);
    assert_eq!(vm_networks(&decide(&v, &f, &Policy::default())), ["default"]);
}

#[test]
fn a_held_vm_keeps_the_nads_it_uses() {
    // data switched to a nadName that does not exist: the VM is held, so its NAD stays.
    let v = valid(json!([
        { "name": "mgmt", "type": "bridge" },
        { "name": "data", "type": "bridge", "nadName": "shared-data" }
    ]));
    let mut f = facts(&v);
    f.named_nads.values_mut().for_each(|exists| *exists = false);
    f.vm = Presence::Ours;
    f.live_vm = live_vm(&["web-mgmt-nad", "web-data-nad"], &[]);
    f.owned_nads = ["web-mgmt-nad", "web-data-nad", "web-old-nad"].map(String::from).into();
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(held(&d).reason, Reason::WaitingForNetworks);
    assert_eq!(d.delete_nads, ["web-old-nad"], "only what the live VM no longer uses");
    // Once the NAD exists the VM is applied without data's generated NAD, which can go.
    f.named_nads.values_mut().for_each(|exists| *exists = true);
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(d.delete_nads, ["web-data-nad", "web-old-nad"]);
}

#[test]
fn the_cloud_init_secret_goes_when_nothing_needs_it() {
    let v = valid(json!([{ "name": "lan", "type": "bridge" }]));
    let mut f = facts(&v);
    f.cloud_init_secret = Presence::Ours;
    f.vm = Presence::Ours;
    f.live_vm = live_vm(&["web-lan-nad"], &["web-cloudinit"]);
    let d = decide(&v, &f, &Policy::default());
    assert!(d.delete_secret, "old hashes and keys do not linger");
    // Never a foreign one, and never while a held VM still uses it.
    f.cloud_init_secret = Presence::Foreign;
    assert!(!decide(&v, &f, &Policy::default()).delete_secret);
    f.cloud_init_secret = Presence::Ours;
    f.kinds.vm = false;
    assert!(!decide(&v, &f, &Policy::default()).delete_secret);
    let needs = with_spec(json!({}));
    let mut f = facts(&needs);
    f.cloud_init_secret = Presence::Ours;
    assert!(!decide(&needs, &f, &Policy::default()).delete_secret);
}

#[test]
fn kubevirt_absent_still_reconciles_the_nads() {
    let v = seed();
    let mut f = facts(&v);
    f.kinds.vm = false;
    f.kinds.vmi = false;
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(nad_names(&d), ["web-mgmt-nad", "web-data-nad"]);
    assert_eq!(held(&d).reason, Reason::KubeVirtNotInstalled);
    assert!(d.networks.ready);
}

#[test]
fn a_foreign_vm_with_our_name_is_never_overwritten() {
    let v = seed();
    let mut f = facts(&v);
    f.vm = Presence::Foreign;
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(held(&d).reason, Reason::VirtualMachineConflict);
    assert!(held(&d).message.contains("VirtualMachine web-vm exists and is not controlled by this Wukong"));
}

#[test]
fn pod_network_only_is_ready_at_once() {
    let v = valid(json!([]));
    let d = decide(&v, &facts(&v), &Policy::default());
    assert_eq!(d.networks.reason, Reason::PodNetworkOnly);
    assert!(d.networks.ready);
    assert_eq!(vm_networks(&d), ["default"]);
}

#[test]
fn several_problems_are_all_named_and_the_gravest_gives_the_reason() {
    let v = valid(json!([
        { "name": "lan", "type": "bridge", "nadName": "office-lan" },
        { "name": "mgmt", "type": "bridge" }
    ]));
    let mut f = facts(&v);
    f.named_nads.values_mut().for_each(|e| *e = false);
    f.generated_nads.insert("web-mgmt-nad".into(), Presence::Foreign);
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(d.networks.reason, Reason::NadConflict);
    assert!(d.networks.message.contains("office-lan, which does not exist"));
    assert!(d.networks.message.contains("web-mgmt-nad exists and is not controlled"));
}

// ---- cloud-init and sshKeySecret -------------------------------------------------------

/// The seed's networks plus `extra` spec fields.
fn with_spec(extra: serde_json::Value) -> Validated {
    let mut object = json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10", "generation": 3 },
        "spec": { "cpu": 2, "memory": "4Gi", "networks": [
            { "name": "mgmt", "type": "bridge",
              "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } } ] }
    });
    for (k, v) in extra.as_object().unwrap() {
        object["spec"][k] = v.clone();
    }
    validate_object(&object).expect("valid")
}

fn secret_text(d: &Decision, key: &str) -> String {
    let secret = d.apply_secret.as_ref().expect("a cloud-init Secret is applied");
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

fn vm_volumes(d: &Decision) -> Vec<String> {
    match &d.vm {
        VmAction::Apply(vm) => vm.spec.template.spec.volumes.iter().map(|v| v.name.clone()).collect(),
        VmAction::Hold(v) => panic!("VM held: {v:?}"),
    }
}

#[test]
fn a_missing_ssh_key_secret_holds_the_vm_and_applies_no_cloud_init_secret() {
    let v = with_spec(json!({ "sshKeySecret": "web-keys" }));
    assert_eq!(wanted_ssh_key_secret(&v), Some("web-keys"));
    let mut f = facts(&v);
    f.ssh_keys = SshKeys::SecretNotFound;
    let d = decide(&v, &f, &Policy::default());
    let verdict = held(&d);
    assert_eq!(verdict.reason, Reason::SecretNotFound);
    assert!(!verdict.ready);
    assert_eq!(
        verdict.message,
        "Secret prod/web-keys named by sshKeySecret does not exist: create it with the SSH public keys as its values"
    );
    assert_eq!(d.apply_secret, None, "no cloud-init Secret without its keys");
    assert_eq!(nad_names(&d), ["web-mgmt-nad"], "the networks are reconciled meanwhile");
    assert!(d.networks.ready);
}

#[test]
fn the_ssh_key_secret_is_named_in_access_credentials_never_read() {
    let v = with_spec(json!({ "sshKeySecret": "web-keys", "cloudInitUser": { "name": "ops" } }));
    let mut f = facts(&v);
    f.ssh_keys = SshKeys::Found;
    let d = decide(&v, &f, &Policy::default());
    let secret = d.apply_secret.as_ref().unwrap();
    assert_eq!(secret.metadata.name.as_deref(), Some("web-cloudinit"));
    assert_eq!(secret.metadata.namespace.as_deref(), Some("prod"));
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Wukong", "web", Some(true)));
    assert!(!secret_text(&d, "userdata").contains("ssh"), "no keys in the cloud-init Secret: KubeVirt adds them");
    assert!(secret_text(&d, "networkdata").contains("\"192.168.100.10/24\""));
    assert_eq!(vm_volumes(&d), ["cloudinit"]);
    let VmAction::Apply(vm) = &d.vm else { unreachable!() };
    let credential = serde_json::to_value(&vm.spec.template.spec.access_credentials).unwrap();
    assert_eq!(
        credential,
        json!([{ "sshPublicKey": { "source": { "secret": { "secretName": "web-keys" } }, "propagationMethod": { "noCloud": {} } } }])
    );
    let source = vm.spec.template.spec.volumes[0].cloud_init_no_cloud.as_ref().unwrap();
    assert_eq!(source.secret_ref.as_ref().unwrap().name, "web-cloudinit");
    assert_eq!(source.network_data_secret_ref.as_ref().unwrap().name, "web-cloudinit");
}

#[test]
fn nothing_to_say_means_no_cloud_init_secret_and_no_cloud_init_disk() {
    let v = valid(json!([{ "name": "lan", "type": "bridge" }]));
    let d = decide(&v, &facts(&v), &Policy::default());
    assert_eq!(d.apply_secret, None);
    assert!(vm_volumes(&d).is_empty());
    let VmAction::Apply(vm) = &d.vm else { unreachable!() };
    assert_eq!(vm.spec.template.spec.domain.devices.interfaces[0].mac_address, None, "pod MAC left to KubeVirt");
}

#[test]
fn a_held_vm_gets_no_cloud_init_secret() {
    let v = with_spec(json!({ "cloudInitUser": { "name": "ops" } }));
    let mut f = facts(&v);
    f.kinds.vm = false;
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(held(&d).reason, Reason::KubeVirtNotInstalled);
    assert_eq!(d.apply_secret, None);
}

#[test]
fn without_multus_the_fallen_back_networks_are_not_in_the_network_data() {
    let v = with_spec(json!({ "cloudInitUser": { "name": "ops" } }));
    let mut f = facts(&v);
    f.kinds.nad = false;
    let d = decide(&v, &f, &Policy::default());
    let secret = d.apply_secret.as_ref().unwrap();
    assert!(secret.data.as_ref().unwrap().contains_key("userdata"));
    assert!(!secret.data.as_ref().unwrap().contains_key("networkdata"), "the VM has no such interface");
    let VmAction::Apply(vm) = &d.vm else { unreachable!() };
    let source = vm.spec.template.spec.volumes[0].cloud_init_no_cloud.as_ref().unwrap();
    assert_eq!(source.network_data_secret_ref, None);
}

#[test]
fn the_secret_check_comes_after_kubevirt_and_before_the_networks() {
    let v = with_spec(json!({ "sshKeySecret": "web-keys" }));
    let mut f = facts(&v);
    f.ssh_keys = SshKeys::SecretNotFound;
    f.generated_nads.insert("web-mgmt-nad".into(), Presence::Foreign);
    let d = decide(&v, &f, &Policy::default());
    // Both problems are visible: NetworksReady names the NAD, VirtualMachineReady the Secret.
    assert_eq!(d.networks.reason, Reason::NadConflict);
    assert_eq!(held(&d).reason, Reason::SecretNotFound);
    f.kinds.vm = false;
    assert_eq!(held(&decide(&v, &f, &Policy::default())).reason, Reason::KubeVirtNotInstalled);
}

#[test]
fn a_foreign_secret_with_the_cloud_init_name_holds_the_vm() {
    let v = seed();
    let mut f = facts(&v);
    f.cloud_init_secret = Presence::Foreign;
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(held(&d).reason, Reason::SecretConflict);
    assert!(held(&d).message.contains("prod/web-cloudinit exists and is not controlled by this Wukong"));
    assert_eq!(d.apply_secret, None, "never overwritten");
    assert_eq!(nad_names(&d), ["web-mgmt-nad", "web-data-nad"], "the networks are still reconciled");
}

fn kubevirt_registering(plugins: &[&str]) -> Option<KubeVirtCapabilities> {
    Some(KubeVirtCapabilities {
        source: "kubevirt/kubevirt".into(),
        version: Some("v1.8.4".into()),
        binding_plugins: plugins.iter().map(|p| p.to_string()).collect(),
        feature_gates: BTreeSet::new(),
    })
}

fn with_macvlan() -> Validated {
    valid(json!([
        { "name": "mgmt", "type": "bridge" },
        { "name": "uplink", "type": "macvlan", "master": "eth1" }
    ]))
}

#[test]
fn a_macvlan_network_without_kubevirts_macvtap_binding_holds_the_vm_and_says_what_to_register() {
    let v = with_macvlan();
    let mut f = facts(&v);
    f.kubevirt = kubevirt_registering(&["passt"]);
    let d = decide(&v, &f, &Policy::default());
    let verdict = held(&d);
    assert_eq!(verdict.reason, Reason::BindingNotRegistered);
    assert!(
        verdict.message.contains("network uplink needs KubeVirt's network binding plugin macvtap, which KubeVirt CR kubevirt/kubevirt does not register (spec.configuration.network.binding.macvtap)"),
        "{}",
        verdict.message
    );
    // The NADs are still reconciled, and no cloud-init Secret is written for a held VM.
    assert_eq!(nad_names(&d), ["web-mgmt-nad", "web-uplink-nad"]);
    assert!(d.networks.ready);
}

#[test]
fn a_registered_binding_or_an_unknown_kubevirt_lets_the_vm_through() {
    let v = with_macvlan();
    let mut f = facts(&v);
    f.kubevirt = kubevirt_registering(&["macvtap"]);
    assert_eq!(vm_networks(&decide(&v, &f, &Policy::default())), ["default", "mgmt", "uplink"]);
    // No KubeVirt CR could be read: nothing to hold the VM for (KubeVirt's status will tell).
    f.kubevirt = None;
    assert_eq!(vm_networks(&decide(&v, &f, &Policy::default())), ["default", "mgmt", "uplink"]);
}

#[test]
fn networks_without_a_binding_plugin_need_no_registration() {
    let v = seed();
    let mut f = facts(&v);
    f.kubevirt = kubevirt_registering(&[]);
    assert_eq!(vm_networks(&decide(&v, &f, &Policy::default())), ["default", "mgmt", "data"]);
}

#[test]
fn without_multus_a_macvlan_network_falls_back_and_needs_no_binding() {
    let v = with_macvlan();
    let mut f = facts(&v);
    f.kinds.nad = false;
    f.kubevirt = kubevirt_registering(&[]);
    assert_eq!(vm_networks(&decide(&v, &f, &Policy::default())), ["default"]);
}
