//! wukong's VMs meet KubeVirt's and CDI's real admission webhooks and controllers (virt-api,
//! virt-controller, cdi-apiserver, cdi-controller, run by `hack/local-cluster.sh`): what the
//! renderer writes is admitted, virt-controller turns it into a VMI and a virt-launcher pod whose
//! networks annotation is exactly the one `wukong render` predicts, CDI makes the disks' PVCs,
//! and what KubeVirt's admission lets through but cannot run is caught by wukong first.
//!
//! No node exists: launcher pods are created, never run. Where a test needs what a node does
//! (bound PVCs, a finished import), it uses the stand-ins of `support::kubevirt`, named so.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::kubevirt::{self as kv, STEP};
use support::{Cluster, cluster, wait_for};
use wukong_render::RenderOptions;

/// What `wukong render` makes of the Wukong of `path`, put into `namespace` (MACs and the
/// annotation's namespaces derive from it).
fn rendered(path: &str, namespace: &str) -> wukong_render::Rendered {
    let manifest = support::in_namespace(&support::documents(path)[0], namespace);
    let valid = wukong_render::validate_object(&manifest).unwrap_or_else(|e| panic!("{path}: {e}"));
    wukong_render::render(&valid, &RenderOptions::default())
}

/// Applies the NADs, the cloud-init Secret and the VM of `rendered`, in that order, as the
/// controller would; the VM's admission (virt-api's webhooks) refuses or accepts it.
async fn apply_rendered(client: &Client, rendered: &wukong_render::Rendered) -> kube::Result<Value> {
    for nad in &rendered.nads {
        support::apply_strict(client, &serde_json::to_value(nad).unwrap()).await;
    }
    if let Some(secret) = &rendered.cloud_init_secret {
        support::apply_strict(client, &serde_json::to_value(secret).unwrap()).await;
    }
    support::apply(client, &serde_json::to_value(&rendered.vm).unwrap(), true).await
}

/// The NADs `nadName` points at in examples/existing-nad.yaml, as a user would have made them.
async fn existing_nads(c: &Cluster, namespace: &str) {
    let client = c.admin_client().await;
    for (ns, name) in [(namespace, "office-lan"), ("infra", "vlan42")] {
        if ns == "infra" {
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
            let infra = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "infra" } });
            namespaces
                .patch("infra", &PatchParams::apply(support::FIELD_MANAGER), &Patch::Apply(&infra))
                .await
                .unwrap();
        }
        let nad = json!({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": { "name": name, "namespace": ns },
            "spec": { "config": format!(r#"{{"cniVersion":"0.3.1","name":"{name}","type":"bridge","bridge":"br-{name}"}}"#) }
        });
        support::apply_strict(&client, &nad).await;
    }
}

/// The resources a launcher pod asks the device plugins for: from the NADs' resourceName
/// annotations, one per interface.
fn device_requests(requests: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    requests
        .iter()
        .filter(|(k, _)| k.contains('/') && !k.starts_with("devices.kubevirt.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test]
async fn every_example_passes_kubevirts_admission_and_gets_the_launcher_pod_wukong_render_predicts() {
    let c = cluster();
    kv::require(c, false);
    every_example_through_kubevirt(c).await;
}

/// For every example but the full VM (its disks need CDI and the stand-ins; see the next
/// test): admitted by virt-api, a VMI and a launcher pod from virt-controller, the pod's networks
/// annotation byte for byte what `wukong render` prints, and the device-plugin resources of
/// SR-IOV and macvtap networks requested. Also run on the oldest supported KubeVirt and CDI.
async fn every_example_through_kubevirt(c: &Cluster) {
    let ns = c.namespace("kv-examples").await;
    existing_nads(c, &ns.name).await;
    let expected_devices = BTreeMap::from([
        ("sriov.yaml", BTreeMap::from([("intel.com/sriov_vfio".to_string(), "1".to_string())])),
        ("macvlan.yaml", BTreeMap::from([("macvtap.network.kubevirt.io/eth1".to_string(), "1".to_string())])),
    ]);
    let mut checked = Vec::new();
    for path in support::examples() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "full-vm.yaml" {
            continue;
        }
        let r = rendered(path.to_str().unwrap(), &ns.name);
        let vm_name = r.vm.metadata.name.clone().unwrap();
        let stored =
            apply_rendered(&ns.client, &r).await.unwrap_or_else(|e| panic!("{file}: virt-api refused the VM: {e}"));
        // virt-api's mutating webhook filled in what a VM gets by default.
        assert_eq!(stored.pointer("/spec/template/spec/architecture"), Some(&json!("amd64")), "{file}");

        let vmi = kv::vmi(&ns.client, &ns.name, &vm_name).await;
        let pod = kv::launcher_pod(&ns.client, &ns.name, &vm_name).await;
        assert_eq!(
            pod.labels().get("kubevirt.io/created-by").map(String::as_str),
            vmi.uid().as_deref(),
            "{file}: the launcher pod is the VMI's"
        );
        assert_eq!(
            kv::networks_annotation(&pod),
            r.launcher_pod_networks.clone(),
            "{file}: the launcher pod's networks annotation (written by virt-controller) is what wukong render predicts"
        );
        assert_eq!(
            device_requests(&kv::compute_requests(&pod)),
            expected_devices.get(file.as_str()).cloned().unwrap_or_default(),
            "{file}: device-plugin resources of the launcher pod"
        );
        checked.push(file);
    }
    assert_eq!(checked.len(), support::examples().len() - 1, "every example but full-vm: {checked:?}");
}

#[tokio::test]
async fn the_full_vm_gets_its_disks_from_cdi_and_its_launcher_pod_once_they_are_imported() {
    let c = cluster();
    kv::require(c, true);
    full_vm_through_kubevirt_and_cdi(c).await;
}

/// examples/full-vm.yaml: virt-controller makes its two DataVolumes, CDI their PVCs with the size
/// (plus CDI's filesystem overhead), class and access mode wukong asked for; once storage and a
/// node (stand-ins) have done their part, CDI reports them Succeeded and virt-controller makes the
/// launcher pod, with the disks as volumes and the predicted networks annotation.
async fn full_vm_through_kubevirt_and_cdi(c: &Cluster) {
    let ns = c.namespace("kv-full-vm").await;
    kv::ensure_storage_class(&ns.client, "fast-ssd").await;
    let r = rendered("examples/full-vm.yaml", &ns.name);
    apply_rendered(&ns.client, &r).await.unwrap_or_else(|e| panic!("virt-api refused the full VM: {e}"));

    let pvcs: Api<PersistentVolumeClaim> = ns.api();
    let expected = [("db-01-system", 30u128 << 30), ("db-01-data", 200u128 << 30)];
    let (overhead, math) = kv::filesystem_overhead(c).await;
    for (name, size) in expected {
        let pvc =
            wait_for(&format!("CDI to create PVC {name}"), STEP, || async { pvcs.get_opt(name).await.ok().flatten() })
                .await;
        let spec = pvc.spec.clone().unwrap();
        let requested = spec.resources.unwrap().requests.unwrap()["storage"].0.clone();
        assert_eq!(
            requested,
            wukong_render::disks::cdi_request(size, overhead, false, math).to_string(),
            "{name}: CDI asks for the disk's size plus its filesystem overhead ({overhead}, {math:?}), as wukong computes it"
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast-ssd"), "{name}");
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]), "{name}: from CDI's StorageProfile");
        assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"), "{name}");
        let owner = pvc.owner_references().first().cloned().expect("the PVC is owned by its DataVolume");
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("DataVolume", name));
    }
    let vm_name = r.vm.metadata.name.clone().unwrap();
    wait_for("CDI to report the DataVolumes WaitForFirstConsumer", STEP, || async {
        let system = kv::data_volume_phase(&ns.client, &ns.name, "db-01-system").await?;
        (system == "WaitForFirstConsumer").then_some(())
    })
    .await;

    kv::import_data_volumes(&ns.client, &ns.name, &["db-01-system", "db-01-data"]).await;
    let pod = kv::launcher_pod(&ns.client, &ns.name, &vm_name).await;
    assert_eq!(kv::networks_annotation(&pod), r.launcher_pod_networks, "the predicted networks annotation");
    let claims: BTreeMap<String, String> = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| Some((v.name, v.persistent_volume_claim?.claim_name)))
        .collect();
    assert_eq!(claims.get("system").map(String::as_str), Some("db-01-system"), "{claims:?}");
    assert_eq!(claims.get("data").map(String::as_str), Some("db-01-data"), "{claims:?}");
}

#[tokio::test]
async fn the_oldest_supported_kubevirt_and_cdi_admit_and_run_every_example_and_the_full_vm() {
    // A control plane of its own, with the oldest pair hack/local-cluster/virt-sources.txt lists.
    let (kubevirt, cdi) = ("v1.6.2", "v1.62.0");
    let c = support::private_cluster_with_env(
        "kv-oldest",
        &[],
        &[("WUKONG_KUBEVIRT_VERSION", kubevirt), ("WUKONG_CDI_VERSION", cdi)],
    )
    .await;
    kv::require(&c, true);
    assert_eq!((c.kubevirt_version.as_deref(), c.cdi_version.as_deref()), (Some(kubevirt), Some(cdi)));
    every_example_through_kubevirt(&c).await;
    full_vm_through_kubevirt_and_cdi(&c).await;
}

#[tokio::test]
async fn what_kubevirts_admission_lets_through_but_cannot_run_is_caught_by_wukong() {
    // A KubeVirt of its own: this test takes macvtap out of its KubeVirt CR.
    let c = support::private_cluster("kv-gaps", &["--without", "cdi"]).await;
    kv::require(&c, false);
    let ns = c.namespace("kv-gaps").await;
    // What a user writes without wukong lives apart, so it does not stand in wukong's way.
    let by_hand = c.namespace("kv-by-hand").await;
    let kubevirts: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), "kubevirt", &kubevirt_resource());
    kubevirts
        .patch(
            "kubevirt",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    { "op": "remove", "path": "/spec/configuration/network/binding/macvtap" }
                ]))
                .unwrap(),
            ),
        )
        .await
        .expect("the KubeVirt CR without macvtap");

    // 1. Without wukong: a VM whose interface names an unregistered binding plugin passes
    //    virt-api, and virt-controller never starts it.
    let r = rendered("examples/macvlan.yaml", &by_hand.name);
    let mut vm = serde_json::to_value(&r.vm).unwrap();
    vm["metadata"]["name"] = json!("by-hand-vm");
    for nad in &r.nads {
        support::apply_strict(&by_hand.client, &serde_json::to_value(nad).unwrap()).await;
    }
    if let Some(secret) = &r.cloud_init_secret {
        support::apply_strict(&by_hand.client, &serde_json::to_value(secret).unwrap()).await;
    }
    support::apply(&by_hand.client, &vm, true).await.expect("virt-api admits the VM");
    let by_hand_vms: Api<DynamicObject> =
        Api::namespaced_with(by_hand.client.clone(), &by_hand.name, &kv::vm_resource());
    let words = wait_for("virt-controller to refuse to render the launcher pod", STEP, || async {
        let vm = by_hand_vms.get_opt("by-hand-vm").await.ok()??;
        let (status, reason, message) = kv::condition(&serde_json::to_value(&vm).unwrap(), "Synchronized")?;
        (status == "False" && reason == "FailedCreate").then_some(message)
    })
    .await;
    assert!(words.contains("macvtap"), "KubeVirt's words: {words}");
    let vms: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &kv::vm_resource());

    // 2. With wukong: the VM is not written, and the status says what to register.
    support::controller::install_rbac(&c);
    let client = c.service_account_client("wukong-system", "wukong").await;
    let controller = support::controller::start(client, support::controller::args(&ns.name, &[])).await;
    support::apply_strict(
        &ns.client,
        &support::in_namespace(&support::documents("examples/macvlan.yaml")[0], &ns.name),
    )
    .await;
    let wukongs: Api<wukong_api::Wukong> = ns.api();
    let name = support::documents("examples/macvlan.yaml")[0]["metadata"]["name"].as_str().unwrap().to_string();
    let vm_name = format!("{name}-vm");
    let held = wait_for("VirtualMachineReady=False BindingNotRegistered", STEP, || async {
        let w = wukongs.get_opt(&name).await.ok()??;
        let c = w.status?.conditions.into_iter().find(|c| c.type_ == "VirtualMachineReady")?;
        (c.reason == "BindingNotRegistered").then_some(c.message)
    })
    .await;
    assert!(
        held.contains(
            "needs KubeVirt's network binding plugin macvtap, which KubeVirt CR kubevirt/kubevirt does not register"
        ),
        "{held}"
    );
    assert!(vms.get_opt(&vm_name).await.unwrap().is_none(), "no VM KubeVirt could not run");

    // 3. macvtap registered: the watch on the KubeVirt CR lets the VM through, and KubeVirt
    //    makes its launcher pod.
    kubevirts
        .patch("kubevirt", &PatchParams::default(), &Patch::Merge(json!({
            "spec": { "configuration": { "network": { "binding": { "macvtap": { "domainAttachmentType": "tap" } } } } }
        })))
        .await
        .unwrap();
    let pod = kv::launcher_pod(&ns.client, &ns.name, &vm_name).await;
    assert_eq!(kv::networks_annotation(&pod), rendered("examples/macvlan.yaml", &ns.name).launcher_pod_networks);

    // 4. Two more that KubeVirt admits and cannot run: a missing NAD, which wukong holds back
    //    (NADNotFound, in the controller's tests), and duplicate MACs, which wukong's CRD refuses.
    let mut missing = vm.clone();
    missing["metadata"]["name"] = json!("missing-nad-vm");
    missing["spec"]["template"]["spec"]["networks"][1]["multus"]["networkName"] = json!("no-such-nad");
    support::apply(&by_hand.client, &missing, true).await.expect("virt-api admits a VM naming a missing NAD");
    let words = wait_for("virt-controller's words for a missing NAD", STEP, || async {
        let vm = by_hand_vms.get_opt("missing-nad-vm").await.ok()??;
        let (status, _, message) = kv::condition(&serde_json::to_value(&vm).unwrap(), "Synchronized")?;
        (status == "False").then_some(message)
    })
    .await;
    assert!(
        words.contains(&format!("failed to locate network attachment definition {}/no-such-nad", by_hand.name)),
        "{words}"
    );

    let mut twins = vm.clone();
    twins["metadata"]["name"] = json!("twin-mac-vm");
    let mac = twins["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][1]["macAddress"].clone();
    twins["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["macAddress"] = mac.clone();
    support::apply(&by_hand.client, &twins, true).await.expect("virt-api admits two interfaces with one MAC");
    let mut wukong = support::in_namespace(&support::documents("examples/web-server-01.yaml")[0], &ns.name);
    wukong["metadata"]["name"] = json!("twins");
    wukong["spec"]["networks"][0]["macAddress"] = mac.clone();
    wukong["spec"]["networks"][1]["macAddress"] = mac;
    let refused = support::refusal(support::apply(&ns.client, &wukong, true).await);
    assert!(refused.message.contains("macAddress must be unique"), "{}", refused.message);
    controller.stop().await;
}

fn kubevirt_resource() -> kube::discovery::ApiResource {
    kube::discovery::ApiResource {
        group: "kubevirt.io".into(),
        version: "v1".into(),
        api_version: "kubevirt.io/v1".into(),
        kind: "KubeVirt".into(),
        plural: "kubevirts".into(),
    }
}
