//! Replacing the original Go operator in place, on the real KubeVirt (virt-api, virt-controller)
//! and CDI (cdi-apiserver, cdi-controller) of the test control plane: a namespace holds exactly
//! what the original created for its Wukongs (the fixture of `support::original`, built from
//! `wukong_render::legacy::original`, written with the original's field manager), its VM runs
//! (virt-controller made the instance), the original is gone, and wukong starts under deploy/'s
//! ServiceAccount. It adopts the original's NADs, keeps the VM's disks (nothing imported again),
//! leaves the running instance alone, says a restart is required as KubeVirt does, and touches no
//! foreign object. Stand-ins (named so in `support::kubevirt`) play only what needs a node:
//! binding the PVCs and finishing CDI's importer pod.

mod support;

use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::kubevirt::{self as kv, STEP};
use support::original::{leave, leave_vm};
use support::{TestNamespace, cluster, wait_for};
use wukong_api::Wukong;

const WAIT: Duration = Duration::from_secs(30);
/// The StorageClass of the original's disks (a class CDI knows, WaitForFirstConsumer).
const STORAGE_CLASS: &str = "local-path";

/// A Wukong as the original operator's users wrote them: `default` with a type, a VLAN network
/// with a static address, a DHCP network, a boot disk imported over HTTP, a blank data disk and
/// a user.
fn web() -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": "web" },
        "spec": {
            "cpu": 2, "memory": "4Gi",
            "networks": [
                { "name": "default", "type": "bridge", "ipConfig": { "mode": "dhcp" } },
                { "name": "mgmt", "type": "bridge", "vlanId": 100,
                  "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
                { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } }
            ],
            "disks": [
                { "name": "system", "size": "2Gi", "storageClassName": STORAGE_CLASS, "boot": true,
                  "image": "http://images.example/noble-server-cloudimg-amd64.img" },
                { "name": "data", "size": "1Gi", "storageClassName": STORAGE_CLASS }
            ],
            "cloudInitUser": { "name": "ubuntu", "passwordHash": "$6$rounds=4096$salt$hash", "groups": ["sudo"] },
            "startStrategy": { "autoStart": true }
        }
    })
}

fn api_of<K: kube::Resource<DynamicType = ()>>(ns: &TestNamespace) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client.clone(), &ns.name, &kube::discovery::ApiResource::erase::<K>(&()))
}

fn nads(ns: &TestNamespace) -> Api<DynamicObject> {
    api_of::<wukong_api::nad::NetworkAttachmentDefinition>(ns)
}

fn vms(ns: &TestNamespace) -> Api<DynamicObject> {
    api_of::<wukong_api::kubevirt::VirtualMachine>(ns)
}

fn vmis(ns: &TestNamespace) -> Api<DynamicObject> {
    api_of::<wukong_api::kubevirt::VirtualMachineInstance>(ns)
}

fn data_volumes(ns: &TestNamespace) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client.clone(), &ns.name, &kv::data_volume_resource())
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.unwrap_or_else(|e| panic!("{name}: {e}"))).expect("JSON")
}

async fn names(api: &Api<DynamicObject>) -> Vec<String> {
    api.list(&ListParams::default()).await.expect("a list").items.into_iter().filter_map(|o| o.metadata.name).collect()
}

fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().expect("a uid")
}

/// The `name`s of a list in a KubeVirt spec (networks, interfaces, volumes).
fn named(list: &Value) -> Vec<&str> {
    list.as_array().map(|l| l.iter().filter_map(|i| i["name"].as_str()).collect()).unwrap_or_default()
}

fn condition<'a>(w: &'a Wukong, type_: &str) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    w.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

async fn importer_pods(ns: &TestNamespace) -> Vec<String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = ns.api();
    let list = pods.list(&ListParams::default().labels("cdi.kubevirt.io=importer")).await.expect("pods");
    list.items.into_iter().filter_map(|p| p.metadata.name).collect()
}

#[tokio::test]
async fn wukong_takes_over_what_the_original_operator_left_without_losing_a_disk_or_restarting_the_vm() {
    let c = cluster();
    kv::require(c, true);
    support::controller::install_rbac(c);
    let ns = c.namespace("migration").await;
    kv::ensure_storage_class(&ns.client, STORAGE_CLASS).await;

    // The original operator ran here: web's NADs and disks (the boot disk imported by CDI), then
    // its VM, whose instance virt-controller started.
    let mut left = leave(&ns, &web()).await;
    assert_eq!(left.volumes[0]["kind"], "DataVolume", "the original imported the boot disk through CDI");
    kv::import_data_volumes(&ns.client, &ns.name, &["web-system"]).await;
    leave_vm(&ns, &mut left).await;
    let vmi = serde_json::to_value(kv::vmi(&ns.client, &ns.name, "web-vm").await).expect("JSON");
    let original_interfaces = named(&vmi["spec"]["domain"]["devices"]["interfaces"]);
    assert_eq!(original_interfaces, ["default", "web-default-nad", "web-mgmt-nad", "web-data-nad"]);
    let system_dv = get(&data_volumes(&ns), "web-system").await;
    let claims: Vec<Value> = {
        let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = ns.api();
        let mut out = Vec::new();
        for name in ["web-system", "web-data"] {
            out.push(serde_json::to_value(pvcs.get(name).await.expect("the original's PVC")).unwrap());
        }
        out
    };
    let importers_before = importer_pods(&ns).await;

    // Another Wukong's NAD under the generated name, which someone labelled since: no longer the
    // original's exact rendering, so it must stay foreign.
    let mut other = web();
    other["metadata"]["name"] = json!("other");
    other["spec"]["networks"] = json!([{ "name": "lan", "type": "bridge", "ipConfig": { "mode": "dhcp" } }]);
    other["spec"]["disks"] = json!([]);
    other["spec"]["osImage"] = json!("quay.io/containerdisks/ubuntu:22.04");
    let mut other_left = leave(&ns, &other).await;
    leave_vm(&ns, &mut other_left).await;
    let labelled = json!({ "metadata": { "labels": { "team": "network" } } });
    nads(&ns).patch("other-lan-nad", &PatchParams::default(), &Patch::Merge(&labelled)).await.expect("labelled");
    let foreign_before = get(&nads(&ns), "other-lan-nad").await;
    let other_vm_before = get(&vms(&ns), "other-vm").await;

    // The old operator is stopped; wukong starts.
    let client = c.service_account_client("wukong-system", "wukong").await;
    let controller = support::controller::start(client, support::controller::args(&ns.name, &[])).await;
    let wukongs: Api<Wukong> = ns.api();
    let w = wait_for("web's status from wukong", WAIT, || async {
        let w = wukongs.get("web").await.ok()?;
        (condition(&w, "NetworksReady")?.reason == "NetworksAttached" && condition(&w, "RestartRequired").is_some())
            .then_some(w)
    })
    .await;

    // The original's NADs are adopted: the same objects, now owned and labelled, with wukong's
    // config.
    for (net, before) in [("mgmt", &left.nads[1]), ("data", &left.nads[2])] {
        let nad = get(&nads(&ns), &format!("web-{net}-nad")).await;
        assert_eq!(uid(&nad), uid(before), "{net}: the same NAD, not a new one");
        let owner = &nad["metadata"]["ownerReferences"][0];
        assert_eq!((owner["kind"].as_str(), owner["uid"].as_str()), (Some("Wukong"), w.metadata.uid.as_deref()));
        assert_eq!(owner["controller"], true);
        assert_eq!(nad["metadata"]["labels"]["vm.novasphere.dev/network"], net);
        let config: Value = serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
        assert_eq!(config["name"], format!("web-{net}-nad"), "wukong's config");
    }
    // default is the pod network for wukong: the original's NAD for it is not wukong's to adopt.
    let default_nad = get(&nads(&ns), "web-default-nad").await;
    assert_eq!(default_nad["metadata"]["resourceVersion"], left.nads[0]["metadata"]["resourceVersion"]);

    // The VM: the same object, admitted by virt-api; running became runStrategy; its disks keep
    // their PVCs and get no DataVolume template; while it runs its networks keep the original's
    // names; the annotation KubeVirt writes itself is gone.
    let vm = get(&vms(&ns), "web-vm").await;
    assert_eq!(uid(&vm), uid(&left.vm));
    assert_eq!(vm["spec"].get("running"), None);
    assert_eq!(vm["spec"]["runStrategy"], "Always");
    assert_eq!(vm["metadata"]["annotations"].get("k8s.v1.cni.cncf.io/networks"), None);
    assert_eq!(vm["spec"]["template"]["metadata"]["annotations"].get("k8s.v1.cni.cncf.io/networks"), None);
    let template = &vm["spec"]["template"]["spec"];
    assert_eq!(
        template["volumes"][0],
        json!({ "name": "system", "persistentVolumeClaim": { "claimName": "web-system" } })
    );
    assert_eq!(template["volumes"][1], json!({ "name": "data", "persistentVolumeClaim": { "claimName": "web-data" } }));
    assert_eq!(template["volumes"][2]["name"], "cloudinit", "cloud-init from wukong's Secret, not inline");
    assert_eq!(vm["spec"].get("dataVolumeTemplates"), None, "nothing is imported again");
    assert_eq!(named(&template["networks"]), ["default", "web-mgmt-nad", "web-data-nad"]);

    // KubeVirt agrees that a restart is required, and did not restart the instance nor hot-plug
    // an interface into it.
    let kubevirt_says = wait_for("KubeVirt's RestartRequired on web-vm", STEP, || async {
        kv::condition(&get(&vms(&ns), "web-vm").await, "RestartRequired").filter(|(s, _, _)| s == "True")
    })
    .await;
    let vmi_now = get(&vmis(&ns), "web-vm").await;
    assert_eq!(uid(&vmi_now), uid(&vmi), "the same instance: not restarted");
    assert_eq!(named(&vmi_now["spec"]["domain"]["devices"]["interfaces"]), original_interfaces, "nothing hot-plugged");
    let restart = condition(&w, "RestartRequired").unwrap();
    assert_eq!(restart.status, "True");
    assert!(restart.message.contains("predates its networks, interfaces, disks, volumes:"), "{}", restart.message);
    assert!(restart.message.contains("mgmt as web-mgmt-nad"), "{}", restart.message);
    eprintln!("KubeVirt: {kubevirt_says:?}; wukong: {}", restart.message);

    // The disks: the same DataVolume and PVCs, unwritten, unowned; no import ran again; no new
    // DataVolume.
    let dv_now = get(&data_volumes(&ns), "web-system").await;
    assert_eq!(uid(&dv_now), uid(&system_dv));
    assert_eq!(dv_now["status"]["phase"], "Succeeded");
    assert_eq!(dv_now["metadata"].get("ownerReferences"), None);
    assert_eq!(names(&data_volumes(&ns)).await, ["web-system"]);
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = ns.api();
    for before in &claims {
        let name = before["metadata"]["name"].as_str().unwrap();
        let now = serde_json::to_value(pvcs.get(name).await.expect("the PVC")).unwrap();
        assert_eq!(uid(&now), uid(before), "{name}");
        assert_eq!(now["spec"]["resources"], before["spec"]["resources"], "{name}");
    }
    assert_eq!(importer_pods(&ns).await, importers_before, "no importer pod since");

    // The Wukong: the original's finalizer and conditions are gone; the status says which fields
    // are ignored, and a Warning event did.
    assert_eq!(w.metadata.finalizers.as_deref().unwrap_or_default(), &[] as &[String]);
    let types: Vec<&str> = w.status.as_ref().unwrap().conditions.iter().map(|c| c.type_.as_str()).collect();
    assert!(!types.contains(&"NetworksConfigured") && !types.contains(&"VolumesBound"), "{types:?}");
    let ignored = condition(&w, "FieldsIgnored").unwrap();
    assert!(ignored.message.contains("network \"default\": type is ignored"), "{}", ignored.message);
    assert_eq!(w.status.as_ref().unwrap().vm_name.as_deref(), Some("web-vm"));
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let warned = events.list(&Default::default()).await.expect("events").items.into_iter().any(|e| {
        e.type_.as_deref() == Some("Warning")
            && e.reason.as_deref() == Some("FieldsIgnored")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
    });
    assert!(warned, "a Warning event FieldsIgnored about web");

    // The other Wukong: its labelled NAD is foreign, never touched, and its VM is left as it is.
    let o = wait_for("other's NADConflict", WAIT, || async {
        let w = wukongs.get("other").await.ok()?;
        (condition(&w, "NetworksReady")?.reason == "NADConflict").then_some(w)
    })
    .await;
    assert_eq!(get(&nads(&ns), "other-lan-nad").await, foreign_before);
    assert_eq!(condition(&o, "VirtualMachineReady").unwrap().reason, "WaitingForNetworks");
    assert_eq!(get(&vms(&ns), "other-vm").await["spec"], other_vm_before["spec"]);

    // The user stops the VM: virt-controller removes the instance, the networks take wukong's
    // names, the disks keep their PVCs, and no restart is pending any more.
    let halted = json!({ "spec": { "startStrategy": { "runStrategy": "Halted" } } });
    wukongs.patch("web", &PatchParams::default(), &Patch::Merge(&halted)).await.expect("halted");
    let vm = wait_for("the stopped VM to take wukong's network names", STEP, || async {
        let vm = get(&vms(&ns), "web-vm").await;
        (named(&vm["spec"]["template"]["spec"]["networks"]) == ["default", "mgmt", "data"]).then_some(vm)
    })
    .await;
    assert_eq!(vm["spec"]["runStrategy"], "Halted");
    assert!(vmis(&ns).get_opt("web-vm").await.expect("a get").is_none(), "stopped by KubeVirt");
    assert_eq!(vm["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"], "web-data");
    wait_for("RestartRequired to go with the instance", WAIT, || async {
        condition(&wukongs.get("web").await.ok()?, "RestartRequired").is_none().then_some(())
    })
    .await;

    // And starts it again: the new instance has wukong's networks, MACs and cloud-init on the
    // same claims; nothing was imported again, and KubeVirt no longer asks for a restart.
    let started = json!({ "spec": { "startStrategy": { "runStrategy": null, "autoStart": true } } });
    wukongs.patch("web", &PatchParams::default(), &Patch::Merge(&started)).await.expect("started");
    let vmi = wait_for("a new instance", STEP, || async {
        let vmi = vmis(&ns).get_opt("web-vm").await.ok()??;
        let vmi = serde_json::to_value(vmi).ok()?;
        (named(&vmi["spec"]["networks"]) == ["default", "mgmt", "data"]).then_some(vmi)
    })
    .await;
    let interfaces = vmi["spec"]["domain"]["devices"]["interfaces"].as_array().unwrap();
    assert!(interfaces[1]["macAddress"].as_str().is_some_and(|m| m.starts_with("02:")), "{interfaces:?}");
    let claims = [&vmi["spec"]["volumes"][0], &vmi["spec"]["volumes"][1]]
        .map(|v| v["persistentVolumeClaim"]["claimName"].clone());
    assert_eq!(claims, [json!("web-system"), json!("web-data")]);
    wait_for("KubeVirt to drop RestartRequired on the new instance", STEP, || async {
        kv::condition(&get(&vms(&ns), "web-vm").await, "RestartRequired").is_none().then_some(())
    })
    .await;
    assert!(condition(&wukongs.get("web").await.unwrap(), "RestartRequired").is_none());
    assert_eq!(uid(&get(&data_volumes(&ns), "web-system").await), uid(&system_dv));
    assert_eq!(importer_pods(&ns).await, importers_before, "no importer pod since");
    controller.stop().await;
}

#[tokio::test]
async fn a_wukong_the_original_operator_was_deleting_goes_once_wukong_removes_the_finalizer() {
    let c = cluster();
    support::controller::install_rbac(c);
    let ns = c.namespace("migration-delete").await;
    let mut manifest = web();
    manifest["metadata"]["name"] = json!("gone");
    manifest["spec"]["disks"] = json!([]);
    manifest["spec"]["osImage"] = json!("quay.io/containerdisks/ubuntu:22.04");
    let mut left = leave(&ns, &manifest).await;
    leave_vm(&ns, &mut left).await;
    let wukongs: Api<Wukong> = ns.api();
    wukongs.delete("gone", &Default::default()).await.expect("deleted");
    let stuck = wukongs.get("gone").await.expect("held by the original's finalizer");
    assert!(stuck.metadata.deletion_timestamp.is_some());

    let client = c.service_account_client("wukong-system", "wukong").await;
    let controller = support::controller::start(client, support::controller::args(&ns.name, &[])).await;
    wait_for("the Wukong to be gone", WAIT, || async { wukongs.get_opt("gone").await.ok()?.is_none().then_some(()) })
        .await;
    // Nothing was written for a Wukong being deleted: the original's NADs are as it left them.
    let nad = get(&nads(&ns), "gone-mgmt-nad").await;
    assert_eq!(nad["metadata"]["resourceVersion"], left.nads[1]["metadata"]["resourceVersion"]);
    controller.stop().await;
}
