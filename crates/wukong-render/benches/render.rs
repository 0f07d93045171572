//! Rendering a Wukong with 8 secondary networks (target: under 20 µs), and, for scale, the
//! validation that precedes it (the CRD's OpenAPI checks and CEL rules, evaluated client-side).

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use wukong_render::{RenderOptions, render, validate_object};

fn eight_networks() -> Value {
    let networks: Vec<Value> = (0..8)
        .map(|i| match i % 4 {
            0 => json!({ "name": format!("br{i}"), "type": "bridge", "vlanId": 100 + i,
                         "ipConfig": { "mode": "static", "address": format!("10.{i}.0.10/24"), "gateway": format!("10.{i}.0.1"),
                                       "dnsServers": ["10.0.0.53"] } }),
            1 => json!({ "name": format!("ovs{i}"), "type": "ovs", "bridgeName": "br-ovs", "vlanId": 200, "mtu": 9000 }),
            2 => json!({ "name": format!("vf{i}"), "type": "sriov", "resourceName": "intel.com/sriov_vfio", "ipConfig": { "mode": "dhcp" } }),
            _ => json!({ "name": format!("up{i}"), "type": "macvlan", "master": "eth1" }),
        })
        .collect();
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "bench", "namespace": "default", "uid": "5f0c7b5e-1b1a-4c1e-9d3a-2f6b8c9d0e1f" },
        "spec": { "cpu": 8, "memory": "16Gi", "networks": networks,
                  "disks": [{ "name": "system", "boot": true, "image": "docker://quay.io/containerdisks/ubuntu:22.04" }] }
    })
}

fn benches(c: &mut Criterion) {
    let input = eight_networks();
    let valid = validate_object(&input).expect("the bench Wukong is valid");
    let options = RenderOptions::default();
    c.bench_function("render 8 networks", |b| b.iter(|| render(std::hint::black_box(&valid), &options)));
    c.bench_function("validate 8 networks", |b| b.iter(|| validate_object(std::hint::black_box(&input)).unwrap()));
}

criterion_group!(render_benches, benches);
criterion_main!(render_benches);
