//! `wukong`: the operator (`wukong controller`) and its offline tools (`wukong render`,
//! `wukong crd`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    wukong::cli::Cli::parse().run()
}
