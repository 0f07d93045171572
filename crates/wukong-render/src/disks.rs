//! Disks: where each disk's volume comes from, and the boot order.
//!
//! | disk | volume |
//! |---|---|
//! | `image: containerdisk://<ref>` | containerDisk `<ref>` (ephemeral: the guest's writes are lost on restart) |
//! | `image: docker://<ref>` without `storageClassName` | containerDisk `<ref>` |
//! | `image: docker://<ref>` with `storageClassName` | DataVolume `<wukong>-<disk>`, source `registry: {url: docker://<ref>}` |
//! | `image: http(s)://...` | DataVolume, source `http: {url}` |
//! | no `image` (and not the boot disk of an `osImage`) | DataVolume, source `blank: {}` (a data disk) |
//!
//! - A DataVolume is created with the VM (`spec.dataVolumeTemplates`) and persists: CDI's
//!   `storage` API with `resources.requests.storage` = `size` and `storageClassName` when set
//!   (CDI fills access and volume modes from the StorageProfile). Its PVC has its name.
//! - `osImage` is the image of the boot disk when that disk names none; with no disks at all it
//!   makes an implicit `system` boot disk.
//! - Boot order: the disk with `boot: true` gets `bootOrder: 1`, every other disk none (so
//!   nothing else is tried first). Without a boot disk no disk gets a boot order and KubeVirt
//!   boots from the first one.
//! - The VM's disk list is the spec's disks in spec order, then the `cloudinit` disk when the VM
//!   needs cloud-init ([`crate::cloudinit`]); the name `cloudinit` is refused for a user disk at
//!   admission.
//! - A disk's `size` may grow and never shrink (refused at admission: a volume cannot be made
//!   smaller).

use serde_json::{Value, json};
use wukong_api::{DiskSpec, Wukong};

use crate::names;

/// Name of the boot disk wukong adds when `disks` is empty and `osImage` is set.
pub const IMPLICIT_BOOT_DISK: &str = "system";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskSource {
    /// An image pulled by the node and thrown away with the pod.
    ContainerDisk { image: String },
    /// A DataVolume importing from a registry (`docker://...`).
    Registry { url: String },
    /// A DataVolume importing from a web server.
    Http { url: String },
    /// An empty DataVolume.
    Blank,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDisk {
    pub name: String,
    pub boot: bool,
    pub source: DiskSource,
    pub size: Option<String>,
    pub storage_class_name: Option<String>,
}

impl PlannedDisk {
    /// The DataVolume name, for disks backed by one.
    pub fn data_volume(&self, wukong: &str) -> Option<String> {
        match self.source {
            DiskSource::ContainerDisk { .. } => None,
            _ => Some(names::data_volume_name(wukong, &self.name)),
        }
    }
}

/// Plans the disks of a validated Wukong, in spec order.
pub fn plan(wukong: &Wukong) -> Vec<PlannedDisk> {
    let spec = &wukong.spec;
    if spec.disks.is_empty() {
        return spec
            .os_image
            .iter()
            .map(|image| PlannedDisk {
                name: IMPLICIT_BOOT_DISK.to_string(),
                boot: true,
                source: source(image, None),
                size: None,
                storage_class_name: None,
            })
            .collect();
    }
    spec.disks.iter().map(|d| planned(d, spec.os_image.as_deref())).collect()
}

fn planned(disk: &DiskSpec, os_image: Option<&str>) -> PlannedDisk {
    let boot = disk.boot.unwrap_or(false);
    let image = disk.image.as_deref().or(if boot { os_image } else { None });
    PlannedDisk {
        name: disk.name.clone(),
        boot,
        source: image.map_or(DiskSource::Blank, |i| source(i, disk.storage_class_name.as_deref())),
        size: disk.size.clone(),
        storage_class_name: disk.storage_class_name.clone(),
    }
}

fn source(image: &str, storage_class: Option<&str>) -> DiskSource {
    if let Some(reference) = image.strip_prefix("containerdisk://") {
        return DiskSource::ContainerDisk { image: reference.to_string() };
    }
    if let Some(reference) = image.strip_prefix("docker://") {
        return match storage_class {
            None => DiskSource::ContainerDisk { image: reference.to_string() },
            Some(_) => DiskSource::Registry { url: image.to_string() },
        };
    }
    DiskSource::Http { url: image.to_string() }
}

/// The `spec` of the CDI DataVolume of a disk (None for a containerDisk).
pub fn data_volume_spec(disk: &PlannedDisk) -> Option<Value> {
    let source = match &disk.source {
        DiskSource::ContainerDisk { .. } => return None,
        DiskSource::Registry { url } => json!({ "registry": { "url": url } }),
        DiskSource::Http { url } => json!({ "http": { "url": url } }),
        DiskSource::Blank => json!({ "blank": {} }),
    };
    let mut storage = match &disk.size {
        Some(size) => json!({ "resources": { "requests": { "storage": size } } }),
        None => json!({}),
    };
    if let Some(class) = &disk.storage_class_name {
        storage["storageClassName"] = json!(class);
    }
    Some(json!({ "source": source, "storage": storage }))
}

/// A PVC to grow: a DataVolume-backed disk whose `size` is larger than what its PVC requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub disk: String,
    /// The PVC (named like the DataVolume, `<wukong>-<disk>`).
    pub pvc: String,
    /// The new `spec.resources.requests.storage`.
    pub size: String,
}

/// The PVCs to grow so a larger `size` reaches the volume. KubeVirt creates a disk's DataVolume
/// from `dataVolumeTemplates` once and does not carry a later size change to it, so the shell
/// patches the PVC's `spec.resources.requests.storage` (the StorageClass must allow volume
/// expansion). `requested` maps PVC names to their current `spec.resources.requests.storage`;
/// PVCs not in it (not created yet) and sizes that are no quantity are left alone. Shrinking is
/// refused at admission and never proposed here.
pub fn expansions(wukong: &Wukong, requested: &std::collections::BTreeMap<String, String>) -> Vec<Expansion> {
    let name = names::name_of(wukong);
    plan(wukong)
        .into_iter()
        .filter_map(|disk| {
            let pvc = disk.data_volume(name)?;
            let size = disk.size?;
            let current = requested.get(&pvc)?;
            let grows = compare_quantities(&size, current)? == std::cmp::Ordering::Greater;
            grows.then_some(Expansion { disk: disk.name, pvc, size })
        })
        .collect()
}

/// Compares two Kubernetes quantities (`20Gi`, `1.5T`, `500M`, `2e10`, `.5Ti`); `None` when
/// either is not one. Parsed with kube_quantity, which follows apimachinery's grammar.
pub fn compare_quantities(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let a = kube_quantity::ParsedQuantity::try_from(a).ok()?;
    let b = kube_quantity::ParsedQuantity::try_from(b).ok()?;
    a.partial_cmp(&b)
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering::*;
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn quantities_compare_by_value_across_suffixes() {
        assert_eq!(compare_quantities("20Gi", "20480Mi"), Some(Equal));
        assert_eq!(compare_quantities("21Gi", "20Gi"), Some(Greater));
        assert_eq!(compare_quantities("1.5Gi", "1536Mi"), Some(Equal));
        assert_eq!(compare_quantities("1G", "1Gi"), Some(Less));
        assert_eq!(compare_quantities("1Ti", "1000Gi"), Some(Greater));
        assert_eq!(compare_quantities("1000", "1k"), Some(Equal));
        assert_eq!(compare_quantities("20Gb", "1Gi"), None);
        assert_eq!(compare_quantities("", "1Gi"), None);
        assert_eq!(compare_quantities(".5Gi", "512Mi"), Some(Equal));
        assert_eq!(compare_quantities("2e10", "20G"), Some(Equal));
        assert_eq!(compare_quantities("4k", "4Ki"), Some(Less));
    }

    #[test]
    fn only_grown_disks_backed_by_an_existing_pvc_are_expanded() {
        let wukong: Wukong = serde_json::from_value(json!({
            "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
            "metadata": { "name": "db", "namespace": "prod" },
            "spec": { "cpu": 1, "memory": "1Gi", "disks": [
                { "name": "system", "boot": true, "image": "https://example.com/os.img", "size": "40Gi", "storageClassName": "ssd" },
                { "name": "data", "size": "200Gi" },
                { "name": "logs", "size": "10Gi" },
                { "name": "new", "size": "5Gi" },
                { "name": "scratch", "image": "containerdisk://quay.io/containerdisks/scratch:1", "size": "99Gi" }
            ] }
        }))
        .unwrap();
        let requested = BTreeMap::from([
            ("db-system".to_string(), "30Gi".to_string()),
            ("db-data".to_string(), "204800Mi".to_string()),
            ("db-logs".to_string(), "20Gi".to_string()),
        ]);
        assert_eq!(
            expansions(&wukong, &requested),
            [Expansion { disk: "system".into(), pvc: "db-system".into(), size: "40Gi".into() }]
        );
    }
}
