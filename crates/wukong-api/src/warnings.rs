//! Warnings at admission: fields the original Go operator's manifests use that wukong accepts and
//! ignores (or reads differently), so whoever applies such a manifest is told so.
//!
//! One table, like [`crate::rules`]: [`policy`] turns it into a ValidatingAdmissionPolicy whose
//! binding has the `Warn` action (`deploy/warning-policy.yaml`), so `kubectl apply` prints each
//! message; `wukong render` and the controller evaluate the very same expressions offline
//! (`wukong_render::warnings`). An expression is true when there is nothing to say, exactly as a
//! policy's validation passes. The policy fails open (`failurePolicy: Ignore`): a warning must
//! never keep a Wukong out.

use serde_json::{Value, json};

/// One warning: a CEL expression over `object` (the Wukong) that is false when the manifest uses
/// a field wukong ignores, and the message that says what to write instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldWarning {
    /// Stable identifier, used by tests and docs.
    pub id: &'static str,
    pub expression: &'static str,
    /// The message, when `message_expression` cannot be evaluated.
    pub message: &'static str,
    /// A CEL string expression naming the networks concerned.
    pub message_expression: Option<&'static str>,
}

/// Name of the ValidatingAdmissionPolicy and of its binding.
pub const POLICY_NAME: &str = "wukong-ignored-fields";

/// Every warning, in the order the API server and `wukong render` give them.
pub const WARNINGS: &[FieldWarning] = &[
    FieldWarning {
        id: "default.type",
        expression: "!has(object.spec.networks) || !object.spec.networks.exists(n, n.name == 'default' && has(n.type))",
        message: "network \"default\": type is ignored: default is the pod network (KubeVirt masquerade binding), where the original operator made a bridge network br-default; remove type, or give the network another name to attach a bridge",
        message_expression: None,
    },
    FieldWarning {
        id: "default.ip-config",
        expression: "!has(object.spec.networks) || !object.spec.networks.exists(n, n.name == 'default' && has(n.ipConfig))",
        message: "network \"default\": ipConfig is ignored: default is the pod network, whose address the guest gets from KubeVirt's DHCP; remove ipConfig, or give the network another name to configure an address on a bridge",
        message_expression: None,
    },
    FieldWarning {
        id: "nad-name.generation-fields",
        expression: "!has(object.spec.networks) || !object.spec.networks.exists(n, has(n.nadName) && n.nadName != '' && (has(n.vlanId) || (has(n.bridgeName) && n.bridgeName != '')))",
        message: "vlanId and bridgeName are ignored on a network with nadName: the existing NetworkAttachmentDefinition decides the bridge and the VLAN; remove them, or remove nadName to let wukong generate the NAD",
        message_expression: Some(
            "'networks ' + object.spec.networks.filter(n, has(n.nadName) && n.nadName != '' && (has(n.vlanId) || (has(n.bridgeName) && n.bridgeName != ''))).map(n, '\"' + n.name + '\"').join(', ') + ': vlanId and bridgeName are ignored on a network with nadName: the existing NetworkAttachmentDefinition decides the bridge and the VLAN; remove them, or remove nadName to let wukong generate the NAD'",
        ),
    },
    FieldWarning {
        id: "dhcp.address",
        expression: "!has(object.spec.networks) || !object.spec.networks.exists(n, has(n.ipConfig) && n.ipConfig.mode == 'dhcp' && (has(n.ipConfig.address) || has(n.ipConfig.gateway)))",
        message: "ipConfig.address and ipConfig.gateway are ignored when mode is dhcp: the DHCP server gives them; remove them, or use mode static",
        message_expression: Some(
            "'networks ' + object.spec.networks.filter(n, has(n.ipConfig) && n.ipConfig.mode == 'dhcp' && (has(n.ipConfig.address) || has(n.ipConfig.gateway))).map(n, '\"' + n.name + '\"').join(', ') + ': ipConfig.address and ipConfig.gateway are ignored when mode is dhcp: the DHCP server gives them; remove them, or use mode static'",
        ),
    },
    FieldWarning {
        id: "user.empty-sudo",
        expression: "!has(object.spec.cloudInitUser) || !has(object.spec.cloudInitUser.sudo) || object.spec.cloudInitUser.sudo != ''",
        message: "cloudInitUser.sudo is empty, so the user gets no sudo rule (for an empty sudo the original operator gave ALL=(ALL) NOPASSWD:ALL): write the rule the user needs, or remove sudo to get that default",
        message_expression: None,
    },
];

/// The ValidatingAdmissionPolicy that carries [`WARNINGS`] and its binding with the `Warn`
/// action, as `deploy/warning-policy.yaml` holds them.
pub fn policy() -> [Value; 2] {
    let validations: Vec<Value> = WARNINGS
        .iter()
        .map(|w| {
            let mut v = json!({ "expression": w.expression, "message": w.message });
            if let Some(expr) = w.message_expression {
                v["messageExpression"] = json!(expr);
            }
            v
        })
        .collect();
    [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": { "name": POLICY_NAME },
            "spec": {
                "failurePolicy": "Ignore",
                "matchConstraints": {
                    "resourceRules": [{
                        "apiGroups": ["vm.novasphere.dev"],
                        "apiVersions": ["v1alpha1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["wukongs"],
                    }],
                },
                "validations": validations,
            },
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": { "name": POLICY_NAME },
            "spec": { "policyName": POLICY_NAME, "validationActions": ["Warn"] },
        }),
    ]
}
