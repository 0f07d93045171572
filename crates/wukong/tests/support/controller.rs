//! A `wukong controller` running inside the test process, against the test's control plane.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kube::Client;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wukong::cli::ControllerArgs;
use wukong::controller::{self, Config, State};

use super::{Cluster, TestNamespace, wait_for};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    args: ControllerArgs,
}

/// The controller settings a test gets (from the command line, as a user gives them): its
/// namespace only, its own Lease there, fast discovery.
pub fn args(namespace: &str, extra: &[&str]) -> Config {
    let mut argv = vec!["wukong", "--namespace", namespace, "--lease-namespace", namespace];
    if !extra.contains(&"--discovery-interval") {
        argv.extend(["--discovery-interval", "1s"]);
    }
    argv.extend_from_slice(extra);
    Flags::parse_from(argv).args.config()
}

/// A running controller; stopped (gracefully, releasing its Lease) by [`RunningController::stop`]
/// or, abruptly, on drop.
pub struct RunningController {
    pub state: Arc<State>,
    /// Where its /metrics, /livez and /readyz answer.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts `wukong controller` with `args`, authenticated by `client`.
pub async fn start(client: Client, args: Config) -> RunningController {
    let state = Arc::new(State::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let (http_stop, http_stopped) = oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
    let addr = listener.local_addr().expect("the port");
    tokio::spawn(controller::http::serve(listener, state.clone(), async move {
        let _ = http_stopped.await;
    }));
    let shutdown = async move {
        let _ = stopped.await;
        let _ = http_stop.send(());
    };
    let task = tokio::spawn(controller::run(args, client, state.clone(), shutdown));
    RunningController { state, addr, stop: Some(stop), task: Some(task) }
}

impl RunningController {
    /// Stops the controller as SIGTERM would and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(40), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("the controller failed: {e:#}"),
                Ok(Err(e)) => panic!("the controller panicked: {e}"),
                Err(_) => panic!("the controller did not stop within 40 s"),
            }
        }
    }

    /// GET `path` on its HTTP endpoint: (status code, body).
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.expect("connect to the controller");
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send the request");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read the response");
        let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (code, body)
    }

    /// The value of one sample in /metrics, e.g. `wukong_reconciles_total`.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.state.metrics.encode();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }
}

impl Drop for RunningController {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// deploy/'s namespace, ServiceAccount, ClusterRole and binding, applied as a cluster admin would.
pub fn install_rbac(c: &Cluster) {
    for file in ["deploy/namespace.yaml", "deploy/rbac.yaml"] {
        let out = c
            .kubectl()
            .args(["apply", "--server-side", "--field-manager=wukong-install", "-f"])
            .arg(super::repo_root().join(file))
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "kubectl apply {file}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A fresh test namespace and a controller for it that runs as deploy/'s ServiceAccount (real
/// RBAC), once it leads.
pub async fn start_in_namespace(c: &Cluster, prefix: &str, extra: &[&str]) -> (TestNamespace, RunningController) {
    install_rbac(c);
    let ns = c.namespace(prefix).await;
    let client = c.service_account_client("wukong-system", "wukong").await;
    let controller = start(client, args(&ns.name, extra)).await;
    wait_for("the controller to lead", Duration::from_secs(30), || async {
        controller.state.is_leader().then_some(())
    })
    .await;
    (ns, controller)
}
