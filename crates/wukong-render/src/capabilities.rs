//! What the cluster's KubeVirt can do, as its KubeVirt CR (`kubevirts.kubevirt.io`) says: the
//! network binding plugins it registers, its feature gates, the version it runs, how it rolls a
//! changed VM out to a running instance (`vmRolloutStrategy`) and whether it migrates or evicts
//! an instance by itself when a change needs it (`workloadUpdateStrategy`).
//! [`crate::liveupdate`] decides from these what a change of a running VM does.
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
    /// `spec.configuration.vmRolloutStrategy`; KubeVirt's default is `LiveUpdate`.
    pub rollout: RolloutStrategy,
    /// `spec.workloadUpdateStrategy.workloadUpdateMethods` (`LiveMigrate`, `Evict`): how
    /// KubeVirt itself carries out a change that needs a migration. Empty (KubeVirt's default):
    /// it never does; the instance waits with `MigrationRequired`.
    pub workload_update_methods: BTreeSet<String>,
}

/// How KubeVirt rolls a changed VM template out to its running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolloutStrategy {
    /// CPU sockets, memory, node selector, affinity and tolerations reach the running instance.
    #[default]
    LiveUpdate,
    /// Only network interfaces do (KubeVirt's network synchronizer runs under both); the rest
    /// waits for a restart.
    Stage,
}

/// KubeVirt's feature gate that lets a running VM's network change its NAD (v1.8, beta).
pub const LIVE_UPDATE_NAD_REF: &str = "LiveUpdateNADRef";
/// KubeVirt's workload update method that migrates an instance whose change needs it.
pub const LIVE_MIGRATE: &str = "LiveMigrate";
/// KubeVirt's workload update method that restarts (evicts) such an instance.
pub const EVICT: &str = "Evict";

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
        let rollout = match text("/spec/configuration/vmRolloutStrategy").as_deref() {
            Some("Stage") => RolloutStrategy::Stage,
            _ => RolloutStrategy::LiveUpdate,
        };
        let workload_update_methods = cr
            .pointer("/spec/workloadUpdateStrategy/workloadUpdateMethods")
            .and_then(Value::as_array)
            .map(|methods| methods.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        Self {
            source,
            version: text("/status/observedKubeVirtVersion"),
            binding_plugins,
            feature_gates,
            rollout,
            workload_update_methods,
        }
    }

    /// `(major, minor)` of [`Self::version`] (`v1.8.4` → `(1, 8)`), when it reads as one.
    pub fn minor_version(&self) -> Option<(u32, u32)> {
        let v = self.version.as_deref()?.trim_start_matches('v');
        let mut parts = v.split(['.', '-', '+']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }

    /// Whether KubeVirt is at least `major.minor`; an unknown version counts as new enough
    /// (wukong supports KubeVirt v1.6 and later).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.minor_version().is_none_or(|v| v >= (major, minor))
    }

    pub fn gate(&self, gate: &str) -> bool {
        self.feature_gates.contains(gate)
    }

    /// A running VM's network can change its NAD without a restart: KubeVirt v1.8 with the
    /// `LiveUpdateNADRef` gate (it then migrates the instance onto the new NAD).
    pub fn live_update_nad_ref(&self) -> bool {
        self.gate(LIVE_UPDATE_NAD_REF) && self.at_least(1, 8)
    }

    /// KubeVirt migrates an instance by itself when a change needs it.
    pub fn migrates_by_itself(&self) -> bool {
        self.workload_update_methods.contains(LIVE_MIGRATE)
    }

    /// KubeVirt restarts (evicts) an instance by itself when a change needs a migration it
    /// cannot make.
    pub fn evicts_by_itself(&self) -> bool {
        self.workload_update_methods.contains(EVICT)
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
    fn the_cr_tells_how_changes_reach_a_running_instance() {
        let mut value = cr("kubevirt", "Deployed", json!({}));
        let caps = KubeVirtCapabilities::from_cr(&value);
        assert_eq!(caps.rollout, RolloutStrategy::LiveUpdate, "KubeVirt's default");
        assert!(caps.workload_update_methods.is_empty());
        assert!(caps.live_update_nad_ref(), "the gate, on v1.8");
        assert!(!caps.migrates_by_itself() && !caps.evicts_by_itself());
        value["spec"]["configuration"]["vmRolloutStrategy"] = json!("Stage");
        value["spec"]["workloadUpdateStrategy"] = json!({ "workloadUpdateMethods": ["LiveMigrate", "Evict"] });
        value["status"]["observedKubeVirtVersion"] = json!("v1.7.2");
        let caps = KubeVirtCapabilities::from_cr(&value);
        assert_eq!(caps.rollout, RolloutStrategy::Stage);
        assert!(caps.migrates_by_itself() && caps.evicts_by_itself());
        assert_eq!(caps.minor_version(), Some((1, 7)));
        assert!(!caps.live_update_nad_ref(), "the gate means nothing before v1.8");
        assert!(caps.at_least(1, 6) && !caps.at_least(1, 8));
        assert!(KubeVirtCapabilities::default().at_least(1, 8), "an unknown version is taken as new enough");
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
