//! What a change of the spec does to a VM that runs, decided as KubeVirt decides it.
//!
//! KubeVirt keeps a VM (the template wukong writes) and its running instance (the VMI) apart.
//! When the template changes, virt-controller carries some changes to the instance at once,
//! some through a live migration, and leaves the rest for the next start of the VM, saying so
//! with the VM's `RestartRequired` condition, or, for some, saying nothing. This module restates
//! those rules (KubeVirt v1.6 to v1.8: `pkg/network/vmliveupdate`, `pkg/network/controllers`,
//! `pkg/network/migration`, the VM controller's restart check) as a pure function of the desired
//! template, the running instance and the cluster's KubeVirt CR ([`KubeVirtCapabilities`]), so
//! the controller's status and `wukong render --diff` say the same thing, before anything is
//! written.
//!
//! The network rules, by interface (a KubeVirt interface and its network share a name):
//! - an interface the instance lacks is **hot-plugged** when it is bridge-bound, and through a
//!   **migration** when it is SR-IOV; any other binding (macvtap, masquerade) waits for a
//!   restart, and KubeVirt does not report `RestartRequired` for it;
//! - an interface with `state: absent` is **hot-unplugged** (bridge binding only, never the pod
//!   network); KubeVirt removes it from the VM itself once the instance no longer lists it;
//! - an interface of the instance that the template dropped, or that changed in anything but
//!   its `state` (binding, MAC), and a network of the instance that changed or went away,
//!   need a **restart** (`RestartRequired`); with the `LiveUpdateNADRef` gate (v1.8) a new NAD
//!   name is not such a change: KubeVirt copies it into the instance and migrates it;
//! - a changed `state` (`up`/`down`) of an interface of the instance is set **live** (v1.6).
//!
//! Other parts of the template, under the default `vmRolloutStrategy: LiveUpdate`: more memory
//! through a migration (memory hot-plug), node selector, affinity and tolerations live; CPU
//! cores (KubeVirt hot-plugs sockets), disks and volumes at a restart. Any change that needs a
//! restart holds the live ones of memory and scheduling back too, as virt-controller does.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde_json::Value;
use wukong_api::kubevirt::{
    Disk, INTERFACE_ABSENT, Interface, Network, VirtualMachine, VirtualMachineInstanceSpec, Volume,
};
use wukong_api::{Applies, PendingChange};

use crate::capabilities::{KubeVirtCapabilities, RolloutStrategy};
use crate::disks;
use crate::plan::NadRef;

/// The parts of a VM template, or of a VMI's spec, that decide how a change reaches a running
/// VM. Read from JSON leniently: only the fields wukong sets, so KubeVirt's defaults on the
/// instance (`model`, `sockets`, `imagePullPolicy`, ...) do not count as changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub networks: Vec<Network>,
    pub interfaces: Vec<Interface>,
    pub cores: Option<u32>,
    pub memory: Option<String>,
    pub disks: Vec<Disk>,
    pub volumes: Vec<Volume>,
    pub node_selector: BTreeMap<String, String>,
    /// As JSON (`null` when unset): compared, never read.
    pub tolerations: Value,
    pub affinity: Value,
}

impl Template {
    /// The template of a VM wukong renders.
    pub fn of(spec: &VirtualMachineInstanceSpec) -> Self {
        Self {
            networks: spec.networks.clone(),
            interfaces: spec.domain.devices.interfaces.clone(),
            cores: spec.domain.cpu.as_ref().map(|c| c.cores),
            memory: spec.domain.memory.as_ref().map(|m| m.guest.clone()),
            disks: spec.domain.devices.disks.clone(),
            volumes: spec.volumes.clone(),
            node_selector: spec.node_selector.clone(),
            tolerations: if spec.tolerations.is_empty() { Value::Null } else { json(&spec.tolerations) },
            affinity: spec.affinity.as_ref().map_or(Value::Null, json),
        }
    }

    /// A VM's `spec.template.spec` or a VMI's `spec`, as JSON.
    pub fn from_json(spec: &Value) -> Self {
        Self {
            networks: part(spec, "/networks"),
            interfaces: part(spec, "/domain/devices/interfaces"),
            cores: spec.pointer("/domain/cpu/cores").and_then(Value::as_u64).and_then(|c| u32::try_from(c).ok()),
            memory: spec.pointer("/domain/memory/guest").and_then(Value::as_str).map(str::to_string),
            disks: part(spec, "/domain/devices/disks"),
            volumes: part(spec, "/volumes"),
            node_selector: part(spec, "/nodeSelector"),
            tolerations: spec
                .get("tolerations")
                .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                .cloned()
                .unwrap_or_default(),
            affinity: spec.get("affinity").cloned().unwrap_or_default(),
        }
    }

    /// The template of a live VM (JSON), when it has one.
    pub fn of_vm(vm: &Value) -> Option<Self> {
        vm.pointer("/spec/template/spec").map(Self::from_json)
    }

    fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a template part serializes")
}

fn part<T: DeserializeOwned + Default>(spec: &Value, pointer: &str) -> T {
    spec.pointer(pointer).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

/// A running instance of a VM (its VMI), as far as live updates go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    /// What the instance runs with (the VMI's spec).
    pub spec: Template,
    /// The VMI's phase (`Pending`, `Scheduling`, `Scheduled`, `Running`, ...).
    pub phase: Option<String>,
    /// The interfaces the VMI's status lists (virt-handler reports what the guest and the pod
    /// have).
    pub reported: BTreeSet<String>,
    /// The VMI's `LiveMigratable` condition; `None` while KubeVirt has not said.
    pub migratable: Option<bool>,
    /// Why it is not migratable, in KubeVirt's words.
    pub not_migratable_because: Option<String>,
    /// The VMI's `MigrationRequired` condition (`True`, or `False` while KubeVirt waits before
    /// it asks): changes made to the instance reach the VM only through a live migration; its
    /// reason. Until then the pod keeps what it was attached with.
    pub migration_required: Option<String>,
}

impl Instance {
    /// The instance a VMI (JSON) describes; `None` for one that has finished or is being
    /// deleted: nothing runs there that a change could reach.
    pub fn from_vmi(vmi: &Value) -> Option<Self> {
        if vmi.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
            return None;
        }
        let phase = vmi.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default();
        if matches!(phase, "Succeeded" | "Failed") {
            return None;
        }
        let reported = vmi
            .pointer("/status/interfaces")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(|i| i.get("name")?.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let text =
            |c: &Value, key: &str| c.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let condition = |type_: &str| {
            vmi.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|list| list.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_)))
        };
        let migratable = condition("LiveMigratable");
        let migration_required = condition("MigrationRequired")
            .filter(|c| matches!(c.get("status").and_then(Value::as_str), Some("True" | "False")))
            .map(|c| text(c, "reason").unwrap_or_else(|| "MigrationRequired".into()));
        Some(Self {
            spec: vmi.get("spec").map(Template::from_json).unwrap_or_default(),
            phase: (!phase.is_empty()).then(|| phase.to_string()),
            reported,
            migratable: migratable.and_then(|c| c.get("status")?.as_str().map(|s| s == "True")),
            not_migratable_because: migratable.and_then(|c| text(c, "message").or_else(|| text(c, "reason"))),
            migration_required,
        })
    }

    /// The instance a VM gets when it starts from `template`, all interfaces reported (the
    /// offline preview of a manifest meant to run); migratability unknown.
    pub fn started_from(template: Template) -> Self {
        let reported = template.interfaces.iter().map(|i| i.name.clone()).collect();
        Self { spec: template, phase: Some("Running".into()), reported, ..Self::default() }
    }

    /// Whether the instance has an interface of this name (in its spec or its status).
    pub fn lists(&self, interface: &str) -> bool {
        self.spec.interface(interface).is_some() || self.reported.contains(interface)
    }

    /// The NAD each Multus network of the instance uses, by network name; a bare NAD name is
    /// in `namespace` (the VM's), as KubeVirt resolves it.
    pub fn nads(&self, namespace: &str) -> BTreeMap<String, NadRef> {
        self.spec
            .networks
            .iter()
            .filter_map(|n| Some((n.name.clone(), NadRef::parse(&n.multus.as_ref()?.network_name, namespace))))
            .collect()
    }
}

/// Keeps in `desired` the interfaces KubeVirt is to unplug. For every network the live VM has
/// and the spec no longer names (`spec_networks`: a network the spec names but the plan left out,
/// as in the Multus fallback, is never unplugged):
/// - an interface the live VM already marks `absent` stays as it is, until KubeVirt removes it
///   from the VM itself (v1.6 and later do, once the instance no longer lists it); wukong never
///   puts back an interface KubeVirt removed;
/// - a bridge-bound interface the running instance lists is kept, as the live VM has it (any
///   other difference would be a change KubeVirt restarts for), with `state: absent`;
/// - any other is dropped: KubeVirt unplugs only bridge-bound interfaces, the rest goes at a
///   restart (see [`classify`]).
pub fn carry_unplugs(
    desired: &mut VirtualMachine,
    live: &Template,
    running: Option<&Instance>,
    spec_networks: &BTreeSet<&str>,
) {
    let spec = &mut desired.spec.template.spec;
    for iface in &live.interfaces {
        let wanted = spec_networks.contains(iface.name.as_str())
            || spec.domain.devices.interfaces.iter().any(|i| i.name == iface.name);
        let Some(network) = live.network(&iface.name).filter(|n| n.pod.is_none()) else { continue };
        if wanted {
            continue;
        }
        let unplugging = iface.state.as_deref() == Some(INTERFACE_ABSENT);
        let unplug = iface.bridge.is_some() && running.is_some_and(|r| r.lists(&iface.name));
        if unplugging || unplug {
            spec.domain.devices.interfaces.push(Interface { state: Some(INTERFACE_ABSENT.into()), ..iface.clone() });
            spec.networks.push(network.clone());
        }
    }
}

/// How each difference between `desired` and what `running` runs with reaches the running VM,
/// in order: networks (the desired ones, then those going away), CPU, memory, disks,
/// scheduling.
pub fn classify(desired: &Template, running: &Instance, kubevirt: &KubeVirtCapabilities) -> Vec<PendingChange> {
    let current = &running.spec;
    let mut out = Vec::new();
    let mut names: Vec<&str> = desired.interfaces.iter().map(|i| i.name.as_str()).collect();
    for name in current.interfaces.iter().map(|i| i.name.as_str()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in names {
        network_changes(name, desired, running, kubevirt, &mut out);
    }
    if desired.networks.iter().any(|n| n.pod.is_some()) && !current.networks.iter().any(|n| n.pod.is_some()) {
        out.push(change(
            "network default",
            "the pod network added",
            Applies::Restart,
            true,
            "KubeVirt attaches the pod network only when the VM starts",
        ));
    }
    other_changes(desired, running, kubevirt, &mut out);
    // What KubeVirt already carried to the instance and still has to migrate for (a new NAD
    // copied into the instance, an SR-IOV interface, memory): the pod is not there yet.
    if let Some(reason) = &running.migration_required
        && !out.iter().any(|c| c.applies == Applies::Migration)
    {
        let (applies, flagged, why) = through_migration(
            "KubeVirt carries changes made to the running instance (a new NAD, an SR-IOV interface, memory) to its pod through a live migration",
            running,
            kubevirt,
        );
        out.push(change("instance", &format!("migration required ({reason})"), applies, flagged, &why));
    }
    // virt-controller carries memory and scheduling only when nothing needs a restart.
    if out.iter().any(|c| c.restart_flagged) {
        for c in out.iter_mut().filter(|c| HELD_BY_RESTART.contains(&c.subject.as_str()) && !c.restart_flagged) {
            c.applies = Applies::Restart;
            c.restart_flagged = true;
            c.reason = format!(
                "{}; but KubeVirt holds such live updates back while another change requires a restart",
                c.reason
            );
        }
    }
    out
}

/// What `classify` says when no instance runs: everything applies when the VM starts.
pub fn classify_stopped(desired: &Template, last: &Template) -> Vec<PendingChange> {
    let mut out = classify(desired, &Instance::started_from(last.clone()), &KubeVirtCapabilities::default());
    for c in &mut out {
        c.applies = Applies::AtStart;
        c.restart_flagged = false;
        c.reason = "the VM does not run: it starts with it".into();
    }
    out
}

/// Subjects whose live update virt-controller skips while the VM requires a restart.
const HELD_BY_RESTART: &[&str] = &["memory", "nodeSelector", "affinity", "tolerations"];

fn change(subject: &str, what: &str, applies: Applies, restart_flagged: bool, reason: &str) -> PendingChange {
    PendingChange {
        subject: subject.to_string(),
        change: what.to_string(),
        applies,
        restart_flagged,
        reason: reason.to_string(),
    }
}

/// The binding of an interface, in KubeVirt's words.
fn binding(iface: &Interface) -> String {
    if iface.bridge.is_some() {
        "bridge".into()
    } else if iface.sriov.is_some() {
        "sriov".into()
    } else if iface.masquerade.is_some() {
        "masquerade".into()
    } else if let Some(plugin) = &iface.binding {
        format!("binding plugin {}", plugin.name)
    } else {
        "no binding".into()
    }
}

/// Where a network comes from: the pod network or a NAD.
fn source(network: Option<&Network>) -> String {
    match network {
        Some(n) if n.pod.is_some() => "the pod network".into(),
        Some(Network { multus: Some(m), .. }) => format!("NAD {}", m.network_name),
        _ => "no network".into(),
    }
}

fn absent(iface: &Interface) -> bool {
    iface.state.as_deref() == Some(INTERFACE_ABSENT)
}

fn link_down(iface: &Interface) -> bool {
    iface.state.as_deref() == Some("down")
}

/// A change that reaches the instance through a live migration: how, given whether the VM is
/// migratable and what KubeVirt does by itself (`workloadUpdateMethods`).
fn through_migration(what: &str, running: &Instance, kubevirt: &KubeVirtCapabilities) -> (Applies, bool, String) {
    if running.migratable == Some(false) {
        let why = running.not_migratable_because.as_deref().unwrap_or("LiveMigratable=False");
        if kubevirt.evicts_by_itself() {
            return (
                Applies::Restart,
                false,
                format!(
                    "{what}; the VM is not migratable ({why}), so KubeVirt restarts it by itself (workloadUpdateMethods: Evict)"
                ),
            );
        }
        return (
            Applies::Restart,
            false,
            format!(
                "{what}; the VM is not migratable ({why}): it applies at the next restart, and KubeVirt does not report RestartRequired for it"
            ),
        );
    }
    let migratable = if running.migratable.is_none() { " (if the VM is migratable)" } else { "" };
    if kubevirt.migrates_by_itself() {
        (
            Applies::Migration,
            false,
            format!("{what}{migratable}; KubeVirt migrates the VM by itself (workloadUpdateMethods: LiveMigrate)"),
        )
    } else {
        (
            Applies::Migration,
            false,
            format!(
                "{what}{migratable}; KubeVirt marks the instance MigrationRequired but migrates nothing by itself (its workloadUpdateMethods lack LiveMigrate): migrate it (virtctl migrate) or restart it"
            ),
        )
    }
}

fn network_changes(
    name: &str,
    desired: &Template,
    running: &Instance,
    kubevirt: &KubeVirtCapabilities,
    out: &mut Vec<PendingChange>,
) {
    let current = &running.spec;
    let subject = format!("network {name}");
    let (want, have) = (desired.interface(name), current.interface(name));
    let (want_net, have_net) = (desired.network(name), current.network(name));
    match (want, have) {
        (Some(w), None) if !absent(w) => {
            let what = format!("added ({} binding, {})", binding(w), source(want_net));
            if w.bridge.is_some() {
                out.push(change(
                    &subject,
                    &what,
                    Applies::Live,
                    false,
                    "KubeVirt hot-plugs a bridge-bound interface into the running VM",
                ));
            } else if w.sriov.is_some() {
                let (applies, flagged, reason) = through_migration(
                    "KubeVirt hot-plugs an SR-IOV interface only through a live migration",
                    running,
                    kubevirt,
                );
                out.push(change(&subject, &what, applies, flagged, &reason));
            } else {
                out.push(change(
                    &subject,
                    &what,
                    Applies::Restart,
                    false,
                    "KubeVirt hot-plugs only bridge and SR-IOV interfaces: it attaches at the next restart, and KubeVirt does not report RestartRequired for it",
                ));
            }
        }
        (Some(_), None) => {}
        (Some(w), Some(h)) if absent(w) => {
            let (what, reason) = if absent(h) {
                (
                    "being unplugged (interface state absent)",
                    "KubeVirt is unplugging the interface; it removes it from the VM once the instance no longer lists it, and wukong then deletes its NAD",
                )
            } else {
                (
                    "removed: unplugged from the running VM (interface state absent)",
                    "KubeVirt hot-unplugs a bridge-bound interface; it removes it from the VM once the instance no longer lists it, and wukong then deletes its NAD",
                )
            };
            out.push(change(&subject, what, Applies::Live, false, reason));
        }
        (None, Some(h)) => {
            let reason = if h.masquerade.is_some() || have_net.is_some_and(|n| n.pod.is_some()) {
                "KubeVirt never unplugs the pod network: it goes at a restart (RestartRequired)".to_string()
            } else {
                format!(
                    "KubeVirt hot-unplugs only bridge-bound interfaces, and this one is {}: it stays until the VM restarts (RestartRequired); wukong keeps its NAD until then",
                    binding(h)
                )
            };
            out.push(change(&subject, "removed", Applies::Restart, true, &reason));
        }
        (Some(w), Some(h)) => {
            // virt-handler lists what the pod and the guest of a running instance have; an
            // interface in the spec only is still being plugged (SR-IOV: waits for its migration).
            let plugging = !absent(w)
                && !absent(h)
                && running.phase.as_deref() == Some("Running")
                && !running.reported.is_empty()
                && !running.reported.contains(name)
                && want == have
                && want_net == have_net;
            if plugging && w.sriov.is_some() {
                let (applies, flagged, reason) = through_migration(
                    "KubeVirt attaches a hot-plugged SR-IOV interface through a live migration",
                    running,
                    kubevirt,
                );
                out.push(change(&subject, "being plugged", applies, flagged, &reason));
            } else if plugging {
                out.push(change(
                    &subject,
                    "being plugged",
                    Applies::Live,
                    false,
                    "the instance has the interface; virt-handler has not reported it yet",
                ));
            }
            let mut differences = Vec::new();
            if binding(w) != binding(h) {
                differences.push(format!("binding {} -> {}", binding(h), binding(w)));
            }
            if w.mac_address != h.mac_address {
                let mac = |m: &Option<String>| m.clone().unwrap_or_else(|| "(KubeVirt's)".into());
                differences.push(format!("MAC {} -> {}", mac(&h.mac_address), mac(&w.mac_address)));
            }
            let same_but_state = Interface { state: None, ..w.clone() } == Interface { state: None, ..h.clone() };
            if !same_but_state && differences.is_empty() {
                differences.push("interface changed".into());
            }
            if !differences.is_empty() {
                out.push(change(
                    &subject,
                    &differences.join(", "),
                    Applies::Restart,
                    true,
                    "KubeVirt applies a changed interface only when the VM starts (RestartRequired)",
                ));
            }
            if link_down(w) != link_down(h) {
                let what = if link_down(w) { "link up -> down" } else { "link down -> up" };
                if absent(h) {
                    out.push(change(
                        &subject,
                        &format!("{what} (added back while being unplugged)"),
                        Applies::Live,
                        false,
                        "KubeVirt finishes the unplug, then hot-plugs the interface again",
                    ));
                } else if kubevirt.at_least(1, 6) {
                    out.push(change(
                        &subject,
                        what,
                        Applies::Live,
                        false,
                        "KubeVirt sets the link of a running interface (v1.6 and later)",
                    ));
                } else {
                    out.push(change(
                        &subject,
                        what,
                        Applies::Restart,
                        false,
                        "KubeVirt before v1.6 sets an interface's link only when the VM starts, and does not report RestartRequired for it",
                    ));
                }
            }
            if want_net != have_net {
                network_source_change(&subject, want_net, have_net, running, kubevirt, out);
            }
        }
        (None, None) => {}
    }
}

fn network_source_change(
    subject: &str,
    want: Option<&Network>,
    have: Option<&Network>,
    running: &Instance,
    kubevirt: &KubeVirtCapabilities,
    out: &mut Vec<PendingChange>,
) {
    let what = format!("{} -> {}", source(have), source(want));
    let nad_only = match (want, have) {
        (Some(w), Some(h)) => {
            w.multus.is_some() && h.multus.is_some() && w.pod == h.pod && {
                let strip = |n: &Network| Network { multus: None, ..n.clone() };
                strip(w) == strip(h)
            }
        }
        _ => false,
    };
    if nad_only && kubevirt.live_update_nad_ref() {
        let (applies, flagged, reason) = through_migration(
            "KubeVirt moves the interface to the new NAD through a live migration (LiveUpdateNADRef)",
            running,
            kubevirt,
        );
        out.push(change(subject, &what, applies, flagged, &reason));
    } else if nad_only {
        out.push(change(
            subject,
            &what,
            Applies::Restart,
            true,
            "KubeVirt changes the NAD of a running interface only at a restart (RestartRequired), unless it is v1.8 or later with its LiveUpdateNADRef feature gate",
        ));
    } else {
        out.push(change(
            subject,
            &what,
            Applies::Restart,
            true,
            "KubeVirt applies a changed network only when the VM starts (RestartRequired)",
        ));
    }
}

fn other_changes(
    desired: &Template,
    running: &Instance,
    kubevirt: &KubeVirtCapabilities,
    out: &mut Vec<PendingChange>,
) {
    let current = &running.spec;
    let live = kubevirt.rollout == RolloutStrategy::LiveUpdate;
    let staged = "KubeVirt's vmRolloutStrategy is Stage: it applies the change when the VM starts (RestartRequired)";
    if desired.cores.is_some() && desired.cores != current.cores {
        let n = |c: Option<u32>| c.map_or_else(|| "-".to_string(), |c| c.to_string());
        out.push(change(
            "cpu",
            &format!("cores {} -> {}", n(current.cores), n(desired.cores)),
            Applies::Restart,
            true,
            "KubeVirt hot-plugs CPU sockets, not cores: the new count applies when the VM starts (RestartRequired)",
        ));
    }
    if let Some(want) = &desired.memory {
        let have = current.memory.as_deref().unwrap_or_default();
        let order = disks::compare_quantities(want, have);
        if order != Some(std::cmp::Ordering::Equal) {
            let what = format!("{} -> {want}", if have.is_empty() { "-" } else { have });
            if !live {
                out.push(change("memory", &what, Applies::Restart, true, staged));
            } else if order == Some(std::cmp::Ordering::Greater) && running.migratable != Some(false) {
                let (applies, flagged, reason) = through_migration(
                    "KubeVirt hot-plugs memory through a live migration, up to the most the VM can take without a restart (4 times what it started with, by default)",
                    running,
                    kubevirt,
                );
                out.push(change("memory", &what, applies, flagged, &reason));
            } else if order == Some(std::cmp::Ordering::Greater) {
                out.push(change(
                    "memory",
                    &what,
                    Applies::Restart,
                    true,
                    "KubeVirt hot-plugs memory only into a migratable VM: it applies when the VM starts (RestartRequired)",
                ));
            } else {
                out.push(change(
                    "memory",
                    &what,
                    Applies::Restart,
                    true,
                    "KubeVirt cannot take memory from a running VM: it applies when the VM starts (RestartRequired)",
                ));
            }
        }
    }
    disk_changes(desired, current, out);
    let scheduling: [(&str, bool); 3] = [
        ("nodeSelector", desired.node_selector != current.node_selector),
        ("affinity", desired.affinity != current.affinity),
        ("tolerations", desired.tolerations != current.tolerations),
    ];
    for (subject, _) in scheduling.into_iter().filter(|(_, changed)| *changed) {
        if live {
            out.push(change(
                subject,
                "changed",
                Applies::Live,
                false,
                "KubeVirt updates the running instance; the pod stays where it is, the next migration honours it",
            ));
        } else {
            out.push(change(subject, "changed", Applies::Restart, true, staged));
        }
    }
}

/// Disks and their volumes (wukong names a volume like its disk), by name.
fn disk_changes(desired: &Template, current: &Template, out: &mut Vec<PendingChange>) {
    let mut names: Vec<&str> = desired.disks.iter().map(|d| d.name.as_str()).collect();
    names.extend(current.disks.iter().map(|d| d.name.as_str()).filter(|n| !desired.disks.iter().any(|d| d.name == *n)));
    for name in names {
        let disk = |t: &Template| t.disks.iter().find(|d| d.name == name).cloned();
        let volume = |t: &Template| t.volumes.iter().find(|v| v.name == name).cloned();
        let what = match (disk(desired), disk(current)) {
            (Some(_), None) => "added",
            (None, Some(_)) => "removed",
            (w, h) if w != h || volume(desired) != volume(current) => "changed",
            _ => continue,
        };
        out.push(change(
            &format!("disk {name}"),
            what,
            Applies::Restart,
            true,
            "KubeVirt applies a changed disk or volume when the VM starts (RestartRequired)",
        ));
    }
}

#[cfg(test)]
mod tests;
