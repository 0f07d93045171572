//! DESIGN §4's behaviour table, row by row, on the pure decision.

use serde_json::{Value, json};

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
        foreign_nads: BTreeMap::new(),
        live_vm_object: None,
        vm_instance: false,
        ..Facts::default()
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
        ..LiveVm::default()
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
        ..KubeVirtCapabilities::default()
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

// ---- a running VM (issue 15) ------------------------------------------------------------------

/// A cluster where a VM runs: the facts, and the live VM and its instance as JSON (read into
/// the facts by [`Live::facts`], as the shell reads them).
#[derive(Clone)]
struct Live {
    facts: Facts,
    vm: Value,
    vmi: Option<Value>,
}

impl Live {
    fn facts(&self) -> Facts {
        let mut f = self.facts.clone();
        f.live_vm = Some(LiveVm::from_vm(&self.vm, "prod"));
        f.instance = self.vmi.as_ref().and_then(Instance::from_vmi);
        f
    }
}

/// The cluster once `before` runs: its NADs (ours, with their attachments), its VM as applied,
/// and an instance started from that VM that reports every interface.
fn running(before: &Validated) -> Live {
    let d = decide(before, &facts(before), &Policy::default());
    let VmAction::Apply(vm) = &d.vm else { panic!("held") };
    let mut f = facts(before);
    for nad in &d.apply_nads {
        let name = nad.metadata.name.clone().unwrap();
        let attachment = nad.metadata.annotations.as_ref().unwrap()[wukong_api::labels::ATTACHMENT].clone();
        f.nad_attachments.insert(name.clone(), attachment);
        f.owned_nads.insert(name.clone());
        f.generated_nads.insert(name, Presence::Ours);
    }
    f.vm = Presence::Ours;
    let spec = serde_json::to_value(&vm.spec.template.spec).unwrap();
    let reported: Vec<Value> = vm.spec.template.spec.networks.iter().map(|n| json!({ "name": n.name })).collect();
    Live {
        facts: f,
        vm: serde_json::to_value(vm.as_ref()).unwrap(),
        vmi: Some(json!({ "spec": spec, "status": { "phase": "Running", "interfaces": reported } })),
    }
}

/// `live`, for deciding `after` (the NAD names `after` would generate are asked about too).
fn for_spec(mut live: Live, after: &Validated) -> Live {
    let (generated, named) = wanted_nads(after, &Policy::default());
    for name in generated {
        live.facts.generated_nads.entry(name).or_insert(Presence::Absent);
    }
    live.facts.named_nads = named.into_iter().map(|n| (n, true)).collect();
    live
}

fn applied(d: &Decision) -> &VirtualMachine {
    match &d.vm {
        VmAction::Apply(vm) => vm,
        VmAction::Hold(v) => panic!("VM held: {v:?}"),
    }
}

fn interface<'a>(d: &'a Decision, name: &str) -> &'a wukong_api::kubevirt::Interface {
    let vm = applied(d);
    vm.spec.template.spec.domain.devices.interfaces.iter().find(|i| i.name == name).unwrap()
}

fn nad_of(d: &Decision, network: &str) -> String {
    let vm = applied(d);
    let net = vm.spec.template.spec.networks.iter().find(|n| n.name == network).unwrap();
    net.multus.as_ref().unwrap().network_name.clone()
}

fn pending(d: &Decision) -> Vec<(String, String, wukong_api::Applies, bool)> {
    d.pending.iter().map(|c| (c.subject.clone(), c.change.clone(), c.applies, c.restart_flagged)).collect()
}

fn only_mgmt() -> Validated {
    valid(json!([
        { "name": "mgmt", "type": "bridge", "vlanId": 100,
          "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } }
    ]))
}

#[test]
fn a_network_added_to_a_running_vm_is_hot_plugged() {
    let f = for_spec(running(&only_mgmt()), &seed());
    let d = decide(&seed(), &f.facts(), &Policy::default());
    assert_eq!(vm_networks(&d), ["default", "mgmt", "data"]);
    assert_eq!(nad_names(&d), ["web-mgmt-nad", "web-data-nad"]);
    assert_eq!(
        pending(&d),
        [("network data".into(), "added (bridge binding, NAD web-data-nad)".into(), wukong_api::Applies::Live, false)]
    );
}

#[test]
fn a_bridge_network_removed_from_a_running_vm_is_unplugged_and_its_nad_kept_while_listed() {
    let f = for_spec(running(&seed()), &only_mgmt());
    let d = decide(&only_mgmt(), &f.facts(), &Policy::default());
    // The interface, exactly as the live VM has it, with state absent.
    assert_eq!(vm_networks(&d), ["default", "mgmt", "data"]);
    let data = interface(&d, "data");
    assert_eq!(data.state.as_deref(), Some("absent"));
    assert!(data.bridge.is_some() && data.mac_address.is_some());
    assert_eq!(nad_of(&d, "data"), "web-data-nad");
    assert_eq!(nad_names(&d), ["web-mgmt-nad"], "the NAD is not applied again");
    assert!(d.delete_nads.is_empty(), "the instance lists the interface: its NAD stays");
    assert_eq!(pending(&d).len(), 1);
    assert_eq!(d.pending[0].applies, wukong_api::Applies::Live);
    assert!(d.pending[0].change.starts_with("removed: unplugged"), "{:?}", d.pending);

    // KubeVirt marked it absent on the instance too; the instance still lists it.
    let mut f = f;
    let VmAction::Apply(vm) = &d.vm else { unreachable!() };
    f.vm = serde_json::to_value(vm.as_ref()).unwrap();
    let vmi = f.vmi.as_mut().unwrap();
    vmi["spec"] = serde_json::to_value(&vm.spec.template.spec).unwrap();
    let d = decide(&only_mgmt(), &f.facts(), &Policy::default());
    assert_eq!(interface(&d, "data").state.as_deref(), Some("absent"));
    assert!(d.delete_nads.is_empty());
    assert_eq!(d.pending[0].change, "being unplugged (interface state absent)");

    // virt-handler no longer reports it; KubeVirt dropped it from the instance and then from
    // the VM: wukong does not put it back, and deletes the NAD.
    let mut gone = f.clone();
    let vmi = gone.vmi.as_mut().unwrap();
    vmi["spec"]["networks"].as_array_mut().unwrap().retain(|n| n["name"] != "data");
    vmi["spec"]["domain"]["devices"]["interfaces"].as_array_mut().unwrap().retain(|n| n["name"] != "data");
    vmi["status"]["interfaces"].as_array_mut().unwrap().retain(|n| n["name"] != "data");
    let d = decide(&only_mgmt(), &gone.facts(), &Policy::default());
    assert_eq!(vm_networks(&d), ["default", "mgmt", "data"], "the live VM still has it: kept as it is");
    assert!(d.delete_nads.is_empty(), "the VM still names it");
    let live = &mut gone.vm;
    live["spec"]["template"]["spec"]["networks"].as_array_mut().unwrap().retain(|n| n["name"] != "data");
    live["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["name"] != "data");
    let d = decide(&only_mgmt(), &gone.facts(), &Policy::default());
    assert_eq!(vm_networks(&d), ["default", "mgmt"]);
    assert_eq!(d.delete_nads, ["web-data-nad"]);
    assert!(d.pending.is_empty(), "{:?}", d.pending);
}

#[test]
fn a_network_removed_from_a_stopped_vm_goes_at_once() {
    let mut f = for_spec(running(&seed()), &only_mgmt());
    f.vmi = None;
    let d = decide(&only_mgmt(), &f.facts(), &Policy::default());
    assert_eq!(vm_networks(&d), ["default", "mgmt"]);
    assert_eq!(d.delete_nads, ["web-data-nad"]);
    assert!(d.pending.is_empty());
    // An instance that has finished runs nothing either.
    f.vmi = running(&seed()).vmi.map(|mut v| {
        v["status"]["phase"] = json!("Succeeded");
        v
    });
    assert_eq!(vm_networks(&decide(&only_mgmt(), &f.facts(), &Policy::default())), ["default", "mgmt"]);
}

#[test]
fn without_multus_a_running_vm_loses_no_network() {
    let mut f = running(&seed());
    f.facts.kinds.nad = false;
    let d = decide(&seed(), &f.facts(), &Policy::default());
    assert_eq!(held(&d).reason, Reason::MultusNotInstalled, "held, never unplugged");
    assert!(d.delete_nads.is_empty() && d.pending.is_empty());
}

#[test]
fn an_sriov_network_removed_from_a_running_vm_waits_for_a_restart_and_keeps_its_nad() {
    let with_sriov = valid(json!([
        { "name": "mgmt", "type": "bridge" },
        { "name": "fast", "type": "sriov", "resourceName": "intel.com/vf" }
    ]));
    let without = valid(json!([{ "name": "mgmt", "type": "bridge" }]));
    let f = for_spec(running(&with_sriov), &without);
    let d = decide(&without, &f.facts(), &Policy::default());
    assert_eq!(vm_networks(&d), ["default", "mgmt"], "KubeVirt unplugs only bridge interfaces");
    assert!(d.delete_nads.is_empty(), "the instance still uses web-fast-nad");
    assert_eq!(pending(&d), [("network fast".into(), "removed".into(), wukong_api::Applies::Restart, true)]);
}

#[test]
fn link_state_reaches_the_interface_of_a_running_vm() {
    let down = valid(json!([
        { "name": "mgmt", "type": "bridge", "vlanId": 100,
          "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
        { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" }, "linkState": "down" }
    ]));
    let d = decide(&down, &for_spec(running(&seed()), &down).facts(), &Policy::default());
    assert_eq!(interface(&d, "data").state.as_deref(), Some("down"));
    assert_eq!(interface(&d, "mgmt").state, None);
    assert_eq!(pending(&d), [("network data".into(), "link up -> down".into(), wukong_api::Applies::Live, false)]);
    assert!(d.delete_nads.is_empty() && d.swapped_nads.is_empty(), "the link is no attachment");
}

fn vlan(id: i32) -> Validated {
    valid(json!([
        { "name": "mgmt", "type": "bridge", "vlanId": id,
          "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
        { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } }
    ]))
}

#[test]
fn a_vlan_change_of_a_running_vm_gets_a_new_nad_never_an_edit_under_the_running_pod() {
    let f = for_spec(running(&vlan(100)), &vlan(200));
    let d = decide(&vlan(200), &f.facts(), &Policy::default());
    let swapped = d.swapped_nads["mgmt"].name.clone();
    assert!(
        swapped.starts_with("web-mgmt-") && swapped.ends_with("-nad") && swapped.len() == "web-mgmt-12345678-nad".len()
    );
    assert_eq!(nad_names(&d), [swapped.as_str(), "web-data-nad"], "web-mgmt-nad is not rewritten");
    assert!(d.apply_nads[0].spec.config.contains("\"vlan\": 200"));
    assert_eq!(nad_of(&d, "mgmt"), swapped);
    assert!(d.delete_nads.is_empty(), "the instance still runs on web-mgmt-nad");
    // Without KubeVirt's LiveUpdateNADRef: a restart, which KubeVirt reports.
    assert_eq!(
        pending(&d),
        [("network mgmt".into(), format!("NAD web-mgmt-nad -> NAD {swapped}"), wukong_api::Applies::Restart, true)]
    );
    // The same decision on the next reconcile: the name is stable.
    assert_eq!(decide(&vlan(200), &f.facts(), &Policy::default()).swapped_nads["mgmt"].name, swapped);

    // With it, on v1.8: through a migration.
    let mut gated = f.clone();
    gated.facts.kubevirt = Some(KubeVirtCapabilities {
        version: Some("v1.8.4".into()),
        feature_gates: ["LiveUpdateNADRef".to_string()].into(),
        ..KubeVirtCapabilities::default()
    });
    let d = decide(&vlan(200), &gated.facts(), &Policy::default());
    assert_eq!(d.pending[0].applies, wukong_api::Applies::Migration);
    assert!(!d.pending[0].restart_flagged);

    // The instance restarted on the new NAD: the old one goes, the new one stays.
    let mut restarted = for_spec(f.clone(), &vlan(200));
    let VmAction::Apply(vm) = &d.vm else { unreachable!() };
    restarted.vm = serde_json::to_value(vm.as_ref()).unwrap();
    restarted.vmi.as_mut().unwrap()["spec"] = serde_json::to_value(&vm.spec.template.spec).unwrap();
    restarted.facts.owned_nads.insert(swapped.clone());
    restarted.facts.nad_attachments.insert(
        swapped.clone(),
        d.apply_nads[0].metadata.annotations.as_ref().unwrap()[wukong_api::labels::ATTACHMENT].clone(),
    );
    let d = decide(&vlan(200), &restarted.facts(), &Policy::default());
    assert_eq!(nad_of(&d, "mgmt"), swapped);
    assert_eq!(d.delete_nads, ["web-mgmt-nad"]);
    assert!(d.pending.is_empty());
    // And a change back while it runs there: web-mgmt-nad, which nothing runs on, is rewritten.
    let d = decide(&vlan(100), &for_spec(restarted, &vlan(100)).facts(), &Policy::default());
    assert_eq!(nad_of(&d, "mgmt"), "web-mgmt-nad");
    assert!(d.delete_nads.is_empty(), "the instance runs on {swapped}");
}

#[test]
fn a_vlan_change_of_a_stopped_vm_rewrites_its_nad_in_place() {
    let mut f = for_spec(running(&vlan(100)), &vlan(200));
    f.vmi = None;
    let d = decide(&vlan(200), &f.facts(), &Policy::default());
    assert!(d.swapped_nads.is_empty());
    assert_eq!(nad_of(&d, "mgmt"), "web-mgmt-nad");
    assert!(d.apply_nads[0].spec.config.contains("\"vlan\": 200"));
}

#[test]
fn a_nad_an_older_wukong_wrote_without_attachment_is_taken_as_current() {
    let mut f = for_spec(running(&vlan(100)), &vlan(200));
    f.facts.nad_attachments.clear();
    let d = decide(&vlan(200), &f.facts(), &Policy::default());
    assert!(d.swapped_nads.is_empty(), "upgrading wukong restarts nothing");
    assert_eq!(nad_of(&d, "mgmt"), "web-mgmt-nad");
}

#[test]
fn the_nad_of_a_held_vm_is_kept_while_the_live_vm_names_it() {
    let without_data = valid(json!([
        { "name": "mgmt", "type": "bridge" },
        { "name": "lan", "type": "bridge", "nadName": "office-lan" }
    ]));
    let mut f = for_spec(running(&seed()), &without_data);
    f.vmi = None;
    f.facts.named_nads.values_mut().for_each(|e| *e = false);
    let d = decide(&without_data, &f.facts(), &Policy::default());
    assert_eq!(held(&d).reason, Reason::WaitingForNetworks);
    assert!(d.delete_nads.is_empty(), "the VM left as it is still names web-data-nad");
}

// ---- what the original operator left ----------------------------------------------------------

/// The seed's networks with the original operator's forms: `default` typed, and disks.
fn original_form() -> Validated {
    validate_object(&json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10", "generation": 1 },
        "spec": { "cpu": 2, "memory": "4Gi",
            "networks": [
                { "name": "default", "type": "bridge", "ipConfig": { "mode": "dhcp" } },
                { "name": "mgmt", "type": "bridge", "vlanId": 100,
                  "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
                { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } }
            ],
            "disks": [
                { "name": "system", "size": "20Gi", "storageClassName": "longhorn", "boot": true, "image": "http://images.example/noble.img" },
                { "name": "data", "size": "50Gi", "storageClassName": "longhorn" }
            ] }
    }))
    .expect("the original's form is valid")
}

/// Facts of a cluster the original operator ran: its NADs (foreign to wukong) and its VM (which
/// its owner reference makes this Wukong's).
fn original_facts(v: &Validated, instance: bool) -> Facts {
    let mut f = facts(v);
    for nad in crate::legacy::original::nads(v.wukong()) {
        let name = nad["metadata"]["name"].as_str().unwrap().to_string();
        if f.generated_nads.contains_key(&name) {
            f.generated_nads.insert(name.clone(), Presence::Foreign);
            f.foreign_nads.insert(name, nad);
        }
    }
    f.vm = Presence::Ours;
    let vm = crate::legacy::original::vm(v.wukong());
    f.live_vm = Some(LiveVm::from_vm(&vm, "prod"));
    f.live_vm_object = Some(std::sync::Arc::new(vm));
    f.vm_instance = instance;
    f
}

fn applied_vm(d: &Decision) -> &VirtualMachine {
    match &d.vm {
        VmAction::Apply(vm) => vm,
        VmAction::Hold(v) => panic!("VM held: {v:?}"),
    }
}

#[test]
fn the_original_operators_nads_are_adopted_instead_of_a_conflict() {
    let v = original_form();
    let d = decide(&v, &original_facts(&v, true), &Policy::default());
    assert_eq!(d.adopted_nads, ["web-mgmt-nad", "web-data-nad"]);
    assert_eq!(nad_names(&d), ["web-mgmt-nad", "web-data-nad"], "applied with wukong's owner, labels and config");
    let adopted = &d.apply_nads[0];
    assert_eq!(adopted.metadata.owner_references.as_ref().unwrap()[0].name, "web");
    assert_eq!(adopted.metadata.labels.as_ref().unwrap()["vm.novasphere.dev/network"], "mgmt");
    assert!(adopted.spec.config.contains("\"name\": \"web-mgmt-nad\""), "{}", adopted.spec.config);
    assert_eq!(d.networks.reason, Reason::NetworksAttached);
    assert!(matches!(d.vm, VmAction::Apply(_)));
}

#[test]
fn a_foreign_nad_that_is_not_exactly_the_originals_rendering_stays_a_conflict() {
    let v = original_form();
    let mut f = original_facts(&v, true);
    f.foreign_nads.get_mut("web-mgmt-nad").unwrap()["metadata"]["labels"] = json!({ "team": "net" });
    let d = decide(&v, &f, &Policy::default());
    assert_eq!(d.adopted_nads, ["web-data-nad"]);
    assert_eq!(nad_names(&d), ["web-data-nad"], "the foreign NAD is never touched");
    assert_eq!(d.networks.reason, Reason::NadConflict);
    assert_eq!(held(&d).reason, Reason::WaitingForNetworks);
    assert!(d.vm_patch.is_empty(), "a held VM is not patched either");
    // Nor is a foreign NAD whose object the shell did not report.
    let mut f = original_facts(&v, true);
    f.foreign_nads.clear();
    assert_eq!(decide(&v, &f, &Policy::default()).networks.reason, Reason::NadConflict);
}

#[test]
fn the_original_operators_running_vm_keeps_its_disks_and_interface_names() {
    let v = original_form();
    let d = decide(&v, &original_facts(&v, true), &Policy::default());
    let vm = applied_vm(&d);
    let template = &vm.spec.template.spec;
    let claims: Vec<(&str, Option<&str>)> = template
        .volumes
        .iter()
        .map(|v| (v.name.as_str(), v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str())))
        .collect();
    assert_eq!(claims, [("system", Some("web-system")), ("data", Some("web-data")), ("cloudinit", None)]);
    assert!(vm.spec.data_volume_templates.is_empty(), "nothing is imported again");
    let networks: Vec<&str> = template.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(networks, ["default", "web-mgmt-nad", "web-data-nad"], "no interface is hot-plugged");
    let interfaces: Vec<&str> = template.domain.devices.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(interfaces, networks);
    assert_eq!(vm.spec.run_strategy.as_deref(), Some("Always"));
    assert_eq!(
        d.vm_patch[..3],
        [
            json!({ "op": "test", "path": "/spec/running", "value": true }),
            json!({ "op": "remove", "path": "/spec/running" }),
            json!({ "op": "add", "path": "/spec/runStrategy", "value": "Always" }),
        ]
    );
}

#[test]
fn a_stopped_original_vm_takes_wukongs_network_names_and_keeps_its_disks() {
    let v = original_form();
    let d = decide(&v, &original_facts(&v, false), &Policy::default());
    let vm = applied_vm(&d);
    let networks: Vec<&str> = vm.spec.template.spec.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(networks, ["default", "mgmt", "data"]);
    assert!(vm.spec.data_volume_templates.is_empty());
    assert!(d.takeover.interface_names.is_empty());
}

#[test]
fn a_vm_wukong_rendered_is_applied_as_always() {
    let v = original_form();
    let mut f = facts(&v);
    let first = decide(&v, &f, &Policy::default());
    let rendered = serde_json::to_value(applied_vm(&first)).unwrap();
    assert_eq!(rendered["spec"]["dataVolumeTemplates"].as_array().map(Vec::len), Some(2));
    f.vm = Presence::Ours;
    f.live_vm = Some(LiveVm::from_vm(&rendered, "prod"));
    f.live_vm_object = Some(std::sync::Arc::new(rendered));
    f.vm_instance = true;
    let again = decide(&v, &f, &Policy::default());
    assert_eq!(again.vm, first.vm, "the same VM");
    assert!(again.vm_patch.is_empty() && again.adopted_nads.is_empty());
}
