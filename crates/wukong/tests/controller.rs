//! DESIGN §4's behaviour table against the real control plane, with the controller running
//! under the deploy/ ServiceAccount (real RBAC) and, for no-op and leader tests, with the API
//! server's audit log as the witness of what it wrote.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::controller::{args, start, start_in_namespace};
use support::{Cluster, TestNamespace, cluster, wait_for};
use wukong_api::Wukong;

const WAIT: Duration = Duration::from_secs(30);
const CONTROLLER_USER: &str = "system:serviceaccount:wukong-system:wukong";

// ---- setup ------------------------------------------------------------------------------------

/// A NetworkAttachmentDefinition written by someone else than wukong.
fn foreign_nad(namespace: &str, name: &str, bridge: &str) -> Value {
    let config = json!({ "cniVersion": "0.3.1", "name": name, "type": "bridge", "bridge": bridge }).to_string();
    json!({
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "config": config }
    })
}

fn wukong(path: &str, namespace: &str) -> Value {
    let doc = support::documents(path).into_iter().next().expect("a document");
    support::in_namespace(&doc, namespace)
}

async fn apply(client: &Client, object: &Value) {
    support::apply_strict(client, object).await;
}

fn nads(ns: &TestNamespace) -> Api<DynamicObject> {
    Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &kube::discovery::ApiResource::erase::<wukong_api::nad::NetworkAttachmentDefinition>(&()),
    )
}

fn vms(ns: &TestNamespace) -> Api<DynamicObject> {
    Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &kube::discovery::ApiResource::erase::<wukong_api::kubevirt::VirtualMachine>(&()),
    )
}

fn condition<'a>(w: &'a Wukong, type_: &str) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    w.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)
}

/// Waits until condition `type_` of Wukong `name` has `status` and `reason`; returns the Wukong.
async fn wait_condition(ns: &TestNamespace, name: &str, type_: &str, status: &str, reason: &str) -> Wukong {
    let api: Api<Wukong> = ns.api();
    wait_for(&format!("{type_}={status} ({reason}) on Wukong {}/{name}", ns.name), WAIT, || async {
        let w = api.get_opt(name).await.ok().flatten()?;
        let c = condition(&w, type_)?;
        (c.status == status && c.reason == reason && c.observed_generation == w.metadata.generation).then_some(w)
    })
    .await
}

async fn config_of(api: &Api<DynamicObject>, name: &str) -> Option<String> {
    let nad = api.get_opt(name).await.ok().flatten()?;
    nad.data.pointer("/spec/config").and_then(Value::as_str).map(str::to_string)
}

/// Events of the namespace as (type, reason).
async fn events(ns: &TestNamespace) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    api.list(&Default::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
        .collect()
}

// ---- the behaviour table ----------------------------------------------------------------------

#[tokio::test]
async fn create_yields_owned_nads_and_the_vm_and_a_truthful_status() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "create", &[]).await;
    let manifest = wukong("examples/web-server-01.yaml", &ns.name);
    apply(&ns.client, &manifest).await;

    let w = wait_condition(&ns, "web-server-01", "NetworksReady", "True", "NetworksAttached").await;
    let stored = serde_json::to_value(&w).unwrap();
    let expected = support::render_object(&stored, &ns.name);
    for object in &expected {
        let live =
            support::get(&ns.client, object).await.unwrap_or_else(|| panic!("missing {}", object["metadata"]["name"]));
        support::contained(&object["spec"], &live["spec"], "spec").unwrap();
        let owner = &live["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["uid"].as_str(), owner["controller"].as_bool()),
            (Some("Wukong"), w.metadata.uid.as_deref(), Some(true))
        );
        assert_eq!(live["metadata"]["labels"]["app.kubernetes.io/managed-by"], "wukong");
    }
    let vm = vms(&ns).get("web-server-01-vm").await.unwrap();
    let networks: Vec<&str> = vm.data["spec"]["template"]["spec"]["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(networks, ["default", "mgmt", "data"]);

    // virt-controller starts the VM, but no node runs it: the status says what KubeVirt says.
    // KubeVirt reports the VM some time after it is stored (and its printableStatus moves on):
    // wait until the Wukong says what KubeVirt says at that moment.
    let wukongs: Api<Wukong> = ns.api();
    let w = wait_for("VirtualMachineReady to say what KubeVirt reports", WAIT, || async {
        let w = wukongs.get("web-server-01").await.ok()?;
        let vm_ready = condition(&w, "VirtualMachineReady")?;
        let live = vms(&ns).get("web-server-01-vm").await.ok()?.data["status"].clone();
        let printable = live["printableStatus"].as_str().filter(|p| !p.is_empty())?.to_string();
        let says = format!("VirtualMachine {}/web-server-01-vm is stored; KubeVirt reports it {printable}", ns.name);
        (vm_ready.status == "False"
            && vm_ready.reason == "VirtualMachineNotRunning"
            && vm_ready.observed_generation == w.metadata.generation
            && vm_ready.message.starts_with(&says))
        .then_some(w)
    })
    .await;
    let ready = condition(&w, "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "VirtualMachineNotRunning"));
    let status = w.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(wukong_api::Phase::Creating));
    assert_eq!(status.vm_name.as_deref(), Some("web-server-01-vm"));
    assert_eq!(status.networks_attached.as_deref(), Some("2/2"), "the Networks printer column");
    assert_eq!(status.networks[1].nad_name.as_deref(), Some(format!("{}/web-server-01-mgmt-nad", ns.name).as_str()));

    let seen = events(&ns).await;
    assert!(seen.contains(&("Normal".into(), "NetworksAttached".into())), "{seen:?}");
    assert_eq!(controller.http_get("/readyz").await, (200, "ok".to_string()));
    let (code, metrics) = controller.http_get("/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("wukong_reconciles_total"), "{metrics}");
    assert!(metrics.contains("wukong_managed_objects{kind=\"NetworkAttachmentDefinition\"} 2"), "{metrics}");
    assert!(metrics.contains("wukong_leader 1"), "{metrics}");
    controller.stop().await;
}

#[tokio::test]
async fn an_edited_owned_nad_is_restored() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "drift", &[]).await;
    apply(&ns.client, &wukong("examples/web-server-01.yaml", &ns.name)).await;
    wait_condition(&ns, "web-server-01", "NetworksReady", "True", "NetworksAttached").await;
    let api = nads(&ns);
    let original = config_of(&api, "web-server-01-mgmt-nad").await.unwrap();

    // Someone edits the NAD we own, with their own field manager.
    let edit = json!({ "spec": { "config": original.replace("\"vlan\": 100", "\"vlan\": 999") } });
    api.patch("web-server-01-mgmt-nad", &PatchParams::default(), &Patch::Merge(&edit)).await.unwrap();
    assert!(config_of(&api, "web-server-01-mgmt-nad").await.unwrap().contains("999"));

    wait_for("the NAD's config to be restored", WAIT, || async {
        (config_of(&api, "web-server-01-mgmt-nad").await? == original).then_some(())
    })
    .await;
    controller.stop().await;
}

#[tokio::test]
async fn a_removed_network_deletes_its_nad_and_leaves_the_vm() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "remove", &[]).await;
    let mut manifest = wukong("examples/web-server-01.yaml", &ns.name);
    apply(&ns.client, &manifest).await;
    wait_condition(&ns, "web-server-01", "NetworksReady", "True", "NetworksAttached").await;
    let api = nads(&ns);
    assert!(api.get_opt("web-server-01-data-nad").await.unwrap().is_some());

    // Removing a network of a VM meant to run is refused at admission (it would orphan the
    // guest's interface): the user stops the VM in the same change.
    manifest["spec"]["networks"].as_array_mut().unwrap().retain(|n| n["name"] != "data");
    manifest["spec"]["startStrategy"] = json!({ "autoStart": false });
    apply(&ns.client, &manifest).await;
    wait_for("the data NAD to be deleted", WAIT, || async {
        api.get_opt("web-server-01-data-nad").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(api.get_opt("web-server-01-mgmt-nad").await.unwrap().is_some(), "the other NAD stays");
    wait_for("the VM to lose the data network", WAIT, || async {
        let vm = vms(&ns).get_opt("web-server-01-vm").await.ok()??;
        let names: Vec<Value> =
            vm.data["spec"]["template"]["spec"]["networks"].as_array()?.iter().map(|n| n["name"].clone()).collect();
        (names == [json!("default"), json!("mgmt")]).then_some(())
    })
    .await;

    // Switching a network to a nadName that does not exist yet holds the VM (NADNotFound), and
    // the NAD the VM still uses is kept: its next launcher pod needs it.
    for n in manifest["spec"]["networks"].as_array_mut().unwrap() {
        if n["name"] == "mgmt" {
            *n = json!({ "name": "mgmt", "type": "bridge", "nadName": "shared-mgmt" });
        }
    }
    apply(&ns.client, &manifest).await;
    wait_condition(&ns, "web-server-01", "NetworksReady", "False", "NADNotFound").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(api.get_opt("web-server-01-mgmt-nad").await.unwrap().is_some(), "kept while the held VM uses it");
    // Once the named NAD exists, the VM moves to it and the generated NAD goes.
    support::apply_strict(&ns.client, &foreign_nad(&ns.name, "shared-mgmt", "br-shared")).await;
    wait_for("the mgmt NAD to be deleted", WAIT, || async {
        api.get_opt("web-server-01-mgmt-nad").await.ok()?.is_none().then_some(())
    })
    .await;
    let vm = vms(&ns).get("web-server-01-vm").await.unwrap();
    assert_eq!(vm.data["spec"]["template"]["spec"]["networks"][1]["multus"]["networkName"], "shared-mgmt");
    controller.stop().await;
}

#[tokio::test]
async fn a_deleted_wukong_takes_its_children_with_it() {
    let c = cluster();
    c.wait_for_garbage_collector().await;
    let (ns, controller) = start_in_namespace(c, "gc", &[]).await;
    apply(&ns.client, &wukong("examples/web-server-01.yaml", &ns.name)).await;
    wait_condition(&ns, "web-server-01", "NetworksReady", "True", "NetworksAttached").await;
    wait_for("the VM", WAIT, || async { vms(&ns).get_opt("web-server-01-vm").await.ok()? }).await;

    let api: Api<Wukong> = ns.api();
    api.delete("web-server-01", &DeleteParams::default()).await.unwrap();
    wait_for("garbage collection of the NADs and the VM", WAIT, || async {
        let left = nads(&ns).list(&Default::default()).await.ok()?.items.len()
            + vms(&ns).list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    let wukong_finalizers = api.get_opt("web-server-01").await.unwrap();
    assert!(wukong_finalizers.is_none(), "no finalizer holds the Wukong");
    controller.stop().await;
}

#[tokio::test]
async fn a_foreign_nad_with_the_generated_name_is_never_touched() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "conflict", &[]).await;
    let foreign = foreign_nad(&ns.name, "web-server-01-mgmt-nad", "br-theirs");
    let before = support::create(&ns.client, &foreign, true).await.unwrap();
    apply(&ns.client, &wukong("examples/web-server-01.yaml", &ns.name)).await;

    let w = wait_condition(&ns, "web-server-01", "NetworksReady", "False", "NADConflict").await;
    assert!(
        condition(&w, "NetworksReady")
            .unwrap()
            .message
            .contains("web-server-01-mgmt-nad exists and is not controlled by this Wukong")
    );
    assert_eq!(condition(&w, "VirtualMachineReady").unwrap().reason, "WaitingForNetworks");
    let after = nads(&ns).get("web-server-01-mgmt-nad").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before["metadata"]["resourceVersion"].as_str().map(str::to_string),
        "the foreign NAD was written"
    );
    assert_eq!(serde_json::to_value(&after).unwrap()["spec"], before["spec"], "byte for byte");
    assert!(vms(&ns).get_opt("web-server-01-vm").await.unwrap().is_none(), "no VM while a network conflicts");
    assert!(
        nads(&ns).get_opt("web-server-01-data-nad").await.unwrap().is_some(),
        "the other network's NAD is ours to create"
    );
    assert!(events(&ns).await.contains(&("Warning".into(), "NADConflict".into())));
    controller.stop().await;
}

#[tokio::test]
async fn a_missing_nad_name_holds_the_vm_until_the_nad_exists() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "nadname", &[]).await;
    let manifest = json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": "lan-vm", "namespace": ns.name },
        "spec": { "cpu": 1, "memory": "1Gi", "networks": [{ "name": "lan", "type": "bridge", "nadName": "office-lan" }] }
    });
    apply(&ns.client, &manifest).await;
    let w = wait_condition(&ns, "lan-vm", "NetworksReady", "False", "NADNotFound").await;
    assert!(condition(&w, "NetworksReady").unwrap().message.contains("office-lan, which does not exist"));
    assert!(vms(&ns).get_opt("lan-vm-vm").await.unwrap().is_none());

    let nad = foreign_nad(&ns.name, "office-lan", "br-lan");
    let created = support::create(&ns.client, &nad, true).await.unwrap();
    // The NAD's watch event, not a resync, brings the VM.
    let vm = wait_for("the VM once its NAD exists", WAIT, || async { vms(&ns).get_opt("lan-vm-vm").await.ok()? }).await;
    assert_eq!(vm.data["spec"]["template"]["spec"]["networks"][1]["multus"]["networkName"], "office-lan");
    wait_condition(&ns, "lan-vm", "NetworksReady", "True", "NetworksAttached").await;
    let after = nads(&ns).get("office-lan").await.unwrap();
    assert_eq!(
        after.resource_version(),
        created["metadata"]["resourceVersion"].as_str().map(str::to_string),
        "a named NAD is never modified"
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_nad_in_another_namespace_needs_the_allow_list() {
    let c = cluster();
    let infra = c.namespace("infra").await;
    let nad = foreign_nad(&infra.name, "vlan42", "br42");
    support::create(&infra.client, &nad, true).await.unwrap();
    let manifest = |ns: &str| {
        json!({
            "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
            "metadata": { "name": "x-vm", "namespace": ns },
            "spec": { "cpu": 1, "memory": "1Gi", "networks": [{ "name": "infra", "type": "bridge", "nadName": format!("{}/vlan42", infra.name) }] }
        })
    };

    let (ns, controller) = start_in_namespace(c, "forbid", &[]).await;
    apply(&ns.client, &manifest(&ns.name)).await;
    let w = wait_condition(&ns, "x-vm", "NetworksReady", "False", "NADNamespaceForbidden").await;
    assert!(condition(&w, "NetworksReady").unwrap().message.contains("--nad-namespaces"));
    assert!(vms(&ns).get_opt("x-vm-vm").await.unwrap().is_none());
    controller.stop().await;

    let (ns, controller) = start_in_namespace(c, "allow", &["--nad-namespaces", &infra.name]).await;
    apply(&ns.client, &manifest(&ns.name)).await;
    wait_condition(&ns, "x-vm", "NetworksReady", "True", "NetworksAttached").await;
    let vm = wait_for("the VM", WAIT, || async { vms(&ns).get_opt("x-vm-vm").await.ok()? }).await;
    assert_eq!(
        vm.data["spec"]["template"]["spec"]["networks"][1]["multus"]["networkName"],
        format!("{}/vlan42", infra.name)
    );
    controller.stop().await;
}

#[tokio::test]
async fn without_multus_and_kubevirt_then_with_them_without_a_restart() {
    // A control plane of this test alone: the optional CRDs come and go.
    let c = support::private_cluster(
        "no-optional-kinds",
        &["--without", "nad", "--without", "kubevirt", "--without", "cdi"],
    )
    .await;
    let (ns, controller) = start_in_namespace(&c, "kinds", &[]).await;
    apply(&ns.client, &wukong("examples/web-server-01.yaml", &ns.name)).await;

    let w = wait_condition(&ns, "web-server-01", "NetworksReady", "False", "MultusNotInstalled").await;
    assert!(
        condition(&w, "NetworksReady").unwrap().message.contains("networks mgmt, data fell back to the pod network")
    );
    assert_eq!(condition(&w, "VirtualMachineReady").unwrap().reason, "KubeVirtNotInstalled");
    let names: Vec<&str> = w.status.as_ref().unwrap().networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["default", "mgmt", "data"]);
    assert!(w.status.as_ref().unwrap().networks.iter().all(|n| n.nad_name.is_none()), "fallback networks have no NAD");
    let warnings: Vec<_> =
        events(&ns).await.into_iter().filter(|(t, r)| t == "Warning" && r == "MultusNotInstalled").collect();
    assert_eq!(warnings.len(), 1, "one Warning event: {warnings:?}");

    // Multus appears: NADs are reconciled even though KubeVirt is still absent.
    c.install_crds("nad");
    wait_condition(&ns, "web-server-01", "NetworksReady", "True", "NetworksAttached").await;
    assert!(nads(&ns).get_opt("web-server-01-mgmt-nad").await.unwrap().is_some());
    let w = wait_condition(&ns, "web-server-01", "VirtualMachineReady", "False", "KubeVirtNotInstalled").await;
    assert_eq!(w.status.unwrap().phase, Some(wukong_api::Phase::Pending));

    // KubeVirt appears: the VM is created, with its networks attached.
    c.install_crds("kubevirt");
    let vm = wait_for("the VM once KubeVirt's CRDs exist", Duration::from_secs(60), || async {
        vms(&ns).get_opt("web-server-01-vm").await.ok()?
    })
    .await;
    let networks: Vec<&str> = vm.data["spec"]["template"]["spec"]["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(networks, ["default", "mgmt", "data"]);
    assert!(controller.state.is_leader(), "the same controller, never restarted");
    controller.stop().await;
}

#[tokio::test]
async fn a_foreign_vm_with_the_generated_name_is_never_overwritten() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "vmconflict", &[]).await;
    let foreign = json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": { "name": "web-server-01-vm", "namespace": ns.name },
        "spec": { "runStrategy": "Halted", "template": { "spec": { "domain": { "devices": {} } } } }
    });
    let before = support::create(&ns.client, &foreign, true).await.unwrap();
    apply(&ns.client, &wukong("examples/web-server-01.yaml", &ns.name)).await;
    wait_condition(&ns, "web-server-01", "VirtualMachineReady", "False", "VirtualMachineConflict").await;
    // virt-controller writes its status; wukong never writes it at all.
    let after = vms(&ns).get("web-server-01-vm").await.unwrap();
    assert_eq!(after.data["spec"], before["spec"], "the foreign VM's spec is untouched");
    let managers: Vec<String> =
        after.metadata.managed_fields.unwrap_or_default().into_iter().filter_map(|m| m.manager).collect();
    assert!(!managers.iter().any(|m| m == "wukong"), "wukong manages no field of a foreign VM: {managers:?}");

    // The foreign VM goes: its deletion alone triggers the Wukong (VMs map by name too), which
    // gets its own VM within seconds, not at the next resync.
    let deleted = std::time::Instant::now();
    vms(&ns).delete("web-server-01-vm", &Default::default()).await.unwrap();
    let vm = wait_for("wukong's own VM", Duration::from_secs(10), || async {
        let vm = vms(&ns).get_opt("web-server-01-vm").await.ok()??;
        let owned = vm.metadata.owner_references.as_ref()?.iter().any(|o| o.kind == "Wukong");
        owned.then_some(vm)
    })
    .await;
    eprintln!("controller test: the foreign VM's deletion to wukong's VM: {:?}", deleted.elapsed());
    assert_eq!(vm.data["spec"]["template"]["spec"]["networks"].as_array().map(Vec::len), Some(3));
    controller.stop().await;
}

// ---- idempotence and leadership, witnessed by the API server's audit log ----------------------

/// Writes the audit log recorded since `offset` for `namespace` by `user`.
fn audited_writes(c: &Cluster, offset: u64, namespace: &str, user: &str) -> Vec<(String, String, String, String)> {
    support::audit::writes_by(c, offset, namespace, user)
}

/// Every request the audit log recorded since `offset` for `namespace` by `user`, reads too.
fn audited(c: &Cluster, offset: u64, namespace: &str, user: &str) -> Vec<(String, String, String, String)> {
    support::audit::requests_by(c, offset, namespace, user)
}

fn audit_offset(c: &Cluster) -> u64 {
    support::audit::offset(c)
}

#[tokio::test]
async fn a_no_op_resync_of_a_converged_wukong_sends_no_write() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "noop", &["--resync", "1s"]).await;
    let start = audit_offset(c);
    apply(&ns.client, &wukong("examples/web-server-01.yaml", &ns.name)).await;
    wait_condition(&ns, "web-server-01", "VirtualMachineReady", "False", "VirtualMachineNotRunning").await;
    // Converged: the first reconciles wrote the children and the status.
    let first = audited_writes(c, start, &ns.name, CONTROLLER_USER);
    assert!(first.iter().any(|(verb, resource, _, _)| verb == "patch" && resource == "virtualmachines"), "{first:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let offset = audit_offset(c);
    let reconciles = controller.metric("wukong_reconciles_total");
    wait_for("three more resyncs", WAIT, || async {
        (controller.metric("wukong_reconciles_total") >= reconciles + 3.0).then_some(())
    })
    .await;
    let writes = audited_writes(c, offset, &ns.name, CONTROLLER_USER);
    assert_eq!(writes, Vec::<(String, String, String, String)>::new(), "a converged Wukong must not be written again");
    // Nor read: everything comes from the watches' stores, but for the cloud-init Secret, which
    // wukong may not watch and looks at once a resync (here every second).
    let reads: Vec<_> = audited(c, offset, &ns.name, CONTROLLER_USER)
        .into_iter()
        .filter(|(verb, ..)| verb == "get" || verb == "list")
        .filter(|(_, resource, _, name)| !(resource == "secrets" && name == "web-server-01-cloudinit"))
        .collect();
    assert_eq!(reads, Vec::<(String, String, String, String)>::new(), "a steady-state reconcile reads no other object");
    controller.stop().await;
}

#[tokio::test]
async fn a_second_replica_does_not_write_while_the_first_holds_the_lease() {
    let c = cluster();
    let (ns, first) = start_in_namespace(c, "replicas", &["--identity", "replica-a", "--lease-duration", "6"]).await;
    // The second replica runs as its own ServiceAccount (bound to the same ClusterRole in this
    // namespace), so the audit log tells its requests apart.
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": "wukong-b", "namespace": ns.name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "wukong-controller" },
        "subjects": [{ "kind": "ServiceAccount", "name": "wukong-b", "namespace": ns.name }]
    });
    apply(&ns.client, &binding).await;
    let client = c.service_account_client(&ns.name, "wukong-b").await;
    let second_user = format!("system:serviceaccount:{}:wukong-b", ns.name);
    let offset = audit_offset(c);
    let second = start(client, args(&ns.name, &["--identity", "replica-b", "--lease-duration", "6"])).await;

    apply(&ns.client, &wukong("examples/web-server-01.yaml", &ns.name)).await;
    wait_condition(&ns, "web-server-01", "NetworksReady", "True", "NetworksAttached").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.state.is_leader());
    assert!(!second.state.is_leader());
    assert_eq!(second.metric("wukong_reconciles_total"), 0.0, "the standby reconciled");
    assert_eq!(second.http_get("/readyz").await.0, 200, "a standby is ready to take over");
    let lease: Api<k8s_openapi::api::coordination::v1::Lease> = ns.api();
    let holder = lease.get("wukong-controller").await.unwrap().spec.and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("replica-a"));
    let writes = audited_writes(c, offset, &ns.name, &second_user);
    assert_eq!(
        writes,
        Vec::<(String, String, String, String)>::new(),
        "the standby wrote while the leader held the lease"
    );

    // The leader goes away (releasing the lease): the standby takes over and reconciles.
    first.stop().await;
    wait_for("replica-b to lead", WAIT, || async { second.state.is_leader().then_some(()) }).await;
    let mut manifest = wukong("examples/web-server-01.yaml", &ns.name);
    manifest["spec"]["networks"].as_array_mut().unwrap().retain(|n| n["name"] != "data");
    manifest["spec"]["startStrategy"] = json!({ "autoStart": false });
    apply(&ns.client, &manifest).await;
    wait_for("replica-b to delete the data NAD", WAIT, || async {
        nads(&ns).get_opt("web-server-01-data-nad").await.ok()?.is_none().then_some(())
    })
    .await;
    let writes = audited_writes(c, offset, &ns.name, &second_user);
    assert!(
        writes.iter().any(|(verb, resource, _, name)| verb == "delete"
            && resource == "network-attachment-definitions"
            && name == "web-server-01-data-nad"),
        "{writes:?}"
    );
    second.stop().await;
}
