//! `wukong crd`: the CRD as YAML.

use std::process::ExitCode;

/// The CRD YAML, as `deploy/crd.yaml` holds it.
pub fn yaml() -> String {
    serde_saphyr::to_string(&wukong_api::crd::crd()).expect("the CRD serializes to YAML")
}

pub fn run() -> ExitCode {
    print!("{}", yaml());
    ExitCode::SUCCESS
}
