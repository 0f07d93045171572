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
    Crd(CrdArgs),
}

#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// Print instead the ValidatingAdmissionPolicy (and its binding) that makes `kubectl apply`
    /// warn about fields of the original operator's manifests that wukong ignores.
    #[arg(long)]
    pub warning_policy: bool,
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
