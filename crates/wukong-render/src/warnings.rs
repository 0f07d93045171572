//! The warnings of [`wukong_api::warnings`] evaluated offline, with the same CEL expressions the
//! ValidatingAdmissionPolicy runs at the API server: `wukong render` prints them and the
//! controller puts them in the Wukong's status, so a user hears the same words everywhere.

use kube::core::cel::{CompiledVapExpression, VapError, VapEvaluator, VapExpression};
use serde_json::Value;
use wukong_api::warnings::WARNINGS;

thread_local! {
    static COMPILED: Vec<Result<CompiledVapExpression, VapError>> = {
        let expressions: Vec<VapExpression> = WARNINGS
            .iter()
            .map(|w| VapExpression {
                expression: w.expression.to_string(),
                message: Some(w.message.to_string()),
                message_expression: w.message_expression.map(str::to_string),
            })
            .collect();
        VapEvaluator::builder().build().compile_expressions(&expressions)
    };
}

/// The warnings a Wukong manifest (as JSON) earns, in table order. Like the policy at the API
/// server (`failurePolicy: Ignore`), an expression that cannot be evaluated says nothing.
pub fn warnings(object: &Value) -> Vec<String> {
    let evaluator = VapEvaluator::builder().object(object.clone()).build();
    COMPILED.with(|compiled| {
        compiled
            .iter()
            .zip(evaluator.evaluate_compiled(compiled))
            .filter(|(c, r)| c.is_ok() && !r.passed)
            .filter_map(|(_, r)| r.message)
            .filter(|m| !m.starts_with("evaluation error: ") && !m.starts_with("expression returned non-boolean"))
            .collect()
    })
}

/// The warnings of a typed Wukong (as the controller reads it).
pub fn of(wukong: &wukong_api::Wukong) -> Vec<String> {
    warnings(&serde_json::to_value(wukong).expect("a Wukong serializes"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wukong(spec: Value) -> Value {
        json!({ "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "metadata": { "name": "w" }, "spec": spec })
    }

    #[test]
    fn a_manifest_in_wukong_form_earns_no_warning() {
        let w = wukong(json!({
            "cpu": 1, "memory": "1Gi",
            "networks": [
                { "name": "default" },
                { "name": "lan", "type": "bridge", "nadName": "lan" },
                { "name": "mgmt", "type": "bridge", "vlanId": 100, "bridgeName": "br-mgmt", "ipConfig": { "mode": "dhcp" } }
            ],
            "cloudInitUser": { "name": "ubuntu", "sudo": "ALL=(ALL) ALL" }
        }));
        assert_eq!(warnings(&w), Vec::<String>::new());
        assert_eq!(warnings(&wukong(json!({ "cpu": 1, "memory": "1Gi" }))), Vec::<String>::new());
    }

    #[test]
    fn the_original_operators_main_sample_is_told_that_type_and_ip_config_of_default_are_ignored() {
        let w = wukong(json!({
            "cpu": 2, "memory": "2Gi",
            "networks": [{ "name": "default", "type": "bridge", "ipConfig": { "mode": "dhcp" } }]
        }));
        let got = warnings(&w);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("network \"default\": type is ignored: default is the pod network"), "{got:#?}");
        assert!(got[1].starts_with("network \"default\": ipConfig is ignored"), "{got:#?}");
    }

    #[test]
    fn ignored_fields_of_several_networks_are_named_in_one_warning() {
        let w = wukong(json!({
            "cpu": 2, "memory": "2Gi",
            "networks": [
                { "name": "business", "type": "sriov", "nadName": "business-sriov-nad", "vlanId": 200 },
                { "name": "lan", "type": "bridge", "nadName": "", "vlanId": 7 },
                { "name": "infra", "type": "bridge", "nadName": "infra", "bridgeName": "br-infra" },
                { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp", "address": "10.0.0.5/24" } }
            ]
        }));
        assert_eq!(
            warnings(&w),
            [
                "networks \"business\", \"infra\": vlanId and bridgeName are ignored on a network with nadName: the existing NetworkAttachmentDefinition decides the bridge and the VLAN; remove them, or remove nadName to let wukong generate the NAD",
                "networks \"data\": ipConfig.address and ipConfig.gateway are ignored when mode is dhcp: the DHCP server gives them; remove them, or use mode static",
            ]
        );
    }

    #[test]
    fn an_empty_sudo_is_called_out() {
        let w = wukong(json!({ "cpu": 1, "memory": "1Gi", "cloudInitUser": { "name": "ops", "sudo": "" } }));
        let got = warnings(&w);
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("cloudInitUser.sudo is empty, so the user gets no sudo rule"), "{got:?}");
    }

    #[test]
    fn every_expression_compiles() {
        COMPILED.with(|c| {
            for (w, compiled) in WARNINGS.iter().zip(c) {
                assert!(compiled.is_ok(), "{}: {:?}", w.id, compiled.as_ref().err());
            }
        });
    }
}
