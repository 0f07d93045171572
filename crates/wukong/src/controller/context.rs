//! What every reconcile shares: the client, the discovered kinds, the policy, the stores the
//! watches fill, metrics, the event recorder, the leader gate, and the controller's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::Value;
use wukong_api::WukongStatus;
use wukong_render::decide::{Kinds, Policy};
use wukong_render::{Invalid, Validated};

use super::events::Publisher;
use super::leader::LeaderGate;
use super::metrics::Metrics;
use super::watches::Stores;

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "wukong";

pub struct Context {
    pub client: Client,
    pub kinds: Kinds,
    pub policy: Policy,
    pub metrics: Metrics,
    pub events: Publisher,
    pub gate: Arc<LeaderGate>,
    pub stores: Stores,
    pub memory: Arc<Memory>,
    /// Safety-net resync of a converged Wukong; watches do the real triggering.
    pub requeue: Duration,
}

/// A child, by kind, namespace and name.
pub type ChildKey = (&'static str, String, String);

/// A validation verdict, for the generation it was computed for.
type Verdict = (Option<i64>, Arc<Result<Validated, Invalid>>);

/// What is known of a Secret (None: absent), and since when.
type SecretKnowledge = (Option<Arc<Value>>, Instant);

/// What the controller remembers between reconciles, across rebuilds of its watches. Keyed by
/// the Wukong's uid (a Wukong deleted and created again under its name starts afresh) and
/// forgotten when the Wukong is deleted.
#[derive(Default)]
pub struct Memory {
    /// Consecutive failures per Wukong, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The status last written per Wukong: the watch may not show it yet.
    statuses: Mutex<HashMap<String, WukongStatus>>,
    /// The verdict of validation per Wukong and generation: a spec is validated once.
    validated: Mutex<HashMap<String, Verdict>>,
    /// The objects as our own writes left them (the API server's responses), until the watch
    /// shows them: a reconcile right after a write reads these, not an older stored version.
    written: Mutex<HashMap<ChildKey, Arc<Value>>>,
    /// The cloud-init Secrets: wukong may not list or watch Secrets, so it remembers what it
    /// wrote and looks again (one GET) only when it knows nothing or the knowledge is a resync old.
    secrets: Mutex<HashMap<(String, String), SecretKnowledge>>,
    /// `sshKeySecret` Secrets known to exist (their metadata only), and since when.
    key_secrets: Mutex<HashMap<(String, String), Instant>>,
}

impl Memory {
    /// Backoff after the n-th consecutive failure: 1 s, 2 s, 4 s, ... up to 5 minutes.
    pub fn backoff(&self, uid: &str) -> Duration {
        let mut failures = self.failures.lock().expect("failures lock");
        let n = failures.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(1u64 << (*n - 1).min(8)).min(Duration::from_secs(300))
    }

    pub fn succeeded(&self, uid: &str) {
        self.failures.lock().expect("failures lock").remove(uid);
    }

    pub fn last_status(&self, uid: &str) -> Option<WukongStatus> {
        self.statuses.lock().expect("statuses lock").get(uid).cloned()
    }

    pub fn wrote_status(&self, uid: &str, status: WukongStatus) {
        self.statuses.lock().expect("statuses lock").insert(uid.to_string(), status);
    }

    /// The validation verdict of `generation`, computed once.
    pub fn validated(
        &self,
        uid: &str,
        generation: Option<i64>,
        validate: impl FnOnce() -> Result<Validated, Invalid>,
    ) -> Arc<Result<Validated, Invalid>> {
        if let Some((g, verdict)) = self.validated.lock().expect("validated lock").get(uid)
            && *g == generation
        {
            return verdict.clone();
        }
        let verdict = Arc::new(validate());
        self.validated.lock().expect("validated lock").insert(uid.to_string(), (generation, verdict.clone()));
        verdict
    }

    /// Records what a write left in the API server.
    pub fn wrote(&self, key: ChildKey, stored: Arc<Value>) {
        self.written.lock().expect("written lock").insert(key, stored);
    }

    /// The fresher of the stored object and what our last write left (by resourceVersion, which
    /// the API server increases with every write); forgets the write once the store caught up.
    pub fn freshest(&self, key: &ChildKey, stored: Option<Arc<Value>>) -> Option<Arc<Value>> {
        let mut written = self.written.lock().expect("written lock");
        let Some(ours) = written.get(key).cloned() else { return stored };
        match stored {
            Some(s) if version(&s) >= version(&ours) => {
                written.remove(key);
                Some(s)
            }
            _ => Some(ours),
        }
    }

    /// Whether a watch event shows exactly what our own write left (it triggers nothing new).
    /// The store holds it from then on: the write's copy is forgotten.
    pub fn is_own_write(&self, key: &ChildKey, resource_version: Option<&str>) -> bool {
        let mut written = self.written.lock().expect("written lock");
        let own = written
            .get(key)
            .is_some_and(|ours| ours.pointer("/metadata/resourceVersion").and_then(Value::as_str) == resource_version);
        if own {
            written.remove(key);
        }
        own
    }

    /// What wukong knows of a cloud-init Secret (None: ask the API server), unless older than
    /// `max_age`.
    pub fn secret(&self, namespace: &str, name: &str, max_age: Duration) -> Option<Option<Arc<Value>>> {
        let secrets = self.secrets.lock().expect("secrets lock");
        let (known, at) = secrets.get(&(namespace.to_string(), name.to_string()))?;
        (at.elapsed() < max_age).then(|| known.clone())
    }

    pub fn saw_secret(&self, namespace: &str, name: &str, secret: Option<Arc<Value>>) {
        self.secrets
            .lock()
            .expect("secrets lock")
            .insert((namespace.to_string(), name.to_string()), (secret, Instant::now()));
    }

    /// Whether an `sshKeySecret` was seen to exist within `max_age`.
    pub fn key_secret_exists(&self, namespace: &str, name: &str, max_age: Duration) -> bool {
        let known = self.key_secrets.lock().expect("key secrets lock");
        known.get(&(namespace.to_string(), name.to_string())).is_some_and(|at| at.elapsed() < max_age)
    }

    pub fn saw_key_secret(&self, namespace: &str, name: &str) {
        self.key_secrets
            .lock()
            .expect("key secrets lock")
            .insert((namespace.to_string(), name.to_string()), Instant::now());
    }

    /// Forgets everything about a deleted Wukong.
    pub fn forget(&self, uid: &str) {
        self.failures.lock().expect("failures lock").remove(uid);
        self.statuses.lock().expect("statuses lock").remove(uid);
        self.validated.lock().expect("validated lock").remove(uid);
    }

    /// How many Wukongs the memory holds statuses for (tests: eviction).
    pub fn remembered(&self) -> usize {
        self.statuses.lock().expect("statuses lock").len()
    }
}

/// An object's resourceVersion as the number the API server (etcd) gives it; 0 when absent.
fn version(object: &Value) -> u64 {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(rv: &str) -> Arc<Value> {
        Arc::new(json!({ "metadata": { "name": "x", "resourceVersion": rv } }))
    }

    #[test]
    fn our_write_is_read_until_the_store_shows_it() {
        let memory = Memory::default();
        let key = ("VirtualMachine", "ns".to_string(), "x".to_string());
        assert_eq!(memory.freshest(&key, Some(object("5"))), Some(object("5")));
        memory.wrote(key.clone(), object("9"));
        assert!(!memory.is_own_write(&key, Some("5")));
        assert_eq!(memory.freshest(&key, Some(object("5"))), Some(object("9")), "the store lags behind");
        assert_eq!(memory.freshest(&key, None), Some(object("9")));
        assert_eq!(memory.freshest(&key, Some(object("12"))), Some(object("12")), "someone wrote after us");
        assert!(!memory.is_own_write(&key, Some("9")), "forgotten once the store caught up");
        // The watch showing our write: it triggers nothing, and the store serves it from now on.
        memory.wrote(key.clone(), object("14"));
        assert!(memory.is_own_write(&key, Some("14")));
        assert_eq!(memory.freshest(&key, Some(object("14"))), Some(object("14")));
        assert!(!memory.is_own_write(&key, Some("14")), "forgotten: the store has it");
    }

    #[test]
    fn validation_runs_once_per_generation_and_everything_goes_with_the_wukong() {
        let memory = Memory::default();
        let runs = std::cell::Cell::new(0);
        let invalid = || {
            runs.set(runs.get() + 1);
            Err(Invalid { wukong: "ns/x".into(), errors: Vec::new() })
        };
        memory.validated("uid-1", Some(1), invalid);
        memory.validated("uid-1", Some(1), invalid);
        assert_eq!(runs.get(), 1);
        memory.validated("uid-1", Some(2), invalid);
        assert_eq!(runs.get(), 2);
        memory.wrote_status("uid-1", WukongStatus::default());
        memory.backoff("uid-1");
        assert_eq!(memory.remembered(), 1);
        memory.forget("uid-1");
        assert_eq!(memory.remembered(), 0);
        assert_eq!(memory.last_status("uid-1"), None);
        assert_eq!(memory.backoff("uid-1"), Duration::from_secs(1), "a recreated Wukong starts afresh");
        memory.validated("uid-1", Some(2), invalid);
        assert_eq!(runs.get(), 3);
    }
}
