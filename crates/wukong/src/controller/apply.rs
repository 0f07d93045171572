//! Write side: server-side apply with one field manager, only over what is wukong's, only when
//! something changed; deletes of what it no longer wants; a grown disk's PVC.
//!
//! Every write names the object it expects, so a race with someone else fails instead of
//! overwriting them:
//! - an object observed absent is created by an apply whose `metadata.resourceVersion` no stored
//!   object has: the API server creates it when it is still absent and answers 409 when
//!   something took the name meanwhile (nothing foreign is adopted by a forced apply);
//! - an object observed as ours is applied with its `metadata.uid`: if it was deleted, or
//!   deleted and made again by someone else, the API server answers 409;
//! - a delete carries the uid it was decided on.
//!
//! A 409 means the observation is out of date: the reconcile is retried soon, after the watches
//! caught up. Before the first write of a reconcile the gate is checked (only the leader writes).

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use wukong_render::drift;

use super::context::{ChildKey, Context, FIELD_MANAGER};
use super::error::{Error, Result, Stage};

/// A resourceVersion no stored object has: an apply carrying it only creates.
const CREATE_ONLY: &str = "1";

/// Only the leader writes, and only while its lease is fresh.
pub fn may_write(ctx: &Context) -> Result<()> {
    if ctx.gate.can_write() { Ok(()) } else { Err(Error::NotLeader) }
}

/// Applies `desired` (a child of kind `kind`, as [`pending`] prepared it) over `live`, what the
/// observation found: absent, or ours (never someone else's: those are not applied). The object
/// as the API server stored it.
pub async fn apply(
    ctx: &Context,
    stage: Stage,
    kind: &'static str,
    resource: &ApiResource,
    mut desired: Value,
    live: Option<&Value>,
) -> Result<Arc<Value>> {
    may_write(ctx)?;
    let name = desired.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let namespace = desired.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string();
    let precondition = match live.and_then(|l| l.pointer("/metadata/uid")) {
        Some(uid) => ("uid", uid.clone()),
        None => ("resourceVersion", json!(CREATE_ONLY)),
    };
    desired["metadata"][precondition.0] = precondition.1;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, resource);
    let object = format!("{kind} {namespace}/{name}");
    let stored = api
        .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired))
        .await
        .map_err(|e| Error::api(stage, &object, e))?;
    let stored = Arc::new(super::observe::to_json(&stored));
    ctx.memory.wrote((kind, namespace, name), stored.clone());
    Ok(stored)
}

/// `desired` as it would be applied (stamped with its hash), unless `live` already holds it:
/// decided once per object and reconcile, before anything is written.
pub fn pending<T: serde::Serialize>(desired: &T, live: Option<&Value>) -> Result<Option<Value>> {
    let mut desired =
        serde_json::to_value(desired).map_err(|source| Error::Json { what: "a desired object", source })?;
    drift::stamp(&mut desired);
    Ok((!live.is_some_and(|l| drift::up_to_date(l, &desired))).then_some(desired))
}

/// Sends a JSON patch (RFC 6902) with wukong's field manager: what server-side apply cannot do,
/// removing what another field manager (the original operator) wrote. The patch's `test`
/// operations make it fail when the object changed meanwhile: that is a conflict (observe again),
/// whatever status code the API server gives it.
pub async fn json_patch<K>(
    ctx: &Context,
    api: &Api<K>,
    object: &str,
    name: &str,
    ops: &[Value],
    status: bool,
) -> Result<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    may_write(ctx)?;
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops.to_vec()))
        .map_err(|source| Error::Json { what: "a JSON patch", source })?;
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    let result = if status {
        api.patch_status(name, &params, &Patch::<()>::Json(patch)).await.map(|_| ())
    } else {
        api.patch(name, &params, &Patch::<()>::Json(patch)).await.map(|_| ())
    };
    result.map_err(|e| match e {
        kube::Error::Api(mut s) if s.code == 422 && s.message.contains("test") => {
            s.code = 409;
            Error::api(Stage::Takeover, object, kube::Error::Api(s))
        }
        e => Error::api(Stage::Takeover, object, e),
    })
}

/// Deletes a child wukong decided to remove, only if it is still the one decided on (same uid).
/// Gone already, or replaced meanwhile (409): nothing to do.
pub async fn delete(
    ctx: &Context,
    stage: Stage,
    key: ChildKey,
    resource: &ApiResource,
    uid: Option<String>,
) -> Result<()> {
    may_write(ctx)?;
    let (kind, namespace, name) = &key;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, resource);
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(Error::api(stage, format!("{kind} {namespace}/{name}"), e)),
    }
}

/// Asks a PVC for `size` of storage (only that field is applied; CDI owns the rest).
pub async fn expand(ctx: &Context, namespace: &str, pvc: &str, size: &str) -> Result<()> {
    may_write(ctx)?;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": pvc, "namespace": namespace },
        "spec": { "resources": { "requests": { "storage": size } } }
    });
    api.patch(pvc, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await
        .map_err(|e| Error::api(Stage::ExpandPvc, format!("PersistentVolumeClaim {namespace}/{pvc} to {size}"), e))?;
    Ok(())
}
