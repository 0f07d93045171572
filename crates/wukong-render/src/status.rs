//! The Wukong's status, computed from the decision and what KubeVirt reports: conditions with
//! stable transition times, the phase, and what each network looks like from the VM.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::Value;
use wukong_api::conditions::{self, Reason};
use wukong_api::kubevirt::{KubeVirtCondition, VirtualMachineInstanceStatus, VirtualMachineStatus, VmiInterface};
use wukong_api::{Applies, NetworkStatus, Phase, VolumeStatus, Wukong, WukongStatus};

use crate::decide::{Decision, Verdict, VmAction};
use crate::plan::{self, Attachment};
use crate::{Invalid, Validated, disks, names, restart, warnings};

/// What the shell saw of the VM after applying, what the API server refused, and the status the
/// Wukong had before.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// The status this reconcile starts from: the one this controller last wrote for this
    /// Wukong (its watch may not show it yet), else the stored one. Transition times and events
    /// are both computed against it.
    pub previous: Option<&'a WukongStatus>,
    /// Requests the API server refused for good in this reconcile.
    pub failures: &'a [Failure],
    /// A VM controlled by this Wukong exists (applied now, or kept from before).
    pub vm_stored: bool,
    pub vm: Option<&'a VirtualMachineStatus>,
    pub vmi: Option<&'a VirtualMachineInstanceStatus>,
    /// The VMI's `spec` (JSON): what the running instance was started with.
    pub vmi_spec: Option<&'a Value>,
    /// The PVCs of the disks' DataVolumes that exist (CDI names a DataVolume's PVC like the
    /// DataVolume: `<wukong>-<disk>`).
    pub volumes: &'a [VolumeObservation],
}

/// A request the API server refused for good (a 4xx: the schema, a webhook, RBAC, a
/// StorageClass that cannot expand): which condition it holds down, why, and the server's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `NetworksReady` (a NAD), `VirtualMachineReady` (the VM, its Secret) or `Ready` (a disk).
    pub condition: &'static str,
    /// `ApplyFailed`, `DeleteFailed` or `ExpansionFailed`.
    pub reason: Reason,
    /// What was asked and what the API server answered, e.g. `apply VirtualMachine ns/x-vm:
    /// admission webhook "..." denied the request: ...`.
    pub message: String,
}

impl Failure {
    fn verdict(&self) -> Verdict {
        Verdict { ready: false, reason: self.reason, message: self.message.clone() }
    }
}

/// The first failure that holds `condition` down.
fn failure_of<'a>(failures: &'a [Failure], condition: &str) -> Option<&'a Failure> {
    failures.iter().find(|f| f.condition == condition)
}

/// One disk's DataVolume and the PVC behind it, as the shell found them (either may be absent:
/// CDI makes no PVC for a DataVolume whose storage it cannot resolve).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeObservation {
    /// The DataVolume's (and its PVC's) name.
    pub name: String,
    /// The PVC's `status.phase` is `Bound`.
    pub bound: bool,
    /// The PVC's `status.capacity.storage`, when reported.
    pub size: Option<String>,
    /// The DataVolume's `status.phase`, when CDI reports one.
    pub phase: Option<String>,
    /// The DataVolume's `status.progress` (`45.20%`), while it imports.
    pub progress: Option<String>,
}

/// The status after a reconcile of a valid Wukong.
pub fn compute(valid: &Validated, decision: &Decision, observed: &Observed<'_>, now: &Time) -> WukongStatus {
    let wukong = valid.wukong();
    let vm_name = names::vm_name(names::name_of(wukong));
    let networks_verdict = match failure_of(observed.failures, conditions::NETWORKS_READY) {
        Some(f) => f.verdict(),
        None => decision.networks.clone(),
    };
    let vm_verdict = match (failure_of(observed.failures, conditions::VIRTUAL_MACHINE_READY), &decision.vm) {
        (Some(f), _) => f.verdict(),
        (None, VmAction::Hold(verdict)) => verdict.clone(),
        (None, VmAction::Apply(_)) => vm_verdict(wukong, &vm_name, observed),
    };
    let ready = if !networks_verdict.ready {
        networks_verdict.clone()
    } else if !vm_verdict.ready {
        vm_verdict.clone()
    } else if let Some(f) = failure_of(observed.failures, conditions::READY) {
        f.verdict()
    } else {
        Verdict { ready: true, reason: Reason::Reconciled, message: "the VM runs on all its networks".into() }
    };
    let previous = observed.previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let generation = wukong.metadata.generation;
    let printable = observed.vm.and_then(|s| s.printable_status.as_deref());
    let phase = match (printable, observed.vmi.and_then(|s| s.phase.as_deref())) {
        (Some("Running"), _) | (None, Some("Running")) => Phase::Running,
        (Some("Stopped"), _) => Phase::Stopped,
        _ if observed.vm_stored => Phase::Creating,
        _ => Phase::Pending,
    };
    let networks = network_statuses(valid, decision, observed.vmi);
    let mut conditions = vec![
        condition(conditions::NETWORKS_READY, &networks_verdict, generation, previous, now),
        condition(conditions::VIRTUAL_MACHINE_READY, &vm_verdict, generation, previous, now),
        condition(conditions::READY, &ready, generation, previous, now),
    ];
    // Present only while true: KubeVirt's RestartRequired is, and "no field ignored" says nothing.
    let extra = [
        (conditions::RESTART_REQUIRED, restart_verdict(wukong, &vm_name, decision, observed)),
        (conditions::FIELDS_IGNORED, ignored_verdict(wukong)),
    ];
    for (type_, verdict) in extra {
        if let Some(v) = verdict {
            conditions.push(condition(type_, &v, generation, previous, now));
        }
    }
    WukongStatus {
        phase: Some(phase),
        vm_name: observed.vm_stored.then_some(vm_name),
        node_name: observed.vmi.and_then(|s| s.node_name.clone()),
        observed_generation: generation,
        conditions,
        networks_attached: Some(if networks_verdict.ready {
            attached_count(&networks)
        } else {
            networks_verdict.reason.as_str().to_string()
        }),
        networks,
        volumes: volume_statuses(wukong, observed.volumes),
        pending_changes: decision.pending.clone(),
    }
}

/// `RestartRequired` (present only while true): KubeVirt reports it on the VM, or a change of
/// the spec reaches the running VM only at a restart ([`crate::liveupdate::classify`], which
/// also knows the restarts KubeVirt does not report). The message names the parts of the VM the
/// instance predates ([`restart::pending`]), KubeVirt's words, each change waiting for a
/// restart, and the interface names kept from the original operator.
fn restart_verdict(wukong: &Wukong, vm_name: &str, decision: &Decision, observed: &Observed<'_>) -> Option<Verdict> {
    // KubeVirt keeps its condition on a stopped VM until the next start; wukong's goes with the
    // instance.
    let kubevirt = observed
        .vm
        .filter(|_| observed.vmi_spec.is_some())
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "RestartRequired" && c.status == "True"));
    let waiting: Vec<String> = decision
        .pending
        .iter()
        .filter(|c| c.applies == Applies::Restart)
        .map(|c| format!("{}: {}", c.subject, c.change))
        .collect();
    if kubevirt.is_none() && waiting.is_empty() {
        return None;
    }
    let namespace = names::namespace_of(wukong);
    let parts = match (&decision.vm, observed.vmi_spec) {
        (VmAction::Apply(vm), Some(vmi_spec)) => restart::pending(vm, vmi_spec),
        _ => Vec::new(),
    };
    let mut message = if parts.is_empty() {
        format!(
            "the running instance of VirtualMachine {namespace}/{vm_name} gets changes only when KubeVirt starts a new instance (virtctl restart {vm_name}); wukong does not restart a running VM"
        )
    } else {
        format!(
            "the running instance of VirtualMachine {namespace}/{vm_name} predates its {}: they apply when KubeVirt starts a new instance (virtctl restart {vm_name}); wukong does not restart a running VM",
            parts.join(", ")
        )
    };
    match kubevirt {
        Some(c) => message.push_str(&format!(
            "; KubeVirt reports RestartRequired ({})",
            c.message.as_deref().filter(|m| !m.is_empty()).unwrap_or("no message")
        )),
        None => message.push_str("; KubeVirt does not report RestartRequired for them"),
    }
    if !waiting.is_empty() {
        message.push_str(&format!("; waiting for a restart: {}", waiting.join("; ")));
    }
    let kept = &decision.takeover.interface_names;
    if !kept.is_empty() {
        let pairs: Vec<String> = kept.iter().map(|(net, name)| format!("{net} as {name}")).collect();
        message.push_str(&format!(
            "; networks keep the names the original operator gave them while the VM runs ({}): stop the VM (startStrategy.runStrategy: Halted) and start it again to rename them",
            pairs.join(", ")
        ));
    }
    Some(Verdict { ready: true, reason: Reason::RestartRequired, message })
}

/// `FieldsIgnored` while the spec uses fields wukong ignores, with the warnings that
/// `kubectl apply` and `wukong render` give; `None` otherwise.
fn ignored_verdict(wukong: &Wukong) -> Option<Verdict> {
    let warnings = warnings::of(wukong);
    (!warnings.is_empty()).then(|| Verdict { ready: true, reason: Reason::FieldsIgnored, message: warnings.join("; ") })
}

/// `attached/secondary`, for the printer column (the pod network is not counted); a network
/// problem shows as its reason instead.
fn attached_count(networks: &[NetworkStatus]) -> String {
    let secondary = networks.iter().filter(|n| n.name != names::POD_NETWORK);
    let (total, attached) = secondary.fold((0, 0), |(t, a), n| (t + 1, a + usize::from(n.nad_name.is_some())));
    format!("{attached}/{total}")
}

/// One entry per disk backed by a DataVolume, in spec order (containerDisks have no volume to
/// report): its PVC, whether it is bound, and its size (the observed capacity, else the size the
/// spec asks for).
fn volume_statuses(wukong: &Wukong, observed: &[VolumeObservation]) -> Vec<VolumeStatus> {
    let name = names::name_of(wukong);
    disks::plan(wukong)
        .into_iter()
        .filter_map(|disk| {
            let pvc = disk.data_volume(name)?;
            let seen = observed.iter().find(|v| v.name == pvc);
            Some(VolumeStatus {
                name: disk.name.clone(),
                bound: Some(seen.is_some_and(|v| v.bound)),
                size: seen.and_then(|v| v.size.clone()).or(disk.size),
                pvc_name: Some(pvc),
                phase: seen.and_then(|v| v.phase.clone()),
                progress: seen.and_then(|v| v.progress.clone()).filter(|p| !p.is_empty() && p != "N/A"),
            })
        })
        .collect()
}

/// The status of a Wukong whose spec breaks the rules: nothing is written but this. `previous`
/// as in [`Observed::previous`].
pub fn invalid(wukong: &Wukong, invalid: &Invalid, previous: Option<&WukongStatus>, now: &Time) -> WukongStatus {
    undecodable(wukong.metadata.generation, &invalid.summary(), previous, now)
}

/// The status of a Wukong whose stored object does not even decode (stored under an older CRD):
/// `problem` says why. Nothing is written but this.
pub fn undecodable(
    generation: Option<i64>,
    problem: &str,
    previous: Option<&WukongStatus>,
    now: &Time,
) -> WukongStatus {
    let old = previous.cloned().unwrap_or_default();
    let previous = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let ready = Verdict { ready: false, reason: Reason::InvalidSpec, message: problem.to_string() };
    let unknown = |type_: &str| {
        let mut c = condition(type_, &ready, generation, previous, now);
        c.status = "Unknown".into();
        c.message = "not evaluated: the spec is invalid (see Ready)".into();
        if let Some(p) = previous.iter().find(|p| p.type_ == type_ && p.status == "Unknown") {
            c.last_transition_time = p.last_transition_time.clone();
        }
        c
    };
    WukongStatus {
        phase: Some(Phase::Error),
        observed_generation: generation,
        conditions: vec![
            unknown(conditions::NETWORKS_READY),
            unknown(conditions::VIRTUAL_MACHINE_READY),
            condition(conditions::READY, &ready, generation, previous, now),
        ],
        ..old
    }
}

fn vm_verdict(wukong: &Wukong, vm_name: &str, observed: &Observed<'_>) -> Verdict {
    let namespace = names::namespace_of(wukong);
    let failure = observed.vm.filter(|s| s.ready != Some(true)).and_then(|s| kubevirt_failure(s, observed.vmi));
    if let Some(failure) = failure {
        return Verdict {
            ready: false,
            reason: Reason::VirtualMachineFailure,
            message: format!("KubeVirt cannot run VirtualMachine {namespace}/{vm_name}: {failure}"),
        };
    }
    match observed.vm {
        Some(s) if s.ready == Some(true) => Verdict {
            ready: true,
            reason: Reason::VirtualMachineRunning,
            message: match observed.vmi.and_then(|v| v.node_name.as_deref()) {
                Some(node) => format!("VirtualMachine {namespace}/{vm_name} is running on node {node}"),
                None => format!("VirtualMachine {namespace}/{vm_name} is running"),
            },
        },
        Some(s) if s.printable_status.as_deref() == Some("Stopped") => Verdict {
            ready: false,
            reason: Reason::VirtualMachineStopped,
            message: format!(
                "VirtualMachine {namespace}/{vm_name} is stopped (runStrategy {})",
                crate::vm::run_strategy(&wukong.spec).as_str()
            ),
        },
        Some(s) if s.printable_status.is_some() => Verdict {
            ready: false,
            reason: Reason::VirtualMachineNotRunning,
            message: format!(
                "VirtualMachine {namespace}/{vm_name} is stored; KubeVirt reports it {}{}",
                s.printable_status.as_deref().unwrap_or_default(),
                not_ready_detail(&s.conditions)
            ),
        },
        _ => Verdict {
            ready: false,
            reason: Reason::VirtualMachineNotRunning,
            message: format!(
                "VirtualMachine {namespace}/{vm_name} is stored; KubeVirt has not reported a status for it (is KubeVirt running?)"
            ),
        },
    }
}

/// KubeVirt's printable statuses that say the VM cannot start as it is, whatever the reason.
const FAILED_PRINTABLE_STATUSES: &[&str] = &[
    "ErrorUnschedulable",
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrorPvcNotFound",
    "ErrorDataVolumeNotFound",
    "DataVolumeError",
    "CrashLoopBackOff",
];

/// What KubeVirt says when it cannot run the VM, in its words: a `Failure` condition, a
/// `Synchronized=False` condition (e.g. `FailedCreate: failed to render launch manifest: ...`)
/// on the VM or its instance, or an error printable status.
fn kubevirt_failure(vm: &VirtualMachineStatus, vmi: Option<&VirtualMachineInstanceStatus>) -> Option<String> {
    let failing = |c: &&KubeVirtCondition| {
        (c.type_ == "Failure" && c.status == "True") || (c.type_ == "Synchronized" && c.status == "False")
    };
    let vmi_conditions = vmi.map(|v| v.conditions.as_slice()).unwrap_or_default();
    let said = vm.conditions.iter().find(failing).or_else(|| vmi_conditions.iter().find(failing));
    let printable = vm.printable_status.as_deref().filter(|p| FAILED_PRINTABLE_STATUSES.contains(p));
    match (said, printable) {
        (Some(c), _) => Some(condition_words(c)),
        (None, Some(p)) => Some(format!("{p}{}", not_ready_detail(&vm.conditions))),
        (None, None) => None,
    }
}

/// `reason: message` of a KubeVirt condition.
fn condition_words(c: &KubeVirtCondition) -> String {
    match (c.reason.as_deref().filter(|r| !r.is_empty()), c.message.as_deref().filter(|m| !m.is_empty())) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(x), None) | (None, Some(x)) => x.to_string(),
        (None, None) => format!("{}={}", c.type_, c.status),
    }
}

/// Why KubeVirt says the VM is not ready yet (`; PodNotExists: virt-launcher pod has not yet
/// been scheduled`), from its `Ready=False` condition; empty when it says nothing.
fn not_ready_detail(conditions: &[KubeVirtCondition]) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "False")
        .map(|c| format!(" ({})", condition_words(c)))
        .unwrap_or_default()
}

/// A condition, keeping the previous transition time when its status did not change.
fn condition(type_: &str, verdict: &Verdict, generation: Option<i64>, previous: &[Condition], now: &Time) -> Condition {
    let status = if verdict.ready { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: verdict.reason.as_str().to_string(),
        message: verdict.message.clone(),
        observed_generation: generation,
        last_transition_time,
    }
}

fn network_statuses(
    valid: &Validated,
    decision: &Decision,
    vmi: Option<&VirtualMachineInstanceStatus>,
) -> Vec<NetworkStatus> {
    let wukong = valid.wukong();
    // The NADs in use are those the decision's plan attached (the fallback attaches none).
    let plan = plan::plan(wukong, decision.multus);
    // The VMI reports interfaces by their KubeVirt name (the original's, while kept).
    let from_vmi = |name: &str| {
        let name = decision.takeover.interface_name(name);
        vmi.and_then(|s| s.interfaces.iter().find(|i| i.name.as_deref() == Some(name)))
    };
    let mut out = vec![with_vmi(
        NetworkStatus { name: names::POD_NETWORK.into(), ..Default::default() },
        from_vmi(names::POD_NETWORK),
    )];
    for net in &plan.networks {
        let nad_name = match &net.attachment {
            Attachment::Generated(nad) => Some(decision.swapped_nads.get(net.name()).unwrap_or(nad).to_string()),
            Attachment::Existing(nad) => Some(nad.to_string()),
            Attachment::Fallback => None,
        };
        let status = NetworkStatus {
            name: net.name().to_string(),
            nad_name,
            mac_address: (net.attachment != Attachment::Fallback).then(|| net.mac.clone()),
            ..Default::default()
        };
        out.push(with_vmi(status, from_vmi(net.name())));
    }
    out
}

/// Fills interface, IP and MAC from the VMI's report. IPs may come with or without a prefix
/// length (guest agent vs. pod interface); status shows the bare address.
fn with_vmi(mut status: NetworkStatus, iface: Option<&VmiInterface>) -> NetworkStatus {
    if let Some(i) = iface {
        status.interface = i.interface_name.clone();
        status.ip_address = i
            .ip_address
            .as_deref()
            .or_else(|| i.ip_addresses.first().map(String::as_str))
            .map(|ip| ip.split('/').next().unwrap_or(ip).to_string());
        if let Some(mac) = &i.mac {
            status.mac_address = Some(mac.to_ascii_lowercase());
        }
        status.link_state = i.link_state.clone().filter(|l| !l.is_empty());
    }
    status
}

/// A condition that changed between two statuses, for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub condition: String,
    pub reason: String,
    pub message: String,
    /// A Warning event (something needs attention) rather than a Normal one.
    pub warning: bool,
}

/// The events one status change deserves: one per condition whose status or reason changed,
/// and only one per reason (Ready repeats the reason of the condition that holds it back). The
/// event of a reason carries the message of the last condition with it: Ready's, which for
/// InvalidSpec is the one that says what to fix.
pub fn transitions(previous: Option<&WukongStatus>, next: &WukongStatus) -> Vec<Transition> {
    let before = previous.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut out: Vec<Transition> = Vec::new();
    for c in &next.conditions {
        let changed = !before.iter().any(|p| p.type_ == c.type_ && p.status == c.status && p.reason == c.reason);
        if !changed {
            continue;
        }
        let transition = Transition {
            condition: c.type_.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            warning: is_warning(&c.reason),
        };
        match out.iter_mut().find(|t| t.reason == c.reason) {
            Some(earlier) => earlier.message = transition.message,
            None => out.push(transition),
        }
    }
    out
}

fn is_warning(reason: &str) -> bool {
    [
        Reason::MultusNotInstalled,
        Reason::NadConflict,
        Reason::NadNotFound,
        Reason::NadNamespaceForbidden,
        Reason::WaitingForNetworks,
        Reason::KubeVirtNotInstalled,
        Reason::VirtualMachineConflict,
        Reason::BindingNotRegistered,
        Reason::VirtualMachineFailure,
        Reason::InvalidSpec,
        Reason::SecretNotFound,
        Reason::SecretConflict,
        Reason::ApiError,
        Reason::ApplyFailed,
        Reason::DeleteFailed,
        Reason::ExpansionFailed,
        Reason::FieldsIgnored,
    ]
    .iter()
    .any(|r| r.as_str() == reason)
}

#[cfg(test)]
mod tests;
