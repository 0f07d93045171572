//! Read-side I/O: the facts a decision needs, and the live objects that tell whether an apply
//! would change anything.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Resource, ResourceExt};
use serde_json::Value;
use wukong_api::kubevirt::{VirtualMachine, VirtualMachineInstance};
use wukong_api::nad::NetworkAttachmentDefinition;
use wukong_api::{Wukong, labels};
use wukong_render::capabilities::KubeVirtCapabilities;
use wukong_render::decide::{Facts, Presence, SshKeys, wanted_nads, wanted_ssh_key_secret};
use wukong_render::disks::{FilesystemOverhead, OverheadMath, PvcObservation};
use wukong_render::status::VolumeObservation;
use wukong_render::{Validated, cloudinit, disks, names};

use super::context::Context;
use super::error::{Error, Result};

/// The facts plus the live objects wukong may apply over.
pub struct Observation {
    pub facts: Facts,
    /// Live generated NADs controlled by this Wukong, by name, as JSON.
    pub nads: BTreeMap<String, Value>,
    /// The live VM, when controlled by this Wukong, as JSON.
    pub vm: Option<Value>,
    /// uid of every NAD generated for this Wukong, by name (deletes are conditional on it).
    pub owned_uids: BTreeMap<String, String>,
    /// The live cloud-init Secret, when controlled by this Wukong, as JSON.
    pub cloud_init_secret: Option<Value>,
}

pub fn nad_resource() -> ApiResource {
    ApiResource::erase::<NetworkAttachmentDefinition>(&())
}

pub fn vm_resource() -> ApiResource {
    ApiResource::erase::<VirtualMachine>(&())
}

pub fn vmi_resource() -> ApiResource {
    ApiResource::erase::<VirtualMachineInstance>(&())
}

pub fn secret_resource() -> ApiResource {
    ApiResource::erase::<Secret>(&())
}

/// CDI's DataVolume (`cdi.kubevirt.io/v1beta1`), read as JSON: only its status is used.
pub fn data_volume_resource() -> ApiResource {
    ApiResource {
        group: "cdi.kubevirt.io".into(),
        version: "v1beta1".into(),
        api_version: "cdi.kubevirt.io/v1beta1".into(),
        kind: "DataVolume".into(),
        plural: "datavolumes".into(),
    }
}

/// The KubeVirt CR (`kubevirt.io/v1` `KubeVirt`), read as JSON.
pub fn kubevirt_resource() -> ApiResource {
    ApiResource {
        group: "kubevirt.io".into(),
        version: "v1".into(),
        api_version: "kubevirt.io/v1".into(),
        kind: "KubeVirt".into(),
        plural: "kubevirts".into(),
    }
}

/// A cluster-scoped kind of CDI's (`cdi.kubevirt.io/v1beta1`).
fn cdi_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "cdi.kubevirt.io".into(),
        version: "v1beta1".into(),
        api_version: "cdi.kubevirt.io/v1beta1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn dynamic(ctx: &Context, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), namespace, resource)
}

/// Whose an object is: controlled (controller owner reference) by this Wukong or not.
pub fn presence(wukong: &Wukong, object: Option<&impl Resource>) -> Presence {
    match object {
        None => Presence::Absent,
        Some(o) if controlled_by(wukong, o.meta().owner_references.as_deref().unwrap_or_default()) => Presence::Ours,
        Some(_) => Presence::Foreign,
    }
}

fn controlled_by(wukong: &Wukong, owners: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]) -> bool {
    let uid = wukong.metadata.uid.as_deref();
    owners.iter().any(|o| o.controller == Some(true) && o.kind == "Wukong" && Some(o.uid.as_str()) == uid)
}

pub async fn observe(ctx: &Context, valid: &Validated) -> Result<Observation> {
    let wukong = valid.wukong();
    let namespace = names::namespace_of(wukong);
    let mut facts = Facts { kinds: ctx.kinds, ..Facts::default() };
    let mut nads = BTreeMap::new();
    let mut vm = None;
    let mut owned_uids = BTreeMap::new();

    if ctx.kinds.nad {
        let (generated, named) = wanted_nads(valid, &ctx.policy);
        let api = dynamic(ctx, namespace, &nad_resource());
        for name in generated {
            let live = api.get_opt(&name).await?;
            let p = presence(wukong, live.as_ref());
            if let (Presence::Ours, Some(live)) = (p, live) {
                nads.insert(name.clone(), to_json(&live)?);
            }
            facts.generated_nads.insert(name, p);
        }
        for nad in named {
            let api = dynamic(ctx, &nad.namespace, &nad_resource());
            let exists = api.get_metadata_opt(&nad.name).await?.is_some();
            facts.named_nads.insert(nad, exists);
        }
        let selector =
            format!("{}={},{}={}", labels::WUKONG, wukong.name_any(), labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
        for nad in api.list_metadata(&ListParams::default().labels(&selector)).await? {
            if controlled_by(wukong, nad.owner_references()) {
                facts.owned_nads.insert(nad.name_any());
                owned_uids.insert(nad.name_any(), nad.uid().unwrap_or_default());
            }
        }
    }
    if ctx.kinds.vm {
        let api = dynamic(ctx, namespace, &vm_resource());
        let live = api.get_opt(&names::vm_name(names::name_of(wukong))).await?;
        facts.vm = presence(wukong, live.as_ref());
        if facts.vm == Presence::Ours {
            vm = live.as_ref().map(to_json).transpose()?;
        }
    }
    // The SSH keys are read at every reconcile (and a change of that Secret triggers one), so
    // the cloud-init Secret follows them; they are never put into the VM itself.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    if let Some(name) = wanted_ssh_key_secret(valid) {
        facts.ssh_keys = match secrets.get_opt(name).await? {
            Some(secret) => SshKeys::Found(cloudinit::ssh_keys_from(&secret.data.unwrap_or_default())),
            None => SshKeys::SecretNotFound,
        };
    }
    let live = dynamic(ctx, namespace, &secret_resource()).get_opt(&cloudinit::secret_name(&wukong.name_any())).await?;
    facts.cloud_init_secret = presence(wukong, live.as_ref());
    let cloud_init_secret = match facts.cloud_init_secret {
        Presence::Ours => live.as_ref().map(to_json).transpose()?,
        _ => None,
    };
    facts.kubevirt = kubevirt_capabilities(ctx).await?;
    Ok(Observation { facts, nads, vm, owned_uids, cloud_init_secret })
}

/// What the cluster's KubeVirt can do, from its KubeVirt CR (None: no CR kind, or no CR).
async fn kubevirt_capabilities(ctx: &Context) -> Result<Option<KubeVirtCapabilities>> {
    if !ctx.kinds.kubevirt_config {
        return Ok(None);
    }
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &kubevirt_resource());
    let crs = api.list(&ListParams::default()).await?.items.iter().map(to_json).collect::<Result<Vec<_>>>()?;
    Ok(KubeVirtCapabilities::governing(&crs))
}

/// The disks' volumes: the DataVolumes and the PVCs CDI made for them (named like the
/// DataVolume), and CDI's filesystem overhead.
pub struct Volumes {
    pub pvcs: Vec<PvcObservation>,
    pub observations: Vec<VolumeObservation>,
    /// None when CDI is not installed or its config not made yet.
    pub overhead: Option<FilesystemOverhead>,
}

pub async fn volumes(ctx: &Context, wukong: &Wukong) -> Result<Volumes> {
    let namespace = names::namespace_of(wukong);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let data_volumes = dynamic(ctx, namespace, &data_volume_resource());
    let (mut pvcs, mut observations) = (Vec::new(), Vec::new());
    for name in disks::plan(wukong).iter().filter_map(|d| d.data_volume(names::name_of(wukong))) {
        let pvc = claims.get_opt(&name).await?;
        let dv = if ctx.kinds.data_volume { data_volumes.get_opt(&name).await? } else { None };
        if pvc.is_none() && dv.is_none() {
            continue;
        }
        let pvc_status = pvc.as_ref().and_then(|p| p.status.clone()).unwrap_or_default();
        let dv_status = |field: &str| {
            dv.as_ref().and_then(|d| d.data.pointer(&format!("/status/{field}"))?.as_str().map(str::to_string))
        };
        observations.push(VolumeObservation {
            name: name.clone(),
            bound: pvc_status.phase.as_deref() == Some("Bound"),
            size: pvc_status.capacity.and_then(|c| c.get("storage").map(|q| q.0.clone())),
            phase: dv_status("phase"),
            progress: dv_status("progress"),
        });
        if let Some(spec) = pvc.and_then(|p| p.spec) {
            let requested = spec.resources.and_then(|r| r.requests).and_then(|r| r.get("storage").map(|q| q.0.clone()));
            pvcs.extend(requested.map(|requested| PvcObservation {
                name,
                requested,
                block: spec.volume_mode.as_deref() == Some("Block"),
                storage_class: spec.storage_class_name,
            }));
        }
    }
    let overhead = if ctx.kinds.data_volume && !pvcs.is_empty() { filesystem_overhead(ctx).await? } else { None };
    Ok(Volumes { pvcs, observations, overhead })
}

/// CDI's filesystem overhead, from its CDIConfig `config` (made by cdi-controller), and how its
/// version adds it (from the CDI CR, as cdi-operator reports it).
async fn filesystem_overhead(ctx: &Context) -> Result<Option<FilesystemOverhead>> {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &cdi_resource("CDIConfig", "cdiconfigs"));
    let Some(config) = api.get_opt("config").await? else { return Ok(None) };
    let crs: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &cdi_resource("CDI", "cdis"));
    let version = crs.list(&ListParams::default()).await?.items.into_iter().find_map(|cr| {
        cr.data.pointer("/status/observedVersion").and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string)
    });
    let Some(overhead) = config.data.pointer("/status/filesystemOverhead") else { return Ok(None) };
    let global = overhead.get("global").and_then(Value::as_str).unwrap_or("0").to_string();
    let storage_class = overhead
        .get("storageClass")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    Ok(Some(FilesystemOverhead { global, storage_class, math: OverheadMath::of_cdi_version(version.as_deref()) }))
}

pub fn to_json<T: serde::Serialize>(object: &T) -> Result<Value> {
    serde_json::to_value(object).map_err(|source| Error::Json { what: "an object", source })
}
