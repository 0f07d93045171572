use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use wukong_api::VolumeStatus;
use wukong_api::kubevirt::{KubeVirtCondition, VirtualMachineInstanceStatus, VirtualMachineStatus, VmiInterface};

use super::*;
use crate::decide::{Facts, Kinds, Policy, Presence, decide, wanted_nads};
use crate::validate_object;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(1_800_000_000 + seconds).unwrap())
}

fn wukong(status: Option<&WukongStatus>) -> Validated {
    let mut object = json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10", "generation": 2 },
        "spec": { "cpu": 2, "memory": "4Gi", "networks": [
            { "name": "mgmt", "type": "bridge", "ipConfig": { "mode": "static", "address": "10.0.0.5/24" } } ] }
    });
    if let Some(s) = status {
        object["status"] = serde_json::to_value(s).unwrap();
    }
    validate_object(&object).unwrap()
}

fn decision(v: &Validated, kinds: Kinds) -> Decision {
    let (generated, _) = wanted_nads(v, &Policy::default());
    let facts = Facts {
        kinds,
        generated_nads: generated.into_iter().map(|n| (n, Presence::Absent)).collect(),
        ..Facts::default()
    };
    decide(v, &facts, &Policy::default())
}

fn all() -> Kinds {
    Kinds { nad: true, vm: true, vmi: true, ..Kinds::default() }
}

fn cond<'a>(s: &'a WukongStatus, type_: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn a_stored_vm_without_kubevirt_status_is_creating_and_says_so() {
    let v = wukong(None);
    let s = compute(&v, &decision(&v, all()), &Observed { vm_stored: true, ..Observed::default() }, &at(0));
    assert_eq!(s.phase, Some(Phase::Creating));
    assert_eq!(s.vm_name.as_deref(), Some("web-vm"));
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(cond(&s, "NetworksReady").status, "True");
    assert_eq!(s.networks_attached.as_deref(), Some("1/1"));
    let vm = cond(&s, "VirtualMachineReady");
    assert_eq!((vm.status.as_str(), vm.reason.as_str()), ("False", "VirtualMachineNotRunning"));
    assert!(vm.message.contains("prod/web-vm is stored; KubeVirt has not reported a status"), "{}", vm.message);
    let ready = cond(&s, "Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "VirtualMachineNotRunning"));
    assert!(s.conditions.iter().all(|c| c.observed_generation == Some(2)));
    assert_eq!(s.networks[0].name, "default");
    assert_eq!(s.networks[1].nad_name.as_deref(), Some("prod/web-mgmt-nad"));
    assert_eq!(s.networks[1].mac_address, Some(crate::mac::derive("prod", "web", "mgmt").to_string()));
}

#[test]
fn an_unchanged_status_keeps_its_transition_times() {
    let v = wukong(None);
    let observed = Observed { vm_stored: true, ..Observed::default() };
    let first = compute(&v, &decision(&v, all()), &observed, &at(0));
    let v = wukong(Some(&first));
    let observed = Observed { previous: Some(&first), ..observed };
    let second = compute(&v, &decision(&v, all()), &observed, &at(600));
    assert_eq!(first, second, "nothing changed, so nothing is written");
    assert!(transitions(Some(&first), &second).is_empty(), "and no event is published");
}

#[test]
fn a_real_transition_moves_only_that_conditions_time() {
    let v = wukong(None);
    let first = compute(&v, &decision(&v, all()), &Observed { vm_stored: true, ..Observed::default() }, &at(0));
    let v = wukong(Some(&first));
    let vm_status = VirtualMachineStatus {
        printable_status: Some("Running".into()),
        ready: Some(true),
        created: Some(true),
        ..Default::default()
    };
    let vmi = VirtualMachineInstanceStatus {
        phase: Some("Running".into()),
        node_name: Some("node-a".into()),
        interfaces: vec![
            VmiInterface { name: Some("default".into()), ip_address: Some("10.244.0.7".into()), ..Default::default() },
            VmiInterface {
                name: Some("mgmt".into()),
                ip_addresses: vec!["10.0.0.5/24".into()],
                mac: Some("02:AA:BB:CC:DD:EE".into()),
                interface_name: Some("enp2s0".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let observed = Observed {
        vm_stored: true,
        vm: Some(&vm_status),
        vmi: Some(&vmi),
        previous: Some(&first),
        ..Observed::default()
    };
    let second = compute(&v, &decision(&v, all()), &observed, &at(60));
    assert_eq!(second.phase, Some(Phase::Running));
    assert_eq!(second.node_name.as_deref(), Some("node-a"));
    assert_eq!(cond(&second, "NetworksReady").last_transition_time, at(0), "unchanged condition keeps its time");
    assert_eq!(cond(&second, "VirtualMachineReady").last_transition_time, at(60));
    assert_eq!(cond(&second, "Ready").status, "True");
    assert_eq!(cond(&second, "Ready").reason, "Reconciled");
    let mgmt = &second.networks[1];
    assert_eq!(mgmt.interface.as_deref(), Some("enp2s0"));
    assert_eq!(mgmt.ip_address.as_deref(), Some("10.0.0.5"), "prefix length stripped");
    assert_eq!(mgmt.mac_address.as_deref(), Some("02:aa:bb:cc:dd:ee"));
    assert_eq!(second.networks[0].ip_address.as_deref(), Some("10.244.0.7"));
    let events = transitions(Some(&first), &second);
    let reasons: Vec<&str> = events.iter().map(|t| t.reason.as_str()).collect();
    assert_eq!(reasons, ["VirtualMachineRunning", "Reconciled"]);
    assert!(events.iter().all(|t| !t.warning));
}

#[test]
fn multus_absent_gives_one_warning_event() {
    let v = wukong(None);
    let s = compute(
        &v,
        &decision(&v, Kinds { nad: false, vm: true, vmi: true, ..Kinds::default() }),
        &Observed { vm_stored: true, ..Observed::default() },
        &at(0),
    );
    assert_eq!(cond(&s, "NetworksReady").reason, "MultusNotInstalled");
    assert_eq!(s.networks_attached.as_deref(), Some("MultusNotInstalled"));
    assert_eq!(s.networks[1].nad_name, None, "the fallback lists the network without a NAD");
    let warnings: Vec<_> = transitions(None, &s).into_iter().filter(|t| t.warning).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].reason, "MultusNotInstalled");
}

#[test]
fn a_held_vm_is_pending() {
    let v = wukong(None);
    let s = compute(
        &v,
        &decision(&v, Kinds { nad: true, vm: false, vmi: false, ..Kinds::default() }),
        &Observed::default(),
        &at(0),
    );
    assert_eq!(s.phase, Some(Phase::Pending));
    assert_eq!(s.vm_name, None);
    assert_eq!(cond(&s, "VirtualMachineReady").reason, "KubeVirtNotInstalled");
    assert_eq!(cond(&s, "Ready").reason, "KubeVirtNotInstalled");
}

#[test]
fn an_invalid_spec_is_an_error_with_the_reasons_and_one_event() {
    let v = wukong(None);
    let before = compute(&v, &decision(&v, all()), &Observed { vm_stored: true, ..Observed::default() }, &at(0));
    let mut w = wukong(Some(&before)).wukong().clone();
    let bad = crate::validate::Invalid {
        wukong: "prod/web".into(),
        errors: vec![crate::FieldError { field: "spec.networks[0]".into(), detail: "type is required".into() }],
    };
    w.metadata.generation = Some(3);
    let s = invalid(&w, &bad, Some(&before), &at(10));
    assert_eq!(s.phase, Some(Phase::Error));
    assert_eq!(s.observed_generation, Some(3));
    let ready = cond(&s, "Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "InvalidSpec"));
    assert_eq!(ready.message, "spec.networks[0]: type is required");
    assert_eq!(cond(&s, "NetworksReady").status, "Unknown");
    let events = transitions(Some(&before), &s);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].warning);
    assert_eq!(events[0].message, "spec.networks[0]: type is required", "the event says what to fix");
    // Seen again unchanged: the same status, no event.
    w.status = Some(s.clone());
    assert_eq!(invalid(&w, &bad, Some(&s), &at(99)), s);
}

#[test]
fn a_missing_ssh_key_secret_shows_in_virtual_machine_ready_and_ready() {
    let v = validate_object(&json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10", "generation": 2 },
        "spec": { "cpu": 2, "memory": "4Gi", "sshKeySecret": "web-keys" }
    }))
    .unwrap();
    let facts = Facts { kinds: all(), ssh_keys: crate::decide::SshKeys::SecretNotFound, ..Facts::default() };
    let d = decide(&v, &facts, &Policy::default());
    let s = compute(&v, &d, &Observed::default(), &at(0));
    assert_eq!(s.phase, Some(Phase::Pending));
    assert_eq!(s.vm_name, None, "no VM");
    let vm = cond(&s, "VirtualMachineReady");
    assert_eq!((vm.status.as_str(), vm.reason.as_str()), ("False", "SecretNotFound"));
    assert_eq!(
        vm.message,
        "Secret prod/web-keys named by sshKeySecret does not exist: create it with the SSH public keys as its values"
    );
    assert_eq!(cond(&s, "Ready").reason, "SecretNotFound");
    let events = transitions(None, &s);
    assert!(events.iter().any(|t| t.reason == "SecretNotFound" && t.warning), "{events:?}");
}

#[test]
fn volumes_list_the_disks_backed_by_data_volumes_with_their_pvc() {
    let v = validate_object(&json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10", "generation": 2 },
        "spec": { "cpu": 2, "memory": "4Gi", "disks": [
            { "name": "system", "boot": true, "image": "https://example.com/os.img", "size": "30Gi", "storageClassName": "ssd" },
            { "name": "scratch", "image": "containerdisk://quay.io/containerdisks/scratch:1" },
            { "name": "data", "size": "100Gi" },
            { "name": "logs", "size": "10Gi" }
        ] }
    }))
    .unwrap();
    let observed_volumes = [
        VolumeObservation {
            name: "web-system".into(),
            bound: true,
            size: Some("32Gi".into()),
            phase: Some("Succeeded".into()),
            progress: Some("100.0%".into()),
        },
        VolumeObservation {
            name: "web-data".into(),
            phase: Some("WaitForFirstConsumer".into()),
            progress: Some("N/A".into()),
            ..Default::default()
        },
        VolumeObservation { name: "other-logs".into(), bound: true, size: Some("1Gi".into()), ..Default::default() },
    ];
    let observed = Observed { vm_stored: true, volumes: &observed_volumes, ..Observed::default() };
    let s = compute(&v, &decision(&v, all()), &observed, &at(0));
    let volume =
        |name: &str, pvc: &str, bound: bool, size: &str, phase: Option<&str>, progress: Option<&str>| VolumeStatus {
            name: name.into(),
            pvc_name: Some(pvc.into()),
            bound: Some(bound),
            size: Some(size.into()),
            phase: phase.map(Into::into),
            progress: progress.map(Into::into),
        };
    assert_eq!(
        s.volumes,
        vec![
            volume("system", "web-system", true, "32Gi", Some("Succeeded"), Some("100.0%")),
            volume("data", "web-data", false, "100Gi", Some("WaitForFirstConsumer"), None),
            volume("logs", "web-logs", false, "10Gi", None, None),
        ],
        "the containerDisk is not listed; a missing or unreported PVC shows the requested size, unbound; CDI's phase and progress as reported (N/A is none)"
    );
    // No DataVolume, no volumes.
    let s = compute(&wukong(None), &decision(&wukong(None), all()), &observed, &at(0));
    assert!(s.volumes.is_empty());
}

fn kv_condition(type_: &str, status: &str, reason: &str, message: &str) -> KubeVirtCondition {
    KubeVirtCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
    }
}

#[test]
fn what_kubevirt_cannot_do_is_reported_in_its_own_words() {
    // As virt-controller v1.8.4 reports a VM whose launcher pod it cannot render.
    let v = wukong(None);
    let vm = VirtualMachineStatus {
        printable_status: Some("Starting".into()),
        created: Some(true),
        conditions: vec![
            kv_condition("Ready", "False", "PodNotExists", "virt-launcher pod has not yet been scheduled"),
            kv_condition(
                "Synchronized",
                "False",
                "FailedCreate",
                "failed to render launch manifest: couldn't find configuration for network binding: macvtap",
            ),
        ],
        ..Default::default()
    };
    let observed = Observed { vm_stored: true, vm: Some(&vm), ..Observed::default() };
    let s = compute(&v, &decision(&v, all()), &observed, &at(0));
    let c = cond(&s, "VirtualMachineReady");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "VirtualMachineFailure"));
    assert_eq!(
        c.message,
        "KubeVirt cannot run VirtualMachine prod/web-vm: FailedCreate: failed to render launch manifest: couldn't find configuration for network binding: macvtap"
    );
    assert_eq!(cond(&s, "Ready").reason, "VirtualMachineFailure");
    assert_eq!(s.phase, Some(Phase::Creating));
    let events = transitions(None, &s);
    assert!(events.iter().any(|t| t.reason == "VirtualMachineFailure" && t.warning), "{events:?}");
}

#[test]
fn a_failing_instance_or_an_error_status_is_a_failure_too() {
    let v = wukong(None);
    let vm = VirtualMachineStatus { printable_status: Some("Starting".into()), ..Default::default() };
    let vmi = VirtualMachineInstanceStatus {
        phase: Some("Pending".into()),
        conditions: vec![kv_condition("Synchronized", "False", "FailedCreate", "failed to render launch manifest: x")],
        ..Default::default()
    };
    let s = compute(
        &v,
        &decision(&v, all()),
        &Observed { vm_stored: true, vm: Some(&vm), vmi: Some(&vmi), ..Observed::default() },
        &at(0),
    );
    assert_eq!(
        cond(&s, "VirtualMachineReady").message,
        "KubeVirt cannot run VirtualMachine prod/web-vm: FailedCreate: failed to render launch manifest: x"
    );

    let vm = VirtualMachineStatus {
        printable_status: Some("ErrorUnschedulable".into()),
        conditions: vec![kv_condition("Ready", "False", "Unschedulable", "0/3 nodes are available")],
        ..Default::default()
    };
    let s =
        compute(&v, &decision(&v, all()), &Observed { vm_stored: true, vm: Some(&vm), ..Observed::default() }, &at(0));
    assert_eq!(
        cond(&s, "VirtualMachineReady").message,
        "KubeVirt cannot run VirtualMachine prod/web-vm: ErrorUnschedulable (Unschedulable: 0/3 nodes are available)"
    );
}

#[test]
fn a_vm_on_its_way_says_what_kubevirt_waits_for() {
    let v = wukong(None);
    let vm = VirtualMachineStatus {
        printable_status: Some("Starting".into()),
        conditions: vec![
            kv_condition("Ready", "False", "PodNotExists", "virt-launcher pod has not yet been scheduled"),
            kv_condition("Synchronized", "True", "", ""),
        ],
        ..Default::default()
    };
    let s =
        compute(&v, &decision(&v, all()), &Observed { vm_stored: true, vm: Some(&vm), ..Observed::default() }, &at(0));
    let c = cond(&s, "VirtualMachineReady");
    assert_eq!(c.reason, "VirtualMachineNotRunning");
    assert_eq!(
        c.message,
        "VirtualMachine prod/web-vm is stored; KubeVirt reports it Starting (PodNotExists: virt-launcher pod has not yet been scheduled)"
    );
}

// ---- a running VM's pending changes (issue 15) -------------------------------------------------

/// The decision for `after` while an instance started from `before`'s VM runs.
fn running_decision(before: &Validated, after: &Validated) -> Decision {
    let VmAction::Apply(vm) = decision(before, all()).vm else { panic!("held") };
    let (generated, _) = wanted_nads(after, &Policy::default());
    let facts = Facts {
        kinds: all(),
        generated_nads: generated.into_iter().map(|n| (n, Presence::Absent)).collect(),
        live_vm: Some(crate::decide::LiveVm::from_vm(&serde_json::to_value(vm.as_ref()).unwrap(), "prod")),
        instance: crate::liveupdate::Instance::from_vmi(
            &json!({ "spec": vm.spec.template.spec, "status": { "phase": "Running" } }),
        ),
        ..Facts::default()
    };
    decide(after, &facts, &Policy::default())
}

fn with_networks(networks: serde_json::Value) -> Validated {
    let mut object = serde_json::to_value(wukong(None).wukong()).unwrap();
    object["spec"]["networks"] = networks;
    validate_object(&object).unwrap()
}

#[test]
fn changes_a_running_vm_gets_only_at_a_restart_say_restart_required_even_when_kubevirt_does_not() {
    let before = wukong(None);
    let macvlan = with_networks(json!([
        { "name": "mgmt", "type": "bridge", "ipConfig": { "mode": "static", "address": "10.0.0.5/24" } },
        { "name": "up", "type": "macvlan", "master": "eth1" }
    ]));
    let d = running_decision(&before, &macvlan);
    let observed = Observed { vm_stored: true, ..Observed::default() };
    let s = compute(&macvlan, &d, &observed, &at(0));
    assert_eq!(s.pending_changes.len(), 1, "{:?}", s.pending_changes);
    assert_eq!(s.pending_changes[0].applies, Applies::Restart);
    let restart = cond(&s, "RestartRequired");
    assert_eq!((restart.status.as_str(), restart.reason.as_str()), ("True", "RestartRequired"));
    assert!(
        restart
            .message
            .contains("KubeVirt does not report RestartRequired for them; waiting for a restart: network up: added"),
        "{}",
        restart.message
    );
    assert!(restart.message.contains("virtctl restart web-vm"));

    // A hot-plug is no restart: no condition, the change listed as live.
    let bridge = with_networks(json!([
        { "name": "mgmt", "type": "bridge", "ipConfig": { "mode": "static", "address": "10.0.0.5/24" } },
        { "name": "data", "type": "bridge" }
    ]));
    let s = compute(&bridge, &running_decision(&before, &bridge), &observed, &at(0));
    assert!(s.conditions.iter().all(|c| c.type_ != "RestartRequired"), "{:?}", s.conditions);
    assert_eq!(s.pending_changes[0].applies, Applies::Live);
}

#[test]
fn kubevirts_restart_required_is_mirrored_with_its_words() {
    let v = wukong(None);
    let d = running_decision(&v, &v);
    assert!(d.pending.is_empty());
    let vm = VirtualMachineStatus {
        printable_status: Some("Running".into()),
        conditions: vec![KubeVirtCondition {
            type_: "RestartRequired".into(),
            status: "True".into(),
            reason: None,
            message: Some("a non-live-updatable field was changed in the template spec".into()),
        }],
        ..Default::default()
    };
    let vmi_spec = json!({});
    let running = Observed { vm_stored: true, vm: Some(&vm), vmi_spec: Some(&vmi_spec), ..Observed::default() };
    let s = compute(&v, &d, &running, &at(0));
    let restart = cond(&s, "RestartRequired");
    assert!(
        restart.message.contains(
            "; KubeVirt reports RestartRequired (a non-live-updatable field was changed in the template spec)"
        ),
        "{}",
        restart.message
    );
    assert!(transitions(None, &s).iter().any(|t| t.reason == "RestartRequired" && !t.warning));
    // KubeVirt keeps its condition on a stopped VM; wukong's goes with the instance.
    let stopped = Observed { vm_stored: true, vm: Some(&vm), ..Observed::default() };
    assert!(compute(&v, &d, &stopped, &at(0)).conditions.iter().all(|c| c.type_ != "RestartRequired"));
}

#[test]
fn the_link_state_is_the_instances() {
    let v = wukong(None);
    let vmi = VirtualMachineInstanceStatus {
        interfaces: vec![VmiInterface {
            name: Some("mgmt".into()),
            link_state: Some("down".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let s = compute(
        &v,
        &decision(&v, all()),
        &Observed { vm_stored: true, vmi: Some(&vmi), ..Observed::default() },
        &at(0),
    );
    assert_eq!(s.networks[1].link_state.as_deref(), Some("down"));
}

#[test]
fn a_refused_write_holds_its_condition_down_with_the_servers_words() {
    let v = wukong(None);
    let failures = [Failure {
        condition: conditions::VIRTUAL_MACHINE_READY,
        reason: Reason::ApplyFailed,
        message: "apply VirtualMachine prod/web-vm: admission webhook \"virtualmachine-validator.kubevirt.io\" denied the request: x".into(),
    }];
    let observed = Observed { failures: &failures, ..Observed::default() };
    let s = compute(&v, &decision(&v, all()), &observed, &at(0));
    let vm = cond(&s, "VirtualMachineReady");
    assert_eq!((vm.status.as_str(), vm.reason.as_str()), ("False", "ApplyFailed"));
    assert!(vm.message.contains("denied the request: x"), "{}", vm.message);
    assert_eq!(cond(&s, "Ready").reason, "ApplyFailed");
    assert_eq!(cond(&s, "NetworksReady").status, "True", "the NADs were written");
    let events = transitions(None, &s);
    assert!(
        events.iter().any(|t| t.reason == "ApplyFailed" && t.warning && t.message.contains("denied")),
        "{events:?}"
    );
}

#[test]
fn a_refused_expansion_leaves_networks_and_vm_alone_and_holds_ready() {
    let v = wukong(None);
    let failures = [Failure {
        condition: conditions::READY,
        reason: Reason::ExpansionFailed,
        message:
            "expand PersistentVolumeClaim prod/web-data to 45526653338: only dynamically provisioned pvc can be resized"
                .into(),
    }];
    let vm = VirtualMachineStatus { printable_status: Some("Running".into()), ready: Some(true), ..Default::default() };
    let observed = Observed { vm_stored: true, vm: Some(&vm), failures: &failures, ..Observed::default() };
    let s = compute(&v, &decision(&v, all()), &observed, &at(0));
    assert_eq!(cond(&s, "NetworksReady").status, "True");
    assert_eq!(cond(&s, "VirtualMachineReady").status, "True");
    let ready = cond(&s, "Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "ExpansionFailed"));
    assert_eq!(s.phase, Some(Phase::Running), "the VM still runs");
}

#[test]
fn transition_times_and_events_come_from_the_same_previous_status() {
    // The stored status lags behind the one this controller last wrote (its watch has not shown
    // it yet): both the transition time and the events are computed against the written one.
    let v = wukong(None);
    let stored = compute(&v, &decision(&v, all()), &Observed::default(), &at(0));
    let written = compute(&v, &decision(&v, all()), &Observed { vm_stored: true, ..Observed::default() }, &at(30));
    let v = wukong(Some(&stored));
    let next = compute(
        &v,
        &decision(&v, all()),
        &Observed { vm_stored: true, previous: Some(&written), ..Observed::default() },
        &at(90),
    );
    assert_eq!(next, written, "nothing changed since the written status");
    assert!(transitions(Some(&written), &next).is_empty());
}

#[test]
fn a_wukong_that_does_not_decode_is_an_invalid_spec() {
    let s = undecodable(Some(4), "spec.cpu: invalid type: string \"four\", expected i32", None, &at(0));
    assert_eq!(s.phase, Some(Phase::Error));
    assert_eq!(s.observed_generation, Some(4));
    let ready = cond(&s, "Ready");
    assert_eq!(
        (ready.reason.as_str(), ready.message.as_str()),
        ("InvalidSpec", "spec.cpu: invalid type: string \"four\", expected i32")
    );
}

// ---- RestartRequired and FieldsIgnored ---------------------------------------------------------

fn applied(d: &Decision) -> &wukong_api::kubevirt::VirtualMachine {
    match &d.vm {
        VmAction::Apply(vm) => vm,
        VmAction::Hold(h) => panic!("held: {h:?}"),
    }
}

#[test]
fn an_instance_started_from_what_wukong_applied_needs_no_restart() {
    let v = wukong(None);
    let d = decision(&v, all());
    let vmi_spec = serde_json::to_value(&applied(&d).spec.template.spec).unwrap();
    let observed = Observed { vm_stored: true, vmi_spec: Some(&vmi_spec), ..Observed::default() };
    let s = compute(&v, &d, &observed, &at(0));
    assert!(s.conditions.iter().all(|c| c.type_ != "RestartRequired"), "{:#?}", s.conditions);
    assert_eq!(s.conditions.len(), 3);
}

#[test]
fn an_instance_that_predates_the_applied_vm_makes_restart_required_true() {
    let v = wukong(None);
    let d = decision(&v, all());
    let mut vmi_spec = serde_json::to_value(&applied(&d).spec.template.spec).unwrap();
    vmi_spec["domain"]["devices"]["interfaces"][1].as_object_mut().unwrap().remove("macAddress");
    vmi_spec["domain"]["cpu"]["cores"] = json!(1);
    // The shell reads the same VMI into the decision's facts.
    let (generated, _) = wanted_nads(&v, &Policy::default());
    let facts = Facts {
        kinds: all(),
        generated_nads: generated.into_iter().map(|n| (n, Presence::Absent)).collect(),
        instance: crate::liveupdate::Instance::from_vmi(&json!({ "spec": vmi_spec, "status": { "phase": "Running" } })),
        ..Facts::default()
    };
    let d = decide(&v, &facts, &Policy::default());
    let observed = Observed { vm_stored: true, vmi_spec: Some(&vmi_spec), ..Observed::default() };
    let s = compute(&v, &d, &observed, &at(0));
    let c = cond(&s, "RestartRequired");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "RestartRequired"));
    assert!(c.message.starts_with("the running instance of VirtualMachine prod/web-vm predates its interfaces, cpu: they apply when KubeVirt starts a new instance"), "{}", c.message);
    assert!(c.message.contains("wukong does not restart a running VM"), "{}", c.message);
    // The restart is not an error: Ready keeps its own reason.
    assert_eq!(cond(&s, "Ready").reason, "VirtualMachineNotRunning");
    let t = transitions(None, &s);
    assert!(t.iter().any(|t| t.reason == "RestartRequired" && !t.warning), "{t:?}");
}

#[test]
fn ignored_fields_are_a_condition_and_a_warning_event() {
    let object = json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10", "generation": 2 },
        "spec": { "cpu": 2, "memory": "4Gi", "networks": [{ "name": "default", "type": "bridge", "ipConfig": { "mode": "dhcp" } }] }
    });
    let v = validate_object(&object).unwrap();
    let s = compute(&v, &decision(&v, all()), &Observed { vm_stored: true, ..Observed::default() }, &at(0));
    let c = cond(&s, "FieldsIgnored");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "FieldsIgnored"));
    assert_eq!(c.message, crate::warnings::warnings(&object).join("; "));
    assert!(c.message.contains("network \"default\": type is ignored"), "{}", c.message);
    let t = transitions(None, &s);
    assert!(t.iter().any(|t| t.reason == "FieldsIgnored" && t.warning), "{t:?}");
    // Without such fields the condition is gone.
    assert!(
        compute(&wukong(None), &decision(&wukong(None), all()), &Observed::default(), &at(0))
            .conditions
            .iter()
            .all(|c| c.type_ != "FieldsIgnored")
    );
}
