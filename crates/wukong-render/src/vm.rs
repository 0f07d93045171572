//! The KubeVirt VirtualMachine.
//!
//! Scheduling (`highAvailability`):
//! - `nodeSelector` and `tolerations` are copied to the VM template as they are.
//! - The VM template (and so the launcher pod, which KubeVirt labels like the VMI) carries the
//!   Wukong's own `metadata.labels`, except the keys wukong reserves (`vm.novasphere.dev/*` and
//!   `app.kubernetes.io/managed-by`), plus `vm.novasphere.dev/wukong: <name>`.
//! - `antiAffinity: true` adds a *preferred* pod anti-affinity (weight 100, topology
//!   `kubernetes.io/hostname`) against launcher pods carrying the same `app` label as the Wukong
//!   when it has one, else the same `vm.novasphere.dev/wukong` label. So Wukongs labelled
//!   `app: web` spread their VMs across nodes; a Wukong without `app` only repels its own
//!   launcher pods (the target pod of a live migration, say). Preferred, not required: a VM still
//!   starts when there are fewer nodes than VMs.
//! - `restartPolicy` and `startStrategy` give the run strategy ([`run_strategy`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use wukong_api::kubevirt::{
    AccessCredential, CloudInitNoCloudSource, ContainerDiskSource, Cpu, DataVolumeSource, DataVolumeTemplate,
    DataVolumeTemplateMetadata, Devices, Disk, DiskTarget, DomainSpec, Empty, Interface, LocalObjectReference, Memory,
    MultusNetwork, Network, PersistentVolumeClaimSource, PluginBinding, SecretSource, SshPropagationMethod,
    SshPublicKeyAccessCredential, SshPublicKeySource, TemplateMetadata, VirtualMachine, VirtualMachineInstanceSpec,
    VirtualMachineSpec, VirtualMachineTemplate, Volume,
};
use wukong_api::{RestartPolicy, RunStrategy, Wukong, WukongSpec, labels};

use crate::disks::{self, DiskSource, PlannedDisk};
use crate::legacy::Takeover;
use crate::plan::{Binding, NetworkPlan};
use crate::{cloudinit, names};

/// The network binding plugin of macvlan networks (KubeVirt's macvtap), which the KubeVirt CR
/// must register under `spec.configuration.network.binding`.
pub const MACVTAP_BINDING: &str = "macvtap";

/// The label whose value groups the VMs that `antiAffinity` spreads, when the Wukong has it.
pub const ANTI_AFFINITY_GROUP_LABEL: &str = "app";
/// Topology over which `antiAffinity` spreads VMs: one node.
pub const ANTI_AFFINITY_TOPOLOGY: &str = "kubernetes.io/hostname";

/// Annotation on the VM recording the Wukong's `osImage`.
pub const OS_IMAGE_ANNOTATION: &str = "vm.novasphere.dev/os-image";

/// The VM of a validated Wukong: the pod network (masquerade) first, then one Multus network per
/// attached secondary network, each with its binding and fixed MAC; the disks of [`disks::plan`]
/// and, when [`cloudinit::needed`], the `cloudinit` disk referencing the Secret
/// [`cloudinit::secret`] builds.
pub fn virtual_machine(wukong: &Wukong, plan: &NetworkPlan<'_>) -> VirtualMachine {
    virtual_machine_over(wukong, plan, &Takeover::default())
}

/// [`virtual_machine`] over a live VM the original operator wrote ([`crate::legacy::takeover`]):
/// its disks keep their PVCs and, while it runs, its networks keep their names.
pub fn virtual_machine_over(wukong: &Wukong, plan: &NetworkPlan<'_>, takeover: &Takeover) -> VirtualMachine {
    let name = names::name_of(wukong);
    let spec = &wukong.spec;
    let disks = disks::plan(wukong);
    let annotations: BTreeMap<String, String> =
        spec.os_image.iter().map(|i| (OS_IMAGE_ANNOTATION.to_string(), i.clone())).collect();
    // Network data must match the pod interface too (see `cloudinit`), so it gets a fixed MAC.
    let pod_mac = cloudinit::configures_network(plan).then(|| plan.pod_mac.clone());
    let (mut vm_networks, mut interfaces) = (
        vec![Network { name: names::POD_NETWORK.into(), pod: Some(Empty {}), ..Default::default() }],
        vec![Interface {
            name: names::POD_NETWORK.into(),
            masquerade: Some(Empty {}),
            mac_address: pod_mac,
            ..Default::default()
        }],
    );
    for net in plan.attached() {
        let Some(nad) = net.nad() else { continue };
        // A NAD in the VM's namespace is named bare, as KubeVirt resolves it there.
        let network_name =
            if nad.namespace == names::namespace_of(wukong) { nad.name.clone() } else { nad.to_string() };
        let interface_name = takeover.interface_name(net.name()).to_string();
        vm_networks.push(Network {
            name: interface_name.clone(),
            multus: Some(MultusNetwork { network_name }),
            ..Default::default()
        });
        let mut iface = Interface {
            name: interface_name,
            mac_address: Some(net.mac.clone()),
            state: net.spec.link_state.map(|l| l.as_str().to_string()),
            ..Default::default()
        };
        match net.binding {
            Binding::Bridge => iface.bridge = Some(Empty {}),
            Binding::Sriov => iface.sriov = Some(Empty {}),
            Binding::Macvtap => iface.binding = Some(PluginBinding { name: MACVTAP_BINDING.into() }),
        }
        interfaces.push(iface);
    }
    let cloud_init = cloudinit::needed(wukong, plan).then(|| cloud_init_volume(name, plan));
    let mut vm_disks = vm_disks(&disks);
    let mut volumes = volumes(name, &disks, takeover);
    if let Some(volume) = cloud_init {
        vm_disks.push(Disk {
            name: cloudinit::VOLUME.into(),
            disk: Some(DiskTarget { bus: Some("virtio".into()) }),
            boot_order: None,
        });
        volumes.push(volume);
    }
    let ha = spec.high_availability.as_ref();
    VirtualMachine {
        metadata: ObjectMeta {
            name: Some(names::vm_name(name)),
            namespace: Some(names::namespace_of(wukong).to_string()),
            labels: Some(names::child_labels(name, None)),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: names::owner_reference(wukong).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: VirtualMachineSpec {
            run_strategy: Some(run_strategy(spec).as_str().to_string()),
            data_volume_templates: data_volume_templates(name, &disks, takeover),
            template: VirtualMachineTemplate {
                metadata: Some(TemplateMetadata { labels: template_labels(wukong), annotations: BTreeMap::new() }),
                spec: VirtualMachineInstanceSpec {
                    domain: DomainSpec {
                        cpu: Some(Cpu { cores: u32::try_from(spec.cpu).unwrap_or(1) }),
                        memory: Some(Memory { guest: spec.memory.clone() }),
                        devices: Devices { disks: vm_disks, interfaces },
                    },
                    networks: vm_networks,
                    volumes,
                    node_selector: ha.map(|h| h.node_selector.clone()).unwrap_or_default(),
                    tolerations: ha.map(|h| h.tolerations.clone()).unwrap_or_default(),
                    affinity: (ha.and_then(|h| h.anti_affinity) == Some(true)).then(|| anti_affinity(wukong)),
                    access_credentials: spec.ssh_key_secret.iter().map(|s| ssh_keys_from(s)).collect(),
                },
            },
        },
        status: None,
    }
}

/// Whether a label key is wukong's own, never copied from the Wukong to the VM template.
pub fn reserved_label(key: &str) -> bool {
    key == labels::MANAGED_BY || key.starts_with("vm.novasphere.dev/")
}

/// The VM template's labels: the Wukong's own labels (reserved keys left out) and
/// `vm.novasphere.dev/wukong: <name>`.
pub fn template_labels(wukong: &Wukong) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = wukong
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(labels::WUKONG.to_string(), names::name_of(wukong).to_string());
    out
}

/// `antiAffinity: true`: prefer nodes without a launcher pod of the same group, the group being
/// the Wukong's `app` label when it has one, else the Wukong itself.
pub fn anti_affinity(wukong: &Wukong) -> Affinity {
    let template = template_labels(wukong);
    let group = match template.get_key_value(ANTI_AFFINITY_GROUP_LABEL) {
        Some((k, v)) => (k.clone(), v.clone()),
        None => (labels::WUKONG.to_string(), names::name_of(wukong).to_string()),
    };
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([group])),
                        ..LabelSelector::default()
                    }),
                    topology_key: ANTI_AFFINITY_TOPOLOGY.to_string(),
                    ..PodAffinityTerm::default()
                },
            }]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// The SSH public keys of Secret `secret`, which KubeVirt gives the guest's cloud-init
/// (NoCloud meta-data) when it starts an instance: wukong never reads them.
fn ssh_keys_from(secret: &str) -> AccessCredential {
    AccessCredential {
        ssh_public_key: Some(SshPublicKeyAccessCredential {
            source: SshPublicKeySource { secret: SecretSource { secret_name: secret.to_string() } },
            propagation_method: SshPropagationMethod { no_cloud: Some(Empty {}) },
        }),
    }
}

fn cloud_init_volume(wukong: &str, plan: &NetworkPlan<'_>) -> Volume {
    let secret = || Some(LocalObjectReference { name: cloudinit::secret_name(wukong) });
    Volume {
        name: cloudinit::VOLUME.into(),
        cloud_init_no_cloud: Some(CloudInitNoCloudSource {
            secret_ref: secret(),
            network_data_secret_ref: if cloudinit::configures_network(plan) { secret() } else { None },
        }),
        ..Default::default()
    }
}

/// KubeVirt's run strategy: `startStrategy.runStrategy` when set; else `autoStart: false` is
/// `Halted`; else `highAvailability.restartPolicy` (Always → Always, OnFailure → RerunOnFailure,
/// Never → Once); else `Always`.
pub fn run_strategy(spec: &WukongSpec) -> RunStrategyValue {
    let start = spec.start_strategy.as_ref();
    if let Some(explicit) = start.and_then(|s| s.run_strategy) {
        return RunStrategyValue::Strategy(explicit);
    }
    if start.and_then(|s| s.auto_start) == Some(false) {
        return RunStrategyValue::Strategy(RunStrategy::Halted);
    }
    match spec.high_availability.as_ref().and_then(|h| h.restart_policy) {
        Some(RestartPolicy::OnFailure) => RunStrategyValue::Strategy(RunStrategy::RerunOnFailure),
        Some(RestartPolicy::Never) => RunStrategyValue::Once,
        Some(RestartPolicy::Always) | None => RunStrategyValue::Strategy(RunStrategy::Always),
    }
}

/// A run strategy KubeVirt understands; `Once` is not offered in the Wukong API directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStrategyValue {
    Strategy(RunStrategy),
    Once,
}

impl RunStrategyValue {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStrategyValue::Strategy(s) => s.as_str(),
            RunStrategyValue::Once => "Once",
        }
    }
}

fn vm_disks(disks: &[PlannedDisk]) -> Vec<Disk> {
    disks
        .iter()
        .map(|d| Disk {
            name: d.name.clone(),
            disk: Some(DiskTarget { bus: Some("virtio".into()) }),
            boot_order: d.boot.then_some(1),
        })
        .collect()
}

fn volumes(wukong: &str, disks: &[PlannedDisk], takeover: &Takeover) -> Vec<Volume> {
    disks
        .iter()
        .map(|d| match (&d.source, d.data_volume(wukong)) {
            _ if takeover.kept_claims.contains(&d.name) => Volume {
                name: d.name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimSource {
                    claim_name: names::data_volume_name(wukong, &d.name),
                }),
                ..Default::default()
            },
            (DiskSource::ContainerDisk { image }, _) => Volume {
                name: d.name.clone(),
                container_disk: Some(ContainerDiskSource { image: image.clone() }),
                ..Default::default()
            },
            (_, dv) => Volume {
                name: d.name.clone(),
                data_volume: Some(DataVolumeSource { name: dv.unwrap_or_default() }),
                ..Default::default()
            },
        })
        .collect()
}

fn data_volume_templates(wukong: &str, disks: &[PlannedDisk], takeover: &Takeover) -> Vec<DataVolumeTemplate> {
    disks
        .iter()
        .filter(|d| !takeover.kept_claims.contains(&d.name))
        .filter_map(|d| {
            Some(DataVolumeTemplate {
                metadata: DataVolumeTemplateMetadata { name: d.data_volume(wukong)? },
                spec: disks::data_volume_spec(d)?,
            })
        })
        .collect()
}
