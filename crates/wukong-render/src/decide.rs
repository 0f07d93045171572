//! The controller's decisions, as a pure function of the spec and the facts the shell observed:
//! which NADs to apply and delete, whether to apply the VM, and why.
//!
//! This is the behaviour table of DESIGN §4; every row is a unit test below.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;
use wukong_api::PendingChange;
use wukong_api::conditions::Reason;
use wukong_api::kubevirt::VirtualMachine;
use wukong_api::nad::NetworkAttachmentDefinition;

pub use crate::index::LiveVm;
pub use crate::kinds::Kinds;

use crate::capabilities::KubeVirtCapabilities;
use crate::cni::CniVersion;
use crate::legacy::{self, Takeover};
use crate::liveupdate::{self, Instance, Template};
use crate::plan::{Attachment, Binding, NadRef, NetworkPlan};
use crate::{Validated, cloudinit, nad, names, plan, vm};

/// Whether an object with the name wukong wants exists, and whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Presence {
    #[default]
    Absent,
    /// Exists and is controlled by this Wukong.
    Ours,
    /// Exists and is not controlled by this Wukong: never touched.
    Foreign,
}

/// The Secret named by `sshKeySecret`, as the shell found it: whether it exists (its metadata
/// only; wukong never reads a user's Secret: KubeVirt gives the keys to the guest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SshKeys {
    /// The spec names no `sshKeySecret` (the shell did not look).
    #[default]
    NotNamed,
    /// The Secret exists.
    Found,
    /// The spec names a Secret that does not exist: the VM is held back.
    SecretNotFound,
}

/// What the shell observed before deciding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub kinds: Kinds,
    /// Every generated NAD name of the plan, and what exists under it.
    pub generated_nads: BTreeMap<String, Presence>,
    /// Every NAD named by `nadName` (in an allowed namespace), and whether it exists.
    pub named_nads: BTreeMap<NadRef, bool>,
    /// NADs labelled as generated for this Wukong and controlled by it.
    pub owned_nads: BTreeSet<String>,
    /// The attachment annotation ([`wukong_api::labels::ATTACHMENT`]) of the owned NADs that
    /// carry one (an older wukong wrote none).
    pub nad_attachments: BTreeMap<String, String>,
    /// What exists under the VM's name.
    pub vm: Presence,
    /// What the VM that exists and is ours uses (its NADs, its cloud-init Secrets, its template).
    pub live_vm: Option<LiveVm>,
    /// The keys of `sshKeySecret` ([`wanted_ssh_key_secret`] names it).
    pub ssh_keys: SshKeys,
    /// What exists under the cloud-init Secret's name (`<wukong>-cloudinit`).
    pub cloud_init_secret: Presence,
    /// The live object (JSON) under every generated NAD name that is [`Presence::Foreign`]:
    /// the original operator's NADs are recognized from it ([`legacy::is_original_nad`]).
    pub foreign_nads: BTreeMap<String, Value>,
    /// The live VM (JSON), when it is [`Presence::Ours`]: what the original operator wrote in it
    /// is taken over ([`legacy::takeover`]).
    pub live_vm_object: Option<Arc<Value>>,
    /// An instance (VMI) of the VM exists.
    pub vm_instance: bool,
    /// The VM's running instance (its VMI, read with [`Instance::from_vmi`]); `None` when none
    /// runs.
    pub instance: Option<Instance>,
    /// What the cluster's KubeVirt can do, from its KubeVirt CR; `None` when no CR could be read
    /// (then nothing is held back for it: KubeVirt's own status tells).
    pub kubevirt: Option<KubeVirtCapabilities>,
}

/// The controller's settings that shape decisions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub cni_version: CniVersion,
    /// Namespaces other than the Wukong's own that `nadName` may point into.
    pub nad_namespaces: BTreeSet<String>,
}

/// A condition's verdict: ready or not, why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
}

/// What to do with the VirtualMachine.
#[derive(Debug, Clone, PartialEq)]
pub enum VmAction {
    /// Apply this VM.
    Apply(Box<VirtualMachine>),
    /// Neither create nor change the VM, for this reason.
    Hold(Verdict),
}

/// The decision of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// NADs to apply, before the VM.
    pub apply_nads: Vec<NetworkAttachmentDefinition>,
    /// The cloud-init Secret (`<wukong>-cloudinit`) to apply before the VM: only when the VM is
    /// applied and needs cloud-init.
    pub apply_secret: Option<Secret>,
    /// Generated NADs no longer wanted, deleted after the VM.
    pub delete_nads: Vec<String>,
    /// The cloud-init Secret is ours and no longer wanted: deleted after the VM.
    pub delete_secret: bool,
    pub vm: VmAction,
    pub networks: Verdict,
    /// Whether secondary networks were planned through Multus (false: the pod-network fallback).
    pub multus: bool,
    /// Generated NADs the original operator created, applied now as wukong's own.
    pub adopted_nads: Vec<String>,
    /// A JSON patch (RFC 6902) for the live VM, sent before the VM is applied: what the original
    /// operator wrote there that server-side apply cannot remove ([`legacy::vm_patch`]).
    pub vm_patch: Vec<Value>,
    /// How the VM is rendered over the live one ([`legacy::takeover`]).
    pub takeover: Takeover,
    /// Generated networks whose NAD is not `<wukong>-<network>-nad`: a running instance still
    /// uses that one with another attachment ([`plan::place`]).
    pub swapped_nads: BTreeMap<String, NadRef>,
    /// What the running instance does not have yet of the VM applied, and how each change
    /// reaches it ([`liveupdate::classify`]); empty when no instance runs or the VM is held.
    pub pending: Vec<PendingChange>,
}

/// The names of the NADs wukong would generate for this Wukong (the shell asks the API server
/// about exactly these), and the NADs named by `nadName` in namespaces the policy allows.
pub fn wanted_nads(valid: &Validated, policy: &Policy) -> (Vec<String>, Vec<NadRef>) {
    let wukong = valid.wukong();
    let plan = plan::plan(wukong, true);
    let generated = plan.generated().flat_map(|(net, _)| plan::nad_names(wukong, net)).collect();
    let named = plan.existing().map(|(_, nad)| nad.clone()).filter(|nad| allowed(wukong, policy, nad)).collect();
    (generated, named)
}

/// The Secret whose values are the SSH public keys, when the spec names one: the shell checks
/// that it exists (in the Wukong's namespace) and reports [`SshKeys::Found`] or
/// [`SshKeys::SecretNotFound`].
pub fn wanted_ssh_key_secret(valid: &Validated) -> Option<&str> {
    valid.wukong().spec.ssh_key_secret.as_deref()
}

fn allowed(wukong: &wukong_api::Wukong, policy: &Policy, nad: &NadRef) -> bool {
    nad.namespace == names::namespace_of(wukong) || policy.nad_namespaces.contains(&nad.namespace)
}

/// Decides, from the validated spec and the facts, what the controller does (DESIGN §4).
pub fn decide(valid: &Validated, facts: &Facts, policy: &Policy) -> Decision {
    let wukong = valid.wukong();
    let namespace = names::namespace_of(wukong);
    let mut plan = plan::plan(wukong, facts.kinds.nad);
    let takeover = legacy::takeover(wukong, &plan, facts.live_vm_object.as_deref(), facts.vm_instance);
    let running = facts.instance.as_ref();
    if let Some(running) = running {
        // The instance names its networks as the VM did (the original operator's names, while
        // taken over).
        let mut by_interface = running.nads(namespace);
        let running_nads = plan
            .networks
            .iter()
            .filter_map(|n| Some((n.name().to_string(), by_interface.remove(takeover.interface_name(n.name()))?)))
            .collect();
        let owned =
            facts.owned_nads.iter().map(|name| (name.clone(), facts.nad_attachments.get(name).cloned())).collect();
        plan::place(&mut plan, wukong, &running_nads, &owned);
    }
    let swapped_nads = plan
        .generated()
        .filter(|(net, nad)| nad.name != names::nad_name(names::name_of(wukong), net.name()))
        .map(|(net, nad)| (net.name().to_string(), nad.clone()))
        .collect();
    // A foreign NAD that is exactly the original operator's rendering is adopted.
    let adopted_nads: Vec<String> = plan
        .generated()
        .filter(|(net, nad)| {
            facts.generated_nads.get(&nad.name) == Some(&Presence::Foreign)
                && facts.foreign_nads.get(&nad.name).is_some_and(|live| legacy::is_original_nad(net.spec, live))
        })
        .map(|(_, nad)| nad.name.clone())
        .collect();
    let foreign = |name: &str| {
        facts.generated_nads.get(name) == Some(&Presence::Foreign) && !adopted_nads.iter().any(|a| a == name)
    };
    let networks = networks_verdict(wukong, &plan, facts, policy, &foreign);

    let apply_nads = plan
        .generated()
        .filter(|(_, nad)| !foreign(&nad.name))
        .map(|(net, nad_ref)| nad::nad(wukong, net, nad_ref, policy.cni_version))
        .collect();
    let wanted: BTreeSet<&str> = plan.generated().map(|(_, nad)| nad.name.as_str()).collect();

    let vm_name = names::vm_name(names::name_of(wukong));
    let vm = if !facts.kinds.vm {
        VmAction::Hold(Verdict {
            ready: false,
            reason: Reason::KubeVirtNotInstalled,
            message: "the VirtualMachine CRD (kubevirt.io/v1) is not installed: install KubeVirt; the networks are reconciled meanwhile".into(),
        })
    } else if facts.vm == Presence::Foreign {
        VmAction::Hold(Verdict {
            ready: false,
            reason: Reason::VirtualMachineConflict,
            message: format!(
                "VirtualMachine {vm_name} exists and is not controlled by this Wukong; it is left untouched: rename the Wukong or delete that VirtualMachine"
            ),
        })
    } else if facts.cloud_init_secret == Presence::Foreign && cloudinit::needed(wukong, &plan) {
        VmAction::Hold(Verdict {
            ready: false,
            reason: Reason::SecretConflict,
            message: format!(
                "Secret {}/{} exists and is not controlled by this Wukong; it is left untouched and the VM, which would boot with it, is not created: delete that Secret or rename the Wukong",
                names::namespace_of(wukong),
                cloudinit::secret_name(names::name_of(wukong))
            ),
        })
    } else if let Some(verdict) = keeps_networks_without_multus(facts, &vm_name) {
        VmAction::Hold(verdict)
    } else if let (Some(secret), SshKeys::SecretNotFound) = (&wukong.spec.ssh_key_secret, &facts.ssh_keys) {
        VmAction::Hold(Verdict {
            ready: false,
            reason: Reason::SecretNotFound,
            message: format!(
                "Secret {}/{secret} named by sshKeySecret does not exist: create it with the SSH public keys as its values",
                names::namespace_of(wukong)
            ),
        })
    } else if blocks_vm(networks.reason) {
        VmAction::Hold(Verdict {
            ready: false,
            reason: Reason::WaitingForNetworks,
            message: format!(
                "VirtualMachine {vm_name} is not created or changed until its networks are ready ({}): KubeVirt cannot start the VM without them",
                networks.reason
            ),
        })
    } else if let Some(verdict) = missing_binding(&plan, facts.kubevirt.as_ref(), &vm_name) {
        VmAction::Hold(verdict)
    } else {
        let mut desired = vm::virtual_machine_over(wukong, &plan, &takeover);
        if let Some(live) = &facts.live_vm {
            // A network the spec still names is never unplugged, under its own name or the one
            // the original operator gave its interface (`<wukong>-<network>-nad`): what wukong
            // renders differently for it waits for a restart (see `legacy`).
            let original: Vec<String> =
                wukong.spec.networks.iter().map(|n| names::nad_name(names::name_of(wukong), &n.name)).collect();
            let spec_networks = wukong
                .spec
                .networks
                .iter()
                .map(|n| n.name.as_str())
                .chain(original.iter().map(String::as_str))
                .collect();
            liveupdate::carry_unplugs(&mut desired, &live.template, running, &spec_networks);
        }
        VmAction::Apply(Box::new(desired))
    };
    let vm_patch = match (&vm, facts.live_vm_object.as_deref()) {
        (VmAction::Apply(_), Some(live)) => legacy::vm_patch(live, vm::run_strategy(&wukong.spec).as_str()),
        _ => Vec::new(),
    };
    let apply_secret = match &vm {
        VmAction::Hold(_) => None,
        VmAction::Apply(_) => cloudinit::secret(wukong, &plan),
    };
    // What the VM uses once this reconcile is done: the new VM when it is applied (with the
    // interfaces KubeVirt is unplugging), else the live one. A child it still uses is never
    // deleted (a held VM keeps its NADs and its Secret), nor a NAD the running instance names
    // (a migration target is made from it).
    let mut in_use = match &vm {
        VmAction::Apply(desired) => LiveVm {
            nads: desired
                .spec
                .template
                .spec
                .networks
                .iter()
                .filter_map(|n| Some(NadRef::parse(&n.multus.as_ref()?.network_name, namespace)))
                .collect(),
            ..LiveVm::default()
        },
        VmAction::Hold(_) => facts.live_vm.clone().unwrap_or_default(),
    };
    in_use.nads.extend(running.iter().flat_map(|r| r.nads(namespace).into_values()));
    // While KubeVirt has a migration pending, the instance's pod may still be attached with a
    // NAD the instance no longer names (a new NAD under LiveUpdateNADRef): nothing is deleted.
    let migrating = running.is_some_and(|r| r.migration_required.is_some());
    let delete_nads = if facts.kinds.nad && !migrating {
        facts
            .owned_nads
            .iter()
            .filter(|n| !wanted.contains(n.as_str()))
            .filter(|n| !in_use.nads.contains(&NadRef { namespace: namespace.to_string(), name: n.to_string() }))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let pending = match (&vm, running) {
        (VmAction::Apply(desired), Some(running)) => liveupdate::classify(
            &Template::of(&desired.spec.template.spec),
            running,
            &facts.kubevirt.clone().unwrap_or_default(),
        ),
        _ => Vec::new(),
    };
    let secret_name = cloudinit::secret_name(names::name_of(wukong));
    let delete_secret = facts.cloud_init_secret == Presence::Ours
        && matches!(vm, VmAction::Apply(_))
        && apply_secret.is_none()
        && !in_use.secrets.contains(&secret_name);
    Decision {
        apply_nads,
        apply_secret,
        delete_nads,
        delete_secret,
        vm,
        networks,
        multus: facts.kinds.nad,
        adopted_nads,
        vm_patch,
        takeover,
        swapped_nads,
        pending,
    }
}

/// A hold when the NAD kind is not served but the VM that exists uses NADs: planning the
/// pod-network fallback is for creating a VM on a cluster without Multus, never for taking its
/// secondary networks from a VM that has them (Multus may be being reinstalled).
fn keeps_networks_without_multus(facts: &Facts, vm_name: &str) -> Option<Verdict> {
    let live = facts.live_vm.as_ref().filter(|_| !facts.kinds.nad && facts.vm == Presence::Ours)?;
    if live.nads.is_empty() {
        return None;
    }
    let nads: Vec<String> = live.nads.iter().map(ToString::to_string).collect();
    Some(Verdict {
        ready: false,
        reason: Reason::MultusNotInstalled,
        message: format!(
            "VirtualMachine {vm_name} keeps its secondary networks ({}) while the NetworkAttachmentDefinition kind is not served: it is not changed until Multus is back",
            nads.join(", ")
        ),
    })
}

/// The binding plugin a network's interface names, when it is one KubeVirt must register.
fn binding_plugin(binding: Binding) -> Option<&'static str> {
    match binding {
        Binding::Macvtap => Some(crate::vm::MACVTAP_BINDING),
        Binding::Bridge | Binding::Sriov => None,
    }
}

/// A hold when an attached network needs a binding plugin the KubeVirt CR does not register:
/// KubeVirt's admission would accept the VM and virt-controller would never start it.
fn missing_binding(plan: &NetworkPlan<'_>, kubevirt: Option<&KubeVirtCapabilities>, vm_name: &str) -> Option<Verdict> {
    let kubevirt = kubevirt?;
    let mut missing: Vec<(&str, &str)> = plan
        .attached()
        .filter_map(|net| binding_plugin(net.binding).map(|plugin| (net.name(), plugin)))
        .filter(|(_, plugin)| !kubevirt.registers(plugin))
        .collect();
    missing.dedup_by_key(|(_, plugin)| *plugin);
    let (network, plugin) = *missing.first()?;
    Some(Verdict {
        ready: false,
        reason: Reason::BindingNotRegistered,
        message: format!(
            "network {network} needs KubeVirt's network binding plugin {plugin}, which KubeVirt CR {} does not register (spec.configuration.network.binding.{plugin}): register it (for {plugin}: {{domainAttachmentType: tap}}, with KubeVirt's macvtap CNI and device plugin on the nodes); VirtualMachine {vm_name} is not created or changed until then, as KubeVirt could not start it",
            kubevirt.source
        ),
    })
}

/// Network problems the VM cannot start with.
fn blocks_vm(reason: Reason) -> bool {
    matches!(reason, Reason::NadConflict | Reason::NadNotFound | Reason::NadNamespaceForbidden)
}

fn networks_verdict(
    wukong: &wukong_api::Wukong,
    plan: &NetworkPlan<'_>,
    facts: &Facts,
    policy: &Policy,
    foreign: &dyn Fn(&str) -> bool,
) -> Verdict {
    if plan.networks.is_empty() {
        return Verdict {
            ready: true,
            reason: Reason::PodNetworkOnly,
            message: "the VM uses only the pod network".into(),
        };
    }
    if !facts.kinds.nad {
        let fallen: Vec<&str> = plan.networks.iter().map(|n| n.name()).collect();
        return Verdict {
            ready: false,
            reason: Reason::MultusNotInstalled,
            message: format!(
                "the NetworkAttachmentDefinition CRD (k8s.cni.cncf.io/v1) is not installed: networks {} fell back to the pod network; install Multus and they are attached",
                fallen.join(", ")
            ),
        };
    }
    let mut problems: Vec<(Reason, String)> = Vec::new();
    for net in &plan.networks {
        match &net.attachment {
            Attachment::Existing(nad) if !allowed(wukong, policy, nad) => problems.push((
                Reason::NadNamespaceForbidden,
                format!(
                    "network {} names NetworkAttachmentDefinition {nad} in namespace {}, which this controller does not allow: use a NAD in namespace {} or ask the operator to add {} to --nad-namespaces",
                    net.name(),
                    nad.namespace,
                    names::namespace_of(wukong),
                    nad.namespace
                ),
            )),
            Attachment::Existing(nad) if facts.named_nads.get(nad) != Some(&true) => problems.push((
                Reason::NadNotFound,
                format!("network {} names NetworkAttachmentDefinition {nad}, which does not exist: create it, or remove nadName to let wukong generate one", net.name()),
            )),
            Attachment::Generated(nad) if foreign(&nad.name) => problems.push((
                Reason::NadConflict,
                format!(
                    "NetworkAttachmentDefinition {nad} exists and is not controlled by this Wukong; it is left untouched: delete it, or rename network {}",
                    net.name()
                ),
            )),
            _ => {}
        }
    }
    if let Some(reason) = problems.iter().map(|(r, _)| *r).min_by_key(|r| match r {
        Reason::NadNamespaceForbidden => 0,
        Reason::NadConflict => 1,
        _ => 2,
    }) {
        let message = problems.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; ");
        return Verdict { ready: false, reason, message };
    }
    let attached: Vec<String> =
        plan.attached().filter_map(|n| n.nad().map(|nad| format!("{} ({nad})", n.name()))).collect();
    Verdict { ready: true, reason: Reason::NetworksAttached, message: format!("attached: {}", attached.join(", ")) }
}

#[cfg(test)]
mod tests;
