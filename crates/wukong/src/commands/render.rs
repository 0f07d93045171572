//! `wukong render`: every NAD and the VM each Wukong in a file yields, offline.

use std::io::Read;
use std::process::ExitCode;

use serde_json::{Value, json};
use wukong_render::{RenderOptions, Rendered};

use crate::cli::{OutputFormat, RenderArgs};

/// Exit code for input that breaks the API's rules (and for unreadable input).
pub const EXIT_INVALID: u8 = 2;

pub fn run(args: &RenderArgs) -> ExitCode {
    let input = match read_input(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if args.diff {
        return super::diff::run(args, &input);
    }
    let options = RenderOptions { cni_version: args.cni_version, multus: !args.no_multus };
    match render_documents(&input, &options, args.output) {
        Ok(out) => {
            for note in &out.notes {
                eprintln!("note: {note}");
            }
            for warning in &out.warnings {
                eprintln!("warning: {warning}");
            }
            // A closed pipe (`wukong render ... | head`) is not an error worth a panic.
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(out.text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn read_input(args: &RenderArgs) -> Result<String, String> {
    if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file.display()))
    }
}

/// What a successful render prints: the text for stdout, notes and warnings for stderr.
#[derive(Debug)]
pub struct Output {
    pub text: String,
    pub notes: Vec<String>,
    /// Fields wukong ignores, in the words `kubectl apply` prints them (the warning policy's).
    pub warnings: Vec<String>,
}

/// One Wukong of the input and what validation says of it.
#[derive(Debug)]
pub struct Checked {
    /// Position of the object in the input (1-based, `kind: List` items counted one by one).
    pub index: usize,
    pub result: Result<wukong_render::Validated, wukong_render::Invalid>,
}

/// Reads `input` as kubectl reads it and validates every Wukong in it as the API server would.
/// `Err` when the input cannot be read at all; documents that are not Wukongs are noted and
/// skipped.
pub fn check_documents(input: &str) -> Result<(Vec<Checked>, Vec<String>), String> {
    let documents = wukong_render::manifest::read(input).map_err(|e| format!("the input cannot be read: {e}"))?;
    let mut notes = Vec::new();
    let mut checked = Vec::new();
    for (index, doc) in documents.iter().enumerate() {
        // What kubectl refuses before sending anything: an object without kind, or a Wukong of
        // a version the API server does not serve.
        let (Some(kind), Some(api_version)) =
            (doc.get("kind").and_then(Value::as_str), doc.get("apiVersion").and_then(Value::as_str))
        else {
            return Err(format!("document {}: Object 'Kind' or 'apiVersion' is missing in '{doc}'", index + 1));
        };
        if kind == "Wukong" && api_version != "vm.novasphere.dev/v1alpha1" {
            return Err(format!(
                "document {}: no matches for kind \"Wukong\" in version \"{api_version}\": Wukong is vm.novasphere.dev/v1alpha1",
                index + 1
            ));
        }
        if kind != "Wukong" {
            notes.push(format!("document {} ({} {}) is not a Wukong; skipped", index + 1, api_version, kind));
            continue;
        }
        checked.push(Checked { index: index + 1, result: wukong_render::validate_object(doc) });
    }
    Ok((checked, notes))
}

/// Parses every document of `input`, validates every Wukong, renders them all. Nothing is
/// returned for output unless every Wukong is valid.
pub fn render_documents(input: &str, options: &RenderOptions, format: OutputFormat) -> Result<Output, Vec<String>> {
    let (checked, notes) = check_documents(input).map_err(|e| vec![e])?;
    let mut warnings = Vec::new();
    let mut rendered = Vec::new();
    let mut errors = Vec::new();
    for c in checked {
        match c.result {
            Ok(valid) => {
                warnings.extend(ignored_fields(valid.wukong()));
                rendered.push(wukong_render::render(&valid, options));
            }
            Err(invalid) => errors.push(invalid.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if rendered.is_empty() {
        return Err(vec!["the input holds no Wukong".to_string()]);
    }
    let text = match format {
        OutputFormat::Yaml => yaml(&rendered),
        OutputFormat::Json => json(&rendered),
    };
    Ok(Output { text, notes, warnings })
}

/// The warnings of fields wukong ignores, in the words `kubectl apply` prints them (the warning
/// policy's), each prefixed with the Wukong.
fn ignored_fields(wukong: &wukong_api::Wukong) -> impl Iterator<Item = String> {
    let name = wukong_render::names::name_of(wukong);
    let who = match &wukong.metadata.namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    wukong_render::warnings::of(wukong).into_iter().map(move |w| format!("Wukong {who}: {w}"))
}

/// NADs, then the cloud-init Secret, then the VM: the order the controller applies them in.
pub fn objects(r: &Rendered) -> Vec<Value> {
    let mut out: Vec<Value> = r.nads.iter().map(|n| serde_json::to_value(n).expect("NAD serializes")).collect();
    out.extend(r.cloud_init_secret.iter().map(readable_secret));
    out.push(serde_json::to_value(&r.vm).expect("VM serializes"));
    out
}

/// The cloud-init Secret with its (text) values as `stringData`, so a reader sees the cloud-init
/// documents; applied, it is the same Secret as the controller's `data`.
fn readable_secret(secret: &k8s_openapi::api::core::v1::Secret) -> Value {
    let mut value = serde_json::to_value(secret).expect("Secret serializes");
    let text: serde_json::Map<String, Value> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Value::String(String::from_utf8_lossy(&v.0).into_owned())))
        .collect();
    if let Some(map) = value.as_object_mut() {
        map.remove("data");
        map.insert("stringData".into(), Value::Object(text));
    }
    value
}

fn yaml(rendered: &[Rendered]) -> String {
    let mut text = String::new();
    for r in rendered {
        for object in objects(r) {
            text.push_str("---\n");
            if object["kind"] == "Secret"
                && r.vm.spec.template.spec.volumes.iter().any(|v| v.cloud_init_no_cloud.is_some())
            {
                text.push_str(
                    "# The controller adds the SSH keys of sshKeySecret to userdata; offline there are none.\n",
                );
            }
            text.push_str(&serde_saphyr::to_string(&object).expect("objects serialize to YAML"));
        }
        if let Some(a) = &r.launcher_pod_networks {
            text.push_str(&format!(
                "# KubeVirt will set on the launcher pod of {}:\n#   k8s.v1.cni.cncf.io/networks: '{a}'\n",
                r.vm.metadata.name.as_deref().unwrap_or_default()
            ))
        }
    }
    text
}

fn json(rendered: &[Rendered]) -> String {
    let items: Vec<Value> = rendered.iter().flat_map(objects).collect();
    let mut s = serde_json::to_string_pretty(&json!({ "apiVersion": "v1", "kind": "List", "items": items }))
        .expect("the list serializes");
    s.push('\n');
    s
}
