//! The reconcile pipeline: validate → observe → decide → apply (NADs, then the cloud-init Secret
//! and the VM, then deletes, then grown disks) → what KubeVirt and CDI report → status. Only the
//! steps named observe, apply and status do I/O.
//!
//! What a failure does depends on whether a retry can help ([`Class`]): a permanent refusal (a
//! 4xx: the schema, a webhook, RBAC) is reported in the status with the API server's words and
//! a Warning event, what depends on it is not written, the rest goes on, and the Wukong is
//! retried with a growing backoff; a transient error (5xx, timeouts, the API server away) leaves
//! the status as it was and is retried with backoff; a conflict (the observation was out of
//! date) is retried in a second.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};
use wukong_api::conditions::Reason;
use wukong_api::{Wukong, WukongStatus};
use wukong_render::decide::{SshKeys, VmAction, decide};
use wukong_render::status::{self, Failure, Observed};
use wukong_render::{cloudinit, legacy, names};

use super::apply;
use super::context::{Context, FIELD_MANAGER};
use super::error::{Class, Error, Result, Stage};
use super::observe::{self, resources};
use super::watches::WukongObject;

/// How soon a Wukong whose observation was out of date (409) is looked at again.
const AFTER_CONFLICT: Duration = Duration::from_secs(1);
/// How often a Wukong held for a missing `sshKeySecret` looks again (wukong may not watch
/// Secrets).
const SECRET_RECHECK: Duration = Duration::from_secs(10);
/// How long a reconcile waits for the watches' first lists before it is retried.
const STORES_READY_WAIT: Duration = Duration::from_secs(10);

pub async fn reconcile(object: Arc<WukongObject>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile();
    let uid = object.uid().unwrap_or_default();
    let action = match &object.0 {
        Ok(wukong) => run(wukong, &ctx).await?,
        Err(invalid) => {
            // Stored under an older CRD and no longer decodes: said so, nothing else is written,
            // and the other Wukongs go on.
            ctx.metrics.failure(Reason::InvalidSpec);
            let meta = object.meta();
            let problem = undecodable_reason(&ctx, meta, &invalid.error).await;
            let previous = ctx.memory.last_status(&uid);
            let next = status::undecodable(meta.generation, &problem, previous.as_ref(), &now());
            write_status(&ctx, meta, previous.as_ref(), next).await?;
            Action::await_change()
        }
    };
    ctx.memory.succeeded(&uid);
    Ok(action)
}

/// Why a stored Wukong does not decode, field by field: the object is read untyped once and run
/// through the offline validator, which names each field as the API server would; the decoder's
/// own words when that is not possible.
async fn undecodable_reason(ctx: &Context, meta: &kube::api::ObjectMeta, decode_error: &str) -> String {
    let fallback = format!("the stored Wukong does not decode: {decode_error}");
    let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else { return fallback };
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &kube::api::ApiResource::erase::<Wukong>(&()));
    match api.get_opt(name).await {
        Ok(Some(raw)) => match wukong_render::validate_object(&observe::to_json(&raw)) {
            Err(invalid) => format!("the stored Wukong does not decode: {}", invalid.summary()),
            Ok(_) => fallback,
        },
        _ => fallback,
    }
}

/// Requeue after an error, with per-Wukong exponential backoff (a conflict: at once).
pub fn error_policy(object: Arc<WukongObject>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(&*object);
    ctx.metrics.failure(error.reason());
    let delay = match error.class() {
        Class::Conflict => AFTER_CONFLICT,
        Class::Permanent | Class::Transient => ctx.memory.backoff(&object.uid().unwrap_or_default()),
    };
    warn!(wukong = %key, reason = %error.reason(), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn run(wukong: &Wukong, ctx: &Context) -> Result<Action> {
    let uid = wukong.metadata.uid.clone().unwrap_or_default();
    let wukongs: Api<Wukong> = Api::namespaced(ctx.client.clone(), names::namespace_of(wukong));
    let key = ObjectRef::from_obj(wukong);
    // The original operator's finalizer: nobody else removes it, and a deleted Wukong would wait.
    if let Some(ops) = legacy::finalizer_patch(wukong) {
        apply::json_patch(ctx, &wukongs, &format!("Wukong {key}"), names::name_of(wukong), &ops, false).await?;
        info!(wukong = %key, "removed the original operator's finalizer");
    }
    if wukong.metadata.deletion_timestamp.is_some() {
        // The garbage collector is removing its children: nothing is written for it.
        ctx.memory.forget(&uid);
        return Ok(Action::await_change());
    }
    // Every reconcile of a fresh start waits here for the watches' first lists (briefly: a
    // watch that cannot list is retried with backoff).
    ctx.stores.wait_ready(STORES_READY_WAIT).await.map_err(Error::NotSynced)?;
    let now = now();
    let previous = ctx.memory.last_status(&uid).filter(|s| newer(s, wukong.status.as_ref())).or(wukong.status.clone());
    let verdict = ctx.memory.validated(&uid, wukong.metadata.generation, || wukong_render::validate(wukong));
    let valid = match verdict.as_ref() {
        Ok(valid) => valid,
        Err(invalid) => {
            // Nothing is written but the status; retrying cannot fix a spec.
            ctx.metrics.failure(Reason::InvalidSpec);
            let next = status::invalid(wukong, invalid, previous.as_ref(), &now);
            write_status(ctx, &wukong.metadata, previous.as_ref(), next).await?;
            return Ok(Action::await_change());
        }
    };
    // The store may be stale (after an outage): the stored spec is the latest we know, but
    // nothing is written for a Wukong that is gone.
    let seen = observe::observe(ctx, valid).await?;
    let decision = decide(valid, &seen.facts, &ctx.policy);
    if !decision.adopted_nads.is_empty() {
        info!(wukong = %key, nads = ?decision.adopted_nads, "adopting the original operator's NADs");
    }
    let namespace = names::namespace_of(wukong);
    let name = names::name_of(wukong);
    // What the NAD of each name is now: ours, or the original operator's when adopted.
    let nad_live = |name: &str| {
        seen.nads.get(name).map(|v| v.as_ref()).or_else(|| {
            decision.adopted_nads.iter().any(|a| a == name).then(|| seen.facts.foreign_nads.get(name)).flatten()
        })
    };
    // What differs from what is stored, each object once: only that is written.
    let nads_pending = decision
        .apply_nads
        .iter()
        .map(|nad| {
            let live = nad_live(&nad.name_any());
            Ok(apply::pending(nad, live)?.map(|desired| (desired, live)))
        })
        .collect::<Result<Vec<_>>>()?;
    let (vm_pending, secret_pending) = match &decision.vm {
        VmAction::Apply(vm) => (
            apply::pending(vm.as_ref(), seen.vm.as_deref())?,
            decision
                .apply_secret
                .as_ref()
                .map(|s| apply::pending(s, seen.cloud_init_secret.as_deref()))
                .transpose()?
                .flatten(),
        ),
        _ => (None, None),
    };
    let needs_writes = nads_pending.iter().any(Option::is_some)
        || vm_pending.is_some()
        || secret_pending.is_some()
        || !decision.delete_nads.is_empty()
        || decision.delete_secret
        || !decision.vm_patch.is_empty();
    // The one live read before writing; a reconcile that writes no child skips it.
    if needs_writes && !owner_exists(ctx, wukong).await? {
        info!(wukong = %ObjectRef::from_obj(wukong), "the Wukong is gone: nothing is written for it");
        return Ok(Action::await_change());
    }

    let mut failures: Vec<Failure> = Vec::new();
    let mut written = 0;

    // The NADs and the cloud-init Secret do not depend on each other: written at once, so a
    // reconcile waits for one round trip instead of one per object. The VM comes after both (its
    // launcher pod needs the NADs, its guest the Secret).
    let nad_resource = resources::nad();
    // An adopted NAD (the original operator's) is applied over as it is, by its uid.
    let nad_writes = nads_pending
        .into_iter()
        .flatten()
        .map(|(desired, live)| apply::apply(ctx, Stage::ApplyNad, resources::NAD, &nad_resource, desired, live));
    let secret_write = async {
        match secret_pending {
            Some(desired) => {
                let live = seen.cloud_init_secret.as_deref();
                Some(
                    apply::apply(ctx, Stage::ApplySecret, resources::SECRET, &resources::secret(), desired, live).await,
                )
            }
            None => None,
        }
    };
    let (nad_results, secret_result) = futures::join!(futures::future::join_all(nad_writes), secret_write);
    let mut nads_ok = true;
    for r in nad_results {
        nads_ok &= settle(r.map(|_| true), &mut written, &mut failures)?;
    }
    let mut vm_now = seen.vm.clone();
    if let (VmAction::Apply(_), true) = (&decision.vm, nads_ok) {
        // The Secret the VM boots with, then the VM.
        let mut secret_ok = true;
        if let Some(r) = secret_result {
            if let Ok(stored) = &r {
                ctx.memory.saw_secret(namespace, &cloudinit::secret_name(name), Some(stored.clone()));
            }
            secret_ok = settle(r.map(|_| true), &mut written, &mut failures)?;
        }
        if secret_ok && !decision.vm_patch.is_empty() {
            // What the original operator wrote that server-side apply cannot remove.
            let vms: Api<kube::api::DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), namespace, &resources::vm());
            let vm_name = names::vm_name(name);
            let object = format!("VirtualMachine {namespace}/{vm_name}");
            let r = apply::json_patch(ctx, &vms, &object, &vm_name, &decision.vm_patch, false).await;
            if r.is_ok() {
                info!(wukong = %key, "removed what the original operator wrote in the VM that wukong does not");
            }
            secret_ok = settle(r.map(|()| true), &mut written, &mut failures)?;
        }
        if let (true, Some(desired)) = (secret_ok, vm_pending) {
            let r =
                apply::apply(ctx, Stage::ApplyVm, resources::VM, &resources::vm(), desired, seen.vm.as_deref()).await;
            if let Ok(stored) = &r {
                vm_now = Some(stored.clone());
            }
            settle(r.map(|_| true), &mut written, &mut failures)?;
        }
    }
    let vm_stored = vm_now.is_some();
    for nad in &decision.delete_nads {
        let key = (resources::NAD, namespace.to_string(), nad.clone());
        let r = apply::delete(ctx, Stage::DeleteNad, key, &resources::nad(), seen.owned_uids.get(nad).cloned()).await;
        settle(r.map(|()| true), &mut written, &mut failures)?;
    }
    if decision.delete_secret {
        let secret = cloudinit::secret_name(name);
        let uid =
            seen.cloud_init_secret.as_ref().and_then(|s| s.pointer("/metadata/uid")?.as_str().map(str::to_string));
        let key = (resources::SECRET, namespace.to_string(), secret.clone());
        let r = apply::delete(ctx, Stage::DeleteSecret, key, &resources::secret(), uid).await;
        if r.is_ok() {
            ctx.memory.saw_secret(namespace, &secret, None);
        }
        settle(r.map(|()| true), &mut written, &mut failures)?;
    }
    if written > 0 {
        info!(wukong = %ObjectRef::from_obj(wukong), written, deleted = decision.delete_nads.len(), "applied");
    }

    // A grown disk: CDI sizes a DataVolume's PVC once, so the PVC itself is asked for more. A
    // refusal is reported and does not stop the rest.
    let volumes = observe::volumes(ctx, wukong);
    for grow in legacy::expansions(wukong, &volumes.pvcs, volumes.overhead.as_ref(), &decision.takeover) {
        let r = apply::expand(ctx, namespace, &grow.pvc, &grow.size).await;
        if r.is_ok() {
            info!(wukong = %ObjectRef::from_obj(wukong), disk = %grow.disk, pvc = %grow.pvc, size = %grow.size, "volume expansion requested");
        }
        settle(r.map(|()| true), &mut written, &mut failures)?;
    }

    let vm_status = observe::vm_status(vm_now.as_deref())?;
    let vmi_status = observe::vmi_status(seen.vmi.as_deref())?;
    let observed = Observed {
        previous: previous.as_ref(),
        failures: &failures,
        vm_stored,
        vm: vm_status.as_ref(),
        vmi: vmi_status.as_ref(),
        vmi_spec: seen.vmi.as_deref().and_then(|v| v.get("spec")),
        volumes: &volumes.observations,
    };
    // The original operator's conditions, which wukong's server-side apply could not remove.
    if let Some(ops) = legacy::status_patch(wukong.status.as_ref()) {
        apply::json_patch(ctx, &wukongs, &format!("Wukong {key}"), name, &ops, true).await?;
    }
    let next = status::compute(valid, &decision, &observed, &now);
    write_status(ctx, &wukong.metadata, previous.as_ref(), next).await?;
    Ok(if !failures.is_empty() {
        for f in &failures {
            ctx.metrics.failure(f.reason);
        }
        // Refused for good: looked at again slowly, in case the cause (a webhook, RBAC) goes.
        Action::requeue(ctx.memory.backoff(&uid))
    } else if seen.facts.ssh_keys == SshKeys::SecretNotFound {
        Action::requeue(SECRET_RECHECK)
    } else {
        Action::requeue(ctx.requeue)
    })
}

/// Counts a write, or records a permanent refusal (reported in the status); anything else stops
/// the reconcile (retried with backoff). Whether the step succeeded.
fn settle(result: Result<bool>, written: &mut usize, failures: &mut Vec<Failure>) -> Result<bool> {
    match result {
        Ok(wrote) => {
            *written += usize::from(wrote);
            Ok(true)
        }
        Err(e) => match e.failure() {
            Some(f) => {
                failures.push(f);
                Ok(false)
            }
            None => Err(e),
        },
    }
}

/// Whether the Wukong still exists as the one being reconciled (same uid, not being deleted):
/// one metadata read before the first write, so a stale store never writes for a deleted Wukong.
async fn owner_exists(ctx: &Context, wukong: &Wukong) -> Result<bool> {
    let api: Api<Wukong> = Api::namespaced(ctx.client.clone(), names::namespace_of(wukong));
    let name = names::name_of(wukong);
    let live = api
        .get_metadata_opt(name)
        .await
        .map_err(|e| Error::api(Stage::Observe, format!("Wukong {}/{name}", names::namespace_of(wukong)), e))?;
    Ok(live.is_some_and(|m| m.metadata.uid == wukong.metadata.uid && m.metadata.deletion_timestamp.is_none()))
}

/// Patches the status only when it changed, and publishes an event per transition, both
/// against the same previous status.
async fn write_status(
    ctx: &Context,
    meta: &kube::api::ObjectMeta,
    previous: Option<&WukongStatus>,
    next: WukongStatus,
) -> Result<()> {
    if previous == Some(&next) {
        return Ok(());
    }
    apply::may_write(ctx)?;
    let (namespace, name) = (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
    let uid = meta.uid.clone().unwrap_or_default();
    let transitions = status::transitions(previous, &next);
    let api: Api<Wukong> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut patch = json!({ "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "status": next });
    // Only onto this very Wukong: a status is never written to one made again under its name.
    patch["metadata"] = json!({ "uid": uid });
    api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await
        .map_err(|e| Error::api(Stage::PatchStatus, format!("Wukong {namespace}/{name}"), e))?;
    ctx.memory.wrote_status(&uid, next.clone());

    let reference = Wukong::object_ref_from(meta);
    // Published together: an event is a courtesy, and losing one must not fail the reconcile.
    let published = transitions.into_iter().map(|t| {
        let event = Event {
            type_: if t.warning { EventType::Warning } else { EventType::Normal },
            reason: t.reason.clone(),
            note: Some(truncate(&t.message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        };
        let (reference, namespace, name) = (&reference, &namespace, &name);
        async move {
            if let Err(e) = ctx.events.publish(&event, reference).await {
                warn!(wukong = %format!("{namespace}/{name}"), reason = %t.reason, error = %e, "cannot publish event");
            }
        }
    });
    futures::future::join_all(published).await;
    Ok(())
}

/// Whether a status we wrote is at least as recent as the stored one (same or later generation).
fn newer(written: &WukongStatus, stored: Option<&WukongStatus>) -> bool {
    stored.is_none_or(|s| written.observed_generation >= s.observed_generation)
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

trait ObjectRefFrom {
    fn object_ref_from(meta: &kube::api::ObjectMeta) -> k8s_openapi::api::core::v1::ObjectReference;
}

impl ObjectRefFrom for Wukong {
    fn object_ref_from(meta: &kube::api::ObjectMeta) -> k8s_openapi::api::core::v1::ObjectReference {
        k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(Wukong::api_version(&()).to_string()),
            kind: Some(Wukong::kind(&()).to_string()),
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            ..Default::default()
        }
    }
}
