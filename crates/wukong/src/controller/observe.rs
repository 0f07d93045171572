//! Read side: the facts a decision needs and the live objects an apply compares with, from the
//! watches' stores (and the controller's own writes not yet seen by them). The only requests it
//! sends are for what wukong may not watch: the cloud-init Secret when nothing is known of it
//! (at start, or once a resync), and whether an `sshKeySecret` exists (its metadata).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::Value;
use wukong_api::kubevirt::{VirtualMachineInstanceStatus, VirtualMachineStatus};
use wukong_api::{Wukong, labels};
use wukong_render::capabilities::KubeVirtCapabilities;
use wukong_render::decide::{Facts, LiveVm, Presence, SshKeys, wanted_nads, wanted_ssh_key_secret};
use wukong_render::disks::{FilesystemOverhead, OverheadMath, PvcObservation};
use wukong_render::liveupdate::Instance;
use wukong_render::status::VolumeObservation;
use wukong_render::{Validated, cloudinit, disks, names};

use super::context::{ChildKey, Context};
use super::error::{Error, Result, Stage};

/// The kinds wukong reads and writes, and the names its memory keys them by.
pub mod resources {
    use kube::api::ApiResource;
    use wukong_api::kubevirt::{VirtualMachine, VirtualMachineInstance};
    use wukong_api::nad::NetworkAttachmentDefinition;

    pub const NAD: &str = "NetworkAttachmentDefinition";
    pub const VM: &str = "VirtualMachine";
    pub const VMI: &str = "VirtualMachineInstance";
    pub const DV: &str = "DataVolume";
    pub const PVC: &str = "PersistentVolumeClaim";
    pub const SECRET: &str = "Secret";

    pub fn nad() -> ApiResource {
        ApiResource::erase::<NetworkAttachmentDefinition>(&())
    }

    pub fn vm() -> ApiResource {
        ApiResource::erase::<VirtualMachine>(&())
    }

    pub fn vmi() -> ApiResource {
        ApiResource::erase::<VirtualMachineInstance>(&())
    }

    pub fn secret() -> ApiResource {
        ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&())
    }

    fn cdi_kind(kind: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: "cdi.kubevirt.io".into(),
            version: "v1beta1".into(),
            api_version: "cdi.kubevirt.io/v1beta1".into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    /// CDI's DataVolume (`cdi.kubevirt.io/v1beta1`).
    pub fn data_volume() -> ApiResource {
        cdi_kind("DataVolume", "datavolumes")
    }

    /// CDI's cluster-wide config, `config` (filesystem overhead).
    pub fn cdi_config() -> ApiResource {
        cdi_kind("CDIConfig", "cdiconfigs")
    }

    /// CDI's CR (the version cdi-operator deployed).
    pub fn cdi() -> ApiResource {
        cdi_kind("CDI", "cdis")
    }

    /// The KubeVirt CR (`kubevirt.io/v1` `KubeVirt`).
    pub fn kubevirt() -> ApiResource {
        ApiResource {
            group: "kubevirt.io".into(),
            version: "v1".into(),
            api_version: "kubevirt.io/v1".into(),
            kind: "KubeVirt".into(),
            plural: "kubevirts".into(),
        }
    }
}

/// The facts plus the live objects wukong may apply over.
pub struct Observation {
    pub facts: Facts,
    /// Live generated NADs controlled by this Wukong, by name, as JSON.
    pub nads: BTreeMap<String, Arc<Value>>,
    /// The live VM, when controlled by this Wukong, as JSON.
    pub vm: Option<Arc<Value>>,
    /// uid of every NAD this Wukong controls, by name (deletes are conditional on it).
    pub owned_uids: BTreeMap<String, String>,
    /// The live cloud-init Secret, when controlled by this Wukong, as JSON.
    pub cloud_init_secret: Option<Arc<Value>>,
    /// The VM's instance (VMI), as JSON.
    pub vmi: Option<Arc<Value>>,
}

/// Whose an object is: controlled (controller owner reference) by this Wukong or not.
pub fn presence(wukong: &Wukong, object: Option<&Value>) -> Presence {
    match object {
        None => Presence::Absent,
        Some(o) if controlled_by(wukong, o) => Presence::Ours,
        Some(_) => Presence::Foreign,
    }
}

fn controlled_by(wukong: &Wukong, object: &Value) -> bool {
    let uid = wukong.metadata.uid.as_deref();
    let owners = object.pointer("/metadata/ownerReferences").and_then(Value::as_array);
    owners.into_iter().flatten().any(|o| {
        o["controller"] == true && o["kind"] == "Wukong" && o["uid"].as_str().is_some() && o["uid"].as_str() == uid
    })
}

/// An object of a store, as JSON, or what our own last write left when that is newer.
fn stored(
    ctx: &Context,
    store: &Store<DynamicObject>,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Option<Arc<Value>> {
    let dyntype = store_dyntype(kind);
    let found = store.get(&ObjectRef::new_with(name, dyntype).within(namespace)).map(|o| Arc::new(to_json(&*o)));
    ctx.memory.freshest(&(kind, namespace.to_string(), name.to_string()), found)
}

fn store_dyntype(kind: &str) -> kube::api::ApiResource {
    match kind {
        resources::NAD => resources::nad(),
        resources::VM => resources::vm(),
        resources::VMI => resources::vmi(),
        resources::DV => resources::data_volume(),
        _ => resources::secret(),
    }
}

pub async fn observe(ctx: &Context, valid: &Validated) -> Result<Observation> {
    let wukong = valid.wukong();
    let namespace = names::namespace_of(wukong);
    let mut facts = Facts { kinds: ctx.kinds, ..Facts::default() };
    let mut nads = BTreeMap::new();
    let mut owned_uids = BTreeMap::new();

    if let Some(store) = &ctx.stores.nads {
        let (generated, named) = wanted_nads(valid, &ctx.policy);
        for name in generated {
            let live = stored(ctx, store, resources::NAD, namespace, &name);
            let p = presence(wukong, live.as_deref());
            match (p, live) {
                (Presence::Ours, Some(live)) => {
                    nads.insert(name.clone(), live);
                }
                // The decision recognizes the original operator's NADs from what they hold.
                (Presence::Foreign, Some(live)) => {
                    facts.foreign_nads.insert(name.clone(), (*live).clone());
                }
                _ => {}
            }
            facts.generated_nads.insert(name, p);
        }
        for nad in named {
            let exists = stored(ctx, store, resources::NAD, &nad.namespace, &nad.name).is_some();
            facts.named_nads.insert(nad, exists);
        }
        let uid = wukong.metadata.uid.clone().unwrap_or_default();
        // The index names the candidates; the store says whether each is still there and ours.
        let candidates = ctx.stores.nad_owners.lock().expect("NAD owner index").owned(&uid);
        let ours = candidates.into_iter().filter(|(ns, _)| ns == namespace).filter_map(|(ns, name)| {
            let nad = store.get(&ObjectRef::new_with(&name, resources::nad()).within(&ns))?;
            nad.owner_references().iter().any(|o| o.controller == Some(true) && o.uid == uid).then_some(nad)
        });
        for nad in ours {
            if let Some(attachment) = nad.annotations().get(labels::ATTACHMENT) {
                facts.nad_attachments.insert(nad.name_any(), attachment.clone());
            }
            facts.owned_nads.insert(nad.name_any());
            owned_uids.insert(nad.name_any(), nad.uid().unwrap_or_default());
        }
    }
    let mut vm = None;
    if let Some(store) = &ctx.stores.vms {
        let live = stored(ctx, store, resources::VM, namespace, &names::vm_name(names::name_of(wukong)));
        facts.vm = presence(wukong, live.as_deref());
        if facts.vm == Presence::Ours {
            facts.live_vm = live.as_deref().map(|v| LiveVm::from_vm(v, namespace));
            facts.live_vm_object = live.clone();
            vm = live;
        }
    }
    let vmi = match (&ctx.stores.vmis, facts.vm) {
        (Some(store), Presence::Ours) => {
            stored(ctx, store, resources::VMI, namespace, &names::vm_name(names::name_of(wukong)))
        }
        _ => None,
    };
    facts.vm_instance = vmi.is_some();
    facts.instance = vmi.as_deref().and_then(Instance::from_vmi);
    if let Some(name) = wanted_ssh_key_secret(valid) {
        facts.ssh_keys = ssh_key_secret(ctx, namespace, name).await?;
    }
    let cloud_init_secret = cloud_init_secret(ctx, namespace, &cloudinit::secret_name(names::name_of(wukong))).await?;
    facts.cloud_init_secret = presence(wukong, cloud_init_secret.as_deref());
    let cloud_init_secret = cloud_init_secret.filter(|_| facts.cloud_init_secret == Presence::Ours);
    facts.kubevirt = ctx.stores.kubevirts.as_ref().and_then(|store| {
        let crs: Vec<Value> = store.state().iter().map(|cr| to_json(cr.as_ref())).collect();
        KubeVirtCapabilities::governing(&crs)
    });
    Ok(Observation { facts, nads, vm, owned_uids, cloud_init_secret, vmi })
}

/// Whether the `sshKeySecret` Secret exists: its metadata only (KubeVirt reads its keys). Once
/// seen it is trusted until the next resync; while missing it is looked for at every reconcile.
async fn ssh_key_secret(ctx: &Context, namespace: &str, name: &str) -> Result<SshKeys> {
    if ctx.memory.key_secret_exists(namespace, name, ctx.requeue) {
        return Ok(SshKeys::Found);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let found = api
        .get_metadata_opt(name)
        .await
        .map_err(|e| Error::api(Stage::Observe, format!("Secret {namespace}/{name}"), e))?;
    Ok(match found {
        Some(_) => {
            ctx.memory.saw_key_secret(namespace, name);
            SshKeys::Found
        }
        None => SshKeys::SecretNotFound,
    })
}

/// The cloud-init Secret as wukong last wrote or read it, else as the API server has it now.
async fn cloud_init_secret(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Arc<Value>>> {
    let key: ChildKey = (resources::SECRET, namespace.to_string(), name.to_string());
    if let Some(known) = ctx.memory.secret(namespace, name, ctx.requeue) {
        return Ok(ctx.memory.freshest(&key, known));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resources::secret());
    let live = api
        .get_opt(name)
        .await
        .map_err(|e| Error::api(Stage::Observe, format!("Secret {namespace}/{name}"), e))?
        .map(|s| Arc::new(to_json(&s)));
    ctx.memory.saw_secret(namespace, name, live.clone());
    Ok(ctx.memory.freshest(&key, live))
}

/// What KubeVirt reports of the VM's running instance.
pub fn vmi_status(vmi: Option<&Value>) -> Result<Option<VirtualMachineInstanceStatus>> {
    parse(vmi.and_then(status_field), "a VirtualMachineInstance status")
}

/// What KubeVirt reports of the VM (from the VM as stored, or as our apply returned it).
pub fn vm_status(vm: Option<&Value>) -> Result<Option<VirtualMachineStatus>> {
    parse(vm.and_then(status_field), "a VirtualMachine status")
}

fn status_field(object: &Value) -> Option<Value> {
    object.get("status").filter(|s| !s.is_null()).cloned()
}

fn parse<T: serde::de::DeserializeOwned>(value: Option<Value>, what: &'static str) -> Result<Option<T>> {
    value.map(|v| serde_json::from_value(v).map_err(|source| Error::Json { what, source })).transpose()
}

/// The disks' volumes: the DataVolumes and the PVCs CDI made for them (named like the
/// DataVolume), and CDI's filesystem overhead.
pub struct Volumes {
    pub pvcs: Vec<PvcObservation>,
    pub observations: Vec<VolumeObservation>,
    /// None when CDI is not installed or its config not made yet.
    pub overhead: Option<FilesystemOverhead>,
}

pub fn volumes(ctx: &Context, wukong: &Wukong) -> Volumes {
    let namespace = names::namespace_of(wukong);
    let (mut pvcs, mut observations) = (Vec::new(), Vec::new());
    for name in disks::plan(wukong).iter().filter_map(|d| d.data_volume(names::name_of(wukong))) {
        let pvc = ctx.stores.pvcs.get(&ObjectRef::new(&name).within(namespace));
        let dv = ctx.stores.data_volumes.as_ref().and_then(|s| stored(ctx, s, resources::DV, namespace, &name));
        if pvc.is_none() && dv.is_none() {
            continue;
        }
        let pvc_status = pvc.as_ref().and_then(|p| p.status.clone()).unwrap_or_default();
        let dv_status = |field: &str| {
            dv.as_ref().and_then(|d| d.pointer(&format!("/status/{field}"))?.as_str().map(str::to_string))
        };
        observations.push(VolumeObservation {
            name: name.clone(),
            bound: pvc_status.phase.as_deref() == Some("Bound"),
            size: pvc_status.capacity.and_then(|c| c.get("storage").map(|q| q.0.clone())),
            phase: dv_status("phase"),
            progress: dv_status("progress"),
        });
        if let Some(spec) = pvc.and_then(|p| p.spec.clone()) {
            let requested = spec.resources.and_then(|r| r.requests).and_then(|r| r.get("storage").map(|q| q.0.clone()));
            pvcs.extend(requested.map(|requested| PvcObservation {
                name,
                requested,
                block: spec.volume_mode.as_deref() == Some("Block"),
                storage_class: spec.storage_class_name,
            }));
        }
    }
    let overhead = if pvcs.is_empty() { None } else { filesystem_overhead(ctx) };
    Volumes { pvcs, observations, overhead }
}

/// CDI's filesystem overhead, from its CDIConfig `config` (made by cdi-controller), and how its
/// version adds it (from the CDI CR, as cdi-operator reports it).
fn filesystem_overhead(ctx: &Context) -> Option<FilesystemOverhead> {
    let config = ctx.stores.cdi_configs.as_ref()?.find(|c| c.name_any() == "config")?;
    let overhead = config.data.pointer("/status/filesystemOverhead")?;
    let version = ctx.stores.cdis.as_ref().and_then(|s| {
        s.state().iter().find_map(|cr| {
            cr.data
                .pointer("/status/observedVersion")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
    });
    let global = overhead.get("global").and_then(Value::as_str).unwrap_or("0").to_string();
    let storage_class = overhead
        .get("storageClass")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    Some(FilesystemOverhead { global, storage_class, math: OverheadMath::of_cdi_version(version.as_deref()) })
}

pub fn to_json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}
