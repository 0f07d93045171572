//! Prometheus metrics: reconciles, failures by reason, reconcile duration, objects managed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use wukong_api::conditions::Reason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Counter<u64, AtomicU64>,
    pub failures: Family<ReasonLabel, Counter<u64, AtomicU64>>,
    pub duration: Histogram,
    pub managed: Family<KindLabel, Gauge<i64, AtomicI64>>,
    pub leader: Gauge<i64, AtomicI64>,
    pub registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wukong");
        let reconciles = Counter::<u64, AtomicU64>::default();
        let failures = Family::<ReasonLabel, Counter<u64, AtomicU64>>::default();
        let duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let managed = Family::<KindLabel, Gauge<i64, AtomicI64>>::default();
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register("reconcile_failures", "Reconciles that failed, by reason", failures.clone());
        registry.register("reconcile_duration_seconds", "Duration of a reconcile", duration.clone());
        registry.register("managed_objects", "Objects wukong manages, by kind", managed.clone());
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        Metrics { reconciles, failures, duration, managed, leader, registry: Arc::new(registry) }
    }
}

impl Metrics {
    /// Counts a reconcile; its duration is observed when the guard drops.
    pub fn reconcile(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer { start: Instant::now(), histogram: self.duration.clone() }
    }

    pub fn failure(&self, reason: Reason) {
        self.failures.get_or_create(&ReasonLabel { reason: reason.as_str().to_string() }).inc();
    }

    pub fn set_managed(&self, kind: &str, count: i64) {
        self.managed.get_or_create(&KindLabel { kind: kind.to_string() }).set(count);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("metrics encode to a String");
        out
    }
}

pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}
