//! Which Wukongs an object concerns, and what a live VM uses: the pure side of the controller's
//! watch triggers.
//!
//! Every child wukong makes is named after its Wukong (`<wukong>-<network>-nad`, `<wukong>-vm`,
//! `<wukong>-<disk>`, `<wukong>-cloudinit`), so an event on any object under such a name is
//! mapped to its Wukong by splitting the name and looking the candidates up, not by scanning
//! every Wukong: a mass create stays linear. An object with a wukong name but no wukong owner (a
//! foreign object that blocks a Wukong, or was deleted and freed the name) maps the same way.
//! NADs named by `nadName` (possibly in another namespace) are found through [`NadRefIndex`].

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;
use wukong_api::{Wukong, labels};

use crate::plan::NadRef;
use crate::{cloudinit, disks, names};

/// The kinds of object a Wukong's reconcile depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    Nad,
    VirtualMachine,
    VirtualMachineInstance,
    DataVolume,
    PersistentVolumeClaim,
    Secret,
}

/// The names (in the object's namespace) of the Wukongs an object of `kind` concerns. `lookup`
/// answers whether a Wukong of that name exists in the namespace (from the controller's store).
pub fn wukongs_of<W: Borrow<Wukong>>(
    kind: ChildKind,
    name: &str,
    owners: &[OwnerReference],
    object_labels: &BTreeMap<String, String>,
    lookup: impl Fn(&str) -> Option<W>,
) -> Vec<String> {
    let mut out: BTreeSet<String> = owners
        .iter()
        .filter(|o| o.kind == "Wukong" && o.api_version.starts_with("vm.novasphere.dev/"))
        .map(|o| o.name.clone())
        .collect();
    // A DataVolume (and its PVC, through it) is owned by the VM KubeVirt made it for.
    out.extend(
        owners
            .iter()
            .filter(|o| o.kind == "VirtualMachine" && o.api_version.starts_with("kubevirt.io/"))
            .filter_map(|o| o.name.strip_suffix(names::VM_SUFFIX))
            .filter(|w| lookup(w).is_some())
            .map(str::to_string),
    );
    match kind {
        ChildKind::Nad => {
            if let Some(stem) = name.strip_suffix(names::NAD_SUFFIX) {
                out.extend(splits(stem).filter_map(|(w, network)| {
                    let wukong = lookup(w)?;
                    let generated =
                        wukong.borrow().spec.networks.iter().any(|n| n.name == network && n.nad_name.is_none());
                    generated.then(|| w.to_string())
                }));
            }
        }
        ChildKind::VirtualMachine | ChildKind::VirtualMachineInstance => {
            out.extend(name.strip_suffix(names::VM_SUFFIX).filter(|w| lookup(w).is_some()).map(str::to_string));
            if kind == ChildKind::VirtualMachineInstance {
                out.extend(object_labels.get(labels::WUKONG).filter(|w| lookup(w).is_some()).cloned());
            }
        }
        ChildKind::DataVolume | ChildKind::PersistentVolumeClaim => {
            out.extend(splits(name).filter_map(|(w, disk)| {
                let wukong = lookup(w)?;
                let backed = disks::plan(wukong.borrow()).iter().any(|d| d.name == disk && d.data_volume(w).is_some());
                backed.then(|| w.to_string())
            }));
        }
        ChildKind::Secret => {
            out.extend(name.strip_suffix(cloudinit::SECRET_SUFFIX).filter(|w| lookup(w).is_some()).map(str::to_string));
        }
    }
    out.into_iter().collect()
}

/// Every way to split `<a>-<b>` at a dash into two non-empty parts.
fn splits(name: &str) -> impl Iterator<Item = (&str, &str)> {
    name.match_indices('-')
        .map(move |(i, _)| (&name[..i], &name[i + 1..]))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
}

/// The NADs each Wukong names by `nadName`, in both directions, kept up to date from the Wukong
/// watch: a NAD event finds the Wukongs that name it without scanning them all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NadRefIndex {
    by_nad: HashMap<NadRef, BTreeSet<(String, String)>>,
    by_wukong: HashMap<(String, String), Vec<NadRef>>,
}

impl NadRefIndex {
    /// Records what a Wukong (as stored now) names.
    pub fn update(&mut self, wukong: &Wukong) {
        let key = (names::namespace_of(wukong).to_string(), names::name_of(wukong).to_string());
        let named: Vec<NadRef> = wukong
            .spec
            .networks
            .iter()
            .filter_map(|n| n.nad_name.as_deref())
            .map(|n| NadRef::parse(n, &key.0))
            .collect();
        if self.by_wukong.get(&key) == Some(&named) {
            return;
        }
        self.remove(&key.0, &key.1);
        for nad in &named {
            self.by_nad.entry(nad.clone()).or_default().insert(key.clone());
        }
        if !named.is_empty() {
            self.by_wukong.insert(key, named);
        }
    }

    /// Forgets a deleted Wukong.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        for nad in self.by_wukong.remove(&key).unwrap_or_default() {
            if let Some(set) = self.by_nad.get_mut(&nad) {
                set.remove(&key);
                if set.is_empty() {
                    self.by_nad.remove(&nad);
                }
            }
        }
    }

    /// `(namespace, name)` of every Wukong that names this NAD.
    pub fn naming(&self, nad: &NadRef) -> Vec<(String, String)> {
        self.by_nad.get(nad).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

/// The children each owner controls (by the owner's uid), kept from a child watch's events: a
/// reconcile finds its own NADs without scanning every NAD of the cluster. A relist (the watch
/// starting again) drops the children it did not list: deleted while the watch was away.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OwnedIndex {
    by_owner: HashMap<String, BTreeSet<(String, String)>>,
    owner_of: HashMap<(String, String), String>,
    /// During a relist: the children listed so far.
    relisted: Option<BTreeSet<(String, String)>>,
}

impl OwnedIndex {
    /// Records the controlling owner of a child as seen now (None: it has none).
    pub fn update(&mut self, namespace: &str, name: &str, controller_uid: Option<&str>) {
        let key = (namespace.to_string(), name.to_string());
        if let Some(listed) = &mut self.relisted {
            listed.insert(key.clone());
        }
        if self.owner_of.get(&key).map(String::as_str) == controller_uid {
            return;
        }
        self.remove(namespace, name);
        if let Some(uid) = controller_uid {
            self.by_owner.entry(uid.to_string()).or_default().insert(key.clone());
            self.owner_of.insert(key, uid.to_string());
        }
    }

    /// Forgets a deleted child.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let Some(uid) = self.owner_of.remove(&key) else { return };
        if let Some(set) = self.by_owner.get_mut(&uid) {
            set.remove(&key);
            if set.is_empty() {
                self.by_owner.remove(&uid);
            }
        }
    }

    /// The watch lists every child again.
    pub fn begin_relist(&mut self) {
        self.relisted = Some(BTreeSet::new());
    }

    /// The list is complete: children it did not name are gone.
    pub fn end_relist(&mut self) {
        let Some(listed) = self.relisted.take() else { return };
        let gone: Vec<(String, String)> = self.owner_of.keys().filter(|k| !listed.contains(*k)).cloned().collect();
        for (namespace, name) in gone {
            self.remove(&namespace, &name);
        }
    }

    /// `(namespace, name)` of the children `uid` controls.
    pub fn owned(&self, uid: &str) -> Vec<(String, String)> {
        self.by_owner.get(uid).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

/// What the live VM (as stored) uses, as far as decisions about its children go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveVm {
    /// The NADs its networks name (`multus.networkName`, resolved against its namespace).
    pub nads: BTreeSet<NadRef>,
    /// The Secrets its cloud-init volumes reference.
    pub secrets: BTreeSet<String>,
    /// Its template, as far as changes of a running VM go ([`crate::liveupdate`]).
    pub template: crate::liveupdate::Template,
}

impl LiveVm {
    /// Reads a VirtualMachine (as JSON) in `namespace`.
    pub fn from_vm(vm: &Value, namespace: &str) -> Self {
        let spec = vm.pointer("/spec/template/spec");
        let list = |key: &str| spec.and_then(|s| s.get(key)).and_then(Value::as_array).cloned().unwrap_or_default();
        let nads = list("networks")
            .iter()
            .filter_map(|n| n.pointer("/multus/networkName")?.as_str().map(|name| NadRef::parse(name, namespace)))
            .collect();
        let secrets = list("volumes")
            .iter()
            .filter_map(|v| v.get("cloudInitNoCloud"))
            .flat_map(|c| ["secretRef", "networkDataSecretRef"].map(|k| c.pointer(&format!("/{k}/name")).cloned()))
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        let template = crate::liveupdate::Template::of_vm(vm).unwrap_or_default();
        Self { nads, secrets, template }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wukong(name: &str, spec: Value) -> Wukong {
        let mut spec = spec;
        spec["cpu"] = json!(1);
        spec["memory"] = json!("1Gi");
        serde_json::from_value(json!({
            "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
            "metadata": { "name": name, "namespace": "prod" }, "spec": spec
        }))
        .unwrap()
    }

    fn store() -> BTreeMap<String, Wukong> {
        [
            wukong(
                "web",
                json!({ "networks": [
                { "name": "mgmt", "type": "bridge" },
                { "name": "lan", "type": "bridge", "nadName": "infra/vlan42" }
            ] }),
            ),
            // a Wukong whose name is a prefix of another's: web-a's NADs must not map to web
            wukong("web-a", json!({ "networks": [{ "name": "b", "type": "bridge" }] })),
            wukong(
                "db",
                json!({ "disks": [{ "name": "data", "size": "1Gi" }, { "name": "os", "image": "containerdisk://x" }] }),
            ),
        ]
        .into_iter()
        .map(|w| (w.metadata.name.clone().unwrap(), w))
        .collect()
    }

    fn of(kind: ChildKind, name: &str, owners: &[OwnerReference], labels: &[(&str, &str)]) -> Vec<String> {
        let store = store();
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        wukongs_of(kind, name, owners, &labels, |w| store.get(w))
    }

    fn owner(kind: &str, api_version: &str, name: &str) -> OwnerReference {
        OwnerReference { kind: kind.into(), api_version: api_version.into(), name: name.into(), ..Default::default() }
    }

    #[test]
    fn generated_nads_map_to_the_wukong_whose_network_they_carry() {
        assert_eq!(of(ChildKind::Nad, "web-mgmt-nad", &[], &[]), ["web"]);
        assert_eq!(of(ChildKind::Nad, "web-a-b-nad", &[], &[]), ["web-a"], "not web, which has no network a-b");
        // nadName networks get no generated NAD; unknown names map to nobody
        assert_eq!(of(ChildKind::Nad, "web-lan-nad", &[], &[]), Vec::<String>::new());
        assert_eq!(of(ChildKind::Nad, "other-mgmt-nad", &[], &[]), Vec::<String>::new());
        // an owned NAD of a network that is gone still maps (to be pruned)
        let owned = [owner("Wukong", "vm.novasphere.dev/v1alpha1", "web")];
        assert_eq!(of(ChildKind::Nad, "web-old-nad", &owned, &[]), ["web"]);
    }

    #[test]
    fn vms_instances_disks_and_secrets_map_by_name_and_owner() {
        assert_eq!(of(ChildKind::VirtualMachine, "web-vm", &[], &[]), ["web"], "a foreign VM that blocks web");
        assert_eq!(of(ChildKind::VirtualMachine, "nobody-vm", &[], &[]), Vec::<String>::new());
        assert_eq!(of(ChildKind::VirtualMachineInstance, "x", &[], &[(labels::WUKONG, "db")]), ["db"]);
        assert_eq!(of(ChildKind::PersistentVolumeClaim, "db-data", &[], &[]), ["db"]);
        assert_eq!(of(ChildKind::DataVolume, "db-os", &[], &[]), Vec::<String>::new(), "a containerDisk has no volume");
        let by_vm = [owner("VirtualMachine", "kubevirt.io/v1", "db-vm")];
        assert_eq!(of(ChildKind::DataVolume, "renamed", &by_vm, &[]), ["db"]);
        assert_eq!(of(ChildKind::Secret, "web-cloudinit", &[], &[]), ["web"]);
        assert_eq!(of(ChildKind::Secret, "web-keys", &[], &[]), Vec::<String>::new());
    }

    #[test]
    fn the_nadname_index_follows_every_change_of_a_wukong() {
        let mut index = NadRefIndex::default();
        let store = store();
        index.update(&store["web"]);
        let vlan42 = NadRef { namespace: "infra".into(), name: "vlan42".into() };
        assert_eq!(index.naming(&vlan42), [("prod".to_string(), "web".to_string())]);
        let moved = wukong("web", json!({ "networks": [{ "name": "lan", "type": "bridge", "nadName": "vlan43" }] }));
        index.update(&moved);
        assert_eq!(index.naming(&vlan42), Vec::<(String, String)>::new());
        assert_eq!(index.naming(&NadRef { namespace: "prod".into(), name: "vlan43".into() }).len(), 1);
        index.remove("prod", "web");
        assert_eq!(index, NadRefIndex::default());
    }

    #[test]
    fn a_live_vm_tells_its_nads_and_its_cloud_init_secrets() {
        let vm = json!({ "spec": { "template": { "spec": {
            "networks": [
                { "name": "default", "pod": {} },
                { "name": "mgmt", "multus": { "networkName": "web-mgmt-nad" } },
                { "name": "lan", "multus": { "networkName": "infra/vlan42" } }
            ],
            "volumes": [
                { "name": "system", "containerDisk": { "image": "x" } },
                { "name": "cloudinit", "cloudInitNoCloud": { "secretRef": { "name": "web-cloudinit" }, "networkDataSecretRef": { "name": "web-cloudinit" } } }
            ]
        } } } });
        let live = LiveVm::from_vm(&vm, "prod");
        assert_eq!(
            live.nads,
            BTreeSet::from([
                NadRef { namespace: "prod".into(), name: "web-mgmt-nad".into() },
                NadRef { namespace: "infra".into(), name: "vlan42".into() }
            ])
        );
        assert_eq!(live.secrets, BTreeSet::from(["web-cloudinit".to_string()]));
        assert_eq!(LiveVm::from_vm(&json!({}), "prod"), LiveVm::default());
    }

    #[test]
    fn an_owner_finds_its_children_and_loses_those_taken_or_gone() {
        let mut index = OwnedIndex::default();
        index.update("prod", "web-mgmt-nad", Some("u1"));
        index.update("prod", "web-data-nad", Some("u1"));
        index.update("prod", "db-mgmt-nad", Some("u2"));
        index.update("prod", "hand-made", None);
        let both = vec![("prod".to_string(), "web-data-nad".to_string()), ("prod".into(), "web-mgmt-nad".into())];
        assert_eq!(index.owned("u1"), both);
        // Adopted by another owner (a Wukong made again under its name).
        index.update("prod", "web-data-nad", Some("u3"));
        assert_eq!(index.owned("u1"), vec![("prod".to_string(), "web-mgmt-nad".to_string())]);
        assert_eq!(index.owned("u3"), vec![("prod".to_string(), "web-data-nad".to_string())]);
        index.remove("prod", "web-mgmt-nad");
        assert!(index.owned("u1").is_empty());
        index.update("prod", "db-mgmt-nad", None);
        assert!(index.owned("u2").is_empty(), "its owner reference removed");
        let mut only = OwnedIndex::default();
        only.update("prod", "web-data-nad", Some("u3"));
        assert_eq!(index, only);
        // The watch came back: what the relist does not name was deleted meanwhile.
        index.update("prod", "web-mgmt-nad", Some("u1"));
        index.begin_relist();
        index.update("prod", "web-data-nad", Some("u3"));
        assert_eq!(index.owned("u1").len(), 1, "nothing is dropped before the list is complete");
        index.end_relist();
        assert!(index.owned("u1").is_empty());
        assert_eq!(index.owned("u3"), vec![("prod".to_string(), "web-data-nad".to_string())]);
    }
}
