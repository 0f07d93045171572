//! The controller through faults of the real control plane (DESIGN §4's failure rows): the API
//! server or etcd killed and back, the Multus CRD gone for a moment, a Wukong that no longer
//! decodes. Each runs in a control plane of its own, which the test breaks on purpose.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use support::controller::{args, install_rbac, start};
use support::{TestNamespace, wait_for};
use wukong_api::Wukong;

/// How soon new work must be picked up once the control plane is back.
const RECOVERY: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(60);

fn wukong(name: &str, namespace: &str) -> Value {
    let mut w = support::in_namespace(&support::documents("examples/web-server-01.yaml")[0], namespace);
    w["metadata"]["name"] = json!(name);
    w
}

fn condition(w: &Wukong, type_: &str) -> Option<(String, String)> {
    let c = w.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn networks_attached(ns: &TestNamespace, name: &str, within: Duration) -> Wukong {
    let api: Api<Wukong> = ns.api();
    wait_for(&format!("{name}: NetworksReady=True"), within, || async {
        let w = api.get_opt(name).await.ok()??;
        (condition(&w, "NetworksReady")? == ("True".into(), "NetworksAttached".into())).then_some(w)
    })
    .await
}

/// Creates a Wukong, retrying while the API server is still coming back; returns when stored.
async fn create_when_possible(ns: &TestNamespace, object: &Value) -> Instant {
    wait_for("the API server to take a Wukong", WAIT, || async {
        support::apply(&ns.client, object, true).await.ok().map(|_| Instant::now())
    })
    .await
}

const CONTROLLER: &str = "system:serviceaccount:wukong-system:wukong";

#[tokio::test]
async fn after_an_api_server_or_etcd_outage_new_work_is_picked_up_within_seconds() {
    let c = support::private_cluster("faults-outage", &["--without", "kubevirt", "--without", "cdi"]).await;
    install_rbac(&c);
    let ns = c.namespace("outage").await;
    let client = c.service_account_client("wukong-system", "wukong").await;
    // A short resync: with a stale store, a resync of a Wukong deleted meanwhile would write.
    let controller = start(client, args(&ns.name, &["--resync", "3s"])).await;
    wait_for("the controller to lead", WAIT, || async { controller.state.is_leader().then_some(()) }).await;
    support::apply_strict(&ns.client, &wukong("before", &ns.name)).await;
    networks_attached(&ns, "before", WAIT).await;

    for component in ["kube-apiserver", "etcd"] {
        // 20 s down: every watch of the controller fails meanwhile.
        c.local_cluster(&["kill", component]);
        tokio::time::sleep(Duration::from_secs(20)).await;
        c.local_cluster(&["start", component]);

        // Back: a Wukong deleted and a new one created at once.
        let offset = support::audit::offset(&c);
        let api: Api<Wukong> = ns.api();
        wait_for("the API server to delete a Wukong", WAIT, || async {
            api.delete("before", &DeleteParams::default()).await.ok()
        })
        .await;
        let name = format!("after-{component}");
        let created = create_when_possible(&ns, &wukong(&name, &ns.name)).await;
        networks_attached(&ns, &name, WAIT).await;
        let took = created.elapsed();
        eprintln!("faults test: after {component} came back, a new Wukong was reconciled in {took:?}");
        assert!(took <= RECOVERY, "{component}: a new Wukong took {took:?} to be reconciled (bound {RECOVERY:?})");

        // Resyncs fired meanwhile (every 3 s): nothing was written for the deleted Wukong.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let for_before: Vec<_> = support::audit::writes_by(&c, offset, &ns.name, CONTROLLER)
            .into_iter()
            .filter(|(_, _, _, n)| n.starts_with("before"))
            .collect();
        assert!(for_before.is_empty(), "{component}: writes for the deleted Wukong: {for_before:?}");
        // The next round starts from a Wukong called before again.
        support::apply_strict(&ns.client, &wukong("before", &ns.name)).await;
        networks_attached(&ns, "before", WAIT).await;
    }
    assert!(controller.state.is_leader(), "the same controller all along");
    controller.stop().await;
}

#[tokio::test]
async fn a_multus_crd_that_goes_and_comes_back_at_once_changes_no_vm() {
    let c = support::private_cluster("faults-multus", &["--without", "cdi"]).await;
    support::kubevirt::require(&c, false);
    install_rbac(&c);
    let ns = c.namespace("flap").await;
    let client = c.service_account_client("wukong-system", "wukong").await;
    // Discovery every 3 s: a kind counts as gone after 3 checks over 6 s.
    let controller = start(client, args(&ns.name, &["--discovery-interval", "3s"])).await;
    wait_for("the controller to lead", WAIT, || async { controller.state.is_leader().then_some(()) }).await;
    support::apply_strict(&ns.client, &wukong("web", &ns.name)).await;
    networks_attached(&ns, "web", WAIT).await;
    let vms: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &support::kubevirt::vm_resource());
    let vm = wait_for("the VM", WAIT, || async { vms.get_opt("web-vm").await.ok()? }).await;
    let networks = vm.data["spec"]["template"]["spec"]["networks"].clone();

    // A Multus reinstall: the NAD CRD (and with it every NAD) goes, and comes back.
    let offset = support::audit::offset(&c);
    let started = Instant::now();
    c.uninstall_crds("nad");
    c.install_crds("nad");
    eprintln!("faults test: the NAD CRD was away for {:?}", started.elapsed());
    // wukong makes its NADs again; the VM is not written.
    networks_attached(&ns, "web", WAIT).await;
    let nads: Api<DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &kube::discovery::ApiResource::erase::<wukong_api::nad::NetworkAttachmentDefinition>(&()),
    );
    wait_for("the NADs again", WAIT, || async { nads.get_opt("web-mgmt-nad").await.ok()? }).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let vm_writes: Vec<_> = support::audit::writes_by(&c, offset, &ns.name, CONTROLLER)
        .into_iter()
        .filter(|(_, resource, _, _)| resource == "virtualmachines")
        .collect();
    assert!(vm_writes.is_empty(), "the VM was written during a Multus blip: {vm_writes:?}");
    let vm = vms.get("web-vm").await.unwrap();
    assert_eq!(vm.data["spec"]["template"]["spec"]["networks"], networks, "the VM keeps its networks");
    controller.stop().await;
}

#[tokio::test]
async fn a_wukong_that_no_longer_decodes_does_not_stall_the_others() {
    let c = support::private_cluster("faults-decode", &["--without", "kubevirt", "--without", "cdi"]).await;
    install_rbac(&c);
    let admin = c.admin_client().await;
    // An older CRD: the spec of any shape (here `cpu: "four"`, which wukong's types refuse).
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let mut crd = support::our_wukong_crd();
    for version in crd["spec"]["versions"].as_array_mut().unwrap() {
        version["schema"]["openAPIV3Schema"]["properties"]["spec"] =
            json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    }
    crds.patch("wukongs.vm.novasphere.dev", &PatchParams::apply(support::FIELD_MANAGER).force(), &Patch::Apply(crd))
        .await
        .expect("the older CRD");
    let ns = c.namespace("decode").await;
    let mut broken = wukong("broken", &ns.name);
    broken["spec"]["cpu"] = json!("four");
    wait_for("the older CRD to take a string cpu", WAIT, || async {
        support::apply(&ns.client, &broken, false).await.ok()
    })
    .await;
    for name in ["good-a", "good-b"] {
        support::apply_strict(&ns.client, &wukong(name, &ns.name)).await;
    }

    let client = c.service_account_client("wukong-system", "wukong").await;
    let controller = start(client, args(&ns.name, &[])).await;
    for name in ["good-a", "good-b"] {
        networks_attached(&ns, name, WAIT).await;
    }
    let api: Api<Wukong> = Api::namespaced(ns.client.clone(), &ns.name);
    // The broken one is told why, without being decoded: read it untyped.
    let raw: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.name, &kube::discovery::ApiResource::erase::<Wukong>(&()));
    let status = wait_for("InvalidSpec on the Wukong that does not decode", WAIT, || async {
        let w = raw.get("broken").await.ok()?;
        let ready = w.data["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
        (ready["reason"] == "InvalidSpec").then_some(ready)
    })
    .await;
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not decode") && message.contains("cpu"), "{message}");
    assert!(api.get_opt("good-a").await.is_ok());
    controller.stop().await;
}
