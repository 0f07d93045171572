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
use wukong_render::decide::{Facts, Presence, SshKeys, wanted_nads, wanted_ssh_key_secret};
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
    /// The VM's instance (VMI), as JSON.
    pub vmi: Option<Value>,
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
            match (p, live) {
                (Presence::Ours, Some(live)) => {
                    nads.insert(name.clone(), to_json(&live)?);
                }
                // The decision recognizes the original operator's NADs from what they hold.
                (Presence::Foreign, Some(live)) => {
                    facts.foreign_nads.insert(name.clone(), to_json(&live)?);
                }
                _ => {}
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
            facts.live_vm = vm.clone();
        }
    }
    let vmi = match (ctx.kinds.vmi, facts.vm) {
        (true, Presence::Ours) => {
            let api = dynamic(ctx, namespace, &vmi_resource());
            api.get_opt(&names::vm_name(names::name_of(wukong))).await?.as_ref().map(to_json).transpose()?
        }
        _ => None,
    };
    facts.vm_instance = vmi.is_some();
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
    Ok(Observation { facts, nads, vm, owned_uids, cloud_init_secret, vmi })
}

/// The PVCs behind the disks' DataVolumes (CDI names a DataVolume's PVC like the DataVolume).
pub async fn pvcs(ctx: &Context, wukong: &Wukong) -> Result<Vec<PersistentVolumeClaim>> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), names::namespace_of(wukong));
    let mut out = Vec::new();
    for name in disks::plan(wukong).iter().filter_map(|d| d.data_volume(names::name_of(wukong))) {
        out.extend(api.get_opt(&name).await?);
    }
    Ok(out)
}

/// What status needs of each PVC.
pub fn volume_observations(pvcs: &[PersistentVolumeClaim]) -> Vec<VolumeObservation> {
    pvcs.iter()
        .map(|pvc| {
            let status = pvc.status.clone().unwrap_or_default();
            VolumeObservation {
                name: pvc.name_any(),
                bound: status.phase.as_deref() == Some("Bound"),
                size: status.capacity.and_then(|c| c.get("storage").map(|q| q.0.clone())),
            }
        })
        .collect()
}

/// The storage each PVC requests now, by name (what a disk size increase is compared with).
pub fn requested_sizes(pvcs: &[PersistentVolumeClaim]) -> BTreeMap<String, String> {
    pvcs.iter()
        .filter_map(|pvc| {
            let storage = pvc.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?.get("storage")?;
            Some((pvc.name_any(), storage.0.clone()))
        })
        .collect()
}

pub fn to_json<T: serde::Serialize>(object: &T) -> Result<Value> {
    serde_json::to_value(object).map_err(|source| Error::Json { what: "an object", source })
}
