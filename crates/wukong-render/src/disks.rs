//! Disks: where each disk's volume comes from.
//!
//! - `containerdisk://` images, and `docker://` images without `storageClassName`, become a
//!   containerDisk (ephemeral: the guest's writes are lost on restart).
//! - Other images (`docker://` with a storage class, `http(s)://`) and disks without image
//!   become a CDI DataVolume created with the VM (persistent).
//! - `osImage` is the image of the boot disk when it names none; with no disks at all it makes
//!   an implicit `system` boot disk.

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
    let mut storage = json!({ "resources": { "requests": { "storage": disk.size } } });
    if let Some(class) = &disk.storage_class_name {
        storage["storageClassName"] = json!(class);
    }
    Some(json!({ "source": source, "storage": storage }))
}
