//! `wukong render --diff`: what an edit of a Wukong will do to its VM, said before it is
//! applied.
//!
//! The preview is the controller's own decision ([`decide`]) for the new spec, with the facts
//! of the cluster (the live VM, its running instance, the NADs, the KubeVirt CR) or, offline,
//! the facts of a cluster where the old manifest is applied and runs ([`facts_of`]); the
//! changes are classified by [`liveupdate::classify`], as the controller's status classifies
//! them. Knowing the old spec, the preview also names the fields behind each change, and what
//! lies outside the VM: the cloud-init data the guest reads when an instance starts, and grown
//! disks.

use serde_json::Value;
use wukong_api::{Applies, NetworkSpec, PendingChange, Wukong};

use crate::capabilities::KubeVirtCapabilities;
use crate::decide::{self, Decision, Facts, Kinds, LiveVm, Policy, Presence, Verdict, VmAction};
use crate::liveupdate::{self, Instance, Template};
use crate::{Validated, cloudinit, disks, names, plan, vm};

/// What applying a new spec does.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// `namespace/name` of the Wukong.
    pub wukong: String,
    /// `namespace/name` of its VM.
    pub vm: String,
    /// An instance of the VM runs: changes reach it live, through a migration or at a restart;
    /// else everything applies when it starts.
    pub running: bool,
    /// The VM would not be written, and why (a NAD missing, a binding not registered, ...).
    pub held: Option<Verdict>,
    /// Each change, in order: networks, CPU, memory, disks, scheduling, cloud-init.
    pub changes: Vec<PendingChange>,
}

impl Preview {
    /// The changes that wait for a restart of the running VM.
    pub fn restarts(&self) -> usize {
        self.changes.iter().filter(|c| c.applies == Applies::Restart).count()
    }
}

/// The facts of a cluster where `old` is applied as the controller applies it and, unless it is
/// meant to stay stopped (`runStrategy: Halted`), runs an instance started from its VM; with
/// `kubevirt` as the cluster's KubeVirt (`None`: v1.8's defaults, no feature gate).
pub fn facts_of(old: &Validated, policy: &Policy, kubevirt: Option<KubeVirtCapabilities>) -> Facts {
    let wukong = old.wukong();
    let kinds = Kinds { nad: true, vm: true, vmi: true, data_volume: true, kubevirt_config: kubevirt.is_some() };
    let (generated, named) = decide::wanted_nads(old, policy);
    let mut facts = Facts {
        kinds,
        generated_nads: generated.into_iter().map(|n| (n, Presence::Absent)).collect(),
        named_nads: named.into_iter().map(|n| (n, true)).collect(),
        kubevirt: kubevirt.clone(),
        ..Facts::default()
    };
    let decision = decide::decide(old, &facts, policy);
    for nad in &decision.apply_nads {
        let name = nad.metadata.name.clone().unwrap_or_default();
        if let Some(attachment) = nad.metadata.annotations.as_ref().and_then(|a| a.get(wukong_api::labels::ATTACHMENT))
        {
            facts.nad_attachments.insert(name.clone(), attachment.clone());
        }
        facts.owned_nads.insert(name.clone());
        facts.generated_nads.insert(name, Presence::Ours);
    }
    if let VmAction::Apply(vm) = &decision.vm {
        facts.vm = Presence::Ours;
        let namespace = names::namespace_of(wukong);
        facts.live_vm = Some(LiveVm::from_vm(&serde_json::to_value(vm.as_ref()).expect("a VM serializes"), namespace));
        if vm::run_strategy(&wukong.spec).as_str() != "Halted" {
            facts.instance = Some(Instance::started_from(Template::of(&vm.spec.template.spec)));
        }
    }
    facts.cloud_init_secret = if decision.apply_secret.is_some() { Presence::Ours } else { Presence::Absent };
    facts
}

/// What applying `new` does, given the cluster's `facts` (from the cluster, or [`facts_of`] the
/// old manifest) and, when known, the `old` spec (the live Wukong or the old manifest). NADs the
/// facts say nothing about are taken to exist as they should (offline, nothing is known of them).
pub fn preview(new: &Validated, old: Option<&Validated>, facts: &Facts, policy: &Policy) -> Preview {
    let wukong = new.wukong();
    let mut facts = facts.clone();
    let (generated, named) = decide::wanted_nads(new, policy);
    for name in generated {
        facts.generated_nads.entry(name).or_insert(Presence::Absent);
    }
    for nad in named {
        facts.named_nads.entry(nad).or_insert(true);
    }
    let decision = decide::decide(new, &facts, policy);
    let running = facts.instance.is_some();
    let namespace = names::namespace_of(wukong);
    let name = names::name_of(wukong);
    let mut preview = Preview {
        wukong: format!("{namespace}/{name}"),
        vm: format!("{namespace}/{}", names::vm_name(name)),
        running,
        held: None,
        changes: Vec::new(),
    };
    let desired = match &decision.vm {
        VmAction::Apply(vm) => Template::of(&vm.spec.template.spec),
        VmAction::Hold(verdict) => {
            preview.held = Some(verdict.clone());
            return preview;
        }
    };
    preview.changes = if running {
        decision.pending.clone()
    } else {
        match &facts.live_vm {
            Some(last) => liveupdate::classify_stopped(&desired, &last.template),
            None => Vec::new(),
        }
    };
    if let Some(old) = old {
        spec_changes(new.wukong(), old.wukong(), &decision, &facts, running, &mut preview.changes);
    }
    preview
}

/// Names the fields behind each network's change, and adds what the VM does not hold: network
/// fields that change only a NAD or cloud-init, grown disks, the cloud-init data.
fn spec_changes(
    new: &Wukong,
    old: &Wukong,
    decision: &Decision,
    facts: &Facts,
    running: bool,
    out: &mut Vec<PendingChange>,
) {
    let outside = |reason: &str| {
        if running {
            (Applies::Restart, reason.to_string())
        } else {
            (Applies::AtStart, "the VM does not run: it starts with it".to_string())
        }
    };
    for net in &new.spec.networks {
        let Some(before) = old.spec.networks.iter().find(|o| o.name == net.name) else { continue };
        let fields = network_fields(before, net);
        if fields.is_empty() {
            continue;
        }
        let subject = format!("network {}", net.name);
        match out.iter_mut().find(|c| c.subject == subject) {
            Some(c) => c.change = format!("{}; {}", fields.join(", "), c.change),
            None => {
                let swapped = decision.swapped_nads.contains_key(&net.name);
                let (applies, reason) = outside(if swapped {
                    "the new NAD is in the VM; nothing else changes"
                } else {
                    "the VM is unchanged: only its NAD or the guest's cloud-init data change, which a running instance gets when the VM restarts; KubeVirt does not report RestartRequired for it"
                });
                out.push(PendingChange { subject, change: fields.join(", "), applies, restart_flagged: false, reason });
            }
        }
    }
    let grown: Vec<(String, String, String)> = disks::plan(new)
        .into_iter()
        .filter_map(|d| {
            let before = disks::plan(old).into_iter().find(|o| o.name == d.name)?;
            let (was, is) = (before.size?, d.size?);
            (disks::compare_quantities(&is, &was) == Some(std::cmp::Ordering::Greater)).then_some((d.name, was, is))
        })
        .collect();
    let expand = facts.kubevirt.as_ref().is_some_and(|k| k.gate("ExpandDisks"));
    for (disk, was, is) in grown {
        let (applies, reason) = if !running {
            outside("")
        } else if expand {
            (
                Applies::Live,
                "wukong asks the PVC for more (the StorageClass must allow expansion), and KubeVirt's ExpandDisks feature gate shows the guest the new size".into(),
            )
        } else {
            (
                Applies::Restart,
                "wukong asks the PVC for more (the StorageClass must allow expansion); the guest sees the new size when the VM restarts (live with KubeVirt's ExpandDisks feature gate); KubeVirt does not report RestartRequired for it".into(),
            )
        };
        out.push(PendingChange {
            subject: format!("disk {disk}"),
            change: format!("size {was} -> {is}"),
            applies,
            restart_flagged: false,
            reason,
        });
    }
    let data = |w: &Wukong| {
        let plan = plan::plan(w, true);
        cloudinit::secret(w, &plan).and_then(|s| s.data).unwrap_or_default()
    };
    let (before, after) = (data(old), data(new));
    for (key, what) in [(cloudinit::USER_DATA_KEY, "user data"), (cloudinit::NETWORK_DATA_KEY, "network data")] {
        let change = match (before.get(key), after.get(key)) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (Some(a), Some(b)) if a != b => "changed",
            _ => continue,
        };
        let (applies, reason) = outside(
            "KubeVirt hands the guest its cloud-init data when an instance starts: the running guest gets it when the VM restarts, and KubeVirt does not report RestartRequired for it",
        );
        out.push(PendingChange {
            subject: "cloud-init".into(),
            change: format!("{what} {change}"),
            applies,
            restart_flagged: false,
            reason,
        });
    }
}

/// `field old -> new` for each field of a network that differs (`-`: unset).
fn network_fields(old: &NetworkSpec, new: &NetworkSpec) -> Vec<String> {
    let (old, new) = (serde_json::to_value(old).unwrap_or_default(), serde_json::to_value(new).unwrap_or_default());
    const FIELDS: [&str; 11] = [
        "type",
        "nadName",
        "vlanId",
        "bridgeName",
        "master",
        "resourceName",
        "mtu",
        "macAddress",
        "ipConfig",
        "linkState",
        "name",
    ];
    let shown = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    FIELDS
        .iter()
        .filter(|f| old.get(**f) != new.get(**f))
        .map(|f| format!("{f} {} -> {}", shown(old.get(*f)), shown(new.get(*f))))
        .collect()
}

#[cfg(test)]
mod tests;
