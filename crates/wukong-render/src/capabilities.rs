//! What the cluster's KubeVirt can do, as its KubeVirt CR (`kubevirts.kubevirt.io`) says: the
//! network binding plugins it registers, its feature gates and the version it runs.
//!
//! KubeVirt's admission accepts a VM whose interface names a binding plugin the CR does not
//! register; virt-controller then leaves the instance Pending and reports `Synchronized=False
//! FailedCreate: failed to render launch manifest: couldn't find configuration for network
//! binding: macvtap`. wukong reads the CR first and holds such a VM back with a reason that says
//! what to register ([`crate::decide`]).

use std::collections::BTreeSet;

use serde_json::Value;

/// The capabilities of one KubeVirt install, read from its CR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeVirtCapabilities {
    /// `namespace/name` of the KubeVirt CR they come from.
    pub source: String,
    /// `status.observedKubeVirtVersion` (`v1.8.4`), when KubeVirt reports it.
    pub version: Option<String>,
    /// The keys of `spec.configuration.network.binding`.
    pub binding_plugins: BTreeSet<String>,
    /// `spec.configuration.developerConfiguration.featureGates`.
    pub feature_gates: BTreeSet<String>,
}

impl KubeVirtCapabilities {
    /// Reads a KubeVirt CR (as JSON); fields it lacks are empty.
    pub fn from_cr(cr: &Value) -> Self {
        let text = |pointer: &str| cr.pointer(pointer).and_then(Value::as_str).map(str::to_string);
        let source = format!(
            "{}/{}",
            text("/metadata/namespace").unwrap_or_default(),
            text("/metadata/name").unwrap_or_default()
        );
        let binding_plugins = cr
            .pointer("/spec/configuration/network/binding")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let feature_gates = cr
            .pointer("/spec/configuration/developerConfiguration/featureGates")
            .and_then(Value::as_array)
            .map(|gates| gates.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        Self { source, version: text("/status/observedKubeVirtVersion"), binding_plugins, feature_gates }
    }

    /// The CR that governs a cluster: the one KubeVirt reports `Deployed`, else the first.
    /// KubeVirt allows a single CR per cluster; a second one stays in phase `Deployed` never.
    pub fn governing(crs: &[Value]) -> Option<Self> {
        let deployed = crs.iter().find(|cr| cr.pointer("/status/phase").and_then(Value::as_str) == Some("Deployed"));
        deployed.or(crs.first()).map(Self::from_cr)
    }

    pub fn registers(&self, plugin: &str) -> bool {
        self.binding_plugins.contains(plugin)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cr(name: &str, phase: &str, bindings: Value) -> Value {
        json!({
            "apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
            "metadata": { "name": name, "namespace": "kubevirt" },
            "spec": { "configuration": {
                "developerConfiguration": { "featureGates": ["LiveUpdateNADRef", "Sidecar"] },
                "network": { "binding": bindings }
            } },
            "status": { "phase": phase, "observedKubeVirtVersion": "v1.8.4" }
        })
    }

    #[test]
    fn the_cr_tells_the_registered_plugins_the_gates_and_the_version() {
        let caps = KubeVirtCapabilities::from_cr(&cr(
            "kubevirt",
            "Deployed",
            json!({ "macvtap": { "domainAttachmentType": "tap" } }),
        ));
        assert_eq!(caps.source, "kubevirt/kubevirt");
        assert_eq!(caps.version.as_deref(), Some("v1.8.4"));
        assert!(caps.registers("macvtap"));
        assert!(!caps.registers("passt"));
        assert_eq!(caps.feature_gates, BTreeSet::from(["LiveUpdateNADRef".to_string(), "Sidecar".to_string()]));
    }

    #[test]
    fn a_cr_without_configuration_registers_nothing() {
        let caps = KubeVirtCapabilities::from_cr(&json!({ "metadata": { "name": "kv", "namespace": "x" } }));
        assert_eq!(caps, KubeVirtCapabilities { source: "x/kv".into(), ..Default::default() });
    }

    #[test]
    fn the_deployed_cr_governs() {
        let crs = [cr("second", "", json!({})), cr("kubevirt", "Deployed", json!({ "macvtap": {} }))];
        let caps = KubeVirtCapabilities::governing(&crs).unwrap();
        assert_eq!(caps.source, "kubevirt/kubevirt");
        assert!(caps.registers("macvtap"));
        assert_eq!(KubeVirtCapabilities::governing(&[]), None);
    }
}
