//! `wukong render --diff`: what applying a manifest does to the VM of each of its Wukongs, and
//! whether each change reaches the running VM live, through a live migration or at a restart.
//!
//! The decision and its classification are the controller's ([`wukong_render::preview`]); this
//! file only gathers the facts: from the cluster (the live Wukong, its VM, their instance, the
//! generated NADs, the KubeVirt CR), or, with `--from`, from an old manifest, offline.

use std::process::ExitCode;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use wukong_api::{Applies, Wukong, labels};
use wukong_render::Validated;
use wukong_render::capabilities::{KubeVirtCapabilities, RolloutStrategy};
use wukong_render::decide::{Facts, LiveVm, Policy, Presence, wanted_nads};
use wukong_render::liveupdate::Instance;
use wukong_render::preview::{self, Preview};

use super::render::EXIT_INVALID;
use crate::cli::{OutputFormat, RenderArgs, RolloutArg};

pub fn run(args: &RenderArgs, input: &str) -> ExitCode {
    let previews = match &args.from {
        Some(path) => {
            let new = wukongs(input, "the input", None);
            let old = match std::fs::read_to_string(path) {
                Ok(text) => wukongs(&text, &path.display().to_string(), None),
                Err(e) => Err(vec![format!("cannot read {}: {e}", path.display())]),
            };
            match (new, old) {
                (Ok(new), Ok(old)) => offline(args, &new, &old),
                (Err(errors), _) | (_, Err(errors)) => return fail(&errors),
            }
        }
        None => match live(input) {
            Ok(Ok(p)) => p,
            Ok(Err(errors)) => return fail(&errors),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let text = match args.output {
        OutputFormat::Yaml => text(&previews),
        OutputFormat::Json => json_text(&previews),
    };
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

fn fail(errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    ExitCode::from(EXIT_INVALID)
}

/// The Wukongs of a manifest, validated (in `namespace` when they name none, as kubectl
/// places them); every refusal, or none.
fn wukongs(input: &str, what: &str, namespace: Option<&str>) -> Result<Vec<Validated>, Vec<String>> {
    let documents = wukong_render::manifest::read(input).map_err(|e| vec![format!("{what} cannot be read: {e}")])?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for mut doc in documents.into_iter().filter(|d| d.get("kind").and_then(Value::as_str) == Some("Wukong")) {
        if let (Some(ns), None) = (namespace, doc.pointer("/metadata/namespace")) {
            doc["metadata"]["namespace"] = json!(ns);
        }
        match wukong_render::validate_object(&doc) {
            Ok(valid) => out.push(valid),
            Err(invalid) => errors.push(invalid.to_string()),
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(format!("{what} holds no Wukong"));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// `namespace/name` of a Wukong.
fn key(w: &Wukong) -> (String, String) {
    (wukong_render::names::namespace_of(w).to_string(), wukong_render::names::name_of(w).to_string())
}

/// The controller's policy for a preview: it cannot know `--nad-namespaces`, so every NAD a
/// Wukong names is allowed.
fn policy(new: &Validated) -> Policy {
    let namespace = wukong_render::names::namespace_of(new.wukong());
    let nad_namespaces = new
        .wukong()
        .spec
        .networks
        .iter()
        .filter_map(|n| n.nad_name.as_deref())
        .map(|nad| wukong_render::plan::NadRef::parse(nad, namespace).namespace)
        .collect();
    Policy { nad_namespaces, ..Policy::default() }
}

fn offline(args: &RenderArgs, new: &[Validated], old: &[Validated]) -> Vec<Preview> {
    let kubevirt = KubeVirtCapabilities {
        source: "(assumed)".into(),
        version: args.kubevirt_version.clone(),
        feature_gates: args.kubevirt_feature_gates.iter().cloned().collect(),
        workload_update_methods: args.workload_update_methods.iter().cloned().collect(),
        rollout: match args.vm_rollout_strategy {
            RolloutArg::LiveUpdate => RolloutStrategy::LiveUpdate,
            RolloutArg::Stage => RolloutStrategy::Stage,
        },
        // Offline nothing is known of binding plugins: none is held back for one.
        binding_plugins: ["macvtap".to_string()].into(),
    };
    new.iter()
        .map(|n| {
            let policy = policy(n);
            let before = old.iter().find(|o| key(o.wukong()) == key(n.wukong()));
            let facts = match before {
                Some(o) => preview::facts_of(o, &policy, Some(kubevirt.clone())),
                None => Facts { kubevirt: Some(kubevirt.clone()), ..Facts::default() },
            };
            preview::preview(n, before, &facts, &policy)
        })
        .collect()
}

/// The previews against the cluster; `Ok(Err(..))` when the input is invalid.
fn live(input: &str) -> Result<Result<Vec<Preview>, Vec<String>>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let client = Client::try_default().await.map_err(|e| format!("cannot reach the cluster (KUBECONFIG): {e}"))?;
        let new = match wukongs(input, "the input", Some(client.default_namespace())) {
            Ok(new) => new,
            Err(errors) => return Ok(Err(errors)),
        };
        let mut out = Vec::new();
        for n in &new {
            out.push(live_preview(&client, n).await?);
        }
        Ok(Ok(out))
    })
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// A GET that tells "absent" (404) from an error; a kind the API server does not serve is
/// absent too (`Ok(None)` with `served = false`).
async fn get(api: &Api<DynamicObject>, name: &str) -> Result<(bool, Option<Value>), String> {
    match api.get_opt(name).await {
        Ok(o) => Ok((true, o.map(|o| serde_json::to_value(o).expect("an object serializes")))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok((false, None)),
        Err(e) => Err(format!("cannot read {name}: {e}")),
    }
}

fn controlled_by(object: &Value, uid: &str) -> bool {
    object.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|owners| {
        owners.iter().any(|o| o["controller"] == json!(true) && o["kind"] == "Wukong" && o["uid"] == json!(uid))
    })
}

async fn live_preview(client: &Client, new: &Validated) -> Result<Preview, String> {
    let (namespace, name) = key(new.wukong());
    let policy = policy(new);
    let wukongs: Api<Wukong> = Api::namespaced(client.clone(), &namespace);
    let Some(current) =
        wukongs.get_opt(&name).await.map_err(|e| format!("cannot read Wukong {namespace}/{name}: {e}"))?
    else {
        // Not applied yet: everything is created, nothing runs.
        return Ok(preview::preview(new, None, &Facts::default(), &policy));
    };
    let uid = current.uid().unwrap_or_default();
    let old = wukong_render::validate(&current).ok();
    let ns = |r: &ApiResource, namespace: &str| Api::<DynamicObject>::namespaced_with(client.clone(), namespace, r);
    let nad = resource("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition", "network-attachment-definitions");
    let vm = resource("kubevirt.io", "v1", "VirtualMachine", "virtualmachines");
    let vmi = resource("kubevirt.io", "v1", "VirtualMachineInstance", "virtualmachineinstances");
    let kubevirt = resource("kubevirt.io", "v1", "KubeVirt", "kubevirts");
    let mut facts = Facts::default();

    let nads = ns(&nad, &namespace);
    let selector = format!("{}={name},{}={}", labels::WUKONG, labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
    match nads.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => {
            facts.kinds.nad = true;
            for item in list.items {
                let value = serde_json::to_value(&item).expect("an object serializes");
                if controlled_by(&value, &uid) {
                    let nad_name = item.name_any();
                    if let Some(a) = item.annotations().get(labels::ATTACHMENT) {
                        facts.nad_attachments.insert(nad_name.clone(), a.clone());
                    }
                    facts.owned_nads.insert(nad_name);
                }
            }
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(format!("cannot list the NADs of {namespace}/{name}: {e}")),
    }
    if facts.kinds.nad {
        let (generated, named) = wanted_nads(new, &policy);
        for nad_name in generated {
            let (_, live) = get(&nads, &nad_name).await?;
            let presence = match live {
                None => Presence::Absent,
                Some(v) if controlled_by(&v, &uid) => Presence::Ours,
                Some(_) => Presence::Foreign,
            };
            facts.generated_nads.insert(nad_name, presence);
        }
        for r in named {
            let (_, live) = get(&ns(&nad, &r.namespace), &r.name).await?;
            facts.named_nads.insert(r, live.is_some());
        }
    }
    let vm_name = wukong_render::names::vm_name(&name);
    let (served, live_vm) = get(&ns(&vm, &namespace), &vm_name).await?;
    facts.kinds.vm = served;
    match live_vm {
        Some(v) if controlled_by(&v, &uid) => {
            facts.vm = Presence::Ours;
            facts.live_vm = Some(LiveVm::from_vm(&v, &namespace));
        }
        Some(_) => facts.vm = Presence::Foreign,
        None => {}
    }
    let (served, live_vmi) = get(&ns(&vmi, &namespace), &vm_name).await?;
    facts.kinds.vmi = served;
    facts.instance = live_vmi.as_ref().and_then(Instance::from_vmi);
    let crs = Api::<DynamicObject>::all_with(client.clone(), &kubevirt);
    match crs.list(&ListParams::default()).await {
        Ok(list) => {
            facts.kinds.kubevirt_config = true;
            let values: Vec<Value> =
                list.items.iter().map(|o| serde_json::to_value(o).expect("an object serializes")).collect();
            facts.kubevirt = KubeVirtCapabilities::governing(&values);
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => {}
        Err(e) => return Err(format!("cannot read the KubeVirt CR: {e}")),
    }
    Ok(preview::preview(new, old.as_ref(), &facts, &policy))
}

fn applies_words(c: &wukong_api::PendingChange) -> &'static str {
    match (c.applies, c.restart_flagged) {
        (Applies::Live, _) => "live",
        (Applies::Migration, _) => "through a live migration",
        (Applies::Restart, true) => "at a restart (KubeVirt reports RestartRequired)",
        (Applies::Restart, false) => "at a restart (KubeVirt does not report it)",
        (Applies::AtStart, _) => "when the VM starts",
    }
}

/// The previews as text: per Wukong, each change and then how it applies and why.
pub fn text(previews: &[Preview]) -> String {
    let mut out = String::new();
    for p in previews {
        let state = if p.running { "runs" } else { "does not run" };
        out.push_str(&format!("Wukong {} (VirtualMachine {} {state}):\n", p.wukong, p.vm));
        if let Some(held) = &p.held {
            out.push_str(&format!("  the VM would not be written: {}: {}\n", held.reason, held.message));
            continue;
        }
        if p.changes.is_empty() {
            out.push_str("  no change to the VM\n");
            continue;
        }
        let width = p.changes.iter().map(|c| c.subject.len()).max().unwrap_or(0);
        for c in &p.changes {
            out.push_str(&format!("  {:width$}  {}\n", c.subject, c.change));
            out.push_str(&format!("  {:width$}    {}: {}\n", "", applies_words(c), c.reason));
        }
        let count = |a: Applies| p.changes.iter().filter(|c| c.applies == a).count();
        let mut summary = vec![format!("{} change{}", p.changes.len(), if p.changes.len() == 1 { "" } else { "s" })];
        for (a, words) in
            [(Applies::Live, "live"), (Applies::Migration, "through a migration"), (Applies::AtStart, "at start")]
        {
            if count(a) > 0 {
                summary.push(format!("{} {words}", count(a)));
            }
        }
        if p.restarts() > 0 {
            let vm = p.vm.rsplit('/').next().unwrap_or_default();
            summary.push(format!("{} at a restart (virtctl restart {vm})", p.restarts()));
        }
        out.push_str(&format!("  {}\n", summary.join(", ")));
    }
    out
}

/// The previews as JSON: one object per Wukong.
pub fn json_text(previews: &[Preview]) -> String {
    let items: Vec<Value> = previews
        .iter()
        .map(|p| {
            json!({
                "wukong": p.wukong,
                "virtualMachine": p.vm,
                "running": p.running,
                "held": p.held.as_ref().map(|h| json!({ "reason": h.reason.as_str(), "message": h.message })),
                "changes": p.changes,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).expect("previews serialize");
    s.push('\n');
    s
}
