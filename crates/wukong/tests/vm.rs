//! A complete VM on the real control plane: disks and cloud-init admitted by KubeVirt, SSH keys
//! from a Secret (missing, then present, then changed), and what KubeVirt's and CDI's real
//! controllers report (with stand-ins, named so, for what needs storage, a node and a guest)
//! showing up in the Wukong's status.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use support::controller::start_in_namespace;
use support::kubevirt as kv;
use support::{TestNamespace, cluster, wait_for};
use wukong_api::Wukong;

const WAIT: Duration = Duration::from_secs(30);

fn full_vm(namespace: &str) -> Value {
    support::in_namespace(&support::documents("examples/full-vm.yaml")[0], namespace)
}

fn vms(ns: &TestNamespace) -> Api<DynamicObject> {
    Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &kube::discovery::ApiResource::erase::<wukong_api::kubevirt::VirtualMachine>(&()),
    )
}

async fn ssh_secret(ns: &TestNamespace, keys: &[(&str, &str)]) {
    let api: Api<Secret> = ns.api();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "db-ssh-keys", "namespace": ns.name },
        "stringData": keys.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()
    }))
    .unwrap();
    api.patch("db-ssh-keys", &PatchParams::apply("test-user").force(), &Patch::Apply(&secret)).await.unwrap();
}

async fn user_data(ns: &TestNamespace) -> Option<String> {
    let api: Api<Secret> = ns.api();
    let secret = api.get_opt("db-01-cloudinit").await.ok()??;
    let data = secret.data?;
    Some(String::from_utf8(data.get("userdata")?.0.clone()).unwrap())
}

async fn wait_condition(ns: &TestNamespace, type_: &str, reason: &str) -> Wukong {
    let api: Api<Wukong> = ns.api();
    wait_for(&format!("{type_} reason {reason}"), WAIT, || async {
        let w = api.get_opt("db-01").await.ok()??;
        let c = w.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?.clone();
        (c.reason == reason).then_some(w)
    })
    .await
}

#[tokio::test]
async fn ssh_keys_reach_the_guest_through_kubevirt_and_wukong_never_reads_them() {
    let c = cluster();
    let (ns, controller) = start_in_namespace(c, "sshkeys", &[]).await;
    kv::ensure_storage_class(&ns.client, "fast-ssd").await;
    support::apply_strict(&ns.client, &full_vm(&ns.name)).await;

    // The Secret does not exist yet: a clear condition and no VM.
    let w = wait_condition(&ns, "VirtualMachineReady", "SecretNotFound").await;
    let message =
        &w.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "VirtualMachineReady").unwrap().message;
    assert!(
        message.contains(&format!("Secret {}/db-ssh-keys named by sshKeySecret does not exist", ns.name)),
        "{message}"
    );
    assert!(vms(&ns).get_opt("db-01-vm").await.unwrap().is_none());
    assert_eq!(user_data(&ns).await, None, "no cloud-init Secret for a VM that is held");

    // It appears (wukong may not watch Secrets: it looks again every few seconds). The VM
    // names it in accessCredentials, virt-api admits that, and neither the VM nor the
    // cloud-init Secret holds a key.
    ssh_secret(&ns, &[("admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 admin@example")]).await;
    let vm = wait_for("the VM", Duration::from_secs(45), || async { vms(&ns).get_opt("db-01-vm").await.ok()? }).await;
    let vm_text = serde_json::to_string(&vm).unwrap();
    assert!(!vm_text.contains("ssh-ed25519"), "SSH keys never inline in the VM");
    assert!(!vm_text.contains("$6$"), "the password hash stays in the Secret");
    assert_eq!(
        vm.data["spec"]["template"]["spec"]["accessCredentials"],
        json!([{ "sshPublicKey": { "source": { "secret": { "secretName": "db-ssh-keys" } }, "propagationMethod": { "noCloud": {} } } }])
    );
    let volumes = vm.data["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["cloudInitNoCloud"]["secretRef"]["name"] == "db-01-cloudinit"));
    assert_eq!(vm.data["spec"]["dataVolumeTemplates"].as_array().unwrap().len(), 2);
    let user = user_data(&ns).await.expect("the cloud-init Secret");
    assert!(!user.contains("ssh-ed25519"), "{user}");
    assert!(user.contains("default_user:") && user.contains("\"dbadmin\""), "the user that gets the keys: {user}");
    let api: Api<Secret> = ns.api();
    let cloud_init = api.get("db-01-cloudinit").await.unwrap();
    let owner = &cloud_init.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("Wukong", Some(true)));

    // The controller's ServiceAccount cannot list or watch Secrets at all.
    let sa = c.service_account_client("wukong-system", "wukong").await;
    let secrets: Api<Secret> = Api::namespaced(sa, &ns.name);
    assert_eq!(support::refusal(secrets.list(&Default::default()).await).code, 403);
    controller.stop().await;
}

#[tokio::test]
async fn what_kubevirt_and_cdi_report_shows_up_in_the_wukong_status() {
    let c = cluster();
    kv::require(c, true);
    let (ns, controller) = start_in_namespace(c, "vmistatus", &[]).await;
    kv::ensure_storage_class(&ns.client, "fast-ssd").await;
    ssh_secret(&ns, &[("admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 admin@example")]).await;
    support::apply_strict(&ns.client, &full_vm(&ns.name)).await;
    let vm = wait_for("the VM", WAIT, || async { vms(&ns).get_opt("db-01-vm").await.ok()? }).await;
    let interfaces = vm.data["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"].as_array().unwrap().clone();
    let mac_of =
        |name: &str| interfaces.iter().find(|i| i["name"] == name).unwrap()["macAddress"].as_str().unwrap().to_string();
    let api: Api<Wukong> = ns.api();
    let volume = |w: &Wukong, disk: &str| w.status.as_ref()?.volumes.iter().find(|v| v.name == disk).cloned();

    // 1. virt-controller makes the DataVolumes, CDI their PVCs; nothing binds them yet.
    let w = wait_for("the DataVolumes' phase in status", kv::STEP, || async {
        let w = api.get_opt("db-01").await.ok()??;
        (volume(&w, "system")?.phase.as_deref() == Some("WaitForFirstConsumer")).then_some(w)
    })
    .await;
    let system = volume(&w, "system").unwrap();
    assert_eq!((system.pvc_name.as_deref(), system.bound), (Some("db-01-system"), Some(false)));

    // 2. STAND-INS for storage and a node: PVCs bound, the import done. CDI reports Succeeded.
    kv::import_data_volumes(&ns.client, &ns.name, &["db-01-system", "db-01-data"]).await;
    let w = wait_for("the imported disks in status", kv::STEP, || async {
        let w = api.get_opt("db-01").await.ok()??;
        let done =
            |d: &str| volume(&w, d).is_some_and(|v| v.phase.as_deref() == Some("Succeeded") && v.bound == Some(true));
        (done("system") && done("data")).then_some(w)
    })
    .await;
    let (overhead, math) = kv::filesystem_overhead(c).await;
    let thirty_gi = wukong_render::disks::cdi_request(30 << 30, overhead, false, math).to_string();
    assert_eq!(volume(&w, "system").unwrap().size, Some(thirty_gi.clone()), "the bound PVC's capacity");

    // 3. virt-controller makes the launcher pod. STAND-IN for the scheduler and the kubelet: it
    //    runs on node-a; virt-controller moves the VMI to Scheduled there by itself.
    let pod = kv::launcher_pod(&ns.client, &ns.name, "db-01-vm").await;
    kv::schedule_and_run(&ns.client, &pod, "node-a").await;
    let w = wait_for("the node in status", kv::STEP, || async {
        let w = api.get_opt("db-01").await.ok()??;
        (w.status.as_ref()?.node_name.as_deref() == Some("node-a")).then_some(w)
    })
    .await;
    assert_eq!(w.status.as_ref().unwrap().phase, Some(wukong_api::Phase::Creating), "Scheduled is not Running yet");

    // 4. STAND-IN for virt-handler and the guest agent (a booted guest): the VMI runs, with the
    //    guest's interfaces (IPs with or without prefix, upper-case MACs, as they report them).
    //    virt-controller then reports the VM ready itself.
    kv::report_guest_running(c, &ns.name, "db-01-vm", json!([
        { "name": "default", "ipAddress": "10.244.1.7", "mac": mac_of("default"), "interfaceName": "enp1s0" },
        { "name": "mgmt", "ipAddresses": ["192.168.100.20/24"], "mac": mac_of("mgmt").to_uppercase(), "interfaceName": "enp2s0" },
        { "name": "storage", "ipAddress": "2001:db8:200::20", "mac": mac_of("storage"), "interfaceName": "enp3s0" }
    ]))
    .await;
    let w = wait_condition(&ns, "VirtualMachineReady", "VirtualMachineRunning").await;
    let status = w.status.unwrap();
    assert_eq!(status.phase, Some(wukong_api::Phase::Running));
    assert_eq!(status.node_name.as_deref(), Some("node-a"));
    let net = |name: &str| status.networks.iter().find(|n| n.name == name).unwrap().clone();
    assert_eq!(net("mgmt").ip_address.as_deref(), Some("192.168.100.20"));
    assert_eq!(net("mgmt").mac_address, Some(mac_of("mgmt")));
    assert_eq!(net("mgmt").interface.as_deref(), Some("enp2s0"));
    assert_eq!(net("storage").ip_address.as_deref(), Some("2001:db8:200::20"));
    assert_eq!(net("default").ip_address.as_deref(), Some("10.244.1.7"));
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Reconciled"));

    // 5. The boot disk grows by 1Gi, less than CDI's filesystem overhead: the PVC is asked for
    //    what CDI would request for a new 31Gi disk (CDI sized it only once, and refuses any
    //    change of the DataVolume).
    let mut grown = full_vm(&ns.name);
    grown["spec"]["disks"][0]["size"] = json!("31Gi");
    support::apply_strict(&ns.client, &grown).await;
    let thirty_one_gi = wukong_render::disks::cdi_request(31 << 30, overhead, false, math).to_string();
    let pvcs: Api<PersistentVolumeClaim> = ns.api();
    wait_for(&format!("the PVC to request {thirty_one_gi} (31Gi as CDI sizes it)"), WAIT, || async {
        let pvc = pvcs.get("db-01-system").await.ok()?;
        let storage = pvc.spec?.resources?.requests?.get("storage")?.0.clone();
        (storage == thirty_one_gi).then_some(())
    })
    .await;
    controller.stop().await;
}
