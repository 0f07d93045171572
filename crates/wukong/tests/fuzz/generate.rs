//! The seeded generator of the differential fuzzer: valid Wukongs, one-field mutations of them,
//! YAML-level quirks and random documents. Every case is a pure function of its seed.

use serde_json::{Map, Value, json};

use super::yaml;

/// SplitMix64: small, fast and the same on every platform, so a seed names a case forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What a case is, and so which oracle judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// A Wukong the generator means to be valid.
    Valid,
    /// A valid Wukong with one field changed.
    Mutation,
    /// A document written with YAML 1.1 quirks (octal, `on`, duplicate keys, aliases, List ...):
    /// only kubectl can say what it means.
    Yaml,
    /// A random document near the schema.
    Random,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Valid => "valid",
            Family::Mutation => "mutation",
            Family::Yaml => "yaml",
            Family::Random => "random",
        }
    }
}

/// One generated case.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub family: Family,
    /// What the mutation did, for the report.
    pub note: String,
    /// The file `wukong render -f` and kubectl read.
    pub text: String,
    /// The objects the text means, as the API server receives them from kubectl, when the text
    /// was written faithfully from them (every family but `Yaml`).
    pub objects: Option<Vec<Value>>,
}

impl Case {
    /// The same case with other objects (a minimisation step), written faithfully.
    pub fn with_objects(&self, objects: Vec<Value>) -> Case {
        Case { text: yaml::faithful_stream(&objects), objects: Some(objects), ..self.clone() }
    }

    /// The same case with another text (a minimisation step of a YAML case).
    pub fn with_text(&self, text: String) -> Case {
        Case { text, objects: None, ..self.clone() }
    }
}

pub fn case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let family = match rng.below(100) {
        0..=14 => Family::Valid,
        15..=64 => Family::Mutation,
        65..=84 => Family::Yaml,
        _ => Family::Random,
    };
    let name = format!("fz-{:x}", seed & 0xffff_ffff);
    match family {
        Family::Valid => {
            let doc = valid(&mut rng, &name);
            let objects = vec![doc];
            Case { seed, family, note: String::new(), text: yaml::faithful_stream(&objects), objects: Some(objects) }
        }
        Family::Mutation => {
            let mut doc = valid(&mut rng, &name);
            let note = mutate(&mut rng, &mut doc);
            let objects = vec![doc];
            Case { seed, family, note, text: yaml::faithful_stream(&objects), objects: Some(objects) }
        }
        Family::Yaml => {
            let mut doc = valid(&mut rng, &name);
            let mut note = String::new();
            if rng.chance(40) {
                note = mutate(&mut rng, &mut doc);
            }
            let (text, quirks) = yaml::quirky(&mut rng, &doc);
            let note = if note.is_empty() { quirks } else { format!("{note}; {quirks}") };
            Case { seed, family, note, text, objects: None }
        }
        Family::Random => {
            let doc = random_doc(&mut rng, &name);
            let objects = vec![doc];
            Case {
                seed,
                family,
                note: "random document".into(),
                text: yaml::faithful_stream(&objects),
                objects: Some(objects),
            }
        }
    }
}

// ---- valid Wukongs ------------------------------------------------------------------------

const IMAGES: &[&str] = &[
    "docker://quay.io/containerdisks/ubuntu:22.04",
    "containerdisk://quay.io/containerdisks/fedora:40",
    "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
    "http://images.example.com/debian-12.qcow2",
];
const SIZES: &[&str] = &["20Gi", "1Ti", "512Mi", "30G", "100k", "1.5Gi", "1e9", "2048M"];
const MEMORIES: &[&str] = &["8Gi", "512Mi", "2G", "1.5Gi", "16Gi", "4096Mi", "1Ti", "100M"];
const NET_NAMES: &[&str] = &["mgmt", "data", "storage", "backup", "public", "vlan100", "a", "net-2", "east-west"];

pub fn valid(rng: &mut Rng, name: &str) -> Value {
    let mut spec = Map::new();
    spec.insert("cpu".into(), json!(1 + rng.below(64)));
    spec.insert("memory".into(), json!(rng.pick(MEMORIES)));
    if rng.chance(50) {
        spec.insert("osImage".into(), json!(rng.pick(IMAGES)));
    }
    if rng.chance(60) {
        spec.insert("networks".into(), Value::Array(networks(rng)));
    }
    if rng.chance(50) {
        spec.insert("disks".into(), Value::Array(disks(rng)));
    }
    if rng.chance(30) {
        spec.insert("sshKeySecret".into(), json!("vm-ssh-keys"));
    }
    if rng.chance(30) {
        let mut user = json!({ "name": rng.pick(&["ubuntu", "admin", "_svc", "dbadmin"]) });
        if rng.chance(50) {
            user["passwordHash"] = json!("$6$rounds=4096$salt$hash");
        }
        if rng.chance(30) {
            user["groups"] = json!(["adm", "wheel"]);
        }
        if rng.chance(30) {
            user["lockPasswd"] = json!(rng.chance(50));
        }
        if rng.chance(20) {
            user["sudo"] = json!("ALL=(ALL) NOPASSWD:ALL");
        }
        if rng.chance(20) {
            user["shell"] = json!("/bin/zsh");
        }
        spec.insert("cloudInitUser".into(), user);
    }
    if rng.chance(30) {
        let mut ha = Map::new();
        if rng.chance(60) {
            ha.insert("restartPolicy".into(), json!(rng.pick(&["Always", "OnFailure", "Never"])));
        }
        if rng.chance(40) {
            ha.insert("antiAffinity".into(), json!(rng.chance(50)));
        }
        if rng.chance(40) {
            ha.insert("nodeSelector".into(), json!({ "kubernetes.io/arch": "amd64", "disk": "ssd" }));
        }
        if rng.chance(30) {
            ha.insert(
                "tolerations".into(),
                json!([{ "key": "dedicated", "operator": "Equal", "value": "vm", "effect": "NoSchedule" }]),
            );
        }
        spec.insert("highAvailability".into(), Value::Object(ha));
    }
    if rng.chance(30) {
        let mut s = Map::new();
        if rng.chance(50) {
            s.insert("runStrategy".into(), json!(rng.pick(&["Always", "RerunOnFailure", "Manual", "Halted"])));
        }
        if rng.chance(50) {
            s.insert("autoStart".into(), json!(rng.chance(50)));
        }
        spec.insert("startStrategy".into(), Value::Object(s));
    }
    let mut metadata = json!({ "name": name });
    if rng.chance(30) {
        metadata["labels"] = json!({ "app": "db", "tier": "backend" });
    }
    if rng.chance(15) {
        metadata["annotations"] = json!({ "example.com/owner": "team-a", "note": "a VM" });
    }
    json!({ "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "metadata": metadata, "spec": spec })
}

fn networks(rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::new();
    if rng.chance(40) {
        out.push(json!({ "name": "default" }));
    }
    let count = 1 + rng.below(3);
    let mut used = Vec::new();
    for i in 0..count {
        let mut name = rng.pick(NET_NAMES).to_string();
        if used.contains(&name) {
            name = format!("{name}{i}");
        }
        used.push(name.clone());
        let subnet = 10 + out.len();
        let mut net = json!({ "name": name });
        let kind = *rng.pick(&["bridge", "ovs", "macvlan", "sriov", "nad"]);
        match kind {
            "bridge" | "ovs" => {
                net["type"] = json!(kind);
                if rng.chance(50) {
                    net["vlanId"] = json!(1 + rng.below(4094));
                }
                if rng.chance(30) {
                    net["bridgeName"] = json!(format!("br{i}-{kind}"));
                }
                if rng.chance(20) {
                    net["mtu"] = json!(*rng.pick(&[1500, 9000, 1280, 68]));
                }
            }
            "macvlan" => {
                net["type"] = json!("macvlan");
                net["master"] = json!(rng.pick(&["eth1", "bond0.100", "ens3f0"]));
            }
            "sriov" => {
                net["type"] = json!("sriov");
                net["resourceName"] = json!("intel.com/sriov_vfio");
                if rng.chance(40) {
                    net["vlanId"] = json!(1 + rng.below(4094));
                }
            }
            _ => {
                net["type"] = json!(rng.pick(&["bridge", "sriov", "macvlan"]));
                net["nadName"] = json!(rng.pick(&["vlan100", "infra/vlan100", "shared.net"]));
            }
        }
        if rng.chance(20) {
            net["macAddress"] = json!(format!("02:00:00:00:{subnet:02x}:{:02x}", 1 + rng.below(200)));
        }
        match rng.below(3) {
            0 => {}
            1 => net["ipConfig"] = json!({ "mode": "dhcp" }),
            _ => {
                let v6 = rng.chance(25);
                let mut ip = if v6 {
                    json!({ "mode": "static", "address": format!("2001:db8:{subnet}::10/64"), "gateway": format!("2001:db8:{subnet}::1") })
                } else {
                    json!({ "mode": "static", "address": format!("192.168.{subnet}.10/24"), "gateway": format!("192.168.{subnet}.1") })
                };
                if rng.chance(30) {
                    ip["dnsServers"] =
                        if v6 { json!(["2001:db8::53"]) } else { json!([format!("192.168.{subnet}.2"), "8.8.8.8"]) };
                }
                if v6 && net.get("mtu").is_some_and(|m| m.as_i64() < Some(1280)) {
                    net["mtu"] = json!(1500);
                }
                net["ipConfig"] = ip;
            }
        }
        if net["type"] == "sriov" {
            net.as_object_mut().expect("an object").remove("mtu");
        }
        out.push(net);
    }
    out
}

fn disks(rng: &mut Rng) -> Vec<Value> {
    let mut out = vec![];
    let mut d = json!({ "name": "system", "boot": true, "image": rng.pick(IMAGES) });
    if rng.chance(70) {
        d["size"] = json!(rng.pick(SIZES));
    }
    if rng.chance(40) {
        d["storageClassName"] = json!("fast-ssd");
    }
    if d.get("size").is_none() && d["image"].as_str().is_some_and(|i| i.starts_with("http")) {
        d["size"] = json!("20Gi");
    }
    out.push(d);
    if rng.chance(50) {
        out.push(json!({ "name": "data", "size": rng.pick(SIZES) }));
    }
    out
}

// ---- one-field mutations ------------------------------------------------------------------

/// Values a mutation puts somewhere: every JSON type, bounds, and the strings the rules and the
/// API server's quoting care about.
fn interesting(rng: &mut Rng) -> Value {
    let strings: &[&str] = &[
        "",
        "a",
        "A",
        "default",
        "-a",
        "a-",
        "a b",
        "a.b",
        "a_b",
        "x/y",
        "a/b/c",
        "é",
        "\u{a0}",
        "tab\there",
        "line\nbreak",
        "quote\"d",
        "back\\slash",
        "\u{1f600}",
        "\u{7f}",
        "\u{200b}",
        "010.0.0.1/24",
        "10.0.0.01/24",
        "2001:db8::1/064",
        "10.0.0.1/+24",
        "10.0.0.1/24",
        "10.0.0.0/24",
        "10.0.0.1",
        "::ffff:10.0.0.1",
        "fe80::1%eth0",
        "2001:db8::1/64",
        "256.0.0.1/24",
        "4K",
        "4k",
        "1e3",
        "1E3",
        "0.5Gi",
        "+1Gi",
        "-1Gi",
        ".5Gi",
        "5.Gi",
        "1m",
        "0",
        "1Ki",
        "1ki",
        "1.5e2",
        "1e1.5",
        "100n",
        "100u",
        " 1Gi",
        "02:00:00:00:00:00",
        "01:00:00:00:00:01",
        "02:AA:bb:cc:dd:ee",
        "00:00:00:00:00:00",
        "docker://x",
        "docker://a b",
        "bridge",
        "ovs",
        "macvlan",
        "sriov",
        "Always",
        "always",
        "static",
        "dhcp",
        "Halted",
        "cloudinit",
        "br-0123456789ab",
        "infra/vlan100",
        "UPPER/case",
        "null",
        "true",
        "0144",
    ];
    match rng.below(20) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(*rng.pick(&[0i64, 1, -1, 64, 65, 4094, 4095, 68, 67, 1280, 1279, 65535, 65536, 2147483648])),
        3 => json!(1.5),
        4 => json!([]),
        5 => json!({}),
        6 => json!(["a"]),
        7 => json!({ "a": "b" }),
        8 => json!("x".repeat(*rng.pick(&[15, 16, 32, 33, 60, 61, 63, 64, 65, 253, 254, 257]))),
        _ => json!(rng.pick(strings)),
    }
}

/// Every path of `doc` (objects and arrays, not the root) as JSON pointers.
pub fn paths(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                paths(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                paths(v, &p, out);
            }
        }
        _ => {}
    }
}

/// Keys the schema knows, to add where they may or may not belong.
const KNOWN_KEYS: &[&str] = &[
    "name",
    "type",
    "nadName",
    "vlanId",
    "bridgeName",
    "master",
    "resourceName",
    "mtu",
    "macAddress",
    "ipConfig",
    "mode",
    "address",
    "gateway",
    "dnsServers",
    "size",
    "image",
    "boot",
    "storageClassName",
    "password",
    "passwordHash",
    "restartPolicy",
    "runStrategy",
    "autoStart",
    "cpu",
    "memory",
    "unknownField",
];

/// Changes one thing of a valid Wukong; returns what it did.
pub fn mutate(rng: &mut Rng, doc: &mut Value) -> String {
    match rng.below(16) {
        14 | 15 => targeted(rng, doc),
        0..=5 => {
            // A value somewhere becomes something else.
            let mut all = Vec::new();
            paths(doc, "", &mut all);
            all.retain(|p| p != "/apiVersion" && p != "/kind" && p != "/metadata" && p != "/metadata/name");
            let path = rng.pick(&all).clone();
            let value = interesting(rng);
            let note = format!("{path} = {value}");
            *doc.pointer_mut(&path).expect("a path of the doc") = value;
            note
        }
        6 => {
            // A field is removed.
            let mut all = Vec::new();
            paths(doc, "", &mut all);
            all.retain(|p| p.starts_with("/spec"));
            let path = rng.pick(&all).clone();
            remove(doc, &path);
            format!("remove {path}")
        }
        7 => {
            // A key is added to some object.
            let mut objects = vec![String::new()];
            let mut all = Vec::new();
            paths(doc, "", &mut all);
            objects.extend(all.into_iter().filter(|p| doc.pointer(p).is_some_and(Value::is_object)));
            let at = rng.pick(&objects).clone();
            let key = rng.pick(KNOWN_KEYS).to_string();
            let value = interesting(rng);
            let note = format!("{at}/{key} = {value}");
            if let Some(map) = doc.pointer_mut(&at).and_then(Value::as_object_mut) {
                map.insert(key, value);
            }
            note
        }
        8 => {
            // A list-map item repeated, or a non-object item in a list-map.
            let list = *rng.pick(&["/spec/networks", "/spec/disks"]);
            let Some(items) = doc.pointer_mut(list).and_then(Value::as_array_mut) else {
                return mutate(rng, doc);
            };
            if items.is_empty() {
                return "nothing".into();
            }
            match rng.below(3) {
                0 => {
                    let item = items[rng.below(items.len())].clone();
                    let times = 1 + rng.below(2);
                    for _ in 0..times {
                        items.push(item.clone());
                    }
                    format!("{list}: an item {} more time(s)", times)
                }
                1 => {
                    let v = interesting(rng);
                    items.insert(rng.below(items.len() + 1), v.clone());
                    format!("{list}: item {v}")
                }
                _ => {
                    let name = items[0].get("name").cloned().unwrap_or(Value::Null);
                    let mut copy = items[rng.below(items.len())].clone();
                    copy["name"] = name;
                    items.push(copy);
                    format!("{list}: an item named like the first")
                }
            }
        }
        9 => metadata_mutation(rng, doc),
        10 => {
            // status on create.
            let status = rng
                .pick(&[
                    json!({ "phase": "Running" }),
                    json!({ "phase": "Bogus" }),
                    json!({ "unknownField": 1 }),
                    json!({ "observedGeneration": "x" }),
                    json!({ "conditions": [{ "type": "Ready" }] }),
                    json!(5),
                    Value::Null,
                ])
                .clone();
            let note = format!("/status = {status}");
            doc["status"] = status.clone();
            note
        }
        11 => {
            // The pod network's derived MAC given to another network.
            let ns = crate::NAMESPACE_FOR_MACS;
            let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            let Some(nets) = doc.pointer_mut("/spec/networks").and_then(Value::as_array_mut) else {
                return mutate(rng, doc);
            };
            let secondary: Vec<usize> = (0..nets.len()).filter(|i| nets[*i]["name"] != "default").collect();
            if secondary.is_empty() {
                return "nothing".into();
            }
            let target = *rng.pick(&secondary);
            let other = if rng.chance(50) || secondary.len() == 1 {
                "default".to_string()
            } else {
                let o = *rng.pick(&secondary);
                nets[o]["name"].as_str().unwrap_or_default().to_string()
            };
            let mac = wukong_render::mac::derive(ns, &name, &other).to_string();
            nets[target]["macAddress"] = json!(mac);
            format!("networks[{target}].macAddress = derived MAC of {other}")
        }
        12 => {
            // A number as a whole float or a big number, a string as a number...
            let path = *rng.pick(&[
                "/spec/cpu",
                "/spec/networks/0/vlanId",
                "/spec/networks/0/mtu",
                "/spec/memory",
                "/spec/disks/0/size",
                "/spec/cpu",
            ]);
            let value = json!(*rng.pick(&[
                json!(1.5),
                json!(-3),
                json!(1e20),
                json!(9007199254740993u64),
                json!("4"),
                json!(4),
                json!(4096),
            ]));
            if let Some(slot) = doc.pointer_mut(path) {
                *slot = value.clone();
                format!("{path} = {value}")
            } else {
                "nothing".into()
            }
        }
        _ => {
            // Nulls: at an optional field, a list, an enum.
            let path = *rng.pick(&[
                "/spec/networks",
                "/spec/disks",
                "/spec/osImage",
                "/spec/highAvailability",
                "/spec/highAvailability/restartPolicy",
                "/spec/highAvailability/nodeSelector",
                "/spec/startStrategy/runStrategy",
                "/spec/networks/0/ipConfig",
                "/spec/networks/0/vlanId",
                "/spec/networks/0/type",
                "/spec/networks/0/ipConfig/dnsServers",
                "/spec/networks/0/ipConfig/address",
                "/spec/disks/0/size",
                "/spec/cloudInitUser/password",
                "/spec/cloudInitUser/groups",
                "/spec/cpu",
                "/spec/memory",
                "/metadata/labels",
            ]);
            set(doc, path, Value::Null);
            format!("{path} = null")
        }
    }
}

/// A field the rules care about, set to a value near what they check: addresses with leading
/// zeros or of the other family, quantities of every form, MACs, bounds.
fn targeted(rng: &mut Rng, doc: &mut Value) -> String {
    let (path, values): (&str, &[&str]) = match rng.below(8) {
        0 => (
            "/spec/memory",
            &[
                "4K",
                "4k",
                "4Ki",
                "0",
                "-1Gi",
                "+1Gi",
                "1e3",
                "1E3",
                "20e9",
                "1e10",
                ".5Gi",
                "5.Gi",
                "1m",
                "100n",
                "1.5e2",
                "1234567890123Mi",
                "1.1234567Gi",
                " 1Gi",
                "1 Gi",
                "1Gb",
                "1E",
                "+",
                ".",
            ],
        ),
        1 => ("/spec/disks/0/size", &["2048K", "2048k", "0", "-20Gi", "20e9", ".5Ti", "1500m", "20G", "20Gb", "1e1.5"]),
        2 => (
            "/spec/networks/0/ipConfig/address",
            &[
                "010.0.0.1/24",
                "10.0.0.01/24",
                "10.00.0.1/24",
                "2001:db8::1/064",
                "10.0.0.1/024",
                "10.0.0.1/0",
                "2001:db8::01/64",
                "2001:0db8::1/64",
                "::ffff:10.0.0.1/120",
                "10.0.0.1",
                "10.0.0.0/24",
                "10.0.0.1/33",
                "fe80::1%eth0/64",
            ],
        ),
        3 => (
            "/spec/networks/0/ipConfig/gateway",
            &[
                "010.0.0.1",
                "10.0.0.1",
                "2001:db8::1",
                "10.0.0.1/24",
                "::ffff:10.0.0.1",
                "192.168.10.1",
                "192.168.010.1",
            ],
        ),
        4 => ("/spec/networks/0/ipConfig/dnsServers", &["010.0.0.53", "10.0.0.53", "2001:db8::53", "dns.example.com"]),
        5 => (
            "/spec/networks/0/macAddress",
            &[
                "02:00:00:00:00:00",
                "02:00:00:00:00:01",
                "03:00:00:00:00:01",
                "02:AA:BB:CC:DD:EE",
                "02-00-00-00-00-01",
                "00:00:00:00:00:00",
            ],
        ),
        6 => ("/spec/networks/0/vlanId", &["0", "1", "4094", "4095", "-1", "100"]),
        _ => ("/spec/highAvailability/tolerations", &["Equal", "Exists", "", "In", "NoSchedule", "NoRun"]),
    };
    let v = *rng.pick(values);
    let value = match path {
        "/spec/networks/0/ipConfig/dnsServers" => json!([v]),
        "/spec/networks/0/vlanId" => json!(v.parse::<i64>().unwrap_or(0)),
        "/spec/highAvailability/tolerations" => {
            let field = if v.starts_with('N') { "effect" } else { "operator" };
            json!([{ "key": "k", field: v }])
        }
        _ => json!(v),
    };
    let (parent, _) = path.rsplit_once('/').expect("a pointer");
    if doc.pointer(parent).is_none() {
        // Make the place: a static network, a disk, highAvailability.
        match parent {
            "/spec/disks/0" => doc["spec"]["disks"] = json!([{ "name": "data" }]),
            "/spec/highAvailability" => doc["spec"]["highAvailability"] = json!({}),
            "/spec" => {}
            _ => {
                doc["spec"]["networks"] = json!([{ "name": "mgmt", "type": "bridge",
                    "ipConfig": { "mode": "static", "address": "192.168.10.10/24" } }])
            }
        }
    }
    if doc.pointer("/spec/networks/0/ipConfig").is_some_and(|i| !i.is_object()) {
        doc["spec"]["networks"][0]["ipConfig"] = json!({ "mode": "static", "address": "192.168.10.10/24" });
    }
    set(doc, path, value.clone());
    format!("{path} = {value}")
}

fn metadata_mutation(rng: &mut Rng, doc: &mut Value) -> String {
    let keys: &[&str] = &[
        "app",
        "example.com/x",
        "Example.COM/x",
        "a/b/c",
        "/x",
        "x/",
        "-x",
        "x_y.z",
        "kubernetes.io/arch",
        "é",
        "",
        "a b",
        "x\u{a0}",
    ];
    let long_key = format!("{}/x", "a".repeat(254));
    let long_name = "k".repeat(64);
    let values: &[Value] = &[
        json!(""),
        json!("v"),
        json!("-v"),
        json!("v v"),
        json!("v".repeat(63)),
        json!("v".repeat(64)),
        json!(5),
        json!(true),
        Value::Null,
        json!("é"),
    ];
    let meta = doc["metadata"].as_object_mut().expect("metadata is an object");
    match rng.below(9) {
        0 | 1 => {
            let field = *rng.pick(&["labels", "annotations"]);
            let key = match rng.below(6) {
                0 => long_key.clone(),
                1 => long_name.clone(),
                _ => rng.pick(keys).to_string(),
            };
            let value = rng.pick(values).clone();
            let map = meta.entry(field).or_insert_with(|| json!({}));
            if !map.is_object() {
                *map = json!({});
            }
            map[&key] = value.clone();
            format!("metadata.{field}[{key:?}] = {value}")
        }
        2 => {
            let big = "v".repeat(262_144);
            meta.insert("annotations".into(), json!({ "big": big }));
            "metadata.annotations too big".into()
        }
        3 => {
            let f = rng
                .pick(&[
                    json!(["example.com/cleanup"]),
                    json!(["bad finalizer"]),
                    json!(["orphan", "foregroundDeletion"]),
                    json!(["a/b/c"]),
                    json!([5]),
                    json!("x"),
                ])
                .clone();
            meta.insert("finalizers".into(), f.clone());
            format!("metadata.finalizers = {f}")
        }
        4 => {
            let refs = rng
                .pick(&[
                    json!([{ "apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "1" }]),
                    json!([{ "apiVersion": "", "kind": "", "name": "", "uid": "" }]),
                    json!([{ "kind": "ConfigMap", "name": "c", "uid": "1" }]),
                    json!([{ "apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "1", "extra": 1 }]),
                ])
                .clone();
            meta.insert("ownerReferences".into(), refs.clone());
            format!("metadata.ownerReferences = {refs}")
        }
        5 => {
            let g = rng.pick(&[json!("web-"), json!("Web-"), json!("-x"), json!("x".repeat(260)), json!(5)]).clone();
            meta.insert("generateName".into(), g.clone());
            if rng.chance(50) {
                meta.remove("name");
            }
            format!("metadata.generateName = {g}")
        }
        6 => {
            let key = *rng.pick(&["unknownField", "clusterName", "selfLink", "uid", "resourceVersion", "generation"]);
            let value = rng.pick(values).clone();
            meta.insert(key.into(), value.clone());
            format!("metadata.{key} = {value}")
        }
        7 => {
            let name = rng
                .pick(&[
                    json!("Web"),
                    json!("web_1"),
                    json!("a.b"),
                    json!("x".repeat(61)),
                    json!("x".repeat(254)),
                    json!(""),
                    json!(5),
                    Value::Null,
                    json!("-a"),
                    json!("é"),
                ])
                .clone();
            meta.insert("name".into(), name.clone());
            format!("metadata.name = {name}")
        }
        _ => {
            let v = rng.pick(values).clone();
            meta.insert("labels".into(), v.clone());
            format!("metadata.labels = {v}")
        }
    }
}

fn remove(doc: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last.to_string(), value);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items[i] = value;
            }
        }
        _ => {}
    }
}

// ---- random documents ---------------------------------------------------------------------

/// A random tree of known and unknown keys under a valid envelope.
pub fn random_doc(rng: &mut Rng, name: &str) -> Value {
    fn tree(rng: &mut Rng, depth: usize) -> Value {
        if depth == 0 || rng.chance(45) {
            return interesting(rng);
        }
        if rng.chance(30) {
            let n = rng.below(3);
            return Value::Array((0..n).map(|_| tree(rng, depth - 1)).collect());
        }
        let n = 1 + rng.below(4);
        let mut map = Map::new();
        for _ in 0..n {
            map.insert(rng.pick(KNOWN_KEYS).to_string(), tree(rng, depth - 1));
        }
        Value::Object(map)
    }
    let mut doc = valid(rng, name);
    let spec = doc["spec"].as_object_mut().expect("spec is an object");
    for _ in 0..1 + rng.below(3) {
        let key = *rng.pick(&[
            "cpu",
            "memory",
            "networks",
            "disks",
            "cloudInitUser",
            "highAvailability",
            "startStrategy",
            "osImage",
            "sshKeySecret",
        ]);
        let value = if key == "networks" || key == "disks" {
            Value::Array((0..1 + rng.below(3)).map(|_| tree(rng, 3)).collect())
        } else {
            tree(rng, 3)
        };
        spec.insert(key.into(), value);
    }
    doc
}
