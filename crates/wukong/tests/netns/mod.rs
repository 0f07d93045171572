//! A small harness that runs real CNI plugins the way a container runtime does, inside a pair of
//! network namespaces made for one test: a "node" netns (where the plugin runs and creates its
//! host-side links, e.g. the bridge) and a "pod" netns (CNI_NETNS, where the container side goes).
//!
//! Rules it keeps (see shared/reference/real-test-infra.md part A):
//! * the root network namespace is never touched: every `ip` command that changes anything runs
//!   under `ip netns exec <node|pod>`, and traffic only flows between the two namespaces;
//! * one fresh pair per test, unique across threads and processes, deleted on drop (also when the
//!   test panics), together with every daemon the test started (killed by pid, never by name);
//! * missing prerequisites fail the test with one line that says what is missing; nothing is
//!   skipped and nothing passes vacuously.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where Debian's `containernetworking-plugins` installs the plugins (not /opt/cni/bin).
pub const CNI_PATH: &str = "/usr/lib/cni";

/// How long an ordinary plugin call may take before the test fails.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(15);

/// What the CNI tests need; `hack/install-deps.sh` installs all of it.
const REQUIRED_FILES: &[(&str, &str)] = &[
    ("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ("/usr/lib/cni/static", "containernetworking-plugins"),
    ("/usr/lib/cni/dhcp", "containernetworking-plugins"),
];
const REQUIRED_COMMANDS: &[(&str, &str)] =
    &[("ip", "iproute2"), ("ping", "iputils-ping"), ("busybox", "busybox (udhcpd)")];

/// Checks, once per process, that the tests can run here; panics with one clear line if not.
pub fn require_prerequisites() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(why) = CHECKED.get_or_init(check_prerequisites) {
        panic!("{why}");
    }
}

fn check_prerequisites() -> Result<(), String> {
    let euid = effective_uid().ok_or("cannot read the effective uid from /proc/self/status")?;
    if euid != 0 {
        return Err(format!(
            "CNI plugin tests must run as root (effective uid is {euid}): they create network namespaces and run CNI plugins"
        ));
    }
    let mut missing = Vec::new();
    for (file, package) in REQUIRED_FILES {
        if !Path::new(file).is_file() {
            missing.push(format!("{file} ({package})"));
        }
    }
    for (command, package) in REQUIRED_COMMANDS {
        if find_in_path(command).is_none() {
            missing.push(format!("`{command}` ({package})"));
        }
    }
    if !missing.is_empty() {
        return Err(format!("CNI plugin tests: missing {}; run hack/install-deps.sh as root", missing.join(", ")));
    }
    // Network namespaces may be forbidden (e.g. inside an unprivileged container).
    let probe = format!("wk-probe-{}", std::process::id());
    let out = run(Command::new("ip").args(["netns", "add", &probe]), None, PLUGIN_TIMEOUT);
    if !out.success() {
        return Err(format!(
            "CNI plugin tests: network namespaces are not permitted here: `ip netns add {probe}` failed: {}",
            first_line(&out.stderr)
        ));
    }
    let out = run(Command::new("ip").args(["netns", "del", &probe]), None, PLUGIN_TIMEOUT);
    if !out.success() {
        return Err(format!("CNI plugin tests: `ip netns del {probe}` failed: {}", first_line(&out.stderr)));
    }
    Ok(())
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn find_in_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(command)).find(|p| p.is_file())
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no output)").trim()
}

/// The outcome of a finished command.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `cmd` with `stdin`, failing the test if it does not finish within `timeout` (the process
/// is killed first).
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        // A plugin may exit before reading everything; a broken pipe is not our error.
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = reader(child.stdout.take().expect("stdout is piped"));
    let stderr = reader(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{shown} did not finish within {timeout:?}; stdout: {}; stderr: {}",
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    Output { code: status.code(), stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

fn reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Which namespace of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// Where the plugin runs and creates host-side links (the bridge, the host veth).
    Node,
    /// CNI_NETNS: the container side.
    Pod,
}

/// A CNI error as the plugin printed it (`{"code", "msg", "details"}` on stdout, exit status 1).
#[derive(Debug, Clone, PartialEq)]
pub struct CniError {
    pub code: u64,
    pub msg: String,
    pub details: Option<String>,
    pub exit_code: Option<i32>,
    pub stderr: String,
}

/// A network configuration as found in a NAD's `spec.config`: a single-plugin config or a
/// conflist, parsed the way libcni reads them.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    /// The plugins in order; for a single-plugin config, the whole config.
    pub plugins: Vec<Value>,
}

impl NetConf {
    pub fn parse(config: &str) -> NetConf {
        let value: Value =
            serde_json::from_str(config).unwrap_or_else(|e| panic!("CNI config is not JSON ({e}): {config}"));
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> NetConf {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let cni_version = text("cniVersion").unwrap_or_else(|| panic!("CNI config without cniVersion: {value}"));
        let name = text("name").unwrap_or_else(|| panic!("CNI config without name: {value}"));
        let plugins = match value.get("plugins") {
            Some(Value::Array(list)) => list.clone(),
            Some(other) => panic!("conflist `plugins` is not a list: {other}"),
            None => vec![value.clone()],
        };
        assert!(!plugins.is_empty(), "conflist {name} has no plugins");
        NetConf { cni_version, name, plugins }
    }

    /// The bytes a runtime sends to plugin `index`: libcni's buildOneConfig injects the list's
    /// `name` and `cniVersion` into each plugin, and `prevResult` when there is one.
    pub fn plugin_stdin(&self, index: usize, prev_result: Option<&Value>) -> Value {
        let mut conf = self.plugins[index].clone();
        let shown = conf.to_string();
        let map = conf.as_object_mut().unwrap_or_else(|| panic!("plugin config is not an object: {shown}"));
        map.insert("cniVersion".into(), json!(self.cni_version));
        map.insert("name".into(), json!(self.name));
        if let Some(prev) = prev_result {
            map.insert("prevResult".into(), prev.clone());
        }
        conf
    }

    pub fn plugin_type(&self, index: usize) -> &str {
        self.plugins[index]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("plugin {index} of {} has no type", self.name))
    }

    /// Whether the spec version knows CHECK and prevResult on DEL (>= 0.4.0).
    pub fn has_check(&self) -> bool {
        !matches!(self.cni_version.as_str(), "0.1.0" | "0.2.0" | "0.3.0" | "0.3.1")
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A node + pod network namespace pair, with lo up in both; removed on drop.
pub struct NetnsPair {
    node: String,
    pod: String,
    container_id: String,
    created: Vec<String>,
    children: Mutex<Vec<(String, Child)>>,
    dir: tempfile::TempDir,
}

impl NetnsPair {
    /// Checks the prerequisites and creates a fresh pair.
    pub fn new() -> NetnsPair {
        require_prerequisites();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let mut pair = NetnsPair {
            node: format!("wk-n-{pid}-{n}"),
            pod: format!("wk-p-{pid}-{n}"),
            container_id: format!("wk-{pid}-{n}"),
            created: Vec::new(),
            children: Mutex::new(Vec::new()),
            dir: tempfile::Builder::new().prefix("wk-cni-").tempdir().expect("a temporary directory"),
        };
        for name in [pair.node.clone(), pair.pod.clone()] {
            let out = run(Command::new("ip").args(["netns", "add", &name]), None, PLUGIN_TIMEOUT);
            assert!(out.success(), "`ip netns add {name}` failed: {}", first_line(&out.stderr));
            pair.created.push(name);
        }
        pair.exec_ok(Ns::Node, &["ip", "link", "set", "lo", "up"]);
        pair.exec_ok(Ns::Pod, &["ip", "link", "set", "lo", "up"]);
        pair
    }

    pub fn name(&self, ns: Ns) -> &str {
        match ns {
            Ns::Node => &self.node,
            Ns::Pod => &self.pod,
        }
    }

    /// CNI_NETNS: the pod namespace's path.
    pub fn pod_netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.pod)
    }

    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// A private directory for this test (sockets, daemon configs, logs); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `args` inside `ns`.
    pub fn exec(&self, ns: Ns, args: &[&str]) -> Output {
        run(Command::new("ip").args(["netns", "exec", self.name(ns)]).args(args), None, PLUGIN_TIMEOUT)
    }

    /// Runs `args` inside `ns` and returns stdout; the test fails if the command fails.
    pub fn exec_ok(&self, ns: Ns, args: &[&str]) -> String {
        let out = self.exec(ns, args);
        assert!(
            out.success(),
            "`ip netns exec {} {}` failed (exit {:?}): {}",
            self.name(ns),
            args.join(" "),
            out.code,
            out.stderr.trim()
        );
        out.stdout
    }

    /// Starts a long-running process inside `ns` (stdout and stderr go to `<dir>/<label>.log`);
    /// it is killed by pid when the pair is dropped. Returns the pid (`ip netns exec` execs the
    /// command, so it is the daemon's own pid).
    pub fn spawn(&self, ns: Ns, label: &str, args: &[&str]) -> u32 {
        let log = std::fs::File::create(self.log_path(label)).expect("a log file");
        let child = Command::new("ip")
            .args(["netns", "exec", self.name(ns)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({}): {e}", args.join(" ")));
        let pid = child.id();
        self.children.lock().unwrap_or_else(|p| p.into_inner()).push((label.to_string(), child));
        pid
    }

    pub fn log_path(&self, label: &str) -> PathBuf {
        self.dir().join(format!("{label}.log"))
    }

    /// What a spawned process has logged so far.
    pub fn log(&self, label: &str) -> String {
        std::fs::read_to_string(self.log_path(label)).unwrap_or_default()
    }

    /// Fails the test if a spawned process has already exited (e.g. a daemon that refused its
    /// flags), showing its log.
    pub fn assert_running(&self, label: &str) {
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        let (_, child) = children.iter_mut().find(|(l, _)| l == label).unwrap_or_else(|| panic!("no process {label}"));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{label} exited ({status}); its log: {}", self.log(label));
        }
    }

    // ---- running plugins ------------------------------------------------------------------------

    /// Runs one plugin binary as a runtime does: inside the node netns, with the CNI_* variables
    /// and `stdin` as the config. `Ok(None)` is a success without output (DEL, CHECK).
    pub fn invoke(
        &self,
        plugin: &str,
        command: &str,
        ifname: &str,
        stdin: &Value,
        timeout: Duration,
    ) -> Result<Option<Value>, CniError> {
        let binary = format!("{CNI_PATH}/{plugin}");
        assert!(Path::new(&binary).is_file(), "CNI plugin {binary} is not installed; run hack/install-deps.sh");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.node, &binary])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", self.pod_netns_path())
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", CNI_PATH);
        let out = run(&mut cmd, Some(stdin.to_string().as_bytes()), timeout);
        let parsed: Option<Value> = if out.stdout.trim().is_empty() {
            None
        } else {
            Some(serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
                panic!("{plugin} {command}: output is not JSON ({e}), exit {:?}: {}", out.code, out.stdout)
            }))
        };
        if out.success() {
            return Ok(parsed);
        }
        let error = parsed.unwrap_or_else(|| {
            panic!("{plugin} {command} failed (exit {:?}) without a JSON error; stderr: {}", out.code, out.stderr)
        });
        Err(CniError {
            code: error.get("code").and_then(Value::as_u64).unwrap_or_else(|| panic!("error without code: {error}")),
            msg: error.get("msg").and_then(Value::as_str).unwrap_or_default().to_string(),
            details: error.get("details").and_then(Value::as_str).map(str::to_owned),
            exit_code: out.code,
            stderr: out.stderr,
        })
    }

    /// ADD through every plugin of the network, each getting the previous one's result as
    /// `prevResult` (libcni's addNetworkList). Returns the last result.
    pub fn add(&self, net: &NetConf, ifname: &str) -> Result<Value, CniError> {
        self.add_with_timeout(net, ifname, PLUGIN_TIMEOUT)
    }

    pub fn add_with_timeout(&self, net: &NetConf, ifname: &str, timeout: Duration) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for i in 0..net.plugins.len() {
            let stdin = net.plugin_stdin(i, prev.as_ref());
            let result = self.invoke(net.plugin_type(i), "ADD", ifname, &stdin, timeout)?;
            prev = Some(result.unwrap_or_else(|| panic!("{} ADD succeeded without a result", net.plugin_type(i))));
        }
        Ok(prev.expect("at least one plugin"))
    }

    /// CHECK with `prev_result` (libcni's checkNetworkList). Unlike libcni, which refuses CHECK
    /// for configs below 0.4.0 itself, the harness always asks the plugin, so the plugin's own
    /// answer can be asserted.
    pub fn check(&self, net: &NetConf, ifname: &str, prev_result: &Value) -> Result<(), CniError> {
        for i in 0..net.plugins.len() {
            let stdin = net.plugin_stdin(i, Some(prev_result));
            self.invoke(net.plugin_type(i), "CHECK", ifname, &stdin, PLUGIN_TIMEOUT)?;
        }
        Ok(())
    }

    /// DEL through the plugins in reverse order (libcni's delNetworkList); `prevResult` is sent
    /// only for versions >= 0.4.0, as libcni does with its cached result.
    pub fn del(&self, net: &NetConf, ifname: &str, prev_result: Option<&Value>) -> Result<(), CniError> {
        self.del_with_timeout(net, ifname, prev_result, PLUGIN_TIMEOUT)
    }

    pub fn del_with_timeout(
        &self,
        net: &NetConf,
        ifname: &str,
        prev_result: Option<&Value>,
        timeout: Duration,
    ) -> Result<(), CniError> {
        let prev = prev_result.filter(|_| net.has_check());
        for i in (0..net.plugins.len()).rev() {
            let stdin = net.plugin_stdin(i, prev);
            self.invoke(net.plugin_type(i), "DEL", ifname, &stdin, timeout)?;
        }
        Ok(())
    }

    /// `CNI_COMMAND=VERSION` (libcni's GetVersionInfo sends only `{"cniVersion": ...}`).
    pub fn version_info(&self, plugin: &str, cni_version: &str) -> Value {
        self.invoke(plugin, "VERSION", "", &json!({ "cniVersion": cni_version }), PLUGIN_TIMEOUT)
            .unwrap_or_else(|e| panic!("{plugin} VERSION failed: {e:?}"))
            .unwrap_or_else(|| panic!("{plugin} VERSION printed nothing"))
    }

    // ---- reading namespace state ---------------------------------------------------------------

    /// `ip -j <args>` inside `ns`, parsed.
    pub fn ip_json(&self, ns: Ns, args: &[&str]) -> Value {
        let mut full = vec!["ip", "-j"];
        full.extend_from_slice(args);
        let out = self.exec_ok(ns, &full);
        if out.trim().is_empty() {
            return json!([]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("`ip -j {}` is not JSON ({e}): {out}", args.join(" ")))
    }

    /// The link `ifname` in `ns` (`ip -j link show dev`), or None if it does not exist.
    pub fn link(&self, ns: Ns, ifname: &str) -> Option<Value> {
        let out = self.exec(ns, &["ip", "-j", "link", "show", "dev", ifname]);
        if !out.success() {
            assert!(
                out.stderr.contains("does not exist"),
                "`ip link show dev {ifname}` in {:?} failed: {}",
                ns,
                out.stderr.trim()
            );
            return None;
        }
        let list: Value = serde_json::from_str(&out.stdout).expect("ip -j link is JSON");
        list.as_array().and_then(|l| l.first()).cloned()
    }

    /// Names of all links in `ns`.
    pub fn link_names(&self, ns: Ns) -> Vec<String> {
        let links = self.ip_json(ns, &["link", "show"]);
        links
            .as_array()
            .map(|l| l.iter().filter_map(|x| x.get("ifname")?.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub fn mtu(&self, ns: Ns, ifname: &str) -> u64 {
        let link = self.link(ns, ifname).unwrap_or_else(|| panic!("no link {ifname} in {ns:?}"));
        link["mtu"].as_u64().unwrap_or_else(|| panic!("link {ifname} has no mtu: {link}"))
    }

    pub fn mac(&self, ns: Ns, ifname: &str) -> String {
        let link = self.link(ns, ifname).unwrap_or_else(|| panic!("no link {ifname} in {ns:?}"));
        link["address"].as_str().unwrap_or_else(|| panic!("link {ifname} has no address: {link}")).to_string()
    }

    /// `ip -j addr show dev ifname`: the addr_info entries.
    pub fn addr_info(&self, ns: Ns, ifname: &str) -> Vec<Value> {
        let list = self.ip_json(ns, &["addr", "show", "dev", ifname]);
        list.get(0).and_then(|l| l.get("addr_info")).and_then(Value::as_array).cloned().unwrap_or_default()
    }

    /// The global-scope addresses of `ifname` as `address/prefix`.
    pub fn global_addresses(&self, ns: Ns, ifname: &str) -> Vec<String> {
        self.addr_info(ns, ifname)
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or("?"), a["prefixlen"]))
            .collect()
    }

    /// `ip -j route` (IPv4) in `ns`.
    pub fn routes_v4(&self, ns: Ns) -> Vec<Value> {
        self.ip_json(ns, &["route", "show"]).as_array().cloned().unwrap_or_default()
    }

    /// `ip -j -6 route` in `ns`.
    pub fn routes_v6(&self, ns: Ns) -> Vec<Value> {
        self.ip_json(ns, &["-6", "route", "show"]).as_array().cloned().unwrap_or_default()
    }

    /// Sets a sysctl below /proc/sys/net inside `ns` (those files are per network namespace).
    pub fn sysctl(&self, ns: Ns, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.exec_ok(ns, &["sh", "-c", &format!("echo {value} > {path}")]);
    }

    /// Pings `target` from `ns` (a few tries: the first packets may race neighbour discovery).
    pub fn ping(&self, ns: Ns, target: &str) -> Output {
        let mut last = None;
        for _ in 0..5 {
            let out = self.exec(ns, &["ping", "-c", "1", "-W", "1", target]);
            if out.success() {
                return out;
            }
            last = Some(out);
        }
        last.expect("pinged at least once")
    }
}

impl Default for NetnsPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Daemons first (by pid), so nothing holds the namespaces or recreates state in them.
        let children = std::mem::take(self.children.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (label, mut child) in children {
            if let Err(e) = child.kill() {
                eprintln!("netns harness: killing {label} (pid {}): {e}", child.id());
            }
            let _ = child.wait();
        }
        for name in self.created.iter().rev() {
            let out = Command::new("ip").args(["netns", "del", name]).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    eprintln!("netns harness: `ip netns del {name}` failed: {}", String::from_utf8_lossy(&o.stderr))
                }
                Err(e) => eprintln!("netns harness: `ip netns del {name}`: {e}"),
            }
        }
    }
}
