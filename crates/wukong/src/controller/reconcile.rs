//! The reconcile pipeline: validate → observe → decide → apply (NADs, then the VM, then prune)
//! → observe KubeVirt → status. Only the steps named observe, apply and status do I/O.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};
use wukong_api::conditions::Reason;
use wukong_api::kubevirt::VirtualMachineInstanceStatus;
use wukong_api::{Wukong, WukongStatus};
use wukong_render::decide::{VmAction, decide};
use wukong_render::status::{self, Observed};
use wukong_render::{disks, names};

use super::apply::{self, Applied};
use super::context::{Context, FIELD_MANAGER};
use super::error::{Error, Result};
use super::observe::{self, dynamic, nad_resource, secret_resource, vm_resource, vmi_resource};

pub async fn reconcile(wukong: Arc<Wukong>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile();
    let key = ObjectRef::from_obj(&*wukong);
    let action = run(&wukong, &ctx).await?;
    ctx.succeeded(&key);
    Ok(action)
}

/// Requeue after an error, with per-object exponential backoff. A bad spec never gets here: it
/// waits for the spec to change.
pub fn error_policy(wukong: Arc<Wukong>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff(&ObjectRef::from_obj(&*wukong));
    ctx.metrics.failure(error.reason());
    warn!(wukong = %ObjectRef::from_obj(&*wukong), reason = %error.reason(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn run(wukong: &Wukong, ctx: &Context) -> Result<Action> {
    let now = now();
    let valid = match wukong_render::validate(wukong) {
        Ok(valid) => valid,
        Err(invalid) => {
            // Nothing is written but the status; retrying cannot fix a spec.
            ctx.metrics.failure(Reason::InvalidSpec);
            write_status(ctx, wukong, status::invalid(wukong, &invalid, &now)).await?;
            return Ok(Action::await_change());
        }
    };
    let namespace = names::namespace_of(wukong);
    let seen = observe::observe(ctx, &valid).await?;
    let decision = decide(&valid, &seen.facts, &ctx.policy);

    let nads = dynamic(ctx, namespace, &nad_resource());
    let mut written = 0;
    for nad in &decision.apply_nads {
        let live = seen.nads.get(&nad.name_any());
        written += usize::from(apply::apply(&nads, nad, live).await?.written());
    }
    if let Some(secret) = &decision.apply_secret {
        let secrets = dynamic(ctx, namespace, &secret_resource());
        written += usize::from(apply::apply(&secrets, secret, seen.cloud_init_secret.as_ref()).await?.written());
    }
    // The VM as it now stands (ours), so its status needs no second read.
    let vm_now = match &decision.vm {
        VmAction::Apply(vm) => {
            let vms = dynamic(ctx, namespace, &vm_resource());
            match apply::apply(&vms, vm.as_ref(), seen.vm.as_ref()).await? {
                Applied::Written(stored) => {
                    written += 1;
                    Some(*stored)
                }
                Applied::Unchanged => seen.vm.clone(),
            }
        }
        VmAction::Hold(_) => seen.vm.clone(),
    };
    let vm_stored = vm_now.is_some();
    for name in &decision.delete_nads {
        apply::delete(&nads, name, seen.owned_uids.get(name).cloned()).await?;
        written += 1;
    }
    if written > 0 {
        info!(wukong = %ObjectRef::from_obj(wukong), written, deleted = decision.delete_nads.len(), "applied");
    }

    // A grown disk: CDI sizes a DataVolume's PVC once, so the PVC itself is asked for more.
    let volumes = observe::volumes(ctx, wukong).await?;
    for grow in disks::expansions(wukong, &volumes.pvcs, volumes.overhead.as_ref()) {
        apply::expand(&ctx.client, namespace, &grow.pvc, &grow.size).await?;
        info!(wukong = %ObjectRef::from_obj(wukong), disk = %grow.disk, pvc = %grow.pvc, size = %grow.size, "volume expansion requested");
    }

    let vm_status = parse(vm_now.as_ref().and_then(status_field), "a VirtualMachine status")?;
    let vmi_status = vmi_status(ctx, wukong).await?;
    let observed =
        Observed { vm_stored, vm: vm_status.as_ref(), vmi: vmi_status.as_ref(), volumes: &volumes.observations };
    write_status(ctx, wukong, status::compute(&valid, &decision, &observed, &now)).await?;
    Ok(Action::requeue(ctx.requeue))
}

/// What KubeVirt reports of the VM's running instance.
async fn vmi_status(ctx: &Context, wukong: &Wukong) -> Result<Option<VirtualMachineInstanceStatus>> {
    if !ctx.kinds.vmi {
        return Ok(None);
    }
    let name = names::vm_name(names::name_of(wukong));
    let vmi = dynamic(ctx, names::namespace_of(wukong), &vmi_resource()).get_opt(&name).await?;
    parse(vmi.map(|o| o.data).as_ref().and_then(status_field), "a VirtualMachineInstance status")
}

/// An object's `status`, when it has one.
fn status_field(object: &Value) -> Option<Value> {
    object.get("status").filter(|s| !s.is_null()).cloned()
}

fn parse<T: serde::de::DeserializeOwned>(value: Option<Value>, what: &'static str) -> Result<Option<T>> {
    value.map(|v| serde_json::from_value(v).map_err(|source| Error::Json { what, source })).transpose()
}

/// Patches the status only when it changed, and publishes an event per transition.
async fn write_status(ctx: &Context, wukong: &Wukong, next: WukongStatus) -> Result<()> {
    let key = ObjectRef::from_obj(wukong);
    let cached = wukong.status.as_ref();
    let last_written = ctx.written.lock().expect("written lock").get(&key).cloned();
    if cached == Some(&next) || last_written.as_ref() == Some(&next) {
        return Ok(());
    }
    let before = last_written.as_ref().filter(|w| Some(*w) != cached && newer(w, cached)).or(cached);
    let transitions = status::transitions(before, &next);

    let api: Api<Wukong> = Api::namespaced(ctx.client.clone(), names::namespace_of(wukong));
    let patch = json!({ "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "status": next });
    api.patch_status(&wukong.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    ctx.written.lock().expect("written lock").insert(key, next.clone());

    let reference = wukong.object_ref(&());
    for t in transitions {
        let event = Event {
            type_: if t.warning { EventType::Warning } else { EventType::Normal },
            reason: t.reason.clone(),
            note: Some(truncate(&t.message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        };
        // An event is a courtesy: losing one must not fail the reconcile.
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            warn!(wukong = %ObjectRef::from_obj(wukong), reason = %t.reason, error = %e, "cannot publish event");
        }
    }
    Ok(())
}

/// Whether a status we wrote is at least as recent as the cached one (same or later generation).
fn newer(written: &WukongStatus, cached: Option<&WukongStatus>) -> bool {
    cached.is_none_or(|c| written.observed_generation >= c.observed_generation)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The current time, to the second (the API server keeps seconds only).
fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).expect("now is a valid timestamp"))
}
