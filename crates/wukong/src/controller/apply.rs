//! Write-side I/O: server-side apply with one field manager (skipped when the live object is
//! already as desired), and deletion of generated NADs no longer wanted.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde_json::Value;
use wukong_render::drift;

use super::context::FIELD_MANAGER;
use super::error::{Error, Result};

/// What an apply did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Unchanged,
    /// Written; the object as the API server stored it.
    Written(Box<Value>),
}

impl Applied {
    pub fn written(&self) -> bool {
        matches!(self, Applied::Written(_))
    }
}

/// Applies `desired` unless `live` already holds it. `desired` is stamped here.
pub async fn apply<T: serde::Serialize>(
    api: &Api<DynamicObject>,
    desired: &T,
    live: Option<&Value>,
) -> Result<Applied> {
    let mut desired =
        serde_json::to_value(desired).map_err(|source| Error::Json { what: "a desired object", source })?;
    drift::stamp(&mut desired);
    if live.is_some_and(|l| drift::up_to_date(l, &desired)) {
        return Ok(Applied::Unchanged);
    }
    let name = desired.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let stored = api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await?;
    let stored = serde_json::to_value(stored).map_err(|source| Error::Json { what: "a stored object", source })?;
    Ok(Applied::Written(Box::new(stored)))
}

/// Sends a JSON patch (RFC 6902) with wukong's field manager: what server-side apply cannot do,
/// removing what another field manager (the original operator) wrote. The patch's `test`
/// operations make it fail, and the reconcile retry, when the object changed meanwhile.
pub async fn json_patch<K>(api: &Api<K>, name: &str, ops: &[Value], status: bool) -> Result<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops.to_vec()))
        .map_err(|source| Error::Json { what: "a JSON patch", source })?;
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    if status {
        api.patch_status(name, &params, &Patch::<()>::Json(patch)).await?;
    } else {
        api.patch(name, &params, &Patch::<()>::Json(patch)).await?;
    }
    Ok(())
}

/// Deletes a generated NAD, only if it is still the one we saw (same uid).
pub async fn delete(api: &Api<DynamicObject>, name: &str, uid: Option<String>) -> Result<()> {
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Asks a PVC for `size` of storage (only that field is applied; CDI owns the rest).
pub async fn expand(client: &Client, namespace: &str, pvc: &str, size: &str) -> Result<()> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": pvc, "namespace": namespace },
        "spec": { "resources": { "requests": { "storage": size } } }
    });
    api.patch(pvc, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}
