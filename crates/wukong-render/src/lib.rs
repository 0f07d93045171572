//! The pure core of wukong: a Wukong in, the objects the operator applies out.
//!
//! **validate → plan → render**, and (for the controller) status computation. Nothing here
//! does I/O: no client, no clock, no async. Output is deterministic, byte for byte.
#![forbid(unsafe_code)]

pub mod annotation;
pub mod capabilities;
pub mod cloudinit;
pub mod cni;
pub mod decide;
pub mod disks;
pub mod drift;
pub mod index;
pub mod kinds;
pub mod legacy;
pub mod liveupdate;
pub mod mac;
pub mod manifest;
pub mod nad;
pub mod names;
pub mod plan;
pub mod preview;
pub mod restart;
pub mod status;
pub mod validate;
pub mod vm;
pub mod warnings;

use k8s_openapi::api::core::v1::Secret;
use wukong_api::Wukong;
use wukong_api::kubevirt::VirtualMachine;
use wukong_api::nad::NetworkAttachmentDefinition;

pub use cni::CniVersion;
pub use validate::{FieldError, Invalid};

/// A Wukong that passed validation; only these can be rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated(Wukong);

impl Validated {
    pub fn wukong(&self) -> &Wukong {
        &self.0
    }
}

/// Validates a Wukong manifest (as parsed from YAML/JSON) against the API's rules.
pub fn validate_object(object: &serde_json::Value) -> Result<Validated, Invalid> {
    validate::validate_object(object).map(Validated)
}

/// Validates a typed Wukong (as read from the API server) against the API's rules.
pub fn validate(wukong: &Wukong) -> Result<Validated, Invalid> {
    validate::validate(wukong).map(|()| Validated(wukong.clone()))
}

/// How to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    pub cni_version: CniVersion,
    /// Whether the Multus NAD kind is installed; without it secondary networks fall back to the
    /// pod network and no NAD is rendered.
    pub multus: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self { cni_version: CniVersion::default(), multus: true }
    }
}

/// Everything a Wukong yields.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The NADs wukong generates and owns (not those named by `nadName`).
    pub nads: Vec<NetworkAttachmentDefinition>,
    pub vm: VirtualMachine,
    /// The cloud-init Secret the VM references (`<wukong>-cloudinit`), when it needs one. It holds
    /// no SSH keys: KubeVirt hands those from `sshKeySecret` to the guest itself.
    pub cloud_init_secret: Option<Secret>,
    /// The launcher pod's `k8s.v1.cni.cncf.io/networks`, as KubeVirt will write it.
    pub launcher_pod_networks: Option<String>,
}

/// Renders the NADs and the VM of a validated Wukong.
pub fn render(valid: &Validated, options: &RenderOptions) -> Rendered {
    let wukong = valid.wukong();
    let plan = plan::plan(wukong, options.multus);
    let nads = plan.generated().map(|(net, nad)| nad::nad(wukong, net, nad, options.cni_version)).collect();
    Rendered {
        nads,
        vm: vm::virtual_machine(wukong, &plan),
        cloud_init_secret: cloudinit::secret(wukong, &plan),
        launcher_pod_networks: annotation::launcher_pod_networks(&plan),
    }
}
