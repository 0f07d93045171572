//! KubeVirt's live-update rules, case by case, on templates as KubeVirt stores them.

use serde_json::{Value, json};
use wukong_api::Applies;

use super::*;

fn pod() -> (Value, Value) {
    (json!({ "name": "default", "masquerade": {} }), json!({ "name": "default", "pod": {} }))
}

fn bridge(name: &str, nad: &str) -> (Value, Value) {
    (
        json!({ "name": name, "bridge": {}, "macAddress": "02:00:00:00:00:0a" }),
        json!({ "name": name, "multus": { "networkName": nad } }),
    )
}

fn template(ifaces: &[(Value, Value)]) -> Value {
    json!({
        "domain": { "cpu": { "cores": 2 }, "memory": { "guest": "4Gi" },
                    "devices": { "interfaces": ifaces.iter().map(|i| i.0.clone()).collect::<Vec<_>>() } },
        "networks": ifaces.iter().map(|i| i.1.clone()).collect::<Vec<_>>()
    })
}

fn instance(spec: Value) -> Instance {
    let names: Vec<Value> = spec["networks"].as_array().unwrap().iter().map(|n| json!({ "name": n["name"] })).collect();
    Instance::from_vmi(&json!({ "spec": spec, "status": { "phase": "Running", "interfaces": names } })).unwrap()
}

fn classified(desired: Value, current: Value, kubevirt: &KubeVirtCapabilities) -> Vec<(String, String, Applies, bool)> {
    classify(&Template::from_json(&desired), &instance(current), kubevirt)
        .into_iter()
        .map(|c| (c.subject, c.change, c.applies, c.restart_flagged))
        .collect()
}

fn kubevirt() -> KubeVirtCapabilities {
    KubeVirtCapabilities { version: Some("v1.8.4".into()), ..Default::default() }
}

fn gated() -> KubeVirtCapabilities {
    KubeVirtCapabilities { feature_gates: ["LiveUpdateNADRef".to_string()].into(), ..kubevirt() }
}

fn row(subject: &str, change: &str, applies: Applies, flagged: bool) -> (String, String, Applies, bool) {
    (subject.into(), change.into(), applies, flagged)
}

#[test]
fn an_instance_started_from_the_template_has_nothing_pending_whatever_kubevirt_adds() {
    let spec = template(&[pod(), bridge("mgmt", "w-mgmt-nad")]);
    let mut vmi = spec.clone();
    vmi["domain"]["cpu"]["sockets"] = json!(1);
    vmi["domain"]["devices"]["interfaces"][1]["model"] = json!("virtio");
    vmi["domain"]["memory"]["guest"] = json!("4096Mi");
    vmi["domain"]["machine"] = json!({ "type": "q35" });
    assert_eq!(classified(spec, vmi, &kubevirt()), vec![]);
}

#[test]
fn a_new_interface_is_hot_plugged_by_binding() {
    let current = template(&[pod()]);
    let bridged = template(&[pod(), bridge("data", "w-data-nad")]);
    assert_eq!(
        classified(bridged, current.clone(), &kubevirt()),
        [row("network data", "added (bridge binding, NAD w-data-nad)", Applies::Live, false)]
    );
    let sriov = template(&[
        pod(),
        (json!({ "name": "fast", "sriov": {} }), json!({ "name": "fast", "multus": { "networkName": "w-fast-nad" } })),
    ]);
    let out = classify(&Template::from_json(&sriov), &instance(current.clone()), &kubevirt());
    assert_eq!((out[0].applies, out[0].restart_flagged), (Applies::Migration, false));
    assert!(
        out[0].reason.contains("only through a live migration") && out[0].reason.contains("virtctl migrate"),
        "{}",
        out[0].reason
    );
    let migrating = KubeVirtCapabilities { workload_update_methods: ["LiveMigrate".to_string()].into(), ..kubevirt() };
    let out = classify(&Template::from_json(&sriov), &instance(current.clone()), &migrating);
    assert!(out[0].reason.contains("KubeVirt migrates the VM by itself"), "{}", out[0].reason);
    // A VM KubeVirt says is not migratable gets it at the next restart, unflagged.
    let mut stuck = instance(current.clone());
    stuck.migratable = Some(false);
    stuck.not_migratable_because = Some("cannot migrate VMI with a host device".into());
    let out = classify(&Template::from_json(&sriov), &stuck, &kubevirt());
    assert_eq!((out[0].applies, out[0].restart_flagged), (Applies::Restart, false));
    assert!(out[0].reason.contains("cannot migrate VMI with a host device"));
    let macvtap = template(&[
        pod(),
        (
            json!({ "name": "up", "binding": { "name": "macvtap" } }),
            json!({ "name": "up", "multus": { "networkName": "w-up-nad" } }),
        ),
    ]);
    assert_eq!(
        classified(macvtap, current, &kubevirt()),
        [row("network up", "added (binding plugin macvtap binding, NAD w-up-nad)", Applies::Restart, false)]
    );
}

#[test]
fn an_absent_interface_is_unplugged_and_a_dropped_one_waits_for_a_restart() {
    let current = template(&[pod(), bridge("data", "w-data-nad")]);
    let mut absent = bridge("data", "w-data-nad");
    absent.0["state"] = json!("absent");
    let out = classified(template(&[pod(), absent.clone()]), current.clone(), &kubevirt());
    assert_eq!(out[0].2, Applies::Live);
    assert!(out[0].1.starts_with("removed: unplugged"));
    assert_eq!(
        classified(template(&[pod(), absent.clone()]), template(&[pod(), absent]), &kubevirt())[0].1,
        "being unplugged (interface state absent)"
    );
    assert_eq!(
        classified(template(&[pod()]), current, &kubevirt()),
        [row("network data", "removed", Applies::Restart, true)]
    );
}

#[test]
fn a_changed_interface_needs_a_restart_but_its_link_is_live() {
    let current = template(&[pod(), bridge("data", "w-data-nad")]);
    let mut down = bridge("data", "w-data-nad");
    down.0["state"] = json!("down");
    assert_eq!(
        classified(template(&[pod(), down.clone()]), current.clone(), &kubevirt()),
        [row("network data", "link up -> down", Applies::Live, false)]
    );
    let old = KubeVirtCapabilities { version: Some("v1.5.3".into()), ..Default::default() };
    assert_eq!(classified(template(&[pod(), down.clone()]), current.clone(), &old)[0].2, Applies::Restart);
    // up and unset are the same link: nothing to say.
    let mut up = bridge("data", "w-data-nad");
    up.0["state"] = json!("up");
    assert_eq!(classified(template(&[pod(), up]), current.clone(), &kubevirt()), vec![]);
    let mut moved = bridge("data", "w-data-nad");
    moved.0 = json!({ "name": "data", "sriov": {}, "macAddress": "02:00:00:00:00:0b" });
    assert_eq!(
        classified(template(&[pod(), moved]), current, &kubevirt()),
        [row(
            "network data",
            "binding bridge -> sriov, MAC 02:00:00:00:00:0a -> 02:00:00:00:00:0b",
            Applies::Restart,
            true
        )]
    );
}

#[test]
fn a_new_nad_is_a_restart_unless_live_update_nad_ref_migrates_it() {
    let current = template(&[pod(), bridge("mgmt", "w-mgmt-nad")]);
    let desired = template(&[pod(), bridge("mgmt", "w-mgmt-0a1b2c3d-nad")]);
    let what = "NAD w-mgmt-nad -> NAD w-mgmt-0a1b2c3d-nad";
    assert_eq!(
        classified(desired.clone(), current.clone(), &kubevirt()),
        [row("network mgmt", what, Applies::Restart, true)]
    );
    assert_eq!(
        classified(desired.clone(), current.clone(), &gated()),
        [row("network mgmt", what, Applies::Migration, false)]
    );
    // The gate on KubeVirt before v1.8 changes nothing.
    let old = KubeVirtCapabilities { version: Some("v1.7.0".into()), ..gated() };
    assert_eq!(classified(desired.clone(), current.clone(), &old)[0].2, Applies::Restart);
    // Not migratable, and KubeVirt evicts: it restarts the VM by itself.
    let evicting = KubeVirtCapabilities { workload_update_methods: ["Evict".to_string()].into(), ..gated() };
    let mut stuck = instance(current);
    stuck.migratable = Some(false);
    let out = classify(&Template::from_json(&desired), &stuck, &evicting);
    assert_eq!((out[0].applies, out[0].restart_flagged), (Applies::Restart, false));
    assert!(out[0].reason.contains("KubeVirt restarts it by itself (workloadUpdateMethods: Evict)"));
}

#[test]
fn cpu_memory_disks_and_scheduling_follow_the_rollout_strategy() {
    let current = template(&[pod()]);
    let mut desired = current.clone();
    desired["domain"]["cpu"]["cores"] = json!(4);
    desired["domain"]["memory"]["guest"] = json!("8Gi");
    desired["nodeSelector"] = json!({ "zone": "a" });
    desired["domain"]["devices"]["disks"] = json!([{ "name": "data", "disk": { "bus": "virtio" } }]);
    let out = classified(desired.clone(), current.clone(), &kubevirt());
    let subjects: Vec<(&str, Applies)> = out.iter().map(|c| (c.0.as_str(), c.2)).collect();
    // The cores need a restart, and virt-controller then holds memory and scheduling back too.
    assert_eq!(
        subjects,
        [
            ("cpu", Applies::Restart),
            ("memory", Applies::Restart),
            ("disk data", Applies::Restart),
            ("nodeSelector", Applies::Restart)
        ]
    );
    let mut live_only = current.clone();
    live_only["domain"]["memory"]["guest"] = json!("8Gi");
    live_only["nodeSelector"] = json!({ "zone": "a" });
    let out = classified(live_only.clone(), current.clone(), &kubevirt());
    assert_eq!(
        out.iter().map(|c| (c.0.as_str(), c.2)).collect::<Vec<_>>(),
        [("memory", Applies::Migration), ("nodeSelector", Applies::Live)]
    );
    let staged = KubeVirtCapabilities { rollout: RolloutStrategy::Stage, ..kubevirt() };
    assert!(classified(live_only.clone(), current.clone(), &staged).iter().all(|c| c.2 == Applies::Restart && c.3));
    let mut less = current.clone();
    less["domain"]["memory"]["guest"] = json!("2Gi");
    assert_eq!(classified(less, current, &kubevirt())[0].2, Applies::Restart);
}

#[test]
fn a_stopped_vm_takes_everything_when_it_starts() {
    let last = Template::from_json(&template(&[pod(), bridge("data", "w-data-nad")]));
    let desired = Template::from_json(&template(&[pod()]));
    let out = classify_stopped(&desired, &last);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].applies, out[0].restart_flagged), (Applies::AtStart, false));
}

#[test]
fn unplugging_keeps_the_live_interface_only_while_the_instance_lists_it() {
    let live_spec = template(&[pod(), bridge("mgmt", "w-mgmt-nad"), bridge("data", "w-data-nad")]);
    let live = Template::from_json(&live_spec);
    let desired_spec: VirtualMachineInstanceSpec =
        serde_json::from_value(template(&[pod(), bridge("mgmt", "w-mgmt-nad")])).unwrap();
    let vm = |spec: &VirtualMachineInstanceSpec| VirtualMachine {
        metadata: Default::default(),
        spec: wukong_api::kubevirt::VirtualMachineSpec {
            template: wukong_api::kubevirt::VirtualMachineTemplate { metadata: None, spec: spec.clone() },
            ..Default::default()
        },
        status: None,
    };
    let spec_networks: BTreeSet<&str> = ["mgmt"].into();
    let names = |vm: &VirtualMachine| {
        vm.spec
            .template
            .spec
            .domain
            .devices
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), i.state.clone()))
            .collect::<Vec<_>>()
    };
    let mut desired = vm(&desired_spec);
    carry_unplugs(&mut desired, &live, Some(&instance(live_spec.clone())), &spec_networks);
    assert_eq!(
        names(&desired),
        [("default".into(), None), ("mgmt".into(), None), ("data".into(), Some("absent".into()))]
    );
    assert_eq!(desired.spec.template.spec.networks[2], live.networks[2]);
    // No instance: dropped at once.
    let mut desired = vm(&desired_spec);
    carry_unplugs(&mut desired, &live, None, &spec_networks);
    assert_eq!(names(&desired).len(), 2);
    // Named by the spec (e.g. the Multus fallback left it out): never unplugged.
    let mut desired = vm(&desired_spec);
    carry_unplugs(&mut desired, &live, Some(&instance(live_spec)), &["mgmt", "data"].into());
    assert_eq!(names(&desired).len(), 2);
}

#[test]
fn an_interface_of_a_running_instance_not_reported_yet_is_being_plugged() {
    let spec = template(&[pod(), bridge("mgmt", "w-mgmt-nad"), bridge("data", "w-data-nad")]);
    let vmi = |phase: &str| json!({ "spec": spec, "status": { "phase": phase, "interfaces": [{ "name": "default" }, { "name": "mgmt" }] } });
    let running = Instance::from_vmi(&vmi("Running")).unwrap();
    let out = classify(&Template::from_json(&spec), &running, &kubevirt());
    assert_eq!(
        out.iter().map(|c| (c.subject.as_str(), c.change.as_str(), c.applies)).collect::<Vec<_>>(),
        [("network data", "being plugged", Applies::Live)]
    );
    // Before the instance runs, nothing is plugged into a guest yet.
    let scheduled = Instance::from_vmi(&vmi("Scheduled")).unwrap();
    assert_eq!(classify(&Template::from_json(&spec), &scheduled, &kubevirt()), vec![]);
}
