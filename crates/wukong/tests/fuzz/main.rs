//! The differential fuzzer: `wukong render` against the real API server.
//!
//! Every case (see `generate.rs`) is a YAML file. `wukong render`'s verdict and error lines for
//! it are compared with the API server's for the same file:
//! - a case written faithfully from JSON objects is sent as those objects in a dry-run POST with
//!   strict field validation, which is what kubectl sends (20× faster than running kubectl);
//! - a YAML case (octal, `on`, duplicate keys, aliases, `kind: List` ...) goes through
//!   `kubectl create --dry-run=server -f`, since only kubectl can say how kubectl reads it;
//! - every `KUBECTL_EVERY`th faithful case goes through kubectl too, and must get the same
//!   answer as its direct POST (else the fuzzer's writer or oracle is wrong);
//! - when both accept, every object `render` makes of it (NADs, Secret, VM) is sent in a dry-run
//!   POST too and must be accepted;
//! - every `CLI_EVERY`th case also runs the `wukong render` binary, whose exit code must agree.
//!
//! Each mismatch is minimised (fields, or lines of a YAML case, removed while the mismatch stays)
//! and reported with its seed. Knobs: `WUKONG_FUZZ_CASES` (default 300, `make test`),
//! `WUKONG_FUZZ_SEED` (first seed, default 14), `WUKONG_FUZZ_ONLY` (one seed, to reproduce),
//! `WUKONG_FUZZ_REPORT` (also write the report to that file). `make fuzz N=5000` runs more.

#[path = "../support/mod.rs"]
mod support;

mod generate;
mod yaml;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use generate::{Case, Family};
use kube::Client;
use kube::core::Request;
use serde_json::Value;

/// The namespace `wukong render` assumes for a manifest that names none: derived MACs are
/// computed in it.
pub const NAMESPACE_FOR_MACS: &str = wukong_render::names::DEFAULT_NAMESPACE;

const CONCURRENCY: usize = 6;
const KUBECTL_EVERY: u64 = 25;
const CLI_EVERY: u64 = 20;
/// Share of the cases where both refuse that must carry the same lines.
const SAME_LINES_AT_LEAST: f64 = 0.99;

// ---- verdicts -----------------------------------------------------------------------------

/// What one side said about a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accepted,
    /// Refused by validation (or strict decoding), with its lines, sorted.
    Refused(Vec<String>),
    /// Refused before validation (not YAML, not an object, no kind ...): not line-comparable.
    Unreadable(String),
}

impl Verdict {
    fn accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    BothAccept,
    BothRefuseSameLines,
    BothRefuseDifferentLines,
    BothRefuseUnreadable,
    /// The API server accepts, render refuses with a rule CEL cannot express (a MAC equal to
    /// one wukong derives with SHA-256): deliberate, see the README.
    RenderOnlyRule,
    ServerAcceptsRenderRefuses,
    ServerRefusesRenderAccepts,
    ChildRefused,
    RenderPanicked,
    OraclesDisagree,
    CliDisagrees,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::BothAccept => "both accept",
            Class::BothRefuseSameLines => "both refuse, same lines",
            Class::BothRefuseDifferentLines => "both refuse, different lines",
            Class::BothRefuseUnreadable => "both refuse before validation (unreadable input)",
            Class::RenderOnlyRule => "server accepts, render refuses by a rule CEL cannot express (derived MAC)",
            Class::ServerAcceptsRenderRefuses => "server accepts, render refuses",
            Class::ServerRefusesRenderAccepts => "server refuses, render accepts",
            Class::ChildRefused => "both accept, a rendered child is refused",
            Class::RenderPanicked => "render panicked or took over 2 s",
            Class::OraclesDisagree => "kubectl and the direct POST disagree (fuzzer bug)",
            Class::CliDisagrees => "the wukong binary disagrees with render in-process",
        }
    }
    fn is_mismatch(self) -> bool {
        !matches!(
            self,
            Class::BothAccept | Class::BothRefuseSameLines | Class::BothRefuseUnreadable | Class::RenderOnlyRule
        )
    }
}

/// The outcome of one case.
#[derive(Debug, Clone)]
struct Outcome {
    class: Class,
    server: Verdict,
    render: Verdict,
    detail: String,
}

// ---- render, in-process -------------------------------------------------------------------

fn render_verdict(case: &Case) -> (Verdict, Vec<Value>, Duration) {
    let started = Instant::now();
    let text = case.text.clone();
    let result = std::panic::catch_unwind(move || wukong::commands::render::check_documents(&text));
    let elapsed = started.elapsed();
    let Ok(result) = result else {
        return (Verdict::Unreadable("PANIC".into()), vec![], elapsed);
    };
    match result {
        Err(e) => (Verdict::Unreadable(e), vec![], elapsed),
        Ok((checked, _)) if checked.is_empty() => {
            (Verdict::Unreadable("the input holds no Wukong".into()), vec![], elapsed)
        }
        Ok((checked, _)) => {
            let mut lines = Vec::new();
            let mut children = Vec::new();
            let mut refused = false;
            for c in checked {
                match c.result {
                    Ok(valid) => {
                        let rendered = wukong_render::render(&valid, &wukong_render::RenderOptions::default());
                        children.extend(wukong::commands::render::objects(&rendered));
                    }
                    Err(invalid) => {
                        refused = true;
                        lines.extend(invalid.errors.iter().map(ToString::to_string));
                    }
                }
            }
            lines.sort();
            if refused { (Verdict::Refused(lines), vec![], elapsed) } else { (Verdict::Accepted, children, elapsed) }
        }
    }
}

// ---- the API server, directly -------------------------------------------------------------

struct Server {
    client: Client,
    namespace: String,
}

/// The API path of a kind's collection in `namespace`.
fn collection(object: &Value, namespace: &str) -> Option<String> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let plural = match kind {
        "Wukong" => "wukongs",
        "NetworkAttachmentDefinition" => "network-attachment-definitions",
        "VirtualMachine" => "virtualmachines",
        "Secret" => "secrets",
        "DataVolume" => "datavolumes",
        _ => return None,
    };
    let base = if api_version.contains('/') { format!("/apis/{api_version}") } else { format!("/api/{api_version}") };
    Some(format!("{base}/namespaces/{namespace}/{plural}"))
}

impl Server {
    /// A dry-run POST with strict field validation: `Ok(())` or the refusal's lines.
    async fn create(&self, object: &Value) -> Result<(), Verdict> {
        let path = collection(object, &self.namespace)
            .unwrap_or_else(|| format!("/apis/vm.novasphere.dev/v1alpha1/namespaces/{}/wukongs", self.namespace));
        let body = serde_json::to_vec(object).expect("JSON");
        let mut request = Request::new(path)
            .create(&Default::default(), body)
            .map_err(|e| Verdict::Unreadable(format!("request: {e}")))?;
        let uri = request.uri().to_string();
        let sep = if uri.contains('?') { '&' } else { '?' };
        *request.uri_mut() = format!("{uri}{sep}dryRun=All&fieldValidation=Strict").parse().expect("a URI");
        match self.client.request::<Value>(request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) => Err(status_verdict(&status)),
            Err(e) => Err(Verdict::Unreadable(format!("transport: {e}"))),
        }
    }

    async fn verdict(&self, objects: &[Value]) -> Verdict {
        let mut lines = Vec::new();
        for o in objects {
            match self.create(o).await {
                Ok(()) => {}
                Err(Verdict::Refused(l)) => lines.extend(l),
                Err(other) => return other,
            }
        }
        lines.sort();
        if lines.is_empty() { Verdict::Accepted } else { Verdict::Refused(lines) }
    }
}

/// Lines of a refusal: a 422's causes (`field: message`), or a 400's unknown/duplicate fields.
fn status_verdict(status: &kube::core::Status) -> Verdict {
    if status.code == 422 && status.details.as_ref().is_some_and(|d| !d.causes.is_empty()) {
        return Verdict::Refused(support::server_lines(status));
    }
    if let Some((_, fields)) = status.message.split_once("strict decoding error: ") {
        return Verdict::Refused(strict_lines(fields));
    }
    if let Some((_, decoding)) = status.message.split_once("cannot be handled as a Wukong: ") {
        return Verdict::Refused(vec![decoding.to_string()]);
    }
    Verdict::Unreadable(format!("{} {}", status.code, status.message))
}

/// `unknown field "a", unknown field "b"` → one line each.
fn strict_lines(fields: &str) -> Vec<String> {
    let mut lines: Vec<String> = fields
        .split(", unknown field ")
        .flat_map(|p| p.split(", duplicate field "))
        .map(|p| {
            let p = p.trim();
            if p.starts_with("unknown field") || p.starts_with("duplicate field") {
                p.to_string()
            } else {
                format!("unknown field {p}")
            }
        })
        .collect();
    lines.sort();
    lines
}

/// The API server names an object created with `generateName` `<prefix><5 random characters>`;
/// offline the 5 are `xxxxx`. The random part of a message is the only part not compared.
fn generated_names(verdict: Verdict) -> Verdict {
    static RANDOM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"^(metadata\.name: Invalid value: "[^"]*)[bcdfghjklmnpqrstvwxz2456789]{5}""#)
            .expect("a regex")
    });
    match verdict {
        Verdict::Refused(lines) => {
            let mut lines: Vec<String> =
                lines.into_iter().map(|l| RANDOM.replace(&l, "${1}xxxxx\"").into_owned()).collect();
            lines.sort();
            Verdict::Refused(lines)
        }
        other => other,
    }
}

// ---- kubectl ------------------------------------------------------------------------------

fn kubectl_verdict(cluster: &support::Cluster, namespace: &str, text: &str, seed: u64) -> Verdict {
    let dir = support::repo_root().join("target/fuzz-cases");
    std::fs::create_dir_all(&dir).expect("target/fuzz-cases");
    let path: PathBuf = dir.join(format!("{seed:016x}.yaml"));
    std::fs::write(&path, text).expect("the case file");
    let output = cluster
        .kubectl()
        .args(["create", "--dry-run=server", "-n", namespace, "-f"])
        .arg(&path)
        .output()
        .expect("kubectl runs");
    let _ = std::fs::remove_file(&path);
    if output.status.success() {
        return Verdict::Accepted;
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim_end().to_string();
    parse_kubectl(&stderr)
}

/// kubectl's error text back into lines: `The Wukong "x" is invalid: <cause>` (one object, one
/// or several `* <cause>` lines), `Error from server (Invalid): ... is invalid: [<cause>, ...]`
/// (several objects), or a strict decoding error's unknown fields.
fn parse_kubectl(stderr: &str) -> Verdict {
    static CAUSE_START: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(spec|metadata|status|kind|apiVersion|<nil>|some validation rules)").expect("a regex")
    });
    let mut lines = Vec::new();
    let mut text = stderr.lines().peekable();
    while let Some(line) = text.next() {
        if let Some(rest) = line.strip_prefix("The Wukong ").and_then(|l| l.split_once(" is invalid: ").map(|(_, r)| r))
        {
            if rest.is_empty() {
                while let Some(cause) = text.next_if(|l| l.starts_with("* ")) {
                    lines.push(unnil(&cause[2..]));
                }
            } else {
                lines.push(unnil(rest));
            }
        } else if let Some((_, fields)) = line.split_once("strict decoding error: ") {
            lines.extend(strict_lines(fields));
        } else if let Some((_, decoding)) = line.split_once("cannot be handled as a Wukong: ") {
            lines.push(decoding.to_string());
        } else if let Some(list) = line.split_once(" is invalid: [").map(|(_, r)| r.trim_end_matches(']')) {
            // Causes joined by ", ": cut where the next cause starts with a field path.
            let mut current = String::new();
            for part in list.split(", ") {
                if !current.is_empty() && CAUSE_START.is_match(part) {
                    lines.push(unnil(&current));
                    current.clear();
                }
                if !current.is_empty() {
                    current.push_str(", ");
                }
                current.push_str(part);
            }
            if !current.is_empty() {
                lines.push(unnil(&current));
            }
        } else if let Some(rest) = line.split_once(" is invalid: ").map(|(_, r)| r) {
            lines.push(unnil(rest));
        } else {
            return Verdict::Unreadable(stderr.to_string());
        }
    }
    lines.sort();
    Verdict::Refused(lines)
}

/// As `support::server_lines`: a cause without a field, as the offline validator writes it.
fn unnil(line: &str) -> String {
    let line = line.strip_prefix("<nil>: ").unwrap_or(line);
    line.strip_prefix("Invalid value: \"null\": ")
        .filter(|m| m.starts_with("some validation rules were not checked"))
        .unwrap_or(line)
        .to_string()
}

// ---- one case -----------------------------------------------------------------------------

struct Bench {
    cluster: &'static support::Cluster,
    server: Server,
}

impl Bench {
    async fn server_verdict(&self, case: &Case) -> Verdict {
        match &case.objects {
            Some(objects) => self.server.verdict(objects).await,
            None => {
                let (cluster, ns, text, seed) =
                    (self.cluster, self.server.namespace.clone(), case.text.clone(), case.seed);
                tokio::task::spawn_blocking(move || kubectl_verdict(cluster, &ns, &text, seed))
                    .await
                    .expect("kubectl thread")
            }
        }
    }

    async fn run(&self, case: &Case, cross_checks: bool) -> Outcome {
        let (render, children, elapsed) = render_verdict(case);
        let mut server = self.server_verdict(case).await;
        if case.text.contains("generateName") {
            server = generated_names(server);
        }
        let outcome = |class, detail: String| Outcome { class, server: server.clone(), render: render.clone(), detail };
        if render == Verdict::Unreadable("PANIC".into()) || elapsed > Duration::from_secs(2) {
            return outcome(Class::RenderPanicked, format!("{elapsed:?}"));
        }
        let class = match (&server, &render) {
            (Verdict::Accepted, Verdict::Accepted) => Class::BothAccept,
            (Verdict::Accepted, Verdict::Refused(lines)) if lines.iter().all(|l| l.contains(" would share MAC ")) => {
                Class::RenderOnlyRule
            }
            (Verdict::Accepted, _) => Class::ServerAcceptsRenderRefuses,
            (_, Verdict::Accepted) => Class::ServerRefusesRenderAccepts,
            (Verdict::Refused(a), Verdict::Refused(b)) if a == b => Class::BothRefuseSameLines,
            (Verdict::Refused(_), Verdict::Refused(_)) => Class::BothRefuseDifferentLines,
            _ => Class::BothRefuseUnreadable,
        };
        if class == Class::BothAccept {
            for child in &children {
                let child = support::in_namespace(child, &self.server.namespace);
                if let Err(v) = self.server.create(&child).await {
                    let what = format!("{} {}", child["kind"], child["metadata"]["name"]);
                    return outcome(Class::ChildRefused, format!("{what}: {v:?}"));
                }
            }
        }
        if cross_checks && case.objects.is_some() && case.seed.is_multiple_of(KUBECTL_EVERY) {
            let mut kubectl = self.server_verdict(&case.with_text(case.text.clone())).await;
            if case.text.contains("generateName") {
                kubectl = generated_names(kubectl);
            }
            // The verdicts must agree, and the lines when both come from the API server; kubectl
            // refuses some objects itself before sending them (metadata of the wrong type), in
            // its own words.
            let same = match (&kubectl, &server) {
                (Verdict::Refused(a), Verdict::Refused(b)) => a == b,
                (Verdict::Accepted, v) | (v, Verdict::Accepted) => v.accepted(),
                _ => true,
            };
            if !same {
                return outcome(Class::OraclesDisagree, format!("kubectl says {kubectl:?}"));
            }
        }
        if cross_checks && case.seed.is_multiple_of(CLI_EVERY) {
            let code = cli_exit_code(&case.text).await;
            let expected = if render.accepted() { 0 } else { 2 };
            if code != expected {
                return outcome(Class::CliDisagrees, format!("wukong render exited {code}, expected {expected}"));
            }
        }
        outcome(class, String::new())
    }

    /// Removes fields (or lines) while the case keeps its class; at most `budget` runs.
    async fn minimise(&self, case: &Case, class: Class) -> Case {
        let mut best = case.clone();
        let mut budget = if case.objects.is_some() { 200 } else { 60 };
        let mut progress = true;
        while progress && budget > 0 {
            progress = false;
            for candidate in shrink(&best) {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                if self.run(&candidate, false).await.class == class {
                    best = candidate;
                    progress = true;
                    break;
                }
            }
        }
        best
    }
}

/// Smaller variants of a case: one field (or line) less.
fn shrink(case: &Case) -> Vec<Case> {
    match &case.objects {
        Some(objects) => {
            let mut out = Vec::new();
            if objects.len() > 1 {
                for i in 0..objects.len() {
                    let mut fewer = objects.clone();
                    fewer.remove(i);
                    out.push(case.with_objects(fewer));
                }
            }
            for (i, o) in objects.iter().enumerate() {
                let mut ps = Vec::new();
                generate::paths(o, "", &mut ps);
                ps.retain(|p| {
                    !matches!(p.as_str(), "/apiVersion" | "/kind" | "/metadata" | "/metadata/name" | "/spec")
                });
                for p in ps {
                    let mut smaller = o.clone();
                    let (parent, last) = p.rsplit_once('/').expect("a pointer");
                    match smaller.pointer_mut(parent) {
                        Some(Value::Object(m)) => {
                            m.remove(&last.replace("~1", "/").replace("~0", "~"));
                        }
                        Some(Value::Array(a)) => {
                            a.remove(last.parse::<usize>().expect("an index"));
                        }
                        _ => continue,
                    }
                    let mut objects = objects.clone();
                    objects[i] = smaller;
                    out.push(case.with_objects(objects));
                }
            }
            out
        }
        None => {
            let lines: Vec<&str> = case.text.split_inclusive('\n').collect();
            (0..lines.len())
                .rev()
                .map(|i| {
                    let mut l = lines.clone();
                    l.remove(i);
                    case.with_text(l.concat())
                })
                .collect()
        }
    }
}

async fn cli_exit_code(text: &str) -> i32 {
    let mut child = tokio::process::Command::new(support::wukong_bin())
        .args(["render", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("wukong render runs");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(text.as_bytes()).await;
    }
    child.wait().await.expect("wukong render ends").code().unwrap_or(-1)
}

// ---- the run ------------------------------------------------------------------------------

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_agrees_with_the_api_server_on_generated_manifests() {
    let cases = env_u64("WUKONG_FUZZ_CASES", 300);
    let first = env_u64("WUKONG_FUZZ_SEED", 14);
    let seeds: Vec<u64> = match std::env::var("WUKONG_FUZZ_ONLY").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (first..first + cases).collect(),
    };
    let cluster = support::cluster();
    let ns = cluster.namespace("fuzz").await;
    let bench = Bench { cluster, server: Server { client: ns.client.clone(), namespace: ns.name.clone() } };
    let started = Instant::now();

    let results: Vec<(Case, Outcome)> = stream::iter(seeds)
        .map(|seed| {
            let bench = &bench;
            async move {
                let case = generate::case(seed);
                let outcome = bench.run(&case, true).await;
                (case, outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut counts: BTreeMap<Class, usize> = BTreeMap::new();
    let mut by_family: BTreeMap<(Family, Class), usize> = BTreeMap::new();
    for (case, outcome) in &results {
        *counts.entry(outcome.class).or_default() += 1;
        *by_family.entry((case.family, outcome.class)).or_default() += 1;
    }
    let mut report = String::new();
    writeln!(report, "differential fuzz: {} cases in {:.0?}", results.len(), started.elapsed()).unwrap();
    writeln!(report, "| class | cases |\n|---|---|").unwrap();
    for (class, n) in &counts {
        writeln!(report, "| {} | {n} |", class.name()).unwrap();
    }
    writeln!(report, "\nby family:").unwrap();
    for ((family, class), n) in &by_family {
        writeln!(report, "  {:<9} {:<55} {n}", family.name(), class.name()).unwrap();
    }

    // What "unreadable" means, by example: each side's words (not compared).
    writeln!(report, "\nrefused before validation, first examples:").unwrap();
    let mut unreadable: Vec<&(Case, Outcome)> =
        results.iter().filter(|(_, o)| o.class == Class::BothRefuseUnreadable).collect();
    unreadable.sort_by_key(|(c, _)| c.seed);
    for (case, outcome) in unreadable.iter().take(12) {
        let short = |v: &Verdict| format!("{v:?}").chars().take(160).collect::<String>();
        writeln!(
            report,
            "  seed {} ({}, {}):\n    server: {}\n    render: {}",
            case.seed,
            case.family.name(),
            case.note.chars().take(80).collect::<String>(),
            short(&outcome.server),
            short(&outcome.render)
        )
        .unwrap();
    }

    let mut mismatches: Vec<&(Case, Outcome)> = results.iter().filter(|(_, o)| o.class.is_mismatch()).collect();
    mismatches.sort_by_key(|(c, _)| c.seed);
    for (case, outcome) in mismatches.iter().take(25) {
        let small = bench.minimise(case, outcome.class).await;
        let again = bench.run(&small, false).await;
        writeln!(
            report,
            "\n---- seed {} ({}, {}): {}\n{}\nminimised ({}):\n{}\nserver: {:#?}\nrender: {:#?}\n{}",
            case.seed,
            case.family.name(),
            case.note,
            outcome.class.name(),
            outcome.detail,
            again.class.name(),
            small.text,
            again.server,
            again.render,
            again.detail,
        )
        .unwrap();
    }
    eprintln!("{report}");
    if let Ok(path) = std::env::var("WUKONG_FUZZ_REPORT") {
        std::fs::write(&path, &report).expect("the report file");
    }

    let refused_both = counts.get(&Class::BothRefuseSameLines).copied().unwrap_or(0)
        + counts.get(&Class::BothRefuseDifferentLines).copied().unwrap_or(0);
    let same = counts.get(&Class::BothRefuseSameLines).copied().unwrap_or(0);
    let verdict_mismatches: usize =
        counts.iter().filter(|(c, _)| c.is_mismatch() && **c != Class::BothRefuseDifferentLines).map(|(_, n)| n).sum();
    assert_eq!(verdict_mismatches, 0, "verdict mismatches (see the report above)");
    let share = if refused_both == 0 { 1.0 } else { same as f64 / refused_both as f64 };
    assert!(
        share >= SAME_LINES_AT_LEAST,
        "only {same} of {refused_both} refusals carry the API server's lines ({:.1}%)",
        share * 100.0
    );
}
