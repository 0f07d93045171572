//! What the real KubeVirt and CDI of the test control plane make of a VM, and the stand-ins for
//! the parts of a cluster that need a node, which the bench has not (no scheduler, kubelet,
//! storage provisioner, virt-handler or guest). Every stand-in says what it stands in for; it
//! writes only what that component would write, and KubeVirt's and CDI's own controllers do the
//! rest.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::{Cluster, FIELD_MANAGER, wait_for};

/// How long KubeVirt or CDI may take for one step (CDI requeues an import every ~40 s when a
/// WaitForFirstConsumer temp pod held its PVC).
pub const STEP: Duration = Duration::from_secs(90);

/// The launcher pod's networks annotation, which Multus reads.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";

/// The provisioner of the StorageClasses tests make: in CDI's capability table
/// (ReadWriteOnce, Filesystem), like the bench's default class.
pub const PROVISIONER: &str = "kubevirt.io.hostpath-provisioner";

pub fn vmi_resource() -> ApiResource {
    ApiResource::erase::<wukong_api::kubevirt::VirtualMachineInstance>(&())
}

pub fn vm_resource() -> ApiResource {
    ApiResource::erase::<wukong_api::kubevirt::VirtualMachine>(&())
}

pub fn data_volume_resource() -> ApiResource {
    ApiResource {
        group: "cdi.kubevirt.io".into(),
        version: "v1beta1".into(),
        api_version: "cdi.kubevirt.io/v1beta1".into(),
        kind: "DataVolume".into(),
        plural: "datavolumes".into(),
    }
}

/// Panics with one line unless the cluster runs KubeVirt (and CDI when `cdi`).
pub fn require(c: &Cluster, cdi: bool) {
    assert!(
        c.kubevirt_version.is_some(),
        "this test needs KubeVirt's virt-api and virt-controller next to the API server: `hack/local-cluster.sh up` starts them (the cluster in {} runs without)",
        c.dir.display()
    );
    assert!(
        !cdi || c.cdi_version.is_some(),
        "this test needs CDI's cdi-controller and cdi-apiserver: `hack/local-cluster.sh up` starts them (the cluster in {} runs without)",
        c.dir.display()
    );
}

/// The VMI virt-controller made for VM `name`.
pub async fn vmi(client: &Client, namespace: &str, name: &str) -> DynamicObject {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &vmi_resource());
    wait_for(&format!("virt-controller to create VMI {namespace}/{name}"), STEP, || async {
        api.get_opt(name).await.ok().flatten()
    })
    .await
}

/// The virt-launcher pod virt-controller made for VM `vm` (not a WaitForFirstConsumer temp pod).
pub async fn launcher_pod(client: &Client, namespace: &str, vm: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("kubevirt.io=virt-launcher,vm.kubevirt.io/name={vm}");
    wait_for(&format!("virt-controller to create the virt-launcher pod of {namespace}/{vm}"), STEP, || async {
        let list = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
        list.items.into_iter().find(|p| !is_temp_pod(p))
    })
    .await
}

/// virt-controller's WaitForFirstConsumer "doppleganger" pod, which only mounts the PVCs.
pub fn is_temp_pod(pod: &Pod) -> bool {
    pod.annotations().get("kubevirt.io/ephemeral-provisioning").map(String::as_str) == Some("true")
}

/// The networks annotation of a pod.
pub fn networks_annotation(pod: &Pod) -> Option<String> {
    pod.annotations().get(NETWORKS_ANNOTATION).cloned()
}

/// The resource requests of the pod's `compute` container (where KubeVirt asks for the device
/// plugins' resources of SR-IOV and macvtap networks).
pub fn compute_requests(pod: &Pod) -> std::collections::BTreeMap<String, String> {
    let spec = pod.spec.as_ref().expect("a pod has a spec");
    let compute =
        spec.containers.iter().find(|c| c.name == "compute").expect("the launcher pod has a compute container");
    compute
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// A condition of a KubeVirt object, as (status, reason, message).
pub fn condition(object: &Value, type_: &str) -> Option<(String, String, String)> {
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    let c = conditions.iter().find(|c| c["type"] == type_)?;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message")))
}

// ---- stand-ins for what needs a node ------------------------------------------------------------

/// STAND-IN for the scheduler and the kubelet (there is no node): binds the launcher pod to
/// `node` through the Binding API, as the scheduler does, and reports it Running and Ready, as
/// the kubelet does. virt-controller then moves the VMI to Scheduled on that node by itself.
pub async fn schedule_and_run(client: &Client, pod: &Pod, node: &str) {
    let namespace = pod.namespace().expect("a namespaced pod");
    let name = pod.name_any();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": { "name": name },
        "target": { "apiVersion": "v1", "kind": "Node", "name": node }
    });
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods/{name}/binding"))
        .create(&PostParams::default(), serde_json::to_vec(&binding).expect("JSON"))
        .expect("a binding request");
    client.request::<Value>(request).await.unwrap_or_else(|e| panic!("binding pod {namespace}/{name}: {e}"));
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let ready = |t: &str| json!({ "type": t, "status": "True", "lastTransitionTime": now });
    pods.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": {
            "phase": "Running", "podIP": "10.244.0.9",
            "conditions": [ready("PodScheduled"), ready("Initialized"), ready("ContainersReady"), ready("Ready")]
        } })),
    )
    .await
    .unwrap_or_else(|e| panic!("reporting pod {namespace}/{name} running: {e}"));
}

/// STAND-IN for virt-handler and the guest agent (they need a node and a booted guest): reports
/// the VMI Running with the guest's `interfaces`. KubeVirt's mutating webhook discards VMI status
/// written by anyone but KubeVirt's own service accounts, so this writes as virt-controller's.
/// virt-controller then derives the VMI's Ready condition and the VM's status itself.
pub async fn report_guest_running(c: &Cluster, namespace: &str, vmi: &str, interfaces: Value) {
    let kubevirt = c.service_account_client("kubevirt", "kubevirt-controller").await;
    let api: Api<DynamicObject> = Api::namespaced_with(kubevirt, namespace, &vmi_resource());
    api.patch(
        vmi,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "phase": "Running", "interfaces": interfaces } })),
    )
    .await
    .unwrap_or_else(|e| panic!("reporting VMI {namespace}/{vmi} running: {e}"));
}

/// A StorageClass CDI knows (see [`PROVISIONER`]), WaitForFirstConsumer, expandable.
pub async fn ensure_storage_class(client: &Client, name: &str) {
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": { "name": name },
        "provisioner": PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": true, "reclaimPolicy": "Delete"
    });
    classes
        .patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&class))
        .await
        .unwrap_or_else(|e| panic!("StorageClass {name}: {e}"));
}

/// STAND-IN for a storage provisioner and the PV binder (no storage here): binds every Pending
/// PVC that CDI made in `namespace` to a new PV of its requested size, as they would. Returns
/// the PVCs bound.
pub async fn bind_cdi_pvcs(client: &Client, namespace: &str) -> Vec<String> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let mut bound = Vec::new();
    let list =
        pvcs.list(&ListParams::default().labels("app.kubernetes.io/managed-by=cdi-controller")).await.expect("PVCs");
    for pvc in list.items.into_iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
    {
        let name = pvc.name_any();
        let spec = pvc.spec.clone().expect("a PVC has a spec");
        let size = spec.resources.and_then(|r| r.requests).and_then(|r| r.get("storage").cloned()).expect("a size");
        let pv_name = format!("pv-{namespace}-{name}");
        let pv = json!({
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": { "name": pv_name },
            "spec": {
                "capacity": { "storage": size },
                "accessModes": spec.access_modes.clone().unwrap_or_default(),
                "volumeMode": spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into()),
                "storageClassName": spec.storage_class_name.clone().unwrap_or_default(),
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": { "path": format!("/nonexistent/{namespace}/{name}") },
                "claimRef": { "namespace": namespace, "name": name, "uid": pvc.uid() }
            }
        });
        pvs.patch(&pv_name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&pv)).await.expect("a PV");
        pvs.patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(json!({ "status": { "phase": "Bound" } })))
            .await
            .expect("PV bound");
        pvcs.patch(&name, &PatchParams::default(), &Patch::Merge(json!({ "spec": { "volumeName": pv_name } })))
            .await
            .expect("PVC volumeName");
        pvcs.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "phase": "Bound", "accessModes": spec.access_modes.unwrap_or_default(), "capacity": { "storage": size }
            } })),
        )
        .await
        .expect("PVC bound");
        bound.push(name);
    }
    bound
}

/// STAND-IN for the kubelet running the pods of CDI's import and KubeVirt's WaitForFirstConsumer
/// check (there is no node): marks every Pending importer pod Succeeded with CDI's termination
/// message, and every temp pod Succeeded. CDI then marks the DataVolume Succeeded and
/// virt-controller deletes the temp pod. Returns the pods finished.
pub async fn finish_cdi_pods(client: &Client, namespace: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pending = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut finished = Vec::new();
    let importers = pods.list(&ListParams::default().labels("cdi.kubevirt.io=importer")).await.expect("pods");
    for pod in importers.items.into_iter().filter(pending) {
        let container =
            pod.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone()).unwrap_or_default();
        let status = json!({ "status": { "phase": "Succeeded", "containerStatuses": [{
            "name": container, "image": "", "imageID": "", "ready": false, "restartCount": 0,
            "state": { "terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                "message": "{\"message\":\"Import Complete\",\"preallocationApplied\":false}"
            } }
        }] } });
        pods.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("importer done");
        finished.push(pod.name_any());
    }
    let launchers = pods.list(&ListParams::default().labels("kubevirt.io=virt-launcher")).await.expect("pods");
    for pod in launchers.items.into_iter().filter(|p| is_temp_pod(p) && pending(p)) {
        pods.patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Succeeded" } })),
        )
        .await
        .expect("temp pod done");
        finished.push(pod.name_any());
    }
    finished
}

/// The phase CDI reports of DataVolume `name`.
pub async fn data_volume_phase(client: &Client, namespace: &str, name: &str) -> Option<String> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &data_volume_resource());
    let dv = api.get_opt(name).await.ok()??;
    dv.data.pointer("/status/phase")?.as_str().map(str::to_string)
}

/// Drives the DataVolumes of `namespace` to Succeeded with the stand-ins, as storage and a node
/// would: PVCs bound, the WaitForFirstConsumer temp pod and then the importer pods finished.
pub async fn import_data_volumes(client: &Client, namespace: &str, names: &[&str]) {
    wait_for(&format!("CDI to import DataVolumes {names:?}"), STEP * 2, || async {
        bind_cdi_pvcs(client, namespace).await;
        finish_cdi_pods(client, namespace).await;
        let mut done = true;
        for name in names {
            done &= data_volume_phase(client, namespace, name).await.as_deref() == Some("Succeeded");
        }
        if !done {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        done.then_some(())
    })
    .await;
}

/// CDI's global filesystem overhead (from its CDIConfig) and how this CDI version adds it.
pub async fn filesystem_overhead(c: &Cluster) -> (f64, wukong_render::disks::OverheadMath) {
    let client = c.admin_client().await;
    let resource = ApiResource {
        group: "cdi.kubevirt.io".into(),
        version: "v1beta1".into(),
        api_version: "cdi.kubevirt.io/v1beta1".into(),
        kind: "CDIConfig".into(),
        plural: "cdiconfigs".into(),
    };
    let configs: Api<DynamicObject> = Api::all_with(client, &resource);
    let config = configs.get("config").await.expect("CDI's CDIConfig");
    let global = config.data.pointer("/status/filesystemOverhead/global").and_then(Value::as_str).expect("an overhead");
    (global.parse().expect("a number"), wukong_render::disks::OverheadMath::of_cdi_version(c.cdi_version.as_deref()))
}

/// STAND-IN for Multus, which the kubelet runs on a node: writes the launcher pod's
/// `k8s.v1.cni.cncf.io/network-status` as Multus does once it attached the pod: the pod network
/// on `eth0`, then each `(NAD namespace/name, pod interface)` of `networks`. virt-controller
/// reads it into the VMI's interface statuses (`podInterfaceName`).
pub async fn report_pod_network_status(client: &Client, pod: &Pod, networks: &[(String, String)]) {
    let namespace = pod.namespace().expect("a namespaced pod");
    let mut status =
        vec![json!({ "name": "wukong-local", "interface": "eth0", "ips": ["10.244.0.9"], "default": true })];
    status.extend(networks.iter().map(|(nad, iface)| json!({ "name": nad, "interface": iface })));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let annotation = serde_json::to_string(&status).expect("JSON");
    pods.patch(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "annotations": { "k8s.v1.cni.cncf.io/network-status": annotation } } })),
    )
    .await
    .unwrap_or_else(|e| panic!("reporting the network status of pod {namespace}/{}: {e}", pod.name_any()));
}
