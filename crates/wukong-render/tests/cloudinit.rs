//! cloud-init rendering, parsed back and checked against the spec: network data (every static
//! address on the interface with the right MAC, dhcp networks with dhcp4, nothing else) and
//! user data (user, hash, keys, never a plain password). Property tests over generated valid
//! Wukongs, and snapshots of the full example.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};
use wukong_render::cloudinit::{self, DEFAULT_SHELL, DEFAULT_SUDO};
use wukong_render::{RenderOptions, Rendered, Validated, plan, render, validate_object};

/// Parses cloud-init YAML the way a YAML parser in the guest would see it.
fn parse(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("not YAML: {e}\n{yaml}"))
}

fn secret_data(r: &Rendered) -> BTreeMap<String, String> {
    let Some(secret) = &r.cloud_init_secret else { return BTreeMap::new() };
    secret.data.iter().flatten().map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap())).collect()
}

fn vm_interface_macs(r: &Rendered) -> BTreeMap<String, Option<String>> {
    r.vm.spec.template.spec.domain.devices.interfaces.iter().map(|i| (i.name.clone(), i.mac_address.clone())).collect()
}

// ---- generators --------------------------------------------------------------------------

/// Network names, including labels YAML 1.1 would read as booleans or numbers.
const NAMES: &[&str] = &["mgmt", "data", "storage", "on", "yes", "12", "n", "backup-net"];

#[derive(Debug, Clone)]
enum Ip {
    None,
    Dhcp,
    V4 { gateway: bool },
    V6 { gateway: bool },
}

fn ip() -> impl Strategy<Value = (Ip, usize)> {
    (
        prop_oneof![
            1 => Just(Ip::None),
            2 => Just(Ip::Dhcp),
            3 => any::<bool>().prop_map(|gateway| Ip::V4 { gateway }),
            2 => any::<bool>().prop_map(|gateway| Ip::V6 { gateway }),
        ],
        0usize..3,
    )
}

fn network(index: usize, name: &str, ty: u8, nad: bool, mac: Option<bool>, (ip, dns): (Ip, usize)) -> Value {
    let mut n = json!({ "name": name });
    match ty {
        0 => n["type"] = json!("bridge"),
        1 => n["type"] = json!("ovs"),
        2 => n["type"] = json!("macvlan"),
        _ => n["type"] = json!("sriov"),
    }
    if nad {
        n["nadName"] = json!(format!("existing-{index}"));
    } else if ty == 2 {
        n["master"] = json!("eth1");
    } else if ty == 3 {
        n["resourceName"] = json!("intel.com/sriov_vfio");
    }
    if let Some(upper) = mac {
        let m = format!("12:34:56:00:0a:{index:02x}");
        n["macAddress"] = json!(if upper { m.to_uppercase() } else { m });
    }
    let (family, mut config) = match ip {
        Ip::None => return n,
        Ip::Dhcp => (4, json!({ "mode": "dhcp" })),
        Ip::V4 { gateway } => {
            let mut c = json!({ "mode": "static", "address": format!("10.{index}.0.10/24") });
            if gateway {
                c["gateway"] = json!(format!("10.{index}.0.1"));
            }
            (4, c)
        }
        Ip::V6 { gateway } => {
            let mut c = json!({ "mode": "static", "address": format!("2001:db8:{index}::10/64") });
            if gateway {
                c["gateway"] = json!(format!("2001:db8:{index}::1"));
            }
            (6, c)
        }
    };
    if dns > 0 {
        let servers: Vec<String> =
            (1..=dns)
                .map(|d| {
                    if family == 4 {
                        format!("10.{index}.0.{}", 50 + d)
                    } else {
                        format!("2001:db8:{index}::{}", 50 + d)
                    }
                })
                .collect();
        config["dnsServers"] = json!(servers);
    }
    n["ipConfig"] = config;
    n
}

fn networks() -> impl Strategy<Value = Vec<Value>> {
    (
        proptest::sample::subsequence(NAMES, 0..6),
        prop::collection::vec((0u8..4, prop::bool::weighted(0.2), prop::option::of(any::<bool>()), ip()), 6),
        any::<bool>(),
    )
        .prop_map(|(names, params, with_default)| {
            let mut out: Vec<Value> = names
                .iter()
                .zip(params)
                .enumerate()
                .map(|(i, (name, (ty, nad, mac, ip)))| network(i + 1, name, ty, nad, mac, ip))
                .collect();
            if with_default {
                out.insert(0, json!({ "name": "default" }));
            }
            out
        })
}

/// Any text of at most 32 bytes (the shortest bound in the schema, `groups[]`), including
/// quotes, backslashes, line breaks and characters YAML treats specially.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{1,32}",
        "\\PC{1,8}",
        Just("yes".to_string()),
        Just("12:34:56:00:00:01".to_string()),
        Just("a \"quoted\" \\ back\nslash\u{2028}\u{85}".to_string()),
    ]
}

fn user() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        (
            "[a-z_][a-z0-9_-]{0,12}",
            prop::option::of(text()),
            prop::option::of(prop_oneof![Just(String::new()), text()]),
            prop::option::of(text()),
            prop::collection::vec(text(), 0..3),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(name, hash, sudo, shell, groups, lock)| {
                let mut u = json!({ "name": name });
                let fields = [
                    ("passwordHash", hash.map(Value::from)),
                    ("sudo", sudo.map(Value::from)),
                    ("shell", shell.map(Value::from)),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        u[k] = v;
                    }
                }
                if !groups.is_empty() {
                    u["groups"] = json!(groups);
                }
                if let Some(l) = lock {
                    u["lockPasswd"] = json!(l);
                }
                u
            }),
    )
}

fn wukong() -> impl Strategy<Value = Value> {
    ("[a-z]([a-z0-9-]{0,18}[a-z0-9])?", networks(), user(), any::<bool>()).prop_map(|(name, networks, user, keys)| {
        let mut spec = json!({
            "cpu": 2, "memory": "2Gi", "networks": networks,
            "disks": [{ "name": "system", "boot": true, "image": "docker://quay.io/containerdisks/ubuntu:22.04" }]
        });
        if let Some(u) = user {
            spec["cloudInitUser"] = u;
        }
        if keys {
            spec["sshKeySecret"] = json!("vm-keys");
        }
        json!({
            "apiVersion": "vm.novasphere.dev/v1alpha1",
            "kind": "Wukong",
            "metadata": { "name": name, "namespace": "props", "uid": "6f1d3c0e-1111-4222-8333-944455556666" },
            "spec": spec
        })
    })
}

fn valid(input: &Value) -> Validated {
    validate_object(input).unwrap_or_else(|e| panic!("the generator must make valid Wukongs: {e}\n{input:#}"))
}

// ---- network data ------------------------------------------------------------------------

/// Checks the network data of `r` against the spec: exactly the pod network and every attached
/// network with an ipConfig, each matched by its interface's MAC, with exactly its own
/// addresses, route and DNS servers.
fn check_network_data(valid: &Validated, r: &Rendered, multus: bool) {
    let wukong = valid.wukong();
    let plan = plan::plan(wukong, multus);
    let data = secret_data(r);
    let configured: Vec<_> = plan.attached().filter(|n| n.spec.ip_config.is_some()).collect();
    let macs = vm_interface_macs(r);
    if configured.is_empty() {
        assert!(!data.contains_key("networkdata"), "no network data without an attached ipConfig");
        assert_eq!(macs["default"], None, "the pod MAC is left to KubeVirt without network data");
        return;
    }
    let doc = parse(&data["networkdata"]);
    let top: BTreeSet<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top, BTreeSet::from(["version", "ethernets"]));
    assert_eq!(doc["version"], 2);
    let ethernets = doc["ethernets"].as_object().unwrap();
    let mut expected: BTreeSet<&str> = configured.iter().map(|n| n.name()).collect();
    expected.insert("default");
    assert_eq!(ethernets.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected, "nothing else is listed");

    let pod = &ethernets["default"];
    assert_eq!(pod, &json!({ "match": { "macaddress": macs["default"].clone().unwrap() }, "dhcp4": true }));

    let mut metrics = BTreeSet::new();
    let mut addresses_seen = 0;
    for net in &configured {
        let entry = &ethernets[net.name()];
        let ip = net.spec.ip_config.as_ref().unwrap();
        let mac = macs[net.name()].clone().expect("a secondary interface has a fixed MAC");
        assert_eq!(mac, mac.to_ascii_lowercase());
        assert_eq!(
            entry["match"],
            json!({ "macaddress": mac }),
            "network {} matched by its interface's MAC",
            net.name()
        );
        let keys: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.is_subset(&BTreeSet::from(["match", "dhcp4", "addresses", "routes", "nameservers"])), "{keys:?}");
        match ip.mode {
            wukong_api::IpMode::Dhcp => {
                assert_eq!(entry["dhcp4"], true);
                assert!(entry.get("addresses").is_none() && entry.get("routes").is_none());
            }
            wukong_api::IpMode::Static => {
                assert!(entry.get("dhcp4").is_none());
                let address = ip.address.clone().unwrap();
                assert_eq!(entry["addresses"], json!([address]), "exactly its own address");
                addresses_seen += 1;
                match &ip.gateway {
                    Some(gw) => {
                        let routes = entry["routes"].as_array().unwrap();
                        assert_eq!(routes.len(), 1);
                        let to = if address.contains(':') { "::/0" } else { "0.0.0.0/0" };
                        assert_eq!(routes[0]["to"], to);
                        assert_eq!(routes[0]["via"], gw.as_str());
                        assert!(metrics.insert(routes[0]["metric"].as_u64().unwrap()), "default route metrics differ");
                    }
                    None => assert!(entry.get("routes").is_none()),
                }
            }
        }
        if ip.dns_servers.is_empty() {
            assert!(entry.get("nameservers").is_none());
        } else {
            assert_eq!(entry["nameservers"], json!({ "addresses": ip.dns_servers }));
        }
    }
    let statics = configured.iter().filter(|n| n.spec.ip_config.as_ref().unwrap().mode == wukong_api::IpMode::Static);
    assert_eq!(addresses_seen, statics.count());
    assert!(metrics.iter().all(|m| *m > 100), "the pod network's DHCP route (metric 100) stays preferred");
}

// ---- user data ---------------------------------------------------------------------------

fn check_user_data(valid: &Validated, r: &Rendered) {
    let wukong = valid.wukong();
    let spec = &wukong.spec;
    let data = secret_data(r);
    let text = &data["userdata"];
    assert!(text.starts_with("#cloud-config\n"), "{text}");
    assert!(!text.contains("ssh_authorized_keys"), "keys never pass through wukong: {text}");
    let doc = parse(text);
    assert_eq!(doc["hostname"], wukong.metadata.name.clone().unwrap());
    let allowed = BTreeSet::from(["hostname", "users", "system_info"]);
    assert!(doc.as_object().unwrap().keys().all(|k| allowed.contains(k.as_str())), "{doc:#}");
    match &spec.cloud_init_user {
        Some(user) => {
            // The user is the image's default user, which is the only one created, and the one
            // cloud-init gives the keys KubeVirt hands it (NoCloud meta-data public-keys).
            assert_eq!(doc["users"], json!(["default"]), "{doc:#}");
            let u = &doc["system_info"]["default_user"];
            assert_eq!(u["name"], user.name.as_str());
            match &user.password_hash {
                Some(hash) => assert_eq!(u["passwd"], hash.as_str()),
                None => assert!(u.get("passwd").is_none()),
            }
            assert_eq!(u["lock_passwd"], user.lock_passwd.unwrap_or(user.password_hash.is_none()));
            match user.sudo.as_deref().unwrap_or(DEFAULT_SUDO) {
                "" => assert!(u.get("sudo").is_none()),
                sudo => assert_eq!(u["sudo"], sudo),
            }
            assert_eq!(u["shell"], user.shell.as_deref().unwrap_or(DEFAULT_SHELL));
            if user.groups.is_empty() {
                assert!(u.get("groups").is_none());
            } else {
                assert_eq!(u["groups"], json!(user.groups));
            }
            let fields: BTreeSet<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
            let known = BTreeSet::from(["name", "passwd", "lock_passwd", "sudo", "shell", "groups"]);
            assert!(fields.is_subset(&known), "no plain password field: {fields:?}");
        }
        None => assert!(doc.get("users").is_none() && doc.get("system_info").is_none(), "the image's own default user"),
    }
    // The keys of sshKeySecret reach the guest through KubeVirt, named in the VM.
    let credentials = serde_json::to_value(&r.vm.spec.template.spec.access_credentials).unwrap();
    match &spec.ssh_key_secret {
        Some(secret) => assert_eq!(
            credentials,
            json!([{ "sshPublicKey": { "source": { "secret": { "secretName": secret } }, "propagationMethod": { "noCloud": {} } } }])
        ),
        None => assert_eq!(credentials, json!([])),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn network_data_holds_every_static_address_on_the_right_mac_and_nothing_else(input in wukong()) {
        let valid = valid(&input);
        for multus in [true, false] {
            let r = render(&valid, &RenderOptions { multus, ..RenderOptions::default() });
            check_network_data(&valid, &r, multus);
            let needed = valid.wukong().spec.cloud_init_user.is_some()
                || valid.wukong().spec.ssh_key_secret.is_some()
                || secret_data(&r).contains_key("networkdata");
            prop_assert_eq!(r.cloud_init_secret.is_some(), needed);
            let volumes: Vec<&str> = r.vm.spec.template.spec.volumes.iter().map(|v| v.name.as_str()).collect();
            prop_assert_eq!(volumes.contains(&cloudinit::VOLUME), needed);
        }
    }

    #[test]
    fn user_data_holds_the_user_and_the_hash_and_the_vm_names_the_keys(input in wukong()) {
        let valid = valid(&input);
        let plan = plan::plan(valid.wukong(), true);
        let Some(secret) = cloudinit::secret(valid.wukong(), &plan) else {
            prop_assert!(valid.wukong().spec.cloud_init_user.is_none() && valid.wukong().spec.ssh_key_secret.is_none());
            return Ok(());
        };
        let r = Rendered { cloud_init_secret: Some(secret), ..render(&valid, &RenderOptions::default()) };
        check_user_data(&valid, &r);
        // Same input, same bytes.
        let again = cloudinit::secret(valid.wukong(), &plan);
        prop_assert_eq!(r.cloud_init_secret, again);
    }
}

#[test]
fn generated_wukongs_cover_every_kind_of_network_data() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut dhcp, mut v4, mut v6, mut none, mut nad, mut users) = (0, 0, 0, 0, 0, 0);
    for _ in 0..200 {
        let w = valid(&wukong().new_tree(&mut runner).unwrap().current());
        users += usize::from(w.wukong().spec.cloud_init_user.is_some());
        for n in &w.wukong().spec.networks {
            nad += usize::from(n.nad_name.is_some());
            match n.ip_config.as_ref().map(|i| (i.mode, i.address.as_deref().is_some_and(|a| a.contains(':')))) {
                None => none += 1,
                Some((wukong_api::IpMode::Dhcp, _)) => dhcp += 1,
                Some((_, false)) => v4 += 1,
                Some((_, true)) => v6 += 1,
            }
        }
    }
    assert!([dhcp, v4, v6, none, nad, users].iter().all(|c| *c >= 20), "{dhcp} {v4} {v6} {none} {nad} {users}");
}

// ---- the full example --------------------------------------------------------------------

fn full_vm() -> Validated {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/full-vm.yaml")).unwrap();
    let mut object: Value = serde_saphyr::from_str(&text).unwrap();
    // As the API server stores it: with a uid, so children get an owner reference.
    object["metadata"]["uid"] = json!("3f0c1c55-8c1e-4a53-9d87-2b1f1c6a7e01");
    valid(&object)
}

#[test]
fn the_full_example_user_data() {
    let valid = full_vm();
    insta::assert_snapshot!(cloudinit::user_data(valid.wukong()));
}

#[test]
fn the_full_example_network_data() {
    let valid = full_vm();
    let plan = plan::plan(valid.wukong(), true);
    insta::assert_snapshot!(cloudinit::network_data(&plan).unwrap());
}

#[test]
fn the_full_example_secret() {
    let valid = full_vm();
    let plan = plan::plan(valid.wukong(), true);
    let secret = cloudinit::secret(valid.wukong(), &plan).unwrap();
    insta::assert_snapshot!(serde_saphyr::to_string(&secret).unwrap());
}
