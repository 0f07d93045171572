//! What every reconcile shares: the client, the discovered kinds, the policy, metrics, the event
//! recorder, and the memory that keeps writes and events to real changes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::ObjectRef;
use wukong_api::{Wukong, WukongStatus};
use wukong_render::decide::{Kinds, Policy};

use super::metrics::Metrics;

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "wukong";

pub struct Context {
    pub client: Client,
    pub kinds: Kinds,
    pub policy: Policy,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// Safety-net resync of a converged Wukong; watches do the real triggering.
    pub requeue: Duration,
    /// Consecutive failures per Wukong, for exponential backoff.
    pub failures: Mutex<HashMap<ObjectRef<Wukong>, u32>>,
    /// The status last written per Wukong: the watch cache may lag behind our own write.
    pub written: Mutex<HashMap<ObjectRef<Wukong>, WukongStatus>>,
}

impl Context {
    /// Backoff after the n-th consecutive failure: 1 s, 2 s, 4 s, ... up to 5 minutes.
    pub fn backoff(&self, key: &ObjectRef<Wukong>) -> Duration {
        let mut failures = self.failures.lock().expect("failures lock");
        let n = failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300))
    }

    pub fn succeeded(&self, key: &ObjectRef<Wukong>) {
        self.failures.lock().expect("failures lock").remove(key);
    }
}
