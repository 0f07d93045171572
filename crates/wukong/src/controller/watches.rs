//! The watches: one reflector per kind the controller reads, whose store the reconcile reads
//! (no GET in a steady-state reconcile) and whose events trigger the Wukongs they concern.
//!
//! - Every stream has its own short backoff (200 ms doubling to 3 s) and its errors are logged
//!   and dropped before they reach the controller, so one failing watch never slows the others
//!   and a watch that lost its place (410 Expired after an outage) re-lists within seconds.
//! - The Wukong stream triggers on what the reconcile depends on (generation, labels,
//!   annotations, deletion, a new uid), not on status updates: the controller's own status patch
//!   does not reconcile again. Objects are stored without their managedFields.
//! - A child's event that only shows the controller's own write triggers nothing.
//! - Mapping an object to its Wukongs is by name and owner ([`wukong_render::index`]), never by
//!   scanning every Wukong.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::{Backoff, PredicateConfig};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::warn;
use wukong_api::Wukong;
use wukong_render::decide::Kinds;
use wukong_render::index::{self, ChildKind, NadRefIndex, OwnedIndex};
use wukong_render::plan::NadRef;

use super::config::Config;
use super::context::{ChildKey, Memory};
use super::observe::resources;

/// A stored Wukong: decoded, or the reason it does not decode.
pub type WukongObject = DeserializeGuard<Wukong>;

/// What the reconcile reads, filled by the watches.
#[derive(Clone)]
pub struct Stores {
    pub wukongs: Store<WukongObject>,
    pub nads: Option<Store<DynamicObject>>,
    pub vms: Option<Store<DynamicObject>>,
    pub vmis: Option<Store<DynamicObject>>,
    pub pvcs: Store<PersistentVolumeClaim>,
    pub data_volumes: Option<Store<DynamicObject>>,
    pub cdi_configs: Option<Store<DynamicObject>>,
    pub cdis: Option<Store<DynamicObject>>,
    pub kubevirts: Option<Store<DynamicObject>>,
    /// The NADs each Wukong controls, by its uid, from the NAD watch.
    pub nad_owners: Arc<Mutex<OwnedIndex>>,
}

impl Stores {
    /// Waits up to `limit` until every store of children listed what it watches; the first that
    /// did not, by kind. A decision from a store still empty would take children for absent and
    /// write. The cluster-wide configurations (KubeVirt's and CDI's CRs) are not waited for: a
    /// controller confined to a namespace may not list them, and without them it knows less
    /// (as when they are not installed), it does not write wrongly.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), &'static str> {
        async fn ready<K: Clone + kube::Resource + 'static>(
            store: Option<&Store<K>>,
            what: &'static str,
            limit: Duration,
        ) -> Result<(), &'static str>
        where
            K::DynamicType: Eq + std::hash::Hash + Clone,
        {
            match store {
                Some(s) => match tokio::time::timeout(limit, s.wait_until_ready()).await {
                    Ok(Ok(())) => Ok(()),
                    _ => Err(what),
                },
                None => Ok(()),
            }
        }
        ready(Some(&self.wukongs), "Wukong", limit).await?;
        ready(self.nads.as_ref(), "NetworkAttachmentDefinition", limit).await?;
        ready(self.vms.as_ref(), "VirtualMachine", limit).await?;
        ready(self.vmis.as_ref(), "VirtualMachineInstance", limit).await?;
        ready(Some(&self.pvcs), "PersistentVolumeClaim", limit).await?;
        ready(self.data_volumes.as_ref(), "DataVolume", limit).await
    }
}

/// A backoff for one watch: 200 ms doubling to 3 s, from the start again after a success.
#[derive(Debug, Clone)]
struct QuickBackoff(Duration);

impl Default for QuickBackoff {
    fn default() -> Self {
        Self(Duration::from_millis(200))
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let now = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(3));
        Some(now)
    }
}

impl Backoff for QuickBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Logs and drops a watch's errors (its backoff already spaces the retries) so they never reach
/// the controller's shared trigger backoff.
fn logged<K, S>(what: &'static str, stream: S) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    S: Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    stream.filter_map(move |r| async move {
        match r {
            Ok(object) => Some(Ok(object)),
            Err(e) => {
                warn!(watch = what, error = %e, "watch failed; retrying");
                None
            }
        }
    })
}

fn watch_config() -> watcher::Config {
    watcher::Config::default().any_semantic()
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn scoped_dynamic(client: &Client, namespace: Option<&str>, resource: &ApiResource) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// A reflector of dynamic objects: its store and its stream of touched objects.
fn reflect_dynamic(
    what: &'static str,
    api: Api<DynamicObject>,
    resource: &ApiResource,
) -> (Store<DynamicObject>, impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static) {
    reflect_dynamic_indexed(what, api, resource, |_| {})
}

/// [`reflect_dynamic`], with `index` seeing every event as the store does.
fn reflect_dynamic_indexed(
    what: &'static str,
    api: Api<DynamicObject>,
    resource: &ApiResource,
    index: impl Fn(&watcher::Event<DynamicObject>) + Send + 'static,
) -> (Store<DynamicObject>, impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static) {
    let writer = reflector::store::Writer::new(resource.clone());
    let reader = writer.as_reader();
    let stream = watcher(api, watch_config())
        .backoff(QuickBackoff::default())
        .modify(|o: &mut DynamicObject| o.managed_fields_mut().clear())
        .reflect(writer)
        .inspect_ok(index)
        .touched_objects();
    (reader, logged(what, stream))
}

fn reflect_typed<K>(
    what: &'static str,
    api: Api<K>,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watch_config())
        .backoff(QuickBackoff::default())
        .modify(|o: &mut K| o.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    (reader, logged(what, stream))
}

/// Keeps the index of controlling owners in step with a child watch.
fn index_owner(index: &mut OwnedIndex, event: &watcher::Event<DynamicObject>) {
    let update = |index: &mut OwnedIndex, o: &DynamicObject| {
        let controller = o.owner_references().iter().find(|r| r.controller == Some(true)).map(|r| r.uid.as_str());
        index.update(&o.namespace().unwrap_or_default(), &o.name_any(), controller);
    };
    match event {
        watcher::Event::Init => index.begin_relist(),
        watcher::Event::InitApply(o) | watcher::Event::Apply(o) => update(index, o),
        watcher::Event::InitDone => index.end_relist(),
        watcher::Event::Delete(o) => index.remove(&o.namespace().unwrap_or_default(), &o.name_any()),
    }
}

/// What a Wukong's reconcile depends on, besides its status: a status-only update (the
/// controller's own patch among them) triggers nothing.
fn wukong_change(w: &WukongObject) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let meta = w.meta();
    let mut h = DefaultHasher::new();
    (meta.uid.as_deref(), meta.generation, meta.deletion_timestamp.is_some()).hash(&mut h);
    meta.labels.as_ref().map(|l| l.iter().collect::<Vec<_>>()).hash(&mut h);
    meta.annotations.as_ref().map(|a| a.iter().collect::<Vec<_>>()).hash(&mut h);
    // An object that does not decode has no generation worth trusting: its error counts too.
    w.0.as_ref().err().map(|e| e.error.as_str()).hash(&mut h);
    Some(h.finish())
}

/// A Wukong of the store that decodes, seen as a `Wukong` by the pure mappers.
struct Decoded(Arc<WukongObject>);

impl std::borrow::Borrow<Wukong> for Decoded {
    fn borrow(&self) -> &Wukong {
        self.0.0.as_ref().expect("only decoded Wukongs are wrapped")
    }
}

/// Maps a child's event to the Wukongs of its namespace it concerns; an event that only shows
/// the controller's own write maps to nothing.
#[derive(Clone)]
struct Mapper {
    wukongs: Store<WukongObject>,
    memory: Arc<Memory>,
    nad_index: Arc<Mutex<NadRefIndex>>,
}

impl Mapper {
    fn map<K: Resource>(&self, kind: ChildKind, key_kind: &'static str, object: &K) -> Vec<ObjectRef<WukongObject>> {
        let meta = object.meta();
        let (Some(namespace), Some(name)) = (meta.namespace.clone(), meta.name.clone()) else { return Vec::new() };
        let key: ChildKey = (key_kind, namespace.clone(), name.clone());
        if self.memory.is_own_write(&key, meta.resource_version.as_deref()) {
            return Vec::new();
        }
        let lookup = |w: &str| {
            let found = self.wukongs.get(&ObjectRef::new(w).within(&namespace))?;
            found.0.is_ok().then_some(Decoded(found))
        };
        let labels = meta.labels.clone().unwrap_or_default();
        let owners = meta.owner_references.as_deref().unwrap_or_default();
        let mut refs: Vec<ObjectRef<WukongObject>> = index::wukongs_of(kind, &name, owners, &labels, lookup)
            .into_iter()
            .map(|w| ObjectRef::new(&w).within(&namespace))
            .collect();
        if kind == ChildKind::Nad {
            let nad = NadRef { namespace: namespace.clone(), name };
            let index = self.nad_index.lock().expect("nadName index");
            refs.extend(index.naming(&nad).into_iter().map(|(ns, w)| ObjectRef::new(&w).within(&ns)));
        }
        refs
    }

    /// Every Wukong of the store for which `relates` holds: for cluster-wide configuration that
    /// changes rarely (the KubeVirt CR, CDI's config).
    fn all(&self, relates: impl Fn(&Wukong) -> bool) -> Vec<ObjectRef<WukongObject>> {
        self.wukongs
            .state_filter(|w| w.0.as_ref().is_ok_and(&relates))
            .iter()
            .map(|w| ObjectRef::from_obj(w.as_ref()))
            .collect()
    }
}

/// The controller with its watches, and the stores they fill.
pub struct Watches {
    pub controller: Controller<WukongObject>,
    pub stores: Stores,
}

/// Builds the watches for the kinds the API server serves.
pub fn build(client: &Client, config: &Config, kinds: Kinds, memory: Arc<Memory>) -> Watches {
    let namespace = config.namespace.as_deref();
    let nad_index = Arc::new(Mutex::new(NadRefIndex::default()));

    let (wukongs, writer) = reflector::store::<WukongObject>();
    let index = nad_index.clone();
    let forget = memory.clone();
    let wukong_stream = watcher(scoped::<WukongObject>(client, namespace), watch_config())
        .backoff(QuickBackoff::default())
        .modify(|w: &mut WukongObject| w.managed_fields_mut().clear())
        .reflect(writer)
        .inspect_ok(move |event| {
            let mut index = index.lock().expect("nadName index");
            match event {
                watcher::Event::Apply(w) | watcher::Event::InitApply(w) => {
                    if let Ok(w) = &w.0 {
                        index.update(w);
                    }
                }
                watcher::Event::Delete(w) => {
                    index.remove(&w.namespace().unwrap_or_default(), &w.name_any());
                    if let Some(uid) = w.uid() {
                        forget.forget(&uid);
                    }
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
        })
        .touched_objects()
        .predicate_filter(wukong_change, PredicateConfig::default());
    let mut controller = Controller::for_stream(logged("Wukong", wukong_stream), wukongs.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency));
    let nad_owners = Arc::new(Mutex::new(OwnedIndex::default()));
    let mapper = Mapper { wukongs: wukongs.clone(), memory, nad_index };

    // The PVCs behind disks: status.volumes, and a grown disk's size.
    let (pvcs, stream) = reflect_typed("PersistentVolumeClaim", scoped::<PersistentVolumeClaim>(client, namespace));
    let m = mapper.clone();
    controller =
        controller.watches_stream(stream, move |o| m.map(ChildKind::PersistentVolumeClaim, resources::PVC, &o));
    let mut stores = Stores {
        wukongs,
        nads: None,
        vms: None,
        vmis: None,
        pvcs,
        data_volumes: None,
        cdi_configs: None,
        cdis: None,
        kubevirts: None,
        nad_owners,
    };

    if kinds.nad {
        // NADs named by nadName may live in other namespaces.
        let scope = if config.nad_namespaces.is_empty() { namespace } else { None };
        let r = resources::nad();
        let owners = stores.nad_owners.clone();
        let (store, stream) =
            reflect_dynamic_indexed("NetworkAttachmentDefinition", scoped_dynamic(client, scope, &r), &r, move |e| {
                index_owner(&mut owners.lock().expect("NAD owner index"), e)
            });
        let m = mapper.clone();
        controller = controller.watches_stream_with(stream, move |o| m.map(ChildKind::Nad, resources::NAD, &o), r);
        stores.nads = Some(store);
    }
    if kinds.vm {
        let r = resources::vm();
        let (store, stream) = reflect_dynamic("VirtualMachine", scoped_dynamic(client, namespace, &r), &r);
        let m = mapper.clone();
        controller =
            controller.watches_stream_with(stream, move |o| m.map(ChildKind::VirtualMachine, resources::VM, &o), r);
        stores.vms = Some(store);
    }
    if kinds.vmi {
        let r = resources::vmi();
        let (store, stream) = reflect_dynamic("VirtualMachineInstance", scoped_dynamic(client, namespace, &r), &r);
        let m = mapper.clone();
        controller = controller.watches_stream_with(
            stream,
            move |o| m.map(ChildKind::VirtualMachineInstance, resources::VMI, &o),
            r,
        );
        stores.vmis = Some(store);
    }
    if kinds.data_volume {
        let r = resources::data_volume();
        let (store, stream) = reflect_dynamic("DataVolume", scoped_dynamic(client, namespace, &r), &r);
        let m = mapper.clone();
        controller =
            controller.watches_stream_with(stream, move |o| m.map(ChildKind::DataVolume, resources::DV, &o), r);
        stores.data_volumes = Some(store);
        // CDI's config and CR (one each, cluster-wide): the filesystem overhead of grown disks.
        for (what, r) in [("CDIConfig", resources::cdi_config()), ("CDI", resources::cdi())] {
            let (store, stream) = reflect_dynamic(what, Api::all_with(client.clone(), &r), &r);
            let m = mapper.clone();
            controller = controller.watches_stream_with(
                stream,
                move |_| m.all(|w| !wukong_render::disks::plan(w).is_empty()),
                r,
            );
            match what {
                "CDIConfig" => stores.cdi_configs = Some(store),
                _ => stores.cdis = Some(store),
            }
        }
    }
    if kinds.kubevirt_config {
        // The KubeVirt CR says which binding plugins exist (macvlan networks need one) and how
        // a change reaches a running VM (version, feature gates, rollout and workload update
        // strategies: the status's pending changes): every Wukong is reconsidered when it changes.
        let r = resources::kubevirt();
        let (store, stream) = reflect_dynamic("KubeVirt", Api::all_with(client.clone(), &r), &r);
        let m = mapper.clone();
        controller = controller.watches_stream_with(stream, move |_| m.all(|_| true), r);
        stores.kubevirts = Some(store);
    }
    Watches { controller, stores }
}
