//! The Wukong API: the `Wukong` custom resource, its CRD with the admission rules, the condition
//! vocabulary, and the minimal typed views of the foreign kinds wukong writes (Multus
//! `NetworkAttachmentDefinition`, KubeVirt `VirtualMachine`) and reads (`VirtualMachineInstance`).
//!
//! No client and no I/O here: the types are shared by the pure renderer and the controller.
#![forbid(unsafe_code)]

pub mod conditions;
pub mod crd;
pub mod kubevirt;
pub mod labels;
pub mod nad;
pub mod rules;
pub mod warnings;
pub mod wukong;

pub use wukong::*;
