//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use wukong_render::CniVersion;

use crate::commands;
use crate::controller::Config;

#[derive(Parser, Debug)]
#[command(name = "wukong", version, about = "Wukong: VMs on Kubernetes, on the right VLAN with the right address")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (in-cluster, or with KUBECONFIG).
    Controller(ControllerArgs),
    /// Print the NADs and the VirtualMachine every Wukong in a file yields (offline).
    Render(RenderArgs),
    /// Print the Wukong CRD as YAML.
    Crd(CrdArgs),
}

#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// Print instead the ValidatingAdmissionPolicy (and its binding) that makes `kubectl apply`
    /// warn about fields of the original operator's manifests that wukong ignores.
    #[arg(long)]
    pub warning_policy: bool,
}

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
    #[arg(long, default_value = "0.3.1", value_parser = parse_cni_version)]
    pub cni_version: CniVersion,
    /// Address of /metrics, /livez and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Wukongs reconciled at once (a reconcile mostly waits for the API server: see the README's
    /// "Scale" for the measurements behind the default).
    #[arg(long, default_value_t = 32)]
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
    /// Seconds a leader holds the Lease without renewing it; it stops writing after two thirds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
}

impl ControllerArgs {
    /// The controller's settings.
    pub fn config(&self) -> Config {
        Config {
            namespace: self.namespace.clone(),
            nad_namespaces: self.nad_namespaces.iter().cloned().collect(),
            cni_version: self.cni_version,
            concurrency: self.concurrency,
            discovery_interval: self.discovery_interval,
            resync: self.resync,
            lease_name: self.lease_name.clone(),
            lease_namespace: self
                .lease_namespace
                .clone()
                .or_else(|| self.namespace.clone())
                .unwrap_or_else(|| "default".into()),
            identity: self.identity.clone().unwrap_or_else(random_identity),
            lease_duration: Duration::from_secs(self.lease_duration.max(1)),
        }
    }
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

fn random_identity() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "wukong".into());
    format!("{host}-{}-{:x}", std::process::id(), nanos & 0xffff_ffff)
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// A YAML file with one or more Wukong documents; `-` reads standard input.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,
    /// Render as if Multus were not installed: secondary networks fall back to the pod network.
    #[arg(long)]
    pub no_multus: bool,
    /// CNI spec version of generated NAD configs.
    #[arg(long, default_value = "0.3.1", value_parser = parse_cni_version)]
    pub cni_version: CniVersion,
    /// Instead of the objects: what applying the file changes in each Wukong's VM, and whether
    /// each change reaches the running VM live, through a live migration or at a restart,
    /// decided as the controller decides it. Compared with the live Wukong, its VM, their
    /// instance and the cluster's KubeVirt CR (KUBECONFIG), or, with --from, with an old
    /// manifest.
    #[arg(long)]
    pub diff: bool,
    /// With --diff: compare with the Wukongs of this manifest (offline) instead of the cluster;
    /// an old Wukong is taken as running unless its runStrategy is Halted.
    #[arg(long, requires = "diff", value_name = "OLD_FILE")]
    pub from: Option<PathBuf>,
    /// With --from: the cluster's KubeVirt version (e.g. v1.8.4; default: a recent one).
    #[arg(long, requires = "from")]
    pub kubevirt_version: Option<String>,
    /// With --from: the KubeVirt CR's feature gates (comma-separated, e.g. LiveUpdateNADRef).
    #[arg(long, value_delimiter = ',', requires = "from")]
    pub kubevirt_feature_gates: Vec<String>,
    /// With --from: the KubeVirt CR's workloadUpdateMethods (LiveMigrate, Evict).
    #[arg(long, value_delimiter = ',', requires = "from")]
    pub workload_update_methods: Vec<String>,
    /// With --from: the KubeVirt CR's vmRolloutStrategy.
    #[arg(long, value_enum, requires = "from", default_value_t = RolloutArg::LiveUpdate)]
    pub vm_rollout_strategy: RolloutArg,
}

/// KubeVirt's `vmRolloutStrategy`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutArg {
    #[value(name = "LiveUpdate")]
    LiveUpdate,
    #[value(name = "Stage")]
    Stage,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Yaml,
    Json,
}

pub fn parse_cni_version(s: &str) -> Result<CniVersion, String> {
    s.parse()
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Controller(args) => commands::controller::run(args),
            Command::Render(args) => commands::render::run(&args),
            Command::Crd(args) => commands::crd::run(&args),
        }
    }
}
