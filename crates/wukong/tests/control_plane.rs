//! The real control plane as the tests use it: its CRDs, the Wukong admission rules enforced by
//! the real API server (and worded as the offline validator words them), KubeVirt's real schema
//! checking every VM the renderer makes, strict field validation, garbage collection, and
//! ServiceAccount tokens under RBAC.

mod support;

use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, GetParams, ListParams, PostParams};
use kube::core::{Request, Status};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use support::{cluster, wait_for};
use wukong_api::Wukong;

fn wukong(name: &str, namespace: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    })
}

fn condition_true(crd: &CustomResourceDefinition, condition: &str) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == condition && c.status == "True"))
}

#[tokio::test]
async fn the_control_plane_is_ready_and_serves_the_four_crds() {
    let cluster = cluster();
    let client = cluster.admin_client().await;

    let readyz = client.request_text(Request::new("").get("readyz", &GetParams::default()).unwrap()).await.unwrap();
    assert_eq!(readyz, "ok");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in support::CRD_NAMES {
        let crd = crds.get(name).await.unwrap_or_else(|e| panic!("CRD {name}: {e}"));
        assert!(condition_true(&crd, "Established"), "CRD {name} is not Established: {:?}", crd.status);
        assert!(condition_true(&crd, "NamesAccepted"), "CRD {name} names are not accepted: {:?}", crd.status);
    }
    // The Wukong CRD served is the one this build prints (`wukong crd`), rules included.
    let served = serde_json::to_value(crds.get("wukongs.vm.novasphere.dev").await.unwrap()).unwrap();
    assert!(support::same_crd_versions(&served, &support::our_wukong_crd()), "the Wukong CRD served is outdated");
    // and the NAD plural with dashes is what the API server serves
    let nads: Api<DynamicObject> = Api::all_with(
        client,
        &kube::discovery::ApiResource::erase::<wukong_api::nad::NetworkAttachmentDefinition>(&()),
    );
    nads.list(&ListParams::default().limit(1)).await.expect("network-attachment-definitions are listed");
}

#[tokio::test]
async fn kubevirt_and_cdi_run_next_to_it_set_up_as_their_operators_would() {
    let c = cluster();
    support::kubevirt::require(c, true);
    let client = c.admin_client().await;
    let cr = |group: &str, version: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    };
    // The KubeVirt CR as virt-operator leaves it: Deployed, its version, macvtap registered.
    let kubevirts: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "kubevirt", &cr("kubevirt.io", "v1", "KubeVirt", "kubevirts"));
    let kv = kubevirts.get("kubevirt").await.expect("the KubeVirt CR").data;
    assert_eq!(kv["status"]["phase"], "Deployed");
    assert_eq!(kv["status"]["observedKubeVirtVersion"].as_str(), c.kubevirt_version.as_deref());
    assert_eq!(kv["spec"]["configuration"]["network"]["binding"]["macvtap"], json!({ "domainAttachmentType": "tap" }));
    // The CDI CR and the config cdi-controller made from it.
    let cdis: Api<DynamicObject> = Api::all_with(client.clone(), &cr("cdi.kubevirt.io", "v1beta1", "CDI", "cdis"));
    let cdi = cdis.get("cdi").await.expect("the CDI CR").data;
    assert_eq!(cdi["status"]["observedVersion"].as_str(), c.cdi_version.as_deref());
    assert_eq!(cdi["spec"]["config"]["featureGates"], json!(["HonorWaitForFirstConsumer"]));
    // A default StorageClass whose provisioner CDI knows: its StorageProfile has access modes.
    let class = c.storage_class.clone().expect("the default StorageClass");
    let profiles: Api<DynamicObject> =
        Api::all_with(client.clone(), &cr("cdi.kubevirt.io", "v1beta1", "StorageProfile", "storageprofiles"));
    let profile = wait_for("CDI's StorageProfile of the default class", Duration::from_secs(30), || async {
        let p = profiles.get_opt(&class).await.ok()??;
        p.data.pointer("/status/claimPropertySets/0/accessModes").cloned()
    })
    .await;
    assert_eq!(profile, json!(["ReadWriteOnce"]));
    // Every webhook of virt-api and cdi-apiserver points at 127.0.0.1 by URL, with a CA bundle.
    for (kind, plural) in [
        ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
        ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
    ] {
        let api: Api<DynamicObject> =
            Api::all_with(client.clone(), &cr("admissionregistration.k8s.io", "v1", kind, plural));
        let configs = api.list(&ListParams::default()).await.unwrap().items;
        let names: Vec<String> = configs.iter().filter_map(|w| w.metadata.name.clone()).collect();
        assert!(names.iter().any(|n| n.starts_with("virt-api")), "{kind}: {names:?}");
        assert!(names.iter().any(|n| n.starts_with("cdi-api")), "{kind}: {names:?}");
        for config in configs {
            for hook in config.data["webhooks"].as_array().into_iter().flatten() {
                let url = hook["clientConfig"]["url"].as_str().unwrap_or_default();
                assert!(url.starts_with("https://127.0.0.1:"), "{}: {url}", hook["name"]);
                assert!(hook["clientConfig"]["caBundle"].as_str().is_some_and(|b| !b.is_empty()), "{}", hook["name"]);
            }
        }
    }
    // The request-header CA comes from kube-apiserver's own flag, not a patched ConfigMap.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, "kube-system");
    let auth = config_maps.get("extension-apiserver-authentication").await.unwrap();
    let data = auth.data.unwrap_or_default();
    assert!(data.get("requestheader-client-ca-file").is_some_and(|ca| ca.contains("BEGIN CERTIFICATE")));
    let managers: Vec<String> =
        auth.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    assert!(managers.iter().all(|m| m.starts_with("kube-apiserver")), "written by kube-apiserver alone: {managers:?}");
}

#[tokio::test]
async fn an_apply_carrying_an_impossible_resource_version_only_creates() {
    // What the controller relies on to create a child it observed absent without ever adopting
    // one someone made meanwhile: a server-side apply whose resourceVersion no stored object has
    // creates the object when absent, and is refused (409) when it exists.
    let ns = cluster().namespace("create-only").await;
    let config_map = |value: &str| {
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "child", "namespace": ns.name, "resourceVersion": "1" },
                "data": { "k": value } })
    };
    let created = support::apply(&ns.client, &config_map("ours"), true).await.expect("created when absent");
    assert_eq!(created["data"]["k"], "ours");
    let refused = support::refusal(support::apply(&ns.client, &config_map("again"), true).await);
    assert_eq!(refused.code, 409, "{refused:?}");
    let live = support::get(&ns.client, &config_map("")).await.unwrap();
    assert_eq!(live["data"]["k"], "ours", "the existing object is untouched");
    // And the uid of what was observed: an apply over an object replaced meanwhile is refused
    // (422 on metadata.uid, which the controller counts as a conflict), and one over an object
    // deleted meanwhile is refused too (409) instead of creating it again.
    let mut over = config_map("changed");
    over["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    over["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    let replaced = support::refusal(support::apply(&ns.client, &over, true).await);
    assert_eq!(replaced.code, 422, "{replaced:?}");
    let causes = replaced.details.map(|d| d.causes).unwrap_or_default();
    assert!(!causes.is_empty() && causes.iter().all(|c| c.field == "metadata.uid"), "{causes:?}");
    over["metadata"]["name"] = json!("never-made");
    assert_eq!(support::refusal(support::apply(&ns.client, &over, true).await).code, 409);
}

/// Creates an invalid Wukong with Strict field validation (as `kubectl create`/`apply` do) and
/// returns the API server's refusal, after checking nothing was stored.
async fn refused(ns: &support::TestNamespace, object: &Value) -> Status {
    let status = support::refusal(support::create(&ns.client, object, true).await);
    assert!(support::get(&ns.client, object).await.is_none(), "a refused Wukong was stored: {object}");
    status
}

/// As [`refused`], with server-side apply (`kubectl apply --server-side`).
async fn refused_apply(ns: &support::TestNamespace, object: &Value) -> Status {
    let status = support::refusal(support::apply(&ns.client, object, true).await);
    assert!(support::get(&ns.client, object).await.is_none(), "a refused Wukong was stored: {object}");
    status
}

#[tokio::test]
async fn a_wukong_that_breaks_a_cel_rule_is_refused_with_the_rules_message() {
    let ns = cluster().namespace("cel").await;
    let cases = [
        (
            wukong(
                "static-without-address",
                &ns.name,
                json!({ "cpu": 2, "memory": "2Gi", "networks": [
                    { "name": "mgmt", "type": "bridge", "ipConfig": { "mode": "static" } },
                ]}),
            ),
            "spec.networks[0].ipConfig.address: Invalid value: \"object\": ipConfig.address is required when mode is static: set it in CIDR form, e.g. 192.168.100.10/24",
        ),
        (
            wukong(
                "gateway-outside",
                &ns.name,
                json!({ "cpu": 2, "memory": "2Gi", "networks": [
                    { "name": "mgmt", "type": "bridge",
                      "ipConfig": { "mode": "static", "address": "192.168.1.10/24", "gateway": "192.168.2.1" } },
                ]}),
            ),
            "spec.networks[0].ipConfig.gateway: Invalid value: \"object\": ipConfig.gateway 192.168.2.1 is not inside the subnet of ipConfig.address 192.168.1.10/24: use a gateway in that subnet",
        ),
    ];
    for (object, expected) in cases {
        let name = object["metadata"]["name"].as_str().unwrap();
        for status in [refused(&ns, &object).await, refused_apply(&ns, &object).await] {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
            assert_eq!(status.message, format!("Wukong.vm.novasphere.dev {name:?} is invalid: {expected}"));
        }
    }
}

#[tokio::test]
async fn the_api_servers_refusal_says_what_the_offline_validator_says_line_by_line() {
    let ns = cluster().namespace("wording").await;
    let cases = [
        // two CEL rules, one with a messageExpression
        wukong(
            "cel-rules",
            &ns.name,
            json!({ "cpu": 2, "memory": "2Gi", "networks": [
                { "name": "mgmt", "type": "bridge", "ipConfig": { "mode": "static", "gateway": "10.0.0.1" } },
                { "name": "data", "type": "bridge",
                  "ipConfig": { "mode": "static", "address": "192.168.1.10/24", "gateway": "192.168.2.1" } },
            ]}),
        ),
        // OpenAPI maximums (not blocking: CEL still runs, and passes)
        wukong(
            "openapi-max",
            &ns.name,
            json!({ "cpu": 100, "memory": "2Gi", "networks": [ { "name": "mgmt", "type": "bridge", "vlanId": 5000 } ] }),
        ),
        // required fields: blocking, so CEL is skipped with a note
        wukong(
            "required",
            &ns.name,
            json!({ "cpu": 2, "networks": [ { "name": "mgmt", "type": "bridge", "ipConfig": { "address": "10.0.0.2/24" } } ] }),
        ),
        // an unknown enum value: blocking too
        wukong(
            "unknown-enum",
            &ns.name,
            json!({ "cpu": 2, "memory": "2Gi", "networks": [ { "name": "mgmt", "type": "vxlan" } ] }),
        ),
        // CEL rules with messageExpression and fieldPath, on two list items
        wukong(
            "per-network",
            &ns.name,
            json!({ "cpu": 2, "memory": "2Gi", "networks": [
                { "name": "uplink", "type": "macvlan", "vlanId": 5 },
                { "name": "fast", "type": "sriov" },
            ]}),
        ),
        // a list-map key twice: the schema's Duplicate value plus the CEL uniqueness rule
        wukong(
            "duplicate",
            &ns.name,
            json!({ "cpu": 2, "memory": "2Gi", "networks": [
                { "name": "mgmt", "type": "bridge" }, { "name": "mgmt", "type": "ovs" },
            ]}),
        ),
    ];
    for object in cases {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let offline = support::offline_errors(&object);
        let status = refused(&ns, &object).await;
        assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{name}: {status:?}");
        let header = format!("Wukong.vm.novasphere.dev {name:?} is invalid: ");
        assert!(status.message.starts_with(&header), "{name}: {}", status.message);
        for line in &offline {
            assert!(
                status.message.contains(line.as_str()),
                "{name}: offline line {line:?} is not in {:?}",
                status.message
            );
        }
        // The API server orders OpenAPI errors by Go map iteration (it varies between requests),
        // so the lines are compared as multisets.
        let mut server = support::server_lines(&status);
        let mut offline_sorted = offline.clone();
        server.sort();
        offline_sorted.sort();
        assert_eq!(server, offline_sorted, "{name}: the API server and the offline validator differ");

        // Server-side apply gives the same refusal, except for a list-map key given twice: the
        // API server cannot build the typed patch and answers before validation.
        let applied = refused_apply(&ns, &object).await;
        if name == "duplicate" {
            assert_eq!(applied.code, 500, "{applied:?}");
            assert!(
                applied.message.contains(r#".spec.networks: duplicate entries for key [name="mgmt"]"#),
                "{applied:?}"
            );
        } else {
            let mut lines = support::server_lines(&applied);
            lines.sort();
            assert_eq!((applied.code, lines), (422, server), "{name}: apply and create are refused differently");
        }
    }

    // An unknown field: at the API server, with Strict field validation, a decoding error before
    // any schema check, which is all it says (the missing memory is not reported); offline the
    // same, alone.
    let object = wukong(
        "unknown-field",
        &ns.name,
        json!({ "cpu": 2, "networks": [ { "name": "mgmt", "type": "bridge", "vlanID": 100 } ] }),
    );
    let offline = support::offline_errors(&object);
    assert_eq!(offline, [r#"unknown field "spec.networks[0].vlanID""#]);
    let status = refused(&ns, &object).await;
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"), "{status:?}");
    assert_eq!(
        status.message,
        r#"Wukong in version "v1alpha1" cannot be handled as a Wukong: strict decoding error: unknown field "spec.networks[0].vlanID""#
    );
}

#[tokio::test]
async fn a_valid_wukong_is_stored_and_read_back_unchanged() {
    let ns = cluster().namespace("valid").await;
    let manifest = support::in_namespace(&support::documents("examples/web-server-01.yaml")[0], &ns.name);
    let stored = support::apply_strict(&ns.client, &manifest).await;
    assert_eq!(stored["spec"], manifest["spec"]);

    let api: Api<Wukong> = ns.api();
    let read = api.get("web-server-01").await.unwrap();
    assert_eq!(serde_json::to_value(&read.spec).unwrap(), manifest["spec"]);
    assert!(read.status.is_none(), "nobody wrote a status: {:?}", read.status);
    assert_eq!(read.metadata.generation, Some(1));
    // What the API server holds passes the offline validator as well.
    wukong_render::validate(&read).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn every_example_and_every_nad_and_vm_rendered_from_it_pass_the_real_schemas() {
    let ns = cluster().namespace("examples").await;
    let mut checked = 0;
    for path in support::examples() {
        let file = path.to_str().unwrap();
        for manifest in support::documents(file) {
            let manifest = support::in_namespace(&manifest, &ns.name);
            let stored = support::apply_strict(&ns.client, &manifest).await;
            assert_eq!(stored["spec"], manifest["spec"], "{file}: the Wukong was changed by the API server");
        }
        let objects = support::render(file, &ns.name);
        let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds.last(), Some(&"VirtualMachine"), "{file}: {kinds:?}");
        for object in &objects {
            let stored = support::apply_strict(&ns.client, object).await;
            // Nothing was pruned or changed: every field rendered is stored as rendered.
            support::contained(&object["spec"], &stored["spec"], "spec")
                .unwrap_or_else(|e| panic!("{file}: {} {}: {e}", object["kind"], object["metadata"]["name"]));
            checked += 1;
        }
    }
    assert!(checked >= support::examples().len() * 2, "only {checked} objects checked");
}

/// The first interface of `vm` with a `macAddress`, its key renamed to `macAdress`; returns the
/// interface index.
fn misspell_mac_address(vm: &mut Value) -> usize {
    let interfaces = vm
        .pointer_mut("/spec/template/spec/domain/devices/interfaces")
        .and_then(Value::as_array_mut)
        .expect("the VM has interfaces");
    let (index, interface) = interfaces
        .iter_mut()
        .enumerate()
        .find(|(_, i)| i.get("macAddress").is_some())
        .expect("an interface has a macAddress");
    let interface = interface.as_object_mut().unwrap();
    let mac = interface.remove("macAddress").unwrap();
    interface.insert("macAdress".into(), mac);
    index
}

#[tokio::test]
async fn a_misspelled_vm_field_is_refused_under_strict_validation_and_pruned_without() {
    let ns = cluster().namespace("strict").await;
    let mut vm = support::render("examples/web-server-01.yaml", &ns.name).pop().unwrap();
    assert_eq!(vm["kind"], "VirtualMachine");
    let index = misspell_mac_address(&mut vm);
    let field = format!("spec.template.spec.domain.devices.interfaces[{index}].macAdress");
    let pointer = format!("/spec/template/spec/domain/devices/interfaces/{index}");

    // Strict (what kubectl sends): refused, naming the field; nothing stored.
    let status = support::refusal(support::create(&ns.client, &vm, true).await);
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"), "{status:?}");
    assert_eq!(
        status.message,
        format!(
            "VirtualMachine in version \"v1\" cannot be handled as a VirtualMachine: strict decoding error: unknown field \"{field}\""
        )
    );
    assert!(support::get(&ns.client, &vm).await.is_none(), "a refused VM was stored");

    // Server-side apply refuses it whatever the field validation: no silent pruning for the
    // controller, which applies server-side.
    for strict in [true, false] {
        let status = support::refusal(support::apply(&ns.client, &vm, strict).await);
        assert_eq!(status.code, 500, "{status:?}");
        assert!(status.message.contains(&format!(".{field}: field not declared in schema")), "{}", status.message);
        assert!(support::get(&ns.client, &vm).await.is_none(), "a refused VM was stored");
    }

    // The server's default for a create (Warn): accepted, and the field pruned.
    let mut expected = vm.pointer(&pointer).unwrap().clone();
    expected.as_object_mut().unwrap().remove("macAdress");
    let stored = support::create(&ns.client, &vm, false).await.expect("accepted without Strict");
    assert_eq!(stored.pointer(&pointer), Some(&expected));
    let read = support::get(&ns.client, &vm).await.expect("stored");
    let interface = read.pointer(&pointer).unwrap();
    assert!(interface.get("macAdress").is_none(), "the unknown field was kept: {interface}");
    assert_eq!(interface, &expected, "the interface was otherwise changed");
}

#[tokio::test]
async fn deleting_a_wukong_garbage_collects_its_nads_and_its_vm() {
    let ns = cluster().namespace("gc").await;
    let manifest = support::in_namespace(&support::documents("examples/web-server-01.yaml")[0], &ns.name);
    let owner = support::apply_strict(&ns.client, &manifest).await;
    let uid = owner["metadata"]["uid"].as_str().expect("the stored Wukong has a uid").to_string();

    // Rendered from the stored Wukong, the children carry the controller reference to it.
    let children = support::render_object(&owner, &ns.name);
    assert_eq!(children.len(), 3, "two NADs and a VM");
    for child in &children {
        let refs = child["metadata"]["ownerReferences"].as_array().expect("an owner reference");
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0]["uid"], uid.as_str());
        assert_eq!(refs[0]["kind"], "Wukong");
        assert_eq!(refs[0]["controller"], true);
        let stored = support::apply_strict(&ns.client, child).await;
        assert_eq!(stored["metadata"]["ownerReferences"], child["metadata"]["ownerReferences"]);
    }

    let api: Api<Wukong> = ns.api();
    // On a fresh control plane the garbage collector does not watch the CRDs' kinds yet.
    cluster().wait_for_garbage_collector().await;
    api.delete("web-server-01", &DeleteParams::default()).await.unwrap();
    for object in children.iter().chain([&owner]) {
        let what = format!("{} {} to be garbage collected", object["kind"], object["metadata"]["name"]);
        wait_for(&what, Duration::from_secs(30), || async {
            support::get(&ns.client, object).await.is_none().then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_service_account_client_authenticates_with_its_token_and_is_bound_by_rbac() {
    let cluster = cluster();
    let ns = cluster.namespace("rbac").await;
    let client = cluster.service_account_client(&ns.name, "reader").await;

    let review: SelfSubjectReview = serde_json::from_value(json!({})).unwrap();
    let review = Api::<SelfSubjectReview>::all(client.clone()).create(&PostParams::default(), &review).await.unwrap();
    let user = review.status.and_then(|s| s.user_info).and_then(|u| u.username);
    assert_eq!(user.as_deref(), Some(format!("system:serviceaccount:{}:reader", ns.name).as_str()));

    let wukongs: Api<Wukong> = Api::namespaced(client.clone(), &ns.name);
    let status = support::refusal(wukongs.list(&ListParams::default()).await);
    assert_eq!(status.code, 403, "{status:?}");

    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "wukong-reader" },
        "rules": [{ "apiGroups": ["vm.novasphere.dev"], "resources": ["wukongs"], "verbs": ["get", "list"] }],
    }))
    .unwrap();
    ns.api::<Role>().create(&PostParams::default(), &role).await.unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "wukong-reader" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wukong-reader" },
        "subjects": [{ "kind": "ServiceAccount", "name": "reader", "namespace": ns.name }],
    }))
    .unwrap();
    ns.api::<RoleBinding>().create(&PostParams::default(), &binding).await.unwrap();

    wait_for("the RoleBinding to let the ServiceAccount list wukongs", Duration::from_secs(10), || async {
        wukongs.list(&ListParams::default()).await.ok()
    })
    .await;
    // Only what the Role grants, only in its namespace.
    let other: Api<Wukong> = Api::namespaced(client.clone(), "default");
    assert_eq!(support::refusal(other.list(&ListParams::default()).await).code, 403);
    let accounts: Api<ServiceAccount> = Api::namespaced(client, &ns.name);
    assert_eq!(support::refusal(accounts.list(&ListParams::default()).await).code, 403);
}

#[tokio::test]
async fn a_private_cluster_starts_without_the_nad_crd_and_gets_it_later() {
    let private = support::private_cluster("control-plane", &["--without", "nad"]).await;
    let dir = private.dir.clone();
    assert_ne!(private.server, cluster().server);
    assert!(!private.installed_crd_sets().contains(&"nad".to_string()), "{:?}", private.installed_crd_sets());

    let client = private.admin_client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let nad_crd = "network-attachment-definitions.k8s.cni.cncf.io";
    assert!(crds.get_opt(nad_crd).await.unwrap().is_none(), "the NAD CRD is installed");
    for name in ["wukongs.vm.novasphere.dev", "virtualmachines.kubevirt.io", "virtualmachineinstances.kubevirt.io"] {
        assert!(condition_true(&crds.get(name).await.unwrap(), "Established"), "{name}");
    }

    private.install_crds("nad");
    assert!(condition_true(&crds.get(nad_crd).await.unwrap(), "Established"));
    assert!(private.installed_crd_sets().contains(&"nad".to_string()));
    let ns = private.namespace("nad").await;
    for object in support::render("examples/web-server-01.yaml", &ns.name) {
        support::apply_strict(&ns.client, &object).await;
    }

    // KubeVirt taken out of a running cluster: its webhooks go first, so VM writes do not fail
    // closed on a virt-api that is gone; the VM kinds stay served only while KubeVirt is there.
    let hooks = |c: Client| async move {
        let api: Api<DynamicObject> = Api::all_with(
            c,
            &ApiResource::erase::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>(&()),
        );
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|w| w.metadata.name)
            .collect::<Vec<_>>()
    };
    assert!(hooks(client.clone()).await.contains(&"virt-api-validator".to_string()));
    private.uninstall_crds("kubevirt");
    assert!(!private.installed_crd_sets().contains(&"kubevirt".to_string()));
    assert!(!hooks(client.clone()).await.iter().any(|h| h.starts_with("virt-api")), "virt-api's webhooks are gone");
    assert!(crds.get_opt("virtualmachines.kubevirt.io").await.unwrap().is_none(), "KubeVirt's CRDs are gone");
    let status = private.local_cluster(&["status"]);
    assert!(!status.contains("virt-api: running"), "{status}");
    assert!(status.contains("cdi-controller: running"), "CDI stays: {status}");
    drop(ns);

    drop(private);
    assert!(!dir.exists(), "{} is left after down", dir.display());
}
