//! Recognizing the original operator's objects, and nothing else.

use serde_json::json;

use super::*;
use crate::{plan, validate_object};

fn valid(spec: Value) -> crate::Validated {
    validate_object(&json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": "6f1c2d3e-0000-4000-8000-000000000001" },
        "spec": spec,
    }))
    .expect("valid")
}

/// The original's own documentation example: two bridge networks, a data disk, a boot disk.
fn seed() -> crate::Validated {
    valid(json!({
        "cpu": 2, "memory": "4Gi",
        "networks": [
            { "name": "default", "type": "bridge", "ipConfig": { "mode": "dhcp" } },
            { "name": "mgmt", "type": "bridge", "vlanId": 100,
              "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
            { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } },
            { "name": "lan", "type": "bridge", "nadName": "office-lan" }
        ],
        "disks": [
            { "name": "system", "size": "20Gi", "storageClassName": "longhorn", "boot": true,
              "image": "http://images.example/noble.img" },
            { "name": "data", "size": "50Gi", "storageClassName": "longhorn" }
        ],
        "cloudInitUser": { "name": "ubuntu", "passwordHash": "$6$x$y" }
    }))
}

fn net<'a>(v: &'a crate::Validated, name: &str) -> &'a wukong_api::NetworkSpec {
    v.wukong().spec.networks.iter().find(|n| n.name == name).expect("the network")
}

/// A NAD as the original created it for network `name` of the seed.
fn original_nad(v: &crate::Validated, name: &str) -> Value {
    original::nads(v.wukong()).into_iter().find(|n| n["metadata"]["name"] == json!(format!("web-{name}-nad"))).unwrap()
}

// ---- the original's CNI config ------------------------------------------------------------------

#[test]
fn the_original_config_is_the_design_notes_golden_example() {
    let v = seed();
    // seed §3.2, as the original's buildCNIConfig marshals it (Go sorts the ipam map's keys).
    assert_eq!(
        original::cni_config(net(&v, "mgmt")),
        r#"{"cniVersion":"0.3.1","type":"bridge","bridge":"br-mgmt","vlan":100,"ipam":{"addresses":[{"address":"192.168.100.10/24"}],"routes":[{"dst":"0.0.0.0/0","gw":"192.168.100.1"}],"type":"static"}}"#
    );
    assert_eq!(
        original::cni_config(net(&v, "data")),
        r#"{"cniVersion":"0.3.1","type":"bridge","bridge":"br-data","ipam":{"type":"dhcp"}}"#
    );
    for name in ["mgmt", "data", "default"] {
        let parsed: Value = serde_json::from_str(&original::cni_config(net(&v, name))).unwrap();
        assert_eq!(parsed, original_cni_config(net(&v, name)), "{name}");
    }
}

#[test]
fn other_types_carry_only_cni_version_type_and_ipam() {
    let v = valid(json!({ "cpu": 1, "memory": "1Gi", "networks": [
        { "name": "sr", "type": "sriov", "resourceName": "intel.com/vf", "vlanId": 200, "ipConfig": { "mode": "dhcp" } },
        { "name": "mv", "type": "macvlan", "master": "eth1" },
        { "name": "ov", "type": "ovs", "bridgeName": "br-ovs", "ipConfig": { "mode": "static", "address": "10.0.0.5/24" } }
    ]}));
    assert_eq!(
        original_cni_config(net(&v, "sr")),
        json!({ "cniVersion": "0.3.1", "type": "sriov", "ipam": { "type": "dhcp" } })
    );
    assert_eq!(original_cni_config(net(&v, "mv")), json!({ "cniVersion": "0.3.1", "type": "macvlan" }));
    assert_eq!(
        original_cni_config(net(&v, "ov")),
        json!({ "cniVersion": "0.3.1", "type": "ovs", "bridge": "br-ovs",
                "ipam": { "type": "static", "addresses": [{ "address": "10.0.0.5/24" }] } })
    );
}

// ---- NADs ------------------------------------------------------------------------------------

#[test]
fn the_originals_nad_is_recognized_as_created_and_as_the_api_server_returns_it() {
    let v = seed();
    let mut nad = original_nad(&v, "mgmt");
    assert!(is_original_nad(net(&v, "mgmt"), &nad));
    // What the API server adds, and the same config pretty-printed (say, re-created by hand
    // from a backup with the same bytes' meaning), change nothing.
    nad["metadata"]["uid"] = json!("u-1");
    nad["metadata"]["resourceVersion"] = json!("42");
    nad["metadata"]["generation"] = json!(1);
    nad["metadata"]["creationTimestamp"] = json!("2025-11-01T00:00:00Z");
    nad["metadata"]["managedFields"] = json!([{ "manager": "manager", "operation": "Update" }]);
    nad["metadata"]["labels"] = json!({});
    let pretty = serde_json::to_string_pretty(&original_cni_config(net(&v, "mgmt"))).unwrap();
    nad["spec"]["config"] = json!(pretty);
    assert!(is_original_nad(net(&v, "mgmt"), &nad));
}

#[test]
fn a_nad_that_differs_from_the_originals_rendering_in_anything_stays_foreign() {
    let v = seed();
    let mgmt = net(&v, "mgmt");
    let base = original_nad(&v, "mgmt");
    let config = |edit: &dyn Fn(&mut Value)| {
        let mut c = original_cni_config(mgmt);
        edit(&mut c);
        let mut nad = base.clone();
        nad["spec"]["config"] = json!(c.to_string());
        nad
    };
    let meta = |key: &str, value: Value| {
        let mut nad = base.clone();
        nad["metadata"][key] = value;
        nad
    };
    let cases = [
        ("another VLAN", config(&|c| c["vlan"] = json!(101))),
        ("a CNI name (wukong's form)", config(&|c| c["name"] = json!("web-mgmt-nad"))),
        ("an mtu", config(&|c| c["mtu"] = json!(9000))),
        ("another bridge", config(&|c| c["bridge"] = json!("br0"))),
        ("no ipam", config(&|c| drop(c.as_object_mut().unwrap().remove("ipam")))),
        ("cniVersion 1.0.0", config(&|c| c["cniVersion"] = json!("1.0.0"))),
        (
            "an owner",
            meta("ownerReferences", json!([{ "apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u" }])),
        ),
        ("a label", meta("labels", json!({ "team": "net" }))),
        ("an annotation", meta("annotations", json!({ "kubectl.kubernetes.io/last-applied-configuration": "{}" }))),
        ("a finalizer", meta("finalizers", json!(["example.com/keep"]))),
        ("being deleted", meta("deletionTimestamp", json!("2025-11-02T00:00:00Z"))),
        ("a config that is no JSON", {
            let mut n = base.clone();
            n["spec"]["config"] = json!("{");
            n
        }),
        ("no config", {
            let mut n = base.clone();
            n["spec"] = json!({});
            n
        }),
    ];
    for (what, nad) in cases {
        assert!(!is_original_nad(mgmt, &nad), "{what}: must stay foreign");
    }
    // The original's NAD of another network is not this network's.
    assert!(!is_original_nad(mgmt, &original_nad(&v, "data")));
}

// ---- the VM ------------------------------------------------------------------------------------

#[test]
fn the_originals_vm_keeps_its_claims_and_while_it_runs_its_interface_names() {
    let v = seed();
    let plan = plan::plan(v.wukong(), true);
    let live = original::vm(v.wukong());
    let running = takeover(v.wukong(), &plan, Some(&live), true);
    assert_eq!(running.kept_claims, BTreeSet::from(["system".to_string(), "data".to_string()]));
    assert_eq!(
        running.interface_names,
        BTreeMap::from([
            ("mgmt".to_string(), "web-mgmt-nad".to_string()),
            ("data".to_string(), "web-data-nad".to_string()),
            ("lan".to_string(), "office-lan".to_string()),
        ])
    );
    assert_eq!(running.interface_name("mgmt"), "web-mgmt-nad");
    // Stopped: nothing is hot-plugged into a VM that does not run, so wukong's names apply.
    let stopped = takeover(v.wukong(), &plan, Some(&live), false);
    assert_eq!(stopped.kept_claims, running.kept_claims, "the disks are kept either way");
    assert!(stopped.interface_names.is_empty());
    assert_eq!(stopped.interface_name("mgmt"), "mgmt");
}

#[test]
fn a_vm_wukong_rendered_needs_no_takeover() {
    let v = seed();
    let plan = plan::plan(v.wukong(), true);
    let ours = serde_json::to_value(crate::vm::virtual_machine(v.wukong(), &plan)).unwrap();
    assert_eq!(takeover(v.wukong(), &plan, Some(&ours), true), Takeover::default());
    assert_eq!(takeover(v.wukong(), &plan, None, true), Takeover::default());
    assert!(vm_patch(&ours, "Always").is_empty(), "nothing of the original's to remove");
}

#[test]
fn only_the_originals_exact_forms_are_kept() {
    let v = seed();
    let plan = plan::plan(v.wukong(), true);
    let mut live = original::vm(v.wukong());
    // A claim of another name, and a network named after a NAD it does not use, are not the
    // original's rendering of this Wukong.
    live["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = json!("restored-system");
    live["spec"]["template"]["spec"]["networks"][2]["multus"]["networkName"] = json!("other-nad");
    let t = takeover(v.wukong(), &plan, Some(&live), true);
    assert_eq!(t.kept_claims, BTreeSet::from(["data".to_string()]));
    assert!(!t.interface_names.contains_key("mgmt"), "{t:?}");
    // Once the VM carries wukong's name for a network, that name stays.
    live["spec"]["template"]["spec"]["networks"][3]["name"] = json!("data");
    let t = takeover(v.wukong(), &plan, Some(&live), true);
    assert!(!t.interface_names.contains_key("data"), "{t:?}");
}

#[test]
fn the_vm_patch_swaps_running_for_the_run_strategy_and_drops_the_networks_annotations() {
    let v = seed();
    let live = original::vm(v.wukong());
    let annotation = live["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"].clone();
    assert!(annotation.as_str().unwrap().contains(r#""interface":"net2""#), "{annotation}");
    assert_eq!(
        vm_patch(&live, "Always"),
        [
            json!({ "op": "test", "path": "/spec/running", "value": true }),
            json!({ "op": "remove", "path": "/spec/running" }),
            json!({ "op": "add", "path": "/spec/runStrategy", "value": "Always" }),
            json!({ "op": "test", "path": "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", "value": annotation }),
            json!({ "op": "remove", "path": "/metadata/annotations/k8s.v1.cni.cncf.io~1networks" }),
            json!({ "op": "test", "path": "/spec/template/metadata/annotations/k8s.v1.cni.cncf.io~1networks", "value": annotation }),
            json!({ "op": "remove", "path": "/spec/template/metadata/annotations/k8s.v1.cni.cncf.io~1networks" }),
        ]
    );
    let mut stopped = live.clone();
    stopped["spec"]["running"] = json!(false);
    assert_eq!(
        vm_patch(&stopped, "Halted")[..3],
        [
            json!({ "op": "test", "path": "/spec/running", "value": false }),
            json!({ "op": "remove", "path": "/spec/running" }),
            json!({ "op": "add", "path": "/spec/runStrategy", "value": "Halted" }),
        ]
    );
}

#[test]
fn the_originals_claims_grow_only_with_size_and_without_cdis_overhead() {
    let v = seed();
    let plan = plan::plan(v.wukong(), true);
    let live = original::vm(v.wukong());
    let takeover = takeover(v.wukong(), &plan, Some(&live), true);
    let overhead = disks::FilesystemOverhead { global: "0.06".into(), ..Default::default() };
    let pvc = |name: &str, requested: &str| disks::PvcObservation {
        name: name.into(),
        requested: requested.into(),
        block: false,
        storage_class: Some("longhorn".into()),
    };
    // As the original made them: exactly 20Gi and 50Gi.
    let pvcs = [pvc("web-system", "20Gi"), pvc("web-data", "50Gi")];
    assert_eq!(expansions(v.wukong(), &pvcs, Some(&overhead), &takeover), []);
    // The same PVCs under wukong's own DataVolumes would get CDI's overhead.
    assert_eq!(expansions(v.wukong(), &pvcs, Some(&overhead), &Takeover::default()).len(), 2);
    // A grown disk asks its PVC for exactly the new size.
    let mut grown = v.wukong().clone();
    grown.spec.disks[1].size = Some("60Gi".into());
    let grown_expansions = expansions(&grown, &pvcs, Some(&overhead), &takeover);
    assert_eq!(grown_expansions.len(), 1);
    assert_eq!((grown_expansions[0].pvc.as_str(), grown_expansions[0].size.as_str()), ("web-data", "64424509440"));
}

// ---- the Wukong itself ---------------------------------------------------------------------------

#[test]
fn the_originals_finalizer_goes_and_any_other_stays() {
    let mut w = seed().wukong().clone();
    assert_eq!(finalizer_patch(&w), None);
    w.metadata.finalizers = Some(vec!["example.com/backup".into(), ORIGINAL_FINALIZER.into()]);
    assert_eq!(
        finalizer_patch(&w),
        Some(vec![
            json!({ "op": "test", "path": "/metadata/finalizers", "value": ["example.com/backup", ORIGINAL_FINALIZER] }),
            json!({ "op": "replace", "path": "/metadata/finalizers", "value": ["example.com/backup"] }),
        ])
    );
}

#[test]
fn the_originals_conditions_are_removed_last_first() {
    let w = seed().wukong().clone();
    let status: WukongStatus = serde_json::from_value(original::status(&w)).unwrap();
    assert_eq!(
        status_patch(Some(&status)),
        Some(vec![
            json!({ "op": "test", "path": "/status/conditions/2/type", "value": "VolumesBound" }),
            json!({ "op": "remove", "path": "/status/conditions/2" }),
            json!({ "op": "test", "path": "/status/conditions/1/type", "value": "NetworksConfigured" }),
            json!({ "op": "remove", "path": "/status/conditions/1" }),
        ])
    );
    assert_eq!(status_patch(None), None);
    assert_eq!(status_patch(Some(&WukongStatus::default())), None);
}

#[test]
fn the_originals_objects_are_what_its_source_writes() {
    let v = seed();
    let w = v.wukong();
    let nads: Vec<String> =
        original::nads(w).iter().map(|n| n["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(nads, ["web-default-nad", "web-mgmt-nad", "web-data-nad"], "none for the network with nadName");
    let volumes = original::volumes(w);
    assert_eq!(volumes[0]["kind"], "DataVolume");
    assert_eq!(volumes[0]["spec"]["source"], json!({ "http": { "url": "http://images.example/noble.img" } }));
    assert_eq!(volumes[0]["spec"]["pvc"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(volumes[1]["kind"], "PersistentVolumeClaim");
    assert_eq!(volumes[1]["metadata"]["name"], "web-data");
    let vm = original::vm(w);
    assert_eq!(vm["spec"]["running"], true);
    assert_eq!(vm["metadata"]["ownerReferences"][0]["controller"], true);
    let networks: Vec<&str> = vm["spec"]["template"]["spec"]["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(networks, ["default", "web-default-nad", "web-mgmt-nad", "web-data-nad", "office-lan"]);
    let volume_names: Vec<&str> = vm["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(volume_names, ["system", "data", "cloudinitdisk"]);
    let user_data = vm["spec"]["template"]["spec"]["volumes"][2]["cloudInitNoCloud"]["userData"].as_str().unwrap();
    assert!(user_data.contains("ssh_pwauth: true") && user_data.contains("passwd: $6$x$y"), "{user_data}");
}
