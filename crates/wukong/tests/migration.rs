//! Replacing the original Go operator in place: a namespace holds exactly what the original
//! created for its Wukongs (the fixture of `support::original`, built from
//! `wukong_render::legacy::original`), the original is gone, and wukong starts under deploy/'s
//! ServiceAccount. It adopts the original's NADs, keeps the VM's disks, does not touch the
//! running instance, says that a restart is required, and leaves every foreign object alone.

mod support;

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::original::{Left, leave};
use support::{TestNamespace, cluster, wait_for};
use wukong_api::Wukong;

const WAIT: Duration = Duration::from_secs(30);

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
                { "name": "system", "size": "20Gi", "storageClassName": "local-path", "boot": true,
                  "image": "http://images.example/noble-server-cloudimg-amd64.img" },
                { "name": "data", "size": "50Gi", "storageClassName": "local-path" }
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

async fn get(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.unwrap_or_else(|e| panic!("{name}: {e}"))).expect("JSON")
}

fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().expect("a uid")
}

fn condition<'a>(w: &'a Wukong, type_: &str) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    w.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// The instance KubeVirt's virt-controller made of the original's running VM (`running: true`):
/// its template spec, owned by the VM. virt-controller does not run on this control plane, so
/// the test writes it as virt-controller does.
async fn instance_of(ns: &TestNamespace, vm: &Value) -> Value {
    let name = vm["metadata"]["name"].as_str().expect("a name");
    let vmi = json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {
            "name": name, "namespace": ns.name,
            "labels": { "kubevirt.io/vm": name },
            "ownerReferences": [{ "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": name,
                                  "uid": uid(vm), "controller": true, "blockOwnerDeletion": true }],
        },
        "spec": vm["spec"]["template"]["spec"],
    });
    let body: DynamicObject = serde_json::from_value(vmi).expect("a VMI");
    let stored = vmis(ns).create(&PostParams::default(), &body).await.expect("the instance");
    serde_json::to_value(stored).expect("JSON")
}

#[tokio::test]
async fn wukong_takes_over_what_the_original_operator_left_without_losing_a_disk_or_restarting_the_vm() {
    let c = cluster();
    support::controller::install_rbac(c);
    let ns = c.namespace("migration").await;

    // The original operator ran here: web's objects, and the VM's running instance.
    let left: Left = leave(&ns, &web()).await;
    let vmi = instance_of(&ns, &left.vm).await;
    // Another Wukong's NAD under the generated name, which someone labelled since: no longer the
    // original's exact rendering, so it must stay foreign.
    let mut other = web();
    other["metadata"]["name"] = json!("other");
    other["spec"]["networks"] = json!([{ "name": "lan", "type": "bridge", "ipConfig": { "mode": "dhcp" } }]);
    other["spec"]["disks"] = json!([]);
    other["spec"]["osImage"] = json!("quay.io/containerdisks/ubuntu:22.04");
    let other_left = leave(&ns, &other).await;
    let labelled = json!({ "metadata": { "labels": { "team": "network" } } });
    nads(&ns).patch("other-lan-nad", &PatchParams::default(), &Patch::Merge(&labelled)).await.expect("labelled");
    let foreign_before = get(&nads(&ns), "other-lan-nad").await;

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

    // The VM: the same object; running became runStrategy; its disks keep their PVCs; while it
    // runs its networks keep the original's names; the annotation KubeVirt writes itself is gone.
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
    let networks: Vec<&str> =
        template["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(networks, ["default", "web-mgmt-nad", "web-data-nad"], "no interface to hot-plug into the running VM");

    // The disks' PVCs and the running instance are untouched.
    for before in &left.volumes {
        let (api, name) = support::dynamic_api(&ns.client, before).await;
        let now = serde_json::to_value(api.get(&name).await.expect("the PVC")).unwrap();
        assert_eq!(now["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"], "{name} was written");
        assert_eq!(now["metadata"].get("ownerReferences"), None);
    }
    let vmi_now = get(&vmis(&ns), "web-vm").await;
    assert_eq!(
        (uid(&vmi_now), &vmi_now["metadata"]["resourceVersion"]),
        (uid(&vmi), &vmi["metadata"]["resourceVersion"])
    );

    // The Wukong: the original's finalizer and conditions are gone; the status says what a
    // restart would apply and which fields are ignored.
    assert_eq!(w.metadata.finalizers.as_deref().unwrap_or_default(), &[] as &[String]);
    let types: Vec<&str> = w.status.as_ref().unwrap().conditions.iter().map(|c| c.type_.as_str()).collect();
    assert!(!types.contains(&"NetworksConfigured") && !types.contains(&"VolumesBound"), "{types:?}");
    let restart = condition(&w, "RestartRequired").unwrap();
    assert_eq!(restart.status, "True");
    assert!(restart.message.contains("predates its networks, interfaces, disks, volumes:"), "{}", restart.message);
    assert!(restart.message.contains("mgmt as web-mgmt-nad"), "{}", restart.message);
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

    // The other Wukong: its labelled NAD is foreign, never touched, and holds its VM back.
    let o = wait_for("other's NADConflict", WAIT, || async {
        let w = wukongs.get("other").await.ok()?;
        (condition(&w, "NetworksReady")?.reason == "NADConflict").then_some(w)
    })
    .await;
    assert_eq!(get(&nads(&ns), "other-lan-nad").await, foreign_before);
    assert_eq!(condition(&o, "VirtualMachineReady").unwrap().reason, "WaitingForNetworks");
    let other_vm = get(&vms(&ns), "other-vm").await;
    assert_eq!(other_vm["metadata"]["resourceVersion"], other_left.vm["metadata"]["resourceVersion"]);

    // The VM is stopped (the instance goes, as KubeVirt removes it): the networks take wukong's
    // names and the disks still keep their PVCs.
    let halted = json!({ "spec": { "startStrategy": { "runStrategy": "Halted" } } });
    wukongs.patch("web", &PatchParams::default(), &Patch::Merge(&halted)).await.expect("halted");
    vmis(&ns).delete("web-vm", &Default::default()).await.expect("the instance stops");
    let vm = wait_for("the stopped VM to take wukong's network names", WAIT, || async {
        let vm = get(&vms(&ns), "web-vm").await;
        let names: Vec<Value> =
            vm["spec"]["template"]["spec"]["networks"].as_array()?.iter().map(|n| n["name"].clone()).collect();
        (names == [json!("default"), json!("mgmt"), json!("data")]).then_some(vm)
    })
    .await;
    assert_eq!(vm["spec"]["runStrategy"], "Halted");
    assert_eq!(vm["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"], "web-data");
    wait_for("RestartRequired to go with the instance", WAIT, || async {
        let w = wukongs.get("web").await.ok()?;
        condition(&w, "RestartRequired").is_none().then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test]
async fn a_wukong_the_original_operator_was_deleting_goes_once_wukong_removes_the_finalizer() {
    let c = cluster();
    support::controller::install_rbac(c);
    let ns = c.namespace("migration-delete").await;
    let mut manifest = web();
    manifest["metadata"]["name"] = json!("gone");
    leave(&ns, &manifest).await;
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
    assert_eq!(nad["metadata"].get("ownerReferences"), None);
    controller.stop().await;
}
