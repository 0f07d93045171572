//! The Multus networks annotation of the VM's launcher pod, in KubeVirt's form.
//!
//! KubeVirt's virt-controller writes `k8s.v1.cni.cncf.io/networks` on the launcher pod from the
//! VM's networks; a value set on the VM by hand is overwritten or breaks the launcher, so wukong
//! never sets it. It is computed here so `wukong render` can show what the pod will carry and
//! the Multus end-to-end test can drive Multus exactly as KubeVirt would.

use serde::Serialize;

use crate::names;
use crate::plan::NetworkPlan;

// Field order as KubeVirt marshals Multus' NetworkSelectionElement.
#[derive(Serialize)]
struct Element<'a> {
    name: &'a str,
    namespace: &'a str,
    mac: &'a str,
    interface: String,
}

/// The annotation value, or `None` when the VM has no attached secondary network.
pub fn launcher_pod_networks(plan: &NetworkPlan<'_>) -> Option<String> {
    let elements: Vec<Element<'_>> = plan
        .attached()
        .filter_map(|n| {
            let nad = n.nad()?;
            Some(Element {
                name: &nad.name,
                namespace: &nad.namespace,
                mac: &n.mac,
                interface: names::pod_interface_name(n.name()),
            })
        })
        .collect();
    (!elements.is_empty()).then(|| {
        let mut out = Vec::with_capacity(128 * elements.len());
        serde_json::to_writer(&mut out, &elements).expect("annotation serializes");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    })
}
