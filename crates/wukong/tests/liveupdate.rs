//! Changing the networks of a running VM (issue 15) on the real virt-api and virt-controller:
//! hot-plug, hot-unplug, link state, other bindings, and a new VLAN with and without KubeVirt's
//! `LiveUpdateNADRef`. Every edit is first previewed with `wukong render --diff` against the
//! cluster, as a user runs it, then applied; what KubeVirt does with it (the instance's spec,
//! the VM's `RestartRequired`, the instance's `MigrationRequired`) must be what the preview
//! said, and the Wukong's status says it too.
//!
//! No node exists. Where a node's part is needed (the scheduler and kubelet running the
//! launcher pod, Multus attaching it, virt-handler reporting the guest's interfaces) the
//! stand-ins of `support::kubevirt` do it, named so; KubeVirt's own controllers do the rest.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use support::audit;
use support::controller::{RunningController, start_in_namespace};
use support::kubevirt as kv;
use support::{Cluster, TestNamespace, cluster, wait_for};
use wukong_api::{Applies, PendingChange, Wukong};

const WAIT: Duration = Duration::from_secs(60);
const WUKONG: &str = "system:serviceaccount:wukong-system:wukong";
const VIRT_CONTROLLER: &str = "system:serviceaccount:kubevirt:kubevirt-controller";
const VM: &str = "web-vm";

fn manifest(ns: &str, networks: Value) -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": "web", "namespace": ns },
        "spec": { "cpu": 1, "memory": "1Gi", "osImage": "docker://quay.io/containerdisks/ubuntu:22.04", "networks": networks }
    })
}

fn mgmt(vlan: i32) -> Value {
    json!({ "name": "mgmt", "type": "bridge", "vlanId": vlan })
}

fn data() -> Value {
    json!({ "name": "data", "type": "bridge" })
}

fn dynamic(client: &Client, ns: &str, resource: &kube::discovery::ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, resource)
}

async fn get(ns: &TestNamespace, resource: &kube::discovery::ApiResource, name: &str) -> Option<Value> {
    let object = dynamic(&ns.client, &ns.name, resource).get_opt(name).await.ok()??;
    Some(serde_json::to_value(object).unwrap())
}

async fn vm(ns: &TestNamespace) -> Value {
    get(ns, &kv::vm_resource(), VM).await.expect("the VM")
}

async fn vmi(ns: &TestNamespace) -> Value {
    get(ns, &kv::vmi_resource(), VM).await.expect("the VMI")
}

fn nad_resource() -> kube::discovery::ApiResource {
    kube::discovery::ApiResource::erase::<wukong_api::nad::NetworkAttachmentDefinition>(&())
}

/// The interface `name` of a VM template's or a VMI's spec.
fn iface(spec: &Value, name: &str) -> Option<Value> {
    spec.pointer("/domain/devices/interfaces")?.as_array()?.iter().find(|i| i["name"] == name).cloned()
}

/// The NAD network `name` of a VM template's or a VMI's spec names.
fn nad_of(spec: &Value, name: &str) -> Option<String> {
    let net = spec.get("networks")?.as_array()?.iter().find(|n| n["name"] == name)?;
    net.pointer("/multus/networkName")?.as_str().map(str::to_string)
}

fn template(vm: &Value) -> &Value {
    &vm["spec"]["template"]["spec"]
}

/// KubeVirt's `RestartRequired` on the VM, once virt-controller has written the status of its
/// latest generation (`desiredGeneration`; `observedGeneration` stays the one the instance
/// started with).
async fn kubevirt_restart_required(ns: &TestNamespace) -> Option<String> {
    let vm = wait_for("virt-controller to report on the VM's latest generation", WAIT, || async {
        let vm = get(ns, &kv::vm_resource(), VM).await?;
        (vm.pointer("/status/desiredGeneration") == vm.pointer("/metadata/generation")).then_some(vm)
    })
    .await;
    let (status, _, message) = kv::condition(&vm, "RestartRequired")?;
    (status == "True").then_some(message)
}

/// The Wukong, once the controller reconciled its generation and `ready` holds of it.
async fn wukong_when(ns: &TestNamespace, what: &str, ready: impl Fn(&Wukong) -> bool) -> Wukong {
    let api: Api<Wukong> = ns.api();
    wait_for(&format!("the Wukong's status: {what}"), WAIT, || async {
        let w = api.get_opt("web").await.ok()??;
        let current = w.status.as_ref()?.observed_generation == w.metadata.generation;
        (current && ready(&w)).then_some(w)
    })
    .await
}

fn pending(w: &Wukong) -> Vec<PendingChange> {
    w.status.as_ref().map(|s| s.pending_changes.clone()).unwrap_or_default()
}

fn restart_condition(w: &Wukong) -> Option<String> {
    let c = w.status.as_ref()?.conditions.iter().find(|c| c.type_ == "RestartRequired")?;
    (c.status == "True").then(|| c.message.clone())
}

/// What `wukong render --diff -o json` says of applying `manifest`, compared with the cluster
/// (KUBECONFIG), as a user runs it.
fn preview(c: &Cluster, manifest: &Value) -> Vec<PendingChange> {
    let mut child = Command::new(support::wukong_bin())
        .args(["render", "--diff", "-o", "json", "-f", "-"])
        .env("KUBECONFIG", &c.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wukong runs");
    child.stdin.take().unwrap().write_all(manifest.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "wukong render --diff: {}", String::from_utf8_lossy(&out.stderr));
    let previews: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(previews[0]["running"], true, "{previews}");
    serde_json::from_value(previews[0]["changes"].clone()).expect("changes")
}

/// (subject, how it applies, whether KubeVirt reports RestartRequired) of each change.
fn classes(changes: &[PendingChange]) -> Vec<(String, Applies, bool)> {
    changes.iter().map(|c| (c.subject.clone(), c.applies, c.restart_flagged)).collect()
}

fn row(subject: &str, applies: Applies, flagged: bool) -> (String, Applies, bool) {
    (subject.to_string(), applies, flagged)
}

/// STAND-IN for virt-handler (and Multus, when `multus`): reports every interface of the
/// instance's spec but those being unplugged, with the link state it set, as the guest and the
/// pod have them.
async fn node_reports(c: &Cluster, ns: &TestNamespace, multus: bool) {
    let vmi = vmi(ns).await;
    let spec = &vmi["spec"];
    let live: Vec<&Value> =
        spec["domain"]["devices"]["interfaces"].as_array().unwrap().iter().filter(|i| i["state"] != "absent").collect();
    if multus {
        let pod = kv::launcher_pod(&ns.client, &ns.name, VM).await;
        let attached: Vec<(String, String)> = live
            .iter()
            .filter_map(|i| {
                let name = i["name"].as_str()?;
                let nad = nad_of(spec, name)?;
                let nad = if nad.contains('/') { nad } else { format!("{}/{nad}", ns.name) };
                Some((nad, wukong_render::names::pod_interface_name(name)))
            })
            .collect();
        kv::report_pod_network_status(&ns.client, &pod, &attached).await;
    }
    let interfaces: Vec<Value> = live
        .iter()
        .map(|i| {
            let link = if i["state"] == "down" { "down" } else { "up" };
            json!({ "name": i["name"], "mac": i["macAddress"], "linkState": link, "infoSource": "domain, guest-agent" })
        })
        .collect();
    kv::report_guest_running(c, &ns.name, VM, json!(interfaces)).await;
}

/// A Wukong with `networks` whose VM runs: the controller applies it, virt-controller makes the
/// VMI and its launcher pod, and the stand-ins for a node run the pod (scheduler, kubelet) and
/// report the guest's interfaces (virt-handler; with Multus' network status when `multus`).
async fn running(c: &Cluster, prefix: &str, networks: Value, multus: bool) -> (TestNamespace, RunningController) {
    kv::require(c, false);
    let (ns, controller) = start_in_namespace(c, prefix, &["--resync", "1s"]).await;
    support::apply_strict(&ns.client, &manifest(&ns.name, networks)).await;
    let pod = kv::launcher_pod(&ns.client, &ns.name, VM).await;
    kv::schedule_and_run(&ns.client, &pod, "node-a").await;
    wait_for("virt-controller to schedule the VMI on node-a", WAIT, || async {
        (get(&ns, &kv::vmi_resource(), VM).await?.pointer("/status/nodeName")? == "node-a").then_some(())
    })
    .await;
    node_reports(c, &ns, multus).await;
    wukong_when(&ns, "VirtualMachineReady", |w| {
        w.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "VirtualMachineReady" && c.status == "True"))
    })
    .await;
    (ns, controller)
}

/// The launcher pod's networks annotation `wukong render` predicts for `manifest`.
fn predicted_annotation(manifest: &Value) -> Option<String> {
    let valid = wukong_render::validate_object(manifest).unwrap();
    wukong_render::render(&valid, &wukong_render::RenderOptions::default()).launcher_pod_networks
}

async fn wait_annotation(ns: &TestNamespace, expected: Option<String>) {
    wait_for("virt-controller to update the launcher pod's networks annotation", WAIT, || async {
        let pod = kv::launcher_pod(&ns.client, &ns.name, VM).await;
        (kv::networks_annotation(&pod) == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_network_is_hot_plugged_into_a_running_vm_and_unplugged_without_a_write_loop() {
    let c = cluster();
    let (ns, controller) = running(c, "hotplug", json!([mgmt(100)]), false).await;

    // Hot-plug: previewed live, and live it is.
    let added = manifest(&ns.name, json!([mgmt(100), data()]));
    let predicted = preview(c, &added);
    assert_eq!(classes(&predicted), [row("network data", Applies::Live, false)], "{predicted:?}");
    assert_eq!(predicted[0].change, "added (bridge binding, NAD web-data-nad)");
    support::apply_strict(&ns.client, &added).await;
    let vmi_spec = wait_for("virt-controller to hot-plug data into the instance", WAIT, || async {
        let vmi = get(&ns, &kv::vmi_resource(), VM).await?;
        iface(&vmi["spec"], "data").map(|_| vmi["spec"].clone())
    })
    .await;
    assert_eq!(iface(&vmi_spec, "data").unwrap()["bridge"], json!({}));
    assert_eq!(nad_of(&vmi_spec, "data").as_deref(), Some("web-data-nad"));
    assert!(get(&ns, &nad_resource(), "web-data-nad").await.is_some(), "the NAD exists");
    assert_eq!(kubevirt_restart_required(&ns).await, None, "KubeVirt requires no restart");
    // virt-controller asks Multus for the new network on the running pod, as wukong predicts.
    wait_annotation(&ns, predicted_annotation(&added)).await;
    // STAND-IN virt-handler: the guest has the new interface.
    node_reports(c, &ns, false).await;
    let w = wukong_when(&ns, "nothing pending", |w| pending(w).is_empty()).await;
    assert_eq!(restart_condition(&w), None);

    // Hot-unplug: previewed live, the NAD kept until the instance no longer lists it.
    let offset = audit::offset(c);
    let removed = manifest(&ns.name, json!([mgmt(100)]));
    let predicted = preview(c, &removed);
    assert_eq!(classes(&predicted), [row("network data", Applies::Live, false)], "{predicted:?}");
    assert!(predicted[0].change.starts_with("removed: unplugged"), "{}", predicted[0].change);
    support::apply_strict(&ns.client, &removed).await;
    wait_for("virt-controller to mark data absent on the instance", WAIT, || async {
        (iface(&get(&ns, &kv::vmi_resource(), VM).await?["spec"], "data")?["state"] == "absent").then_some(())
    })
    .await;
    assert_eq!(iface(template(&vm(&ns).await), "data").unwrap()["state"], "absent");
    assert_eq!(kubevirt_restart_required(&ns).await, None);
    wait_annotation(&ns, predicted_annotation(&removed)).await;
    let w = wukong_when(&ns, "data being unplugged", |w| {
        pending(w).iter().any(|p| p.change == "being unplugged (interface state absent)")
    })
    .await;
    assert_eq!(restart_condition(&w), None);
    assert!(get(&ns, &nad_resource(), "web-data-nad").await.is_some(), "the instance still lists data: NAD kept");

    // STAND-IN virt-handler: the guest no longer has the interface. KubeVirt drops it from the
    // instance and then from the VM; wukong deletes the NAD.
    node_reports(c, &ns, false).await;
    wait_for("virt-controller to remove data from the VM", WAIT, || async {
        iface(template(&get(&ns, &kv::vm_resource(), VM).await?), "data").is_none().then_some(())
    })
    .await;
    wait_for("wukong to delete web-data-nad", WAIT, || async {
        get(&ns, &nad_resource(), "web-data-nad").await.is_none().then_some(())
    })
    .await;
    wukong_when(&ns, "nothing pending", |w| pending(w).is_empty() && restart_condition(w).is_none()).await;

    // No write loop: wukong wrote the VM once (state absent), virt-controller removed the
    // interface, and neither wrote the VM's spec again over more reconciles.
    let reconciles = controller.metric("wukong_reconciles_total");
    wait_for("three more reconciles", WAIT, || async {
        (controller.metric("wukong_reconciles_total") >= reconciles + 3.0).then_some(())
    })
    .await;
    let vm_writes: Vec<(String, String)> = audit::writes(c, offset, &ns.name)
        .into_iter()
        .filter(|w| w.resource == "virtualmachines" && w.subresource.is_empty() && w.name == VM)
        .map(|w| (w.user, w.verb))
        .collect();
    let by = |user: &str| vm_writes.iter().filter(|(u, _)| u == user).count();
    assert_eq!(by(WUKONG), 1, "wukong writes the VM once: {vm_writes:?}");
    assert!(by(VIRT_CONTROLLER) >= 1, "virt-controller removes the interface: {vm_writes:?}");
    let first_kubevirt = vm_writes.iter().position(|(u, _)| u == VIRT_CONTROLLER).unwrap();
    let wukong_at = vm_writes.iter().position(|(u, _)| u == WUKONG).unwrap();
    assert!(wukong_at < first_kubevirt, "wukong marks it absent, then virt-controller removes it: {vm_writes:?}");
    assert_eq!(vm_writes.iter().filter(|(u, _)| u != WUKONG && u != VIRT_CONTROLLER).count(), 0, "{vm_writes:?}");
    let settled = audit::offset(c);
    let reconciles = controller.metric("wukong_reconciles_total");
    wait_for("three more reconciles", WAIT, || async {
        (controller.metric("wukong_reconciles_total") >= reconciles + 3.0).then_some(())
    })
    .await;
    let later: Vec<audit::Request> = audit::writes(c, settled, &ns.name)
        .into_iter()
        .filter(|w| w.resource == "virtualmachines" && w.subresource.is_empty())
        .collect();
    assert_eq!(later, vec![], "the VM is left alone once KubeVirt removed the interface");
    controller.stop().await;
}

#[tokio::test]
async fn the_link_state_of_a_running_vm_reaches_its_instance() {
    let c = cluster();
    let (ns, controller) = running(c, "linkstate", json!([mgmt(100), data()]), false).await;
    for (state, words) in [("down", "link up -> down"), ("up", "link down -> up")] {
        let edited = manifest(&ns.name, json!([mgmt(100), { "name": "data", "type": "bridge", "linkState": state }]));
        let predicted = preview(c, &edited);
        assert_eq!(classes(&predicted), [row("network data", Applies::Live, false)], "{predicted:?}");
        assert!(predicted[0].change.ends_with(words), "{}", predicted[0].change);
        support::apply_strict(&ns.client, &edited).await;
        wait_for(&format!("virt-controller to set data's link {state} on the instance"), WAIT, || async {
            (iface(&get(&ns, &kv::vmi_resource(), VM).await?["spec"], "data")?["state"] == state).then_some(())
        })
        .await;
        assert_eq!(kubevirt_restart_required(&ns).await, None);
        // STAND-IN virt-handler: the link as it set it.
        node_reports(c, &ns, false).await;
        let w = wukong_when(&ns, &format!("data's link {state}"), |w| {
            let data = w.status.as_ref().and_then(|s| s.networks.iter().find(|n| n.name == "data").cloned());
            pending(w).is_empty() && data.is_some_and(|d| d.link_state.as_deref() == Some(state))
        })
        .await;
        assert_eq!(restart_condition(&w), None);
    }
    controller.stop().await;
}

#[tokio::test]
async fn sriov_is_plugged_through_a_migration_and_macvtap_waits_for_a_restart_kubevirt_does_not_report() {
    let c = cluster();
    let (ns, controller) = running(c, "bindings", json!([mgmt(100)]), false).await;
    let edited = manifest(
        &ns.name,
        json!([
            mgmt(100),
            { "name": "fast", "type": "sriov", "resourceName": "intel.com/sriov_vfio" },
            { "name": "uplink", "type": "macvlan", "master": "eth1" }
        ]),
    );
    let predicted = preview(c, &edited);
    assert_eq!(
        classes(&predicted),
        [row("network fast", Applies::Migration, false), row("network uplink", Applies::Restart, false)],
        "{predicted:?}"
    );
    support::apply_strict(&ns.client, &edited).await;
    // SR-IOV: in the instance, which KubeVirt then requires to migrate.
    let vmi = wait_for("KubeVirt to require a migration for the SR-IOV interface", WAIT, || async {
        let vmi = get(&ns, &kv::vmi_resource(), VM).await?;
        let (status, reason, _) = kv::condition(&vmi, "MigrationRequired")?;
        (status == "True" && iface(&vmi["spec"], "fast").is_some()).then_some((vmi, reason))
    })
    .await;
    assert_eq!(vmi.1, "AutoMigrationDueToLiveUpdate");
    // macvtap: in the VM, never in the instance, and KubeVirt says nothing.
    assert!(iface(template(&vm(&ns).await), "uplink").is_some());
    assert!(iface(&vmi.0["spec"], "uplink").is_none(), "KubeVirt hot-plugs no binding plugin");
    assert_eq!(kubevirt_restart_required(&ns).await, None, "and it does not report RestartRequired");
    // wukong does.
    let w = wukong_when(&ns, "RestartRequired for uplink", |w| restart_condition(w).is_some()).await;
    let message = restart_condition(&w).unwrap();
    assert!(
        message.contains(
            "KubeVirt does not report RestartRequired for them; waiting for a restart: network uplink: added"
        ),
        "{message}"
    );
    let rows = classes(&pending(&w));
    assert!(rows.contains(&row("network uplink", Applies::Restart, false)), "{rows:?}");
    assert!(rows.contains(&row("network fast", Applies::Migration, false)), "{rows:?}");
    controller.stop().await;
}

/// The new NAD's name in a preview's `NAD web-mgmt-nad -> NAD <name>` change.
fn new_nad(change: &PendingChange) -> String {
    change.change.rsplit("-> NAD ").next().unwrap().to_string()
}

async fn vlan_of(ns: &TestNamespace, nad: &str) -> Option<i64> {
    let nad = get(ns, &nad_resource(), nad).await?;
    let config: Value = serde_json::from_str(nad.pointer("/spec/config")?.as_str()?).ok()?;
    config["vlan"].as_i64()
}

#[tokio::test]
async fn a_vlan_change_without_live_update_nad_ref_says_restart_required_and_rewrites_nothing_under_the_pod() {
    let c = cluster();
    let (ns, controller) = running(c, "vlan", json!([mgmt(100)]), false).await;
    let edited = manifest(&ns.name, json!([mgmt(200)]));
    let predicted = preview(c, &edited);
    assert_eq!(classes(&predicted), [row("network mgmt", Applies::Restart, true)], "{predicted:?}");
    assert!(predicted[0].change.starts_with("vlanId 100 -> 200; NAD web-mgmt-nad -> NAD web-mgmt-"));
    let swapped = new_nad(&predicted[0]);
    let offset = audit::offset(c);
    support::apply_strict(&ns.client, &edited).await;

    let words = wait_for("KubeVirt's RestartRequired", WAIT, || async { kubevirt_restart_required(&ns).await }).await;
    assert_eq!(words, "a non-live-updatable field was changed in the template spec");
    assert_eq!(nad_of(template(&vm(&ns).await), "mgmt").as_deref(), Some(swapped.as_str()));
    assert_eq!(nad_of(&vmi(&ns).await["spec"], "mgmt").as_deref(), Some("web-mgmt-nad"), "the instance is unchanged");
    assert_eq!(vlan_of(&ns, "web-mgmt-nad").await, Some(100), "the running pod's NAD is not rewritten");
    assert_eq!(vlan_of(&ns, &swapped).await, Some(200));
    let w = wukong_when(&ns, "RestartRequired", |w| restart_condition(w).is_some()).await;
    let message = restart_condition(&w).unwrap();
    assert!(
        message.contains(
            "; KubeVirt reports RestartRequired (a non-live-updatable field was changed in the template spec)"
        ) && message.contains(&format!("waiting for a restart: network mgmt: NAD web-mgmt-nad -> NAD {swapped}")),
        "{message}"
    );
    assert_eq!(classes(&pending(&w)), classes(&predicted), "the status says what the preview said");
    let nad_writes: Vec<audit::Request> = audit::writes(c, offset, &ns.name)
        .into_iter()
        .filter(|w| w.resource == "network-attachment-definitions" && w.name == "web-mgmt-nad")
        .collect();
    assert_eq!(nad_writes, vec![], "nothing wrote the NAD the instance runs on");
    controller.stop().await;
}

#[tokio::test]
async fn a_vlan_change_with_live_update_nad_ref_moves_the_running_vm_to_a_new_nad() {
    // A KubeVirt of its own, with the feature gate in its CR.
    let c = support::private_cluster_with_env(
        "kv-nad-ref",
        &["--without", "cdi"],
        &[("WUKONG_KUBEVIRT_FEATURE_GATES", "LiveUpdateNADRef")],
    )
    .await;
    let (ns, controller) = running(&c, "nadref", json!([mgmt(100)]), true).await;
    let edited = manifest(&ns.name, json!([mgmt(200)]));
    let predicted = preview(&c, &edited);
    assert_eq!(classes(&predicted), [row("network mgmt", Applies::Migration, false)], "{predicted:?}");
    assert!(predicted[0].reason.contains("LiveUpdateNADRef"), "{}", predicted[0].reason);
    let swapped = new_nad(&predicted[0]);
    support::apply_strict(&ns.client, &edited).await;

    // KubeVirt copies the new NAD into the instance and, the pod being on the old one (Multus'
    // network status, from the stand-in), requires a migration; no restart.
    let vmi = wait_for("KubeVirt to require a migration onto the new NAD", WAIT, || async {
        let vmi = get(&ns, &kv::vmi_resource(), VM).await?;
        let (status, reason, _) = kv::condition(&vmi, "MigrationRequired")?;
        (status == "True" && nad_of(&vmi["spec"], "mgmt").as_deref() == Some(swapped.as_str())).then_some(reason)
    })
    .await;
    assert_eq!(vmi, "AutoMigrationDueToLiveUpdate");
    assert_eq!(kubevirt_restart_required(&ns).await, None);
    let w = wukong_when(&ns, "the migration pending", |w| {
        pending(w).iter().any(|p| p.subject == "instance" && p.applies == Applies::Migration)
    })
    .await;
    assert_eq!(restart_condition(&w), None, "no restart is needed");
    assert_eq!(vlan_of(&ns, &swapped).await, Some(200));
    // The instance no longer names web-mgmt-nad: wukong may delete it (the pod's attachment
    // does not need it; Multus keeps what it attached with for the detach).
    controller.stop().await;
}
