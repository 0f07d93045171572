//! Disks: where each disk's volume comes from, and the boot order.
//!
//! | disk | volume |
//! |---|---|
//! | `image: containerdisk://<ref>` | containerDisk `<ref>` (ephemeral: the guest's writes are lost on restart) |
//! | `image: docker://<ref>` without `storageClassName` | containerDisk `<ref>` |
//! | `image: docker://<ref>` with `storageClassName` | DataVolume `<wukong>-<disk>`, source `registry: {url: docker://<ref>}` |
//! | `image: <ref>` (no scheme, as the original operator and KubeVirt's containerDisk take it) | as `docker://<ref>` |
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

use std::collections::BTreeMap;

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
    if image.starts_with("http://") || image.starts_with("https://") {
        return DiskSource::Http { url: image.to_string() };
    }
    // docker://, or no scheme at all: a registry image.
    let reference = image.strip_prefix("docker://").unwrap_or(image);
    match storage_class {
        None => DiskSource::ContainerDisk { image: reference.to_string() },
        Some(_) => DiskSource::Registry { url: format!("docker://{reference}") },
    }
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

/// A PVC to grow: a DataVolume-backed disk whose `size` needs more than its PVC requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub disk: String,
    /// The PVC (named like the DataVolume, `<wukong>-<disk>`).
    pub pvc: String,
    /// The new `spec.resources.requests.storage`: what CDI would request for a new disk of
    /// this size (see [`cdi_request`]).
    pub size: String,
}

/// A disk's PVC, as the shell found it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PvcObservation {
    pub name: String,
    /// `spec.resources.requests.storage`.
    pub requested: String,
    /// `spec.volumeMode` is `Block` (CDI adds no filesystem overhead then).
    pub block: bool,
    pub storage_class: Option<String>,
}

/// CDI's filesystem overhead (its CDIConfig's `status.filesystemOverhead`): the share of a
/// Filesystem-mode volume its filesystem takes, globally and per StorageClass (`"0.06"`), and
/// how the CDI of that version adds it ([`OverheadMath`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilesystemOverhead {
    pub global: String,
    pub storage_class: BTreeMap<String, String>,
    pub math: OverheadMath,
}

impl FilesystemOverhead {
    /// The overhead CDI applies to a PVC of this class (CDI's own lookup: the class's, else the
    /// global one).
    fn of(&self, class: Option<&str>) -> f64 {
        let percent = class.and_then(|c| self.storage_class.get(c)).unwrap_or(&self.global);
        percent.parse().unwrap_or(0.0)
    }
}

/// How CDI adds the filesystem overhead to a volume's size; it changed in CDI v1.63.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverheadMath {
    /// CDI ≥ v1.63 (and an unknown version): `size × (1 + overhead)` (default overhead 0.06).
    #[default]
    OnTop,
    /// CDI < v1.63: the overhead is a share of the whole, `size / (1 − overhead)` (default 0.055).
    ShareOfWhole,
}

impl OverheadMath {
    /// The math of a CDI version as its CR reports it (`v1.62.0`); unknown: the current one.
    pub fn of_cdi_version(version: Option<&str>) -> Self {
        let minor = version
            .and_then(|v| v.strip_prefix("v1."))
            .and_then(|rest| rest.split(['.', '-']).next())
            .and_then(|m| m.parse::<u32>().ok());
        match minor {
            Some(m) if m < 63 => OverheadMath::ShareOfWhole,
            _ => OverheadMath::OnTop,
        }
    }
}

/// The bytes CDI requests for a DataVolume of `size` with the `storage` API (what wukong
/// renders): on a Filesystem volume, `size` rounded up to 1 MiB with the filesystem overhead
/// added, rounded up to a byte, computed as CDI computes it (`GetRequiredSpace`, in float64); a
/// Block volume gets `size` itself. 30Gi: 34144990004 on CDI v1.64 (0.06 on top), 34087042032
/// on v1.62 (a 0.055 share of the whole).
pub fn cdi_request(size_bytes: u128, overhead: f64, block: bool, math: OverheadMath) -> u128 {
    if block {
        return size_bytes;
    }
    const ALIGN: u128 = 1 << 20;
    let aligned = (size_bytes.div_ceil(ALIGN) * ALIGN) as f64;
    let with_overhead = match math {
        OverheadMath::OnTop => aligned * (1.0 + overhead),
        OverheadMath::ShareOfWhole => aligned / (1.0 - overhead),
    };
    with_overhead.ceil() as u128
}

/// The PVCs to grow so a larger `size` reaches the volume. KubeVirt creates a disk's DataVolume
/// from `dataVolumeTemplates` once, and CDI refuses any later change of a DataVolume's spec, so
/// the shell patches the PVC's `spec.resources.requests.storage` (the StorageClass must allow
/// volume expansion). The PVC is asked for what CDI would request for a new disk of that size
/// ([`cdi_request`], with `overhead` from CDI's config; `None`, CDI's config unknown: the bare
/// size), so a grown disk ends the size a new one would have. PVCs not observed (not created
/// yet), sizes that are no quantity and PVCs that already request as much are left alone.
/// Shrinking is refused at admission and never proposed here.
pub fn expansions(wukong: &Wukong, pvcs: &[PvcObservation], overhead: Option<&FilesystemOverhead>) -> Vec<Expansion> {
    let name = names::name_of(wukong);
    plan(wukong)
        .into_iter()
        .filter_map(|disk| {
            let pvc_name = disk.data_volume(name)?;
            let pvc = pvcs.iter().find(|p| p.name == pvc_name)?;
            let bytes = quantity_bytes(disk.size.as_deref()?)?;
            let wanted = match overhead {
                Some(o) => cdi_request(bytes, o.of(pvc.storage_class.as_deref()), pvc.block, o.math),
                None => bytes,
            };
            let current = quantity_bytes(&pvc.requested)?;
            (wanted > current).then(|| Expansion { disk: disk.name, pvc: pvc_name, size: wanted.to_string() })
        })
        .collect()
}

/// The bytes of a quantity, rounded up to a whole byte as Kubernetes does; `None` when it is
/// not one, is negative or overflows. Every form of the grammar: `30Gi`, `1.5T`, `2048`,
/// `4194304k`, `20e9`, `.5Ti`, `1500m`.
pub fn quantity_bytes(q: &str) -> Option<u128> {
    // kube_quantity decides what is a quantity (apimachinery's grammar); the value is computed
    // here exactly, as a fraction, since the crate's own byte conversion truncates fractions.
    kube_quantity::ParsedQuantity::try_from(q).ok()?;
    let unsigned = q.strip_prefix('+').unwrap_or(q);
    if unsigned.starts_with('-') {
        return None;
    }
    let split = unsigned.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let mantissa: u128 = format!("{whole}{fraction}").trim_start_matches('0').parse().unwrap_or(0);
    // value = mantissa × numerator / denominator
    let mut numerator: u128 = 1;
    let mut denominator: u128 = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    match suffix {
        "" => {}
        "n" => denominator = denominator.checked_mul(1_000_000_000)?,
        "u" => denominator = denominator.checked_mul(1_000_000)?,
        "m" => denominator = denominator.checked_mul(1_000)?,
        "k" => numerator = 1_000,
        "M" => numerator = 1_000_000,
        "G" => numerator = 1_000_000_000,
        "T" => numerator = 1_000_000_000_000,
        "P" => numerator = 1_000_000_000_000_000,
        "E" => numerator = 1_000_000_000_000_000_000,
        "Ki" => numerator = 1 << 10,
        "Mi" => numerator = 1 << 20,
        "Gi" => numerator = 1 << 30,
        "Ti" => numerator = 1 << 40,
        "Pi" => numerator = 1 << 50,
        "Ei" => numerator = 1 << 60,
        exponent => {
            let e: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            let power = 10u128.checked_pow(e.unsigned_abs())?;
            if e >= 0 {
                numerator = power;
            } else {
                denominator = denominator.checked_mul(power)?;
            }
        }
    }
    Some(mantissa.checked_mul(numerator)?.div_ceil(denominator))
}

/// Compares two Kubernetes quantities (`20Gi`, `1.5T`, `500M`, `20e9`, `.5Ti`); `None` when
/// either is not one. Parsed and compared by kube_quantity.
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
    fn an_image_without_scheme_is_a_registry_image_like_docker() {
        for image in ["quay.io/containerdisks/ubuntu:22.04", "docker://quay.io/containerdisks/ubuntu:22.04"] {
            assert_eq!(
                source(image, None),
                DiskSource::ContainerDisk { image: "quay.io/containerdisks/ubuntu:22.04".into() },
                "{image}"
            );
            assert_eq!(
                source(image, Some("ssd")),
                DiskSource::Registry { url: "docker://quay.io/containerdisks/ubuntu:22.04".into() },
                "{image}"
            );
        }
        assert_eq!(
            source("https://example.com/os.img", None),
            DiskSource::Http { url: "https://example.com/os.img".into() }
        );
    }

    fn pvc(name: &str, requested: &str) -> PvcObservation {
        PvcObservation {
            name: name.into(),
            requested: requested.into(),
            block: false,
            storage_class: Some("ssd".into()),
        }
    }

    fn db() -> Wukong {
        serde_json::from_value(json!({
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
        .unwrap()
    }

    #[test]
    fn cdi_requests_the_size_plus_its_filesystem_overhead_as_cdi_computes_it() {
        use OverheadMath::*;
        // What CDI v1.64 requested on the bench for 2Gi, 10Gi, 30Gi and 200Gi (overhead 0.06).
        assert_eq!(cdi_request(2 << 30, 0.06, false, OnTop), 2_276_332_667);
        assert_eq!(cdi_request(10 << 30, 0.06, false, OnTop), 11_381_663_335);
        assert_eq!(cdi_request(30 << 30, 0.06, false, OnTop), 34_144_990_004);
        assert_eq!(cdi_request(200 << 30, 0.06, false, OnTop), 227_633_266_688);
        // and CDI v1.62 for 30Gi (overhead 0.055, a share of the whole)
        assert_eq!(cdi_request(30 << 30, 0.055, false, ShareOfWhole), 34_087_042_032);
        // aligned up to 1 MiB first; Block volumes get no overhead
        assert_eq!(cdi_request(1, 0.0, false, OnTop), 1 << 20);
        assert_eq!(cdi_request(30 << 30, 0.06, true, OnTop), 30 << 30);
    }

    #[test]
    fn the_cdi_version_tells_how_it_adds_the_overhead() {
        assert_eq!(OverheadMath::of_cdi_version(Some("v1.62.0")), OverheadMath::ShareOfWhole);
        assert_eq!(OverheadMath::of_cdi_version(Some("v1.58.3")), OverheadMath::ShareOfWhole);
        assert_eq!(OverheadMath::of_cdi_version(Some("v1.63.0")), OverheadMath::OnTop);
        assert_eq!(OverheadMath::of_cdi_version(Some("v1.64.0")), OverheadMath::OnTop);
        assert_eq!(OverheadMath::of_cdi_version(Some("v1.70.0-rc.1")), OverheadMath::OnTop);
        assert_eq!(OverheadMath::of_cdi_version(None), OverheadMath::OnTop);
        assert_eq!(OverheadMath::of_cdi_version(Some("main")), OverheadMath::OnTop);
    }

    #[test]
    fn a_grown_disk_asks_its_pvc_for_what_cdi_would_request_for_that_size() {
        let overhead = FilesystemOverhead {
            global: "0.06".into(),
            storage_class: BTreeMap::from([("thin".to_string(), "0.1".to_string())]),
            math: OverheadMath::OnTop,
        };
        let pvcs = [
            pvc("db-system", "34144990004"), // 30Gi as CDI sized it
            pvc("db-data", &cdi_request(200 << 30, 0.06, false, OverheadMath::OnTop).to_string()), // unchanged
            PvcObservation { storage_class: Some("thin".into()), ..pvc("db-logs", "5Gi") }, // grown, per-class overhead
        ];
        let grown = expansions(&db(), &pvcs, Some(&overhead));
        assert_eq!(
            grown,
            [
                Expansion { disk: "system".into(), pvc: "db-system".into(), size: "45526653338".into() },
                Expansion { disk: "logs".into(), pvc: "db-logs".into(), size: "11811160064".into() },
            ]
        );
    }

    #[test]
    fn a_growth_smaller_than_the_overhead_still_reaches_the_pvc() {
        // 30Gi -> 31Gi: the PVC already requests more than 31Gi (30Gi + 6 %), yet less than a new
        // 31Gi disk would get.
        let mut wukong = db();
        wukong.spec.disks[0].size = Some("31Gi".into());
        let overhead = FilesystemOverhead { global: "0.06".into(), ..Default::default() };
        let grown = expansions(&wukong, &[pvc("db-system", "34144990004")], Some(&overhead));
        assert_eq!(grown, [Expansion { disk: "system".into(), pvc: "db-system".into(), size: "35283156337".into() }]);
    }

    #[test]
    fn without_cdi_config_the_bare_size_is_compared_and_block_pvcs_get_no_overhead() {
        let grown = expansions(&db(), &[pvc("db-system", "30Gi"), pvc("db-data", "204800Mi")], None);
        assert_eq!(
            grown,
            [Expansion { disk: "system".into(), pvc: "db-system".into(), size: (40u128 << 30).to_string() }]
        );
        let overhead = FilesystemOverhead { global: "0.06".into(), ..Default::default() };
        let block = PvcObservation { block: true, ..pvc("db-system", "30Gi") };
        let grown = expansions(&db(), &[block], Some(&overhead));
        assert_eq!(grown[0].size, (40u128 << 30).to_string());
    }

    #[test]
    fn disks_without_a_pvc_a_quantity_or_a_datavolume_are_left_alone() {
        let overhead = FilesystemOverhead { global: "0.06".into(), ..Default::default() };
        // "new" has no PVC yet; "scratch" is a containerDisk; a PVC asking for more stays.
        let pvcs = [pvc("db-scratch", "1Gi"), pvc("db-system", "50Gi")];
        assert_eq!(expansions(&db(), &pvcs, Some(&overhead)), []);
        assert_eq!(quantity_bytes("1.5Gi"), Some(1_610_612_736));
        assert_eq!(quantity_bytes("20Gb"), None);
    }

    #[test]
    fn every_form_of_quantity_has_its_bytes_and_they_order_as_kube_quantity_orders_them() {
        assert_eq!(quantity_bytes("4194304k"), Some(4_194_304_000));
        assert_eq!(quantity_bytes("20e9"), Some(20_000_000_000));
        assert_eq!(quantity_bytes(".5Ti"), Some(1 << 39));
        assert_eq!(quantity_bytes("1500m"), Some(2));
        assert_eq!(quantity_bytes("+1Ki"), Some(1024));
        assert_eq!(quantity_bytes("4K"), None);
        assert_eq!(quantity_bytes("-1Gi"), None);
        let forms = ["1", "1k", "1Ki", "1.5Gi", "1536Mi", "20e9", "20G", ".5Ti", "512Gi", "4194304k", "1e3", "999m"];
        for a in forms {
            for b in forms {
                let ours = quantity_bytes(a).zip(quantity_bytes(b)).map(|(x, y)| x.cmp(&y));
                // Rounding up to a byte can only merge values that differ below a byte.
                if let (Some(o), Some(theirs)) = (ours, compare_quantities(a, b)) {
                    assert!(o == theirs || o == Equal, "{a} vs {b}: {o:?} by bytes, {theirs:?} by kube_quantity");
                }
            }
        }
    }
}
