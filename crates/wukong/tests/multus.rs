//! Multus end to end: the REAL Multus thin plugin (v4.2.3, built from Go modules by
//! `hack/local-cluster`) reads the NADs that the running `wukong controller` generated from the
//! real API server, for the virt-launcher Pod that KubeVirt's real virt-controller made of the
//! controller's VM (its networks annotation is the one our renderer predicts), and wires the pod
//! network namespace through the real bridge plugin (Debian's containernetworking-plugins).
//!
//! Topology (shared/reference/real-test-infra.md C.6, D): the API server listens on
//! 127.0.0.1:<port> in the root network namespace. Multus runs inside the test's "node" netns,
//! where 127.0.0.1 is that namespace's own loopback, so two socat processes bridge the API server
//! through a unix socket in the test's temporary directory: `UNIX-LISTEN` in the root netns (no
//! link, address or route is added there) and `TCP-LISTEN:<port>,bind=127.0.0.1` in the node
//! netns. The address and port stay those of the API server, whose certificate is for
//! 127.0.0.1, so the cluster's admin kubeconfig works unchanged inside the node netns.
//!
//! No kubelet and no scheduler run here: the Pod stays Pending, which Multus does not mind; the
//! test plays the container runtime and calls Multus with the CNI_ARGS a kubelet would pass.
//! Multus' traps are guarded against: a Pod it cannot find makes ADD succeed with an empty
//! result (so the test asserts the interfaces, the log and the network-status, never the exit
//! code alone), and K8S_POD_UID must be the Pod's uid.
//!
//! Needs root, network namespaces, `hack/install-deps.sh` (containernetworking-plugins, socat)
//! and the control plane's multus binary; a missing piece fails the test with one line.

mod netns;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, PostParams};
use netns::{CNI_PATH, NetnsPair, Ns};
use serde_json::{Value, json};
use support::controller::{args, start};
use support::{Cluster, TestNamespace, cluster, wait_for};
use wukong_api::Wukong;
use wukong_api::nad::NetworkAttachmentDefinition;
use wukong_render::RenderOptions;

/// The most any one step (a Multus call, a wait for the controller) may take.
const STEP: Duration = Duration::from_secs(30);
const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

// ---- prerequisites ----------------------------------------------------------------------------

/// Fails with one line when something the Multus test needs is missing (the netns harness
/// checks root, network namespaces and the CNI plugins itself).
fn require_prerequisites(c: &Cluster) {
    let mut missing = Vec::new();
    if !c.multus.is_file() {
        missing.push(format!("the multus binary {} (hack/local-cluster.sh builds it)", c.multus.display()));
    }
    if !Path::new(CNI_PATH).join("loopback").is_file() {
        missing.push(format!("{CNI_PATH}/loopback (containernetworking-plugins)"));
    }
    let socat =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join("socat").is_file())).unwrap_or(false);
    if !socat {
        missing.push("`socat` (Debian package socat)".to_string());
    }
    assert!(missing.is_empty(), "Multus test: missing {}; run hack/install-deps.sh as root", missing.join(", "));
}

// ---- processes in their own process group ---------------------------------------------------

/// A background process started in a new process group (socat forks one child per connection);
/// on drop the whole group, and only it, is killed by its id.
struct Group {
    label: String,
    child: Child,
}

impl Group {
    fn spawn(label: &str, cmd: &mut Command, log: &Path) -> Group {
        use std::os::unix::process::CommandExt;
        let file = std::fs::File::create(log).expect("a log file");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({cmd:?}): {e}"));
        Group { label: label.to_string(), child }
    }

    fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Fails the test, with its log, if the process has exited.
    fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}); its log: {}", self.label, std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = self.pgid();
        let killed = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
        if !killed.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Pids of the live processes whose process group is `pgid` (from /proc/<pid>/stat).
fn processes_in_group(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name in parentheses: state, ppid, pgrp, ...
            let fields: Vec<&str> =
                stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .collect()
}

/// `ip -br link` of the root network namespace (read only).
fn root_links() -> String {
    let out = Command::new("ip").args(["-br", "link"]).output().expect("ip runs");
    assert!(out.status.success(), "ip -br link: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- the node: a netns pair that reaches the API server, and Multus ---------------------------

/// What the Pod is to Multus: CNI_ARGS' K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID.
#[derive(Debug, Clone)]
struct PodRef {
    namespace: String,
    name: String,
    uid: String,
}

/// One Multus call's outcome.
#[derive(Debug)]
struct MultusRun {
    code: Option<i32>,
    stdout: String,
    /// Multus' log (logToStderr, logLevel debug).
    stderr: String,
    elapsed: Duration,
}

impl MultusRun {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("multus printed no JSON ({e}), exit {:?}: {}\nlog:\n{}", self.code, self.stdout, self.stderr)
        })
    }

    /// The stdout, the exit code and the log's error lines, to show when an assertion fails.
    fn shown(&self) -> String {
        let errors: Vec<&str> = self.stderr.lines().filter(|l| l.contains("[error]")).collect();
        format!("exit {:?}; stdout: {}; error log lines: {errors:#?}", self.code, self.stdout.trim())
    }
}

/// A node + pod netns pair whose node netns reaches the API server at the cluster's own
/// 127.0.0.1:<port>, and the Multus config a runtime on that node would use.
///
/// Fields drop in declaration order: both socat groups go before the namespaces.
struct Node {
    root_socat: Group,
    node_socat: Group,
    pair: NetnsPair,
    multus: PathBuf,
    conf: Value,
}

impl Node {
    fn new(c: &Cluster) -> Node {
        require_prerequisites(c);
        let pair = NetnsPair::new();
        let port = c.server.rsplit_once(':').map(|(_, p)| p.to_string()).expect("the server URL has a port");
        assert!(c.server.starts_with("https://127.0.0.1:"), "the API server must listen on 127.0.0.1: {}", c.server);
        let socket = pair.dir().join("apiserver.sock");
        let root_log = pair.dir().join("socat-root.log");
        let node_log = pair.dir().join("socat-node.log");

        // Root netns: a unix socket (a file, not scoped to a network namespace) forwarded to the
        // API server's existing 127.0.0.1 TCP port. Nothing else is created in the root netns.
        let mut root_socat = Group::spawn(
            "socat (root netns)",
            Command::new("socat")
                .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
                .arg(format!("TCP:127.0.0.1:{port}")),
            &root_log,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            root_socat.assert_running(&root_log);
            assert!(Instant::now() < deadline, "socat did not create {} within 10 s", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        // Node netns: the same address and port, forwarded to the socket.
        let mut node_socat = Group::spawn(
            "socat (node netns)",
            Command::new("ip")
                .args(["netns", "exec", pair.name(Ns::Node), "socat"])
                .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
                .arg(format!("UNIX-CONNECT:{}", socket.display())),
            &node_log,
        );

        // The API server answers from inside the node netns, with the admin kubeconfig.
        let kubectl = c.kubectl.to_str().expect("a UTF-8 path").to_string();
        let kubeconfig = c.kubeconfig.to_str().expect("a UTF-8 path").to_string();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            node_socat.assert_running(&node_log);
            let out = pair.exec(
                Ns::Node,
                &[&kubectl, "--kubeconfig", &kubeconfig, "get", "--raw", "/readyz", "--request-timeout=3s"],
            );
            if out.success() && out.stdout.trim() == "ok" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the API server is not reachable from the node netns through socat: {}",
                out.stderr.trim()
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        // The runtime's Multus config: no clusterNetwork, so the first delegate is the master
        // plugin (gets CNI_IFNAME); the cheapest one is loopback, which needs no real eth0.
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "multus-cni-network",
            "type": "multus",
            "kubeconfig": kubeconfig,
            "binDir": CNI_PATH,
            "cniDir": pair.dir().join("multus-cache"),
            "confDir": pair.dir().join("multus.d"),
            "logToStderr": true,
            "logLevel": "debug",
            "delegates": [{ "cniVersion": "1.0.0", "name": "lo", "type": "loopback" }]
        });
        Node { root_socat, node_socat, pair, multus: c.multus.clone(), conf }
    }

    /// Runs Multus inside the node netns as a container runtime would (CNI_IFNAME eth0, the
    /// sandbox `container_id`, the Pod's namespace, name and uid in CNI_ARGS).
    fn multus(&self, command: &str, container_id: &str, pod: &PodRef) -> MultusRun {
        let cni_args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={container_id};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.uid
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.pair.name(Ns::Node)])
            .arg(&self.multus)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", self.pair.pod_netns_path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", CNI_PATH)
            .env("CNI_ARGS", cni_args);
        let started = Instant::now();
        let out = netns::run(&mut cmd, Some(self.conf.to_string().as_bytes()), STEP);
        MultusRun { code: out.code, stdout: out.stdout, stderr: out.stderr, elapsed: started.elapsed() }
    }

    fn pod_links(&self) -> Vec<String> {
        let mut names = self.pair.link_names(Ns::Pod);
        names.sort();
        names
    }

    fn node_links(&self) -> Vec<String> {
        let mut names = self.pair.link_names(Ns::Node);
        names.sort();
        names
    }
}

// ---- the API side -----------------------------------------------------------------------------

fn manifest(namespace: &str) -> Value {
    json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "mx", "namespace": namespace },
        "spec": {
            "cpu": 1,
            "memory": "1Gi",
            "networks": [
                { "name": "default" },
                // Bridges without vlanId: this kernel has no bridge VLAN filtering.
                { "name": "a", "type": "bridge", "bridgeName": "br-mx-a",
                  "ipConfig": { "mode": "static", "address": "10.61.0.10/24", "gateway": "10.61.0.1",
                                "dnsServers": ["10.61.0.53"] } },
                { "name": "b", "type": "bridge", "bridgeName": "br-mx-b",
                  "ipConfig": { "mode": "static", "address": "2001:db8:61::10/64", "gateway": "2001:db8:61::1" } }
            ]
        }
    })
}

/// One element of the launcher-pod networks annotation (KubeVirt's form).
#[derive(Debug, Clone)]
struct Selection {
    nad: String,
    namespace: String,
    mac: String,
    interface: String,
}

fn selections(annotation: &str) -> Vec<Selection> {
    let list: Value =
        serde_json::from_str(annotation).unwrap_or_else(|e| panic!("annotation is not JSON ({e}): {annotation}"));
    list.as_array()
        .unwrap_or_else(|| panic!("annotation is not a list: {annotation}"))
        .iter()
        .map(|e| {
            let keys: Vec<&str> = e.as_object().expect("an object").keys().map(String::as_str).collect();
            // serde_json sorts an object's keys; the annotation text keeps KubeVirt's order.
            assert_eq!(keys, ["interface", "mac", "name", "namespace"], "KubeVirt's fields: {e}");
            let text = |k: &str| e[k].as_str().unwrap_or_else(|| panic!("{k} is not a string: {e}")).to_string();
            Selection {
                nad: text("name"),
                namespace: text("namespace"),
                mac: text("mac"),
                interface: text("interface"),
            }
        })
        .collect()
}

fn condition_status(w: &Wukong, type_: &str) -> Option<(String, String)> {
    let c = w.status.as_ref()?.conditions.iter().find(|c| c.type_ == type_)?;
    (c.observed_generation == w.metadata.generation).then(|| (c.status.clone(), c.reason.clone()))
}

/// A Pod that no kubelet will run (it stays Pending) carrying `annotation` as its networks.
async fn create_pod(ns: &TestNamespace, name: &str, annotation: &str) -> PodRef {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "annotations": { NETWORKS: annotation } },
        "spec": { "containers": [{ "name": "compute", "image": "example.invalid/none" }] }
    }))
    .expect("a Pod");
    let api: Api<Pod> = ns.api();
    let pod =
        api.create(&PostParams::default(), &pod).await.unwrap_or_else(|e| panic!("cannot create Pod {name}: {e}"));
    assert_eq!(pod.metadata.annotations.as_ref().and_then(|a| a.get(NETWORKS)).map(String::as_str), Some(annotation));
    PodRef {
        namespace: ns.name.clone(),
        name: name.to_string(),
        uid: pod.metadata.uid.expect("a stored Pod has a uid"),
    }
}

async fn pod_annotation(ns: &TestNamespace, name: &str, key: &str) -> Option<String> {
    let api: Api<Pod> = ns.api();
    api.get(name)
        .await
        .unwrap_or_else(|e| panic!("cannot read Pod {name}: {e}"))
        .metadata
        .annotations?
        .get(key)
        .cloned()
}

/// The events of the namespace about Pod `name`, as (reason, message).
async fn pod_events(ns: &TestNamespace, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = ns.api();
    api.list(&Default::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

/// Multus' `[verbose] Add: <ns>:<pod>:<uid>:<ns>/<nad>(<nad>):<ifname> <result>` log line of the
/// delegate for `sel`: the delegate's CNI result.
fn logged_delegate_result(run: &MultusRun, pod: &PodRef, sel: &Selection) -> Value {
    let prefix = format!(
        "[verbose] Add: {}:{}:{}:{}/{}({}):{} ",
        pod.namespace, pod.name, pod.uid, sel.namespace, sel.nad, sel.nad, sel.interface
    );
    let line =
        run.stderr.lines().find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest)).unwrap_or_else(|| {
            panic!("multus did not log `{prefix}`: it did not add NAD {}; {}", sel.nad, run.shown())
        });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("the logged result of {} is not JSON ({e}): {line}", sel.nad))
}

// ---- the tests --------------------------------------------------------------------------------

/// What the pod netns must hold for one network, and what network-status must say of it.
struct Expected {
    cidr: &'static str,
    ip: &'static str,
    gateway: &'static str,
    nameservers: Vec<&'static str>,
}

#[tokio::test]
async fn multus_reads_the_controllers_nads_and_wires_the_pod_as_kubevirt_would() {
    let t0 = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut lap = Instant::now();
    let mut mark = |what: &'static str, timings: &mut Vec<(&str, Duration)>| {
        timings.push((what, lap.elapsed()));
        lap = Instant::now();
    };

    let root_before = root_links();
    let c = cluster();
    require_prerequisites(c);

    // 1. The controller, a Wukong with two bridge networks, and what it generates.
    let ns = c.namespace("multus").await;
    let controller = start(ns.client.clone(), args(&ns.name, &[])).await;
    wait_for("the controller to lead", STEP, || async { controller.state.is_leader().then_some(()) }).await;
    support::apply_strict(&ns.client, &manifest(&ns.name)).await;
    let wukongs: Api<Wukong> = ns.api();
    let stored = wait_for("NetworksReady=True (NetworksAttached) on Wukong mx", STEP, || async {
        let w = wukongs.get_opt("mx").await.ok().flatten()?;
        (condition_status(&w, "NetworksReady")? == ("True".into(), "NetworksAttached".into())).then_some(w)
    })
    .await;
    let wukong_uid = stored.metadata.uid.clone().expect("a stored Wukong has a uid");
    let nad_api: Api<NetworkAttachmentDefinition> = ns.api();
    let rendered = wukong_render::render(
        &wukong_render::validate(&stored).expect("the stored Wukong is valid"),
        &RenderOptions::default(),
    );
    let mut live_nads = BTreeMap::new();
    for want in &rendered.nads {
        let name = want.metadata.name.clone().expect("a NAD has a name");
        let live =
            wait_for(&format!("NAD {name}"), STEP, || async { nad_api.get_opt(&name).await.ok().flatten() }).await;
        assert_eq!(live.spec.config, want.spec.config, "NAD {name}: the live config is the renderer's");
        let owner = live.metadata.owner_references.as_ref().and_then(|o| o.first()).expect("an owner reference");
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str(), owner.controller),
            ("Wukong", "mx", wukong_uid.as_str(), Some(true)),
            "NAD {name} is controlled by the Wukong"
        );
        live_nads.insert(name, live);
    }
    assert_eq!(live_nads.keys().collect::<Vec<_>>(), ["mx-a-nad", "mx-b-nad"]);
    let vms = Api::<wukong_api::kubevirt::VirtualMachine>::namespaced(ns.client.clone(), &ns.name);
    wait_for("VirtualMachine mx-vm", STEP, || async { vms.get_opt("mx-vm").await.ok().flatten() }).await;
    mark("controller: NADs + VM", &mut timings);

    // 2. The launcher pod's annotation, as our renderer computes it (and as KubeVirt would
    //    write it), from the stored Wukong; the manifest gives the same (MACs derive from
    //    namespace/name/network).
    let annotation = rendered.launcher_pod_networks.clone().expect("two attached networks yield an annotation");
    let offline = wukong_render::render(
        &wukong_render::validate_object(&manifest(&ns.name)).expect("the manifest is valid"),
        &RenderOptions::default(),
    );
    assert_eq!(offline.launcher_pod_networks.as_deref(), Some(annotation.as_str()), "manifest and stored object agree");
    let sels = selections(&annotation);
    assert!(
        annotation.starts_with(r#"[{"name":"#),
        "KubeVirt's field order (name, namespace, mac, interface): {annotation}"
    );
    let by_network: Vec<(&str, &str)> = vec![("a", "mx-a-nad"), ("b", "mx-b-nad")];
    assert_eq!(sels.len(), 2, "{annotation}");
    for (sel, (network, nad)) in sels.iter().zip(&by_network) {
        assert_eq!((sel.nad.as_str(), sel.namespace.as_str()), (*nad, ns.name.as_str()), "{annotation}");
        assert_eq!(sel.interface, wukong_render::names::pod_interface_name(network), "{annotation}");
        assert!(sel.interface.len() == 14 && sel.interface.starts_with("pod"), "{annotation}");
    }
    // The Wukong's status names the same NADs.
    let status_networks = stored.status.as_ref().map(|s| s.networks.clone()).unwrap_or_default();
    for (network, nad) in &by_network {
        let st = status_networks
            .iter()
            .find(|n| n.name == *network)
            .unwrap_or_else(|| panic!("status.networks has no {network}: {status_networks:?}"));
        assert_eq!(st.nad_name.as_deref(), Some(format!("{}/{nad}", ns.name).as_str()), "{st:?}");
    }
    // The launcher pod virt-controller made of the controller's VM, with the annotation it wrote.
    support::kubevirt::require(c, false);
    let launcher = support::kubevirt::launcher_pod(&ns.client, &ns.name, "mx-vm").await;
    assert_eq!(
        support::kubevirt::networks_annotation(&launcher).as_deref(),
        Some(annotation.as_str()),
        "virt-controller wrote the annotation wukong render predicts"
    );
    let pod = PodRef {
        namespace: ns.name.clone(),
        name: launcher.metadata.name.clone().expect("a pod has a name"),
        uid: launcher.metadata.uid.clone().expect("a stored pod has a uid"),
    };
    mark("launcher pod made by virt-controller", &mut timings);

    // 3. Multus ADD inside the node netns, as the runtime of the pod's sandbox.
    let node = Node::new(c);
    mark("netns pair + socat bridge", &mut timings);
    let pair = &node.pair;
    // No IPv6 duplicate address detection: network b's address is usable at once.
    for which in [Ns::Pod, Ns::Node] {
        pair.sysctl(which, "net.ipv6.conf.all.accept_dad", "0");
        pair.sysctl(which, "net.ipv6.conf.default.accept_dad", "0");
    }
    let sandbox = pair.container_id().to_string();
    let add = node.multus("ADD", &sandbox, &pod);
    mark("multus ADD", &mut timings);
    assert_eq!(add.code, Some(0), "multus ADD failed: {}", add.shown());

    // 4a. Its result is the master delegate's (loopback on eth0) -- not the empty result Multus
    //     prints when it cannot find the Pod.
    let result = add.json();
    assert_eq!(result["cniVersion"], "1.0.0", "{result}");
    assert_eq!(
        result["interfaces"],
        json!([{ "name": "lo", "mac": "00:00:00:00:00:00", "sandbox": pair.pod_netns_path() }]),
        "multus returns the master delegate's result: {}",
        add.shown()
    );
    assert!(!add.stderr.contains("pod not found"), "multus did not find the Pod: {}", add.shown());

    // 4b. Multus read our NADs from the API server and ran them: its log names each NAD and the
    //     pod<hash> interface it asked for, with the bridge plugin's result.
    let expected = [
        Expected { cidr: "10.61.0.10/24", ip: "10.61.0.10", gateway: "10.61.0.1", nameservers: vec!["10.61.0.53"] },
        Expected { cidr: "2001:db8:61::10/64", ip: "2001:db8:61::10", gateway: "2001:db8:61::1", nameservers: vec![] },
    ];
    for (sel, want) in sels.iter().zip(&expected) {
        let logged = logged_delegate_result(&add, &pod, sel);
        let iface = logged["interfaces"]
            .as_array()
            .and_then(|l| l.iter().position(|i| i["name"] == sel.interface.as_str()))
            .unwrap_or_else(|| panic!("the bridge result of {} has no {}: {logged}", sel.nad, sel.interface));
        assert_eq!(logged["interfaces"][iface]["mac"], sel.mac.as_str(), "{logged}");
        assert_eq!(logged["interfaces"][iface]["sandbox"], pair.pod_netns_path(), "{logged}");
        assert_eq!(logged["ips"][0]["address"], want.cidr, "{logged}");
        assert_eq!(logged["ips"][0]["interface"], iface, "{logged}");
        let dns = logged["dns"]["nameservers"].as_array().cloned().unwrap_or_default();
        assert_eq!(dns, want.nameservers.iter().map(|s| json!(s)).collect::<Vec<_>>(), "{logged}");
    }

    // 4c. The pod netns: one interface per secondary network, named, addressed and with the MAC
    //     the annotation asked for; default routes via the gateways.
    let mut want_links = vec!["lo".to_string(), sels[0].interface.clone(), sels[1].interface.clone()];
    want_links.sort();
    assert_eq!(node.pod_links(), want_links, "pod netns links");
    for (sel, want) in sels.iter().zip(&expected) {
        assert_eq!(pair.mac(Ns::Pod, &sel.interface), sel.mac, "MAC of {}", sel.interface);
        assert_eq!(pair.global_addresses(Ns::Pod, &sel.interface), [want.cidr], "addresses of {}", sel.interface);
    }
    let has_default = |routes: &[Value], gw: &str, dev: &str| {
        routes.iter().any(|r| r["dst"] == "default" && r["gateway"] == gw && r["dev"] == dev)
    };
    let v4 = pair.routes_v4(Ns::Pod);
    assert!(has_default(&v4, "10.61.0.1", &sels[0].interface), "no default route via 10.61.0.1: {v4:?}");
    let v6 = pair.routes_v6(Ns::Pod);
    assert!(has_default(&v6, "2001:db8:61::1", &sels[1].interface), "no ::/0 via 2001:db8:61::1: {v6:?}");
    // The node side: the bridges (named by the NADs) with one pod veth each.
    let node_links = node.node_links();
    for bridge in ["br-mx-a", "br-mx-b"] {
        assert!(node_links.iter().any(|l| l == bridge), "no {bridge} in the node netns: {node_links:?}");
    }
    assert_eq!(node_links.iter().filter(|l| l.starts_with("veth")).count(), 2, "{node_links:?}");

    // 4d. network-status, written by Multus through pods/status.
    let status = pod_annotation(&ns, &pod.name, NETWORK_STATUS)
        .await
        .unwrap_or_else(|| panic!("multus wrote no {NETWORK_STATUS} on the Pod; {}", add.shown()));
    let status_text = status.clone();
    let status: Value =
        serde_json::from_str(&status).unwrap_or_else(|e| panic!("network-status is not JSON ({e}): {status}"));
    let entries = status.as_array().unwrap_or_else(|| panic!("network-status is not a list: {status}"));
    assert_eq!(entries.len(), 3, "the master network and our two: {status}");
    assert_eq!(
        (&entries[0]["name"], &entries[0]["interface"], &entries[0]["default"]),
        (&json!("lo"), &json!("lo"), &json!(true))
    );
    for ((entry, sel), want) in entries[1..].iter().zip(&sels).zip(&expected) {
        assert_eq!(entry["name"], format!("{}/{}", ns.name, sel.nad), "{entry}");
        assert_eq!(entry["interface"], sel.interface.as_str(), "{entry}");
        assert_eq!(entry["ips"], json!([want.ip]), "{entry}");
        assert_eq!(entry["mac"], sel.mac.as_str(), "{entry}");
        assert_eq!(entry["gateway"], json!([want.gateway]), "{entry}");
        assert!(entry.get("default").is_none_or(|d| d == false), "a secondary network is not the default: {entry}");
        let dns = entry["dns"]["nameservers"].as_array().cloned().unwrap_or_default();
        assert_eq!(dns, want.nameservers.iter().map(|s| json!(s)).collect::<Vec<_>>(), "dns of {entry}");
    }
    // Multus also records `AddedInterface` Events on the Pod, but posts them asynchronously and
    // exits without flushing its event broadcaster, so some may never arrive: shown, not asserted.
    let events = pod_events(&ns, &pod.name).await;
    eprintln!("multus test: events on the Pod after ADD: {events:?}");
    mark("assertions after ADD", &mut timings);

    // 5. DEL: the secondary interfaces (and their host veths) are gone; twice, as runtimes may.
    let del = node.multus("DEL", &sandbox, &pod);
    mark("multus DEL", &mut timings);
    assert_eq!(del.code, Some(0), "multus DEL failed: {}", del.shown());
    assert_eq!(node.pod_links(), ["lo"], "after DEL the pod netns holds only lo");
    assert_eq!(node.node_links(), ["br-mx-a", "br-mx-b", "lo"], "after DEL only the (empty) bridges stay");
    let again = node.multus("DEL", &sandbox, &pod);
    assert_eq!(again.code, Some(0), "a second DEL must succeed too: {}", again.shown());
    assert_eq!(node.pod_links(), ["lo"]);
    // Multus v4.2.3's thin plugin writes network-status on ADD only; DEL leaves it as it was
    // (a deleted sandbox's Pod is normally going away). Shown, not asserted: that is Multus' call.
    let status_after = pod_annotation(&ns, &pod.name, NETWORK_STATUS).await;
    eprintln!(
        "multus test: network-status after DEL is unchanged: {}",
        status_after.as_deref() == Some(status_text.as_str())
    );

    // 7. Cleanup: socat groups killed, namespaces gone, the root netns untouched.
    let groups = [node.root_socat.pgid(), node.node_socat.pgid()];
    let netns_names = [pair.name(Ns::Node).to_string(), pair.name(Ns::Pod).to_string()];
    drop(node);
    for pgid in groups {
        assert_eq!(processes_in_group(pgid), Vec::<u32>::new(), "socat processes of group {pgid} left");
    }
    let listed =
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().expect("ip").stdout).into_owned();
    for name in netns_names {
        assert!(
            !listed.lines().any(|l| l.split_whitespace().next() == Some(name.as_str())),
            "netns {name} left: {listed}"
        );
    }
    assert_eq!(root_links(), root_before, "the root network namespace's links changed");
    controller.stop().await;
    mark("cleanup", &mut timings);
    eprintln!(
        "multus test: timings {timings:?}; multus ADD {:?}, DEL {:?}; total {:?}",
        add.elapsed,
        del.elapsed,
        t0.elapsed()
    );
}

// virt-controller makes no launcher pod for a VM whose NAD is missing (it reports
// `failed to locate network attachment definition`, see kubevirt.rs), so this pod is written by
// the test, in the launcher pod's form, to see what Multus itself does with such a pod.
#[tokio::test]
async fn multus_refuses_a_pod_naming_a_missing_nad_and_a_wrong_pod_uid() {
    let root_before = root_links();
    let c = cluster();
    require_prerequisites(c);
    let ns = c.namespace("multus-neg").await;
    let node = Node::new(c);
    let pair = &node.pair;

    // A NAD that does not exist, in the annotation's KubeVirt form.
    let annotation = json!([{
        "name": "missing-nad", "namespace": ns.name, "mac": "02:00:00:61:00:01",
        "interface": wukong_render::names::pod_interface_name("a")
    }])
    .to_string();
    let pod = create_pod(&ns, "virt-launcher-missing", &annotation).await;
    let sandbox = format!("{}-missing", pair.container_id());
    let add = node.multus("ADD", &sandbox, &pod);
    assert_eq!(add.code, Some(1), "multus ADD must fail: {}", add.shown());
    let error = add.json();
    let msg = error["msg"].as_str().unwrap_or_default();
    let want = format!("cannot find a network-attachment-definition (missing-nad) in namespace ({})", ns.name);
    assert!(msg.contains(&want), "expected Multus' `{want}`, got: {error}");
    eprintln!("multus test: ADD with a missing NAD: {error}");
    assert_eq!(node.pod_links(), ["lo"], "nothing wired by a failed ADD");
    let del = node.multus("DEL", &sandbox, &pod);
    assert_eq!(del.code, Some(0), "DEL after a failed ADD: {}", del.shown());
    assert_eq!(node.pod_links(), ["lo"], "nothing left in the pod netns after DEL");
    assert_eq!(node.node_links(), ["lo"], "nothing created in the node netns");
    assert_eq!(pod_annotation(&ns, &pod.name, NETWORK_STATUS).await, None, "no network-status for a failed ADD");

    // The Pod's uid is checked: a sandbox of an older Pod of the same name is refused.
    let wrong = PodRef { uid: "00000000-0000-0000-0000-000000000000".into(), ..pod.clone() };
    let add = node.multus("ADD", &format!("{}-uid", pair.container_id()), &wrong);
    assert_eq!(add.code, Some(1), "multus ADD with a wrong K8S_POD_UID must fail: {}", add.shown());
    let error = add.json();
    let want = format!("expected pod UID \"{}\" but got \"{}\" from Kube API", wrong.uid, pod.uid);
    assert!(error["msg"].as_str().unwrap_or_default().contains(&want), "expected `{want}`, got: {error}");
    eprintln!("multus test: ADD with a wrong pod uid: {error}");
    assert_eq!(node.pod_links(), ["lo"]);

    let groups = [node.root_socat.pgid(), node.node_socat.pgid()];
    drop(node);
    for pgid in groups {
        assert_eq!(processes_in_group(pgid), Vec::<u32>::new(), "socat processes of group {pgid} left");
    }
    assert_eq!(root_links(), root_before, "the root network namespace's links changed");
}
