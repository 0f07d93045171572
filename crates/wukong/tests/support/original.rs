//! The original Go operator (kuihuar/vmoperator) in front of wukong: the warning policy that
//! tells its users which of their fields wukong ignores, and the fixture that leaves in a
//! cluster exactly what the original operator created for a Wukong.

use std::path::Path;
use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wukong_api::Wukong;
use wukong_render::legacy::original;

use super::{Cluster, TestNamespace, repo_root, wait_for};

/// Prefix of every warning the API server gives for the policy of `deploy/warning-policy.yaml`.
pub const WARNING_PREFIX: &str = "Warning: Validation failed for ValidatingAdmissionPolicy 'wukong-ignored-fields' with binding 'wukong-ignored-fields': ";

/// Installs `deploy/warning-policy.yaml` (server-side apply: idempotent, shared by the test
/// binaries) and waits until the API server warns with it.
pub async fn install_warning_policy(c: &Cluster) {
    let policy = repo_root().join("deploy/warning-policy.yaml");
    let out = c
        .kubectl()
        .args(["apply", "--server-side", "--force-conflicts", "--field-manager", super::FIELD_MANAGER, "-f"])
        .arg(&policy)
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "kubectl apply {}: {}", policy.display(), String::from_utf8_lossy(&out.stderr));
    let probe = repo_root().join("tests/admission/good/original-main-sample.yaml");
    wait_for("the API server to warn with the ValidatingAdmissionPolicy", Duration::from_secs(60), || async {
        let warnings = admission_warnings(c, "default", &probe).await.ok()?;
        (!warnings.is_empty()).then_some(())
    })
    .await;
}

/// What `kubectl create --dry-run=server` of the manifest at `path` in `namespace` warns
/// through wukong's policy (the prefix stripped), in the API server's order; `Err` with
/// kubectl's stderr when the API server refuses it.
pub async fn admission_warnings(c: &Cluster, namespace: &str, path: &Path) -> Result<Vec<String>, String> {
    let out = tokio::process::Command::new(&c.kubectl)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["create", "--dry-run=server", "-o", "name", "-n", namespace, "-f"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    Ok(stderr.lines().filter_map(|l| l.strip_prefix(WARNING_PREFIX)).map(str::to_string).collect())
}

// ---- the fixture: what the original operator left ---------------------------------------------

/// What the original operator left for one Wukong, as the API server stored it.
pub struct Left {
    /// The Wukong (with the original's finalizer and status).
    pub wukong: Value,
    pub nads: Vec<Value>,
    /// Per disk its PVC (or, when CDI serves DataVolumes, the DataVolume).
    pub volumes: Vec<Value>,
    pub vm: Value,
}

/// POST `object` with the original operator's field manager.
async fn create_as_original(ns: &TestNamespace, object: &Value) -> Value {
    let object = super::in_namespace(object, &ns.name);
    let (api, name) = super::dynamic_api(&ns.client, &object).await;
    let params = PostParams { field_manager: Some(original::FIELD_MANAGER.into()), ..PostParams::default() };
    let body: kube::api::DynamicObject = serde_json::from_value(object).expect("a DynamicObject");
    let stored = api.create(&params, &body).await.unwrap_or_else(|e| panic!("the original's {name} is refused: {e}"));
    serde_json::to_value(stored).expect("JSON")
}

/// Creates the Wukong `manifest` (as its user would) and, with the original operator's field
/// manager, what the original created before its VM: the finalizer, the NADs of the networks,
/// and per disk a DataVolume (a disk with an image; without CDI, the PVC it would have made) or a
/// PVC. The VM follows with [`leave_vm`], once the disks are there. Nothing of wukong runs.
pub async fn leave(ns: &TestNamespace, manifest: &Value) -> Left {
    let manifest = super::in_namespace(manifest, &ns.name);
    let name = manifest["metadata"]["name"].as_str().expect("a name").to_string();
    super::create(&ns.client, &manifest, true).await.unwrap_or_else(|e| panic!("the Wukong {name} is refused: {e}"));
    let wukongs: kube::Api<Wukong> = ns.api();
    let finalized = json!({ "metadata": { "finalizers": original::finalizers() } });
    let wukong =
        wukongs.patch(&name, &as_original(), &Patch::Merge(&finalized)).await.expect("the original's finalizer");

    let mut nads = Vec::new();
    for nad in original::nads(&wukong) {
        nads.push(create_as_original(ns, &nad).await);
    }
    let cdi = data_volumes_served(ns).await;
    let mut volumes = Vec::new();
    for volume in original::volumes(&wukong) {
        let volume = if volume["kind"] == "DataVolume" && !cdi {
            json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": volume["metadata"], "spec": volume["spec"]["pvc"] })
        } else {
            volume
        };
        volumes.push(create_as_original(ns, &volume).await);
    }
    Left { wukong: serde_json::to_value(wukong).expect("JSON"), nads, volumes, vm: Value::Null }
}

/// The original's VM (`spec.running` as its `autoStart`) and the status it wrote for a running VM.
pub async fn leave_vm(ns: &TestNamespace, left: &mut Left) {
    let wukong: Wukong = serde_json::from_value(left.wukong.clone()).expect("a Wukong");
    left.vm = create_as_original(ns, &original::vm(&wukong)).await;
    let wukongs: kube::Api<Wukong> = ns.api();
    let status = json!({ "status": original::status(&wukong) });
    let name = wukong.metadata.name.as_deref().expect("a name");
    let stored =
        wukongs.patch_status(name, &as_original(), &Patch::Merge(&status)).await.expect("the original's status");
    left.wukong = serde_json::to_value(stored).expect("JSON");
}

fn as_original() -> PatchParams {
    PatchParams { field_manager: Some(original::FIELD_MANAGER.into()), ..PatchParams::default() }
}

/// Whether CDI's DataVolume kind is served.
async fn data_volumes_served(ns: &TestNamespace) -> bool {
    let gvk = kube::api::GroupVersionKind::gvk("cdi.kubevirt.io", "v1beta1", "DataVolume");
    kube::discovery::pinned_kind(&ns.client, &gvk).await.is_ok()
}
