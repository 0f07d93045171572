//! What the HTTP endpoints and tests see of a running controller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::Store;
use wukong_render::decide::Kinds;

use super::context::Memory;
use super::metrics::Metrics;
use super::watches::WukongObject;

#[derive(Default)]
pub struct State {
    pub metrics: Metrics,
    leader: AtomicBool,
    synced: AtomicBool,
    kinds: Mutex<Kinds>,
    store: Mutex<Option<Store<WukongObject>>>,
    memory: Mutex<Option<Arc<Memory>>>,
}

impl State {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    pub fn kinds(&self) -> Kinds {
        *self.kinds.lock().expect("kinds lock")
    }

    /// How many Wukongs the controller's memory holds a status for (forgotten on delete).
    pub fn remembered(&self) -> usize {
        self.memory.lock().expect("memory lock").as_ref().map_or(0, |m| m.remembered())
    }

    pub fn readiness(&self) -> Result<&'static str, &'static str> {
        match (self.is_leader(), self.synced.load(Ordering::SeqCst)) {
            (false, _) => Ok("standby: another replica holds the lease"),
            (true, true) => Ok("ok"),
            (true, false) => Err("listing Wukongs"),
        }
    }

    pub(super) fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::SeqCst);
        self.metrics.leader.set(i64::from(leader));
        if !leader {
            self.synced.store(false, Ordering::SeqCst);
        }
    }

    pub(super) fn set_synced(&self) {
        self.synced.store(true, Ordering::SeqCst);
    }

    pub(super) fn set_kinds(&self, kinds: Kinds) {
        *self.kinds.lock().expect("kinds lock") = kinds;
    }

    pub(super) fn set_store(&self, store: Store<WukongObject>, memory: Arc<Memory>) {
        *self.store.lock().expect("store lock") = Some(store);
        *self.memory.lock().expect("memory lock") = Some(memory);
    }

    /// Counts the VMs and generated NADs of the Wukongs this replica knows, from their status.
    pub fn count_managed(&self) {
        let Some(store) = self.store.lock().expect("store lock").clone() else { return };
        let (mut vms, mut nads) = (0, 0);
        for object in store.state() {
            let Ok(w) = &object.0 else { continue };
            let Some(status) = &w.status else { continue };
            vms += i64::from(status.vm_name.is_some());
            let name = w.metadata.name.as_deref().unwrap_or_default();
            let generated = |n: &wukong_api::NetworkStatus| {
                let nad = wukong_render::names::nad_name(name, &n.name);
                n.nad_name.as_deref().is_some_and(|ref_| ref_.rsplit('/').next() == Some(nad.as_str()))
            };
            nads += status.networks.iter().filter(|n| generated(n)).count() as i64;
        }
        self.metrics.set_managed("VirtualMachine", vms);
        self.metrics.set_managed("NetworkAttachmentDefinition", nads);
    }
}
