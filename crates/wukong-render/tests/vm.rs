//! The VM's disks, boot order, cloud-init disk, scheduling and run strategy.

use serde_json::{Value, json};
use wukong_render::{RenderOptions, render, validate_object, vm};

fn wukong(labels: Value, spec: Value) -> Value {
    let mut object = json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "db", "namespace": "prod", "labels": labels },
        "spec": { "cpu": 2, "memory": "4Gi" }
    });
    for (k, v) in spec.as_object().unwrap() {
        object["spec"][k] = v.clone();
    }
    object
}

fn rendered_vm(object: &Value) -> Value {
    let valid = validate_object(object).unwrap_or_else(|e| panic!("{e}"));
    serde_json::to_value(render(&valid, &RenderOptions::default()).vm).unwrap()
}

#[test]
fn disks_come_from_the_image_scheme_and_only_the_boot_disk_has_a_boot_order() {
    let vm = rendered_vm(&wukong(
        json!({}),
        json!({ "disks": [
            { "name": "data", "size": "100Gi", "storageClassName": "ssd" },
            { "name": "system", "boot": true, "image": "http://images.example/os.qcow2", "size": "30Gi" },
            { "name": "tools", "image": "docker://quay.io/example/tools:1", "size": "5Gi", "storageClassName": "ssd" },
            { "name": "scratch", "image": "docker://quay.io/containerdisks/scratch:1" },
            { "name": "iso", "image": "containerdisk://quay.io/containerdisks/iso:1", "storageClassName": "ssd" }
        ], "cloudInitUser": { "name": "ops" } }),
    ));
    let spec = &vm["spec"]["template"]["spec"];
    assert_eq!(
        spec["domain"]["devices"]["disks"],
        json!([
            { "name": "data", "disk": { "bus": "virtio" } },
            { "name": "system", "disk": { "bus": "virtio" }, "bootOrder": 1 },
            { "name": "tools", "disk": { "bus": "virtio" } },
            { "name": "scratch", "disk": { "bus": "virtio" } },
            { "name": "iso", "disk": { "bus": "virtio" } },
            { "name": "cloudinit", "disk": { "bus": "virtio" } }
        ]),
        "spec order, boot order 1 on the boot disk only, the cloud-init disk last"
    );
    assert_eq!(
        spec["volumes"],
        json!([
            { "name": "data", "dataVolume": { "name": "db-data" } },
            { "name": "system", "dataVolume": { "name": "db-system" } },
            { "name": "tools", "dataVolume": { "name": "db-tools" } },
            { "name": "scratch", "containerDisk": { "image": "quay.io/containerdisks/scratch:1" } },
            { "name": "iso", "containerDisk": { "image": "quay.io/containerdisks/iso:1" } },
            { "name": "cloudinit", "cloudInitNoCloud": { "secretRef": { "name": "db-cloudinit" } } }
        ]),
        "no network data without an ipConfig, so no networkDataSecretRef"
    );
    assert_eq!(
        vm["spec"]["dataVolumeTemplates"],
        json!([
            { "metadata": { "name": "db-data" }, "spec": { "source": { "blank": {} },
              "storage": { "resources": { "requests": { "storage": "100Gi" } }, "storageClassName": "ssd" } } },
            { "metadata": { "name": "db-system" }, "spec": { "source": { "http": { "url": "http://images.example/os.qcow2" } },
              "storage": { "resources": { "requests": { "storage": "30Gi" } } } } },
            { "metadata": { "name": "db-tools" }, "spec": { "source": { "registry": { "url": "docker://quay.io/example/tools:1" } },
              "storage": { "resources": { "requests": { "storage": "5Gi" } }, "storageClassName": "ssd" } } }
        ])
    );
}

#[test]
fn the_template_carries_the_wukongs_labels_but_not_the_reserved_ones() {
    let vm = rendered_vm(&wukong(
        json!({ "app": "db", "team": "data", "vm.novasphere.dev/wukong": "spoofed", "vm.novasphere.dev/other": "x",
                "app.kubernetes.io/managed-by": "helm" }),
        json!({}),
    ));
    assert_eq!(
        vm["spec"]["template"]["metadata"]["labels"],
        json!({ "app": "db", "team": "data", "vm.novasphere.dev/wukong": "db" })
    );
    assert_eq!(
        vm["metadata"]["labels"],
        json!({ "app.kubernetes.io/managed-by": "wukong", "vm.novasphere.dev/wukong": "db" }),
        "the VM object itself carries wukong's labels only"
    );
    assert!(vm["spec"]["template"]["spec"].get("affinity").is_none(), "no antiAffinity asked");
}

#[test]
fn anti_affinity_spreads_the_vms_of_one_app_label_across_nodes() {
    let ha = json!({ "highAvailability": { "antiAffinity": true } });
    let vm = rendered_vm(&wukong(json!({ "app": "db", "tier": "backend" }), ha.clone()));
    assert_eq!(
        vm["spec"]["template"]["spec"]["affinity"],
        json!({ "podAntiAffinity": { "preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": { "labelSelector": { "matchLabels": { "app": "db" } }, "topologyKey": "kubernetes.io/hostname" }
        }] } })
    );
    // Without an app label the group is the Wukong itself.
    let vm = rendered_vm(&wukong(json!({ "tier": "backend" }), ha));
    assert_eq!(
        vm["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["podAffinityTerm"]["labelSelector"],
        json!({ "matchLabels": { "vm.novasphere.dev/wukong": "db" } })
    );
    let off = rendered_vm(&wukong(json!({ "app": "db" }), json!({ "highAvailability": { "antiAffinity": false } })));
    assert!(off["spec"]["template"]["spec"].get("affinity").is_none());
}

#[test]
fn node_selector_and_tolerations_are_copied() {
    let vm = rendered_vm(&wukong(
        json!({}),
        json!({ "highAvailability": {
            "nodeSelector": { "kubernetes.io/arch": "amd64" },
            "tolerations": [{ "key": "dedicated", "operator": "Equal", "value": "vm", "effect": "NoSchedule" }]
        } }),
    ));
    let spec = &vm["spec"]["template"]["spec"];
    assert_eq!(spec["nodeSelector"], json!({ "kubernetes.io/arch": "amd64" }));
    assert_eq!(
        spec["tolerations"],
        json!([{ "key": "dedicated", "operator": "Equal", "value": "vm", "effect": "NoSchedule" }])
    );
}

#[test]
fn run_strategy_follows_the_mapping_table() {
    let rows: &[(Value, &str)] = &[
        (json!({}), "Always"),
        (json!({ "highAvailability": { "restartPolicy": "Always" } }), "Always"),
        (json!({ "highAvailability": { "restartPolicy": "OnFailure" } }), "RerunOnFailure"),
        (json!({ "highAvailability": { "restartPolicy": "Never" } }), "Once"),
        (json!({ "startStrategy": { "autoStart": true } }), "Always"),
        (
            json!({ "startStrategy": { "autoStart": false }, "highAvailability": { "restartPolicy": "Always" } }),
            "Halted",
        ),
        (
            json!({ "startStrategy": { "runStrategy": "Manual" }, "highAvailability": { "restartPolicy": "Always" } }),
            "Manual",
        ),
        (json!({ "startStrategy": { "runStrategy": "Always", "autoStart": false } }), "Always"),
        (
            json!({ "startStrategy": { "runStrategy": "RerunOnFailure" }, "highAvailability": { "restartPolicy": "Never" } }),
            "RerunOnFailure",
        ),
        (json!({ "startStrategy": { "runStrategy": "Halted" } }), "Halted"),
    ];
    for (spec, expected) in rows {
        let object = wukong(json!({}), spec.clone());
        let valid = validate_object(&object).unwrap();
        assert_eq!(vm::run_strategy(&valid.wukong().spec).as_str(), *expected, "{spec}");
        assert_eq!(rendered_vm(&object)["spec"]["runStrategy"], *expected, "{spec}");
    }
}
