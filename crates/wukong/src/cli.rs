//! The command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wukong_render::CniVersion;

use crate::commands;

#[derive(Parser, Debug)]
#[command(name = "wukong", version, about = "Wukong: VMs on Kubernetes, on the right VLAN with the right address")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (in-cluster, or with KUBECONFIG).
    Controller(crate::controller::ControllerArgs),
    /// Print the NADs and the VirtualMachine every Wukong in a file yields (offline).
    Render(RenderArgs),
    /// Print the Wukong CRD as YAML.
    Crd,
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
            Command::Crd => commands::crd::run(),
        }
    }
}
