//! `wukong controller`: reconciles Wukongs into NADs and VirtualMachines.
//!
//! Only the leader (a Lease) runs the controller. The optional kinds are discovered when it
//! starts and re-checked every `--discovery-interval`; when they change the controller is
//! rebuilt with the right watches (and re-lists every Wukong) without restarting the process.

mod apply;
mod context;
mod discovery;
mod error;
pub mod http;
mod metrics;
mod observe;
mod reconcile;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{error, info, warn};
use wukong_api::kubevirt::{VirtualMachine, VirtualMachineInstance};
use wukong_api::nad::NetworkAttachmentDefinition;
use wukong_api::{Wukong, labels};
use wukong_render::CniVersion;
use wukong_render::decide::{Kinds, Policy};
use wukong_render::plan::NadRef;

pub use discovery::discover;
pub use metrics::Metrics;

use context::Context;

/// `wukong controller` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Only reconcile Wukongs in this namespace (default: all namespaces).
    #[arg(long, env = "WUKONG_NAMESPACE")]
    pub namespace: Option<String>,
    /// Namespaces, besides a Wukong's own, that `nadName` may point into (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub nad_namespaces: Vec<String>,
    /// CNI spec version of generated NAD configs.
    #[arg(long, default_value = "0.3.1", value_parser = crate::cli::parse_cni_version)]
    pub cni_version: CniVersion,
    /// Address of /metrics, /livez and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Wukongs reconciled at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// How often to check whether Multus' and KubeVirt's CRDs appeared or went away.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub discovery_interval: Duration,
    /// Safety-net resync of converged Wukongs.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub resync: Duration,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "wukong-controller")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else --namespace, else default).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Identity in the Lease (default: the pod name, else a random one).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a leader holds the Lease without renewing it.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parses `90s`, `2m`, `500ms` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number.parse().map_err(|_| format!("invalid duration {s:?}: use e.g. 30s, 2m or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration {s:?}: use e.g. 30s, 2m or 500ms")),
    }
}

/// What the HTTP endpoints and tests see of a running controller.
#[derive(Default)]
pub struct State {
    pub metrics: Metrics,
    leader: AtomicBool,
    synced: AtomicBool,
    kinds: Mutex<Kinds>,
    store: Mutex<Option<Store<Wukong>>>,
}

impl State {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    pub fn kinds(&self) -> Kinds {
        *self.kinds.lock().expect("kinds lock")
    }

    pub fn readiness(&self) -> Result<&'static str, &'static str> {
        match (self.is_leader(), self.synced.load(Ordering::SeqCst)) {
            (false, _) => Ok("standby: another replica holds the lease"),
            (true, true) => Ok("ok"),
            (true, false) => Err("listing Wukongs"),
        }
    }

    fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
        self.metrics.leader.set(i64::from(leader));
        if !leader {
            self.synced.store(false, Ordering::SeqCst);
        }
    }

    /// Counts the VMs and generated NADs of the Wukongs this replica knows, from their status.
    fn count_managed(&self) {
        let Some(store) = self.store.lock().expect("store lock").clone() else { return };
        let (mut vms, mut nads) = (0, 0);
        for w in store.state() {
            let Some(status) = &w.status else { continue };
            vms += i64::from(status.vm_name.is_some());
            let generated = |n: &wukong_api::NetworkStatus| {
                let name = wukong_render::names::nad_name(&w.name_any(), &n.name);
                n.nad_name.as_deref().is_some_and(|nad| nad.ends_with(&format!("/{name}")))
            };
            nads += status.networks.iter().filter(|n| generated(n)).count() as i64;
        }
        self.metrics.set_managed("VirtualMachine", vms);
        self.metrics.set_managed("NetworkAttachmentDefinition", nads);
    }
}

/// Runs the controller until `shutdown` resolves: waits for the lease, then reconciles.
pub async fn run(
    args: ControllerArgs,
    client: Client,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown = shutdown.shared();
    let lease_namespace =
        args.lease_namespace.clone().or_else(|| args.namespace.clone()).unwrap_or_else(|| "default".into());
    let identity = args.identity.clone().unwrap_or_else(random_identity);
    let lease = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration)
        .with_grace(args.lease_duration.div_ceil(3).max(1))
        .build()
        .await?;
    let (mut leader, lease_task) = lease.watch().await;
    info!(%identity, lease = %format!("{lease_namespace}/{}", args.lease_name), "waiting for the leader lease");
    loop {
        tokio::select! {
            _ = shutdown.clone() => break,
            changed = leader.wait_for(|l| *l) => { changed?; }
        }
        info!(%identity, "leading");
        state.set_leader(true);
        let outcome = lead(&args, &client, &state, &mut leader, shutdown.clone()).await;
        state.set_leader(false);
        match outcome? {
            Stop::Shutdown => break,
            Stop::LostLease => warn!(%identity, "lost the leader lease; standing by"),
        }
    }
    drop(leader); // releases the lease for the next replica
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    info!("stopped");
    Ok(())
}

enum Stop {
    Shutdown,
    LostLease,
}

/// Leads until the lease is lost or shutdown; rebuilds the controller when the kinds change.
async fn lead(
    args: &ControllerArgs,
    client: &Client,
    state: &Arc<State>,
    leader: &mut tokio::sync::watch::Receiver<bool>,
    shutdown: futures::future::Shared<impl std::future::Future<Output = ()>>,
) -> anyhow::Result<Stop> {
    loop {
        let kinds = tokio::select! {
            _ = shutdown.clone() => return Ok(Stop::Shutdown),
            kinds = discover_until_ok(client) => kinds,
        };
        *state.kinds.lock().expect("kinds lock") = kinds;
        info!(?kinds, "optional kinds discovered");
        let ctx = Arc::new(Context {
            client: client.clone(),
            kinds,
            policy: Policy {
                cni_version: args.cni_version,
                nad_namespaces: args.nad_namespaces.iter().cloned().collect(),
            },
            metrics: state.metrics.clone(),
            recorder: Recorder::new(
                client.clone(),
                Reporter { controller: "wukong".into(), instance: args.identity.clone() },
            ),
            requeue: args.resync,
            failures: Mutex::default(),
            written: Mutex::default(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let controller = controller(args, client, kinds, state, stop_rx.map(|_| ()))
            .run(reconcile::reconcile, reconcile::error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    warn!(error = %e, "controller");
                }
            });
        tokio::pin!(controller);
        let stop = tokio::select! {
            _ = &mut controller => None,
            _ = kinds_changed(client, kinds, args.discovery_interval) => None,
            _ = leader.wait_for(|l| !*l) => Some(Stop::LostLease),
            _ = shutdown.clone() => Some(Stop::Shutdown),
        };
        let _ = stop_tx.send(());
        // In-flight reconciles finish; new ones are not started.
        if tokio::time::timeout(Duration::from_secs(30), &mut controller).await.is_err() {
            error!("reconciles did not finish within 30 s of the stop");
        }
        if let Some(stop) = stop {
            return Ok(stop);
        }
        info!("optional kinds changed: rebuilding the controller");
    }
}

fn controller(
    args: &ControllerArgs,
    client: &Client,
    kinds: Kinds,
    state: &Arc<State>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Controller<Wukong> {
    let api = |c: &Client| match &args.namespace {
        Some(ns) => Api::<Wukong>::namespaced(c.clone(), ns),
        None => Api::<Wukong>::all(c.clone()),
    };
    let mut controller = Controller::new(api(client), watcher::Config::default().any_semantic())
        .with_config(ControllerConfig::default().concurrency(args.concurrency))
        .graceful_shutdown_on(stop);
    let store = controller.store();
    *state.store.lock().expect("store lock") = Some(store.clone());
    let ready_state = state.clone();
    let ready_store = store.clone();
    tokio::spawn(async move {
        // The store's readiness wakes only its last waiter (the controller's own runner), so
        // poll it again until the memoized result is there.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), ready_store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    info!("listed every Wukong: ready");
                    ready_state.synced.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(Err(e)) => return warn!(error = %e, "the Wukong store never became ready"),
                Err(_) => continue,
            }
        }
    });
    let cfg = watcher::Config::default().any_semantic();
    if kinds.vm {
        controller = controller.owns(scoped::<VirtualMachine>(client, args.namespace.as_deref()), cfg.clone());
    }
    if kinds.nad {
        // Wukongs react to their own NADs, to NADs they name by nadName, and to a foreign NAD
        // that blocks a generated name going away. nadName may point into other namespaces.
        let nad_scope = if args.nad_namespaces.is_empty() { args.namespace.as_deref() } else { None };
        let api = scoped::<PartialObjectMeta<NetworkAttachmentDefinition>>(client, nad_scope);
        let nad_store = store.clone();
        controller = controller.watches(api, cfg.clone(), move |nad| wukongs_of_nad(&nad_store, &nad));
    }
    // The Secrets Wukongs name as sshKeySecret (their keys go into cloud-init) and the
    // cloud-init Secrets wukong owns; the PVCs behind disks (volume status).
    let secrets_store = store.clone();
    controller = controller.watches(
        scoped::<PartialObjectMeta<Secret>>(client, args.namespace.as_deref()),
        cfg.clone(),
        move |secret| wukongs_of_secret(&secrets_store, &secret),
    );
    let pvc_store = store.clone();
    controller = controller.watches(
        scoped::<PartialObjectMeta<PersistentVolumeClaim>>(client, args.namespace.as_deref()),
        cfg.clone(),
        move |pvc| wukongs_of_pvc(&pvc_store, &pvc),
    );
    if kinds.data_volume {
        // A DataVolume's phase is shown in status.volumes; it is named like its PVC.
        let resource = observe::data_volume_resource();
        let api = match args.namespace.as_deref() {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource),
            None => Api::<DynamicObject>::all_with(client.clone(), &resource),
        };
        let dv_store = store.clone();
        controller = controller.watches_with(api, resource, cfg.clone(), move |dv| {
            let (Some(namespace), name) = (dv.namespace(), dv.name_any()) else { return Vec::new() };
            wukongs_of_volume(&dv_store, &namespace, &name)
        });
    }
    if kinds.kubevirt_config {
        // The KubeVirt CR says which binding plugins exist: Wukongs with a network that needs
        // one (macvlan) are reconsidered when it changes.
        let resource = observe::kubevirt_resource();
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let cr_store = store.clone();
        controller = controller.watches_with(api, resource, cfg.clone(), move |_| {
            cr_store
                .state()
                .iter()
                .filter(|w| w.spec.networks.iter().any(|n| n.type_ == Some(wukong_api::NetworkType::Macvlan)))
                .map(|w| ObjectRef::from_obj(w.as_ref()))
                .collect::<Vec<_>>()
        });
    }
    if kinds.vmi {
        let api = scoped::<PartialObjectMeta<VirtualMachineInstance>>(client, args.namespace.as_deref());
        controller = controller.watches(api, cfg, |vmi| {
            let namespace = vmi.namespace()?;
            let wukong = vmi.labels().get(labels::WUKONG)?.clone();
            Some(ObjectRef::new(&wukong).within(&namespace))
        });
    }
    controller
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The Wukongs of `namespace` (from the controller's own store) for which `relates` holds.
fn wukongs_in(store: &Store<Wukong>, namespace: &str, relates: impl Fn(&Wukong) -> bool) -> Vec<ObjectRef<Wukong>> {
    store
        .state()
        .iter()
        .filter(|w| w.namespace().as_deref() == Some(namespace) && relates(w))
        .map(|w| ObjectRef::from_obj(w.as_ref()))
        .collect()
}

/// Wukongs that generate a NAD of this name, or name it by nadName (from any namespace).
fn wukongs_of_nad(
    store: &Store<Wukong>,
    nad: &PartialObjectMeta<NetworkAttachmentDefinition>,
) -> Vec<ObjectRef<Wukong>> {
    let (Some(namespace), name) = (nad.namespace(), nad.name_any()) else { return Vec::new() };
    let this = NadRef { namespace: namespace.clone(), name: name.clone() };
    let mut refs = wukongs_in(store, &namespace, |w| {
        w.spec
            .networks
            .iter()
            .any(|n| n.nad_name.is_none() && wukong_render::names::nad_name(&w.name_any(), &n.name) == name)
    });
    refs.extend(
        store
            .state()
            .iter()
            .filter(|w| {
                let ns = w.namespace().unwrap_or_default();
                w.spec
                    .networks
                    .iter()
                    .any(|n| n.nad_name.as_deref().is_some_and(|named| NadRef::parse(named, &ns) == this))
            })
            .map(|w| ObjectRef::from_obj(w.as_ref())),
    );
    refs
}

/// Wukongs that name this Secret as sshKeySecret, or whose cloud-init Secret it is.
fn wukongs_of_secret(store: &Store<Wukong>, secret: &PartialObjectMeta<Secret>) -> Vec<ObjectRef<Wukong>> {
    let (Some(namespace), name) = (secret.namespace(), secret.name_any()) else { return Vec::new() };
    wukongs_in(store, &namespace, |w| {
        w.spec.ssh_key_secret.as_deref() == Some(name.as_str())
            || wukong_render::cloudinit::secret_name(&w.name_any()) == name
    })
}

/// Wukongs with a DataVolume disk whose PVC this is.
fn wukongs_of_pvc(store: &Store<Wukong>, pvc: &PartialObjectMeta<PersistentVolumeClaim>) -> Vec<ObjectRef<Wukong>> {
    let (Some(namespace), name) = (pvc.namespace(), pvc.name_any()) else { return Vec::new() };
    wukongs_of_volume(store, &namespace, &name)
}

/// Wukongs with a disk whose DataVolume (and PVC) has this name.
fn wukongs_of_volume(store: &Store<Wukong>, namespace: &str, name: &str) -> Vec<ObjectRef<Wukong>> {
    wukongs_in(store, namespace, |w| {
        wukong_render::disks::plan(w).iter().any(|d| d.data_volume(&w.name_any()).as_deref() == Some(name))
    })
}

async fn discover_until_ok(client: &Client) -> Kinds {
    let mut delay = Duration::from_millis(500);
    loop {
        match discover(client).await {
            Ok(kinds) => return kinds,
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "discovery failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Resolves when discovery reports kinds different from `current`.
async fn kinds_changed(client: &Client, current: Kinds, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match discover(client).await {
            Ok(kinds) if kinds != current => return,
            Ok(_) => {}
            Err(e) => warn!(error = %e, "discovery failed; keeping the current watches"),
        }
    }
}

fn random_identity() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "wukong".into());
    format!("{host}-{}-{:x}", std::process::id(), nanos & 0xffff_ffff)
}
