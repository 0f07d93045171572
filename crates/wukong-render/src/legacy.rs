//! What the original Go operator (kuihuar/vmoperator, same group and kind) left in a cluster,
//! recognized so that wukong takes it over without losing a disk or restarting a VM.
//!
//! For a Wukong `<w>` the original created:
//! - per network without `nadName`: a NAD `<w>-<net>-nad` without owner reference, label or
//!   annotation, whose `spec.config` is [`original_cni_config`] (no CNI `name`);
//! - per disk a PVC `<w>-<disk>` (a standalone DataVolume `<w>-<disk>` for a disk with an image,
//!   a plain PVC otherwise), without owner reference;
//! - a VM `<w>-vm` with a controller owner reference to the Wukong, `spec.running`, the Multus
//!   networks annotation on the VM and on its template, the pod network `default` (masquerade)
//!   plus one network per NAD named after the NAD (bridge binding), one volume per disk named after
//!   the disk with `persistentVolumeClaim: {claimName: <w>-<disk>}`, and with cloud-init a volume
//!   `cloudinitdisk` holding the user data inline;
//! - its finalizer `wukong.novasphere.dev/finalizer` on the Wukong, and status conditions
//!   `NetworksConfigured` and `VolumesBound`.
//!
//! How wukong takes these over:
//! - a NAD that is exactly the original's rendering for the Wukong's network
//!   ([`is_original_nad`]) is adopted: applied with wukong's owner reference, labels and config.
//!   Any other NAD under a generated name stays foreign (`NADConflict`), as before;
//! - a disk whose live volume is its PVC `<w>-<disk>` keeps that `persistentVolumeClaim` volume
//!   and gets no DataVolume template ([`Takeover::kept_claims`]): the VM keeps its data and CDI
//!   imports nothing again. wukong never owns, changes or deletes those PVCs and DataVolumes,
//!   except that a grown `size` asks the PVC for that size ([`expansions`]: the original's PVCs
//!   requested exactly `size`, without CDI's filesystem overhead);
//! - while an instance of the VM runs, its secondary networks keep the names the original gave
//!   them ([`Takeover::interface_names`]): KubeVirt hot-plugs an interface whose name is new to a
//!   running VM, which would put the guest on the same network twice. Once the VM is stopped the
//!   networks take wukong's names;
//! - what server-side apply cannot take from another field manager is removed by a JSON patch
//!   ([`vm_patch`], [`finalizer_patch`], [`status_patch`]), each step guarded by a `test` of the
//!   value wukong saw.
//!
//! Everything else of wukong's rendering (MACs, bindings, the cloud-init Secret, boot order)
//! reaches the guest when KubeVirt starts a new instance; until then the Wukong's status says
//! `RestartRequired` ([`crate::restart`]), and so does KubeVirt.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use wukong_api::{NetworkSpec, NetworkType, Wukong, WukongStatus};

use crate::plan::{Attachment, NetworkPlan};
use crate::{disks, names};

pub mod original;

/// The finalizer the original put on every Wukong (it only ever removed it again).
pub const ORIGINAL_FINALIZER: &str = "wukong.novasphere.dev/finalizer";
/// Condition types of the original's status that wukong does not write.
pub const ORIGINAL_CONDITIONS: [&str; 2] = ["NetworksConfigured", "VolumesBound"];
/// The Multus networks annotation the original put on the VM and its template.
const NETWORKS_ANNOTATION_PATH: &str = "k8s.v1.cni.cncf.io~1networks";

/// The CNI config the original rendered for a network it generated a NAD for: `cniVersion`
/// 0.3.1 and the network's `type` verbatim; for bridge and ovs `bridge` (`bridgeName`, else
/// `br-<net>`) and `vlan` when set; `ipam` `{"type":"dhcp"}`, or `static` with `addresses` and,
/// with a gateway, an IPv4 default route (for every type, the original's `dnsServers` went to
/// cloud-init only).
pub fn original_cni_config(net: &NetworkSpec) -> Value {
    let type_ = net.type_.map_or("", NetworkType::as_str);
    let mut config = json!({ "cniVersion": "0.3.1", "type": type_ });
    if matches!(net.type_, Some(NetworkType::Bridge | NetworkType::Ovs)) {
        config["bridge"] = json!(net.bridge_name.clone().unwrap_or_else(|| names::default_bridge_name(&net.name)));
        if let Some(vlan) = net.vlan_id {
            config["vlan"] = json!(vlan);
        }
    }
    if let Some(ip) = &net.ip_config {
        match (ip.mode, &ip.address) {
            (wukong_api::IpMode::Dhcp, _) => config["ipam"] = json!({ "type": "dhcp" }),
            (wukong_api::IpMode::Static, Some(address)) => {
                let mut ipam = json!({ "type": "static", "addresses": [{ "address": address }] });
                if let Some(gw) = &ip.gateway {
                    ipam["routes"] = json!([{ "dst": "0.0.0.0/0", "gw": gw }]);
                }
                config["ipam"] = ipam;
            }
            (wukong_api::IpMode::Static, None) => {}
        }
    }
    config
}

/// Whether a live NAD (as JSON) is exactly what the original rendered for `net`: nothing in its
/// metadata but what the API server sets (no owner reference, label, annotation or finalizer, not
/// being deleted) and a `spec.config` equal, as JSON, to [`original_cni_config`].
pub fn is_original_nad(net: &NetworkSpec, live: &Value) -> bool {
    let metadata = &live["metadata"];
    let unset = |key: &str| match metadata.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    let bare = ["ownerReferences", "labels", "annotations", "finalizers", "deletionTimestamp"].iter().all(|k| unset(k));
    let spec_is_config_only = live["spec"].as_object().is_some_and(|s| s.keys().all(|k| k == "config"));
    let config =
        live.pointer("/spec/config").and_then(Value::as_str).and_then(|c| serde_json::from_str::<Value>(c).ok());
    bare && spec_is_config_only && config.is_some_and(|c| c == original_cni_config(net))
}

/// How wukong renders the VM over a live VM it controls, so that a running instance is neither
/// restarted nor changed and no disk is replaced. Empty for a VM wukong rendered itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Takeover {
    /// Disks whose live volume is the PVC `<w>-<disk>`: rendered as that `persistentVolumeClaim`
    /// volume, without a DataVolume template.
    pub kept_claims: BTreeSet<String>,
    /// KubeVirt network and interface name of a secondary network, where it is not the network's
    /// own name: the name the original gave it (its NAD's), kept while an instance runs.
    pub interface_names: BTreeMap<String, String>,
}

impl Takeover {
    /// The KubeVirt network and interface name of secondary network `network`.
    pub fn interface_name<'a>(&'a self, network: &'a str) -> &'a str {
        self.interface_names.get(network).map_or(network, String::as_str)
    }
}

/// The takeover of `live_vm` (the VM controlled by this Wukong, as JSON), given whether an
/// instance of it exists.
pub fn takeover(wukong: &Wukong, plan: &NetworkPlan<'_>, live_vm: Option<&Value>, instance: bool) -> Takeover {
    let Some(live) = live_vm else { return Takeover::default() };
    let template = &live["spec"]["template"]["spec"];
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let volumes = list(&template["volumes"]);
    let name = names::name_of(wukong);
    let kept_claims = disks::plan(wukong)
        .into_iter()
        .map(|d| d.name)
        .filter(|disk| {
            let claim = names::data_volume_name(name, disk);
            volumes.iter().any(|v| {
                v["name"] == json!(disk)
                    && v.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str) == Some(claim.as_str())
            })
        })
        .collect();
    let mut interface_names = BTreeMap::new();
    if instance {
        let networks = list(&template["networks"]);
        for net in &plan.networks {
            // The original named a network, and its interface, after the NAD as it wrote it.
            let original = match &net.attachment {
                Attachment::Generated(nad) => nad.name.clone(),
                Attachment::Existing(_) => net.spec.nad_name.clone().unwrap_or_default(),
                Attachment::Fallback => continue,
            };
            let named = |n: &str| networks.iter().any(|l| l["name"] == json!(n));
            let original_form = networks.iter().any(|l| {
                l["name"] == json!(original)
                    && l.pointer("/multus/networkName").and_then(Value::as_str) == Some(original.as_str())
            });
            if original != net.name() && original_form && !named(net.name()) {
                interface_names.insert(net.name().to_string(), original);
            }
        }
    }
    Takeover { kept_claims, interface_names }
}

/// The PVCs to grow ([`disks::expansions`]), where a kept claim is the original's PVC: it
/// requested exactly the disk's `size` (a plain PVC, or a DataVolume's `spec.pvc`, to which CDI
/// adds no filesystem overhead), so it grows only when `size` does, to `size`.
pub fn expansions(
    wukong: &Wukong,
    pvcs: &[disks::PvcObservation],
    overhead: Option<&disks::FilesystemOverhead>,
    takeover: &Takeover,
) -> Vec<disks::Expansion> {
    let name = names::name_of(wukong);
    let kept =
        |p: &disks::PvcObservation| takeover.kept_claims.iter().any(|d| names::data_volume_name(name, d) == p.name);
    let (originals, made): (Vec<_>, Vec<_>) = pvcs.iter().cloned().partition(kept);
    let mut out = disks::expansions(wukong, &made, overhead);
    out.extend(disks::expansions(wukong, &originals, None));
    let order: Vec<String> = disks::plan(wukong).into_iter().map(|d| d.name).collect();
    out.sort_by_key(|e| order.iter().position(|d| *d == e.disk));
    out
}

/// The JSON patch (RFC 6902) that removes from a VM controlled by this Wukong what the original
/// wrote and server-side apply cannot take from its field manager: `spec.running`, replaced in
/// the same patch by `spec.runStrategy` (KubeVirt refuses a VM with both, and one with neither),
/// and the Multus networks annotation on the VM and its template (KubeVirt writes that annotation
/// on the launcher pod itself). Each removal is guarded by a `test` of the value seen. Empty when
/// there is nothing to remove.
pub fn vm_patch(live_vm: &Value, run_strategy: &str) -> Vec<Value> {
    let mut ops = Vec::new();
    if let Some(running) = live_vm.pointer("/spec/running").filter(|v| !v.is_null()) {
        ops.push(json!({ "op": "test", "path": "/spec/running", "value": running }));
        ops.push(json!({ "op": "remove", "path": "/spec/running" }));
        let op = if live_vm.pointer("/spec/runStrategy").is_some() { "replace" } else { "add" };
        ops.push(json!({ "op": op, "path": "/spec/runStrategy", "value": run_strategy }));
    }
    for annotations in ["/metadata/annotations", "/spec/template/metadata/annotations"] {
        let path = format!("{annotations}/{NETWORKS_ANNOTATION_PATH}");
        if let Some(value) = live_vm.pointer(&path) {
            ops.push(json!({ "op": "test", "path": path, "value": value }));
            ops.push(json!({ "op": "remove", "path": path }));
        }
    }
    ops
}

/// The JSON patch that removes the original's finalizer from the Wukong (nobody else would, and
/// a deleted Wukong would wait for it forever); `None` when it has none.
pub fn finalizer_patch(wukong: &Wukong) -> Option<Vec<Value>> {
    let finalizers = wukong.metadata.finalizers.as_deref().unwrap_or_default();
    if !finalizers.iter().any(|f| f == ORIGINAL_FINALIZER) {
        return None;
    }
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != ORIGINAL_FINALIZER).collect();
    Some(vec![
        json!({ "op": "test", "path": "/metadata/finalizers", "value": finalizers }),
        json!({ "op": "replace", "path": "/metadata/finalizers", "value": kept }),
    ])
}

/// The JSON patch (on the status subresource) that removes the original's conditions
/// ([`ORIGINAL_CONDITIONS`]), which wukong never writes and so could never take over with
/// server-side apply; `None` when there are none.
pub fn status_patch(status: Option<&WukongStatus>) -> Option<Vec<Value>> {
    let conditions = &status?.conditions;
    let mut ops = Vec::new();
    // From the last to the first, so that a removal does not move the next one's index.
    for (i, c) in conditions.iter().enumerate().rev().filter(|(_, c)| ORIGINAL_CONDITIONS.contains(&c.type_.as_str())) {
        ops.push(json!({ "op": "test", "path": format!("/status/conditions/{i}/type"), "value": c.type_ }));
        ops.push(json!({ "op": "remove", "path": format!("/status/conditions/{i}") }));
    }
    (!ops.is_empty()).then_some(ops)
}

#[cfg(test)]
mod tests;
