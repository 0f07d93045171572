//! `make bench-scale N=1000`: how fast the controller converges N Wukongs against what a bare
//! client needs for the same writes, measured in one run on a private local control plane.
//!
//! Every Wukong has three secondary networks (three NADs), a cloud-init Secret and a VM, and
//! `runStrategy: Halted` (no instance: KubeVirt's controllers, when they run, only report the VM
//! stopped). Phases, on one private control plane:
//! 1. controller: 16 client workers create N Wukongs; `wukong controller` (this build, as a
//!    process under deploy/'s ServiceAccount) converges them (every status written for the
//!    current generation, with the VM named);
//! 2. 100 more are created at once, and the time from each creation to its VM's creation is
//!    read from the audit log;
//! 3. restart: the controller is restarted on the converged Wukongs, which must write nothing;
//! 4. the controller stopped and its namespaces deleted, a bare client (the same 16 workers)
//!    creates the 5 children of each Wukong (children only), then each Wukong, its 5 children
//!    and as many status patches and events as the controller wrote per Wukong (the baseline),
//!    then the same burst of 100.
//!
//! Requests are counted from the API server's side (its audit log records every request of the
//! controller's ServiceAccount); peak RSS and CPU seconds from /proc.
//!
//! Environment: N (default 1000), BENCH_NAMESPACES (default 1: how many namespaces the Wukongs
//! are spread over), BENCH_WORKERS (16), BENCH_CONCURRENCY (the controller's --concurrency;
//! default: its own default), BENCH_CLUSTER_ARGS (extra `hack/local-cluster.sh up` arguments,
//! e.g. `--without kubevirt --without cdi`), BENCH_LOG (the controller's RUST_LOG, into
//! logs/wukong-bench.log), BENCH_KEEP (leave the control plane up, its logs and audit log in it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use kube::{Client, Config};
use serde_json::{Value, json};
use wukong_api::Wukong;

const WORKERS: usize = 16;
const BARE: &str = "bench-bare";
const CONTROLLER_USER: &str = "system:serviceaccount:wukong-system:wukong";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository")
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A Wukong of the benchmark: three bridge networks, one with a static address (so a cloud-init
/// Secret), a containerDisk, halted.
fn wukong(name: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "cpu": 1, "memory": "1Gi", "osImage": "docker://quay.io/containerdisks/ubuntu:22.04",
            "startStrategy": { "runStrategy": "Halted" },
            "networks": [
                { "name": "mgmt", "type": "bridge", "vlanId": 100,
                  "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
                { "name": "data", "type": "bridge", "ipConfig": { "mode": "dhcp" } },
                { "name": "backup", "type": "bridge", "vlanId": 300 }
            ]
        }
    })
}

struct Cluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    ca: PathBuf,
    env: BTreeMap<String, String>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = repo().join("target/bench-cluster");
        let script = repo().join("hack/local-cluster.sh");
        let run = |args: &[&str]| {
            let out = Command::new(&script)
                .args(args)
                .env("WUKONG_CLUSTER_DIR", &dir)
                .stdin(Stdio::null())
                .output()
                .expect("hack/local-cluster.sh runs");
            assert!(out.status.success(), "local-cluster.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["down"]);
        let extra = std::env::var("BENCH_CLUSTER_ARGS").unwrap_or_default();
        let mut args = vec!["up"];
        args.extend(extra.split_whitespace());
        eprintln!("bench: starting a private control plane in {} ({})", dir.display(), args.join(" "));
        run(&args);
        let env: BTreeMap<String, String> = std::fs::read_to_string(dir.join("cluster.env"))
            .expect("cluster.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Cluster {
            kubeconfig: dir.join("kubeconfig"),
            server: env["WUKONG_CLUSTER_SERVER"].clone(),
            ca: PathBuf::from(&env["WUKONG_CLUSTER_CA_CERT"]),
            dir,
            env,
        }
    }

    fn kubectl(&self) -> Command {
        let mut c = Command::new(&self.env["WUKONG_CLUSTER_KUBECTL"]);
        c.arg("--kubeconfig").arg(&self.kubeconfig).stdin(Stdio::null());
        c
    }

    async fn admin(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
        // The benchmark's own client must not be what limits it.
        config.read_timeout = Some(Duration::from_secs(60));
        Client::try_from(config).unwrap()
    }

    fn audit_len(&self) -> u64 {
        std::fs::metadata(self.dir.join("logs/audit.log")).map(|m| m.len()).unwrap_or(0)
    }

    /// The audit events (ResponseComplete) since byte `offset`.
    fn audit_since(&self, offset: u64) -> Vec<Value> {
        self.audit_between(offset, u64::MAX)
    }

    /// The audit events (ResponseComplete) between bytes `from` and `to` (whole lines).
    fn audit_between(&self, from: u64, to: u64) -> Vec<Value> {
        use std::io::{Read, Seek};
        let mut file = match std::fs::File::open(self.dir.join("logs/audit.log")) {
            Ok(f) => f,
            Err(_) => return Vec::new(),
        };
        let mut log = Vec::new();
        if file.seek(std::io::SeekFrom::Start(from)).is_err() {
            return Vec::new();
        }
        let _ = file.take(to.saturating_sub(from)).read_to_end(&mut log);
        let text = String::from_utf8_lossy(&log).into_owned();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .collect()
    }

    fn stop(&self) {
        let _ = Command::new(repo().join("hack/local-cluster.sh"))
            .arg("down")
            .env("WUKONG_CLUSTER_DIR", &self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

fn dynamic(client: &Client, namespace: &str, object: &Value) -> (Api<DynamicObject>, String) {
    let api_version = object["apiVersion"].as_str().unwrap();
    let kind = object["kind"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "NetworkAttachmentDefinition" => "network-attachment-definitions".to_string(),
        k => format!("{}s", k.to_lowercase()),
    };
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural,
    };
    (Api::namespaced_with(client.clone(), namespace, &resource), object["metadata"]["name"].as_str().unwrap().into())
}

/// Runs `job(i)` for i in 0..n on `workers` concurrent workers; returns the wall time.
async fn on_workers<F, Fut>(n: usize, workers: usize, job: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    futures::stream::iter(0..n).for_each_concurrent(workers, job).await;
    started.elapsed()
}

fn namespace_of(prefix: &str, i: usize, spread: usize) -> String {
    format!("{prefix}-{}", i % spread)
}

async fn namespaces(client: &Client, prefix: &str, spread: usize) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    for i in 0..spread {
        let ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": format!("{prefix}-{i}") } });
        api.patch(&format!("{prefix}-{i}"), &PatchParams::apply("bench"), &Patch::Apply(ns)).await.unwrap();
    }
}

/// The children wukong renders for a stored Wukong (with its uid: owner references).
fn children(stored: &Value) -> Vec<Value> {
    let valid = wukong_render::validate_object(stored).expect("a valid Wukong");
    let r = wukong_render::render(&valid, &wukong_render::RenderOptions::default());
    let mut out: Vec<Value> = r.nads.iter().map(|n| serde_json::to_value(n).unwrap()).collect();
    out.extend(r.cloud_init_secret.iter().map(|s| serde_json::to_value(s).unwrap()));
    out.push(serde_json::to_value(&r.vm).unwrap());
    out
}

/// What the bare client writes for a Wukong besides its children, as the controller did.
#[derive(Clone, Copy)]
struct Extra {
    status_patches: usize,
    events: usize,
}

/// The bare client's work for Wukong `i`: with `extra`, the Wukong, its children, its status
/// patches and events (what the controller writes); else only the children.
async fn bare(client: &Client, i: usize, prefix: &str, spread: usize, extra: Option<Extra>) {
    let namespace = namespace_of(prefix, i, spread);
    let manifest = wukong(&format!("w{i}"), &namespace);
    let stored = if extra.is_some() {
        let api: Api<DynamicObject> = dynamic(client, &namespace, &manifest).0;
        let body: DynamicObject = serde_json::from_value(manifest.clone()).unwrap();
        serde_json::to_value(api.create(&PostParams::default(), &body).await.expect("a Wukong")).unwrap()
    } else {
        manifest.clone()
    };
    for child in children(&stored) {
        let (api, name) = dynamic(client, &namespace, &child);
        api.patch(&name, &PatchParams::apply("bench-bare").force(), &Patch::Apply(&child)).await.expect("a child");
    }
    let Some(extra) = extra else { return };
    let wukongs: Api<Wukong> = Api::namespaced(client.clone(), &namespace);
    for phase in (0..extra.status_patches).map(|k| if k == 0 { "Creating" } else { "Stopped" }) {
        let status = json!({ "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
            "status": { "phase": phase, "observedGeneration": 1, "vmName": format!("w{i}-vm") } });
        wukongs
            .patch_status(&format!("w{i}"), &PatchParams::apply("bench-bare").force(), &Patch::Apply(&status))
            .await
            .expect("a status");
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &namespace);
    for e in 0..extra.events {
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": { "name": format!("w{i}.{e}"), "namespace": namespace },
            "eventTime": k8s_openapi::jiff::Timestamp::now().to_string(),
            "reportingController": "bench", "reportingInstance": "bench", "action": "Reconcile",
            "reason": "Bench", "type": "Normal", "note": "bench",
            "regarding": { "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong", "name": format!("w{i}"),
                           "namespace": namespace, "uid": stored["metadata"]["uid"] }
        });
        events.create(&PostParams::default(), &serde_json::from_value(event).unwrap()).await.expect("an event");
    }
}

/// The controller as a process, under deploy/'s ServiceAccount.
struct ControllerProcess {
    child: Child,
    metrics: String,
}

impl ControllerProcess {
    fn start(c: &Cluster, kubeconfig: &Path, concurrency: Option<usize>) -> ControllerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wukong"));
        cmd.args(["controller", "--metrics-addr", &format!("127.0.0.1:{port}"), "--lease-namespace", "wukong-system"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(c.dir.join("logs/wukong-bench.log")).unwrap());
        if let Some(n) = concurrency {
            cmd.args(["--concurrency", &n.to_string()]);
        }
        ControllerProcess {
            child: cmd.spawn().expect("wukong controller starts"),
            metrics: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.metrics.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.get("/readyz").await != Some((200, "ok".into())) {
            assert!(Instant::now() < deadline, "the controller is not ready after 120 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metric(&self, sample: &str) -> f64 {
        let body = self.get("/metrics").await.map(|(_, b)| b).unwrap_or_default();
        body.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Peak RSS (MiB) and CPU seconds of the process so far.
    fn usage(&self) -> (f64, f64) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
            + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        (hwm_kib / 1024.0, ticks / 100.0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// Waits until every Wukong of `prefix` has a status for its generation and a VM named; returns
/// when that happened. It watches (one list, then events), so that waiting adds next to nothing
/// to the API server's load.
async fn converged(client: &Client, prefix: &str, n: usize) -> Instant {
    use kube::runtime::{WatchStreamExt, watcher};
    let api: Api<Wukong> = Api::all(client.clone());
    let mut done = std::collections::HashSet::new();
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).touched_objects());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    while done.len() < n {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let Ok(Some(Ok(w))) = next else {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} Wukongs converged after an hour",
                done.len()
            );
            continue;
        };
        let namespace = w.metadata.namespace.clone().unwrap_or_default();
        if !namespace.starts_with(&format!("{prefix}-")) {
            continue;
        }
        let key = (namespace, w.metadata.name.clone().unwrap_or_default());
        let status = w.status.as_ref();
        if status.is_some_and(|st| st.observed_generation == w.metadata.generation && st.vm_name.is_some()) {
            done.insert(key);
        } else {
            done.remove(&key);
        }
    }
    Instant::now()
}

/// Waits until the audit log has recorded no request of the controller for a second (at most
/// a minute), reading only what was added since the last look.
async fn settled(c: &Cluster, offset: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut position = offset;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let length = c.audit_len();
        let new = c.audit_between(position, length);
        position = length;
        let controller = new.iter().filter(|e| e["user"]["username"] == CONTROLLER_USER).count();
        if controller == 0 || Instant::now() > deadline {
            return;
        }
    }
}

/// Deletes the namespaces of `prefix` and waits until they are gone (with everything in them).
async fn delete_namespaces(client: &Client, prefix: &str, spread: usize) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    for i in 0..spread {
        let _ = api.delete(&format!("{prefix}-{i}"), &Default::default()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(3600);
    for i in 0..spread {
        while api.get_opt(&format!("{prefix}-{i}")).await.ok().flatten().is_some() {
            assert!(Instant::now() < deadline, "namespace {prefix}-{i} not gone after an hour");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    eprintln!("bench: namespaces {prefix}-* deleted");
}

/// The controller's requests in `events`, by (verb, resource).
fn requests(events: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in events.iter().filter(|e| e["user"]["username"] == CONTROLLER_USER) {
        let resource = e["objectRef"]["resource"].as_str().unwrap_or_default();
        if resource == "leases" {
            continue;
        }
        let sub = e["objectRef"]["subresource"].as_str().map(|s| format!("/{s}")).unwrap_or_default();
        let verb = e["verb"].as_str().unwrap_or_default().to_string();
        *out.entry((verb, format!("{resource}{sub}"))).or_default() += 1;
    }
    out
}

fn is_write(verb: &str) -> bool {
    matches!(verb, "create" | "update" | "patch" | "delete")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// For Wukongs `w<i>` (i in `range`) in the namespaces of `prefix`: milliseconds from the
/// Wukong's creation to its VM's first write (by the controller, or by the bare client), sorted.
fn creation_to_vm(audit: &[Value], prefix: &str, range: std::ops::Range<usize>, by_controller: bool) -> Vec<f64> {
    let first = |resource: &str, name: &str, controller: bool| {
        audit
            .iter()
            .filter(|e| {
                e["objectRef"]["resource"] == resource
                    && e["objectRef"]["name"] == name
                    && e["objectRef"]["namespace"].as_str().is_some_and(|ns| ns.starts_with(prefix))
                    && (e["verb"] == "create" || e["verb"] == "patch")
                    && e["responseStatus"]["code"].as_i64().is_some_and(|c| c < 300)
                    && (e["user"]["username"] == CONTROLLER_USER) == controller
            })
            .map(|e| micros(&e["stageTimestamp"]))
            .min()
    };
    let mut out: Vec<f64> = range
        .filter_map(|i| {
            let created = first("wukongs", &format!("w{i}"), false)?;
            let vm = first("virtualmachines", &format!("w{i}-vm"), by_controller)?;
            Some((vm - created) as f64 / 1000.0)
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

fn micros(ts: &Value) -> i64 {
    ts.as_str().and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok()).map(|t| t.as_microsecond()).unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let n = env_usize("N", 1000);
    let spread = env_usize("BENCH_NAMESPACES", 1).max(1);
    let workers = env_usize("BENCH_WORKERS", WORKERS);
    let concurrency = std::env::var("BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok());
    let c = Cluster::start();
    let client = c.admin();
    let client = client.await;
    let kubevirt = c.env.get("WUKONG_CLUSTER_KUBEVIRT_VERSION").filter(|v| !v.is_empty()).cloned();
    let cdi = c.env.get("WUKONG_CLUSTER_CDI_VERSION").filter(|v| !v.is_empty()).cloned();

    // deploy/'s ServiceAccount and RBAC, and a kubeconfig with its token.
    for file in ["deploy/namespace.yaml", "deploy/rbac.yaml"] {
        let out = c.kubectl().args(["apply", "--server-side", "-f"]).arg(repo().join(file)).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let token =
        c.kubectl().args(["create", "token", "wukong", "-n", "wukong-system", "--duration=24h"]).output().unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let sa_kubeconfig = c.dir.join("bench-controller.kubeconfig");
    std::fs::write(
        &sa_kubeconfig,
        serde_json::to_string(&json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{ "name": "c", "cluster": { "server": c.server, "certificate-authority": c.ca } }],
            "users": [{ "name": "wukong", "user": { "token": token } }],
            "contexts": [{ "name": "c", "context": { "cluster": "c", "user": "wukong" } }],
            "current-context": "c"
        }))
        .unwrap(),
    )
    .unwrap();

    namespaces(&client, "bench-ctl", spread).await;

    // 1: the controller, on a fresh control plane.
    let controller = ControllerProcess::start(&c, &sa_kubeconfig, concurrency);
    controller.wait_ready().await;
    let offset = c.audit_len();
    let reconciles_before = controller.metric("wukong_reconciles_total").await;
    let started = Instant::now();
    let create = |i: usize| {
        let client = client.clone();
        async move {
            let namespace = namespace_of("bench-ctl", i, spread);
            let (api, _) = dynamic(&client, &namespace, &wukong(&format!("w{i}"), &namespace));
            let body: DynamicObject = serde_json::from_value(wukong(&format!("w{i}"), &namespace)).unwrap();
            api.create(&PostParams::default(), &body).await.expect("a Wukong");
        }
    };
    let created_in = on_workers(n, workers, create).await;
    let done = converged(&client, "bench-ctl", n).await;
    let convergence = done - started;
    let (rss_converged, cpu_converged) = controller.usage();
    // KubeVirt reports the new VMs a moment later: the status follows (one more transition).
    settled(&c, offset).await;
    let reconciles = controller.metric("wukong_reconciles_total").await - reconciles_before;
    let by_request = requests(&c.audit_since(offset));
    let count = |pick: &dyn Fn(&str, &str) -> bool| -> usize {
        by_request.iter().filter(|((verb, resource), _)| pick(verb, resource)).map(|(_, c)| c).sum()
    };
    let events = count(&|_, r| r == "events");
    let status_patches = count(&|v, r| v == "patch" && r == "wukongs/status");
    let writes = count(&|v, r| is_write(v) && r != "events");
    let reads = count(&|v, _| v == "get" || v == "list");
    eprintln!(
        "bench: controller converged {n} in {convergence:?} (creates took {created_in:?}); requests: {by_request:?}"
    );

    // 2: 100 more at once into the converged cluster: creation to VM, from the audit log.
    let more = 100;
    let offset_more = c.audit_len();
    on_workers(more, more, |i| create(n + i)).await;
    converged(&client, "bench-ctl", n + more).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let latencies = creation_to_vm(&c.audit_since(offset_more), "bench-ctl", n..n + more, true);

    // 3: a restart on converged Wukongs writes nothing.
    controller.stop();
    let offset_restart = c.audit_len();
    let restarted = ControllerProcess::start(&c, &sa_kubeconfig, concurrency);
    restarted.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while restarted.metric("wukong_reconciles_total").await < (n + more) as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restart_reconciles = restarted.metric("wukong_reconciles_total").await;
    let after_restart = requests(&c.audit_since(offset_restart));
    let restart_writes: usize = after_restart.iter().filter(|((v, _), _)| is_write(v)).map(|(_, c)| c).sum();
    let restart_reads: BTreeMap<_, _> = after_restart.iter().filter(|((v, _), _)| v == "get").collect();
    let (rss_peak, cpu_total) = restarted.usage();
    restarted.stop();

    // 4: the bare client on the same control plane once the controller's objects are gone (the
    // controller is stopped: it never sees the bare client's Wukongs).
    delete_namespaces(&client, "bench-ctl", spread).await;
    for prefix in ["bench-children", BARE] {
        namespaces(&client, prefix, spread).await;
    }
    let children_only = on_workers(n, workers, |i| bare(&client, i, "bench-children", spread, None)).await;
    eprintln!("bench: children only: {children_only:?}");
    // The writes the controller made per Wukong: its status patches and events, rounded.
    let same = Extra { status_patches: status_patches.div_ceil(n), events: events.div_ceil(n) };
    let baseline = on_workers(n, workers, |i| bare(&client, i, BARE, spread, Some(same))).await;
    eprintln!("bench: baseline (Wukong, children, status, events): {baseline:?}");
    // The same burst the controller got, done by the bare client: 100 at once, each in the
    // controller's order (Wukong, NADs, Secret, VM): the floor for creation → VM.
    let offset_bare = c.audit_len();
    on_workers(more, more, |i| bare(&client, n + i, BARE, spread, Some(same))).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bare_latencies = creation_to_vm(&c.audit_since(offset_bare), BARE, n..n + more, false);

    let per = |x: usize| x as f64 / n as f64;
    let with = match (&kubevirt, &cdi) {
        (Some(kv), Some(cdi)) => format!("with real KubeVirt {kv} (virt-api, virt-controller) and CDI {cdi}"),
        (Some(kv), None) => format!("with real KubeVirt {kv}, without CDI"),
        _ => "without KubeVirt and CDI".into(),
    };
    println!();
    println!("wukong scale benchmark: N = {n} Wukongs in {spread} namespace(s), {workers} client workers, {with}");
    println!("controller --concurrency {}", concurrency.map_or("(default)".to_string(), |c| c.to_string()));
    println!();
    println!("| | seconds | ratio to baseline |");
    println!("|---|---|---|");
    println!(
        "| bare client, children only (5 per Wukong) | {:.2} | {:.2} |",
        children_only.as_secs_f64(),
        children_only.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "| bare client, baseline (Wukong + 5 children + {} status patches + {} events) | {:.2} | 1.00 |",
        same.status_patches,
        same.events,
        baseline.as_secs_f64()
    );
    println!(
        "| controller: creation of the first to convergence of the last | {:.2} | {:.2} |",
        convergence.as_secs_f64(),
        convergence.as_secs_f64() / baseline.as_secs_f64()
    );
    println!();
    println!("| per Wukong (controller, from the audit log) | value |");
    println!("|---|---|");
    println!("| writes (children, status; events apart) | {:.2} |", per(writes));
    println!("| events | {:.2} |", per(events));
    println!("| reads (GET, LIST) | {:.2} |", per(reads));
    println!("| status patches | {:.2} |", per(status_patches));
    println!("| reconciles | {:.2} |", reconciles / n as f64);
    println!(
        "| p50 / p99 creation → VM, {more} more created at once (bare client: {:.0} ms / {:.0} ms) | {:.0} ms / {:.0} ms |",
        percentile(&bare_latencies, 50.0),
        percentile(&bare_latencies, 99.0),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0)
    );
    println!(
        "| peak RSS at convergence / after a restart on {} | {rss_converged:.1} MiB / {rss_peak:.1} MiB |",
        n + more
    );
    println!("| CPU seconds to converge {n} / of the restarted controller | {cpu_converged:.2} / {cpu_total:.2} |");
    println!(
        "| writes of a restart on {} converged Wukongs ({restart_reconciles} reconciles) | {restart_writes} |",
        n + more
    );
    println!("| reads of that restart (GET) | {restart_reads:?} |");
    println!();
    println!("requests of the controller while converging: {by_request:?}");
    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("bench: the control plane stays up (BENCH_KEEP): {}", c.dir.display());
    } else {
        c.stop();
    }
}
