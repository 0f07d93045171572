//! Checks CEL cannot express: they need the renderer's own derivations.

use std::collections::BTreeMap;

use wukong_api::Wukong;

use super::FieldError;
use crate::mac;

/// The MACs wukong derives (for networks without `macAddress`, and for the pod network's
/// interface when cloud-init configures it) must not collide with each other or with a MAC the
/// user gave (SHA-256 is not available in CEL). A derived MAC that is not used collides with
/// nothing: the pod interface's is used only when some secondary network has `ipConfig`
/// (cloud-init network data then matches the pod interface by MAC).
pub(super) fn check(wukong: &Wukong) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let namespace = crate::names::namespace_of(wukong);
    let name = crate::names::name_of(wukong);
    let pod = mac::derive(namespace, name, crate::names::POD_NETWORK).to_string();
    let pod_mac_used =
        wukong.spec.networks.iter().any(|n| n.name != crate::names::POD_NETWORK && n.ip_config.is_some());
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    if pod_mac_used {
        seen.insert(pod, crate::names::POD_NETWORK);
    }
    for (i, net) in wukong.spec.networks.iter().enumerate() {
        if net.name == crate::names::POD_NETWORK {
            continue;
        }
        let mac = match &net.mac_address {
            Some(m) => m.to_ascii_lowercase(),
            None => mac::derive(namespace, name, &net.name).to_string(),
        };
        if let Some(other) = seen.insert(mac.clone(), &net.name) {
            errors.push(FieldError::new(
                &format!("spec.networks[{i}].macAddress"),
                format!(
                    "Invalid value: {mac:?}: networks {other:?} and {:?} would share MAC {mac}: set macAddress on one of them to another unicast address",
                    net.name
                ),
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}
