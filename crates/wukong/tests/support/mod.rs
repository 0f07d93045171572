//! Test support shared by every integration test that needs a real control plane.
//!
//! [`cluster()`] is the control plane of the test run: real etcd, kube-apiserver and
//! kube-controller-manager started by `hack/local-cluster.sh` (see its header), with the NAD and
//! Wukong CRDs installed and the real CDI (cdi-controller, cdi-apiserver) and KubeVirt (virt-api,
//! virt-controller) running next to it: every VM a test writes passes KubeVirt's admission
//! webhooks and is turned into a VMI and a launcher Pod by virt-controller. It is reused when `WUKONG_CLUSTER_DIR` names a
//! running one (as `make test` does), else started once in `<repo>/target/test-cluster` and left
//! running for the next run (`hack/local-cluster.sh down` with that directory stops it).
//!
//! Include with `mod support;`. Blocking code (the script, kubectl) runs in std threads; nothing
//! here needs a tokio runtime except the `async fn`s, and no kube `Client` is shared between
//! tests: each `#[tokio::test]` has its own runtime, so clients are built per call.
//!
//! Environment knobs: `WUKONG_TEST_KEEP_NAMESPACES=1` keeps test namespaces for inspection,
//! `WUKONG_TEST_KEEP_CLUSTERS=1` keeps private clusters running after their test.
#![allow(dead_code)]

pub mod audit;
pub mod controller;
pub mod kubevirt;
pub mod original;

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{Request, Status};
use kube::discovery::{ApiResource, Scope};
use kube::{Client, Config};
use serde_json::{Value, json};

/// Field manager of every server-side apply the tests make.
pub const FIELD_MANAGER: &str = "wukong-test";

/// Label put on every test namespace (`kubectl delete ns -l wukong.test/namespace=true` cleans up).
pub const TEST_NAMESPACE_LABEL: &str = "wukong.test/namespace";

/// Age of a CRD after which kube-controller-manager's garbage collector (resource re-discovery
/// every 30 s) surely watches its kind.
pub const GC_READY_AFTER: Duration = Duration::from_secs(36);

/// The four CRDs every control plane of the tests serves.
pub const CRD_NAMES: [&str; 4] = [
    "wukongs.vm.novasphere.dev",
    "network-attachment-definitions.k8s.cni.cncf.io",
    "virtualmachines.kubevirt.io",
    "virtualmachineinstances.kubevirt.io",
];

// ------------------------------------------------------------------------------------------
// paths

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().and_then(Path::parent).expect("crates/wukong lies two levels below the repo root");
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// `hack/local-cluster.sh`.
pub fn local_cluster_script() -> PathBuf {
    repo_root().join("hack/local-cluster.sh")
}

/// The `wukong` binary cargo built for this test run; its `wukong crd` is the CRD under test.
pub fn wukong_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wukong"))
}

/// `examples/<name>` in the repository.
pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// Every `examples/*.yaml`, sorted by name.
pub fn examples() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/ is readable")
        .map(|e| e.expect("examples/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no examples/*.yaml found");
    paths
}

// ------------------------------------------------------------------------------------------
// the control plane

/// A running control plane, as described by its `cluster.env`.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// State directory (`WUKONG_CLUSTER_DIR`).
    pub dir: PathBuf,
    /// Admin kubeconfig (O=system:masters, certificates embedded).
    pub kubeconfig: PathBuf,
    /// API server URL, `https://127.0.0.1:<port>`.
    pub server: String,
    pub kubectl: PathBuf,
    pub multus: PathBuf,
    /// Directory of etcd, kube-apiserver, kube-controller-manager, kubectl and multus.
    pub bin_dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// KubeVirt's release when virt-api and virt-controller run (`v1.8.4`).
    pub kubevirt_version: Option<String>,
    /// CDI's release when cdi-controller and cdi-apiserver run (`v1.64.0`).
    pub cdi_version: Option<String>,
    /// The default StorageClass, whose provisioner CDI knows (set when CDI runs).
    pub storage_class: Option<String>,
    /// Every line of `cluster.env` as it was when this value was loaded.
    pub env: BTreeMap<String, String>,
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The shared control plane of this test run, started at most once per test binary.
///
/// Reuses the cluster of `$WUKONG_CLUSTER_DIR` when it answers `/readyz`; else reuses or starts
/// the one in `<repo>/target/test-cluster` under a file lock, so concurrent test binaries start
/// one control plane between them. Missing CRD sets (and an outdated Wukong CRD) are installed.
pub fn cluster() -> &'static Cluster {
    match SHARED.get_or_init(shared_cluster) {
        Ok(cluster) => cluster,
        Err(e) => panic!("no control plane for the tests: {e}"),
    }
}

fn shared_cluster() -> Result<Cluster, String> {
    let started = Instant::now();
    if let Some(dir) = std::env::var_os("WUKONG_CLUSTER_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if let Some(cluster) = Cluster::load(&dir).filter(Cluster::is_ready) {
            let _lock = FileLock::in_dir(&dir)?;
            let cluster = cluster.ensure_crds()?;
            eprintln!("test support: reusing the control plane in {} ({})", dir.display(), cluster.server);
            return Ok(cluster);
        }
    }
    let dir = repo_root().join("target/test-cluster");
    let _lock = FileLock::in_dir(&dir)?;
    if let Some(cluster) = Cluster::load(&dir).filter(Cluster::is_ready) {
        let cluster = cluster.ensure_crds()?;
        eprintln!("test support: reusing the control plane in {} ({})", dir.display(), cluster.server);
        return Ok(cluster);
    }
    run_local_cluster(&dir, &["up"])?;
    let cluster = Cluster::load(&dir).ok_or_else(|| format!("`up` left no cluster.env in {}", dir.display()))?;
    eprintln!(
        "test support: started a control plane in {} ({}) in {:.1} s",
        dir.display(),
        cluster.server,
        started.elapsed().as_secs_f64()
    );
    Ok(cluster)
}

/// Runs `hack/local-cluster.sh <args>` on the state directory `dir`; stdout on success, the
/// script's diagnostics on failure.
pub fn run_local_cluster(dir: &Path, args: &[&str]) -> Result<String, String> {
    run_local_cluster_with_env(dir, args, &[])
}

/// [`run_local_cluster`] with extra environment.
pub fn run_local_cluster_with_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Result<String, String> {
    let output = Command::new(local_cluster_script())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("WUKONG_CLUSTER_DIR", dir)
        .env("WUKONG_BIN", wukong_bin())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", local_cluster_script().display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "WUKONG_CLUSTER_DIR={} hack/local-cluster.sh {} failed ({}):\n{}",
            dir.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// An exclusive `flock` on a file, released on drop. The shared cluster's is
/// `<dir>/.test-support.lock` (not the script's own `<dir>/.lock`, which `up` takes itself).
struct FileLock(File);

impl FileLock {
    fn acquire(path: &Path) -> Result<Self, String> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        file.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(Self(file))
    }

    fn in_dir(dir: &Path) -> Result<Self, String> {
        Self::acquire(&dir.join(".test-support.lock"))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// `KEY=VALUE` lines (value = rest of the line) of `<dir>/cluster.env`.
pub fn read_cluster_env(dir: &Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("cluster.env")).ok()?;
    Some(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.to_string())).collect())
}

impl Cluster {
    /// The cluster described by `<dir>/cluster.env`, if that file exists and is complete.
    pub fn load(dir: &Path) -> Option<Cluster> {
        let env = read_cluster_env(dir)?;
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        Some(Cluster {
            dir: dir.to_path_buf(),
            kubeconfig: get("KUBECONFIG")?.into(),
            server: get("WUKONG_CLUSTER_SERVER")?,
            kubectl: get("WUKONG_CLUSTER_KUBECTL")?.into(),
            multus: get("WUKONG_CLUSTER_MULTUS")?.into(),
            bin_dir: get("WUKONG_CLUSTER_BIN_DIR")?.into(),
            ca_cert: get("WUKONG_CLUSTER_CA_CERT")?.into(),
            ca_key: get("WUKONG_CLUSTER_CA_KEY")?.into(),
            kubevirt_version: get("WUKONG_CLUSTER_KUBEVIRT_VERSION"),
            cdi_version: get("WUKONG_CLUSTER_CDI_VERSION"),
            storage_class: get("WUKONG_CLUSTER_STORAGE_CLASS"),
            env,
        })
    }

    /// `kubectl --kubeconfig <admin kubeconfig>`.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).stdin(Stdio::null());
        cmd
    }

    /// Whether the API server answers `/readyz` with `ok` (blocking, at most ~5 s).
    pub fn is_ready(&self) -> bool {
        self.kubectl()
            .args(["get", "--raw", "/readyz", "--request-timeout=5s"])
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "ok")
    }

    /// The sets (`nad`, `wukong`, `cdi`, `kubevirt`) the script recorded as installed, read now.
    pub fn installed_crd_sets(&self) -> Vec<String> {
        read_cluster_env(&self.dir)
            .and_then(|env| env.get("WUKONG_CLUSTER_CRDS").cloned())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Runs `hack/local-cluster.sh <args>` on this cluster's state directory; panics on failure.
    pub fn local_cluster(&self, args: &[&str]) -> String {
        run_local_cluster(&self.dir, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Installs a set (`nad`, `wukong`, `cdi` or `kubevirt`: for the last two, their CRDs and
    /// their running processes) and waits until it is served (`hack/local-cluster.sh crds
    /// --only <only>`). Blocking.
    pub fn install_crds(&self, only: &str) {
        self.local_cluster(&["crds", "--only", only]);
    }

    /// Deletes a CRD set, waiting until it is gone (`crds --without <set> --only <set>`). Blocking.
    pub fn uninstall_crds(&self, set: &str) {
        self.local_cluster(&["crds", "--without", set, "--only", set]);
    }

    /// Installs what is missing: a CRD set that is absent, CDI or KubeVirt when they do not run,
    /// and the Wukong CRD when the installed one differs from what this build's `wukong crd`
    /// prints.
    fn ensure_crds(self) -> Result<Cluster, String> {
        let output = self
            .kubectl()
            .args(["get", "crd", "--ignore-not-found", "-o", "json"])
            .args(CRD_NAMES)
            .output()
            .map_err(|e| format!("kubectl get crd: {e}"))?;
        if !output.status.success() {
            return Err(format!("kubectl get crd failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        let installed: BTreeMap<String, Value> = if output.stdout.iter().all(u8::is_ascii_whitespace) {
            BTreeMap::new()
        } else {
            let list: Value = serde_json::from_slice(&output.stdout).map_err(|e| format!("kubectl get crd: {e}"))?;
            let items = list.get("items").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![list]);
            items
                .into_iter()
                .filter_map(|crd| Some((crd.pointer("/metadata/name")?.as_str()?.to_string(), crd)))
                .collect()
        };
        let ours = our_wukong_crd();
        let mut missing = Vec::new();
        if !installed.contains_key(CRD_NAMES[1]) {
            missing.push("nad");
        }
        // The components: recorded as running by the script, and still running now.
        let sets = self.installed_crd_sets();
        let running = run_local_cluster(&self.dir, &["status"]).is_ok();
        for set in ["cdi", "kubevirt"] {
            if !running || !sets.iter().any(|s| s == set) {
                missing.push(set);
            }
        }
        let current = installed.get(CRD_NAMES[0]).is_some_and(|crd| same_crd_versions(crd, &ours));
        if !current {
            missing.push("wukong");
        }
        if !missing.is_empty() {
            eprintln!("test support: installing CRD sets {missing:?} into {}", self.dir.display());
            let mut args = vec!["crds"];
            for set in &missing {
                args.extend(["--only", set]);
            }
            run_local_cluster(&self.dir, &args)?;
        }
        Ok(Cluster::load(&self.dir).unwrap_or(self))
    }

    /// Waits until kube-controller-manager's garbage collector can collect dependents of the
    /// kinds of [`CRD_NAMES`]: it re-reads the API's resources every 30 s, so a kind whose CRD
    /// is younger is not watched yet and its objects' owners are not followed (measured: 27 s to
    /// collect on a fresh control plane, under 1 s afterwards). Returns at once when every CRD
    /// is older than [`GC_READY_AFTER`].
    pub async fn wait_for_garbage_collector(&self) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.admin_client().await);
        let mut newest = None;
        for name in CRD_NAMES {
            let crd = crds.get_opt(name).await.unwrap_or_else(|e| panic!("cannot read CRD {name}: {e}"));
            newest = newest.max(crd.and_then(|c| c.metadata.creation_timestamp).map(|t| t.0));
        }
        let Some(newest) = newest else { return };
        let age = Duration::from_secs(
            u64::try_from(k8s_openapi::jiff::Timestamp::now().as_second() - newest.as_second()).unwrap_or_default(),
        );
        if let Some(rest) = GC_READY_AFTER.checked_sub(age) {
            eprintln!("test support: waiting {rest:?} for the garbage collector to watch the CRDs' kinds");
            tokio::time::sleep(rest).await;
        }
    }

    /// A client with the admin kubeconfig, built for the calling test's runtime.
    pub async fn admin_client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        client_from(kubeconfig).await
    }

    /// A fresh namespace `<prefix>-<random>`, once kube-controller-manager gave it its `default`
    /// ServiceAccount. Deleted (in the background) when the value is dropped.
    pub async fn namespace(&self, prefix: &str) -> TestNamespace {
        let client = self.admin_client().await;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let prefix = dns_label_prefix(prefix);
        let mut attempt = 0;
        let name = loop {
            let name = format!("{prefix}-{}", unique_suffix());
            let namespace: Namespace = serde_json::from_value(json!({
                "metadata": { "name": name, "labels": { TEST_NAMESPACE_LABEL: "true" } }
            }))
            .expect("a Namespace");
            match namespaces.create(&PostParams::default(), &namespace).await {
                Ok(_) => break name,
                Err(kube::Error::Api(s)) if s.is_already_exists() && attempt < 5 => attempt += 1,
                Err(e) => panic!("cannot create namespace {name}: {e}"),
            }
        };
        let namespace = TestNamespace {
            name: name.clone(),
            client: client.clone(),
            kubectl: self.kubectl.clone(),
            kubeconfig: self.kubeconfig.clone(),
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(client, &name);
        wait_for(&format!("the default ServiceAccount of namespace {name}"), Duration::from_secs(30), || async {
            accounts.get_opt("default").await.ok().flatten()
        })
        .await;
        namespace
    }

    /// A token of ServiceAccount `namespace/sa` from the TokenRequest API (valid one hour); the
    /// ServiceAccount is created when missing.
    pub async fn service_account_token(&self, namespace: &str, sa: &str) -> String {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin_client().await, namespace);
        let account: ServiceAccount =
            serde_json::from_value(json!({ "metadata": { "name": sa } })).expect("a ServiceAccount");
        match accounts.create(&PostParams::default(), &account).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => panic!("cannot create ServiceAccount {namespace}/{sa}: {e}"),
        }
        let request = TokenRequest {
            spec: TokenRequestSpec { expiration_seconds: Some(3600), ..TokenRequestSpec::default() },
            ..TokenRequest::default()
        };
        let answer = accounts
            .create_token_request(sa, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{sa} failed: {e}"));
        answer.status.map(|s| s.token).filter(|t| !t.is_empty()).expect("the TokenRequest answer holds a token")
    }

    /// A kubeconfig (as JSON, which is YAML) that authenticates with `token`, default
    /// namespace `namespace`, trusting this cluster's CA.
    pub fn token_kubeconfig(&self, token: &str, namespace: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "wukong-local", "cluster": {
                "server": self.server,
                "certificate-authority": self.ca_cert,
            }}],
            "users": [{ "name": "token", "user": { "token": token } }],
            "contexts": [{ "name": "token@wukong-local", "context": {
                "cluster": "wukong-local", "user": "token", "namespace": namespace,
            }}],
            "current-context": "token@wukong-local",
        })
    }

    /// A client that authenticates as ServiceAccount `namespace/sa` with a bound token, so RBAC
    /// applies for real. Creates the ServiceAccount when missing.
    pub async fn service_account_client(&self, namespace: &str, sa: &str) -> Client {
        let token = self.service_account_token(namespace, sa).await;
        let kubeconfig = Kubeconfig::from_yaml(&self.token_kubeconfig(&token, namespace).to_string())
            .expect("the token kubeconfig parses");
        client_from(kubeconfig).await
    }

    /// Writes a kubeconfig for ServiceAccount `namespace/sa` to `path` (for a `wukong
    /// controller` process run under that account) and returns `path`.
    pub async fn write_service_account_kubeconfig(&self, namespace: &str, sa: &str, path: &Path) -> PathBuf {
        let token = self.service_account_token(namespace, sa).await;
        let text = serde_json::to_string_pretty(&self.token_kubeconfig(&token, namespace)).expect("JSON");
        std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path.to_path_buf()
    }
}

/// This build's Wukong CRD (`wukong crd`), as JSON.
pub fn our_wukong_crd() -> Value {
    serde_json::to_value(wukong_api::crd::crd()).expect("the CRD serializes")
}

/// Whether two CRDs have the same `spec.versions` (schemas, rules, columns), numbers compared by
/// value: k8s-openapi writes `maximum: 64.0`, the API server answers `64`.
pub fn same_crd_versions(a: &Value, b: &Value) -> bool {
    let versions = |crd: &Value| {
        let mut v = crd.pointer("/spec/versions").cloned().unwrap_or_default();
        normalize_numbers(&mut v);
        v
    };
    versions(a) == versions(b)
}

/// Rewrites every whole float (`64.0`) as an integer (`64`), in place.
pub fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *value = json!(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

async fn client_from(kubeconfig: Kubeconfig) -> Client {
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("invalid kubeconfig: {e}"));
    Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a client: {e}"))
}

fn dns_label_prefix(prefix: &str) -> String {
    let mut label: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    label = label.trim_matches('-').to_string();
    if label.is_empty() { "test".to_string() } else { label }
}

/// 8 base-36 characters from time, pid and a counter: unique enough across test binaries.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default();
    let mut x = nanos
        ^ u64::from(std::process::id()).rotate_left(32)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 finalizer: neighbouring inputs give unrelated outputs
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..8)
        .map(|_| {
            let d = DIGITS[(x % 36) as usize] as char;
            x /= 36;
            d
        })
        .collect()
}

/// A namespace of one test, with an admin client. Deleted in the background on drop (also when
/// the test panics), unless `WUKONG_TEST_KEEP_NAMESPACES` is set.
pub struct TestNamespace {
    pub name: String,
    /// Admin client (of the runtime of the test that created the namespace).
    pub client: Client,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    /// `Api<K>` of this namespace with the admin client.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("WUKONG_TEST_KEEP_NAMESPACES").is_some() {
            eprintln!("test support: keeping namespace {}", self.name);
            return;
        }
        // Not waited for: the namespace controller finishes the deletion on its own.
        let _ = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false", "--ignore-not-found"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

// ------------------------------------------------------------------------------------------
// private control planes

/// A control plane of one test, separate from [`cluster()`], in `<repo>/target/test-cluster-<name>`.
/// Stopped (`hack/local-cluster.sh down`) on drop, unless `WUKONG_TEST_KEEP_CLUSTERS` is set.
pub struct PrivateCluster {
    cluster: Cluster,
    /// Held while the cluster lives (outside its directory, which `down` removes), so a test
    /// binary that wants the same private cluster waits instead of breaking this one.
    _lock: FileLock,
}

/// Starts a fresh private control plane with `hack/local-cluster.sh up <args>` (e.g.
/// `["--without", "nad"]`). `name` must be unique among the tests running at once. A leftover
/// cluster of the same name (from a killed run) is stopped first.
pub async fn private_cluster(name: &str, args: &[&str]) -> PrivateCluster {
    private_cluster_with_env(name, args, &[]).await
}

/// [`private_cluster`] with extra environment for `hack/local-cluster.sh` (e.g.
/// `WUKONG_KUBEVIRT_VERSION`).
pub async fn private_cluster_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> PrivateCluster {
    let name = dns_label_prefix(name);
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let dir = repo_root().join(format!("target/test-cluster-{name}"));
    let lock_path = repo_root().join(format!("target/.test-cluster-{name}.lock"));
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (cluster, lock) = tokio::task::spawn_blocking(move || {
        let lock = FileLock::acquire(&lock_path).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        run_local_cluster(&dir, &["down"]).unwrap_or_else(|e| panic!("{e}"));
        let mut up = vec!["up"];
        up.extend(args.iter().map(String::as_str));
        run_local_cluster_with_env(&dir, &up, &env).unwrap_or_else(|e| panic!("{e}"));
        let cluster = Cluster::load(&dir).unwrap_or_else(|| panic!("`up` left no cluster.env in {}", dir.display()));
        eprintln!(
            "test support: started private control plane {} ({}) in {:.1} s",
            dir.display(),
            cluster.server,
            started.elapsed().as_secs_f64()
        );
        (cluster, lock)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    PrivateCluster { cluster, _lock: lock }
}

impl Deref for PrivateCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if std::env::var_os("WUKONG_TEST_KEEP_CLUSTERS").is_some() {
            eprintln!("test support: keeping private control plane {}", self.cluster.dir.display());
            return;
        }
        if let Err(e) = run_local_cluster(&self.cluster.dir, &["down"]) {
            eprintln!("test support: {e}");
        }
    }
}

// ------------------------------------------------------------------------------------------
// waiting

/// Polls `f` every 150 ms until it returns `Some`; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut, T>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

// ------------------------------------------------------------------------------------------
// manifests and the pure renderer

/// The YAML documents (non-empty) of a file, given as a path (absolute, or relative to the repo
/// root) or as YAML text.
pub fn documents(path_or_yaml: &str) -> Vec<Value> {
    let path = Path::new(path_or_yaml);
    let is_path = !path_or_yaml.contains('\n') && (path.is_absolute() || repo_root().join(path).is_file());
    let text = if is_path {
        let path = repo_root().join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    } else {
        path_or_yaml.to_string()
    };
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("invalid YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `object` with `metadata.namespace` set to `namespace`.
pub fn in_namespace(object: &Value, namespace: &str) -> Value {
    let mut object = object.clone();
    object["metadata"]["namespace"] = json!(namespace);
    object
}

/// What the pure renderer makes of the Wukong(s) of a file (path or YAML text), put into
/// `namespace`: for each Wukong its NADs, then its VM. Panics if a Wukong is invalid.
pub fn render(path_or_yaml: &str, namespace: &str) -> Vec<Value> {
    documents(path_or_yaml)
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Wukong"))
        .flat_map(|w| render_object(w, namespace))
        .collect()
}

/// The NADs then the VM the renderer makes of one Wukong object (a manifest, or the object read
/// back from the API server: then its uid yields controller owner references), in `namespace`.
pub fn render_object(wukong: &Value, namespace: &str) -> Vec<Value> {
    let wukong = in_namespace(wukong, namespace);
    let valid = wukong_render::validate_object(&wukong).unwrap_or_else(|e| panic!("{e}"));
    let rendered = wukong_render::render(&valid, &wukong_render::RenderOptions::default());
    let mut objects: Vec<Value> =
        rendered.nads.iter().map(|n| serde_json::to_value(n).expect("a NAD serializes")).collect();
    objects.push(serde_json::to_value(&rendered.vm).expect("a VM serializes"));
    objects.into_iter().map(|o| in_namespace(&o, namespace)).collect()
}

/// The offline validator's lines for an invalid manifest (`<field>: <detail>`, as displayed);
/// panics if the manifest is valid.
pub fn offline_errors(object: &Value) -> Vec<String> {
    match wukong_render::validate_object(object) {
        Ok(_) => panic!("the offline validator accepts {object}"),
        Err(invalid) => invalid.errors.iter().map(ToString::to_string).collect(),
    }
}

// ------------------------------------------------------------------------------------------
// untyped access to the API server

/// The API of `object`'s kind (found by discovery), in its namespace if it has one.
pub async fn dynamic_api(client: &Client, object: &Value) -> (Api<DynamicObject>, String) {
    let api_version = object.get("apiVersion").and_then(Value::as_str).expect("object has apiVersion");
    let kind = object.get("kind").and_then(Value::as_str).expect("object has kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps): (ApiResource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("{api_version} {kind} is not served: {e}"));
    let name = object.pointer("/metadata/name").and_then(Value::as_str).expect("object has a name").to_string();
    let api = match (caps.scope, object.pointer("/metadata/namespace").and_then(Value::as_str)) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    };
    (api, name)
}

/// Server-side apply of `object` (field manager [`FIELD_MANAGER`]), with field validation
/// Strict when `strict`, else the server's default. Returns the stored object.
///
/// Note: the API server refuses an apply that holds a field the schema does not declare
/// whatever the field validation (500, `failed to create typed patch object ...: field not
/// declared in schema`), and one with a list-map key twice (`duplicate entries for key`): it
/// cannot build the typed patch. Only [`create`] shows Strict versus pruning.
pub async fn apply(client: &Client, object: &Value, strict: bool) -> kube::Result<Value> {
    let (api, name) = dynamic_api(client, object).await;
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if strict {
        params = params.validation_strict();
    }
    let stored = api.patch(&name, &params, &Patch::Apply(object)).await?;
    Ok(serde_json::to_value(stored).expect("a DynamicObject serializes"))
}

/// Creates `object` (POST), with `fieldValidation=Strict` when `strict` (as kubectl sends),
/// else the server's default (Warn: unknown fields are pruned). Returns the stored object.
pub async fn create(client: &Client, object: &Value, strict: bool) -> kube::Result<Value> {
    let (api, _) = dynamic_api(client, object).await;
    let body = serde_json::to_vec(object).expect("JSON");
    let mut request =
        Request::new(api.resource_url()).create(&PostParams::default(), body).map_err(kube::Error::BuildRequest)?;
    if strict {
        let uri = request.uri().to_string();
        let sep = if uri.contains('?') { '&' } else { '?' };
        *request.uri_mut() = format!("{uri}{sep}fieldValidation=Strict").parse().expect("a valid URI");
    }
    let stored: DynamicObject = client.request(request).await?;
    Ok(serde_json::to_value(stored).expect("a DynamicObject serializes"))
}

/// Server-side apply with Strict field validation; panics with the server's message if refused.
pub async fn apply_strict(client: &Client, object: &Value) -> Value {
    let name = object.pointer("/metadata/name").cloned().unwrap_or_default();
    let kind = object.get("kind").cloned().unwrap_or_default();
    apply(client, object, true).await.unwrap_or_else(|e| panic!("the API server refused {kind} {name}: {e}"))
}

/// The object named like `object` (same kind, namespace, name), or `None` when it is absent.
pub async fn get(client: &Client, object: &Value) -> Option<Value> {
    let (api, name) = dynamic_api(client, object).await;
    api.get_opt(&name)
        .await
        .unwrap_or_else(|e| panic!("cannot get {name}: {e}"))
        .map(|o| serde_json::to_value(o).expect("a DynamicObject serializes"))
}

/// The API server's Status of a refused request; panics if the request succeeded or failed
/// otherwise (transport, decoding).
pub fn refusal<T: std::fmt::Debug>(result: kube::Result<T>) -> Status {
    match result {
        Ok(v) => panic!("the API server accepted what it should refuse: {v:?}"),
        Err(kube::Error::Api(status)) => *status,
        Err(e) => panic!("expected a refusal by the API server, got {e}"),
    }
}

/// Whether every field of `expected` is in `actual` with the same value (objects: a subset;
/// arrays: same length, item by item; scalars: equal). On mismatch, the JSON path of the first
/// difference.
pub fn contained(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().try_for_each(|(k, v)| match a.get(k) {
            Some(av) => contained(v, av, &format!("{path}.{k}")),
            None => Err(format!("{path}.{k} is missing (expected {v})")),
        }),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            e.iter().zip(a).enumerate().try_for_each(|(i, (ev, av))| contained(ev, av, &format!("{path}[{i}]")))
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path}: expected {expected}, found {actual}")),
    }
}

/// The refusal's causes as `<field>: <message>` lines, with the two known, deliberate
/// differences from the offline validator's lines undone:
/// - an error on the object root has field `<nil>` at the API server and no field offline (the
///   offline line is the detail alone);
/// - the "rules were not checked" note reads `<nil>: Invalid value: "null": some validation
///   rules ...` at the API server and `some validation rules ...` offline.
pub fn server_lines(status: &Status) -> Vec<String> {
    let causes = status.details.as_ref().map(|d| d.causes.as_slice()).unwrap_or_default();
    causes
        .iter()
        .map(|c| {
            let message = c
                .message
                .strip_prefix("Invalid value: \"null\": ")
                .filter(|m| m.starts_with("some validation rules were not checked"))
                .unwrap_or(&c.message);
            if c.field == "<nil>" { message.to_string() } else { format!("{}: {message}", c.field) }
        })
        .collect()
}
