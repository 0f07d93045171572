//! The KubeVirt VirtualMachine.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wukong_api::kubevirt::{
    ContainerDiskSource, Cpu, DataVolumeSource, DataVolumeTemplate, DataVolumeTemplateMetadata, Devices, Disk,
    DiskTarget, DomainSpec, Empty, Interface, Memory, MultusNetwork, Network, PluginBinding, TemplateMetadata,
    VirtualMachine, VirtualMachineInstanceSpec, VirtualMachineSpec, VirtualMachineTemplate, Volume,
};
use wukong_api::{RestartPolicy, RunStrategy, Wukong, WukongSpec, labels};

use crate::disks::{self, DiskSource, PlannedDisk};
use crate::names;
use crate::plan::{Binding, NetworkPlan};

/// Annotation on the VM recording the Wukong's `osImage`.
pub const OS_IMAGE_ANNOTATION: &str = "vm.novasphere.dev/os-image";

/// The VM of a validated Wukong: the pod network (masquerade) first, then one Multus network per
/// attached secondary network, each with its binding and fixed MAC.
pub fn virtual_machine(wukong: &Wukong, plan: &NetworkPlan<'_>) -> VirtualMachine {
    let name = names::name_of(wukong);
    let spec = &wukong.spec;
    let disks = disks::plan(wukong);
    let annotations: BTreeMap<String, String> =
        spec.os_image.iter().map(|i| (OS_IMAGE_ANNOTATION.to_string(), i.clone())).collect();
    let (mut vm_networks, mut interfaces) = (
        vec![Network { name: names::POD_NETWORK.into(), pod: Some(Empty {}), ..Default::default() }],
        vec![Interface { name: names::POD_NETWORK.into(), masquerade: Some(Empty {}), ..Default::default() }],
    );
    for net in plan.attached() {
        let Some(nad) = net.nad() else { continue };
        // A NAD in the VM's namespace is named bare, as KubeVirt resolves it there.
        let network_name =
            if nad.namespace == names::namespace_of(wukong) { nad.name.clone() } else { nad.to_string() };
        vm_networks.push(Network {
            name: net.name().to_string(),
            multus: Some(MultusNetwork { network_name }),
            ..Default::default()
        });
        let mut iface =
            Interface { name: net.name().to_string(), mac_address: Some(net.mac.clone()), ..Default::default() };
        match net.binding {
            Binding::Bridge => iface.bridge = Some(Empty {}),
            Binding::Sriov => iface.sriov = Some(Empty {}),
            Binding::Macvtap => iface.binding = Some(PluginBinding { name: "macvtap".into() }),
        }
        interfaces.push(iface);
    }
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
            data_volume_templates: data_volume_templates(name, &disks),
            template: VirtualMachineTemplate {
                metadata: Some(TemplateMetadata {
                    labels: BTreeMap::from([(labels::WUKONG.to_string(), name.to_string())]),
                    annotations: BTreeMap::new(),
                }),
                spec: VirtualMachineInstanceSpec {
                    domain: DomainSpec {
                        cpu: Some(Cpu { cores: u32::try_from(spec.cpu).unwrap_or(1) }),
                        memory: Some(Memory { guest: spec.memory.clone() }),
                        devices: Devices { disks: vm_disks(&disks), interfaces },
                    },
                    networks: vm_networks,
                    volumes: volumes(name, &disks),
                    node_selector: spec.high_availability.as_ref().map(|h| h.node_selector.clone()).unwrap_or_default(),
                    tolerations: spec.high_availability.as_ref().map(|h| h.tolerations.clone()).unwrap_or_default(),
                    affinity: None,
                },
            },
        },
        status: None,
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

fn volumes(wukong: &str, disks: &[PlannedDisk]) -> Vec<Volume> {
    disks
        .iter()
        .map(|d| match (&d.source, d.data_volume(wukong)) {
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

fn data_volume_templates(wukong: &str, disks: &[PlannedDisk]) -> Vec<DataVolumeTemplate> {
    disks
        .iter()
        .filter_map(|d| {
            Some(DataVolumeTemplate {
                metadata: DataVolumeTemplateMetadata { name: d.data_volume(wukong)? },
                spec: disks::data_volume_spec(d)?,
            })
        })
        .collect()
}
