//! `wukong crd`: the CRD as YAML.

use std::process::ExitCode;

/// The CRD YAML, as `deploy/crd.yaml` holds it.
pub fn yaml() -> String {
    serde_saphyr::to_string(&wukong_api::crd::crd()).expect("the CRD serializes to YAML")
}

pub fn run() -> ExitCode {
    use std::io::Write;
    // A closed pipe (`wukong crd | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(yaml().as_bytes());
    ExitCode::SUCCESS
}
