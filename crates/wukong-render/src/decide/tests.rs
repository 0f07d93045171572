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
    Kinds { nad: true, vm: true, vmi: true }
}

fn facts(valid: &Validated) -> Facts {
    let (generated, named) = wanted_nads(valid, &Policy::default());
    Facts {
        kinds: all_kinds(),
        generated_nads: generated.into_iter().map(|n| (n, Presence::Absent)).collect(),
        named_nads: named.into_iter().map(|n| (n, true)).collect(),
        owned_nads: BTreeSet::new(),
        vm: Presence::Absent,
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
