//! The preview of an edit, offline (`--from old.yaml`): every kind of network change.

use serde_json::{Value, json};
use wukong_api::Applies;

use super::*;
use crate::validate_object;

fn manifest(networks: Value) -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod" },
        "spec": { "cpu": 2, "memory": "4Gi",
                  "disks": [{ "name": "data", "size": "20Gi", "storageClassName": "fast" }],
                  "networks": networks }
    })
}

fn seed() -> Value {
    manifest(json!([
        { "name": "mgmt", "type": "bridge", "vlanId": 100,
          "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
        { "name": "data", "type": "bridge" }
    ]))
}

fn edit(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = seed();
    f(&mut v);
    v
}

fn of(old: &Value, new: &Value, kubevirt: Option<KubeVirtCapabilities>) -> Preview {
    let (old, new) = (validate_object(old).unwrap(), validate_object(new).unwrap());
    let facts = facts_of(&old, &Policy::default(), kubevirt);
    preview(&new, Some(&old), &facts, &Policy::default())
}

fn rows(p: &Preview) -> Vec<(String, String, Applies)> {
    p.changes.iter().map(|c| (c.subject.clone(), c.change.clone(), c.applies)).collect()
}

#[test]
fn nothing_changed_nothing_to_say() {
    let p = of(&seed(), &seed(), None);
    assert!(p.running);
    assert_eq!(rows(&p), vec![]);
    assert_eq!((p.wukong.as_str(), p.vm.as_str()), ("prod/web", "prod/web-vm"));
}

#[test]
fn a_running_vm_previews_hot_plug_unplug_and_link_state_as_live() {
    let added =
        edit(|v| v["spec"]["networks"].as_array_mut().unwrap().push(json!({ "name": "backup", "type": "bridge" })));
    assert_eq!(
        rows(&of(&seed(), &added, None)),
        [("network backup".into(), "added (bridge binding, NAD web-backup-nad)".into(), Applies::Live)]
    );
    let removed = edit(|v| v["spec"]["networks"].as_array_mut().unwrap().truncate(1));
    let p = of(&seed(), &removed, None);
    assert_eq!(p.changes.len(), 1);
    assert_eq!((p.changes[0].subject.as_str(), p.changes[0].applies), ("network data", Applies::Live));
    assert!(p.changes[0].change.starts_with("removed: unplugged"));
    let down = edit(|v| v["spec"]["networks"][1]["linkState"] = json!("down"));
    assert_eq!(
        rows(&of(&seed(), &down, None)),
        [("network data".into(), "linkState - -> down; link up -> down".into(), Applies::Live)]
    );
}

#[test]
fn a_vlan_change_is_a_restart_or_with_live_update_nad_ref_a_migration() {
    let vlan = edit(|v| v["spec"]["networks"][0]["vlanId"] = json!(200));
    let p = of(&seed(), &vlan, None);
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert!(
        p.changes[0].change.starts_with("vlanId 100 -> 200; NAD web-mgmt-nad -> NAD web-mgmt-"),
        "{}",
        p.changes[0].change
    );
    assert_eq!((p.changes[0].applies, p.changes[0].restart_flagged), (Applies::Restart, true));
    assert_eq!(p.restarts(), 1);
    let gated = KubeVirtCapabilities { feature_gates: ["LiveUpdateNADRef".to_string()].into(), ..Default::default() };
    assert_eq!(of(&seed(), &vlan, Some(gated)).changes[0].applies, Applies::Migration);
}

#[test]
fn an_address_change_also_says_what_cloud_init_does() {
    let moved = edit(|v| v["spec"]["networks"][0]["ipConfig"]["address"] = json!("192.168.100.11/24"));
    let subjects: Vec<(String, Applies)> =
        of(&seed(), &moved, None).changes.into_iter().map(|c| (c.subject, c.applies)).collect();
    assert_eq!(subjects, [("network mgmt".into(), Applies::Restart), ("cloud-init".into(), Applies::Restart)]);
}

#[test]
fn a_grown_disk_and_a_stopped_vm() {
    let grown = edit(|v| v["spec"]["disks"][0]["size"] = json!("30Gi"));
    let p = of(&seed(), &grown, None);
    assert_eq!(rows(&p), [("disk data".into(), "size 20Gi -> 30Gi".into(), Applies::Restart)]);
    let expanding = KubeVirtCapabilities { feature_gates: ["ExpandDisks".to_string()].into(), ..Default::default() };
    assert_eq!(of(&seed(), &grown, Some(expanding)).changes[0].applies, Applies::Live);
    // The old manifest keeps the VM stopped: everything applies when it starts.
    let halted = |v: &mut Value| v["spec"]["startStrategy"] = json!({ "runStrategy": "Halted" });
    let old = edit(halted);
    let new = edit(|v| {
        halted(v);
        v["spec"]["networks"][0]["vlanId"] = json!(200);
        v["spec"]["networks"].as_array_mut().unwrap().truncate(1);
    });
    let p = of(&old, &new, None);
    assert!(!p.running);
    assert_eq!(
        rows(&p),
        [
            ("network data".into(), "removed".into(), Applies::AtStart),
            ("network mgmt".into(), "vlanId 100 -> 200".into(), Applies::AtStart)
        ]
    );
}

#[test]
fn a_held_vm_says_why() {
    let named = edit(|v| v["spec"]["networks"][1] = json!({ "name": "data", "type": "bridge", "nadName": "lan" }));
    let (old, new) = (validate_object(&seed()).unwrap(), validate_object(&named).unwrap());
    let mut facts = facts_of(&old, &Policy::default(), None);
    facts.named_nads.insert(crate::plan::NadRef { namespace: "prod".into(), name: "lan".into() }, false);
    let p = preview(&new, Some(&old), &facts, &Policy::default());
    assert_eq!(p.held.map(|h| h.reason), Some(wukong_api::conditions::Reason::WaitingForNetworks));
}
