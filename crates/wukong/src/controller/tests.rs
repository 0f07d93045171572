//! The reconcile's error paths against an in-process mock of the API server (kube's Client
//! takes any tower Service): every request is recorded and answered by a table, so a test can
//! make exactly one request fail and assert what follows. The real API server proves the happy
//! paths and the faults it can produce (tests/faults.rs); these cover the answers it gives
//! rarely: a webhook's 422, a 409, a status patch that fails.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::core::DeserializeGuard;
use kube::runtime::reflector;
use serde_json::{Value, json};
use wukong_api::Wukong;
use wukong_render::decide::{Kinds, Policy};

use super::context::{Context, Memory};
use super::error::Class;
use super::events::Publisher;
use super::leader::LeaderGate;
use super::metrics::Metrics;
use super::observe::resources;
use super::reconcile;
use super::watches::{Stores, WukongObject};

/// One request as the mock API server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

type Answer = Box<dyn Fn(&Seen) -> Option<(u16, Value)> + Send + Sync>;

/// The mock API server: the first rule that answers a request wins; anything else is a 404.
#[derive(Clone, Default)]
struct MockApi {
    seen: Arc<Mutex<Vec<Seen>>>,
    rules: Arc<Mutex<Vec<Answer>>>,
}

impl MockApi {
    fn answer(&self, rule: impl Fn(&Seen) -> Option<(u16, Value)> + Send + Sync + 'static) {
        self.rules.lock().unwrap().push(Box::new(rule));
    }

    fn client(&self) -> Client {
        let mock = self.clone();
        let service = tower::service_fn(move |req: Request<kube::client::Body>| {
            let mock = mock.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                mock.seen.lock().unwrap().push(seen.clone());
                let answer = mock.rules.lock().unwrap().iter().find_map(|rule| rule(&seen));
                let (code, body) = answer.unwrap_or_else(|| (404, status(404, "NotFound", "not found")));
                let response = Response::builder()
                    .status(StatusCode::from_u16(code).unwrap())
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        Client::new(service, "default")
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message })
}

/// What a server-side apply of `body` stores: the body, with a uid and a resourceVersion.
fn stored(body: &Value) -> Value {
    let mut o = body.clone();
    o["metadata"]["uid"] = json!("c0ffee00-0000-4000-8000-000000000001");
    o["metadata"]["resourceVersion"] = json!("100");
    o
}

const UID: &str = "0b8f6d4e-5c2a-4e8e-9a51-1f0d7c3b2a10";

fn web() -> Wukong {
    serde_json::from_value(json!({
        "apiVersion": "vm.novasphere.dev/v1alpha1", "kind": "Wukong",
        "metadata": { "name": "web", "namespace": "prod", "uid": UID, "generation": 1, "resourceVersion": "7" },
        "spec": { "cpu": 2, "memory": "4Gi", "networks": [
            { "name": "mgmt", "type": "bridge", "ipConfig": { "mode": "static", "address": "10.0.0.5/24" } } ] }
    }))
    .unwrap()
}

/// A context over the mock: every optional kind served, stores empty (nothing exists yet), the
/// leader gate open.
fn context(mock: &MockApi) -> Arc<Context> {
    let client = mock.client();
    // Stores that listed (empty): a reconcile waits for nothing.
    let dynamic = |r: kube::api::ApiResource| {
        let mut writer = reflector::store::Writer::new(r);
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        Some(writer.as_reader())
    };
    let (wukongs, mut writer) = reflector::store::<WukongObject>();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let (pvcs, mut writer) = reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let stores = Stores {
        wukongs,
        nads: dynamic(resources::nad()),
        vms: dynamic(resources::vm()),
        vmis: dynamic(resources::vmi()),
        pvcs,
        data_volumes: None,
        cdi_configs: None,
        cdis: None,
        kubevirts: None,
        nad_owners: Default::default(),
    };
    Arc::new(Context {
        client: client.clone(),
        kinds: Kinds { nad: true, vm: true, vmi: true, ..Kinds::default() },
        policy: Policy::default(),
        metrics: Metrics::default(),
        events: Publisher::new(client, "wukong", None),
        gate: Arc::new(LeaderGate::open_for(Duration::from_secs(60))),
        stores,
        memory: Arc::new(Memory::default()),
        requeue: Duration::from_secs(300),
    })
}

/// The rules every scenario shares: the Wukong exists (its metadata), applies store what they
/// are given, status patches and events are accepted.
fn healthy(mock: &MockApi) {
    mock.answer(|s| {
        (s.method == "GET" && s.path == "/apis/vm.novasphere.dev/v1alpha1/namespaces/prod/wukongs/web").then(|| {
            (
                200,
                json!({ "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                          "metadata": { "name": "web", "namespace": "prod", "uid": UID } }),
            )
        })
    });
    mock.answer(|s| {
        (s.method == "PATCH" && s.path.ends_with("/wukongs/web/status")).then(|| {
            let mut w = serde_json::to_value(web()).unwrap();
            w["status"] = s.body["status"].clone();
            (200, w)
        })
    });
    mock.answer(|s| (s.method == "PATCH").then(|| (200, stored(&s.body))));
    mock.answer(|s| (s.method == "POST" && s.path.contains("/events")).then(|| (201, stored(&s.body))));
}

fn status_patch(seen: &[Seen]) -> Option<Value> {
    seen.iter().rev().find(|s| s.method == "PATCH" && s.path.ends_with("/wukongs/web/status")).map(|s| s.body.clone())
}

fn condition<'a>(status_patch: &'a Value, type_: &str) -> &'a Value {
    status_patch["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_).unwrap()
}

fn guarded(w: Wukong) -> Arc<WukongObject> {
    Arc::new(DeserializeGuard(Ok(w)))
}

#[tokio::test]
async fn a_vm_refused_by_kubevirts_webhook_is_applyfailed_in_the_status_with_its_words_and_an_event() {
    let mock = MockApi::default();
    mock.answer(|s| {
        (s.method == "PATCH" && s.path.ends_with("/virtualmachines/web-vm")).then(|| {
            (422, status(422, "Invalid", "admission webhook \"virtualmachine-validator.kubevirt.io\" denied the request: spec.template.spec.domain.devices.interfaces[1].name 'mgmt' not found."))
        })
    });
    healthy(&mock);
    let ctx = context(&mock);
    let action = reconcile::reconcile(guarded(web()), ctx.clone()).await.expect("a refusal is reported, not an error");
    assert_ne!(action, kube::runtime::controller::Action::await_change(), "looked at again, slowly");

    let seen = mock.seen();
    let patch = status_patch(&seen).expect("the status is written");
    let vm = condition(&patch, "VirtualMachineReady");
    assert_eq!((vm["status"].as_str(), vm["reason"].as_str()), (Some("False"), Some("ApplyFailed")));
    assert_eq!(
        vm["message"],
        "apply VirtualMachine prod/web-vm: admission webhook \"virtualmachine-validator.kubevirt.io\" denied the request: spec.template.spec.domain.devices.interfaces[1].name 'mgmt' not found."
    );
    assert_eq!(condition(&patch, "Ready")["reason"], "ApplyFailed");
    assert_eq!(condition(&patch, "NetworksReady")["status"], "True", "the NAD was written");
    let events: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST" && s.path.contains("/events")).collect();
    assert!(
        events.iter().any(|e| e.body["type"] == "Warning" && e.body["reason"] == "ApplyFailed"),
        "a Warning event: {events:?}"
    );
    // The writes carry their preconditions: created only if absent.
    let nad = seen.iter().find(|s| s.method == "PATCH" && s.path.contains("network-attachment-definitions")).unwrap();
    assert_eq!(nad.body["metadata"]["resourceVersion"], "1", "a create-only apply");
    assert!(ctx.metrics.encode().contains("reason=\"ApplyFailed\""));
}

#[tokio::test]
async fn a_server_error_leaves_the_status_alone_and_is_retried() {
    let mock = MockApi::default();
    mock.answer(|s| {
        (s.method == "PATCH" && s.path.ends_with("/virtualmachines/web-vm"))
            .then(|| (503, status(503, "ServiceUnavailable", "etcdserver: leader changed")))
    });
    healthy(&mock);
    let error = reconcile::reconcile(guarded(web()), context(&mock)).await.expect_err("retried");
    assert_eq!(error.class(), Class::Transient);
    assert!(error.to_string().contains("apply VirtualMachine prod/web-vm: etcdserver: leader changed"), "{error}");
    assert_eq!(status_patch(&mock.seen()), None, "no status written: it does not flap");
}

#[tokio::test]
async fn a_conflict_means_observe_again_soon_and_nothing_is_reported() {
    let mock = MockApi::default();
    // Someone created a NAD under the generated name between observe and apply.
    mock.answer(|s| {
        (s.method == "PATCH" && s.path.contains("network-attachment-definitions"))
            .then(|| (409, status(409, "Conflict", "the object has been modified")))
    });
    healthy(&mock);
    let ctx = context(&mock);
    let error = reconcile::reconcile(guarded(web()), ctx.clone()).await.expect_err("a conflict");
    assert_eq!(error.class(), Class::Conflict);
    let action = reconcile::error_policy(guarded(web()), &error, ctx);
    assert_eq!(action, kube::runtime::controller::Action::requeue(Duration::from_secs(1)));
    let vm_writes = mock.seen().iter().filter(|s| s.path.contains("virtualmachines")).count();
    assert_eq!(vm_writes, 0, "the VM waits for its networks");
}

#[tokio::test]
async fn a_failed_status_patch_is_an_error_and_no_event_claims_a_transition() {
    let mock = MockApi::default();
    mock.answer(|s| {
        (s.method == "PATCH" && s.path.ends_with("/status"))
            .then(|| (500, status(500, "InternalError", "etcd timeout")))
    });
    healthy(&mock);
    let ctx = context(&mock);
    let error = reconcile::reconcile(guarded(web()), ctx.clone()).await.expect_err("the status patch failed");
    assert!(error.to_string().starts_with("patch the status of Wukong prod/web: etcd timeout"), "{error}");
    assert!(!mock.seen().iter().any(|s| s.path.contains("/events")), "no event for a status not written");
    assert_eq!(ctx.memory.last_status(UID), None, "not remembered as written");
}

#[tokio::test]
async fn a_wukong_gone_from_the_api_server_gets_no_write_from_a_stale_store() {
    let mock = MockApi::default();
    // The store still has it; the API server does not (404 for its metadata).
    mock.answer(|s| {
        (s.method == "GET" && s.path.ends_with("/wukongs/web")).then(|| (404, status(404, "NotFound", "gone")))
    });
    healthy(&mock);
    reconcile::reconcile(guarded(web()), context(&mock)).await.expect("nothing to do");
    let writes: BTreeSet<String> =
        mock.seen().iter().filter(|s| s.method != "GET").map(|s| format!("{} {}", s.method, s.path)).collect();
    assert!(writes.is_empty(), "writes for a deleted Wukong: {writes:?}");
}

#[tokio::test]
async fn a_wukong_being_deleted_gets_no_write_at_all() {
    let mock = MockApi::default();
    healthy(&mock);
    let mut w = web();
    w.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    reconcile::reconcile(guarded(w), context(&mock)).await.expect("nothing to do");
    assert!(mock.seen().is_empty(), "no request at all: {:?}", mock.seen());
}

#[tokio::test]
async fn without_the_lease_nothing_is_written() {
    let mock = MockApi::default();
    healthy(&mock);
    let mut ctx = Arc::try_unwrap(context(&mock)).ok().unwrap();
    ctx.gate = Arc::new(LeaderGate::default());
    let error = reconcile::reconcile(guarded(web()), Arc::new(ctx)).await.expect_err("not the leader");
    assert!(matches!(error, super::error::Error::NotLeader), "{error}");
    assert!(mock.seen().iter().all(|s| s.method == "GET"), "only reads: {:?}", mock.seen());
}
