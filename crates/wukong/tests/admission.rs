//! Admission: every manifest of the corpus in `tests/admission/` against the real API server and
//! against `wukong render`, and the controller's answer to a Wukong that an older, looser CRD let
//! in.
//!
//! The corpus:
//! - `bad/*.yaml`: one Wukong each, refused. The first line `# expect: <fragment>` is a fragment
//!   of the refusal that both the API server and `wukong render` must say; an optional
//!   `# apply-expect: <fragment>` replaces it for server-side apply where the API server answers
//!   before validation (unknown fields, a list-map key twice, a wrong type: no typed patch).
//! - `good/*.yaml`: edge cases that must be accepted and rendered (`# expect: accepted`), among
//!   them the original operator's forms; each `# warn: <fragment>` line is a warning that
//!   `kubectl apply` (the policy of `deploy/warning-policy.yaml`), `wukong render` and the
//!   offline evaluation must all give, and a manifest without one must get none.
//! - `update/<case>/{old,new}.yaml`: an update from `old` to `new`; `new.yaml`'s first line says
//!   `# expect: <fragment>` of the refusal (transition rules), or `# expect: accepted`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::cel::{Validator, compile_schema};
use serde_json::{Value, json};
use support::{TestNamespace, cluster, wait_for};
use wukong_api::Wukong;

/// How many manifests are sent to the API server (and rendered) at once.
const CONCURRENCY: usize = 16;
const WAIT: Duration = Duration::from_secs(30);

// ---- the corpus ---------------------------------------------------------------------------

/// One manifest of the corpus.
#[derive(Debug, Clone)]
struct Manifest {
    path: PathBuf,
    /// `bad/<file>` or `update/<case>/new.yaml`, for messages.
    label: String,
    /// `# expect:`: a fragment of the refusal, or `accepted`.
    expect: String,
    /// `# apply-expect:`: what server-side apply says instead, when it differs.
    apply_expect: Option<String>,
    /// `# warn:` lines: a fragment of each warning the manifest earns.
    warns: Vec<String>,
    object: Value,
}

impl Manifest {
    fn read(path: &Path) -> Manifest {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let root = support::repo_root().join("tests/admission");
        let label = path.strip_prefix(&root).unwrap_or(path).display().to_string();
        let header = |key: &str| text.lines().find_map(|l| l.strip_prefix(&format!("# {key}: "))).map(str::to_string);
        let docs = support::documents(path.to_str().expect("a UTF-8 path"));
        assert_eq!(docs.len(), 1, "{label}: one document per file, found {}", docs.len());
        Manifest {
            expect: header("expect").unwrap_or_else(|| panic!("{label}: no `# expect:` line")),
            apply_expect: header("apply-expect"),
            warns: text.lines().filter_map(|l| l.strip_prefix("# warn: ")).map(str::to_string).collect(),
            object: docs.into_iter().next().expect("one document"),
            path: path.to_path_buf(),
            label,
        }
    }

    fn accepted(&self) -> bool {
        self.expect == "accepted"
    }

    fn name(&self) -> &str {
        self.object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
    }
}

/// `tests/admission/<dir>/*.yaml`, sorted.
fn corpus(dir: &str) -> Vec<Manifest> {
    let dir = support::repo_root().join("tests/admission").join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Manifest::read(p)).collect()
}

/// An update case: `old.yaml` and `new.yaml` of `tests/admission/update/<case>/`.
#[derive(Debug, Clone)]
struct Update {
    case: String,
    old: Manifest,
    new: Manifest,
}

fn updates() -> Vec<Update> {
    let dir = support::repo_root().join("tests/admission/update");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
        .iter()
        .map(|d| Update {
            case: d.file_name().expect("a case name").to_string_lossy().into_owned(),
            old: Manifest::read(&d.join("old.yaml")),
            new: Manifest::read(&d.join("new.yaml")),
        })
        .collect()
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// `wukong render -f <path>`: (exit code, stdout, stderr).
async fn render(path: &Path) -> (i32, String, String) {
    let output = tokio::process::Command::new(support::wukong_bin())
        .args(["render", "-f"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("wukong render runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `check` on every item, `CONCURRENCY` at a time; panics listing every failure.
async fn check_all<T, F, Fut>(what: &str, items: Vec<T>, check: F)
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let count = items.len();
    let failures: Vec<String> =
        stream::iter(items).map(check).buffer_unordered(CONCURRENCY).flat_map(stream::iter).collect().await;
    assert!(failures.is_empty(), "{} of {count} {what} failed:\n{}", failures.len(), failures.join("\n"));
}

// ---- the corpus covers the rules ----------------------------------------------------------

/// The ids of the CEL rules `object` breaks (updating from `old`), by kube's client-side CEL.
fn rules_broken(validator: &Validator, schema: &Value, object: &Value, old: Option<&Value>) -> BTreeSet<&'static str> {
    let admitted = |o: &Value| {
        let mut o = o.clone();
        let name = o.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
        o["metadata"] = json!({ "name": name });
        o
    };
    let compiled = compile_schema(schema);
    let old = old.map(admitted);
    let Err(errors) = validator.validate_compiled(&compiled, &admitted(object), old.as_ref()) else {
        return BTreeSet::new();
    };
    // Several rules share an expression (`size(self) <= 15`, a DNS-label regex ...): the error's
    // path, list indices dropped, tells them apart.
    let without_indices = |path: &str| {
        let mut out = String::new();
        for part in path.split('[') {
            if out.is_empty() && !path.starts_with('[') {
                out.push_str(part);
            } else {
                out.push('[');
                out.push_str(part.trim_start_matches(|c: char| c.is_ascii_digit()));
            }
        }
        out
    };
    errors
        .iter()
        .filter_map(|e| {
            let path = without_indices(&e.field_path);
            wukong_api::rules::RULES
                .iter()
                .find(|r| {
                    r.rule == e.rule
                        && format!("{}{}", r.at, r.field_path.unwrap_or("")).trim_start_matches('.') == path
                })
                .map(|r| r.id)
        })
        .collect()
}

#[test]
fn the_corpus_is_large_enough_and_breaks_every_rule() {
    let bad = corpus("bad");
    let good = corpus("good");
    let updates = updates();
    assert!(bad.len() >= 40, "only {} bad manifests", bad.len());
    assert!(good.len() >= 15, "only {} good manifests", good.len());
    assert!(updates.iter().any(|u| u.new.accepted()), "no update case that is accepted");
    assert!(updates.iter().any(|u| !u.new.accepted()), "no update case that is refused");
    for m in bad.iter().chain(&good).chain(updates.iter().flat_map(|u| [&u.old, &u.new])) {
        assert_eq!(m.object["kind"], "Wukong", "{}: not a Wukong", m.label);
        assert!(m.object.pointer("/metadata/namespace").is_none(), "{}: the tests choose the namespace", m.label);
    }
    assert!(bad.iter().all(|m| !m.accepted()) && good.iter().all(Manifest::accepted));
    let names: BTreeSet<&str> = bad.iter().chain(&good).map(Manifest::name).collect();
    assert_eq!(names.len(), bad.len() + good.len(), "two bad/good manifests share a Wukong name");

    // Every CEL rule of the CRD is broken by some bad manifest, or by some refused update.
    let validator = Validator::new();
    let schema = wukong_api::crd::openapi_schema();
    let mut broken = BTreeSet::new();
    for m in &bad {
        broken.extend(rules_broken(&validator, &schema, &m.object, None));
    }
    for u in updates.iter().filter(|u| !u.new.accepted()) {
        broken.extend(rules_broken(&validator, &schema, &u.new.object, Some(&u.old.object)));
    }
    let missing: Vec<&str> = wukong_api::rules::RULES.iter().map(|r| r.id).filter(|id| !broken.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "rules no manifest of tests/admission/bad (or refused update of tests/admission/update) breaks: {missing:?}"
    );

    // Every warning of the policy is earned by some good manifest, which says so.
    let earned: Vec<String> = good.iter().flat_map(|m| wukong_render::warnings::warnings(&m.object)).collect();
    let unearned: Vec<&str> = wukong_api::warnings::WARNINGS
        .iter()
        .filter(|w| !earned.iter().any(|e| e.ends_with(w.message)))
        .map(|w| w.id)
        .collect();
    assert!(unearned.is_empty(), "warnings no manifest of tests/admission/good earns: {unearned:?}");
    assert!(bad.iter().all(|m| m.warns.is_empty()), "a refused manifest earns no warning");
}

// ---- bad manifests ------------------------------------------------------------------------

/// Everything one bad manifest must give: refused at create (Strict) and at server-side apply
/// with its fragment, nothing stored, the API server's lines equal to the offline validator's,
/// and `wukong render` exits 2 with the fragment on stderr and nothing on stdout.
async fn check_bad(ns: &TestNamespace, m: Manifest) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{}: {what}", m.label));
    let object = support::in_namespace(&m.object, &ns.name);

    match support::create(&ns.client, &object, true).await {
        Ok(_) => fail("accepted by the API server (create)".into()),
        Err(kube::Error::Api(status)) => {
            if !status.message.contains(&m.expect) {
                fail(format!("create: {:?} is not in the refusal {:?}", m.expect, status.message));
            }
            match status.code {
                // Validation: line by line what the offline validator says.
                422 => {
                    let offline = match wukong_render::validate_object(&m.object) {
                        Ok(_) => vec![],
                        Err(invalid) => invalid.errors.iter().map(ToString::to_string).collect(),
                    };
                    let server = sorted(support::server_lines(&status));
                    if server != sorted(offline.clone()) {
                        fail(format!("the API server says {server:#?}\nthe offline validator says {offline:#?}"));
                    }
                }
                // Strict decoding of an unknown field, before any schema check.
                400 if status.message.contains("strict decoding error: unknown field") => {}
                _ => fail(format!("create: unexpected refusal {status:?}")),
            }
        }
        Err(e) => fail(format!("create: {e}")),
    }
    if support::get(&ns.client, &object).await.is_some() {
        fail("stored after create".into());
    }

    let apply_expect = m.apply_expect.as_deref().unwrap_or(&m.expect);
    match support::apply(&ns.client, &object, true).await {
        Ok(_) => fail("accepted by the API server (server-side apply)".into()),
        Err(kube::Error::Api(status)) if status.message.contains(apply_expect) => {}
        Err(e) => fail(format!("apply: {apply_expect:?} is not in the refusal {e}")),
    }
    if support::get(&ns.client, &object).await.is_some() {
        fail("stored after server-side apply".into());
    }

    let (code, stdout, stderr) = render(&m.path).await;
    if code != 2 || !stdout.is_empty() || !stderr.contains(&m.expect) {
        fail(format!("wukong render exited {code}, stdout {stdout:?}, stderr {stderr:?}"));
    }
    failures
}

#[tokio::test]
async fn every_bad_manifest_is_refused_by_the_api_server_and_by_wukong_render_with_its_message() {
    let ns = cluster().namespace("admission-bad").await;
    check_all("bad manifests", corpus("bad"), |m| check_bad(&ns, m)).await;
}

// ---- good manifests -----------------------------------------------------------------------

async fn check_good(ns: &TestNamespace, m: Manifest) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{}: {what}", m.label));
    let object = support::in_namespace(&m.object, &ns.name);

    // The warnings: one per `# warn:` line, the same words offline, from the API server (the
    // warning policy) and from `wukong render`.
    let offline = wukong_render::warnings::warnings(&m.object);
    let matched = offline.len() == m.warns.len() && offline.iter().zip(&m.warns).all(|(w, f)| w.contains(f.as_str()));
    if !matched {
        fail(format!("the warnings {offline:#?} are not the `# warn:` lines {:#?}", m.warns));
    }
    match support::original::admission_warnings(cluster(), &ns.name, &m.path).await {
        Ok(server) if server == offline => {}
        Ok(server) => fail(format!("the API server warns {server:#?}, offline {offline:#?}")),
        Err(e) => fail(format!("refused by the API server (dry run): {e}")),
    }

    match support::create(&ns.client, &object, true).await {
        Ok(_) => match support::get(&ns.client, &object).await {
            Some(stored) if stored["spec"] == object["spec"] => {}
            Some(stored) => fail(format!("stored as {}", stored["spec"])),
            None => fail("accepted but not stored".into()),
        },
        Err(e) => fail(format!("refused by the API server (create): {e}")),
    }
    // Server-side apply of the same manifest over it: accepted, nothing changes.
    match support::apply(&ns.client, &object, true).await {
        Ok(stored) if stored["spec"] == object["spec"] => {}
        Ok(stored) => fail(format!("server-side apply stored {}", stored["spec"])),
        Err(e) => fail(format!("refused by the API server (server-side apply): {e}")),
    }
    if let Err(invalid) = wukong_render::validate_object(&object) {
        fail(format!("refused offline: {invalid}"));
    }
    let (code, stdout, stderr) = render(&m.path).await;
    if code != 0 || !stdout.contains("kind: VirtualMachine") {
        fail(format!("wukong render exited {code}, stderr {stderr:?}"));
    }
    let prefix = format!("warning: Wukong {}: ", m.name());
    let rendered: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).collect();
    if rendered != offline {
        fail(format!("wukong render warns {rendered:#?}, offline {offline:#?}"));
    }
    failures
}

#[tokio::test]
async fn every_good_manifest_is_accepted_by_the_api_server_and_rendered() {
    support::original::install_warning_policy(cluster()).await;
    let ns = cluster().namespace("admission-good").await;
    check_all("good manifests", corpus("good"), |m| check_good(&ns, m)).await;
}

// ---- updates ------------------------------------------------------------------------------

/// `object` renamed to `name`.
fn named(object: &Value, name: &str) -> Value {
    let mut object = object.clone();
    object["metadata"]["name"] = json!(name);
    object
}

/// The API server's verdict on an update, given as `Ok(())` or `Err(refusal message)`, and
/// whether the stored spec is what it must be afterwards (new when accepted, old when refused).
async fn update_verdict(ns: &TestNamespace, u: &Update, suffix: &str) -> Result<Result<(), String>, String> {
    let name = format!("{}-{suffix}", u.case);
    let old = named(&support::in_namespace(&u.old.object, &ns.name), &name);
    let new = named(&support::in_namespace(&u.new.object, &ns.name), &name);
    let stored_old =
        support::apply(&ns.client, &old, true).await.map_err(|e| format!("old.yaml refused by the API server: {e}"))?;
    let result = if suffix == "apply" {
        // Server-side apply with the same field manager: what `kubectl apply --server-side` does.
        support::apply(&ns.client, &new, true).await.map(drop)
    } else {
        // PUT: what `kubectl replace` and `kubectl edit` do.
        let (api, _) = support::dynamic_api(&ns.client, &new).await;
        let mut body = new.clone();
        body["metadata"]["resourceVersion"] = stored_old["metadata"]["resourceVersion"].clone();
        let body: DynamicObject = serde_json::from_value(body).expect("a DynamicObject");
        api.replace(&name, &PostParams::default(), &body).await.map(drop)
    };
    let verdict = match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 422 => Err(status.message),
        Err(e) => return Err(format!("{suffix}: unexpected answer {e}")),
    };
    let stored = support::get(&ns.client, &new).await.ok_or("the Wukong vanished")?;
    let expected = if verdict.is_ok() { &new["spec"] } else { &old["spec"] };
    if &stored["spec"] != expected {
        return Err(format!("{suffix}: stored spec {} after verdict {verdict:?}", stored["spec"]));
    }
    Ok(verdict)
}

async fn check_update(ns: &TestNamespace, u: Update) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("update/{}: {what}", u.case));
    let expect = &u.new.expect;

    // Both manifests are valid on their own: only the transition decides.
    for m in [&u.old, &u.new] {
        if let Err(invalid) = wukong_render::validate_object(&m.object) {
            fail(format!("{} is refused on its own: {invalid}", m.label));
        }
    }
    let offline = wukong_render::validate::validate_object_update(&u.new.object, Some(&u.old.object))
        .map(drop)
        .map_err(|invalid| invalid.to_string());
    for suffix in ["apply", "put"] {
        match update_verdict(ns, &u, suffix).await {
            Err(e) => fail(e),
            Ok(Ok(())) if u.new.accepted() => {}
            Ok(Err(message)) if !u.new.accepted() && message.contains(expect.as_str()) => {}
            Ok(verdict) => fail(format!("{suffix}: expected {expect:?}, the API server answered {verdict:?}")),
        }
    }
    match &offline {
        Ok(()) if u.new.accepted() => {}
        Err(message) if !u.new.accepted() && message.contains(expect.as_str()) => {}
        verdict => fail(format!("offline: expected {expect:?}, validate_object_update answered {verdict:?}")),
    }
    failures
}

#[tokio::test]
async fn every_update_case_gets_the_same_verdict_from_the_api_server_and_offline() {
    let ns = cluster().namespace("admission-update").await;
    check_all("update cases", updates(), |u| check_update(&ns, u)).await;
}

// ---- the controller and a Wukong an older CRD let in --------------------------------------

/// The Wukong CRD as an older release might have served it: the same OpenAPI schema without a
/// single CEL rule.
fn looser_crd() -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("x-kubernetes-validations");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut crd = support::our_wukong_crd();
    strip(&mut crd);
    assert!(!crd.to_string().contains("x-kubernetes-validations"));
    crd
}

fn dynamic_list_api<K>(ns: &TestNamespace) -> Api<DynamicObject>
where
    K: kube::Resource<DynamicType = ()>,
{
    Api::namespaced_with(ns.client.clone(), &ns.name, &kube::discovery::ApiResource::erase::<K>(&()))
}

async fn names_of(api: &Api<DynamicObject>) -> Vec<String> {
    api.list(&ListParams::default()).await.expect("list").items.into_iter().filter_map(|o| o.metadata.name).collect()
}

#[tokio::test]
async fn the_controller_reports_invalid_spec_for_a_wukong_a_looser_crd_let_in_and_writes_nothing() {
    let c = support::private_cluster("looser-crd", &["--no-crds"]).await;
    {
        let c = &*c;
        std::thread::scope(|s| {
            s.spawn(|| c.install_crds("nad"));
            s.spawn(|| c.install_crds("kubevirt"));
        });
    }
    let admin = c.admin_client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.patch(
        "wukongs.vm.novasphere.dev",
        &PatchParams::apply(support::FIELD_MANAGER).force(),
        &Patch::Apply(looser_crd()),
    )
    .await
    .expect("the looser CRD is accepted");
    wait_for("the looser CRD to be established", WAIT, || async {
        let crd = crds.get("wukongs.vm.novasphere.dev").await.ok()?;
        let conditions = crd.status?.conditions?;
        conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await;
    let ns = c.namespace("looser").await;

    // static without an address: the rule ip.static-needs-address, which the old CRD lacks.
    let manifest = json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1",
        "kind": "Wukong",
        "metadata": { "name": "legacy-vm", "namespace": ns.name },
        "spec": {
            "cpu": 2,
            "memory": "2Gi",
            "osImage": "docker://quay.io/containerdisks/ubuntu:22.04",
            "networks": [
                { "name": "default" },
                { "name": "mgmt", "type": "bridge", "vlanId": 100,
                  "ipConfig": { "mode": "static", "gateway": "192.168.100.1" } },
            ],
        },
    });
    let rule = "ipConfig.address is required when mode is static";
    assert!(support::offline_errors(&manifest).iter().any(|e| e.contains(rule)), "today's rules refuse it");
    wait_for("the looser CRD to store the invalid Wukong", WAIT, || async {
        support::create(&ns.client, &manifest, true).await.ok()
    })
    .await;

    let started = Instant::now();
    let controller = support::controller::start(admin.clone(), support::controller::args(&ns.name, &[])).await;
    let wukongs: Api<Wukong> = ns.api();
    let wukong = wait_for("Ready=False InvalidSpec", WAIT, || async {
        let w = wukongs.get("legacy-vm").await.ok()?;
        let ready = w.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "False" && ready.reason == "InvalidSpec").then_some(w)
    })
    .await;
    let status = wukong.status.as_ref().expect("a status");
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").expect("Ready");
    assert!(ready.message.contains(rule), "{}", ready.message);
    assert!(ready.message.contains("spec.networks[1].ipConfig.address"), "{}", ready.message);
    assert_eq!(status.phase, Some(wukong_api::Phase::Error));

    // No child object, and no retry loop: a spec cannot fix itself.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()).max(Duration::from_secs(3))).await;
    let nads = dynamic_list_api::<wukong_api::nad::NetworkAttachmentDefinition>(&ns);
    let vms = dynamic_list_api::<wukong_api::kubevirt::VirtualMachine>(&ns);
    assert_eq!(names_of(&nads).await, Vec::<String>::new(), "NADs were written for an invalid spec");
    assert_eq!(names_of(&vms).await, Vec::<String>::new(), "a VM was written for an invalid spec");
    let reconciles = controller.metric("wukong_reconciles_total");
    eprintln!("{reconciles} reconciles of the invalid Wukong in {:?}", started.elapsed());
    assert!((1.0..=3.0).contains(&reconciles), "{reconciles} reconciles in {:?}", started.elapsed());

    let events: Api<Event> = ns.api();
    let warnings: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("InvalidSpec"))
        .collect();
    assert!(
        warnings.iter().any(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("legacy-vm")),
        "no Warning event InvalidSpec about legacy-vm: {warnings:#?}"
    );
    assert!(
        warnings.iter().any(|e| e.note.as_deref().is_some_and(|n| n.contains(rule))),
        "the InvalidSpec event says what to fix: {warnings:#?}"
    );

    // Today's CRD is installed. The stored Wukong stays invalid; an edit that leaves the broken
    // network alone is accepted (the API server ratchets), and the offline validator agrees.
    crds.patch(
        "wukongs.vm.novasphere.dev",
        &PatchParams::apply(support::FIELD_MANAGER).force(),
        &Patch::Apply(support::our_wukong_crd()),
    )
    .await
    .expect("today's CRD is accepted");
    let probe = named(&manifest, "probe");
    wait_for("today's CRD to be enforced", WAIT, || async {
        match support::create(&ns.client, &probe, true).await {
            Err(kube::Error::Api(s)) if s.code == 422 => Some(()),
            Ok(_) => {
                let _ = wukongs.delete("probe", &Default::default()).await;
                None
            }
            Err(_) => None,
        }
    })
    .await;
    let before = serde_json::to_value(wukongs.get("legacy-vm").await.expect("the Wukong")).expect("JSON");
    let more_cpu = json!({ "spec": { "cpu": 4 } });
    let after = wukongs
        .patch("legacy-vm", &PatchParams::default(), &Patch::Merge(&more_cpu))
        .await
        .expect("an edit beside the invalid network is accepted");
    let after = serde_json::to_value(after).expect("JSON");
    wukong_render::validate::validate_object_update(&after, Some(&before))
        .unwrap_or_else(|e| panic!("the offline validator refuses what the API server ratchets: {e}"));
    wait_for("InvalidSpec for the new generation", WAIT, || async {
        let w = wukongs.get("legacy-vm").await.ok()?;
        let ready = w.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Ready")?;
        (ready.reason == "InvalidSpec" && ready.observed_generation == w.metadata.generation).then_some(())
    })
    .await;
    assert_eq!(names_of(&nads).await.len() + names_of(&vms).await.len(), 0, "children of an invalid spec");

    // The user fixes the spec: the controller reacts and writes the children.
    let fixed = json!({ "spec": { "networks": [
        { "name": "default" },
        { "name": "mgmt", "type": "bridge", "vlanId": 100,
          "ipConfig": { "mode": "static", "address": "192.168.100.10/24", "gateway": "192.168.100.1" } },
    ]}});
    wukongs.patch("legacy-vm", &PatchParams::default(), &Patch::Merge(&fixed)).await.expect("the fix is accepted");
    wait_for("the NAD of the fixed Wukong", WAIT, || async { nads.get_opt("legacy-vm-mgmt-nad").await.ok()? }).await;
    wait_for("the VM of the fixed Wukong", WAIT, || async { vms.get_opt("legacy-vm-vm").await.ok()? }).await;
    wait_for("a Ready condition that is no longer InvalidSpec", WAIT, || async {
        let w = wukongs.get("legacy-vm").await.ok()?;
        let status = w.status.as_ref()?;
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
        (ready.reason != "InvalidSpec" && status.phase != Some(wukong_api::Phase::Error)).then_some(())
    })
    .await;
    controller.stop().await;
}
